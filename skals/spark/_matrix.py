"""SparkInteractionMatrix: the builder's output for a Spark event log."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from .._frame import FrameKind
from .._interaction import InteractionMatrix

#: Columns of :attr:`SparkInteractionMatrix.ratings` (``recency`` only when
#: the encoder had a ``time_col``).
ROW, KEY, COL, VALUE, REC = "row_idx", "key_idx", "col_idx", "value", "recency"


def _recency_matrix(rows, cols, recency, matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Recency per stored cell, in the sparsity pattern and order of ``matrix``.

    As the local builder: a cell listed twice (a session id under two keys)
    keeps its smaller (more recent) recency.
    """
    if matrix.nnz < len(rows):
        known = (
            pl.DataFrame({"r": rows, "c": cols, "v": recency})
            .group_by("r", "c")
            .agg(pl.col("v").min())
        )
        rows, cols, recency = (known[c].to_numpy() for c in ("r", "c", "v"))
    rec = sp.csr_matrix(
        (np.asarray(recency, dtype=np.int32), (rows, cols)),
        shape=matrix.shape,
        dtype=np.int32,
    )
    rec.sum_duplicates()
    return rec


class SparkInteractionMatrix(InteractionMatrix):
    """An :class:`~skals.InteractionMatrix` whose entries live in Spark.

    What :class:`~skals.InteractionMatrixBuilder` returns for a Spark
    DataFrame: the (row, column, value) entries stay a Spark DataFrame, and
    the id vocabularies (one id per row and per column, small next to the
    event log) are collected to the driver as polars Series, as in the local
    container. ``ImplicitALSRecommender(engine="spark")`` trains from
    ``ratings`` in Spark. Everything that needs the scipy matrix
    (the training history kept by the estimator, predicting, the popularity
    fallback) reads :attr:`matrix`, which collects the entries once, on
    first use, into the same CSR float32 matrix the local builder makes.

    Parameters
    ----------
    ratings : pyspark.sql.DataFrame
        Columns ``row_idx`` (int, position in ``row_ids``), ``key_idx`` (int,
        position of the row's key in the sorted unique ``row_keys``),
        ``col_idx`` (int, position in ``item_ids``) and ``value`` (double)
        [and ``recency`` (int), the item's rank by last event time in its
        row, when the encoder had a ``time_col``].
    row_ids : polars.Series
        Id of each row (the user key, or the session id at session grain).
    row_keys : polars.Series
        User key of each row.
    item_ids : polars.Series
        Item id of each column.
    id_name : str, default="unified_user_id"
        Column name for ``row_ids`` in answers.
    item_name : str, default="partnumber"
        Name of the item column.
    row_segments : polars.Series or None, default=None
        Segment of each row, when the encoder passed one.
    item_stats : polars.DataFrame or None, default=None
        Per column and segment sums, as in :class:`~skals.InteractionMatrix`.
    row_times : ndarray of float64 or None, default=None
        Last event time of each row (seconds since the epoch), when the
        encoder had a ``time_col``.

    Attributes
    ----------
    kind : FrameKind
        ``FrameKind("spark")``: answers for it come back as polars frames.

    See Also
    --------
    skals.InteractionMatrix : The local container it extends.

    Examples
    --------
    >>> from pyspark.sql import SparkSession
    >>> from skals import InteractionMatrixBuilder
    >>> spark = (SparkSession.builder.master("local[2]")
    ...          .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    >>> enc = spark.createDataFrame(
    ...     [("u_1", 10, 2.0), ("s_2", 20, 3.0)],
    ...     "unified_user_id string, partnumber long, confidence double")
    >>> im = InteractionMatrixBuilder().fit_transform(enc)
    >>> im
    SparkInteractionMatrix(2 unified_user_id x 2 partnumber)
    >>> im.row_ids.to_list(), im.item_ids.to_list()
    (['s_2', 'u_1'], [10, 20])
    >>> im.matrix.toarray()
    array([[0., 3.],
           [2., 0.]], dtype=float32)
    """

    def __new__(cls, *args, **kwargs):
        # dataclasses.replace(im, ...) (e.g. session-kNN's popularity input)
        # passes the local container's fields, the collected ``matrix`` among
        # them and no ``ratings``: that copy is a local InteractionMatrix
        if not args and "ratings" not in kwargs and "matrix" in kwargs:
            return InteractionMatrix(**kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        ratings,
        row_ids: pl.Series,
        row_keys: pl.Series,
        item_ids: pl.Series,
        id_name: str = "unified_user_id",
        item_name: str = "partnumber",
        row_segments: pl.Series | None = None,
        item_stats: pl.DataFrame | None = None,
        row_times: np.ndarray | None = None,
    ):
        self.ratings = ratings
        self.row_ids = row_ids
        self.row_keys = row_keys
        self.item_ids = item_ids
        self.id_name = id_name
        self.item_name = item_name
        self.row_segments = row_segments
        self.item_stats = item_stats
        self.row_times = row_times
        self.kind = FrameKind("spark")
        self._matrix = None
        self._recency = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_items)``, known without a Spark job."""
        return len(self.row_ids), len(self.item_ids)

    @property
    def matrix(self) -> sp.csr_matrix:
        """The entries as a CSR float32 matrix (collected once, then kept)."""
        if self._matrix is None:
            self._collect()
        return self._matrix

    @property
    def recency(self) -> sp.csr_matrix | None:
        """Recency of each entry, in the pattern of :attr:`matrix` (or None)."""
        if self._matrix is None:
            self._collect()
        return self._recency

    def _collect(self) -> None:
        """One Spark job: the entries, and their recency when there is one."""
        has_recency = REC in self.ratings.columns
        names = (ROW, COL, VALUE, REC) if has_recency else (ROW, COL, VALUE)
        table = self.ratings.select(*names).toArrow()
        rows, cols, values = (table.column(c).to_numpy() for c in (ROW, COL, VALUE))
        matrix = sp.csr_matrix(
            (values.astype(np.float32), (rows, cols)),
            shape=self.shape,
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        if has_recency:
            recency = table.column(REC).to_numpy(zero_copy_only=False)
            self._recency = _recency_matrix(rows, cols, recency, matrix)
        self._matrix = matrix

    def key_ratings(self):
        """Spark DataFrame ``(user, item, value)`` with one row per key and item.

        At session grain a key's sessions are summed as ``1 + sum(c_s - 1)``
        (what the local estimator does); ``user`` is the position of the key
        in the sorted unique ``row_keys``, the estimator's ``user_ids_``.
        """
        from pyspark.sql import functions as F

        if self.id_name == self.row_keys.name:
            return self.ratings.select(
                F.col(ROW).alias("user"), F.col(COL).alias("item"), F.col(VALUE)
            )
        return (
            self.ratings.groupBy(KEY, COL)
            .agg((F.lit(1.0) + F.sum(F.col(VALUE) - F.lit(1.0))).alias(VALUE))
            .select(F.col(KEY).alias("user"), F.col(COL).alias("item"), F.col(VALUE))
        )

    def to_local(self) -> InteractionMatrix:
        """The same matrix as a local :class:`~skals.InteractionMatrix`."""
        return InteractionMatrix(
            matrix=self.matrix,
            row_ids=self.row_ids,
            row_keys=self.row_keys,
            item_ids=self.item_ids,
            id_name=self.id_name,
            item_name=self.item_name,
            row_segments=self.row_segments,
            item_stats=self.item_stats,
            row_times=self.row_times,
            recency=self.recency,
        )

    def __repr__(self) -> str:
        n, m = self.shape
        return f"SparkInteractionMatrix({n} {self.id_name} x {m} {self.item_name})"
