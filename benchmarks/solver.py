"""Blocked ALS solve (skals.recommender._solver) vs implicit's, per iteration.

Usage (OpenBLAS' kernel choice left to OpenBLAS for this command only)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/solver.py --scale grid [--rounds 3] [--iterations 3]

1. Parity on small random data: the exact blocked solve vs implicit's
   ``least_squares`` (Cholesky per user), and the blocked conjugate gradient
   vs implicit's ``least_squares_cg``, from the same starting factors.
2. Time of one ALS iteration (users then items) at 64 factors on the scale's
   confidence matrix, variants alternating round by round, medians.
3. NDCG@5 after the same number of iterations from implicit's own random
   start: the last 7,300 sessions held out (``SessionHoldoutSplit``), the
   session scorer (3 events revealed, carts relevant).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
from _data import N_TEST, ensure  # noqa: E402

FACTORS = 64
REGULARIZATION = 0.05
SEED = 0


def implicit_cg(C, X, Y, reg, **_):
    from implicit.cpu import _als
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit's best configuration
        _als.least_squares_cg(C, X, Y, reg, num_threads=0, cg_steps=3)


def blocked_cg(C, X, Y, reg, **options):
    from skals.recommender._solver import least_squares_cg_blocked

    least_squares_cg_blocked(C, X, Y, reg, **options)


VARIANTS = {
    "implicit_cg": (implicit_cg, {}),
    "blocked_cg": (blocked_cg, {}),
    "blocked_cg_1_thread": (blocked_cg, {"num_threads": 1}),
    "blocked_cg_16k": (blocked_cg, {"block_nnz": 1 << 14}),
    "blocked_cg_4k": (blocked_cg, {"block_nnz": 1 << 12}),
}


def parity():
    from implicit.cpu import _als

    from skals.recommender._solver import (
        least_squares_blocked,
        least_squares_cg_blocked,
    )

    rng = np.random.default_rng(0)
    C = sp.random(2000, 300, density=0.03, random_state=1, format="csr")
    C.data = (1 + 10 * C.data).astype(np.float32)
    C = C.astype(np.float32)
    Y = rng.random((300, FACTORS), dtype=np.float32) * 0.1
    X0 = rng.random((2000, FACTORS), dtype=np.float32) * 0.01
    out = {}
    for name, ref, ours in (
        ("exact", _als.least_squares, least_squares_blocked),
        ("cg", _als.least_squares_cg, least_squares_cg_blocked),
    ):
        a, b = X0.copy(), X0.copy()
        ref(C, a, Y, REGULARIZATION, num_threads=1)
        ours(C, b, Y, REGULARIZATION)
        out[name] = float(np.abs(a - b).max() / np.abs(a).max())
    return out


def main(argv=None):
    from threadpoolctl import threadpool_info

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="grid")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--variants", default=",".join(VARIANTS))
    args = p.parse_args(argv)
    blas = [
        (i["internal_api"], i.get("architecture"), i["num_threads"])
        for i in threadpool_info()
    ]
    print(f"BLAS (threadpoolctl): {blas}")
    print(f"parity, max |difference| / max |implicit|: {parity()}")

    from sklearn.pipeline import make_pipeline

    from skals import (
        ConfidenceEncoder,
        ImplicitALSRecommender,
        InteractionMatrixBuilder,
        PseudoUserUnifier,
    )
    from skals.metrics import make_session_scorer
    from skals.model_selection import SessionHoldoutSplit

    events = pl.read_parquet(ensure(args.scale)[0])
    train_idx, test_idx = next(
        SessionHoldoutSplit(n_splits=1, test_size=N_TEST).split(events)
    )
    train, test = events[train_idx], events[test_idx]
    pipe = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        ImplicitALSRecommender(
            factors=FACTORS,
            regularization=REGULARIZATION,
            iterations=args.iterations,
            random_state=SEED,
        ),
    )
    pipe.fit(train)
    # the recommender's own training matrix (sessions of a user merged),
    # times alpha as implicit's fit does
    C = pipe[-1].user_items_.astype(np.float32)
    if pipe[-1].alpha != 1.0:
        C = pipe[-1].alpha * C
    Ct = C.T.tocsr()
    print(f"matrix {C.shape[0]:,} x {C.shape[1]:,}, {C.nnz:,} non-zeros")
    # implicit's own start: default_rng(seed).random(...) * 0.01, users first
    rng = np.random.default_rng(SEED)
    X0 = rng.random((C.shape[0], FACTORS), dtype=np.float32) * 0.01
    Y0 = rng.random((C.shape[1], FACTORS), dtype=np.float32) * 0.01

    def iteration(name, X, Y):
        solve, options = VARIANTS[name]
        solve(C, X, Y, REGULARIZATION, **options)
        solve(Ct, Y, X, REGULARIZATION, **options)

    names = args.variants.split(",")
    times = {n: [] for n in names}
    for _ in range(args.rounds):
        for n in names:
            X, Y = X0.copy(), Y0.copy()
            t0 = time.perf_counter()
            iteration(n, X, Y)
            times[n].append(time.perf_counter() - t0)
    ref = float(np.median(times["implicit_cg"]))
    print("| variant | median s per iteration | rounds | speed-up vs implicit |")
    print("|---|---|---|---|")
    for n in names:
        med = float(np.median(times[n]))
        print(f"| {n} | {med:.3f} | {args.rounds} | {ref / med:.2f}x |")

    scorer = make_session_scorer("ndcg")
    model = pipe[-1]
    scores = {}
    for n in ("implicit_cg", "blocked_cg"):
        X, Y = X0.copy(), Y0.copy()
        for _ in range(args.iterations):
            iteration(n, X, Y)
        if n == "implicit_cg":  # the loop is implicit's fit, exactly
            assert np.array_equal(X, model.user_factors_)
        model.user_factors_, model.item_factors_ = X, Y
        scores[n] = scorer(pipe, test)
    rel = scores["blocked_cg"] / scores["implicit_cg"] - 1
    print(
        f"NDCG@5 after {args.iterations} iterations: implicit "
        f"{scores['implicit_cg']:.4f}, blocked {scores['blocked_cg']:.4f} "
        f"({rel:+.2%})"
    )


if __name__ == "__main__":
    main()
