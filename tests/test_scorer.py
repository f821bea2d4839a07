"""Scorers: what the model sees, what counts as truth, and the numbers."""

import datetime as dt
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV

from conftest import skals_pipeline
from skals import (
    ImplicitALSRecommender,
    InteractionMatrix,
    PopularityRecommender,
    SessionHoldoutSplit,
    make_top_k_overlap_scorer,
    top_k_overlap_scorer,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer, session_scorers
from skals.recommender._base import BaseRecommender


class FixedAnswers(BaseEstimator):
    """A final step that answers from a table and records what it was shown."""

    def __init__(self, answers=None, known=(), shown=None):
        self.answers = answers
        self.known = known
        self.shown = shown  # a list: what predict was shown is appended

    def fit(self, X, y=None):
        self.user_ids_ = pl.Series("unified_user_id", sorted(self.known))
        return self

    def recommend_keys(self, keys, *, k=None):
        keys = list(keys)
        self.asked_ = keys
        return pl.DataFrame(
            {
                "unified_user_id": keys,
                "recommendations": [self.answers.get(key, []) for key in keys],
            }
        )

    def predict(self, X):
        # scorers answer through the pipeline's public predict
        assert isinstance(X, InteractionMatrix)
        if self.shown is not None:  # the scorer answers through a copy
            self.shown.append(X)
        rows = X.row_ids.to_list()
        return pl.DataFrame(
            {
                X.id_name: rows,
                "recommendations": [self.answers.get(r, []) for r in rows],
            }
        )


_pipe = skals_pipeline


TRAIN = pl.DataFrame(
    {
        "session_id": [1, 1, 2, 3],
        "user_id": [7, 7, None, None],
        "partnumber": [1, 2, 3, 4],
        "add_to_cart": [0, 1, 0, 0],
    }
)

HELD_OUT = pl.DataFrame(
    {
        "session_id": [10, 10, 10, 11, 12],
        "user_id": [7, 7, 7, None, None],
        "partnumber": [1, 2, 3, 4, 9],
        "add_to_cart": [0, 0, 1, 0, 0],
    }
)


def test_overlap_scorer_hand_made():
    # u_7 is known; s_11 and s_12 are not
    last = FixedAnswers(
        answers={"u_7": [1, 9, 2, 8, 7], "s_11": [4, 5, 6, 7, 8], "s_12": [1, 2]},
        known=["u_7", "s_2", "s_3"],
    )
    pipe = _pipe(last).fit(TRAIN)
    # truth of u_7 = {1, 2, 3} (any event, read from the raw events), even
    # though 1 and 2 are in its training history: filtering never removes truth
    assert top_k_overlap_scorer(pipe, HELD_OUT) == pytest.approx(2 / 5)
    assert last.asked_ == ["u_7"]
    # with unknown keys: s_11 hits 4 -> 1/5; s_12's item 9 is unknown -> 0
    scorer = make_top_k_overlap_scorer(k=5, include_unknown=True)
    assert scorer(pipe, HELD_OUT) == pytest.approx((2 / 5 + 1 / 5 + 0) / 3)
    assert sorted(last.asked_) == ["s_11", "s_12", "u_7"]


def test_overlap_scorer_k_and_lazy_error():
    last = FixedAnswers(answers={"u_7": [3, 1]}, known=["u_7"])
    pipe = _pipe(last).fit(TRAIN)
    assert make_top_k_overlap_scorer(k=2)(pipe, HELD_OUT) == pytest.approx(1.0)
    with pytest.raises(TypeError, match="collect"):
        top_k_overlap_scorer(pipe, HELD_OUT.lazy())


def test_session_protocol_reveals_first_events_without_carts():
    t0 = dt.datetime(2024, 6, 1)
    held = pl.DataFrame(
        {
            "session_id": [20, 20, 20, 20, 21, 21],
            "user_id": [None] * 6,
            "partnumber": [4, 3, 2, 1, 2, 3],
            "add_to_cart": [1, 0, 0, 0, 0, 0],
            "timestamp_local": [
                t0 + dt.timedelta(minutes=m) for m in (9, 1, 0, 5, 0, 1)
            ],
        }
    ).sample(fraction=1.0, shuffle=True, seed=3)
    shown = []
    last = FixedAnswers(answers={20: [4, 2, 3, 5, 6], 21: [2]}, shown=shown)
    pipe = _pipe(last, grain="key").fit(TRAIN)
    scorer = make_session_scorer(["ndcg", "precision", "hit_rate"], n_revealed=2)
    out = scorer(pipe, held)
    # session 20 in time order: 2, 3, 1, 4 -> context {2, 3}; truth {4} (the
    # cart add, not revealed); session 21 has no cart add -> skipped
    (seen,) = shown
    assert seen.id_name == "session_id" and seen.row_ids.to_list() == [20]
    assert seen.matrix.sum() == 4.0  # two events, confidence 2 each: no carts
    assert sorted(seen.item_ids.gather(seen.matrix.indices).to_list()) == [2, 3]
    assert out == {
        "ndcg@5": pytest.approx(1.0),
        "precision@5": pytest.approx(0.2),
        "hit_rate@5": pytest.approx(1.0),
    }
    # relevance="any": every item of a session is relevant (revealed included)
    anyrel = make_session_scorer("precision", n_revealed=2, relevance="any")
    # 20: {1,2,3,4} vs [4,2,3,5,6] -> 3/5; 21: {2,3} vs [2] -> 1/5
    assert anyrel(pipe, held) == pytest.approx((3 / 5 + 1 / 5) / 2)


def test_session_scorer_errors():
    with pytest.raises(ValueError, match="Unknown metric"):
        make_session_scorer("auc")
    with pytest.raises(ValueError, match="n_revealed"):
        make_session_scorer("ndcg", n_revealed=0)
    pipe = _pipe(FixedAnswers(answers={})).fit(TRAIN)
    with pytest.raises(ValueError, match="timestamp_local"):
        make_session_scorer("ndcg")(pipe, HELD_OUT)


@pytest.fixture(scope="module")
def events():
    return make_sessions(n_sessions=4_000, n_items=300, random_state=0)


def test_dict_scorer_in_grid_search_predicts_once(events, monkeypatch):
    calls = []
    original = BaseRecommender._predict

    def counting(self, X, k=None):
        calls.append(1)
        return original(self, X, k)

    monkeypatch.setattr(BaseRecommender, "_predict", counting)
    search = GridSearchCV(
        _pipe(ImplicitALSRecommender(factors=8, iterations=3, random_state=0)),
        {"implicitalsrecommender__regularization": [0.1, 1.0]},
        scoring=session_scorers,
        refit="ndcg@5",
        cv=SessionHoldoutSplit(n_splits=2),
    )
    search.fit(events)
    # 2 candidates x 2 folds, one round of predictions each, five metrics
    assert len(calls) == 4


T0 = dt.datetime(2024, 6, 1)

#: Training events (time 0..3) then two held-out sessions (time 10..): 20 is
#: a logged-in user's session with its cart add (item 4) after two revealed
#: events; 21 is anonymous, carts item 3 after revealing item 2.
GRID_LOG = pl.concat(
    [
        TRAIN.with_columns(
            timestamp_local=pl.Series([T0 + dt.timedelta(minutes=m) for m in range(4)])
        ),
        pl.DataFrame(
            {
                "session_id": [20, 20, 20, 21, 21],
                "user_id": [7, 7, 7, None, None],
                "partnumber": [1, 2, 4, 2, 3],
                "add_to_cart": [0, 0, 1, 0, 1],
                "timestamp_local": [
                    T0 + dt.timedelta(minutes=m) for m in (10, 11, 12, 10, 11)
                ],
            }
        ),
    ],
    how="vertical_relaxed",
)


def test_grid_search_scores_are_the_hand_computed_ones():
    """Two candidates whose per-session NDCG@5 is known exactly."""
    candidates = [
        {20: [4, 1, 2, 5, 6], 21: [5, 6, 7, 8, 9]},  # 20 hit at 1, 21 miss
        {20: [9, 4], 21: [3]},  # 20 hit at 2, 21 hit at 1
    ]
    cv = [(np.arange(4), np.arange(4, 9))]
    scorer = make_session_scorer(["ndcg", "precision", "hit_rate"], n_revealed=2)
    search = GridSearchCV(
        _pipe(FixedAnswers()),
        {"fixedanswers__answers": candidates},
        scoring=scorer,
        refit="ndcg@5",
        cv=cv,
    )
    search.fit(GRID_LOG)
    ndcg = [(1.0 + 0.0) / 2, (1 / np.log2(3) + 1.0) / 2]
    np.testing.assert_allclose(search.cv_results_["mean_test_ndcg@5"], ndcg)
    np.testing.assert_allclose(search.cv_results_["mean_test_precision@5"], [0.1, 0.2])
    np.testing.assert_allclose(search.cv_results_["mean_test_hit_rate@5"], [0.5, 1])
    assert search.best_index_ == 1
    assert search.best_score_ == pytest.approx(ndcg[1])


def test_empty_segment_is_nan_not_zero():
    """No logged-in session held out: that segment has no score."""
    held = GRID_LOG.filter(pl.col("session_id") == 21)
    pipe = _pipe(FixedAnswers(answers={21: [3]})).fit(TRAIN)
    out = make_session_scorer("ndcg", n_revealed=1, by_segment=True)(pipe, held)
    assert out["ndcg@5"] == pytest.approx(1.0)
    assert out["ndcg@5_anonymous"] == pytest.approx(1.0)
    assert np.isnan(out["ndcg@5_logged_in"])
    assert np.isnan(out["ndcg@5_short_context"])
    assert out["ndcg@5_full_context"] == pytest.approx(1.0)


def test_session_scorer_refuses_string_times_like_the_splitters():
    held = GRID_LOG.with_columns(
        pl.col("timestamp_local").dt.strftime("%H:%M").alias("timestamp_local")
    )
    pipe = _pipe(FixedAnswers(answers={20: [4]})).fit(TRAIN)
    with pytest.raises(TypeError) as scorer_error:
        make_session_scorer("ndcg")(pipe, held)
    with pytest.raises(TypeError) as split_error:
        next(SessionHoldoutSplit(n_splits=1).split(held))
    message = str(scorer_error.value)
    assert "time column 'timestamp_local' must be a datetime" in message
    assert message.split(": ", 1)[1] == str(split_error.value).split(": ", 1)[1]


def test_scorer_keeps_other_threads_warnings(events, monkeypatch):
    """The scorer silences its own answer warnings, not another thread's.

    Thread A is held inside the scorer's answering step while thread B
    answers (and warns); ``warnings.catch_warnings`` there would swap the
    process-wide filters and swallow B's warnings.
    """
    train, test = next(SessionHoldoutSplit(n_splits=1).split(events))
    pipe = _pipe(ImplicitALSRecommender(factors=4, iterations=2, random_state=0))
    pipe.fit(events[train])
    entered, done = threading.Event(), threading.Event()
    original = ImplicitALSRecommender._predict

    def held(self, X, k=None):
        entered.set()
        assert done.wait(30)
        return original(self, X, k)

    monkeypatch.setattr(ImplicitALSRecommender, "_predict", held)
    other = PopularityRecommender(k=5).fit(np.eye(3))
    n = 10

    def warn():
        assert entered.wait(30)
        try:
            for _ in range(n):
                other.predict(np.eye(3))  # "k=5 clipped": one warning each
        finally:
            done.set()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(make_session_scorer("ndcg"), pipe, events[test])
            b = pool.submit(warn)
            b.result()
            assert 0 <= a.result() <= 1
    clipped = [w for w in caught if "k=5 clipped" in str(w.message)]
    assert len(clipped) == n
    # and the scorer's own answer warnings stayed silent
    assert not [w for w in caught if "ImplicitALSRecommender" in str(w.message)]
