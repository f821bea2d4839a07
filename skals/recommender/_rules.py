"""SequentialRulesRecommender: session-rec's sequential rules (SR), vectorised.

Also the machinery the item-item session models share (here and in
``_slist.py``): each session's items in the order of their last event, the
query weights of a session's most recent items, answers with the fallback,
``recommend_keys`` from a key's latest training session and
``similar_items`` from an item's row of the model's item x item matrix.
"""

from __future__ import annotations

import dataclasses
from numbers import Integral

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn_compat.base import _fit_context

from .._sklearn import Interval, StrOptions
from ..preprocessing._builder import InteractionMatrix
from ..preprocessing._confidence import VIEW_COUNT
from ._base import BaseRecommender
from ._calls import FALLBACK, check_not_event_log
from ._knn import WEIGHTINGS, _exact_ids, score_decay
from ._knn_weights import dense_rank_in_rows, order_in_rows
from ._popularity import FallbackMixin, PopularityRecommender
from ._repeat import eligible_columns, fill_ranked, row_mask
from ._topk import row_of as _row_of
from ._topk import sparse_topk as _sparse_topk

#: (item, next item) pairs per block of successor_rules' passes (in cache).
_CHUNK_PAIRS = 1 << 17

#: Rows x items per block of the rules models' scores (a dense block of
#: float64 scores would be 512 MB; a block's real scores are sparser).
_SCORE_CELLS = 1 << 26


def session_ranks(matrix: sp.csr_matrix, recency) -> sp.csr_matrix:
    """Recency rank of every stored item of ``matrix`` (1: the row's last).

    ``recency`` is the InteractionMatrix's (same pattern as ``matrix``) or
    ``None`` (then every item has rank 1: no order). Entries whose value in
    ``matrix`` is not positive are left out. Ranks are dense within a row,
    so distinct recencies give ``1..n``.
    """
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    m.sum_duplicates()
    if recency is None:
        rec = sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)
    else:
        if (
            recency.shape != m.shape
            or not np.array_equal(recency.indptr, m.indptr)
            or not np.array_equal(recency.indices, m.indices)
        ):
            raise ValueError(
                "The InteractionMatrix's recency does not have the sparsity "
                "pattern of its matrix; build both with InteractionMatrixBuilder."
            )
        rec = sp.csr_matrix(  # a copy: recency's own data is never changed
            (np.array(recency.data, dtype=np.float64), m.indices, m.indptr),
            shape=m.shape,
        )
    rec.data[~(m.data > 0)] = 0.0
    rec.eliminate_zeros()
    rec.sort_indices()
    if rec.nnz and _rank_slots(rec) is None:  # else already 1..n per row
        ranks = rec.copy()
        ranks.data = dense_rank_in_rows(rec).astype(np.float64)
        return ranks
    return rec


def _rank_slots(m: sp.csr_matrix):
    """``indptr[row] + value - 1`` per entry, if every row holds ``1..n``.

    The builder's recencies are such ranks (one per item of a session), so
    they need no sort: a value is its own rank and its slot is its place
    in the row's order. ``None`` if some row is not a permutation of
    ``1..n`` (ties, gaps, non-integers).
    """
    counts = np.diff(m.indptr)
    n_row = np.repeat(counts, counts)
    v = m.data
    if not (np.all(v >= 1) and np.all(v <= n_row) and np.all(v == np.floor(v))):
        return None
    slots = np.repeat(m.indptr[:-1], counts) + (v.astype(np.int64) - 1)
    if not np.all(np.bincount(slots, minlength=v.size) == 1):
        return None
    return slots


def sequences(ranks: sp.csr_matrix):
    """Entries of ``ranks`` ordered by row, then oldest item first.

    Returns ``(rows, items)``: the items of each row in the order of their
    last event (rank ``n`` first, rank 1 last; equal ranks by column).
    """
    if not ranks.has_sorted_indices:
        ranks = ranks.copy()
        ranks.sort_indices()
    slots = _rank_slots(ranks)
    if slots is None:
        order = order_in_rows(ranks, descending=True)
    else:  # distinct ranks 1..n: rank r goes to place n - r of the row
        counts = np.diff(ranks.indptr)
        rev = 2 * np.repeat(ranks.indptr[:-1], counts) + counts.repeat(counts) - 1
        order = np.empty(ranks.nnz, dtype=np.int64)
        order[rev - slots] = np.arange(ranks.nnz)
    # ``order`` moves entries within their row only: the rows stay
    return _row_of(ranks.indptr), ranks.indices[order].astype(np.int64)


def successor_rules(items, indptr, n_items: int, weights, diagonal=None):
    """Sum of ``weights[d - 1]`` over the pairs (``a``, ``b`` ``d`` places later).

    ``items`` holds every session's items in order, session ``s`` at
    ``indptr[s]:indptr[s + 1]`` (what :func:`sequences` returns: distinct
    within a session, so ``a != b``); ``d`` runs up to ``len(weights)``.
    ``diagonal`` (per item, or ``None``) is added on the diagonal. Returns
    the ``n_items x n_items`` canonical CSR matrix whose ``[a, b]`` is that
    sum, summed in float64 (in session order) and stored as float32; zeros
    are not stored.

    One pass over all distances and no comparison sort: the positions are
    grouped by their item ``b`` (a counting sort); each position's
    predecessors ``a`` (a run of ``items`` just before it) are written with
    their distance ``d`` (one byte) into ``b``'s row of the transposed
    matrix; transposing that (another counting sort) orders every row ``a``
    by ``b`` with equal pairs adjacent, and summing those is linear. A
    diagonal entry is one more position that reads only itself (``d = 0``).
    Both the runs and the sums are made in blocks of about ``_CHUNK_PAIRS``
    pairs, whose temporaries stay in cache; the per-position arrays are
    ``int32`` and the items are read as ``uint16`` when they fit (the one
    random read, half the bytes).
    """
    weights = np.asarray(weights, dtype=np.float64)
    width = int(weights.size)
    n_pos = int(items.size)
    diag_items = np.empty(0, dtype=np.int64)
    if diagonal is not None:
        diagonal = np.asarray(diagonal, dtype=np.float64)
        diag_items = np.flatnonzero(diagonal)
    n = n_pos + diag_items.size
    # how many predecessors each position reads: its place in its session,
    # at most ``width`` (a diagonal position reads itself)
    count = np.ones(n, dtype=np.int64)
    lens = np.diff(indptr)
    count[:n_pos] = np.arange(n_pos) - np.repeat(indptr[:-1], lens)
    np.minimum(count[:n_pos], width, out=count[:n_pos])
    total = int(count.sum())
    index = np.int32 if max(total, n, n_items) < 2**31 else np.int64
    # one byte per position when the window allows (a random read below)
    count = count.astype(np.min_scalar_type(max(width, 1)))
    small = np.uint16 if n_items <= 1 << 16 else index
    items = np.concatenate([items, diag_items]).astype(small)
    # positions grouped by item, in position order (a counting sort)
    by_item = sp.csr_matrix(
        (np.ones(n, dtype=np.int8), items, np.arange(n + 1, dtype=index)),
        shape=(n, n_items),
    ).tocsc()
    where, group = by_item.indices.astype(index, copy=False), by_item.indptr
    del by_item
    count_w = count[where]
    del count
    ends = np.cumsum(count_w, dtype=index)  # past each run, in pair slots
    # row b of the transposed matrix: what b's positions read
    indptr_t = np.concatenate([np.zeros(1, dtype=index), ends])[group]
    cuts = np.searchsorted(ends, np.arange(_CHUNK_PAIRS, total, _CHUNK_PAIRS)) + 1
    bounds = np.concatenate([[0], cuts, [n]]).tolist()
    slot_bounds = [0, *(int(ends[b - 1]) for b in bounds[1:])]
    # slot i of q's run reads items[q - d] at distance d = last - i, with
    # ``last`` the run's end (one less for a diagonal position: d = 0)
    if diag_items.size:
        ends[group[diag_items + 1] - 1] -= 1
    last = ends
    shift = np.subtract(where, last, out=where)  # q - last
    del where
    pred = np.empty(total, dtype=index)
    code = np.empty(total, dtype=np.min_scalar_type(width))
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        first, end = slot_bounds[k], slot_bounds[k + 1]
        c = count_w[lo:hi]
        slots = np.arange(first, end)
        at = np.repeat(shift[lo:hi].astype(np.intp), c)
        at += slots
        pred[first:end] = items[at]
        np.subtract(np.repeat(last[lo:hi], c), slots, out=at)
        code[first:end] = at
    del items, shift, last, count_w
    transposed = sp.csr_matrix((code, pred, indptr_t), shape=(n_items, n_items))
    del pred, code
    return _sum_runs(transposed.tocsc(), weights, diagonal, index)


def _sum_runs(transposed, weights, diagonal, index):
    """The canonical float32 CSR matrix of :func:`successor_rules`.

    ``transposed`` is the CSC matrix of the transposed pairs: row ``a``'s
    entries sorted by ``b``, equal pairs adjacent in session order, each
    holding its distance (0: the diagonal). Their weights are summed in
    float64, a block of rows at a time, by scipy's ``sum_duplicates`` (a
    sequential sum per pair), and written over the block's own indices.
    """
    n_items = transposed.shape[1]
    table = np.concatenate([[0.0], weights])
    ptr, cols, codes = transposed.indptr, transposed.indices, transposed.data
    total = int(ptr[-1])
    data = np.empty(total, dtype=np.float32)  # only the first nnz are touched
    indptr = np.zeros(n_items + 1, dtype=index)
    cuts = np.searchsorted(ptr, np.arange(_CHUNK_PAIRS, total, _CHUNK_PAIRS))
    bounds = np.unique(np.concatenate([[0], cuts, [n_items]])).tolist()
    nnz = 0
    for r0, r1 in zip(bounds[:-1], bounds[1:], strict=True):
        s, e = int(ptr[r0]), int(ptr[r1])
        values = table[codes[s:e]]
        if diagonal is not None:  # d = 0 is the diagonal (pairs have a != b)
            at = np.flatnonzero(codes[s:e] == 0)
            values[at] = diagonal[cols[s:e][at]]
        block = sp.csr_matrix(
            (values, cols[s:e], ptr[r0 : r1 + 1] - s), shape=(r1 - r0, n_items)
        )
        block.has_sorted_indices = True  # the transposition sorts
        block.sum_duplicates()
        k = block.nnz
        data[nnz : nnz + k] = block.data
        cols[nnz : nnz + k] = block.indices  # nnz <= s: never ahead
        indptr[r0 + 1 : r1 + 1] = block.indptr[1:] + nnz
        nnz += k
    rules = sp.csr_matrix(
        (data[:nnz], cols[:nnz], indptr), shape=(n_items, n_items), copy=False
    )
    rules.has_canonical_format = True
    if not rules.data.all():  # a weight sum too small for float32
        rules.eliminate_zeros()
    return rules


def repeated_events(im, n_items: int) -> np.ndarray:
    """Per item: its events beyond the first in each training session.

    ``sum over sessions of (events - 1)``, from the builder's ``item_stats``
    (``view_count`` counts every event of a (session, item), ``n_rows`` the
    sessions); zeros when the matrix does not carry them.
    """
    stats = getattr(im, "item_stats", None)
    out = np.zeros(n_items)
    if stats is None or not {VIEW_COUNT, "n_rows"} <= set(stats.columns):
        return out
    agg = stats.group_by("item_index").agg(
        (pl.col(VIEW_COUNT).sum() - pl.col("n_rows").sum()).alias("r")
    )
    out[agg["item_index"].to_numpy()] = np.maximum(agg["r"].to_numpy(), 0.0)
    return out


def _check_order(model, im, needs: bool, method: str) -> None:
    if im is not None and im.recency is None and needs:
        raise ValueError(
            f"{type(model).__name__}.{method}: the model reads the order of each "
            "session's events, but the InteractionMatrix has no recency; "
            "encode with ConfidenceEncoder(grain='session', "
            "time_col='timestamp_local') (make_recommender_pipeline does)."
        )


class _ItemItemSessionModel(FallbackMixin, BaseRecommender):
    """What the item x item session models share (not public).

    Subclasses implement ``_fit_model(ranks, matrix, im)`` (fitted state
    from the training sessions), ``_query_weights(ranks)`` (query rows over
    the items), ``_ranked(Q, keep, k)`` (the model's own ranked items per
    row: ``(ids, scores, counts)``) and ``_item_rows(positions)`` (CSR rows
    of the item x item matrix, for ``similar_items``).
    """

    _requires_order = True
    #: The ``source`` of a row the model answers itself.
    _source = "model"

    # ------------------------------------------------------------------ fit
    def _fit_sessions(self, X):
        check_not_event_log(self, X, "fit")
        im = X if isinstance(X, InteractionMatrix) else None
        matrix = self._check_fit_matrix(im.matrix if im is not None else X)
        _check_order(self, im, True, "fit")
        if im is not None:
            ranks = session_ranks(im.matrix, im.recency)
        else:
            ranks = session_ranks(matrix, None)
        self.ordered_ = im is not None
        self._fit_model(ranks, matrix, im)
        if im is not None:
            self.item_ids_ = im.item_ids
            self.key_name_ = im.row_keys.name
            self.item_name_ = im.item_name
            self.id_name_ = im.id_name
            self._frame_kind = im.kind
            self._fit_key_contexts(ranks, im)
            pop_input = dataclasses.replace(
                im, row_keys=im.row_ids.rename(im.id_name), recency=None
            )
        else:
            self.item_ids_ = None
            self.key_name_ = "user"
            self.item_name_ = "item"
            self.id_name_ = None
            self._frame_kind = None
            self.key_ids_ = None
            self.key_contexts_ = None
            pop_input = matrix
        self._fit_fallback(pop_input)
        return self

    def _fit_key_contexts(self, ranks, im):
        """Each key's most recent training session, as query weights."""
        n = ranks.shape[0]
        times = im.row_times if im.row_times is not None else np.arange(n, dtype=float)
        frame = pl.DataFrame(
            {"key": im.row_keys, "t": times, "row": np.arange(n)}
        ).sort("key", "t", "row")
        latest = frame.group_by("key", maintain_order=True).last()
        self.key_ids_ = latest["key"]
        rows = latest["row"].to_numpy()
        self.key_contexts_ = sp.csr_matrix(self._query_weights(ranks[rows]))

    # -------------------------------------------------------------- answers
    def _rank_context(self, matrix, row_keys, im, *, k):
        _check_order(self, im, True, "predict")
        if im is not None:
            ranks = session_ranks(matrix, im.recency)
        else:  # a plain matrix has no order: every item counts as the last
            ranks = session_ranks(matrix, None)
        Q = self._query_weights(ranks)
        seen = ranks if self.filter_already_liked_items else None
        codes = self.fallback_._segment_codes(
            None if im is None else im.row_segments, matrix.shape[0]
        )
        return self._answer(Q, seen, codes, k)

    def _answer(self, Q, seen, codes, k):
        banned, allowed = self._filters()
        keep = eligible_columns(self.n_features_in_, banned, allowed)

        def rank(rows, seen):
            ids1, sc1, n1 = self._ranked(Q[rows], keep, k, seen=seen)
            taken = sp.csr_matrix(
                (
                    np.ones(int(n1.sum())),
                    ids1[ids1 >= 0],
                    np.concatenate([[0], np.cumsum(n1)]),
                ),
                shape=(rows.size, self.n_features_in_),
            )
            if seen is not None:
                taken = sp.csr_matrix(taken + (seen > 0))
            # only rows short of k items need the fallback
            short = np.flatnonzero(n1 < k)
            ids2 = np.full((rows.size, k), -1, dtype=np.int64)
            sc2 = np.full((rows.size, k), -np.inf, dtype=np.float32)
            n2 = np.zeros(rows.size, dtype=np.int64)
            if short.size:
                ids2[short], sc2[short], n2[short] = self.fallback_._rank_rows(
                    codes[rows][short], taken[short], banned, allowed, k
                )
            # rows with nothing to go on keep the fallback's scores; the
            # fill after the model's own items is scored 0
            cold = (n1 == 0)[:, None]
            sc2 = np.where(ids2 >= 0, np.where(cold, sc2, 0.0), -np.inf)
            return fill_ranked((ids1, sc1, n1), (ids2, sc2.astype(np.float32), n2))

        everything = np.arange(Q.shape[0])
        ids, vals, counts = rank(everything, seen)
        return self._finish_answers(
            ids,
            vals,
            counts,
            filtered=seen is not None,
            rerank=lambda r: rank(r, None),
        )

    # --------------------------------------------------------------- public
    def _training_keys(self):
        return self.key_ids_

    def _known_keys(self, keys: pl.Series) -> np.ndarray:
        return self._key_positions(keys) >= 0

    def _key_positions(self, keys: pl.Series) -> np.ndarray:
        """Each key's row in ``key_contexts_`` (``-1`` if unknown); exact ids."""
        n = len(keys)
        if self.key_ids_ is None or not n:
            return np.full(n, -1, dtype=np.int64)
        found = pl.DataFrame({"key": _exact_ids(keys, self.key_ids_.dtype)}).join(
            pl.DataFrame({"key": self.key_ids_}).with_row_index("pos"),
            on="key",
            how="left",
            maintain_order="left",
        )
        return found["pos"].fill_null(-1).cast(pl.Int64).to_numpy()

    def _key_queries(self, keys: pl.Series) -> sp.csr_matrix:
        """Query rows of keys: their most recent training session's weights."""
        pos = self._key_positions(keys)
        n = len(keys)
        if self.key_contexts_ is None or not (pos >= 0).any():
            return sp.csr_matrix((n, self.n_features_in_), dtype=np.float64)
        known = pos >= 0
        pick = sp.csr_matrix(
            (np.ones(int(known.sum())), (np.flatnonzero(known), pos[known])),
            shape=(n, self.key_contexts_.shape[0]),
        )
        return sp.csr_matrix(pick @ self.key_contexts_)

    def _rank_keys(self, keys, k):
        """A key's query: its most recent training session (by last event)."""
        codes = np.full(len(keys), -1, dtype=np.int64)
        return self._answer(self._key_queries(keys), None, codes, k)

    def _answer_sources(self, matrix, row_keys, use_history=None, im=None):
        """The model's own name where it ranks an item for the row.

        ``"rules"`` (SequentialRulesRecommender) or ``"slist"``
        (SLISTRecommender) where the row's query items have a positive
        weight towards an eligible item, else ``"fallback"``. A key's
        answer (:meth:`recommend_keys`, empty ``matrix``) is judged on its
        most recent training session.
        """
        if matrix.nnz == 0 and row_keys is not None:
            Q = self._key_queries(row_keys)
        else:
            recency = None if im is None else im.recency
            Q = self._query_weights(session_ranks(matrix, recency))
        banned, allowed = self._filters()
        keep = eligible_columns(self.n_features_in_, banned, allowed)
        own = self._has_own_items(Q, keep)
        return np.where(own, self._source, FALLBACK).astype(object)

    def _has_own_items(self, Q, keep) -> np.ndarray:
        """Whether each row of ``Q`` scores an eligible item above 0."""
        return self._ranked(Q, keep, 1)[2] > 0

    def _similar_ranked(self, queries, k):
        """The largest positive weights in each item's row of the model.

        ``similar_items``: the rules that lead from the item
        (SequentialRulesRecommender) or its row of ``B``
        (SLISTRecommender), best first, the item itself left out.
        """
        rows = sp.csr_matrix(self._item_rows(queries), dtype=np.float64)
        rows = rows.multiply(rows > 0).tocsr()
        itself = sp.csr_matrix(
            (np.ones(queries.size), (np.arange(queries.size), queries)),
            shape=rows.shape,
        )
        rows = sp.csr_matrix(rows - rows.multiply(itself))
        rows.eliminate_zeros()
        ids, scores, counts = _sparse_topk(rows, int(k))
        return ids, scores.astype(np.float32), counts


class SequentialRulesRecommender(_ItemItemSessionModel):
    """Sequential rules: what followed the session's last item in training.

    Session-rec's "SR" (Ludewig & Jannach, 2018, after Kamehkhosh et al.,
    2017). Every training session's items are taken in the order of their
    last event; for every pair where item ``b`` comes ``d`` places after item
    ``a`` (``1 <= d <= window``) the rule ``a -> b`` gains ``w(d)``
    (``weighting``: ``"div"`` 1/d, ``"quadratic"`` 1/d^2, ``"linear"``
    max(1 - 0.1 d, 0), ``"log"`` 1/log10(d + 1.7), ``"same"`` 1). The rules
    form an items x items sparse matrix ``R`` (``rules_``), built in one
    vectorised pass over all distances (two counting sorts, no per-distance
    loop).

    A query session is answered from the rules of its most recent items:
    item ``j`` scores ``sum over t <= n_context of c(t) * R[a_t, j]``, where
    ``a_1`` is the session's last item, ``a_2`` the one before, ... and
    ``c(t)`` is ``context_weighting`` at ``t`` (1 at ``t = 1``;
    ``n_context=1`` is SR itself, session-rec's default). Rows with fewer than ``k``
    scored items are filled with the most popular remaining ones (scored 0);
    rows with nothing to go on get the ``fallback`` with its scores.

    **Order.** Order comes from the matrix's ``recency``
    (``ConfidenceEncoder(grain="session", time_col=...)``; a pipeline made
    by :func:`~skals.schema.make_recommender_pipeline` sets it). A session
    that clicks an item twice counts it once in the sequence, at its last
    click; its repeated clicks count as the rule ``a -> a``
    (``repeat_rules``). Session-rec walks the raw clicks instead; on
    YooChoose 100k both give the same quality (BENCHMARKS.md). An
    :class:`~skals.InteractionMatrix` without recency is refused. A plain
    matrix has no order and degrades explicitly: every pair of items of a
    training row counts as a rule both ways with weight 1 (co-occurrence,
    session-rec's association rules) and every query item counts as the
    last one.

    Parameters
    ----------
    window : int, default=20
        Largest distance between an item and a follower that makes a rule
        (session-rec's ``steps``; 20 is its example setting for the RecSys
        Challenge 2015 data).
    weighting : {"quadratic", "div", "linear", "log", "same"}, \
            default="quadratic"
        Weight of a rule by the distance ``d`` of the pair.
    n_context : int, default=3
        Most recent items of the query whose rules are summed; 1 is SR as
        published. 3 (with ``"quadratic"``) was better on both YooChoose
        100k and make_sessions' logs (BENCHMARKS.md).
    context_weighting : {"div", "quadratic", "linear", "log", "same"}, \
            default="quadratic"
        Weight ``c(t)`` of the ``t``-th most recent query item: ``"div"``
        1/t, ``"quadratic"`` 1/t^2, ``"linear"`` max(1 - 0.1 t, 0),
        ``"log"`` 1/log10(t + 1.7), ``"same"`` 1.
    max_rules : int or None, default=None
        Keep only the ``max_rules`` heaviest rules of every item (ties: the
        lower column); ``None`` keeps all. session-rec's ``pruning``.
    repeat_rules : bool, default=True
        Count every repeated event of an item in a training session (a
        second click, a cart add after a view) as the rule ``a -> a`` at
        distance 1, so that re-clicking the session's last item is
        predicted as often as it happened in training. The counts come from
        the builder's ``item_stats``; without them there are no such rules.
    k : int, default=5
        Items per answer.
    filter_already_liked_items : bool, default=False
        Leave out the query's own items.
    filter_items : array-like or None, default=None
        Item ids never to recommend.
    items : array-like or None, default=None
        Only recommend these item ids.
    fallback : PopularityRecommender or None, default=None
        Model for rows with nothing to go on and for filling short rows;
        ``None`` means ``PopularityRecommender()``. Cloned and fitted in
        :meth:`fit`.

    Attributes
    ----------
    rules_ : scipy.sparse.csr_matrix of shape (n_items, n_items)
        ``rules_[a, b]``: summed weight of the rule ``a -> b``.
    ordered_ : bool
        Whether the fit read the sessions' order (False for a plain matrix).
    params_ : dict
        ``n_context``, ``context_weighting`` and ``weighting`` of the fit:
        what :meth:`predict` uses, so that ``set_params`` after fit changes
        nothing until the next fit.
    key_ids_ : polars.Series or None
        Training keys, for :meth:`recommend_keys`.
    key_contexts_ : scipy.sparse.csr_matrix or None
        Query weights of each key's most recent training session.
    item_ids_ : polars.Series or None
        Item id of every column.
    fallback_ : PopularityRecommender
        The fitted fallback.
    n_features_in_ : int
        Number of items.

    See Also
    --------
    SessionKNNRecommender : Session-based nearest neighbours.
    SLISTRecommender : A linear item x item model of sessions.

    References
    ----------
    .. [1] Ludewig, M., & Jannach, D. (2018). Evaluation of session-based
       recommendation algorithms. User Modeling and User-Adapted
       Interaction 28(4-5), 331-390.
    .. [2] Kamehkhosh, I., Jannach, D., & Ludewig, M. (2017). A comparison of
       frequent pattern techniques and a deep learning method for
       session-based recommendation. RecTemp workshop at RecSys 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from skals import SequentialRulesRecommender
    >>> X = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]])
    >>> model = SequentialRulesRecommender(k=2).fit(X)
    >>> model.rules_.toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 1., 0.],
           [0., 1., 0., 1.],
           [0., 0., 1., 0.]], dtype=float32)
    >>> model.predict(np.array([[0, 0, 0, 1]]))
    array([[2, 1]])
    """

    _source = "rules"

    _parameter_constraints: dict = {
        **BaseRecommender._parameter_constraints,
        "window": [Interval(Integral, 1, None, closed="left")],
        "weighting": [StrOptions(set(WEIGHTINGS))],
        "n_context": [Interval(Integral, 1, None, closed="left")],
        "context_weighting": [StrOptions(set(WEIGHTINGS))],
        "max_rules": [Interval(Integral, 1, None, closed="left"), None],
        "repeat_rules": ["boolean"],
        "fallback": [PopularityRecommender, None],
    }

    def __init__(
        self,
        window=20,
        weighting="quadratic",
        n_context=3,
        context_weighting="quadratic",
        max_rules=None,
        repeat_rules=True,
        *,
        k=5,
        filter_already_liked_items=False,
        filter_items=None,
        items=None,
        fallback=None,
    ):
        self.window = window
        self.weighting = weighting
        self.n_context = n_context
        self.context_weighting = context_weighting
        self.max_rules = max_rules
        self.repeat_rules = repeat_rules
        self.k = k
        self.filter_already_liked_items = filter_already_liked_items
        self.filter_items = filter_items
        self.items = items
        self.fallback = fallback

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Mine the rules of the training sessions.

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix} of shape \
                (n_sessions, n_items)
            Training sessions (non-negative values); an InteractionMatrix
            needs ``recency`` (``ConfidenceEncoder(time_col=...)``).
        y : None
            Ignored.

        Returns
        -------
        self : SequentialRulesRecommender
            Fitted recommender.
        """
        return self._fit_sessions(X)

    def _fit_model(self, ranks, matrix, im):
        n_items = ranks.shape[1]
        # what predict reads, fixed at fit (set_params after fit changes
        # nothing until the next fit)
        self.params_ = {"n_context": self.n_context, "weighting": self.weighting}
        self.params_["context_weighting"] = self.context_weighting
        if im is None:  # no order: co-occurrence, both ways
            binary = sp.csr_matrix(
                (np.ones(ranks.nnz, dtype=np.float32), ranks.indices, ranks.indptr),
                shape=ranks.shape,
            )
            rules = sp.csr_matrix(binary.T @ binary)
            rules.setdiag(0.0)
            rules.eliminate_zeros()
            rules.sort_indices()
        else:
            _, items = sequences(ranks)
            longest = int(np.diff(ranks.indptr).max(initial=0))
            steps = np.arange(1, min(int(self.window), max(longest - 1, 0)) + 1)
            weights = score_decay(self.weighting, steps.astype(np.float64))
            positive = np.flatnonzero(weights > 0)
            weights = weights[: positive[-1] + 1 if positive.size else 0]
            diagonal = None
            if self.repeat_rules:
                repeats = repeated_events(im, n_items)
                weight = score_decay(self.weighting, np.array([1.0]))[0]
                diagonal = weight * repeats
            # canonical, without zeros
            rules = successor_rules(items, ranks.indptr, n_items, weights, diagonal)
        if self.max_rules is not None:
            rules = self._prune(rules, int(self.max_rules))
        self.rules_ = rules

    @staticmethod
    def _prune(rules, keep):
        ids, vals, counts = _sparse_topk(rules.astype(np.float64), keep)
        rows = np.repeat(np.arange(rules.shape[0]), counts)
        valid = ids >= 0
        out = sp.csr_matrix(
            (vals[valid].astype(np.float32), (rows, ids[valid])), shape=rules.shape
        )
        out.sort_indices()
        return out

    def _query_weights(self, ranks):
        Q = ranks.copy()
        near = Q.data <= self.params_["n_context"]
        Q.data = np.where(
            near, score_decay(self.params_["context_weighting"], Q.data), 0.0
        )
        Q.eliminate_zeros()
        return Q

    def _has_own_items(self, Q, keep) -> np.ndarray:
        # rules and query weights are positive: a row scores an eligible item
        # where one of its weighted items has a rule to one (no product with
        # the whole rules matrix, no ranking)
        reach = (self.rules_ @ keep.astype(np.float32)) > 0
        return np.asarray((Q > 0) @ reach.astype(np.float32)).ravel() > 0

    def _ranked(self, Q, keep, k, seen=None):
        # rules and query weights are positive, so every stored score is: no
        # pass to drop non-positive ones, and none for filters that keep all.
        # A block of rows at a time: a row's scores can hold most of the
        # catalogue (20,000 of 44,000 items at the challenge's scale), so all
        # rows at once would not fit in memory for a large query.
        Q = sp.csr_matrix(Q)
        rules = self.rules_.astype(np.float64)
        n = Q.shape[0]
        ids = np.full((n, k), -1, dtype=np.int64)
        vals = np.full((n, k), -np.inf, dtype=np.float32)
        counts = np.zeros(n, dtype=np.int64)
        filtered = not keep.all()
        step = max(1, _SCORE_CELLS // max(1, self.n_features_in_))
        for start in range(0, n, step):
            block = slice(start, min(start + step, n))
            scores = sp.csr_matrix(Q[block] @ rules)
            if filtered:
                scores = row_mask(scores, keep)
            if seen is not None:
                scores = sp.csr_matrix(scores - scores.multiply(seen[block] > 0))
            scores.eliminate_zeros()
            ids[block], v, counts[block] = _sparse_topk(scores, k)
            vals[block] = v
        return ids, vals, counts

    def _item_rows(self, positions):
        return self.rules_[positions]
