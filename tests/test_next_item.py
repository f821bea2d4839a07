"""Tests of the next-item scorer and of the session scorer's relevance='rest'."""

import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    RepeatRecommender,
    SkalsWarning,
)
from skals.datasets import make_sessions
from skals.metrics import make_next_item_scorer, make_session_scorer

# popularity by confidence: 1 (3 sessions), 2 (2), 3 (1), 4 (1, lower rank)
TRAIN = pl.DataFrame(
    {
        "session_id": [1, 1, 1, 2, 2, 3, 4],
        "user_id": [None] * 7,
        "partnumber": [1, 2, 3, 1, 2, 1, 4],
        "add_to_cart": [0] * 7,
        "timestamp_local": [1, 2, 3, 1, 2, 1, 1],
    },
    schema_overrides={"user_id": pl.Int64},
)
TEST = pl.DataFrame(
    {
        # session 10: 3, 1, 9 (unknown item), 2; session 11: 4 (one event);
        # session 12: 2, 2. Rows out of time order on purpose.
        "session_id": [10, 10, 10, 10, 11, 12, 12],
        "user_id": [None] * 7,
        "partnumber": [1, 3, 9, 2, 4, 2, 2],
        "add_to_cart": [0] * 7,
        "timestamp_local": [2, 1, 3, 4, 1, 1, 2],
    },
    schema_overrides={"user_id": pl.Int64},
)
#: TEST's item 9 is not in TRAIN: the builder drops its row in the prefixes
UNKNOWN_9 = r"dropped 1 of 7 rows whose 'partnumber' \(1 distinct ids\)"


def pipe(model, **encoder):
    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session", **encoder),
        InteractionMatrixBuilder(),
        model,
    ).fit(TRAIN)


def test_exact_values_with_popularity():
    # popularity answers 1, 2, 3, 4 to every prefix (ties: lower index)
    p = pipe(PopularityRecommender(k=3))
    scorer = make_next_item_scorer(k=3)
    with pytest.warns(SkalsWarning, match=UNKNOWN_9):
        per = scorer.details(p, TEST)
    # prefixes: (10: 3) -> 1, (10: 3, 1) -> 9, (10: 3, 1, 9) -> 2, (12: 2) -> 2
    assert per["session_id"].to_list() == [10, 10, 10, 12]
    assert per["position"].to_list() == [1, 2, 3, 1]
    assert per["next_item"].to_list() == [1, 9, 2, 2]
    assert per["rank"].to_list() == [1, None, 2, 2]
    assert per["hit_rate@3"].to_list() == [1.0, 0.0, 1.0, 1.0]
    np.testing.assert_allclose(per["mrr@3"], [1.0, 0.0, 0.5, 0.5])
    with pytest.warns(SkalsWarning, match=UNKNOWN_9):
        assert scorer(p, TEST) == pytest.approx({"hit_rate@3": 0.75, "mrr@3": 0.5})
    # k=1: only rank 1 counts
    with pytest.warns(SkalsWarning, match=UNKNOWN_9):
        assert make_next_item_scorer("hit_rate", k=1)(p, TEST) == pytest.approx(0.25)


def test_exact_values_with_repeat():
    # the prefix's own items first, by count then recency (decay 0.5)
    p = pipe(RepeatRecommender(k=2), time_col="timestamp_local")
    with pytest.warns(SkalsWarning, match=UNKNOWN_9):
        per = make_next_item_scorer("mrr", k=2).details(p, TEST)
    # (3) -> [3, 1]: 1 at 2; (3, 1) -> [1, 3]: 9 miss; (3, 1, 9): 9 unknown,
    # [1, 3]: 2 miss; (2) -> [2, 1]: 2 at 1
    assert per["rank"].to_list() == [2, None, None, 1]
    np.testing.assert_allclose(per["mrr@2"], [0.5, 0, 0, 1])


def naive(pipeline, events, k):
    """Next-item ranks with one predict per prefix (the published loop)."""
    ranks = []
    events = events.sort("session_id", "timestamp_local", maintain_order=True)
    for _, sess in events.group_by("session_id", maintain_order=True):
        items = sess["partnumber"].to_list()
        for p in range(1, len(items)):
            prefix = sess.head(p)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                recs = pipeline.predict(prefix)["recommendations"][0].to_list()
            recs = recs[:k]
            ranks.append(recs.index(items[p]) + 1 if items[p] in recs else None)
    return ranks


def test_parity_with_a_loop_of_predicts():
    events = make_sessions(400, n_items=60, random_state=3)
    sessions = events["session_id"].unique().sort()
    train = events.filter(pl.col("session_id").is_in(sessions[:340].implode()))
    test = events.filter(pl.col("session_id").is_in(sessions[340:].implode()))
    test = test.filter(pl.int_range(pl.len()).over("session_id") < 8)
    for model in (
        ImplicitALSRecommender(factors=4, iterations=3, k=10, random_state=0),
        RepeatRecommender(k=10),
    ):
        p = make_pipeline(
            PseudoUserUnifier(),
            ConfidenceEncoder(grain="session", time_col="timestamp_local"),
            InteractionMatrixBuilder(),
            model,
        ).fit(train)
        per = make_next_item_scorer(k=10).details(p, test)
        assert per["rank"].to_list() == naive(p, test, 10)


def test_one_predict_call_for_all_prefixes(monkeypatch):
    p = pipe(PopularityRecommender(k=3))
    calls = []
    final = p[-1]
    original = final._predict

    def counting(X, k=None):
        calls.append(X.shape)
        return original(X, k)

    monkeypatch.setattr(final, "_predict", counting)
    with pytest.warns(SkalsWarning, match=UNKNOWN_9):
        make_next_item_scorer(k=3)(p, TEST)
    assert calls == [(4, 4)]  # 4 prefixes, 4 items


def test_string_session_ids_and_users():
    test = TEST.with_columns(
        pl.col("session_id").cast(pl.String), user_id=pl.lit(7, pl.Int64)
    )
    train = TRAIN.with_columns(pl.col("session_id").cast(pl.String))
    p = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        PopularityRecommender(k=3),
    ).fit(train)
    with pytest.warns(SkalsWarning, match=UNKNOWN_9):
        assert make_next_item_scorer(k=3)(p, test)["hit_rate@3"] == pytest.approx(0.75)


def test_errors():
    p = pipe(PopularityRecommender(k=3))
    with pytest.raises(ValueError, match="Unknown metric"):
        make_next_item_scorer("ndcg")
    with pytest.raises(ValueError, match="k must be"):
        make_next_item_scorer(k=0)
    with pytest.raises(ValueError, match="lack \\['timestamp_local'\\]"):
        make_next_item_scorer()(p, TEST.drop("timestamp_local"))
    with pytest.raises(ValueError, match="two events or more"):
        make_next_item_scorer()(p, TEST.filter(pl.col("session_id") == 11))


def test_session_scorer_relevance_rest():
    # 1 revealed event; truth: the items of the remaining events
    p = pipe(PopularityRecommender(k=2))
    per = make_session_scorer("recall", k=2, n_revealed=1, relevance="rest").details(
        p, TEST
    )
    # answer [1, 2] to all; 10 rest {1, 9, 2}: 2/3; 12 rest {2}: 1; 11 no rest
    assert per["session_id"].to_list() == [10, 12]
    np.testing.assert_allclose(per["recall@2"], [2 / 3, 1.0])
    with pytest.raises(ValueError, match="'cart', 'any' or 'rest'"):
        make_session_scorer(relevance="later")
