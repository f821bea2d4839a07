"""Tests of BlendRecommender: exact blends, parity, parameters, the fit cache."""

import dataclasses
import pickle
import warnings

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from conftest import SIX_SESSIONS_SCHEMA, six_sessions
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
    make_recommender_pipeline,
)
from skals.datasets import make_sessions
from skals.metrics import make_next_item_scorer, make_session_scorer
from skals.recommender._blend_scores import normalise

X = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]])


def components():
    return [("repeat", RepeatRecommender()), ("pop", PopularityRecommender())]


def test_exact_blend_minmax():
    # repeat on [0, 0, 1, 0]: item 2 scores 1 + 1 + 0.1, then popularity over
    # its best (3, 2, 0 -> 1, 2/3, 0); minmax over that list: 1, 1/2.1,
    # (2/3)/2.1, 0, but only item 2 is repeat's own: the fill after it adds
    # nothing. popularity (3, 2, 1, 0): 1, 2/3, 1/3, 0.
    blend = BlendRecommender(components(), weights=[3.0, 1.0], k=4).fit(X)
    ids, scores, _ = blend._rank_context(
        sp.csr_matrix([[0, 0, 1, 0]], dtype=np.float32), None, None, k=4
    )
    expected = {2: 3 * 1 + 1 / 3, 0: 1.0, 1: 2 / 3}
    assert ids[0, :3].tolist() == [2, 0, 1]
    np.testing.assert_allclose(scores[0, :3], [expected[i] for i in (2, 0, 1)], 1e-5)
    # item 3 is popularity's last candidate: normalised to 0, it is still a
    # candidate of the blend (scored 0), not a fallback item (scored < 0)
    assert ids[0, 3] == 3
    assert scores[0, 3] == pytest.approx(0.0, abs=1e-9)


def test_exact_blend_rank():
    blend = BlendRecommender(
        components(), weights=[1.0, 1.0], normalization="rank", k=3
    ).fit(X)
    # repeat ranks 2, then its fill 0, 1, 3 -> (n - j) / n = 1 for item 2
    # only (the fill is not repeat's own); popularity 0, 1, 2, 3
    ids, scores, _ = blend._rank_context(
        sp.csr_matrix([[0, 0, 1, 0]], dtype=np.float32), None, None, k=3
    )
    # 2: 1 + .5, 0: 1, 1: .75
    assert ids.tolist() == [[2, 0, 1]]
    np.testing.assert_allclose(scores, [[1.5, 1.0, 0.75]], rtol=1e-6)


def test_repeat_fill_does_not_outrank_another_components_candidates():
    # sessions {0, 1} (twice) and {2} alone (five times): popularity puts 2
    # first. The session [0]: repeat's own item is 0, its popularity fill 2;
    # kNN's neighbours go on to item 1. At 10:1 the fill (popularity, not
    # repeat's opinion) must not come before kNN's item.
    train = sp.csr_matrix(np.array([[1, 1, 0]] * 2 + [[0, 0, 1]] * 5), dtype=float)
    blend = BlendRecommender(
        [("repeat", RepeatRecommender()), ("knn", SessionKNNRecommender())],
        weights=[10.0, 1.0],
        normalization="rank",
        k=3,
    ).fit(train)
    assert blend.predict(sp.csr_matrix([[1.0, 0, 0]])).tolist() == [[0, 1, 2]]


def test_a_key_gets_no_repeat_fill_in_the_blend():
    # a key alone: repeat keeps no history, so its answer is all popularity
    # fill (a, b, e, c), not its opinion; the blend answers kNN's order
    blend = BlendRecommender(
        [("repeat", RepeatRecommender()), ("knn", SessionKNNRecommender())],
        weights=[10.0, 1.0],
        normalization="rank",
        k=4,
    )
    pipe = make_recommender_pipeline(blend, schema=SIX_SESSIONS_SCHEMA)
    pipe.fit(six_sessions())
    knn = pipe[-1].named_estimators_["knn"]
    assert knn.recommend_keys(["u_7"], k=4)["recommendations"].to_list() == [
        ["a", "d", "e", "b"]
    ]
    out = pipe[-1].recommend_keys(["u_7"])
    assert out["recommendations"].to_list() == [["a", "d", "e", "b"]]
    # kNN's ranks over its 6 candidates, (6 - j) / 6, at weight 1
    np.testing.assert_allclose(out["scores"][0].to_list(), [1, 5 / 6, 4 / 6, 3 / 6])
    assert out["source"].to_list() == ["blend"]


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
            if isinstance(est, RepeatRecommender):  # its own items, not the fill
                n_own = int((matrix[r].toarray() > 0).sum())
                ids, scores = ids[:n_own], scores[:n_own]
            for i, s in zip(ids, scores, strict=True):
                norm = (s - lo) / (hi - lo) if hi > lo else 1.0
                total[int(i)] = total.get(int(i), 0.0) + w * norm
        # every candidate counts, a sum of 0 (a minmax row's last) included
        ranked = sorted(total, key=lambda i: (-total[i], i))
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
    assert params["blendrecommender__weights"] == "auto"
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
        ({"estimators": [("k", RepeatRecommender())]}, ValueError, "'k' is a param"),
        ({"estimators": [("weights", RepeatRecommender())]}, ValueError, "rename"),
        ({"estimators": [("a", "drop")]}, ValueError, "dropped"),
        ({"estimators": [("a", ConfidenceEncoder())]}, TypeError, "skals recommender"),
    ],
)
def test_bad_components(kwargs, error, match):
    params = {"estimators": components(), **kwargs}
    with pytest.raises(error, match=match):
        BlendRecommender(**params).fit(X)


def test_a_component_named_like_a_parameter_cannot_swallow_set_params():
    # a component named "k" took set_params(k=20): the scorers' answering
    # pipeline then left the blend at k=5 and HR@20 was HR@5's
    blend = BlendRecommender([("k", RepeatRecommender())], weights=None)
    with pytest.raises(ValueError, match="Component name 'k'"):
        blend.fit(X)
    ok = BlendRecommender([("knn", RepeatRecommender())], weights=None, k=2).fit(X)
    ok.set_params(k=3)
    assert ok.predict(np.array([[0, 0, 1, 0]])).shape == (1, 3)


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


# ------------------------------------------------- default recipe, "auto"
from skals.recommender import default_session_estimators  # noqa: E402
from skals.recommender._blend_auto import (  # noqa: E402
    holdout_split,
    local_moves,
    mrr,
    ndcg,
    session_split,
    simplex_grid,
)
from skals.schema import needs_event_order  # noqa: E402


def test_default_recipe_is_built_at_fit_and_round_trips():
    blend = BlendRecommender()
    assert blend.estimators is None and blend.weights == "auto"
    params = blend.get_params()
    assert {"als", "knn", "repeat", "als__factors", "knn__n_neighbors"} <= set(params)
    assert needs_event_order(blend)  # the pipeline factory passes the time column
    cloned = clone(blend)
    assert cloned.estimators is None
    assert cloned.get_params(deep=False) == blend.get_params(deep=False)
    # a component's parameter makes the recipe explicit, as fallback__<p> does
    blend.set_params(knn__n_neighbors=7, random_state=3)
    assert [n for n, _ in blend.estimators] == ["als", "knn", "repeat", "sr"]
    assert blend.get_params()["knn__n_neighbors"] == 7
    assert clone(blend).get_params()["knn__n_neighbors"] == 7
    assert [n for n, _ in default_session_estimators()] == [
        "als",
        "knn",
        "repeat",
        "sr",
    ]
    assert default_session_estimators(5)[0][1].random_state == 5


def test_default_blend_fits_in_the_schema_pipeline_and_leaves_params_alone():
    from skals import make_recommender_pipeline

    events = make_sessions(400, n_items=60, random_state=0)
    pipe = make_recommender_pipeline(BlendRecommender(random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pipe.fit(events)
    blend = pipe[-1]
    assert blend.estimators is None  # fit does not write its parameters
    assert list(blend.named_estimators_) == ["als", "knn", "repeat", "sr"]
    # the 35 vectors of the simplex grid, then the refinements' (at most 12
    # per round), each one step of 1/8 or 1/16 from a vector before it
    np.testing.assert_array_equal(blend.weight_grid_[:35], simplex_grid(4, 4))
    assert 35 < len(blend.weight_grid_) <= 35 + 2 * 12
    assert blend.weights_.tolist() in blend.weight_grid_.tolist()
    np.testing.assert_allclose(
        blend.weights_, blend.weight_grid_[np.argmax(blend.weight_scores_)]
    )
    again = pickle.loads(pickle.dumps(pipe))
    assert again.predict(events).equals(pipe.predict(events))


class _Fixed(PopularityRecommender):
    """Ranks every item by column index (0 first): a poor component."""

    def _rank_context(self, matrix, row_keys, im, *, k):
        n, m = matrix.shape[0], self.n_features_in_
        k = min(k, m)
        ids = np.tile(np.arange(k), (n, 1))
        scores = np.tile(np.arange(m, m - k, -1, dtype=np.float32), (n, 1))
        return ids, scores, np.full(n, k)


class _Successor(PopularityRecommender):
    """Answers ``i + 4`` for a row holding item ``i < 4``: the right one."""

    def _rank_context(self, matrix, row_keys, im, *, k):
        n = matrix.shape[0]
        ids = np.full((n, k), -1)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        first = np.asarray(sp.csr_matrix(matrix).argmax(axis=1)).ravel()
        ids[:, 0], scores[:, 0] = first + 4, 1.0
        return ids, scores, np.ones(n, dtype=np.int64)


def test_auto_weights_exact_on_a_hand_made_case():
    # row i holds {i % 4, i % 4 + 4}: the latest half (rows 4..7) is held
    # out, each without its last column (the truth i + 4, as the values are
    # all 1, the matrix's smallest: no repeat)
    rows = [[1 if j in (i % 4, i % 4 + 4) else 0 for j in range(8)] for i in range(8)]
    blend = BlendRecommender(
        [("succ", _Successor()), ("fixed", _Fixed())],
        validation_size=0.5,
        grid_resolution=2,
        grid_refinements=0,
        validation="next_item",
    ).fit(np.array(rows))
    np.testing.assert_array_equal(blend.weight_grid_, [[1, 0], [0, 1], [0.5, 0.5]])
    # succ alone: the truth first (MRR 1); fixed alone: the truth i + 4 at
    # rank i + 5; half each: the truth scores .5 + .5 (3 - i) / 7 against
    # item 0's .5, a tie for i = 3 that item 0 wins (lower column). Fixed's
    # last item (7) normalises to 0 but is still a candidate: rank 8 for
    # i = 3 (it was dropped, MRR 0, before sum_parts kept zero entries).
    expected = [1.0, np.mean([1 / 5, 1 / 6, 1 / 7, 1 / 8]), (3 + 0.5) / 4]
    np.testing.assert_allclose(blend.weight_scores_, expected)
    np.testing.assert_array_equal(blend.weights_, [1.0, 0.0])
    assert blend.predict(np.array([[0, 1, 0, 0, 0, 0, 0, 0]]))[0, 0] == 5


def test_auto_weights_exact_on_the_session_protocol():
    # the same rows, scored by the default session protocol: each held-out
    # row {r, r + 4} (r = i % 4) reveals its first item r (a plain matrix:
    # column order) and, with no cart counts, the rest {r + 4} is the truth;
    # NDCG@5 of the blend's 5 items
    rows = [[1 if j in (i % 4, i % 4 + 4) else 0 for j in range(8)] for i in range(8)]
    blend = BlendRecommender(
        [("succ", _Successor()), ("fixed", _Fixed())],
        validation_size=0.5,
        grid_resolution=2,
        grid_refinements=0,
        validation="session",
    ).fit(np.array(rows))
    # succ: the truth first; fixed: the truth r + 4 at rank r + 5, inside the
    # top 5 for r = 0 only; half each: first for r < 3, second for r = 3
    session = [1.0, 1 / np.log2(6) / 4, (3 + 1 / np.log2(3)) / 4]
    np.testing.assert_allclose(blend.weight_scores_, session)
    np.testing.assert_array_equal(blend.weights_, [1.0, 0.0])
    # the default, "both": per vector the smallest of its three measures over
    # the best vertex's (here succ's 1 on each; every vector's HR@20 is 1:
    # fixed ranks the truth within 8)
    both = clone(blend).set_params(validation="both").fit(np.array(rows))
    next_item = [1.0, np.mean([1 / 5, 1 / 6, 1 / 7, 1 / 8]), (3 + 0.5) / 4]
    np.testing.assert_allclose(both.weight_scores_, np.minimum(session, next_item))
    assert BlendRecommender().validation == "both"


class _Lists(PopularityRecommender):
    """Per query item ``r``: a fixed list of three candidates and scores.

    ``lists[kind]`` is ``(offsets, scores)``: candidates ``r + 4 + offset``
    (mod 4, in 4..7); ``kind`` is 0 for ``r < 2``, else 1.
    """

    def __init__(self, lists=None, k=5):
        super().__init__(k=k)
        self.lists = lists

    def _rank_context(self, matrix, row_keys, im, *, k):
        n = matrix.shape[0]
        ids = np.full((n, k), -1)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        first = np.asarray(sp.csr_matrix(matrix).argmax(axis=1)).ravel()
        for row, r in enumerate(first):
            offsets, values = self.lists[int(r >= 2)]
            ids[row, :3] = [4 + (r + o) % 4 for o in offsets]
            scores[row, :3] = values
        return ids, scores, np.full(n, 3)


def test_auto_weights_refinement_finds_a_mix_between_the_grids_points():
    # rows {r, r + 4}; held out: r = 0..3, truth t = r + 4, c = the next
    # item (offset 1), y the one after (offset 2). With weight w on "a":
    # for r < 2, t beats c iff w * .8235 + (1 - w) > w, i.e. w < 0.85; for
    # r >= 2, t beats c iff w > w / 3 + (1 - w), i.e. w > 0.6
    rows = [[1 if j in (i % 4, i % 4 + 4) else 0 for j in range(8)] for i in range(8)]
    a = _Lists([((1, 0, 2), (1.0, 1 - 0.1765, 0.0)), ((0, 1, 2), (1.0, 1 / 3, 0.0))])
    b = _Lists([((0, 2, 1), (1.0, 0.5, 0.0)), ((1, 2, 0), (1.0, 0.5, 0.0))])
    blend = BlendRecommender(
        [("a", a), ("b", b)],
        validation_size=0.5,
        grid_resolution=2,
        validation="next_item",
    ).fit(np.array(rows))
    # grid: w = 1 (t second for r < 2), 0 (t third for r >= 2), .5 (t second
    # for r >= 2): MRR .75, 2/3, .75. Round 1 (step 1/4) from [1, 0], the
    # first best: [.75, .25] puts t first everywhere (MRR 1). Round 2 (step
    # 1/8) from it: [.625, .375] (1) and [.875, .125] (.75, above 0.85)
    np.testing.assert_allclose(
        blend.weight_grid_,
        [[1, 0], [0, 1], [0.5, 0.5], [0.75, 0.25], [0.625, 0.375], [0.875, 0.125]],
    )
    np.testing.assert_allclose(
        blend.weight_scores_, [0.75, (2 + 2 / 3) / 4, 0.75, 1.0, 1.0, 0.75]
    )
    np.testing.assert_allclose(blend.weights_, [0.75, 0.25])  # ties: the first
    coarse = clone(blend).set_params(grid_refinements=0).fit(np.array(rows))
    np.testing.assert_allclose(coarse.weights_, [1.0, 0.0])


def test_local_moves():
    seen = np.array([[1.0, 0, 0], [0.5, 0.5, 0]])
    got = local_moves(np.array([0.5, 0.5, 0.0]), 0.25, seen)
    # from component 0 to 1 and 2, from 1 to 0 and 2; nothing from 2 (0)
    np.testing.assert_allclose(
        got, [[0.25, 0.75, 0], [0.25, 0.5, 0.25], [0.75, 0.25, 0], [0.5, 0.25, 0.25]]
    )
    # vectors already scored ([.5, .5, 0] and [1, 0, 0] here) are left out
    got = local_moves(np.array([0.75, 0.25, 0]), 0.25, seen)
    np.testing.assert_allclose(got, [[0.5, 0.25, 0.25], [0.75, 0, 0.25]])


def _cart_log_matrix(cells=None, times=(1.0, 2.0, 3.0, 0.0)):
    """An InteractionMatrix of ConfidenceEncoder values 1 + views + 10 carts."""

    from skals._interaction import InteractionMatrix

    # (row, item, events, carts, recency); times: d 0, a 1, b 2, c 3
    cells = cells or [
        (0, 0, 1, 0, 3), (0, 1, 1, 0, 2), (0, 2, 1, 0, 1),  # a: no cart
        (1, 0, 1, 0, 4), (1, 1, 2, 1, 1), (1, 2, 1, 0, 3), (1, 3, 1, 0, 2),  # b
        (2, 1, 1, 0, 2), (2, 4, 1, 1, 1),  # c: item 4 carted once, no view
        (3, 2, 1, 0, 1),  # d: one item, never held out
    ]  # fmt: skip
    r, c, e, k, rec = (np.array(x) for x in zip(*cells, strict=True))
    shape = (len(times), 5)
    m = sp.csr_matrix(((1 + e + 10 * k).astype(np.float32), (r, c)), shape=shape)
    stats = pl.DataFrame(
        {
            "item_index": np.arange(5),
            "confidence": np.bincount(c, 1 + e + 10 * k, minlength=5),
            "view_count": np.bincount(c, e, minlength=5).astype(float),
            "cart_count": np.bincount(c, k, minlength=5).astype(float),
            "n_rows": np.bincount(c, minlength=5).astype(float),
        }
    )
    ids = pl.Series("s", list("abcdefgh")[: len(times)])
    return InteractionMatrix(
        m,
        row_ids=ids,
        row_keys=ids,
        item_ids=pl.Series("item", [10, 11, 12, 13, 14]),
        item_stats=stats,
        row_times=np.array(times),
        recency=sp.csr_matrix((rec, (r, c)), shape=shape),
    )


def test_session_split_exact_with_carts_and_repeats():
    im = _cart_log_matrix()
    fit_im, q, q_im, truth = session_split(im, None, 3, 3, random_state=0)
    assert fit_im.row_ids.to_list() == ["d"]
    # a has no cart add: no truth, dropped; b and c are the queries
    assert q_im.row_ids.to_list() == ["b", "c"]
    # b: items by their last event 0, 2, 3, 1; the first 3 revealed, and 1
    # (two events, one a cart add) too; c: item 1 revealed, item 4 (one cart
    # add, no other event) not. Every revealed item has one view's value (2)
    assert q.toarray().tolist() == [[2, 2, 2, 2, 0], [0, 2, 0, 0, 0]]
    # the truth: the carted items
    assert truth.toarray().tolist() == [[0, 1, 0, 0, 0], [0, 0, 0, 0, 1]]
    b = q_im.recency.toarray()[0]
    assert sorted(b.tolist()) == [0, 1, 2, 3, 4]  # a permutation of 1..4
    assert b[0] > b[2] > b[3]  # the revealed keep their order
    assert q_im.recency.toarray()[1].tolist() == [0, 1, 0, 0, 0]
    # without cart counts the truth is the rest: b's item 1, c's item 4, and
    # a (3 items: 2 revealed) its last item 2
    no_carts = dataclasses.replace(im, item_stats=None)
    _, q, q_im, truth = session_split(no_carts, None, 3, 3, random_state=0)
    assert q_im.row_ids.to_list() == ["a", "b", "c"]
    assert truth.toarray().tolist() == [
        [0, 0, 1, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 0, 0, 1],
    ]


def test_session_split_without_repeats_counts_only_unrevealed_carts():
    # a log where no item has two events in a session (ratings, say): a
    # revealed cart add is not a later event, so it is no truth
    cells = [
        (0, 0, 1, 1, 2), (0, 1, 1, 0, 1),  # a: item 0 carted, then 1 viewed
        (1, 0, 1, 0, 3), (1, 1, 1, 1, 2), (1, 2, 1, 1, 1),  # b: 1, 2 carted
        (2, 3, 1, 0, 1),  # c: never held out
    ]  # fmt: skip
    im = _cart_log_matrix(cells, times=(1.0, 2.0, 0.0))
    _, q, q_im, truth = session_split(im, None, 2, 1, random_state=0)
    assert q_im.row_ids.to_list() == ["b"]  # a's only cart was revealed
    assert truth.toarray().tolist() == [[0, 1, 1, 0, 0]]
    # one item seen twice anywhere in the log: a's revealed cart counts
    im = _cart_log_matrix([*cells, (2, 4, 2, 0, 2)], times=(1.0, 2.0, 0.0))
    _, q, q_im, truth = session_split(im, None, 2, 1, random_state=0)
    assert q_im.row_ids.to_list() == ["a", "b"]
    assert truth.toarray().tolist() == [[1, 0, 0, 0, 0], [0, 1, 1, 0, 0]]


def test_validation_ndcg_matches_the_metric():
    from skals.metrics import ndcg_at_k

    rng = np.random.default_rng(0)
    truth = sp.random(30, 12, density=0.2, random_state=1, format="csr")
    truth.data[:] = 1
    keep = np.diff(truth.indptr) > 0
    truth = truth[keep]
    ids = np.array([rng.permutation(12)[:5] for _ in range(truth.shape[0])])
    ids[0, 3:] = -1  # a short answer
    sets = [set(truth[i].indices) for i in range(truth.shape[0])]
    lists = [[j for j in row if j >= 0] for row in ids]
    assert ndcg(ids, truth, 5) == pytest.approx(ndcg_at_k(sets, lists, k=5))


def knn_pop_log():
    """An 80-row random log and two parts: session-kNN and popularity."""
    train = sp.random(80, 30, density=0.15, random_state=3, format="csr") * 4
    parts = [
        ("knn", SessionKNNRecommender(n_neighbors=10)),
        ("pop", PopularityRecommender()),
    ]
    return train, parts


@pytest.mark.parametrize("validation", ["next_item", "session"])
def test_vertex_scores_equal_each_component_alone_naive(validation):
    # the vertex of a component is that component alone: its validation
    # score (next item: MRR@20; session: NDCG@5 of the truth sets) computed
    # by a plain loop over the held-out rows
    from skals.metrics import ndcg_at_k

    train, parts = knn_pop_log()
    blend = BlendRecommender(
        parts, validation_size=16, validation=validation, random_state=0
    ).fit(train)
    if validation == "next_item":
        fit_rows, query, _, truth = holdout_split(None, sp.csr_matrix(train), 16)
    else:
        fit_rows, query, _, truth = session_split(None, train, 16, 3, 0)
    assert query.shape[0] == 16
    for j, (_, est) in enumerate(parts):
        model = clone(est).fit(fit_rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ids, _, _ = model._rank_context(query, None, None, k=20)
        if validation == "session":
            sets = [set(truth[i].indices) for i in range(truth.shape[0])]
            lists = [[i for i in row if i >= 0][:5] for row in ids]
            assert blend.weight_scores_[j] == pytest.approx(ndcg_at_k(sets, lists))
            continue
        reciprocal = []
        for row, t in zip(ids, truth, strict=True):
            ranked = [i for i in row if i >= 0][:20]
            reciprocal.append(1 / (ranked.index(t) + 1) if t in ranked else 0.0)
        assert blend.weight_scores_[j] == pytest.approx(np.mean(reciprocal))
    assert blend.weight_scores_.max() >= blend.weight_scores_[:2].max()


@pytest.mark.parametrize("validation", ["next_item", "session"])
def test_max_validation_sessions_caps_the_share_held_out(validation):
    # 80 rows, about 60 with two items or more: a share of 0.5 holds out ~30
    # of them, capped at 7 the latest 7, exactly as validation_size=7 does
    train, parts = knn_pop_log()

    def split(size, max_rows=None):
        if validation == "next_item":
            return holdout_split(None, train, size, 0, max_rows)
        return session_split(None, train, size, 3, 0, max_rows)

    assert split(0.5)[1].shape[0] > 7
    capped, seven = split(0.5, max_rows=7), split(7)
    assert capped[1].shape[0] == 7
    assert (capped[1] != seven[1]).nnz == 0 and (capped[0] != seven[0]).nnz == 0

    def fitted(**kw):
        return BlendRecommender(parts, validation=validation, random_state=0, **kw).fit(
            train
        )

    a = fitted(validation_size=0.5, max_validation_sessions=7)
    b = fitted(validation_size=7, max_validation_sessions=None)
    c = fitted(validation_size=0.5, max_validation_sessions=None)
    np.testing.assert_array_equal(a.weight_scores_, b.weight_scores_)
    assert not np.array_equal(a.weight_scores_, c.weight_scores_)


def test_holdout_split_exact_with_recency():

    from skals._interaction import InteractionMatrix

    # row 0: items 0, 1, 2 (recency 3, 2, 1), all seen once (value 2)
    # row 1: items 1, 3 (recency 2, 1), item 3 seen twice (value 3)
    # row 2: a single item (never held out)
    m = sp.csr_matrix(
        np.array([[2, 2, 2, 0], [0, 2, 0, 3], [0, 0, 2, 0]], dtype=np.float32)
    )
    rec = sp.csr_matrix(np.array([[3, 2, 1, 0], [0, 2, 0, 1], [0, 0, 1, 0]]))
    im = InteractionMatrix(
        m,
        row_ids=pl.Series("s", ["a", "b", "c"]),
        row_keys=pl.Series("s", ["a", "b", "c"]),
        item_ids=pl.Series("item", [10, 11, 12, 13]),
        row_times=np.array([1.0, 2.0, 3.0]),
        recency=rec,
    )
    fit_im, q, q_im, truth = holdout_split(im, m, 1)  # the latest of 2 eligible
    assert fit_im.row_ids.to_list() == ["a", "c"]
    assert q_im.row_ids.to_list() == ["b"]
    assert truth.tolist() == [3]
    # item 3 was seen twice: it stays as one earlier event (value 2)
    assert q.toarray().tolist() == [[0, 2, 0, 2]]
    assert sorted(q_im.recency.data.tolist()) == [1, 2]
    fit_im, q, q_im, truth = holdout_split(im, m, 2)
    assert truth.tolist() == [2, 3]
    assert q.toarray()[0].tolist() == [2, 2, 0, 0]  # item 2 seen once: gone
    assert q_im.recency.toarray()[0].tolist() == [2, 1, 0, 0]


def test_simplex_grid_and_mrr():
    grid = simplex_grid(3, 4)
    assert grid.shape == (15, 3)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    np.testing.assert_array_equal(grid[:3], np.eye(3))
    assert len({tuple(r) for r in grid}) == 15
    assert simplex_grid(1, 4).tolist() == [[1.0]]
    assert mrr(np.array([[3, 1], [2, 0], [5, 6]]), np.array([1, 2, 7])) == 0.5


def test_auto_blend_never_loses_to_its_parts_with_sequential_structure():
    # the goal of the issue on session quality: the default blend at 0.99x
    # or more of its best component, on both protocols (next click; carts
    # after 3 revealed events)
    from skals import make_recommender_pipeline

    events = make_sessions(2500, n_items=300, sequential_strength=0.5, random_state=1)
    train, test = next(SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events))
    train, test = events[train], events[test]
    next_item = make_next_item_scorer(k=20)
    carts = make_session_scorer("ndcg", k=5, n_revealed=3)

    def score(model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            pipe = make_recommender_pipeline(model).fit(train)
            return {**next_item(pipe, test), "ndcg@5": carts(pipe, test)}

    auto = score(BlendRecommender(random_state=0))
    parts = [score(part) for _, part in default_session_estimators(0)]
    for metric in ("hit_rate@20", "mrr@20", "ndcg@5"):
        best = max(p[metric] for p in parts)
        assert auto[metric] >= 0.99 * best, (metric, auto, parts)
    # on the challenge's metric the blend is ahead of every part
    assert auto["ndcg@5"] > max(p["ndcg@5"] for p in parts)


def test_auto_without_a_session_to_validate_on_warns_and_uses_equal_weights():
    with pytest.warns(UserWarning, match="no session of two or more items"):
        blend = BlendRecommender(components()).fit(np.array([[1, 0, 0, 0]]))
    assert blend.weights_.tolist() == [1.0, 1.0]
    assert blend.weight_grid_ is None and blend.weight_scores_ is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": "best"}, "'weights' parameter"),
        ({"validation_size": 0.0}, "'validation_size' parameter"),
        ({"validation_size": 1.5}, "'validation_size' parameter"),
        ({"grid_resolution": 0}, "'grid_resolution' parameter"),
        ({"max_validation_sessions": 0}, "'max_validation_sessions' parameter"),
        ({"max_validation_sessions": 2.5}, "'max_validation_sessions' parameter"),
    ],
)
def test_bad_auto_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BlendRecommender(components(), **kwargs).fit(X)


def test_weights_of_the_default_recipe_are_checked():
    with pytest.raises(ValueError, match=r"weights has 2 entries for 4 estimators"):
        BlendRecommender(weights=[1.0, 2.0]).fit(X)


def test_holdout_split_a_single_cart_add_is_no_repeat():

    # session 1 ends with one cart add of item 12 (value 1 + 1 + 10 = 12),
    # session 2 with item 13 viewed twice (1 + 2 = 3): only that is a repeat
    events = pl.DataFrame(
        {
            "unified_user_id": ["u1"] * 2 + ["u2"] * 3 + ["u3"] * 2,
            "session_id": [1, 1, 2, 2, 2, 3, 3],
            "partnumber": [11, 12, 11, 13, 13, 11, 14],
            "add_to_cart": [0, 1, 0, 0, 0, 0, 0],
            "t": [1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.5],
        }
    )
    enc = ConfidenceEncoder(grain="session", time_col="t").fit_transform(events)
    im = InteractionMatrixBuilder().fit_transform(enc)
    _, q, q_im, truth = holdout_split(im, im.matrix, 2)
    assert len(truth) == 2 and q_im.matrix is q
    items = im.item_ids.to_list()
    assert [items[t] for t in truth] == [12, 13]
    kept = [[items[c] for c in q[r].indices] for r in range(2)]
    assert sorted(kept[0]) == [11]  # the cart add left the query
    assert sorted(kept[1]) == [11, 13]  # the re-viewed item stayed


def test_default_blend_beats_its_parts_on_cart_adds():
    # the demo's protocol (carts after 3 revealed events) on make_sessions'
    # defaults: with next-item validation alone the default blend lost to
    # its repeat part here (0.495 vs 0.504 NDCG@5); "both" validation also
    # scores the cart protocol
    from skals import make_recommender_pipeline

    events = make_sessions(3000, random_state=0)
    train, test = next(SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events))
    train, test = events[train], events[test]
    carts = make_session_scorer("ndcg", k=5, n_revealed=3)

    def score(model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return carts(make_recommender_pipeline(model).fit(train), test)

    auto = score(BlendRecommender(random_state=0))
    parts = {name: score(part) for name, part in default_session_estimators(0)}
    assert auto > max(parts.values()), (auto, parts)


@pytest.mark.parametrize("split", ["next_item", "session"])
def test_the_split_fit_input_has_no_item_stats_of_the_held_out_sessions(split):
    # the components fitted on the internal split must not see the held-out
    # sessions through the builder's per-item totals (popularity, the repeat
    # rates of SR and SLIST): before, item_stats was kept whole and leaked

    # at most one cart add and 5 events per (session, item): a cell's value
    # (1 + views + 10 carts) then says how many events it holds and whether
    # one was a cart add (11 views would read as a cart add)
    cell = ["session_id", "partnumber"]
    events = (
        make_sessions(300, n_items=40, random_state=4)
        .filter(pl.int_range(pl.len()).over(cell) < 5)
        .with_columns(
            pl.col("session_id").cast(pl.Utf8),
            add_to_cart=pl.when(pl.col("add_to_cart").cum_sum().over(cell) > 1)
            .then(0)
            .otherwise(pl.col("add_to_cart")),
        )
    )
    enc = ConfidenceEncoder(grain="session", time_col="timestamp_local")
    unified = PseudoUserUnifier().fit_transform(events)
    im = InteractionMatrixBuilder().fit_transform(enc.fit_transform(unified))
    if split == "next_item":
        fit_im = holdout_split(im, im.matrix, 0.3)[0]
    else:
        fit_im = session_split(im, im.matrix, 0.3, 3, 0)[0]
    assert fit_im.matrix.shape[0] < im.matrix.shape[0]
    # the same totals, counted naively from the events of the fit sessions
    kept = set(fit_im.row_ids.to_list())
    rows = unified.filter(pl.col("session_id").is_in(list(kept)))
    item_index = {v: i for i, v in enumerate(im.item_ids.to_list())}
    expected = {}
    for (_session, item), group in rows.group_by(["session_id", "partnumber"]):
        e = expected.setdefault(item_index[item], [0.0, 0.0, 0.0])
        e[0] += group.height  # every event of the (session, item)
        e[1] += group["add_to_cart"].sum()
        e[2] += 1
    got = fit_im.item_stats.filter(pl.col("n_rows") > 0)
    assert got.height == len(expected)
    for r in got.iter_rows(named=True):
        assert [r["view_count"], r["cart_count"], r["n_rows"]] == pytest.approx(
            expected[r["item_index"]]
        ), r["item_index"]
    # confidence: the fit rows' own values, per item
    sums = np.asarray(fit_im.matrix.sum(axis=0)).ravel()
    np.testing.assert_allclose(got["confidence"], sums[got["item_index"]], rtol=1e-6)
