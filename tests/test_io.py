"""Model files (skals.save / skals.load) and the challenge's answers (skals.io)."""

import json
import pickle
import warnings
import zipfile

import joblib
import numpy as np
import polars as pl
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

import skals
from skals import io
from skals.datasets import make_sessions
from skals.model_selection import SessionHoldoutSplit

FAST = {"factors": 4, "iterations": 2, "random_state": 0, "num_threads": 1}


def _pipe(grain="key", **cols):
    unifier = {k: v for k, v in cols.items() if k in ("user_col", "session_col")}
    encoder = {k: v for k, v in cols.items() if k in ("item_col", "session_col")}
    return make_pipeline(
        skals.PseudoUserUnifier(**unifier),
        skals.ConfidenceEncoder(grain=grain, **encoder),
        skals.InteractionMatrixBuilder(**encoder),
        skals.ImplicitALSRecommender(**FAST),
    )


@pytest.fixture(scope="module")
def data():
    events = make_sessions(400, n_items=60, random_state=1)
    train_idx, test_idx = next(SessionHoldoutSplit(1, test_size=0.2).split(events))
    return events[train_idx], events[test_idx].drop("add_to_cart")


@pytest.fixture(scope="module")
def fitted(data):
    return _pipe().fit(data[0])


def _same_answers(a, b):
    assert a.columns == b.columns
    assert a.drop("scores").equals(b.drop("scores"))
    np.testing.assert_array_equal(
        np.array(a["scores"].to_list()), np.array(b["scores"].to_list())
    )


# ------------------------------------------------------------------ save/load
def test_save_load_round_trip_predicts_the_same(data, fitted, tmp_path):
    path = tmp_path / "m.joblib"
    assert skals.save(fitted, path) is None
    loaded = skals.load(path)
    assert loaded is not fitted
    _same_answers(loaded.predict(data[1]), fitted.predict(data[1]))


def _header(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("skals.json"))


def _rewrite_header(path, **changes):
    """Rewrite the skals.json member of a model file (a valid zip again)."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    header = json.loads(members["skals.json"])
    header.update(changes)
    members["skals.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_file_layout_and_metadata(fitted, tmp_path):
    path = tmp_path / "m.joblib"
    skals.save(fitted, path, best_params={"factors": 4}, command="python")
    record = _header(path)
    assert record["format"] == "skals-model"
    assert record["format_version"] == 2
    assert record["skals_version"] == skals.__version__
    assert record["columns"] == {
        "session": "session_id",
        "user": "user_id",
        "item": "partnumber",
        "cart": "add_to_cart",
        "time": None,
        "segment": None,
    }
    assert record["metadata"] == {"best_params": {"factors": 4}, "command": "python"}
    model, meta = skals.load(path, return_metadata=True)
    assert model.get_params()["implicitalsrecommender__factors"] == 4
    assert meta == {
        "format_version": 2,
        "skals_version": skals.__version__,
        "columns": record["columns"],
        "best_params": {"factors": 4},
        "command": "python",
    }


def test_columns_are_read_from_the_steps(data, tmp_path):
    names = {"session_id": "sid", "user_id": "uid", "partnumber": "sku"}
    pipe = _pipe(user_col="uid", session_col="sid", item_col="sku")
    pipe.fit(data[0].rename(names))
    skals.save(pipe, tmp_path / "m.joblib")
    _, meta = skals.load(tmp_path / "m.joblib", return_metadata=True)
    assert meta["columns"]["session"] == "sid"
    assert meta["columns"]["user"] == "uid"
    assert meta["columns"]["item"] == "sku"


def test_another_skals_version_warns_once_and_still_loads(fitted, tmp_path):
    path = tmp_path / "old.joblib"
    skals.save(fitted, path)
    _rewrite_header(path, skals_version="0.0.1")
    with pytest.warns(UserWarning, match="saved by skals 0.0.1; this is skals") as w:
        model = skals.load(path)
    assert len([x for x in w if "saved by skals" in str(x.message)]) == 1
    assert model.get_params()["implicitalsrecommender__factors"] == 4


def test_same_version_does_not_warn(fitted, tmp_path):
    skals.save(fitted, tmp_path / "m.joblib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skals.load(tmp_path / "m.joblib")


@pytest.mark.parametrize("kind", ["text", "parquet", "zip", "skops"])
def test_not_a_skals_model_is_one_clear_error(kind, fitted, data, tmp_path):
    path = tmp_path / "file"
    if kind == "text":
        path.write_text("not a model")
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("a.txt", "a")
    elif kind == "skops":  # skops.io.dump(pipe) instead of skals.save
        import skops.io

        skops.io.dump({"a": 1}, path)
    else:
        data[1].write_parquet(path)
    with pytest.raises(ValueError, match=r"'.*file' is not a skals model"):
        skals.load(path)


@pytest.mark.parametrize("kind", ["pickled dict", "bare pipeline"])
def test_a_pickle_is_refused_naming_allow_pickle(kind, fitted, tmp_path):
    path = tmp_path / "file"
    if kind == "pickled dict":
        with open(path, "wb") as fh:
            pickle.dump({"weights": [1, 2, 3]}, fh)
    else:  # joblib.dump(pipe) instead of skals.save
        joblib.dump(fitted, path)
    with pytest.raises(ValueError, match=r"is a pickle .* allow_pickle=True"):
        skals.load(path)
    # allowed, it is still not a skals model
    with (
        pytest.warns(UserWarning, match="runs whatever code the file holds"),
        pytest.raises(ValueError, match=r"'.*file' is not a skals model"),
    ):
        skals.load(path, allow_pickle=True)


def test_unknown_format_version_is_refused(fitted, tmp_path):
    path = tmp_path / "m.joblib"
    skals.save(fitted, path)
    _rewrite_header(path, format_version=3)
    with pytest.raises(ValueError, match="model format 3; this skals reads format 2"):
        skals.load(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        skals.load(tmp_path / "nope.joblib")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        skals.load(tmp_path)


def test_save_refuses_unfitted_foreign_and_reserved(fitted, tmp_path):
    with pytest.raises(NotFittedError):
        skals.save(_pipe(), tmp_path / "m.joblib")
    with pytest.raises(TypeError, match="got dict"):
        skals.save({"a": 1}, tmp_path / "m.joblib")
    with pytest.raises(ValueError, match=r"\['columns'\] are reserved"):
        skals.save(fitted, tmp_path / "m.joblib", columns={})
    assert not (tmp_path / "m.joblib").exists()


def test_memory_mapped_load_of_a_legacy_pickle_predicts_the_same(
    data, fitted, tmp_path
):
    path = tmp_path / "m.joblib"
    record = {"format": "skals-model", "format_version": 1, "pipeline": fitted}
    joblib.dump({**record, "skals_version": skals.__version__}, path)
    with pytest.warns(UserWarning, match="as a pickle"):
        loaded = skals.load(path, mmap_mode="r", allow_pickle=True)
    factors = loaded[-1].item_factors_
    assert isinstance(factors, np.memmap) and not factors.flags.writeable
    _same_answers(loaded.predict(data[1]), fitted.predict(data[1]))


def test_mmap_mode_on_the_current_format_warns_and_reads(data, fitted, tmp_path):
    skals.save(fitted, tmp_path / "m.skals")
    with pytest.warns(UserWarning, match="mmap_mode='r' is ignored"):
        loaded = skals.load(tmp_path / "m.skals", mmap_mode="r")
    _same_answers(loaded.predict(data[1]), fitted.predict(data[1]))


# ------------------------------------------------------------ session answers
def test_recommend_sessions_is_the_session_grain_prediction(data, fitted):
    before = fitted.get_params()
    answers = io.recommend_sessions(fitted, data[1], k=7)
    # the fitted pipeline itself is left at key grain and k=10
    assert fitted.get_params() == before
    assert fitted.get_params()["confidenceencoder__grain"] == "key"
    # same answers as the pipeline set to session grain by hand
    by_hand = _pipe(grain="session").fit(data[0])
    by_hand.set_params(implicitalsrecommender__k=7)
    recs = by_hand.predict(data[1])
    expected = dict(
        zip(
            recs["session_id"].cast(pl.String).to_list(),
            recs["recommendations"].to_list(),
            strict=True,
        )
    )
    assert answers == expected
    assert set(answers) == set(data[1]["session_id"].cast(pl.String).to_list())
    assert all(len(set(v)) == 7 for v in answers.values())


def test_recommend_sessions_accepts_pandas(data, fitted):
    pd = pytest.importorskip("pandas")
    events = data[1].to_pandas()
    assert isinstance(events, pd.DataFrame)
    assert io.recommend_sessions(fitted, events, k=3) == io.recommend_sessions(
        fitted, data[1], k=3
    )


def test_recommend_sessions_errors(data, fitted):
    with pytest.raises(ValueError, match=r"k=61 asks for more items .* \(60\)"):
        io.recommend_sessions(fitted, data[1], k=61)
    with pytest.raises(TypeError, match="expected a fitted Pipeline"):
        io.recommend_sessions(fitted[-1], data[1])
    picky = _pipe().set_params(implicitalsrecommender__filter_already_liked_items=True)
    picky.fit(data[0])
    # nearly the whole catalogue: filtering the session's items leaves fewer
    with (
        pytest.raises(ValueError, match=r"fewer than 59 distinct items"),
        pytest.warns(UserWarning, match="k=59 clipped"),
    ):
        io.recommend_sessions(picky, data[1], k=59)


def test_write_challenge_json(tmp_path):
    path = tmp_path / "p.json"
    io.write_challenge_json({"3": [1, 2], "10": ["a", "b"]}, path)
    assert json.loads(path.read_text()) == {"target": {"3": [1, 2], "10": ["a", "b"]}}


# ------------------------------------------------------ ids read exactly (19)
def test_ids_of_another_type_that_would_match_after_a_cast_are_an_error(data):
    train, test = data
    pipe = skals.make_recommender_pipeline(skals.PopularityRecommender()).fit(train)
    as_text = test.with_columns(pl.col("partnumber").cast(pl.String))
    with pytest.raises(
        ValueError,
        match=r"no 'partnumber' id matches .* String here and Int64 at fit.*"
        r"cast\(pl.Int64\)",
    ):
        pipe.predict(as_text)
    # the other way round: fitted on strings, given integers
    text_pipe = skals.make_recommender_pipeline(skals.PopularityRecommender())
    text_pipe.fit(train.with_columns(pl.col("partnumber").cast(pl.String)))
    with pytest.raises(ValueError, match=r"Int64 here and String at fit"):
        text_pipe.predict(test)
    # a partly unknown log keeps the warning
    partly = test.with_columns(
        pl.when(pl.int_range(pl.len()) < 5)
        .then(10**9)
        .otherwise(pl.col("partnumber"))
        .alias("partnumber")
    )
    with pytest.warns(UserWarning, match="dropped"):
        pipe.predict(partly)
    # strings that match nothing either way: today's warning, no error
    other = test.with_columns(pl.format("x{}", pl.col("partnumber")))
    with pytest.warns(UserWarning, match="dropped"):
        pipe.predict(other)


@pytest.mark.parametrize("bad", [2.0**63, 2.0**53 + 2])
def test_float_user_ids_that_cannot_render_exactly_are_an_error(data, bad):
    train = data[0].with_columns(pl.col("user_id").cast(pl.Float64))
    broken = train.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(pl.lit(bad))
        .otherwise(pl.col("user_id"))
        .alias("user_id")
    )
    with pytest.raises(ValueError, match=r"3 rows have a float 'user_id' .*e.g. \["):
        _pipe().fit(broken)
    _pipe().fit(train)  # integral floats below 2**53 are fine
