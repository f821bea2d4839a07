"""Determinism and round trips.

Same ``random_state`` and data: identical factors and recommendations across
fits, and identical ``cv_results_`` for ``n_jobs=1`` and ``n_jobs=2``. Fitted
pipelines survive pickle and joblib round trips, including
``joblib.load(..., mmap_mode="r")``, whose factors come back read-only.
"""

import pickle

import joblib
import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.sparse as sp
from polars.testing import assert_frame_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from conftest import skals_pipeline
from skals import ImplicitALSRecommender
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.model_selection import SessionHoldoutSplit


@pytest.fixture(scope="module")
def events():
    return make_sessions(300, n_items=80, random_state=0)


def pipeline(**params):
    als = {"factors": 8, "iterations": 5, "random_state": 0, **params}
    return skals_pipeline(ImplicitALSRecommender(**als), grain="session")


@pytest.fixture(scope="module")
def fitted(events):
    return pipeline().fit(events)


@pytest.fixture(scope="module")
def test_log(events):
    # revealed events of a few sessions, without the cart column, plus a
    # session never seen in training (fold-in)
    new = events.head(4).with_columns(
        pl.lit(10_000, dtype=pl.Int64).alias("session_id")
    )
    return pl.concat([events.head(200), new]).drop("add_to_cart")


def _assert_same_model(a, b):
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


# ------------------------------------------------------------------ two fits
@pytest.mark.parametrize("num_threads", [0, 1, 2])
def test_same_random_state_same_model(events, fitted, test_log, num_threads):
    again = pipeline(num_threads=num_threads).fit(events)
    _assert_same_model(again[-1], fitted[-1])
    assert_frame_equal(again.predict(test_log), fitted.predict(test_log))


def test_random_state_matters(events, fitted):
    other = pipeline(random_state=1).fit(events)
    assert not np.array_equal(other[-1].item_factors_, fitted[-1].item_factors_)


def test_random_state_instances():
    X = sp.random(30, 20, density=0.2, random_state=0, format="csr")

    def model(random_state):
        return ImplicitALSRecommender(
            factors=3, iterations=3, random_state=random_state
        )

    models = [model(np.random.RandomState(7)).fit(X) for _ in range(2)]
    _assert_same_model(*models)
    # one RandomState instance is consumed by the first fit, as in sklearn
    rng = np.random.RandomState(7)
    first, second = model(rng).fit(X), model(rng).fit(X)
    _assert_same_model(first, models[0])
    assert not np.array_equal(first.item_factors_, second.item_factors_)


def test_clone_refit_and_repeated_predict(events, fitted, test_log):
    _assert_same_model(clone(fitted).fit(events)[-1], fitted[-1])
    first = fitted.predict(test_log)
    assert_frame_equal(fitted.predict(test_log), first)  # predict keeps no state
    pd.testing.assert_frame_equal(
        fitted.predict(test_log.to_pandas()), first.to_pandas()
    )


def test_pipeline_memory(events, fitted, test_log, tmp_path):
    cached = clone(fitted).set_params(memory=str(tmp_path))
    for _ in range(2):  # the second fit reads the transformers from the cache
        cached.fit(events)
        _assert_same_model(cached[-1], fitted[-1])
        assert_frame_equal(cached.predict(test_log), fitted.predict(test_log))


# ------------------------------------------------------ GridSearchCV n_jobs
@pytest.mark.filterwarnings("ignore:.*was not seen in fit:UserWarning")
def test_grid_search_n_jobs(events):
    grid = {
        "implicitalsrecommender__factors": [2, 8],
        "implicitalsrecommender__regularization": [0.01, 1.0],
    }
    results = []
    for n_jobs in (1, 2):
        search = GridSearchCV(
            # one ALS thread per fit: the processes are the parallelism here
            pipeline(num_threads=1),
            grid,
            cv=SessionHoldoutSplit(n_splits=2),
            scoring=make_session_scorer(["ndcg", "precision"]),
            refit="ndcg@5",
            n_jobs=n_jobs,
        ).fit(events)
        results.append(search)
    one, two = (s.cv_results_ for s in results)
    keys = [k for k in one if not k.endswith("_time")]
    assert keys == [k for k in two if not k.endswith("_time")]
    for key in keys:
        np.testing.assert_array_equal(np.asarray(one[key]), np.asarray(two[key]))
    # the scores vary with the parameters: the comparison compared something
    assert len(set(one["mean_test_ndcg@5"])) > 1
    _assert_same_model(results[0].best_estimator_[-1], results[1].best_estimator_[-1])


# ---------------------------------------------------------------- round trips
def test_pickle_round_trip(fitted, test_log):
    restored = pickle.loads(pickle.dumps(fitted))
    _assert_same_model(restored[-1], fitted[-1])
    assert_frame_equal(restored.predict(test_log), fitted.predict(test_log))


@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_joblib_round_trip(fitted, test_log, tmp_path, mmap_mode):
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    restored = joblib.load(path, mmap_mode=mmap_mode)
    als, original = restored[-1], fitted[-1]
    if mmap_mode == "r":
        # the case implicit's Cython kernels reject: read-only buffers
        assert isinstance(als.item_factors_, np.memmap)
        assert not als.item_factors_.flags.writeable
        assert not als.user_factors_.flags.writeable
        assert not als.user_items_.data.flags.writeable
    _assert_same_model(als, original)
    assert_frame_equal(restored.predict(test_log), fitted.predict(test_log))
    keys = original.user_ids_.head(5)
    assert_frame_equal(als.recommend_keys(keys), original.recommend_keys(keys))

    # implicit's recommend, with and without recalculate_user
    rows = np.arange(5)
    for recalculate_user in (False, True):
        ids, scores = als.recommend(
            rows,
            als.user_items_[rows],
            N=5,
            filter_already_liked_items=True,
            recalculate_user=recalculate_user,
        )
        expected = original.recommend(
            rows,
            original.user_items_[rows],
            N=5,
            filter_already_liked_items=True,
            recalculate_user=recalculate_user,
        )
        np.testing.assert_array_equal(ids, expected[0])
        np.testing.assert_allclose(scores, expected[1], rtol=1e-6)
    # loading did not make the stored factors writeable behind our back
    if mmap_mode == "r":
        assert not als.item_factors_.flags.writeable
