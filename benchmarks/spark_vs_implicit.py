"""The two ALS engines on the same data and holdout: NDCG@5 and fit times.

Usage::

    python benchmarks/spark_vs_implicit.py [--n-sessions 50000] [--seed 0]
        [--master local[2]] [--factors 64] [--iterations 15]

On ``make_sessions`` data, the last 20% of sessions (by start time) are held
out whole (``SessionHoldoutSplit``) and scored challenge-style
(``make_session_scorer("ndcg")``: 3 events revealed, relevance = cart adds).
Each engine is fitted at a small sweep of ``regularization`` values, on its
own scale: implicit's is a plain L2 penalty, Spark's is multiplied by each
user's and item's number of entries (ALS-WR), so Spark's useful values are
far smaller. The sweep is scored on the holdout itself: the "best" rows are
each engine's best of four, not a tuned-on-validation estimate.

- ``implicit``: the local pipeline on the polars log.
- ``spark``: the whole pipeline on a Spark DataFrame of the log (unifier,
  encoder and builder as Spark jobs, Spark MLlib's ALS), on a local Spark
  (``--master``); the log is cached in Spark before timing.

Fit times are wall-clock seconds of ``pipeline.fit`` on this machine.
"""

from __future__ import annotations

import argparse
import time
import warnings

from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    SessionHoldoutSplit,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.spark import SparkALSRecommender

IMPLICIT_REGULARIZATION = [0.05, 0.5, 5.0, 50.0]
SPARK_REGULARIZATION = [0.02, 0.1, 0.5, 2.0]


def pipeline(estimator):
    return make_pipeline(
        PseudoUserUnifier(), ConfidenceEncoder(), InteractionMatrixBuilder(), estimator
    )


def run(pipe, train, test, scorer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # items unseen in training
        start = time.perf_counter()
        pipe.fit(train)
        seconds = time.perf_counter() - start
        return scorer(pipe, test), seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sessions", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(args.master)
        .appName("skals-benchmark")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    events = make_sessions(args.n_sessions, random_state=args.seed)
    train_idx, test_idx = next(
        SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events)
    )
    train, test = events[train_idx], events[test_idx]
    spark_train = spark.createDataFrame(train.to_arrow()).cache()
    spark_train.count()
    scorer = make_session_scorer("ndcg")
    print(
        f"make_sessions({args.n_sessions}, random_state={args.seed}): "
        f"{train.height} training events, {test['session_id'].n_unique()} "
        f"held-out sessions; factors={args.factors}, "
        f"iterations={args.iterations}, Spark master {args.master}\n"
    )

    rows = []
    ndcg, seconds = run(pipeline(PopularityRecommender()), train, test, scorer)
    rows.append(("popularity", "-", ndcg, seconds))
    params = {
        "factors": args.factors,
        "iterations": args.iterations,
        "random_state": args.seed,
    }
    for engine, grid, data in (
        ("implicit", IMPLICIT_REGULARIZATION, train),
        ("spark", SPARK_REGULARIZATION, spark_train),
    ):
        for reg in grid:
            cls = SparkALSRecommender if engine == "spark" else ImplicitALSRecommender
            model = cls(regularization=reg, **params)
            ndcg, seconds = run(pipeline(model), data, test, scorer)
            rows.append((engine, reg, ndcg, seconds))
            print(f"  {engine:<10} regularization={reg:<6} NDCG@5={ndcg:.4f}")

    print(f"\n{'model':<12}{'regularization':>16}{'NDCG@5':>10}{'fit (s)':>10}")
    for name, reg, ndcg, seconds in rows:
        print(f"{name:<12}{reg!s:>16}{ndcg:>10.4f}{seconds:>10.1f}")
    popularity = rows[0][2]
    print("\nbest per engine:")
    for engine in ("implicit", "spark"):
        best = max((r for r in rows if r[0] == engine), key=lambda r: r[2])
        print(
            f"  {engine:<10} regularization={best[1]}: NDCG@5={best[2]:.4f} "
            f"({best[2] / popularity:.1f}x popularity), fit {best[3]:.1f} s"
        )
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
