"""Cross-validation splitters: exact folds, no leak from the future, sklearn use."""

import datetime as dt
from itertools import pairwise

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, cross_validate

from skals.model_selection import SessionHoldoutSplit, TemporalSplit

T0 = dt.datetime(2024, 6, 1, 10, 0)


def _minutes(values):
    return [T0 + dt.timedelta(minutes=v) for v in values]


def _folds(cv, X):
    return [(train.tolist(), test.tolist()) for train, test in cv.split(X)]


# Times 1..6 (in minutes), with ties, rows in no particular order.
#   row:  0  1  2  3  4  5  6  7  8  9
TIMES = [5, 2, 3, 1, 5, 4, 2, 6, 3, 6]


@pytest.fixture
def timed():
    return pl.DataFrame(
        {"timestamp_local": _minutes(TIMES), "partnumber": list(range(10))}
    )


def test_temporal_exact_folds(timed):
    # 6 distinct times, n_splits=2 -> test_size = 6 // 3 = 2 times per block:
    # fold 0 tests times {3, 4} (rows 2, 8 | 5), trains on {1, 2} (rows 3 | 1, 6)
    # fold 1 tests times {5, 6} (rows 0, 4 | 7, 9), trains on {1..4}
    cv = TemporalSplit(n_splits=2)
    assert _folds(cv, timed) == [
        ([1, 3, 6], [2, 5, 8]),
        ([1, 2, 3, 5, 6, 8], [0, 4, 7, 9]),
    ]
    # test_size=0.25 of 6 times, rounded up, is also 2.
    assert _folds(TemporalSplit(n_splits=2, test_size=0.25), timed) == _folds(cv, timed)


def test_temporal_test_size_and_gap(timed):
    # test_size=1, gap=1: fold 0 tests time 5 (rows 0, 4) and trains on times
    # before 4 (1, 2, 3); fold 1 tests time 6 (rows 7, 9), trains on 1..4.
    cv = TemporalSplit(n_splits=2, test_size=1, gap=1)
    assert _folds(cv, timed) == [
        ([1, 2, 3, 6, 8], [0, 4]),
        ([1, 2, 3, 5, 6, 8], [7, 9]),
    ]


def test_temporal_ties_never_straddle_the_boundary():
    # Three events at the test block's first time, none of them in training.
    X = pl.DataFrame({"timestamp_local": [2, 1, 2, 2, 1]})
    [(train, test)] = TemporalSplit(n_splits=1, test_size=1).split(X)
    assert train.tolist() == [1, 4]
    assert test.tolist() == [0, 2, 3]


def test_temporal_by_date_column():
    days = [dt.date(2024, 6, d) for d in (3, 1, 2, 3, 1, 4)]
    X = pl.DataFrame({"date": days, "timestamp_local": list(range(6))})
    folds = _folds(TemporalSplit(n_splits=2, time_col="date", test_size=1), X)
    # days 1..4; fold 0 tests day 3 (rows 0, 3), fold 1 tests day 4 (row 5).
    assert folds == [([1, 2, 4], [0, 3]), ([0, 1, 2, 3, 4], [5])]


# Sessions (start time): A (1, runs until 7), B (2), C (4), D (4), E (6).
# In start order, ties by id: A, B, C, D, E.
SESSIONS = [
    # row: session, minute
    ("D", 8),  # 0
    ("A", 2),  # 1
    ("E", 6),  # 2
    ("C", 5),  # 3
    ("B", 3),  # 4
    ("A", 7),  # 5
    ("D", 4),  # 6
    ("A", 1),  # 7
    ("C", 4),  # 8
    ("E", 6),  # 9
    ("B", 2),  # 10
]


@pytest.fixture
def sessions():
    return pl.DataFrame(
        {
            "session_id": [s for s, _ in SESSIONS],
            "timestamp_local": _minutes([t for _, t in SESSIONS]),
            "partnumber": list(range(len(SESSIONS))),
        }
    )


def test_session_holdout_exact_folds(sessions):
    # 5 sessions, n_splits=2 -> test_size = 5 // 3 = 1 session per block.
    # fold 0 tests D (rows 0, 6), trains on events before 4: A1 A2 B2 B3.
    #   C starts at 4 too (tie, earlier by id): neither trained nor tested.
    # fold 1 tests E (rows 2, 9), trains on events before 6: everything
    #   except A7, D8 and E itself. A is cut at the block start.
    cv = SessionHoldoutSplit(n_splits=2)
    assert _folds(cv, sessions) == [
        ([1, 4, 7, 10], [0, 6]),
        ([1, 3, 4, 6, 7, 8, 10], [2, 9]),
    ]


def test_session_holdout_test_size(sessions):
    # 2 sessions per block: fold 0 tests B, C (trains on A1, before 2),
    # fold 1 tests D, E (trains on events before 4).
    cv = SessionHoldoutSplit(n_splits=2, test_size=2)
    assert _folds(cv, sessions) == [
        ([7], [3, 4, 8, 10]),
        ([1, 4, 7, 10], [0, 2, 6, 9]),
    ]
    # 0.3 of 5 sessions, rounded up, is 2 as well.
    assert _folds(SessionHoldoutSplit(n_splits=2, test_size=0.3), sessions) == (
        _folds(cv, sessions)
    )


def test_positions_are_int32_and_index_the_log(timed, sessions):
    # a search holds every fold's positions at once: int32 halves them
    for cv, X in [
        (TemporalSplit(n_splits=2), timed),
        (SessionHoldoutSplit(n_splits=2), sessions),
    ]:
        for train, test in cv.split(X):
            assert train.dtype == test.dtype == np.int32
            assert X[train].height == train.size


def test_pandas_and_polars_give_the_same_splits(timed, sessions):
    for cv, X in [
        (TemporalSplit(n_splits=2), timed),
        (TemporalSplit(n_splits=3, test_size=1, gap=1), timed),
        (SessionHoldoutSplit(n_splits=2), sessions),
        (SessionHoldoutSplit(n_splits=1, test_size=3), sessions),
    ]:
        pdf = X.to_pandas()
        # Positions, not index labels, are returned.
        pdf.index = np.arange(len(pdf))[::-1] * 10
        assert _folds(cv, pdf) == _folds(cv, X)


def test_lazyframe_is_rejected_with_collect_hint(timed, sessions):
    for cv, X in [(TemporalSplit(2), timed), (SessionHoldoutSplit(2), sessions)]:
        with pytest.raises(TypeError, match="collect"):
            next(cv.split(X.lazy()))


def test_missing_columns_are_named(sessions):
    with pytest.raises(ValueError, match="'ts'"):
        next(TemporalSplit(2, time_col="ts").split(sessions))
    with pytest.raises(ValueError, match="'user'"):
        next(SessionHoldoutSplit(2, session_col="user").split(sessions))


def test_nulls_and_string_times_are_rejected(sessions):
    with_null = sessions.with_columns(
        pl.when(pl.col("partnumber") == 3)
        .then(None)
        .otherwise(pl.col("session_id"))
        .alias("session_id")
    )
    with pytest.raises(ValueError, match="null.*'session_id'"):
        next(SessionHoldoutSplit(2).split(with_null))
    as_text = sessions.with_columns(pl.col("timestamp_local").cast(pl.String))
    with pytest.raises(TypeError, match="str.to_datetime"):
        next(TemporalSplit(2).split(as_text))


def test_too_small_frames(timed, sessions):
    with pytest.raises(ValueError, match="too small for n_splits=6"):
        next(TemporalSplit(n_splits=6).split(timed))
    with pytest.raises(ValueError, match="too small for n_splits=2"):
        next(TemporalSplit(n_splits=2, test_size=2, gap=2).split(timed))
    with pytest.raises(ValueError, match="too small for n_splits=5"):
        next(SessionHoldoutSplit(n_splits=5).split(sessions))
    with pytest.raises(ValueError, match="too small"):
        next(TemporalSplit(n_splits=1).split(timed.head(0)))
    # Two sessions starting together: holding out the second leaves nothing
    # earlier to train on.
    tied = pl.DataFrame({"session_id": [1, 2, 2], "timestamp_local": [0, 0, 1]})
    with pytest.raises(ValueError, match="too small.*no event for training"):
        next(SessionHoldoutSplit(n_splits=1, test_size=1).split(tied))


@pytest.mark.parametrize("cls", [TemporalSplit, SessionHoldoutSplit])
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_splits": 0}, "n_splits must be an integer >= 1"),
        ({"n_splits": 2.0}, "n_splits must be an integer >= 1"),
        ({"test_size": 0}, "test_size must be None"),
        ({"test_size": 1.0}, "test_size must be None"),
        ({"test_size": -0.5}, "test_size must be None"),
        ({"test_size": "10%"}, "test_size must be None"),
    ],
)
def test_invalid_parameters(cls, params, match):
    with pytest.raises(ValueError, match=match):
        cls(**params)


def test_invalid_gap():
    with pytest.raises(ValueError, match="gap must be an integer >= 0"):
        TemporalSplit(gap=-1)


def test_parameters_are_checked_again_in_split(timed):
    cv = TemporalSplit(2)
    cv.test_size = 0
    with pytest.raises(ValueError, match="test_size"):
        next(cv.split(timed))


def test_get_n_splits_and_repr():
    assert TemporalSplit(4).get_n_splits() == 4
    assert SessionHoldoutSplit(n_splits=2).get_n_splits(X=None) == 2
    assert repr(TemporalSplit(2, gap=1)) == (
        "TemporalSplit(gap=1, n_splits=2, schema=None, test_size=None, time_col=None)"
    )


@st.composite
def event_logs(draw):
    n = draw(st.integers(1, 60))
    sessions = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    times = draw(st.lists(st.integers(0, 25), min_size=n, max_size=n))
    return pl.DataFrame({"session_id": sessions, "timestamp_local": times})


def _splits_or_none(cv, X):
    try:
        return list(cv.split(X))
    except ValueError as exc:
        assert "too small" in str(exc)
        return None


def _check_common(cv, X, folds):
    time = X["timestamp_local"].to_numpy()
    assert len(folds) == cv.get_n_splits(X)
    for train, test in folds:
        for idx in (train, test):
            assert idx.dtype.kind == "i"
            assert np.all(np.diff(idx) > 0)
            assert idx.size == 0 or (idx[0] >= 0 and idx[-1] < X.height)
        assert train.size > 0
        assert test.size > 0
        assert np.intersect1d(train, test).size == 0
        # Never trains on the future (nor the present of the test block).
        assert time[train].max() < time[test].min()
    tests = np.concatenate([test for _, test in folds])
    assert np.unique(tests).size == tests.size  # test blocks are disjoint


@settings(max_examples=150, deadline=None)
@given(
    X=event_logs(),
    n_splits=st.integers(1, 4),
    test_size=st.one_of(st.none(), st.integers(1, 4), st.floats(0.05, 0.5)),
    gap=st.integers(0, 2),
)
def test_temporal_never_leaks_the_future(X, n_splits, test_size, gap):
    cv = TemporalSplit(n_splits, test_size=test_size, gap=gap)
    folds = _splits_or_none(cv, X)
    if folds is None:
        return
    _check_common(cv, X, folds)
    time = X["timestamp_local"].to_numpy()
    for (train, test), (next_train, next_test) in pairwise(folds):
        # Expanding window: each training set contains the previous one.
        assert np.isin(train, next_train).all()
        assert time[test].max() < time[next_test].min()


@settings(max_examples=150, deadline=None)
@given(
    X=event_logs(),
    n_splits=st.integers(1, 4),
    test_size=st.one_of(st.none(), st.integers(1, 3), st.floats(0.05, 0.5)),
)
def test_session_holdout_never_leaks_sessions_or_the_future(X, n_splits, test_size):
    cv = SessionHoldoutSplit(n_splits, test_size=test_size)
    folds = _splits_or_none(cv, X)
    if folds is None:
        return
    _check_common(cv, X, folds)
    session = X["session_id"].to_numpy()
    for train, test in folds:
        held_out = np.unique(session[test])
        # Held-out sessions never appear in training...
        assert not np.isin(session[train], held_out).any()
        # ...and are held out whole.
        assert np.isin(session, held_out).sum() == test.size


class _LatestTime(BaseEstimator):
    """Remembers the latest training time; scores -penalty on later data."""

    def __init__(self, penalty=0.0):
        self.penalty = penalty

    def fit(self, X, y=None):
        assert isinstance(X, pl.DataFrame)
        self.latest_ = X["timestamp_local"].max()
        return self

    def score(self, X, y=None):
        assert isinstance(X, pl.DataFrame)
        assert X["timestamp_local"].min() > self.latest_
        return -self.penalty


@pytest.mark.parametrize(
    "cv",
    [TemporalSplit(n_splits=3, test_size=1), SessionHoldoutSplit(n_splits=2)],
    ids=["temporal", "session"],
)
def test_works_in_sklearn_model_selection(cv, sessions):
    result = cross_validate(_LatestTime(), sessions, cv=cv, return_indices=True)
    assert len(result["test_score"]) == cv.get_n_splits()
    for (train, test), got_train, got_test in zip(
        cv.split(sessions),
        result["indices"]["train"],
        result["indices"]["test"],
        strict=True,
    ):
        np.testing.assert_array_equal(got_train, train)
        np.testing.assert_array_equal(got_test, test)

    search = GridSearchCV(_LatestTime(), {"penalty": [1.0, 0.0, 2.0]}, cv=cv)
    search.fit(sessions)
    assert search.best_params_ == {"penalty": 0.0}
    assert search.n_splits_ == cv.get_n_splits()


def test_works_in_grid_search_on_pandas(sessions):
    class _Frame(_LatestTime):
        def fit(self, X, y=None):
            return super().fit(pl.from_pandas(X))

        def score(self, X, y=None):
            return super().score(pl.from_pandas(X))

    search = GridSearchCV(_Frame(), {"penalty": [1.0, 0.0]}, cv=TemporalSplit(2))
    search.fit(pd.DataFrame(sessions.to_pandas()))
    assert search.best_params_ == {"penalty": 0.0}


# ------------------------------------------- successive halving keeps sessions
def _halving_pipe():
    from sklearn.pipeline import make_pipeline

    from skals import (
        ConfidenceEncoder,
        ImplicitALSRecommender,
        InteractionMatrixBuilder,
        PseudoUserUnifier,
    )

    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(),
        InteractionMatrixBuilder(),
        ImplicitALSRecommender(factors=4, iterations=2, random_state=0),
    )


def test_halving_on_events_is_refused_not_scored():
    """HalvingGridSearchCV's default resource drops random events of the
    held-out sessions; the splitter refuses instead of scoring wrong ones."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    from skals.datasets import make_sessions
    from skals.metrics import make_session_scorer

    events = make_sessions(n_sessions=1_500, n_items=100, random_state=0)
    search = HalvingGridSearchCV(
        _halving_pipe(),
        {"implicitalsrecommender__regularization": [0.01, 0.1, 1.0]},
        scoring=make_session_scorer("ndcg"),
        cv=SessionHoldoutSplit(n_splits=2),
        random_state=0,
    )
    with pytest.raises(ValueError, match="cuts the held-out sessions apart"):
        search.fit(events)
    # a parameter as the resource: every fold holds whole sessions
    search = HalvingGridSearchCV(
        _halving_pipe(),
        {"implicitalsrecommender__regularization": [0.01, 0.1, 1.0]},
        scoring=make_session_scorer("ndcg"),
        cv=SessionHoldoutSplit(n_splits=2),
        resource="implicitalsrecommender__iterations",
        min_resources=1,
        max_resources=3,
        factor=3,
        random_state=0,
    )
    search.fit(events)
    assert list(search.n_resources_) == [1, 3]
    # outside the search the splitter runs as usual
    assert len(list(SessionHoldoutSplit(n_splits=2).split(events))) == 2
