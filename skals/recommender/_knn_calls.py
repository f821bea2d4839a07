"""Session-kNN's common calls: key answers, ``source``, ``similar_items``, ``explain``.

A mixin of :class:`~skals.SessionKNNRecommender`, kept beside the scoring in
``_knn.py`` so that each module stays readable; it reads the fitted state
that ``SessionKNNRecommender.fit`` sets and calls its scoring internals.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from .._frame import comparable_ids
from ..preprocessing._builder import InteractionMatrix
from ._calls import (
    CONTRIBUTION,
    FALLBACK,
    NEIGHBORS,
    _item_series,
    cooccurrence_similar,
    item_positions,
)
from ._knn_weights import score_decay
from ._topk import row_of as _row_of


def _exact_ids(values: pl.Series, dtype) -> pl.Series:
    """``values`` as ``dtype`` for an exact match; null where none can match.

    ``"010"`` is not id 10 (:func:`skals._frame.comparable_ids`).
    """
    found = comparable_ids(values, dtype)
    if found is None:
        return pl.Series(values.name, [None] * len(values), dtype=dtype)
    return found


class SessionKNNCalls:
    """The contract's calls of SessionKNNRecommender (not public)."""

    # ------------------------------------------ the common calls (contract)
    def _training_keys(self):
        return self.session_keys_

    def _known_keys(self, keys: pl.Series) -> np.ndarray:
        if self.session_keys_ is None or not len(keys):
            return np.zeros(len(keys), dtype=bool)
        # keys match exactly ("010" is not key 10): other types are unknown
        keys = _exact_ids(keys, self.session_keys_.dtype)
        return keys.is_in(self.session_keys_.implode()).fill_null(False).to_numpy()

    def _session_keys(self, session_ids: pl.Series) -> pl.Series | None:
        if self.session_ids_ is None:
            return None
        pos = self._session_index(session_ids)
        keys = self.session_keys_.gather(pl.Series(np.maximum(pos, 0)))
        return pl.select(pl.when(pl.lit(pl.Series(pos >= 0))).then(keys)).to_series()

    def _rank_keys(self, keys, k):
        """A key's query: the union of its training sessions' items."""
        empty = sp.csr_matrix((len(keys), self.n_features_in_), dtype=np.float32)
        # a key's query counts as made at the latest training session's time
        now = None
        if self.session_times_ is not None and self.session_times_.size:
            now = np.full(len(keys), self.session_times_.max())
        return self._rank_context(empty, keys, None, k=k, use_history=True, times=now)

    def _self_rows(self, im) -> np.ndarray | None:
        """The training session of each query row (itself), ``-1`` if none."""
        if im is None or self.session_ids_ is None or im.id_name != self.id_name_:
            return None
        return self._session_index(im.row_ids)

    def _answer_sources(self, matrix, row_keys, use_history=None, im=None):
        """``"neighbors"`` where another training session shares an item.

        Such a row has neighbour sessions and is answered from their items;
        a row without one (no item seen in fit, nor a history) gets the
        fallback.
        """
        if use_history is None:
            use_history = self.params_["history_weight"] > 0
        q = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        q.eliminate_zeros()
        if use_history and row_keys is not None and self.session_keys_ is not None:
            q = sp.csr_matrix(q + self._history(row_keys))
        q.sum_duplicates()
        # sessions holding each item (the index keeps at least two of them)
        others = np.diff(self.index_.indptr)[q.indices].astype(np.int64)
        self_rows = self._self_rows(im)
        if self_rows is not None and q.nnz:
            rows = _row_of(q.indptr)
            own = self_rows[rows]
            held = np.zeros(q.nnz, dtype=bool)
            has = own >= 0
            if has.any():
                held[has] = (
                    np.asarray(self.session_items_[own[has], q.indices[has]]).ravel()
                    > 0
                )
            others = others - held
        entry_ok = (others > 0).astype(np.float64)
        ok = sp.csr_matrix((entry_ok, q.indices, q.indptr), shape=q.shape)
        has_neighbor = np.asarray(ok.sum(axis=1)).ravel() > 0
        return np.where(has_neighbor, NEIGHBORS, FALLBACK).astype(object)

    def _similar_ranked(self, queries, k):
        return cooccurrence_similar(self.session_items_, queries, k)

    def similar_items(self, item_ids, k=10):
        """Items most often in the same training sessions: cosine.

        With :math:`S_i` the training sessions holding item :math:`i`, items
        :math:`i` and :math:`j` score
        :math:`|S_i \\cap S_j| / \\sqrt{|S_i| \\, |S_j|}` (the cosine of the
        columns of the binary sessions x items matrix), best first; items
        that never share a session, and the item itself, are left out.

        Parameters
        ----------
        item_ids : item id or array-like of item ids
            Ids as in the training data (column indices for a model fitted
            on a plain matrix). An unknown id raises ``ValueError``.
        k : int, default=10
            Similar items per item (clipped, with a warning, to the items
            that share a session with it).

        Returns
        -------
        similar : polars DataFrame
            One row per given item: the item id, ``similar_items`` (list of
            ids, best first) and ``scores`` (list of cosines).

        Examples
        --------
        >>> import numpy as np
        >>> from skals import SessionKNNRecommender
        >>> X = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1]])
        >>> out = SessionKNNRecommender().fit(X).similar_items(0, k=2)
        >>> out["similar_items"].to_list(), out["scores"].list.eval(
        ...     pl.element().round(3)).to_list()
        ([[1, 2]], [[0.816, 0.577]])
        """
        return super().similar_items(item_ids, k=k)

    def explain(self, item_id, context=None, *, key=None, k=None):
        """The neighbour sessions that gave ``item_id`` its score.

        The query is built as :meth:`predict` builds it (position weights,
        steps, the key's history when ``history_weight > 0`` or ``key`` is
        given), its neighbours are found by the definition of the class
        docs (sampling, similarity, ``n_neighbors``), and each neighbour
        ``b`` holding ``item_id`` contributes
        ``sim(a, b) * decay(b) * v_b(item) * (1 + idf_weighting * idf(item))``.
        The contributions sum to the score :meth:`predict` gives the item
        (source ``"neighbors"``, before filters).

        Parameters
        ----------
        item_id : item id
            The recommended item to explain.
        context : sequence of item ids, InteractionMatrix or None, \
                default=None
            The session's events: item ids, oldest first (the last is the
            most recent), or an :class:`~skals.InteractionMatrix` with one
            row (as ``pipeline[:-1].transform(events)`` gives).
        key : str or None, default=None
            A training key whose sessions' items join the query (as
            ``history_weight`` does; weight 1 when ``history_weight`` is 0).
            With no context, the query is that history alone, as in
            :meth:`recommend_keys`. An unknown key raises ``ValueError``.
        k : int or None, default=None
            Keep the ``k`` largest contributions; ``None`` keeps all.

        Returns
        -------
        contributions : polars DataFrame
            One row per neighbour session holding ``item_id``, largest first:
            the session id (named as the training rows, or ``session`` for a
            plain matrix), ``similarity``, ``shared_items`` (the query items
            it shares, as a list) and ``contribution``.

        Examples
        --------
        >>> import numpy as np
        >>> from skals import SessionKNNRecommender
        >>> X = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]])
        >>> model = SessionKNNRecommender().fit(X)
        >>> model.explain(2, [1]).rows()
        [(1, 1.0, [1], 1.0)]
        """
        check_is_fitted(self)
        (target,) = item_positions(self, [item_id], "item_id")
        matrix, row_keys, im, use_history = self._explain_query(context, key)
        weights, steps, self_rows = self._query(matrix, row_keys, im, use_history)
        sessions = self.session_items_
        cols = weights.indices
        w, st = weights.data, steps.data
        binary = sp.csr_matrix(sessions, copy=True)
        binary.data[:] = 1.0
        held = sp.csr_matrix(binary[:, cols])  # n_sessions x query items
        cand = np.flatnonzero(np.diff(held.indptr) > 0)
        cand = cand[cand != self_rows[0]]
        sample = self.params_["sample_size"]
        if sample is not None:
            cand = cand[-sample:]  # numbered by time: the most recent last
        sub = held[cand].toarray() > 0
        dot = sub @ w
        n_a, n_b = cols.size, np.diff(sessions.indptr)[cand].astype(np.float64)
        similarity = self.params_["similarity"]
        if similarity == "vec":
            sim = dot / n_a
        elif similarity == "cosine":
            sim = dot / np.sqrt(n_a * n_b)
        else:
            sim = dot / (n_a + n_b - sub.sum(axis=1))
        ok = sim > 0
        cand, sim, sub = cand[ok], sim[ok], sub[ok]
        # the n_neighbors most similar (ties: the more recent session)
        order = np.lexsort((-cand, -sim))[: self.params_["n_neighbors"]]
        cand, sim, sub = cand[order], sim[order], sub[order]
        min_step = np.where(sub, st[None, :], np.inf).min(axis=1)
        weight = sim * score_decay(self.params_["weighting_score"], min_step)
        value = np.asarray(sessions[cand, np.full(cand.size, target)]).ravel()
        idf_w = float(self.params_["idf_weighting"])
        contribution = weight * value * (1.0 + idf_w * self.idf_[target])
        keep = contribution > 0
        order = np.lexsort((-cand[keep], -contribution[keep]))
        if k is not None:
            order = order[:k]
        cand, sim, sub = cand[keep][order], sim[keep][order], sub[keep][order]
        contribution = contribution[keep][order]
        if self.session_ids_ is not None:
            session = self.session_ids_.gather(pl.Series(cand)).rename(self.id_name_)
        else:
            session = pl.Series("session", cand)
        items = _item_series(self, self.item_name_, cols)
        shared = pl.Series(
            "shared_items",
            [items.filter(pl.Series(row)).to_list() for row in sub],
            dtype=pl.List(items.dtype),
        )
        return pl.DataFrame(
            [
                session,
                pl.Series("similarity", sim, dtype=pl.Float64),
                shared,
                pl.Series(CONTRIBUTION, contribution, dtype=pl.Float64),
            ]
        )

    def _explain_query(self, context, key):
        """``(matrix, row_keys, im, use_history)`` of the query to explain."""
        n_items = self.n_features_in_
        use_history = self.params_["history_weight"] > 0
        if key is not None:
            keys = pl.Series(self.key_name_, [key])
            if not self._known_keys(keys)[0]:
                raise ValueError(f"key={key!r} was not seen in fit.")
            use_history = True
        else:
            keys = None
        if isinstance(context, InteractionMatrix):
            self._check_items_match(context)
            if context.matrix.shape[0] != 1:
                raise ValueError(
                    f"context: an InteractionMatrix with one row is needed, got "
                    f"{context.matrix.shape[0]}; select the row first."
                )
            row_keys = keys if keys is not None else context.row_keys
            return context.matrix, row_keys, context, use_history
        if context is None:
            if key is None:
                raise ValueError("explain: give a context, a key or both.")
            ids = []
        elif np.ndim(context) == 0 or isinstance(context, (str, bytes)):
            raise ValueError(
                "context: a sequence of item ids (oldest first) or a one-row "
                f"InteractionMatrix is needed, got {type(context).__name__}."
            )
        else:
            ids = list(context)
        pos = item_positions(self, ids, "context") if ids else np.zeros(0, np.int64)
        # recency 1 for the most recent (last) distinct item, 2 before it, ...
        last = {}
        for i, p in enumerate(pos.tolist()):
            last[p] = i
        cols = np.array(sorted(last), dtype=np.int64)
        order = np.array([last[c] for c in cols], dtype=np.int64)
        rank = np.empty(cols.size, dtype=np.float32)
        rank[np.argsort(-order, kind="stable")] = np.arange(1, cols.size + 1)
        indptr = np.array([0, cols.size])
        matrix = sp.csr_matrix(
            (np.ones(cols.size, dtype=np.float32), cols, indptr), shape=(1, n_items)
        )
        recency = sp.csr_matrix((rank, cols, indptr), shape=(1, n_items))
        im = InteractionMatrix(
            matrix=matrix,
            row_ids=pl.Series("context", [0]),
            row_keys=keys if keys is not None else pl.Series(self.key_name_, [None]),
            item_ids=self.item_ids_ if self.item_ids_ is not None else pl.Series([]),
            id_name="context",
            item_name=self.item_name_,
            recency=recency,
        )
        return matrix, im.row_keys, im, use_history
