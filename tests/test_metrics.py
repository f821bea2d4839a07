"""Ranking metrics: hand-computed values, edge cases and errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skals.metrics import (
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    overlap_at_k,
    precision_at_k,
    recall_at_k,
)

METRICS = [precision_at_k, recall_at_k, ndcg_at_k, map_at_k, hit_rate_at_k]

# log2(2) = 1, log2(3) = 1.58496, log2(4) = 2, log2(5) = 2.32193, log2(6) = 2.58496
d1, d2, d3, d4, d5 = (1 / math.log2(i + 1) for i in range(1, 6))


def test_discount_constants():
    assert d1 == 1.0
    assert d2 == pytest.approx(0.6309298)
    assert d3 == 0.5
    assert d4 == pytest.approx(0.4306766)
    assert d5 == pytest.approx(0.3868528)


# Query 0: 3 relevant items {a, b, c}; a at rank 2, b at rank 4 of k=5.
# Query 1: 1 relevant item {q}, not recommended at all.
Y_TRUE = [{"a", "b", "c"}, {"q"}]
Y_PRED = [["x", "a", "y", "b", "z"], ["v", "w", "x", "y", "z"]]


def test_precision_hand_computed():
    # query 0: |{a, b}| / 5 = 0.4; query 1: 0 / 5 = 0; mean 0.2
    np.testing.assert_allclose(
        precision_at_k(Y_TRUE, Y_PRED, k=5, average=False), [0.4, 0.0]
    )
    assert precision_at_k(Y_TRUE, Y_PRED, k=5) == pytest.approx(0.2)


def test_overlap_is_precision():
    # The notebook's |predicted ∩ true| / 5.
    assert overlap_at_k is precision_at_k
    assert overlap_at_k([{1, 2}], [[2, 3, 4, 5, 1]]) == pytest.approx(2 / 5)


def test_recall_hand_computed():
    # query 0: 2 found / 3 relevant; query 1: 0 / 1; mean 1/3
    np.testing.assert_allclose(
        recall_at_k(Y_TRUE, Y_PRED, k=5, average=False), [2 / 3, 0.0]
    )
    assert recall_at_k(Y_TRUE, Y_PRED, k=5) == pytest.approx(1 / 3)


def test_ndcg_hand_computed():
    # query 0: DCG = 1/log2(3) + 1/log2(5) = 0.6309298 + 0.4306766 = 1.0616064
    #          IDCG over min(3, 5) = 3 items = 1 + 0.6309298 + 0.5 = 2.1309298
    #          NDCG = 1.0616064 / 2.1309298 = 0.4981890
    # query 1: DCG = 0 -> 0
    expected = (d2 + d4) / (d1 + d2 + d3)
    assert expected == pytest.approx(0.4981890)
    np.testing.assert_allclose(
        ndcg_at_k(Y_TRUE, Y_PRED, k=5, average=False), [expected, 0.0]
    )
    assert ndcg_at_k(Y_TRUE, Y_PRED, k=5) == pytest.approx(expected / 2)


def test_map_hand_computed():
    # query 0: P@2 = 1/2 at the hit on rank 2, P@4 = 2/4 at the hit on rank 4
    #          AP = (1/2 + 2/4) / min(3, 5) = 1 / 3
    # query 1: 0; MAP = 1/6
    np.testing.assert_allclose(
        map_at_k(Y_TRUE, Y_PRED, k=5, average=False), [1 / 3, 0.0]
    )
    assert map_at_k(Y_TRUE, Y_PRED, k=5) == pytest.approx(1 / 6)


def test_hit_rate_hand_computed():
    # query 0 has a hit, query 1 none: mean 0.5
    np.testing.assert_array_equal(
        hit_rate_at_k(Y_TRUE, Y_PRED, k=5, average=False), [1.0, 0.0]
    )
    assert hit_rate_at_k(Y_TRUE, Y_PRED, k=5) == 0.5


def test_smaller_k_truncates_the_list():
    # k=3 keeps [x, a, y]: one hit at rank 2 of query 0.
    # precision 1/3, recall 1/3, NDCG = 0.6309298 / (1 + 0.6309298 + 0.5),
    # AP = (1/2) / min(3, 3) = 1/6, hit 1
    y_true, y_pred = Y_TRUE[:1], Y_PRED[:1]
    assert precision_at_k(y_true, y_pred, k=3) == pytest.approx(1 / 3)
    assert recall_at_k(y_true, y_pred, k=3) == pytest.approx(1 / 3)
    assert ndcg_at_k(y_true, y_pred, k=3) == pytest.approx(d2 / (d1 + d2 + d3))
    assert map_at_k(y_true, y_pred, k=3) == pytest.approx(1 / 6)
    assert hit_rate_at_k(y_true, y_pred, k=3) == 1.0


def test_more_relevant_than_k():
    # 7 relevant, the top 5 all relevant: the ideal list is also 5 hits.
    # precision 5/5, recall 5/7, NDCG 1, AP = (1+1+1+1+1) / min(7, 5) = 1
    y_true = [set(range(7))]
    y_pred = [[0, 1, 2, 3, 4]]
    assert precision_at_k(y_true, y_pred) == 1.0
    assert recall_at_k(y_true, y_pred) == pytest.approx(5 / 7)
    assert ndcg_at_k(y_true, y_pred) == pytest.approx(1.0)
    assert map_at_k(y_true, y_pred) == pytest.approx(1.0)


def test_shorter_list_counts_missing_positions_as_misses():
    # pred [a] for k=5, relevant {a, b}: hits [1, 0, 0, 0, 0]
    # precision 1/5 (still divided by k), recall 1/2,
    # NDCG = 1 / (1 + 0.6309298) = 0.6131472 (ideal over min(2, 5) = 2 items),
    # AP = (1/1) / min(2, 5) = 0.5, hit 1
    y_true, y_pred = [{"a", "b"}], [["a"]]
    assert precision_at_k(y_true, y_pred) == pytest.approx(0.2)
    assert recall_at_k(y_true, y_pred) == pytest.approx(0.5)
    assert ndcg_at_k(y_true, y_pred) == pytest.approx(0.6131472)
    assert map_at_k(y_true, y_pred) == pytest.approx(0.5)
    assert hit_rate_at_k(y_true, y_pred) == 1.0


def test_empty_predicted_list_scores_zero():
    for metric in METRICS:
        assert metric([{"a"}], [[]]) == 0.0


def test_k_larger_than_2d_array():
    # 3 columns, k=5: positions 4 and 5 are misses.
    # row 0: relevant {7} at rank 3 -> precision 1/5, NDCG 0.5 / 1 = 0.5
    y_pred = np.array([[1, 2, 7], [4, 5, 6]])
    y_true = [{7}, {4, 9}]
    np.testing.assert_allclose(
        precision_at_k(y_true, y_pred, k=5, average=False), [0.2, 0.2]
    )
    # row 1: 4 at rank 1 of 2 relevant: 1 / (1 + 0.6309298)
    np.testing.assert_allclose(
        ndcg_at_k(y_true, y_pred, k=5, average=False), [0.5, 1 / (d1 + d2)]
    )


def test_duplicates_count_once_at_first_position():
    # pred [a, a, b], relevant {a, b}, k=3: hits [1, 0, 1]
    # precision 2/3, recall 1, NDCG = (1 + 0.5) / (1 + 0.6309298) = 0.9197208,
    # AP = (1/1 + 2/3) / min(2, 3) = 0.8333333
    y_true, y_pred = [{"a", "b"}], [["a", "a", "b"]]
    assert precision_at_k(y_true, y_pred, k=3) == pytest.approx(2 / 3)
    assert recall_at_k(y_true, y_pred, k=3) == pytest.approx(1.0)
    assert ndcg_at_k(y_true, y_pred, k=3) == pytest.approx((d1 + d3) / (d1 + d2))
    assert map_at_k(y_true, y_pred, k=3) == pytest.approx(5 / 6)
    # A list that repeats the one relevant item scores as if said once.
    assert precision_at_k([{1}], [[1, 1, 1, 1, 1]]) == pytest.approx(0.2)
    assert recall_at_k([{1}], [[1, 1, 1, 1, 1]]) == pytest.approx(1.0)
    assert ndcg_at_k([{1}], [[1, 1, 1, 1, 1]]) == pytest.approx(1.0)


def test_duplicates_in_2d_array():
    y_pred = np.array([[3, 3, 4], [5, 6, 5]])
    np.testing.assert_allclose(
        precision_at_k([{3, 4}, {5}], y_pred, k=3, average=False), [2 / 3, 1 / 3]
    )


@pytest.mark.parametrize("metric", METRICS)
def test_input_forms_agree(metric):
    # Lists, sets, tuples, 2-D array, list of 1-D arrays, numpy truth rows.
    y_pred = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [5, 3, 1, 2, 4]])
    y_true = [{2, 5}, {10, 11, 12}, {4}]
    expected = metric(y_true, y_pred.tolist(), average=False)
    variants = [
        (y_true, y_pred),
        (y_true, list(y_pred)),
        ([list(t) for t in y_true], [tuple(r) for r in y_pred.tolist()]),
        ([np.array(sorted(t)) for t in y_true], y_pred.tolist()),
        (tuple(y_true), iter(y_pred.tolist())),
    ]
    for yt, yp in variants:
        np.testing.assert_allclose(metric(yt, yp, average=False), expected)


@pytest.mark.parametrize("metric", METRICS)
def test_string_ids_match_integer_ids(metric):
    y_true = [{2, 5}, {10, 11, 12}, {4}]
    y_pred = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [5, 3, 1, 2, 4]]
    as_str = [{f"p{i}" for i in t} for t in y_true]
    pred_str = np.array([[f"p{i}" for i in row] for row in y_pred])
    np.testing.assert_allclose(
        metric(as_str, pred_str, k=4, average=False),
        metric(y_true, y_pred, k=4, average=False),
    )


@pytest.mark.parametrize("metric", METRICS)
def test_average_false_returns_per_query_array(metric):
    scores = metric(Y_TRUE, Y_PRED, average=False)
    assert isinstance(scores, np.ndarray)
    assert scores.shape == (2,)
    assert scores.dtype == np.float64
    mean = metric(Y_TRUE, Y_PRED)
    assert isinstance(mean, float)
    assert mean == pytest.approx(scores.mean())


def _reference(metric, truth, ranked, k):
    """Per-query definitions, written the slow way."""
    top, seen = [], set()
    for item in list(ranked)[:k]:
        top.append(item in truth and item not in seen)
        seen.add(item)
    top += [False] * (k - len(top))
    n_hits = sum(top)
    if metric is precision_at_k:
        return n_hits / k
    if metric is recall_at_k:
        return n_hits / len(truth)
    if metric is hit_rate_at_k:
        return float(n_hits > 0)
    if metric is ndcg_at_k:
        dcg = sum(1 / math.log2(i + 2) for i, h in enumerate(top) if h)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(truth), k)))
        return dcg / idcg
    precisions = [sum(top[: i + 1]) / (i + 1) for i in range(k)]
    return sum(p for p, h in zip(precisions, top, strict=True) if h) / min(
        len(truth), k
    )


queries = st.lists(
    st.tuples(
        st.sets(st.integers(0, 12), min_size=1, max_size=6),
        st.lists(st.integers(0, 12), max_size=8),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(queries=queries, k=st.integers(1, 10))
def test_matches_reference_definitions(queries, k):
    y_true = [t for t, _ in queries]
    y_pred = [p for _, p in queries]
    for metric in METRICS:
        scores = metric(y_true, y_pred, k=k, average=False)
        expected = [_reference(metric, t, p, k) for t, p in queries]
        np.testing.assert_allclose(scores, expected, atol=1e-12)
        assert np.all((scores >= 0) & (scores <= 1 + 1e-12))


@pytest.mark.parametrize("metric", METRICS)
def test_length_mismatch_names_both_lengths(metric):
    with pytest.raises(ValueError, match=r"len\(y_true\)=2.*len\(y_pred\)=3"):
        metric([{1}, {2}], [[1], [2], [3]])


@pytest.mark.parametrize("metric", METRICS)
def test_empty_truth_raises_with_count(metric):
    with pytest.raises(ValueError, match=r"2 of 3 queries have no relevant.*Filter"):
        metric([{1}, set(), []], [[1], [2], [3]])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    ("k", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (2.5, TypeError),
        ("5", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_invalid_k(metric, k, error):
    with pytest.raises(error, match="k must be a positive integer"):
        metric([{1}], [[1]], k=k)


def test_numpy_integer_k_is_accepted():
    assert precision_at_k([{1}], [[1]], k=np.int64(1)) == 1.0


@pytest.mark.parametrize("metric", METRICS)
def test_no_queries_raises(metric):
    with pytest.raises(ValueError, match="empty"):
        metric([], [])


def test_string_entries_are_rejected():
    with pytest.raises(TypeError, match=r"y_true\[0\] is a string"):
        precision_at_k(["abc"], [["a"]])
    with pytest.raises(TypeError, match=r"y_pred\[0\] is a string"):
        precision_at_k([{"abc"}], ["abc"])
    with pytest.raises(TypeError, match=r"y_true\[1\] must be a collection"):
        precision_at_k([{1}, 2], [[1], [2]])
    with pytest.raises(TypeError, match="y_pred must be a sequence"):
        precision_at_k([{1}], "a")
