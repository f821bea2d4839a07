"""Speed of SessionKNNRecommender next to the preprocessing it needs.

Usage::

    python benchmarks/knn_speed.py [--scale small] [--repeats 3]

On the benchmark data (``benchmarks/_data.py``: a make_sessions training log
and 7,300 test sessions with their first 3 events) it times, each as the
best of ``--repeats``:

* the encoder and the builder at session grain with and without
  ``time_col`` (the carry-through of order and time; the ALS path is the one
  without), and their ratio;
* ``SessionKNNRecommender.fit`` on the training matrix, and its ratio to
  building that matrix (the goal: at most 1x);
* answering the 7,300 test sessions (``predict`` on their matrix; the goal:
  under 10 s on 2 cores), for V-SKNN's defaults, for SKNN (cosine), for
  VSTAN's weights and for VSTAN with ``max_sessions`` half the sessions,
  each with the size of the fitted model's arrays per million sessions;

and prints the peak resident memory of the process (the goal: under 12 GB at
the "full" scale).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import SCALES, ensure  # noqa: E402

from skals import (  # noqa: E402
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
    SessionKNNRecommender,
)

TIME_COL = "timestamp_local"


#: CPU seconds of the process per measured call, next to the wall times:
#: on a shared machine the wall clock also counts other processes' turns.
CPU = {}


def best(fn, repeats, name=None):
    """(best wall seconds, last result) of ``repeats`` calls.

    The best CPU time (user + system of this process, all threads) is
    recorded in ``CPU[name]``.
    """
    times, cpus, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    if name is not None:
        CPU[name] = min(cpus)
    return min(times), out


#: VSTAN's weights (session-rec's rsc15 "hr" setting) at V-SKNN's neighbours.
STAN = {
    "similarity": "cosine",
    "weighting": 8.0,
    "weighting_score": 0.5,
    "recency_decay": 10.0,
    "neighbor_position_decay": 8.0,
    "idf_weighting": 2.0,
}


def model_gb(model) -> float:
    """Bytes of the fitted kNN's arrays (sessions, index, times, positions)."""
    total = 0
    for name in ("session_items_", "index_", "session_recency_"):
        m = getattr(model, name, None)
        if m is not None:
            total += m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
    times = getattr(model, "session_times_", None)
    total += 0 if times is None else times.nbytes
    return total / 1024**3


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=list(SCALES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    train_path, test_path = ensure(args.scale)
    keyed = PseudoUserUnifier().fit_transform(pl.read_parquet(train_path))
    test = PseudoUserUnifier().fit_transform(pl.read_parquet(test_path))
    print(f"scale={args.scale}: {keyed.height:,} training events", flush=True)

    def prep(time_col):
        enc = ConfidenceEncoder(grain="session", time_col=time_col)
        t_enc, encoded = best(
            lambda: enc.fit(keyed).transform(keyed), args.repeats, f"enc {time_col}"
        )
        builder = InteractionMatrixBuilder()
        t_build, im = best(
            lambda: builder.fit(encoded).transform(encoded),
            args.repeats,
            f"build {time_col}",
        )
        return enc, builder, im, t_enc, t_build

    _, _, _, enc_plain, build_plain = prep(None)
    enc, builder, im, enc_time, build_time = prep(TIME_COL)
    cpu = CPU
    print(
        f"encoder  {enc_plain:7.2f} s without time_col, {enc_time:7.2f} s with "
        f"({enc_time / enc_plain:.2f}x); CPU {cpu['enc None']:.2f} s, "
        f"{cpu['enc ' + TIME_COL]:.2f} s\n"
        f"builder  {build_plain:7.2f} s without time_col, {build_time:7.2f} s with "
        f"({build_time / build_plain:.2f}x); CPU {cpu['build None']:.2f} s, "
        f"{cpu['build ' + TIME_COL]:.2f} s\n"
        f"matrix   {im.shape[0]:,} sessions x {im.shape[1]:,} items, "
        f"nnz={im.nnz:,}",
        flush=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # test items unseen in training
        im_test = builder.transform(enc.transform(test))
    for name, params in [
        ("V-SKNN (defaults)", {}),
        ("SKNN (cosine, same)", {"similarity": "cosine", "weighting": "same",
                                 "weighting_score": "same"}),
        ("STAN (VSTAN weights)", STAN),
        ("STAN, max_sessions/2", {**STAN, "max_sessions": im.shape[0] // 2}),
    ]:  # fmt: skip
        model = SessionKNNRecommender(**params)
        t_fit, _ = best(lambda m=model: m.fit(im), args.repeats, "fit")
        t_pred, pred = best(lambda m=model: m.predict(im_test), args.repeats, "pred")
        print(
            f"{name:20s} fit {t_fit:6.2f} s ({t_fit / build_time:.2f}x the "
            f"builder; CPU {cpu['fit']:.2f} s, "
            f"{cpu['fit'] / cpu['build ' + TIME_COL]:.2f}x), predict "
            f"{pred.height:,} sessions {t_pred:6.2f} s (CPU {cpu['pred']:.2f} s); "
            f"model {model_gb(model):.3f} GB, "
            f"{model_gb(model) / model.session_items_.shape[0] * 1e6:.3f} GB per "
            "million kept sessions",
            flush=True,
        )
    print(f"peak RSS {peak_gb():.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
