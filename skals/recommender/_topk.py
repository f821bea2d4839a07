"""Top-k selection with filters, in row chunks (no dense users x items matrix)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.topk import topk as _implicit_topk

#: implicit marks filtered candidates with this score.
_FILTERED = np.finfo(np.float32).min

#: Rows scored per call: bounds the scores buffer at CHUNK x n_items floats.
CHUNK = 4096


def writeable(a: np.ndarray) -> np.ndarray:
    """``a`` itself if writeable and C-contiguous, else a copy.

    implicit's Cython kernels reject read-only buffers, which is what
    ``joblib.load(..., mmap_mode="r")`` returns.
    """
    if a.flags.writeable and a.flags.c_contiguous:
        return a
    return np.array(a, order="C", copy=True)


def topk(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_matrix | None = None,
    banned: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best ``k`` items per row by ``user_factors @ item_factors.T``.

    Parameters
    ----------
    user_factors : ndarray of shape (n_rows, n_factors)
    item_factors : ndarray of shape (n_items, n_factors)
    k : int
        Candidates per row.
    exclude : csr_matrix of shape (n_rows, n_items), optional
        Per-row items that may not be recommended (already liked).
    banned : ndarray of int, optional
        Item indices that no row may get.
    allowed : sorted ndarray of int, optional
        Only these item indices may be recommended.
    num_threads : int
        Threads for implicit's kernel (0: all cores).

    Returns
    -------
    ids : ndarray of int64, shape (n_rows, k)
        Item indices, best first; ``-1`` where fewer than ``k`` were eligible.
    scores : ndarray of float32, shape (n_rows, k)
        Their scores; ``-inf`` where ``ids`` is ``-1``.
    counts : ndarray of int64, shape (n_rows,)
        How many entries of each row are real.
    """
    n_rows = user_factors.shape[0]
    items = writeable(np.asarray(item_factors, dtype=np.float32))
    if allowed is not None:
        items = np.ascontiguousarray(items[allowed])
        if exclude is not None:
            exclude = exclude[:, allowed].tocsr()
        if banned is not None:
            banned = np.flatnonzero(np.isin(allowed, banned))
    n_items = items.shape[0]
    k_eff = min(k, n_items)
    ids = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    if k_eff == 0 or n_rows == 0:
        return ids, scores, np.zeros(n_rows, dtype=np.int64)
    filter_items = None
    if banned is not None and len(banned):
        filter_items = np.unique(np.asarray(banned, dtype=np.int32))
    users = np.asarray(user_factors, dtype=np.float32)
    for start in range(0, n_rows, CHUNK):
        stop = min(start + CHUNK, n_rows)
        query = np.ascontiguousarray(users[start:stop])
        fq = None
        if exclude is not None:
            fq = exclude[start:stop]
            fq = None if fq.nnz == 0 else sp.csr_matrix(fq, dtype=np.float32)
        chunk_ids, chunk_scores = _implicit_topk(
            items,
            query,
            k_eff,
            filter_query_items=fq,
            filter_items=filter_items,
            num_threads=num_threads,
        )
        ids[start:stop, :k_eff] = chunk_ids
        scores[start:stop, :k_eff] = chunk_scores
    padded = scores <= _FILTERED
    ids[padded] = -1
    scores[padded] = -np.inf
    if allowed is not None:
        real = ids >= 0
        ids[real] = allowed[ids[real]]
    return ids, scores, (~padded).sum(axis=1).astype(np.int64)
