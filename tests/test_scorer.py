"""Scorers: what the model sees, what counts as truth, and the numbers."""

import datetime as dt

import numpy as np
import polars as pl
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV

from conftest import skals_pipeline
from skals import (
    ImplicitALSRecommender,
    InteractionMatrix,
    SessionHoldoutSplit,
    make_top_k_overlap_scorer,
    top_k_overlap_scorer,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer, session_scorers
from skals.recommender._base import BaseRecommender


class FixedAnswers(BaseEstimator):
    """A final step that answers from a table and records what it was shown."""

    def __init__(self, answers=None, known=()):
        self.answers = answers
        self.known = known

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

    def _predict(self, X, k):
        assert isinstance(X, InteractionMatrix)
        self.seen_ = X
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
    last = FixedAnswers(answers={20: [4, 2, 3, 5, 6], 21: [2]})
    pipe = _pipe(last, grain="key").fit(TRAIN)
    scorer = make_session_scorer(["ndcg", "precision", "hit_rate"], n_revealed=2)
    out = scorer(pipe, held)
    # session 20 in time order: 2, 3, 1, 4 -> context {2, 3}; truth {4} (the
    # cart add, not revealed); session 21 has no cart add -> skipped
    seen = last.seen_
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

    def counting(self, X, k):
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
    for name in ("ndcg@5", "precision@5", "recall@5", "map@5", "hit_rate@5"):
        scores = search.cv_results_[f"mean_test_{name}"]
        assert np.all((scores >= 0) & (scores <= 1))
    assert search.best_score_ == search.cv_results_["mean_test_ndcg@5"].max()


def test_segments_in_cv_results(events):
    scorer = make_session_scorer(["ndcg"], by_segment=True)
    search = GridSearchCV(
        _pipe(ImplicitALSRecommender(factors=8, iterations=3, random_state=0)),
        {"implicitalsrecommender__factors": [8]},
        scoring=scorer,
        refit="ndcg@5",
        cv=SessionHoldoutSplit(n_splits=1),
    )
    search.fit(events)
    for seg in ("anonymous", "logged_in", "short_context", "full_context"):
        assert f"mean_test_ndcg@5_{seg}" in search.cv_results_


def test_estimator_score_matches_overlap_scorer(events):
    train, test = events.head(30_000), events.tail(events.height - 30_000)
    pipe = _pipe(ImplicitALSRecommender(factors=8, iterations=3, random_state=0))
    pipe.fit(train)
    # scoring=None uses Pipeline.score -> ImplicitALSRecommender.score
    assert pipe.score(test) == pytest.approx(top_k_overlap_scorer(pipe, test))
