"""Tests of SessionKNNRecommender and the order/time carry-through it needs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from skals import ConfidenceEncoder, InteractionMatrixBuilder


def _log():
    t0 = dt.datetime(2024, 6, 1)
    sec = [0, 10, 20, 30, 5, 6, 6, 100]
    return pl.DataFrame(
        {
            "unified_user_id": ["u_1"] * 4 + ["s_2"] * 3 + ["u_1"],
            "session_id": [1, 1, 1, 1, 2, 2, 2, 3],
            "partnumber": [10, 11, 10, 12, 11, 12, 13, 13],
            "add_to_cart": [0, 0, 1, 0, 0, 0, 0, 0],
            "timestamp_local": [t0 + dt.timedelta(seconds=s) for s in sec],
        }
    )


def test_encoder_time_col_last_time_and_recency():
    enc = ConfidenceEncoder(grain="session", time_col="timestamp_local")
    out = enc.fit_transform(_log()).sort("session_id", "partnumber")
    # session 1: 10 last at 20 s, 11 at 10 s, 12 at 30 s -> 12, 10, 11
    # session 2: 11 at 5 s; 12 and 13 tie at 6 s -> larger id first: 13, 12
    assert out["recency"].to_list() == [2, 3, 1, 3, 2, 1, 1]
    secs = (out["last_time"] - dt.datetime(2024, 6, 1)).dt.total_seconds()
    assert secs.to_list() == [20, 10, 30, 5, 6, 6, 100]
    assert out["confidence"].to_list() == [13.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]


def test_encoder_without_time_col_is_unchanged():
    plain = ConfidenceEncoder(grain="session").fit_transform(_log())
    assert "recency" not in plain.columns and "last_time" not in plain.columns


def test_builder_row_times_and_recency_pattern():
    enc = ConfidenceEncoder(grain="session", time_col="timestamp_local")
    im = InteractionMatrixBuilder().fit_transform(enc.fit_transform(_log()))
    assert im.row_ids.to_list() == [1, 2, 3]
    t0 = dt.datetime(2024, 6, 1).replace(tzinfo=dt.timezone.utc).timestamp()
    np.testing.assert_allclose(im.row_times - t0, [30, 6, 100])
    np.testing.assert_array_equal(im.recency.indptr, im.matrix.indptr)
    np.testing.assert_array_equal(im.recency.indices, im.matrix.indices)
    # columns 10, 11, 12, 13
    np.testing.assert_array_equal(
        im.recency.toarray(), [[2, 3, 1, 0], [0, 3, 2, 1], [0, 0, 0, 1]]
    )
    plain = InteractionMatrixBuilder().fit_transform(
        ConfidenceEncoder(grain="session").fit_transform(_log())
    )
    assert plain.row_times is None and plain.recency is None


def test_numeric_time_and_bad_time_column():
    log = _log().with_columns(pl.col("timestamp_local").dt.epoch("s").alias("t"))
    enc = ConfidenceEncoder(grain="session", time_col="t")
    im = InteractionMatrixBuilder().fit_transform(enc.fit_transform(log))
    assert im.row_times[1] == log["t"][6]
    with pytest.raises(TypeError, match="'unified_user_id' has dtype"):
        ConfidenceEncoder(grain="session", time_col="unified_user_id").fit_transform(
            log
        )
    nulls = log.with_columns(
        pl.when(pl.col("session_id") == 2).then(None).otherwise(pl.col("t")).alias("t")
    )
    with pytest.raises(ValueError, match="'t' has 3 null"):
        enc.fit_transform(nulls)
    with pytest.raises(ValueError, match="'nope'"):
        ConfidenceEncoder(grain="session", time_col="nope").fit(log)
