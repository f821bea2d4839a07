"""Top-k selection with filters, in row chunks (no dense users x items matrix).

Scores come from implicit's kernel (a BLAS product per 100 rows and a
C++ selection, on all cores), so skals ranks exactly as implicit does.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.topk import topk as _implicit_topk

#: implicit marks filtered candidates with this score.
_FILTERED = np.finfo(np.float32).min

#: Rows per call of implicit's kernel, a multiple of its 100-row batches so
#: that unfiltered scores are bit for bit those of implicit's ``recommend``.
CHUNK = 4000

#: Most candidates (rows x candidates per row) fetched in one call.
CANDIDATES = 4 * CHUNK * 64


def writeable(a: np.ndarray) -> np.ndarray:
    """``a`` itself if writeable and C-contiguous, else a copy.

    implicit's Cython kernels reject read-only buffers, which is what
    ``joblib.load(..., mmap_mode="r")`` returns.
    """
    if a.flags.writeable and a.flags.c_contiguous:
        return a
    return np.array(a, order="C", copy=True)


def _drop_seen(ids, scores, seen, k):
    """Keep, per row, the first ``k`` candidates that are not in ``seen``.

    ``ids``/``scores`` are implicit's candidates (best first); ``seen`` is a
    canonical CSR matrix of the same rows. Dropped and missing places get
    the filtered score, so they become ``-1`` padding.
    """
    n_rows, n_cand = ids.shape
    n_items = seen.shape[1]
    row = np.arange(n_rows, dtype=np.int64)[:, None]
    cand_keys = (row * n_items + ids).ravel()
    seen_rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(seen.indptr))
    seen_keys = seen_rows * n_items + seen.indices  # sorted: canonical CSR
    pos = np.searchsorted(seen_keys, cand_keys)
    pos[pos == seen_keys.size] = 0
    dropped = (seen_keys.size > 0) & (seen_keys[pos] == cand_keys)
    dropped = dropped.reshape(n_rows, n_cand)
    keep = np.argsort(dropped, axis=1, kind="stable")[:, :k]
    kept_ids = np.take_along_axis(ids, keep, axis=1)
    kept_scores = np.take_along_axis(scores, keep, axis=1)
    kept_scores[np.take_along_axis(dropped, keep, axis=1)] = _FILTERED
    return kept_ids, kept_scores


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
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if not exclude.has_canonical_format:
            # canonical: one entry per (row, item); on a copy, as
            # csr_matrix() of a CSR input shares the caller's arrays
            exclude = exclude.copy()
            exclude.sum_duplicates()
        n_seen = np.diff(exclude.indptr)
    else:
        n_seen = np.zeros(n_rows, dtype=np.int64)
    # Seen items are dropped from a longer candidate list ("over-fetch"):
    # rows are grouped by how many items they have seen, and a group asks
    # implicit for k + (most seen in the group) candidates. That is cheaper
    # than implicit's own filter, which slices the CSR matrix row by row.
    order = np.argsort(n_seen, kind="stable") if exclude is not None else None
    start = 0
    while start < n_rows:
        stop = min(start + CHUNK, n_rows)
        if order is None:
            rows = np.arange(start, stop)
        else:
            n_cand = min(k_eff + int(n_seen[order[stop - 1]]), n_items)
            while stop - start > 1 and (stop - start) * n_cand > CANDIDATES:
                stop = start + (stop - start) // 2  # heavy rows: smaller chunks
                n_cand = min(k_eff + int(n_seen[order[stop - 1]]), n_items)
            rows = order[start:stop]
        start = stop
        extra = int(n_seen[rows[-1]])
        n_cand = min(k_eff + extra, n_items)
        query = users[rows[0] : rows[-1] + 1] if order is None else users[rows]
        chunk_ids, chunk_scores = _implicit_topk(
            items,
            np.ascontiguousarray(query),
            n_cand,
            filter_items=filter_items,
            num_threads=num_threads,
        )
        if extra:
            chunk_ids, chunk_scores = _drop_seen(
                chunk_ids, chunk_scores, exclude[rows], k_eff
            )
        ids[rows, :k_eff] = chunk_ids[:, :k_eff]
        scores[rows, :k_eff] = chunk_scores[:, :k_eff]
    padded = scores <= _FILTERED
    ids[padded] = -1
    scores[padded] = -np.inf
    if allowed is not None:
        real = ids >= 0
        ids[real] = allowed[ids[real]]
    return ids, scores, (~padded).sum(axis=1).astype(np.int64)


def row_of(indptr: np.ndarray) -> np.ndarray:
    """The row of each stored entry of a CSR matrix, from its ``indptr``."""
    return np.repeat(np.arange(indptr.size - 1), np.diff(indptr))


def segment_topk(row, pos, values, n_rows, k) -> np.ndarray:
    """Indices of the ``k`` largest ``values`` per ``row`` (ties: smaller ``pos``).

    ``row`` is sorted and ``pos`` numbers each row's entries ``0..n-1`` (in
    any order). Returns indices into the inputs, sorted by row, then value
    (desc), then ``pos``, at most ``k`` per row. Exact, without sorting every
    entry: the ``k``-th largest of a subset of a row (its entries with
    ``pos < max(4k, 64)``) is a lower bound of the row's ``k``-th largest,
    so only entries at or above it are sorted.
    """
    starts = np.searchsorted(row, np.arange(n_rows + 1))
    width = np.diff(starts)
    bound = np.full(n_rows, -np.inf)
    long_rows = width > k
    if long_rows.any():
        sub = max(4 * k, 64)
        in_sub = (pos < sub) & long_rows[row]
        code = np.cumsum(long_rows) - 1  # dense row number of the long rows
        dense = np.full((int(long_rows.sum()), sub), -np.inf)
        dense[code[row[in_sub]], pos[in_sub]] = values[in_sub]
        kth = -np.partition(-dense, k - 1, axis=1)[:, k - 1]
        bound[long_rows] = kth
    idx = np.flatnonzero(values >= bound[row])
    idx = idx[np.lexsort((pos[idx], -values[idx], row[idx]))]
    r = row[idx]
    first = np.searchsorted(r, r)  # start of each row in idx (r is sorted)
    return idx[np.arange(idx.size) - first < k]


def sparse_topk(scores: sp.csr_matrix, k: int):
    """Best ``k`` stored entries per row (score desc, then column asc).

    Returns ``(ids, scores, counts)`` like the recommenders' ranking: ids
    ``-1`` and scores ``-inf`` where a row has fewer than ``k`` entries.
    Exact, in linear time per row (:func:`segment_topk`); sorts the indices
    of ``scores`` in place.
    """
    n = scores.shape[0]
    ids = np.full((n, k), -1, dtype=np.int64)
    vals = np.full((n, k), -np.inf, dtype=np.float64)
    scores.sort_indices()
    rows = row_of(scores.indptr)
    pos = np.arange(rows.size) - scores.indptr[rows]
    sel = segment_topk(rows, pos, scores.data, n, k)
    counts = np.minimum(np.diff(scores.indptr), k)
    rank = np.arange(sel.size) - np.repeat(np.cumsum(counts) - counts, counts)
    ids[rows[sel], rank] = scores.indices[sel]
    vals[rows[sel], rank] = scores.data[sel]
    return ids, vals, counts
