"""Model files and the challenge's answers: save, load, recommend for sessions.

A model file is a `skops <https://skops.readthedocs.io>`_ file (a zip of
JSON and ``.npy`` arrays, no pickle) holding the fitted estimator, plus a
``skals.json`` member with the format marker, the layout version, the skals
version that wrote it, the column names the estimator reads and the
metadata (JSON data only). Loading one never runs code from the file: every
type the file names is checked against the types skals trusts (its own
estimators and the numpy, scipy, scikit-learn and polars types they hold)
before anything is built, and a file naming any other type is refused with
the list of those types (:doc:`/persistence`). Large numeric arrays (the
factors) are stored apart from the skops state, as uncompressed ``.npy``
members that ``load(path, mmap_mode="r")`` memory-maps in place. The command
line writes and reads the same files. Files are written atomically (a
temporary file renamed over the target).
"""

from __future__ import annotations

import importlib
import io as _io
import json
import os
import warnings
import zipfile

import polars as pl
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._atomic import atomic_path, atomic_write
from ._frame import to_polars
from ._model_arrays import (
    HEADER_MEMBER,
    _damaged,
    restore_arrays,
    split_arrays,
    write_array_member,
)
from ._utils import answering_pipeline
from ._version import __version__
from ._warnings import SkalsWarning
from .preprocessing._unifier import _render_id

__all__ = [
    "UntrustedModelError",
    "load",
    "recommend_sessions",
    "save",
    "trusted_types",
    "write_challenge_json",
]

#: Marker and layout version of a model file's ``skals.json`` member.
#: Version 1 was the joblib pickle of skals 0.1.x; version 2 is skops + JSON;
#: version 3 adds the large arrays as separate ``.npy`` members (memory-mappable).
MODEL_FORMAT, MODEL_FORMAT_VERSION = "skals-model", 3

#: Arrays of at least this many bytes are stored as their own member
#: (:mod:`skals._model_arrays`).
ARRAY_MIN_BYTES = 1 << 20

#: The zip layouts this skals reads (besides the 0.1.x pickle, format 1).
_READ_FORMATS = (2, 3)

#: Keys of the header that are not free metadata.
_RESERVED = ("format", "format_version", "skals_version", "columns", "pipeline")

#: Public skals modules whose ``__all__`` classes are trusted in model files
#: (an estimator added to one of them is covered without an edit here).
_TRUSTED_MODULES = (
    "skals.recommender",
    "skals.preprocessing",
    "skals.model_selection",
    "skals.metrics",
    "skals.schema",
)

#: Private value types that fitted skals estimators hold: skals' own, and
#: the trees of RerankRecommender's default ranker (a plain object of numpy
#: arrays, built by setting its attributes; skops does not list it).
_TRUSTED_INTERNAL = (
    "skals._frame.FrameKind",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)

_PICKLE_HINT = (
    "skals.load(path, allow_pickle=True) (command line: --allow-pickle), then "
    "skals.save it again to get a file that loads without running code"
)


class UntrustedModelError(ValueError):
    """A model file names types that skals does not trust (nothing was built).

    Parameters
    ----------
    message : str
        The error message (it names the types and how to trust them).
    types : list of str
        The untrusted types, fully qualified.

    Attributes
    ----------
    types : list of str
        The untrusted types, fully qualified.

    Examples
    --------
    >>> from skals.io import UntrustedModelError
    >>> issubclass(UntrustedModelError, ValueError)
    True
    """

    def __init__(self, message, types):
        super().__init__(message)
        self.types = list(types)


def _type_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def trusted_types() -> list[str]:
    """The types skals trusts in a model file, fully qualified.

    Every class exported by skals' public modules (``skals.recommender``,
    ``skals.preprocessing``, ``skals.model_selection``, ``skals.metrics``,
    ``skals.schema``), the private value types their fitted state holds, and
    the scipy sparse matrices and scikit-learn ``Bunch`` they hold. numpy
    arrays and scikit-learn's own estimators are trusted by skops itself;
    polars Series are stored as Arrow IPC bytes (data, no code) by a skops
    node of skals'.

    Returns
    -------
    names : list of str
        Sorted, e.g. ``"skals.recommender._als.ImplicitALSRecommender"``.

    Examples
    --------
    >>> from skals.io import trusted_types
    >>> "skals.recommender._als.ImplicitALSRecommender" in trusted_types()
    True
    """
    import scipy.sparse as sp

    names = set(_TRUSTED_INTERNAL)
    for module_name in _TRUSTED_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and obj.__module__.startswith("skals"):
                names.add(_type_name(obj))
    for cls in (
        sp.csr_matrix,
        sp.csc_matrix,
        sp.coo_matrix,
        sp.csr_array,
        sp.csc_array,
        sp.coo_array,
    ):
        names.add(_type_name(cls))
    names.add("sklearn.utils._bunch.Bunch")
    return sorted(names)


# ------------------------------------------------------- skops: polars Series
_SERIES_LOADER = "SkalsPolarsSeriesNode"
_registered = False


def _register_skops() -> None:
    """Teach skops to store a polars Series as Arrow IPC bytes (once).

    skops has no public extension point for a new type; this uses its
    dispatch (``skops.io._utils._get_state``) and node registry
    (``skops.io._audit.NODE_TYPE_MAPPING``), tested against the pinned skops.
    The IPC bytes are read back with ``polars.read_ipc``, which reads data
    only (polars' own ``Series.__setstate__`` is not used).
    """
    global _registered
    if _registered:
        return
    from skops.io._audit import NODE_TYPE_MAPPING, Node, get_tree
    from skops.io._protocol import PROTOCOL
    from skops.io._utils import _get_state, get_state

    def series_get_state(obj, save_context):
        buffer = _io.BytesIO()
        obj.to_frame().write_ipc(buffer, compression="uncompressed")
        return {
            "__class__": "Series",
            "__module__": "polars.series.series",
            "__loader__": _SERIES_LOADER,
            "content": get_state(buffer.getvalue(), save_context),
        }

    class SeriesNode(Node):
        def __init__(self, state, load_context, trusted=None):
            super().__init__(state, load_context, trusted)
            self.trusted = self._get_trusted(trusted, ["polars.series.series.Series"])
            self.content = get_tree(state["content"], load_context, trusted=trusted)
            self.children = {"content": self.content}

        def _construct(self):
            data = self.content.construct()
            if not isinstance(data, bytes):
                raise TypeError("a polars Series node must hold bytes")
            return pl.read_ipc(_io.BytesIO(data)).to_series()

    _get_state.register(pl.Series)(series_get_state)
    NODE_TYPE_MAPPING[(_SERIES_LOADER, PROTOCOL)] = SeriesNode
    _registered = True


# ------------------------------------------------------------------ save
def _model_columns(model) -> dict:
    """``{role: column name or None}``: the columns the model's steps read."""
    from .schema import named_columns

    return named_columns(model)


def _check_metadata(metadata: dict) -> None:
    clash = sorted(set(metadata) & set(_RESERVED))
    if clash:
        raise ValueError(f"save: metadata keys {clash!r} are reserved.")
    for key, value in metadata.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"save: metadata {key!r} is not JSON data ({exc}); model files "
                "hold metadata as JSON only (str, int, float, bool, None, and "
                "lists and dicts of them)."
            ) from None


def save(model, path, **metadata) -> None:
    """Save a fitted skals estimator or pipeline to a model file.

    The file records the estimator (as a skops file: arrays, sparse
    matrices, parameters, id vocabularies; no pickle), the format marker,
    the skals version and the column names the estimator reads (from its
    steps' ``*_col`` parameters); :func:`load` and ``skals predict`` read
    it. Numeric arrays of 1 MiB or more (the factors, SLIST's dense
    weights) are stored apart, as uncompressed ``.npy`` members that
    ``load(path, mmap_mode="r")`` maps in place; ``model`` itself is not
    modified. The file is written atomically: a crash leaves the previous
    file or the complete new one.

    Parameters
    ----------
    model : fitted estimator or Pipeline
        Typically ``make_pipeline(PseudoUserUnifier(), ConfidenceEncoder(),
        InteractionMatrixBuilder(), ImplicitALSRecommender())`` after
        ``fit``, or a search's ``best_estimator_``.
    path : str or path-like
        File to write (replaced if it exists).
    **metadata
        Extra entries stored with the model (e.g. ``best_params``), read
        back with ``load(path, return_metadata=True)``; JSON data only.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        If ``model`` is not an estimator, or a metadata value is not JSON
        data.

    Examples
    --------
    >>> import skals
    >>> from sklearn.pipeline import make_pipeline
    >>> events = skals.datasets.make_sessions(200, n_items=50, random_state=0)
    >>> pipe = make_pipeline(
    ...     skals.PseudoUserUnifier(), skals.ConfidenceEncoder(grain="session"),
    ...     skals.InteractionMatrixBuilder(),
    ...     skals.ImplicitALSRecommender(factors=4, iterations=2, random_state=0),
    ... ).fit(events)
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.skals"
    >>> skals.save(pipe, path, note="tuned in Python")
    >>> skals.load(path).predict(events.head(3)).columns
    ['session_id', 'recommendations', 'scores', 'source']
    """
    import skops.io as sio

    if not hasattr(model, "get_params"):
        raise TypeError(
            f"save: expected a fitted skals estimator or Pipeline, got "
            f"{type(model).__name__}."
        )
    check_is_fitted(model)
    _check_metadata(metadata)
    header = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "skals_version": __version__,
        "columns": _model_columns(model),
        "metadata": metadata,
    }
    _register_skops()
    state, arrays, header["arrays"] = split_arrays(model, ARRAY_MIN_BYTES)
    buffer = _io.BytesIO()
    sio.dump(state, buffer)
    with atomic_path(path, keep_suffix=False) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(HEADER_MEMBER, json.dumps(header, indent=1))
            for member, array in arrays.items():  # streamed: no copy in memory
                write_array_member(zf, member, array)


# ------------------------------------------------------------------ load
def _load_pickle(path, mmap_mode):
    """A skals 0.1.x model file (a joblib pickle), only when allowed."""
    import joblib

    warnings.warn(
        f"loading {str(path)!r} as a pickle (allow_pickle=True): unpickling runs "
        "whatever code the file holds, so do this only for a file you trust; "
        "save it again with skals.save to get a file that loads without running "
        "code.",
        SkalsWarning,
        stacklevel=3,
    )
    hint = "write one with skals.save(model, path) or `skals fit`."
    try:
        record = joblib.load(path, mmap_mode=mmap_mode)
    except Exception as exc:  # unpickling a foreign file can raise anything
        raise ValueError(
            f"{str(path)!r} is not a skals model (it cannot be unpickled: "
            f"{type(exc).__name__}); {hint}"
        ) from exc
    if not (isinstance(record, dict) and record.get("format") == MODEL_FORMAT):
        raise ValueError(
            f"{str(path)!r} is not a skals model (no skals model marker); {hint}"
        )
    if record.get("format_version") != 1:
        raise ValueError(
            f"{str(path)!r} has model format {record.get('format_version')!r}; "
            f"this skals reads formats {_formats()}. Refit it."
        )
    header = {k: v for k, v in record.items() if k not in ("format", "pipeline")}
    return record["pipeline"], header


def _read_header(path, zf) -> dict:
    infos = zf.infolist()
    if infos and min(i.header_offset for i in infos) != 0:
        # the central directory found is not the file's own (e.g. that of an
        # .npz member of a truncated file): the end of the file is missing
        raise _damaged(path, "truncated: the zip directory at its end is missing")
    names = {i.filename for i in infos}
    if HEADER_MEMBER not in names:
        what = "a skops file" if "schema.json" in names else "a zip file"
        raise ValueError(
            f"{str(path)!r} is not a skals model ({what} without the skals "
            f"header {HEADER_MEMBER}); write one with skals.save(model, path) "
            "or `skals fit`."
        )
    try:
        header = json.loads(zf.read(HEADER_MEMBER).decode("utf-8"))
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, OSError) as exc:
        raise _damaged(path, f"unreadable {HEADER_MEMBER}: {exc}") from exc
    if not (isinstance(header, dict) and header.get("format") == MODEL_FORMAT):
        raise ValueError(
            f"{str(path)!r} is not a skals model (no skals model marker in "
            f"{HEADER_MEMBER})."
        )
    if header.get("format_version") not in _READ_FORMATS:
        raise ValueError(
            f"{str(path)!r} has model format {header.get('format_version')!r}; "
            f"this skals reads formats {_formats()}. Refit it."
        )
    return header


def _formats() -> str:
    return (
        "1 (pickle), "
        + ", ".join(map(str, _READ_FORMATS[:-1]))
        + (f" and {_READ_FORMATS[-1]}")
    )


def _load_skops(path, trusted, mmap_mode):
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    _register_skops()
    allowed = trusted_types() + list(trusted or ())
    try:
        with zipfile.ZipFile(path) as zf:
            header = _read_header(path, zf)
            bad = zf.testzip()
            if bad is not None:
                raise _damaged(path, f"member {bad!r} fails its checksum")
    except zipfile.BadZipFile as exc:
        raise _damaged(path, f"not a complete zip file: {exc}") from exc
    try:
        model = sio.load(path, trusted=allowed)
    except UntrustedTypesFoundException:
        untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(allowed))
        raise UntrustedModelError(
            f"model file {str(path)!r} names types that skals does not trust, "
            f"so nothing was loaded: {untrusted}. Building them could run code. "
            "If you trust the file, name them: skals.load(path, trusted=["
            + ", ".join(repr(t) for t in untrusted[:3])
            + (", ..." if len(untrusted) > 3 else "")
            + "]) (command line: --trust TYPE for each).",
            untrusted,
        ) from None
    except (KeyError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as exc:
        raise _damaged(path, f"{type(exc).__name__}: {exc}") from exc
    if header["format_version"] >= 3:
        model = restore_arrays(path, model, header.get("arrays"), mmap_mode)
    elif mmap_mode is not None:
        warnings.warn(
            f"mmap_mode={mmap_mode!r} is ignored for {str(path)!r}: a model file "
            "of format 2 holds its arrays in skops' state, which is read into "
            "memory. skals.save it again (format 3) to map its large arrays.",
            SkalsWarning,
            stacklevel=3,
        )
    skip = ("format", "metadata", "arrays")
    meta = {k: v for k, v in header.items() if k not in skip}
    meta.update(header.get("metadata") or {})
    return model, meta


def load(
    path,
    *,
    return_metadata=False,
    trusted=None,
    allow_pickle=False,
    mmap_mode=None,
):
    """Load a model file written by :func:`save` or the command line.

    Loading runs no code from the file: the types it names are checked
    against :func:`trusted_types` (and ``trusted``) before anything is
    built.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`, ``skals fit`` or ``skals tune``.
    return_metadata : bool, default=False
        Also return the file's other entries: ``skals_version``,
        ``columns`` (``{role: name}``), ``format_version`` and any metadata
        given to :func:`save`.
    trusted : list of str, optional
        Further types to trust, fully qualified (as the error for an
        untrusted file lists them). Name only types you have reviewed.
    allow_pickle : bool, default=False
        Read a skals 0.1.x model file (a joblib pickle). Unpickling runs
        code from the file: allow it only for a file you trust. Warns.
    mmap_mode : {None, "r"}, default=None
        ``"r"``: the large numeric arrays (those :func:`save` stored as
        their own members, e.g. the factors) are read-only
        ``numpy.memmap`` views of the model file itself, not copies in
        memory; processes loading the same file share them. Also maps the
        arrays of a 0.1.x pickle (with ``allow_pickle=True``). A format-2
        file (written before array members) holds none: ``"r"`` then warns
        and is ignored (:doc:`/persistence`).

    Returns
    -------
    model : estimator or Pipeline
        The fitted estimator, as saved.
    metadata : dict
        Only when ``return_metadata=True``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UntrustedModelError
        If the file names types that are not trusted (a ``ValueError``).
    ValueError
        If the file is not a skals model file, is damaged, is a pickle and
        ``allow_pickle`` is False, or is of a layout this skals does not
        read.

    Warns
    -----
    SkalsWarning
        If the file was written by another skals version, is loaded as a
        pickle, or is of format 2 and ``mmap_mode="r"``.

    Examples
    --------
    >>> import pathlib, tempfile, skals
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = path.write_text("not a model")
    >>> skals.load(path)
    Traceback (most recent call last):
    ...
    ValueError: ... is not a skals model (not a zip file of skals' format)...
    """
    if os.path.isdir(path):
        raise IsADirectoryError(f"model file {str(path)!r} is a directory.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {str(path)!r} does not exist.")
    if mmap_mode not in (None, "r"):
        raise ValueError(f"load: mmap_mode must be None or 'r', got {mmap_mode!r}.")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PK\x03\x04":
        model, header = _load_skops(path, trusted, mmap_mode)
    elif allow_pickle:
        model, header = _load_pickle(path, mmap_mode)
    elif head[:1] == b"\x80":
        raise ValueError(
            f"{str(path)!r} is a pickle (skals 0.1.x wrote model files as joblib "
            "pickles); loading a pickle can run code from the file, so skals does "
            f"not by default. If you trust the file: {_PICKLE_HINT}."
        )
    elif not head:
        raise _damaged(path, "the file is empty")
    else:
        raise ValueError(
            f"{str(path)!r} is not a skals model (not a zip file of skals' "
            "format); write one with skals.save(model, path) or `skals fit`."
        )
    if header.get("skals_version") != __version__:
        warnings.warn(
            f"model file {str(path)!r} was saved by skals "
            f"{header.get('skals_version')}; this is skals {__version__}. "
            "Predictions may differ; refit it to be sure.",
            SkalsWarning,
            stacklevel=2,
        )
    if not return_metadata:
        return model
    return model, header


def recommend_sessions(model, events, *, k=5) -> dict:
    """``{"<session id>": [k distinct items]}`` for every session of ``events``.

    The challenge's answer: each session of ``events`` gets ``k`` distinct
    items, best first. A logged-in session uses its user's training history
    as well as its events, an anonymous one is folded in from its events,
    and one with nothing to go on gets the model's fallback. The pipeline
    answers at session grain (its encoder's ``grain`` is set to
    ``"session"`` on a copy; ``model`` itself is left unchanged).

    Parameters
    ----------
    model : fitted Pipeline
        A skals pipeline whose last step is a recommender, as written by
        :func:`save` or ``skals fit``.
    events : polars or pandas DataFrame
        Events of the sessions to answer, with the columns the pipeline
        reads (the cart column is not needed).
    k : int, default=5
        Items per session.

    Returns
    -------
    answers : dict of str to list
        Session ids as strings (as JSON keys are), items in their original
        type. Write it with :func:`write_challenge_json`.

    Raises
    ------
    ValueError
        If ``k`` exceeds the catalogue, or a session would get fewer than
        ``k`` distinct items (filters leave too few).

    Examples
    --------
    >>> import skals
    >>> from sklearn.pipeline import make_pipeline
    >>> events = skals.datasets.make_sessions(200, n_items=50, random_state=0)
    >>> pipe = make_pipeline(
    ...     skals.PseudoUserUnifier(), skals.ConfidenceEncoder(grain="session"),
    ...     skals.InteractionMatrixBuilder(),
    ...     skals.ImplicitALSRecommender(factors=4, iterations=2, random_state=0),
    ... ).fit(events)
    >>> answers = skals.io.recommend_sessions(pipe, events.head(5), k=3)
    >>> {session: len(items) for session, items in answers.items()}
    {'1': 3}
    """
    if not isinstance(model, Pipeline):
        raise TypeError(
            "recommend_sessions: expected a fitted Pipeline from events to a "
            f"recommender, got {type(model).__name__}."
        )
    final = model.steps[-1][1]
    check_is_fitted(final)
    session_col = _model_columns(model)["session"]
    if session_col is None:
        raise ValueError(
            "recommend_sessions: no step of the pipeline has a session_col."
        )
    n_items = final.n_features_in_
    if k > n_items:
        raise ValueError(f"k={k} asks for more items than the model knows ({n_items}).")
    df = to_polars(events, allow_lazy=False)
    recs = to_polars(answering_pipeline(model, k=k).predict(df), allow_lazy=False)
    s = session_col
    missing = df.select(pl.col(s).unique()).join(recs, on=s, how="anti").height
    items = pl.col("recommendations")
    short = recs.filter((items.list.len() != k) | (items.list.n_unique() != k)).height
    if missing or short:
        raise ValueError(
            f"{missing} sessions got no answer and {short} fewer than {k} distinct "
            "items; the model's filters leave too few items to recommend."
        )
    ids = recs.select(_render_id(s, recs.schema[s])).to_series().to_list()
    return dict(zip(ids, recs["recommendations"].to_list(), strict=True))


def write_challenge_json(answers, path) -> None:
    """Write answers as the challenge's JSON: ``{"target": {session: items}}``.

    Parameters
    ----------
    answers : dict of str to list
        As returned by :func:`recommend_sessions`.
    path : str or path-like
        File to write (replaced atomically if it exists).

    Returns
    -------
    None

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from skals.io import write_challenge_json
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "predictions.json"
    >>> write_challenge_json({"17": [3, 1, 2]}, path)
    >>> json.loads(path.read_text())
    {'target': {'17': [3, 1, 2]}}
    """
    with atomic_write(path, "w") as fh:
        json.dump({"target": answers}, fh)
