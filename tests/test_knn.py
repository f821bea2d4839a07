"""Tests of SessionKNNRecommender and the order/time carry-through it needs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from skals import ConfidenceEncoder, InteractionMatrixBuilder


def _log():
    t0 = dt.datetime(2024, 6, 1)
    sec = [0, 10, 20, 30, 5, 6, 6, 100]
    return pl.DataFrame(
        {
            "unified_user_id": ["u_1"] * 4 + ["s_2"] * 3 + ["u_1"],
            "session_id": [1, 1, 1, 1, 2, 2, 2, 3],
            "partnumber": [10, 11, 10, 12, 11, 12, 13, 13],
            "add_to_cart": [0, 0, 1, 0, 0, 0, 0, 0],
            "timestamp_local": [t0 + dt.timedelta(seconds=s) for s in sec],
        }
    )


def test_encoder_time_col_last_time_and_recency():
    enc = ConfidenceEncoder(grain="session", time_col="timestamp_local")
    out = enc.fit_transform(_log()).sort("session_id", "partnumber")
    # session 1: 10 last at 20 s, 11 at 10 s, 12 at 30 s -> 12, 10, 11
    # session 2: 11 at 5 s; 12 and 13 tie at 6 s -> larger id first: 13, 12
    assert out["recency"].to_list() == [2, 3, 1, 3, 2, 1, 1]
    secs = (out["last_time"] - dt.datetime(2024, 6, 1)).dt.total_seconds()
    assert secs.to_list() == [20, 10, 30, 5, 6, 6, 100]
    assert out["confidence"].to_list() == [13.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]


def test_encoder_without_time_col_is_unchanged():
    plain = ConfidenceEncoder(grain="session").fit_transform(_log())
    assert "recency" not in plain.columns and "last_time" not in plain.columns


def test_builder_row_times_and_recency_pattern():
    enc = ConfidenceEncoder(grain="session", time_col="timestamp_local")
    im = InteractionMatrixBuilder().fit_transform(enc.fit_transform(_log()))
    assert im.row_ids.to_list() == [1, 2, 3]
    t0 = dt.datetime(2024, 6, 1).replace(tzinfo=dt.timezone.utc).timestamp()
    np.testing.assert_allclose(im.row_times - t0, [30, 6, 100])
    np.testing.assert_array_equal(im.recency.indptr, im.matrix.indptr)
    np.testing.assert_array_equal(im.recency.indices, im.matrix.indices)
    # columns 10, 11, 12, 13
    np.testing.assert_array_equal(
        im.recency.toarray(), [[2, 3, 1, 0], [0, 3, 2, 1], [0, 0, 0, 1]]
    )
    plain = InteractionMatrixBuilder().fit_transform(
        ConfidenceEncoder(grain="session").fit_transform(_log())
    )
    assert plain.row_times is None and plain.recency is None


def test_numeric_time_and_bad_time_column():
    log = _log().with_columns(pl.col("timestamp_local").dt.epoch("s").alias("t"))
    enc = ConfidenceEncoder(grain="session", time_col="t")
    im = InteractionMatrixBuilder().fit_transform(enc.fit_transform(log))
    assert im.row_times[1] == log["t"][6]
    with pytest.raises(TypeError, match="'unified_user_id' has dtype"):
        ConfidenceEncoder(grain="session", time_col="unified_user_id").fit_transform(
            log
        )
    nulls = log.with_columns(
        pl.when(pl.col("session_id") == 2).then(None).otherwise(pl.col("t")).alias("t")
    )
    with pytest.raises(ValueError, match="'t' has 3 null"):
        enc.fit_transform(nulls)
    with pytest.raises(ValueError, match="'nope'"):
        ConfidenceEncoder(grain="session", time_col="nope").fit(log)


# ------------------------------------------------------ the recommender
import math  # noqa: E402
import pickle  # noqa: E402
from itertools import product  # noqa: E402

from sklearn.base import clone  # noqa: E402

from skals import (  # noqa: E402
    PopularityRecommender,
    PseudoUserUnifier,
    SessionKNNRecommender,
)
from skals.recommender._knn import WEIGHTINGS  # noqa: E402

SIMILARITIES = ("vec", "cosine", "jaccard")


def _random_log(seed, n_sessions=90, n_items=25, n_users=6):
    """Sessions of a few users and anonymous keys, with tied times."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(1, n_sessions + 1):
        key = f"u_{rng.integers(n_users)}" if rng.random() < 0.4 else f"s_{s}"
        start = int(rng.integers(0, 40)) * 10
        n = int(rng.integers(1, 7))
        base = rng.integers(0, n_items - 5)  # some locality: overlapping sessions
        for e in range(n):
            item = (
                int(base + rng.integers(0, 6))
                if rng.random() < 0.8
                else int(rng.integers(0, n_items))
            )
            t = start + int(rng.integers(0, 3))  # ties inside sessions
            rows.append((key, s, item, int(rng.random() < 0.15), t + e // 2))
    return pl.DataFrame(
        rows,
        schema=["unified_user_id", "session_id", "partnumber", "add_to_cart", "t"],
        orient="row",
    )


def _matrices(log, test_sessions):
    enc = ConfidenceEncoder(grain="session", time_col="t")
    train = log.filter(~pl.col("session_id").is_in(test_sessions))
    test = log.filter(pl.col("session_id").is_in(test_sessions))
    builder = InteractionMatrixBuilder()
    im_train = builder.fit_transform(enc.fit_transform(train))
    with warnings_ignored():
        im_test = builder.transform(enc.transform(test))
    return train, test, im_train, im_test


def warnings_ignored():
    import warnings

    cm = warnings.catch_warnings()
    cm.__enter__()
    warnings.simplefilter("ignore")

    class _Exit:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            cm.__exit__(*exc)

    return _Exit()


def _pos_weight(name, d, n):
    i = n - d
    return {
        "same": 1.0,
        "div": i / n,
        "quadratic": (i / n) ** 2,
        "linear": max(1.0 - 0.1 * d, 0.0),
        "log": 1.0 / math.log10(d + 1.7),
    }[name]


def _decay(name, step):
    return {
        "same": 1.0,
        "div": 1.0 / step,
        "quadratic": 1.0 / step**2,
        "linear": max(1.0 - 0.1 * step, 0.0),
        "log": 1.0 / math.log10(step + 1.7),
    }[name]


def naive_knn(train, test, params, k, cart_weight=10.0):
    """Per-session loop over the published definitions (V-SKNN / SKNN).

    ``train``/``test`` are raw event logs. Returns {session_id: [items]}.
    """
    p = {
        "n_neighbors": 100,
        "sample_size": 1000,
        "similarity": "vec",
        "weighting": "div",
        "weighting_score": "div",
        "idf_weighting": 0.0,
        "neighbor_values": "binary",
        **params,
    }
    # training sessions: items with confidence, last time; order (time, id)
    agg = train.group_by("session_id", "partnumber").agg(
        pl.len().alias("v"), pl.col("add_to_cart").sum().alias("c")
    )
    sess = {}
    for sid, item, v, c in agg.iter_rows():
        sess.setdefault(sid, {})[item] = 1.0 + v + cart_weight * c
    times = dict(train.group_by("session_id").agg(pl.col("t").max()).iter_rows())
    order = sorted(sess, key=lambda s: (times[s], s))
    rank = {s: r for r, s in enumerate(order)}  # larger: more recent
    known = sorted({i for items in sess.values() for i in items})
    col = {item: j for j, item in enumerate(known)}
    n_sessions = len(sess)
    idf = {i: math.log(n_sessions / sum(i in s for s in sess.values())) for i in known}
    pop = {i: sum(s.get(i, 0.0) for s in sess.values()) for i in known}
    pop_order = sorted(known, key=lambda i: (-pop[i], col[i]))
    out = {}
    for sid in sorted(test["session_id"].unique()):
        ev = test.filter(pl.col("session_id") == sid)
        last = ev.group_by("partnumber").agg(pl.col("t").max())
        items = sorted(
            (it for it, t in last.iter_rows() if it in col),
            key=lambda it: (dict(last.iter_rows())[it], it),
        )  # oldest first
        n = len(items)
        weight = {
            it: _pos_weight(p["weighting"], n - 1 - pos, n)
            for pos, it in enumerate(items)
        }
        step = {it: n - pos for pos, it in enumerate(items)}
        cands = [s for s in order if set(sess[s]) & set(items) and s != sid]
        cands.sort(key=lambda s: -rank[s])
        if p["sample_size"] is not None:
            cands = cands[: p["sample_size"]]
        neigh = []
        for s in cands:
            shared = sorted(set(sess[s]) & set(items), key=lambda it: col[it])
            dot = 0.0
            for it in shared:
                dot += weight[it]
            la, lb = n, len(sess[s])
            if p["similarity"] == "vec":
                sim = dot / la
            elif p["similarity"] == "cosine":
                sim = dot / math.sqrt(la * lb)
            else:
                sim = dot / (la + lb - len(shared))
            if sim > 0:
                neigh.append((s, sim, min(step[it] for it in shared)))
        neigh.sort(key=lambda x: (-x[1], -rank[x[0]]))
        neigh = neigh[: p["n_neighbors"]]
        scores = {}
        for s, sim, st in sorted(neigh, key=lambda x: rank[x[0]]):
            w = sim * _decay(p["weighting_score"], st)
            for it in sorted(sess[s], key=lambda it: col[it]):
                v = 1.0 if p["neighbor_values"] == "binary" else sess[s][it]
                scores[it] = scores.get(it, 0.0) + w * v
        idf_w = float(p["idf_weighting"])
        if idf_w:
            scores = {it: sc * (1.0 + idf_w * idf[it]) for it, sc in scores.items()}
        scores = {it: sc for it, sc in scores.items() if sc != 0}
        ranked = sorted(scores, key=lambda it: (-scores[it], col[it]))[:k]
        fill = [it for it in pop_order if it not in ranked]
        out[sid] = (ranked + fill)[:k]
    return out


def _knn_answers(model, im_test):
    pred = model.predict(im_test)
    return {sid: recs for sid, recs, _ in pred.iter_rows()}


CASES = [
    {"similarity": s, "weighting": w, "sample_size": size}
    for (s, w), size in product(product(SIMILARITIES, WEIGHTINGS), (None, 4))
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_parity_with_naive_loop(case):
    i = CASES.index(case)
    params = {
        **case,
        "weighting_score": WEIGHTINGS[i % 5],
        "n_neighbors": 3 + i % 4,
        "idf_weighting": (0.0, 2.0)[i % 2],
        "neighbor_values": ("binary", "confidence")[(i // 2) % 2],
    }
    log = _random_log(i)
    test_ids = list(range(70, 91))
    train, test, im_train, im_test = _matrices(log, test_ids)
    model = SessionKNNRecommender(k=6, **params).fit(im_train)
    got = _knn_answers(model, im_test)
    want = naive_knn(train, test, params, k=6)
    assert got == {s: want[s] for s in got}
    assert len(got) == len(set(test["session_id"]))
