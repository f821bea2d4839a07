"""Tests of RepeatRecommender: exact scores, the fallback, filters, quality."""

import pickle
import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    RepeatRecommender,
    SessionHoldoutSplit,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer

TRAIN = pl.DataFrame(
    {
        "session_id": [1, 1, 2, 2, 3, 3, 3],
        "user_id": [None] * 7,
        "partnumber": [40, 50, 40, 50, 40, 10, 60],
        "add_to_cart": [0, 0, 0, 0, 0, 0, 0],
        "ts": [1, 2, 1, 2, 1, 2, 3],
    },
    schema_overrides={"user_id": pl.Int64},
)
# one session: 10, 20, 10, 30 (carted), in time order
QUERY = pl.DataFrame(
    {
        "session_id": [9, 9, 9, 9],
        "user_id": [None] * 4,
        "partnumber": [10, 20, 10, 30],
        "add_to_cart": [0, 0, 0, 1],
        "ts": [10, 11, 12, 13],
    },
    schema_overrides={"user_id": pl.Int64},
)
TRAIN = pl.concat([TRAIN, QUERY.with_columns(session_id=pl.lit(8, pl.Int64))])


def pipe(model, **encoder):
    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session", time_col="ts", **encoder),
        InteractionMatrixBuilder(),
        model,
    )


def test_exact_scores_recency_and_count():
    # own items: 30 (recency 1, c = 1 + 1 + 10), 10 (recency 2, c = 3),
    # 20 (recency 3, c = 2); s = 0.5 ** (r - 1) + 0.1 * c, answered as 1 + s
    p = pipe(RepeatRecommender(recency_decay=0.5, count_weight=0.1, k=5)).fit(TRAIN)
    out = p.predict(QUERY).row(0, named=True)
    assert out["recommendations"][:3] == [30, 10, 20]
    np.testing.assert_allclose(
        out["scores"][:3], [1 + 1 + 1.2, 1 + 0.5 + 0.3, 1 + 0.25 + 0.2], rtol=1e-6
    )
    # then popularity (by confidence) without the own items: 40 (4 rows), 50
    assert out["recommendations"][3:] == [40, 50]
    # fallback scores: popularity over the best one, in [0, 1]
    pop = PopularityRecommender().fit(pipe("passthrough")[:-1].fit_transform(TRAIN))
    glob = dict(zip(pop.item_ids_.to_list(), pop.item_popularity_, strict=True))
    np.testing.assert_allclose(out["scores"][3:], [1.0, glob[50] / glob[40]], rtol=1e-6)


def test_recency_decay_one_orders_by_count():
    p = pipe(RepeatRecommender(recency_decay=1.0, count_weight=1.0, k=3)).fit(TRAIN)
    out = p.predict(QUERY).row(0, named=True)
    assert out["recommendations"] == [30, 10, 20]  # c = 12, 3, 2
    np.testing.assert_allclose(out["scores"], [14.0, 5.0, 4.0])
    # carts weigh through the encoder: without the cart weight, 10 (2 views) wins
    p = pipe(RepeatRecommender(recency_decay=1.0, k=3), cart_weight=0.0).fit(TRAIN)
    assert p.predict(QUERY)["recommendations"][0].to_list() == [10, 20, 30]


def test_count_weight_zero_orders_by_recency():
    p = pipe(RepeatRecommender(recency_decay=0.9, count_weight=0.0, k=3)).fit(TRAIN)
    assert p.predict(QUERY)["recommendations"][0].to_list() == [30, 10, 20]


def test_without_time_every_recency_is_one():
    model = RepeatRecommender(recency_decay=0.5, count_weight=0.1, k=3)
    p = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        model,
    ).fit(TRAIN)
    out = p.predict(QUERY).row(0, named=True)
    np.testing.assert_allclose(out["scores"], [1 + 1 + 1.2, 1 + 1 + 0.3, 1 + 1 + 0.2])


def test_filters():
    p = pipe(RepeatRecommender(k=4, filter_items=[30])).fit(TRAIN)
    assert p.predict(QUERY)["recommendations"][0].to_list() == [10, 20, 40, 50]
    p = pipe(RepeatRecommender(k=2, items=[20, 50])).fit(TRAIN)
    assert p.predict(QUERY)["recommendations"][0].to_list() == [20, 50]
    p = pipe(RepeatRecommender(k=3, filter_already_liked_items=True)).fit(TRAIN)
    assert p.predict(QUERY)["recommendations"][0].to_list() == [40, 50, 60]


def test_empty_row_gets_popularity():
    X = np.array([[1, 0, 3], [0, 0, 2], [1, 1, 0]])
    model = RepeatRecommender(k=3).fit(X)
    pop = PopularityRecommender(k=3).fit(X)
    empty = np.zeros((1, 3))
    np.testing.assert_array_equal(model.predict(empty), pop.predict(empty))


def test_clone_pickle_and_params():
    model = RepeatRecommender(recency_decay=0.7, count_weight=0.3, k=2)
    assert clone(model).get_params() == model.get_params()
    p = pipe(model).fit(TRAIN)
    again = pickle.loads(pickle.dumps(p))
    assert again.predict(QUERY).equals(p.predict(QUERY))


def test_bad_parameters():
    X = np.eye(3)
    for bad in ({"recency_decay": 0.0}, {"recency_decay": 1.5}, {"count_weight": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RepeatRecommender(**bad).fit(X)


def test_beats_popularity_where_reviews_are_carted():
    events = make_sessions(3000, n_items=500, random_state=0)
    train, test = next(SessionHoldoutSplit(n_splits=1, test_size=0.3).split(events))
    scorer = make_session_scorer("ndcg", k=5, time_col="timestamp_local")

    def score(model):
        p = make_pipeline(
            PseudoUserUnifier(),
            ConfidenceEncoder(grain="session", time_col="timestamp_local"),
            InteractionMatrixBuilder(),
            model,
        ).fit(events[train])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return scorer(p, events[test])

    repeat, pop = score(RepeatRecommender()), score(PopularityRecommender())
    assert repeat > 3 * pop
