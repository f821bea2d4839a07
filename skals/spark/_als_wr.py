"""Spark MLlib's ALS-WR: training on Spark and the fold-in rule, in numpy.

What :class:`~skals.spark.SparkALSRecommender` (and the deprecated
``ImplicitALSRecommender(engine="spark")``) train and fold in with. This
module imports no skals estimator, so both can use it without an import
cycle. Two differences between the models, and how skals maps them:

* **Confidence.** implicit reads a stored value ``v`` as the confidence
  ``c = alpha * v`` (preference 1); Spark's ``implicitPrefs=True`` reads a
  rating ``r`` as ``c = 1 + alpha_spark * r`` (preference 1 where ``r > 0``).
  skals trains Spark with ``alpha_spark = 1`` and ``r = c - 1``, so both
  engines minimise the same loss over the same confidences (for the
  notebook's ``c = 1 + views + 10 * carts``, Spark sees ``views + 10 *
  carts``). Spark cannot express a positive preference with a confidence
  below 1: an entry with ``c <= 1`` is given ``r = EPS`` (confidence 1).
* **Regularization.** Spark multiplies ``regParam`` by each user's (item's)
  number of ratings ``n_u`` (ALS-WR, Zhou et al. 2008); implicit does not. The
  same ``regularization`` is therefore a much stronger penalty on Spark, and a
  fold-in on Spark-trained factors solves with ``regularization * n_u``
  (:func:`fold_in_als_wr`), as Spark's own last half-step does.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Spark rating of an entry whose confidence is at most 1 (see module doc).
EPS = 1e-6

#: Padded (row, entry) cells per batch of the fold-in: bounds its memory at
#: about ``BATCH_CELLS * factors * 8`` bytes.
BATCH_CELLS = 1 << 15


def spark_confidence(values: np.ndarray, alpha: float) -> np.ndarray:
    """Confidence Spark trains with for stored values: ``1 + max(c - 1, EPS)``."""
    return 1.0 + np.maximum(alpha * np.asarray(values, dtype=np.float64) - 1.0, EPS)


def fold_in_als_wr(
    rows: sp.csr_matrix,
    item_factors: np.ndarray,
    regularization: float,
    alpha: float = 1.0,
) -> np.ndarray:
    """User factors against fixed item factors, with Spark's ALS-WR rule.

    For a row ``u`` with ``n_u`` stored entries, solves

    .. math:: (Y^T Y + Y_u^T (C_u - I) Y_u + \\lambda n_u I) x_u = Y_u^T c_u

    (Hu et al.'s normal equations with Spark's regularization), where ``C_u``
    holds :func:`spark_confidence` of the row's values. Empty rows get zero
    factors. Rows are solved in batches (sorted by length, padded to the
    longest in the batch) with one batched ``numpy.linalg.solve`` each: no
    Python loop per row.

    Parameters
    ----------
    rows : scipy.sparse.csr_matrix of shape (n_rows, n_items)
        Non-negative values (implicit's scale: confidence ``alpha * value``).
    item_factors : ndarray of shape (n_items, factors)
        Fixed item factors.
    regularization : float
        Spark's ``regParam``.
    alpha : float, default=1.0
        Multiplier of the values.

    Returns
    -------
    user_factors : ndarray of float32, shape (n_rows, factors)
    """
    rows = sp.csr_matrix(rows, copy=True)  # never modify the caller's arrays
    rows.eliminate_zeros()
    rows.sort_indices()
    Y = np.asarray(item_factors, dtype=np.float64)
    n_rows, n_factors = rows.shape[0], Y.shape[1]
    out = np.zeros((n_rows, n_factors), dtype=np.float32)
    counts = np.diff(rows.indptr)
    order = np.flatnonzero(counts)
    if order.size == 0:
        return out
    order = order[np.argsort(counts[order], kind="stable")]
    confidence = spark_confidence(rows.data, alpha)
    YtY = Y.T @ Y
    eye = np.eye(n_factors)
    start = 0
    while start < order.size:
        # rows sorted by length: the batch [start, stop) is padded to the
        # length of its last row; grow it while the padded cells fit
        cells = np.arange(1, order.size - start + 1) * counts[order[start:]]
        stop = start + max(1, int(np.searchsorted(cells, BATCH_CELLS, side="right")))
        batch = order[start:stop]
        lengths = counts[batch]
        width = int(lengths.max())
        offsets = np.arange(width)
        mask = offsets[None, :] < lengths[:, None]
        pos = np.where(mask, rows.indptr[batch][:, None] + offsets[None, :], 0)
        Yb = Y[rows.indices[pos]]  # (batch, width, factors)
        c = np.where(mask, confidence[pos], 0.0)
        weighted = Yb * np.where(mask, c - 1.0, 0.0)[:, :, None]
        A = np.matmul(weighted.transpose(0, 2, 1), Yb) + YtY
        A += (regularization * lengths)[:, None, None] * eye
        b = np.einsum("bw,bwf->bf", c, Yb)
        out[batch] = np.linalg.solve(A, b[:, :, None])[:, :, 0]
        start = stop
    return out


def _spark_ratings(X, matrix: sp.csr_matrix, alpha: float):
    """(SparkSession, DataFrame of user, item, rating) to train on."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from ..recommender._base import encoder_confidences
    from ._matrix import SparkInteractionMatrix
    from ._preprocessing import from_polars

    if isinstance(X, SparkInteractionMatrix) and (
        X.id_name == X.row_keys.name or encoder_confidences(X)
    ):
        # summed in Spark by the same rule as the local matrix (which the
        # estimator keeps as history); other values are sent from ``matrix``
        spark = X.ratings.sparkSession
        ratings = X.key_ratings()
    else:
        import polars as pl

        spark = SparkSession.builder.getOrCreate()
        coo = matrix.tocoo()
        ratings = from_polars(
            spark,
            pl.DataFrame(
                {
                    "user": coo.row.astype(np.int32),
                    "item": coo.col.astype(np.int32),
                    "value": coo.data.astype(np.float64),
                }
            ),
        )
    rating = F.greatest(F.lit(float(alpha)) * F.col("value") - F.lit(1.0), F.lit(EPS))
    ratings = ratings.where(F.col("value") > 0).select(
        "user", "item", rating.alias("rating")
    )
    return spark, ratings


def _collect_factors(frame, n: int, n_factors: int) -> np.ndarray:
    """Spark's ``(id, features)`` factors as an (n, factors) float32 array."""
    table = frame.toArrow()
    out = np.zeros((n, n_factors), dtype=np.float32)
    if table.num_rows:
        ids = table.column("id").to_numpy()
        features = table.column("features").combine_chunks().flatten().to_numpy()
        out[ids] = features.reshape(len(ids), n_factors)
    return out


def spark_als_factors(
    X,
    matrix: sp.csr_matrix,
    *,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int,
    seed: int,
    num_blocks: int | None = None,
):
    """Train Spark ALS and return (user, item) factors as numpy arrays.

    ``matrix`` is the validated key-grain training matrix; for a
    :class:`~skals.spark.SparkInteractionMatrix` the ratings are read from
    Spark instead (the same entries, aggregated there), otherwise the
    matrix's entries are sent to the active SparkSession. ``num_blocks``
    (user and item blocks) defaults to one per core.
    """
    from pyspark.ml.recommendation import ALS

    spark, ratings = _spark_ratings(X, matrix, alpha)
    if num_blocks is None:
        try:  # one block per core, not Spark's fixed 10 (Connect has no context)
            num_blocks = max(1, spark.sparkContext.defaultParallelism)
        except Exception:  # pragma: no cover - Spark Connect
            num_blocks = 10
    als = ALS(
        rank=factors,
        maxIter=iterations,
        regParam=float(regularization),
        implicitPrefs=True,
        alpha=1.0,
        nonnegative=False,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        seed=int(seed),
        numUserBlocks=num_blocks,
        numItemBlocks=num_blocks,
    )
    model = als.fit(ratings)
    n_users, n_items = matrix.shape
    users = _collect_factors(model.userFactors, n_users, factors)
    items = _collect_factors(model.itemFactors, n_items, factors)
    return users, items
