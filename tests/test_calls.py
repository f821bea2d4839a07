"""Recommendation calls: similar_items, explain, recommend by id, to_long, source."""

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.pipeline import make_pipeline

import skals
from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
)

# ------------------------------------------------------------------ data
EVENTS = pl.DataFrame(
    {
        "session_id": [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6],
        "user_id": [243, 243, 243, None, None, 7, 7, None, None, 243, 243, None],
        "partnumber": ["a", "b", "c", "b", "c", "a", "d", "d", "e", "e", "a", "c"],
        "add_to_cart": [0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0],
        "country": [1, 1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2],
    }
)
ITEMS = ["a", "b", "c", "d", "e"]


def _pipe(grain="key", **als):
    params = dict(factors=3, regularization=0.1, iterations=5, k=3, random_state=0)
    params.update(als)
    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain=grain),
        InteractionMatrixBuilder(),
        ImplicitALSRecommender(**params),
    )


@pytest.fixture(scope="module")
def pipe():
    return _pipe().fit(EVENTS)


# ---------------------------------------------------------- similar_items
# six items in two dimensions, chosen so that no two cosines tie
FACTORS = np.array(
    [[1, 0], [3, 1], [0, 1], [-1, 0.2], [2, 0.1], [1, -2]], dtype=np.float32
)


def _cosines(Y, i):
    norms = np.linalg.norm(Y, axis=1)
    return (Y @ Y[i]) / (norms * norms[i])


def _model_with_factors(Y, ids=None, **params):
    n = Y.shape[0]
    X = sp.csr_matrix(np.eye(n, dtype=np.float32) + 1)
    if ids is not None:
        enc = pl.DataFrame(
            {
                "unified_user_id": [f"u_{r}" for r in range(n) for _ in range(n)],
                "partnumber": [i for _ in range(n) for i in ids],
                "confidence": X.toarray().ravel().tolist(),
            }
        )
        X = InteractionMatrixBuilder().fit_transform(enc)
    model = ImplicitALSRecommender(factors=Y.shape[1], random_state=0, **params)
    model.fit(X)
    model.item_factors_ = Y
    return model


def test_similar_items_exact_cosines_on_a_hand_made_factor_matrix():
    ids = ["p0", "p1", "p2", "p3", "p4", "p5"]
    model = _model_with_factors(FACTORS, ids)
    out = model.similar_items(["p0", "p2"], k=3)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == ["partnumber", "similar_items", "scores"]
    assert out["partnumber"].to_list() == ["p0", "p2"]
    for row, query in enumerate([0, 2]):
        cos = _cosines(FACTORS.astype(np.float64), query)
        cos[query] = -np.inf  # the item itself is excluded
        best = np.argsort(-cos)[:3]
        assert out["similar_items"][row].to_list() == [ids[j] for j in best]
        assert_allclose(out["scores"][row].to_list(), cos[best], rtol=1e-6)
    # by hand for p0 = (1, 0): p4 (cos 0.9988), p1 (3/sqrt(10)), p5 (1/sqrt(5))
    assert out["similar_items"][0].to_list() == ["p4", "p1", "p5"]
    assert_allclose(
        out["scores"][0].to_list(),
        [2 / np.sqrt(4.01), 3 / np.sqrt(10), 1 / np.sqrt(5)],
        rtol=1e-6,
    )


def test_similar_items_matches_implicit():
    rng = np.random.default_rng(3)
    Y = rng.normal(size=(30, 4)).astype(np.float32)
    model = _model_with_factors(Y)
    ref = AlternatingLeastSquares(factors=4)
    ref.item_factors = Y
    ref.user_factors = np.zeros((1, 4), dtype=np.float32)
    queries = [0, 7, 29]
    ref_ids, ref_scores = ref.similar_items(np.array(queries), N=6)
    out = model.similar_items(queries, k=5)
    for row, q in enumerate(queries):
        assert ref_ids[row][0] == q  # implicit lists the item itself first
        assert_array_equal(out["similar_items"][row].to_list(), ref_ids[row][1:])
        assert_allclose(out["scores"][row].to_list(), ref_scores[row][1:], rtol=1e-5)


def test_similar_items_errors_pandas_and_clipping():
    model = _model_with_factors(FACTORS, ["p0", "p1", "p2", "p3", "p4", "p5"])
    with pytest.raises(ValueError, match="not items of the model.*'nope'"):
        model.similar_items(["p0", "nope"])
    with pytest.warns(UserWarning, match="k=10 clipped"):
        out = model.similar_items("p3", k=10)
    assert out["similar_items"].list.len().to_list() == [5]
    # fitted on pandas-derived input: pandas out, as predict's answers
    pipe = _pipe().fit(EVENTS.to_pandas())
    sim = pipe[-1].similar_items(["a"], k=2)
    assert isinstance(sim, pd.DataFrame)
    assert list(sim.columns) == ["partnumber", "similar_items", "scores"]


# ----------------------------------------------------------------- explain
def _hand_explain(Y, reg, conf, cols, target):
    """Hu et al. (2008) section 5, from the formula: s_ij = y_i^T W y_j c_j."""
    A = Y.T @ Y + reg * np.eye(Y.shape[1])
    for j, c in zip(cols, conf, strict=True):
        A += (c - 1) * np.outer(Y[j], Y[j])
    W = np.linalg.inv(A)
    return np.array([Y[target] @ W @ Y[j] * c for j, c in zip(cols, conf, strict=True)])


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_explain_two_item_context_matches_implicit_and_the_formula(alpha):
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(6, 3)).astype(np.float32)
    model = _model_with_factors(Y, ["p0", "p1", "p2", "p3", "p4", "p5"], alpha=alpha)
    context = {"p1": 3.0, "p4": 12.0}
    out = model.explain("p2", context)
    assert out.columns == ["partnumber", "confidence", "contribution"]
    hand = _hand_explain(
        Y.astype(np.float64),
        model.regularization,
        alpha * np.array([3.0, 12.0]),
        [1, 4],
        2,
    )
    order = np.argsort(-hand)
    assert out["partnumber"].to_list() == [["p1", "p4"][i] for i in order]
    assert_allclose(out["contribution"].to_numpy(), hand[order], rtol=1e-6)
    assert_allclose(out["confidence"].to_numpy(), alpha * np.array([3.0, 12.0])[order])

    ref = AlternatingLeastSquares(factors=3, regularization=model.regularization)
    ref.alpha = alpha
    ref.item_factors = Y
    ref.user_factors = np.zeros((1, 3), dtype=np.float32)
    row = sp.csr_matrix(([3.0, 12.0], ([0, 0], [1, 4])), shape=(1, 6))
    total, top, _ = ref.explain(0, row, 2)
    ref_by_item = dict(top)
    got = dict(zip(out["partnumber"], out["contribution"], strict=True))
    assert_allclose(got["p1"], ref_by_item[1], rtol=1e-5)
    assert_allclose(got["p4"], ref_by_item[4], rtol=1e-5)
    assert_allclose(out["contribution"].sum(), total, rtol=1e-5)


def test_explain_sums_to_the_fold_in_score_of_predict(pipe):
    model = pipe[-1]
    new = pl.DataFrame(
        {
            "session_id": [99, 99],
            "user_id": [None, None],
            "partnumber": ["a", "e"],
            "add_to_cart": [0, 1],
            "country": [1, 1],
        }
    )
    im = pipe[:-1].transform(new)
    answers = model.predict(im)
    assert answers["source"].to_list() == ["fold_in"]
    items, scores = answers["recommendations"][0], answers["scores"][0]
    for item, score in zip(items, scores, strict=True):
        out = model.explain(item, im)
        assert set(out["partnumber"]) == {"a", "e"}
        assert_allclose(out["contribution"].sum(), score, rtol=1e-4, atol=1e-6)
    # k keeps the largest contributions
    assert model.explain("b", im, k=1).height == 1


def test_explain_a_known_key_uses_its_history(pipe):
    model = pipe[-1]
    out = model.explain("d", key="u_243")
    assert set(out["partnumber"]) == {"a", "b", "c", "e"}  # u_243's items
    with pytest.raises(ValueError, match="key='u_999' was not seen in fit"):
        model.explain("d", key="u_999")
    with pytest.raises(ValueError, match="not items of the model"):
        model.explain("zzz", {"a": 1.0})


# ----------------------------------------------------------- source column
def test_source_column_says_which_model_answered(pipe):
    model = pipe[-1]
    new = pl.DataFrame(
        {
            "session_id": [1, 50, 51],
            "user_id": [243, None, None],
            "partnumber": ["zzz", "a", "unknown"],
            "add_to_cart": [0, 0, 0],
            "country": [1, 1, 1],
        }
    )
    with pytest.warns(UserWarning, match="dropped 2 of 3 rows"):
        im = pipe[:-1].transform(new)
    answers = model.predict(im)
    assert answers.columns == ["unified_user_id", "recommendations", "scores", "source"]
    got = dict(zip(answers["unified_user_id"], answers["source"], strict=True))
    assert got == {"u_243": "history", "s_50": "fold_in", "s_51": "fallback"}
    rows = {key: i for i, key in enumerate(answers["unified_user_id"])}
    item_pos = {item: j for j, item in enumerate(model.item_ids_)}
    # history: the trained factor's scores
    user = model.user_ids_.to_list().index("u_243")
    hist = answers.row(rows["u_243"], named=True)
    expected = model.item_factors_ @ model.user_factors_[user]
    got_scores = [expected[item_pos[i]] for i in hist["recommendations"]]
    assert_allclose(hist["scores"], got_scores, rtol=1e-5)
    # fallback: the popularity scores (summed confidence)
    fb = answers.row(rows["s_51"], named=True)
    pop = model.fallback_.item_popularity_
    assert_allclose(fb["scores"], [pop[item_pos[i]] for i in fb["recommendations"]])


def test_source_without_fold_in_and_for_popularity(pipe):
    im = pipe[:-1].transform(EVENTS.filter(pl.col("session_id") == 6))
    notebook = skals.ImplicitALSRecommender(factors=2, fold_in=False, random_state=0)
    notebook.fit(pipe[:-1].transform(EVENTS))
    assert notebook.predict(im)["source"].to_list() == ["history"]
    new = pipe[:-1].transform(
        EVENTS.filter(pl.col("session_id") == 6).with_columns(session_id=pl.lit(77))
    )
    assert notebook.predict(new)["source"].to_list() == ["fallback"]
    pop = PopularityRecommender().fit(pipe[:-1].transform(EVENTS))
    assert pop.predict(im)["source"].to_list() == ["popularity"]
    assert pop.recommend_keys(["u_243"])["source"].to_list() == ["popularity"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = pipe[-1].recommend_keys(["u_243", "u_999"])
    assert keys["source"].to_list() == ["history", "fallback"]


# -------------------------------------------------------- recommend by id
def test_recommend_by_user_id_equals_recommend_keys(pipe):
    out = skals.recommend(pipe, user_id=243)
    ref = pipe[-1].recommend_keys(["u_243"])
    assert out.columns == [
        "user_id",
        "session_id",
        "unified_user_id",
        "recommendations",
        "scores",
        "source",
    ]
    assert out["unified_user_id"].to_list() == ["u_243"]
    assert out["recommendations"].to_list() == ref["recommendations"].to_list()
    assert out["source"].to_list() == ["history"]
    # a float id, as pandas makes of a nullable int column, is the same user
    again = skals.recommend(pipe, user_id=243.0, k=2)
    assert again["recommendations"].to_list() == [
        ref["recommendations"][0][:2].to_list()
    ]


def test_recommend_unknown_or_prefixed_id_is_a_warning_and_a_label(pipe):
    with pytest.warns(UserWarning, match=r"1 of 2 requests .*user_id=999"):
        out = skals.recommend(pipe, user_id=[243, 999])
    assert out["source"].to_list() == ["history", "fallback"]
    # the old pitfall: the internal key given as the user's id
    with pytest.warns(UserWarning, match="user_id='u_243'.*without the key prefix"):
        out = skals.recommend(pipe, user_id="u_243")
    assert out["unified_user_id"].to_list() == ["u_u_243"]
    assert out["source"].to_list() == ["fallback"]


def test_recommend_sessions_and_pairs(pipe):
    out = skals.recommend(pipe, user_id=[None, 7], session_id=[2, 3])
    assert out["unified_user_id"].to_list() == ["s_2", "u_7"]
    assert out["source"].to_list() == ["history", "history"]
    with pytest.raises(ValueError, match="pair up"):
        skals.recommend(pipe, user_id=[1, 2], session_id=[3])
    with pytest.raises(ValueError, match="give user_id, session_id"):
        skals.recommend(pipe)
    with pytest.raises(ValueError, match="neither a user nor a session"):
        skals.recommend(pipe, user_id=[None], session_id=[None])


def test_recommend_with_events_folds_them_in(pipe):
    new = pl.DataFrame(
        {
            "session_id": [60, 60, 61],
            "user_id": [None, None, 243],
            "partnumber": ["d", "e", "d"],
            "add_to_cart": [0, 1, 0],
            "country": [2, 2, 1],
        }
    )
    with pytest.warns(UserWarning, match="session_id=62"):
        out = skals.recommend(pipe, session_id=[60, 62], events=new)
    assert out["source"].to_list() == ["fold_in", "fallback"]
    direct = pipe.predict(new)
    row = direct.filter(pl.col("unified_user_id") == "s_60")
    assert out["recommendations"][0].to_list() == row["recommendations"][0].to_list()
    assert_allclose(out["scores"][0].to_list(), row["scores"][0].to_list(), rtol=1e-6)
    both = skals.recommend(pipe, user_id=243, events=new)
    row = direct.filter(pl.col("unified_user_id") == "u_243")
    assert both["source"].to_list() == ["fold_in"]
    assert both["recommendations"].to_list() == row["recommendations"].to_list()


def test_recommend_session_grain_and_pandas():
    pipe = _pipe(grain="session").fit(EVENTS.to_pandas())
    new = EVENTS.filter(pl.col("session_id") == 5).with_columns(session_id=pl.lit(70))
    out = skals.recommend(pipe, user_id=[243], session_id=[70], events=new.to_pandas())
    assert isinstance(out, pd.DataFrame)
    direct = pipe.predict(new.to_pandas())
    assert list(out["recommendations"][0]) == list(direct["recommendations"][0])
    assert out["source"].tolist() == ["fold_in"]


# ----------------------------------------------------------------- to_long
def test_to_long_exact_values_polars_and_pandas():
    answers = pl.DataFrame(
        {
            "session_id": [7, 8, 9],
            "recommendations": [["x", "y"], ["z"], []],
            "scores": [[0.5, 0.25], [2.0], []],
            "source": ["fold_in", "fallback", "history"],
        },
        schema_overrides={"recommendations": pl.List(pl.String)},
    )
    expected = [
        (7, "fold_in", 1, "x", 0.5),
        (7, "fold_in", 2, "y", 0.25),
        (8, "fallback", 1, "z", 2.0),
    ]
    out = skals.to_long(answers, item_col="partnumber")
    assert out.columns == ["session_id", "source", "rank", "partnumber", "score"]
    assert out.rows() == expected
    pdout = skals.to_long(answers.to_pandas())
    assert isinstance(pdout, pd.DataFrame)
    assert list(pdout.columns) == ["session_id", "source", "rank", "item", "score"]
    assert [tuple(r) for r in pdout.itertuples(index=False)] == expected
    with pytest.raises(ValueError, match="already have a column 'source'"):
        skals.to_long(answers, item_col="source")
    with pytest.raises(ValueError, match="one list column"):
        skals.to_long(answers.drop("scores"))
    with pytest.raises(TypeError, match="answers frame"):
        skals.to_long(np.zeros((2, 2)))


def test_to_long_of_predict_and_similar_items(pipe):
    answers = pipe.predict(EVENTS)
    long = skals.to_long(answers, item_col="partnumber")
    assert long.height == answers["recommendations"].list.len().sum()
    first = answers.row(0, named=True)
    got = long.filter(pl.col("unified_user_id") == first["unified_user_id"])
    assert got["partnumber"].to_list() == first["recommendations"]
    assert got["rank"].to_list() == list(range(1, len(first["recommendations"]) + 1))
    sim = skals.to_long(pipe[-1].similar_items(["a", "b"], k=2), item_col="similar")
    assert sim.columns == ["partnumber", "rank", "similar", "score"]
    assert sim["partnumber"].to_list() == ["a", "a", "b", "b"]


def test_recommend_session_ids_match_exactly(pipe):
    # integer sessions: the string "060" is not session 60 (it was cast)
    new = pl.DataFrame(
        {
            "session_id": [60, 60],
            "user_id": [None, None],
            "partnumber": ["d", "e"],
            "add_to_cart": [0, 1],
            "country": [2, 2],
        }
    )
    assert skals.recommend(pipe, session_id=[60], events=new)["source"][0] == (
        "fold_in"
    )
    with pytest.warns(UserWarning, match="session_id='060'"):
        out = skals.recommend(pipe, session_id=["060"], events=new)
    assert out["source"].to_list() == ["fallback"]
