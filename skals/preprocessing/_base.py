"""Shared pieces of the dataframe transformers."""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict

import numpy as np
import polars as pl

from .._frame import schema_of
from .._set_output import FrameOutputMixin
from .._warnings import warn


class FrameTransformerMixin(FrameOutputMixin):
    """Tags and bookkeeping for transformers whose input is an event log.

    The input is a dataframe (polars or pandas), not a 2-D numeric array, so
    the tags say ``two_d_array=False``: scikit-learn's estimator checks then run
    only their data-free checks, and skals' own battery covers the rest.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.requires_fit = True
        tags.target_tags.required = False
        return tags

    def fit_transform(self, X, y=None, **fit_params):
        """Fit to ``X`` and transform it, reusing an identical earlier call.

        The result is cached per process (``_cached_fit_transform`` in
        ``skals/preprocessing/_base.py``): in a grid search, candidates that
        differ only in later steps' parameters share one preprocessing per
        fold.

        Parameters
        ----------
        X : polars DataFrame or LazyFrame, or pandas DataFrame
            Input of the step.
        y : None
            Ignored.
        **fit_params : dict
            Passed to ``fit``.

        Returns
        -------
        X_out : object
            What :meth:`transform` returns after :meth:`fit`.

        Notes
        -----
        The key is the step's class, its parameters and a content
        fingerprint of ``X`` (an output of this cache is recognised by
        identity, any other eager polars frame is hashed row by row), so a
        hit is only possible for equal data and equal parameters, under
        ``clone`` and ``n_jobs`` alike (each worker process has its own
        cache). A hit restores the fitted attributes and re-emits the first
        call's warnings. Only eager polars frames of at least
        ``CACHE_MIN_ROWS`` (50,000) rows are cached, at most
        ``CACHE_MAX_BYTES`` (1 GiB) per process; larger frames are neither
        hashed nor kept. BENCHMARKS.md measures it against
        ``Pipeline(memory=...)``.
        """
        if fit_params:
            return self.fit(X, y, **fit_params).transform(X)
        return _cached_fit_transform(self, X, y)

    def _remember_columns(self, df) -> None:
        names = schema_of(df).names()
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)


# --------------------------------------------------- fit_transform cache
#: Frames with fewer rows are not cached (the step is cheap).
CACHE_MIN_ROWS = 50_000
#: Bytes of cached results kept per process (least recently used dropped).
CACHE_MAX_BYTES = 1 << 30
_cache: OrderedDict = OrderedDict()  # key -> (output, fitted state, warnings)
_cache_lock = threading.Lock()


def _nbytes(obj) -> int:
    """Approximate size of a step's output."""
    if isinstance(obj, pl.DataFrame):
        return obj.estimated_size()
    matrix = getattr(obj, "matrix", None)
    if matrix is not None:  # an InteractionMatrix
        size = matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
        for name in ("row_ids", "row_keys", "row_segments", "item_stats"):
            part = getattr(obj, name, None)
            if part is not None:
                size += part.estimated_size()
        return size
    return CACHE_MAX_BYTES + 1  # unknown: never cached


def _fingerprint(X) -> str | None:
    """Content fingerprint of an eager polars frame; None if not cacheable.

    An output of this cache is recognised by identity and named by the key
    that made it (no pass over the data); any other frame is hashed row by
    row (``hash_rows``, order-sensitive) with its schema.
    """
    if not isinstance(X, pl.DataFrame) or X.height < CACHE_MIN_ROWS:
        return None
    with _cache_lock:
        for key, (output, _, _) in _cache.items():
            if output is X:
                return "out:" + key
    if X.estimated_size() > CACHE_MAX_BYTES:
        return None
    try:
        rows = X.hash_rows(seed=0).to_numpy()
    except Exception:  # e.g. object columns: not hashable, not cached
        return None
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((X.height, list(X.schema.items()))).encode())
    h.update(rows.tobytes())
    return "in:" + h.hexdigest()


def _cached_fit_transform(step, X, y=None):
    """``step.fit(X).transform(X)``, cached per process.

    The key is the step's class and parameters (``get_params``) and the
    content fingerprint of ``X``; a hit restores the fitted attributes (the
    names ending in ``_``) and the warnings of the first call, and returns
    the same output object (polars frames are immutable; an
    :class:`InteractionMatrix` is shared, and the recommenders do not
    modify it). This is what makes a grid search over ALS parameters skip
    the preprocessing its candidates share, without ``Pipeline(memory=...)``
    (which hashes every step's input by pickling it, and writes every
    output to disk). Only eager polars frames of at least
    :data:`CACHE_MIN_ROWS` rows are cached, at most :data:`CACHE_MAX_BYTES`
    in total; the key holds parameter values and content, so ``clone`` and
    ``n_jobs`` (each worker process has its own cache) need nothing special.
    """
    fp = _fingerprint(X)
    if fp is None:
        return step.fit(X, y).transform(X)
    params = sorted(step.get_params(deep=False).items())
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((type(step).__module__, type(step).__qualname__, params)).encode())
    h.update(fp.encode())
    key = h.hexdigest()
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is not None:
        output, state, caught = hit
        vars(step).update(state)
        for w in caught:
            warn(w.message, w.category)
        return output
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output = step.fit(X, y).transform(X)
    for w in caught:
        warn(w.message, w.category)
    size = _nbytes(output)
    if size <= CACHE_MAX_BYTES:
        state = {k: v for k, v in vars(step).items() if k.endswith("_") and k[0] != "_"}
        with _cache_lock:
            _cache[key] = (output, state, list(caught))
            total = sum(_nbytes(v[0]) for v in _cache.values())
            while total > CACHE_MAX_BYTES and len(_cache) > 1:
                _, (old, _, _) = _cache.popitem(last=False)
                total -= _nbytes(old)
    return output
