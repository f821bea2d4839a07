"""Model files (skals.save / skals.load) and the challenge's answers (skals.io)."""

import json
import os
import pickle
import warnings
import zipfile
from io import BytesIO

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
    assert record["format_version"] == 3
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
        "format_version": 3,
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
    _rewrite_header(path, format_version=4)
    with pytest.raises(
        ValueError,
        match=r"model format 4; this skals reads formats 1 \(pickle\), 2 and 3",
    ):
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


# ------------------------------------------- memory-mapped arrays (issue 19)
def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {i.filename: i for i in zf.infolist()}


def _format2(model, path):
    """A model file as skals 0.2.0 wrote it: skops state + skals.json v2."""
    import skops.io

    io._register_skops()
    buffer = BytesIO()
    skops.io.dump(model, buffer)
    header = {
        "format": "skals-model",
        "format_version": 2,
        "skals_version": skals.__version__,
        "columns": io._model_columns(model),
        "metadata": {},
    }
    with zipfile.ZipFile(buffer, "a") as zf:
        zf.writestr("skals.json", json.dumps(header))
    path.write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def big(data):
    """ALS whose factors are over the 1 MiB default: 64 factors, 8000 users."""
    events = make_sessions(8000, n_items=300, random_state=2)
    rec = skals.ImplicitALSRecommender(
        factors=64, iterations=1, random_state=0, num_threads=1
    )
    return events, skals.make_recommender_pipeline(rec).fit(events)


def test_mmap_load_maps_the_factors_of_the_model_file(big, tmp_path):
    events, pipe = big
    als = pipe[-1]
    assert als.user_factors_.nbytes >= io.ARRAY_MIN_BYTES
    assert als.item_factors_.nbytes < io.ARRAY_MIN_BYTES  # 300 x 64: stays
    path = tmp_path / "m.skops"
    skals.save(pipe, path)
    member = _members(path)["skals-arrays/0.npy"]
    assert member.compress_type == zipfile.ZIP_STORED
    mapped = skals.load(path, mmap_mode="r")
    read = skals.load(path)
    users = mapped[-1].user_factors_
    assert isinstance(users, np.memmap) and not users.flags.writeable
    assert users.filename == os.path.abspath(path)
    assert users.offset % 64 == 0 and users.flags.aligned  # data is aligned
    assert users.base is not None  # a view of the mapping, no copy
    assert type(read[-1].user_factors_) is np.ndarray
    for loaded in (mapped, read):
        np.testing.assert_array_equal(loaded[-1].user_factors_, als.user_factors_)
        assert loaded[-1].user_factors_.dtype == np.float32
        np.testing.assert_array_equal(loaded[-1].item_factors_, als.item_factors_)
    test = events.head(300)
    _same_answers(mapped.predict(test), read.predict(test))
    _same_answers(mapped.predict(test), pipe.predict(test))
    # implicit's calls on read-only mapped factors: the same answers
    csr = als.user_items_
    users_idx = np.arange(20)
    got = mapped[-1].recommend(users_idx, csr[users_idx], N=5)
    want = read[-1].recommend(users_idx, csr[users_idx], N=5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    items = events["partnumber"].unique().sort().head(5).to_list()
    assert (
        mapped[-1].similar_items(items, k=4).equals(read[-1].similar_items(items, k=4))
    )
    assert not users.flags.writeable  # predicting copied what implicit needed


def test_save_leaves_the_model_as_it_was(data, fitted, tmp_path, monkeypatch):
    monkeypatch.setattr(io, "ARRAY_MIN_BYTES", 0)
    als = fitted[-1]
    before = {k: (v, id(v)) for k, v in vars(als).items()}
    steps = list(fitted.steps)
    skals.save(fitted, tmp_path / "m.skops")
    assert fitted.steps == steps
    assert all(a is b for a, b in zip(fitted.steps, steps, strict=True))
    assert {k: id(v) for k, v in vars(als).items()} == {
        k: i for k, (_, i) in before.items()
    }
    assert type(als.item_factors_) is np.ndarray and als.item_factors_.flags.writeable
    assert len([n for n in _members(tmp_path / "m.skops") if "skals-arrays" in n]) > 2


class _SharedOnCopy(skals.PopularityRecommender):
    """An estimator whose copy is itself (as FrameCache's is)."""

    def __copy__(self):
        return self


def test_save_copies_no_estimator_through_its_own_copy(data, tmp_path, monkeypatch):
    monkeypatch.setattr(io, "ARRAY_MIN_BYTES", 0)
    est = _SharedOnCopy().fit(
        skals.make_recommender_pipeline()[:-1].fit_transform(data[0])
    )
    arrays = {k: v for k, v in vars(est).items() if isinstance(v, np.ndarray)}
    assert arrays
    skals.save(est, tmp_path / "m.skops")
    assert all(vars(est)[k] is v for k, v in arrays.items())


def test_a_failing_save_leaves_no_file_and_the_model_intact(
    fitted, tmp_path, monkeypatch
):
    monkeypatch.setattr(io, "ARRAY_MIN_BYTES", 0)

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(io, "write_array_member", boom)
    with pytest.raises(OSError, match="disk full"):
        skals.save(fitted, tmp_path / "m.skops")
    assert list(tmp_path.iterdir()) == []
    assert isinstance(fitted[-1].item_factors_, np.ndarray)


def test_a_pipeline_with_a_dense_slist_matrix_maps_it(data, tmp_path, monkeypatch):
    monkeypatch.setattr(io, "ARRAY_MIN_BYTES", 4096)
    pipe = skals.make_recommender_pipeline(skals.SLISTRecommender()).fit(data[0])
    coef = pipe[-1].coef_
    assert coef.ndim == 2 and coef.nbytes >= 4096
    path = tmp_path / "m.skops"
    skals.save(pipe, path)
    mapped = skals.load(path, mmap_mode="r")
    read = skals.load(path)
    assert isinstance(mapped[-1].coef_, np.memmap)
    assert not mapped[-1].coef_.flags.writeable
    assert type(read[-1].coef_) is np.ndarray
    np.testing.assert_array_equal(mapped[-1].coef_, coef)
    _same_answers(mapped.predict(data[1]), read.predict(data[1]))
    _same_answers(mapped.predict(data[1]), pipe.predict(data[1]))


def test_a_mapped_model_saved_over_its_own_file_stays_valid(
    data, fitted, tmp_path, monkeypatch
):
    monkeypatch.setattr(io, "ARRAY_MIN_BYTES", 0)
    path = tmp_path / "m.skops"
    skals.save(fitted, path)
    mapped = skals.load(path, mmap_mode="r")
    skals.save(mapped, path)  # renamed over the mapped file: the map stays
    again = skals.load(path, mmap_mode="r")
    np.testing.assert_array_equal(again[-1].item_factors_, fitted[-1].item_factors_)
    np.testing.assert_array_equal(mapped[-1].item_factors_, fitted[-1].item_factors_)
    _same_answers(again.predict(data[1]), fitted.predict(data[1]))


def test_unaligned_array_members_still_load(data, fitted, tmp_path, monkeypatch):
    monkeypatch.setattr(io, "ARRAY_MIN_BYTES", 0)
    path = tmp_path / "m.skops"
    skals.save(fitted, path)
    _rewrite_header(path)  # zipfile rewrites every member: no padding
    mapped = skals.load(path, mmap_mode="r")
    np.testing.assert_array_equal(mapped[-1].item_factors_, fitted[-1].item_factors_)
    _same_answers(mapped.predict(data[1]), fitted.predict(data[1]))


def test_a_format_2_file_loads_and_mmap_warns(data, fitted, tmp_path):
    path = tmp_path / "v2.skops"
    _format2(fitted, path)
    model, meta = skals.load(path, return_metadata=True)
    assert meta["format_version"] == 2
    _same_answers(model.predict(data[1]), fitted.predict(data[1]))
    with pytest.warns(UserWarning, match="mmap_mode='r' is ignored .*format 2"):
        loaded = skals.load(path, mmap_mode="r")
    assert type(loaded[-1].item_factors_) is np.ndarray
    _same_answers(loaded.predict(data[1]), fitted.predict(data[1]))


def _tamper(path, entry_changes=None, member=None, data=None, compress=None):
    """Rewrite a model file: change its first array entry, or a member."""
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    header = json.loads(members["skals.json"])
    header["arrays"][0].update(entry_changes or {})
    members["skals.json"] = json.dumps(header).encode()
    if data is not None:
        members[member] = data
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            kind = compress if name == member else zipfile.ZIP_STORED
            zf.writestr(name, content, compress_type=kind)
    return header["arrays"][0]


def _npy_header(descr, shape):
    text = repr({"descr": descr, "fortran_order": False, "shape": shape})
    text += " " * (-(len(text) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


@pytest.mark.parametrize("mmap_mode", [None, "r"])
@pytest.mark.parametrize(
    "case, match",
    [
        ("no member", "no such member"),
        ("object dtype", "dtype object is not a plain numeric one"),
        ("other dtype", "holds <f4 .*skals.json says <f8"),
        ("other shape", "holds <f4 .*skals.json says <f4 \\[1, 2\\]"),
        ("another member", "holds"),
        ("bad path", "its path fails at attr 'nope'"),
        ("path to another array", "does not lead to its placeholder"),
        ("malformed", "malformed entry"),
        ("compressed", "compressed or encrypted"),
        ("object npy", "not a plain numeric one"),
        ("not npy", "not a .npy array"),
        ("short data", "does not fill the member"),
    ],
)
def test_a_tampered_array_entry_is_an_error_naming_the_file(
    fitted, tmp_path, monkeypatch, case, match, mmap_mode
):
    monkeypatch.setattr(io, "ARRAY_MIN_BYTES", 0)
    path = tmp_path / "m.skops"
    skals.save(fitted, path)
    entry = _header(path)["arrays"][0]
    name = entry["member"]
    others = [e for e in _header(path)["arrays"] if e["shape"] != entry["shape"]]
    changes, data, compress = {}, None, zipfile.ZIP_STORED
    with zipfile.ZipFile(path) as zf:
        content = zf.read(name)
    if case == "no member":
        changes = {"member": "skals-arrays/99.npy"}
    elif case == "object dtype":
        changes = {"dtype": "|O"}
        data = _npy_header("|O", tuple(entry["shape"])) + b"\0" * 64
    elif case == "other dtype":
        changes = {"dtype": "<f8"}
    elif case == "other shape":
        changes = {"shape": [1, 2]}
    elif case == "another member":
        changes = {"member": others[0]["member"]}
    elif case == "bad path":
        changes = {"path": [*entry["path"][:-1], ["attr", "nope"]]}
    elif case == "path to another array":
        changes = {"path": others[0]["path"]}
    elif case == "malformed":
        changes = {"path": "steps.3"}
    elif case == "compressed":
        data, compress = content, zipfile.ZIP_DEFLATED
    elif case == "object npy":  # an .npy of object dtype: never unpickled
        changes = {"dtype": "|O"}
        data = _npy_header("|O", (2,)) + pickle.dumps([1, 2])
    elif case == "not npy":
        data = b"not an array" + content[12:]
    else:
        data = content[:-8]
    _tamper(path, changes, member=name, data=data, compress=compress)
    with pytest.raises(ValueError, match=r"'.*m\.skops' is damaged \(array member"):
        skals.load(path, mmap_mode=mmap_mode)
    with pytest.raises(ValueError, match=match):
        skals.load(path, mmap_mode=mmap_mode)


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
