"""The moonshot harness (issue 15): a 27-candidate search, exhaustive vs levers.

Usage::

    python benchmarks/tuning.py --scale grid [--variants exhaustive,halving]
        [--iterations 15] [--n-splits 3] [--columns all|schema]

The grid is the demo's (``--grid cli``: the command line's ``DEFAULT_GRID``,
cart weight x factors x regularization, 27 candidates; ``--grid 0.1.0``: the
demo grid of skals 0.1.0, measured in BENCHMARKS.md), on the pipeline of the
command line (session grain), scored by ``make_session_scorer("ndcg")`` (first 3 events
revealed, NDCG@5 on carts) on ``SessionHoldoutSplit(n_splits, test_size=7300)``
folds, ``refit=False``. Each variant runs in its own subprocess (its peak
resident memory, ``ru_maxrss``, is its own) and prints the wall time of the
search, its pick, and the score of the pick on the held-out sessions.

"score of the pick" is the exhaustive search's mean NDCG@5 of that candidate
over the folds, at full resources (same folds, seed and data: the last rung
of a halving search fits exactly the models that the exhaustive search
fits), so a lever's pick is compared with the exhaustive pick on the same
held-out sessions. Without an exhaustive run, a variant's own last-rung score
of its pick is given instead.

``--columns schema`` (the default) loads only the columns the pipeline
reads (the schema's: session, user, item, cart, time), as the command
line's ``skals tune`` does; ``all`` loads every column of the log (4 more
here), as the measurements in BENCHMARKS.md before 2026-12-03 did.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
# this checkout's skals (not another installed one), then the helpers
sys.path[:0] = [str(HERE.parent), str(HERE)]
from _data import CACHE, N_TEST, ensure  # noqa: E402
from _tasks import maxrss, rss_now  # noqa: E402

GB = 1024**3
SEED = 0
#: sessions per held-out block: the challenge's test set (smaller when tiny)
TEST_SIZE = N_TEST
#: short names of the command line's grid -> pipeline parameters
FULL_NAMES = {
    "factors": "implicitalsrecommender__factors",
    "regularization": "implicitalsrecommender__regularization",
    "cart_weight": "confidenceencoder__cart_weight",
}


#: the demo's grid of skals 0.1.0 (the one measured in BENCHMARKS.md)
GRID_010 = {
    "factors": [32, 64, 128],
    "regularization": [0.1, 10.0, 100.0],
    "cart_weight": [10.0, 30.0, 100.0],
}
#: "cli": the command line's current DEFAULT_GRID; "0.1.0": GRID_010
GRID = "cli"
#: "schema": the pipeline's columns (as the CLI reads); "all": every column
COLUMNS = "schema"


def demo_grid() -> dict:
    """The demo's grid (``--grid``), with pipeline names."""
    if GRID == "0.1.0":
        grid = GRID_010
    else:
        from skals.cli._options import DEFAULT_GRID as grid
    return {FULL_NAMES[k]: list(v) for k, v in grid.items()}


def pipeline(iterations: int, **als):
    """The command line's pipeline (session grain), seeded.

    Preprocessing is shared across candidates and folds through an explicit
    ``FrameCache`` (``Pipeline(memory=...)``), as in the grid benchmark.
    """
    from sklearn.pipeline import make_pipeline

    from skals import (
        ConfidenceEncoder,
        FrameCache,
        ImplicitALSRecommender,
        InteractionMatrixBuilder,
        PseudoUserUnifier,
    )

    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        ImplicitALSRecommender(iterations=iterations, random_state=SEED, **als),
        memory=FrameCache(),
    )


#: the sweeps of every fitted candidate, as the scorer sees them (n_jobs=1)
SWEEPS: list = []


def _recording(scorer):
    """``scorer``, noting the sweeps (``n_iter_``) of each model it scores."""

    def score(estimator, X, y=None):
        SWEEPS.append(int(getattr(estimator, "n_iter_", 0) or 0))
        return scorer(estimator, X, y)

    return score


def _common(n_splits):
    from skals.metrics import make_session_scorer
    from skals.model_selection import SessionHoldoutSplit

    return {
        "cv": SessionHoldoutSplit(n_splits=n_splits, test_size=TEST_SIZE),
        "scoring": _recording(make_session_scorer("ndcg")),
        "refit": False,
        "error_score": "raise",
    }


# ------------------------------------------------------------------ variants
def exhaustive(iterations, n_splits):
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(pipeline(iterations), demo_grid(), **_common(n_splits))


def halving(iterations, n_splits, factor=3):
    """Successive halving over whole sessions (factor 3: 27 -> 9 -> 3 -> 1)."""
    from skals.model_selection import SessionHalvingGridSearchCV

    return SessionHalvingGridSearchCV(
        pipeline(iterations),
        demo_grid(),
        factor=factor,
        random_state=SEED,
        **_common(n_splits),
    )


def halving_iterations(iterations, n_splits, factor=3):
    """scikit-learn's halving over sweeps (1, 3, 9, ...), warm-started.

    ``FactorCheckpoints`` lets each rung continue the previous rung's
    factors (identical to fits from scratch).
    """
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    from skals.recommender import FactorCheckpoints

    pipe = pipeline(iterations, warm_start=FactorCheckpoints(max_bytes=8 * GB))
    return HalvingGridSearchCV(
        pipe,
        demo_grid(),
        factor=factor,
        resource="implicitalsrecommender__iterations",
        max_resources=iterations,
        random_state=SEED,
        return_train_score=False,
        **_common(n_splits),
    )


def early_stopping(iterations, n_splits):
    """Exhaustive, each candidate stopped early (as in ``halving_early``)."""
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(_early(iterations), demo_grid(), **_common(n_splits))


#: share of each fit's training sessions that early stopping holds out
VALIDATION_FRACTION = 0.02
#: EarlyStoppingPipeline(keep_best=...) of the early-stopped variants
KEEP_BEST = "disk"


def _early(iterations):
    """The pipeline, each fit stopped early (2% of its sessions held out).

    The best stage's factors wait on disk while later stages sweep
    (``keep_best="disk"``: one set of factors in memory, the same model),
    where the measured skals has the parameter (``es_memory.py --tree``
    measures older ones).
    """
    from skals.model_selection import EarlyStoppingPipeline

    plain = pipeline(iterations)
    pipe = EarlyStoppingPipeline(
        plain.steps,
        validation_fraction=VALIDATION_FRACTION,
        n_iter_no_change=2,
        random_state=SEED,
        memory=plain.memory,
    )
    if "keep_best" in pipe.get_params(deep=False):
        pipe.set_params(keep_best=KEEP_BEST)
    return pipe


def halving_early(iterations, n_splits, factor=3):
    """The moonshot: session halving, each fit stopped early.

    Every candidate's fit holds out 2% of its training sessions, scores
    NDCG@5 on them after each sweep and keeps the best sweep (at most
    ``iterations``, stopping after 2 sweeps without improvement); the
    transformers' work is shared through the pipeline's ``FrameCache``.
    """
    from skals.model_selection import SessionHalvingGridSearchCV

    pipe = _early(iterations)
    return SessionHalvingGridSearchCV(
        pipe, demo_grid(), factor=factor, random_state=SEED, **_common(n_splits)
    )


VARIANTS = {
    "exhaustive": exhaustive,
    "halving": halving,
    "halving_iterations": halving_iterations,
    "early_stopping": early_stopping,
    "halving_early": halving_early,
}


# -------------------------------------------------------------------- worker
def read_log(path):
    """The training log: every column, or the schema's only (``COLUMNS``)."""
    from skals import Schema

    columns = None if COLUMNS == "all" else Schema().columns()
    return pl.read_parquet(path, columns=columns)


def _key(params: dict) -> str:
    """A candidate's short parameters (without a halving resource)."""
    short = {k.split("__")[-1]: v for k, v in sorted(params.items())}
    short.pop("iterations", None)
    return json.dumps(short)


def worker(variant, scale, iterations, n_splits):
    global TEST_SIZE
    if scale == "tiny":
        TEST_SIZE = 1000
    train, _ = ensure(scale)
    events = read_log(train)
    rss_loaded = rss_now()
    search = VARIANTS[variant](iterations, n_splits)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # held-out sessions view items training never saw: expected
        warnings.filterwarnings("ignore", "InteractionMatrixBuilder: dropped")
        search.fit(events)
    seconds = time.perf_counter() - t0
    res = search.cv_results_
    n = len(res["params"])
    rows = []
    for i in range(n):
        rows.append(
            {
                "params": _key(res["params"][i]),
                "score": float(res["mean_test_score"][i]),
                "fit_time": float(res["mean_fit_time"][i]),
                "score_time": float(res["mean_score_time"][i]),
                "iter": int(res["iter"][i]) if "iter" in res else 0,
                "n_resources": int(res["n_resources"][i])
                if "n_resources" in res
                else 0,
                **{
                    k: res[k][i]
                    for k in ("n_iter",)
                    if k in res  # early stopping, when the variant keeps it
                },
            }
        )
    last = max(r["iter"] for r in rows)
    final = [r for r in rows if r["iter"] == last]
    pick = max(final, key=lambda r: r["score"])
    return {
        "variant": variant,
        "time": seconds,
        "n_fits": n * n_splits,
        "n_events": events.height,
        "pick": pick["params"],
        "pick_own_score": pick["score"],
        "n_resources": getattr(search, "n_resources_", None),
        "n_candidates": getattr(search, "n_candidates_", None),
        "rows": rows,
        "sweeps": SWEEPS,
        "rss_loaded": rss_loaded,
    }


# -------------------------------------------------------------------- levers
def levers(scale, iterations):
    """Warm start and early stopping, each on its own, on the first fold.

    One candidate (the pipeline's defaults: 64 factors), the training events
    of the first ``SessionHoldoutSplit`` fold, its 7,300 test sessions for
    NDCG@5.
    """
    from sklearn.base import clone

    from skals.metrics import make_session_scorer
    from skals.model_selection import EarlyStoppingPipeline, SessionHoldoutSplit
    from skals.recommender import FactorCheckpoints

    global TEST_SIZE
    if scale == "tiny":
        TEST_SIZE = 1000
    train_path, _ = ensure(scale)
    events = pl.read_parquet(train_path)
    cv = SessionHoldoutSplit(n_splits=3, test_size=TEST_SIZE)
    train_idx, test_idx = next(cv.split(events))
    train, test = events[train_idx], events[test_idx]
    scorer = make_session_scorer("ndcg")
    out = {}
    im = pipeline(1)[:-1].fit_transform(train)
    # 1. warm start: the sweeps 1 -> 3 -> 9 (an iteration-halving path)
    path = [1, 3, 9]
    base = pipeline(1)[-1]
    t0 = time.perf_counter()
    for n in path:
        cold = clone(base).set_params(iterations=n).fit(im)
    t_cold = time.perf_counter() - t0
    store = FactorCheckpoints()
    t0 = time.perf_counter()
    for n in path:
        warm = clone(base).set_params(iterations=n, warm_start=store).fit(im)
    t_warm = time.perf_counter() - t0
    out["warm_start"] = {
        "path": path,
        "cold_s": t_cold,
        "warm_s": t_warm,
        "identical": bool(
            np.array_equal(cold.user_factors_, warm.user_factors_)
            and np.array_equal(cold.item_factors_, warm.item_factors_)
        ),
    }
    # 2. early stopping vs a fixed number of sweeps
    fixed = pipeline(iterations)
    t0 = time.perf_counter()
    fixed.fit(train)
    t_fixed = time.perf_counter() - t0
    early = EarlyStoppingPipeline(
        pipeline(iterations).steps,
        validation_fraction=TEST_SIZE,
        n_iter_no_change=2,
        tol=1e-4,
        random_state=SEED,
    )
    t0 = time.perf_counter()
    early.fit(train)
    t_early = time.perf_counter() - t0
    out["early_stopping"] = {
        "max_iterations": iterations,
        "fixed_s": t_fixed,
        "early_s": t_early,
        "n_iter": int(early.n_iter_),
        "validation_scores": early.validation_scores_.round(5).tolist(),
        "ndcg_fixed": float(scorer(fixed, test)),
        "ndcg_early": float(scorer(early, test)),
    }
    return out


def sweep_costs(scale, sweeps=3, rounds=2):
    """Seconds per ALS sweep at each factors value of the grid (alternating)."""
    from skals import ImplicitALSRecommender

    events = pl.read_parquet(ensure(scale)[0])
    t0 = time.perf_counter()
    im = pipeline(1)[:-1].fit_transform(events)
    out = {"preprocessing_s": time.perf_counter() - t0, "nnz": int(im.nnz)}
    grid = demo_grid()["implicitalsrecommender__factors"]
    times = {f: [] for f in grid}
    for _ in range(rounds):
        for f in grid:
            model = ImplicitALSRecommender(factors=f, iterations=sweeps, random_state=0)
            t0 = time.perf_counter()
            model.fit(im)
            times[f].append((time.perf_counter() - t0) / sweeps)
    out["per_sweep_s"] = {f: float(np.median(t)) for f, t in times.items()}
    ref = out["per_sweep_s"].get(64)
    if ref:
        out["vs_64"] = {f: t / ref for f, t in out["per_sweep_s"].items()}
    return out


# ---------------------------------------------------------------------- main
def command(variant, scale, iterations, n_splits) -> list:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--grid",
        GRID,
        "--columns",
        COLUMNS,
        "--worker",
        variant,
        "--scale",
        scale,
        "--iterations",
        str(iterations),
        "--n-splits",
        str(n_splits),
    ]


def collect(variant, proc) -> dict:
    out, err = proc.communicate()
    lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(err[-3000:])
        raise RuntimeError(f"{variant} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len("RESULT ") :])


def start(variant, scale, iterations, n_splits):
    return subprocess.Popen(
        command(variant, scale, iterations, n_splits),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def table(results: dict, ref=None) -> str:
    ref = results.get("exhaustive", ref)
    ref_scores = {r["params"]: r["score"] for r in ref["rows"]} if ref else {}
    best = max(ref_scores.values()) if ref_scores else None
    out = [
        "| variant | wall s | fits | vs exhaustive time | pick | NDCG@5 of pick "
        "(exhaustive table) | vs exhaustive pick | peak RSS GB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        score = ref_scores.get(r["pick"], r["pick_own_score"])
        rel = f"{score / best - 1:+.2%}" if best else "-"
        speed = f"{ref['time'] / r['time']:.2f}x faster" if ref else "-"
        out.append(
            f"| {name} | {r['time']:.1f} | {r['n_fits']} | {speed} | {r['pick']} | "
            f"{score:.4f} | {rel} | {r['maxrss'] / GB:.2f} |"
        )
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="grid")
    p.add_argument("--variants", default="exhaustive,halving")
    p.add_argument("--iterations", type=int, default=15)
    p.add_argument("--n-splits", type=int, default=3)
    p.add_argument(
        "--parallel",
        action="store_true",
        help="run the variants at the same time (each in its own process)",
    )
    p.add_argument(
        "--levers",
        action="store_true",
        help="measure warm start and early stopping on one candidate instead",
    )
    p.add_argument(
        "--sweep-costs",
        action="store_true",
        help="measure seconds per ALS sweep for each factors value instead",
    )
    p.add_argument("--grid", choices=["cli", "0.1.0"], default="cli")
    p.add_argument("--columns", choices=["all", "schema"], default="schema")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    global GRID, COLUMNS
    GRID, COLUMNS = args.grid, args.columns
    if args.levers or args.sweep_costs:
        t0 = time.perf_counter()
        if args.sweep_costs:
            result = sweep_costs(args.scale)
        else:
            result = levers(args.scale, args.iterations)
        print(json.dumps(result, indent=1))
        print(f"levers: {time.perf_counter() - t0:.0f}s, peak {maxrss() / GB:.2f} GB")
        return
    if args.worker:
        result = worker(args.worker, args.scale, args.iterations, args.n_splits)
        result["maxrss"] = maxrss()
        print("RESULT " + json.dumps(result), flush=True)
        return
    ensure(args.scale)
    print(f"grid: {demo_grid()}", flush=True)
    results = {}
    names = args.variants.split(",")
    running = {}
    t0 = time.perf_counter()
    for v in names:
        running[v] = start(v, args.scale, args.iterations, args.n_splits)
        if not args.parallel:
            results[v] = collect(v, running.pop(v))
    for v in names:
        if v in running:
            results[v] = collect(v, running.pop(v))
        r = results[v]
        print(
            f"  {v:12s} {r['time']:8.1f}s search ({time.perf_counter() - t0:.0f}s "
            f"since start) pick {r['pick']} own score {r['pick_own_score']:.4f} "
            f"peak {r['maxrss'] / GB:.2f} GB",
            flush=True,
        )
    tag = "" if GRID == "cli" else f"_grid{GRID}"
    path = CACHE / f"tuning_{args.scale}_{args.iterations}it{tag}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    # an earlier run's exhaustive search (same scale and sweeps) as reference
    print(table(results, old.get("exhaustive")))
    path.write_text(json.dumps({**old, **results}, indent=1))
    print(f"raw: {path}")


if __name__ == "__main__":
    main()
