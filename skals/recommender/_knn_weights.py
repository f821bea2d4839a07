"""Weights of session-kNN: V-SKNN's position weightings and STAN's decays.

The vectorised pieces of :class:`~skals.SessionKNNRecommender` that are
not sparse products: position weights of the query's items, decays of a
neighbour's contribution, and STAN's neighbour-item position weight, which
needs every (query, neighbour, neighbour item) triple.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import scipy.sparse as sp

from ._topk import row_of as _row_of

#: Names of the position weightings (query items) and score decays.
WEIGHTINGS = ("same", "linear", "div", "quadratic", "log")

#: Seconds per day: STAN's ``lambda_snh`` is given in days.
DAY = 86400.0


def position_weight(name, d: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Weight of a query item ``d`` steps before the session's last item.

    ``n`` is the number of distinct items of the query session and
    ``i = n - d`` the item's position (1 for the oldest, ``n`` for the last),
    as in Ludewig & Jannach (2018): ``same`` 1, ``div`` i/n, ``quadratic``
    (i/n)^2, ``linear`` max(1 - 0.1 d, 0), ``log`` 1/log10(d + 1.7). A number
    ``lam`` is STAN's weight ``exp(-d / lam)`` (Garg et al. 2019, ``lambda_spw``).
    """
    d = np.asarray(d, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if isinstance(name, Real) and not isinstance(name, bool):
        return np.exp(-d / float(name))
    if name == "same":
        return np.ones_like(d)
    if name == "div":
        return (n - d) / n
    if name == "quadratic":
        return ((n - d) / n) ** 2
    if name == "linear":
        return np.maximum(1.0 - 0.1 * d, 0.0)
    return 1.0 / np.log10(d + 1.7)


def score_decay(name, step: np.ndarray) -> np.ndarray:
    """Decay of a neighbour whose most recent shared item is ``step`` back.

    ``step`` is 1 when the neighbour holds the query's last item, 2 when
    its most recent shared item is the one before, ...: ``same`` 1, ``div``
    1/step, ``quadratic`` 1/step^2, ``linear`` max(1 - 0.1 step, 0),
    ``log`` 1/log10(step + 1.7) (V-SKNN's ``weighting_score``). A number
    ``lam`` is VSTAN's ``exp(-(step - 1) / lam)`` (``lambda_ipw``).
    """
    step = np.asarray(step, dtype=np.float64)
    if isinstance(name, Real) and not isinstance(name, bool):
        return np.exp(-(step - 1.0) / float(name))
    if name == "same":
        return np.ones_like(step)
    if name == "div":
        return 1.0 / step
    if name == "quadratic":
        return 1.0 / step**2
    if name == "linear":
        return np.maximum(1.0 - 0.1 * step, 0.0)
    return 1.0 / np.log10(step + 1.7)


def is_exponential(name) -> bool:
    """Whether a weighting is STAN's exponential one (a number)."""
    return isinstance(name, Real) and not isinstance(name, bool)


def time_decay(query_times, neighbor_times, days) -> np.ndarray:
    """STAN's neighbour recency weight ``exp(-(t_query - t_neighbour) / days)``.

    Times in seconds; a neighbour later than the query (predicting on the
    training period) counts as simultaneous (weight 1).
    """
    gap = np.maximum(np.asarray(query_times) - np.asarray(neighbor_times), 0.0)
    return np.exp(-gap / (float(days) * DAY))


#: Query rows with more items than this get their smallest shared step by
#: lookups: a float64 sum of distinct powers of two keeps its leading bit
#: exact while fewer than 53 shared steps follow the smallest.
EXACT_STEPS = 50


def leading_step(code: np.ndarray) -> np.ndarray:
    """``t`` such that ``2**-t <= code < 2**(1 - t)``."""
    _, exp = np.frexp(code)
    return (1 - exp).astype(np.float64)


def row_min_max(m: sp.csr_matrix):
    """Per row: smallest and largest stored value, and number stored."""
    count = np.diff(m.indptr)
    lo = np.zeros(count.size)
    hi = np.zeros(count.size)
    has = count > 0
    if m.nnz:
        lo[has] = np.minimum.reduceat(m.data, m.indptr[:-1][has])
        hi[has] = np.maximum.reduceat(m.data, m.indptr[:-1][has])
    return lo, hi, count


def order_in_rows(m: sp.csr_matrix, descending: bool = False) -> np.ndarray:
    """Order of ``m``'s entries by row, then value, then column.

    ``m`` has sorted indices. Integer values (recencies, ranks) take one
    stable sort of an int64 key (row, value): stability keeps the column
    order of equal values. Other values take a lexsort.
    """
    rows = _row_of(m.indptr)
    v = -m.data if descending else m.data
    if v.size and np.all(np.isfinite(v)):
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo + 1
        if np.all(v == np.round(v)) and span * m.shape[0] < 2.0**62:
            key = rows.astype(np.int64) * int(span) + (v - lo).astype(np.int64)
            return np.argsort(key, kind="stable")
    return np.lexsort((m.indices, v, rows))


def dense_rank_in_rows(m: sp.csr_matrix) -> np.ndarray:
    """Per stored entry: 1 + number of smaller distinct values in its row.

    The entries in :func:`order_in_rows`' order (one stable sort of an
    integer key for integer values such as recencies), then a running count
    of new values within each row.
    """
    order = order_in_rows(m)
    v = m.data[order]
    counts = np.diff(m.indptr)
    first = np.zeros(v.size, dtype=bool)
    first[m.indptr[:-1][counts > 0]] = True
    new = first.copy()
    new[1:] |= v[1:] != v[:-1]
    csum = np.cumsum(new)
    start = np.repeat(csum[m.indptr[:-1][counts > 0]], counts[counts > 0])
    out = np.empty(v.size, dtype=np.int64)
    out[order] = csum - start + 1
    return out


def neighbor_position_scores(
    q_of, s_of, w, query, sessions, positions, lam, n_q
) -> sp.csr_matrix:
    """Scores with STAN's item position weight inside each neighbour.

    For every neighbour ``s`` of query ``q`` (weight ``w``), item ``j`` of
    ``s`` adds ``w * v_s(j) * exp(-|pos_s(j) - pos_s(i*)| / lam)``, where
    ``pos_s`` numbers ``s``'s distinct items by recency (1 for its last) and
    ``i*`` is the most recent item of ``s`` that the query holds (Garg et al.
    2019, ``lambda_inh``). ``query`` is the chunk's query matrix (any values,
    its pattern is what counts), ``sessions`` the neighbours' values and
    ``positions`` their recency ranks, on the same pattern.
    """
    n_items = sessions.shape[1]
    lens = np.diff(sessions.indptr)[s_of]
    pair = np.repeat(np.arange(s_of.size), lens)
    offset = np.arange(pair.size) - np.repeat(np.cumsum(lens) - lens, lens)
    entry = sessions.indptr[s_of][pair] + offset
    item = sessions.indices[entry].astype(np.int64)
    pos = positions.data[entry].astype(np.float64)
    q_keys = np.sort(_row_of(query.indptr).astype(np.int64) * n_items + query.indices)
    keys = q_of[pair] * n_items + item
    if q_keys.size:
        at = np.minimum(np.searchsorted(q_keys, keys), q_keys.size - 1)
        shared = q_keys[at] == keys
    else:
        shared = np.zeros(keys.size, dtype=bool)
    star = np.full(s_of.size, np.inf)
    np.minimum.at(star, pair[shared], pos[shared])
    value = w[pair] * sessions.data[entry] * np.exp(-np.abs(pos - star[pair]) / lam)
    out = sp.csr_matrix((value, (q_of[pair], item)), shape=(n_q, n_items))
    out.sum_duplicates()
    return out
