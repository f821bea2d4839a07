"""The default blend's fit at scale: time, weights and peak memory.

Usage::

    python benchmarks/blend_scale.py [--scale small] [--max-validation-sessions N]
        [--model blend|rerank]

On the benchmark data (``benchmarks/_data.py``: a make_sessions training log
and 7,300 test sessions with their first 3 events) it encodes and builds the
training matrix at session grain (with ``time_col``, as the session models
need), then fits ``BlendRecommender(random_state=0)`` (the recommended
session recipe: its components twice, once on the internal split and once on
everything, and its weight search) and answers the test sessions. It prints
the fit and answer times, the fitted weights, the number of weight vectors
scored, and the peak resident memory of the process before and after the
fit. ``--max-validation-sessions 0`` removes the cap on the internal split
(``max_validation_sessions=None``; at the "full" scale that needs more than
21 GB).

``--model rerank`` fits ``RerankRecommender(random_state=0)`` instead (the
encoder then keeps each session's events, ``keep_events=True``) and prints
the number of prefixes its ranker learnt from.

A thread prints the resident memory every 30 s (``--watch``) and stops the
process above ``--stop-gb`` (default 21), so that an uncapped run cannot
take the machine down.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import SCALES, ensure  # noqa: E402

from skals import (  # noqa: E402
    BlendRecommender,
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
    RerankRecommender,
)


def resident_gb() -> float:
    with open("/proc/self/status") as f:
        kb = next(line for line in f if line.startswith("VmRSS")).split()[1]
    return int(kb) / 1024**2


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def watch(stop_gb: float, every: float, verbose: bool, start: float) -> None:
    while True:
        rss = resident_gb()
        if verbose:
            print(f"[watch] {time.time() - start:.0f} s: {rss:.2f} GB", flush=True)
        if rss > stop_gb:
            print(f"[watch] above {stop_gb} GB resident: stopped", flush=True)
            os._exit(3)
        time.sleep(every)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=sorted(SCALES))
    parser.add_argument(
        "--max-validation-sessions",
        type=int,
        help="the model's cap on its internal split (default: the model's own)",
    )
    parser.add_argument("--stop-gb", type=float, default=21.0)
    parser.add_argument("--watch", action="store_true")
    parser.add_argument("--model", default="blend", choices=["blend", "rerank"])
    args = parser.parse_args(argv)
    threading.Thread(
        target=watch,
        args=(args.stop_gb, 30.0, args.watch, time.time()),
        daemon=True,
    ).start()
    warnings.simplefilter("ignore")
    train_path, test_path = ensure(args.scale)
    keyed = PseudoUserUnifier().fit_transform(pl.read_parquet(train_path))
    test = PseudoUserUnifier().fit_transform(pl.read_parquet(test_path))
    rerank = args.model == "rerank"
    encoder = ConfidenceEncoder(
        grain="session", time_col="timestamp_local", keep_events=rerank
    )
    builder = InteractionMatrixBuilder()
    im = builder.fit_transform(encoder.fit_transform(keyed))
    del keyed
    before = peak_gb()
    model = RerankRecommender if rerank else BlendRecommender
    blend = model(random_state=0)
    if args.max_validation_sessions is not None:
        blend.set_params(max_validation_sessions=args.max_validation_sessions or None)
    cap = blend.max_validation_sessions
    t0 = time.perf_counter()
    blend.fit(im)
    t1 = time.perf_counter()
    answers = blend.predict(builder.transform(encoder.transform(test)))
    t2 = time.perf_counter()
    print(
        f"{args.scale}: {im.shape[0]:,} sessions x {im.shape[1]:,} items, "
        f"max_validation_sessions={cap}\n"
        f"fit {t1 - t0:.1f} s; answers for {answers.height:,} sessions "
        f"{t2 - t1:.1f} s\n"
        + (
            f"{blend.n_training_queries_:,} training prefixes\n"
            if rerank
            else f"weights {np.round(blend.weights_, 4).tolist()}, "
            f"{len(blend.weight_grid_)} weight vectors scored\n"
        )
        + f"peak RSS {peak_gb():.2f} GB ({before:.2f} GB before the fit)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
