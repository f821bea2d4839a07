"""Cross-validation splitters for event logs that never train on the future.

Both splitters cut the log into time-ordered blocks and, like
:class:`sklearn.model_selection.TimeSeriesSplit`, use the last ``n_splits``
blocks as test sets in turn, each with an expanding training window of every
event that happened strictly before the test block starts. They work on the
values of a time column, not on row order, so the rows need not be sorted.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import polars as pl
from sklearn.model_selection import BaseCrossValidator

from .._checks import check_required
from .._frame import check_no_nulls, reject_lazy, to_polars
from .._sklearn import event_subsampling_fraction

__all__ = ["SessionHoldoutSplit", "TemporalSplit"]


def check_time_column(
    df: pl.DataFrame, time_col: str, *, where: str, library: str = "polars"
) -> None:
    """Raise ``TypeError`` unless ``time_col`` orders events by time.

    A datetime, date or number orders events; strings would be sorted as
    text (``"10:00" < "9:00"``), so they are refused. Shared by the
    splitters and the session scorers, so their message is one. The hint
    is written in the syntax of the user's ``library`` (``"pandas"``: the
    input came from pandas).
    """
    dtype = df.schema[time_col]
    if not (dtype.is_numeric() or dtype.is_temporal()):
        if library == "pandas":
            parse = f"events[{time_col!r}] = pd.to_datetime(events[{time_col!r}])"
        else:
            parse = (
                f"events = events.with_columns(pl.col({time_col!r}).str.to_datetime())"
            )
        raise TypeError(
            f"{where}: the time column {time_col!r} must be a datetime, "
            f"date or number, got {dtype}. Parse strings first, e.g. {parse}."
        )


def library_of(X) -> str:
    """``"pandas"`` for a pandas frame, else ``"polars"`` (for hints)."""
    return "pandas" if type(X).__module__.startswith("pandas") else "polars"


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}, got {value!r} of type "
            f"{type(value).__name__}."
        )


def _positions(mask: np.ndarray) -> np.ndarray:
    """The positions where ``mask`` is true: int32 when they fit, else int64."""
    n = mask.shape[0]
    dtype = np.int32 if n <= np.iinfo(np.int32).max else np.int64
    return np.arange(n, dtype=dtype)[mask]


class _EventLogSplit(BaseCrossValidator):
    """Shared validation, input handling and block arithmetic."""

    _unit = "unit"  # what test_size counts, for messages

    def _check_params(self):
        _check_int(self.n_splits, "n_splits", 1)
        size = self.test_size
        if size is None:
            return
        if isinstance(size, bool) or not isinstance(size, Real):
            bad = True
        elif isinstance(size, Integral):
            bad = size < 1
        else:
            bad = not 0.0 < size < 1.0
        if bad:
            raise ValueError(
                f"test_size must be None, an integer >= 1 (number of "
                f"{self._unit}s per test block) or a float in (0, 1) (fraction "
                f"of all {self._unit}s), got {size!r}."
            )

    def _col(self, field: str) -> str:
        """The column of a schema ``field``: the parameter, else the schema's.

        ``<field>_col=None`` takes it from ``schema`` (the default
        :class:`~skals.schema.Schema` when there is none); a name given both
        ways must agree.
        """
        from ..schema import Schema

        schema = self.schema if self.schema is not None else Schema()
        if not isinstance(schema, Schema):
            raise TypeError(
                f"{type(self).__name__}(schema=...) takes a skals Schema, got "
                f"{type(schema).__name__}."
            )
        value = getattr(self, f"{field}_col")
        if value is None:
            return getattr(schema, field)
        if self.schema is not None and value != getattr(schema, field):
            raise ValueError(
                f"{type(self).__name__}: {field}_col={value!r} disagrees with the "
                f"schema's {field}={getattr(schema, field)!r}; give it once."
            )
        return value

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splitting iterations, ``n_splits``.

        Parameters
        ----------
        X, y, groups : object
            Ignored, present for API compatibility.

        Returns
        -------
        n_splits : int
            The number of folds.
        """
        return self.n_splits

    def _events(self, X, columns):
        """``X`` as a polars DataFrame with the columns this splitter needs."""
        where = type(self).__name__
        reject_lazy(X, what=f"{where}.split")
        df = to_polars(X, allow_lazy=False)
        fields = None
        if self.schema is not None:  # the hint names the schema's fields
            fields = {getattr(self.schema, f): f for f in self.schema.as_dict()}
        check_required(df.columns, columns, where, fields)
        df = df.select(columns)
        check_no_nulls(df, columns, where=where)
        check_time_column(df, self._col("time"), where=where, library=library_of(X))
        return df

    def _test_starts(self, n_units, gap=0):
        """First unit of each test block and the block size, in units."""
        if self.test_size is None:
            size = n_units // (self.n_splits + 1)
        elif isinstance(self.test_size, Integral):
            size = int(self.test_size)
        else:
            size = math.ceil(self.test_size * n_units)
        needed = self.n_splits * max(size, 1) + gap + 1
        if n_units < needed:
            raise ValueError(
                f"{type(self).__name__}: the event log is too small for "
                f"n_splits={self.n_splits}: it has {n_units} {self._unit}(s), and "
                f"{self.n_splits} test block(s) of {max(size, 1)}, a gap of {gap} "
                f"and one for training need at least {needed}. Lower n_splits "
                "or test_size, or pass more events."
            )
        first = n_units - self.n_splits * size
        return range(first, n_units, size), size


class TemporalSplit(_EventLogSplit):
    """Expanding-window cross-validation over the distinct times of an event log.

    The distinct values of ``time_col``, in increasing order, are the time
    units. The last ``n_splits`` blocks of ``test_size`` units are the test
    sets, in turn; each training set is every event strictly earlier than its
    test block's first time (minus ``gap`` units). Events that share a
    timestamp always fall on the same side, so no training event is later
    than, or simultaneous with, the start of its test block.

    Parameters
    ----------
    n_splits : int, default=3
        Number of folds (test blocks). Must be at least 1.
    time_col : str or None, default=None
        Column holding the event time (datetime, date or number). With
        ``time_col="date"`` a unit is a day. ``None``: the schema's ``time``
        (``"timestamp_local"`` without a schema).
    test_size : int or float, default=None
        Size of each test block. An int is a number of distinct times; a
        float in (0, 1) is a fraction of all distinct times, rounded up. None
        means ``n_distinct_times // (n_splits + 1)``, as in
        :class:`~sklearn.model_selection.TimeSeriesSplit`.
    gap : int, default=0
        Number of distinct times left out between the end of each training
        set and the start of its test block.
    schema : Schema or None, default=None
        The event log's column names (:class:`~skals.schema.Schema`), the
        same object the pipeline was built with.
        A splitter must be given it: scikit-learn's searches call
        ``cv.split(X, y, groups)`` with the data alone, never with the
        estimator, so a splitter cannot read the pipeline's columns. The
        scorers can (a search calls ``scorer(estimator, X)`` with the fitted
        pipeline) and need no schema; ``EarlyStoppingPipeline`` sees its own
        steps.

    See Also
    --------
    SessionHoldoutSplit : Hold out whole sessions by their start time.
    sklearn.model_selection.TimeSeriesSplit : The same scheme on row order.

    Notes
    -----
    Blocks have an equal number of distinct times, not of events. Rows are
    returned as positions in ``X`` in increasing order; ``X`` need not be
    sorted. A polars LazyFrame must be collected first: cross-validation
    slices rows.

    Examples
    --------
    >>> import polars as pl
    >>> from skals.model_selection import TemporalSplit
    >>> events = pl.DataFrame({"timestamp_local": [3, 1, 4, 1, 5, 2, 6, 5]})
    >>> cv = TemporalSplit(n_splits=2)
    >>> for train, test in cv.split(events):
    ...     print("train:", train, "test:", test)
    train: [1 3 5] test: [0 2]
    train: [0 1 2 3 5] test: [4 6 7]
    """

    _unit = "distinct time"

    def __init__(
        self, n_splits=3, *, time_col=None, test_size=None, gap=0, schema=None
    ):
        self.n_splits = n_splits
        self.time_col = time_col
        self.test_size = test_size
        self.gap = gap
        self.schema = schema
        self._check_params()

    def _check_params(self):
        super()._check_params()
        _check_int(self.gap, "gap", 0)

    def split(self, X, y=None, groups=None):
        """Generate indices to split the event log into training and test set.

        Parameters
        ----------
        X : polars.DataFrame or pandas.DataFrame
            The event log, with a ``time_col`` column.
        y : object
            Ignored, present for API compatibility.
        groups : object
            Ignored, present for API compatibility.

        Yields
        ------
        train : ndarray of int
            Row positions of the training events of that fold (int32 when
            the log has fewer than 2**31 rows: a search holds every fold's
            positions at once, 1.1 GB as int64 for 3 folds of 46M events).
        test : ndarray of int
            Row positions of the test events of that fold.
        """
        self._check_params()
        df = self._events(X, [self._col("time")])
        # 0-based rank of each event's time among the distinct times.
        unit = (
            df.select(pl.col(self._col("time")).rank("dense").cast(pl.Int64) - 1)
            .to_series()
            .to_numpy()
        )
        n_units = int(unit.max()) + 1 if unit.size else 0
        starts, size = self._test_starts(n_units, self.gap)
        for start in starts:
            train = _positions(unit < start - self.gap)
            test = _positions((unit >= start) & (unit < start + size))
            yield train, test


class SessionHoldoutSplit(_EventLogSplit):
    """Hold out whole sessions, in the order in which they start.

    A session starts at its first event. Sessions are ordered by start time
    (ties by session id) and cut into blocks of ``test_size`` sessions; the
    last ``n_splits`` blocks are the test sets, in turn. A fold's test set is
    every event of the sessions of its block, whole, however long they last.
    Its training set is every event, of any session, strictly earlier than
    the first start in the block.

    So a test session never has an event in its training set, and no
    training event is later than, or simultaneous with, any test event. A
    session that started before the block and is still running is cut at the
    block's start: only its earlier events are trained on.

    Parameters
    ----------
    n_splits : int, default=3
        Number of folds (test blocks). Must be at least 1.
    session_col : str or None, default=None
        Column holding the session id. ``None``: the schema's ``session``
        (``"session_id"`` without a schema).
    time_col : str or None, default=None
        Column holding the event time (datetime, date or number). ``None``:
        the schema's ``time`` (``"timestamp_local"`` without a schema).
    test_size : int or float, default=None
        Size of each test block. An int is a number of sessions; a float in
        (0, 1) is a fraction of all sessions, rounded up. None means
        ``n_sessions // (n_splits + 1)``.
    schema : Schema or None, default=None
        The event log's column names (:class:`~skals.schema.Schema`), the
        same object the pipeline was built with
        (:func:`~skals.schema.make_recommender_pipeline`).
        A splitter must be given it: scikit-learn's searches call
        ``cv.split(X, y, groups)`` with the data alone, never with the
        estimator, so a splitter cannot read the pipeline's columns. The
        scorers can (a search calls ``scorer(estimator, X)`` with the fitted
        pipeline) and need no schema; ``EarlyStoppingPipeline`` sees its own
        steps.

    See Also
    --------
    TemporalSplit : Expanding window over distinct times, not sessions.

    Notes
    -----
    This mimics the challenge: the test sessions are new, later sessions.
    The splitter yields whole test sessions; revealing their first events to
    the model (fold-in) is the scorer's job. A session of an earlier block
    that starts at the same time as the test block (a tie broken by id) is
    neither trained nor tested on in that fold. Rows are returned as
    positions in ``X`` in increasing order; ``X`` need not be sorted.

    Folds hold whole sessions, and must stay whole:
    ``HalvingGridSearchCV`` with its default ``resource="n_samples"`` would
    keep a random fraction of the events of each fold, so the splitter
    refuses to run under it (``ValueError``). Halve over whole sessions with
    :class:`SessionHalvingGridSearchCV`, or grow a parameter, e.g.
    ``resource="implicitalsrecommender__iterations"``.

    Examples
    --------
    >>> import polars as pl
    >>> from skals.model_selection import SessionHoldoutSplit
    >>> events = pl.DataFrame(
    ...     {
    ...         "session_id": ["c", "a", "b", "a", "d", "c", "b"],
    ...         "timestamp_local": [3, 1, 2, 4, 5, 6, 3],
    ...     }
    ... )
    >>> cv = SessionHoldoutSplit(n_splits=2, test_size=1)
    >>> for train, test in cv.split(events):
    ...     print("train:", train, "test:", test)
    train: [1 2] test: [0 5]
    train: [0 1 2 3 6] test: [4]
    """

    _unit = "session"

    def __init__(
        self,
        n_splits=3,
        *,
        session_col=None,
        time_col=None,
        test_size=None,
        schema=None,
    ):
        self.n_splits = n_splits
        self.session_col = session_col
        self.time_col = time_col
        self.test_size = test_size
        self.schema = schema
        self._check_params()

    def split(self, X, y=None, groups=None):
        """Generate indices to split the event log into training and test set.

        Parameters
        ----------
        X : polars.DataFrame or pandas.DataFrame
            The event log, with ``session_col`` and ``time_col`` columns.
        y : object
            Ignored, present for API compatibility.
        groups : object
            Ignored, present for API compatibility.

        Yields
        ------
        train : ndarray of int
            Row positions of the training events of that fold (int32 when
            the log has fewer than 2**31 rows: a search holds every fold's
            positions at once, 1.1 GB as int64 for 3 folds of 46M events).
        test : ndarray of int
            Row positions of the test events of that fold.
        """
        self._check_params()
        fraction = event_subsampling_fraction()
        if fraction is not None and fraction < 1:
            raise ValueError(
                "SessionHoldoutSplit: HalvingGridSearchCV(resource='n_samples') "
                f"keeps a random {fraction:.1%} of each fold's events, which cuts "
                "the held-out sessions apart: the session scorer would reveal "
                "other first events than the session's and miss part of its "
                "truth. Halve over whole sessions with "
                "skals.model_selection.SessionHalvingGridSearchCV, or use a "
                "parameter of the pipeline as the resource, e.g. "
                "HalvingGridSearchCV(..., resource="
                "'implicitalsrecommender__iterations', max_resources=15)."
            )
        df = self._events(X, [self._col("session"), self._col("time")])
        df = df.select(
            time=pl.col(self._col("time")).rank("dense").cast(pl.Int64) - 1,
            session=pl.col(self._col("session")).rank("dense").cast(pl.Int64) - 1,
        )
        n_sessions = int(df["session"].max()) + 1 if df.height else 0
        df = df.with_columns(start=pl.col("time").min().over("session"))
        # Position of each event's session in the (start, session id) order.
        order = (pl.col("start") * n_sessions + pl.col("session")).rank("dense")
        df = df.with_columns(position=order.cast(pl.Int64) - 1)
        time = df["time"].to_numpy()
        position = df["position"].to_numpy()
        start_of = np.empty(n_sessions, dtype=np.int64)
        start_of[position] = df["start"].to_numpy()

        starts, size = self._test_starts(n_sessions)
        if start_of[starts[0]] == 0:
            raise ValueError(
                f"SessionHoldoutSplit: the event log is too small for "
                f"n_splits={self.n_splits}: the first test block starts at the "
                "earliest time in the log, which leaves no event for training. "
                "Lower n_splits or test_size, or pass more events."
            )
        for first in starts:
            train = _positions(time < start_of[first])
            test = _positions((position >= first) & (position < first + size))
            yield train, test
