"""Top-k selection with filters, in row blocks (no dense users x items matrix).

Each block of rows is scored by one BLAS product (float32, the same product
as implicit's kernel, so scores are bit for bit implicit's). Instead of
sorting or partitioning every row, a lower bound of each row's ``k``-th best
score is read from a few columns (the items of largest norm: the ``k``-th
best of any subset of a row is at most the row's), and one comparison over
the block keeps the few scores at or above it; only those are ordered.
Ties are resolved as implicit's kernel does (:func:`_implicit_order`), so
the answers are implicit's, filters included.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

#: implicit marks filtered candidates with this score; it and lower scores
#: are padding in skals' answers (``-1`` ids).
_FILTERED = np.finfo(np.float32).min

#: The lowest score a kept candidate may have.
_LOWEST = np.nextafter(_FILTERED, np.float32(0))

#: Bytes of float32 scores per block: rows per block = this / (4 * items),
#: between ``MIN_ROWS`` and ``MAX_ROWS``, a multiple of ``PRODUCT_ROWS``.
#: Chosen by measurement (BENCHMARKS.md, "Top-k against the matmul floor").
BLOCK_BYTES = 1 << 25
MIN_ROWS, MAX_ROWS = 100, 1000

#: Rows per BLAS product: implicit's kernel (``implicit.cpu.topk.topk``)
#: scores its queries 100 rows at a time, and some BLAS kernels (OpenBLAS'
#: Haswell sgemm, which it picks on AMD EPYC) round a row's scores
#: differently with the size and place of the row block; the same blocks
#: give the same bits (``tests/test_topk.py`` catches a change).
PRODUCT_ROWS = 100

#: Columns read for the lower bound of each row's k-th best score: at least
#: this many, and ``SAMPLE_PER_K * k``.
SAMPLE, SAMPLE_PER_K = 256, 16


def writeable(a: np.ndarray) -> np.ndarray:
    """``a`` itself if writeable and C-contiguous, else a copy.

    implicit's Cython kernels reject read-only buffers, which is what
    ``joblib.load(..., mmap_mode="r")`` returns.
    """
    if a.flags.writeable and a.flags.c_contiguous:
        return a
    return np.array(a, order="C", copy=True)


_CONTROLLER = None


def _blas_limit(n_threads: int):
    """A context that caps BLAS at ``n_threads`` (threadpoolctl, cached)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=n_threads, user_api="blas")


def _within_row(flags: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Inclusive running count of ``flags`` within each row's run of entries.

    ``first`` is, for each entry, the position of its row's first entry.
    """
    total = np.concatenate(([0], np.cumsum(flags)))
    return total[1:] - total[first]


def _implicit_order(r, c, v, n_rows, k):
    """The best ``k`` of candidate scores per row, chosen and ordered as
    implicit's kernel does.

    ``r``/``c``/``v`` are row, column and score of each candidate, sorted by
    row then column; every score above a row's ``k``-th best must be there.
    implicit scans a row's columns in order with a heap of ``k`` (score,
    column) pairs and admits a column only if its score is strictly greater
    than the heap's smallest score; the smallest pair (lowest column among
    equal scores) is the one evicted, and the answer is sorted by score then
    column, both descending. So with ``t`` the row's ``k``-th best score, the
    answer holds every column scoring above ``t`` and, of the columns scoring
    exactly ``t``, those at or before the ``k``-th column (in column order)
    scoring ``t`` or more; when more of them than needed remain, the latest
    columns stay (the earlier ones were evicted first).

    Returns ``(ids, scores, counts)``: ``-1`` and ``-inf`` where a row has
    fewer than ``k`` candidates.
    """
    ids = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    starts = np.searchsorted(r, np.arange(n_rows + 1))
    width = np.diff(starts)
    full = width >= k
    kth = np.full(n_rows, -np.inf, dtype=np.float32)
    if full.any():
        by_score = np.lexsort((-v, r))  # row, then score descending
        kth[full] = v[by_score[starts[:-1][full] + k - 1]]
    t = kth[r]
    keep = v > t  # every candidate of a row with fewer than k
    tied = v == t
    if tied.any():
        first = starts[r]
        at_or_before = _within_row(keep | tied, first) <= k
        admitted = tied & at_or_before
        needed = k - np.bincount(r[keep], minlength=n_rows)
        n_admitted = np.bincount(r[admitted], minlength=n_rows)
        latest = _within_row(admitted, first) > (n_admitted - needed)[r]
        keep |= admitted & latest
    sel = np.flatnonzero(keep)
    sel = sel[np.lexsort((-c[sel], -v[sel], r[sel]))]
    rows = r[sel]
    counts = np.bincount(rows, minlength=n_rows).astype(np.int64)
    rank = np.arange(sel.size) - np.repeat(np.cumsum(counts) - counts, counts)
    ids[rows, rank] = c[sel]
    scores[rows, rank] = v[sel]
    return ids, scores, counts


def _bound_columns(items: np.ndarray, k: int, banned) -> np.ndarray | None:
    """Columns whose ``k``-th best score bounds each row's from below.

    The items of largest norm score highest for most rows, so their
    ``k``-th best is a tight bound; banned items are never among them (their
    scores are ``-inf``). ``None`` when that would be most of the eligible
    items (then the whole row is partitioned).
    """
    size = max(SAMPLE, SAMPLE_PER_K * k)
    norms = np.einsum("ij,ij->i", items, items)
    if banned is not None:
        norms[banned] = -np.inf
    if 2 * size >= items.shape[0] - (0 if banned is None else banned.size):
        return None
    return np.sort(np.argpartition(-norms, size - 1)[:size])


def _score_block(query, items_t, k, bound_cols, buf, mask, banned, seen):
    """``(ids, scores, counts)`` of one block of query rows."""
    b, n_items = query.shape[0], items_t.shape[1]
    s = buf[:b]
    # implicit's products: blocks start at multiples of PRODUCT_ROWS
    for i in range(0, b, PRODUCT_ROWS):
        np.matmul(query[i : i + PRODUCT_ROWS], items_t, out=s[i : i + PRODUCT_ROWS])
    if banned is not None:
        s[:, banned] = -np.inf
    if seen is not None:
        s[seen] = -np.inf
    if k >= n_items:
        bound = np.full(b, _LOWEST, dtype=np.float32)
    else:
        sub = s if bound_cols is None else s[:, bound_cols]
        width = sub.shape[1]
        bound = np.partition(sub, width - k, axis=1)[:, width - k]
        np.maximum(bound, _LOWEST, out=bound)
    m = np.greater_equal(s, bound[:, None], out=mask[:b])
    flat = np.flatnonzero(m)
    r = flat // n_items
    c = flat - r * n_items
    return _implicit_order(r, c, s.ravel()[flat], b, min(k, n_items))


def _block_rows(n_items: int) -> int:
    rows = min(MAX_ROWS, max(MIN_ROWS, BLOCK_BYTES // (4 * max(n_items, 1))))
    return int(max(PRODUCT_ROWS, rows // PRODUCT_ROWS * PRODUCT_ROWS))


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

    The same ids and scores as implicit's ``recommend`` (and its kernel
    ``implicit.cpu.topk.topk``) with the same filters, ties included, except
    that places implicit fills with filtered items are ``-1`` here.

    Parameters
    ----------
    user_factors : ndarray of shape (n_rows, n_factors)
    item_factors : ndarray of shape (n_items, n_factors)
    k : int
        Candidates per row.
    exclude : csr_matrix of shape (n_rows, n_items), optional
        Per-row items that may not be recommended (already liked): every
        stored entry, whatever its value.
    banned : ndarray of int, optional
        Item indices that no row may get.
    allowed : sorted ndarray of int, optional
        Only these item indices may be recommended.
    num_threads : int
        Threads (0: all cores). Blocks of rows are spread over the threads,
        each with a one-thread BLAS product.

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
    items = np.asarray(item_factors, dtype=np.float32)
    if allowed is not None:
        items = items[allowed]
        if exclude is not None:
            exclude = sp.csr_matrix(exclude)[:, allowed]
        if banned is not None:
            banned = np.flatnonzero(np.isin(allowed, banned))
    n_items = items.shape[0]
    k_eff = min(k, n_items)
    ids = np.full((n_rows, k), -1, dtype=np.int64)
    scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    counts = np.zeros(n_rows, dtype=np.int64)
    if k_eff == 0 or n_rows == 0:
        return ids, scores, counts
    if banned is not None:
        banned = np.unique(np.asarray(banned, dtype=np.int64))
        banned = banned if banned.size else None
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        indptr, indices = exclude.indptr, exclude.indices
    users = np.asarray(user_factors, dtype=np.float32)
    items_t = np.ascontiguousarray(items).T  # the product implicit computes
    bound_cols = _bound_columns(items, k_eff, banned)
    step = _block_rows(n_items)
    starts = range(0, n_rows, step)
    threads = (os.cpu_count() or 1) if num_threads == 0 else int(num_threads)
    threads = max(1, min(threads, len(starts)))

    def work(worker):
        b = min(step, n_rows)
        buf = np.empty((b, n_items), dtype=np.float32)
        mask = np.empty((b, n_items), dtype=bool)
        for start in starts[worker::threads]:
            stop = min(start + step, n_rows)
            seen = None
            if exclude is not None:
                lo, hi = indptr[start], indptr[stop]
                if hi > lo:
                    seen = (row_of(indptr[start : stop + 1]), indices[lo:hi])
            query = np.ascontiguousarray(users[start:stop])
            block = _score_block(
                query, items_t, k_eff, bound_cols, buf, mask, banned, seen
            )
            ids[start:stop, :k_eff], scores[start:stop, :k_eff] = block[:2]
            counts[start:stop] = block[2]

    with _blas_limit(1):
        if threads == 1:
            work(0)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(work, range(threads)))
    if allowed is not None:
        real = ids >= 0
        ids[real] = allowed[ids[real]]
    return ids, scores, counts


#: Entries per block of :func:`sparse_topk`'s bound check (a quarter of it
#: per block of its samples): its temporaries stay near 100 MB.
_BLOCK_CELLS = 1 << 24


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


def _sample_kth(data, starts, widths, sub, k) -> np.ndarray:
    """The ``k``-th largest of ``sub`` entries spread over each given row.

    Positions ``j * w // sub`` of a row of ``w`` entries (distinct when
    ``w > sub``: the order of a row's entries may follow their values, so
    its first ones are no fair sample); a row no longer than ``sub`` is
    taken whole. A lower bound of the row's ``k``-th largest.
    """
    w = widths[:, None]
    j = np.arange(sub)[None, :]
    step = np.where(w > sub, j * w // sub, j)
    pos = np.minimum(starts[:, None] + step, data.size - 1)
    sample = np.where(step < w, data[pos], -np.inf)
    return -np.partition(-sample, k - 1, axis=1)[:, k - 1]


def _at_least(data, indptr, width, bound) -> np.ndarray:
    """Indices of the entries at or above their row's ``bound``, in order.

    A block of rows at a time (about ``_BLOCK_CELLS`` entries), so that
    the per-entry bounds are never a temporary the size of ``data``.
    """
    n = width.size
    # row blocks of about _BLOCK_CELLS entries each
    cuts = np.searchsorted(indptr, np.arange(0, indptr[-1], _BLOCK_CELLS))
    cuts = np.unique(np.concatenate([np.clip(cuts, 0, n), [n]]))
    out = []
    for r0, r1 in zip(cuts[:-1], cuts[1:], strict=True):
        lo, hi = indptr[r0], indptr[r1]
        per_entry = np.repeat(bound[r0:r1], width[r0:r1])
        out.append(np.flatnonzero(data[lo:hi] >= per_entry) + lo)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def sparse_topk(scores: sp.csr_matrix, k: int):
    """Best ``k`` stored entries per row (score desc, then column asc).

    Returns ``(ids, scores, counts)`` like the recommenders' ranking: ids
    ``-1`` and scores ``-inf`` where a row has fewer than ``k`` entries.
    Exact, in linear time per row, and ``scores`` is left as it is (its
    indices need not be sorted). A row longer than ``k`` first takes a
    lower bound of its ``k``-th largest score from a sample of its entries
    (the ``k``-th largest of ``sub`` of them, spread over the row); only
    the entries at or above the bound are sorted. The sample grows with
    the rows' length (about ``4 sqrt(k * width)``), so that dense rows
    (sequential rules' scores: thousands of items a row) leave few entries
    to sort. The sample and the bound check go a block of rows at a time:
    no temporary is the size of ``scores``.
    """
    n = scores.shape[0]
    ids = np.full((n, k), -1, dtype=np.int64)
    vals = np.full((n, k), -np.inf, dtype=np.float64)
    indptr, data, cols = scores.indptr, scores.data, scores.indices
    width = np.diff(indptr)
    counts = np.minimum(width, k)
    if k < 1:
        return ids, vals, counts
    long_rows = np.flatnonzero(width > k)
    if long_rows.size:
        longest = int(width[long_rows].max())
        sub = max(
            4 * k, 64, int(min(4 * np.sqrt(k * width[long_rows].mean()), longest))
        )
        bound = np.full(n, -np.inf, dtype=np.result_type(data.dtype, np.float32))
        per_block = max(1, _BLOCK_CELLS // (4 * sub))
        for b in range(0, long_rows.size, per_block):
            rows_b = long_rows[b : b + per_block]
            bound[rows_b] = _sample_kth(data, indptr[rows_b], width[rows_b], sub, k)
        idx = _at_least(data, indptr, width, bound)
    else:
        idx = np.arange(data.size)
    row = np.searchsorted(indptr, idx, side="right") - 1
    order = np.lexsort((cols[idx], -data[idx], row))
    idx, row = idx[order], row[order]
    rank = np.arange(idx.size) - np.searchsorted(row, row)
    take = rank < k
    idx, row, rank = idx[take], row[take], rank[take]
    ids[row, rank] = cols[idx]
    vals[row, rank] = data[idx]
    return ids, vals, counts
