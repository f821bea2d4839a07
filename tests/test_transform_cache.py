"""The fit_transform cache of the dataframe transformers.

A grid search over ALS parameters must not redo the preprocessing its
candidates share, and the cache that does this must never return a result
for other data or other parameters.
"""

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skals.preprocessing._base as cache
from conftest import skals_pipeline
from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.model_selection import SessionHoldoutSplit


@pytest.fixture
def cached(monkeypatch):
    """Cache every frame, starting empty."""
    monkeypatch.setattr(cache, "CACHE_MIN_ROWS", 1)
    monkeypatch.setattr(cache, "_cache", type(cache._cache)())
    return cache


@pytest.fixture(scope="module")
def events():
    return make_sessions(300, n_items=80, random_state=0)


def preprocessing(**params):
    pre = make_pipeline(
        PseudoUserUnifier(), ConfidenceEncoder(), InteractionMatrixBuilder()
    )
    return pre.set_params(**params)


def test_equal_content_and_params_hit(cached, events):
    first = preprocessing()
    im1 = first.fit_transform(events)
    second = clone(first)
    im2 = second.fit_transform(events.clone())  # another object, same content
    assert im2 is im1
    assert second[-1].item_ids_.equals(first[-1].item_ids_)
    assert second[-1].user_ids_.equals(first[-1].user_ids_)
    assert second[0].n_features_in_ == first[0].n_features_in_
    # a hit leaves the step fitted: it transforms new data like the original
    tail = events.tail(50)
    assert (second.transform(tail).matrix != first.transform(tail).matrix).nnz == 0


def test_other_params_or_content_miss(cached, events):
    im = preprocessing().fit_transform(events)
    heavier = preprocessing(confidenceencoder__cart_weight=20).fit_transform(events)
    assert heavier is not im
    assert heavier.matrix.sum() > im.matrix.sum()
    flipped = events.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(1 - pl.col("add_to_cart"))
        .otherwise(pl.col("add_to_cart"))
        .alias("add_to_cart")
    )
    other = preprocessing().fit_transform(flipped)
    assert other is not im
    assert abs(other.matrix.sum() - im.matrix.sum()) == 10


def test_row_order_is_part_of_the_key(cached, events):
    unifier = PseudoUserUnifier()
    out = unifier.fit_transform(events)
    reversed_out = clone(unifier).fit_transform(events.reverse())
    assert reversed_out is not out
    assert reversed_out.equals(out.reverse())


def test_small_frames_and_lazy_frames_are_not_cached(monkeypatch, events):
    monkeypatch.setattr(cache, "_cache", type(cache._cache)())
    preprocessing().fit_transform(events)  # fewer rows than CACHE_MIN_ROWS
    assert len(cache._cache) == 0
    monkeypatch.setattr(cache, "CACHE_MIN_ROWS", 1)
    preprocessing().fit_transform(events.lazy())
    assert len(cache._cache) == 1  # only the builder got an eager frame


def test_budget_evicts_least_recently_used(cached, events, monkeypatch):
    unifier = PseudoUserUnifier()
    size = unifier.fit_transform(events).estimated_size()
    monkeypatch.setattr(cache, "CACHE_MAX_BYTES", size + 1)
    head = unifier.fit_transform(events.head(200))
    # both do not fit in the budget: the older entry was dropped
    (entry,) = cache._cache.values()
    assert entry[0] is head


def test_grid_search_results_equal_with_and_without_cache(monkeypatch, events):
    pipe = skals_pipeline(
        ImplicitALSRecommender(factors=4, iterations=3, random_state=0)
    )
    grid = {
        "confidenceencoder__cart_weight": [5, 20],
        "implicitalsrecommender__regularization": [0.01, 1.0],
    }

    def run():
        search = GridSearchCV(
            pipe,
            grid,
            scoring=make_session_scorer("ndcg"),
            cv=SessionHoldoutSplit(n_splits=2),
            refit=False,
        )
        return search.fit(events).cv_results_["mean_test_score"]

    monkeypatch.setattr(cache, "_cache", type(cache._cache)())
    without = run()
    monkeypatch.setattr(cache, "CACHE_MIN_ROWS", 1)
    with_cache = run()
    # 2 folds x 2 cart weights: 4 encoder and 4 builder results, 2 unifier
    # results; the other candidates were hits
    assert len(cache._cache) == 10
    np.testing.assert_array_equal(with_cache, without)
