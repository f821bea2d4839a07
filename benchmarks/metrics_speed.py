"""NDCG@5 on 10,000 queries, as a grid search scores the challenge's sessions.

Moved here from the test suite (speed goals live in benchmarks, not in timed
unit tests). Prints the median of 7 runs and its ratio to a 0.5 s budget:
``python benchmarks/metrics_speed.py``.
"""

import statistics
import time

import numpy as np

from skals.metrics import ndcg_at_k


def main():
    rng = np.random.default_rng(0)
    y_pred = rng.integers(0, 40_000, size=(10_000, 5))
    y_true = [set(rng.integers(0, 40_000, size=3).tolist()) for _ in range(10_000)]
    ndcg_at_k(y_true, y_pred)  # warm up
    runs = []
    for _ in range(7):
        start = time.perf_counter()
        ndcg_at_k(y_true, y_pred)
        runs.append(time.perf_counter() - start)
    median = statistics.median(runs)
    print(f"ndcg_at_k, 10,000 queries, k=5: median {median * 1e3:.1f} ms")
    print(f"ratio to the 0.5 s budget of a grid-search scoring: {median / 0.5:.3f}x")


if __name__ == "__main__":
    main()
