"""PseudoUserUnifier: one user key per event row."""

from __future__ import annotations

import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from sklearn_compat.base import _fit_context

from .._frame import (
    check_columns,
    frame_kind,
    is_spark,
    schema_of,
    spark_call,
    to_native,
    to_polars,
)
from ._base import FrameTransformerMixin


def _render_id(col: str, dtype: pl.DataType) -> pl.Expr:
    """String form of an id column; integral floats render without ``.0``."""
    expr = pl.col(col)
    if dtype.is_float():
        expr = expr.fill_nan(None)
        integral = expr == expr.floor()
        return (
            pl.when(integral)
            .then(expr.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(expr.cast(pl.String))
        )
    return expr.cast(pl.String)


class PseudoUserUnifier(FrameTransformerMixin, TransformerMixin, BaseEstimator):
    """Give every event a user key: the user where known, else the session.

    Adds the column ``output_col`` holding ``u_<user_id>`` where the user id is
    present and ``s_<session_id>`` otherwise, so that anonymous sessions become
    pseudo-users (85% of the challenge's rows have no user id). A null or NaN
    user id counts as missing, and integral float ids render without a
    trailing ``.0`` (``12.0`` becomes ``u_12``). Every row and column is kept.

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
        Prefix of keys built from a session id.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns of the frame seen in :meth:`fit`.
    n_features_in_ : int
        Number of those columns.

    See Also
    --------
    ConfidenceEncoder : Aggregates the keyed events into confidences.

    Examples
    --------
    >>> import polars as pl
    >>> from skals import PseudoUserUnifier
    >>> events = pl.DataFrame({"session_id": [7, 8], "user_id": [12.0, None],
    ...                        "partnumber": [1, 2]})
    >>> PseudoUserUnifier().fit_transform(events)["unified_user_id"].to_list()
    ['u_12', 's_8']
    """

    _parameter_constraints: dict = {
        "user_col": [str],
        "session_col": [str],
        "output_col": [str],
        "user_prefix": [str],
        "session_prefix": [str],
    }

    def __init__(
        self,
        user_col="user_id",
        session_col="session_id",
        output_col="unified_user_id",
        user_prefix="u_",
        session_prefix="s_",
    ):
        self.user_col = user_col
        self.session_col = session_col
        self.output_col = output_col
        self.user_prefix = user_prefix
        self.session_prefix = session_prefix

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
        check_columns(df, [self.user_col, self.session_col], where=where)
        if self.output_col in schema_of(df).names():
            raise ValueError(
                f"{where}: the input already has a column {self.output_col!r}; "
                "choose another output_col."
            )
        if isinstance(df, pl.DataFrame):
            n_null = df.select(pl.col(self.session_col).is_null().sum()).item()
            if schema_of(df)[self.session_col].is_float():
                n_null += df.select(pl.col(self.session_col).is_nan().sum()).item()
            if n_null:
                raise ValueError(
                    f"{where}: column {self.session_col!r} has {n_null} null or "
                    "NaN values; every event needs a session id."
                )

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
        schema = schema_of(df)
        user = _render_id(self.user_col, schema[self.user_col])
        session = _render_id(self.session_col, schema[self.session_col])
        key = (
            pl.when(user.is_not_null())
            .then(pl.lit(self.user_prefix) + user)
            .otherwise(pl.lit(self.session_prefix) + session)
            .alias(self.output_col)
        )
        return to_native(df.with_columns(key), kind)
