"""The measured variants. Each runs in its own subprocess (see ``run.py``).

A task is ``name(scale, **options) -> dict`` and returns at least ``time``
(seconds of the measured part) and ``digest`` (a hash of its result, to check
that skals and the reference computed the same thing). The worker adds the
resident set size after loading the input (``rss_loaded``) and the peak
(``maxrss``, ``getrusage(RUSAGE_SELF).ru_maxrss``), both in bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import CACHE, N_TEST, ensure  # noqa: E402

FACTORS = 64
REGULARIZATION = 0.05
#: skals' default confidence scale, passed to implicit too (its default is 1)
ALPHA = 10.0
SEED = 0
N_KNOWN_USERS = 100_000  # or every user, if fewer


# ---------------------------------------------------------------- helpers
def rss_now() -> int:
    """Current resident set size in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def maxrss() -> int:
    """Peak resident set size of this process in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def digest(*arrays) -> str:
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def csr_digest(m) -> str:
    m = sp.csr_matrix(m, dtype=np.float32, copy=True)
    m.sum_duplicates()
    m.sort_indices()
    return digest(
        np.asarray(m.shape),
        m.indptr.astype(np.int64),
        m.indices.astype(np.int64),
        m.data,
    )


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def artifact(scale: str, name: str) -> Path:
    return CACHE / f"{name}_{scale}"


# ---------------------------------------------------- 1. preprocessing
def _notebook_polars(frame) -> tuple[sp.csr_matrix, int]:
    """The notebook's steps, hand-written in polars (lazy where it can be)."""
    unified = frame.lazy().with_columns(
        pl.when(pl.col("user_id").is_not_null())
        .then(pl.lit("u_") + pl.col("user_id").cast(pl.String))
        .otherwise(pl.lit("s_") + pl.col("session_id").cast(pl.String))
        .alias("unified_user_id")
    )
    inter = (
        unified.group_by(["unified_user_id", "partnumber"])
        .agg(
            pl.len().alias("view_count"),
            pl.col("add_to_cart").sum().alias("cart_count"),
        )
        .with_columns(
            (1 + pl.col("view_count") + 10 * pl.col("cart_count")).alias("confidence")
        )
        .collect()
    )
    users = inter.select("unified_user_id").unique().sort("unified_user_id")
    users = users.with_row_index("user_id")
    items = inter.select("partnumber").unique().sort("partnumber")
    items = items.with_row_index("item_id")
    inter = inter.join(users, on="unified_user_id").join(items, on="partnumber")
    matrix = sp.csr_matrix(
        (
            inter["confidence"].to_numpy().astype(np.float32),
            (inter["user_id"].to_numpy(), inter["item_id"].to_numpy()),
        ),
        shape=(users.height, items.height),
        dtype=np.float32,
    )
    return matrix


def _notebook_pandas(pdf) -> sp.csr_matrix:
    """The same steps in pandas."""
    import pandas as pd

    user = pdf["user_id"].astype("Int64").astype("string")
    session = pdf["session_id"].astype("string")
    key = ("u_" + user).where(pdf["user_id"].notna(), "s_" + session)
    inter = (
        pd.DataFrame(
            {"key": key, "partnumber": pdf["partnumber"], "cart": pdf["add_to_cart"]}
        )
        .groupby(["key", "partnumber"], sort=False)["cart"]
        .agg(["size", "sum"])
        .reset_index()
    )
    confidence = 1 + inter["size"] + 10 * inter["sum"]
    rows, users = pd.factorize(inter["key"], sort=True)
    cols, items = pd.factorize(inter["partnumber"], sort=True)
    return sp.csr_matrix(
        (confidence.to_numpy(np.float32), (rows, cols)),
        shape=(len(users), len(items)),
        dtype=np.float32,
    )


def _skals_preprocessing():
    from sklearn.pipeline import make_pipeline

    from skals import ConfidenceEncoder, InteractionMatrixBuilder, PseudoUserUnifier

    return make_pipeline(
        PseudoUserUnifier(), ConfidenceEncoder(), InteractionMatrixBuilder()
    )


def prep(scale, variant):
    train, _ = ensure(scale)
    if variant == "pandas":
        import pandas as pd

        frame = pd.read_parquet(train)
    elif variant.endswith("_scan"):
        frame = pl.scan_parquet(train)
    else:
        frame = pl.read_parquet(train)
    rss_loaded = rss_now()
    if variant.startswith("skals"):
        seconds, im = timed(lambda: _skals_preprocessing().fit_transform(frame))
        matrix = im.matrix
    elif variant.startswith("polars"):
        seconds, matrix = timed(lambda: _notebook_polars(frame))
    else:
        seconds, matrix = timed(lambda: _notebook_pandas(frame))
    return {
        "time": seconds,
        "rss_loaded": rss_loaded,
        "digest": csr_digest(matrix),
        "shape": list(matrix.shape),
        "nnz": int(matrix.nnz),
    }


def artifacts(scale):
    """Fitted preprocessing and its InteractionMatrix, saved for steps 2-3."""
    import joblib

    train, _ = ensure(scale)
    pre = _skals_preprocessing()
    im = pre.fit_transform(pl.read_parquet(train))
    joblib.dump((pre, im), artifact(scale, "preprocessed.joblib"))
    return {"time": 0.0, "shape": list(im.shape), "nnz": int(im.nnz)}


# ---------------------------------------------------------- 2. fit
def fit(scale, variant, iterations=3):
    import joblib
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from skals import ImplicitALSRecommender

    _, im = joblib.load(artifact(scale, "preprocessed.joblib"))
    rss_loaded = rss_now()
    out = {"rss_loaded": rss_loaded}
    if variant == "skals":
        model = ImplicitALSRecommender(
            factors=FACTORS,
            regularization=REGULARIZATION,
            alpha=ALPHA,
            iterations=iterations,
            random_state=SEED,
        )
        seconds, _ = timed(lambda: model.fit(im))
        users, items = model.user_factors_, model.item_factors_
        out["no_copy"] = bool(np.shares_memory(model.user_items_.data, im.matrix.data))
        joblib.dump(model, artifact(scale, "model.joblib"))
    else:
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=FACTORS,
                regularization=REGULARIZATION,
                alpha=ALPHA,
                iterations=iterations,
                random_state=SEED,
                dtype=np.float32,
            )
            seconds, _ = timed(lambda: model.fit(im.matrix, show_progress=False))
        users, items = model.user_factors, model.item_factors
    out.update(time=seconds, digest=digest(users, items))
    return out


# ---------------------------------------------------- 3. recommend
def _median_interleaved(fns: dict, repeats: int) -> dict:
    """Run the variants in turn ``repeats`` times; median time, last result."""
    times = {name: [] for name in fns}
    results = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t, results[name] = timed(fn)
            times[name].append(t)
    return {name: (float(np.median(times[name])), results[name]) for name in fns}


def _peak_python_bytes(fn) -> int:
    """Peak of Python-level allocations (numpy buffers included) during ``fn``."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _implicit_model(model):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # construction only: no warning
        imp = AlternatingLeastSquares(
            factors=FACTORS,
            regularization=REGULARIZATION,
            alpha=ALPHA,
            dtype=np.float32,
        )
    imp.user_factors = model.user_factors_
    imp.item_factors = model.item_factors_
    return imp


def _floor(user_factors, item_factors, rows, chunk=2000):
    """The matrix-multiply floor: user factors @ item factors.T in row chunks.

    BLAS on every core; no selection at all (numpy's argpartition over 44k
    items costs several times the product, so it is no floor).
    """
    items_t = np.ascontiguousarray(item_factors.T)
    for start in range(0, rows.size, chunk):
        user_factors[rows[start : start + chunk]] @ items_t


def _floor_reused(user_factors, item_factors, rows, chunk=2000):
    """The same product into one reused output buffer (no page faults for a
    fresh 350 MB block per chunk): a tighter floor than :func:`_floor`."""
    items_t = np.ascontiguousarray(item_factors.T)
    out = np.empty((chunk, items_t.shape[1]), dtype=np.float32)
    for start in range(0, rows.size, chunk):
        query = user_factors[rows[start : start + chunk]]
        np.matmul(query, items_t, out=out[: query.shape[0]])


def _ids_of(frame, model, k) -> np.ndarray:
    """Column indices of a predictions frame's recommendations."""
    from skals._frame import index_of

    flat = frame["recommendations"].explode()
    idx = index_of(flat, model.item_ids_).to_numpy()
    return idx.reshape(-1, k)


def recommend(scale, repeats=5, k=5):
    import joblib

    model = joblib.load(artifact(scale, "model.joblib"))
    pre, _ = joblib.load(artifact(scale, "preprocessed.joblib"))
    imp = _implicit_model(model)
    rng = np.random.default_rng(SEED)
    n_users = model.user_factors_.shape[0]
    rows = np.sort(rng.choice(n_users, min(N_KNOWN_USERS, n_users), replace=False))
    keys = model.user_ids_.gather(rows)
    liked = model.user_items_

    def skals_keys(filtered):
        model.set_params(filter_already_liked_items=filtered)
        return lambda: model.recommend_keys(keys, k=k)

    def implicit_batch(filtered):
        return lambda: imp.recommend(
            rows,
            liked[rows] if filtered else None,
            N=k,
            filter_already_liked_items=filtered,
        )[0]

    fns = {
        "skals": skals_keys(False),
        "implicit": implicit_batch(False),
        "floor_matmul": lambda: _floor(model.user_factors_, model.item_factors_, rows),
        "floor_matmul_reused": lambda: _floor_reused(
            model.user_factors_, model.item_factors_, rows
        ),
    }
    results = _median_interleaved(fns, repeats)
    # filtered variants measured separately: set_params switches the model
    filtered = _median_interleaved(
        {"skals_filtered": skals_keys(True), "implicit_filtered": implicit_batch(True)},
        repeats,
    )
    results.update(filtered)
    model.set_params(filter_already_liked_items=False)

    out = {}
    ref_ids = results["implicit"][1]
    ref_filtered = results["implicit_filtered"][1]
    for name, (seconds, res) in results.items():
        if name.startswith("skals"):
            model.set_params(filter_already_liked_items=name.endswith("filtered"))
            peak = _peak_python_bytes(fns.get(name) or skals_keys(True))
            res = _ids_of(res, model, k)
        else:
            peak = None
        if name.startswith("floor_matmul"):
            equal = None
        else:
            ref = ref_filtered if name.endswith("filtered") else ref_ids
            equal = float((np.asarray(res) == ref).all(axis=1).mean())
        out[f"topk_{name}"] = {
            "time": seconds,
            "equal_rows": equal,
            "py_peak": peak,
            "n_rows": int(rows.size),
        }
    model.set_params(filter_already_liked_items=False)

    # fold-in: 7,300 new sessions, each row answered from its own events
    _, test_path = ensure(scale)
    test_im = pre.transform(pl.read_parquet(test_path))
    with_events = np.flatnonzero(test_im.matrix.getnnz(axis=1) > 0)
    model.set_params(merge_history=False)
    n = test_im.shape[0]
    fold = _median_interleaved(
        {
            "skals": lambda: model.predict(test_im),
            "implicit": lambda: imp.recommend(
                np.arange(n),
                test_im.matrix,
                N=k,
                recalculate_user=True,
                filter_already_liked_items=False,
            )[0],
        },
        repeats,
    )
    skals_ids = _ids_of(fold["skals"][1], model, k)
    ref = fold["implicit"][1]
    equal = float((skals_ids[with_events] == ref[with_events]).all(axis=1).mean())
    out["foldin_skals"] = {"time": fold["skals"][0], "equal_rows": equal, "n_rows": n}
    out["foldin_implicit"] = {"time": fold["implicit"][0], "n_rows": n}
    return {"time": 0.0, "parts": out}


# -------------------------------------------------------- 4. grid search
GRID = {
    "confidenceencoder__cart_weight": [5, 10, 20],
    "implicitalsrecommender__factors": [16, 32, 64],
    "implicitalsrecommender__regularization": [0.01, 0.1, 1.0],
}


def grid(scale, variant, iterations=5, n_splits=3):
    """GridSearchCV over the whole pipeline, or the bare ALS fits it holds."""
    from implicit.cpu.als import AlternatingLeastSquares
    from sklearn.model_selection import GridSearchCV, ParameterGrid
    from sklearn.pipeline import make_pipeline
    from threadpoolctl import threadpool_limits

    from skals import FrameCache, ImplicitALSRecommender
    from skals.metrics import make_session_scorer
    from skals.model_selection import SessionHoldoutSplit

    train, _ = ensure(scale)
    events = pl.read_parquet(train)
    # test folds the size of the challenge's test set
    cv = SessionHoldoutSplit(n_splits=n_splits, test_size=N_TEST)
    rss_loaded = rss_now()
    if variant.startswith("skals"):
        # the preprocessing is shared through an explicit FrameCache
        memory = None if variant == "skals_nocache" else FrameCache()
        pre = _skals_preprocessing()
        pipe = make_pipeline(
            *[step for _, step in pre.steps],
            ImplicitALSRecommender(iterations=iterations, random_state=SEED),
            memory=memory,
        )
        search = GridSearchCV(
            pipe, GRID, scoring=make_session_scorer("ndcg"), cv=cv, refit=False
        )
        seconds, _ = timed(lambda: search.fit(events))
        res = search.cv_results_
        scores = res["mean_test_score"]
        return {
            "time": seconds,
            "rss_loaded": rss_loaded,
            "best": float(scores.max()),
            "n_fits": len(scores) * n_splits,
            # where the time went: pipeline fits (preprocessing included),
            # scoring of the held-out sessions, and the cache's hits/misses
            "fit_s": float(res["mean_fit_time"].sum() * n_splits),
            "score_s": float(res["mean_score_time"].sum() * n_splits),
            "cache": None if memory is None else [memory.hits, memory.misses],
        }
    # the bare fits: implicit on each fold's matrix (built outside the clock)
    total = 0.0
    n_fits = 0
    for train_idx, _ in cv.split(events):
        fold = events[train_idx]
        for weight in GRID["confidenceencoder__cart_weight"]:
            pre = _skals_preprocessing().set_params(
                confidenceencoder__cart_weight=weight
            )
            matrix = pre.fit_transform(fold).matrix
            for params in ParameterGrid(
                {k: v for k, v in GRID.items() if "implicit" in k}
            ):
                with threadpool_limits(1, "blas"):
                    model = AlternatingLeastSquares(
                        factors=params["implicitalsrecommender__factors"],
                        regularization=params["implicitalsrecommender__regularization"],
                        iterations=iterations,
                        random_state=SEED,
                        dtype=np.float32,
                    )
                    t0 = time.perf_counter()
                    model.fit(matrix, show_progress=False)
                    seconds = time.perf_counter() - t0
                total += seconds
                n_fits += 1
    return {"time": total, "rss_loaded": rss_loaded, "n_fits": n_fits}


# -------------------------------------------------------- 5. end to end
def e2e(scale, variant="eager", iterations=15):
    """Read, fit the whole pipeline, answer the 7,300 test sessions."""
    from sklearn.pipeline import make_pipeline

    from skals import (
        ConfidenceEncoder,
        ImplicitALSRecommender,
        InteractionMatrixBuilder,
        PseudoUserUnifier,
    )

    train, test = ensure(scale)
    rss_start = rss_now()
    t0 = time.perf_counter()
    events = pl.scan_parquet(train) if variant == "scan" else pl.read_parquet(train)
    pipe = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        ImplicitALSRecommender(
            factors=FACTORS, iterations=iterations, random_state=SEED
        ),
    )
    pipe.fit(events)
    t1 = time.perf_counter()
    answers = pipe.predict(pl.read_parquet(test))
    t2 = time.perf_counter()
    return {
        "time": t2 - t0,
        "fit_time": t1 - t0,
        "predict_time": t2 - t1,
        "rss_loaded": rss_start,
        "n_answers": answers.height,
        "n_users": int(pipe[-1].user_factors_.shape[0]),
        "nnz": int(pipe[-1].user_items_.nnz),
    }


TASKS = {
    "prep": prep,
    "artifacts": artifacts,
    "fit": fit,
    "recommend": recommend,
    "grid": grid,
    "e2e": e2e,
}


def main(argv):
    name, scale, options = argv[0], argv[1], json.loads(argv[2] if argv[2:] else "{}")
    result = TASKS[name](scale, **options)
    result["maxrss"] = maxrss()
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
