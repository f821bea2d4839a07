"""The reveal-the-first-n protocol: held-out sessions split into context and truth."""

from __future__ import annotations

from numbers import Integral

import polars as pl

from .._frame import check_columns, reject_lazy, to_polars
from ._split import check_time_column, library_of

__all__ = ["reveal_first_n"]


def reveal_first_n(
    X,
    n_revealed=3,
    *,
    session_col="session_id",
    item_col="partnumber",
    time_col="timestamp_local",
    cart_col="add_to_cart",
    user_col="user_id",
    relevance="cart",
):
    """Split held-out sessions into the events a model sees and the truth.

    The challenge's protocol: for each session of ``X``, its first
    ``n_revealed`` events by time (ties kept in row order) are the context,
    with the cart column removed, as in the challenge's test log. The truth
    of a session is the set of items it carted anywhere, revealed events
    included (``relevance="cart"``), every item it has an event with
    (``"any"``), or every item of its events after the revealed ones
    (``"rest"``, the literature's rest-of-session protocol). Sessions
    without a relevant item have no truth row. The session scorers
    (:func:`~skals.metrics.make_session_scorer`) score with this split;
    call it to answer the context yourself, e.g. with
    :func:`skals.io.recommend_sessions`.

    Parameters
    ----------
    X : polars or pandas DataFrame
        Held-out events, whole sessions (e.g. a test fold of
        :class:`SessionHoldoutSplit`).
    n_revealed : int, default=3
        Events revealed per session (>= 1).
    session_col, item_col, time_col, cart_col : str
        Column names. ``time_col`` must be a datetime, date or number;
        ``cart_col`` is needed only for ``relevance="cart"``.
    user_col : str or None, default="user_id"
        Logged-in user id column; it must be in ``X`` (a missing one is an
        error, not "every session is anonymous"). ``None``: no user column,
        every session counts as anonymous.
    relevance : {"cart", "any", "rest"}, default="cart"
        What counts as relevant.

    Returns
    -------
    context : polars DataFrame
        The revealed events, with every column of ``X`` but ``cart_col``, in
        session and time order.
    truth : polars DataFrame
        One row per session with a relevant item, sorted by session:
        ``session_col``, ``relevant`` (list of distinct items), ``logged_in``
        (any event of the session has a user id) and ``n_context`` (events
        revealed: ``n_revealed``, or fewer for a shorter session).

    Examples
    --------
    >>> import polars as pl
    >>> from skals.model_selection import reveal_first_n
    >>> events = pl.DataFrame({
    ...     "session_id": [1, 1, 1, 2],
    ...     "user_id": [None, None, None, 7],
    ...     "partnumber": [10, 11, 12, 10],
    ...     "add_to_cart": [0, 1, 1, 0],
    ...     "timestamp_local": [3, 1, 2, 1],
    ... })
    >>> context, truth = reveal_first_n(events, n_revealed=2)
    >>> context["partnumber"].to_list()
    [11, 12, 10]
    >>> truth.select("session_id", pl.col("relevant").list.sort(), "n_context")
    shape: (1, 3)
    ┌────────────┬───────────┬───────────┐
    │ session_id ┆ relevant  ┆ n_context │
    │ ---        ┆ ---       ┆ ---       │
    │ i64        ┆ list[i64] ┆ u32       │
    ╞════════════╪═══════════╪═══════════╡
    │ 1          ┆ [11, 12]  ┆ 2         │
    └────────────┴───────────┴───────────┘
    """
    where = "reveal_first_n"
    if isinstance(n_revealed, bool) or not isinstance(n_revealed, Integral):
        raise ValueError(f"n_revealed must be an int >= 1, got {n_revealed!r}.")
    if n_revealed < 1:
        raise ValueError(f"n_revealed must be an int >= 1, got {n_revealed!r}.")
    if relevance not in ("cart", "any", "rest"):
        raise ValueError(
            f"relevance must be 'cart', 'any' or 'rest', got {relevance!r}."
        )
    reject_lazy(X, what=where)
    df = to_polars(X, allow_lazy=False)
    needed = [session_col, item_col, time_col]
    needed += [cart_col] if relevance == "cart" else []
    # a user column that is not there would count every session as
    # anonymous without a word: name it, or pass None for no user column
    needed += [user_col] if user_col is not None else []
    check_columns(df, needed, where=where)
    check_time_column(df, time_col, where=where, library=library_of(X))
    s = session_col
    df = (
        df.with_row_index("__row")
        .sort([s, time_col, "__row"])
        .with_columns(pl.int_range(pl.len()).over(s).alias("__pos"))
    )
    context = df.filter(pl.col("__pos") < n_revealed)
    context = context.drop([c for c in (cart_col, "__row", "__pos") if c in df.columns])
    relevant = df.filter(
        {
            "cart": pl.col(cart_col) == 1,
            "any": pl.lit(True),
            "rest": pl.col("__pos") >= n_revealed,
        }[relevance]
    )
    truth = relevant.group_by(s).agg(pl.col(item_col).unique().alias("relevant"))
    logged_in = (
        pl.col(user_col).is_not_null().any() if user_col is not None else pl.lit(False)
    )
    info = df.group_by(s).agg(
        logged_in.alias("logged_in"),
        pl.len().clip(0, n_revealed).alias("n_context"),
    )
    truth = truth.join(info, on=s, how="left").sort(s)
    return context, truth
