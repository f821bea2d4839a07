"""Blocked ALS solves: many users at once, with matrix-matrix products.

implicit's solvers loop over users one at a time (level-2 BLAS per user).
Here a block of users is solved together: the dense part of every system,
``(YtY + regularization * I) @ x``, is one matrix-matrix product for the
whole block, and the sparse part, ``Yt (C_u - I) Y @ x``, is two sparse
passes over the block's entries (a gathered row-wise product and a sparse
times dense product). The arithmetic is that of implicit's own solvers
(Hu, Koren & Volinsky 2008; the conjugate-gradient update of Takacs, Pilaszy
& Tikk 2011), so the results agree up to float32 rounding.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

__all__ = ["least_squares_blocked", "least_squares_cg_blocked"]

#: implicit's threshold on the squared residual norm
_EPS = 1e-20


def _blocks(n_rows: int, indptr: np.ndarray, target_nnz: int, max_rows: int):
    """Row ranges ``(start, stop)`` of about ``target_nnz`` entries each."""
    start = 0
    while start < n_rows:
        goal = indptr[start] + target_nnz
        stop = int(np.searchsorted(indptr, goal, side="right")) - 1
        stop = min(max(stop, start + 1), start + max_rows, n_rows)
        yield start, stop
        start = stop


def _weights(data: np.ndarray):
    """(weight of ``b``, weight of ``A``): implicit's rule for negatives."""
    b = np.where(data > 0, data, 0).astype(np.float32)
    a = (np.abs(data) - 1).astype(np.float32)
    return b, a


def _block(Cui, start, stop):
    lo, hi = Cui.indptr[start], Cui.indptr[stop]
    indptr = (Cui.indptr[start : stop + 1] - lo).astype(np.int64)
    indices = Cui.indices[lo:hi]
    data = np.asarray(Cui.data[lo:hi], dtype=np.float32)
    rows = np.repeat(np.arange(stop - start), np.diff(indptr))
    return indptr, indices, data, rows


def _cg_block(Cui, X, Y, YtY, start, stop, cg_steps):
    """Conjugate-gradient steps for rows ``start:stop`` of ``X``, in place."""
    indptr, indices, data, rows = _block(Cui, start, stop)
    n = stop - start
    bw, aw = _weights(data)
    Yg = Y[indices]  # the block's item factors, one row per entry
    M = sp.csr_matrix((aw, indices, indptr), shape=(n, Y.shape[0]))

    def sparse_part(P):
        # sum_i (c_ui - 1) (y_i . p_u) y_i for every row u of the block
        s = np.einsum("nf,nf->n", Yg, P[rows])
        M.data = aw * s
        return M @ Y

    x = X[start:stop]
    empty = indptr[1:] == indptr[:-1]
    x[empty] = 0  # as implicit: a row without entries solves to zero
    B = sp.csr_matrix((bw, indices, indptr), shape=(n, Y.shape[0]))
    r = B @ Y - x @ YtY - sparse_part(x)
    p = r.copy()
    rsold = np.einsum("nf,nf->n", r, r)
    active = (rsold >= _EPS) & ~empty
    for _ in range(cg_steps):
        if not active.any():
            break
        Ap = p @ YtY + sparse_part(p)
        pAp = np.einsum("nf,nf->n", p, Ap)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(active, rsold / pAp, 0).astype(np.float32)
        x += alpha[:, None] * p
        r -= alpha[:, None] * Ap
        rsnew = np.einsum("nf,nf->n", r, r)
        active &= rsnew >= _EPS
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = np.where(active, rsnew / rsold, 0).astype(np.float32)
        p = r + beta[:, None] * p
        rsold = rsnew
    X[start:stop] = x


def _exact_block(Cui, X, Y, YtY, start, stop):
    """Exact solve (Cholesky) of every system of rows ``start:stop``."""
    indptr, indices, data, rows = _block(Cui, start, stop)
    n, f = stop - start, Y.shape[1]
    bw, aw = _weights(data)
    Yg = Y[indices]
    B = sp.csr_matrix((bw, indices, indptr), shape=(n, Y.shape[0]))
    b = B @ Y
    A = np.broadcast_to(YtY, (n, f, f)).copy()
    # sum over a row's entries of (c_ui - 1) y_i y_i^T, one outer product each
    np.add.at(A, rows, (aw[:, None] * Yg)[:, :, None] * Yg[:, None, :])
    chol = np.linalg.cholesky(A)
    z = np.linalg.solve(chol, b[:, :, None])
    X[start:stop] = np.linalg.solve(np.swapaxes(chol, 1, 2), z)[:, :, 0]


def _run(kernel, Cui, X, Y, regularization, num_threads, target_nnz, max_rows):
    Cui = sp.csr_matrix(Cui)
    if X.dtype != np.float32 or Y.dtype != np.float32:
        raise TypeError("least squares: X and Y must be float32 arrays.")
    if Cui.shape != (X.shape[0], Y.shape[0]) or X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"least squares: shapes do not match: user_items {Cui.shape}, "
            f"X {X.shape}, Y {Y.shape}."
        )
    f = Y.shape[1]
    YtY = Y.T @ Y + np.float32(regularization) * np.eye(f, dtype=np.float32)
    blocks = list(_blocks(X.shape[0], Cui.indptr, target_nnz, max_rows))
    workers = num_threads or 2
    with threadpool_limits(1, "blas"):
        if workers == 1:
            for start, stop in blocks:
                kernel(Cui, X, Y, YtY, start, stop)
        else:
            with ThreadPoolExecutor(workers) as pool:
                for _ in pool.map(lambda b: kernel(Cui, X, Y, YtY, *b), blocks):
                    pass
    return X


def least_squares_cg_blocked(
    user_items,
    user_factors,
    item_factors,
    regularization,
    *,
    cg_steps=3,
    num_threads=0,
    block_nnz=1 << 16,
    max_block_rows=8192,
):
    """implicit's conjugate-gradient ALS step, solved a block of rows at a time.

    Updates ``user_factors`` in place, starting from its current values
    (as implicit's ``least_squares_cg`` does), and returns it.

    Parameters
    ----------
    user_items : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Confidences ``C`` (implicit's convention: ``c_ui`` is the confidence;
        a negative value is a disliked item of confidence ``-c_ui``).
    user_factors : ndarray of shape (n_users, factors), float32
        Initial guess; overwritten with the solution.
    item_factors : ndarray of shape (n_items, factors), float32
        The fixed factors ``Y``.
    regularization : float
        L2 penalty ``lambda``.
    cg_steps : int, default=3
        Conjugate-gradient steps per row (implicit's default).
    num_threads : int, default=0
        Threads over blocks (0: 2).
    block_nnz : int, default=65536
        Entries per block.
    max_block_rows : int, default=8192
        Rows per block at most.

    Returns
    -------
    user_factors : ndarray
        The same array, updated.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skals.recommender._solver import least_squares_cg_blocked
    >>> C = sp.csr_matrix(np.array([[3.0, 0.0], [0.0, 5.0]], dtype=np.float32))
    >>> Y = np.eye(2, dtype=np.float32)
    >>> X = np.zeros((2, 2), dtype=np.float32)
    >>> least_squares_cg_blocked(C, X, Y, 0.0, cg_steps=2).round(3)
    array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    return _run(
        lambda *a: _cg_block(*a, cg_steps),
        user_items,
        user_factors,
        item_factors,
        regularization,
        num_threads,
        block_nnz,
        max_block_rows,
    )


def least_squares_blocked(
    user_items,
    user_factors,
    item_factors,
    regularization,
    *,
    num_threads=0,
    block_nnz=1 << 12,
    max_block_rows=1024,
):
    """The exact ALS step, ``(YtY + Yt (C_u - I) Y + lambda I) x_u = Yt C_u p_u``.

    Each block's systems are built with one outer product per entry and
    solved by a batched Cholesky factorisation. Overwrites and returns
    ``user_factors``; the result does not depend on its initial values.

    Parameters
    ----------
    user_items : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Confidences (implicit's convention).
    user_factors : ndarray of shape (n_users, factors), float32
        Overwritten with the solution.
    item_factors : ndarray of shape (n_items, factors), float32
        The fixed factors ``Y``.
    regularization : float
        L2 penalty ``lambda`` (> 0 unless every system is positive definite).
    num_threads : int, default=0
        Threads over blocks (0: 2).
    block_nnz : int, default=4096
        Entries per block (each holds a ``factors x factors`` outer product).
    max_block_rows : int, default=1024
        Rows per block at most.

    Returns
    -------
    user_factors : ndarray
        The same array, updated.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skals.recommender._solver import least_squares_blocked
    >>> C = sp.csr_matrix(np.array([[3.0, 0.0], [0.0, 5.0]], dtype=np.float32))
    >>> X = np.zeros((2, 2), dtype=np.float32)
    >>> least_squares_blocked(C, X, np.eye(2, dtype=np.float32), 1.0).round(3)
    array([[0.75 , 0.   ],
           [0.   , 0.833]], dtype=float32)
    """
    return _run(
        _exact_block,
        user_items,
        user_factors,
        item_factors,
        regularization,
        num_threads,
        block_nnz,
        max_block_rows,
    )
