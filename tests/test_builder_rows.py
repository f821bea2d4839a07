"""InteractionMatrixBuilder.transform finds its rows two ways (issue 21).

A log at least as long as the fitted key vocabulary is joined to the fitted
keys (the training log is not made unique and sorted a second time); a short
one sorts its own keys. Both must give the same InteractionMatrix exactly:
rows, keys, matrix and item statistics.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from skals import InteractionMatrixBuilder
from skals._warnings import SkalsWarning
from skals.preprocessing._builder import InteractionMatrixBuilder as Builder


def _transform(builder, X, by_vocabulary, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(Builder, "_rows_from_vocabulary", lambda self, df: by_vocabulary)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SkalsWarning)  # unknown items
            out = builder.transform(X)
    # the same counted warnings either way
    out.messages = [str(w.message) for w in caught]
    return out


def _assert_same(a, b):
    assert a.row_ids.to_list() == b.row_ids.to_list()
    assert a.row_keys.to_list() == b.row_keys.to_list()
    assert a.matrix.shape == b.matrix.shape
    assert a.matrix.has_canonical_format and b.matrix.has_canonical_format
    np.testing.assert_array_equal(a.matrix.indptr, b.matrix.indptr)
    np.testing.assert_array_equal(a.matrix.indices, b.matrix.indices)
    np.testing.assert_array_equal(a.matrix.data, b.matrix.data)
    assert a.item_stats.equals(b.item_stats)
    assert a.messages == b.messages


@pytest.mark.parametrize("strings", [True, False])
def test_both_ways_give_the_same_matrix(strings, monkeypatch):
    rng = np.random.default_rng(7)

    def frame(n, n_keys, n_items):
        k = rng.integers(0, n_keys, n)
        return pl.DataFrame(
            {
                "unified_user_id": [f"u_{x}" for x in k] if strings else k,
                "partnumber": rng.integers(0, n_items, n),
                "confidence": rng.integers(0, 5, n).astype(float),
            }
        )

    warned = 0
    for _ in range(40):
        n_keys, n_items = int(rng.integers(1, 30)), int(rng.integers(1, 10))
        fit = frame(int(rng.integers(1, 60)), n_keys, n_items)
        builder = InteractionMatrixBuilder().fit(fit)
        # the training rows; then new keys and items, and fitted keys missing
        other = frame(int(rng.integers(1, 120)), n_keys + 15, n_items + 3)
        for X in (fit, other, other.head(3)):
            by_input = _transform(builder, X, False, monkeypatch)
            _assert_same(by_input, _transform(builder, X, True, monkeypatch))
            warned += bool(by_input.messages)
    assert warned  # unknown items were counted, the same way


def test_new_keys_merge_between_the_fitted_ones():
    fit = pl.DataFrame(
        {"unified_user_id": ["b", "d"], "partnumber": [1, 2], "confidence": [2.0, 3.0]}
    )
    builder = InteractionMatrixBuilder().fit(fit)
    X = pl.DataFrame(
        {
            "unified_user_id": ["e", "d", "a", "c", "a"],
            "partnumber": [1, 2, 2, 1, 1],
            "confidence": [5.0, 4.0, 1.0, 7.0, 6.0],
        }
    )
    assert builder._rows_from_vocabulary(X)
    out = builder.transform(X)
    # "b" is not in X: no row; the new keys sort in between the fitted ones
    assert out.row_ids.to_list() == ["a", "c", "d", "e"]
    assert out.row_keys.to_list() == ["a", "c", "d", "e"]
    np.testing.assert_array_equal(
        out.matrix.toarray(), [[6.0, 1.0], [7.0, 0.0], [0.0, 4.0], [5.0, 0.0]]
    )


def test_which_way():
    fit = pl.DataFrame(
        {
            "unified_user_id": ["a", "b", "c"],
            "partnumber": [1, 2, 1],
            "confidence": [2.0, 3.0, 1.0],
        }
    )
    builder = InteractionMatrixBuilder().fit(fit)
    assert builder._rows_from_vocabulary(fit)
    # shorter than the vocabulary: its own keys are sorted
    assert not builder._rows_from_vocabulary(fit.head(2))
    # keys of another dtype than in fit are never joined to the fitted ones
    as_cat = fit.with_columns(pl.col("unified_user_id").cast(pl.Categorical))
    assert not builder._rows_from_vocabulary(as_cat)
    ints = InteractionMatrixBuilder().fit(
        fit.with_columns(unified_user_id=pl.Series([3, 1, 2]))
    )
    assert not ints._rows_from_vocabulary(fit)
    assert ints.transform(
        fit.with_columns(unified_user_id=pl.Series([3, 1, 2]))
    ).row_ids.to_list() == [1, 2, 3]
