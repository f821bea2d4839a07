"""Session-kNN's neighbour search and item scores.

The scoring half of :class:`~skals.SessionKNNRecommender` (a mixin, like
``_knn_calls.SessionKNNCalls``): from the query rows' item weights and
recency steps, the candidate training sessions, their similarity, the
``n_neighbors`` most similar per query and the items they vote for. It
reads the fitted state only (``index_``, ``session_items_``, ``params_``,
...).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._knn_weights import EXACT_STEPS as _EXACT_STEPS
from ._knn_weights import is_exponential, score_decay
from ._knn_weights import leading_step as _leading_step
from ._knn_weights import neighbor_position_scores as _neighbor_position_scores
from ._knn_weights import row_min_max as _row_min_max
from ._knn_weights import time_decay as _time_decay
from ._topk import row_of as _row_of
from ._topk import segment_topk as _segment_topk

#: Bound on the candidate entries (query items x sampled sessions) per chunk.
_CHUNK_ENTRIES = 1 << 22


class SessionKNNScoring:
    """Neighbour search and scores of :class:`~skals.SessionKNNRecommender`."""

    def _scores(self, weights, steps, self_rows, times=None) -> sp.csr_matrix:
        """Item scores (n_rows x n_items, sparse) for the query rows.

        ``times``: each query's last event time (seconds), for
        ``recency_decay``.
        """
        n = weights.shape[0]
        binary = sp.csr_matrix(
            (np.ones(weights.nnz), weights.indices, weights.indptr), shape=weights.shape
        )
        per_item = np.diff(self.index_.indptr)
        cost = binary @ per_item.astype(np.float64)
        chunk = (np.cumsum(cost) // _CHUNK_ENTRIES).astype(np.int64)
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(chunk)) + 1, [n]])
        parts = [
            self._score_chunk(
                weights[a:b],
                steps[a:b],
                binary[a:b],
                self_rows[a:b],
                None if times is None else np.asarray(times, dtype=np.float64)[a:b],
            )
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            if b > a
        ]
        if not parts:
            return sp.csr_matrix((0, self.n_features_in_))
        return sp.vstack(parts, format="csr")

    def _min_step(self, steps, q_of, s_of) -> np.ndarray:
        """Smallest step of the query items each pair shares, by lookups."""
        lens = np.diff(steps.indptr)[q_of]
        pair = np.repeat(np.arange(q_of.size), lens)
        offset = np.arange(pair.size) - np.repeat(np.cumsum(lens) - lens, lens)
        entry = steps.indptr[q_of][pair] + offset
        held = self.session_items_[s_of[pair], steps.indices[entry]]
        held = np.asarray(held).ravel() > 0
        step = np.where(held, steps.data[entry], np.inf)
        out = np.full(q_of.size, np.inf)
        np.minimum.at(out, pair, step)
        return out

    def _score_chunk(self, weights, steps, binary, self_rows, times=None):
        n_q = weights.shape[0]
        sessions = self.session_items_
        n_sessions = sessions.shape[0]
        # real part: sum of the weights of the shared items; imaginary part:
        # sum of 2**-step, whose leading bit is the smallest shared step
        coded = weights.astype(np.complex128)
        coded.data += 1j * np.exp2(-np.minimum(steps.data, 1000.0))
        cand = (coded @ self.index_).tocsr()  # union of each item's recent sessions
        cand.sort_indices()
        q_of = _row_of(cand.indptr)
        s_of = cand.indices.astype(np.int64)
        cand_keys = q_of * n_sessions + s_of
        not_self = s_of != self_rows[q_of]
        q_of, s_of = q_of[not_self], s_of[not_self]
        if self.params_["sample_size"] is not None:
            # sessions are numbered by time: the most recent have the largest
            # numbers, i.e. the last ones of each (sorted) row
            starts = np.searchsorted(q_of, np.arange(n_q + 1))
            from_end = np.repeat(starts[1:], np.diff(starts)) - np.arange(q_of.size)
            keep = from_end <= self.params_["sample_size"]
            q_of, s_of = q_of[keep], s_of[keep]
        if q_of.size == 0:
            return sp.csr_matrix((n_q, self.n_features_in_))
        # every selected candidate is in the index list of each query item it
        # holds (see fit), so the product gives exact sums over shared items
        pick = np.searchsorted(cand_keys, q_of * n_sessions + s_of)
        dot = cand.data.real[pick]
        min_step = _leading_step(cand.data.imag[pick])
        # the leading bit is exact for distinct steps (ordered sessions);
        # rows of one step throughout (no order) need nothing; others
        # (history items share a step, very long rows) are looked up
        lo, hi, count = _row_min_max(steps)
        same = lo == hi
        min_step[same[q_of]] = lo[q_of][same[q_of]]
        lookup = ~same & ((hi != count) | (count > _EXACT_STEPS))
        if lookup.any():
            fix = np.flatnonzero(lookup[q_of])
            min_step[fix] = self._min_step(steps, q_of[fix], s_of[fix])
        if self.params_["similarity"] == "jaccard":
            counts = (binary @ self.index_).tocsr()
            counts.sort_indices()
            n_shared = counts.data.real[pick]
        else:
            n_shared = None
        n_a = np.diff(weights.indptr)[q_of].astype(np.float64)
        n_b = np.diff(sessions.indptr)[s_of].astype(np.float64)
        similarity = self.params_["similarity"]
        if similarity == "vec":
            sim = dot / n_a
        elif similarity == "cosine" and is_exponential(self.params_["weighting"]):
            # STAN: the query is the vector of its weights
            norm2 = np.asarray(weights.multiply(weights).sum(axis=1)).ravel()
            sim = dot / np.sqrt(norm2[q_of] * n_b)
        elif similarity == "cosine":
            sim = dot / np.sqrt(n_a * n_b)
        else:
            sim = dot / (n_a + n_b - n_shared)
        if self.params_["recency_decay"] is not None:
            sim = sim * _time_decay(
                times[q_of], self.session_times_[s_of], self.params_["recency_decay"]
            )
        ok = sim > 0
        q_of, s_of, sim, min_step = q_of[ok], s_of[ok], sim[ok], min_step[ok]
        # the n_neighbors most similar per query (ties: the more recent)
        starts = np.searchsorted(q_of, np.arange(n_q + 1))
        from_end = np.repeat(starts[1:], np.diff(starts)) - np.arange(q_of.size) - 1
        top = _segment_topk(q_of, from_end, sim, n_q, self.params_["n_neighbors"])
        w = sim[top] * score_decay(self.params_["weighting_score"], min_step[top])
        if self.params_["neighbor_position_decay"] is not None:
            scores = _neighbor_position_scores(
                q_of[top],
                s_of[top],
                w,
                binary,
                sessions,
                self.session_recency_,
                float(self.params_["neighbor_position_decay"]),
                n_q,
            )
        else:
            neigh = sp.csr_matrix(
                (w, (q_of[top], s_of[top])), shape=(n_q, n_sessions), dtype=np.float64
            )
            neigh.sort_indices()
            scores = (neigh @ sessions).tocsr()
        idf_w = float(self.params_["idf_weighting"])
        if idf_w:
            scores = scores @ sp.diags(1.0 + idf_w * self.idf_)
            scores = scores.tocsr()
        scores.eliminate_zeros()
        return scores
