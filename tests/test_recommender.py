"""ImplicitALSRecommender and PopularityRecommender."""

import warnings

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_limits

from conftest import skals_pipeline
from skals import (
    BlendRecommender,
    ImplicitALSRecommender,
    InteractionMatrix,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    RepeatRecommender,
    SessionHoldoutSplit,
    SessionKNNRecommender,
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


def hu_solve(C, Y, regularization):
    """Hu, Koren & Volinsky (2008), eq. 4, one row at a time, in float64.

    ``x_u = (Y^T Y + Y^T (C_u - I) Y + lambda I)^-1 Y^T C_u p(u)`` with
    ``p = 1`` where ``c > 0``, and ``c_ui`` the stored values.
    """
    C = sp.csr_matrix(C, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    YtY = Y.T @ Y
    out = np.zeros((C.shape[0], Y.shape[1]))
    for u in range(C.shape[0]):
        cols = C.indices[C.indptr[u] : C.indptr[u + 1]]
        c = C.data[C.indptr[u] : C.indptr[u + 1]]
        A = YtY + (Y[cols].T * (c - 1.0)) @ Y[cols]
        A += regularization * np.eye(Y.shape[1])
        out[u] = np.linalg.solve(A, Y[cols].T @ c)
    return out


def test_training_solves_hu_et_al_normal_equations(matrix):
    """The fitted factors are a fixed point of ALS as the paper defines it.

    With the exact solver, implicit's last half-step solves the items
    against the final users; here that is checked against the paper's
    equation written in numpy, not against implicit.
    """
    model = ImplicitALSRecommender(**PARAMS, alpha=1.0, use_cg=False, random_state=0)
    model.fit(matrix)
    items = hu_solve(matrix.T, model.user_factors_, PARAMS["regularization"])
    assert_allclose(model.item_factors_, items, rtol=1e-3, atol=1e-4)
    # and fold-in solves eq. 4 for new rows (alpha scales the confidences)
    new = matrix[10:30]
    want = hu_solve(new, model.item_factors_, PARAMS["regularization"])
    assert_allclose(model._fold_in(new), want, rtol=1e-4, atol=1e-5)
    alpha = ImplicitALSRecommender(**PARAMS, alpha=3.0, random_state=0).fit(matrix)
    want = hu_solve(3.0 * new, alpha.item_factors_, PARAMS["regularization"])
    assert_allclose(alpha._fold_in(new), want, rtol=1e-4, atol=1e-5)
    # the answers are the top 5 of the reference factors' scores
    scores = want @ alpha.item_factors_.T.astype(np.float64)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    assert_array_equal(alpha.predict(new), expected)


def test_wrapper_trains_exactly_as_implicit(matrix):
    """Same seed, same matrix: implicit called directly gives our factors."""
    # implicit's default alpha is 1; skals' default is 10 (BENCHMARKS.md)
    ours = ImplicitALSRecommender(**PARAMS, alpha=1.0, random_state=42).fit(matrix)
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
    ours = ImplicitALSRecommender(**PARAMS, alpha=1.0, random_state=42).fit(matrix)
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
    """Predicting on the training log gives the history alone, not twice it.

    The pipeline's own input (the sample's events through the fitted
    transformers) is merged with the history as an element-wise maximum; a
    sum would count the events twice.
    """
    train, _ = log
    model = fitted[-1]
    sample = train.filter(pl.col("user_id").is_not_null()).head(400)
    out = fitted.predict(sample).sort("unified_user_id")
    got = np.array(out["recommendations"].to_list())
    im = fitted[:-1].transform(sample)
    rows = model._history_index(im.row_keys)
    assert (rows >= 0).all() and im.row_ids.equals(out["unified_user_id"])
    history = model.user_items_[rows]
    col = model.item_ids_.to_numpy()
    maximum = col[model.predict(history.maximum(im.matrix))]
    assert_array_equal(got, maximum)
    # the sample's events are a subset of the history: the maximum is the
    # history itself, while a sum is a different matrix with other answers
    assert_array_equal(got, col[model.predict(history)])
    summed = col[model.predict(history + im.matrix)]
    assert (summed != got).any(axis=1).sum() > 0


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
    event = train.filter(pl.col("user_id") == key).head(1)
    merge_off = fitted.set_params(implicitalsrecommender__merge_history=False)
    try:
        off = merge_off.predict(event)["recommendations"][0].to_list()
    finally:
        fitted.set_params(implicitalsrecommender__merge_history=True)
    on = fitted.predict(event)["recommendations"][0].to_list()
    # off: the event alone folded in; on: the event merged with the history
    ev = fitted[:-1].transform(event).matrix
    hist = model.user_items_[model._history_index(pl.Series([known]))]
    col = model.item_ids_.to_numpy()
    assert off == col[model.predict(ev)[0]].tolist()
    assert on == col[model.predict(hist.maximum(ev))[0]].tolist()


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
    model = pipe[-1]
    hist = model.user_items_[model._history_index(pl.Series([f"u_{int(user)}"]))]
    rows = pipe[:-1].transform(context).matrix  # one row per session
    col = model.item_ids_.to_numpy()
    # each session: its own two events merged with the user's history
    for r, recs in enumerate(out["recommendations"]):
        want = col[model.predict(rows[r].maximum(hist))[0]]
        assert recs.to_list() == want.tolist()


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
            "view_count": [9, 1, 1, 4, 1],
            "cart_count": [0, 1, 0, 0, 0],
            "confidence": [10.0, 12.0, 2.0, 5.0, 2.0],
            "country": [1, 1, 2, 2, 2],
        }
    )
    builder = InteractionMatrixBuilder(segment_col="country")
    im = builder.fit_transform(enc)
    # global, by confidence: item 2 (14) > item 1 (12) > item 3 (5)
    conf = PopularityRecommender(k=3, use_segments=False).fit(im)
    assert_array_equal(conf.item_popularity_, [12.0, 14.0, 5.0])
    assert conf.recommend_keys(["z"])["recommendations"][0].to_list() == [2, 1, 3]
    by_view = PopularityRecommender(k=3, by="view", use_segments=False).fit(im)
    assert by_view.recommend_keys(["z"])["recommendations"][0].to_list() == [1, 3, 2]
    by_cart = PopularityRecommender(k=1, by="cart", use_segments=False).fit(im)
    assert by_cart.recommend_keys(["z"])["recommendations"][0].to_list() == [2]
    # segments: country 2 (rows b, c) ranks by its own confidence: 3 (5) first,
    # then 1 and 2 tie at 2 and are ordered by global popularity (2 before 1);
    # country 1 (row a) keeps 2 (12), 1 (10), then 3 (0)
    seg = PopularityRecommender(k=3).fit(im)
    out = seg.predict(im).sort("unified_user_id")
    assert out["recommendations"].to_list() == [[2, 1, 3], [3, 2, 1], [3, 2, 1]]
    assert out["scores"].to_list() == [[12.0, 10.0, 0.0]] + [[5.0, 2.0, 2.0]] * 2
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


# ------------------------------------------- issue 12: no silent wrong answers
def test_predict_reads_only_fitted_state(fitted, log):
    """Changing a hyperparameter after fit changes nothing until refit."""
    _, test = log
    model = clone(fitted)
    model.fit(log[0])
    before = model.predict(test)
    keys = model[-1].user_ids_[:5]
    before_keys = model[-1].recommend_keys(keys)
    before_ids = model[-1].recommend(0, model[-1].user_items_[0], N=3)
    model.set_params(
        implicitalsrecommender__factors=3,
        implicitalsrecommender__alpha=40.0,
        implicitalsrecommender__regularization=500.0,
        implicitalsrecommender__engine="spark",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # engine is not read
        assert model.predict(test).equals(before)
        assert model[-1].recommend_keys(keys).equals(before_keys)
        after_ids = model[-1].recommend(
            0, model[-1].user_items_[0], N=3, recalculate_user=True
        )
    refit_ids = ImplicitALSRecommender(factors=16, random_state=0)
    refit_ids.fit(model[:-1].transform(log[0]))
    want = refit_ids.recommend(0, model[-1].user_items_[0], N=3, recalculate_user=True)
    assert_array_equal(after_ids[0], want[0])
    assert_array_equal(before_ids[0].shape, (3,))


@pytest.mark.parametrize("cls", [ImplicitALSRecommender, PopularityRecommender])
def test_predict_time_parameters_are_validated_at_predict(cls, matrix):
    model = cls(k=3).fit(matrix)
    model.set_params(k=0)
    with pytest.raises(InvalidParameterError, match="'k' parameter"):
        model.predict(matrix)
    with pytest.raises(InvalidParameterError, match="'k' parameter"):
        model.recommend_keys([0])
    model.set_params(k=3, filter_already_liked_items="yes")
    with pytest.raises(InvalidParameterError, match="filter_already_liked_items"):
        model.predict(matrix)
    model.set_params(filter_already_liked_items=False)
    with pytest.raises(ValueError, match="k must be an int"):
        model.recommend_keys([0], k=0)
    assert model.predict(matrix).shape == (matrix.shape[0], 3)


def _session_matrix(values, *, counts):
    """Two sessions of key 'a' on item 10, one of 'b' on item 20."""
    enc = pl.DataFrame(
        {
            "session_id": [1, 2, 3],
            "unified_user_id": ["a", "a", "b"],
            "partnumber": [10, 10, 20],
            "confidence": values,
        }
    )
    if counts:
        enc = enc.with_columns(
            view_count=pl.Series([1, 1, 1]), cart_count=pl.Series([0, 0, 0])
        )
    return InteractionMatrixBuilder().fit_transform(enc)


def test_sessions_of_a_key_are_summed_for_any_values():
    def history(im):
        model = ImplicitALSRecommender(factors=1, iterations=1, random_state=0)
        return model.fit(im).user_items_.toarray().tolist()

    # binary values (no encoder counts): two sessions count twice
    assert history(_session_matrix([1.0] * 3, counts=0)) == [[2.0, 0.0], [0.0, 1.0]]
    # values below 1 are summed too
    got = history(_session_matrix([0.5, 0.25, 0.5], counts=0))
    assert got == [[0.75, 0.0], [0.0, 0.5]]
    # encoder confidences 1 + w * counts: the intercept is counted once
    assert history(_session_matrix([2.0, 3.0, 2.0], counts=1)) == [
        [4.0, 0.0],
        [0.0, 2.0],
    ]
    # ... and a value below 1 cannot be an encoder confidence
    with pytest.raises(ValueError, match="below 1"):
        history(_session_matrix([0.5, 3.0, 2.0], counts=1))


def _noncanonical_matrix():
    """Explicit zeros and unsorted, duplicated indices: the cases copied."""
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, 30, 200), rng.integers(0, 12, 200)
    vals = rng.integers(0, 4, 200).astype(np.float32)  # about 1/4 zeros
    m = sp.csr_matrix((vals, (rows, cols)), shape=(30, 12))
    # csr from coo sums duplicates; shuffle each row's order by hand
    m.has_sorted_indices = False
    for r in range(30):
        a, b = m.indptr[r], m.indptr[r + 1]
        m.indices[a:b] = m.indices[a:b][::-1].copy()
        m.data[a:b] = m.data[a:b][::-1].copy()
    m.has_sorted_indices = False
    return m


def _arrays(m):
    return [a.copy() for a in (m.data, m.indices, m.indptr)]


@pytest.mark.parametrize("filtered", [False, True])
def test_inputs_are_never_modified(filtered):
    m = _noncanonical_matrix()
    assert (m.data == 0).any()
    im = InteractionMatrix(
        matrix=m,
        row_ids=pl.Series("unified_user_id", [f"k{i:02d}" for i in range(30)]),
        row_keys=pl.Series("unified_user_id", [f"k{i:02d}" for i in range(30)]),
        item_ids=pl.Series("partnumber", np.arange(12)),
    )
    before = _arrays(m)
    for X in (m, im):
        for cls in (ImplicitALSRecommender, PopularityRecommender):
            params = dict(k=3, filter_already_liked_items=filtered)
            if cls is ImplicitALSRecommender:
                params.update(factors=4, iterations=2, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                model = cls(**params).fit(X)
                model.predict(X)
                if hasattr(model, "score"):
                    model.score(X)
            for a, b in zip(_arrays(m), before, strict=True):
                assert a.tobytes() == b.tobytes()


def test_popularity_by_users_counts_distinct_keys_in_segments_too():
    """A key with two sessions on an item counts once, globally and within
    its segment (``by="users"`` is one definition)."""
    enc = pl.DataFrame(
        {
            "session_id": [1, 2, 3, 4],
            "unified_user_id": ["a", "a", "b", "c"],
            "partnumber": [10, 10, 20, 20],
            "confidence": [2.0, 2.0, 2.0, 2.0],
            "country": ["es", "es", "es", "fr"],
        }
    )
    im = InteractionMatrixBuilder(segment_col="country").fit_transform(enc)
    model = PopularityRecommender(by="users").fit(im)
    assert model.item_popularity_.tolist() == [1.0, 2.0]
    assert model.segments_.to_list() == ["es", "fr"]
    assert model.segment_popularity_.tolist() == [[1.0, 1.0], [0.0, 1.0]]


@pytest.mark.filterwarnings("ignore:.*was not seen in fit:UserWarning")
def test_fallback_parameters_in_a_grid_with_the_default_fallback(log):
    train, _ = log
    events = train.head(6_000)
    search = GridSearchCV(
        _pipe(ImplicitALSRecommender(factors=4, iterations=2, random_state=0)),
        {"implicitalsrecommender__fallback__by": ["users", "view"]},
        scoring=make_session_scorer("ndcg"),
        cv=SessionHoldoutSplit(n_splits=1),
        error_score="raise",
    )
    search.fit(events)
    assert search.best_estimator_[-1].fallback_.by in ("users", "view")
    assert list(search.cv_results_["param_implicitalsrecommender__fallback__by"]) == [
        "users",
        "view",
    ]
    model = ImplicitALSRecommender().set_params(fallback__by="cart")
    assert model.fallback.get_params()["by"] == "cart"
    assert ImplicitALSRecommender().fallback is None  # the default stays None
    # the session models share the rule (they raised AttributeError)
    for cls in (SessionKNNRecommender, RepeatRecommender):
        assert cls().set_params(fallback__by="cart").fallback.by == "cart"


@pytest.mark.parametrize(
    "fallback",
    [
        PopularityRecommender(k=3),
        PopularityRecommender(filter_items=[1]),
        PopularityRecommender(items=[1, 2]),
        PopularityRecommender(filter_already_liked_items=True),
    ],
)
def test_fallback_parameters_the_model_owns_are_rejected(fallback, matrix):
    name = next(
        p
        for p in ("k", "filter_items", "items", "filter_already_liked_items")
        if fallback.get_params()[p] != PopularityRecommender().get_params()[p]
    )
    model = ImplicitALSRecommender(**PARAMS, fallback=fallback)
    with pytest.raises(ValueError, match=f"fallback sets \\['{name}'\\]"):
        model.fit(matrix)
    # one rule for every recommender with a fallback (the session models
    # used to ignore the fallback's k and filters silently)
    for other in (
        SessionKNNRecommender(fallback=fallback, sample_size=None),
        RepeatRecommender(fallback=fallback),
        BlendRecommender([("pop", PopularityRecommender())], fallback=fallback),
    ):
        with pytest.raises(ValueError, match=f"fallback sets \\['{name}'\\]"):
            other.fit(matrix)
    # the fallback's own parameters are fine
    ImplicitALSRecommender(**PARAMS, fallback=PopularityRecommender(by="users")).fit(
        matrix
    )


# -------------------------------------------------------- sparse interfaces
@pytest.mark.parametrize("cls", [ImplicitALSRecommender, PopularityRecommender])
def test_sparse_arrays_and_matrices_alike(cls, matrix):
    params = dict(PARAMS, random_state=0) if cls is ImplicitALSRecommender else {}
    array = sp.csr_array(matrix)
    a = cls(**params).fit(matrix)
    b = cls(**params).fit(array)
    assert_array_equal(a.predict(matrix), b.predict(array))
    assert_array_equal(a.predict(array), a.predict(matrix))
    assert_array_equal(a.predict(sp.coo_array(matrix)), a.predict(matrix))
    if cls is ImplicitALSRecommender:
        assert a.score(array) == a.score(matrix)
        rows = np.arange(5)
        ids_m, _ = a.recommend(rows, matrix[:5], N=3, recalculate_user=True)
        ids_a, _ = a.recommend(rows, array[:5], N=3, recalculate_user=True)
        assert_array_equal(ids_m, ids_a)
    ids = pl.Series("unified_user_id", [f"k{i:02d}" for i in range(60)])
    items = pl.Series("partnumber", np.arange(40))
    ims = [InteractionMatrix(m, ids, ids, items) for m in (matrix, array)]
    a = cls(**params).fit(ims[0])
    b = cls(**params).fit(ims[1])
    assert a.predict(ims[0]).equals(b.predict(ims[1]))


# ------------------------------------------------------------ private kernels
def test_implicit_topk_kernel_behaves_as_pinned():
    """skals' own top-k (tests/test_topk.py) answers as implicit's kernel
    (implicit.cpu.topk.topk) does: filtered candidates score ``-FLT_MAX``,
    and scores are bit for bit implicit's ``recommend`` (its 100-row BLAS
    batches). Fails if a new implicit changes either; pyproject.toml pins
    the tested versions."""
    from implicit.cpu.topk import topk as kernel

    rng = np.random.default_rng(0)
    items = rng.normal(size=(6, 3)).astype(np.float32)
    users = rng.normal(size=(250, 3)).astype(np.float32)
    ids, scores = kernel(items, users, 6, filter_items=np.array([1, 4], np.int32))
    assert (scores[:, -2:] == np.finfo(np.float32).min).all()
    assert not np.isin(ids[:, :4], [1, 4]).any()
    ref = AlternatingLeastSquares(factors=3)
    ref.user_factors, ref.item_factors = users, items
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want_ids, want_scores = ref.recommend(
            np.arange(250), sp.csr_matrix((250, 6)), N=4, filter_items=[1, 4]
        )
    assert_array_equal(ids[:, :4], want_ids)
    assert scores[:, :4].tobytes() == want_scores.tobytes()
    model = ImplicitALSRecommender(factors=3, k=4, filter_items=[1, 4])
    model.fit(sp.random(250, 6, density=0.5, random_state=0, format="csr"))
    model.user_factors_, model.item_factors_ = users, items
    got_ids, got_scores = model.recommend(
        np.arange(250), None, N=4, filter_items=[1, 4], filter_already_liked_items=False
    )
    assert got_scores.tobytes() == want_scores.tobytes()


def test_initial_factors_are_implicits(matrix):
    # skals draws implicit's starting factors itself (in place, without
    # implicit's temporary product); a change of implicit's rule fails here
    from skals.recommender._als import _initial_factors

    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(factors=6, iterations=0, random_state=11)
        ref.fit(matrix, show_progress=False)
    users, items = _initial_factors(matrix.shape, 6, 11)
    assert users.dtype == items.dtype == np.float32
    assert_array_equal(users, ref.user_factors)
    assert_array_equal(items, ref.item_factors)
    # a RandomState draws one seed per fit: the same for equal states
    a = ImplicitALSRecommender(**PARAMS, random_state=np.random.RandomState(5))
    b = ImplicitALSRecommender(**PARAMS, random_state=np.random.RandomState(5))
    assert_array_equal(a.fit(matrix).user_factors_, b.fit(matrix).user_factors_)
