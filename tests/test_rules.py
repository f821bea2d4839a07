"""Tests of SequentialRulesRecommender (session-rec's sequential rules)."""

from __future__ import annotations

import datetime as dt
import pickle
from collections import defaultdict

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from skals import (
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PopularityRecommender,
    SequentialRulesRecommender,
)
from skals.recommender._knn import WEIGHTINGS, score_decay
from skals.recommender._rules import sequences, session_ranks, successor_rules

T0 = dt.datetime(2024, 6, 1)


def _frame(sessions, users=None):
    """Event log from lists of item ids (one list per session, in order)."""
    rows = []
    for s, items in enumerate(sessions):
        user = users[s] if users is not None else f"s_{s}"
        for p, item in enumerate(items):
            rows.append((user, s, item, 0, T0 + dt.timedelta(hours=s, seconds=p)))
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


def _naive_rules(sessions, steps, weighting, repeats=True):
    """The definition, walked in Python: items in the order of their last
    event, rule a -> b for b at most ``steps`` places after a, weight w(d);
    plus a -> a once per repeated event of a in a session."""
    rules = defaultdict(float)
    for items in sessions:
        last = {item: p for p, item in enumerate(items)}
        order = sorted(last, key=last.get)
        for i, a in enumerate(order):
            for d in range(1, steps + 1):
                if i + d < len(order):
                    w = float(score_decay(weighting, np.array([float(d)]))[0])
                    rules[a, order[i + d]] += w
        if repeats:
            w1 = float(score_decay(weighting, np.array([1.0]))[0])
            for item in set(items):
                rules[item, item] += w1 * (items.count(item) - 1)
    return {k: v for k, v in rules.items() if v}


def _random_sessions(seed, n_sessions=60, n_items=12, max_len=9):
    rng = np.random.default_rng(seed)
    return [
        [int(i) for i in rng.integers(0, n_items, size=rng.integers(1, max_len))]
        for _ in range(n_sessions)
    ]


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("steps", [1, 2, 5, 20])
def test_rules_match_naive_loop(weighting, steps):
    sessions = _random_sessions(steps)
    im, _ = _matrix(_frame(sessions))
    model = SequentialRulesRecommender(window=steps, weighting=weighting).fit(im)
    items = im.item_ids.to_list()
    expected = _naive_rules(sessions, steps, weighting)
    R = model.rules_.tocoo()
    got = {
        (items[a], items[b]): v for a, b, v in zip(R.row, R.col, R.data, strict=True)
    }
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6)


def test_rules_without_repeats():
    sessions = [[1, 2, 1, 3], [2, 2, 3]]
    im, _ = _matrix(_frame(sessions))
    model = SequentialRulesRecommender(repeat_rules=False, weighting="div").fit(im)
    # session 1 by last event: 2, 1, 3; session 2: 2, 3
    np.testing.assert_allclose(
        model.rules_.toarray(),
        [[0, 0, 1], [1, 0, 1 + 0.5], [0, 0, 0]],
    )
    with_repeats = SequentialRulesRecommender(weighting="div").fit(im)
    # 1 clicked twice in session 1, 2 twice in session 2
    np.testing.assert_allclose(with_repeats.rules_.diagonal(), [1, 1, 0])


def test_hand_computed_answers_and_context():
    # 10 -> 11 -> 12 and 11 -> 13
    sessions = [[10, 11, 12], [11, 13], [11, 13], [12, 14]]
    log = _frame(sessions)
    im, builder = _matrix(log)
    model = SequentialRulesRecommender(weighting="div", n_context=1, k=3).fit(im)
    query, _ = _matrix(_frame([[10, 11], [12]]), builder)
    out = model.predict(query)
    # last item 11: rules 11 -> 13 (2), 11 -> 12 (1); then popularity fill
    assert out["recommendations"][0].to_list()[:2] == [13, 12]
    assert out["scores"][0].to_list()[:2] == [2.0, 1.0]
    assert out["recommendations"][1].to_list()[0] == 14
    # two context items, div: 11 counts 1, 10 counts 1/2 (10 -> 11: 1,
    # 10 -> 12: 1/2)
    two = SequentialRulesRecommender(
        weighting="div", n_context=2, context_weighting="div", k=3
    ).fit(im)
    out = two.predict(query)
    assert out["recommendations"][0].to_list() == [13, 12, 11]
    assert out["scores"][0].to_list() == [2.0, 1.25, 0.5]


def test_context_scores_match_naive_sum():
    sessions = _random_sessions(3, n_sessions=80)
    im, builder = _matrix(_frame(sessions))
    queries = _random_sessions(4, n_sessions=20)
    q, _ = _matrix(_frame(queries), builder)
    model = SequentialRulesRecommender(
        window=3, weighting="linear", n_context=3, context_weighting="quadratic", k=4
    ).fit(im)
    rules = _naive_rules(sessions, 3, "linear")
    out = model.predict(q).sort("session_id")
    for items, recs, scores in zip(
        queries, out["recommendations"], out["scores"], strict=True
    ):
        last = {item: p for p, item in enumerate(items)}
        recent = sorted(last, key=last.get, reverse=True)[:3]
        score = defaultdict(float)
        for t, a in enumerate(recent, start=1):
            for (x, b), v in rules.items():
                if x == a:
                    score[b] += v / t**2
        best = sorted((-v, b) for b, v in score.items() if v > 0)[:4]
        n = len(best)
        assert recs.to_list()[:n] == [b for _, b in best]
        np.testing.assert_allclose(scores.to_list()[:n], [-v for v, _ in best])


def test_beats_popularity_on_planted_sequences():
    rng = np.random.default_rng(0)
    # items follow a fixed successor chain; popularity cannot know it
    successor = rng.permutation(50)
    sessions = []
    for _ in range(400):
        item = int(rng.integers(50))
        seq = []
        for _ in range(int(rng.integers(2, 6))):
            seq.append(item)
            item = int(successor[item])
        sessions.append(seq)
    im, builder = _matrix(_frame(sessions[:300]))
    tests = sessions[300:]
    q, _ = _matrix(_frame([s[:-1] for s in tests]), builder)
    truth = {i: s[-1] for i, s in enumerate(tests)}

    def hit_rate(model):
        out = model.fit(im).predict(q)
        return np.mean(
            [
                truth[sid] in recs
                for sid, recs in zip(
                    out["session_id"], out["recommendations"], strict=True
                )
            ]
        )

    sr = hit_rate(SequentialRulesRecommender(k=1))
    pop = hit_rate(PopularityRecommender(k=1))
    assert sr > 0.9 and pop < 0.2


def test_max_rules_keeps_the_heaviest():
    sessions = [[1, 2], [1, 2], [1, 3], [1, 3], [1, 3], [1, 4]]
    im, _ = _matrix(_frame(sessions))
    model = SequentialRulesRecommender(max_rules=2).fit(im)
    np.testing.assert_allclose(model.rules_.toarray()[0], [0, 2, 3, 0])


def test_needs_order():
    log = _frame([[1, 2], [2, 3]])
    im = InteractionMatrixBuilder().fit_transform(
        ConfidenceEncoder(grain="session").fit_transform(log)
    )
    with pytest.raises(ValueError, match="time_col"):
        SequentialRulesRecommender().fit(im)


def test_plain_matrix_is_co_occurrence():
    X = np.array([[1, 1, 1, 0], [0, 1, 0, 1]])
    model = SequentialRulesRecommender().fit(X)
    np.testing.assert_allclose(
        model.rules_.toarray(),
        [[0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 0, 0], [0, 1, 0, 0]],
    )
    assert not model.ordered_


def test_similar_items_is_the_rules_row():
    sessions = [[10, 11, 12], [10, 12], [10, 13]]
    im, _ = _matrix(_frame(sessions))
    model = SequentialRulesRecommender(weighting="div").fit(im)
    out = model.similar_items([10], k=3)
    assert out["similar_items"][0].to_list() == [12, 11, 13]
    assert out["scores"][0].to_list() == [1.5, 1.0, 1.0]


def test_recommend_keys_and_filters():
    sessions = [[10, 11], [11, 12], [12, 13], [11, 12]]
    log = _frame(sessions, users=["u_1", "u_2", "u_1", "s_3"])
    im, _ = _matrix(log)
    model = SequentialRulesRecommender(k=2).fit(im)
    out = model.recommend_keys(["u_1", "u_2"])
    # u_1's latest session ends with 13 (no rules: popularity); u_2's with 12
    assert out["recommendations"][1].to_list()[0] == 13
    with pytest.warns(UserWarning, match="1 of 2 keys were not seen"):
        out = model.recommend_keys(["u_2", "nobody"])
    assert out["recommendations"][1].to_list() == [11, 12]  # most popular
    banned = SequentialRulesRecommender(k=2, filter_items=[13]).fit(im)
    assert 13 not in banned.recommend_keys(["u_2"])["recommendations"][0].to_list()


def test_filter_already_liked_items():
    sessions = [[1, 2], [2, 1], [2, 3]]
    im, builder = _matrix(_frame(sessions))
    q, _ = _matrix(_frame([[1, 2]]), builder)
    plain = SequentialRulesRecommender(k=2).fit(im).predict(q)
    assert plain["recommendations"][0].to_list() == [1, 3]
    model = SequentialRulesRecommender(k=2, filter_already_liked_items=True).fit(im)
    with pytest.warns(UserWarning, match="k=2 clipped"):  # only 3 is left
        assert model.predict(q)["recommendations"][0].to_list() == [3]


def test_clone_pickle_and_fitted_params():
    sessions = _random_sessions(1)
    im, builder = _matrix(_frame(sessions))
    model = SequentialRulesRecommender(n_context=2).fit(im)
    before = model.predict(im)
    model.set_params(n_context=5)
    assert model.predict(im).equals(before)  # predict reads the fit's state
    again = pickle.loads(pickle.dumps(model))
    assert again.predict(im).equals(before)
    assert clone(model).get_params()["n_context"] == 5


def _naive_ranks_and_sequences(dense):
    """Dense rank per row (1: smallest value) and items oldest first."""
    ranks, seqs = np.zeros_like(dense), []
    for r, row in enumerate(dense):
        cols = np.flatnonzero(row)
        distinct = sorted(set(row[cols].tolist()))
        for c in cols:
            ranks[r, c] = distinct.index(row[c]) + 1
        seqs.append(sorted(cols.tolist(), key=lambda c: (-ranks[r, c], c)))
    return ranks, seqs


@pytest.mark.parametrize("ties", [False, True])
def test_session_ranks_and_sequences_match_naive(ties):
    # ties=False: every row is a permutation of 1..n (the builder's
    # recencies, no sort needed); ties=True: ties and gaps (the sort path)
    rng = np.random.default_rng(7)
    dense = np.zeros((40, 15))
    for r in range(40):
        cols = rng.choice(15, size=int(rng.integers(0, 9)), replace=False)
        if ties:
            dense[r, cols] = rng.integers(1, 4, size=cols.size) * 3
        else:
            dense[r, cols] = rng.permutation(cols.size) + 1
    recency = sp.csr_matrix(dense)
    matrix = sp.csr_matrix((np.ones(recency.nnz), recency.indices, recency.indptr))
    ranks = session_ranks(matrix, recency)
    want_ranks, want_seqs = _naive_ranks_and_sequences(dense)
    np.testing.assert_array_equal(ranks.toarray(), want_ranks)
    rows, items = sequences(ranks)
    got = [items[rows == r].tolist() for r in range(40)]
    assert got == want_seqs


def _naive_successor_rules(items, indptr, n_items, weights, diagonal):
    want = defaultdict(float)
    for s in range(indptr.size - 1):
        seq = items[indptr[s] : indptr[s + 1]].tolist()
        for i, a in enumerate(seq):
            for d in range(1, len(weights) + 1):
                if i + d < len(seq):
                    want[a, seq[i + d]] += float(weights[d - 1])
    for a in np.flatnonzero(diagonal):
        want[a, a] += float(diagonal[a])
    return {k: v for k, v in want.items() if v}


def test_successor_rules_long_window_and_diagonal():
    # a session longer than 256 items needs two-byte distances
    rng = np.random.default_rng(2)
    sessions = [list(rng.permutation(300)), list(rng.permutation(40))]
    items = np.concatenate(sessions)
    indptr = np.array([0, 300, 340])
    weights = score_decay("div", np.arange(1, 281, dtype=float))
    diagonal = np.zeros(300)
    diagonal[[0, 5, 299]] = [2.0, 0.5, 1.0]
    got = successor_rules(items, indptr, 300, weights, diagonal)
    want = np.zeros((300, 300))
    for (a, b), value in _naive_successor_rules(
        items, indptr, 300, weights, diagonal
    ).items():
        want[a, b] = value
    assert got.has_canonical_format and got.dtype == np.float32
    np.testing.assert_allclose(got.toarray(), want.astype(np.float32), rtol=1e-6)
    assert got.nnz == np.count_nonzero(want)
    # no pairs at all: only the diagonal
    only = successor_rules(np.arange(3), np.array([0, 1, 2, 3]), 3, [1.0], [0, 4, 0])
    np.testing.assert_array_equal(only.toarray(), np.diag([0, 4.0, 0]))


@pytest.mark.parametrize(
    "params", [{}, {"filter_items": [3, 4, 5]}, {"items": [0, 1, 2]}, {"n_context": 1}]
)
def test_sources_without_ranking_match_the_ranking(params):
    # SR's source check (a rule from a weighted item to an eligible one)
    # against the general one: rank and count the row's own items
    from skals.recommender._repeat import eligible_columns
    from skals.recommender._rules import _ItemItemSessionModel

    sessions = _random_sessions(5, n_sessions=80, n_items=12, max_len=5)
    im, _ = _matrix(_frame(sessions))
    model = SequentialRulesRecommender(window=1, **params).fit(im)
    ranks = session_ranks(im.matrix, im.recency)
    Q = model._query_weights(ranks)
    # plus a row with no item and one whose only item has no rule
    no_rule = np.flatnonzero(np.diff(model.rules_.indptr) == 0)
    extra = sp.csr_matrix((2, Q.shape[1]))
    if no_rule.size:
        extra[1, no_rule[0]] = 1.0
    Q = sp.csr_matrix(sp.vstack([Q, extra]))
    keep = eligible_columns(model.n_features_in_, *model._filters())
    fast = model._has_own_items(Q, keep)
    slow = _ItemItemSessionModel._has_own_items(model, Q, keep)
    np.testing.assert_array_equal(fast, slow)
    assert 0 < fast.sum() < fast.size  # both kinds of rows are there


@pytest.mark.parametrize("chunk", [1, 3, 64, 1 << 17])
@pytest.mark.parametrize("n_items", [30, 70_000])
def test_successor_rules_in_blocks(monkeypatch, chunk, n_items):
    # the runs and the sums are made in blocks of about _CHUNK_PAIRS pairs
    # (a block boundary may fall anywhere, even inside a row); items beyond
    # uint16 are read as int32
    import skals.recommender._rules as rules_module

    rng = np.random.default_rng(chunk)
    pool = rng.choice(n_items, size=30, replace=False)
    lens = rng.integers(0, 12, size=25)
    items = np.concatenate([rng.choice(pool, size=n, replace=False) for n in lens])
    indptr = np.concatenate([[0], np.cumsum(lens)])
    weights = score_decay("quadratic", np.arange(1, 6, dtype=float))
    diagonal = np.zeros(n_items)
    diagonal[pool[:4]] = [3.0, 0.25, 1.0, 2.0]
    monkeypatch.setattr(rules_module, "_CHUNK_PAIRS", chunk)
    got = successor_rules(items, indptr, n_items, weights, diagonal)
    assert got.has_canonical_format and got.dtype == np.float32
    want = _naive_successor_rules(items, indptr, n_items, weights, diagonal)
    coo = got.tocoo()
    keys = zip(coo.row.tolist(), coo.col.tolist(), strict=True)
    got_dict = dict(zip(keys, coo.data, strict=True))
    assert got_dict.keys() == want.keys()
    for key, value in want.items():
        assert got_dict[key] == np.float32(value)


def test_session_ranks_leave_the_recency_alone():
    # an entry whose value is not positive is left out of the ranks; the
    # recency it came with (float64, the builder's) is not changed, and the
    # ranks share no memory with it
    matrix = sp.csr_matrix(
        (np.array([1.0, 0.0, 2.0, 1.0]), np.array([0, 1, 2, 1]), np.array([0, 3, 4])),
        shape=(2, 3),
    )
    recency = sp.csr_matrix(
        (np.array([2.0, 3.0, 1.0, 1.0]), matrix.indices.copy(), matrix.indptr.copy()),
        shape=(2, 3),
    )
    before = recency.copy()
    ranks = session_ranks(matrix, recency)
    np.testing.assert_array_equal(ranks.toarray(), [[2, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(recency.data, before.data)
    np.testing.assert_array_equal(recency.indices, before.indices)
    assert not np.shares_memory(ranks.data, recency.data)


@pytest.mark.parametrize("rows_per_block", [1, 3, 7])
def test_answers_in_row_blocks_equal_one_block(monkeypatch, rows_per_block):
    # the scores are made a block of rows at a time (a row can score most
    # of the catalogue); any block size gives the same answers, with the
    # filters (items, seen) applied per block
    import warnings

    import skals.recommender._rules as rules_module

    sessions = _random_sessions(5, n_sessions=80)
    im, builder = _matrix(_frame(sessions))
    q, _ = _matrix(_frame(_random_sessions(6, n_sessions=20)), builder)
    params = [
        {"k": 4},
        {"k": 4, "filter_already_liked_items": True, "filter_items": [2, 5]},
    ]
    for p in params:
        model = SequentialRulesRecommender(window=3, **p).fit(im)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            whole = model.predict(q)
            monkeypatch.setattr(
                rules_module, "_SCORE_CELLS", rows_per_block * model.n_features_in_
            )
            blocks = model.predict(q)
            monkeypatch.undo()
        assert blocks.equals(whole)
