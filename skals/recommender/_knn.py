"""SessionKNNRecommender: session-based k-nearest-neighbours (SKNN, V-SKNN, STAN)."""

from __future__ import annotations

import dataclasses
from numbers import Integral, Real

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn_compat.base import _fit_context

from .._sklearn import Interval, StrOptions
from ..preprocessing._builder import InteractionMatrix
from ._base import BaseRecommender
from ._calls import (
    check_not_event_log,
)
from ._knn_calls import SessionKNNCalls, _exact_ids
from ._knn_score import SessionKNNScoring
from ._knn_score import _segment_topk as _segment_topk  # re-exported
from ._knn_weights import WEIGHTINGS, position_weight, score_decay
from ._knn_weights import dense_rank_in_rows as _dense_rank_in_rows
from ._popularity import FallbackMixin, PopularityRecommender
from ._topk import row_of as _row_of
from ._topk import sparse_topk as _sparse_topk

__all__ = ["SessionKNNRecommender", "WEIGHTINGS", "position_weight", "score_decay"]

#: Parameters that shape the scores, fixed at fit time (``params_``).
_SCORING = (
    "n_neighbors",
    "sample_size",
    "similarity",
    "weighting",
    "weighting_score",
    "idf_weighting",
    "history_weight",
    "recency_decay",
    "neighbor_position_decay",
)


def _drop_columns(m: sp.csr_matrix, mask: np.ndarray) -> sp.csr_matrix:
    """``m`` without the stored entries whose column is in ``mask``."""
    m = m.copy()
    m.data[mask[m.indices]] = 0.0
    m.eliminate_zeros()
    return m


class SessionKNNRecommender(
    SessionKNNCalls, SessionKNNScoring, FallbackMixin, BaseRecommender
):
    """Session-based nearest neighbours: SKNN, V-SKNN and (V)STAN as one estimator.

    Training rows are sessions (``ConfidenceEncoder(grain="session",
    time_col=...)`` then :class:`~skals.InteractionMatrixBuilder`). To answer
    a query session, as in Jannach & Ludewig (2017) and Ludewig & Jannach
    (2018):

    1. **Sampling.** The candidate neighbours are the training sessions that
       share at least one item with the query; of these, the
       ``sample_size`` most recent (by the session's last event time, ties:
       the later training row) are kept.
    2. **Similarity.** The query's distinct items get position weights
       ``w_i`` (``weighting``; its last item counts most) and every
       candidate ``b`` is seen as a binary set. With
       ``dot = sum of w_i over the items shared with b`` and ``|a|`` the
       number of distinct query items: ``"vec"`` is ``dot / |a|`` (V-SKNN),
       ``"cosine"`` is ``dot / sqrt(|a| |b|)`` and ``"jaccard"`` is
       ``dot / |a u b|`` (SKNN's, when ``weighting="same"``). Candidates
       with similarity 0 are dropped, and the ``n_neighbors`` most similar
       are kept (ties: the more recent session).
    3. **Scores.** Item ``j`` scores the sum over the neighbours ``b`` of
       ``sim(a, b) * decay(b) * v_b(j) * (1 + idf_weighting * idf(j))``,
       where ``decay`` (``weighting_score``) depends on how far back the
       query's most recent item shared with ``b`` is (step 1: its last
       item), ``v_b(j)`` is 1 (``neighbor_values="binary"``) or the
       confidence of ``j`` in ``b`` (``"confidence"``: cart adds weigh more,
       tuned with ``confidenceencoder__cart_weight``), and
       ``idf(j) = log(n_sessions / n_sessions_with_j)``.

    **STAN's weights** (Garg et al. 2019; VSTAN, Ludewig et al. 2021) are
    parameters of the same kNN, off by default: exponential position weights
    (``weighting`` and ``weighting_score`` as numbers), the neighbour's
    recency (``recency_decay``, multiplying the similarity before the
    ``n_neighbors`` are chosen) and the item's position inside the neighbour
    (``neighbor_position_decay``); with ``idf_weighting`` and the query's own
    items kept (STAN's "reminders", unless ``filter_already_liked_items``)
    this is VSTAN. Session-rec's VSTAN settings for YooChoose map to
    ``similarity="cosine", weighting=8, weighting_score=0.5,
    recency_decay=10, neighbor_position_decay=8, idf_weighting=2,
    n_neighbors=2000, sample_size=2500`` (benchmarks/real_clicks.py).

    Everything is computed with sparse matrix products over chunks of query
    sessions; sampling is exact: an inverted index keeps, per item, its
    ``sample_size`` most recent sessions (the ``sample_size`` most recent of
    a union are among the ``sample_size`` most recent of each part).

    **Order.** Positions are ranks of the query's known items by their
    ``recency`` (from ``ConfidenceEncoder(time_col=...)``; unknown items do
    not count); sampling orders training sessions by ``row_times``. An
    :class:`~skals.InteractionMatrix` without them raises an error naming
    ``time_col`` when the parameters need them. A plain matrix has no order
    and degrades explicitly: its training rows count as ordered by index
    (later rows more recent), and every query item counts as the last one
    (so ``weighting`` and ``weighting_score`` act as ``"same"``).

    **Answers.** Rows with nothing to go on get the ``fallback``
    (popularity, with its scores); rows with fewer than ``k`` scored items
    are filled with the most popular remaining items, scored 0. A query
    row whose id is a training row id (predicting on the training log) does
    not take its own training session as a neighbour.

    Parameters
    ----------
    n_neighbors : int, default=100
        Neighbour sessions per query (``k`` of the papers).
    sample_size : int or None, default=1000
        Most recent candidate sessions kept; ``None`` keeps every session
        sharing an item (slow on popular items).
    similarity : {"vec", "cosine", "jaccard"}, default="vec"
        Session similarity (see above).
    weighting : {"div", "same", "linear", "quadratic", "log"} or float, \
            default="div"
        Position weighting of the query's items; a number ``lam`` is STAN's
        ``exp(-d / lam)`` for an item ``d`` steps before the last
        (``lambda_spw``), and makes ``"cosine"`` the cosine of the query's
        weight vector (norm ``sqrt(sum w_i^2)``).
    weighting_score : {"div", "same", "linear", "quadratic", "log"} or \
            float, default="div"
        Decay of a neighbour's contribution by the position of its most
        recent shared item; a number ``lam`` is VSTAN's
        ``exp(-(step - 1) / lam)`` (``lambda_ipw``).
    idf_weighting : bool or float, default=False
        Weight of the items' idf in the scores (``True`` is 1, ``False`` 0).
    neighbor_values : {"binary", "confidence"}, default="binary"
        Value of an item in a neighbour session.
    history_weight : float, default=0.0
        A logged-in user's history as extra context: the items of the row
        key's training sessions that are not in the query join it, each with
        position weight ``history_weight``, counting as older than every
        item of the session (step ``n + 1``). 0 leaves history out.
    recency_decay : float or None, default=None
        STAN's neighbour recency (``lambda_snh``, in days): a neighbour's
        similarity is multiplied by ``exp(-gap / recency_decay)``, ``gap``
        the days from its last event to the query's (0 if it is later);
        ``None`` turns it off.
    neighbor_position_decay : float or None, default=None
        STAN's item position inside a neighbour (``lambda_inh``): item ``j``
        of neighbour ``b`` weighs ``exp(-|pos_b(j) - pos_b(i*)| / lam)``,
        ``pos_b`` the recency rank of ``b``'s items and ``i*`` the most recent
        item of ``b`` the query holds; ``None`` turns it off.
    max_sessions : int or None, default=None
        Keep only the ``max_sessions`` most recent training sessions as
        neighbours (bounded memory; popularity still counts every session);
        ``None`` keeps all.
    k : int, default=5
        Items per answer.
    filter_already_liked_items : bool, default=False
        Leave out the query's own items (and its history items when
        ``history_weight > 0``).
    filter_items : array-like or None, default=None
        Item ids never to recommend.
    items : array-like or None, default=None
        Only recommend these item ids.
    fallback : PopularityRecommender or None, default=None
        Model for rows with nothing to go on; ``None`` means
        ``PopularityRecommender()``. Cloned and fitted in :meth:`fit`.

    Attributes
    ----------
    session_items_ : scipy.sparse.csr_matrix of shape (n_sessions, n_items)
        Training sessions, most recent last, with their neighbour values.
    session_ids_ : polars.Series or None
        Id of each row of ``session_items_``.
    session_keys_ : polars.Series or None
        User key of each row of ``session_items_``.
    session_times_ : ndarray of float64 or None
        Last event time (seconds) of each row of ``session_items_``.
    session_recency_ : scipy.sparse.csr_matrix or None
        Recency rank of each item in its training session (1: the last),
        kept only with ``neighbor_position_decay``.
    params_ : dict
        The scoring parameters of the fit (``n_neighbors``, ``sample_size``,
        ``similarity``, ``weighting``, ``weighting_score``, ``idf_weighting``,
        ``history_weight``, ``recency_decay``, ``neighbor_position_decay``):
        what :meth:`predict` uses, so that
        ``set_params`` after fit changes nothing until the next fit.
    idf_ : ndarray of shape (n_items,)
        ``log(n_sessions / sessions with the item)`` (0 for unseen items).
    item_ids_ : polars.Series or None
        Item id of every column.
    fallback_ : PopularityRecommender
        The fitted fallback.
    n_features_in_ : int
        Number of items.

    See Also
    --------
    ImplicitALSRecommender : Matrix factorisation with fold-in.
    PopularityRecommender : Baseline and fallback.

    References
    ----------
    .. [1] Jannach, D., & Ludewig, M. (2017). When recurrent neural networks
       meet the neighborhood for session-based recommendation. RecSys 2017.
    .. [2] Ludewig, M., & Jannach, D. (2018). Evaluation of session-based
       recommendation algorithms. User Modeling and User-Adapted
       Interaction 28(4-5), 331-390.
    .. [3] Garg, D., Gupta, P., Malhotra, P., Vig, L., & Shroff, G. (2019).
       Sequence and time aware neighborhood for session-based
       recommendations: STAN. SIGIR 2019.
    .. [4] Ludewig, M., Latifi, S., Mauro, N., & Jannach, D. (2021).
       Empirical analysis of session-based recommendation algorithms.
       User Modeling and User-Adapted Interaction 31, 149-181.

    Examples
    --------
    >>> import numpy as np
    >>> from skals import SessionKNNRecommender
    >>> X = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]])
    >>> model = SessionKNNRecommender(k=2).fit(X)
    >>> model.predict(np.array([[0, 0, 0, 1]]))
    array([[2, 3]])
    """

    #: It reads the order of events (recency, session times): a pipeline built
    #: by :func:`skals.schema.make_recommender_pipeline` gives the encoder
    #: the schema's time column.
    _requires_order = True

    _parameter_constraints: dict = {
        **BaseRecommender._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "sample_size": [Interval(Integral, 1, None, closed="left"), None],
        "similarity": [StrOptions({"vec", "cosine", "jaccard"})],
        "weighting": [
            StrOptions(set(WEIGHTINGS)),
            Interval(Real, 0, None, closed="neither"),
        ],
        "weighting_score": [
            StrOptions(set(WEIGHTINGS)),
            Interval(Real, 0, None, closed="neither"),
        ],
        "recency_decay": [Interval(Real, 0, None, closed="neither"), None],
        "neighbor_position_decay": [Interval(Real, 0, None, closed="neither"), None],
        "max_sessions": [Interval(Integral, 1, None, closed="left"), None],
        "idf_weighting": ["boolean", Interval(Real, 0, None, closed="left")],
        "neighbor_values": [StrOptions({"binary", "confidence"})],
        "history_weight": [Interval(Real, 0, None, closed="left")],
        "fallback": [PopularityRecommender, None],
    }

    def __init__(
        self,
        n_neighbors=100,
        sample_size=1000,
        similarity="vec",
        weighting="div",
        weighting_score="div",
        idf_weighting=False,
        *,
        neighbor_values="binary",
        history_weight=0.0,
        recency_decay=None,
        neighbor_position_decay=None,
        max_sessions=None,
        k=5,
        filter_already_liked_items=False,
        filter_items=None,
        items=None,
        fallback=None,
    ):
        self.n_neighbors = n_neighbors
        self.sample_size = sample_size
        self.similarity = similarity
        self.weighting = weighting
        self.weighting_score = weighting_score
        self.idf_weighting = idf_weighting
        self.neighbor_values = neighbor_values
        self.history_weight = history_weight
        self.recency_decay = recency_decay
        self.neighbor_position_decay = neighbor_position_decay
        self.max_sessions = max_sessions
        self.k = k
        self.filter_already_liked_items = filter_already_liked_items
        self.filter_items = filter_items
        self.items = items
        self.fallback = fallback

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Index the training sessions.

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix} of shape \
                (n_sessions, n_items)
            Training sessions (non-negative values). An InteractionMatrix
            needs ``row_times`` (``ConfidenceEncoder(time_col=...)``) unless
            ``sample_size=None``.
        y : None
            Ignored.

        Returns
        -------
        self : SessionKNNRecommender
            Fitted recommender.
        """
        check_not_event_log(self, X, "fit")
        im = X if isinstance(X, InteractionMatrix) else None
        # predict reads the parameters of the fit, not later set_params
        self.params_ = {name: getattr(self, name) for name in _SCORING}
        matrix = self._check_fit_matrix(im.matrix if im is not None else X)
        n_rows = matrix.shape[0]
        if im is not None and im.row_times is None and self.sample_size is not None:
            raise ValueError(
                f"{type(self).__name__}: sample_size={self.sample_size} samples "
                "the most recent sessions, but the InteractionMatrix has no "
                "row_times; encode with ConfidenceEncoder(grain='session', "
                "time_col='timestamp_local') or set sample_size=None."
            )
        self._check_order_params(im, "fit", times=im is None or im.row_times is None)
        if im is not None and im.row_times is not None:
            order = np.lexsort((np.arange(n_rows), im.row_times))
        else:
            order = np.arange(n_rows)
        if self.max_sessions is not None:
            order = order[-self.max_sessions :]  # the most recent sessions
        n_rows = order.size
        sessions = sp.csr_matrix(matrix[order], dtype=np.float64)
        sessions.sort_indices()
        if self.neighbor_values == "binary":
            sessions.data[:] = 1.0
        self.session_items_ = sessions
        self.session_times_ = (
            None
            if im is None or im.row_times is None
            else np.asarray(im.row_times, dtype=np.float64)[order]
        )
        self.session_recency_ = None
        if self.neighbor_position_decay is not None:
            rec = sp.csr_matrix(im.recency[order], dtype=np.float64)
            rec.sort_indices()
            # recency ranks of each neighbour's distinct items (1: its last)
            rec.data = _dense_rank_in_rows(rec).astype(np.float64)
            self.session_recency_ = rec
        n_with = np.bincount(sessions.indices, minlength=matrix.shape[1])
        with np.errstate(divide="ignore"):
            idf = np.log(n_rows / n_with)
        self.idf_ = np.where(n_with > 0, idf, 0.0)
        # items x sessions, each item's sessions oldest first; with sampling
        # only the sample_size + 1 most recent (+ 1: a query that is itself
        # a training session leaves itself out)
        index = sp.csr_matrix(sessions.T)
        index.sort_indices()
        if self.sample_size is not None:
            from_end = np.repeat(index.indptr[1:], np.diff(index.indptr))
            from_end -= np.arange(index.nnz)
            index.data[:] = from_end <= self.sample_size + 1
            index.eliminate_zeros()
        self.index_ = sp.csr_matrix(
            (np.ones(index.nnz, dtype=np.complex128), index.indices, index.indptr),
            shape=index.shape,
        )
        if im is not None:
            self.session_ids_ = im.row_ids.gather(order)
            self.session_keys_ = im.row_keys.gather(order)
            self.id_name_ = im.id_name
            self.item_ids_ = im.item_ids
            self.key_name_ = im.row_keys.name
            self.item_name_ = im.item_name
            # popularity reads the item statistics; a matrix at key grain
            # spares it summing the sessions per key
            pop_input = dataclasses.replace(
                im, row_keys=im.row_ids.rename(im.id_name), recency=None
            )
        else:
            self.session_ids_ = self.session_keys_ = self.item_ids_ = None
            self.id_name_ = None
            self.key_name_ = "user"
            self.item_name_ = "item"
            pop_input = matrix
        self._fit_fallback(pop_input)
        return self

    def _check_order_params(self, im, where, *, times):
        """Clear errors for STAN's decays without the times/order they need."""
        need = []
        if self.params_["recency_decay"] is not None and times:
            need.append(f"recency_decay={self.params_['recency_decay']} (row_times)")
        if (
            where == "fit"
            and self.params_["neighbor_position_decay"] is not None
            and (im is None or im.recency is None)
        ):
            need.append(
                "neighbor_position_decay="
                f"{self.params_['neighbor_position_decay']} (recency)"
            )
        if need:
            raise ValueError(
                f"{type(self).__name__}.{where}: {' and '.join(need)} need the "
                "times of the events, which the input has not; give an "
                "InteractionMatrix encoded with ConfidenceEncoder(grain='session', "
                "time_col='timestamp_local') or set them to None."
            )

    # -------------------------------------------------------------- queries
    def _query(self, matrix, row_keys, im, use_history):
        """Query items as CSR with data = position weight, plus steps.

        Returns ``(weights, steps, self_rows)``: two CSR matrices of the same
        pattern (position weight, and step = recency rank among the query's
        items, history items ``n + 1``) and, per row, the training session
        to leave out (``-1`` for none).
        """
        n = matrix.shape[0]
        q = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        q.sum_duplicates()  # canonical (a builder's matrix already is)
        recency = None if im is None else im.recency
        ordered = (
            self.params_["weighting"] != "same"
            or self.params_["weighting_score"] != "same"
        )
        if im is not None and recency is None and ordered:
            raise ValueError(
                f"{type(self).__name__}: weighting={self.params_['weighting']!r} "
                f"and weighting_score={self.params_['weighting_score']!r} need "
                "the order of the session's events, but the InteractionMatrix "
                "has no recency; "
                "encode with ConfidenceEncoder(grain='session', "
                "time_col='timestamp_local') or set both to 'same'."
            )
        if recency is not None and (
            recency.shape != q.shape
            or not np.array_equal(recency.indptr, q.indptr)
            or not np.array_equal(recency.indices, q.indices)
        ):
            raise ValueError(
                "The InteractionMatrix's recency does not have the sparsity "
                "pattern of its matrix; build both with InteractionMatrixBuilder."
            )
        if recency is not None:
            rec = sp.csr_matrix(
                (recency.data.astype(np.float64), q.indices, q.indptr), shape=q.shape
            )
        else:  # no order: every item counts as the last one
            rec = sp.csr_matrix((np.ones(q.nnz), q.indices, q.indptr), shape=q.shape)
        keep = q.data > 0
        rec.data[~keep] = 0.0
        rec.eliminate_zeros()
        step = rec.copy()
        step.data = _dense_rank_in_rows(rec).astype(np.float64)
        n_items = np.diff(step.indptr)
        n_of = np.repeat(n_items, n_items)
        weights = step.copy()
        weights.data = position_weight(self.params_["weighting"], step.data - 1.0, n_of)
        if use_history and row_keys is not None and self.session_keys_ is not None:
            hist = self._history(row_keys)
            hist = hist - hist.multiply(step > 0)  # only items not in the query
            hist.eliminate_zeros()
            if hist.nnz:
                hrow = _row_of(hist.indptr)
                hsteps = sp.csr_matrix(
                    ((n_items[hrow] + 1).astype(np.float64), hist.indices, hist.indptr),
                    shape=hist.shape,
                )
                hweights = sp.csr_matrix(
                    (
                        np.full(hist.nnz, self._history_weight()),
                        hist.indices,
                        hist.indptr,
                    ),
                    shape=hist.shape,
                )
                step = sp.csr_matrix(step + hsteps)
                step.sort_indices()
                # a weight may be 0 (linear): add it on the union's pattern
                weights = self._on_pattern(step, weights + hweights)
        self_rows = np.full(n, -1, dtype=np.int64)
        if (
            im is not None
            and self.session_ids_ is not None
            and im.id_name == self.id_name_
        ):
            self_rows = self._session_index(im.row_ids)
        return weights, step, self_rows

    @staticmethod
    def _on_pattern(pattern: sp.csr_matrix, values: sp.csr_matrix) -> sp.csr_matrix:
        """``values`` read on ``pattern``'s stored entries (0 where absent)."""
        pattern = pattern.copy()
        pattern.sort_indices()
        rows = _row_of(pattern.indptr)
        pattern.data = np.asarray(values[rows, pattern.indices]).ravel()
        return pattern

    def _history_weight(self) -> float:
        return (
            float(self.params_["history_weight"])
            if self.params_["history_weight"] > 0
            else 1.0
        )

    def _session_index(self, ids: pl.Series) -> np.ndarray:
        """Training row (time order) of each id, ``-1`` if none."""
        frame = pl.DataFrame({"id": self.session_ids_}).with_row_index("pos")
        ids = _exact_ids(ids, self.session_ids_.dtype)
        found = pl.DataFrame({"id": ids}).join(
            frame, on="id", how="left", maintain_order="left"
        )
        return found["pos"].fill_null(-1).cast(pl.Int64).to_numpy()

    def _history(self, row_keys: pl.Series) -> sp.csr_matrix:
        """Binary matrix of each row key's training items."""
        row_keys = _exact_ids(row_keys, self.session_keys_.dtype)
        keys = pl.DataFrame({"key": row_keys}).with_row_index("q")
        train = pl.DataFrame({"key": self.session_keys_}).with_row_index("s")
        pairs = keys.join(train, on="key", how="inner")
        q = pairs["q"].to_numpy()
        s = pairs["s"].to_numpy()
        pick = sp.csr_matrix(
            (np.ones(q.size), (q, s)),
            shape=(len(row_keys), self.session_items_.shape[0]),
        )
        hist = (pick @ self.session_items_).tocsr()
        hist.data[:] = 1.0
        return hist

    # --------------------------------------------------------------- answer
    def _rank_context(self, matrix, row_keys, im, *, k, use_history=None, times=None):
        banned, allowed = self._filters()
        if use_history is None:
            use_history = self.params_["history_weight"] > 0
        weights, steps, self_rows = self._query(matrix, row_keys, im, use_history)
        if times is None and im is not None:
            times = im.row_times
        self._check_order_params(im, "predict", times=times is None)
        scores = self._scores(weights, steps, self_rows, times)
        codes = self.fallback_._segment_codes(
            None if im is None else im.row_segments, matrix.shape[0]
        )
        seen = steps if self.filter_already_liked_items else None

        def rank(rows, seen):
            return self._answer(
                scores[rows],
                None if seen is None else seen[rows],
                codes[rows],
                banned,
                allowed,
                k,
            )

        everything = np.arange(matrix.shape[0])
        ids, vals, counts = rank(everything, seen)
        return self._finish_answers(
            ids, vals, counts, filtered=seen is not None, rerank=lambda r: rank(r, None)
        )

    def _answer(self, scores, seen, codes, banned, allowed, k):
        n_items = self.n_features_in_
        out = np.zeros(n_items, dtype=bool)
        if banned is not None:
            out[banned] = True
        if allowed is not None:
            out[:] = True
            out[allowed] = False
        if out.any():
            scores = _drop_columns(scores, out)
        if seen is not None:
            scores = scores - scores.multiply(seen > 0)
            scores = sp.csr_matrix(scores)
            scores.eliminate_zeros()
        ids, vals, counts = _sparse_topk(scores, k)
        short = np.flatnonzero(counts < k)
        if short.size:
            taken = sp.csr_matrix(
                (
                    np.ones(int(counts[short].sum())),
                    ids[short][ids[short] >= 0],
                    np.concatenate([[0], np.cumsum(counts[short])]),
                ),
                shape=(short.size, n_items),
            )
            if seen is not None:
                taken = taken + (seen[short] > 0)
            taken = sp.csr_matrix(taken)
            taken.sum_duplicates()
            fill_ids, fill_vals, fill_counts = self.fallback_._rank_rows(
                codes[short], taken, banned, allowed, k
            )
            cold = counts[short] == 0
            c = counts[short]
            col = np.arange(k)[None, :]
            src = col - c[:, None]
            valid = (src >= 0) & (src < fill_counts[:, None])
            src_safe = np.clip(src, 0, k - 1)
            fid = np.take_along_axis(fill_ids, src_safe, axis=1)
            fval = np.where(
                cold[:, None], np.take_along_axis(fill_vals, src_safe, axis=1), 0.0
            )
            block_ids, block_vals = ids[short], vals[short]
            block_ids[valid] = fid[valid]
            block_vals[valid] = fval[valid]
            ids[short], vals[short] = block_ids, block_vals
            counts[short] = c + np.minimum(fill_counts, k - c)
        return ids, vals, counts.astype(np.int64)
