"""Dataframe handling in one place.

skals has one implementation, written against polars. Inputs are converted once
at the edge (pandas -> polars with :func:`polars.from_pandas`) and outputs are
converted back to the caller's library. Nothing else in skals imports pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ._checks import check_required, check_unique_names

__all__ = [
    "FrameKind",
    "check_columns",
    "check_no_nulls",
    "frame_kind",
    "reject_lazy",
    "to_native",
    "to_polars",
]


@dataclass(frozen=True)
class FrameKind:
    """Which dataframe library (and laziness) a frame came from."""

    library: str  # "polars" or "pandas"
    lazy: bool = False


def eager(kind: FrameKind) -> FrameKind:
    """The same library, not lazy (for steps whose output is collected)."""
    return FrameKind(kind.library, lazy=False)


def _is_pandas(X) -> bool:
    module = type(X).__module__
    return module.startswith("pandas") and type(X).__name__ == "DataFrame"


def is_spark(X) -> bool:
    """True for a pyspark DataFrame (classic or Connect); never imports pyspark."""
    cls = type(X)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("pyspark.sql")


def frame_kind(X) -> FrameKind:
    """Return the :class:`FrameKind` of ``X`` or raise a clear ``TypeError``."""
    if isinstance(X, pl.LazyFrame):
        return FrameKind("polars", lazy=True)
    if isinstance(X, pl.DataFrame):
        return FrameKind("polars")
    if _is_pandas(X):
        return FrameKind("pandas")
    if is_spark(X):
        raise TypeError(
            "A Spark DataFrame is taken by the pipeline's steps, not here: "
            "collect it first, e.g. `pl.from_arrow(df.toArrow())`."
        )
    raise TypeError(
        "Expected an event log as a polars DataFrame or LazyFrame or a pandas "
        f"DataFrame, got {type(X).__name__}."
    )


def to_polars(X, *, allow_lazy: bool = True) -> pl.DataFrame | pl.LazyFrame:
    """Convert an event log to polars (LazyFrame stays lazy where allowed).

    pandas columns of object dtype holding mixed values are converted by
    polars' own rules; a failure is re-raised naming the column.
    """
    kind = frame_kind(X)
    if kind.lazy and not allow_lazy:
        reject_lazy(X)
    if kind.library == "polars":
        names = X.collect_schema().names() if kind.lazy else X.columns
        check_unique_names(names)
        return X
    check_unique_names([str(c) for c in X.columns])
    try:
        return pl.from_pandas(X, include_index=False)
    except Exception as exc:  # pragma: no cover - depends on pandas content
        bad = []
        for col in X.columns:
            try:
                pl.from_pandas(X[[col]])
            except Exception:
                bad.append(col)
        raise TypeError(
            f"Could not convert pandas column(s) {bad!r} to polars: {exc}"
        ) from exc


def to_native(df: pl.DataFrame | pl.LazyFrame, kind: FrameKind):
    """Convert a polars result back to the library the input came from."""
    if kind.library == "pandas":
        if isinstance(df, pl.LazyFrame):
            df = df.collect()
        return df.to_pandas()
    if kind.lazy:
        return df.lazy() if isinstance(df, pl.DataFrame) else df
    return df.collect() if isinstance(df, pl.LazyFrame) else df


def reject_lazy(X, what: str = "this operation") -> None:
    """Raise the error GridSearchCV users see when they pass a LazyFrame."""
    if isinstance(X, pl.LazyFrame):
        raise TypeError(
            f"A polars LazyFrame cannot be used for {what}: cross-validation "
            "has to slice rows. Collect it first, e.g. `events.collect()`."
        )


def schema_of(df: pl.DataFrame | pl.LazyFrame) -> pl.Schema:
    return df.collect_schema() if isinstance(df, pl.LazyFrame) else df.schema


def check_columns(df, required, *, where: str) -> None:
    """Raise a ``ValueError`` naming the required columns that are missing."""
    check_required(schema_of(df).names(), required, where)


def check_no_nulls(df: pl.DataFrame, columns, *, where: str) -> None:
    """Raise a ``ValueError`` when a column has nulls (or float NaN)."""
    exprs = []
    schema = df.schema
    for c in columns:
        e = pl.col(c).is_null()
        if schema[c].is_float():
            e = e | pl.col(c).is_nan()
        exprs.append(e.sum().alias(c))
    counts = df.select(exprs).row(0, named=True) if exprs else {}
    bad = {c: n for c, n in counts.items() if n}
    if bad:
        detail = ", ".join(f"{c!r} ({n} rows)" for c, n in bad.items())
        raise ValueError(
            f"{where}: null or NaN values in column(s) {detail}. Drop or fill "
            "them before fitting; skals does not drop rows silently."
        )


def comparable_ids(values: pl.Series, dtype: pl.DataType) -> pl.Series | None:
    """``values`` as ids of ``dtype`` for an exact lookup; None if none can match.

    Ids match exactly: integers of another width match by value, an
    integer-valued float matches the integer (a NaN, infinite or fractional
    float matches nothing), a categorical matches its string. A string never
    matches an integer (``"010"`` is not item 10) nor an integer a string.
    """
    have = values.dtype
    if have == dtype:
        return values
    if have in (pl.Categorical, pl.Enum) and dtype == pl.String:
        return values.cast(pl.String)
    if dtype.is_integer() and (have.is_integer() or have.is_float()):
        if have.is_float():
            integral = values.is_finite() & (values == values.floor())
            values = pl.select(pl.when(integral).then(values)).to_series()
        return values.cast(dtype, strict=False)  # out of range: no match
    return None


def index_of(values: pl.Series, vocabulary: pl.Series) -> pl.Series:
    """Position of each value in the sorted ``vocabulary``; null if absent.

    Values match exactly (see :func:`comparable_ids`).
    """
    values = values.rename(values.name)
    cast = comparable_ids(values, vocabulary.dtype) if len(vocabulary) else None
    if cast is None:
        return pl.Series(values.name, [None] * len(values), dtype=pl.Int64)
    values = cast
    pos = vocabulary.search_sorted(values).cast(pl.Int64)
    clipped = pos.clip(0, len(vocabulary) - 1)
    found = (vocabulary.gather(clipped) == values).fill_null(False)
    return pl.select(pl.when(pl.lit(found)).then(pl.lit(pos))).to_series()
