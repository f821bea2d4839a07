"""Model files that run no code when loaded (issue 19, item 1).

* Crafted files (a pickle whose unpickling creates a file, the same payload in
  the metadata or in a pipeline step, a skops file whose schema calls
  ``open``, an untrusted estimator with a ``__setstate__`` that writes a
  file): no code runs, the error names what is untrusted.
* Every public recommender (discovered from ``skals.recommender.__all__``, so
  new ones are covered) and a fitted search's ``best_estimator_`` round-trip
  with identical answers, fitted arrays and parameters, with no ``trusted=``.
* Damaged (truncated, corrupted) files say they are damaged.
"""

import inspect
import json
import pickle
import zipfile
from io import BytesIO

import joblib
import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

import skals
from skals import io
from skals.datasets import make_sessions
from skals.io import UntrustedModelError

SMALL = {"factors": 4, "iterations": 2, "random_state": 0, "num_threads": 1}


@pytest.fixture(scope="module")
def events():
    return make_sessions(300, n_items=40, random_state=3)


@pytest.fixture(scope="module")
def fitted(events):
    rec = skals.ImplicitALSRecommender(**SMALL)
    return skals.make_recommender_pipeline(rec).fit(events)


class _Touch:
    """Unpickling it creates ``path`` (the classic pickle payload)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _Evil(TransformerMixin, BaseEstimator):
    """An estimator whose ``__setstate__`` writes a file when it is built."""

    def __init__(self, path="x"):
        self.path = path

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X

    def __setstate__(self, state):
        with open(state["path"], "w") as fh:
            fh.write("pwned")
        self.__dict__.update(state)


# ------------------------------------------------------------ crafted files
@pytest.mark.parametrize("where", ["whole file", "metadata", "pipeline step"])
def test_a_crafted_pickle_runs_no_code(where, fitted, tmp_path):
    marker = tmp_path / "marker"
    record = {
        "format": "skals-model",
        "format_version": 1,
        "skals_version": skals.__version__,
        "columns": {},
        "pipeline": fitted,
    }
    if where == "whole file":
        payload = _Touch(marker)
    elif where == "metadata":
        payload = {**record, "note": _Touch(marker)}
    else:
        steps = [*fitted.steps[:-1], ("evil", _Touch(marker)), fitted.steps[-1]]
        payload = {**record, "pipeline": Pipeline(steps)}
    path = tmp_path / "crafted.joblib"
    joblib.dump(payload, path)
    with pytest.raises(ValueError, match=r"is a pickle .*allow_pickle=True"):
        skals.load(path)
    assert not marker.exists()


def test_metadata_is_json_only(fitted, tmp_path):
    path = tmp_path / "m.skals"
    with pytest.raises(TypeError, match=r"metadata 'note' is not JSON data"):
        skals.save(fitted, path, note=_Touch(tmp_path / "marker"))
    with pytest.raises(TypeError, match=r"metadata 'scores' is not JSON data"):
        skals.save(fitted, path, scores=np.arange(3))
    assert not path.exists()


def test_an_untrusted_estimator_is_refused_before_it_is_built(fitted, tmp_path):
    marker = tmp_path / "marker"
    steps = [*fitted.steps[:-1], ("evil", _Evil(str(marker))), fitted.steps[-1]]
    path = tmp_path / "m.skals"
    skals.save(Pipeline(steps), path)
    name = f"{_Evil.__module__}._Evil"
    with pytest.raises(UntrustedModelError, match=r"does not trust") as err:
        skals.load(path)
    assert err.value.types == [name]
    assert f"trusted=[{name!r}]" in str(err.value)
    assert not marker.exists()
    # trusted by name, it loads (and its code runs: the test would see it)
    model = skals.load(path, trusted=[name])
    assert marker.read_text() == "pwned"
    assert isinstance(model.steps[-2][1], _Evil)


def _crafted_skops(tmp_path, schema_for):
    """A skals model file whose skops schema is replaced by ``schema_for``."""
    import skops.io

    path = tmp_path / "crafted.skals"
    skals.save(skals.PopularityRecommender().fit(sp.csr_matrix(np.eye(3))), path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(members["schema.json"])
    inner = tmp_path / "inner.skops"
    skops.io.dump(schema_for, inner)
    with zipfile.ZipFile(inner) as zf:
        args = json.loads(zf.read("schema.json"))
        members.update({n: zf.read(n) for n in zf.namelist() if n != "schema.json"})
    members["schema.json"] = json.dumps(
        {
            "__class__": "open",
            "__module__": "builtins",
            "__loader__": "ConstructorFromReduceNode",
            "content": args,
            "protocol": schema["protocol"],
            "_skops_version": schema["_skops_version"],
        }
    ).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return path


def test_a_crafted_skops_schema_calling_open_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = _crafted_skops(tmp_path, (str(marker), "w"))
    with pytest.raises(UntrustedModelError, match=r"\['builtins.open'\]"):
        skals.load(path)
    assert not marker.exists()


def test_untrusted_types_are_named_by_the_command_line(tmp_path, capsys, events):
    from skals.cli import main

    marker = tmp_path / "marker"
    path = _crafted_skops(tmp_path, (str(marker), "w"))
    log = tmp_path / "events.parquet"
    events.write_parquet(log)
    out = tmp_path / "p.json"
    code = main(["predict", str(path), str(log), "--output", str(out), "-q"])
    assert code != 0
    err = capsys.readouterr().err
    assert "builtins.open" in err and "--trust" in err
    assert not marker.exists() and not out.exists()


# -------------------------------------------------------- every recommender
def _public_recommenders():
    from skals import recommender

    out = []
    for name in recommender.__all__:
        cls = getattr(recommender, name)
        if isinstance(cls, type) and issubclass(cls, BaseEstimator):
            out.append(cls)
    return out


def _instance(cls):
    params = inspect.signature(cls).parameters
    if "estimators" in params and params["estimators"].default is inspect._empty:
        return cls(
            [
                ("als", skals.ImplicitALSRecommender(**SMALL)),
                ("knn", skals.SessionKNNRecommender()),
            ]
        )
    est = cls()
    known = est.get_params(deep=False)
    return est.set_params(**{k: v for k, v in SMALL.items() if k in known})


def test_every_public_estimator_class_is_trusted():
    trusted = set(io.trusted_types())
    modules = [
        skals.recommender,
        skals.preprocessing,
        skals.model_selection,
        skals.metrics,
        skals.schema,
    ]
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseEstimator):
                assert f"{obj.__module__}.{obj.__qualname__}" in trusted, name


def _mapped(obj, seen=None):
    """The np.memmap arrays in an estimator's state, recursively."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.memmap):
        return [obj]
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    elif isinstance(obj, BaseEstimator):
        children = list(vars(obj).values())
    else:
        return []
    return [m for child in children for m in _mapped(child, seen)]


def _assert_same_state(a, b, where="model"):
    """Fitted state equal, recursively: arrays, sparse matrices, Series."""
    if isinstance(b, np.memmap) and type(a) is np.ndarray:
        b = np.asarray(b)  # a mapped load: same values, another class
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif sp.issparse(a):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert (a != b).nnz == 0, where
    elif isinstance(a, pl.Series):
        assert a.dtype == b.dtype and a.name == b.name, where
        assert a.equals(b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_state(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, np.random.Generator):  # HistGradientBoosting's
        assert a.bit_generator.state == b.bit_generator.state, where
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        _assert_same_state(vars(a), vars(b), where)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    elif type(a).__module__ == "sklearn._loss._loss":
        pass  # a ranker's Cython loss: stateless, its type is checked above
    else:
        assert a == b, where


@pytest.mark.parametrize(
    "arrays",
    ["default", "all as members, mapped"],
)
@pytest.mark.parametrize("cls", _public_recommenders(), ids=lambda c: c.__name__)
def test_every_recommender_round_trips(cls, events, tmp_path, monkeypatch, arrays):
    if cls.__name__ == "FactorCheckpoints":  # pragma: no cover - not an estimator
        pytest.skip("not an estimator")
    mmap_mode = None
    if arrays != "default":  # every numeric array a .npy member, memory-mapped
        monkeypatch.setattr(io, "ARRAY_MIN_BYTES", 0)
        mmap_mode = "r"
    pipe = skals.make_recommender_pipeline(_instance(cls)).fit(events)
    path = tmp_path / "m.skals"
    skals.save(pipe, path)
    loaded = skals.load(path, mmap_mode=mmap_mode)
    assert loaded is not pipe
    test = events.head(200)
    assert loaded.predict(test).equals(pipe.predict(test))
    assert repr(loaded.get_params()) == repr(pipe.get_params())
    for (name, a), (_, b) in zip(pipe.steps, loaded.steps, strict=True):
        _assert_same_state(a, b, name)
    if mmap_mode:
        mapped = _mapped(loaded)
        assert mapped, "no array was memory-mapped"
        assert all(not m.flags.writeable for m in mapped)


def test_a_fitted_searchs_best_estimator_round_trips(events, tmp_path):
    from skals.cli import _commands
    from skals.cli._options import Columns

    pipe = _commands.pipeline(Columns(), dict(SMALL))
    search = _commands.grid_search(
        pipe,
        {"factors": [2, 4]},
        events,
        Columns(),
        n_splits=1,
        test_size=0.2,
        scoring="ndcg@5",
        mode="off",
    )
    path = tmp_path / "best.skals"
    skals.save(search.best_estimator_, path, best_params=search.best_params_)
    loaded, meta = skals.load(path, return_metadata=True)
    assert meta["best_params"] == search.best_params_
    test = events.head(200)
    assert loaded.predict(test).equals(search.best_estimator_.predict(test))
    for (name, a), (_, b) in zip(
        search.best_estimator_.steps, loaded.steps, strict=True
    ):
        _assert_same_state(a, b, name)


def test_the_file_holds_no_pickle(fitted, tmp_path):
    path = tmp_path / "m.skals"
    skals.save(fitted, path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        schema = zf.read("schema.json").decode()
    assert "skals.json" in names and "schema.json" in names
    # arrays (.npy), sparse matrices (.npz), bytes (.bin: Arrow IPC), JSON
    assert all(n.endswith((".npy", ".npz", ".bin", ".json")) for n in names), names
    with zipfile.ZipFile(path) as zf:
        for n in names:
            if n.endswith((".npy", ".npz")):  # numpy refuses pickled objects
                np.load(BytesIO(zf.read(n)), allow_pickle=False)
    assert "ReduceNode" not in schema.replace("ConstructorFromReduceNode", "")


# ------------------------------------------------------------------ damage
@pytest.mark.parametrize("min_bytes", [io.ARRAY_MIN_BYTES, 0])
def test_a_truncated_file_is_damaged(fitted, tmp_path, monkeypatch, min_bytes):
    monkeypatch.setattr(io, "ARRAY_MIN_BYTES", min_bytes)  # 0: arrays at the end
    path = tmp_path / "m.skals"
    skals.save(fitted, path)
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        arrays = [i for i in zf.infolist() if i.filename.startswith("skals-arrays/")]
    assert len(arrays) == (0 if min_bytes else 3)  # factors and popularity
    cuts = [10, len(data) // 5, len(data) // 2, len(data) - 100, len(data) - 1]
    cuts += [i.header_offset + 100 for i in arrays]  # inside an array member
    for cut in cuts:
        path.write_bytes(data[:cut])
        for mmap_mode in (None, "r"):
            with pytest.raises(ValueError, match=r"is damaged"):
                skals.load(path, mmap_mode=mmap_mode)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"is damaged \(the file is empty\)"):
        skals.load(path)


@pytest.mark.parametrize("which", ["largest", "an array member"])
def test_a_corrupted_member_is_damaged(fitted, tmp_path, monkeypatch, which):
    monkeypatch.setattr(io, "ARRAY_MIN_BYTES", 0)
    path = tmp_path / "m.skals"
    skals.save(fitted, path)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    if which != "largest":
        infos = [i for i in infos if i.filename.startswith("skals-arrays/")]
        assert all(len(i.extra) >= 6 for i in infos)  # the alignment padding
    info = max(infos, key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    local = info.header_offset + 30 + len(info.filename) + len(info.extra)
    middle = local + info.file_size // 2
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    for mmap_mode in (None, "r"):
        with pytest.raises(ValueError, match=r"is damaged .*fails its checksum"):
            skals.load(path, mmap_mode=mmap_mode)


# ------------------------------------------------------------------ legacy
def test_a_01x_pickle_loads_only_when_allowed(fitted, events, tmp_path):
    path = tmp_path / "old.joblib"
    joblib.dump(
        {
            "format": "skals-model",
            "format_version": 1,
            "skals_version": skals.__version__,
            "columns": {},
            "pipeline": fitted,
            "note": "old",
        },
        path,
    )
    with pytest.raises(
        ValueError,
        match=r"is a pickle \(skals 0.1.x .*can run code.*allow_pickle=True.*"
        r"--allow-pickle",
    ):
        skals.load(path)
    with pytest.warns(UserWarning, match=r"allow_pickle=True\): unpickling runs"):
        model, meta = skals.load(path, allow_pickle=True, return_metadata=True)
    assert meta["note"] == "old"
    assert model.predict(events.head(50)).equals(fitted.predict(events.head(50)))
    # saved again, it is the new format and loads without the flag
    skals.save(model, path)
    skals.load(path)


def test_pickle_module_payload_is_refused_too(tmp_path):
    path = tmp_path / "p.pkl"
    marker = tmp_path / "marker"
    path.write_bytes(pickle.dumps(_Touch(marker), protocol=2))
    with pytest.raises(ValueError, match="is a pickle"):
        skals.load(path)
    assert not marker.exists()


# ------------------------------------------------------ blend memory keys
class _CountingPopularity(skals.PopularityRecommender):
    fits = 0

    def fit(self, X, y=None):
        type(self).fits += 1
        return super().fit(X, y)


def test_blend_memory_is_keyed_by_versions(tmp_path, monkeypatch):
    """An upgrade of skals or implicit never serves a fit of the old code."""
    import importlib.metadata

    import skals._version

    X = sp.csr_matrix(np.kron(np.eye(3), np.ones((4, 5))))

    def fits():
        _CountingPopularity.fits = 0
        blend = skals.BlendRecommender(
            [("a", _CountingPopularity()), ("b", skals.RepeatRecommender())],
            weights=[1, 1],  # fixed: "auto" fits each component twice
            memory=str(tmp_path),
        )
        blend.fit(X)
        return _CountingPopularity.fits

    assert fits() == 1
    assert fits() == 0  # served from the cache
    monkeypatch.setattr(skals._version, "__version__", "99.0")
    assert fits() == 1
    assert fits() == 0
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "9.9.9" if name == "implicit" else real(name),
    )
    assert fits() == 1
