"""InteractionMatrix: a sparse users x items matrix that knows its ids.

A leaf module (it imports no other skals module but the frame kinds), so
the builder, the Spark engine and the recommenders can all use it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from ._frame import FrameKind

__all__ = ["InteractionMatrix", "RowEvents"]


@dataclass(frozen=True, eq=False)
class RowEvents:
    """Each row's events in time order, in CSR layout.

    Row ``r``'s events are ``items[indptr[r]:indptr[r + 1]]`` (column
    indices of the matrix, earliest first; equal times: the smaller column
    first, as the encoder's ``recency`` breaks ties) with ``values`` the
    confidence each adds (the row's value of an item is 1 plus the sum of
    its events' values, as :class:`~skals.ConfidenceEncoder` computes it).
    """

    indptr: np.ndarray
    items: np.ndarray
    values: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return self.indptr.size - 1

    def take(self, rows: np.ndarray) -> RowEvents:
        """The events of ``rows`` (in that order)."""
        rows = np.asarray(rows, dtype=np.int64)
        start, stop = self.indptr[rows], self.indptr[rows + 1]
        lengths = stop - start
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        at = np.repeat(start - indptr[:-1], lengths) + np.arange(indptr[-1])
        return RowEvents(indptr, self.items[at], self.values[at])


@dataclass(eq=False)
class InteractionMatrix:
    """A users x items confidence matrix that knows its ids.

    What :class:`InteractionMatrixBuilder` returns and the recommenders take:
    a CSR matrix plus the id of every row and column, so that answers come
    back in the caller's ids.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix of float32, shape (n_rows, n_items)
        Confidences. Columns follow ``item_ids``.
    row_ids : polars.Series
        Id of each row: the user key, or the session id at session grain.
    row_keys : polars.Series
        User key of each row (equal to ``row_ids`` at key grain); used to find
        a row's training history.
    item_ids : polars.Series
        Item id of each column (the builder's fitted vocabulary).
    id_name : str
        Column name for ``row_ids`` in answers (e.g. ``"unified_user_id"``).
    item_name : str
        Name of the item column (e.g. ``"partnumber"``).
    row_segments : polars.Series or None
        Segment of each row (e.g. its country), when the encoder passed one.
    item_stats : polars.DataFrame or None
        Per column (``item_index``) and segment: summed ``view_count``,
        ``cart_count`` and ``confidence``; what popularity is ranked by.
    kind : FrameKind
        Dataframe library of the original input, so answers come back in it.
    row_times : ndarray of float64 or None
        Last event time of each row (seconds since the epoch), when the
        encoder had a ``time_col``; what recency sampling orders by.
    recency : scipy.sparse.csr_matrix or None
        Same sparsity pattern and order as ``matrix``; each value is the
        item's recency in its row (1 for the most recently interacted item,
        2 for the one before, ...), when the encoder had a ``time_col``.
    events : RowEvents or None
        Each row's events in time order (their items and the confidence each
        adds), when the encoder kept them (``keep_events=True``); what
        :class:`~skals.RerankRecommender` learns every session prefix from.

    Examples
    --------
    >>> import polars as pl
    >>> from skals import InteractionMatrixBuilder
    >>> enc = pl.DataFrame({"unified_user_id": ["u_1", "s_2"],
    ...                     "partnumber": [10, 20], "confidence": [2.0, 3.0]})
    >>> im = InteractionMatrixBuilder().fit_transform(enc)
    >>> im.shape, im.row_ids.to_list(), im.item_ids.to_list()
    ((2, 2), ['s_2', 'u_1'], [10, 20])
    >>> im.matrix.toarray()
    array([[0., 3.],
           [2., 0.]], dtype=float32)
    """

    matrix: sp.csr_matrix
    row_ids: pl.Series
    row_keys: pl.Series
    item_ids: pl.Series
    id_name: str = "unified_user_id"
    item_name: str = "partnumber"
    row_segments: pl.Series | None = None
    item_stats: pl.DataFrame | None = None
    kind: FrameKind = field(default_factory=lambda: FrameKind("polars"))
    row_times: np.ndarray | None = None
    recency: sp.csr_matrix | None = None
    events: RowEvents | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_items)`` of the matrix."""
        return self.matrix.shape

    @property
    def nnz(self) -> int:
        """Number of stored (row, item) confidences."""
        return self.matrix.nnz

    def __repr__(self) -> str:
        n, m = self.shape
        return (
            f"InteractionMatrix({n} {self.id_name} x {m} {self.item_name}, "
            f"nnz={self.nnz})"
        )


def epoch_seconds(values: pl.Series, micros: bool) -> np.ndarray:
    """Float seconds since the epoch of integer microseconds (or of numbers).

    The division is numpy's (correctly rounded): polars' ``/ 1e6`` is
    sometimes computed as a multiplication by ``1e-6``, one ulp off, which
    made the same log's row times differ between runs and engines.
    """
    out = values.to_numpy().astype(np.float64)
    return out / 1e6 if micros else out
