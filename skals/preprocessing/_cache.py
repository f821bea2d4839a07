"""FrameCache: an explicit in-memory cache for ``Pipeline(memory=...)``."""

from __future__ import annotations

import copy
import hashlib
import inspect
import sys
import threading
import uuid
import warnings
from collections import OrderedDict

import joblib
import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from .._checks import RECORDERS as _RECORDERS
from .._checks import warn

__all__ = ["FrameCache", "warn"]


class _Uncacheable(Exception):
    """An argument without a content fingerprint: the call is not cached."""


# ------------------------------------------------------------ fingerprints
def _frame_fingerprint(X: pl.DataFrame, h) -> None:
    schema = list(X.schema.items())
    if any(dtype == pl.Object for _, dtype in schema):
        # hash_rows panics (a BaseException) on Object columns of 50,000+
        # rows; such a frame has no content fingerprint and is not cached
        raise _Uncacheable("object column")
    h.update(repr(("polars", X.height, schema)).encode())
    if X.width == 0:
        return
    try:
        rows = X.hash_rows(seed=0)
    except (Exception, pl.exceptions.PanicException) as exc:
        raise _Uncacheable(str(exc)) from exc
    h.update(rows.to_numpy().tobytes())


def _pandas_fingerprint(X, h) -> None:
    import pandas as pd

    h.update(repr(("pandas", X.shape, list(map(str, X.columns)))).encode())
    h.update(repr([str(t) for t in X.dtypes]).encode())
    # hash_pandas_object hashes an object column by the values' string
    # forms: the integer 7 and the string "7" share a hash. The inferred
    # type of each object column tells them apart, and in a mixed column
    # the type of every value does.
    try:
        for name in X.columns[[str(t) == "object" for t in X.dtypes]]:
            col = X[name]
            kind = pd.api.types.infer_dtype(col, skipna=False)
            h.update(repr((str(name), kind)).encode())
            if kind.startswith("mixed"):
                types = col.map(lambda v: type(v).__qualname__)
                h.update(pd.util.hash_pandas_object(types, index=False).to_numpy())
        rows = pd.util.hash_pandas_object(X, index=True)
    except Exception as exc:  # e.g. unhashable objects in a column
        raise _Uncacheable(str(exc)) from exc
    h.update(rows.to_numpy().tobytes())


def _is_pandas(X) -> bool:
    return type(X).__module__.startswith("pandas") and hasattr(X, "iloc")


def _update(h, value) -> None:
    """Feed the content of ``value`` into the hash ``h``."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        h.update(repr((type(value).__name__, value)).encode())
    elif isinstance(value, pl.DataFrame):
        _frame_fingerprint(value, h)
    elif isinstance(value, pl.Series):
        _frame_fingerprint(value.to_frame(), h)
    elif isinstance(value, pl.LazyFrame):
        raise _Uncacheable("a LazyFrame (its source may change)")
    elif _is_pandas(value) and value.ndim == 2:
        _pandas_fingerprint(value, h)
    elif isinstance(value, (list, tuple)):
        h.update(repr((type(value).__name__, len(value))).encode())
        for v in value:
            _update(h, v)
    elif isinstance(value, dict):
        h.update(repr(("dict", sorted(map(repr, value)))).encode())
        for k in sorted(value, key=repr):
            _update(h, value[k])
    elif isinstance(value, BaseEstimator):
        cls = type(value)
        h.update(repr(("estimator", cls.__module__, cls.__qualname__)).encode())
        _update(h, value.get_params(deep=False))
    elif type(value).__module__.startswith("pyspark"):
        raise _Uncacheable("a Spark object")
    else:
        try:
            h.update(joblib.hash(value).encode())
        except Exception as exc:
            raise _Uncacheable(str(exc)) from exc


# ----------------------------------------------------------- safe copies
def _copy(obj):
    """A copy that shares no mutable state with ``obj``.

    polars frames are copied with ``clone`` (constant time: the buffers are
    shared copy-on-write, and an in-place change of one frame never shows
    in the other); arrays and sparse matrices are copied.
    """
    if isinstance(obj, (pl.DataFrame, pl.Series)):
        return obj.clone()
    if isinstance(obj, tuple):
        return tuple(_copy(v) for v in obj)
    if isinstance(obj, list):
        return [_copy(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return obj
    if isinstance(obj, (np.ndarray, sp.spmatrix, sp.sparray)) or _is_pandas(obj):
        return obj.copy()
    return copy.deepcopy(obj)


def _nbytes(obj, depth: int = 0) -> int:
    """Approximate memory held by a cached result."""
    if isinstance(obj, (pl.DataFrame, pl.Series)):
        return int(obj.estimated_size())
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, (sp.spmatrix, sp.sparray)):
        parts = ("data", "indices", "indptr", "row", "col")
        return sum(int(getattr(obj, p).nbytes) for p in parts if hasattr(obj, p))
    if _is_pandas(obj):
        return int(obj.memory_usage(deep=False).sum()) if obj.ndim == 2 else 0
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(v, depth + 1) for v in obj)
    if depth < 3 and hasattr(obj, "__dict__"):
        return sum(_nbytes(v, depth + 1) for v in vars(obj).values())
    return sys.getsizeof(obj)


# ----------------------------------------------------------------- cache
#: Caches unpickled in a worker process, by token: the tasks a worker runs
#: for one search share one cache, as the threads of one process do.
_WORKER_CACHES: dict = {}
_WORKER_LOCK = threading.Lock()


def _restore(token: str, max_bytes: int, min_rows: int) -> FrameCache:
    with _WORKER_LOCK:
        cache = _WORKER_CACHES.get(token)
        if cache is None:
            cache = FrameCache(max_bytes=max_bytes, min_rows=min_rows)
            cache._token = token
            _WORKER_CACHES[token] = cache
        return cache


class FrameCache:
    """In-memory cache of a pipeline's steps, for ``Pipeline(memory=...)``.

    scikit-learn's :class:`~sklearn.pipeline.Pipeline` caches the
    ``fit_transform`` of its steps through the object given as ``memory``.
    ``FrameCache`` is such an object, made for event logs: it keeps results
    in memory and keys them on a fast content fingerprint of the step's input
    (polars' ``hash_rows`` for a polars frame, pandas' ``hash_pandas_object``
    for a pandas one) and on the step's class and parameters. In a grid
    search, candidates that differ only in later steps' parameters then share
    one preprocessing per fold, and nothing is written to disk.

    Caching is opt-in and visible: nothing is cached unless a pipeline is
    given a ``FrameCache``, and each ``FrameCache`` holds only its own
    entries (clones of a pipeline share the one they were given).

    Parameters
    ----------
    max_bytes : int, default=1 << 30
        Approximate memory kept for results; the least recently used are
        dropped first. A result larger than this is not kept. In a search,
        size it to hold the outputs of every step for every fold at once: a
        search visits the folds in turn for each candidate, so when they do
        not all fit, the entry dropped is the next one needed and nothing
        hits (``hits`` stays 0). On a 4.7M-event log with 3 folds that
        takes about 1.5 GB; compare ``nbytes`` after one candidate.
    min_rows : int, default=0
        Inputs with fewer rows are not cached (the step is cheap on them).

    Attributes
    ----------
    hits : int
        Calls answered from the cache.
    misses : int
        Calls computed and stored.
    skipped : int
        Calls not cached: an input without a content fingerprint (a
        LazyFrame, a Spark DataFrame, a polars frame with an Object column,
        unhashable pandas objects) or fewer than ``min_rows`` rows.

    Notes
    -----
    No stale result is possible: a hit hands out a copy of the stored result
    (polars frames by ``clone``, which is constant time; arrays and sparse
    matrices by copying them), so changing an output in place never changes
    what the next call gets, and every input is fingerprinted by content,
    never recognised by identity.

    Warnings: skals' transformers report their warnings to the cache through
    a per-thread context variable, and a hit re-emits the warnings of the
    call that computed the result, in the calling thread.
    ``warnings.catch_warnings`` is not used (it is process-global and would
    move warnings between threads). Warnings of other libraries' steps are
    shown when the step runs and not repeated on a hit.

    With ``n_jobs`` and threads, all workers share the cache. With processes
    (joblib's default backend), each worker process has its own copy, built
    empty on first use and shared by the tasks that process runs.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from skals import (ConfidenceEncoder, InteractionMatrixBuilder,
    ...                    PseudoUserUnifier)
    >>> from skals.datasets import make_sessions
    >>> from skals.preprocessing import FrameCache
    >>> events = make_sessions(50, n_items=20, random_state=0)
    >>> memory = FrameCache()
    >>> pre = make_pipeline(PseudoUserUnifier(), ConfidenceEncoder(),
    ...                     InteractionMatrixBuilder(), "passthrough",
    ...                     memory=memory)
    >>> first = pre.fit_transform(events)
    >>> second = pre.fit_transform(events)
    >>> memory.misses, memory.hits
    (3, 3)
    >>> (first.matrix != second.matrix).nnz
    0
    """

    def __init__(self, max_bytes: int = 1 << 30, min_rows: int = 0):
        self.max_bytes = int(max_bytes)
        self.min_rows = int(min_rows)
        self.hits = 0
        self.misses = 0
        self.skipped = 0
        self._entries: OrderedDict = OrderedDict()  # key -> (result, warnings, size)
        self._lock = threading.Lock()
        self._token = uuid.uuid4().hex

    def __repr__(self) -> str:
        return (
            f"FrameCache(max_bytes={self.max_bytes}, min_rows={self.min_rows}; "
            f"{len(self)} entries, {self.hits} hits, {self.misses} misses)"
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the stored results."""
        with self._lock:
            return sum(size for _, _, size in self._entries.values())

    def clear(self) -> None:
        """Drop every stored result."""
        with self._lock:
            self._entries.clear()

    def _keys(self) -> frozenset:
        """The keys of the stored results (to :meth:`_keep_only` them later)."""
        with self._lock:
            return frozenset(self._entries)

    def _keep_only(self, keys) -> None:
        """Drop every stored result whose key is not in ``keys``."""
        with self._lock:
            for key in [k for k in self._entries if k not in keys]:
                del self._entries[key]

    # clones of a pipeline share its cache (scikit-learn's clone deep-copies
    # parameters that are not estimators)
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (_restore, (self._token, self.max_bytes, self.min_rows))

    def cache(self, func=None, ignore=None, **kwargs):
        """Return ``func`` wrapped so that its results are cached here.

        The interface of :meth:`joblib.Memory.cache`, which is what
        :class:`~sklearn.pipeline.Pipeline` calls. Keyword arguments other
        than ``ignore`` (``verbose``, ``mmap_mode``) are accepted and unused.

        Parameters
        ----------
        func : callable
            Function to cache (for a pipeline, scikit-learn's
            ``_fit_transform_one``).
        ignore : list of str, default=None
            Names of arguments that are not part of the key.

        Returns
        -------
        cached : callable
            ``func`` with caching.
        """
        if func is None:
            return lambda f: self.cache(f, ignore=ignore, **kwargs)
        return _CachedFunction(self, func, ignore)

    # ---------------------------------------------------------- internals
    def _key(self, func, bound: inspect.BoundArguments, ignore) -> str | None:
        h = hashlib.blake2b(digest_size=20)
        h.update(repr((func.__module__, func.__qualname__)).encode())
        try:
            for name, value in bound.arguments.items():
                if name in ignore:
                    continue
                if self.min_rows and _n_rows(value) < self.min_rows:
                    raise _Uncacheable("too few rows")
                h.update(name.encode())
                _update(h, value)
        except _Uncacheable:
            return None
        return h.hexdigest()

    def _call(self, func, ignore, args, kwargs):
        bound = inspect.signature(func).bind(*args, **kwargs)
        bound.apply_defaults()
        key = self._key(func, bound, ignore)
        if key is None:
            with self._lock:
                self.skipped += 1
            return func(*args, **kwargs)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.hits += 1
        if hit is not None:
            result, caught, _ = hit
            for message, category in caught:
                warnings.warn(message, category, stacklevel=3)
            return _copy(result)
        recorder: list = []
        token = _RECORDERS.set((*_RECORDERS.get(), recorder))
        try:
            result = func(*args, **kwargs)
        finally:
            _RECORDERS.reset(token)
        # sized before copying: a result too large to keep is not copied
        size = _nbytes(result)
        with self._lock:
            self.misses += 1
        if size > self.max_bytes:
            return result
        stored = _copy(result)
        with self._lock:
            self._entries[key] = (stored, tuple(recorder), size)
            total = sum(s for _, _, s in self._entries.values())
            while total > self.max_bytes and len(self._entries) > 1:
                _, (_, _, old) = self._entries.popitem(last=False)
                total -= old
        return result


def _n_rows(value) -> float:
    """Rows of a frame argument; infinity for anything else."""
    if isinstance(value, pl.DataFrame) or _is_pandas(value):
        return len(value)
    return float("inf")


class _CachedFunction:
    """``func`` bound to a :class:`FrameCache` (what ``cache`` returns)."""

    def __init__(self, memory: FrameCache, func, ignore):
        self.memory = memory
        self.func = func
        # log messages do not change what a pipeline step computes
        self.ignore = {*(ignore or ()), "message_clsname", "message"}
        self.__wrapped__ = func

    def __call__(self, *args, **kwargs):
        return self.memory._call(self.func, self.ignore, args, kwargs)
