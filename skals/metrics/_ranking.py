"""Ranking metrics for top-k recommendation lists (binary relevance).

Every metric takes the same two inputs, one entry per query (a session or a
user):

- ``y_true``: the relevant item ids of each query (any collection: set, list,
  array),
- ``y_pred``: the ranked recommendations of each query, best first (a list of
  sequences, or a 2-D array with one row per query),

and the same keyword ``k``, the length of the list that is scored. Higher is
better for all of them.

All metrics go through one hit matrix: ``hits[q, i]`` is true when the item at
rank ``i + 1`` of query ``q``'s list is relevant and did not appear earlier in
that list. The per-query scores are then a few numpy operations on that
matrix.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

__all__ = [
    "hit_rate_at_k",
    "map_at_k",
    "ndcg_at_k",
    "overlap_at_k",
    "precision_at_k",
    "recall_at_k",
]


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral):
        raise TypeError(
            f"k must be a positive integer (the length of the ranked list to "
            f"score), got {k!r} of type {type(k).__name__}."
        )
    if k < 1:
        raise ValueError(
            f"k must be a positive integer (the length of the ranked list to "
            f"score), got {k}."
        )
    return int(k)


def _as_rows(y, name: str):
    """``y`` as something indexable with one entry per query."""
    if isinstance(y, (str, bytes)):
        raise TypeError(
            f"{name} must be a sequence with one entry per query, got a string."
        )
    if isinstance(y, np.ndarray):
        if y.ndim == 0:
            raise TypeError(f"{name} must be a sequence with one entry per query.")
        if y.ndim == 2:
            # Python scalars hash and compare faster than numpy scalars.
            return y.tolist()
        return y
    try:
        len(y)
    except TypeError:
        y = list(y)
    return y


def _hits(y_true, y_pred, k):
    """Return the ``(n_queries, k)`` hit matrix and the number of relevant items.

    A predicted list shorter than ``k`` has misses in the missing positions;
    an item repeated in a predicted list is a hit at most once, at its first
    position (later copies are misses and keep their positions).
    """
    k = _check_k(k)
    truth = _as_rows(y_true, "y_true")
    preds = _as_rows(y_pred, "y_pred")
    if len(truth) != len(preds):
        raise ValueError(
            f"y_true and y_pred must have one entry per query: got "
            f"len(y_true)={len(truth)} and len(y_pred)={len(preds)}."
        )
    n = len(truth)
    if n == 0:
        raise ValueError("y_true and y_pred are empty: there is no query to score.")

    rows = []
    n_rel = np.empty(n, dtype=np.int64)
    pad = [False] * k
    for q, (relevant, ranked) in enumerate(zip(truth, preds, strict=True)):
        if not isinstance(relevant, (set, frozenset)):
            relevant = _as_set(relevant, q)
        n_rel[q] = len(relevant)
        if isinstance(ranked, (str, bytes)):
            raise TypeError(
                f"y_pred[{q}] is a string; each entry of y_pred must be a ranked "
                "sequence of item ids."
            )
        top = ranked[:k]
        if isinstance(top, np.ndarray):
            top = top.tolist()
        row = [item in relevant for item in top]
        if len(row) < k:
            row += pad[len(row) :]
        if len(set(top)) < len(top):
            seen = set()
            for i, item in enumerate(top):
                if item in seen:
                    row[i] = False
                seen.add(item)
        rows.append(row)

    n_empty = int(np.count_nonzero(n_rel == 0))
    if n_empty:
        raise ValueError(
            f"{n_empty} of {n} queries have no relevant item (an empty entry in "
            "y_true); ranking metrics are undefined for them. Filter them out "
            "before scoring, e.g. keep = [len(t) > 0 for t in y_true]."
        )
    return np.array(rows, dtype=bool).reshape(n, k), n_rel


def _as_set(relevant, q):
    if isinstance(relevant, (str, bytes)):
        raise TypeError(
            f"y_true[{q}] is a string; each entry of y_true must be a collection "
            "of relevant item ids (e.g. a set or a list)."
        )
    if isinstance(relevant, np.ndarray):
        relevant = relevant.tolist()
    try:
        return set(relevant)
    except TypeError as exc:
        raise TypeError(
            f"y_true[{q}] must be a collection of relevant item ids (e.g. a set "
            f"or a list), got {type(relevant).__name__}: {exc}"
        ) from exc


def _discounts(k):
    """DCG discounts ``1 / log2(i + 1)`` for ranks ``i = 1..k``."""
    return 1.0 / np.log2(np.arange(2, k + 2))


def _finish(scores, average):
    scores = np.asarray(scores, dtype=np.float64)
    return float(scores.mean()) if average else scores


def precision_at_k(y_true, y_pred, *, k=5, average=True):
    """Share of the top ``k`` recommendations that are relevant.

    ``|top-k ∩ relevant| / k`` per query. This is the "top-k overlap" of the
    original notebook; :func:`overlap_at_k` is the same function.

    Parameters
    ----------
    y_true : sequence of collections of item ids
        The relevant items of each query (e.g. the products added to the cart
        in a session). Must not contain empty collections.
    y_pred : sequence of sequences of item ids or 2-D array
        The ranked recommendations of each query, best first; one entry (or
        row) per query, in the order of ``y_true``.
    k : int, default=5
        Number of top positions that are scored.
    average : bool, default=True
        Return the mean over queries if True, else the per-query scores.

    Returns
    -------
    score : float or ndarray of shape (n_queries,)
        Precision@k, between 0 and 1.

    See Also
    --------
    recall_at_k : Share of the relevant items found in the top ``k``.
    ndcg_at_k : Position-aware gain, the challenge's metric.

    Notes
    -----
    The denominator is always ``k``: a list shorter than ``k`` counts its
    missing positions as misses, and an item repeated in a list counts once.

    Examples
    --------
    >>> from skals.metrics import precision_at_k
    >>> y_true = [{"a", "c"}, {"b"}]
    >>> y_pred = [["a", "b", "c", "d"], ["c", "a", "d", "e"]]
    >>> precision_at_k(y_true, y_pred, k=4)
    0.25
    >>> precision_at_k(y_true, y_pred, k=4, average=False)
    array([0.5, 0. ])
    """
    hits, _ = _hits(y_true, y_pred, k)
    return _finish(hits.sum(axis=1) / hits.shape[1], average)


overlap_at_k = precision_at_k


def recall_at_k(y_true, y_pred, *, k=5, average=True):
    """Share of the relevant items that appear in the top ``k``.

    ``|top-k ∩ relevant| / |relevant|`` per query.

    Parameters
    ----------
    y_true : sequence of collections of item ids
        The relevant items of each query. Must not contain empty collections.
    y_pred : sequence of sequences of item ids or 2-D array
        The ranked recommendations of each query, best first.
    k : int, default=5
        Number of top positions that are scored.
    average : bool, default=True
        Return the mean over queries if True, else the per-query scores.

    Returns
    -------
    score : float or ndarray of shape (n_queries,)
        Recall@k, between 0 and 1.

    See Also
    --------
    precision_at_k : Share of the top ``k`` that is relevant.

    Notes
    -----
    When a query has more than ``k`` relevant items its recall@k cannot reach
    1; the denominator is not capped at ``k``.

    Examples
    --------
    >>> from skals.metrics import recall_at_k
    >>> y_true = [{1, 2, 3, 4}, {5}]
    >>> y_pred = [[1, 9, 2], [7, 8, 5]]
    >>> recall_at_k(y_true, y_pred, k=3, average=False)
    array([0.5, 1. ])
    """
    hits, n_rel = _hits(y_true, y_pred, k)
    return _finish(hits.sum(axis=1) / n_rel, average)


def ndcg_at_k(y_true, y_pred, *, k=5, average=True):
    """Normalised discounted cumulative gain at ``k``, binary relevance.

    ``DCG@k = sum_{i=1..k} rel_i / log2(i + 1)``, divided by the DCG of an
    ideal list that puts ``min(|relevant|, k)`` relevant items first.

    Parameters
    ----------
    y_true : sequence of collections of item ids
        The relevant items of each query. Must not contain empty collections.
    y_pred : sequence of sequences of item ids or 2-D array
        The ranked recommendations of each query, best first.
    k : int, default=5
        Number of top positions that are scored.
    average : bool, default=True
        Return the mean over queries if True, else the per-query scores.

    Returns
    -------
    score : float or ndarray of shape (n_queries,)
        NDCG@k, between 0 and 1.

    See Also
    --------
    map_at_k : Mean average precision, another position-aware metric.

    Notes
    -----
    This is the metric of the fashion challenge (``k=5``, an item is relevant
    when it was added to the cart in the session). A list shorter than ``k``
    is not penalised in the ideal DCG: that depends only on ``|relevant|``
    and ``k``.

    Examples
    --------
    Relevant items at ranks 1 and 3, two relevant items in total:
    ``(1 + 1/log2(4)) / (1 + 1/log2(3)) = 1.5 / 1.6309 = 0.9197``.

    >>> from skals.metrics import ndcg_at_k
    >>> round(ndcg_at_k([{"a", "b"}], [["a", "x", "b"]], k=3), 4)
    0.9197
    """
    hits, n_rel = _hits(y_true, y_pred, k)
    k = hits.shape[1]
    discounts = _discounts(k)
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k) - 1]
    return _finish(hits @ discounts / ideal, average)


def map_at_k(y_true, y_pred, *, k=5, average=True):
    """Mean average precision at ``k``.

    ``AP@k = sum_{i=1..k} P@i * rel_i / min(|relevant|, k)`` per query, where
    ``P@i`` is the precision of the first ``i`` items; the mean over queries
    is MAP@k.

    Parameters
    ----------
    y_true : sequence of collections of item ids
        The relevant items of each query. Must not contain empty collections.
    y_pred : sequence of sequences of item ids or 2-D array
        The ranked recommendations of each query, best first.
    k : int, default=5
        Number of top positions that are scored.
    average : bool, default=True
        Return the mean over queries (MAP@k) if True, else the per-query
        average precisions (AP@k).

    Returns
    -------
    score : float or ndarray of shape (n_queries,)
        MAP@k (or AP@k per query), between 0 and 1.

    See Also
    --------
    ndcg_at_k : Normalised discounted cumulative gain.

    Examples
    --------
    Relevant items at ranks 1 and 3, two relevant items in total:
    ``(1/1 + 2/3) / 2 = 0.8333``.

    >>> from skals.metrics import map_at_k
    >>> round(map_at_k([{"a", "b"}], [["a", "x", "b"]], k=3), 4)
    0.8333
    """
    hits, n_rel = _hits(y_true, y_pred, k)
    k = hits.shape[1]
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    ap = (precision_at_i * hits).sum(axis=1) / np.minimum(n_rel, k)
    return _finish(ap, average)


def hit_rate_at_k(y_true, y_pred, *, k=5, average=True):
    """Share of queries with at least one relevant item in the top ``k``.

    Parameters
    ----------
    y_true : sequence of collections of item ids
        The relevant items of each query. Must not contain empty collections.
    y_pred : sequence of sequences of item ids or 2-D array
        The ranked recommendations of each query, best first.
    k : int, default=5
        Number of top positions that are scored.
    average : bool, default=True
        Return the mean over queries if True, else the per-query 0/1 scores.

    Returns
    -------
    score : float or ndarray of shape (n_queries,)
        Hit rate@k, between 0 and 1.

    See Also
    --------
    recall_at_k : Share of the relevant items found in the top ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> from skals.metrics import hit_rate_at_k
    >>> y_pred = np.array([[3, 1, 2], [4, 5, 6]])
    >>> hit_rate_at_k([{2}, {1}], y_pred, k=3)
    0.5
    """
    hits, _ = _hits(y_true, y_pred, k)
    return _finish(hits.any(axis=1), average)
