"""SparkInteractionMatrix: the builder's output for a Spark event log."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from .._frame import FrameKind
from .._interaction import InteractionMatrix

#: Columns of :attr:`SparkInteractionMatrix.ratings`.
ROW, KEY, COL, VALUE = "row_idx", "key_idx", "col_idx", "value"


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
        ``col_idx`` (int, position in ``item_ids``) and ``value`` (double).
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
    ):
        self.ratings = ratings
        self.row_ids = row_ids
        self.row_keys = row_keys
        self.item_ids = item_ids
        self.id_name = id_name
        self.item_name = item_name
        self.row_segments = row_segments
        self.item_stats = item_stats
        self.kind = FrameKind("spark")
        self._matrix = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_items)``, known without a Spark job."""
        return len(self.row_ids), len(self.item_ids)

    @property
    def matrix(self) -> sp.csr_matrix:
        """The entries as a CSR float32 matrix (collected once, then kept)."""
        if self._matrix is None:
            table = self.ratings.select(ROW, COL, VALUE).toArrow()
            rows, cols, values = (table.column(c).to_numpy() for c in (ROW, COL, VALUE))
            matrix = sp.csr_matrix(
                (values.astype(np.float32), (rows, cols)),
                shape=self.shape,
                dtype=np.float32,
            )
            matrix.sum_duplicates()
            self._matrix = matrix
        return self._matrix

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
        )

    def __repr__(self) -> str:
        n, m = self.shape
        return f"SparkInteractionMatrix({n} {self.id_name} x {m} {self.item_name})"
