"""to_key_grain: session rows summed per key, against a naive loop."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from skals import ConfidenceEncoder, InteractionMatrixBuilder, PseudoUserUnifier
from skals.datasets import make_sessions
from skals.recommender._base import to_key_grain


def naive(encoded: pl.DataFrame, value: str, excess: bool):
    """{(key, item): value} from the published rule, one row at a time."""
    sums = defaultdict(float)
    for key, item, v in encoded.select("unified_user_id", "partnumber", value).rows():
        sums[key, item] += (v - 1.0) if excess else v
    return {pair: (1.0 + s) if excess else s for pair, s in sums.items()}


def dense(matrix, keys, items):
    coo = matrix.tocoo()
    k, i = keys.to_list(), items.to_list()
    return {
        (k[r], i[c]): float(v)
        for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)
    }


@pytest.mark.parametrize(
    "weights",
    [{}, {"view_weight": 0.0, "cart_weight": 0.0}, {"view_weight": 0.3}],
)
def test_sessions_of_a_key_are_summed_as_one_plus_the_excess(weights):
    events = make_sessions(400, n_items=30, random_state=3)
    keyed = PseudoUserUnifier().fit_transform(events)
    encoded = ConfidenceEncoder(grain="session", **weights).fit_transform(keyed)
    im = InteractionMatrixBuilder().fit_transform(encoded)
    assert im.row_keys.n_unique() < im.matrix.shape[0]  # keys of several sessions
    matrix, keys = to_key_grain(im)
    assert matrix.dtype == np.float32 and matrix.has_canonical_format
    assert keys.to_list() == sorted(set(im.row_keys.to_list()))
    want = naive(encoded, "confidence", excess=True)
    got = dense(matrix, keys, im.item_ids)
    assert got.keys() == want.keys()
    for pair, v in want.items():
        if "view_weight" in weights and weights["view_weight"] % 1:
            # the matrix holds float32 confidences: 1.3 is 1.2999999523
            assert got[pair] == pytest.approx(v, rel=1e-6), pair
        else:
            assert got[pair] == np.float32(v), pair  # integral: exact
    if weights.get("view_weight") == 0.0:
        assert set(got.values()) == {1.0}  # every pair kept, at c = 1


def test_other_values_are_summed_plainly():
    events = make_sessions(300, n_items=20, random_state=4)
    keyed = PseudoUserUnifier().fit_transform(events)
    encoded = (
        ConfidenceEncoder(grain="session")
        .fit_transform(keyed)
        .select("unified_user_id", "session_id", "partnumber", views="view_count")
    )
    im = InteractionMatrixBuilder(value_col="views").fit_transform(encoded)
    matrix, keys = to_key_grain(im)
    want = naive(encoded, "views", excess=False)
    assert dense(matrix, keys, im.item_ids) == want
