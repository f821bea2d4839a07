"""Writes that never destroy a good file: temporary file, fsync, rename.

Every file skals writes (model files, the command line's ``--output``, the
demo's outputs, reports, cache entries) goes through :func:`atomic_write`
(or :func:`atomic_path`, for writers that take a file name, such as the
zip writer that appends a model's arrays): the bytes go to a temporary
file in the target's directory, which is
flushed, fsynced and then renamed over the target with :func:`os.replace`
(atomic on POSIX and Windows within one file system). A process killed at
any moment leaves either the previous file or the complete new one; a write
that raises removes its temporary file and leaves the previous file as it
was. (One exception: the warnings that joblib workers of a
``collect_warnings`` block write to the block's temporary directory are an
append-only log, one record per ``write``; see ``skals._warnings``.)
"""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["atomic_path", "atomic_write"]

#: Prefix of the temporary files (``.<name>.<random>.tmp`` next to the target).
_TMP_SUFFIX = ".tmp"


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse it
        pass
    finally:
        os.close(fd)


def _mode_for(target: str) -> int:
    """The target's permissions, or those a plain ``open`` would give it."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def _replacing(target: str, suffix: str):
    """``(fd, path)`` of a temporary file beside ``target``, renamed over it.

    The rename happens when the block succeeds (then the directory is
    fsynced); when it raises, the temporary file is removed.
    """
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(target)}.", suffix=suffix, dir=directory
    )
    try:
        os.chmod(tmp, _mode_for(target))
        yield fd, tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", *, encoding: str | None = None):
    """Open a temporary file that replaces ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or path-like
        The file to write (its directory must exist).
    mode : {"wb", "w"}, default="wb"
        Binary or text.
    encoding : str, optional
        For text mode (default ``"utf-8"``).

    Yields
    ------
    file : file object
        The temporary file, open for writing.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from skals._atomic import atomic_write
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_write(path, "w") as fh:
    ...     _ = fh.write("complete")
    >>> path.read_text()
    'complete'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}.")
    with _replacing(os.fspath(path), _TMP_SUFFIX) as (fd, _):
        if mode == "w":
            fh = open(fd, "w", encoding=encoding or "utf-8", newline="")  # noqa: SIM115
        else:
            fh = open(fd, "wb")  # noqa: SIM115
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(path, *, keep_suffix=True):
    """A temporary path (same directory and suffix) that replaces ``path``.

    For writers that take a file name rather than a file object (e.g.
    matplotlib's ``savefig``, which picks the format from the suffix, or
    the zip writer that adds a model file's arrays).

    Parameters
    ----------
    path : str or path-like
        The file to write.
    keep_suffix : bool, default=True
        End the temporary name with ``path``'s suffix (``.<name>.<random>
        .tmp.png``); ``False``: with ``.tmp``, as :func:`atomic_write`'s.

    Yields
    ------
    tmp : str
        Write the complete file here; it is fsynced and renamed over
        ``path`` when the block succeeds, removed when it raises.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from skals._atomic import atomic_path
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "plot.txt"
    >>> with atomic_path(path) as tmp:
    ...     _ = pathlib.Path(tmp).write_text("drawn")
    >>> path.read_text()
    'drawn'
    """
    target = os.fspath(path)
    suffix = os.path.splitext(target)[1] if keep_suffix else ""
    with _replacing(target, f"{_TMP_SUFFIX}{suffix}") as (fd, tmp):
        os.close(fd)
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
