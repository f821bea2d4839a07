"""RepeatRecommender: the session's own items first ("reminders"), by recency."""

from __future__ import annotations

from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn_compat.base import _fit_context

from .._sklearn import Interval
from ._base import BaseRecommender
from ._calls import FALLBACK, REPEAT
from ._popularity import FallbackMixin, PopularityRecommender
from ._topk import row_of
from ._topk import sparse_topk as _sparse_topk


def sparse_topk(S: sp.csr_matrix, k: int):
    """Best ``k`` nonzero entries per row of ``S`` (ties: lower column first).

    :func:`skals.recommender._topk.sparse_topk` on ``S`` without its stored
    zeros, with float32 scores.
    """
    S = sp.csr_matrix(S, copy=True)
    S.eliminate_zeros()
    ids, scores, counts = _sparse_topk(S, k)
    return ids, scores.astype(np.float32), counts.astype(np.int64)


def fill_ranked(first, rest):
    """Append ``rest``'s ranked lists after ``first``'s, row by row.

    Both are ``(ids, scores, counts)`` with ``k`` columns; ``rest`` must not
    repeat an item of ``first`` (exclude them when ranking it).
    """
    ids1, sc1, n1 = first
    ids2, sc2, n2 = rest
    k = ids1.shape[1]
    j = np.arange(k)[None, :]
    from_first = j < n1[:, None]
    src = np.clip(j - n1[:, None], 0, k - 1)
    ids = np.where(from_first, ids1, np.take_along_axis(ids2, src, axis=1))
    scores = np.where(from_first, sc1, np.take_along_axis(sc2, src, axis=1))
    counts = np.minimum(n1 + n2, k)
    valid = j < counts[:, None]
    ids = np.where(valid, ids, -1)
    scores = np.where(valid, scores, -np.inf).astype(np.float32)
    return ids, scores, counts


def row_mask(S: sp.csr_matrix, keep_cols: np.ndarray) -> sp.csr_matrix:
    """``S`` with the entries of columns where ``keep_cols`` is false dropped.

    Only those: an entry stored with value 0 in a kept column stays.
    """
    S = sp.csr_matrix(S, copy=True)
    keep = keep_cols[S.indices]
    return S if keep.all() else keep_entries(S, keep)


def keep_entries(S: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """``S`` with only its stored entries where ``keep`` is True, in order.

    ``keep`` has one flag per stored entry (in storage order); zeros that
    are kept stay stored entries.
    """
    S = sp.csr_matrix(S)
    n_rows = S.shape[0]
    rows = row_of(S.indptr)[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))])
    return sp.csr_matrix((S.data[keep], S.indices[keep], indptr), shape=S.shape)


def eligible_columns(n_items, banned, allowed) -> np.ndarray:
    """Boolean mask of the columns that the filters let through."""
    keep = np.ones(n_items, dtype=bool)
    if allowed is not None:
        keep[:] = False
        keep[allowed] = True
    if banned is not None:
        keep[banned] = False
    return keep


class RepeatRecommender(FallbackMixin, BaseRecommender):
    """Recommend the row's own items again, most recent and most frequent first.

    The "reminders" of session-based recommendation: in e-commerce logs many
    cart adds are products already viewed in the same session. Each item the
    row (session) has interacted with scores

    .. math:: s_i = \\mathrm{recency\\_decay}^{\\,r_i - 1}
              + \\mathrm{count\\_weight} \\cdot c_i

    where :math:`r_i` is the item's recency in the row (1 for the most
    recently interacted distinct item, 2 for the one before, ...) and
    :math:`c_i` its confidence in the matrix (with the default
    :class:`~skals.ConfidenceEncoder`, ``1 + views + 10 * carts``: cart adds
    count more, through ``confidenceencoder__cart_weight``). Recency needs the
    order of events: it is read from the matrix's ``recency`` (an
    :class:`~skals.InteractionMatrix` built with
    ``ConfidenceEncoder(time_col=...)``); without it every item has
    :math:`r_i = 1` and the count alone orders them.

    The row's own items come first (answer score ``1 + s_i``); the rest of the
    list comes from the ``fallback`` (popularity, within the row's segment
    when available), with scores the fallback's divided by its best, so in
    ``[0, 1]``. A logged-in user's training history is not used: the model
    answers from the row's own events.

    Parameters
    ----------
    recency_decay : float, default=0.5
        Weight ratio between an item and the one interacted with just after
        it, in ``(0, 1]``. ``1`` ignores the order.
    count_weight : float, default=0.1
        Weight of the confidence. ``0`` orders by recency alone.
    k : int, default=5
        Items per answer.
    filter_already_liked_items : bool, default=False
        Leave out the row's own items (then only the fallback answers; kept
        for the common interface).
    filter_items : array-like or None, default=None
        Item ids never to recommend.
    items : array-like or None, default=None
        Only recommend these item ids.
    fallback : PopularityRecommender or None, default=None
        Model for the rest of the list; ``None`` means
        ``PopularityRecommender()``. Cloned and fitted in :meth:`fit`.

    Attributes
    ----------
    fallback_ : PopularityRecommender
        The fitted fallback.
    user_ids_ : polars.Series or None
        Training keys (when fitted on an InteractionMatrix).
    item_ids_ : polars.Series or None
        Item id of every column (when fitted on an InteractionMatrix).
    n_features_in_ : int
        Number of items.

    See Also
    --------
    BlendRecommender : Where this model is most useful.
    PopularityRecommender : The fallback.

    References
    ----------
    .. [1] Ludewig, M., Mauro, N., Latifi, S., & Jannach, D. (2021).
       Empirical analysis of session-based recommendation algorithms.
       User Modeling and User-Adapted Interaction, 31, 149-181.

    Examples
    --------
    >>> import numpy as np
    >>> from skals import RepeatRecommender
    >>> X = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]])
    >>> RepeatRecommender(k=3).fit(X).predict(np.array([[0, 0, 2, 5]]))
    array([[3, 2, 0]])
    """

    #: It reads the order of events (the matrix's recency): a pipeline built
    #: by :func:`skals.schema.make_recommender_pipeline` gives the encoder
    #: the schema's time column.
    _requires_order = True

    #: It keeps no training history: a key alone gets the fallback.
    _key_answer = "fallback"

    _parameter_constraints: dict = {
        **BaseRecommender._parameter_constraints,
        "recency_decay": [Interval(Real, 0, 1, closed="right")],
        "count_weight": [Interval(Real, 0, None, closed="left")],
        "fallback": [PopularityRecommender, None],
    }

    def __init__(
        self,
        recency_decay=0.5,
        count_weight=0.1,
        *,
        k=5,
        filter_already_liked_items=False,
        filter_items=None,
        items=None,
        fallback=None,
    ):
        self.recency_decay = recency_decay
        self.count_weight = count_weight
        self.k = k
        self.filter_already_liked_items = filter_already_liked_items
        self.filter_items = filter_items
        self.items = items
        self.fallback = fallback

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the fallback (the model itself has nothing to learn).

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix} of shape \
                (n_users, n_items)
            Training interactions (non-negative).
        y : None
            Ignored.

        Returns
        -------
        self : RepeatRecommender
            Fitted recommender.
        """
        self._fit_input(X)
        self._fit_fallback(X)
        return self

    def _own_scores(self, matrix, im) -> sp.csr_matrix:
        """``s_i`` of the class docs on the sparsity of ``matrix``."""
        S = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        S.sort_indices()
        S.eliminate_zeros()
        recency = getattr(im, "recency", None) if im is not None else None
        if recency is None:
            decay = np.ones(S.nnz)
        else:
            rec = sp.csr_matrix(recency, dtype=np.float64)
            rec.sort_indices()
            same = np.array_equal(rec.indptr, S.indptr) and np.array_equal(
                rec.indices, S.indices
            )
            # same sparsity by construction; align entry by entry otherwise
            if same:
                rec = rec.data
            else:
                rec = np.asarray(rec[S.nonzero()]).ravel() if S.nnz else np.zeros(0)
            decay = float(self.recency_decay) ** (np.maximum(rec, 1.0) - 1.0)
        S.data = decay + float(self.count_weight) * S.data
        return S

    def _blend_candidates(self, matrix, row_keys, im, *, k):
        # the row's own items lead the answer; the popularity fill after
        # them is only normalised against (BENCHMARKS.md, "The repeat part's
        # fill in a blend")
        banned, allowed = self._filters()
        own = self._own_scores(matrix, im)
        own = row_mask(own, eligible_columns(self.n_features_in_, banned, allowed))
        n_own = np.diff(own.indptr) if not self.filter_already_liked_items else None
        ids, scores, _ = self._rank_context(matrix, row_keys, im, k=k)
        if n_own is None:
            n_own = np.zeros(ids.shape[0], dtype=np.int64)
        return ids, scores, np.minimum(n_own, k)

    def _rank_context(self, matrix, row_keys, im, *, k):
        banned, allowed = self._filters()
        n_items = self.n_features_in_
        own = self._own_scores(matrix, im)
        own = row_mask(own, eligible_columns(n_items, banned, allowed))
        if self.filter_already_liked_items:
            own = sp.csr_matrix(own.shape)
        ids1, sc1, n1 = sparse_topk(own, k)
        sc1 = np.where(ids1 >= 0, 1.0 + sc1, -np.inf).astype(np.float32)
        segments = im.row_segments if im is not None else None
        codes = self.fallback_._segment_codes(segments, matrix.shape[0])
        exclude = sp.csr_matrix(matrix, dtype=np.float32)
        exclude.eliminate_zeros()
        rest = self.fallback_._rank_rows(codes, exclude, banned, allowed, k)
        ids2, sc2, n2 = rest
        best = np.where(np.isfinite(sc2[:, :1]) & (sc2[:, :1] > 0), sc2[:, :1], 1.0)
        sc2 = np.where(ids2 >= 0, sc2 / best, -np.inf).astype(np.float32)
        ids, scores, counts = fill_ranked((ids1, sc1, n1), (ids2, sc2, n2))
        return self._finish_answers(
            ids, scores, counts, filtered=False, rerank=lambda rows: None
        )

    def _answer_sources(self, matrix, row_keys, use_history=None, im=None):
        """``"repeat"`` where the row's own eligible items lead, else fallback."""
        banned, allowed = self._filters()
        own = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        own.eliminate_zeros()
        own = row_mask(own, eligible_columns(self.n_features_in_, banned, allowed))
        has_own = np.diff(own.indptr) > 0
        if self.filter_already_liked_items:
            has_own[:] = False
        return np.where(has_own, REPEAT, FALLBACK).astype(object)
