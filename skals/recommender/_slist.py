"""SLISTRecommender: session-aware linear item-item model (SLIST; EASE as a case)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn_compat.base import _fit_context

from .._sklearn import Interval
from ._base import BaseRecommender
from ._knn import _dense_rank_in_rows
from ._popularity import PopularityRecommender
from ._rules import _ItemItemSessionModel, repeated_events, sequences

#: Bound on the dense (query rows x kept items) scores computed at once.
_CHUNK_SCORES = 1 << 24

#: Seconds per day (``time_decay`` is in days).
_DAY = 86400.0


def split_matrices(ranks: sp.csr_matrix, position_decay: float):
    """SLIT's past (``S``) and future (``T``) matrices of the sessions.

    Every session of ``n`` items (in the order of their last event, ``p = 1``
    the oldest) gives ``n - 1`` rows, one per split ``t = 1..n-1``: ``S``
    holds the items at ``p <= t`` with weight ``exp(-(t - p) / delta)`` and
    ``T`` those at ``p > t`` with weight ``exp(-(p - t) / delta)``, where
    ``delta`` is ``position_decay`` (Choi et al., 2021, section 3.3).
    Returns ``(S, T, session)``, ``session`` the training row of each split.
    """
    rows, items = sequences(ranks)
    n_of = np.diff(ranks.indptr)
    start = np.concatenate([[0], np.cumsum(n_of)])[:-1]
    pos = np.arange(rows.size) - start[rows] + 1  # 1-based position
    n = n_of[rows]
    n_splits = np.maximum(n_of - 1, 0)
    offset = np.concatenate([[0], np.cumsum(n_splits)])
    total = int(offset[-1])

    def expand(count, first_t):
        """(entry, split t) for ``count`` consecutive splits from first_t."""
        entry = np.repeat(np.arange(rows.size), count)
        within = np.arange(entry.size) - np.repeat(np.cumsum(count) - count, count)
        return entry, first_t[entry] + within

    # S: the entry at p is in the past of the splits t = p..n-1
    e_s, t_s = expand(np.maximum(n - pos, 0), pos)
    # T: the entry at p is in the future of the splits t = 1..p-1
    e_t, t_t = expand(pos - 1, np.ones(rows.size, dtype=np.int64))
    shape = (total, ranks.shape[1])
    S = sp.csr_matrix(
        (
            np.exp(-(t_s - pos[e_s]) / position_decay),
            (offset[rows[e_s]] + t_s - 1, items[e_s]),
        ),
        shape=shape,
    )
    T = sp.csr_matrix(
        (
            np.exp(-(pos[e_t] - t_t) / position_decay),
            (offset[rows[e_t]] + t_t - 1, items[e_t]),
        ),
        shape=shape,
    )
    session = np.repeat(np.arange(ranks.shape[0]), n_splits)
    return S, T, session


def slist_weights(X, S, T, w_x, w_s, alpha, l2):
    """The closed form of SLIST: the items x items weight matrix ``B``.

    Minimises ``alpha ||W_x^(1/2) (X - X B)||^2 + (1 - alpha)
    ||W_s^(1/2) (T - S B)||^2 + l2 ||B||^2`` subject to ``diag(B) = 0``.
    Setting the gradient to zero, with ``G = alpha X'W_xX + (1 - alpha)
    S'W_sS + l2 I`` and ``P = G^-1``, the unconstrained solution is
    ``B0 = P (alpha X'W_xX + (1 - alpha) S'W_sT) = I - l2 P - (1 - alpha)
    P S'W_s(S - T)`` (the paper's form; the last product is dense times
    sparse), and the constraint's Lagrange multipliers give ``B = B0 - P
    diagMat(diag(B0) / diag(P))``. ``X``, ``S`` and ``T`` are sparse;
    ``w_x`` and ``w_s`` are row weights.
    """
    m = X.shape[1]
    G = alpha * (X.T @ sp.diags(w_x) @ X).toarray()
    D = None
    if alpha < 1.0 and S.shape[0]:
        Sw = sp.csr_matrix(sp.diags(w_s) @ S)
        G += (1.0 - alpha) * (Sw.T @ S).toarray()
        D = sp.csr_matrix(Sw.T @ (S - T))
        D.eliminate_zeros()
    G[np.diag_indices(m)] += l2
    # P = G^-1 by Cholesky, in place (G is symmetric positive definite, so
    # its transpose, which is Fortran-ordered, is G itself)
    c, info = scipy.linalg.lapack.dpotrf(G.T, lower=False, overwrite_a=True)
    if info:
        raise np.linalg.LinAlgError(f"Cholesky factorisation failed ({info}).")
    P, info = scipy.linalg.lapack.dpotri(c, lower=False, overwrite_c=True)
    if info:
        raise np.linalg.LinAlgError(f"Inversion failed ({info}).")
    del G, c
    # dpotri fills the upper triangle: mirror it, by blocks (no m x m copy)
    for i in range(0, m, 1024):
        j = min(i + 1024, m)
        P[i:j, :i] = P[:i, i:j].T
        block = P[i:j, i:j]
        P[i:j, i:j] = np.triu(block) + np.triu(block, 1).T
    B = -l2 * P
    B[np.diag_indices(m)] += 1.0
    if D is not None:
        B -= (1.0 - alpha) * np.asarray((D.T @ P).T)  # P D, P symmetric
    mu = np.diag(B) / np.diag(P)
    B -= P * mu[None, :]
    B[np.diag_indices(m)] = 0.0
    return B


class SLISTRecommender(_ItemItemSessionModel):
    """Session-aware linear item-item model (SLIST), with EASE as a case.

    Choi et al. (2021) learn one items x items weight matrix ``B`` in closed
    form (a ridge regression) from two views of the training sessions:

    * **SLIS**, session consistency: every session as a binary row of
      ``X`` reconstructs itself, ``X ~ X B`` (EASE, Steck 2019, on
      sessions);
    * **SLIT**, sequential dependency: every split of a session into past
      and future, ``T ~ S B``, the past items weighted
      ``exp(-(t - p) / position_decay)`` by their distance to the split and
      the future ones likewise (see ``_slist.split_matrices``).

    ``B`` minimises ``alpha * SLIS + (1 - alpha) * SLIT + l2 ||B||^2`` with
    ``diag(B) = 0`` (an item does not explain itself; ``repeat_weight``
    then sets the diagonal from the training repeats); every row of both
    views is weighted by the session's timeliness
    ``exp(-(t_max - t_s) / time_decay)`` (days; ``t_s`` the session's last
    event, ``t_max`` the last of the training log). A query session scores
    ``x B`` with ``x_j = exp(-(r_j - 1) / inference_decay)``, ``r_j`` the
    recency rank of its item ``j`` (1 for the last).

    **EASE** is ``SLISTRecommender(alpha=1.0, time_decay=None,
    inference_decay=None, repeat_weight=0.0)``: one estimator, since both
    are the same model (a linear item x item map fitted by ridge
    regression) and ``alpha`` only moves weight between its two training
    views.

    **Scale.** The solve is dense in the ``max_items`` most frequent items
    (by sessions holding them; ties: the lower column): about
    ``2 * 8 * max_items**2`` bytes at fit (1.6 GB at the default 10,000)
    and ``4 * max_items**2`` kept (``coef_``, float32). The other items
    are neither inputs nor answers of the model; rows with no kept item get
    the ``fallback``, and short rows are filled with the most popular
    remaining items (scored 0). BENCHMARKS.md gives measured seconds.

    Parameters
    ----------
    alpha : float, default=0.2
        Weight of SLIS (session consistency) against SLIT (sequential
        dependency), in ``[0, 1]``. 0.2 was better than 0.5 and 1 on both
        YooChoose 100k and make_sessions (BENCHMARKS.md).
    l2 : float, default=10.0
        Ridge penalty ``lambda``.
    position_decay : float, default=1.0
        ``delta_pos`` of SLIT's position weights (in items).
    inference_decay : float or None, default=1.0
        ``delta_inf`` of the query weights (in items); ``None`` weighs every
        query item 1.
    time_decay : float or None, default=None
        ``delta_time`` of the session weights, in days; ``None`` weighs
        every training session 1.
    max_items : int, default=10000
        Items of the dense solve (the most frequent).
    repeat_weight : float, default=1.0
        skals' addition to the paper: after the solve, ``B[j, j]`` is set to
        ``repeat_weight`` times item ``j``'s repeat rate in training (its
        events beyond the first in a session, per session holding it; from
        the builder's ``item_stats``), so that a session's own items are
        recommended again as often as they were re-clicked. 0 keeps the
        paper's zero diagonal (so does a log without repeated events). On
        YooChoose 100k it lifts HR@20 from 0.48 to 0.67 (BENCHMARKS.md).
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
    coef_ : ndarray of shape (n_kept, n_kept), float32
        ``B`` over the kept items: ``coef_[a, b]`` is the weight of kept item
        ``a`` in the score of kept item ``b``.
    kept_items_ : ndarray of shape (n_kept,)
        Column index of every kept item.
    ordered_ : bool
        Whether the fit read the sessions' order (False for a plain matrix:
        then ``alpha`` acts as 1, as a plain matrix has no splits).
    params_ : dict
        ``inference_decay`` of the fit, what :meth:`predict` uses.
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
    SequentialRulesRecommender : Sequential rules.
    SessionKNNRecommender : Session-based nearest neighbours.

    References
    ----------
    .. [1] Choi, M., Kim, J., Lee, J., Shim, H., & Lee, J. (2021).
       Session-aware linear item-item models for session-based
       recommendation. The Web Conference (WWW) 2021.
    .. [2] Steck, H. (2019). Embarrassingly shallow autoencoders for sparse
       data. The Web Conference (WWW) 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from skals import SLISTRecommender
    >>> X = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]])
    >>> model = SLISTRecommender(alpha=1.0, l2=1.0, k=2).fit(X)
    >>> model.predict(np.array([[1, 0, 0, 0]]))
    array([[1, 3]])
    """

    _source = "slist"

    _parameter_constraints: dict = {
        **BaseRecommender._parameter_constraints,
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "l2": [Interval(Real, 0, None, closed="neither")],
        "position_decay": [Interval(Real, 0, None, closed="neither")],
        "inference_decay": [Interval(Real, 0, None, closed="neither"), None],
        "time_decay": [Interval(Real, 0, None, closed="neither"), None],
        "max_items": [Interval(Integral, 1, None, closed="left")],
        "repeat_weight": [Interval(Real, 0, None, closed="left")],
        "fallback": [PopularityRecommender, None],
    }

    def __init__(
        self,
        alpha=0.2,
        l2=10.0,
        position_decay=1.0,
        inference_decay=1.0,
        time_decay=None,
        max_items=10000,
        repeat_weight=1.0,
        *,
        k=5,
        filter_already_liked_items=False,
        filter_items=None,
        items=None,
        fallback=None,
    ):
        self.alpha = alpha
        self.l2 = l2
        self.position_decay = position_decay
        self.inference_decay = inference_decay
        self.time_decay = time_decay
        self.max_items = max_items
        self.repeat_weight = repeat_weight
        self.k = k
        self.filter_already_liked_items = filter_already_liked_items
        self.filter_items = filter_items
        self.items = items
        self.fallback = fallback

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Solve for the item x item weights.

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix} of shape \
                (n_sessions, n_items)
            Training sessions (non-negative values); an InteractionMatrix
            needs ``recency`` (``ConfidenceEncoder(time_col=...)``), and
            ``row_times`` when ``time_decay`` is set.
        y : None
            Ignored.

        Returns
        -------
        self : SLISTRecommender
            Fitted recommender.
        """
        return self._fit_sessions(X)

    def _fit_model(self, ranks, matrix, im):
        n_items = ranks.shape[1]
        self.params_ = {"inference_decay": self.inference_decay}
        n_with = np.bincount(ranks.indices, minlength=n_items)
        order = np.lexsort((np.arange(n_items), -n_with))
        kept = np.sort(order[: min(int(self.max_items), n_items)])
        self.kept_items_ = kept.astype(np.int64)
        col = np.full(n_items, -1, dtype=np.int64)
        col[kept] = np.arange(kept.size)
        self._kept_index = col
        # the sessions over the kept items, with ranks among them
        sub = sp.csr_matrix(ranks[:, kept])
        sub.sort_indices()
        if im is not None and sub.nnz:
            sub.data = _dense_rank_in_rows(sub).astype(np.float64)
        n_s = sub.shape[0]
        if self.time_decay is not None:
            if im is None or im.row_times is None:
                raise ValueError(
                    f"{type(self).__name__}: time_decay={self.time_decay} weighs "
                    "sessions by their last event time, but the input has no "
                    "row_times; encode with ConfidenceEncoder(grain='session', "
                    "time_col='timestamp_local') or set time_decay=None."
                )
            t = np.asarray(im.row_times, dtype=np.float64)
            w_x = np.exp(-(t.max() - t) / (float(self.time_decay) * _DAY))
        else:
            w_x = np.ones(n_s)
        X = sp.csr_matrix((np.ones(sub.nnz), sub.indices, sub.indptr), shape=sub.shape)
        alpha = float(self.alpha)
        if im is None:  # no order, no splits: SLIS alone
            S = T = sp.csr_matrix((0, kept.size))
            w_s = np.ones(0)
            alpha = 1.0
        else:
            S, T, session = split_matrices(sub, float(self.position_decay))
            w_s = w_x[session]
        B = slist_weights(X, S, T, w_x, w_s, alpha, float(self.l2))
        if self.repeat_weight and im is not None:
            # the zero diagonal cannot predict a re-click of a session's
            # item; its repeat rate in training does
            rate = repeated_events(im, n_items) / np.maximum(n_with, 1)
            B[np.diag_indices(B.shape[0])] = float(self.repeat_weight) * rate[kept]
        self.coef_ = B.astype(np.float32)

    def _query_weights(self, ranks):
        Q = ranks.copy()
        decay = self.params_["inference_decay"]
        if decay is None:
            Q.data = np.ones(Q.nnz)
        else:
            Q.data = np.exp(-(Q.data - 1.0) / float(decay))
        return Q

    def _ranked(self, Q, keep, k, seen=None):
        kept = self.kept_items_
        n, m = Q.shape[0], kept.size
        k_own = min(k, m)
        ids = np.full((n, k), -1, dtype=np.int64)
        vals = np.full((n, k), -np.inf, dtype=np.float32)
        counts = np.zeros(n, dtype=np.int64)
        Qk = sp.csr_matrix(Q[:, kept], dtype=np.float32)
        Qk.eliminate_zeros()
        has = np.diff(Qk.indptr) > 0
        out = ~keep[kept]
        step = max(1, _CHUNK_SCORES // max(m, 1))
        for a in range(0, n, step):
            b = min(a + step, n)
            rows = np.flatnonzero(has[a:b]) + a
            if rows.size == 0:
                continue
            scores = np.asarray(Qk[rows] @ self.coef_)
            scores[:, out] = -np.inf
            if seen is not None:
                s = sp.csr_matrix(seen[rows][:, kept])
                r, c = s.nonzero()
                scores[r, c] = -np.inf
            top = np.argpartition(-scores, k_own - 1, axis=1)[:, :k_own]
            top_sc = np.take_along_axis(scores, top, axis=1)
            order = np.lexsort((top, -top_sc), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            top_sc = np.take_along_axis(top_sc, order, axis=1)
            ok = np.isfinite(top_sc)
            ids[rows, :k_own] = np.where(ok, kept[top], -1)
            vals[rows, :k_own] = np.where(ok, top_sc, -np.inf)
            counts[rows] = ok.sum(axis=1)
        return ids, vals, counts

    def _item_rows(self, positions):
        kept = self.kept_items_
        idx = self._kept_index[positions]
        dense = np.zeros((positions.size, self.n_features_in_), dtype=np.float32)
        known = idx >= 0
        dense[np.ix_(np.flatnonzero(known), kept)] = self.coef_[idx[known]]
        return sp.csr_matrix(dense)
