"""InteractionMatrixBuilder.transform against a naive loop (issue 21).

The transform joins the pairs to the fitted keys and items, scatters the
fitted keys' positions and sums the item statistics with ``np.bincount``;
these tests rebuild the matrix and the statistics with plain Python dicts on
random logs with repeated pairs, keys not seen in fit and unknown items. The
values are multiples of 1/4, so every sum is exact in any order and the
comparison is exact.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from skals import InteractionMatrixBuilder
from skals._warnings import SkalsWarning


def _log(rng, n, n_keys, n_items, strings):
    k = rng.integers(0, n_keys, n)
    views = rng.integers(1, 6, n)
    carts = rng.integers(0, 3, n)
    return pl.DataFrame(
        {
            "unified_user_id": [f"u_{x}" for x in k] if strings else k,
            "partnumber": rng.integers(0, n_items, n),
            "view_count": views,
            "cart_count": carts,
            "confidence": rng.integers(0, 40, n) / 4.0,
        }
    )


def _naive(builder, X):
    """Rows, cells and per-item sums with dicts, in the input's order."""
    items = {v: j for j, v in enumerate(builder.item_ids_.to_list())}
    keys = sorted(set(X["unified_user_id"].to_list()))
    row = {k: i for i, k in enumerate(keys)}
    cells, stats = {}, {}
    unknown = []
    for key, item, v, c, conf in X.iter_rows():
        if item not in items:
            unknown.append(item)
            continue
        j = items[item]
        cell = (row[key], j)
        cells[cell] = cells.get(cell, 0.0) + conf
        s = stats.setdefault(j, [0.0, 0.0, 0.0, 0.0])
        s[0] += conf
        s[1] += v
        s[2] += c
        s[3] += 1
    dense = np.zeros((len(keys), len(items)), dtype=np.float32)
    for (i, j), conf in cells.items():
        dense[i, j] = conf
    return keys, dense, stats, unknown


@pytest.mark.parametrize("strings", [True, False])
def test_transform_matches_a_naive_loop(strings):
    rng = np.random.default_rng(21)
    for _ in range(30):
        n_keys, n_items = int(rng.integers(1, 40)), int(rng.integers(1, 12))
        fit = _log(rng, int(rng.integers(1, 80)), n_keys, n_items, strings)
        builder = InteractionMatrixBuilder().fit(fit)
        # the training log; a longer one with new keys and items (joined to
        # the fitted keys); a short one (sorts its own keys)
        other = _log(rng, int(rng.integers(40, 160)), n_keys + 20, n_items + 3, strings)
        for X in (fit, other, other.head(4)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SkalsWarning)
                im = builder.transform(X)
            keys, dense, stats, unknown = _naive(builder, X)
            assert im.row_ids.to_list() == keys
            assert im.row_keys.to_list() == keys
            assert im.matrix.has_canonical_format
            np.testing.assert_array_equal(im.matrix.toarray(), dense)
            got = im.item_stats
            assert got["item_index"].dtype == pl.Int64
            assert got["item_index"].to_list() == sorted(stats)
            for name, at in [
                ("confidence", 0),
                ("view_count", 1),
                ("cart_count", 2),
                ("n_rows", 3),
            ]:
                assert got[name].dtype == pl.Float64
                assert got[name].to_list() == [stats[j][at] for j in sorted(stats)]
            messages = [str(w.message) for w in caught]
            if unknown:
                assert len(messages) == 1
                assert messages[0].endswith(
                    f"dropped {len(unknown)} of {X.height} rows whose 'partnumber' "
                    f"({len(set(unknown))} distinct ids) was not seen in fit."
                )
            else:
                assert messages == []


def test_positions_are_int32_and_stats_index_int64():
    X = pl.DataFrame(
        {
            "unified_user_id": ["b", "a", "b", "c"],
            "partnumber": [7, 3, 3, 7],
            "country": ["x", "y", "x", "y"],
            "confidence": [1.5, 2.0, 3.0, 4.0],
        }
    )
    im = InteractionMatrixBuilder().fit_transform(X)
    assert im.matrix.indices.dtype == np.int32
    assert im.matrix.indptr.dtype == np.int32
    np.testing.assert_array_equal(
        im.matrix.toarray(), [[2.0, 0.0], [3.0, 1.5], [0.0, 4.0]]
    )
    assert im.item_stats["item_index"].dtype == pl.Int64
    seg = InteractionMatrixBuilder(segment_col="country").fit_transform(X)
    assert seg.item_stats["item_index"].dtype == pl.Int64
    assert seg.item_stats.select("country", "item_index", "confidence").rows() == [
        ("x", 0, 3.0),
        ("x", 1, 1.5),
        ("y", 0, 2.0),
        ("y", 1, 4.0),
    ]


def test_a_count_column_can_be_the_value_column():
    # value_col="view_count" carried the column twice through the joins
    # (polars' DuplicateError); the matrix holds the views, the statistics
    # are the same sums
    import polars as pl

    from skals import InteractionMatrixBuilder

    encoded = pl.DataFrame(
        {
            "unified_user_id": ["u_1", "u_1", "u_2"],
            "partnumber": [5, 6, 5],
            "view_count": [2, 1, 4],
            "cart_count": [1, 0, 0],
        }
    )
    im = InteractionMatrixBuilder(value_col="view_count").fit_transform(encoded)
    assert im.matrix.toarray().tolist() == [[2.0, 1.0], [4.0, 0.0]]
    stats = im.item_stats.sort("item_index")
    assert stats["view_count"].to_list() == [6.0, 1.0]
    assert stats["cart_count"].to_list() == [1.0, 0.0]
