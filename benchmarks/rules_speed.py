"""Speed of SequentialRulesRecommender and SLISTRecommender next to the builder.

Usage::

    python benchmarks/rules_speed.py [--scale small] [--repeats 3]
        [--slist-items 1000,3000]

On the benchmark data (``benchmarks/_data.py``: a make_sessions training log
and 7,300 test sessions with their first 3 events) it times, each as the
best of ``--repeats``:

* the builder at session grain with ``time_col`` (fit + transform: what
  the rules models read);
* ``SequentialRulesRecommender.fit`` at its defaults and its ratio to the
  builder (the goal: at most 1x), and answering the 7,300 test sessions;
  the builder and the fit alternate, and the medians of the wall and CPU
  times are printed too (a busy machine makes the best of a few noisy);
* ``SLISTRecommender.fit`` for each ``max_items`` of ``--slist-items``
  (the dense items x items solve; once each, it is the slow one) and
  answering the test sessions;

and prints the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import SCALES, ensure  # noqa: E402

from skals import (  # noqa: E402
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
    SequentialRulesRecommender,
    SLISTRecommender,
)

TIME_COL = "timestamp_local"


def timed(fn):
    """(wall seconds, CPU seconds, result) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def best(fn, repeats):
    """(best wall seconds, best CPU seconds, last result) of ``repeats`` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        wall, cpu, out = timed(fn)
        walls.append(wall)
        cpus.append(cpu)
    return min(walls), min(cpus), out


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=list(SCALES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slist-items", default="1000,3000")
    args = parser.parse_args(argv)
    train_path, test_path = ensure(args.scale)
    keyed = PseudoUserUnifier().fit_transform(pl.read_parquet(train_path))
    test = PseudoUserUnifier().fit_transform(pl.read_parquet(test_path))
    print(f"scale={args.scale}: {keyed.height:,} training events", flush=True)
    enc = ConfidenceEncoder(grain="session", time_col=TIME_COL)
    encoded = enc.fit(keyed).transform(keyed)
    builder = InteractionMatrixBuilder()
    sr = SequentialRulesRecommender()
    builds, fits = [], []
    for _ in range(args.repeats):  # alternated: both see the same load
        *times, im = timed(lambda: builder.fit(encoded).transform(encoded))
        builds.append(times)
        fits.append(timed(lambda im=im: sr.fit(im))[:2])
    (t_build, c_build), (m_build, mc_build) = np.min(builds, 0), np.median(builds, 0)
    (t_fit, c_fit), (m_fit, mc_fit) = np.min(fits, 0), np.median(fits, 0)
    print(
        f"builder  {t_build:7.2f} s (CPU {c_build:.2f} s; medians {m_build:.2f} s, "
        f"CPU {mc_build:.2f} s): {im.shape[0]:,} sessions x {im.shape[1]:,} "
        f"items, nnz={im.nnz:,}",
        flush=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # test items unseen in training
        im_test = builder.transform(enc.transform(test))
    t_pred, c_pred, pred = best(lambda: sr.predict(im_test), args.repeats)
    print(
        f"SR fit   {t_fit:7.2f} s ({t_fit / t_build:.2f}x the builder; CPU "
        f"{c_fit:.2f} s, {c_fit / c_build:.2f}x; medians {m_fit:.2f} s, "
        f"{m_fit / m_build:.2f}x, CPU {mc_fit:.2f} s, {mc_fit / mc_build:.2f}x), "
        f"rules nnz={sr.rules_.nnz:,}; predict {pred.height:,} sessions "
        f"{t_pred:.2f} s (CPU {c_pred:.2f} s)",
        flush=True,
    )
    for m in [int(x) for x in args.slist_items.split(",") if x]:
        model = SLISTRecommender(max_items=m)
        t_fit, c_fit, _ = best(lambda mo=model: mo.fit(im), 1)
        t_pred, c_pred, pred = best(lambda mo=model: mo.predict(im_test), 1)
        print(
            f"SLIST max_items={m:,}: fit {t_fit:7.2f} s (CPU {c_fit:.2f} s, "
            f"{t_fit / t_build:.1f}x the builder); predict {pred.height:,} "
            f"sessions {t_pred:.2f} s; peak RSS so far {peak_gb():.2f} GB",
            flush=True,
        )
    print(f"peak RSS {peak_gb():.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
