"""PseudoUserUnifier, ConfidenceEncoder, InteractionMatrixBuilder."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from skals import (
    ConfidenceEncoder,
    InteractionMatrix,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)

NAN = float("nan")


@pytest.fixture
def events():
    # two anonymous sessions, one logged-in user over two sessions
    return pl.DataFrame(
        {
            "session_id": [1, 1, 1, 2, 3, 3, 4],
            "user_id": [None, None, None, 7.0, NAN, NAN, 7.0],
            "partnumber": [10, 10, 20, 20, 10, 30, 30],
            "add_to_cart": [0, 1, 0, 0, 0, 1, 1],
        }
    )


# ------------------------------------------------------------ PseudoUserUnifier
def test_unifier_keys_float_ids_with_null_and_nan():
    df = pl.DataFrame(
        {
            "session_id": [1, 2, 3, 4, 5],
            "user_id": [12.0, None, NAN, 3e6, 12.5],
        }
    )
    keys = PseudoUserUnifier().fit_transform(df)["unified_user_id"].to_list()
    # null and NaN are missing -> session key; integral floats lose ".0"
    assert keys == ["u_12", "s_2", "s_3", "u_3000000", "u_12.5"]


def test_unifier_integer_and_string_ids():
    df = pl.DataFrame(
        {"session_id": ["a", "b"], "user_id": pl.Series([None, 5], dtype=pl.Int64)}
    )
    out = PseudoUserUnifier().fit_transform(df)
    assert out["unified_user_id"].to_list() == ["s_a", "u_5"]


def test_unifier_keeps_rows_and_columns_and_type(events):
    lazy = PseudoUserUnifier().fit_transform(events.lazy())
    assert isinstance(lazy, pl.LazyFrame)
    eager = PseudoUserUnifier().fit_transform(events)
    assert_frame_equal(lazy.collect(), eager)
    assert eager.columns == [*events.columns, "unified_user_id"]
    assert eager.height == events.height
    pdf = PseudoUserUnifier().fit_transform(events.to_pandas())
    assert isinstance(pdf, pd.DataFrame)
    assert pdf["unified_user_id"].tolist() == eager["unified_user_id"].to_list()
    # the pandas float column with NaN is the challenge's own shape
    assert pdf["unified_user_id"].tolist()[:4] == ["s_1", "s_1", "s_1", "u_7"]


def test_unifier_parameters_rename_everything(events):
    df = events.rename({"session_id": "sid", "user_id": "uid"})
    out = PseudoUserUnifier(
        user_col="uid", session_col="sid", output_col="key", user_prefix="U"
    ).fit_transform(df)
    assert out["key"].to_list()[2:4] == ["s_1", "U7"]


# ------------------------------------------------------------ ConfidenceEncoder
def test_confidence_hand_computed(events):
    keyed = PseudoUserUnifier().fit_transform(events)
    out = ConfidenceEncoder().fit_transform(keyed).sort("unified_user_id", "partnumber")
    # s_1: item 10 viewed twice, carted once -> 1 + 2 + 10 = 13; item 20 -> 2
    # s_3: item 10 -> 2; item 30 carted -> 1 + 1 + 10 = 12
    # u_7 (sessions 2 and 4): item 20 -> 2; item 30 carted -> 12
    assert out.rows() == [
        ("s_1", 10, 2, 1, 13.0),
        ("s_1", 20, 1, 0, 2.0),
        ("s_3", 10, 1, 0, 2.0),
        ("s_3", 30, 1, 1, 12.0),
        ("u_7", 20, 1, 0, 2.0),
        ("u_7", 30, 1, 1, 12.0),
    ]
    assert out.columns == [
        "unified_user_id",
        "partnumber",
        "view_count",
        "cart_count",
        "confidence",
    ]


def test_confidence_weights(events):
    keyed = PseudoUserUnifier().fit_transform(events)
    enc = ConfidenceEncoder(view_weight=0.5, cart_weight=3)
    out = enc.fit_transform(keyed).sort("unified_user_id", "partnumber")
    # s_1 item 10: 1 + 0.5 * 2 + 3 * 1 = 5
    assert out["confidence"].to_list()[0] == 5.0


def test_confidence_cart_optional_at_transform(events):
    keyed = PseudoUserUnifier().fit_transform(events)
    enc = ConfidenceEncoder().fit(keyed)
    out = enc.transform(keyed.drop("add_to_cart")).sort("unified_user_id", "partnumber")
    assert out["cart_count"].to_list() == [0] * 6
    assert out["confidence"].to_list() == [3.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="add_to_cart"):
        ConfidenceEncoder().fit(keyed.drop("add_to_cart"))


def test_confidence_session_grain(events):
    keyed = PseudoUserUnifier().fit_transform(events)
    out = ConfidenceEncoder(grain="session").fit_transform(keyed)
    u7 = out.filter(pl.col("unified_user_id") == "u_7").sort("session_id")
    assert u7.select("session_id", "partnumber", "confidence").rows() == [
        (2, 20, 2.0),
        (4, 30, 12.0),
    ]


def test_confidence_segment_is_most_frequent(events):
    df = (
        PseudoUserUnifier()
        .fit_transform(events)
        .with_columns(country=pl.Series([1, 1, 2, 5, 3, 3, 5]))
    )
    out = ConfidenceEncoder(segment_col="country").fit_transform(df)
    seg = dict(out.select("unified_user_id", "country").unique().rows())
    assert seg == {"s_1": 1, "s_3": 3, "u_7": 5}


def test_confidence_pandas_and_lazy_agree(events):
    keyed = PseudoUserUnifier().fit_transform(events)
    ref = ConfidenceEncoder().fit_transform(keyed).sort("unified_user_id", "partnumber")
    lazy = ConfidenceEncoder().fit_transform(keyed.lazy())
    assert isinstance(lazy, pl.DataFrame)
    assert_frame_equal(lazy.sort("unified_user_id", "partnumber"), ref)
    pdf = ConfidenceEncoder().fit_transform(keyed.to_pandas())
    assert isinstance(pdf, pd.DataFrame)
    back = pl.from_pandas(pdf).sort("unified_user_id", "partnumber")
    assert back.rows() == ref.rows()


# ------------------------------------------------------ InteractionMatrixBuilder
@pytest.mark.parametrize(
    "items", [[10, 20, 30], ["sku-b", "sku-a", "sku-c"]], ids=["int", "str"]
)
def test_builder_round_trip(items):
    enc = pl.DataFrame(
        {
            "unified_user_id": ["u_2", "s_1", "u_2", "s_1"],
            "partnumber": [items[0], items[1], items[2], items[0]],
            "confidence": [2.0, 3.0, 12.0, 5.0],
        }
    )
    im = InteractionMatrixBuilder().fit_transform(enc)
    assert isinstance(im, InteractionMatrix)
    assert im.matrix.dtype == np.float32 and im.matrix.format == "csr"
    assert im.row_ids.to_list() == ["s_1", "u_2"]
    assert im.item_ids.to_list() == sorted(items)
    # every stored value goes back to its (key, item, confidence)
    coo = im.matrix.tocoo()
    back = {
        (im.row_ids[int(r)], im.item_ids[int(c)], float(v))
        for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)
    }
    assert back == set(enc.rows())


def test_builder_drops_unknown_items_with_counted_warning():
    fit = pl.DataFrame(
        {"unified_user_id": ["a", "b"], "partnumber": [1, 2], "confidence": [2.0, 2.0]}
    )
    builder = InteractionMatrixBuilder().fit(fit)
    new = pl.DataFrame(
        {
            "unified_user_id": ["a", "c", "c"],
            "partnumber": [2, 99, 98],
            "confidence": [3.0, 2.0, 2.0],
        }
    )
    with pytest.warns(UserWarning, match=r"dropped 2 of 3 rows.*2 distinct"):
        im = builder.transform(new)
    # the key whose items were all unknown keeps an (empty) row
    assert im.row_ids.to_list() == ["a", "c"]
    assert im.matrix.toarray().tolist() == [[0.0, 3.0], [0.0, 0.0]]


def test_builder_session_grain_rows_are_sessions(events):
    keyed = PseudoUserUnifier().fit_transform(events)
    enc = ConfidenceEncoder(grain="session").fit_transform(keyed)
    im = InteractionMatrixBuilder().fit_transform(enc)
    assert im.id_name == "session_id"
    assert im.row_ids.to_list() == [1, 2, 3, 4]
    assert im.row_keys.to_list() == ["s_1", "u_7", "s_3", "u_7"]


def test_builder_pandas_input_remembers_kind(events):
    keyed = PseudoUserUnifier().fit_transform(events.to_pandas())
    im = InteractionMatrixBuilder().fit_transform(
        ConfidenceEncoder().fit_transform(keyed)
    )
    assert im.kind.library == "pandas"
