"""ImplicitALSRecommender and PopularityRecommender."""

import warnings

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from numpy.testing import assert_allclose, assert_array_equal
from threadpoolctl import threadpool_limits

from conftest import skals_pipeline
from skals import (
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    SessionHoldoutSplit,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer

PARAMS = dict(factors=8, regularization=0.1, iterations=5)


@pytest.fixture(scope="module")
def matrix():
    rng = np.random.default_rng(0)
    dense = (rng.random((60, 40)) < 0.15) * rng.integers(1, 20, (60, 40))
    return sp.csr_matrix(dense, dtype=np.float32)


def _implicit(X, seed=42):
    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(**PARAMS, random_state=seed)
        ref.fit(X, show_progress=False)
    return ref


def test_parity_with_implicit(matrix):
    ours = ImplicitALSRecommender(**PARAMS, random_state=42).fit(matrix)
    ref = _implicit(matrix)
    assert_array_equal(ours.user_factors_, ref.user_factors)
    assert_array_equal(ours.item_factors_, ref.item_factors)
    users = np.arange(matrix.shape[0])
    # the notebook's call, unchanged
    ids, scores = ours.recommend(
        users, matrix[users], N=5, filter_already_liked_items=True
    )
    ref_ids, ref_scores = ref.recommend(
        users, matrix[users], N=5, filter_already_liked_items=True
    )
    assert_array_equal(ids, ref_ids)
    assert_allclose(scores, ref_scores)
    one = ours.recommend(3, matrix[3], N=5)
    assert_array_equal(one[0], ref.recommend(3, matrix[3], N=5)[0])


def test_fold_in_equals_recalculate_user(matrix):
    ours = ImplicitALSRecommender(**PARAMS, random_state=42).fit(matrix)
    ref = _implicit(matrix)
    new = matrix[10:30]
    rows = np.arange(new.shape[0])
    assert_allclose(
        ours._fold_in(new), ref.recalculate_user(rows, new), rtol=1e-6, atol=1e-7
    )
    ref_ids, _ = ref.recommend(
        rows, new, N=5, recalculate_user=True, filter_already_liked_items=False
    )
    assert_array_equal(ours.predict(new), ref_ids)


def test_fold_in_respects_alpha(matrix):
    ours = ImplicitALSRecommender(**PARAMS, alpha=3.0, random_state=1).fit(matrix)
    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(**PARAMS, alpha=3.0, random_state=1)
        ref.fit(matrix, show_progress=False)
    rows = np.arange(5)
    assert_allclose(
        ours._fold_in(matrix[:5]), ref.recalculate_user(rows, matrix[:5]), rtol=1e-6
    )


def test_random_state_instance_and_determinism(matrix):
    a = ImplicitALSRecommender(**PARAMS, random_state=np.random.RandomState(3))
    b = ImplicitALSRecommender(**PARAMS, random_state=np.random.RandomState(3))
    assert_array_equal(a.fit(matrix).item_factors_, b.fit(matrix).item_factors_)
    c = ImplicitALSRecommender(**PARAMS, random_state=4).fit(matrix)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_no_blas_warning_reaches_user(matrix):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImplicitALSRecommender(**PARAMS, random_state=0).fit(matrix)


def test_predict_clips_k_with_warning():
    X = np.eye(3)
    model = ImplicitALSRecommender(factors=2, k=5, random_state=0).fit(X)
    with pytest.warns(UserWarning, match="k=5 clipped"):
        out = model.predict(X)
    assert out.shape == (3, 3)
    assert all(len(set(row)) == 3 for row in out)


def test_filters_and_allow_list(matrix):
    model = ImplicitALSRecommender(
        **PARAMS, random_state=0, filter_already_liked_items=True, filter_items=[0, 1]
    ).fit(matrix)
    out = model.predict(matrix)
    for r, row in enumerate(out):
        assert not set(row) & {0, 1}
        assert not set(row) & set(matrix[r].indices)
    allow = ImplicitALSRecommender(**PARAMS, random_state=0, items=[5, 6, 7])
    with pytest.warns(UserWarning, match="clipped"):
        out = allow.fit(matrix).predict(matrix)
    assert set(np.unique(out)) <= {5, 6, 7} and out.shape == (60, 3)


# ------------------------------------------------------------- event pipelines
@pytest.fixture(scope="module")
def log():
    events = make_sessions(n_sessions=6_000, n_items=300, random_state=0)
    train_idx, test_idx = next(
        SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events)
    )
    return events[train_idx], events[test_idx]


_pipe = skals_pipeline


@pytest.fixture(scope="module")
def fitted(log):
    train, _ = log
    return _pipe(ImplicitALSRecommender(factors=16, random_state=0)).fit(train)


def test_predict_answers_every_key_in_original_ids(fitted, log):
    train, test = log
    out = fitted.predict(test)
    keys = PseudoUserUnifier().fit_transform(test)["unified_user_id"].unique()
    assert sorted(out["unified_user_id"].to_list()) == sorted(keys.to_list())
    items = set(train["partnumber"].to_list())
    for recs, scores in zip(out["recommendations"], out["scores"], strict=True):
        assert len(recs) == 5 and len(set(recs)) == 5
        assert set(recs) <= items
        assert list(scores) == sorted(scores, reverse=True)


def test_history_merge_does_not_double_count(fitted, log):
    """Predicting on the training log gives the history alone, not twice it."""
    train, _ = log
    model = fitted[-1]
    sample = train.filter(pl.col("user_id").is_not_null()).head(400)
    out = fitted.predict(sample).sort("unified_user_id")
    rows = model._history_index(out["unified_user_id"])
    assert (rows >= 0).all()
    # the same keys answered by folding in their training rows (no history)
    expected = model.predict(model.user_items_[rows])
    got = np.array(out["recommendations"].to_list())
    col = model.item_ids_.to_numpy()
    assert_array_equal(got, col[expected])
    # summing history and events instead would change the answers
    doubled = model.user_items_[rows] * 2
    assert not np.array_equal(model.predict(doubled), expected)


def test_history_used_for_known_keys(fitted, log):
    train, _ = log
    model = fitted[-1]
    key = train.filter(pl.col("user_id").is_not_null())["user_id"][0]
    known = f"u_{int(key)}"
    hist_only = model.recommend_keys([known])["recommendations"][0].to_list()
    ids, _ = model.recommend(
        int(model._history_index(pl.Series([known]))[0]),
        None,
        N=5,
        filter_already_liked_items=False,
    )
    assert hist_only == model.item_ids_.gather(ids).to_list()
    merge_off = fitted.set_params(implicitalsrecommender__merge_history=False)
    try:
        event = train.filter(pl.col("user_id") == key).head(1)
        off = merge_off.predict(event)["recommendations"][0].to_list()
    finally:
        fitted.set_params(implicitalsrecommender__merge_history=True)
    on = fitted.predict(event)["recommendations"][0].to_list()
    assert on != off


def test_per_session_answers_differ_by_context(log):
    train, _ = log
    pipe = _pipe(ImplicitALSRecommender(factors=16, random_state=0), grain="session")
    pipe.fit(train)
    user = train.filter(pl.col("user_id").is_not_null())["user_id"][0]
    items = train["partnumber"].unique().sort()
    context = pl.DataFrame(
        {
            "session_id": [900001, 900001, 900002, 900002],
            "user_id": [user] * 4,
            "partnumber": [items[0], items[1], items[-1], items[-2]],
        }
    )
    out = pipe.predict(context).sort("session_id")
    assert out["session_id"].to_list() == [900001, 900002]
    a, b = out["recommendations"].to_list()
    assert a != b


def test_fallback_for_nothing_to_go_on(fitted):
    context = pl.DataFrame(
        {
            "session_id": [10**8, 10**8 + 1],
            "user_id": [None, None],
            "partnumber": [10**9] * 2,
        }
    )
    with pytest.warns(UserWarning, match="not seen in fit"):
        out = fitted.predict(context)
    popular = fitted[-1].fallback_.recommend_keys(["x"])["recommendations"][0]
    for recs in out["recommendations"]:
        assert len(set(recs)) == 5
        assert recs.to_list() == popular.to_list()


def test_popularity_by_and_segments():
    enc = pl.DataFrame(
        {
            "unified_user_id": ["a", "a", "b", "c", "c"],
            "partnumber": [1, 2, 2, 3, 1],
            "view_count": [9, 1, 1, 1, 1],
            "cart_count": [0, 1, 1, 0, 0],
            "confidence": [10.0, 12.0, 12.0, 2.0, 2.0],
            "country": [1, 1, 2, 2, 2],
        }
    )
    builder = InteractionMatrixBuilder(segment_col="country")
    im = builder.fit_transform(enc)
    # global, by confidence: item 2 (24) > item 1 (12) > item 3 (2)
    conf = PopularityRecommender(k=3, use_segments=False).fit(im)
    assert_array_equal(conf.item_popularity_, [12.0, 24.0, 2.0])
    by_view = PopularityRecommender(k=3, by="view", use_segments=False).fit(im)
    assert by_view.recommend_keys(["z"])["recommendations"][0].to_list() == [1, 2, 3]
    by_cart = PopularityRecommender(k=1, by="cart", use_segments=False).fit(im)
    assert by_cart.recommend_keys(["z"])["recommendations"][0].to_list() == [2]
    # segments: country 2 (rows b, c) ranks by its own confidence: 2 (12), then
    # 1 and 3 tie at 2 and are ordered by global popularity (1 before 3)
    seg = PopularityRecommender(k=3).fit(im)
    out = seg.predict(im).sort("unified_user_id")
    assert out["recommendations"].to_list() == [[2, 1, 3], [2, 1, 3], [2, 1, 3]]
    assert out["scores"].to_list()[0] == [12.0, 10.0, 0.0]
    with pytest.raises(ValueError, match="by='cart'"):
        PopularityRecommender(by="cart").fit(np.eye(3))


def test_als_beats_popularity_on_planted_structure():
    events = make_sessions(n_sessions=12_000, random_state=1)
    tr, te = next(SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events))
    scorer = make_session_scorer("ndcg")
    als = _pipe(ImplicitALSRecommender(factors=32, random_state=0)).fit(events[tr])
    pop = _pipe(PopularityRecommender()).fit(events[tr])
    s_als, s_pop = scorer(als, events[te]), scorer(pop, events[te])
    assert s_pop > 0
    assert s_als > 2 * s_pop, (s_als, s_pop)
