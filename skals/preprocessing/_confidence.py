"""ConfidenceEncoder: events -> one confidence per (user key, item)."""

from __future__ import annotations

from numbers import Real

import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from sklearn_compat.base import _fit_context

from .._checks import (
    check_encoded_counts,
    check_float_item_counts,
    raise_bad_cart_dtype,
    raise_bad_item_dtype,
    report_duplicates,
)
from .._frame import (
    check_columns,
    eager,
    frame_kind,
    is_spark,
    schema_of,
    to_native,
    to_polars,
)
from .._sklearn import Interval, StrOptions
from ._base import FrameTransformerMixin, spark_call

#: Columns added by :class:`ConfidenceEncoder`.
VIEW_COUNT, CART_COUNT, CONFIDENCE = "view_count", "cart_count", "confidence"
#: Columns added by :class:`ConfidenceEncoder` when ``time_col`` is set.
LAST_TIME, RECENCY = "last_time", "recency"
EVENT_TIMES, EVENT_VALUES = "event_times", "event_values"


def check_item_column(df, item_col: str, where: str):
    """Return ``df`` with a valid item column, or raise naming the problem.

    Integer and string item ids are valid as they are. A float column is
    accepted only when every value is integral (it is cast to Int64); NaN or
    fractional values raise. Nulls raise.
    """
    dtype = schema_of(df)[item_col]
    if dtype.is_float():
        bad = df.select(
            (pl.col(item_col).is_nan() | pl.col(item_col).is_null()).sum().alias("nan"),
            (pl.col(item_col) != pl.col(item_col).floor()).sum().alias("frac"),
        )
        if isinstance(bad, pl.LazyFrame):
            bad = bad.collect()
        check_float_item_counts(item_col, *bad.row(0), where)
        return df.with_columns(pl.col(item_col).cast(pl.Int64))
    if not (dtype.is_integer() or dtype in (pl.String, pl.Categorical, pl.Enum)):
        raise_bad_item_dtype(where, item_col, str(dtype))
    if dtype in (pl.Categorical, pl.Enum):
        df = df.with_columns(pl.col(item_col).cast(pl.String))
    return df


def _cart_expr(col: str, dtype: pl.DataType, where: str) -> pl.Expr:
    if dtype == pl.Boolean:
        return pl.col(col).cast(pl.Int64)
    if dtype.is_float():
        return pl.col(col).fill_nan(None)
    if dtype.is_integer():
        return pl.col(col)
    raise_bad_cart_dtype(where, col, str(dtype))


class ConfidenceEncoder(FrameTransformerMixin, TransformerMixin, BaseEstimator):
    """Aggregate events into one confidence per (user key, item).

    For every (key, item) pair: ``view_count`` is the number of events,
    ``cart_count`` the number of add-to-cart events, and

    .. math:: c = 1 + w_v \\cdot \\mathrm{view\\_count} + w_c \\cdot
              \\mathrm{cart\\_count}

    (Hu, Koren & Volinsky 2008). The defaults (``view_weight=1``,
    ``cart_weight=10``) reproduce the notebook exactly. Both weights are
    hyperparameters: tune them with the ALS ones in one grid search
    (``confidenceencoder__cart_weight``).

    ``cart_col`` is required to fit. When transforming for prediction it may
    be absent (the challenge's test log has none): every event then counts as
    a view with ``cart_count = 0``.

    Parameters
    ----------
    user_col : str, default="unified_user_id"
        Key column (as written by :class:`PseudoUserUnifier`).
    item_col : str, default="partnumber"
        Item id column; integers or strings (integral floats are cast).
    cart_col : str, default="add_to_cart"
        0/1 add-to-cart flag.
    view_weight : float, default=1.0
        Weight of an event in the confidence. Non-negative.
    cart_weight : float, default=10.0
        Extra weight of an add-to-cart event. Non-negative.
    grain : {"key", "session"}, default="key"
        ``"key"``: one row per (key, item). ``"session"``: one row per
        (key, session, item), with the ``session_col`` kept, so that
        predictions come one per session (each from its own events plus its
        user's training history). Training is identical for both grains: the
        builder sums a key's sessions (the confidence is affine in the counts,
        so ``1 + sum(c_s - 1)`` equals the formula on the summed counts).
    session_col : str, default="session_id"
        Session column, used when ``grain="session"``.
    segment_col : str or None, default=None
        Optional column (e.g. ``"country"``) passed on per row, so the
        popularity fallback can rank within a segment. A key's segment is its
        most frequent value. Name it on :class:`InteractionMatrixBuilder` too
        (the builder raises when the encoded rows carry a column it would
        ignore).
    time_col : str or None, default=None
        Event time column (e.g. ``"timestamp_local"``; a datetime or a number
        of seconds). When set, the output gets two more columns per row:
        ``last_time``, the item's last event time within its group (the
        session at ``grain="session"``, the key at ``grain="key"``), and
        ``recency``, the rank of the item by that time within the group
        (1 for the most recently interacted distinct item, 2 for the one
        before, ...; ties by item id, larger first). The builder turns them
        into the matrix's ``row_times`` and ``recency``, which
        :class:`~skals.SessionKNNRecommender` needs for position weighting and
        recency sampling. ``None`` adds nothing (and costs nothing).
    drop_duplicates : bool, default=False
        Drop exact duplicate events (rows equal in every column) before
        counting, with a warning that counts them. By default every row
        counts: a log may hold the same event twice legitimately (two views
        within one timestamp tick), and the notebook's counts keep them, but
        a log duplicated by an export or a join inflates the confidences;
        set it when the log's rows should be unique.
    keep_events : bool, default=False
        Also output, per row, the time and the confidence of each of its
        events, in the log's order (list columns ``event_times`` and
        ``event_values``; an event's value is ``view_weight``, plus
        ``cart_weight`` for a cart add, so a row's ``confidence`` is 1 plus
        the sum of its values). The builder turns them into the matrix's
        ``events`` (each row's items in time order), which
        :class:`~skals.RerankRecommender` needs to learn from every prefix
        of a session. Needs ``time_col``. ``False`` adds nothing (and costs
        nothing).

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns of the frame seen in :meth:`fit`.
    n_features_in_ : int
        Number of those columns.

    See Also
    --------
    InteractionMatrixBuilder : Turns the encoded rows into a sparse matrix.

    Notes
    -----
    The output has the input's library (pandas in, pandas out). A polars
    LazyFrame is aggregated (the lazy query runs) and an eager polars
    DataFrame comes out: the aggregate is small next to the event log.

    Examples
    --------
    >>> import polars as pl
    >>> from skals import ConfidenceEncoder
    >>> events = pl.DataFrame({"unified_user_id": ["u_1", "u_1", "u_1"],
    ...                        "partnumber": [5, 5, 6], "add_to_cart": [0, 1, 0]})
    >>> ConfidenceEncoder().fit_transform(events).sort("partnumber").rows()
    [('u_1', 5, 2, 1, 13.0), ('u_1', 6, 1, 0, 2.0)]
    """

    #: Which parameters name a column of the event log, by
    #: :class:`~skals.schema.Schema` field (read by ``schema_of``).
    _schema_params = {
        "item_col": "item",
        "cart_col": "cart",
        "session_col": "session",
        "segment_col": "segment",
        "time_col": "time",
    }

    _parameter_constraints: dict = {
        "user_col": [str],
        "item_col": [str],
        "cart_col": [str],
        "view_weight": [Interval(Real, 0, None, closed="left")],
        "cart_weight": [Interval(Real, 0, None, closed="left")],
        "grain": [StrOptions({"key", "session"})],
        "session_col": [str],
        "segment_col": [str, None],
        "time_col": [str, None],
        "drop_duplicates": ["boolean"],
        "keep_events": ["boolean"],
    }

    def __init__(
        self,
        user_col="unified_user_id",
        item_col="partnumber",
        cart_col="add_to_cart",
        view_weight=1.0,
        cart_weight=10.0,
        grain="key",
        session_col="session_id",
        segment_col=None,
        time_col=None,
        drop_duplicates=False,
        keep_events=False,
    ):
        self.user_col = user_col
        self.item_col = item_col
        self.cart_col = cart_col
        self.view_weight = view_weight
        self.cart_weight = cart_weight
        self.grain = grain
        self.session_col = session_col
        self.segment_col = segment_col
        self.time_col = time_col
        self.drop_duplicates = drop_duplicates
        self.keep_events = keep_events

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the event log and remember its columns.

        Parameters
        ----------
        X : polars DataFrame or LazyFrame, or pandas DataFrame
            Keyed event log with ``user_col``, ``item_col`` and ``cart_col``.
        y : None
            Ignored.

        Returns
        -------
        self : ConfidenceEncoder
            Fitted transformer.
        """
        if is_spark(X):
            return spark_call(self, "fit", X)
        df = to_polars(X)
        if self.keep_events and self.time_col is None:
            raise ValueError(
                f"{self._where}(keep_events=True) needs the events' times: set "
                "time_col (e.g. time_col='timestamp_local')."
            )
        check_columns(df, self._required(require_cart=True), where=self._where)
        self._remember_columns(df)
        return self

    @property
    def _where(self) -> str:
        return type(self).__name__

    def _required(self, require_cart: bool) -> list[str]:
        cols = [self.user_col, self.item_col]
        if require_cart:
            cols.append(self.cart_col)
        if self.grain == "session":
            cols.append(self.session_col)
        if self.segment_col is not None:
            cols.append(self.segment_col)
        if self.time_col is not None:
            cols.append(self.time_col)
        return cols

    def transform(self, X):
        """Aggregate the events into counts and confidences.

        Parameters
        ----------
        X : polars DataFrame or LazyFrame, or pandas DataFrame
            Keyed event log. ``cart_col`` may be missing (treated as 0).

        Returns
        -------
        encoded : polars or pandas DataFrame
            One row per (key, item) (or (key, session, item)) with the columns
            ``user_col``, [``session_col``], ``item_col``, ``view_count``,
            ``cart_count``, ``confidence`` [, ``segment_col``] [and
            ``last_time``, ``recency`` when ``time_col`` is set] [and
            ``event_times``, ``event_values`` with ``keep_events``].
        """
        check_is_fitted(self)
        if is_spark(X):
            return spark_call(self, "transform", X)
        kind = frame_kind(X)
        df = to_polars(X)
        check_columns(df, self._required(require_cart=False), where=self._where)
        return to_native(self._encode(df), eager(kind))

    def _encode(self, df) -> pl.DataFrame:
        where = self._where
        schema = schema_of(df)
        df = check_item_column(df, self.item_col, where)
        if self.cart_col in schema.names():
            cart = _cart_expr(self.cart_col, schema[self.cart_col], where)
        else:
            cart = pl.lit(0, dtype=pl.Int64)
        keys = [self.user_col]
        if self.grain == "session":
            keys.append(self.session_col)
        keys.append(self.item_col)
        aggs = [pl.len().cast(pl.Int64).alias(VIEW_COUNT), cart.sum().alias(CART_COUNT)]
        # the validations are one reduction over the rows, run with the
        # group-by in the same collect (per-group counts would cost the
        # aggregation two more columns for 1 number each)
        checks = [
            *(pl.col(k).is_null().sum().alias(k) for k in keys),
            cart.is_null().sum().alias("__cart_null"),
            ((cart != 0) & (cart != 1)).sum().alias("__cart_bad"),
        ]
        lf = df.lazy()
        counts = []
        if self.drop_duplicates:
            counts = [lf.select(pl.len()), lf.unique().select(pl.len())]
            lf = lf.unique()
        if self.time_col is not None:
            time = self._time_expr(schema[self.time_col])
            aggs.append(time.max().alias(LAST_TIME))
            if self.keep_events:
                # every event of the row, in the log's order (a group keeps
                # its rows' order); the builder sorts them by time
                if self.cart_col in schema.names():
                    value = float(self.view_weight) + float(self.cart_weight) * cart
                else:  # every event a view (a literal would not aggregate)
                    value = pl.repeat(float(self.view_weight), pl.len())
                aggs += [
                    time.alias(EVENT_TIMES),
                    value.cast(pl.Float64).alias(EVENT_VALUES),
                ]
            checks.append(time.is_null().sum().alias("__t_null"))
        queries = [lf.group_by(keys).agg(aggs), lf.select(checks)]
        if self.segment_col is not None:
            # a key's segment: its most frequent value over its events
            seg = pl.col(self.segment_col).drop_nulls().mode().sort().first()
            queries.append(lf.group_by(self.user_col).agg(seg))
        out, checked, *seg_frame = pl.collect_all(queries + counts)
        checked = checked.row(0, named=True)
        if counts:
            (n_rows,), (n_unique,) = (c.row(0) for c in seg_frame[-2:])
            seg_frame = seg_frame[:-2]
            report_duplicates(where, n_rows - n_unique, n_rows)
        self._check_encoded(checked, keys)
        out = out.with_columns(pl.col(CART_COUNT).cast(pl.Int64))
        confidence = (
            1.0
            + float(self.view_weight) * pl.col(VIEW_COUNT)
            + float(self.cart_weight) * pl.col(CART_COUNT)
        ).alias(CONFIDENCE)
        cols = [*keys, VIEW_COUNT, CART_COUNT, confidence]
        if seg_frame:
            out = out.join(seg_frame[0], on=self.user_col, how="left")
            cols.append(self.segment_col)
        if self.time_col is not None:
            out = self._with_recency(out, keys, checked["__t_null"])
            cols += [LAST_TIME, RECENCY]
            if self.keep_events:
                cols += [EVENT_TIMES, EVENT_VALUES]
        return out.select(cols)

    def _time_expr(self, dtype: pl.DataType) -> pl.Expr:
        if not (isinstance(dtype, (pl.Datetime, pl.Date)) or dtype.is_numeric()):
            raise TypeError(
                f"{self._where}: column {self.time_col!r} has dtype {dtype}; "
                "event times must be datetimes, dates or numbers (seconds)."
            )
        return pl.col(self.time_col)

    def _with_recency(
        self, out: pl.DataFrame, keys: list[str], n_null: int
    ) -> pl.DataFrame:
        """Add ``recency``: rank of the item by ``last_time`` within its group."""
        if n_null:
            raise ValueError(
                f"{self._where}: column {self.time_col!r} has {n_null} null "
                "values; every event needs a time (drop or fill those rows)."
            )
        group = keys[:-1]
        # most recent first; equal times: the larger item id first
        rank = pl.struct(LAST_TIME, self.item_col).rank("ordinal", descending=True)
        return out.with_columns(rank.over(group).cast(pl.Int64).alias(RECENCY))

    def _check_encoded(self, counts: dict, keys) -> None:
        check_encoded_counts(
            self,
            {k: counts[k] for k in keys},
            counts["__cart_null"],
            counts["__cart_bad"],
        )
