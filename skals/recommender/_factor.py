"""The factor-model base that every ALS engine shares."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from .._frame import index_of
from .._warnings import warn
from ..preprocessing._builder import InteractionMatrix
from . import _calls
from ._base import BaseRecommender
from ._popularity import FallbackMixin, PopularityRecommender
from ._topk import topk

__all__ = ["BaseFactorRecommender"]


#: Parameters of the fallback that the factor model sets itself: rows get the
#: fallback with the factor model's ``k`` and filters, so values set on the
#: fallback would be ignored; fit rejects them.
def _check_finite_factors(users: np.ndarray, items: np.ndarray) -> None:
    if not (np.isfinite(users).all() and np.isfinite(items).all()):
        raise ValueError(
            "ALS produced non-finite factors (NaN or inf); the confidences "
            "may be too large for this regularization. Increase "
            "regularization or scale the confidences down."
        )


class BaseFactorRecommender(FallbackMixin, BaseRecommender):
    """What the ALS engines share: factors, fold-in, history, fallback.

    A subclass (one per training engine) implements two hooks:

    * ``_train(matrix, X) -> (user_factors, item_factors)``: the training
      step on the validated key-grain CSR ``matrix`` (``X`` is the original
      input, for engines that read it elsewhere, e.g. from Spark). It may set
      fitted attributes its fold-in needs.
    * ``_fold_in(rows) -> user_factors``: the fold-in rule, factors of new
      rows (CSR over the fitted items) against the fixed item factors,
      reading fitted attributes only.

    Everything else is here: the fitted attributes (``user_factors_``,
    ``item_factors_``, ``user_items_``, ``fallback_``, ids), merging a known
    key's history, ranking with the filters, the fallback for rows with
    nothing to go on, ``recommend_keys``, ``score`` and the answers frame.
    """

    _parameter_constraints: dict = {
        **BaseRecommender._parameter_constraints,
        "merge_history": ["boolean"],
        "fold_in": ["boolean"],
        "fallback": [PopularityRecommender, None],
    }

    #: Read at predict time (validated there too).
    _predict_params = (
        *BaseRecommender._predict_params,
        "merge_history",
        "fold_in",
    )

    #: Threads for scoring (``num_threads`` where an engine has it).
    _scoring_threads = 0

    def _fit(self, X):
        fallback = self._check_fallback()  # before training: fail fast
        matrix, _ = self._fit_input(X)
        users, items = self._train(matrix, X)
        _check_finite_factors(users, items)
        self.user_factors_ = users
        self.item_factors_ = items
        self.user_items_ = matrix
        self.fallback_ = clone(fallback).fit(X)
        return self

    def _train(self, matrix, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fold_in(self, rows: sp.csr_matrix) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    # --------------------------------------------------------------- history
    def _history_rows(self, hist: np.ndarray) -> sp.csr_matrix:
        """Training rows for ``hist`` indices; empty rows where ``hist < 0``."""
        known = hist >= 0
        rows = self.user_items_[np.where(known, hist, 0)]
        rows = sp.diags(known.astype(np.float32)) @ rows
        rows = sp.csr_matrix(rows)
        rows.eliminate_zeros()
        return rows

    def _history_index(self, row_keys) -> np.ndarray:
        if row_keys is None or self.user_ids_ is None:
            n = 0 if row_keys is None else len(row_keys)
            return np.full(n, -1, dtype=np.int64)
        return index_of(row_keys, self.user_ids_).fill_null(-1).to_numpy()

    def _rank_context(self, matrix, row_keys, im, *, k, use_history=None):
        """Rank items for rows of new context ``matrix`` (see class docs)."""
        banned, allowed = self._filters()
        threads = self._scoring_threads
        matrix = sp.csr_matrix(matrix)
        n = matrix.shape[0]
        use_history = self.merge_history if use_history is None else use_history
        hist = self._history_index(row_keys)
        if hist.size != n:
            hist = np.full(n, -1, dtype=np.int64)
        known = (hist >= 0) & use_history
        has_new = matrix.getnnz(axis=1) > 0
        if not self.fold_in:
            # the notebook's way: a known key's trained row, nothing else
            known, has_new = hist >= 0, np.zeros(n, dtype=bool)
        context = matrix.maximum(self._history_rows(hist)) if known.any() else matrix
        context = sp.csr_matrix(context, dtype=np.float32)
        trained = known & ~has_new
        als_rows = trained | has_new
        factors = np.zeros((n, self.item_factors_.shape[1]), dtype=np.float32)
        factors[trained] = self.user_factors_[hist[trained]]
        factors[has_new] = self._fold_in(context[has_new])
        exclude = context if self.filter_already_liked_items else None

        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        counts = np.zeros(n, dtype=np.int64)
        idx = np.flatnonzero(als_rows)
        if idx.size:
            ids[idx], scores[idx], counts[idx] = topk(
                factors[idx],
                self.item_factors_,
                k,
                exclude=None if exclude is None else exclude[idx],
                banned=banned,
                allowed=allowed,
                num_threads=threads,
            )
        cold = np.flatnonzero(~als_rows)
        if cold.size:
            segments = None
            if im is not None and im.row_segments is not None:
                segments = im.row_segments.gather(cold)
            codes = self.fallback_._segment_codes(segments, cold.size)
            ids[cold], scores[cold], counts[cold] = self.fallback_._rank_rows(
                codes,
                None if exclude is None else exclude[cold],
                banned,
                allowed,
                k,
                num_threads=threads,
            )
        return self._finish_answers(
            ids,
            scores,
            counts,
            filtered=exclude is not None,
            rerank=lambda rows: topk(
                factors[rows],
                self.item_factors_,
                k,
                banned=banned,
                allowed=allowed,
                num_threads=threads,
            ),
        )

    # --------------------------------------------------------------- public
    def _rank_keys(self, keys, k):
        empty = sp.csr_matrix((len(keys), self.n_features_in_), dtype=np.float32)
        return self._rank_context(empty, keys, None, k=k, use_history=True)

    def _similar_ranked(self, queries, k):
        return _calls.factor_similar(self, queries, k)

    def _answer_sources(self, matrix, row_keys, use_history=None, im=None):
        return _calls.als_sources(self, matrix, row_keys, use_history=use_history)

    def similar_items(self, item_ids, k=10):
        """Items most similar to each given item: cosine of the item factors.

        As implicit's ``similar_items``: the score of item ``j`` for item
        ``i`` is :math:`y_i^T y_j / (\\lVert y_i \\rVert \\lVert y_j
        \\rVert)` (a zero factor gets the norm ``1e-10``), and the ``k``
        highest are returned, best first. Unlike implicit, the item itself
        is left out.

        Parameters
        ----------
        item_ids : item id or array-like of item ids
            Ids as in the training data (column indices for a model fitted
            on a plain matrix). An unknown id raises ``ValueError``.
        k : int, default=10
            Similar items per item (clipped, with a warning, to
            ``n_items - 1``).

        Returns
        -------
        similar : polars or pandas DataFrame
            One row per given item, in order: the item id (column named as
            the item column, e.g. ``partnumber``), ``similar_items`` (list of
            ids, best first) and ``scores`` (list of cosines). pandas when
            the model was fitted on data that came from pandas.
            :func:`skals.to_long` makes it one row per pair.

        Examples
        --------
        >>> import numpy as np
        >>> import polars as pl
        >>> from skals import ImplicitALSRecommender
        >>> X = np.kron(np.eye(2), np.ones((3, 3)))
        >>> model = ImplicitALSRecommender(factors=2, random_state=0).fit(X)
        >>> model.item_factors_ = np.array(
        ...     [[1, 0], [3, 1], [0, 1], [-1, 0], [2, 0], [1, -2]], dtype=np.float32)
        >>> out = model.similar_items([0], k=3)
        >>> out["similar_items"].to_list(), out["scores"].list.eval(
        ...     pl.element().round(3)).to_list()
        ([[4, 1, 5]], [[1.0, 0.949, 0.447]])
        """
        return _calls.similar_items(self, item_ids, k=k)

    def score(self, X, y=None):
        """Mean top-k overlap ``|top-k ∩ truth| / k``.

        For an :class:`~skals.InteractionMatrix` of held-out events: the keys
        seen in fit are answered from their training history alone (the model
        sees nothing of ``X``), and the truth of a key is the items it has in
        ``X``. For a plain matrix: each row is folded in and compared with its
        own items.

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix}
            Held-out interactions.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean overlap in [0, 1]; 0.0 (with a warning) if no row can be
            scored.
        """
        check_is_fitted(self)
        k = self._check_predict_params()
        if isinstance(X, InteractionMatrix):
            self._check_items_match(X)
            hist = self._history_index(X.row_keys)
            rows = np.flatnonzero(hist >= 0)
            truth = sp.csr_matrix(X.matrix)[rows]
            empty = sp.csr_matrix(truth.shape, dtype=np.float32)
            ids, _, _ = self._rank_context(
                empty, X.row_keys.gather(rows), None, k=k, use_history=True
            )
        else:
            truth = self._check_predict_matrix(X)
            ids, _, _ = self._rank_context(truth, None, None, k=k)
            rows = np.arange(truth.shape[0])
        if rows.size == 0:
            warn("score: no held-out row was seen in fit; returning 0.0.", UserWarning)
            return 0.0
        r = np.repeat(np.arange(rows.size), ids.shape[1])
        c = ids.ravel()
        valid = c >= 0
        hits = np.zeros(c.size, dtype=bool)
        hits[valid] = np.asarray(truth[r[valid], c[valid]]).ravel() > 0
        return float(hits.reshape(ids.shape).sum(axis=1).mean() / k)
