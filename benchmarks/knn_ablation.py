"""Session-kNN's weights one at a time, on every data set of the benchmark.

Usage::

    python benchmarks/knn_ablation.py [--datasets yoochoose,movielens,default,
        sequential,challenge] [--variants "vsknn;stan;..."]
        [--yoochoose GITDIR]

Each variant is ``SessionKNNRecommender`` at V-SKNN's defaults (``vsknn``) or
at VSTAN-hr's weights without the 10-day neighbour recency decay (``stan``),
with one parameter changed (a few rows change the two or three named). Data
sets, split and metrics are those of ``benchmarks/session_quality.py`` (the
last 20% of sessions held out by time; YooChoose 100k on session-rec's own
split): next-item HR@20 / MRR@20 and
rest-of-session NDCG@5 with 3 events revealed. Prints one JSON line per
(data set, variant) and then a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import session_quality as sq
from real_clicks import STAN_HR

from skals import SessionKNNRecommender
from skals.metrics import make_next_item_scorer, make_session_scorer

STAN = {**STAN_HR, "recency_decay": None}
VARIANTS = {
    "vsknn": {},
    "stan": STAN,
    "stan neighbor_position_decay=None": {**STAN, "neighbor_position_decay": None},
    "stan weighting_score='div'": {**STAN, "weighting_score": "div"},
    "stan weighting='div'": {**STAN, "weighting": "div"},
    "stan similarity='vec'": {**STAN, "similarity": "vec"},
    "stan idf_weighting=False": {**STAN, "idf_weighting": False},
    "stan n_neighbors=100, sample_size=1000": {
        **STAN,
        "n_neighbors": 100,
        "sample_size": 1000,
    },
    "vsknn neighbor_position_decay=8": {"neighbor_position_decay": 8.0},
    "vsknn weighting_score=0.5": {"weighting_score": 0.5},
    "vsknn weighting=8": {"weighting": 8.0},
    "vsknn idf_weighting=2": {"idf_weighting": 2.0},
    # two changes at once: the two weights that help V-SKNN most above
    "vsknn neighbor_position_decay=8, weighting_score=0.5": {
        "neighbor_position_decay": 8.0,
        "weighting_score": 0.5,
    },
    "vsknn neighbor_position_decay=8, n_neighbors=500, sample_size=2500": {
        "neighbor_position_decay": 8.0,
        "n_neighbors": 500,
        "sample_size": 2500,
    },
    # whether anything left in the kNN family moves STAN on YooChoose
    "stan sample_size=10000, n_neighbors=5000": {
        **STAN,
        "sample_size": 10000,
        "n_neighbors": 5000,
    },
    "stan neighbor_values='confidence'": {**STAN, "neighbor_values": "confidence"},
    "stan weighting=4, idf_weighting=4": {
        **STAN,
        "weighting": 4.0,
        "idf_weighting": 4.0,
    },
    "stan neighbor_position_decay=4": {**STAN, "neighbor_position_decay": 4.0},
    "stan weighting_score=0.75": {**STAN, "weighting_score": 0.75},
    "stan similarity='jaccard'": {**STAN, "similarity": "jaccard"},
    "stan similarity='vec', weighting=4, idf_weighting=4": {
        **STAN,
        "similarity": "vec",
        "weighting": 4.0,
        "idf_weighting": 4.0,
    },
}
DEFAULT_GITDIR = "/work/.mirror/rn5l+session-rec/repo"


def split(name, frames, gitdir):
    """(train, test, relevance) of one data set."""
    if name == "yoochoose":
        train, test = sq.yoochoose(gitdir)
        return train, test, "rest"
    df, relevance = frames[name]
    return *sq.holdout(df), relevance


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", default="yoochoose,movielens,default,sequential,challenge"
    )
    parser.add_argument("--variants", default=None, help="names, separated by ';'")
    parser.add_argument("--yoochoose", default=DEFAULT_GITDIR, metavar="GITDIR")
    args = parser.parse_args()
    names = args.datasets.split(",")
    variants = args.variants.split(";") if args.variants else list(VARIANTS)
    warnings.simplefilter("ignore")
    frames = sq.datasets([n for n in names if n != "yoochoose"], 20_000, 0)
    rows = {}
    for name in names:
        if name != "yoochoose" and name not in frames:
            continue
        train, test, relevance = split(name, frames, args.yoochoose)
        nxt = make_next_item_scorer(k=20)
        rest = make_session_scorer("ndcg", k=5, relevance=relevance)
        for v in variants:
            t0 = time.perf_counter()
            pipe = sq.pipeline(SessionKNNRecommender(**VARIANTS[v])).fit(train)
            sc = nxt(pipe, test)
            row = (sc["hit_rate@20"], sc["mrr@20"], float(rest(pipe, test)))
            rows[name, v] = row
            out = dict(zip(("HR@20", "MRR@20", "NDCG@5"), row, strict=True))
            out.update(data=name, variant=v, seconds=time.perf_counter() - t0)
            print(json.dumps(out), flush=True)
    print("\n| variant | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for v in variants:
        cells = [
            " / ".join(f"{x:.4f}" for x in rows[n, v]) if (n, v) in rows else ""
            for n in names
        ]
        print(f"| {v} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
