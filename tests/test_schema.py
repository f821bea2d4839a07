"""One schema for the column names: pipeline, splitters, scorers, model files."""

from __future__ import annotations

import pickle

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skals
from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
    SessionHoldoutSplit,
    SessionKNNRecommender,
    TemporalSplit,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.schema import (
    Schema,
    make_recommender_pipeline,
    named_columns,
    resolve_schema,
    schema_of,
)

RENAMES = {
    "session_id": "session",
    "user_id": "user",
    "partnumber": "item_id",
    "add_to_cart": "carted",
    "timestamp_local": "ts",
    "country": "market",
}
SCHEMA = Schema(
    session="session",
    user="user",
    item="item_id",
    cart="carted",
    time="ts",
    segment="market",
)


@pytest.fixture(scope="module")
def renamed():
    events = make_sessions(3_000, n_items=150, logged_in_fraction=0.3, random_state=0)
    return events.select(list(RENAMES)).rename(RENAMES)


def als(**params):
    return ImplicitALSRecommender(
        factors=8, iterations=3, random_state=0, num_threads=1, **params
    )


def test_schema_values_and_errors():
    assert Schema().as_dict() == {
        "session": "session_id",
        "user": "user_id",
        "item": "partnumber",
        "cart": "add_to_cart",
        "time": "timestamp_local",
        "segment": None,
    }
    assert SCHEMA.columns() == ["session", "user", "item_id", "carted", "ts", "market"]
    with pytest.raises(ValueError, match="'x'"):
        Schema(session="x", user="x")
    with pytest.raises(TypeError, match="item"):
        Schema(item=None)
    with pytest.raises(AttributeError, match="immutable"):
        SCHEMA.item = "sku"
    assert SCHEMA.replace(segment=None).segment is None
    with pytest.raises(TypeError, match="colour"):
        SCHEMA.replace(colour="red")
    assert pickle.loads(pickle.dumps(SCHEMA)) == SCHEMA
    assert hash(SCHEMA) == hash(SCHEMA.replace())


def test_factory_names_every_column_once():
    pipe = make_recommender_pipeline(als(), schema=SCHEMA)
    unifier, encoder, builder, _ = (step for _, step in pipe.steps)
    assert (unifier.user_col, unifier.session_col) == ("user", "session")
    assert (encoder.item_col, encoder.cart_col, encoder.session_col) == (
        "item_id",
        "carted",
        "session",
    )
    assert (encoder.segment_col, builder.segment_col) == ("market", "market")
    assert (builder.item_col, builder.session_col) == ("item_id", "session")
    assert encoder.grain == "session"
    # ALS does not read event times, so the encoder is not asked for them
    assert encoder.time_col is None
    assert schema_of(pipe) == SCHEMA.replace(time="timestamp_local")
    assert named_columns(pipe)["time"] is None
    # session-kNN does: the encoder gets the schema's time column
    knn = make_recommender_pipeline(SessionKNNRecommender(), schema=SCHEMA)
    assert knn[1].time_col == "ts"
    assert schema_of(knn) == SCHEMA
    # clone and pickle keep the names
    assert schema_of(clone(pipe)) == schema_of(pipickle(pipe))


def pipickle(obj):
    return pickle.loads(pickle.dumps(obj))


def test_factory_refuses_column_names_as_encoder_parameters():
    with pytest.raises(TypeError, match="item_col"):
        make_recommender_pipeline(schema=SCHEMA, item_col="sku")
    with pytest.raises(TypeError, match="Schema"):
        make_recommender_pipeline(schema={"item": "sku"})


def test_two_names_for_one_field_is_an_error():
    pipe = make_pipeline(
        PseudoUserUnifier(session_col="visit"),
        ConfidenceEncoder(grain="session", session_col="session_id"),
        InteractionMatrixBuilder(),
        als(),
    )
    with pytest.raises(ValueError, match="'visit'.*'session_id'"):
        schema_of(pipe)
    good = make_recommender_pipeline(als(), schema=SCHEMA)
    with pytest.raises(ValueError, match="'item_id'"):
        resolve_schema(good, SCHEMA.replace(item="sku"))
    assert resolve_schema(good, SCHEMA) == SCHEMA


def test_renamed_log_end_to_end_grid_search_and_scorers(renamed):
    # the columns are named once: in SCHEMA, which every piece takes
    pipe = make_recommender_pipeline(als(), schema=SCHEMA)
    cv = SessionHoldoutSplit(n_splits=2, test_size=200, schema=SCHEMA)
    scorer = make_session_scorer(["ndcg", "precision"], by_segment=True, schema=SCHEMA)
    search = GridSearchCV(
        pipe,
        {"implicitalsrecommender__factors": [4, 8]},
        scoring=scorer,
        refit="ndcg@5",
        cv=cv,
    )
    search.fit(renamed)
    assert np.isfinite(search.cv_results_["mean_test_ndcg@5"]).all()
    # the logged-in score is a real one, read through the pipeline's user
    # column (before: 0.0 under a default user_col that was not there)
    logged = search.cv_results_["mean_test_ndcg@5_logged_in"]
    assert np.isfinite(logged).all() and (logged > 0).all()
    # a scorer without the schema reads the user, session, item and cart
    # columns from the pipeline; only the time, which ALS steps never read,
    # must come from the schema (a clear error says so)
    train, test = next(cv.split(renamed))
    fitted = clone(pipe).fit(renamed[train])
    bare = make_session_scorer(["ndcg"], by_segment=True)
    with pytest.raises(ValueError, match="schema=schema"):
        bare(fitted, renamed[test])
    timed = make_session_scorer(["ndcg"], by_segment=True, time_col="ts")
    a, b = scorer(fitted, renamed[test]), timed(fitted, renamed[test])
    assert a["ndcg@5"] == b["ndcg@5"] and a["ndcg@5_logged_in"] > 0
    # a kNN pipeline reads the time itself: no schema needed by the scorer
    knn = make_recommender_pipeline(SessionKNNRecommender(), schema=SCHEMA)
    knn.fit(renamed[train])
    assert bare(knn, renamed[test])["ndcg@5_logged_in"] >= 0
    # the answers come in the renamed session column
    answers = search.best_estimator_.predict(renamed[test].drop("carted"))
    assert answers.columns[0] == "session"
    # saved and loaded with its columns
    assert skals.io._model_columns(search.best_estimator_)["item"] == "item_id"


def test_forgetting_the_user_column_is_an_error_not_a_zero(renamed):
    pipe = make_recommender_pipeline(als(), schema=SCHEMA).fit(renamed)
    wrong = make_session_scorer(
        ["ndcg"], by_segment=True, user_col="user_id", time_col="ts"
    )
    with pytest.raises(ValueError, match="'user_id'"):
        wrong(pipe, renamed.head(500))
    with pytest.raises(ValueError, match="'user_id'"):
        make_session_scorer("ndcg", schema=SCHEMA.replace(user="user_id"))(
            pipe, renamed.head(500)
        )


def test_splitters_take_the_schema(renamed):
    a = list(
        SessionHoldoutSplit(n_splits=2, test_size=100, schema=SCHEMA).split(renamed)
    )
    b = list(
        SessionHoldoutSplit(
            n_splits=2, test_size=100, session_col="session", time_col="ts"
        ).split(renamed)
    )
    assert all(
        (x[0] == y[0]).all() and (x[1] == y[1]).all() for x, y in zip(a, b, strict=True)
    )
    t = list(TemporalSplit(n_splits=2, schema=SCHEMA).split(renamed))
    assert len(t) == 2
    with pytest.raises(ValueError, match="disagrees"):
        list(SessionHoldoutSplit(session_col="visit", schema=SCHEMA).split(renamed))
    # without a schema or names the defaults apply (and are missing here)
    with pytest.raises(ValueError, match="session_id"):
        list(SessionHoldoutSplit().split(renamed))


def test_a_name_missing_from_the_frame_is_one_error_naming_it(renamed):
    pipe = make_recommender_pipeline(als(), schema=SCHEMA.replace(item="sku"))
    with pytest.raises(ValueError, match="'sku'"):
        pipe.fit(renamed)


def test_existing_per_step_parameters_still_work(renamed):
    by_hand = make_pipeline(
        PseudoUserUnifier(user_col="user", session_col="session"),
        ConfidenceEncoder(
            item_col="item_id",
            cart_col="carted",
            grain="session",
            session_col="session",
            segment_col="market",
        ),
        InteractionMatrixBuilder(
            item_col="item_id", session_col="session", segment_col="market"
        ),
        als(),
    ).fit(renamed)
    factory = make_recommender_pipeline(als(), schema=SCHEMA).fit(renamed)
    head = renamed.head(300).drop("carted")
    assert by_hand.predict(head).equals(factory.predict(head))
    assert schema_of(by_hand) == schema_of(factory)
    # and to a frame of the schema's names
    assert pl.DataFrame(schema_of(by_hand).as_dict()).width == 6


# ---------------------------------- one schema for everything (issue 20, 4)
def test_splitter_hint_names_the_schema_field(renamed):
    # was: "Column names are parameters of SessionHoldoutSplit", though the
    # user gave a Schema and no parameter
    split = SessionHoldoutSplit(schema=SCHEMA.replace(session="visit"))
    with pytest.raises(ValueError, match=r"come from the Schema \(session='visit'\)"):
        list(split.split(renamed))
    with pytest.raises(ValueError, match="parameters of SessionHoldoutSplit"):
        list(SessionHoldoutSplit(session_col="visit", time_col="ts").split(renamed))


def test_string_time_hint_in_the_users_library(renamed):
    text = renamed.head(50).with_columns(pl.col("ts").dt.to_string())
    split = SessionHoldoutSplit(schema=SCHEMA)
    # was: the polars expression for a pandas frame too
    with pytest.raises(TypeError, match=r"pd\.to_datetime\(events\['ts'\]\)"):
        list(split.split(text.to_pandas()))
    with pytest.raises(TypeError, match=r"pl\.col\('ts'\)\.str\.to_datetime"):
        list(split.split(text))


def test_factory_builds_the_early_stopping_pipeline_with_the_schema(renamed):
    from skals.model_selection import (
        EarlyStoppingPipeline,
        make_early_stopping_pipeline,
    )

    pipe = make_early_stopping_pipeline(
        als().set_params(iterations=4),
        schema=SCHEMA,
        validation_fraction=0.2,
        random_state=0,
    )
    assert isinstance(pipe, EarlyStoppingPipeline)
    assert pipe.schema is SCHEMA and pipe.validation_fraction == 0.2
    assert pipe[0].session_col == "session"
    # was: an error on 'session_id' (its own session_col default)
    pipe.fit(renamed)
    assert pipe.validation_iterations_[0] == 1 and 1 <= pipe.n_iter_ <= 4
    assert np.isfinite(pipe.validation_scores_).all()
    assert clone(pipe).get_params()["schema"] == SCHEMA


def test_early_stopping_reads_the_session_column_from_its_steps(renamed):
    from skals.model_selection import EarlyStoppingPipeline

    steps = make_recommender_pipeline(als(), schema=SCHEMA).steps
    pipe = EarlyStoppingPipeline(steps, validation_fraction=0.2, random_state=0)
    assert pipe._session_col() == "session"
    with pytest.raises(ValueError, match="disagrees"):
        EarlyStoppingPipeline(steps, session_col="visit", schema=SCHEMA)._session_col()


def test_to_long_uses_the_schemas_item_column():
    answers = pl.DataFrame(
        {"session": [7], "recommendations": [["x", "y"]], "scores": [[0.9, 0.5]]}
    )
    out = skals.to_long(answers, schema=SCHEMA)
    assert out.rows() == [(7, 1, "x", 0.9), (7, 2, "y", 0.5)]
    assert out.columns == ["session", "rank", "item_id", "score"]
    similar = pl.DataFrame(
        {"item_id": ["x"], "similar_items": [["y"]], "scores": [[0.3]]}
    )
    assert skals.to_long(similar, schema=SCHEMA).columns == [
        "item_id",
        "rank",
        "similar_item_id",
        "score",
    ]
    assert skals.to_long(answers).columns[2] == "item"
