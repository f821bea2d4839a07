"""Warnings that point at the caller's code, and a grid-search-friendly collector."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import json
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import warnings
from collections import Counter
from contextlib import contextmanager

__all__ = ["SkalsDeprecationWarning", "SkalsWarning", "collect_warnings"]


class SkalsWarning(UserWarning):
    """The category of skals' warnings about the caller's data or call.

    A subclass of :class:`UserWarning`, so a filter on either catches it.
    Rows dropped, ids unseen in fit, a clipped ``k``: each is counted and
    said with this category, so that a script (or a test suite) can turn
    skals' own warnings into errors without touching other libraries'::

        warnings.simplefilter("error", skals.SkalsWarning)

    Examples
    --------
    >>> import warnings
    >>> from skals import SkalsWarning
    >>> from skals._warnings import warn
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("dropped 3 of 10 rows", UserWarning)
    >>> caught[0].category is SkalsWarning, issubclass(SkalsWarning, UserWarning)
    (True, True)
    """


class SkalsDeprecationWarning(SkalsWarning, FutureWarning):
    """A skals feature that will be removed: both a :class:`SkalsWarning`
    and a :class:`FutureWarning` (shown by default, as deprecations meant
    for end users are).

    Examples
    --------
    >>> from skals import SkalsDeprecationWarning, SkalsWarning
    >>> issubclass(SkalsDeprecationWarning, (SkalsWarning, FutureWarning))
    True
    """


#: Warnings emitted through :func:`warn` while a cached call runs, per
#: context (so per thread): a tuple of lists, one per enclosing cached call
#: (:class:`~skals.preprocessing.FrameCache` replays them on a hit).
RECORDERS: contextvars.ContextVar[tuple] = contextvars.ContextVar(
    "skals_warning_recorders", default=()
)

_DIGITS = re.compile(r"\d+(\.\d+)?")
#: Message pattern of the marker filter a collect_warnings block installs.
_MARKER = "skals-collect-warnings:"


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
    """``stacklevel`` for a warning raised by the caller of this function.

    Counts the frames up to the first one outside skals, scikit-learn,
    joblib and the standard library, so that a warning names the user's
    line whether skals was called directly, through a ``Pipeline`` or
    through ``GridSearchCV``.
    """
    frame = sys._getframe(1)  # the caller, e.g. skals' warn
    level = 1
    while frame is not None:
        if not _is_library(os.path.abspath(frame.f_code.co_filename)):
            return level
        frame = frame.f_back
        level += 1
    return level


def _collector() -> tuple[int, str] | None:
    """(pid, directory) of an enclosing collect_warnings block, if any.

    The block's marker is a warnings filter, which scikit-learn copies to
    its joblib workers along with the other filters.
    """
    for f in warnings.filters:
        pattern = getattr(f[1], "pattern", None)
        if pattern and pattern.startswith(_MARKER):
            pid, _, directory = pattern[len(_MARKER) :].partition(":")
            return int(pid), directory
    return None


def warn(message, category=SkalsWarning, stacklevel=None) -> None:
    """``warnings.warn`` attributed to the first frame outside the libraries.

    A plain :class:`UserWarning` category is given as :class:`SkalsWarning`
    (its subclass), so that every warning skals gives through here can be
    filtered by that one category.

    ``stacklevel`` is accepted for the signature of :func:`warnings.warn` and
    ignored: the level is found by walking the stack. In a joblib worker of
    a :func:`collect_warnings` block, the warning is written to the block's
    directory instead (the block counts it), not printed by the worker.
    Inside a :class:`~skals.preprocessing.FrameCache` call it is also
    recorded (per thread), so that a cache hit shows it again.
    """
    if category is UserWarning:
        category = SkalsWarning
    for recorder in RECORDERS.get():
        recorder.append((str(message), category))
    collector = _collector()
    if collector is not None and collector[0] != os.getpid():
        record = {
            "category": f"{category.__module__}:{category.__qualname__}",
            "message": str(message),
        }
        path = os.path.join(collector[1], f"{os.getpid()}.jsonl")
        line = (json.dumps(record) + "\n").encode("utf-8")
        with contextlib.suppress(OSError):  # another machine: no shared directory
            _append(path, line)
        return
    warnings.warn(message, category, stacklevel=user_stacklevel())


def _append(path: str, line: bytes) -> None:
    """Append one record to a worker's log with a single ``write``.

    The log is append-only (one file per worker process, read once when the
    block ends), so it is not rewritten through a temporary file: each
    record is one ``write`` to a descriptor opened with ``O_APPEND``, which
    lands at the end as a whole even when threads of the worker write at
    once (no buffer splits it), and a worker killed mid-write leaves at
    most an incomplete last line, which :func:`_worker_records` skips.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        view = memoryview(line)
        while view:  # a regular file takes it in one go; a short write resumes
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _category(name: str) -> type[Warning]:
    module, _, qualname = name.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return UserWarning
    return obj if isinstance(obj, type) and issubclass(obj, Warning) else UserWarning


def _worker_records(directory: str):
    """The workers' records; a line that is not a whole record (a killed
    worker's unfinished write, perhaps followed by the record of a worker
    that got its process id) is skipped rather than failing the block."""
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as fh:
            for line in fh:
                try:
                    rec = json.loads(line.decode("utf-8"))
                    record = _category(rec["category"]), rec["message"]
                except (ValueError, KeyError, TypeError):
                    continue
                if line.endswith(b"\n"):
                    yield record


class WarningLog(list):
    """The distinct warnings of a :func:`collect_warnings` block, with counts.

    A list of ``(category, message, count)`` in order of first appearance.
    """


@contextmanager
def collect_warnings(*, reemit=True):
    """Show each distinct warning of a block once, with how often it came.

    A grid search fits and scores a pipeline once per candidate and fold, so
    a warning of a step (an unknown item, a clipped ``k``) would be printed
    that many times. Inside this block warnings are recorded instead; at the
    end each distinct one is re-emitted once, with the count when it came
    more than once. Messages that differ only in their numbers (``dropped 12
    of 3400 rows`` in one fold, ``dropped 9 of 3100 rows`` in the next) count
    as one, and the first is shown.

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
    ``GridSearchCV(n_jobs=1)`` runs every fit in this process, and every
    warning is recorded here. With ``n_jobs>1`` the fits run in joblib's
    worker processes: scikit-learn passes the warning filters to them, and
    this block adds a marker filter there, with which skals' own warnings
    are written to a temporary directory of this block instead of being
    printed by each worker; they are counted with the others at the end.
    Warnings of other libraries in workers are printed by the workers as
    usual. (On a cluster without a shared temporary directory the workers'
    skals warnings are dropped.)

    Examples
    --------
    >>> import warnings
    >>> from skals import collect_warnings
    >>> with collect_warnings(reemit=False) as log:
    ...     for fold in range(3):
    ...         warnings.warn(f"dropped {10 + fold} rows", UserWarning)
    >>> log
    [(<class 'UserWarning'>, 'dropped 10 rows', 3)]
    """
    log = WarningLog()
    directory = tempfile.mkdtemp(prefix="skals-warnings-")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # never matches a message: it only tells workers where to write
            warnings.filterwarnings(
                "always", message=f"{_MARKER}{os.getpid()}:{directory}"
            )
            yield log
        records = [(w.category, str(w.message)) for w in caught]
        records += list(_worker_records(directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    first: dict = {}
    counts: Counter = Counter()
    for category, message in records:
        key = (category, _DIGITS.sub("#", message))
        first.setdefault(key, message)
        counts[key] += 1
    log.extend((key[0], first[key], n) for key, n in counts.items())
    if reemit:
        level = user_stacklevel()
        for category, message, n in log:
            text = message if n == 1 else f"{message} [{n} such warnings; first shown]"
            warnings.warn(text, category, stacklevel=level)
