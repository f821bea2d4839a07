"""The ``skals`` command line: ``skals demo | fit | predict | tune``.

A thin layer over the library: read an event log with polars, build the
pipeline ``PseudoUserUnifier -> ConfidenceEncoder -> InteractionMatrixBuilder
-> ImplicitALSRecommender``, fit, tune or predict, and write the challenge's
JSON. Everything is reachable from Python as :func:`main`.

Model files are joblib dumps of a dict holding the fitted pipeline, the column
names it reads and a format marker with the skals version that wrote it, so
``predict`` can refuse a file that is not a skals model and warn about one
saved by another version. Like any pickle, load only model files you trust.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import joblib
import numpy as np
import polars as pl
from sklearn.model_selection import GridSearchCV, ParameterGrid
from sklearn.pipeline import make_pipeline

from . import _plot
from ._version import __version__
from .datasets import make_sessions
from .metrics import make_session_scorer
from .metrics._scorer import _Parts
from .model_selection import SessionHoldoutSplit
from .preprocessing import (
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)
from .preprocessing._unifier import _render_id
from .recommender import ImplicitALSRecommender, PopularityRecommender

__all__ = ["main"]

log = logging.getLogger("skals")

#: Marker and layout version of the dict that model files hold.
MODEL_FORMAT, MODEL_FORMAT_VERSION = "skals-model", 1

#: Grid of ``skals tune`` without ``--grid``, and of ``skals demo``.
DEFAULT_GRID = {
    "factors": [32, 64, 128],
    "regularization": [0.1, 10.0, 100.0],
    "cart_weight": [10.0, 30.0, 100.0],
}

#: Hyperparameter options of fit and tune: (pipeline parameter, type, help).
_HYPERPARAMETERS = (
    ("factors", int, "number of latent factors"),
    ("regularization", float, "L2 regularization of ALS"),
    ("alpha", float, "multiplier of the confidences"),
    ("iterations", int, "ALS sweeps"),
    ("cart_weight", float, "confidence weight of an add-to-cart event"),
    ("view_weight", float, "confidence weight of an event"),
    ("random_state", int, "seed of the initial factors"),
    ("num_threads", int, "threads for ALS (0: all cores)"),
)

#: Flags of fit and tune: (option, pipeline parameter, value when given, help).
_FLAGS = (
    (
        "--filter-already-liked-items",
        "filter_already_liked_items",
        True,
        "never recommend an item the session or user already has",
    ),
    (
        "--no-fold-in",
        "fold_in",
        False,
        "the notebook's approach: answer known users from training only, "
        "every other session with popularity",
    ),
)


class CLIError(Exception):
    """A problem with the user's input, reported as one line on stderr."""


@dataclass(frozen=True)
class _Columns:
    """Names of the event log's columns (the challenge's by default)."""

    session: str = "session_id"
    user: str = "user_id"
    item: str = "partnumber"
    cart: str = "add_to_cart"
    time: str = "timestamp_local"
    segment: str | None = None


_ROLES = ("session", "user", "item", "cart", "time", "segment")


# --------------------------------------------------------------- reporting
class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"skals: {record.levelname.lower()}: {message}"
        return f"skals: {message}"


class _Handler(logging.Handler):
    """Log records to stderr through tqdm, so that a running bar stays whole."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


class _Progress:
    """A tqdm bar on a terminal, log lines otherwise, nothing when quiet."""

    def __init__(self, total: int, desc: str, mode: str):
        self.total, self.desc, self.mode, self.done = total, desc, mode, 0
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="fit", file=sys.stderr)

    def step(self, message: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(message, refresh=False)
            self.bar.update(1)
        elif self.mode == "log":
            log.info("%s %d/%d: %s", self.desc, self.done, self.total, message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _ProgressScorer:
    """Wrap a scorer so that every scored fit of a search moves the progress."""

    def __init__(self, scorer, progress: _Progress, params, refit: str):
        self.scorer, self.progress = scorer, progress
        self.params, self.refit = params, refit

    def __call__(self, estimator, X, y=None):
        scores = self.scorer(estimator, X, y)
        values = estimator.get_params()
        shown = " ".join(
            f"{_plot.short_name(p)}={_plot.format_value(values[p])}"
            for p in self.params
        )
        self.progress.step(f"{shown}: {self.refit}={scores[self.refit]:.4f}")
        return scores


# ------------------------------------------------------------------ input
def _check_output(path: str, what: str) -> None:
    """Fail before the work, not after it, if ``path`` cannot be written."""
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{what} {path!r} is a directory, not a file.")
    if not p.absolute().parent.is_dir():
        raise CLIError(f"cannot write {what} {path!r}: its directory does not exist.")


def _existing_file(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{what} file {path!r} does not exist.")
    if p.is_dir():
        raise CLIError(f"{what} {path!r} is a directory, not a file.")
    return p


def _scan(path: str, what: str) -> pl.LazyFrame:
    """A lazy scan of a parquet file (by its magic bytes) or a CSV file."""
    p = _existing_file(path, what)
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise CLIError(f"cannot read {what} file {path!r}: {exc.strerror}.") from exc
    if magic == b"PAR1":
        return pl.scan_parquet(p)
    if p.suffix.lower() in (".parquet", ".pq"):
        raise CLIError(f"{what} file {path!r} is not a parquet file.")
    return pl.scan_csv(p, try_parse_dates=True, infer_schema_length=None)


def _read_events(
    path: str, what: str, cols: _Columns, required, optional=(), rename=None
) -> pl.DataFrame:
    """Read the columns ``required`` (and ``optional`` if present) of a log.

    ``required`` and ``optional`` are roles of :class:`_Columns`; ``rename``
    maps names in the file to the names the model expects.
    """
    lf = _scan(path, what)
    try:
        if rename:
            lf = lf.rename(rename, strict=False)
        names = lf.collect_schema().names()
        need = [getattr(cols, r) for r in required if getattr(cols, r) is not None]
        missing = [c for c in need if c not in names]
        if missing:
            options = ", ".join(
                f"--{r}-col" for r in required if getattr(cols, r) in missing
            )
            raise CLIError(
                f"{what} file {path!r} has no column(s) {', '.join(map(repr, missing))}"
                f" (its columns: {', '.join(names)}); name them with {options}."
            )
        extra = [getattr(cols, r) for r in optional if getattr(cols, r) in names]
        df = lf.select(need + extra).collect()
    except pl.exceptions.PolarsError as exc:
        raise CLIError(f"cannot read {what} file {path!r}: {_one_line(exc)}") from exc
    if df.height == 0:
        raise CLIError(f"{what} file {path!r} has no events.")
    log.info(
        "read %s events of %s sessions from %s",
        f"{df.height:,}",
        f"{df[cols.session].n_unique():,}",
        path,
    )
    return df


def _read_grid(path: str) -> list[dict]:
    p = _existing_file(path, "grid")
    try:
        grid = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CLIError(f"cannot read grid file {path!r}: {exc}") from exc
    grids = grid if isinstance(grid, list) else [grid]
    for g in grids:
        if not isinstance(g, dict) or not g:
            raise CLIError(
                f"grid file {path!r} must hold an object such as "
                '{"factors": [32, 64], "regularization": [0.01, 0.1]} '
                "(or a list of them)."
            )
    return [{k: v if isinstance(v, list) else [v] for k, v in g.items()} for g in grids]


# --------------------------------------------------------------- pipeline
def _pipeline(cols: _Columns, params=None, recommender=None):
    """The skals pipeline over ``cols``, at session grain, with ``params``."""
    pipe = make_pipeline(
        PseudoUserUnifier(user_col=cols.user, session_col=cols.session),
        ConfidenceEncoder(
            item_col=cols.item,
            cart_col=cols.cart,
            grain="session",
            session_col=cols.session,
            segment_col=cols.segment,
        ),
        InteractionMatrixBuilder(
            item_col=cols.item, session_col=cols.session, segment_col=cols.segment
        ),
        ImplicitALSRecommender() if recommender is None else recommender,
    )
    if params:
        pipe.set_params(**_resolve(pipe, params))
    return pipe


def _resolve(pipe, params: dict) -> dict:
    """Full pipeline parameter names for short ones (``factors``)."""
    keys = list(pipe.get_params(deep=True))
    out = {}
    for name, value in params.items():
        matches = (
            [name] if name in keys else [k for k in keys if k.endswith(f"__{name}")]
        )
        if len(matches) != 1:
            why = "ambiguous" if matches else "unknown"
            names = sorted({k.rsplit("__", 1)[-1] for k in keys if "__" in k})
            raise CLIError(
                f"{why} parameter {name!r}; use one of {', '.join(names)} (or a "
                "full pipeline name such as implicitalsrecommender__factors)."
            )
        out[matches[0]] = value
    return out


def _hyperparameters(args) -> dict:
    params = {
        name: getattr(args, name)
        for name, _, _ in _HYPERPARAMETERS
        if getattr(args, name) is not None
    }
    for _, name, value, _ in _FLAGS:
        if getattr(args, name) is not None:
            params[name] = value
    return params


def _columns(args) -> _Columns:
    return _Columns(**{r: getattr(args, f"{r}_col") for r in _ROLES})


def _recommender(pipe):
    return pipe.steps[-1][1]


# ------------------------------------------------------------------ models
def _save_model(pipe, path: str, cols: _Columns, command: str, **info) -> None:
    model = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "skals_version": __version__,
        "command": command,
        "columns": asdict(cols),
        "pipeline": pipe,
        **info,
    }
    joblib.dump(model, path)


def _load_model(path: str) -> dict:
    p = _existing_file(path, "MODEL")
    try:
        model = joblib.load(p)
    except Exception as exc:  # unpickling a foreign file can raise anything
        raise CLIError(
            f"MODEL file {path!r} is not a skals model (it cannot be loaded: "
            f"{type(exc).__name__}); write one with `skals fit` or `skals tune`."
        ) from exc
    if not (isinstance(model, dict) and model.get("format") == MODEL_FORMAT):
        raise CLIError(
            f"MODEL file {path!r} is not a skals model (no skals model marker); "
            "write one with `skals fit` or `skals tune`."
        )
    if model.get("format_version") != MODEL_FORMAT_VERSION:
        raise CLIError(
            f"MODEL file {path!r} has model format {model.get('format_version')!r}; "
            f"this skals reads format {MODEL_FORMAT_VERSION}. Refit it."
        )
    if model.get("skals_version") != __version__:
        log.warning(
            "MODEL file %r was saved by skals %s; this is skals %s. Predictions "
            "may differ; refit it to be sure.",
            path,
            model.get("skals_version"),
            __version__,
        )
    return model


# ------------------------------------------------------------- predicting
def _recommend_sessions(pipe, events: pl.DataFrame, cols: _Columns, k: int) -> dict:
    """``{"<session_id>": [k distinct items]}`` for every session of events."""
    final = _recommender(pipe)
    n_items = final.n_features_in_
    if k > n_items:
        raise CLIError(f"-k {k} asks for more items than the model knows ({n_items}).")
    for _, step in pipe.steps:
        if isinstance(step, ConfidenceEncoder):
            step.set_params(grain="session")
    final.set_params(k=k)
    recs = pipe.predict(events)
    s = cols.session
    missing = events.select(pl.col(s).unique()).join(recs, on=s, how="anti").height
    items = pl.col("recommendations")
    short = recs.filter((items.list.len() != k) | (items.list.n_unique() != k)).height
    if missing or short:
        raise CLIError(
            f"{missing} sessions got no answer and {short} fewer than {k} distinct "
            "items; the model's filters leave too few items to recommend."
        )
    ids = recs.select(_render_id(s, recs.schema[s])).to_series().to_list()
    return dict(zip(ids, recs["recommendations"].to_list(), strict=True))


def _write_json(path, target: dict) -> None:
    with open(path, "w") as fh:
        json.dump({"target": target}, fh)


# ------------------------------------------------------------------ tuning
def _parse_scoring(scoring: str) -> tuple[str, int]:
    metric, _, k = scoring.partition("@")
    try:
        k = int(k) if k else 5
    except ValueError:
        raise CLIError(f"--scoring must look like 'ndcg@5', got {scoring!r}.") from None
    return metric, k


def _grid_search(
    pipe, grid, events, cols, *, n_splits, test_size, scoring, mode, n_revealed=3
):
    """GridSearchCV of ``pipe`` over ``grid`` with the challenge-style scorer."""
    metric, k = _parse_scoring(scoring)
    grid = [_resolve(pipe, g) for g in (grid if isinstance(grid, list) else [grid])]
    metrics = list(dict.fromkeys([metric, "ndcg", "precision"]))
    scorer = make_session_scorer(
        metrics,
        k=k,
        n_revealed=n_revealed,
        by_segment=True,
        time_col=cols.time,
        user_col=cols.user,
    )
    cv = SessionHoldoutSplit(
        n_splits, session_col=cols.session, time_col=cols.time, test_size=test_size
    )
    refit = f"{metric}@{k}"
    n_candidates = len(ParameterGrid(grid))
    varying = _varying(grid)
    log.info(
        "grid search: %d candidates x %d held-out block(s), scored by %s; "
        "then the best is refitted on all %s events",
        n_candidates,
        n_splits,
        refit,
        f"{events.height:,}",
    )
    progress = _Progress(n_candidates * n_splits, "grid search", mode)
    try:
        search = GridSearchCV(
            pipe,
            grid,
            scoring=_ProgressScorer(scorer, progress, varying, refit),
            refit=refit,
            cv=cv,
            error_score="raise",
        )
        with warnings.catch_warnings():
            # a segment without held-out sessions scores NaN by design; with
            # error_score="raise" no other score can be non-finite
            warnings.filterwarnings(
                "ignore", "One or more of the test scores are non-finite", UserWarning
            )
            search.fit(events)
    finally:
        progress.close()
    return search


def _varying(grid: list[dict]) -> list[str]:
    """Parameters that take more than one value in the grid."""
    return sorted({p for g in grid for p, v in g.items() if len(v) > 1})


def _best_params(search) -> str:
    return ", ".join(
        f"{_plot.short_name(p)}={_plot.format_value(v)}"
        for p, v in search.best_params_.items()
    )


def _format_table(header: list[list[str]], rows: list[list[str]]) -> str:
    """Text table: first column left-aligned, the others right-aligned."""
    lines = header + rows
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def _cv_table(search, top: int = 10) -> str:
    res, refit = search.cv_results_, search.refit
    order = np.argsort(res[f"rank_test_{refit}"], kind="stable")[:top]
    params = _varying(search.param_grid)
    metrics = [refit, f"{refit}_anonymous", f"{refit}_logged_in"]
    if not refit.startswith("precision"):
        metrics.append(f"precision@{refit.partition('@')[2]}")
    header = [
        ["rank", *(_plot.short_name(p) for p in params), *metrics, "std", "fit s"]
    ]
    rows = [
        [
            str(res[f"rank_test_{refit}"][i]),
            *(_plot.format_value(res["params"][i].get(p)) for p in params),
            *(f"{res[f'mean_test_{m}'][i]:.4f}" for m in metrics),
            f"{res[f'std_test_{refit}'][i]:.4f}",
            f"{res['mean_fit_time'][i]:.1f}",
        ]
        for i in order
    ]
    more = len(res["params"]) - len(order)
    return _format_table(header, rows) + (f"\n({more} more)" if more > 0 else "")


def _plot_search(search, path) -> None:
    refit = search.refit
    _plot.plot_grid_scores(
        search.cv_results_["params"],
        search.cv_results_[f"mean_test_{refit}"],
        path,
        metric=f"mean {refit}",
        title=f"Grid search: held-out {refit} (best framed)",
    )


# ---------------------------------------------------------------- commands
def _cmd_fit(args, mode: str) -> int:
    cols = _columns(args)
    _check_output(args.model, "MODEL")
    required = ("session", "user", "item", "cart", "segment")
    events = _read_events(args.train, "TRAIN", cols, required)
    pipe = _pipeline(cols, _hyperparameters(args))
    final = _recommender(pipe)
    log.info("fitting %s", _one_line(repr(final)))
    final.set_params(show_progress=mode == "bar")
    start = time.perf_counter()
    pipe.fit(events)
    final.set_params(show_progress=False)
    seconds = time.perf_counter() - start
    _save_model(pipe, args.model, cols, "fit")
    print(
        f"fitted on {events.height:,} events ({len(final.user_ids_):,} user keys, "
        f"{final.n_features_in_:,} items) in {seconds:.1f} s; wrote {args.model}"
    )
    return 0


def _cmd_predict(args, mode: str) -> int:
    _check_output(args.output, "output")
    model = _load_model(args.model)
    pipe, cols = model["pipeline"], _Columns(**model["columns"])
    rename = {
        given: getattr(cols, r)
        for r in _ROLES
        if (given := getattr(args, f"{r}_col")) is not None
        and given != getattr(cols, r)
    }
    events = _read_events(
        args.events,
        "EVENTS",
        cols,
        ("session", "item", "segment"),
        optional=("user", "cart"),
        rename=rename,
    )
    if cols.user not in events.columns:
        log.warning(
            "EVENTS has no %r column: every session is taken as anonymous.",
            cols.user,
        )
        events = events.with_columns(pl.lit(None).alias(cols.user))
    target = _recommend_sessions(pipe, events, cols, args.k)
    _write_json(args.output, target)
    print(f"wrote {args.k} items for each of {len(target):,} sessions to {args.output}")
    return 0


def _cmd_tune(args, mode: str) -> int:
    cols = _columns(args)
    why = _plot.missing_matplotlib() if args.report else None
    if why:
        raise CLIError(f"--report needs matplotlib: {why}.")
    for path, what in ((args.model, "MODEL"), (args.report, "report")):
        if path is not None:
            _check_output(path, what)
    grid = _read_grid(args.grid) if args.grid else DEFAULT_GRID
    required = ("session", "user", "item", "cart", "time", "segment")
    events = _read_events(args.train, "TRAIN", cols, required)
    pipe = _pipeline(cols, _hyperparameters(args))
    search = _grid_search(
        pipe,
        grid,
        events,
        cols,
        n_splits=args.cv,
        test_size=args.test_size,
        scoring=args.scoring,
        n_revealed=args.n_revealed,
        mode=mode,
    )
    print(_cv_table(search))
    print(f"best: {_best_params(search)} ({search.refit} {search.best_score_:.4f})")
    _save_model(
        search.best_estimator_,
        args.model,
        cols,
        "tune",
        best_params=search.best_params_,
        best_score=float(search.best_score_),
        scoring=search.refit,
    )
    print(f"wrote {args.model}")
    if args.report:
        _plot_search(search, args.report)
        print(f"wrote {args.report}")
    return 0


def _demo_table(scores: dict, k: int, n_revealed: int) -> str:
    counts = next(iter(scores.values()))
    n, n_logged = counts.height, int(counts["logged_in"].sum())
    segments = (
        ("all", pl.lit(True)),
        ("anonymous", ~pl.col("logged_in")),
        ("logged-in", pl.col("logged_in")),
    )
    header = [
        ["", f"NDCG@{k}", "", "", f"overlap@{k}", "", ""],
        ["model", *[name for name, _ in segments] * 2],
    ]
    rows = []
    for label, per in scores.items():
        row = [label]
        for metric in (f"ndcg@{k}", f"precision@{k}"):
            for _, cond in segments:
                sub = per.filter(cond)[metric]
                row.append(f"{sub.mean():.4f}" if sub.len() else "-")
        rows.append(row)
    title = (
        f"{n:,} held-out sessions with a cart add ({n - n_logged:,} anonymous, "
        f"{n_logged:,} logged-in); first {n_revealed} events revealed, "
        f"relevant = added to cart"
    )
    return title + "\n" + _format_table(header, rows)


def _cmd_demo(args, mode: str) -> int:
    start = time.perf_counter()
    # held-out sessions view a few items that training never saw: expected
    # here, and not worth a warning per scored fit
    warnings.filterwarnings("ignore", "InteractionMatrixBuilder: dropped", UserWarning)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cols, k, n_revealed, rs = _Columns(), 5, 3, args.random_state
    events = make_sessions(args.n_sessions, random_state=rs)
    log.info(
        "generated %s events in %s sessions (make_sessions, random_state=%d)",
        f"{events.height:,}",
        f"{args.n_sessions:,}",
        rs,
    )
    holdout = SessionHoldoutSplit(n_splits=1, test_size=0.1)
    train_idx, test_idx = next(holdout.split(events))
    train, test = events[train_idx], events[test_idx]
    log.info(
        "held out the latest %s sessions (%s events); training on %s events",
        f"{test['session_id'].n_unique():,}",
        f"{test.height:,}",
        f"{train.height:,}",
    )
    grid = _read_grid(args.grid) if args.grid else DEFAULT_GRID
    search = _grid_search(
        _pipeline(cols, {"random_state": rs}),
        grid,
        train,
        cols,
        n_splits=1,
        test_size=0.1,
        scoring=f"ndcg@{k}",
        n_revealed=n_revealed,
        mode=mode,
    )
    baselines = {
        "ALS, default": _pipeline(cols, {"random_state": rs}),
        "popularity": _pipeline(cols, recommender=PopularityRecommender()),
        "notebook's approach": _pipeline(
            cols,
            {"random_state": rs, "fold_in": False, "filter_already_liked_items": True},
        ),
    }
    models = {"ALS, tuned": search.best_estimator_}
    for label, pipe in baselines.items():
        log.info("fitting %s: %s", label, _one_line(repr(_recommender(pipe))))
        models[label] = pipe.fit(train)
    scorer = make_session_scorer(["ndcg", "precision"], k=k, n_revealed=n_revealed)
    scores = {label: scorer.details(m, test) for label, m in models.items()}
    print(f"best grid point: {_best_params(search)}")
    print(_demo_table(scores, k, n_revealed))

    tuned = models["ALS, tuned"]
    context, _, _ = scorer.protocol(_Parts(tuned), test)
    target = _recommend_sessions(tuned, context, cols, k)
    _write_json(out / "predictions.json", target)
    print(
        f"wrote {out / 'predictions.json'}: {k} items for each of the "
        f"{len(target):,} held-out sessions, from their first {n_revealed} events"
    )
    _save_model(
        tuned, out / "model.joblib", cols, "demo", best_params=search.best_params_
    )
    print(f"wrote {out / 'model.joblib'}: the tuned pipeline (skals predict reads it)")
    why = _plot.missing_matplotlib()
    if why is None:
        _plot_search(search, out / "grid_scores.png")
        print(f"wrote {out / 'grid_scores.png'}: the grid-search scores")
    else:
        print(f"no plot written: {why}")
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0


# ------------------------------------------------------------------ parser
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _test_size(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _add_columns(parser, *, from_model: bool) -> None:
    group = parser.add_argument_group(
        "columns",
        "names of the event log's columns"
        + (" (default: the names the model was fitted on)" if from_model else ""),
    )
    helps = {
        "session": "session id",
        "user": "logged-in user id, null when anonymous",
        "item": "product id (integers or strings)",
        "cart": "0/1 add-to-cart flag",
        "time": "event time (orders the events of a session)",
        "segment": "optional segment (e.g. country) for the popularity fallback",
    }
    default = _Columns()
    roles = _ROLES if not from_model else ("session", "user", "item", "cart", "segment")
    for role in roles:
        value = None if from_model else getattr(default, role)
        extra = "" if from_model or value is None else " (default: %(default)s)"
        group.add_argument(
            f"--{role}-col", metavar="NAME", default=value, help=helps[role] + extra
        )
    if from_model:
        parser.set_defaults(time_col=None)


def _add_hyperparameters(parser) -> None:
    group = parser.add_argument_group(
        "hyperparameters", "of the pipeline (default: the library's defaults)"
    )
    pipe = _pipeline(_Columns())
    defaults = pipe.get_params()
    for name, kind, text in _HYPERPARAMETERS:
        default = defaults[next(iter(_resolve(pipe, {name: None})))]
        group.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            metavar=kind.__name__.upper(),
            help=f"{text} (default: {default})",
        )
    for option, name, value, text in _FLAGS:
        group.add_argument(
            option, dest=name, action="store_const", const=value, help=text
        )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars or log lines"
    )
    parser = argparse.ArgumentParser(
        prog="skals",
        description="Top-k product recommendations per session with implicit ALS.",
        epilog=(
            "examples:\n"
            "  skals demo --out skals-demo\n"
            "  skals tune train.parquet --model model.joblib --report grid.png\n"
            "  skals fit train.parquet --model model.joblib --factors 64\n"
            "  skals predict model.joblib test.parquet --output predictions.json\n"
            "\nrun `skals COMMAND --help` for the options of a command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skals {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="end to end on generated data: tune, compare, write files",
        description=(
            "Generate a challenge-shaped event log (make_sessions), hold out the "
            "latest 10% of sessions, tune a small grid on the rest, and print "
            "NDCG@5 and overlap@5 of the tuned ALS pipeline, the default one, "
            "popularity and the notebook's approach, overall and per segment. "
            "Writes predictions.json, model.joblib and grid_scores.png (the plot "
            "needs matplotlib: pip install 'skals[plot]') into DIR."
        ),
    )
    demo.add_argument(
        "--out",
        metavar="DIR",
        default="skals-demo",
        help="output directory (default: %(default)s)",
    )
    demo.add_argument(
        "--n-sessions",
        type=_positive_int,
        default=50_000,
        metavar="N",
        help="sessions to generate (default: %(default)s)",
    )
    demo.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="INT",
        help="seed of the data and the models (default: %(default)s)",
    )
    demo.add_argument(
        "--grid",
        metavar="FILE.json",
        help=f"parameter grid (default: {json.dumps(DEFAULT_GRID)})",
    )

    fit = sub.add_parser(
        "fit",
        parents=[common],
        help="fit the pipeline on an event log and save it",
        description="Fit the skals pipeline on TRAIN and write it to MODEL (joblib).",
    )
    fit.add_argument("train", metavar="TRAIN", help="event log, parquet or CSV")
    fit.add_argument("--model", metavar="MODEL", required=True, help="output file")
    _add_hyperparameters(fit)
    _add_columns(fit, from_model=False)

    predict = sub.add_parser(
        "predict",
        parents=[common],
        help="k items per session of a test log, as the challenge's JSON",
        description=(
            'Write {"target": {"<session_id>": [p1, ..., pk]}} with k distinct '
            "items for every session of EVENTS: logged-in sessions use their "
            "user's history, anonymous ones are folded in from their events, "
            "sessions with nothing to go on get the popularity fallback. Load "
            "only MODEL files you trust (they are pickles)."
        ),
    )
    predict.add_argument("model", metavar="MODEL", help="written by fit or tune")
    predict.add_argument(
        "events", metavar="EVENTS", help="test log, parquet or CSV (no cart column)"
    )
    predict.add_argument(
        "--output", metavar="FILE", required=True, help="JSON file to write"
    )
    predict.add_argument(
        "-k",
        type=_positive_int,
        default=5,
        help="items per session (default: %(default)s)",
    )
    _add_columns(predict, from_model=True)

    tune = sub.add_parser(
        "tune",
        parents=[common],
        help="grid search with the challenge-style scorer, save the best",
        description=(
            "GridSearchCV over the grid, holding out the latest sessions "
            "(SessionHoldoutSplit) and scoring each held-out session from its "
            "first events (make_session_scorer). Prints the best parameters and "
            "the cv table, and saves the best pipeline refitted on all of TRAIN."
        ),
    )
    tune.add_argument("train", metavar="TRAIN", help="event log, parquet or CSV")
    tune.add_argument("--model", metavar="MODEL", required=True, help="output file")
    tune.add_argument(
        "--grid",
        metavar="FILE.json",
        help="parameter grid: {name: [values]} (or a list of them); short names "
        f"such as factors or full pipeline names (default: {json.dumps(DEFAULT_GRID)})",
    )
    tune.add_argument(
        "--cv",
        type=_positive_int,
        default=1,
        metavar="N",
        help="held-out blocks of the latest sessions (default: %(default)s)",
    )
    tune.add_argument(
        "--test-size",
        type=_test_size,
        default=0.1,
        metavar="SIZE",
        help="sessions per held-out block: a fraction or a count "
        "(default: %(default)s)",
    )
    tune.add_argument(
        "--scoring",
        default="ndcg@5",
        metavar="METRIC@K",
        help="ndcg, precision, recall, map or hit_rate, at k (default: %(default)s)",
    )
    tune.add_argument(
        "--n-revealed",
        type=_positive_int,
        default=3,
        metavar="N",
        help="events revealed per held-out session (default: %(default)s)",
    )
    tune.add_argument(
        "--report",
        metavar="FILE.png",
        help="heatmap of the grid scores (needs matplotlib)",
    )
    _add_hyperparameters(tune)
    _add_columns(tune, from_model=False)
    return parser


_COMMANDS = {
    "demo": _cmd_demo,
    "fit": _cmd_fit,
    "predict": _cmd_predict,
    "tune": _cmd_tune,
}


def _one_line(obj) -> str:
    """The first paragraph of ``str(obj)`` (e.g. an error message), on one line."""
    text = str(obj).strip().split("\n\n")[0]
    return " ".join(text.split()) or type(obj).__name__


def _warning_printer():
    """A ``warnings.showwarning`` that logs each distinct message once."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if str(message) not in seen:
            seen.add(str(message))
            log.warning("%s", message)

    return show


def main(argv=None) -> int:
    """Run the ``skals`` command line.

    ``skals demo [--out DIR]`` runs end to end on generated data, ``skals fit
    TRAIN --model MODEL`` fits and saves the pipeline, ``skals predict MODEL
    EVENTS --output FILE [-k 5]`` writes the challenge's JSON and ``skals tune
    TRAIN --model MODEL`` grid-searches it. ``skals COMMAND --help`` lists the
    options. Bad input ends with one line ``skals: error: ...`` on stderr and
    a non-zero exit status.

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 on bad input, 2 on a bad command line, 130 when
        interrupted.

    Examples
    --------
    >>> from skals.cli import main
    >>> main(["--version"])
    skals ...
    0
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    handler = _Handler()
    handler.setFormatter(_Formatter())
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    mode = "off" if args.quiet else "bar" if sys.stderr.isatty() else "log"
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer()
            return _COMMANDS[args.command](args, mode)
    except (CLIError, ValueError, TypeError, OSError, pl.exceptions.PolarsError) as exc:
        print(f"skals: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("skals: interrupted", file=sys.stderr)
        return 130
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
