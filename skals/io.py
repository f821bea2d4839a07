"""Model files and the challenge's answers: save, load, recommend for sessions.

A model file is a joblib dump of a dict holding the fitted estimator, a
format marker, the layout version, the skals version that wrote it and the
column names the estimator reads. The command line writes and reads the same
files, so a pipeline tuned in Python is predicted with ``skals predict`` and
a ``skals fit`` model is loaded in Python. Like any pickle, load only files
you trust.
"""

from __future__ import annotations

import json
import os
import warnings

import polars as pl
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._frame import to_polars
from ._utils import answering_pipeline
from ._version import __version__
from ._warnings import SkalsWarning
from .preprocessing._unifier import _render_id

__all__ = [
    "load",
    "recommend_sessions",
    "save",
    "write_challenge_json",
]

#: Marker and layout version of the dict that model files hold.
MODEL_FORMAT, MODEL_FORMAT_VERSION = "skals-model", 1

#: Keys of a model file's dict that are not free metadata.
_RESERVED = ("format", "format_version", "skals_version", "columns", "pipeline")


def _model_columns(model) -> dict:
    """``{role: column name or None}``: the columns the model's steps read."""
    from .schema import named_columns

    return named_columns(model)


def save(model, path, **metadata) -> None:
    """Save a fitted skals estimator or pipeline to a model file.

    The file records the estimator, the format marker, the skals version
    and the column names the estimator reads (from its steps' ``*_col``
    parameters); :func:`load` and ``skals predict`` read it.

    Parameters
    ----------
    model : fitted estimator or Pipeline
        Typically ``make_pipeline(PseudoUserUnifier(), ConfidenceEncoder(),
        InteractionMatrixBuilder(), ImplicitALSRecommender())`` after
        ``fit``, or a search's ``best_estimator_``.
    path : str or path-like
        File to write (overwritten if it exists).
    **metadata
        Extra entries stored with the model (e.g. ``best_params``), read
        back with ``load(path, return_metadata=True)``.

    Returns
    -------
    None

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
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.joblib"
    >>> skals.save(pipe, path, note="tuned in Python")
    >>> skals.load(path).predict(events.head(3)).columns
    ['session_id', 'recommendations', 'scores', 'source']
    """
    import joblib

    if not hasattr(model, "get_params"):
        raise TypeError(
            f"save: expected a fitted skals estimator or Pipeline, got "
            f"{type(model).__name__}."
        )
    check_is_fitted(model)
    clash = sorted(set(metadata) & set(_RESERVED))
    if clash:
        raise ValueError(f"save: metadata keys {clash!r} are reserved.")
    record = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "skals_version": __version__,
        "columns": _model_columns(model),
        "pipeline": model,
        **metadata,
    }
    joblib.dump(record, path)


def load(path, *, return_metadata=False, mmap_mode=None):
    """Load a model file written by :func:`save` or the command line.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`, ``skals fit`` or ``skals tune``.
        Load only files you trust: model files are pickles.
    return_metadata : bool, default=False
        Also return the file's other entries: ``skals_version``,
        ``columns`` (``{role: name}``), ``format_version`` and any metadata
        given to :func:`save`.
    mmap_mode : {None, "r"}, default=None
        ``"r"`` maps the large arrays (the factors) read-only instead of
        reading them, as ``joblib.load`` does (:doc:`/persistence`).

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
    ValueError
        If the file is not a skals model file, or of a layout this skals
        does not read.

    Warns
    -----
    UserWarning
        If the file was written by another skals version.

    Examples
    --------
    >>> import pathlib, tempfile, skals
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = path.write_text("not a model")
    >>> skals.load(path)
    Traceback (most recent call last):
    ...
    ValueError: ... is not a skals model (it cannot be unpickled: ...)...
    """
    import joblib

    if os.path.isdir(path):
        raise IsADirectoryError(f"model file {str(path)!r} is a directory.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {str(path)!r} does not exist.")
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
    if record.get("format_version") != MODEL_FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has model format {record.get('format_version')!r}; "
            f"this skals reads format {MODEL_FORMAT_VERSION}. Refit it."
        )
    if record.get("skals_version") != __version__:
        warnings.warn(
            f"model file {str(path)!r} was saved by skals "
            f"{record.get('skals_version')}; this is skals {__version__}. "
            "Predictions may differ; refit it to be sure.",
            SkalsWarning,
            stacklevel=2,
        )
    model = record["pipeline"]
    if not return_metadata:
        return model
    metadata = {k: v for k, v in record.items() if k not in ("format", "pipeline")}
    return model, metadata


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
        File to write (overwritten if it exists).

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
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"target": answers}, fh)
