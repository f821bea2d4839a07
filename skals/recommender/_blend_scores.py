"""Scores of the blend's candidates: per-row normalisation and weighted sums.

Pure functions on the ``(ids, scores)`` candidate lists the components
rank, shared by ``BlendRecommender``'s predict and its ``weights="auto"``
grid.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def own_normalised(ids, scores, n_own, method: str):
    """``(ids, normalised)`` of a component: normalised over the whole list,
    then only each row's first ``n_own`` entries kept (the others ``-1``)."""
    norm = normalise(ids, scores, method)
    own = np.arange(ids.shape[1])[None, :] < np.asarray(n_own)[:, None]
    return np.where(own, ids, -1), np.where(own, norm, 0.0)


def normalise(ids, scores, method: str) -> np.ndarray:
    """Per-row normalised scores of ranked candidates (0 where ``ids < 0``).

    ``"rank"``: the candidate at 0-based position ``j`` of ``n`` valid ones
    gets ``(n - j) / n``. ``"minmax"``: ``(s - min) / (max - min)`` over the
    row's valid candidates (``1`` when they are all equal).
    """
    valid = ids >= 0
    n = valid.sum(axis=1, keepdims=True)
    if method == "rank":
        j = np.arange(ids.shape[1])[None, :]
        out = (n - j) / np.maximum(n, 1)
    else:
        s = np.asarray(scores, dtype=np.float64)
        # the row's valid candidates only (a row without any gives 0 below)
        lo = np.where(valid, s, np.inf).min(axis=1, keepdims=True)
        hi = np.where(valid, s, -np.inf).max(axis=1, keepdims=True)
        span = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
        out = np.where(span > 0, (s - lo) / np.where(span > 0, span, 1.0), 1.0)
    return np.where(valid, out, 0.0)


def sum_parts(parts, weights, shape) -> sp.csr_matrix:
    """Sum of ``w * normalised score`` over the components' candidates.

    ``parts`` holds one ``(ids, normalised)`` pair per weight; a component
    of weight 0 is skipped (its pair may be ``(None, None)``); ``shape`` is
    ``(n_rows, n_items)``. One COO sum:
    a candidate normalised to 0 (a minmax row's last) stays a stored entry,
    so it is still a candidate of the blend.
    """
    rows, cols, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [[]]
    for (ids, norm), w in zip(parts, weights, strict=True):
        if w == 0:
            continue
        valid = ids >= 0
        rows.append(np.broadcast_to(np.arange(shape[0])[:, None], ids.shape)[valid])
        cols.append(ids[valid])
        vals.append(w * norm[valid])
    total = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=shape,
    ).tocsr()
    total.sum_duplicates()
    return total
