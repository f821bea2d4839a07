"""Grid search fanned out over a cluster through joblib's Dask backend.

A local Dask cluster of two worker processes stands in for a real one: the
pipeline, the splitter and the scorer travel to the workers pickled, and the
search must give the same results as ``n_jobs=1`` on one machine.
"""

import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from conftest import skals_pipeline
from skals import ImplicitALSRecommender
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.model_selection import SessionHoldoutSplit

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install skals[dask])"
)


def search(n_jobs):
    pipe = skals_pipeline(
        ImplicitALSRecommender(factors=8, iterations=3, num_threads=1, random_state=0)
    )
    grid = {
        "confidenceencoder__cart_weight": [5.0, 10.0],
        "implicitalsrecommender__regularization": [0.1, 10.0],
    }
    return GridSearchCV(
        pipe,
        grid,
        scoring=make_session_scorer(["ndcg", "precision"]),
        refit="ndcg@5",
        cv=SessionHoldoutSplit(n_splits=2),
        n_jobs=n_jobs,
    )


def test_pieces_pickle_cleanly():
    gs = search(n_jobs=1)
    for obj in (gs.estimator, gs.scoring, gs.cv, gs):
        copy = pickle.loads(pickle.dumps(obj))
        assert type(copy) is type(obj)
        assert repr(copy) == repr(obj)


def test_grid_search_on_a_dask_cluster_equals_n_jobs_1():
    events = make_sessions(1_500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # items unseen in a fold
        local = search(n_jobs=1).fit(events)
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as client,
            distributed.get_task_stream(client) as tasks,
            joblib.parallel_backend("dask"),
        ):
            remote = search(n_jobs=-1).fit(events)
            workers = set(client.scheduler_info()["workers"])
    # the (candidate, fold) fits ran on the cluster's worker processes
    assert len(workers) == 2
    assert {t["worker"] for t in tasks.data} <= workers
    assert len(tasks.data) >= 1
    for key in ("mean_test_ndcg@5", "mean_test_precision@5", "rank_test_ndcg@5"):
        np.testing.assert_allclose(remote.cv_results_[key], local.cv_results_[key])
    assert remote.best_params_ == local.best_params_
    # the refitted model comes back from the search and pickles like any other
    best = pickle.loads(pickle.dumps(remote.best_estimator_))
    np.testing.assert_array_equal(
        best[-1].item_factors_, local.best_estimator_[-1].item_factors_
    )
