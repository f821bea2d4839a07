"""The internal split of ``BlendRecommender(weights="auto")``.

Pure functions on matrices, independent of which components are blended:
hold out the last event of the latest training sessions, build the query
rows the components answer, the simplex grid of weight vectors and the
validation score (MRR) of a ranking.
"""

from __future__ import annotations

import dataclasses
from itertools import combinations

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.utils import check_random_state

from .._interaction import InteractionMatrix
from ..preprocessing._confidence import CART_COUNT, CONFIDENCE, VIEW_COUNT
from ._repeat import keep_entries

#: Cut-off of the validation metric (session-rec's next-item protocol).
VALIDATION_K = 20


def simplex_grid(n_components: int, resolution: int) -> np.ndarray:
    """Weight vectors on the simplex with steps of ``1 / resolution``.

    Every vector of non-negative multiples of ``1 / resolution`` summing to
    1; the vertices (one component alone) come first, in component order,
    then the others in lexicographic order (descending). ``n_components=3,
    resolution=4`` gives 15 vectors.
    """
    if n_components == 1:
        return np.ones((1, 1))
    rows = []
    # stars and bars: positions of the n_components - 1 bars among the slots
    for bars in combinations(range(resolution + n_components - 1), n_components - 1):
        edges = (-1, *bars, resolution + n_components - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(n_components)])
    grid = np.array(rows, dtype=np.float64) / resolution
    others = grid[~(grid == 1.0).any(axis=1)]
    others = others[np.lexsort(-others.T[::-1])]
    return np.vstack([np.eye(n_components), others])


def local_moves(weights: np.ndarray, step: float, seen: np.ndarray) -> np.ndarray:
    """The weight vectors one move of ``step`` away from ``weights``.

    A move takes ``step`` of weight from one component and gives it to
    another (the sum stays 1, every weight stays >= 0); vectors already in
    ``seen`` (rows) are left out. In component order of (from, to).
    """
    n = weights.size
    out = []
    for i in range(n):
        if weights[i] < step - 1e-12:
            continue
        for j in range(n):
            if j != i:
                w = weights.copy()
                w[i] -= step
                w[j] += step
                out.append(np.clip(w, 0.0, 1.0))
    if not out:
        return np.zeros((0, n))
    out = np.array(out)
    known = np.isclose(out[:, None, :], seen[None, :, :], atol=1e-9).all(axis=2)
    return out[~known.any(axis=1)]


def _validation_rows(im, matrix, size, max_rows=None, lengths=None, skip=0):
    """``(matrix, rows)``: the training rows and the held-out ones, sorted.

    The latest ``size`` rows (an int, or that share as a float), at most
    ``max_rows`` (None: no cap), among those with at least two items (or
    ``lengths`` of at least 2: e.g. each row's number of events), by
    ``row_times`` (else the last rows), after the latest ``skip`` of those
    (an earlier fold's); ``rows`` is ``None`` when none or all would be
    held out. With ``im``, ``matrix`` is its session rows (not their sums
    per key).
    """
    if im is not None:
        matrix = sp.csr_matrix(im.matrix, dtype=np.float32)
    if lengths is None:
        lengths = np.diff(matrix.indptr)
    eligible = np.flatnonzero(lengths >= 2)
    if isinstance(size, float):
        n_val = int(round(size * eligible.size))
    else:
        n_val = min(int(size), eligible.size)
    if max_rows is not None:
        n_val = min(n_val, int(max_rows))
    n_val = min(n_val, eligible.size - skip)
    if n_val < 1 or n_val >= matrix.shape[0]:
        return matrix, None
    times = None if im is None else im.row_times
    end = eligible.size - skip
    if times is not None:
        eligible = eligible[np.lexsort((eligible, times[eligible]))]
    return matrix, np.sort(eligible[end - n_val : end])


def holdout_split(
    im: InteractionMatrix | None,
    matrix: sp.csr_matrix,
    size,
    random_state=None,
    max_rows=None,
):
    """Split the training rows: fit rows, and validation queries with truths.

    The validation rows are the latest sessions (by ``row_times``; a plain
    matrix or one without times: the last rows) among those with at least
    two items: ``size`` of them (an int) or that share of them (a float),
    at most ``max_rows`` (None: no cap).
    Each one's last item (``recency`` 1; without recency: its last stored
    column) is the truth. The query is the row without that item, the
    recency of the others shifted by one, unless the item's value is more
    than one event gives (:func:`single_event_values`): it was then seen more
    than once and stays in the query with that smallest value, as one earlier event at
    a random position of the session's order (``random_state``; the matrix
    does not say where its earlier events were).

    Returns ``None`` when there is no row to validate on or none left to fit
    on; else ``(fit_input, query_matrix, query_im, truth)``, ``fit_input``
    an InteractionMatrix when ``im`` is one, else a CSR matrix.
    """
    matrix, val = _validation_rows(im, matrix, size, max_rows)
    if val is None:
        return None
    q, recency = _held_out_rows(im, matrix, val)
    starts, ends = q.indptr[:-1], q.indptr[1:]
    rows = np.repeat(np.arange(len(val)), np.diff(q.indptr))
    if recency is not None:
        # each row's entry of smallest recency: first of its row in this order
        order = np.lexsort((recency.data, rows))
        pos = order[starts]
    else:
        pos = ends - 1
    truth = q.indices[pos].astype(np.int64)
    smallest = float(matrix.data.min())
    single = single_event_values(im, smallest)
    repeated = ~np.isclose(q.data[pos][:, None], single[None, :], rtol=1e-5).any(axis=1)
    keep = np.ones(q.nnz, dtype=bool)
    keep[pos[~repeated]] = False
    q.data[pos[repeated]] = smallest
    if recency is not None:
        # a kept truth moves to a random place p of the order (the items
        # before it move up one step); a removed one: all the others do
        n_items = np.diff(q.indptr)
        rng = check_random_state(random_state)
        p = np.where(repeated, rng.randint(1, n_items + 1), 1)
        data = recency.data
        shift = (data > 1) & (data <= np.where(repeated, p, n_items)[rows])
        data = data - shift.astype(data.dtype)
        data[pos[repeated]] = p[repeated]
        recency.data = data
        recency = keep_entries(recency, keep)
    q = keep_entries(q, keep)
    return _split_output(im, matrix, val, val, q, recency, truth)


def _held_out_rows(im, matrix, val):
    """Copies of the held-out rows ``val``: values (float32) and recency.

    Both with sorted indices, in one sparsity pattern (checked); recency is
    ``None`` without ``im`` or its recency.
    """
    q = sp.csr_matrix(matrix[val], dtype=np.float32, copy=True)
    q.sort_indices()
    if im is None or im.recency is None:
        return q, None
    recency = sp.csr_matrix(im.recency[val], copy=True)
    recency.sort_indices()
    if not np.array_equal(recency.indices, q.indices):
        raise ValueError("InteractionMatrix: recency and matrix differ in pattern.")
    return q, recency


def _split_output(im, matrix, held_out, queried, q, recency, truth):
    """``(fit_input, q, query_im, truth)`` of a split.

    The fit input is every row but ``held_out``; ``queried`` (a subset of
    it, in order) are the rows of the queries ``q`` and ``recency``.
    """
    fit_rows = np.setdiff1d(np.arange(matrix.shape[0]), held_out)
    if im is None:
        return matrix[fit_rows], q, None, truth
    query_im = dataclasses.replace(
        _take_rows(im, queried), matrix=q, recency=recency, events=None
    )
    fit_im = dataclasses.replace(
        _take_rows(im, fit_rows), item_stats=_stats_without(im, matrix, held_out)
    )
    return fit_im, q, query_im, truth


def _stats_without(im: InteractionMatrix, matrix, rows) -> pl.DataFrame | None:
    """``im.item_stats`` less what the rows ``rows`` put in it.

    The components fitted on the split must not learn from the held-out
    sessions through the per-item totals (popularity, the repeat rates of
    SR and SLIST). Per (segment,) item: ``n_rows`` and ``confidence`` are
    exact (a cell counts once, its value is its confidence); ``view_count``
    and ``cart_count`` are read back from each value (:func:`_event_counts`:
    its events, one of them a cart add when the value is at least that of
    one). For the encoder's output that is exact unless a cell has two cart
    adds, or so many views that they weigh a cart add (11 views at the
    default weights); the totals are clipped at 0.
    """
    stats = im.item_stats
    if stats is None or "item_index" not in stats.columns:
        return stats
    held = sp.csr_matrix(matrix[rows]).tocoo()
    cols = {"item_index": held.col}
    sums = {CONFIDENCE: held.data.astype(np.float64), "n_rows": np.ones(held.nnz)}
    single = single_event_values(im, float(matrix.data.min()))
    events = _event_counts(held.data.astype(np.float64), single)
    carted = _carted(held.data, single).astype(np.float64)
    sums.update({VIEW_COUNT: events, CART_COUNT: carted})
    by = ["item_index"]
    seg = im.row_segments
    if seg is not None and seg.name in stats.columns:
        cols[seg.name] = seg.gather(np.asarray(rows)[held.row]).to_numpy()
        by.insert(0, seg.name)
    sums = {c: v for c, v in sums.items() if c in stats.columns}
    part = (
        pl.DataFrame({**cols, **{f"__{c}": v for c, v in sums.items()}})
        .with_columns([pl.col(c).cast(stats.schema[c]) for c in by])
        .group_by(by)
        .agg(pl.col(f"__{c}").sum() for c in sums)
    )
    out = stats.join(part, on=by, how="left", nulls_equal=True)
    return out.with_columns(
        (pl.col(c) - pl.col(f"__{c}").fill_null(0.0)).clip(0.0).alias(c) for c in sums
    ).select(stats.columns)


def single_event_values(im: InteractionMatrix | None, smallest: float):
    """The values one event gives a (row, item): more means a repeat.

    For ConfidenceEncoder confidences (``1 + w_v views + w_c carts``, the
    builder's ``item_stats`` carry the counts), ``w_v`` and ``w_c`` are
    solved from the per-item sums (least squares; exact for the encoder's
    output) and one event gives ``1 + w_v`` (a view) or ``1 + w_v + w_c``
    (a cart add). Otherwise the matrix's smallest value.
    """
    stats = None if im is None else im.item_stats
    cols = ("confidence", "view_count", "cart_count", "n_rows")
    if stats is None or not set(cols) <= set(stats.columns):
        return np.array([smallest])
    conf, views, carts, n = (stats[c].to_numpy().astype(np.float64) for c in cols)
    (w_v, w_c), *_ = np.linalg.lstsq(
        np.column_stack([views, carts]), conf - n, rcond=None
    )
    return np.array([1.0 + w_v, 1.0 + w_v + w_c])


def _take_rows(im: InteractionMatrix, rows: np.ndarray) -> InteractionMatrix:
    """The rows ``rows`` of ``im`` (its per-row fields alike).

    ``item_stats`` (per-item totals) is kept whole here; the fit input of a
    split takes :func:`_stats_without` the held-out rows instead.
    """

    def take(series):
        return None if series is None else series.gather(rows)

    return dataclasses.replace(
        im,
        matrix=sp.csr_matrix(im.matrix[rows]),
        row_ids=im.row_ids.gather(rows),
        row_keys=im.row_keys.gather(rows),
        row_segments=take(im.row_segments),
        row_times=None if im.row_times is None else im.row_times[rows],
        recency=None if im.recency is None else sp.csr_matrix(im.recency[rows]),
        events=None if im.events is None else im.events.take(rows),
    )


def mrr(ids: np.ndarray, truth: np.ndarray, k: int = VALIDATION_K) -> float:
    """Mean reciprocal rank of ``truth`` in the first ``k`` of ``ids``."""
    hit = ids[:, :k] == truth[:, None]
    rank = np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, np.inf)
    return float(np.mean(1.0 / rank))


def session_split(
    im: InteractionMatrix | None,
    matrix,
    size,
    n_revealed,
    random_state,
    max_rows=None,
):
    """Split the training rows for the session protocol (reveal, then score).

    The validation rows are chosen as in :func:`holdout_split` (the latest
    ``size`` sessions with at least two items, at most ``max_rows``). Each
    one's items are put in the order of their last event (``recency``; a
    plain matrix: column order), and the first ``min(n_revealed, n - 1)``
    of its ``n`` items are revealed, as the challenge reveals a session's
    first events. An item beyond those whose value says it had more than
    one event (:func:`single_event_values`) is revealed too: its earlier
    event may well have come first, which is where a repeat component earns
    its weight; it takes a random place in the revealed order. Every revealed
    item has the value of one view (a cart add is not shown, as the
    challenge's test log has no cart column).

    The truth of a row: when the log has cart adds (``item_stats`` count
    some), its items with at least one cart add, revealed or not (the
    challenge's relevance, ``relevance="cart"``); else its items that were
    not revealed (the rest-of-session protocol). In a log where no item has
    two events in one session (ratings, say) a revealed item cannot be a
    later event, so only carted items not revealed count. Rows without a
    truth are dropped.

    Returns ``None`` when nothing is left to validate or to fit on; else
    ``(fit_input, query_matrix, query_im, truth)`` with ``truth`` a CSR
    matrix of 0/1 over the items, one row per query.
    """
    matrix, val = _validation_rows(im, matrix, size, max_rows)
    if val is None:
        return None
    q, recency = _held_out_rows(im, matrix, val)
    n_q = len(val)
    n_items = np.diff(q.indptr)
    rows = np.repeat(np.arange(n_q), n_items)
    if recency is not None:
        # earliest last event first (largest recency); ties: column order
        order = np.lexsort((q.indices, -recency.data.astype(np.int64), rows))
    else:
        order = np.arange(q.nnz)
    place = np.empty(q.nnz, dtype=np.int64)
    place[order] = np.arange(q.nnz) - q.indptr[rows[order]]
    revealed = place < np.minimum(n_revealed, n_items - 1)[rows]

    smallest = float(matrix.data.min())
    single = single_event_values(im, smallest)
    one_event = np.isclose(q.data[:, None], single[None, :], rtol=1e-5).any(axis=1)
    # an item beyond the revealed ones with more events than one had its
    # earlier events somewhere before its last: in the revealed prefix with
    # the chance that one of its e - 1 earlier events falls among the first
    # n_revealed of the session's events (uniform places)
    events = _event_counts(q.data, single)
    per_row = np.bincount(rows, weights=events, minlength=n_q)
    share = np.minimum(n_revealed / np.maximum(per_row[rows] - 1, 1), 1.0)
    p_early = 1.0 - (1.0 - share) ** np.maximum(events - 1, 0)
    rng = check_random_state(random_state)
    early = (~one_event) & (rng.uniform(size=q.nnz) < p_early)
    context = revealed | early
    stats = None if im is None else im.item_stats
    has_carts = (
        stats is not None
        and "cart_count" in stats.columns
        and float(stats["cart_count"].sum()) > 0
        and single.size == 2
        and single[1] > single[0]
    )
    # carted (value of a cart add or more), else not revealed; in a log
    # where no item ever has two events in a session (ratings, say), a
    # revealed item is never a later event: only carts not revealed count
    relevant = _carted(q.data, single) if has_carts else ~revealed
    if has_carts and not (_event_counts(matrix.data, single) > 1).any():
        relevant &= ~revealed
    truth = keep_entries(
        sp.csr_matrix((np.ones(q.nnz), q.indices, q.indptr), q.shape), relevant
    )
    has_truth = np.diff(truth.indptr) > 0

    q.data[:] = single[0]
    if recency is not None:
        # the revealed order: places 0..r-1, the kept repeats at random places
        key = place.astype(np.float64)
        kept = context & ~revealed
        r = np.minimum(n_revealed, n_items - 1)[rows]
        key[kept] = rng.uniform(0, r[kept])
        sel = np.flatnonzero(context)
        new_order = sel[np.lexsort((key[sel], rows[sel]))]
        counts = np.bincount(rows[context], minlength=n_q)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(new_order.size) - starts[rows[new_order]]
        data = np.zeros(q.nnz, dtype=recency.data.dtype)
        data[new_order] = counts[rows[new_order]] - rank  # 1 = most recent
        recency.data = data
        recency = keep_entries(recency, context)
    q = keep_entries(q, context)

    keep_rows = np.flatnonzero(has_truth)
    if keep_rows.size == 0:
        return None
    if recency is not None:
        recency = recency[keep_rows]
    return _split_output(
        im, matrix, val, val[keep_rows], q[keep_rows], recency, truth[keep_rows]
    )


def _event_counts(values: np.ndarray, single: np.ndarray) -> np.ndarray:
    """Events behind each value: ``(v - 1 - w_c [carted]) / w_v``, at least 1.

    ``single`` is :func:`single_event_values`' answer: ``[1 + w_v, 1 + w_v +
    w_c]`` for ConfidenceEncoder values (a value of a cart add or more is
    read as one cart add and views), else ``[smallest]``: a value above the
    smallest counts as two events.
    """
    if single.size == 2 and single[0] > 1:
        w_v, w_c = single[0] - 1.0, single[1] - single[0]
        n = np.rint((values - 1.0 - w_c * _carted(values, single)) / w_v)
        return np.maximum(n, 1.0)
    return np.where(np.isclose(values, single[0], rtol=1e-5), 1.0, 2.0)


def _carted(values: np.ndarray, single: np.ndarray) -> np.ndarray:
    """Whether each value holds a cart add: at least one cart add's value
    (``single[1]``, :func:`single_event_values`), when a cart add weighs
    more than a view; all False otherwise."""
    if single.size == 2 and single[1] > single[0]:
        return values >= single[1] * (1 - 1e-5)
    return np.zeros(np.shape(values), dtype=bool)


def ndcg(ids: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """Mean NDCG@k of the ranked ``ids`` (-1: empty) against 0/1 ``truth`` rows."""
    ids = ids[:, :k]
    n = ids.shape[0]
    rows = np.broadcast_to(np.arange(n)[:, None], ids.shape)
    valid = ids >= 0
    hit = np.zeros(ids.shape)
    hit[valid] = np.asarray(truth[rows[valid], ids[valid]]).ravel()
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hit @ discount[: ids.shape[1]]
    n_rel = np.minimum(np.diff(truth.indptr), k)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[n_rel]
    return float(np.mean(dcg / ideal))
