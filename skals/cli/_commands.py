"""The commands ``demo``, ``fit``, ``predict`` and ``tune``: read, call skals, print.

Everything a Python user also needs is in the library: model files in
:mod:`skals.io` (``save``, ``load``), the challenge's answers in
:func:`skals.io.recommend_sessions`, the protocol in
:func:`skals.model_selection.reveal_first_n`. What remains here is reading
the user's files, building the pipeline from the options, and printing.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import polars as pl
from sklearn.model_selection import GridSearchCV, ParameterGrid

from .. import _plot, io
from .._atomic import atomic_path
from ..datasets import make_sessions
from ..metrics import make_session_scorer
from ..model_selection import SessionHoldoutSplit, reveal_first_n
from ..recommender import (
    BlendRecommender,
    ImplicitALSRecommender,
    PopularityRecommender,
    RepeatRecommender,
    RerankRecommender,
    SequentialRulesRecommender,
    SessionKNNRecommender,
    SLISTRecommender,
    make_cart_blend,
)
from ..schema import Schema, make_recommender_pipeline, needs_event_order
from . import _report
from ._options import ROLES, STAN_POINT, Columns
from ._report import CLIError, log, one_line

# ------------------------------------------------------------------ input
#: Roles whose columns hold ids: read from CSV as strings, never guessed.
ID_ROLES = ("session", "user", "item")


def check_output(path, what: str) -> None:
    """Fail before the work, not after it, if ``path`` cannot be written."""
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{what} {str(path)!r} is a directory, not a file.")
    if not p.absolute().parent.is_dir():
        raise CLIError(
            f"cannot write {what} {str(path)!r}: its directory does not exist."
        )


def check_not_inputs(outputs, inputs) -> None:
    """Refuse an output that is the same file as an input (before any work).

    ``outputs`` and ``inputs`` are ``(path or None, what)`` pairs. Symlinks
    and other names of one file are caught by :func:`os.path.samefile`. An
    output that is another existing file is replaced, and said in one line.
    """

    def same(a, b) -> bool:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return os.path.realpath(a) == os.path.realpath(b)

    seen = []
    for path, what in outputs:
        if path is None:
            continue
        for other, other_what in [*inputs, *seen]:
            if other is not None and same(path, other):
                raise CLIError(
                    f"{what} {str(path)!r} is the same file as {other_what} "
                    f"{str(other)!r}; writing it would destroy the "
                    f"{other_what}. Give another path."
                )
        seen.append((path, what))
    for path, what in outputs:
        if path is not None and os.path.isfile(path):
            log.info("%s %s exists: it will be replaced", what, path)


def _existing_file(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{what} file {path!r} does not exist.")
    if p.is_dir():
        raise CLIError(f"{what} {path!r} is a directory, not a file.")
    return p


def _scan(path: str, what: str, ids=()) -> pl.LazyFrame:
    """A lazy scan of a parquet file (by its magic bytes) or a CSV file.

    The CSV columns named in ``ids`` are read as strings, as written: a
    guess would read ``000123`` as the integer 123.
    """
    p = _existing_file(path, what)
    try:
        with p.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CLIError(f"cannot read {what} file {path!r}: {exc.strerror}.") from exc
    if head == b"PAR1":
        return pl.scan_parquet(p)
    if p.suffix.lower() in (".parquet", ".pq"):
        raise CLIError(f"{what} file {path!r} is not a parquet file.")
    if head.lstrip()[:1] in (b"{", b"["):
        raise CLIError(
            f"{what} file {path!r} looks like JSON, not a table; give a parquet "
            "or CSV event log."
        )
    return pl.scan_csv(
        p,
        try_parse_dates=True,
        infer_schema_length=None,
        schema_overrides=dict.fromkeys(ids, pl.String),
    )


def _names(names: list[str], limit: int = 8, width: int = 32) -> str:
    """A short list of column names (a file that is not a table has odd ones)."""
    shown = [n if len(n) <= width else n[: width - 3] + "..." for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(shown) + more


def read_events(
    path: str, what: str, cols: Columns, required, optional=(), rename=None
) -> pl.DataFrame:
    """Read the columns ``required`` (and ``optional`` if present) of a log.

    ``required`` and ``optional`` are roles of :class:`Columns`; ``rename``
    maps names in the file to the names the model expects.
    """
    # the id columns by their names in the file (before ``rename``)
    back = {model: given for given, model in (rename or {}).items()}
    ids = [
        back.get(name, name) for r in ID_ROLES if (name := getattr(cols, r)) is not None
    ]
    lf = _scan(path, what, ids)
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
                f" (its columns: {_names(names)}); name them with {options}."
            )
        extra = [getattr(cols, r) for r in optional if getattr(cols, r) in names]
        df = lf.select(need + extra).collect()
    except pl.exceptions.PolarsError as exc:
        raise CLIError(f"cannot read {what} file {path!r}: {one_line(exc)}") from exc
    if df.height == 0:
        raise CLIError(f"{what} file {path!r} has no events.")
    log.info(
        "read %s events of %s sessions from %s",
        f"{df.height:,}",
        f"{df[cols.session].n_unique():,}",
        path,
    )
    return df


def read_grid(path: str) -> list[dict]:
    """``[{parameter: [values]}]`` from a JSON grid file."""
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
def schema(cols: Columns) -> Schema:
    """The library's :class:`~skals.schema.Schema` of the command's columns."""
    return Schema(
        **{r: getattr(cols, r) for r in ROLES if getattr(cols, r) is not None}
    )


def pipeline(cols: Columns, params=None, recommender=None):
    """The skals pipeline over ``cols``, at session grain, with ``params``."""
    pipe = make_recommender_pipeline(recommender, schema=schema(cols), grain="session")
    if params:
        pipe.set_params(**resolve(pipe, params))
    return pipe


def recommender(name: str = "als", random_state=None):
    """The final step named by ``--recommender`` (a library estimator)."""
    als = ImplicitALSRecommender(random_state=random_state)
    if name == "als":
        return als
    if name == "knn":
        return SessionKNNRecommender()
    if name == "stan":
        # session-rec's VSTAN setting for click logs, in skals' names
        return SessionKNNRecommender(**{p: v[0] for p, v in STAN_POINT.items()})
    if name == "repeat":
        return RepeatRecommender()
    if name == "rules":
        return SequentialRulesRecommender()
    if name == "slist":
        return SLISTRecommender()
    if name == "blend":
        # the default recipe (ALS + session-kNN + repeat + SR), weights fitted
        return BlendRecommender(random_state=random_state)
    if name == "carts":
        return make_cart_blend()
    if name == "rerank":
        return RerankRecommender(random_state=random_state)
    if name == "rerank-carts":
        return RerankRecommender(target="session", random_state=random_state)
    raise CLIError(f"unknown recommender {name!r}")  # pragma: no cover - argparse


def resolve(pipe, params: dict) -> dict:
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


def defaults(names) -> dict:
    """The library's default of each short parameter name (for ``--help``)."""
    pipe = pipeline(Columns())
    values = pipe.get_params()
    return {name: values[next(iter(resolve(pipe, {name: None})))] for name in names}


def _columns(args) -> Columns:
    return Columns(**{r: getattr(args, f"{r}_col") for r in ROLES})


def _recommender(pipe):
    return pipe.steps[-1][1]


# ------------------------------------------------------------------ tuning
def _parse_scoring(scoring: str) -> tuple[str, int]:
    metric, _, k = scoring.partition("@")
    try:
        k = int(k) if k else 5
    except ValueError:
        raise CLIError(f"--scoring must look like 'ndcg@5', got {scoring!r}.") from None
    return metric, k


def grid_search(
    pipe,
    grid,
    events,
    cols,
    *,
    n_splits,
    test_size,
    scoring,
    mode,
    n_revealed=3,
    n_jobs=None,
):
    """GridSearchCV of ``pipe`` over ``grid`` with the challenge-style scorer."""
    metric, k = _parse_scoring(scoring)
    grid = [resolve(pipe, g) for g in (grid if isinstance(grid, list) else [grid])]
    metrics = list(dict.fromkeys([metric, "ndcg", "precision"]))
    scorer = make_session_scorer(
        metrics,
        k=k,
        n_revealed=n_revealed,
        by_segment=True,
        schema=schema(cols),
    )
    cv = SessionHoldoutSplit(n_splits, test_size=test_size, schema=schema(cols))
    refit = f"{metric}@{k}"
    n_candidates = len(ParameterGrid(grid))
    log.info(
        "grid search: %d candidates x %d held-out block(s), scored by %s%s; "
        "then the best is refitted on all %s events",
        n_candidates,
        n_splits,
        refit,
        f", {n_jobs} jobs" if n_jobs not in (None, 1) else "",
        f"{events.height:,}",
    )
    parallel = n_jobs not in (None, 1)
    # workers score on copies of the scorer: no progress from them
    progress = _report.Progress(
        n_candidates * n_splits, "grid search", "off" if parallel else mode
    )
    if not parallel:
        scorer = _report.ProgressScorer(scorer, progress, _report.varying(grid), refit)
    try:
        search = GridSearchCV(
            pipe,
            grid,
            scoring=scorer,
            refit=refit,
            cv=cv,
            n_jobs=n_jobs,
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


# ---------------------------------------------------------------- commands
def cmd_fit(args, mode: str) -> int:
    cols = _columns(args)
    check_output(args.model, "MODEL")
    check_not_inputs([(args.model, "MODEL")], [(args.train, "TRAIN")])
    final = recommender(args.recommender)
    required = ("session", "user", "item", "cart", "segment")
    if needs_event_order(final):
        required += ("time",)
    events = read_events(args.train, "TRAIN", cols, required)
    pipe = pipeline(cols, hyperparameters(args), recommender=final)
    log.info("fitting %s", one_line(repr(final)))
    progress = "show_progress" in final.get_params()
    if progress:
        final.set_params(show_progress=mode == "bar")
    start = time.perf_counter()
    pipe.fit(events)
    if progress:
        final.set_params(show_progress=False)
    seconds = time.perf_counter() - start
    io.save(pipe, args.model, command="fit")
    n_keys = final.user_ids_ if getattr(final, "user_ids_", None) is not None else []
    print(
        f"fitted on {events.height:,} events ({len(n_keys):,} user keys, "
        f"{final.n_features_in_:,} items) in {seconds:.1f} s; wrote {args.model}"
    )
    return 0


def cmd_predict(args, mode: str) -> int:
    check_output(args.output, "output")
    if not Path(args.model).is_file():
        _existing_file(args.model, "MODEL")
    check_not_inputs(
        [(args.output, "output")], [(args.model, "MODEL"), (args.events, "EVENTS")]
    )
    pipe, info = io.load(
        args.model,
        return_metadata=True,
        trusted=args.trust,
        allow_pickle=args.allow_pickle,
    )
    cols = Columns(**{r: info["columns"].get(r) for r in ROLES})
    rename = {
        given: getattr(cols, r)
        for r in ROLES
        if (given := getattr(args, f"{r}_col")) is not None
        and given != getattr(cols, r)
    }
    events = read_events(
        args.events,
        "EVENTS",
        cols,
        # the time column only where the model reads it (session-kNN, repeat)
        ("session", "item", "time", "segment"),
        optional=("user", "cart"),
        rename=rename,
    )
    if cols.user is not None and cols.user not in events.columns:
        log.warning(
            "EVENTS has no %r column: every session is taken as anonymous.",
            cols.user,
        )
        events = events.with_columns(pl.lit(None).alias(cols.user))
    target = io.recommend_sessions(pipe, events, k=args.k)
    io.write_challenge_json(target, args.output)
    print(f"wrote {args.k} items for each of {len(target):,} sessions to {args.output}")
    return 0


def cmd_tune(args, mode: str) -> int:
    from ._options import DEFAULT_GRIDS

    cols = _columns(args)
    why = _plot.missing_matplotlib() if args.report else None
    if why:
        raise CLIError(f"--report needs matplotlib: {why}.")
    for path, what in ((args.model, "MODEL"), (args.report, "report")):
        if path is not None:
            check_output(path, what)
    check_not_inputs(
        [(args.model, "MODEL"), (args.report, "report")],
        [(args.train, "TRAIN"), (args.grid, "grid")],
    )
    grid = read_grid(args.grid) if args.grid else DEFAULT_GRIDS[args.recommender]
    required = ("session", "user", "item", "cart", "time", "segment")
    events = read_events(args.train, "TRAIN", cols, required)
    pipe = pipeline(
        cols, hyperparameters(args), recommender=recommender(args.recommender)
    )
    search = grid_search(
        pipe,
        grid,
        events,
        cols,
        n_splits=args.cv,
        test_size=args.test_size,
        scoring=args.scoring,
        n_revealed=args.n_revealed,
        mode=mode,
        n_jobs=args.n_jobs,
    )
    print(_report.cv_table(search))
    best = _report.shown_params(search.best_params_)
    print(f"best: {best} ({search.refit} {search.best_score_:.4f})")
    io.save(
        search.best_estimator_,
        args.model,
        command="tune",
        best_params=search.best_params_,
        best_score=float(search.best_score_),
        scoring=search.refit,
    )
    print(f"wrote {args.model}")
    if args.report:
        with atomic_path(args.report) as tmp:
            _report.plot_search(search, tmp)
        print(f"wrote {args.report}")
    return 0


def cmd_demo(args, mode: str) -> int:
    from ._options import DEFAULT_GRID

    start = time.perf_counter()
    # held-out sessions view a few items that training never saw: expected
    # here, and not worth a warning per scored fit
    warnings.filterwarnings("ignore", "InteractionMatrixBuilder: dropped", UserWarning)
    out = Path(args.out)
    outputs = ("predictions.json", "model.skals", "grid_scores.png")
    if out.is_dir():
        check_not_inputs(
            [(out / name, name) for name in outputs], [(args.grid, "grid")]
        )
    out.mkdir(parents=True, exist_ok=True)
    cols, k, n_revealed, rs = Columns(), 5, 3, args.random_state
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
    grid = read_grid(args.grid) if args.grid else DEFAULT_GRID
    search = grid_search(
        pipeline(cols, {"random_state": rs}),
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
        "ALS, default": pipeline(cols, {"random_state": rs}),
        "session-kNN (V-SKNN)": pipeline(cols, recommender=recommender("knn")),
        "repeat": pipeline(cols, recommender=recommender("repeat")),
        "sequential rules": pipeline(cols, recommender=SequentialRulesRecommender()),
        "SLIST": pipeline(cols, recommender=SLISTRecommender()),
        "blend (auto weights)": pipeline(
            cols, recommender=recommender("blend", random_state=rs)
        ),
        "blend (1:3:2)": pipeline(
            cols,
            recommender=BlendRecommender(weights=[1, 3, 2, 0], random_state=rs),
        ),
        "carts: repeat, then kNN": pipeline(cols, recommender=recommender("carts")),
        "reranker, cart target": pipeline(
            cols, recommender=recommender("rerank-carts", random_state=rs)
        ),
        "popularity": pipeline(cols, recommender=PopularityRecommender()),
        "notebook's approach": pipeline(
            cols,
            {"random_state": rs, "fold_in": False, "filter_already_liked_items": True},
        ),
    }
    models = {"ALS, tuned": search.best_estimator_}
    for label, pipe in baselines.items():
        log.info("fitting %s: %s", label, one_line(repr(_recommender(pipe))))
        models[label] = pipe.fit(train)
    scorer = make_session_scorer(["ndcg", "precision"], k=k, n_revealed=n_revealed)
    scores = {label: scorer.details(m, test) for label, m in models.items()}
    print(f"best grid point: {_report.shown_params(search.best_params_)}")
    print(_report.demo_table(scores, k, n_revealed))

    print(_report.demo_rows_explained(k, n_revealed))
    # the saved model is the table's winner on NDCG@k over all sessions
    winner = _report.demo_winner(scores, f"ndcg@{k}")
    best = models[winner]
    context, _ = reveal_first_n(test, n_revealed)
    target = io.recommend_sessions(best, context, k=k)
    io.write_challenge_json(target, out / "predictions.json")
    print(
        f"wrote {out / 'predictions.json'}: {k} items for each of the "
        f"{len(target):,} held-out sessions, from their first {n_revealed} "
        f"events, by {winner!r}"
    )
    metadata = {"best_params": search.best_params_} if winner == "ALS, tuned" else {}
    io.save(best, out / "model.skals", command="demo", winner=winner, **metadata)
    print(
        f"wrote {out / 'model.skals'}: {winner!r}, the best NDCG@{k} of the "
        "table, fitted on the training sessions (skals predict reads it)"
    )
    why = _plot.missing_matplotlib()
    if why is None:
        with atomic_path(out / "grid_scores.png") as tmp:
            _report.plot_search(search, tmp)
        print(f"wrote {out / 'grid_scores.png'}: the grid-search scores")
    else:
        print(f"no plot written: {why}")
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0


def hyperparameters(args) -> dict:
    """The hyperparameters given on the command line, by short name."""
    from ._options import FLAGS, HYPERPARAMETERS

    params = {
        name: getattr(args, name)
        for name, _, _ in HYPERPARAMETERS
        if getattr(args, name) is not None
    }
    for _, name, value, _ in FLAGS:
        if getattr(args, name) is not None:
            params[name] = value
    return params


COMMANDS = {
    "demo": cmd_demo,
    "fit": cmd_fit,
    "predict": cmd_predict,
    "tune": cmd_tune,
}
