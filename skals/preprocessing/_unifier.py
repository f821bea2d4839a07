"""PseudoUserUnifier: one user key per event row."""

from __future__ import annotations

import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from sklearn_compat.base import _fit_context

from .._checks import (
    check_output_col,
    check_prefixes,
    raise_null_sessions,
    report_unifier_counts,
)
from .._frame import (
    check_columns,
    frame_kind,
    is_spark,
    schema_of,
    to_native,
    to_polars,
)
from ._base import FrameTransformerMixin, spark_call

#: User ids that mean "no user" (as strings), the default ``missing_values``.
MISSING_VALUES = ("", "NaN", "null", "None")


def user_id_expr(col: str, dtype: pl.DataType, missing_values) -> pl.Expr:
    """The user id column with missing ids as null.

    Null, NaN and infinite floats, and strings among ``missing_values``, are
    missing.
    """
    expr = pl.col(col)
    if dtype.is_float():
        return pl.when(expr.is_finite()).then(expr)
    if dtype in (pl.String, pl.Categorical, pl.Enum) and missing_values:
        text = expr.cast(pl.String)
        return pl.when(~text.is_in(list(missing_values))).then(expr)
    return expr


def coded_missing(col: str, dtype: pl.DataType, missing_values) -> pl.Expr:
    """True where a present user id is a missing-value marker or infinite."""
    if dtype.is_float():
        return pl.col(col).is_infinite()
    if dtype in (pl.String, pl.Categorical, pl.Enum) and missing_values:
        return pl.col(col).cast(pl.String).is_in(list(missing_values))
    return pl.lit(False)


def _render_id(expr: pl.Expr | str, dtype: pl.DataType) -> pl.Expr:
    """String form of an id (an expression or a column name); integral floats
    render without ``.0``."""
    if isinstance(expr, str):
        expr = pl.col(expr)
    if dtype.is_float():
        expr = expr.fill_nan(None)
        integral = expr == expr.floor()
        return (
            pl.when(integral)
            .then(expr.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(expr.cast(pl.String))
        )
    return expr.cast(pl.String)


def _refuse_inexact_float_ids(df: pl.DataFrame, col: str, where) -> None:
    """Float ids must render exactly: integral and below 2**53 in magnitude.

    Beyond 2**53 a float64 no longer holds every integer (the id written in
    the file may not be the one stored) and beyond 2**63 it has no Int64
    form at all; a fractional id has no integer form. Either is an error
    naming a few, not a silent null key.
    """
    if not df.schema[col].is_float():
        return
    x = pl.col(col)
    bad = x.is_finite() & (x.abs() >= 2.0**53)
    shown = df.filter(bad).select(x.unique().sort().head(3)).to_series().to_list()
    if shown:
        n = df.select(bad.sum()).item()
        raise ValueError(
            f"{where}: {n} rows have a float {col!r} that is not an exact "
            f"integer id (2**53 or more in magnitude), e.g. {shown}; store "
            "the ids as integers or strings."
        )


class PseudoUserUnifier(FrameTransformerMixin, TransformerMixin, BaseEstimator):
    """Give every event a user key: the user where known, else the session.

    Adds the column ``output_col`` holding ``u_<user_id>`` for the events of a
    session with a logged-in user and ``s_<session_id>`` otherwise, so that
    anonymous sessions become pseudo-users (85% of the challenge's rows have
    no user id). Integral float ids render without a trailing ``.0``
    (``12.0`` becomes ``u_12``). Every row and column is kept.

    **One key per session.** A session's key is the user key when any event
    of the session has a user id (a user who logs in half-way owns the
    events before the login too), so the rows of a session never split over
    two keys and the result does not depend on row order. When the events of
    one session carry several different user ids (a shared device), the
    session takes the smallest user id: a rule that needs no time column and
    gives the same key whatever the row order; a warning counts these
    sessions.

    **Missing user ids.** Null, NaN and infinite floats, and the strings of
    ``missing_values`` (by default ``""``, ``"NaN"``, ``"null"`` and
    ``"None"``, as CSV and pandas exports write a missing value), are
    missing: otherwise every anonymous event would merge into one key such
    as ``u_NaN``. A warning counts the rows whose user id was such a marker
    or an infinite float (a null needs no warning).

    The output has the input's type: polars DataFrame in, polars DataFrame
    out; polars LazyFrame in, LazyFrame out (nothing is computed); pandas in,
    pandas out.

    Parameters
    ----------
    user_col : str, default="user_id"
        Column with the (nullable) logged-in user id.
    session_col : str, default="session_id"
        Column with the session id, used where the user id is missing.
    output_col : str, default="unified_user_id"
        Name of the added key column.
    user_prefix : str, default="u_"
        Prefix of keys built from a user id.
    session_prefix : str, default="s_"
        Prefix of keys built from a session id. Neither prefix may be a
        prefix of the other (equal prefixes would merge user 5 and session 5).
    missing_values : tuple of str, default=("", "NaN", "null", "None")
        String user ids that mean "no user". Compared exactly (case and
        spaces count); ``()`` treats every string as a user id.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns of the frame seen in :meth:`fit`.
    n_features_in_ : int
        Number of those columns.

    See Also
    --------
    ConfidenceEncoder : Aggregates the keyed events into confidences.

    Notes
    -----
    The warnings need a pass over the data, so they are given for eager
    frames (polars or pandas); a LazyFrame stays lazy and gets the same keys
    without the counts.

    Examples
    --------
    >>> import polars as pl
    >>> from skals import PseudoUserUnifier
    >>> events = pl.DataFrame({"session_id": [7, 8, 9, 9],
    ...                        "user_id": [12.0, None, None, 3.0],
    ...                        "partnumber": [1, 2, 3, 4]})
    >>> PseudoUserUnifier().fit_transform(events)["unified_user_id"].to_list()
    ['u_12', 's_8', 'u_3', 'u_3']
    """

    #: Which parameters name a column of the event log, by
    #: :class:`~skals.schema.Schema` field (read by ``schema_of``).
    _schema_params = {"user_col": "user", "session_col": "session"}

    _parameter_constraints: dict = {
        "user_col": [str],
        "session_col": [str],
        "output_col": [str],
        "user_prefix": [str],
        "session_prefix": [str],
        "missing_values": [tuple, list],
    }

    #: fit learns nothing from the rows, and transform gives each input row
    #: one output row, in order, that depends on its session's rows only:
    #: the rows of some sessions of the output are those sessions' output
    #: (EarlyStoppingPipeline transforms the whole log, then filters)
    _transforms_sessions_alone = True

    def __init__(
        self,
        user_col="user_id",
        session_col="session_id",
        output_col="unified_user_id",
        user_prefix="u_",
        session_prefix="s_",
        missing_values=MISSING_VALUES,
    ):
        self.user_col = user_col
        self.session_col = session_col
        self.output_col = output_col
        self.user_prefix = user_prefix
        self.session_prefix = session_prefix
        self.missing_values = missing_values

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the columns of the event log ``X`` and remember them.

        Parameters
        ----------
        X : polars DataFrame or LazyFrame, or pandas DataFrame
            Event log with ``user_col`` and ``session_col``.
        y : None
            Ignored.

        Returns
        -------
        self : PseudoUserUnifier
            Fitted transformer.
        """
        if is_spark(X):
            return spark_call(self, "fit", X)
        df = to_polars(X)
        self._check_input(df)
        self._remember_columns(df)
        return self

    def _check_input(self, df) -> None:
        where = type(self).__name__
        check_prefixes(self.user_prefix, self.session_prefix, where)
        check_columns(df, [self.user_col, self.session_col], where=where)
        check_output_col(schema_of(df).names(), self.output_col, where)
        if isinstance(df, pl.DataFrame):
            session = pl.col(self.session_col)
            bad = session.is_null()
            if schema_of(df)[self.session_col].is_float():
                bad = bad | session.is_nan()
            raise_null_sessions(where, self.session_col, df.select(bad.sum()).item())

    def transform(self, X):
        """Add the user key column.

        Parameters
        ----------
        X : polars DataFrame or LazyFrame, or pandas DataFrame
            Event log with ``user_col`` and ``session_col``.

        Returns
        -------
        X_out : same type as ``X``
            ``X`` with the column ``output_col`` added.
        """
        check_is_fitted(self)
        if is_spark(X):
            return spark_call(self, "transform", X)
        kind = frame_kind(X)
        df = to_polars(X)
        self._check_input(df)
        return to_native(self._with_key(df), kind)

    def _with_key(self, df):
        """``df`` with the key column, computed once per session.

        A group-by over the sessions finds each session's user (the smallest
        user id among its events), whether it has several, and how many of its
        user ids are coded-missing, in one pass; the key strings are rendered
        per session, not per row, and joined back to the rows in their order.
        """
        schema = schema_of(df)
        user_dtype = schema[self.user_col]
        user = user_id_expr(self.user_col, user_dtype, self.missing_values)
        session = self.session_col
        if isinstance(df, pl.DataFrame):
            for col in (self.user_col, self.session_col):
                _refuse_inexact_float_ids(df, col, type(self).__name__)
        sessions = (
            df.lazy()
            .group_by(session)
            .agg(
                user.min().alias("__user"),
                # several different user ids: the smallest and largest differ
                (user.min() != user.max()).alias("__multi"),
                coded_missing(self.user_col, user_dtype, self.missing_values)
                .sum()
                .alias("__coded"),
            )
        )
        key = (
            pl.when(pl.col("__user").is_not_null())
            .then(pl.lit(self.user_prefix) + _render_id("__user", user_dtype))
            .otherwise(
                pl.lit(self.session_prefix) + _render_id(session, schema[session])
            )
            .alias(self.output_col)
        )
        sessions = sessions.with_columns(key)
        if isinstance(df, pl.LazyFrame):
            # stays lazy: no counts (see Notes)
            return df.join(
                sessions.select(session, self.output_col),
                on=session,
                how="left",
                maintain_order="left",
                nulls_equal=True,
            )
        sessions = sessions.collect()
        self._warn_counts(sessions)
        # only the session column goes through the join: the other columns
        # are not gathered, the key is added to the input's own columns
        keys = (
            df.lazy()
            .select(session)
            .join(
                sessions.lazy().select(session, self.output_col),
                on=session,
                how="left",
                maintain_order="left",
                nulls_equal=True,
            )
            .select(self.output_col)
            .collect()
            .to_series()
        )
        return df.with_columns(keys)

    def _warn_counts(self, sessions: pl.DataFrame) -> None:
        """Warn about coded-missing user ids and sessions of several users."""
        n_coded, n_multi = sessions.select(
            pl.col("__coded").sum(), pl.col("__multi").sum()
        ).row(0)
        report_unifier_counts(
            type(self).__name__,
            self.user_col,
            int(n_coded or 0),
            int(n_multi or 0),
            self.missing_values,
        )
