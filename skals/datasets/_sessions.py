"""Synthetic e-commerce session logs shaped like the fashion-retail challenge."""

from __future__ import annotations

import datetime as dt
from numbers import Integral, Real

import numpy as np
import polars as pl
from sklearn.utils import check_random_state
from sklearn_compat.utils._param_validation import validate_params

from .._sklearn import Interval

__all__ = ["make_sessions"]

# Shape constants of the generator. They are not parameters: they reproduce the
# challenge's log (see the Notes of ``make_sessions``) and tests rely on them.
_SINGLE_EVENT_SHARE = 1 / 3  # sessions with exactly one event
_DEPTH_MEDIAN = 6.0  # median of the lognormal depth of multi-event sessions
_DEPTH_SIGMA = 1.3  # gives ~19% of multi-event sessions (~1/8 overall) > 20
_SECOND_TASTE_SHARE = 0.25  # sessions of a logged-in user on their second taste
_HOME_SHARE = 0.95  # sessions of a logged-in user in their home country
_OWN_DEVICE_SHARE = 0.8  # sessions of a logged-in user on their usual device
_COUNTRY_SHIFT = 0.5  # sigma of the per-country lognormal popularity noise
_N_SUCCESSORS = 3  # items that may follow an item in a sequential step
_OFF_TASTE_CART = 0.4  # cart odds of an item outside the session's taste
_GAP_MEDIAN_S = 20.0  # median seconds between two events of a session
_GAP_SIGMA = 1.2
_GAP_MAX_S = 1_800.0

_COUNTRY_CODES = (25, 29, 34, 57)
_DEVICE_TYPES = np.array([1, 2, 3])
_DEVICE_P = np.array([0.6, 0.3, 0.1])
_PAGETYPES = np.array([24, 8, 6, 1, 16, 2, 10, 3])
_PAGETYPE_P = np.array([0.55, 0.15, 0.1, 0.07, 0.05, 0.04, 0.02, 0.02])
# Relative traffic per local hour: quiet at night, peaks in the evening.
_HOURLY = np.array(
    [3, 2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 7, 6, 6, 6, 7, 8, 9, 10, 10, 8, 5],
    dtype=float,
)

_US_PER_S = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_S


def _make_rng(random_state) -> np.random.Generator:
    """A ``Generator`` from anything ``check_random_state`` takes, or a Generator.

    An int seed and ``RandomState(seed)`` give the same stream.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max, size=4)
    return np.random.default_rng(seed)


def _parse_start(start) -> int:
    """Microseconds since the epoch of ``start`` (naive, local time)."""
    if isinstance(start, str):
        try:
            start = dt.datetime.fromisoformat(start)
        except ValueError:
            raise ValueError(
                f"The 'start' parameter of make_sessions must be an ISO date such "
                f"as '2024-06-01'. Got {start!r} instead."
            ) from None
    if not isinstance(start, dt.datetime):  # a date: its midnight
        start = dt.datetime(start.year, start.month, start.day)
    delta = start.replace(tzinfo=None) - dt.datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * _US_PER_S + delta.microseconds


def _country_codes(n_countries: int) -> np.ndarray:
    """The challenge's four codes first, then the smallest unused ints."""
    codes = list(_COUNTRY_CODES[:n_countries])
    candidate = 1
    while len(codes) < n_countries:
        if candidate not in _COUNTRY_CODES:
            codes.append(candidate)
        candidate += 1
    return np.asarray(codes, dtype=np.int64)


def _session_depths(rng, n_sessions, max_session_length) -> np.ndarray:
    """One event for a third of sessions, a capped lognormal tail for the rest."""
    deep = rng.random(n_sessions) >= _SINGLE_EVENT_SHARE
    tail = rng.lognormal(np.log(_DEPTH_MEDIAN), _DEPTH_SIGMA, size=n_sessions)
    depth = np.where(deep, 2 + np.minimum(tail, max_session_length), 1)
    return np.minimum(depth, max_session_length).astype(np.int64)


def _assign_users(rng, n_logged, n_users) -> np.ndarray:
    """User index of each logged-in session: everyone once, then by activity."""
    n_first = min(n_users, n_logged)
    first = rng.permutation(n_users)[:n_first]
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    rest = rng.choice(n_users, size=n_logged - n_first, p=activity / activity.sum())
    return rng.permutation(np.concatenate([first, rest]))


def _cart_scale(weights, counts, cart_rate) -> float:
    """The ``s`` with ``mean(min(1, s * w)) == cart_rate`` (bisection)."""
    total = counts.sum()
    if total == 0 or cart_rate == 0:
        return 0.0
    lo, hi = 0.0, 1.0 / weights.min()
    for _ in range(100):
        mid = (lo + hi) / 2
        rate = (np.minimum(1.0, mid * weights) * counts).sum() / total
        lo, hi = (mid, hi) if rate < cart_rate else (lo, mid)
    return hi


def _sequential_items(rng, item, is_new, source, pos, item_taste, by_taste, bounds, p):
    """Items after the sequential steps, and each item's successors.

    A sequential step views a successor of the previous event's item.
    Positions are resolved in order (one vectorised step per position), so a
    step follows the final item of the event before it and a re-view repeats
    the final item of the event it points to. Returns ``(item, successors)``
    (``successors[i]``: the ``_N_SUCCESSORS`` items that may follow ``i``).
    """
    n_items = item_taste.size
    cycle = np.empty(n_items, dtype=np.int64)  # each taste's items, shuffled
    for t in range(bounds.size - 1):
        lo, hi = bounds[t], bounds[t + 1]
        cycle[lo:hi] = rng.permutation(by_taste[lo:hi])
    place = np.empty(n_items, dtype=np.int64)
    place[cycle] = np.arange(n_items)
    lo, size = bounds[item_taste], np.diff(bounds)[item_taste]
    steps = 1 + np.arange(_N_SUCCESSORS)[None, :]
    successors = cycle[
        lo[:, None] + (place[:, None] - lo[:, None] + steps) % size[:, None]
    ]
    seq = is_new & (pos > 0) & (rng.random(item.size) < p)
    choice = rng.integers(_N_SUCCESSORS, size=item.size)
    item = item.copy()
    by_pos = np.argsort(pos, kind="stable")
    ends = np.searchsorted(pos[by_pos], np.arange(1, pos.max() + 2))
    for start, stop in zip(ends[:-1], ends[1:], strict=True):
        rows = by_pos[start:stop]
        step = rows[seq[rows]]
        item[step] = successors[item[step - 1], choice[step]]
        again = rows[~is_new[rows]]
        item[again] = item[source[again]]
    return item, successors


@validate_params(
    {
        "n_sessions": [Interval(Integral, 1, None, closed="left")],
        "n_items": [Interval(Integral, 1, None, closed="left")],
        "n_users": [Interval(Integral, 1, None, closed="left"), None],
        "logged_in_fraction": [Interval(Real, 0, 1, closed="both")],
        "cart_rate": [Interval(Real, 0, 1, closed="both")],
        "n_tastes": [Interval(Integral, 1, None, closed="left")],
        "taste_strength": [Interval(Real, 0, 1, closed="both")],
        "repeat_rate": [Interval(Real, 0, 1, closed="left")],
        "popularity_exponent": [Interval(Real, 0, None, closed="left")],
        "n_countries": [Interval(Integral, 1, None, closed="left")],
        "n_days": [Interval(Integral, 1, None, closed="left")],
        "start": [str, dt.date],
        "max_session_length": [Interval(Integral, 1, None, closed="left")],
        "sequential_strength": [Interval(Real, 0, 1, closed="both")],
        "review_cart_boost": [Interval(Real, 0, None, closed="neither")],
        "popularity_drift": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state", np.random.Generator],
    },
    prefer_skip_nested_validation=True,
)
def make_sessions(
    n_sessions=10_000,
    *,
    n_items=2_000,
    n_users=None,
    logged_in_fraction=0.15,
    cart_rate=0.06,
    n_tastes=20,
    taste_strength=0.75,
    repeat_rate=0.3,
    popularity_exponent=0.8,
    n_countries=4,
    n_days=30,
    start="2024-06-01",
    max_session_length=200,
    sequential_strength=0.0,
    review_cart_boost=5.0,
    popularity_drift=0.0,
    random_state=None,
):
    """Generate a synthetic session event log in the challenge's schema.

    The log imitates a fashion retailer's clickstream: mostly anonymous,
    mostly short sessions, power-law item popularity, frequent repeat views
    and about 6% add-to-cart events. It has a planted taste structure that a
    collaborative model can learn: items belong to taste groups and each
    session browses mostly inside one taste, so the first events of a session
    tell which items it will add to the cart far better than global
    popularity does.

    Parameters
    ----------
    n_sessions : int, default=10_000
        Number of sessions. The number of events (rows) is random, about ten
        times ``n_sessions`` with the default depth distribution.

    n_items : int, default=2_000
        Size of the catalogue. Partnumbers are taken from ``1..n_items``;
        items that are never drawn leave gaps.

    n_users : int, default=None
        Number of logged-in users. ``None`` means about a third of the number
        of logged-in sessions, so that a user has several sessions.

    logged_in_fraction : float, default=0.15
        Share of sessions (and, in expectation, of rows) with a ``user_id``.

    cart_rate : float, default=0.06
        Expected share of events with ``add_to_cart == 1``.

    n_tastes : int, default=20
        Number of taste groups. Items are split evenly among them. Must not
        exceed ``n_items``.

    taste_strength : float, default=0.75
        Probability that a newly viewed item is drawn from the session's
        taste rather than from global popularity.

    repeat_rate : float, default=0.3
        Probability that an event after the first one re-views an item
        already viewed in the session.

    popularity_exponent : float, default=0.8
        Exponent ``a`` of the power law: the item of popularity rank ``r`` has
        weight ``r ** -a``. ``0`` makes all items equally popular.

    n_countries : int, default=4
        Number of countries. The first four codes are 25, 29, 34 and 57.

    n_days : int, default=30
        Length of the time window in days.

    start : str or datetime.date, default="2024-06-01"
        First day of the window (an ISO date string, a date or a datetime).

    max_session_length : int, default=200
        Maximum number of events in a session.

    sequential_strength : float, default=0.0
        Probability that a new view (not a re-view) after the first event is
        a successor of the previous event's item: every item has three fixed
        successors in its own taste, so the next product depends on the last
        one (what order-aware models such as session-kNN with position
        weights can use and a bag of items cannot). ``0`` (the default) adds
        no such structure and leaves the output unchanged.

    review_cart_boost : float, default=5.0
        Cart odds of a re-view relative to a first view: how much a product
        is re-viewed before it is added to the cart. ``1`` makes re-views no
        more likely to be carted than first views (a repeat model then loses
        its edge).

    popularity_drift : float, default=0.0
        Standard deviation of a daily random walk of every item's log
        popularity (the draws from global popularity then depend on the
        session's day): popularity that drifts over the days of the window,
        so recent training sessions tell more than old ones. ``0`` (the
        default) keeps popularity fixed and the output unchanged.

    random_state : int, RandomState instance, Generator or None, default=None
        Seed of the generator. Pass an int for reproducible output across
        calls. An int and ``np.random.RandomState`` of the same int give the
        same log.

    Returns
    -------
    events : polars.DataFrame
        One row per event, sorted by session start then time, with columns
        ``session_id`` (Int64, numbered from 1 in order of session start),
        ``date`` (Date), ``timestamp_local`` (Datetime[us]), ``user_id``
        (Int64, null for anonymous sessions), ``country`` (Int64 code),
        ``partnumber`` (Int64), ``device_type`` (Int64, 1 to 3), ``pagetype``
        (Int64 code) and ``add_to_cart`` (Int64, 0 or 1).

    Notes
    -----
    The generative model, all vectorised:

    - **Catalogue.** Item popularity follows a power law over a random
      ranking of the items. Items are dealt evenly and at random into
      ``n_tastes`` groups. Each country multiplies every item's popularity by
      its own lognormal noise (sigma 0.5).
    - **Users.** A logged-in user has a primary and a secondary taste, a home
      country and a usual device. Every user gets one session when there are
      enough, the remaining logged-in sessions go to users in proportion to a
      lognormal activity.
    - **Sessions.** A third of the sessions have one event, the rest
      ``2 + lognormal`` (median 8 events), capped at ``max_session_length``:
      about an eighth of all sessions have more than twenty events. A
      session's taste is its user's primary taste (secondary in 25% of
      sessions) or, when anonymous, uniform. A session stays in one country
      and on one device.
    - **Events.** After the first event, with probability ``repeat_rate`` an
      event re-views an item viewed earlier in the session (uniformly among
      the earlier events, so heavily viewed items get viewed again). Other
      events view a new draw: from the session's taste with probability
      ``taste_strength``, else from the country's global popularity. A new
      draw may also hit an item already viewed (popular items, long
      sessions), so repeat views outnumber ``repeat_rate`` alone.
    - **Order** (``sequential_strength > 0``). Each taste's items form a
      random cycle; an item's successors are the next three items of the
      cycle. A sequential step views one of the previous event's item's
      successors, uniformly.
    - **Drift** (``popularity_drift > 0``). Each item's popularity is
      multiplied, day after day, by ``exp(N(0, popularity_drift))``; a new
      draw uses the popularity of its session's first day.
    - **Carts.** A re-view is ``review_cart_boost`` (5) times as likely to be
      a cart add as a first view, an item outside the session's taste 0.4 times as likely;
      the odds are scaled so that the expected cart share is ``cart_rate``.
      Re-viewed products take most of the cart adds.
    - **Time.** Sessions start uniformly over the days of the window, with a
      daily traffic cycle, and end inside the window. ``date`` is the
      calendar day of each event. Events are a lognormal
      number of seconds apart (median 20 s, at most 30 minutes).

    Examples
    --------
    >>> from skals.datasets import make_sessions
    >>> df = make_sessions(n_sessions=500, n_items=300, random_state=0)
    >>> df.columns
    ['session_id', 'date', 'timestamp_local', 'user_id', 'country', 'partnumber', 'device_type', 'pagetype', 'add_to_cart']
    >>> df.height > 500
    True
    >>> df["add_to_cart"].is_in([0, 1]).all()
    True
    """  # noqa: E501
    # every parameter, by name (no other local is defined yet)
    frame, _ = _generate(**locals())
    return frame


def _generate(
    *,
    n_sessions,
    n_items,
    n_users,
    logged_in_fraction,
    cart_rate,
    n_tastes,
    taste_strength,
    repeat_rate,
    popularity_exponent,
    n_countries,
    n_days,
    start,
    max_session_length,
    sequential_strength,
    review_cart_boost,
    popularity_drift,
    random_state,
) -> tuple[pl.DataFrame, dict]:
    """``make_sessions``' log and the hidden state that generated it.

    The state (what no model sees) lets a benchmark compute what a model
    that knew it could reach (``benchmarks/cart_oracle.py``): per session,
    in the log's order (``session_id - 1``), ``taste``, ``country``,
    ``table`` (its row of the popularity tables), ``depth`` and ``first``
    (row of its first event); per event, ``item`` (``partnumber - 1``) and
    ``is_new`` (not a re-view); the catalogue's ``item_taste``,
    ``by_taste``, ``taste_bounds``, cumulative popularity tables ``cum`` and
    ``cum0`` (as the draws use them) and ``successors`` (``None`` without
    sequential steps); ``p_cart``, the cart probability of an event of each
    kind (new, new off-taste, re-view, re-view off-taste).
    """
    if n_tastes > n_items:
        raise ValueError(
            f"The 'n_tastes' parameter of make_sessions must not exceed "
            f"'n_items' ({n_items}): every taste needs an item. Got {n_tastes}."
        )
    start_us = _parse_start(start)
    rng = _make_rng(random_state)

    # Catalogue: popularity, tastes and per-country sampling tables. Items are
    # laid out by taste so that one taste is one contiguous block; a flat
    # cumulative table over (country, item) lets one searchsorted draw from
    # "country c, taste t" or "country c, any taste" alike.
    item_taste = rng.permutation(np.arange(n_items) % n_tastes)
    popularity = (rng.permutation(n_items) + 1.0) ** -popularity_exponent
    shift = np.exp(_COUNTRY_SHIFT * rng.standard_normal((n_countries, n_items)))
    by_taste = np.argsort(item_taste, kind="stable")
    weights = (popularity * shift)[:, by_taste]
    if popularity_drift > 0:  # one table per (day, country)
        steps = popularity_drift * rng.standard_normal((n_days, n_items))
        steps[0] = 0.0
        walk = np.exp(np.cumsum(steps, axis=0))[:, by_taste]
        weights = (walk[:, None, :] * weights[None, :, :]).reshape(-1, n_items)
    weights /= weights.sum(axis=1, keepdims=True)
    cum = np.cumsum(weights.ravel())
    cum0 = np.concatenate([[0.0], cum])
    taste_bounds = np.concatenate(
        [[0], np.cumsum(np.bincount(item_taste, minlength=n_tastes))]
    )
    country_p = 1.0 / np.arange(1, n_countries + 1)
    country_p /= country_p.sum()

    # Users.
    n_logged = int(round(n_sessions * logged_in_fraction))
    if n_users is None:
        n_users = max(1, int(round(n_logged / 3)))
    user_ids = rng.permutation(n_users).astype(np.int64) + 1
    user_taste = rng.integers(n_tastes, size=(2, n_users))
    if n_tastes > 1:  # a secondary taste different from the primary one
        user_taste[1] = (
            user_taste[0] + 1 + rng.integers(n_tastes - 1, size=n_users)
        ) % n_tastes
    user_country = rng.choice(n_countries, size=n_users, p=country_p)
    user_device = rng.choice(len(_DEVICE_TYPES), size=n_users, p=_DEVICE_P)

    # Sessions (in generation order; reordered by start time below).
    depth = _session_depths(rng, n_sessions, max_session_length)
    sess_user = np.full(n_sessions, -1, dtype=np.int64)
    logged_idx = rng.permutation(n_sessions)[:n_logged]
    sess_user[logged_idx] = _assign_users(rng, n_logged, n_users)
    logged = sess_user >= 0
    u = sess_user[logged]
    sess_taste = rng.integers(n_tastes, size=n_sessions)
    second = rng.random(n_logged) < _SECOND_TASTE_SHARE
    sess_taste[logged] = user_taste[second.astype(np.intp), u]
    sess_country = rng.choice(n_countries, size=n_sessions, p=country_p)
    home = rng.random(n_logged) < _HOME_SHARE
    sess_country[logged] = np.where(home, user_country[u], sess_country[logged])
    sess_device = rng.choice(len(_DEVICE_TYPES), size=n_sessions, p=_DEVICE_P)
    own = rng.random(n_logged) < _OWN_DEVICE_SHARE
    sess_device[logged] = np.where(own, user_device[u], sess_device[logged])

    # Time: event offsets within each session, then session starts.
    n_events = int(depth.sum())
    first = np.cumsum(depth) - depth  # row of each session's first event
    sess = np.repeat(np.arange(n_sessions), depth)
    gap = rng.lognormal(np.log(_GAP_MEDIAN_S), _GAP_SIGMA, size=n_events)
    gap = (np.clip(gap, 1.0, _GAP_MAX_S) * _US_PER_S).astype(np.int64)
    gap[first] = 0
    offset = np.cumsum(gap)
    offset -= offset[first][sess]
    duration = offset[first + depth - 1]
    window = n_days * _US_PER_DAY
    if duration.max() >= window:  # squeeze the rare session longer than the window
        squeeze = np.minimum(1.0, (window - 1) / np.maximum(duration, 1))
        offset = (offset * squeeze[sess]).astype(np.int64)
        duration = offset[first + depth - 1]
    hour = rng.choice(24, size=n_sessions, p=_HOURLY / _HOURLY.sum())
    begin = (
        rng.integers(n_days, size=n_sessions) * _US_PER_DAY
        + hour * 3_600 * _US_PER_S
        + rng.integers(3_600 * _US_PER_S, size=n_sessions)
    )
    begin = np.maximum(np.minimum(begin, window - 1 - duration), 0)

    # Reorder sessions by start time and their events with them.
    order = np.argsort(begin, kind="stable")
    old_first = first[order]
    depth, begin = depth[order], begin[order]
    sess_user, sess_taste = sess_user[order], sess_taste[order]
    sess_country, sess_device = sess_country[order], sess_device[order]
    first = np.cumsum(depth) - depth
    sess = np.repeat(np.arange(n_sessions), depth)
    pos = np.arange(n_events) - first[sess]
    offset = offset[old_first[sess] + pos]
    timestamp = start_us + begin[sess] + offset

    # Items: re-views point back to an earlier event of the session; pointer
    # jumping resolves chains of re-views to the new view they repeat.
    rows = np.arange(n_events)
    is_new = (pos == 0) | (rng.random(n_events) >= repeat_rate)
    source = np.where(
        is_new, rows, first[sess] + (rng.random(n_events) * pos).astype(np.int64)
    )
    while True:
        jumped = source[source]
        if np.array_equal(jumped, source):
            break
        source = jumped
    new = np.flatnonzero(is_new)
    country_new = sess_country[sess[new]]
    taste_new = sess_taste[sess[new]]
    in_taste = rng.random(new.size) < taste_strength
    table = country_new
    if popularity_drift > 0:
        day_new = (begin[sess[new]] // _US_PER_DAY).astype(np.int64)
        table = day_new * n_countries + country_new
    base = table * n_items
    lo = base + np.where(in_taste, taste_bounds[taste_new], 0)
    hi = base + np.where(in_taste, taste_bounds[taste_new + 1], n_items)
    draw = cum0[lo] + rng.random(new.size) * (cum0[hi] - cum0[lo])
    slot = np.clip(np.searchsorted(cum, draw, side="right"), lo, hi - 1)
    item = np.empty(n_events, dtype=np.int64)
    item[new] = by_taste[slot - base]
    item = item[source]
    successors = None
    if sequential_strength > 0:
        item, successors = _sequential_items(
            rng, item, is_new, source, pos, item_taste, by_taste, taste_bounds,
            sequential_strength,
        )  # fmt: skip

    # Cart adds: more likely on re-views and on items of the session's taste.
    off_taste = item_taste[item] != sess_taste[sess]
    kind = 2 * (~is_new) + off_taste  # 0 new, 1 new off-taste, 2 re, 3 re off
    boost = float(review_cart_boost)
    odds = np.array([1.0, _OFF_TASTE_CART, boost, boost * _OFF_TASTE_CART])
    scale = _cart_scale(odds, np.bincount(kind, minlength=4), cart_rate)
    cart = rng.random(n_events) < np.minimum(1.0, scale * odds[kind])
    pagetype = _PAGETYPES[rng.choice(len(_PAGETYPES), size=n_events, p=_PAGETYPE_P)]

    table_of_session = sess_country  # its row of the popularity tables
    if popularity_drift > 0:
        table_of_session = (begin // _US_PER_DAY).astype(np.int64) * n_countries
        table_of_session += sess_country
    state = {
        "taste": sess_taste,
        "country": sess_country,
        "table": table_of_session,
        "depth": depth,
        "first": first,
        "item": item,
        "is_new": is_new,
        "item_taste": item_taste,
        "by_taste": by_taste,
        "taste_bounds": taste_bounds,
        "cum": cum,
        "cum0": cum0,
        "successors": successors,
        "p_cart": np.minimum(1.0, scale * odds),
    }
    anonymous = pl.Series(sess_user[sess] < 0)
    user_ev = user_ids[np.maximum(sess_user, 0)][sess]
    frame = pl.DataFrame(
        [
            pl.Series("session_id", sess + 1, dtype=pl.Int64),
            pl.Series("date", (timestamp // _US_PER_DAY).astype(np.int32)).cast(
                pl.Date
            ),
            pl.Series("timestamp_local", timestamp).cast(pl.Datetime("us")),
            pl.Series("user_id", user_ev, dtype=pl.Int64).set(anonymous, None),
            pl.Series(
                "country",
                _country_codes(n_countries)[sess_country][sess],
                dtype=pl.Int64,
            ),
            pl.Series("partnumber", item + 1, dtype=pl.Int64),
            pl.Series("device_type", _DEVICE_TYPES[sess_device][sess], dtype=pl.Int64),
            pl.Series("pagetype", pagetype, dtype=pl.Int64),
            pl.Series("add_to_cart", cart.astype(np.int64)),
        ]
    )
    return frame, state
