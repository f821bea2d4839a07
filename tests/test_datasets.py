"""Tests of skals.datasets.make_sessions."""

import datetime as dt
import inspect

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skals.datasets import make_sessions

SCHEMA = {
    "session_id": pl.Int64,
    "date": pl.Date,
    "timestamp_local": pl.Datetime("us"),
    "user_id": pl.Int64,
    "country": pl.Int64,
    "partnumber": pl.Int64,
    "device_type": pl.Int64,
    "pagetype": pl.Int64,
    "add_to_cart": pl.Int64,
}
N_SESSIONS = 4_000


@pytest.fixture(scope="module")
def events():
    return make_sessions(N_SESSIONS, random_state=0)


@pytest.fixture(scope="module")
def sessions(events):
    return events.group_by("session_id").agg(
        n=pl.len(),
        n_users=pl.col("user_id").n_unique(),
        n_null_users=pl.col("user_id").null_count(),
        n_countries=pl.col("country").n_unique(),
        n_devices=pl.col("device_type").n_unique(),
        user_id=pl.col("user_id").first(),
        start=pl.col("timestamp_local").first(),
    )


def check_invariants(events, n_sessions, *, n_items, n_days, start):
    """Properties that hold for every parameter combination."""
    assert events.schema == pl.Schema(SCHEMA)
    assert events.null_count().drop("user_id").sum_horizontal().item() == 0
    # Sessions are numbered 1..n in order of start, their rows contiguous and
    # in time order.
    ids = events["session_id"].to_numpy()
    assert ids[0] == 1
    assert np.all(np.diff(ids) >= 0)
    assert np.array_equal(np.unique(ids), np.arange(1, n_sessions + 1))
    per = events.group_by("session_id", maintain_order=True).agg(
        start=pl.col("timestamp_local").first(),
        in_order=pl.col("timestamp_local").is_sorted(),
    )
    assert per["in_order"].all()
    assert per["start"].is_sorted()
    assert events["date"].equals(events["timestamp_local"].dt.date(), check_names=False)
    assert events["date"].min() >= start
    assert events["date"].max() < start + dt.timedelta(days=n_days)
    # A session has one country, one device, one user (or none).
    per = events.group_by("session_id").agg(
        pl.col("country", "device_type").n_unique(),
        users=pl.col("user_id").n_unique(),
    )
    assert per["country"].max() == 1
    assert per["device_type"].max() == 1
    assert per["users"].max() == 1
    assert events["partnumber"].min() >= 1
    assert events["partnumber"].max() <= n_items
    assert set(events["device_type"].unique()) <= {1, 2, 3}
    assert set(events["add_to_cart"].unique()) <= {0, 1}


def test_schema_and_invariants(events):
    assert events.columns == list(SCHEMA)
    check_invariants(
        events,
        N_SESSIONS,
        n_items=2_000,
        n_days=30,
        start=dt.date(2024, 6, 1),
    )
    assert set(events["country"].unique()) == {25, 29, 34, 57}
    assert events["pagetype"].min() >= 1
    assert events["pagetype"].max() < 100


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    n_sessions=st.integers(1, 60),
    n_items=st.integers(1, 50),
    n_tastes=st.integers(1, 5),
    logged_in_fraction=st.sampled_from([0.0, 0.3, 1.0]),
    cart_rate=st.sampled_from([0.0, 0.06, 0.5, 1.0]),
    repeat_rate=st.sampled_from([0.0, 0.3, 0.9]),
    n_countries=st.integers(1, 7),
    n_days=st.integers(1, 3),
    max_session_length=st.integers(1, 300),
    seed=st.integers(0, 2**31 - 2),
)
def test_invariants_hold_for_any_parameters(
    n_sessions,
    n_items,
    n_tastes,
    logged_in_fraction,
    cart_rate,
    repeat_rate,
    n_countries,
    n_days,
    max_session_length,
    seed,
):
    n_tastes = min(n_tastes, n_items)
    events = make_sessions(
        n_sessions,
        n_items=n_items,
        n_tastes=n_tastes,
        logged_in_fraction=logged_in_fraction,
        cart_rate=cart_rate,
        repeat_rate=repeat_rate,
        n_countries=n_countries,
        n_days=n_days,
        start="2023-12-31",
        max_session_length=max_session_length,
        random_state=seed,
    )
    check_invariants(
        events, n_sessions, n_items=n_items, n_days=n_days, start=dt.date(2023, 12, 31)
    )
    depth = events["session_id"].value_counts()["count"]
    assert depth.max() <= max_session_length
    assert events["country"].n_unique() <= n_countries
    n_logged = events.filter(pl.col("user_id").is_not_null())["session_id"].n_unique()
    assert n_logged == round(n_sessions * logged_in_fraction)
    if cart_rate in (0.0, 1.0):
        assert (events["add_to_cart"] == int(cart_rate)).all()


def test_same_seed_same_frame():
    a = make_sessions(300, n_items=200, random_state=42)
    assert a.equals(make_sessions(300, n_items=200, random_state=42))
    # An int and RandomState(int) are the same seed.
    rs = np.random.RandomState(42)
    assert a.equals(make_sessions(300, n_items=200, random_state=rs))
    gen_a = make_sessions(300, n_items=200, random_state=np.random.default_rng(7))
    gen_b = make_sessions(300, n_items=200, random_state=np.random.default_rng(7))
    assert gen_a.equals(gen_b)


def test_different_seed_different_frame():
    a = make_sessions(300, n_items=200, random_state=1)
    b = make_sessions(300, n_items=200, random_state=2)
    assert not a.equals(b)
    # random_state=None draws fresh randomness.
    c = make_sessions(300, n_items=200)
    assert c.schema == a.schema
    assert not c.equals(make_sessions(300, n_items=200))


def test_anonymous_share(events, sessions):
    assert events["user_id"].null_count() / events.height == pytest.approx(
        0.85, abs=0.04
    )
    logged = sessions.filter(pl.col("user_id").is_not_null())
    assert logged.height == round(0.15 * N_SESSIONS)
    for fraction in (0.0, 1.0):
        df = make_sessions(200, logged_in_fraction=fraction, random_state=0)
        assert df["user_id"].null_count() == (df.height if fraction == 0 else 0)


def test_user_id_null_iff_anonymous_session(sessions):
    # Every row of a session is null, or none is and they share one user.
    anonymous = sessions["n_null_users"] == sessions["n"]
    logged = (sessions["n_null_users"] == 0) & (sessions["n_users"] == 1)
    assert (anonymous ^ logged).all()


def test_logged_in_users_have_several_sessions(sessions):
    per_user = (
        sessions.filter(pl.col("user_id").is_not_null())
        .group_by("user_id")
        .agg(n_sessions=pl.len())["n_sessions"]
    )
    assert per_user.mean() == pytest.approx(3, abs=0.3)
    assert (per_user >= 2).mean() > 0.5
    # An explicit n_users caps the number of distinct users.
    df = make_sessions(1_000, n_users=10, random_state=0)
    assert df["user_id"].n_unique() == 11  # ten users and null


def test_cart_rate(events):
    assert events["add_to_cart"].mean() == pytest.approx(0.06, abs=0.01)
    df = make_sessions(1_000, cart_rate=0.2, random_state=0)
    assert df["add_to_cart"].mean() == pytest.approx(0.2, abs=0.02)
    assert make_sessions(300, cart_rate=0, random_state=0)["add_to_cart"].sum() == 0


def test_session_depth_is_skewed(sessions):
    depth = sessions["n"]
    assert (depth == 1).mean() == pytest.approx(1 / 3, abs=0.03)
    assert (depth > 20).mean() == pytest.approx(1 / 8, abs=0.03)
    assert depth.max() <= 200
    assert depth.mean() == pytest.approx(10, abs=2)
    short = make_sessions(500, max_session_length=1, random_state=0)
    assert short.height == 500


def test_timestamps_increase_within_sessions(events, sessions):
    gaps = events.select(
        gap=pl.col("timestamp_local").diff().over("session_id"),
    )["gap"].drop_nulls()
    assert (gaps >= dt.timedelta(0)).all()
    assert (gaps > dt.timedelta(0)).mean() > 0.99
    # Sessions are numbered in order of their start.
    assert sessions.sort("session_id")["start"].is_sorted()
    # Sessions spread over the window.
    assert events["date"].n_unique() == 30


def test_popularity_is_heavy_tailed(events):
    counts = np.sort(events["partnumber"].value_counts()["count"].to_numpy())[::-1]
    top_share = counts[: len(counts) // 100].sum() / counts.sum()
    assert top_share > 0.15  # the top 1% of items get over 15% of the views
    flat = make_sessions(N_SESSIONS, popularity_exponent=0, random_state=0)
    counts = np.sort(flat["partnumber"].value_counts()["count"].to_numpy())[::-1]
    assert counts[: len(counts) // 100].sum() / counts.sum() < 0.05


def test_carts_fall_on_reviewed_products(events):
    per_item = events.group_by("session_id", "partnumber").agg(
        views=pl.len(), carts=pl.col("add_to_cart").sum()
    )
    repeated_views = (per_item["views"] - 1).sum() / events.height
    assert repeated_views > 0.2  # re-views are common
    reviewed = per_item.filter(pl.col("views") > 1)
    assert reviewed["carts"].sum() / per_item["carts"].sum() > 0.7
    # Without deliberate re-views, repeats are only coincidental draws.
    no_repeat = make_sessions(N_SESSIONS, repeat_rate=0, random_state=0)
    per_item = no_repeat.group_by("session_id", "partnumber").len()
    assert (per_item["len"] - 1).sum() / no_repeat.height < repeated_views - 0.1


def _first_event_vs_popularity(events, train_share=0.7):
    """Hit rates of two top-5 predictors of a later session's cart adds.

    Both see only the session's first event and predict the session's other
    carted items. "Co-occurrence" ranks the items seen in the same training
    sessions as the first event; "popularity" ranks the most carted items of
    the training sessions.
    """
    n_sessions = events["session_id"].max()
    n_items = events["partnumber"].max() + 1
    cut = int(train_share * n_sessions)
    train = events.filter(pl.col("session_id") <= cut)
    pairs = train.select("session_id", "partnumber").unique()
    seen = sp.csr_matrix(
        (
            np.ones(pairs.height),
            (pairs["session_id"].to_numpy(), pairs["partnumber"].to_numpy()),
        ),
        shape=(cut + 1, n_items),
    )
    cooc = (seen.T @ seen).toarray()
    np.fill_diagonal(cooc, 0)
    cart_counts = np.bincount(
        train.filter(pl.col("add_to_cart") == 1)["partnumber"].to_numpy(),
        minlength=n_items,
    )
    first = events.group_by("session_id").agg(first=pl.col("partnumber").first())
    target = (
        events.filter((pl.col("session_id") > cut) & (pl.col("add_to_cart") == 1))
        .join(first, on="session_id")
        .filter(pl.col("partnumber") != pl.col("first"))
        .select("session_id", "first", "partnumber")
        .unique()
    )
    test_ids, row = np.unique(target["session_id"].to_numpy(), return_inverse=True)
    truth = sp.csr_matrix(
        (np.ones(target.height), (row, target["partnumber"].to_numpy())),
        shape=(len(test_ids), n_items),
    ).toarray()
    first_item = np.zeros(len(test_ids), dtype=np.int64)
    first_item[row] = target["first"].to_numpy()
    rows = np.arange(len(test_ids))[:, None]
    by_cooc = np.argsort(-cooc[first_item], axis=1, kind="stable")[:, :5]
    pop_scores = np.tile(cart_counts.astype(float), (len(test_ids), 1))
    pop_scores[rows[:, 0], first_item] = -1  # the first item is not a target
    by_pop = np.argsort(-pop_scores, axis=1, kind="stable")[:, :5]
    hit_cooc = (truth[rows, by_cooc] > 0).any(axis=1).mean()
    hit_pop = (truth[rows, by_pop] > 0).any(axis=1).mean()
    return hit_cooc, hit_pop, len(test_ids)


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_taste_beats_popularity(seed):
    events = make_sessions(5_000, n_items=500, n_tastes=10, random_state=seed)
    hit_cooc, hit_pop, n_test = _first_event_vs_popularity(events)
    assert n_test > 200
    assert hit_cooc > 1.5 * hit_pop


def test_no_taste_no_advantage():
    # The control: without taste, co-occurrence is only popularity again.
    events = make_sessions(
        5_000, n_items=500, n_tastes=10, taste_strength=0, random_state=0
    )
    hit_cooc, hit_pop, _ = _first_event_vs_popularity(events)
    assert hit_cooc < 1.15 * hit_pop


def test_user_history_predicts_later_sessions(events):
    """A user's earlier sessions share items with their last one."""
    logged = events.filter(pl.col("user_id").is_not_null())
    last = logged.group_by("user_id").agg(last=pl.col("session_id").max())
    logged = logged.join(last, on="user_id").filter(
        pl.col("last") > pl.col("session_id").min().over("user_id")
    )
    history = (
        logged.filter(pl.col("session_id") < pl.col("last"))
        .group_by("user_id")
        .agg(history=pl.col("partnumber").unique())
        .sort("user_id")
    )
    final = (
        logged.filter(pl.col("session_id") == pl.col("last"))
        .group_by("user_id")
        .agg(final=pl.col("partnumber").unique())
        .sort("user_id")
    )
    assert history.height > 100

    def overlap(hist, fin):
        return np.mean(
            [len(set(h) & set(f)) / len(f) for h, f in zip(hist, fin, strict=True)]
        )

    hist, fin = history["history"].to_list(), final["final"].to_list()
    own = overlap(hist, fin)
    other = overlap(hist[1:] + hist[:1], fin)  # another user's history
    assert own > 1.5 * other


@pytest.mark.parametrize(
    "param, value",
    [
        ("n_sessions", 0),
        ("n_sessions", 2.5),
        ("n_items", 0),
        ("n_users", 0),
        ("logged_in_fraction", 1.5),
        ("logged_in_fraction", -0.1),
        ("cart_rate", 2),
        ("n_tastes", 0),
        ("taste_strength", 1.1),
        ("repeat_rate", 1.0),
        ("popularity_exponent", -1),
        ("n_countries", 0),
        ("n_days", 0),
        ("start", "June 1st"),
        ("start", 20240601),
        ("max_session_length", 0),
        ("random_state", "seed"),
    ],
)
def test_bad_parameters_raise(param, value):
    kwargs = {"n_sessions": 10, param: value}
    with pytest.raises(ValueError, match=f"'{param}'"):
        make_sessions(**kwargs)


def test_more_tastes_than_items_raises():
    with pytest.raises(ValueError, match="'n_tastes'.*'n_items'"):
        make_sessions(10, n_items=5, n_tastes=6)


def test_sessions_longer_than_the_window_are_squeezed(monkeypatch):
    import skals.datasets._sessions as sessions_module

    monkeypatch.setattr(sessions_module, "_GAP_MEDIAN_S", 1_800.0)
    df = make_sessions(200, n_days=1, random_state=0)
    check_invariants(df, 200, n_items=2_000, n_days=1, start=dt.date(2024, 6, 1))
    span = df.group_by("session_id").agg(
        pl.col("timestamp_local").max() - pl.col("timestamp_local").min()
    )["timestamp_local"]
    assert span.max() > dt.timedelta(hours=12)


def test_start_accepts_dates_and_datetimes():
    for start in (dt.date(2024, 1, 15), dt.datetime(2024, 1, 15), "2024-01-15"):
        df = make_sessions(50, n_days=2, start=start, random_state=0)
        assert df["date"].min() >= dt.date(2024, 1, 15)
        assert df["date"].max() <= dt.date(2024, 1, 16)


# ------------------------------------------------------ the structure knobs
def _transitions(events):
    """(previous item, item) of consecutive events of a session."""
    return events.select(
        "session_id",
        prev=pl.col("partnumber").shift().over("session_id"),
        item=pl.col("partnumber"),
    ).drop_nulls()


def _successor_share(events):
    """Share of transitions to one of the previous item's 3 usual successors."""
    moves = _transitions(events).filter(pl.col("prev") != pl.col("item"))
    top = (
        moves.group_by("prev", "item")
        .len()
        .sort("len", "item", descending=[True, False])
        .group_by("prev", maintain_order=True)
        .head(3)
    )
    return moves.join(top, on=["prev", "item"], how="semi").height / moves.height


def test_knobs_at_their_off_values_change_nothing():
    default = make_sessions(500, n_items=300, random_state=5)
    off = make_sessions(
        500,
        n_items=300,
        sequential_strength=0.0,
        review_cart_boost=5.0,
        popularity_drift=0.0,
        random_state=5,
    )
    assert default.equals(off)


def test_sequential_strength_plants_successors():
    plain = make_sessions(3000, n_items=1000, random_state=0)
    seq = make_sessions(3000, n_items=1000, sequential_strength=0.6, random_state=0)
    # (without order, 3 successors cover a share by chance: few moves per item)
    assert _successor_share(seq) > 0.45
    assert _successor_share(plain) < 0.35
    # the other structure stays: same depths, sessions and carts share
    assert seq["session_id"].equals(plain["session_id"])
    assert abs(seq["add_to_cart"].mean() - 0.06) < 0.01


def _review_cart_ratio(events):
    df = events.with_columns(
        again=pl.int_range(pl.len()).over("session_id", "partnumber") > 0
    )
    rates = df.group_by("again").agg(pl.col("add_to_cart").mean())
    rate = dict(zip(rates["again"], rates["add_to_cart"], strict=True))
    return rate[True] / rate[False]


def test_review_cart_boost():
    strong = make_sessions(3000, review_cart_boost=5.0, random_state=0)
    flat = make_sessions(3000, review_cart_boost=1.0, random_state=0)
    assert _review_cart_ratio(strong) > 3.0
    assert 0.7 < _review_cart_ratio(flat) < 1.4
    for df in (strong, flat):
        assert abs(df["add_to_cart"].mean() - 0.06) < 0.01


def _early_late_correlation(events):
    day = (pl.col("date") - pl.col("date").min()).dt.total_days()
    counts = (
        events.with_columns(late=day >= 20)
        .filter((day < 10) | (day >= 20))
        .group_by("partnumber", "late")
        .len()
        .pivot(on="late", index="partnumber", values="len")
        .fill_null(0)
    )
    return np.corrcoef(counts["false"], counts["true"])[0, 1]


def test_popularity_drift():
    fixed = make_sessions(8000, n_items=500, n_tastes=1, random_state=0)
    drift = make_sessions(
        8000, n_items=500, n_tastes=1, popularity_drift=0.3, random_state=0
    )
    assert _early_late_correlation(fixed) > 0.9
    assert _early_late_correlation(drift) < 0.6


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_sessions=st.integers(1, 40),
    n_items=st.integers(1, 30),
    n_tastes=st.integers(1, 4),
    sequential_strength=st.sampled_from([0.0, 0.5, 1.0]),
    review_cart_boost=st.sampled_from([0.5, 1.0, 5.0]),
    popularity_drift=st.sampled_from([0.0, 0.5]),
    n_days=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 2),
)
def test_invariants_hold_with_the_knobs(
    n_sessions,
    n_items,
    n_tastes,
    sequential_strength,
    review_cart_boost,
    popularity_drift,
    n_days,
    seed,
):
    n_tastes = min(n_tastes, n_items)
    events = make_sessions(
        n_sessions,
        n_items=n_items,
        n_tastes=n_tastes,
        sequential_strength=sequential_strength,
        review_cart_boost=review_cart_boost,
        popularity_drift=popularity_drift,
        n_days=n_days,
        random_state=seed,
    )
    check_invariants(
        events, n_sessions, n_items=n_items, n_days=n_days, start=dt.date(2024, 6, 1)
    )


def test_bad_knobs():
    for bad in (
        {"sequential_strength": 1.5},
        {"review_cart_boost": -1.0},
        {"popularity_drift": -0.1},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            make_sessions(10, **bad)


def test_generator_state_is_the_one_behind_the_log():
    # benchmarks/cart_oracle.py simulates sessions from this state: it must
    # describe the log exactly (events, sessions, tables, successors, odds)
    from skals.datasets._sessions import _N_SUCCESSORS, _country_codes, _generate

    params = {"n_items": 300, "n_tastes": 6, "sequential_strength": 0.5}
    params["popularity_drift"] = 0.1
    defaults = {
        name: p.default
        for name, p in inspect.signature(make_sessions).parameters.items()
        if name not in ("n_sessions", "random_state")
    }
    df, state = _generate(n_sessions=800, random_state=3, **{**defaults, **params})
    assert df.equals(make_sessions(800, random_state=3, **params))
    np.testing.assert_array_equal(state["item"] + 1, df["partnumber"].to_numpy())
    sessions = df["session_id"].to_numpy()
    ids = np.arange(1, 801)
    np.testing.assert_array_equal(np.repeat(ids, state["depth"]), sessions)
    np.testing.assert_array_equal(state["first"], np.searchsorted(sessions, ids))
    # a session's table row: its first day (since the start) and its country
    starts = df.group_by("session_id").agg(pl.first("date", "country"))
    starts = starts.sort("session_id")
    day = (starts["date"] - dt.date(2024, 6, 1)).dt.total_days().to_numpy()
    country = np.searchsorted(_country_codes(4), starts["country"].to_numpy())
    np.testing.assert_array_equal(state["table"], day * 4 + country)
    # a re-view repeats an item seen earlier in its session
    pos = np.arange(df.height) - state["first"][sessions - 1]
    earlier = df.select(
        pl.col("partnumber").cum_count().over("session_id", "partnumber") > 1
    ).to_series()
    assert earlier.to_numpy()[~state["is_new"]].all()
    # new views after the first follow a successor of the previous item
    # (sequential strength 0.5, plus draws that land there by chance)
    assert state["successors"].shape == (300, _N_SUCCESSORS)
    step = state["is_new"] & (pos > 0)
    prev = state["item"][np.flatnonzero(step) - 1]
    follows = (state["successors"][prev] == state["item"][step][:, None]).any(1)
    assert 0.5 <= follows.mean() < 0.6
    # cart odds: off-taste 0.4x a new view, re-views 5x (the default boost)
    p = state["p_cart"]
    np.testing.assert_allclose(p / p[0], [1, 0.4, 5, 2])
