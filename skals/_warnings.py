"""Warnings that point at the caller's code, and a grid-search-friendly collector."""

from __future__ import annotations

import functools
import os
import re
import sys
import sysconfig
import warnings
from collections import Counter
from contextlib import contextmanager

__all__ = ["collect_warnings"]

_DIGITS = re.compile(r"\d+(\.\d+)?")


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """Prefixes of frames that are not the user's: packages, stdlib, site."""
    import joblib
    import sklearn
    import sklearn_compat

    dirs = [os.path.dirname(os.path.abspath(__file__))]
    for module in (sklearn, sklearn_compat, joblib):
        dirs.append(os.path.dirname(os.path.abspath(module.__file__)))
    paths = sysconfig.get_paths()
    site = {os.path.abspath(paths["purelib"]), os.path.abspath(paths["platlib"])}
    return (
        tuple(d + os.sep for d in dirs),
        os.path.abspath(paths["stdlib"]) + os.sep,
        tuple(d + os.sep for d in site),
    )


def _is_library(filename: str) -> bool:
    packages, stdlib, site = _library_dirs()
    if filename.startswith(packages):
        return True
    return filename.startswith(stdlib) and not filename.startswith(site)


def user_stacklevel() -> int:
    """``stacklevel`` for a warning raised by skals' caller of this function.

    Counts the frames up to the first one outside skals, scikit-learn,
    joblib and the standard library, so that a warning names the user's
    line whether skals was called directly, through a ``Pipeline`` or
    through ``GridSearchCV``. Where there is no such frame (a joblib worker
    process) the level is past the top of the stack, which Python reports
    as module ``sys``: :func:`collect_warnings` silences those.
    """
    frame = sys._getframe(1)  # the caller: skals.warn
    level = 1
    while frame is not None:
        if not _is_library(os.path.abspath(frame.f_code.co_filename)):
            return level
        frame = frame.f_back
        level += 1
    return level + 1


def warn(message, category=UserWarning, stacklevel=None) -> None:
    """``warnings.warn`` attributed to the first frame outside skals and sklearn.

    ``stacklevel`` is accepted for the signature of :func:`warnings.warn` and
    ignored: the level is found by walking the stack.
    """
    warnings.warn(message, category, stacklevel=user_stacklevel())


class WarningLog(list):
    """The distinct warnings of a :func:`collect_warnings` block, with counts.

    A list of ``(category, message, count)`` in order of first appearance.
    """


@contextmanager
def collect_warnings(*, reemit=True):
    """Show each distinct warning of a block once, with how often it came.

    A grid search fits a pipeline once per candidate and fold, so a warning
    of a step (an unknown item, a clipped ``k``) would be printed that many
    times. Inside this block warnings are recorded instead; at the end each
    distinct (category, message) is re-emitted once, with the count when it
    came more than once. Messages that differ only in their numbers count as
    one (the first is shown).

    Parameters
    ----------
    reemit : bool, default=True
        Re-emit the collected warnings at the end of the block. ``False``
        only records them in the returned log.

    Yields
    ------
    log : list of (category, message, count)
        Filled when the block ends.

    Notes
    -----
    With ``GridSearchCV(n_jobs=1)`` every fit runs in this process and every
    warning is counted. With ``n_jobs>1`` the fits run in joblib's worker
    processes; scikit-learn passes the warning filters to the workers, and
    the block installs one that silences warnings there (otherwise each
    worker prints its own copy to stderr). Those warnings are not counted:
    the refit of the best candidate (in this process) still reports its own.

    Examples
    --------
    >>> import warnings
    >>> from skals import collect_warnings
    >>> with collect_warnings(reemit=False) as log:
    ...     for fold in range(3):
    ...         warnings.warn("k clipped", UserWarning)
    >>> log
    [(<class 'UserWarning'>, 'k clipped', 3)]
    """
    log = WarningLog()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # scikit-learn copies these filters to its joblib workers, where a
        # skals warning has no user frame and is reported as module "sys"
        warnings.filterwarnings("ignore", module="sys$")
        yield log
    first: dict = {}
    counts: Counter = Counter()
    for w in caught:
        # one group for messages that differ only in their numbers
        # (e.g. "dropped 12 of 3400 rows" in one fold, "dropped 9 of ..." in
        # the next); the first message of a group stands for it
        key = (w.category, _DIGITS.sub("#", str(w.message)))
        first.setdefault(key, str(w.message))
        counts[key] += 1
    log.extend((key[0], first[key], n) for key, n in counts.items())
    if reemit:
        level = user_stacklevel()
        for cat, msg, n in log:
            text = msg if n == 1 else f"{msg} [{n} such warnings; the first shown]"
            warnings.warn(text, cat, stacklevel=level)
