"""How far ordering the session's own items can take cart-add NDCG@5.

Usage::

    python benchmarks/cart_ceiling.py [--datasets challenge,default,sequential]
        [--n-sessions 20000] [--seed 0]

On the held-out sessions of ``benchmarks/session_quality.py`` (the last 20%
by time) that have a cart add, with the first 3 events revealed (the
challenge's protocol, cart adds anywhere in the session relevant), it prints:

* the share of the carted items that are among the revealed ones;
* NDCG@5 of a list of the revealed items only, in the best order (carted
  first): the most any model that answers with the session's own items,
  and nothing else, can reach;
* NDCG@5 of the revealed items ordered by their count in the revealed
  events, the latest first among equals (what ``RepeatRecommender(
  recency_decay=1.0)`` puts first);
* NDCG@5 of the revealed items ordered by a logistic regression of "carted
  later in the session" on their count (1, 2, 3) and their first and last
  positions among the revealed events, fitted on the training sessions'
  first 3 events: what the positions of the revealed events can add to
  their counts.

No model is fitted: it bounds what re-ordering the session's own items can
give, against the goal of issue 22 (0.518 on the challenge-shaped set).
"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl
import session_quality as sq
from sklearn.linear_model import LogisticRegression

from skals.metrics import ndcg_at_k

N_REVEALED = 3


def revealed_and_carted(test: pl.DataFrame) -> pl.DataFrame:
    """Per session with a cart add: its revealed items (in order) and carts."""
    events = test.sort("session_id", "timestamp_local").with_columns(
        pos=pl.int_range(pl.len()).over("session_id")
    )
    carted = (
        events.filter(pl.col("add_to_cart") == 1)
        .group_by("session_id")
        .agg(carted=pl.col("partnumber").unique())
    )
    revealed = (
        events.filter(pl.col("pos") < N_REVEALED)
        .group_by("session_id")
        .agg(revealed=pl.col("partnumber"))
    )
    return carted.join(revealed, on="session_id").sort("session_id")


def count_order(items: list) -> list:
    """Distinct items by count, the latest first among equal counts."""
    count, last = {}, {}
    for i, item in enumerate(items):
        count[item] = count.get(item, 0) + 1
        last[item] = i
    return sorted(count, key=lambda item: (-count[item], -last[item]))


def position_features(table: pl.DataFrame):
    """Per distinct revealed item: one-hot count, first and last position.

    Returns ``(X, carted, session)``: the features, whether the item is
    carted in its session, and the session's row in ``table``.
    """
    feats, carted, session = [], [], []
    for row, (items, cart) in enumerate(
        zip(table["revealed"].to_list(), table["carted"].to_list(), strict=True)
    ):
        cart, n = set(cart), len(items)
        for item in dict.fromkeys(items):
            where = [i for i, x in enumerate(items) if x == item]
            one_hot = np.zeros(3 + 2 * N_REVEALED)
            one_hot[min(len(where), 3) - 1] = 1.0
            one_hot[3 + where[0]] = 1.0
            one_hot[3 + N_REVEALED + (n - 1 - where[-1])] = 1.0
            feats.append(one_hot)
            carted.append(item in cart)
            session.append((row, item))
    return np.array(feats), np.array(carted), session


def learned_order(train: pl.DataFrame, table: pl.DataFrame) -> list:
    """The revealed items of ``table``, ordered by the positions' model."""
    X, y, _ = position_features(revealed_and_carted(train))
    model = LogisticRegression(C=10.0).fit(X, y)
    Xt, _, session = position_features(table)
    score = model.predict_proba(Xt)[:, 1]
    lists = [[] for _ in range(table.height)]
    for (row, item), _ in sorted(
        zip(session, score, strict=True), key=lambda t: (t[0][0], -t[1])
    ):
        lists[row].append(item)
    return lists


def ceilings(test: pl.DataFrame, train: pl.DataFrame | None = None) -> dict:
    table = revealed_and_carted(test)
    truth = [set(c) for c in table["carted"].to_list()]
    revealed = table["revealed"].to_list()
    best = [
        sorted(dict.fromkeys(items), key=lambda item: item not in cart)
        for items, cart in zip(revealed, truth, strict=True)
    ]
    counted = [count_order(items) for items in revealed]
    n_carted = sum(len(c) for c in truth)
    n_in = sum(len(c & set(r)) for c, r in zip(truth, revealed, strict=True))
    out = {
        "sessions": table.height,
        "carted items revealed": n_in / max(n_carted, 1),
        "NDCG@5 revealed items, best order": ndcg_at_k(truth, best, k=5),
        "NDCG@5 revealed items, count order": ndcg_at_k(truth, counted, k=5),
    }
    if train is not None:
        learned = learned_order(train, table)
        out["NDCG@5 revealed items, learned order"] = ndcg_at_k(truth, learned, k=5)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="challenge,default,sequential")
    parser.add_argument("--n-sessions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = sq.datasets(args.datasets.split(","), args.n_sessions, args.seed)
    for name, (df, _) in data.items():
        train, test = sq.holdout(df)
        out = ceilings(test, train)
        print(name, ", ".join(f"{k}: {v:.4g}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
