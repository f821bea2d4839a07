"""The dataframe transformers on a Spark DataFrame.

Each function does, with Spark expressions, what the transformer's polars
code does, with the same checks and messages. Nothing collects the event log
to the driver: the checks are one-row aggregates, and the only things
collected are what the model keeps anyway (the id vocabularies and the
per-item statistics of the popularity fallback).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .._frame import _check_unique_names, index_of
from ..preprocessing import (
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)
from ..preprocessing._builder import check_unused_columns, report_session_keys
from ..preprocessing._cache import warn
from ..preprocessing._confidence import (
    CART_COUNT,
    CONFIDENCE,
    VIEW_COUNT,
    check_float_item_counts,
    report_duplicates,
)
from ..preprocessing._unifier import check_prefixes
from ._matrix import COL, KEY, ROW, VALUE, SparkInteractionMatrix

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_FLOAT = (T.FloatType, T.DoubleType)


def col(name: str):
    """A column by its exact name (dots and spaces are not paths)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _dtype(df, name: str):
    return df.schema[name].dataType


def _check_columns(df, required, where: str) -> None:
    names = df.columns
    _check_unique_names(names)
    missing = [c for c in required if c not in names]
    if missing:
        raise ValueError(
            f"{where}: missing required column(s) {missing!r}; the input has "
            f"{sorted(names)!r}. Column names are parameters of {where}."
        )


def _remember_columns(est, df) -> None:
    est.feature_names_in_ = np.asarray(df.columns, dtype=object)
    est.n_features_in_ = len(df.columns)


def to_polars(df) -> pl.DataFrame:
    """Collect a (small) Spark DataFrame through Arrow."""
    return pl.from_arrow(df.toArrow())


def from_polars(spark, frame: pl.DataFrame):
    """A Spark DataFrame of a (small) polars frame, through Arrow."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    return spark.createDataFrame(table)


# ------------------------------------------------------------------ unifier
def _render_id(df, name: str, expr=None):
    """String form of an id column; integral floats render without ``.0``."""
    expr = col(name) if expr is None else expr
    if isinstance(_dtype(df, name), _FLOAT):
        # round, not floor: floor casts to long and overflows (ANSI mode);
        # an integral id beyond Int64 becomes null, as polars' lenient cast
        expr = F.when(~F.isnan(expr), expr)
        return F.when(
            expr == F.round(expr), expr.try_cast("long").cast("string")
        ).otherwise(expr.cast("string"))
    return expr.cast("string")


def _coded_missing(df, est: PseudoUserUnifier):
    """True where a present user id is a missing-value marker or infinite."""
    user, dtype = col(est.user_col), _dtype(df, est.user_col)
    if isinstance(dtype, _FLOAT):
        return F.coalesce(F.abs(user) == F.lit(float("inf")), F.lit(False))
    if isinstance(dtype, T.StringType) and est.missing_values:
        return F.coalesce(user.isin(list(est.missing_values)), F.lit(False))
    return F.lit(False)


def _check_unifier_input(est: PseudoUserUnifier, df) -> None:
    where = type(est).__name__
    check_prefixes(est.user_prefix, est.session_prefix, where)
    _check_columns(df, [est.user_col, est.session_col], where)
    if est.output_col in df.columns:
        raise ValueError(
            f"{where}: the input already has a column {est.output_col!r}; "
            "choose another output_col."
        )


def unifier_fit(est: PseudoUserUnifier, df):
    _check_unifier_input(est, df)
    _remember_columns(est, df)
    return est


def unifier_transform(est: PseudoUserUnifier, df):
    # like a polars LazyFrame: nothing is computed here (so no counts for
    # the warnings), and null session ids are caught by the encoder
    from pyspark.sql import Window

    _check_unifier_input(est, df)
    user = F.when(~_coded_missing(df, est), col(est.user_col))
    if isinstance(_dtype(df, est.user_col), _FLOAT):
        user = F.when(~F.isnan(user), user)
    by_session = Window.partitionBy(col(est.session_col))
    session_user = F.min(user).over(by_session)
    key = F.when(
        session_user.isNotNull(),
        F.concat(F.lit(est.user_prefix), _render_id(df, est.user_col, session_user)),
    ).otherwise(F.concat(F.lit(est.session_prefix), _render_id(df, est.session_col)))
    return df.withColumn(est.output_col, key)


# ------------------------------------------------------------------ encoder
def _item_column(df, item_col: str, where: str):
    """``df`` with a valid item column (see ``check_item_column``)."""
    dtype = _dtype(df, item_col)
    if isinstance(dtype, _FLOAT):
        item = col(item_col)
        n_nan, n_frac = df.agg(
            F.sum((item.isNull() | F.isnan(item)).cast("long")),
            F.sum((~F.isnan(item) & (item != F.round(item))).cast("long")),
        ).first()
        check_float_item_counts(item_col, n_nan, n_frac, where)
        return df.withColumn(item_col, item.cast("long"))
    if not isinstance(dtype, (*_INTEGRAL, T.StringType)):
        raise TypeError(
            f"{where}: column {item_col!r} has dtype {dtype.simpleString()}; "
            "item ids must be integers or strings."
        )
    return df


def _cart_expr(df, name: str, where: str):
    dtype = _dtype(df, name)
    if isinstance(dtype, T.BooleanType):
        return col(name).cast("long")
    if isinstance(dtype, _FLOAT):
        return F.when(~F.isnan(col(name)), col(name))
    if isinstance(dtype, _INTEGRAL):
        return col(name)
    raise TypeError(
        f"{where}: column {name!r} has dtype {dtype.simpleString()}; it must hold "
        "0/1 (integer, float or boolean) add-to-cart flags."
    )


def encoder_fit(est: ConfidenceEncoder, df):
    _check_columns(df, est._required(require_cart=True), est._where)
    _remember_columns(est, df)
    return est


def encoder_transform(est: ConfidenceEncoder, df):
    where = est._where
    _check_columns(df, est._required(require_cart=False), where)
    if est.drop_duplicates:
        n_rows = df.count()
        df = df.dropDuplicates()
        report_duplicates(where, n_rows - df.count(), n_rows)
    df = _item_column(df, est.item_col, where)
    if est.cart_col in df.columns:
        cart = _cart_expr(df, est.cart_col, where)
    else:
        cart = F.lit(0).cast("long")
    keys = [est.user_col]
    if est.grain == "session":
        keys.append(est.session_col)
    keys.append(est.item_col)
    out = df.groupBy(*[col(k) for k in keys]).agg(
        F.count(F.lit(1)).alias(VIEW_COUNT),
        F.coalesce(F.sum(cart), F.lit(0)).cast("long").alias(CART_COUNT),
        F.sum(cart.isNull().cast("long")).alias("__cart_null"),
        F.sum(((cart != 0) & (cart != 1)).cast("long")).alias("__cart_bad"),
    )
    _check_encoded(est, out, keys)
    confidence = (
        F.lit(1.0)
        + F.lit(float(est.view_weight)) * col(VIEW_COUNT)
        + F.lit(float(est.cart_weight)) * col(CART_COUNT)
    ).alias(CONFIDENCE)
    out = out.select(
        *[col(k) for k in keys], col(VIEW_COUNT), col(CART_COUNT), confidence
    )
    if est.segment_col is not None:
        # a key's segment: its most frequent value, the smallest among ties
        seg, n = est.segment_col, "__n"
        segments = (
            df.where(col(seg).isNotNull())
            .groupBy(col(est.user_col), col(seg))
            .agg(F.count(F.lit(1)).alias(n))
            .groupBy(col(est.user_col))
            .agg(F.min_by(col(seg), F.struct(-col(n), col(seg))).alias(seg))
        )
        out = out.join(segments, on=est.user_col, how="left")
    return out


def _check_encoded(est: ConfidenceEncoder, out, keys) -> None:
    """One Spark job over the aggregate: null keys and bad add-to-cart flags."""
    where = est._where
    counts = out.agg(
        *[F.sum(col(k).isNull().cast("long")) for k in keys],
        F.sum("__cart_null"),
        F.sum("__cart_bad"),
    ).first()
    *null_keys, cart_null, cart_bad = (int(v or 0) for v in counts)
    for k, n in zip(keys, null_keys, strict=True):
        if n:
            raise ValueError(
                f"{where}: column {k!r} has null values; every event needs "
                f"a {k!r} (drop or fill those rows first)."
            )
    if cart_null:
        raise ValueError(
            f"{where}: column {est.cart_col!r} has {cart_null} null or NaN values."
        )
    if cart_bad:
        raise ValueError(
            f"{where}: column {est.cart_col!r} must hold only 0 and 1; "
            f"{cart_bad} (key, item) groups have other values."
        )


# ------------------------------------------------------------------ builder
_CHECKS = ("__nonfinite", "__negative", "__null_users")


def _prepare(est: InteractionMatrixBuilder, df):
    """Input with a valid item column, and the aggregates that check it.

    The checks are sums, so that they can ride along in the job that reads
    the input anyway; :func:`_raise_bad` turns their totals into errors.
    """
    where = est._where
    required = [est.user_col, est.item_col, est.value_col]
    if est.segment_col is not None:
        required.append(est.segment_col)
    _check_columns(df, required, where)
    check_unused_columns(est, df.columns)
    df = _item_column(df, est.item_col, where)
    dtype = _dtype(df, est.value_col)
    if not isinstance(dtype, T.NumericType):
        raise TypeError(
            f"{where}: column {est.value_col!r} has dtype {dtype.simpleString()}; "
            "confidences must be numeric."
        )
    v = col(est.value_col).cast("double")
    nonfinite = v.isNull() | F.isnan(v) | (F.abs(v) == F.lit(float("inf")))
    flags = (nonfinite, v < 0, col(est.user_col).isNull())
    checks = [
        F.sum(flag.cast("long")).alias(name)
        for flag, name in zip(flags, _CHECKS, strict=True)
    ]
    return df, checks


def _raise_bad(est: InteractionMatrixBuilder, totals) -> None:
    where = est._where
    n_nonfinite, n_negative, n_null_users = (int(totals[c] or 0) for c in _CHECKS)
    if n_nonfinite:
        raise ValueError(
            f"{where}: column {est.value_col!r} has {n_nonfinite} "
            "null, NaN or infinite values."
        )
    if n_negative:
        raise ValueError(
            f"{where}: column {est.value_col!r} has {n_negative} "
            "negative values; confidences must be >= 0."
        )
    if n_null_users:
        raise ValueError(
            f"{where}: column {est.user_col!r} has {n_null_users} null values."
        )


def _vocabulary(df, name: str) -> pl.Series:
    """Sorted distinct values of a column: distinct in Spark, sorted locally.

    Sorting on the driver (the vocabulary is small next to the log) gives
    exactly the order of the local builder, whatever Spark's collation.
    """
    ids = to_polars(df.select(col(name)).distinct()).to_series()
    return ids.sort().rename(name)


def builder_fit(est: InteractionMatrixBuilder, df):
    df, checks = _prepare(est, df)
    totals = df.agg(F.count(F.lit(1)).alias("__rows"), *checks).first().asDict()
    _raise_bad(est, totals)
    if totals["__rows"] == 0:
        raise ValueError(f"{est._where}: cannot fit on an empty frame.")
    _remember_columns(est, df)
    est.user_ids_ = _vocabulary(df, est.user_col)
    est.item_ids_ = _vocabulary(df, est.item_col)
    return est


def builder_transform(est: InteractionMatrixBuilder, df) -> SparkInteractionMatrix:
    df, checks = _prepare(est, df)
    where, spark = est._where, df.sparkSession
    seg = est.segment_col
    items = from_polars(
        spark,
        pl.DataFrame(
            {
                est.item_col: est.item_ids_,
                "__col": pl.int_range(len(est.item_ids_), dtype=pl.Int32, eager=True),
            }
        ),
    )
    if est.item_ids_.dtype.is_integer() == isinstance(
        _dtype(df, est.item_col), _INTEGRAL
    ):
        df = df.join(F.broadcast(items), on=est.item_col, how="left")
    else:
        # strings never match integer ids nor integers string ids ("010" is
        # not item 10, as locally); every row is unknown and counted
        df = df.withColumn("__col", F.lit(None).cast("int"))

    # per-item statistics of the popularity fallback; the group of unknown
    # items (null __col) counts the rows dropped
    by = ([seg] if seg is not None else []) + ["__col"]
    aggs = [F.sum(col(est.value_col).cast("double")).alias(CONFIDENCE)]
    aggs += [
        F.sum(col(c).cast("double")).alias(c)
        for c in (VIEW_COUNT, CART_COUNT)
        if c in df.columns
    ]
    aggs.append(F.count(F.lit(1)).cast("double").alias("n_rows"))
    stats = to_polars(df.groupBy(*[col(c) for c in by]).agg(*aggs, *checks))
    _raise_bad(est, stats.select(pl.col(_CHECKS).sum()).row(0, named=True))
    stats = stats.drop(_CHECKS)
    stats = stats.with_columns(pl.col("__col").cast(pl.Int64))
    unknown = int(stats.filter(pl.col("__col").is_null())["n_rows"].sum())
    if unknown:
        total = int(stats["n_rows"].sum())
        n_items = (
            df.where(F.col("__col").isNull()).select(col(est.item_col)).distinct()
        ).count()
        warn(
            f"{where}: dropped {unknown} of {total} rows whose "
            f"{est.item_col!r} ({n_items} distinct ids) was not seen in fit.",
            UserWarning,
            stacklevel=4,
        )
    by_out = [c if c != "__col" else "item_index" for c in by]
    stats = (
        stats.filter(pl.col("__col").is_not_null())
        .rename({"__col": "item_index"})
        .sort(by_out)
    )

    # one row per key (or session) of the input, sorted by id, as locally
    session_grain = est.session_col in df.columns and est.session_col != est.user_col
    id_name = est.session_col if session_grain else est.user_col
    # a row's key: the smallest of its keys (as locally), its segment: that
    # key's
    row_aggs = [
        F.min(col(est.user_col)).alias("__key"),
        F.countDistinct(col(est.user_col)).alias("__n_keys"),
    ]
    if seg is not None:
        row_aggs.append(
            F.min_by(col(seg), F.struct(col(est.user_col), col(seg))).alias("__seg")
        )
    rows = to_polars(df.groupBy(col(id_name)).agg(*row_aggs)).sort(id_name)
    if session_grain:
        report_session_keys(where, id_name, (rows["__n_keys"] > 1).sum())
    keys = rows["__key"]
    index = rows.select(
        id_name,
        pl.int_range(rows.height, dtype=pl.Int32).alias(ROW),
        index_of(keys, keys.unique().sort()).cast(pl.Int32).alias(KEY),
    )
    ratings = (
        df.where(F.col("__col").isNotNull())
        .join(from_polars(spark, index), on=id_name, how="inner")
        .select(
            F.col(ROW),
            F.col(KEY),
            F.col("__col").alias(COL),
            col(est.value_col).cast("double").alias(VALUE),
        )
    )
    return SparkInteractionMatrix(
        ratings,
        row_ids=rows[id_name],
        row_keys=keys.rename(est.user_col),
        item_ids=est.item_ids_,
        id_name=id_name,
        item_name=est.item_col,
        row_segments=rows["__seg"].rename(seg) if seg is not None else None,
        item_stats=stats,
    )


_IMPLEMENTATIONS = (
    (PseudoUserUnifier, {"fit": unifier_fit, "transform": unifier_transform}),
    (ConfidenceEncoder, {"fit": encoder_fit, "transform": encoder_transform}),
    (InteractionMatrixBuilder, {"fit": builder_fit, "transform": builder_transform}),
)


def dispatch(estimator, method: str, X):
    """Run ``estimator.<method>(X)`` on the Spark DataFrame ``X``."""
    for cls, methods in _IMPLEMENTATIONS:
        if isinstance(estimator, cls):
            return methods[method](estimator, X)
    raise TypeError(  # pragma: no cover - only skals' transformers dispatch
        f"{type(estimator).__name__} has no Spark implementation."
    )
