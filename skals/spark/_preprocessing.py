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

from .._checks import (
    check_encoded_counts,
    check_float_item_counts,
    check_not_empty,
    check_null_ids,
    check_output_col,
    check_prefixes,
    check_required,
    check_unique_names,
    check_unused_columns,
    check_value_counts,
    raise_bad_cart_dtype,
    raise_bad_item_dtype,
    raise_bad_value_dtype,
    report_duplicates,
    report_session_keys,
    report_unknown_items,
)
from .._frame import index_of
from .._interaction import epoch_seconds
from ._matrix import COL, KEY, REC, ROW, VALUE, SparkInteractionMatrix

#: Columns added by ConfidenceEncoder (as in skals.preprocessing._confidence).
VIEW_COUNT, CART_COUNT, CONFIDENCE = "view_count", "cart_count", "confidence"
#: Added by ConfidenceEncoder when time_col is set.
LAST_TIME, RECENCY = "last_time", "recency"

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_FLOAT = (T.FloatType, T.DoubleType)
_TIME = (T.TimestampType, T.TimestampNTZType, T.DateType, T.NumericType)


def col(name: str):
    """A column by its exact name (dots and spaces are not paths)."""
    return F.col("`" + name.replace("`", "``") + "`")


def _dtype(df, name: str):
    return df.schema[name].dataType


def _check_columns(df, required, where: str) -> None:
    check_unique_names(df.columns)
    check_required(df.columns, required, where)


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


def _coded_missing(df, est):
    """True where a present user id is a missing-value marker or infinite."""
    user, dtype = col(est.user_col), _dtype(df, est.user_col)
    if isinstance(dtype, _FLOAT):
        return F.coalesce(F.abs(user) == F.lit(float("inf")), F.lit(False))
    if isinstance(dtype, T.StringType) and est.missing_values:
        return F.coalesce(user.isin(list(est.missing_values)), F.lit(False))
    return F.lit(False)


def _check_unifier_input(est, df) -> None:
    where = type(est).__name__
    check_prefixes(est.user_prefix, est.session_prefix, where)
    _check_columns(df, [est.user_col, est.session_col], where)
    check_output_col(df.columns, est.output_col, where)


def unifier_fit(est, df):
    _check_unifier_input(est, df)
    _remember_columns(est, df)
    return est


def unifier_transform(est, df):
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
        raise_bad_item_dtype(where, item_col, dtype.simpleString())
    return df


def _cart_expr(df, name: str, where: str):
    dtype = _dtype(df, name)
    if isinstance(dtype, T.BooleanType):
        return col(name).cast("long")
    if isinstance(dtype, _FLOAT):
        return F.when(~F.isnan(col(name)), col(name))
    if isinstance(dtype, _INTEGRAL):
        return col(name)
    raise_bad_cart_dtype(where, name, dtype.simpleString())


def encoder_fit(est, df):
    if est.keep_events:
        raise NotImplementedError(
            f"{est._where}(keep_events=True) is not implemented for Spark "
            "DataFrames (a list of events per row); collect the log to polars, "
            "or use a recommender that does not need the events."
        )
    _check_columns(df, est._required(require_cart=True), est._where)
    _remember_columns(est, df)
    return est


def encoder_transform(est, df):
    from pyspark.sql import Window

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
    aggs = [
        F.count(F.lit(1)).alias(VIEW_COUNT),
        F.coalesce(F.sum(cart), F.lit(0)).cast("long").alias(CART_COUNT),
        F.sum(cart.isNull().cast("long")).alias("__cart_null"),
        F.sum(((cart != 0) & (cart != 1)).cast("long")).alias("__cart_bad"),
    ]
    if est.time_col is not None:
        time = _time_column(df, est)
        aggs += [
            F.max(time).alias(LAST_TIME),
            F.sum(time.isNull().cast("long")).alias("__t_null"),
        ]
    out = df.groupBy(*[col(k) for k in keys]).agg(*aggs)
    _check_encoded(est, out, keys)
    confidence = (
        F.lit(1.0)
        + F.lit(float(est.view_weight)) * col(VIEW_COUNT)
        + F.lit(float(est.cart_weight)) * col(CART_COUNT)
    ).alias(CONFIDENCE)
    times = []
    if est.time_col is not None:
        # rank of the item by its last time within its group (the session,
        # or the key): 1 for the most recent; equal times: larger item first
        # (polars' ordinal rank of (last_time, item), descending)
        group = Window.partitionBy(*[col(k) for k in keys[:-1]]).orderBy(
            col(LAST_TIME).desc(), col(est.item_col).desc()
        )
        times = [col(LAST_TIME), F.row_number().over(group).cast("long").alias(RECENCY)]
    out = out.select(
        *[col(k) for k in keys], col(VIEW_COUNT), col(CART_COUNT), confidence, *times
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
        if times:  # the polars encoder's column order
            out = out.select(
                *[c for c in out.columns if c not in (LAST_TIME, RECENCY)],
                LAST_TIME,
                RECENCY,
            )
    return out


def _time_column(df, est):
    """The event time column, checked as the polars encoder checks it."""
    dtype = _dtype(df, est.time_col)
    if not isinstance(dtype, _TIME):
        raise TypeError(
            f"{est._where}: column {est.time_col!r} has dtype "
            f"{dtype.simpleString()}; event times must be datetimes, dates or "
            "numbers (seconds)."
        )
    return col(est.time_col)


def _check_encoded(est, out, keys) -> None:
    """One Spark job over the aggregate: null keys, bad flags, null times."""
    has_time = "__t_null" in out.columns
    counts = out.agg(
        *[F.sum(col(k).isNull().cast("long")) for k in keys],
        F.sum("__cart_null"),
        F.sum("__cart_bad"),
        F.sum("__t_null") if has_time else F.lit(0),
    ).first()
    *null_keys, cart_null, cart_bad, n_null = (int(v or 0) for v in counts)
    check_encoded_counts(
        est, dict(zip(keys, null_keys, strict=True)), cart_null, cart_bad
    )
    if n_null:
        raise ValueError(
            f"{est._where}: column {est.time_col!r} has {n_null} null "
            "values; every event needs a time (drop or fill those rows)."
        )


def _epoch_micros(df, name: str):
    """``name`` as integer microseconds since the epoch, or None for numbers.

    Timestamps count from the epoch instant, timestamps without a time zone
    and dates from 1970-01-01 00:00 (as polars' naive datetimes). The driver
    turns them into float seconds with the polars builder's own expression,
    so that both give the same floats.
    """
    dtype = _dtype(df, name)
    if isinstance(dtype, T.TimestampNTZType):
        epoch = F.lit("1970-01-01 00:00:00").cast("timestamp_ntz")
        return F.timestamp_diff("MICROSECOND", epoch, col(name))
    if isinstance(dtype, T.TimestampType):
        return F.unix_micros(col(name))
    if isinstance(dtype, T.DateType):
        return F.unix_date(col(name)).cast("long") * F.lit(86_400_000_000)
    return None


# ------------------------------------------------------------------ builder
_CHECKS = ("__nonfinite", "__negative", "__null_users")


def _prepare(est, df):
    """Input with a valid item column, and the aggregates that check it.

    The checks are sums, so that they can ride along in the job that reads
    the input anyway; :func:`_raise_bad` turns their totals into errors.
    """
    where = est._where
    required = [est.user_col, est.item_col, est.value_col]
    if est.segment_col is not None:
        required.append(est.segment_col)
    _check_columns(df, required, where)
    check_unused_columns(est, df.columns, (VIEW_COUNT, CART_COUNT))
    df = _item_column(df, est.item_col, where)
    dtype = _dtype(df, est.value_col)
    if not isinstance(dtype, T.NumericType):
        raise_bad_value_dtype(where, est.value_col, dtype.simpleString())
    v = col(est.value_col).cast("double")
    nonfinite = v.isNull() | F.isnan(v) | (F.abs(v) == F.lit(float("inf")))
    flags = (nonfinite, v < 0, col(est.user_col).isNull())
    checks = [
        F.sum(flag.cast("long")).alias(name)
        for flag, name in zip(flags, _CHECKS, strict=True)
    ]
    return df, checks


def _raise_bad(est, totals) -> None:
    where = est._where
    n_nonfinite, n_negative, n_null_users = (int(totals[c] or 0) for c in _CHECKS)
    check_value_counts(where, est.value_col, n_nonfinite, n_negative)
    check_null_ids(where, {est.user_col: n_null_users})


def _vocabulary(df, name: str) -> pl.Series:
    """Sorted distinct values of a column: distinct in Spark, sorted locally.

    Sorting on the driver (the vocabulary is small next to the log) gives
    exactly the order of the local builder, whatever Spark's collation.
    """
    ids = to_polars(df.select(col(name)).distinct()).to_series()
    return ids.sort().rename(name)


def builder_fit(est, df):
    df, checks = _prepare(est, df)
    totals = df.agg(F.count(F.lit(1)).alias("__rows"), *checks).first().asDict()
    _raise_bad(est, totals)
    check_not_empty(est._where, totals["__rows"])
    _remember_columns(est, df)
    est.user_ids_ = _vocabulary(df, est.user_col)
    est.item_ids_ = _vocabulary(df, est.item_col)
    return est


def builder_transform(est, df) -> SparkInteractionMatrix:
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
        n_items = (
            df.where(F.col("__col").isNull()).select(col(est.item_col)).distinct()
        ).count()
        total = int(stats["n_rows"].sum())
        report_unknown_items(where, est.item_col, unknown, total, n_items)
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
    has_time = LAST_TIME in df.columns and RECENCY in df.columns
    if has_time:  # a row's time: its last event's (what sampling orders by)
        micros = _epoch_micros(df, LAST_TIME)
        time = col(LAST_TIME).cast("double") if micros is None else micros
        row_aggs.append(F.max(time).alias("__time"))
    rows = to_polars(df.groupBy(col(id_name)).agg(*row_aggs)).sort(id_name)
    row_times = None
    if has_time:  # seconds as the polars builder computes them
        row_times = epoch_seconds(rows["__time"], micros is not None)
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
            *([col(RECENCY).cast("int").alias(REC)] if has_time else []),
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
        row_times=row_times,
    )


#: Implementations by transformer class name (this module does not import
#: the transformers, which call it through ``skals.preprocessing._base.spark_call``).
_IMPLEMENTATIONS = {
    "PseudoUserUnifier": {"fit": unifier_fit, "transform": unifier_transform},
    "ConfidenceEncoder": {"fit": encoder_fit, "transform": encoder_transform},
    "InteractionMatrixBuilder": {"fit": builder_fit, "transform": builder_transform},
}


def dispatch(estimator, method: str, X):
    """Run ``estimator.<method>(X)`` on the Spark DataFrame ``X``."""
    for cls in type(estimator).__mro__:
        if cls.__module__.startswith("skals.") and cls.__name__ in _IMPLEMENTATIONS:
            return _IMPLEMENTATIONS[cls.__name__][method](estimator, X)
    raise TypeError(  # pragma: no cover - only skals' transformers dispatch
        f"{type(estimator).__name__} has no Spark implementation."
    )
