"""Tests of SLISTRecommender (SLIS + SLIT closed form; EASE as alpha=1)."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from skals import (
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PopularityRecommender,
    SLISTRecommender,
)

T0 = dt.datetime(2024, 6, 1)


def _frame(sessions, hours=None):
    rows = []
    for s, items in enumerate(sessions):
        start = T0 + dt.timedelta(hours=s if hours is None else hours[s])
        for p, item in enumerate(items):
            rows.append((f"s_{s}", s, item, 0, start + dt.timedelta(seconds=p)))
    return pl.DataFrame(
        rows,
        schema=[
            "unified_user_id",
            "session_id",
            "partnumber",
            "add_to_cart",
            "timestamp_local",
        ],
        orient="row",
    )


def _matrix(log, builder=None):
    enc = ConfidenceEncoder(grain="session", time_col="timestamp_local")
    encoded = enc.fit_transform(log)
    if builder is None:
        builder = InteractionMatrixBuilder().fit(encoded)
    return builder.transform(encoded), builder


def _random_sessions(seed, n_sessions=40, n_items=8, max_len=7):
    rng = np.random.default_rng(seed)
    return [
        [int(i) for i in rng.integers(0, n_items, size=rng.integers(1, max_len))]
        for _ in range(n_sessions)
    ]


def _naive_slist(sessions, items, alpha, l2, delta_pos, session_weights):
    """Choi et al. (2021) from the equations, one column at a time.

    X: one binary row per session; S, T: one row per split t of a session
    (items in the order of their last event, positions p = 1..n): S holds
    p <= t with exp(-(t - p)/delta), T holds p > t with exp(-(p - t)/delta).
    Column j of B minimises alpha ||X_j - X b||^2_W + (1 - alpha)
    ||T_j - S b||^2_W + l2 ||b||^2 with b_j = 0: the ridge system without
    item j.
    """
    col = {item: c for c, item in enumerate(items)}
    m = len(items)
    X, S, T, wx, ws = [], [], [], [], []
    for seq, w in zip(sessions, session_weights, strict=True):
        last = {item: p for p, item in enumerate(seq)}
        order = sorted(last, key=last.get)
        row = np.zeros(m)
        row[[col[i] for i in order]] = 1.0
        X.append(row)
        wx.append(w)
        n = len(order)
        for t in range(1, n):
            s_row, t_row = np.zeros(m), np.zeros(m)
            for p, item in enumerate(order, start=1):
                if p <= t:
                    s_row[col[item]] = np.exp(-(t - p) / delta_pos)
                else:
                    t_row[col[item]] = np.exp(-(p - t) / delta_pos)
            S.append(s_row)
            T.append(t_row)
            ws.append(w)
    X, Wx = np.array(X), np.diag(wx)
    S = np.array(S).reshape(-1, m)
    T = np.array(T).reshape(-1, m)
    Ws = np.diag(ws) if ws else np.zeros((0, 0))
    B = np.zeros((m, m))
    for j in range(m):
        rest = [i for i in range(m) if i != j]
        A = alpha * X[:, rest].T @ Wx @ X[:, rest] + l2 * np.eye(m - 1)
        b = alpha * X[:, rest].T @ Wx @ X[:, j]
        if len(S):
            A += (1 - alpha) * S[:, rest].T @ Ws @ S[:, rest]
            b += (1 - alpha) * S[:, rest].T @ Ws @ T[:, j]
        B[rest, j] = np.linalg.solve(A, b)
    return B


@pytest.mark.parametrize(
    ("alpha", "l2", "delta"), [(0.5, 10.0, 1.0), (0.2, 1.0, 2.5), (1.0, 3.0, 1.0)]
)
def test_weights_match_naive_closed_form(alpha, l2, delta):
    sessions = _random_sessions(int(l2))
    im, _ = _matrix(_frame(sessions))
    model = SLISTRecommender(
        alpha=alpha, l2=l2, position_decay=delta, repeat_weight=0.0
    ).fit(im)
    items = im.item_ids.to_list()
    expected = _naive_slist(sessions, items, alpha, l2, delta, [1.0] * len(sessions))
    assert model.kept_items_.tolist() == list(range(len(items)))
    np.testing.assert_allclose(model.coef_, expected, rtol=1e-4, atol=1e-6)


def test_time_decay_weights_sessions():
    sessions = _random_sessions(5)
    hours = [24.0 * i / 4 for i in range(len(sessions))]  # 6 h apart
    log = _frame(sessions, hours)
    im, _ = _matrix(log)
    model = SLISTRecommender(alpha=0.5, time_decay=2.0, repeat_weight=0.0).fit(im)
    # a session's weight: exp(-(t_max - t_s) / 2 days), t_s its last event
    last = np.array(
        [h * 3600 + len(s) - 1 for h, s in zip(hours, sessions, strict=True)]
    )
    weights = np.exp(-(last.max() - last) / (2.0 * 86400))
    expected = _naive_slist(sessions, im.item_ids.to_list(), 0.5, 10.0, 1.0, weights)
    np.testing.assert_allclose(model.coef_, expected, rtol=1e-4, atol=1e-6)
    plain = InteractionMatrixBuilder().fit_transform(
        ConfidenceEncoder(grain="session").fit_transform(log)
    )
    with pytest.raises(ValueError, match="time_col"):
        SLISTRecommender(time_decay=2.0).fit(plain)


def test_ease_on_a_plain_matrix():
    rng = np.random.default_rng(0)
    X = (rng.random((30, 6)) < 0.4).astype(float)
    model = SLISTRecommender(l2=2.0, repeat_weight=0.0).fit(X)
    # Steck (2019): B = I - P diagMat(1 / diag(P)), P = (X'X + l2 I)^-1
    P = np.linalg.inv(X.T @ X + 2.0 * np.eye(6))
    expected = np.eye(6) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(model.coef_, expected, rtol=1e-4, atol=1e-6)
    assert not model.ordered_


def test_max_items_keeps_the_most_frequent():
    sessions = [[1, 2], [1, 2, 3], [1, 3], [2, 3], [4, 1]]
    im, builder = _matrix(_frame(sessions))
    model = SLISTRecommender(alpha=0.5, max_items=3, k=4).fit(im)
    # 1 in 4 sessions, 2 and 3 in 3, 4 in 1
    assert model.kept_items_.tolist() == [0, 1, 2]
    kept = [[i for i in s if i != 4] for s in sessions]
    expected = _naive_slist(kept, [1, 2, 3], 0.5, 10.0, 1.0, [1.0] * 5)
    np.testing.assert_allclose(model.coef_, expected, rtol=1e-4, atol=1e-6)
    # a session of item 4 alone has nothing to go on: the fallback answers
    q, _ = _matrix(_frame([[4]]), builder)
    with pytest.warns(UserWarning, match="k=10 clipped"):
        out = model.similar_items([4])
    assert out["similar_items"][0].to_list() == []
    pop = PopularityRecommender(k=4).fit(im).predict(q)
    assert model.predict(q)["recommendations"].equals(pop["recommendations"])


def test_scores_are_x_times_b():
    sessions = _random_sessions(7)
    im, builder = _matrix(_frame(sessions))
    model = SLISTRecommender(inference_decay=2.0, k=3).fit(im)
    items = im.item_ids.to_list()
    queries = [[0, 3, 5, 3], [7], [2, 1]]
    q, _ = _matrix(_frame(queries), builder)
    out = model.predict(q).sort("session_id")
    B = model.coef_.astype(np.float64)
    for seq, recs, scores in zip(
        queries, out["recommendations"], out["scores"], strict=True
    ):
        last = {item: p for p, item in enumerate(seq)}
        recent = sorted(last, key=last.get, reverse=True)  # rank 1 first
        x = np.zeros(len(items))
        for r, item in enumerate(recent, start=1):
            x[items.index(item)] = np.exp(-(r - 1) / 2.0)
        s = x @ B
        best = np.lexsort((np.arange(s.size), -s))[:3]
        assert recs.to_list() == [items[i] for i in best]
        np.testing.assert_allclose(scores.to_list(), s[best], rtol=1e-5)


def test_repeat_weight_sets_the_diagonal():
    sessions = [[1, 1, 2], [1, 2], [2, 2, 2, 3]]
    im, _ = _matrix(_frame(sessions))
    model = SLISTRecommender(repeat_weight=0.5).fit(im)
    # item 1: 1 repeat in 2 sessions; 2: 2 in 3; 3: none
    np.testing.assert_allclose(np.diag(model.coef_), [0.25, 1 / 3, 0.0], rtol=1e-6)
    zero = SLISTRecommender(repeat_weight=0.0).fit(im)
    assert not np.diag(zero.coef_).any()


def test_beats_popularity_on_planted_sequences():
    rng = np.random.default_rng(0)
    successor = rng.permutation(40)
    sessions = []
    for _ in range(500):
        item = int(rng.integers(40))
        seq = []
        for _ in range(int(rng.integers(2, 6))):
            seq.append(item)
            item = int(successor[item])
        sessions.append(seq)
    im, builder = _matrix(_frame(sessions[:400]))
    tests = sessions[400:]
    q, _ = _matrix(_frame([s[:-1] for s in tests]), builder)

    def hit_rate(model):
        out = model.fit(im).predict(q)
        return np.mean(
            [
                tests[sid][-1] in recs
                for sid, recs in zip(
                    out["session_id"], out["recommendations"], strict=True
                )
            ]
        )

    assert hit_rate(SLISTRecommender(k=1)) > 0.9
    assert hit_rate(PopularityRecommender(k=1)) < 0.2


def test_similar_items_is_the_weight_row():
    sessions = _random_sessions(9)
    im, _ = _matrix(_frame(sessions))
    model = SLISTRecommender().fit(im)
    items = im.item_ids.to_list()
    out = model.similar_items([items[2]], k=3)
    row = model.coef_[2].astype(np.float64).copy()
    row[2] = 0.0
    best = [i for i in np.lexsort((np.arange(row.size), -row)) if row[i] > 0][:3]
    assert out["similar_items"][0].to_list() == [items[i] for i in best]


def test_needs_order_clone_pickle():
    log = _frame([[1, 2], [2, 3]])
    plain = InteractionMatrixBuilder().fit_transform(
        ConfidenceEncoder(grain="session").fit_transform(log)
    )
    with pytest.raises(ValueError, match="time_col"):
        SLISTRecommender().fit(plain)
    im, _ = _matrix(_frame(_random_sessions(2)))
    model = SLISTRecommender(inference_decay=1.0).fit(im)
    before = model.predict(im)
    model.set_params(inference_decay=None)
    assert model.predict(im).equals(before)
    assert pickle.loads(pickle.dumps(model)).predict(im).equals(before)
    assert clone(model).get_params()["inference_decay"] is None
