"""The reveal-the-first-n protocol (model_selection.reveal_first_n) and its scorer."""

import datetime as dt

import polars as pl
import pytest
from sklearn.pipeline import make_pipeline

import skals
from skals.metrics import make_session_scorer
from skals.model_selection import reveal_first_n

EVENTS = pl.DataFrame(
    {
        # session 1: 4 events out of time order; session 2: a tie at t=5;
        # session 3: one event, nothing carted; session 4: logged in
        "session_id": [1, 1, 1, 1, 2, 2, 2, 3, 4, 4],
        "user_id": [None, None, None, None, None, None, None, None, 9, None],
        "partnumber": [10, 11, 12, 13, 20, 21, 22, 30, 40, 41],
        "add_to_cart": [0, 1, 0, 1, 0, 0, 1, 0, 1, 0],
        "timestamp_local": [4, 1, 3, 2, 5, 5, 1, 1, 2, 1],
        "country": ["a"] * 10,
    }
)


def _truth(truth):
    return {
        r["session_id"]: (sorted(r["relevant"]), r["logged_in"], r["n_context"])
        for r in truth.iter_rows(named=True)
    }


def test_first_n_by_time_ties_in_row_order_cart_column_dropped():
    context, truth = reveal_first_n(EVENTS, n_revealed=2)
    assert context.columns == [
        "session_id",
        "user_id",
        "partnumber",
        "timestamp_local",
        "country",
    ]
    # session 1 by time: 11 (t=1), 13 (t=2); session 2: 22 (t=1), then the
    # tie at t=5 goes to the earlier row, 20
    assert context.select("session_id", "partnumber").rows() == [
        (1, 11),
        (1, 13),
        (2, 22),
        (2, 20),
        (3, 30),
        (4, 41),
        (4, 40),
    ]
    # revealed carted items stay relevant; session 3 has no truth row
    assert _truth(truth) == {
        1: ([11, 13], False, 2),
        2: ([22], False, 2),
        4: ([40], True, 2),
    }
    assert truth["session_id"].to_list() == [1, 2, 4]


def test_relevance_any_and_short_sessions():
    _, truth = reveal_first_n(EVENTS, n_revealed=3, relevance="any")
    assert _truth(truth) == {
        1: ([10, 11, 12, 13], False, 3),
        2: ([20, 21, 22], False, 3),
        3: ([30], False, 1),
        4: ([40, 41], True, 2),
    }


def test_without_user_column_every_session_is_anonymous_and_no_cart_needed():
    events = EVENTS.drop("user_id", "add_to_cart")
    _, truth = reveal_first_n(events, 1, relevance="any", user_col=None)
    assert not truth["logged_in"].any()


def test_a_user_column_that_is_not_there_is_an_error_not_anonymous():
    # before: every session silently counted as anonymous
    events = EVENTS.rename({"user_id": "customer"})
    with pytest.raises(ValueError, match="'user_id'"):
        reveal_first_n(events, 1)
    _, truth = reveal_first_n(events, 1, user_col="customer")
    assert truth["logged_in"].any()


def test_rest_of_session_truth_is_the_events_after_the_revealed_ones():
    log = pl.DataFrame(
        {
            "session_id": [1, 1, 1, 1],
            "partnumber": [10, 11, 10, 12],
            "timestamp_local": [1, 2, 3, 4],
            "add_to_cart": [0, 0, 0, 0],
        }
    )
    context, truth = reveal_first_n(log, 2, relevance="rest", user_col=None)
    assert context["partnumber"].to_list() == [10, 11]
    assert sorted(truth["relevant"][0]) == [10, 12]


def test_renamed_columns_datetimes_and_pandas():
    names = {
        "session_id": "s",
        "partnumber": "i",
        "timestamp_local": "t",
        "add_to_cart": "c",
        "user_id": "u",
    }
    events = EVENTS.rename(names).with_columns(
        (pl.lit(dt.datetime(2024, 1, 1)) + pl.duration(seconds=pl.col("t"))).alias("t")
    )
    cols = dict(session_col="s", item_col="i", time_col="t", cart_col="c", user_col="u")
    context, truth = reveal_first_n(events.to_pandas(), 2, **cols)
    expected_context, expected_truth = reveal_first_n(EVENTS, 2)
    assert context["i"].to_list() == expected_context["partnumber"].to_list()
    assert truth.rename({"s": "session_id"}).equals(expected_truth)


def test_input_is_not_changed():
    before = EVENTS.clone()
    reveal_first_n(EVENTS, 2)
    assert EVENTS.equals(before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_revealed": 0}, ValueError, "n_revealed must be an int >= 1, got 0"),
        ({"n_revealed": True}, ValueError, "n_revealed must be an int"),
        ({"relevance": "view"}, ValueError, "relevance must be 'cart', 'any'"),
        (
            {"cart_col": "carted"},
            ValueError,
            r"missing .* \['carted'",
        ),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        reveal_first_n(EVENTS, **kwargs)


def test_string_times_are_refused_not_sorted_as_text():
    # "10" sorts before "9" as text: the splitters refuse such a column, and
    # so does the protocol (and the session scorer through it)
    events = EVENTS.with_columns(pl.col("timestamp_local").cast(pl.String))
    with pytest.raises(TypeError, match="'timestamp_local' must be a datetime"):
        reveal_first_n(events, 2)


def test_lazy_frames_are_refused():
    with pytest.raises(TypeError, match="LazyFrame"):
        reveal_first_n(EVENTS.lazy(), 2)


# ------------------------------------------------------------- the scorer uses it
@pytest.fixture(scope="module")
def fitted():
    events = skals.datasets.make_sessions(300, n_items=40, random_state=3)
    pipe = make_pipeline(
        skals.PseudoUserUnifier(),
        skals.ConfidenceEncoder(grain="session"),
        skals.InteractionMatrixBuilder(),
        skals.ImplicitALSRecommender(factors=4, iterations=2, random_state=0),
    )
    return pipe.fit(events), events


def test_session_scorer_scores_what_the_protocol_reveals(fitted):
    pipe, events = fitted
    held_out = events.filter(pl.col("session_id") >= 250)
    scorer = make_session_scorer("ndcg", n_revealed=2)
    per = scorer.details(pipe, held_out)
    context, truth = reveal_first_n(held_out, 2)
    answers = skals.io.recommend_sessions(pipe, context, k=5)
    assert per["session_id"].to_list() == truth["session_id"].to_list()
    expected = skals.metrics.ndcg_at_k(
        [sorted(t) for t in truth["relevant"]],
        [answers[str(s)] for s in truth["session_id"]],
        k=5,
        average=False,
    )
    assert per["ndcg@5"].to_list() == pytest.approx(list(expected))
    assert per["n_context"].to_list() == truth["n_context"].to_list()


def test_session_scorer_refuses_string_times(fitted):
    pipe, events = fitted
    held_out = events.with_columns(pl.col("timestamp_local").cast(pl.String))
    with pytest.raises(TypeError, match="must be a datetime, date or number"):
        make_session_scorer("ndcg")(pipe, held_out)
