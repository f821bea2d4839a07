"""Properties on random small event logs (hypothesis).

* The confidence aggregation equals a naive Python count.
* Ids round-trip through the builder: every stored confidence sits at the
  row of its key (or session) and the column of its item.
* Recommendations never contain filtered items (``filter_items``, the
  ``items`` allow-list, already-liked items when that filter is on), always
  have ``k`` distinct items when the catalogue allows (else every eligible
  item), and their scores are non-increasing.
"""

import warnings
from collections import Counter

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.pipeline import make_pipeline

from conftest import skals_pipeline
from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
)
from skals.preprocessing import FrameCache

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def event_logs(draw, max_sessions=6, n_items=8, max_events=30, as_str=None):
    """A raw event log and its plain-Python description.

    Every event has a logged-in user (ids 1-3) or nobody, drawn per event, so
    a session may be anonymous, log in half-way or be shared by two users;
    items are ``0..n_items-1``, as integers or as strings.
    """
    n_sessions = draw(st.integers(1, max_sessions))
    events = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_sessions - 1),
                st.integers(0, n_items - 1),
                st.booleans(),
                st.one_of(st.none(), st.integers(1, 3)),
            ),
            min_size=1,
            max_size=max_events,
        )
    )
    if as_str is None:
        as_str = draw(st.booleans())
    item = (lambda i: f"p{i}") if as_str else (lambda i: i)
    frame = pl.DataFrame(
        {
            "session_id": [s for s, _, _, _ in events],
            "user_id": pl.Series([u for _, _, _, u in events], dtype=pl.Int64),
            "partnumber": [item(i) for _, i, _, _ in events],
            "add_to_cart": [int(c) for _, _, c, _ in events],
        }
    )
    # the documented rule: a session's key is its smallest user id's, if any
    users = {}
    for s, _, _, u in events:
        if u is not None:
            users[s] = min(u, users.get(s, u))
    rows = [
        (_key(users.get(s), s), s, item(i), int(c)) for s, i, c, _ in events
    ]  # (key, session, item, cart)
    return frame, rows


def _key(user, session):
    return f"u_{user}" if user is not None else f"s_{session}"


def _quiet(fn, *args):
    """``fn(*args)`` without the unifier's counted warnings (tested elsewhere)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args)


# ----------------------------------------------------------------- aggregation
@SETTINGS
@given(
    log=event_logs(),
    view_weight=st.floats(0, 20),
    cart_weight=st.floats(0, 50),
    grain=st.sampled_from(["key", "session"]),
)
def test_confidence_equals_naive_count(log, view_weight, cart_weight, grain):
    frame, rows = log
    views, carts = Counter(), Counter()
    for key, session, item, cart in rows:
        group = (key, session, item) if grain == "session" else (key, item)
        views[group] += 1
        carts[group] += cart
    keyed = _quiet(PseudoUserUnifier().fit_transform, frame)
    encoder = ConfidenceEncoder(
        view_weight=view_weight, cart_weight=cart_weight, grain=grain
    )
    out = encoder.fit_transform(keyed)
    cols = ["unified_user_id", "session_id", "partnumber"]
    if grain == "key":
        cols.remove("session_id")
    got = {
        tuple(r[c] for c in cols): (r["view_count"], r["cart_count"], r["confidence"])
        for r in out.iter_rows(named=True)
    }
    assert out.height == len(got) == len(views)
    for group, n in views.items():
        expected = 1.0 + view_weight * n + cart_weight * carts[group]
        assert got[group][:2] == (n, carts[group])
        assert got[group][2] == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------- explicit cache
_MEMORY = FrameCache()  # shared by the examples: equal logs hit


@SETTINGS
@given(
    log=event_logs(),
    grain=st.sampled_from(["key", "session"]),
    cart_weight=st.sampled_from([0.0, 10.0]),
)
def test_cached_preprocessing_equals_uncached(log, grain, cart_weight):
    def pre(memory):
        return make_pipeline(
            PseudoUserUnifier(),
            ConfidenceEncoder(grain=grain, cart_weight=cart_weight),
            InteractionMatrixBuilder(),
            "passthrough",
            memory=memory,
        )

    ref = _quiet(pre(None).fit_transform, log[0])
    hits = _MEMORY.hits
    for _ in range(2):  # at least the second run is three hits
        got = _quiet(pre(_MEMORY).fit_transform, log[0])
        assert (got.matrix != ref.matrix).nnz == 0
        assert got.matrix.dtype == ref.matrix.dtype
        for part in ("row_ids", "row_keys", "item_ids"):
            assert getattr(got, part).equals(getattr(ref, part))
    assert _MEMORY.hits >= hits + 3


# ------------------------------------------------------------------ id round trip
def _stored(im):
    """{(row id, item id): value} of the matrix's stored entries."""
    coo = im.matrix.tocoo()
    rows, items = im.row_ids.to_list(), im.item_ids.to_list()
    return {
        (rows[r], items[c]): float(v)
        for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)
    }


@SETTINGS
@given(
    train=event_logs(as_str=False),
    test=event_logs(as_str=False, n_items=12),
    grain=st.sampled_from(["key", "session"]),
)
def test_ids_round_trip_through_builder(train, test, grain):
    unifier, encoder = PseudoUserUnifier(), ConfidenceEncoder(grain=grain)
    enc_train = encoder.fit_transform(_quiet(unifier.fit_transform, train[0]))
    builder = InteractionMatrixBuilder().fit(enc_train)
    vocabulary = sorted({item for _, _, item, _ in train[1]})
    assert builder.item_ids_.to_list() == vocabulary
    id_col = "session_id" if grain == "session" else "unified_user_id"
    for enc in (enc_train, encoder.transform(_quiet(unifier.transform, test[0]))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # unknown test items
            im = builder.transform(enc)
        assert im.item_ids.to_list() == vocabulary
        # every key (or session) of the input has its row, in sorted order
        assert im.row_ids.to_list() == sorted(set(enc[id_col].to_list()))
        key_of = dict(zip(enc[id_col], enc["unified_user_id"], strict=True))
        assert im.row_keys.to_list() == [key_of[r] for r in im.row_ids]
        expected = {
            (r[id_col], r["partnumber"]): np.float32(r["confidence"])
            for r in enc.iter_rows(named=True)
            if r["partnumber"] in vocabulary
        }
        assert _stored(im) == pytest.approx(expected)


# ------------------------------------------------------------ recommendations
@st.composite
def recommender_setups(draw):
    n_items = 8
    catalogue = list(range(n_items))
    mode = draw(st.sampled_from(["none", "filter_items", "items"]))
    params = {
        "k": draw(st.integers(1, 6)),
        "filter_already_liked_items": draw(st.booleans()),
    }
    if mode == "filter_items":
        params["filter_items"] = draw(
            st.lists(st.sampled_from(catalogue), max_size=n_items - 1, unique=True)
        )
    elif mode == "items":
        params["items"] = draw(
            st.lists(st.sampled_from(catalogue), min_size=1, unique=True)
        )
    if draw(st.booleans()):
        final = ImplicitALSRecommender(
            factors=2, iterations=2, random_state=0, num_threads=1
        )
    else:
        final = PopularityRecommender()
    return final.set_params(**params)


@pytest.mark.filterwarnings("ignore:.*sessions have events of more than one user")
@SETTINGS
@given(
    train=event_logs(as_str=False),
    test=event_logs(as_str=False, max_events=15),
    final=recommender_setups(),
    grain=st.sampled_from(["key", "session"]),
)
def test_recommendations_respect_filters_and_k(train, test, final, grain):
    model = skals_pipeline(final, grain=grain).fit(train[0])
    catalogue = set(model[-2].item_ids_.to_list())
    eligible = set(catalogue)
    if final.items is not None:
        eligible &= set(final.items)
    if final.filter_items is not None:
        eligible -= set(final.filter_items)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unknown items, clipped k
        if not eligible:
            with pytest.raises(ValueError, match="leaves no item|excludes every"):
                model.predict(test[0])
            return
        answers = model.predict(test[0])
    history = {}
    for key, _, item, _ in train[1]:
        history.setdefault(key, set()).add(item)
    context = {}
    for key, session, item, _ in test[1]:
        row = session if grain == "session" else key
        context.setdefault(row, (key, set()))[1].add(item)

    id_col = "session_id" if grain == "session" else "unified_user_id"
    assert sorted(answers[id_col].to_list()) == sorted(context)
    for row, recs, scores, _source in answers.iter_rows():
        key, items = context[row]
        liked = items & catalogue
        if isinstance(final, ImplicitALSRecommender):
            liked |= history.get(key, set())  # merge_history=True
        available = eligible
        if final.filter_already_liked_items and eligible - liked:
            # when everything eligible was liked, the filter is dropped
            available = eligible - liked
        assert len(recs) == len(set(recs)) == min(final.k, len(available))
        assert set(recs) <= available
        assert len(scores) == len(recs)
        assert all(np.isfinite(scores))
        assert all(a >= b for a, b in zip(scores, scores[1:], strict=False))
