"""The blocked ALS solves agree with implicit's own (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu import _als

from skals.recommender._solver import least_squares_blocked, least_squares_cg_blocked


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    C = sp.random(500, 70, density=0.06, random_state=3, format="csr")
    C.data = 1 + 10 * C.data
    C.data[::7] *= -1  # disliked items, implicit's convention
    C = sp.lil_matrix(C.astype(np.float32))
    C[5] = 0  # an empty row: implicit solves it to zero
    C = sp.csr_matrix(C)
    C.eliminate_zeros()
    Y = rng.random((70, 16), dtype=np.float32) * 0.1
    X0 = rng.random((500, 16), dtype=np.float32) * 0.01
    return C, X0, Y


@pytest.mark.parametrize("block_nnz", [1, 37, 1 << 16])
def test_exact_solve_matches_implicit(problem, block_nnz):
    C, X0, Y = problem
    ref, ours = X0.copy(), X0.copy()
    _als.least_squares(C, ref, Y, 0.1, num_threads=1)
    out = least_squares_blocked(C, ours, Y, 0.1, block_nnz=block_nnz)
    assert out is ours
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("cg_steps", [1, 3])
def test_cg_matches_implicit(problem, cg_steps):
    C, X0, Y = problem
    ref, ours = X0.copy(), X0.copy()
    _als.least_squares_cg(C, ref, Y, 0.1, num_threads=1, cg_steps=cg_steps)
    least_squares_cg_blocked(C, ours, Y, 0.1, cg_steps=cg_steps, block_nnz=100)
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


def test_exact_solution_of_a_hand_made_system():
    # user 0: (YtY + 2 e0 e0^T + I) x = 3 e0 -> x0 = 3 / 4
    C = sp.csr_matrix(np.array([[3.0, 0.0]], dtype=np.float32))
    X = np.ones((1, 2), dtype=np.float32)
    least_squares_blocked(C, X, np.eye(2, dtype=np.float32), 1.0)
    np.testing.assert_allclose(X, [[0.75, 0.0]])


def test_shapes_and_dtypes_are_checked(problem):
    C, X0, Y = problem
    with pytest.raises(ValueError, match="shapes do not match"):
        least_squares_cg_blocked(C, X0[:10], Y, 0.1)
    with pytest.raises(TypeError, match="float32"):
        least_squares_cg_blocked(C, X0.astype(np.float64), Y, 0.1)
