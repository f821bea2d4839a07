"""Real click logs: YooChoose 100k, skals next to session-rec's own code.

Usage::

    python benchmarks/real_clicks.py GITDIR [--models vstan-hr,skals-knn]
        [--split test|valid] [--no-cache] [--list]

``GITDIR`` is a git directory of ``rn5l/session-rec`` (bare or not; for
example ``/work/.mirror/rn5l+session-rec/repo``). Nothing is copied into
this repository: the data files and session-rec's ``algorithms/`` and
``evaluation/`` are extracted with ``git archive`` to
``~/.cache/skals-bench/session-rec-<commit>/`` (``$SKALS_BENCH_CACHE``
overrides ``~/.cache/skals-bench``), and the peers' results are cached there
as JSON (``--no-cache`` recomputes them).

Data: ``data/rsc15/prepared/yoochoose-clicks-100k_{train_full,test}.txt``,
loaded by session-rec's own ``evaluation.loader.load_data_session`` (what its
``run_config.py`` uses): test sessions of one event are dropped. The
prepared test file already holds only items of the training file (session-rec's
preprocessing filtered it), so no test event is unknown to the models.
``--split valid`` uses session-rec's validation split of the same log
instead (``_train_tr`` for training, ``_train_valid`` as the test: its
loader's ``train_eval=True``, on which session-rec tunes), a second
measurement that the design choices made on the test split have not seen.

Protocols, on that test log:

(a) **next item** (session-rec's ``evaluation.evaluation.evaluate_sessions``
    with its ``accuracy.HitRate(20)`` and ``accuracy.MRR(20)``): every prefix
    of every test session, the next click the truth. skals' pipelines are
    scored with ``skals.metrics.make_next_item_scorer(k=20)``, the same
    protocol (all prefixes answered in one call).
(b) **rest of session**: the first 3 events revealed, every item of the
    remaining events relevant, NDCG@5 (sessions of 3 events or fewer have no
    truth and are skipped). skals: ``make_session_scorer("ndcg", k=5,
    n_revealed=3, relevance="rest")``; session-rec's models are fed the 3
    revealed clicks through ``predict_next`` and their top 5 after the third
    is scored with ``skals.metrics.ndcg_at_k``.

``ms/query`` is the wall time of answering, per next-item query (skals: the
whole scorer call, transformers included, over the number of prefixes;
session-rec: the time spent in ``predict_next``, which includes building its
pandas answer over every training item).

Compatibility shims for running session-rec (2019-2021 code) on a modern
stack, none of which touches a model's arithmetic: ``time.clock`` (removed
in Python 3.8) is ``time.perf_counter``; ``numpy.in1d`` (removed in numpy
2.4) is ``numpy.isin(...).ravel()``; ``pympler`` (imported by some
algorithms only for memory reports) is replaced by an empty stub when it is
not installed;
``Pop.predict_next`` takes no ``timestamp``, which ``evaluate_sessions``
passes, so it is not passed to models whose ``predict_next`` has none.

Importable: ``load_yoochoose(gitdir, split)``, ``evaluate_next_item(model, train,
test)``, ``evaluate_rest(model, train, test)``, ``PEERS`` and
``SKALS_MODELS`` (name -> factory).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import io
import json
import os
import subprocess
import sys
import tarfile
import time
import types
import warnings
from pathlib import Path

import numpy as np
import polars as pl

from skals import (
    BlendRecommender,
    PopularityRecommender,
    RerankRecommender,
    SequentialRulesRecommender,
    SessionKNNRecommender,
    SLISTRecommender,
)
from skals.metrics import make_next_item_scorer, make_session_scorer, ndcg_at_k
from skals.schema import Schema, make_recommender_pipeline

PREFIX = "yoochoose-clicks-100k"
DATA = "data/rsc15/prepared/"
#: The columns of session-rec's prepared files, as a skals schema (the log
#: has no carts and no users: ``add_to_cart`` is 0, ``user_id`` null).
SCHEMA = Schema(session="SessionId", item="ItemId", time="Time")

#: session-rec's models with the parameters of its configurations for this
#: set: ``conf/example_next.yml`` (the example run on yoochoose-clicks-100k:
#: AR, SR, SKNN, V-SKNN) and, for VSTAN, the two settings tuned on rsc15 in
#: ``conf/save/rsc15/single/single_rsc15_vstan.yml`` ("vstan-mrr" and
#: "vstan-hr"). Popularity is ``baselines.pop.Pop`` at its defaults.
PEERS = {
    "pop": ("algorithms.baselines.pop", "Pop", {}),
    "ar": ("algorithms.baselines.ar", "AssociationRules", {}),
    "sr": (
        "algorithms.baselines.sr",
        "SequentialRules",
        {"steps": 20, "weighting": "quadratic"},
    ),
    "sknn": (
        "algorithms.knn.sknn",
        "ContextKNN",
        {"k": 100, "sample_size": 500, "similarity": "cosine"},
    ),
    "vsknn": (
        "algorithms.knn.vsknn",
        "VMContextKNN",
        {
            "k": 500,
            "sample_size": 5000,
            "weighting": "quadratic",
            "weighting_score": "div",
            "idf_weighting": 5,
        },
    ),
    "vstan-mrr": (
        "algorithms.knn.vstan",
        "VSKNN_STAN",
        {
            "k": 1000,
            "sample_size": 5000,
            "similarity": "cosine",
            "lambda_spw": 4,
            "lambda_snh": 5,
            "lambda_inh": 4,
            "lambda_ipw": 0.00001,
            "lambda_idf": 1,
        },
    ),
    "vstan-hr": (
        "algorithms.knn.vstan",
        "VSKNN_STAN",
        {
            "k": 2000,
            "sample_size": 2500,
            "similarity": "vec",
            "lambda_spw": 8,
            "lambda_snh": 10,
            "lambda_inh": 8,
            "lambda_ipw": 0.5,
            "lambda_idf": 2,
        },
    ),
}


#: session-rec's VSTAN "hr" setting for rsc15 in skals' names (the
#: skals-stan-hr row; benchmarks/session_quality.py uses it too).
STAN_HR = {
    "n_neighbors": 2000,
    "sample_size": 2500,
    "similarity": "cosine",
    "weighting": 8.0,
    "recency_decay": 10.0,
    "neighbor_position_decay": 8.0,
    "weighting_score": 0.5,
    "idf_weighting": 2.0,
}


def _knn(**params):
    return lambda: make_recommender_pipeline(
        SessionKNNRecommender(**params), schema=SCHEMA
    )


def _grid_search(model, grid, refit, n_splits):
    """``GridSearchCV`` of ``model`` on the training log, next-item scored.

    ``grid`` over the pipeline's parameters, ``n_splits`` session-holdout
    folds, refit on the ``refit`` metric of the k=20 next-item scorer.
    """
    from sklearn.model_selection import GridSearchCV

    from skals.model_selection import SessionHoldoutSplit

    return GridSearchCV(
        model,
        grid,
        scoring=make_next_item_scorer(k=20, schema=SCHEMA),
        refit=refit,
        cv=SessionHoldoutSplit(n_splits=n_splits, schema=SCHEMA),
    )


def _tuned_knn():
    """skals kNN tuned by its own GridSearchCV and next-item scorer.

    From VSTAN's weights (the ``skals-stan-hr`` row), 2 x 2 candidates on the
    training log, 2 session-holdout folds, refit on HR@20.
    """
    grid = {
        "sessionknnrecommender__n_neighbors": [500, 2000],
        "sessionknnrecommender__weighting_score": [0.5, 1.0],
    }
    return _grid_search(SKALS_MODELS["skals-stan-hr"](), grid, "hit_rate@20", 2)


def _rerank(seed=0):
    """The recommended model as a user builds it, ``random_state=seed``."""
    return make_recommender_pipeline(
        RerankRecommender(random_state=seed), schema=SCHEMA
    )


def _tuned_rerank(seed=0):
    """skals' reranker tuned by its own GridSearchCV and next-item scorer.

    2 x 2 candidates (folds, negatives a query) on the training log, one
    session-holdout fold, refit on MRR@20; ``seed``: the reranker's
    ``random_state``.
    """
    grid = {
        "rerankrecommender__n_folds": [3, 5],
        "rerankrecommender__max_negatives": [20, 50],
    }
    return _grid_search(_rerank(seed), grid, "mrr@20", 1)


#: skals' models as a user builds them: ``make_recommender_pipeline`` with the
#: log's ``Schema``. Each value is a factory of an unfitted estimator.
SKALS_MODELS = {
    "skals-pop": lambda: make_recommender_pipeline(
        PopularityRecommender(), schema=SCHEMA
    ),
    "skals-knn": _knn(),
    # session-rec's two VSTAN settings in skals' names (session-rec's VSTAN
    # computes cosine whatever its ``similarity``; lambda_ipw is
    # weighting_score, lambda_spw weighting, lambda_snh recency_decay,
    # lambda_inh neighbor_position_decay, lambda_idf idf_weighting)
    "skals-stan-mrr": _knn(
        n_neighbors=1000,
        sample_size=5000,
        similarity="cosine",
        weighting=4.0,
        recency_decay=5.0,
        neighbor_position_decay=4.0,
        weighting_score=0.00001,
        idf_weighting=1.0,
    ),
    "skals-stan-hr": _knn(**STAN_HR),
    "skals-knn-tuned": _tuned_knn,
    # the other session models at their defaults, and the recommended one
    "skals-sr": lambda: make_recommender_pipeline(
        SequentialRulesRecommender(), schema=SCHEMA
    ),
    "skals-slist": lambda: make_recommender_pipeline(SLISTRecommender(), schema=SCHEMA),
    "skals-blend": lambda: make_recommender_pipeline(
        BlendRecommender(random_state=0), schema=SCHEMA
    ),
    "skals-rerank": _rerank,
    # the same at two other seeds (the ranker's early-stopping split)
    **{f"skals-rerank-rs{seed}": (lambda seed=seed: _rerank(seed)) for seed in (1, 2)},
    "skals-rerank-tuned": _tuned_rerank,
    **{
        f"skals-rerank-tuned-rs{seed}": (lambda seed=seed: _tuned_rerank(seed))
        for seed in (1, 2)
    },
}


# ---------------------------------------------------------------- data
def cache_root() -> Path:
    return Path(os.environ.get("SKALS_BENCH_CACHE", Path.home() / ".cache/skals-bench"))


def _git(gitdir, *args) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(gitdir), *args], check=True, capture_output=True
    ).stdout


def session_rec_dir(gitdir) -> Path:
    """session-rec's code and this set's files, extracted outside the tree."""
    commit = _git(gitdir, "rev-parse", "HEAD").decode().strip()
    root = cache_root() / f"session-rec-{commit[:12]}"
    done = root / ".extracted-with-valid"
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        paths = ["algorithms", "evaluation"] + [
            f"{DATA}{PREFIX}_{part}.txt"
            for part in ("train_full", "test", "train_tr", "train_valid")
        ]
        archive = _git(gitdir, "archive", "--format=tar", "HEAD", *paths)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        done.write_text(commit)
    return root


def _shim(root: Path) -> None:
    if not hasattr(time, "clock"):
        time.clock = time.perf_counter
    # numpy names session-rec calls that numpy 2.4 removed: same semantics
    removed = {"in1d": lambda a, b, **kw: np.isin(a, b, **kw).ravel()}
    for name, replacement in removed.items():
        if not hasattr(np, name):
            setattr(np, name, replacement)
    try:
        import pympler  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pympler")
        stub.asizeof = types.SimpleNamespace(asizeof=lambda *a, **k: 0)
        sys.modules["pympler"] = stub
        sys.modules["pympler.asizeof"] = stub.asizeof
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def load_pandas(gitdir, split="test"):
    """(train, test) pandas frames as session-rec's ``run_config.py`` loads them.

    ``evaluation.loader.load_data_session``: the files as they are (sorted by
    session and time), test sessions of one event dropped. (Its other loader,
    ``load_data``, sorts the training events by session and *item* id, which
    scrambles the order the sequential models learn from.) ``split="valid"``:
    its validation split (``train_eval=True``).
    """
    root = session_rec_dir(gitdir)
    _shim(root)
    loader = importlib.import_module("evaluation.loader")
    with _quiet():
        return loader.load_data_session(
            str(root / DATA) + "/", PREFIX, train_eval=split == "valid"
        )


def load_yoochoose(gitdir, split="test"):
    """(train, test) polars frames, session-rec's columns and two constants.

    ``SessionId``, ``ItemId``, ``Time`` (a datetime, microseconds), and
    ``user_id`` (null) and ``add_to_cart`` (0), which the pipeline needs.

    As session-rec's loader gives them (:func:`load_pandas`).
    """
    train, test = load_pandas(gitdir, split)

    def conv(df):
        return pl.from_pandas(df.reset_index(drop=True)).with_columns(
            (pl.col("Time") * 1e6).cast(pl.Int64).cast(pl.Datetime("us")),
            # every click is anonymous: the pipeline's unifier needs the column
            pl.lit(None, dtype=pl.String).alias("user_id"),
            # clicks only: the encoder needs the cart column
            pl.lit(0, dtype=pl.Int8).alias("add_to_cart"),
        )

    return conv(train), conv(test)


class _quiet:
    def __enter__(self):
        self._out = sys.stdout
        sys.stdout = io.StringIO()

    def __exit__(self, *exc):
        sys.stdout = self._out


# ----------------------------------------------------------- protocols
def _is_session_rec(model) -> bool:
    return hasattr(model, "predict_next")


def _to_pandas(df: pl.DataFrame):
    return df.with_columns(pl.col("Time").dt.epoch("us") / 1e6).to_pandas()


def evaluate_next_item(model, train, test, k=20):
    """{"hr@20", "mrr@20", "ms_per_query", "n"} of a model on protocol (a).

    ``model``: an unfitted skals pipeline (fitted here on ``train``), a
    session-rec model (``fit`` / ``predict_next``: evaluated by session-rec's
    ``evaluate_sessions``), or a callable ``train -> fitted model`` of
    either kind.
    """
    model = _prepare(model, train)
    if _is_session_rec(model):
        evaluation = importlib.import_module("evaluation.evaluation")
        accuracy = importlib.import_module("evaluation.metrics.accuracy")
        spent = [0.0, 0]
        predict = model.predict_next

        takes_time = "timestamp" in inspect.signature(predict).parameters

        def timed(*a, **kw):
            if not takes_time:  # Pop's predict_next has no timestamp
                kw.pop("timestamp", None)
            t0 = time.perf_counter()
            out = predict(*a, **kw)
            spent[0] += time.perf_counter() - t0
            spent[1] += 1
            return out

        model.predict_next = timed
        metrics = [accuracy.HitRate(k), accuracy.MRR(k)]
        with _quiet():
            res = evaluation.evaluate_sessions(
                model, metrics, _to_pandas(test), _to_pandas(train)
            )
        model.predict_next = predict
        return {
            f"hr@{k}": float(res[0][1]),
            f"mrr@{k}": float(res[1][1]),
            "ms_per_query": 1000 * spent[0] / max(spent[1], 1),
            "n": spent[1],
        }
    scorer = make_next_item_scorer(k=k, schema=SCHEMA)
    t0 = time.perf_counter()
    per = scorer.details(model, test)
    spent = time.perf_counter() - t0
    return {
        f"hr@{k}": float(per[f"hit_rate@{k}"].mean()),
        f"mrr@{k}": float(per[f"mrr@{k}"].mean()),
        "ms_per_query": 1000 * spent / per.height,
        "n": per.height,
    }


def evaluate_rest(model, train, test, k=5, n_revealed=3):
    """NDCG@5 of protocol (b): ``n_revealed`` events revealed, rest as truth.

    ``model`` as in :func:`evaluate_next_item`, fitted (skals pipelines
    are refitted on ``train``).
    """
    model = _prepare(model, train)
    if not _is_session_rec(model):
        scorer = make_session_scorer(
            "ndcg", k=k, n_revealed=n_revealed, relevance="rest", schema=SCHEMA
        )
        return {f"ndcg@{k}": float(scorer(model, test))}
    takes_time = "timestamp" in inspect.signature(model.predict_next).parameters
    items = train["ItemId"].unique().to_numpy()
    truth, answers = [], []
    ordered = test.sort("SessionId", "Time")
    for sid, part in ordered.group_by("SessionId", maintain_order=True):
        seq = part["ItemId"].to_list()
        times = part["Time"].dt.epoch("us").to_numpy() / 1e6
        if len(seq) <= n_revealed:
            continue
        for i in range(n_revealed):
            kw = {"timestamp": times[i]} if takes_time else {}
            preds = model.predict_next(sid[0], seq[i], items, **kw)
        preds[np.isnan(preds)] = 0
        preds = preds.sort_values(ascending=False)
        answers.append(list(preds.index[:k]))
        truth.append(set(seq[n_revealed:]))
    return {f"ndcg@{k}": float(ndcg_at_k(truth, answers, k=k))}


def _prepare(model, train):
    """``model`` fitted on ``train`` unless it is already."""
    if callable(model) and not hasattr(model, "fit"):
        return model(train)
    if _is_session_rec(model):
        if not getattr(model, "_skals_fitted", False):
            model.fit(_to_pandas(train))
            model._skals_fitted = True
    elif not _fitted(model):
        model.fit(train)
    return model


def _fitted(est) -> bool:
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
        return True
    except Exception:
        return False


def make_peer(name):
    module, cls, params = PEERS[name]
    return getattr(importlib.import_module(module), cls)(**params)


# ----------------------------------------------------------------- main
def run_peer(name, train, test, use_cache=True, split="test"):
    root = cache_root()
    key = [name, PEERS[name]] + ([] if split == "test" else [split])
    key = json.dumps(key, sort_keys=True)
    path = root / "real_clicks_peers.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    if use_cache and key in cache:
        return cache[key]
    model = make_peer(name)
    t0 = time.perf_counter()
    out = evaluate_next_item(model, train, test)
    out["seconds_a"] = time.perf_counter() - t0
    # protocol (b) on a fresh model: session-rec's models keep session state
    model = make_peer(name)
    out.update(evaluate_rest(model, train, test))
    cache[key] = out
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cache, indent=1))
    return out


def run_skals(name, train, test):
    model = SKALS_MODELS[name]()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(train)
        fit_s = time.perf_counter() - t0
        if hasattr(model, "best_params_"):
            print(f"  {name}: best {model.best_params_}")
            model = model.best_estimator_
        out = evaluate_next_item(model, train, test)
        out.update(evaluate_rest(model, train, test))
    out["fit_s"] = fit_s
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("gitdir", help="git directory of rn5l/session-rec")
    names = list(PEERS) + list(SKALS_MODELS)
    parser.add_argument("--models", default=",".join(names))
    parser.add_argument("--split", choices=["test", "valid"], default="test")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(names))
        return
    chosen = [m for m in args.models.split(",") if m]
    unknown = [m for m in chosen if m not in names]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {names}")
    train, test = load_yoochoose(args.gitdir, args.split)
    print(
        f"YooChoose 100k ({args.split} split): train {train.height} events "
        f"{train['SessionId'].n_unique()} sessions, test {test.height} events "
        f"{test['SessionId'].n_unique()} sessions (session-rec's loader)"
    )
    rows = []
    for name in chosen:
        t0 = time.perf_counter()
        if name in PEERS:
            res = run_peer(name, train, test, not args.no_cache, args.split)
            who = "session-rec"
        else:
            res = run_skals(name, train, test)
            who = "skals"
        rows.append((name, who, res))
        print(
            f"  {name:<18} HR@20 {res['hr@20']:.4f} MRR@20 {res['mrr@20']:.4f} "
            f"NDCG@5 {res['ndcg@5']:.4f} {res['ms_per_query']:.3f} ms/query "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    print("\n| model | code | HR@20 | MRR@20 | NDCG@5 (3 revealed, rest) | ms/query |")
    print("|---|---|---|---|---|---|")
    for name, who, res in rows:
        print(
            f"| {name} | {who} | {res['hr@20']:.4f} | {res['mrr@20']:.4f} "
            f"| {res['ndcg@5']:.4f} | {res['ms_per_query']:.3f} |"
        )


if __name__ == "__main__":
    main()
