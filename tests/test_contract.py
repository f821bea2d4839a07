"""One contract for every recommender: every public call, on every model.

The recommenders are discovered from skals' public API (every
``BaseRecommender`` subclass named in an ``__all__``), so the next model is
in this battery without editing it. Each call either works or raises the
documented clear error (``NotImplementedError`` naming the models that
have the call); a raw ``AttributeError`` fails the battery. The exact
values are on a hand-made log with renamed columns, built from a
:class:`~skals.Schema` as a new user would.
"""

import importlib
import importlib.util
import inspect
import pickle
import pkgutil
import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

import skals
from conftest import SIX_SESSIONS_SCHEMA, six_sessions
from skals import (
    BlendRecommender,
    ImplicitALSRecommender,
    PopularityRecommender,
    RepeatRecommender,
    SessionKNNRecommender,
    make_recommender_pipeline,
)
from skals.recommender._base import BaseRecommender


# ---------------------------------------------------------------- discovery
def _public_recommenders():
    found = {}
    modules = [skals]
    for info in pkgutil.walk_packages(skals.__path__, "skals."):
        if info.ispkg and not any(p.startswith("_") for p in info.name.split(".")):
            if info.name.startswith("skals.spark") and not importlib.util.find_spec(
                "pyspark"
            ):
                continue
            modules.append(importlib.import_module(info.name))
    for module in modules:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseRecommender)
                and not inspect.isabstract(obj)
            ):
                found[obj.__name__] = obj
    return [found[n] for n in sorted(found)]


RECOMMENDERS = _public_recommenders()

#: Small settings; a class not named here is built with ``cls(k=2)``.
PARAMS = {
    "ImplicitALSRecommender": {"factors": 2, "iterations": 3, "random_state": 0},
    "SparkALSRecommender": {
        "factors": 2,
        "iterations": 2,
        "num_blocks": 1,
        "random_state": 0,
    },
    "BlendRecommender": {
        "estimators": [
            ("knn", SessionKNNRecommender()),
            ("repeat", RepeatRecommender()),
        ],
        # fixed: "auto" may give a component weight 0 on this tiny log
        "weights": [1, 1],
    },
}

#: The documented values of ``source`` per model (docs/recommendation_calls.rst).
SOURCES = {
    "ImplicitALSRecommender": {"history", "fold_in", "fallback"},
    "SparkALSRecommender": {"history", "fold_in", "fallback"},
    "PopularityRecommender": {"popularity"},
    "SessionKNNRecommender": {"neighbors", "fallback"},
    "RepeatRecommender": {"repeat", "fallback"},
    "BlendRecommender": {"blend", "fallback"},
    "RerankRecommender": {"blend", "fallback"},
    "SequentialRulesRecommender": {"rules", "fallback"},
    "SLISTRecommender": {"slist", "fallback"},
}


def _model(cls):
    return cls(**{"k": 2, **PARAMS.get(cls.__name__, {})})


SCHEMA = SIX_SESSIONS_SCHEMA


@pytest.fixture(scope="module")
def events():
    """Six sessions; user 243 owns sessions 1 and 5, user 7 session 3."""
    return six_sessions()


def _fit(cls, events):
    return make_recommender_pipeline(_model(cls), schema=SCHEMA).fit(events)


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


@pytest.fixture(scope="module", params=RECOMMENDERS, ids=lambda c: c.__name__)
def fitted(request, events):
    return request.param, _fit(request.param, events)


# ------------------------------------------------------------- the battery
def test_every_skals_recommender_is_discovered():
    names = {c.__name__ for c in RECOMMENDERS}
    assert {
        "BlendRecommender",
        "ImplicitALSRecommender",
        "PopularityRecommender",
        "RepeatRecommender",
        "SessionKNNRecommender",
    } <= names


def test_predict_has_a_documented_source(fitted, events):
    cls, pipe = fitted
    out = _quiet(lambda: pipe.predict(events))
    assert out.columns == ["sid", "recommendations", "scores", "source"]
    assert out["recommendations"].list.len().to_list() == [2] * 6
    documented = SOURCES.get(cls.__name__)
    values = set(out["source"].to_list())
    assert documented is None or values <= documented, values
    assert out["source"].null_count() == 0


def test_recommend_keys_known_and_unknown(fitted):
    cls, pipe = fitted
    out = _quiet(lambda: pipe[-1].recommend_keys(["u_243", "u_999"]))
    assert out.columns == ["unified_user_id", "recommendations", "scores", "source"]
    assert out["recommendations"].list.len().to_list() == [2, 2]
    model = pipe[-1]
    if model._key_answer == "history":
        assert out["source"][1] == "fallback"  # an unknown key
        assert out["source"][0] != "fallback"  # a training key


@pytest.mark.parametrize(
    "request_",
    [
        {"user_id": 243},
        {"session_id": 2},
        {"session_id": 1},  # user 243's training session
        {"user_id": [None, 7], "session_id": [4, None]},
        {"session_id": 60, "events": True},
    ],
    ids=["user", "session", "logged-in-session", "pairs", "events"],
)
def test_skals_recommend_every_kind(fitted, events, request_):
    cls, pipe = fitted
    kwargs = dict(request_)
    if kwargs.get("events"):
        kwargs["events"] = pl.DataFrame(
            {"sid": [60, 60], "uid": [None, None], "sku": ["d", "e"]}
        ).with_columns(ts=pl.from_epoch(pl.Series([20, 21])))
    out = _quiet(lambda: skals.recommend(pipe, **kwargs))
    assert out.columns[:3] == ["uid", "sid", "unified_user_id"]
    assert out.columns[-3:] == ["recommendations", "scores", "source"]
    assert out["recommendations"].list.len().min() == 2
    documented = SOURCES.get(cls.__name__)
    assert documented is None or set(out["source"].to_list()) <= documented


def test_similar_items_works_or_names_the_models_that_have_it(fitted):
    cls, pipe = fitted
    model = pipe[-1]
    if model._supports("similar_items"):
        out = _quiet(lambda: model.similar_items(["a", "d"], k=2))
        assert out.columns == ["sku", "similar_items", "scores"]
        assert out["sku"].to_list() == ["a", "d"]
        # never the item itself
        for item, similar in zip(out["sku"], out["similar_items"], strict=True):
            assert item not in similar.to_list()
    else:
        with pytest.raises(NotImplementedError, match="ImplicitALSRecommender"):
            model.similar_items(["a"])


def test_explain_works_or_names_the_models_that_have_it(fitted, events):
    cls, pipe = fitted
    model = pipe[-1]
    if model._supports("explain") and cls.__name__ != "SparkALSRecommender":
        im = pipe[:-1].transform(events.filter(pl.col("sid") == 4))
        answer = _quiet(lambda: model.predict(im))
        item, score = answer["recommendations"][0][0], answer["scores"][0][0]
        why = model.explain(item, im)
        assert why["contribution"].sum() == pytest.approx(score, rel=1e-4)
    else:
        with pytest.raises(NotImplementedError, match="SessionKNNRecommender"):
            model.explain("a", ["a"])


def test_unfitted_calls_are_clear_errors(fitted):
    from sklearn.exceptions import NotFittedError

    cls, _ = fitted
    model = _model(cls)
    with pytest.raises(NotFittedError):
        model.recommend_keys(["u_243"])
    with pytest.raises((NotFittedError, NotImplementedError)):
        model.similar_items(["a"])
    with pytest.raises((NotFittedError, NotImplementedError)):
        model.explain("a", ["a"])


def test_pickle_and_clone(fitted, events):
    cls, pipe = fitted
    again = pickle.loads(pickle.dumps(pipe))
    before = _quiet(lambda: pipe.predict(events))
    after = _quiet(lambda: again.predict(events))
    assert before["recommendations"].to_list() == after["recommendations"].to_list()
    assert before["source"].to_list() == after["source"].to_list()
    model = clone(pipe[-1])
    assert not hasattr(model, "n_features_in_")
    assert set(model.get_params()) == set(pipe[-1].get_params())


# -------------------------------------------------- exact, per model
def test_popularity_exact(events):
    pipe = _fit(PopularityRecommender, events)
    # summed confidence (1 + views + 10 carts per session): a 2 + 12 + 2 = 16,
    # b 12 + 2 = 14, e 12 + 2 = 14 (the tie goes to the lower column, b)
    out = pipe[-1].recommend_keys(["u_243", "s_2"])
    assert out["recommendations"].to_list() == [["a", "b"], ["a", "b"]]
    assert out["source"].to_list() == ["popularity", "popularity"]


def test_repeat_exact_sources(events):
    pipe = _fit(RepeatRecommender, events)
    new = pl.DataFrame(
        {"sid": [70, 70, 71], "uid": [None, None, None], "sku": ["e", "d", "zz"]}
    ).with_columns(ts=pl.from_epoch(pl.Series([30, 31, 32])))
    with pytest.warns(UserWarning):  # "zz" is unknown
        out = pipe.predict(new)
    # session 70: its own items, most recent first: d scores 1 + (0.5**0 +
    # 0.1 * 2) and e 1 + (0.5**1 + 0.1 * 2) (confidence 1 + 1 view); session
    # 71 knows no item: popularity over its best (a 16, b 14), source fallback
    assert out.rows() == [
        (70, ["d", "e"], [pytest.approx(2.2), pytest.approx(1.7)], "repeat"),
        (71, ["a", "b"], [1.0, 14 / 16], "fallback"),
    ]
    # it keeps no history: keys alone get the fallback, and say so
    with pytest.warns(UserWarning, match="keeps no training history"):
        keys = pipe[-1].recommend_keys(["u_243"])
    assert keys["source"].to_list() == ["fallback"]


def test_knn_exact_sources_and_similar_items(events):
    pipe = _fit(SessionKNNRecommender, events)
    out = _quiet(lambda: pipe.predict(events))
    # session 6 holds only "f", which no other session has: no neighbour
    sources = dict(zip(out["sid"], out["source"], strict=True))
    assert sources == {
        1: "neighbors",
        2: "neighbors",
        3: "neighbors",
        4: "neighbors",
        5: "neighbors",
        6: "fallback",
    }
    # co-occurrence cosine: a is in sessions {1, 3, 5}, b in {1, 2},
    # c in {1, 2}, d in {3, 4}, e in {4, 5}; a-b share 1, a-d 1, a-e 1
    with pytest.warns(skals.SkalsWarning, match="k=3 clipped for 1 of 2 rows"):
        sim = pipe[-1].similar_items(["b", "a"], k=3)
    assert sim["similar_items"].to_list() == [["c", "a"], ["b", "c", "d"]]
    np.testing.assert_allclose(
        sim["scores"].to_list()[0], [1.0, 1 / np.sqrt(6)], rtol=1e-6
    )
    np.testing.assert_allclose(sim["scores"].to_list()[1], [1 / np.sqrt(6)] * 3)


def test_knn_explain_names_the_neighbours(events):
    pipe = _fit(SessionKNNRecommender, events)
    model = pipe[-1]
    # query "d" alone: sessions 3 {a, d} and 4 {d, e} hold it; vec similarity
    # 1/1, decay 1 (the query's last item): "a" gets 1 from session 3
    why = model.explain("a", ["d"])
    assert why.rows() == [(3, 1.0, ["d"], 1.0)]
    im = pipe[:-1].transform(
        pl.DataFrame({"sid": [80], "uid": [None], "sku": ["d"]}).with_columns(
            ts=pl.from_epoch(pl.Series([40]))
        )
    )
    answer = model.predict(im)
    scores = dict(zip(answer["recommendations"][0], answer["scores"][0], strict=True))
    assert scores["a"] == pytest.approx(why["contribution"].sum())
    with pytest.raises(ValueError, match="key='u_999' was not seen"):
        model.explain("a", ["d"], key="u_999")
    # a key alone: its training sessions' items, as recommend_keys answers it
    keys = model.recommend_keys(["u_7"], k=5)
    scores = dict(zip(keys["recommendations"][0], keys["scores"][0], strict=True))
    why = model.explain("e", key="u_7")
    assert why["contribution"].sum() == pytest.approx(scores["e"])
    # the sessions holding e, each similarity 1/2 (one of {a, d}): a tie, the
    # more recent first
    assert why["sid"].to_list() == [5, 4]
    np.testing.assert_allclose(why["contribution"].to_list(), [0.5, 0.5])
    # with a one-row InteractionMatrix and a key, both join the query
    both = model.explain("e", im, key="u_7")
    assert both["contribution"].sum() > 0
    with pytest.raises(ValueError, match="give a context, a key or both"):
        model.explain("e")


def test_blend_sources_and_similar_items(events):
    pipe = _fit(BlendRecommender, events)
    out = _quiet(lambda: pipe.predict(events))
    # session 6: kNN has no neighbour, repeat answers from its own "f"
    assert set(out["source"].to_list()) == {"blend"}
    alone = make_recommender_pipeline(
        BlendRecommender([("repeat", RepeatRecommender())], k=2), schema=SCHEMA
    ).fit(events)
    keys = _quiet(lambda: alone[-1].recommend_keys(["u_243"]))
    assert keys["source"].to_list() == ["fallback"]
    # the blend's similar items: kNN's, min-max normalised (repeat has none)
    sim = pipe[-1].similar_items(["b"], k=2)
    assert sim["similar_items"].to_list() == [["c", "a"]]
    np.testing.assert_allclose(sim["scores"].to_list()[0], [1.0, 0.0], atol=1e-9)
    with pytest.raises(NotImplementedError, match="SessionKNNRecommender"):
        alone[-1].similar_items(["b"])


# -------------------------------------- the bugs of issue 20 (failed before)
@pytest.mark.parametrize(
    "cls", [SessionKNNRecommender, RepeatRecommender, BlendRecommender]
)
def test_recommend_by_user_id_on_session_models(cls, events):
    # was: 'BlendRecommender' object has no attribute 'recommend_keys' (the
    # same for RepeatRecommender), 'SessionKNNRecommender' ... 'user_ids_'
    pipe = _fit(cls, events)
    out = _quiet(lambda: skals.recommend(pipe, user_id=243))
    assert out["unified_user_id"].to_list() == ["u_243"]
    assert out["source"].to_list()[0] in SOURCES[cls.__name__]


def test_logged_in_training_session_is_answered_from_its_key(events):
    # was: the fallback, with "give the ids ... without the key prefix"
    pipe = _fit(SessionKNNRecommender, events)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = skals.recommend(pipe, session_id=1)
    by_user = skals.recommend(pipe, user_id=243)
    assert out["unified_user_id"].to_list() == ["u_243"]
    assert out["source"].to_list() == ["neighbors"]
    assert out["recommendations"].to_list() == by_user["recommendations"].to_list()


def test_logged_in_session_at_key_grain_gets_the_right_hint(events):
    pipe = make_recommender_pipeline(
        _model(ImplicitALSRecommender), schema=SCHEMA, grain="key"
    ).fit(events)
    hint = "keyed by its user: ask for it with uid="
    with pytest.warns(UserWarning, match=hint) as w:
        skals.recommend(pipe, session_id=1)
    assert "without the key prefix" not in str(w[0].message)
