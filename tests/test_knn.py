"""Tests of SessionKNNRecommender and the order/time carry-through it needs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import pickle
import warnings
from itertools import product

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from skals import (
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    SessionKNNRecommender,
)
from skals.recommender._knn import WEIGHTINGS


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # items unseen in training: dropped
        im_test = builder.transform(enc.transform(test))
    return train, test, im_train, im_test


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


def naive_knn(train, test, params, k, cart_weight=10.0, history_weight=0.0):
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
        if history_weight:  # the key's training items join, older than all
            key = ev["unified_user_id"][0]
            own = train.filter(pl.col("unified_user_id") == key)["partnumber"]
            for it in sorted(set(own) - set(items)):
                weight[it], step[it] = history_weight, n + 1
                items.append(it)
            n = len(items)
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
    return {sid: recs for sid, recs, _, _ in pred.iter_rows()}


CASES = [
    {"similarity": s, "weighting": w, "sample_size": size}
    for (s, w), size in product(product(SIMILARITIES, WEIGHTINGS), (None, 4))
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_parity_with_naive_loop(case):
    """Every similarity x weighting, with and without sampling."""
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


def _tiny():
    """Three training sessions and three query sessions (items 1..4)."""
    rows = [
        ("s_1", 1, 1, 0, 0), ("s_1", 1, 2, 0, 1),
        ("s_2", 2, 2, 0, 5), ("s_2", 2, 3, 0, 6),
        ("s_3", 3, 3, 1, 10), ("s_3", 3, 4, 0, 11),
        ("s_7", 7, 1, 0, 100), ("s_7", 7, 2, 0, 101),
        ("s_8", 8, 2, 0, 100), ("s_8", 8, 1, 0, 101),
        ("s_9", 9, 3, 0, 200),
    ]  # fmt: skip
    log = pl.DataFrame(
        rows,
        schema=["unified_user_id", "session_id", "partnumber", "add_to_cart", "t"],
        orient="row",
    )
    return _matrices(log, [7, 8, 9])[2:]


def _answers(model, im):
    return {s: (r, sc) for s, r, sc, _ in model.predict(im).iter_rows()}


def test_hand_computed_scores():
    im_train, im_test = _tiny()
    base = {"sample_size": None, "k": 4}
    # session 7: A=1 then B=2 (B last): weights A 1/2, B 1; s1 sim 1.5/2,
    # s2 sim 1/2, both hold B (step 1)
    got = _answers(SessionKNNRecommender(**base).fit(im_train), im_test)
    assert got[7][0] == [2, 1, 3, 4]
    np.testing.assert_allclose(got[7][1], [1.25, 0.75, 0.5, 0.0])
    # session 8: B then A (A last): s2 shares only B (weight 1/2, step 2)
    assert got[8][0] == [2, 1, 3, 4]
    np.testing.assert_allclose(got[8][1], [0.875, 0.75, 0.125, 0.0])
    # jaccard: s1 1.5 / |{1, 2}|, s2 1 / |{1, 2, 3}|
    jac = _answers(
        SessionKNNRecommender(similarity="jaccard", **base).fit(im_train), im_test
    )
    np.testing.assert_allclose(jac[7][1], [0.75 + 1 / 3, 0.75, 1 / 3, 0.0])
    # idf: log(3 / sessions with the item)
    idf = _answers(
        SessionKNNRecommender(idf_weighting=1.0, **base).fit(im_train), im_test
    )
    assert idf[8][0] == [1, 2, 3, 4]
    np.testing.assert_allclose(
        idf[8][1][:3],
        [0.75 * (1 + math.log(3)), 0.875 * (1 + math.log(1.5)), 0.125 * 1.405465],
        rtol=1e-6,
    )
    # session 9 (item 3): s2 and s3 at similarity 1; confidences weigh the
    # cart add of 3 in s3 (1 + 1 + 10)
    conf = _answers(
        SessionKNNRecommender(neighbor_values="confidence", **base).fit(im_train),
        im_test,
    )
    assert got[9][0] == [3, 2, 4, 1] and conf[9][0] == [3, 2, 4, 1]
    np.testing.assert_allclose(got[9][1], [2.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(conf[9][1], [14.0, 2.0, 2.0, 0.0])
    # sample_size=1: only the most recent candidate (s3); the rest is
    # popularity (summed confidence: 3, then 2, then 1)
    one = _answers(SessionKNNRecommender(sample_size=1, k=4).fit(im_train), im_test)
    assert one[9][0] == [3, 4, 2, 1]
    np.testing.assert_allclose(one[9][1], [1.0, 1.0, 0.0, 0.0])
    # n_neighbors=1 on session 7: only s1 (the most similar)
    nn = _answers(SessionKNNRecommender(n_neighbors=1, **base).fit(im_train), im_test)
    assert nn[7][0][:2] == [1, 2]
    np.testing.assert_allclose(nn[7][1][:2], [0.75, 0.75])


def test_filters_and_fallback():
    im_train, im_test = _tiny()
    model = SessionKNNRecommender(
        k=2, sample_size=None, filter_already_liked_items=True
    ).fit(im_train)
    got = _answers(model, im_test)
    assert got[7][0] == [3, 4]  # 1 and 2 are the session's own
    model = SessionKNNRecommender(k=3, sample_size=None, filter_items=[2]).fit(im_train)
    assert _answers(model, im_test)[7][0] == [1, 3, 4]
    model = SessionKNNRecommender(k=2, sample_size=None, items=[3, 4]).fit(im_train)
    assert _answers(model, im_test)[7][0] == [3, 4]
    # a session with no known item gets popularity with its scores
    empty = im_test.matrix.copy()
    empty.data[:] = 0
    cold = _answers(
        SessionKNNRecommender(k=2).fit(im_train),
        dataclasses.replace(im_test, matrix=empty),
    )
    pop = PopularityRecommender(k=2).fit(im_train).predict(im_test)
    assert cold[7][0] == pop["recommendations"][0].to_list() == [3, 2]
    np.testing.assert_allclose(cold[7][1], pop["scores"][0].to_list())


def test_training_session_is_not_its_own_neighbour():
    im_train, _ = _tiny()
    model = SessionKNNRecommender(k=4, sample_size=None).fit(im_train)
    got = _answers(model, im_train)
    # session 1 (items 1, 2): its only other neighbour is s2 (holds 2)
    assert got[1][0] == [2, 3, 1, 4]
    np.testing.assert_allclose(got[1][1], [0.5, 0.5, 0.0, 0.0])


def test_history_adds_context():
    rows = [
        ("u_1", 1, 5, 0, 0), ("u_1", 1, 6, 0, 1),
        ("s_2", 2, 6, 0, 5), ("s_2", 2, 7, 0, 6),
        ("s_3", 3, 1, 0, 10), ("s_3", 3, 2, 0, 11),
        ("u_1", 9, 1, 0, 100),
    ]  # fmt: skip
    log = pl.DataFrame(
        rows,
        schema=["unified_user_id", "session_id", "partnumber", "add_to_cart", "t"],
        orient="row",
    )
    _, _, im_train, im_test = _matrices(log, [9])
    plain = SessionKNNRecommender(k=3, sample_size=None).fit(im_train)
    assert _answers(plain, im_test)[9][0][:2] == [1, 2]
    hist = SessionKNNRecommender(k=5, sample_size=None, history_weight=0.5)
    got = _answers(hist.fit(im_train), im_test)[9]
    # query {1 (weight 1), 5, 6 (history, 0.5 each)}, |a| = 3; s3: 1/3,
    # s1: 1/3 and s2: 0.5/3, both at step 2 (div: halved)
    assert got[0] == [1, 2, 6, 5, 7]
    np.testing.assert_allclose(
        got[1], [1 / 3, 1 / 3, 1 / 6 + 1 / 12, 1 / 6, 1 / 12], rtol=1e-12
    )
    keys = hist.recommend_keys(["u_1"], k=2)
    # history alone, every item weight 1: s1 (itself) 2/2, s2 1/2
    assert keys["recommendations"][0].to_list() == [6, 5]


def test_beats_popularity_on_make_sessions():
    from skals.datasets import make_sessions

    log = PseudoUserUnifier().fit_transform(make_sessions(3_000, random_state=0))
    cut = log["timestamp_local"].quantile(0.8)
    last = log.group_by("session_id").agg(pl.col("timestamp_local").min())
    test_ids = last.filter(pl.col("timestamp_local") > cut)["session_id"]
    train = log.filter(~pl.col("session_id").is_in(test_ids.implode()))
    test = log.filter(pl.col("session_id").is_in(test_ids.implode())).with_columns(
        pl.int_range(pl.len()).over("session_id").alias("pos"),
        pl.len().over("session_id").alias("n"),
    )
    revealed = test.filter((pl.col("pos") < pl.col("n") // 2) & (pl.col("n") >= 4))
    hidden = test.filter(
        (pl.col("pos") >= pl.col("n") // 2) & (pl.col("n") >= 4)
    ).select("session_id", "partnumber")
    enc = ConfidenceEncoder(grain="session", time_col="timestamp_local")
    builder = InteractionMatrixBuilder()
    im_train = builder.fit_transform(enc.fit_transform(train))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im_test = builder.transform(enc.transform(revealed))

    def hit_rate(model):
        pred = model.fit(im_train).predict(im_test).explode("recommendations")
        hits = pred.join(
            hidden.unique(),
            left_on=["session_id", "recommendations"],
            right_on=["session_id", "partnumber"],
        )
        return hits["session_id"].n_unique() / pred["session_id"].n_unique()

    knn = hit_rate(SessionKNNRecommender(k=5))
    pop = hit_rate(PopularityRecommender(k=5))
    assert knn > 1.5 * pop, (knn, pop)
    stan = SessionKNNRecommender(
        k=5,
        similarity="cosine",
        weighting=8.0,
        weighting_score=0.5,
        recency_decay=10.0,
        neighbor_position_decay=8.0,
        idf_weighting=2.0,
    )
    assert hit_rate(stan) > 1.5 * pop


def test_sklearn_conventions():
    im_train, im_test = _tiny()
    model = SessionKNNRecommender(k=3, sample_size=None, similarity="cosine")
    assert clone(model).get_params() == model.get_params()
    model.fit(im_train)
    before = model.predict(im_test)
    again = pickle.loads(pickle.dumps(model)).predict(im_test)
    assert before.equals(again)
    model.set_params(similarity="jaccard", n_neighbors=1, k=3, weighting="same")
    assert model.predict(im_test).equals(before)
    assert model.fit(im_train) is model
    assert not model.predict(im_test).equals(before)


def test_errors():
    im_train, im_test = _tiny()
    enc = ConfidenceEncoder(grain="session")
    rows = pl.DataFrame(
        {
            "unified_user_id": ["s_1", "s_1", "s_2"],
            "session_id": [1, 1, 2],
            "partnumber": [1, 2, 2],
            "add_to_cart": [0, 0, 0],
        }
    )
    untimed = InteractionMatrixBuilder().fit_transform(enc.fit_transform(rows))
    with pytest.raises(ValueError, match="time_col"):
        SessionKNNRecommender().fit(untimed)
    # without sampling it fits, but ordered weightings need the recency
    model = SessionKNNRecommender(sample_size=None).fit(untimed)
    with pytest.raises(ValueError, match="time_col"):
        model.predict(untimed)
    same = SessionKNNRecommender(
        sample_size=None, weighting="same", weighting_score="same", k=1
    )
    assert same.fit(untimed).predict(untimed)["recommendations"].to_list() == [
        [2],
        [1],
    ]
    with pytest.raises(ValueError, match="similarity"):
        SessionKNNRecommender(similarity="dice").fit(im_train)
    with pytest.raises(ValueError, match="weighting"):
        SessionKNNRecommender(weighting="exp").fit(im_train)
    with pytest.raises(ValueError, match="Negative"):
        SessionKNNRecommender().fit(np.array([[1.0, -1.0]]))
    fitted = SessionKNNRecommender().fit(im_train)
    with pytest.raises(ValueError, match="items differ|items, but"):
        fitted.predict(untimed)


@pytest.mark.parametrize(
    "params",
    [
        {"similarity": "vec", "weighting": "div", "history_weight": 0.3},
        {"similarity": "jaccard", "weighting": "linear", "history_weight": 1.0},
        {"similarity": "cosine", "weighting": "log", "weighting_score": "quadratic"},
    ],
)
def test_parity_long_sessions_and_history(params):
    # test sessions of up to 70 distinct items (the smallest shared step is
    # then looked up, not read from the product) and users' history
    rng = np.random.default_rng(7)
    log = _random_log(3, n_sessions=120, n_items=90, n_users=4)
    long = []
    for s in (121, 122, 123):
        items = rng.permutation(90)[: 50 + 10 * (s - 121)]
        for e, item in enumerate(items):
            long.append(("u_1", s, int(item), 0, 500 + e))
    log = pl.concat([log, pl.DataFrame(long, schema=log.schema, orient="row")])
    test_ids = [*range(100, 121), 121, 122, 123]
    train, test, im_train, im_test = _matrices(log, test_ids)
    hw = params.get("history_weight", 0.0)
    model = SessionKNNRecommender(k=8, n_neighbors=5, sample_size=6, **params)
    got = _knn_answers(model.fit(im_train), im_test)
    ref = {key: v for key, v in params.items() if key != "history_weight"}
    want = naive_knn(
        train, test, {**ref, "n_neighbors": 5, "sample_size": 6}, 8, history_weight=hw
    )
    assert got == {s: want[s] for s in got}
    assert {121, 122, 123} <= set(got)


def test_segment_topk_matches_a_full_sort():
    from skals.recommender._knn import _segment_topk

    rng = np.random.default_rng(0)
    lens = rng.integers(0, 300, 50)
    row = np.repeat(np.arange(50), lens)
    pos = np.concatenate([rng.permutation(n) for n in lens])
    values = rng.integers(0, 6, row.size).astype(float)  # many ties
    for k in (1, 5, 100):
        got = _segment_topk(row, pos, values, 50, k)
        order = np.lexsort((pos, -values, row))
        first = np.searchsorted(row[order], row[order])
        want = order[np.arange(order.size) - first < k]
        np.testing.assert_array_equal(got, want)


def test_plain_matrix_degrades_explicitly():
    X = np.array(
        [[1, 1, 0, 0, 0], [0, 1, 0, 1, 0], [0, 1, 0, 0, 1], [1, 0, 1, 0, 0]],
        dtype=float,
    )
    query = np.array([[1, 1, 0, 0, 0]], dtype=float)
    # no order: every query item counts as the last one, so the position
    # weightings all equal "same"
    ref = SessionKNNRecommender(k=4, sample_size=None, weighting="same").fit(X)
    for weighting in WEIGHTINGS:
        model = SessionKNNRecommender(k=4, sample_size=None, weighting=weighting)
        np.testing.assert_array_equal(model.fit(X).predict(query), ref.predict(query))
    # rows count as ordered by index: sample_size=1 keeps the last candidate
    # (row 3: items 0 and 2), the rest is popularity (item 1, then 0)
    last = SessionKNNRecommender(k=4, sample_size=1).fit(X)
    np.testing.assert_array_equal(last.predict(query), [[0, 2, 1, 3]])


def test_recommend_keys_match_exactly():
    # fitted on integer keys, the string "010" is not key 10 (it was cast to
    # 10 with strict=False and answered from key 10's history)
    enc = pl.DataFrame(
        {
            "unified_user_id": [10, 10, 20, 20, 30, 40, 50],
            "partnumber": [1, 2, 2, 3, 5, 5, 5],  # item 5 is the most popular
            "confidence": [2.0] * 7,
        }
    )
    im = InteractionMatrixBuilder().fit_transform(enc)
    model = SessionKNNRecommender(
        k=2, sample_size=None, weighting="same", weighting_score="same"
    ).fit(im)
    known = model.recommend_keys([10])
    with pytest.warns(UserWarning, match="1 of 1 keys were not seen"):
        typed = model.recommend_keys(["010"])
    with pytest.warns(UserWarning, match="not seen"):
        unseen = model.recommend_keys([99])  # an unknown key of the right type
    # "010" is answered like any unknown key (the fallback), not as key 10
    assert typed["recommendations"].to_list() == unseen["recommendations"].to_list()
    assert typed["recommendations"].to_list() != known["recommendations"].to_list()


def naive_stan(train, test, params, k):
    """Per-session loop over STAN / VSTAN's published definitions.

    Garg et al. (SIGIR 2019) and Ludewig et al. (2021), with positions the
    recency ranks of a session's distinct items (1: its last item):

    - query item ``i`` at ``d`` steps before the last: ``w_i = exp(-d/spw)``;
    - similarity: cosine of the query's weight vector and the neighbour's
      binary vector, times ``exp(-(t_query - t_neighbour) / (snh days))``
      (a later neighbour counts as simultaneous);
    - the ``n_neighbors`` most similar of the ``sample_size`` most recent
      sessions sharing an item; each adds, to every item ``j`` it holds,
      ``sim * exp(-(step* - 1)/ipw) * exp(-|pos(j) - pos(i*)|/inh) *
      (1 + idf_w * idf(j))``, where ``i*`` is the neighbour's most recent item
      that the query holds and ``step*`` the query step of the query's most
      recent item that the neighbour holds.
    """
    p = params
    sess, times = {}, {}
    for sid, part in train.sort("t").group_by("session_id", maintain_order=True):
        last = part.group_by("partnumber").agg(pl.col("t").max())
        # oldest first (ties: the smaller id, as naive_knn); position 1: last
        items = sorted(last.iter_rows(), key=lambda r: (r[1], r[0]))
        sess[sid[0]] = {it: len(items) - j for j, (it, _) in enumerate(items)}
        times[sid[0]] = part["t"].max()
    order = sorted(sess, key=lambda s: (times[s], s))
    rank = {s: r for r, s in enumerate(order)}
    known = sorted({i for items in sess.values() for i in items})
    col = {item: j for j, item in enumerate(known)}
    n_sessions = len(sess)
    idf = {i: math.log(n_sessions / sum(i in s for s in sess.values())) for i in known}
    pop = {i: sum(1.0 + 0 for s in sess.values() if i in s) for i in known}
    out = {}
    for sid in sorted(test["session_id"].unique()):
        ev = test.filter(pl.col("session_id") == sid)
        last = ev.group_by("partnumber").agg(pl.col("t").max())
        items = sorted(
            ((it, t) for it, t in last.iter_rows() if it in col),
            key=lambda r: (r[1], r[0]),
        )
        step = {it: len(items) - j for j, (it, _) in enumerate(items)}
        if not step:
            continue
        t_query = ev["t"].max()  # the session's last event
        weight = {it: math.exp(-(st - 1) / p["weighting"]) for it, st in step.items()}
        norm = math.sqrt(sum(w * w for w in weight.values()))
        cands = [s for s in order if set(sess[s]) & set(step)]
        cands.sort(key=lambda s: -rank[s])
        cands = cands[: p["sample_size"]]
        neigh = []
        for s in cands:
            shared = set(sess[s]) & set(step)
            sim = sum(weight[it] for it in shared) / (norm * math.sqrt(len(sess[s])))
            gap = max(t_query - times[s], 0)
            sim *= math.exp(-gap / (p["recency_decay"] * 86400.0))
            if sim > 0:
                neigh.append((s, sim, shared))
        neigh.sort(key=lambda x: (-x[1], -rank[x[0]]))
        scores = {}
        for s, sim, shared in neigh[: p["n_neighbors"]]:
            st = min(step[it] for it in shared)
            star = min(sess[s][it] for it in shared)
            w = sim * math.exp(-(st - 1) / p["weighting_score"])
            for it, pos in sess[s].items():
                inh = math.exp(-abs(pos - star) / p["neighbor_position_decay"])
                val = w * inh * (1.0 + p["idf_weighting"] * idf[it])
                scores[it] = scores.get(it, 0.0) + val
        out[sid] = scores
    return out, col, pop


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stan_parity_with_naive_loop(seed):
    """STAN's weights: the scores of a naive loop over the definitions."""
    params = {
        "n_neighbors": 4 + seed,
        "sample_size": (None, 6, 12)[seed],
        "similarity": "cosine",
        "weighting": (0.5, 2.0, 8.0)[seed],
        "weighting_score": (0.3, 1.0, 4.0)[seed],
        "recency_decay": (0.0005, 0.002, 1.0)[seed],
        "neighbor_position_decay": (0.5, 2.0, 8.0)[seed],
        "idf_weighting": (0.0, 1.0, 2.0)[seed],
    }
    log = _random_log(seed)
    test_ids = list(range(70, 91))
    train, test, im_train, im_test = _matrices(log, test_ids)
    model = SessionKNNRecommender(**params).fit(im_train)
    n_items = im_train.matrix.shape[1]
    want_params = {**params, "sample_size": params["sample_size"] or 10**9}
    want, col, _ = naive_stan(train, test, want_params, k=n_items)
    weights, steps, self_rows = model._query(im_test.matrix, None, im_test, False)
    got = model._scores(weights, steps, self_rows, im_test.row_times).toarray()
    rows = {sid: r for r, sid in enumerate(im_test.row_ids.to_list())}
    assert set(want) <= set(rows)
    n_checked = 0
    for sid, scores in want.items():
        expect = np.zeros(n_items)
        for it, sc in scores.items():
            expect[col[it]] = sc
        np.testing.assert_allclose(got[rows[sid]], expect, rtol=1e-9, atol=1e-12)
        n_checked += bool(scores)
    assert n_checked >= 10


def test_stan_neutral_weights_reproduce_cosine_knn():
    """recency/neighbour-position decays off and weighting 'same': plain SKNN."""
    log = _random_log(5)
    _, _, im_train, im_test = _matrices(log, list(range(70, 91)))
    plain = SessionKNNRecommender(similarity="cosine", weighting="same").fit(im_train)
    huge = SessionKNNRecommender(
        similarity="cosine",
        weighting="same",
        recency_decay=1e12,
        neighbor_position_decay=1e12,
    ).fit(im_train)
    scores = []
    for model in (plain, huge):
        w, st, self_rows = model._query(im_test.matrix, None, im_test, False)
        scores.append(model._scores(w, st, self_rows, im_test.row_times).toarray())
    assert np.count_nonzero(scores[0]) > 50
    np.testing.assert_allclose(scores[1], scores[0], rtol=1e-9)


def test_stan_errors_and_max_sessions():
    log = _random_log(3)
    _, _, im_train, im_test = _matrices(log, list(range(70, 91)))
    X = im_train.matrix.toarray()
    with pytest.raises(ValueError, match="recency_decay=2.0 .*time_col"):
        SessionKNNRecommender(recency_decay=2.0, sample_size=None).fit(X)
    with pytest.raises(ValueError, match="neighbor_position_decay=1.0"):
        SessionKNNRecommender(neighbor_position_decay=1.0, sample_size=None).fit(X)
    model = SessionKNNRecommender(recency_decay=2.0).fit(im_train)
    with pytest.raises(ValueError, match="recency_decay"):
        model.predict(im_test.matrix)
    with pytest.raises(ValueError, match="weighting"):
        SessionKNNRecommender(weighting=-1.0).fit(im_train)
    # max_sessions keeps the most recent sessions (ties: the later row)
    kept = SessionKNNRecommender(max_sessions=10).fit(im_train)
    order = np.lexsort((np.arange(len(im_train.row_times)), im_train.row_times))
    assert kept.session_items_.shape[0] == 10
    assert kept.session_ids_.to_list() == im_train.row_ids.gather(order[-10:]).to_list()
    np.testing.assert_array_equal(
        kept.session_times_, np.sort(im_train.row_times)[-10:]
    )


def test_stan_recommend_keys_uses_the_latest_training_time():
    log = _random_log(4)
    _, _, im_train, _ = _matrices(log, list(range(70, 91)))
    model = SessionKNNRecommender(recency_decay=0.001, k=3).fit(im_train)
    keys = sorted(set(im_train.row_keys.to_list()))[:3]
    out = model.recommend_keys(keys)
    assert out.height == 3
    assert all(len(r) == 3 for r in out["recommendations"].to_list())
