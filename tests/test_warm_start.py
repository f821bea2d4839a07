"""ImplicitALSRecommender(warm_start=True): continuing a fit exactly (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from skals import ImplicitALSRecommender
from skals.recommender import FactorCheckpoints


@pytest.fixture(scope="module")
def matrix():
    m = sp.random(300, 60, density=0.08, random_state=2, format="csr")
    m.data = (1 + 10 * m.data).astype(np.float32)
    return m.astype(np.float32)


def factors(model):
    return model.user_factors_.copy(), model.item_factors_.copy()


@pytest.fixture
def sweeps(monkeypatch):
    """Sweeps each call of implicit's fit ran (the list fills as they run)."""
    ran = []
    original = AlternatingLeastSquares.fit

    def fit(self, *args, **kwargs):
        ran.append(self.iterations)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AlternatingLeastSquares, "fit", fit)
    return ran


@pytest.mark.parametrize("use_cg", [True, False])
def test_continued_fit_equals_one_cold_fit(matrix, use_cg, sweeps):
    cold = ImplicitALSRecommender(
        factors=6, iterations=7, random_state=0, use_cg=use_cg
    ).fit(matrix)
    warm = ImplicitALSRecommender(
        factors=6, iterations=1, random_state=0, use_cg=use_cg, warm_start=True
    )
    sweeps.clear()
    for n in (1, 3, 3, 7):  # 1, +2, +0, +4 sweeps
        warm.set_params(iterations=n).fit(matrix)
        assert warm.n_iter_ == n
    assert sweeps == [1, 2, 4]  # only the new sweeps ran
    for a, b in zip(factors(warm), factors(cold), strict=True):
        np.testing.assert_array_equal(a, b)
    assert cold.n_iter_ == 7


def test_cold_fit_matches_implicit(matrix):
    # the reference: implicit itself, 5 sweeps, same seed
    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(
            factors=6, iterations=5, regularization=0.05, alpha=10.0, random_state=0
        )
        ref.fit(matrix, show_progress=False)
    model = ImplicitALSRecommender(factors=6, iterations=2, alpha=10.0, random_state=0)
    model.set_params(warm_start=True).fit(matrix)
    model.set_params(iterations=5).fit(matrix)
    np.testing.assert_array_equal(model.user_factors_, ref.user_factors)
    np.testing.assert_array_equal(model.item_factors_, ref.item_factors)


def test_without_warm_start_every_fit_starts_again(matrix):
    model = ImplicitALSRecommender(factors=6, iterations=2, random_state=0)
    first = factors(model.fit(matrix))
    model.set_params(iterations=4).fit(matrix)
    again = factors(
        ImplicitALSRecommender(factors=6, iterations=4, random_state=0).fit(matrix)
    )
    np.testing.assert_array_equal(model.user_factors_, again[0])
    assert not np.array_equal(model.user_factors_, first[0])
    assert model.n_iter_ == 4


@pytest.mark.parametrize(
    "change",
    [{"factors": 5}, {"regularization": 0.5}, {"alpha": 2.0}, {"random_state": 1}],
)
def test_other_changes_fit_from_scratch(matrix, change):
    model = ImplicitALSRecommender(
        factors=6, iterations=2, random_state=0, warm_start=True
    ).fit(matrix)
    model.set_params(iterations=4, **change).fit(matrix)
    cold = ImplicitALSRecommender(**{**model.get_params(), "warm_start": False}).fit(
        matrix
    )
    np.testing.assert_array_equal(model.user_factors_, cold.user_factors_)


def test_other_matrix_fits_from_scratch(matrix):
    model = ImplicitALSRecommender(
        factors=6, iterations=2, random_state=0, warm_start=True
    ).fit(matrix)
    other = matrix[:200]
    model.set_params(iterations=3).fit(other)
    cold = ImplicitALSRecommender(factors=6, iterations=3, random_state=0).fit(other)
    np.testing.assert_array_equal(model.user_factors_, cold.user_factors_)


def test_fewer_iterations_than_done_is_an_error(matrix):
    model = ImplicitALSRecommender(
        factors=6, iterations=4, random_state=0, warm_start=True
    ).fit(matrix)
    with pytest.raises(ValueError, match="iterations=2 must be at least 4"):
        model.set_params(iterations=2).fit(matrix)


def test_previous_arrays_are_not_overwritten(matrix):
    model = ImplicitALSRecommender(
        factors=6, iterations=2, random_state=0, warm_start=True
    ).fit(matrix)
    before = model.user_factors_
    snapshot = before.copy()
    model.set_params(iterations=4).fit(matrix)
    np.testing.assert_array_equal(before, snapshot)
    assert model.user_factors_ is not before


# ------------------------------------------------------ checkpoints in a search
def test_checkpoints_continue_across_clones(matrix, sweeps):
    store = FactorCheckpoints()
    base = ImplicitALSRecommender(factors=6, random_state=0, warm_start=store)
    sweeps.clear()
    for n in (1, 3, 9):
        clone(base).set_params(iterations=n).fit(matrix)
    assert sweeps == [1, 2, 6]
    last = clone(base).set_params(iterations=9).fit(matrix)  # nothing to run
    assert sweeps == [1, 2, 6] and len(store) == 1
    cold = ImplicitALSRecommender(factors=6, iterations=9, random_state=0).fit(matrix)
    np.testing.assert_array_equal(last.user_factors_, cold.user_factors_)
    np.testing.assert_array_equal(last.item_factors_, cold.item_factors_)


def test_checkpoints_key_on_content_and_parameters(matrix, sweeps):
    store = FactorCheckpoints()
    ImplicitALSRecommender(
        factors=6, iterations=2, random_state=0, warm_start=store
    ).fit(matrix)
    other = matrix.copy()
    other.data = other.data * 2  # same shape and pattern, other values
    sweeps.clear()
    for X, params in (
        (other, {}),
        (matrix, {"regularization": 1.0}),
        (matrix, {"random_state": None}),
    ):
        ImplicitALSRecommender(
            factors=6, iterations=3, random_state=0, warm_start=store
        ).set_params(**params).fit(X)
    assert sweeps == [3, 3, 3]  # none continued
    assert len(store) == 3  # the None seed is never kept


def test_checkpoints_budget_and_pickling(matrix):
    import pickle

    store = FactorCheckpoints(max_bytes=1)
    ImplicitALSRecommender(
        factors=6, iterations=2, random_state=0, warm_start=store
    ).fit(matrix)
    assert len(store) == 0 and store.nbytes == 0
    store = FactorCheckpoints()
    ImplicitALSRecommender(
        factors=6, iterations=2, random_state=0, warm_start=store
    ).fit(matrix)
    assert len(store) == 1 and store.nbytes == (300 + 60) * 6 * 4
    assert len(pickle.loads(pickle.dumps(store))) == 0
    assert clone(ImplicitALSRecommender(warm_start=store)).warm_start is store


def test_iteration_halving_search_with_checkpoints(sweeps):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV
    from sklearn.pipeline import make_pipeline

    from skals import ConfidenceEncoder, InteractionMatrixBuilder, PseudoUserUnifier
    from skals.datasets import make_sessions
    from skals.metrics import make_session_scorer
    from skals.model_selection import SessionHoldoutSplit

    events = make_sessions(400, n_items=50, random_state=0)

    def search(warm_start):
        pipe = make_pipeline(
            PseudoUserUnifier(),
            ConfidenceEncoder(),
            InteractionMatrixBuilder(),
            ImplicitALSRecommender(factors=4, random_state=0, warm_start=warm_start),
        )
        return HalvingGridSearchCV(
            pipe,
            {
                "implicitalsrecommender__regularization": [
                    0.001,
                    0.01,
                    0.1,
                    1.0,
                    10.0,
                    100.0,
                    0.3,
                    3.0,
                    30.0,
                ]
            },
            resource="implicitalsrecommender__iterations",
            max_resources=9,
            cv=SessionHoldoutSplit(n_splits=2, test_size=40),
            scoring=make_session_scorer("ndcg"),
            refit=False,
        ).fit(events)

    sweeps.clear()
    cold = search(False)
    n_cold = sum(sweeps)
    sweeps.clear()
    warm = search(FactorCheckpoints())
    assert cold.n_resources_ == [1, 3, 9] and cold.n_candidates_ == [9, 3, 1]
    np.testing.assert_array_equal(
        warm.cv_results_["mean_test_score"], cold.cv_results_["mean_test_score"]
    )
    assert n_cold == 2 * (9 * 1 + 3 * 3 + 1 * 9)
    assert sum(sweeps) == 2 * (9 * 1 + 3 * 2 + 1 * 6)


def test_checkpoints_are_thread_safe():
    """Four threads hammering put/get/nbytes: no error, the budget holds."""
    import sys
    import threading

    factors = np.ones((50, 4), dtype=np.float32)  # 800 bytes each
    store = FactorCheckpoints(max_bytes=20 * 2 * factors.nbytes)
    errors = []

    def hammer(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(3_000):
                key = int(rng.integers(60))
                store.put(key, int(rng.integers(1, 5)), factors, factors)
                entry = store.get(key, 10)
                assert entry is None or entry[0] <= 10
                assert store.nbytes <= store.max_bytes
                len(store)
        except Exception as exc:  # pragma: no cover - the failure reported
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert 0 < len(store) <= 20
