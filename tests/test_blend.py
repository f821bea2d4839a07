"""Tests of BlendRecommender: exact blends, parity, parameters, the fit cache."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skals import (
    BlendRecommender,
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    RepeatRecommender,
    SessionHoldoutSplit,
    SessionKNNRecommender,
)
from skals.datasets import make_sessions
from skals.metrics import make_next_item_scorer, make_session_scorer
from skals.recommender._blend import normalise

X = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]])


def components():
    return [("repeat", RepeatRecommender()), ("pop", PopularityRecommender())]


def test_exact_blend_minmax():
    # repeat on [0, 0, 1, 0]: item 2 scores 1 + 1 + 0.1, then popularity over
    # its best (3, 2, 0 -> 1, 2/3, 0); minmax: 1, 1/2.1, (2/3)/2.1, 0.
    # popularity (3, 2, 1, 0): 1, 2/3, 1/3, 0.
    blend = BlendRecommender(components(), weights=[3.0, 1.0], k=4).fit(X)
    ids, scores, _ = blend._rank_context(
        sp.csr_matrix([[0, 0, 1, 0]], dtype=np.float32), None, None, k=4
    )
    expected = {
        2: 3 * 1 + 1 / 3,
        0: 3 / 2.1 + 1,
        1: 3 * (2 / 3) / 2.1 + 2 / 3,
    }
    assert ids[0, :3].tolist() == [2, 0, 1]
    np.testing.assert_allclose(scores[0, :3], [expected[i] for i in (2, 0, 1)], 1e-5)
    # item 3 scores 0 in both: it is no candidate and comes from the fallback
    assert ids[0, 3] == 3
    assert scores[0, 3] < 0


def test_exact_blend_rank():
    blend = BlendRecommender(
        components(), weights=[1.0, 1.0], normalization="rank", k=3
    ).fit(X)
    # repeat ranks 2, 0, 1, 3 and popularity 0, 1, 2, 3 -> (n - j) / n
    ids, scores, _ = blend._rank_context(
        sp.csr_matrix([[0, 0, 1, 0]], dtype=np.float32), None, None, k=3
    )
    # 0: .75 + 1, 2: 1 + .5, 1: .5 + .75
    assert ids.tolist() == [[0, 2, 1]]
    np.testing.assert_allclose(scores, [[1.75, 1.5, 1.25]], rtol=1e-6)


def naive_blend(blend, matrix, k):
    """The published definition, one row and one component at a time."""
    out = []
    for r in range(matrix.shape[0]):
        total = {}
        for est, w in zip(blend.estimators_, blend.weights_, strict=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ids, scores, _ = est._rank_context(
                    matrix[r], None, None, k=blend.n_candidates
                )
            ids, scores = ids[0][ids[0] >= 0], scores[0][ids[0] >= 0]
            lo, hi = scores.min(), scores.max()
            for i, s in zip(ids, scores, strict=True):
                norm = (s - lo) / (hi - lo) if hi > lo else 1.0
                total[int(i)] = total.get(int(i), 0.0) + w * norm
        ranked = sorted(
            (i for i in total if total[i] > 0), key=lambda i: (-total[i], i)
        )
        out.append(ranked[:k])
    return out


def test_parity_with_naive_blend_on_random_data():
    rng = np.random.default_rng(0)
    train = sp.random(60, 30, density=0.15, random_state=1, format="csr") * 5
    query = sp.random(25, 30, density=0.1, random_state=2, format="csr") * 5
    blend = BlendRecommender(
        [
            ("als", ImplicitALSRecommender(factors=4, iterations=3, random_state=0)),
            ("repeat", RepeatRecommender()),
            ("knn", SessionKNNRecommender(n_neighbors=10)),
            ("pop", PopularityRecommender()),
        ],
        weights=rng.uniform(0.1, 2, size=4).tolist(),
        n_candidates=12,
        k=6,
    ).fit(train)
    got = blend.predict(query)
    expected = naive_blend(blend, sp.csr_matrix(query, dtype=np.float32), 6)
    for row, exp in zip(got.tolist(), expected, strict=True):
        assert row[: len(exp)] == exp


def test_zero_weight_component_is_not_asked():
    class Boom(PopularityRecommender):
        def _rank_context(self, *a, **kw):
            raise AssertionError("asked")

    blend = BlendRecommender(
        [("repeat", RepeatRecommender()), ("boom", Boom())], weights=[1, 0], k=2
    ).fit(X)
    assert blend.predict(np.array([[0, 0, 1, 0]])).tolist() == [[2, 0]]


def test_nested_params_clone_pickle():
    blend = BlendRecommender(
        [("als", ImplicitALSRecommender(factors=3)), ("pop", PopularityRecommender())]
    )
    knn = BlendRecommender([("knn", SessionKNNRecommender(n_neighbors=7))])
    assert knn.get_params()["knn__n_neighbors"] == 7
    pipe = make_pipeline(
        PseudoUserUnifier(), ConfidenceEncoder(), InteractionMatrixBuilder(), blend
    )
    params = pipe.get_params()
    assert params["blendrecommender__als__factors"] == 3
    assert params["blendrecommender__weights"] is None
    pipe.set_params(blendrecommender__als__factors=5, blendrecommender__weights=[1, 2])
    assert blend.estimators[0][1].factors == 5
    assert blend.weights == [1, 2]
    cloned = clone(pipe)
    assert cloned.get_params()["blendrecommender__als__factors"] == 5
    assert cloned[-1].estimators[0][1] is not blend.estimators[0][1]
    pipe.set_params(blendrecommender__pop="drop")
    assert blend.estimators[1] == ("pop", "drop")
    events = make_sessions(300, n_items=80, random_state=0)
    pipe.set_params(blendrecommender__als__iterations=2, blendrecommender__weights=None)
    pipe.fit(events)
    assert list(pipe[-1].named_estimators_) == ["als"]
    again = pickle.loads(pickle.dumps(pipe))
    assert again.predict(events).equals(pipe.predict(events))


def test_weights_changed_after_fit_do_nothing_until_refit():
    blend = BlendRecommender(components(), weights=[3.0, 1.0], k=2).fit(X)
    before = blend.predict(np.array([[0, 0, 1, 0]]))
    blend.set_params(weights=[0.0, 1.0])
    np.testing.assert_array_equal(blend.predict(np.array([[0, 0, 1, 0]])), before)
    assert blend.fit(X).predict(np.array([[0, 0, 1, 0]])).tolist() == [[0, 1]]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"weights": [1.0]}, ValueError, "weights has 1 entries for 2"),
        ({"weights": [1.0, -1.0]}, ValueError, "finite and >= 0"),
        ({"estimators": [("a", RepeatRecommender())] * 2}, ValueError, "unique"),
        ({"estimators": [("a__b", RepeatRecommender())]}, ValueError, "'__'"),
        ({"estimators": [("a", "drop")]}, ValueError, "dropped"),
        ({"estimators": [("a", ConfidenceEncoder())]}, TypeError, "skals recommender"),
    ],
)
def test_bad_components(kwargs, error, match):
    params = {"estimators": components(), **kwargs}
    with pytest.raises(error, match=match):
        BlendRecommender(**params).fit(X)


class CountingALS(ImplicitALSRecommender):
    """ALS that counts its fits (a class attribute: shared across clones)."""

    fits: list = []

    def fit(self, X, y=None):
        CountingALS.fits.append(X.shape)
        return super().fit(X, y)


def _search(memory):
    CountingALS.fits = []
    events = make_sessions(600, n_items=150, random_state=0)
    als = CountingALS(factors=4, iterations=2, random_state=0)
    blend = BlendRecommender(
        [("als", als), ("repeat", RepeatRecommender())], memory=memory
    )
    pipe = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        blend,
    )
    grid = {"blendrecommender__weights": [[1, 0], [1, 1], [1, 3], [0.5, 1]]}
    search = GridSearchCV(
        pipe, grid, scoring=make_session_scorer("ndcg"), cv=SessionHoldoutSplit(2)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search.fit(events)
    return search, len(CountingALS.fits)


def test_grid_search_over_weights_fits_components_once_per_fold(tmp_path):
    uncached, n_uncached = _search(None)
    cached, n_cached = _search(str(tmp_path))
    assert n_uncached == 4 * 2 + 1  # every candidate and fold, and the refit
    assert n_cached == 2 + 1  # once per fold, and the refit
    assert cached.best_params_ == uncached.best_params_
    np.testing.assert_allclose(
        cached.cv_results_["mean_test_score"], uncached.cv_results_["mean_test_score"]
    )
    # a second search on the same data fits nothing
    _, n_again = _search(str(tmp_path))
    assert n_again == 0


def test_blend_beats_each_component_with_sequential_structure():
    events = make_sessions(6000, n_items=800, sequential_strength=0.5, random_state=0)
    train, test = next(SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events))
    train, test = events[train], events[test]
    scorer = make_next_item_scorer(k=20)

    def score(model):
        pipe = make_pipeline(
            PseudoUserUnifier(),
            ConfidenceEncoder(grain="session", time_col="timestamp_local"),
            InteractionMatrixBuilder(),
            model,
        ).fit(train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return scorer(pipe, test)

    def parts():
        return [
            ("als", ImplicitALSRecommender(alpha=10.0, random_state=0)),
            ("repeat", RepeatRecommender()),
        ]

    blend = score(BlendRecommender(parts(), weights=[1.0, 2.0]))
    for _, component in parts():
        alone = score(component)
        for metric in ("hit_rate@20", "mrr@20"):
            assert blend[metric] > alone[metric], (component, metric, blend, alone)


def test_normalise():
    ids = np.array([[3, 1, -1], [2, -1, -1]])
    scores = np.array([[5.0, 1.0, -np.inf], [7.0, -np.inf, -np.inf]])
    np.testing.assert_allclose(normalise(ids, scores, "minmax"), [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(normalise(ids, scores, "rank"), [[1, 0.5, 0], [1, 0, 0]])
