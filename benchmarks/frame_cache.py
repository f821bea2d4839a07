"""Grid-search time with the explicit FrameCache against the old implicit cache.

skals 0.1.0 cached every transformer's ``fit_transform`` implicitly, per
process. That cache is gone; a pipeline now shares its preprocessing only
through ``Pipeline(memory=FrameCache())``. This script runs the grid of
``benchmarks/_tasks.py`` (cart weight x factors x regularization, 27
candidates, 3 session-holdout folds, 3 ALS iterations) three ways, each in
its own subprocess, interleaved, and prints the medians and the ratios:

* ``old``: the code at ``--old`` (a checkout of skals with the implicit
  cache, e.g. ``/work/main``), plain pipeline;
* ``new``: this checkout, ``memory=FrameCache()``;
* ``none``: this checkout, no memory (every candidate preprocesses).

Run from the repository root::

    python benchmarks/frame_cache.py --old /work/main --sessions 20000 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
import skals
from skals import (ConfidenceEncoder, ImplicitALSRecommender,
                   InteractionMatrixBuilder, PseudoUserUnifier)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.model_selection import SessionHoldoutSplit

variant, n_sessions = sys.argv[1], int(sys.argv[2])
events = make_sessions(n_sessions, n_items=2000, random_state=0)
grid = {
    "confidenceencoder__cart_weight": [5, 10, 20],
    "implicitalsrecommender__factors": [16, 32, 64],
    "implicitalsrecommender__regularization": [0.01, 0.1, 1.0],
}
memory = None
if variant == "new":
    memory = skals.FrameCache()
pipe = make_pipeline(
    PseudoUserUnifier(), ConfidenceEncoder(), InteractionMatrixBuilder(),
    ImplicitALSRecommender(iterations=3, random_state=0, num_threads=1),
    memory=memory,
)
search = GridSearchCV(pipe, grid, scoring=make_session_scorer("ndcg"),
                      cv=SessionHoldoutSplit(n_splits=3, test_size=0.1),
                      refit=False)
t0 = time.perf_counter()
search.fit(events)
seconds = time.perf_counter() - t0
scores = search.cv_results_["mean_test_score"]
print(json.dumps({"time": seconds, "events": events.height,
                  "best": float(scores.max()),
                  "scores": [float(s) for s in scores],
                  "skals": skals.__file__}))
"""


def run(variant: str, path: Path, n_sessions: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, variant, str(n_sessions)],
        env=env,
        cwd=path,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    variants = {"old": args.old, "new": ROOT, "none": ROOT}
    times: dict = {v: [] for v in variants}
    results: dict = {}
    for _ in range(args.repeats):
        for variant, path in variants.items():
            results[variant] = run(variant, path, args.sessions)
            times[variant].append(results[variant]["time"])
            print(f"{variant}: {results[variant]['time']:.1f} s", flush=True)
    med = {v: statistics.median(t) for v, t in times.items()}
    print(f"\n{results['new']['events']:,} events, 27 candidates x 3 folds")
    for v in variants:
        print(f"{v:>5}: median {med[v]:.1f} s  best NDCG@5 {results[v]['best']:.4f}")
    print(f"new FrameCache / old implicit cache: {med['new'] / med['old']:.3f}x")
    print(f"no cache / new FrameCache: {med['none'] / med['new']:.3f}x")
    same = results["new"]["scores"] == results["old"]["scores"]
    print(f"cv_results_ mean_test_score identical old vs new: {same}")


if __name__ == "__main__":
    main()
