"""Benchmark data: ``make_sessions`` logs written to parquet once, cached.

The files live outside the repository, in ``$SKALS_BENCH_CACHE`` (default
``~/.cache/skals-bench/``). Each scale has a training log and a test log of
7,300 held-out sessions (their first events, without ``add_to_cart``), as in
the challenge.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl

from skals.datasets import make_sessions

CACHE = Path(os.environ.get("SKALS_BENCH_CACHE", "~/.cache/skals-bench")).expanduser()

#: n_sessions per scale: make_sessions yields ~10.3 events per session, so
#: "full" gives ~46.5M training events (the challenge's log), "grid" ~2M.
SCALES = {
    "full": 4_520_000,
    "small": 450_000,
    "grid": 195_000,
    "tiny": 20_000,  # a smoke test of the scripts
}
N_ITEMS = 44_000
N_TEST = 7_300
N_REVEALED = 3
SEED = 0


def paths(scale: str) -> tuple[Path, Path]:
    """(train, test) parquet paths of a scale (not created)."""
    return CACHE / f"train_{scale}.parquet", CACHE / f"test_{scale}.parquet"


def ensure(scale: str) -> tuple[Path, Path]:
    """Generate the scale's parquet files unless they are cached."""
    train_path, test_path = paths(scale)
    if train_path.exists() and test_path.exists():
        return train_path, test_path
    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n = SCALES[scale]
    events = make_sessions(n + N_TEST, n_items=N_ITEMS, random_state=SEED)
    # the last N_TEST sessions (by id) are the test sessions
    cut = events["session_id"].unique().sort()[-N_TEST]
    test = (
        events.filter(pl.col("session_id") >= cut)
        .sort("session_id", "timestamp_local")
        .filter(pl.int_range(pl.len()).over("session_id") < N_REVEALED)
        .drop("add_to_cart")
    )
    train = events.filter(pl.col("session_id") < cut)
    del events
    tmp = train_path.with_suffix(".tmp")
    train.write_parquet(tmp)
    tmp.rename(train_path)
    test.write_parquet(test_path)
    print(
        f"[data] {scale}: {train.height:,} training events, {test.height:,} test "
        f"events in {time.perf_counter() - t0:.0f}s -> {CACHE}",
        flush=True,
    )
    return train_path, test_path


if __name__ == "__main__":
    import sys

    for s in sys.argv[1:] or list(SCALES):
        ensure(s)
