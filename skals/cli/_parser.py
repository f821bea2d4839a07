"""The ``skals`` argument parser and :func:`main`; imports the library only to run.

``skals --help`` and ``skals --version`` import nothing heavy: the options of
a command are added only when that command is on the command line, and the
library (polars, scikit-learn, implicit) is imported only when a command
runs: the hyperparameter defaults that ``--help`` shows are a static table
(``_options.DEFAULTS``, checked against the estimators by the tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings

from .._version import __version__
from . import _report
from ._options import (
    _COLUMN_HELP,
    DEFAULT_GRID,
    DEFAULTS,
    FLAGS,
    HYPERPARAMETERS,
    RECOMMENDERS,
    ROLES,
    Columns,
)
from ._report import log


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _n_jobs(text: str) -> int:
    value = int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be a non-zero integer (-1: all cores)")
    return value


def _test_size(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _add_columns(parser, *, from_model: bool) -> None:
    group = parser.add_argument_group(
        "columns",
        "names of the event log's columns"
        + (" (default: the names the model was fitted on)" if from_model else ""),
    )
    default = Columns()
    for role in ROLES:
        value = None if from_model else getattr(default, role)
        extra = "" if from_model or value is None else " (default: %(default)s)"
        group.add_argument(
            f"--{role}-col",
            metavar="NAME",
            default=value,
            help=_COLUMN_HELP[role] + extra,
        )


def _add_hyperparameters(parser) -> None:
    group = parser.add_argument_group(
        "hyperparameters", "of the pipeline (default: the library's defaults)"
    )
    for name, kind, text in HYPERPARAMETERS:
        group.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            metavar=kind.__name__.upper(),
            help=f"{text} (default: {DEFAULTS[name]})",
        )
    for option, name, value, text in FLAGS:
        group.add_argument(
            option, dest=name, action="store_const", const=value, help=text
        )


def _add_demo(demo) -> None:
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


def _add_recommender(parser) -> None:
    parser.add_argument(
        "--recommender",
        choices=sorted(RECOMMENDERS),
        default="als",
        help="the model: "
        + "; ".join(f"{name}: {text}" for name, text in RECOMMENDERS.items()),
    )


def _add_fit(fit) -> None:
    fit.add_argument("train", metavar="TRAIN", help="event log, parquet or CSV")
    fit.add_argument("--model", metavar="MODEL", required=True, help="output file")
    _add_recommender(fit)
    _add_hyperparameters(fit)
    _add_columns(fit, from_model=False)


def _add_predict(predict) -> None:
    predict.add_argument(
        "model", metavar="MODEL", help="written by fit, tune or skals.save"
    )
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
    predict.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read a skals 0.1.x model file (a pickle: loading it runs code from "
        "the file; only for a file you trust)",
    )
    predict.add_argument(
        "--trust",
        metavar="TYPE",
        action="append",
        default=None,
        help="trust this type in MODEL (as the error for an untrusted file names "
        "it); repeat for several",
    )
    _add_columns(predict, from_model=True)


def _add_tune(tune) -> None:
    tune.add_argument("train", metavar="TRAIN", help="event log, parquet or CSV")
    tune.add_argument("--model", metavar="MODEL", required=True, help="output file")
    _add_recommender(tune)
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
        "--n-jobs",
        type=_n_jobs,
        default=None,
        metavar="N",
        help="candidates fitted in parallel (GridSearchCV's n_jobs; -1: all "
        "cores; combine with --num-threads 1). Default: one at a time, with "
        "progress",
    )
    tune.add_argument(
        "--report",
        metavar="FILE.png",
        help="heatmap of the grid scores (needs matplotlib)",
    )
    _add_hyperparameters(tune)
    _add_columns(tune, from_model=False)


#: name: (help, description, adds the options)
_SUBCOMMANDS = {
    "demo": (
        "end to end on generated data: tune, compare, write files",
        "Generate a challenge-shaped event log (make_sessions), hold out the "
        "latest 10% of sessions, tune ALS on a small grid on the rest, and "
        "print NDCG@5 and overlap@5 of every model (tuned and default ALS, "
        "session-kNN, repeat, their blend, popularity and the challenge "
        "notebook's approach), overall and per segment, with a line on what "
        "each row is. Writes model.skals (the model with the best NDCG@5), "
        "its predictions.json and grid_scores.png (the plot needs "
        "matplotlib: pip install 'skals[plot]') into DIR.",
        _add_demo,
    ),
    "fit": (
        "fit the pipeline on an event log and save it",
        "Fit the skals pipeline on TRAIN and write it to MODEL (skals.save).",
        _add_fit,
    ),
    "predict": (
        "k items per session of a test log, as the challenge's JSON",
        'Write {"target": {"<session_id>": [p1, ..., pk]}} with k distinct '
        "items for every session of EVENTS: logged-in sessions use their "
        "user's history, anonymous ones are folded in from their events, "
        "sessions with nothing to go on get the popularity fallback. MODEL "
        "is any skals pipeline saved by fit, tune or skals.save. Load only "
        "MODEL files you trust (they are pickles).",
        _add_predict,
    ),
    "tune": (
        "grid search with the challenge-style scorer, save the best",
        "GridSearchCV over the grid, holding out the latest sessions "
        "(SessionHoldoutSplit) and scoring each held-out session from its "
        "first events (make_session_scorer). Prints the best parameters and "
        "the cv table, and saves the best pipeline refitted on all of TRAIN.",
        _add_tune,
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s options are added (all when ``"*"``)."""
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
            "  skals tune train.parquet --model model.skals --report grid.png\n"
            "  skals fit train.parquet --model model.skals --factors 64\n"
            "  skals predict model.skals test.parquet --output predictions.json\n"
            "\nrun `skals COMMAND --help` for the options of a command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skals {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (short, description, add) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, parents=[common], help=short, description=description)
        if command in (name, "*"):
            add(p)
    return parser


def _is_user_error(exc: BaseException) -> bool:
    """Bad input (reported in one line) rather than a bug (a traceback)."""
    if isinstance(exc, (_report.CLIError, ValueError, TypeError, OSError)):
        return True
    polars = sys.modules.get("polars")
    return polars is not None and isinstance(exc, polars.exceptions.PolarsError)


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
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    # the top-level options take no value: the first word is the command
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = build_parser(command).parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    handler = _report.Handler()
    handler.setFormatter(_report.Formatter())
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    mode = "off" if args.quiet else "bar" if sys.stderr.isatty() else "log"
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _report.warning_printer()
            from ._commands import COMMANDS

            return COMMANDS[args.command](args, mode)
    except KeyboardInterrupt:
        print("skals: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        print(f"skals: error: {_report.one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
