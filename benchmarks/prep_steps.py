"""Where preprocessing's time and memory go, step by step (issue 15).

Usage::

    python benchmarks/prep_steps.py --scale full [--rounds 2] [--before DIR]

Runs skals' three steps one at a time (``PseudoUserUnifier.fit_transform``,
``ConfidenceEncoder.fit_transform``, ``InteractionMatrixBuilder.fit`` and
``.transform``) and the hand-written polars baseline of ``_tasks.py`` cut at
the same places (the key column, the group-by, the vocabularies and joins,
the CSR), each variant in its own subprocess, alternating round by round. For
every stage it prints the median seconds and the stage's peak resident
memory above the resident size when the stage started (sampled every 5 ms),
so the preprocessing ratio and the memory beyond the loaded frame can be
read stage by stage. Both variants must build the same CSR. ``--before DIR``
adds a third variant, skals as checked out in ``DIR`` (e.g. a worktree of the
previous commit), alternated with the others, for a before/after table.

``--source scan`` starts every variant from ``pl.scan_parquet`` of the log
instead of a loaded frame: the key column then stays lazy (its stage only
builds the plan) and the group-by stage reads the file, so compare the
totals and stages 1+2 together. The last columns of the total row are the
whole run's peak resident memory above the loaded frame (``ru_maxrss`` minus
the resident size after loading; from a scan, after importing) and the peak
in all, medians over the rounds, in GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
# the skals under test: this checkout, or the one --before names (set by main)
sys.path[:0] = [os.environ.get("SKALS_TREE", str(HERE.parent)), str(HERE)]
from _data import ensure  # noqa: E402
from _tasks import csr_digest, maxrss, rss_now  # noqa: E402

GB = 1024**3


class Stages:
    """Seconds and peak resident memory above the start, per named stage."""

    def __init__(self):
        self.out = {}

    def run(self, name, fn, *args):
        start = rss_now()
        peak = [start]
        done = threading.Event()

        def sample():
            while not done.wait(0.005):
                peak[0] = max(peak[0], rss_now())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        result = fn(*args)
        seconds = time.perf_counter() - t0
        done.set()
        thread.join()
        peak[0] = max(peak[0], rss_now())
        self.out[name] = {"s": seconds, "peak_above_start": peak[0] - start}
        return result


def skals_stages(frame, st: Stages):
    from skals import ConfidenceEncoder, InteractionMatrixBuilder, PseudoUserUnifier

    keyed = st.run("1 key column", PseudoUserUnifier().fit_transform, frame)
    # the keyed frame is dropped once encoded, as in the baseline
    pairs = st.run("2 group-by", ConfidenceEncoder().fit_transform, keyed)
    del keyed
    builder = InteractionMatrixBuilder()
    st.run("3a vocabularies (builder fit)", builder.fit, pairs)
    im = st.run("3b rows, joins, CSR (builder transform)", builder.transform, pairs)
    return im.matrix


def baseline_stages(frame, st: Stages):
    def key():
        return frame.with_columns(
            pl.when(pl.col("user_id").is_not_null())
            .then(pl.lit("u_") + pl.col("user_id").cast(pl.String))
            .otherwise(pl.lit("s_") + pl.col("session_id").cast(pl.String))
            .alias("unified_user_id")
        )

    keyed = st.run("1 key column", key)

    def group(keyed):
        return (
            keyed.lazy()
            .group_by(["unified_user_id", "partnumber"])
            .agg(
                pl.len().alias("view_count"),
                pl.col("add_to_cart").sum().alias("cart_count"),
            )
            .with_columns(
                (1 + pl.col("view_count") + 10 * pl.col("cart_count")).alias(
                    "confidence"
                )
            )
            .collect()
        )

    inter = st.run("2 group-by", group, keyed)
    del keyed

    def vocab():
        users = inter.select("unified_user_id").unique().sort("unified_user_id")
        items = inter.select("partnumber").unique().sort("partnumber")
        return users.with_row_index("user_id"), items.with_row_index("item_id")

    users, items = st.run("3a vocabularies (builder fit)", vocab)

    def rows():
        joined = inter.join(users, on="unified_user_id").join(items, on="partnumber")
        return sp.csr_matrix(
            (
                joined["confidence"].to_numpy().astype(np.float32),
                (joined["user_id"].to_numpy(), joined["item_id"].to_numpy()),
            ),
            shape=(users.height, items.height),
            dtype=np.float32,
        )

    return st.run("3b rows, joins, CSR (builder transform)", rows)


def worker(variant, scale, source="frame"):
    import skals  # noqa: F401  (imported before the loaded size is read)

    path = ensure(scale)[0]
    frame = pl.scan_parquet(path) if source == "scan" else pl.read_parquet(path)
    rss_loaded = rss_now()
    st = Stages()
    t0 = time.perf_counter()
    fn = skals_stages if variant == "skals" else baseline_stages
    matrix = fn(frame, st)
    total = time.perf_counter() - t0
    peak = maxrss()
    return {
        "stages": st.out,
        "total": total,
        "digest": csr_digest(matrix),
        "rss_loaded": rss_loaded,
        "maxrss": peak,
        "skals": str(Path(skals.__file__).parent),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="small")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--before", help="another checkout's skals, as a variant")
    p.add_argument(
        "--source",
        choices=["frame", "scan"],
        default="frame",
        help="start from a loaded frame (default) or from pl.scan_parquet",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.scale, args.source)
        print("RESULT " + json.dumps(result), flush=True)
        return
    ensure(args.scale)
    runs = {"skals": [], "polars": []}
    trees = {"skals": HERE.parent, "polars": HERE.parent}
    if args.before:
        runs["before"] = []
        trees["before"] = Path(args.before).resolve()
    for _ in range(args.rounds):
        for v in runs:
            tree = trees[v]
            # this script's stages, with the skals of the variant's tree
            role = "skals" if v == "before" else v
            cmd = [sys.executable, str(HERE / "prep_steps.py"), "--worker", role]
            env = {**os.environ, "PYTHONPATH": str(tree), "SKALS_TREE": str(tree)}
            out = subprocess.run(
                cmd + ["--scale", args.scale, "--source", args.source],
                capture_output=True,
                text=True,
                check=True,
                cwd=tree,
                env=env,
            )
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
            runs[v].append(json.loads(line[len("RESULT ") :]))
    for v, rs in runs.items():
        print(f"{v}: skals from {sorted({r['skals'] for r in rs})}")
    digests = {r["digest"] for rs in runs.values() for r in rs}
    print(f"same CSR in every run: {len(digests) == 1}; source: {args.source}")
    print(f"load average after the runs: {os.getloadavg()}")
    print(
        "| stage | skals s | polars s | ratio | skals peak above start GB "
        "| polars peak above start GB |"
    )
    print("|---|---|---|---|---|---|")
    for name in runs["skals"][0]["stages"]:

        def med(v, key, name=name):
            return float(np.median([r["stages"][name][key] for r in runs[v]]))

        s, b = med("skals", "s"), med("polars", "s")
        before = ""
        if "before" in runs:
            before = (
                f" before {med('before', 's'):.2f} s, {med('before', 's') / b:.2f}x"
            )
        print(
            f"| {name} | {s:.2f} | {b:.2f} | {s / b:.2f}x | "
            f"{med('skals', 'peak_above_start') / GB:.2f} | "
            f"{med('polars', 'peak_above_start') / GB:.2f} |{before}"
        )
    total = {v: float(np.median([r["total"] for r in rs])) for v, rs in runs.items()}
    s, b = total["skals"], total["polars"]
    before = ""
    if "before" in total:
        before = f" before {total['before']:.2f} s, {total['before'] / b:.2f}x"
    print(f"| total | {s:.2f} | {b:.2f} | {s / b:.2f}x | | |{before}")
    for v, rs in runs.items():
        beyond = np.median([r["maxrss"] - r["rss_loaded"] for r in rs]) / GB
        peak = np.median([r["maxrss"] for r in rs]) / GB
        print(
            f"{v}: peak above the loaded frame {beyond:.2f} GB, peak in all "
            f"{peak:.2f} GB (medians of {len(rs)} runs)"
        )


if __name__ == "__main__":
    main()
