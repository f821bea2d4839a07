"""ImplicitALSRecommender(warm_start=True): continuing a fit exactly (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from skals import ImplicitALSRecommender


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
            factors=6, iterations=5, regularization=0.05, random_state=0
        )
        ref.fit(matrix, show_progress=False)
    model = ImplicitALSRecommender(factors=6, iterations=2, random_state=0)
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
