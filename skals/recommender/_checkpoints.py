"""FactorCheckpoints: fitted ALS factors kept across clones, to continue them."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from numbers import Integral

import numpy as np

__all__ = ["FactorCheckpoints"]


def matrix_fingerprint(matrix) -> str:
    """Hash of a CSR matrix's shape and arrays (its content, not its identity)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(matrix.shape).encode())
    for a in (matrix.indptr, matrix.indices, matrix.data):
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


class FactorCheckpoints:
    """In-memory store of fitted ALS factors, shared by a search's clones.

    Pass one as ``ImplicitALSRecommender(warm_start=FactorCheckpoints())``.
    scikit-learn's searches clone the estimator for every fit, so a plain
    ``warm_start=True`` has nothing to continue from; this store survives
    ``clone`` (a deep copy returns the store itself), and a fit that finds
    the factors of the same matrix (by content), the same parameters and the
    same int seed after fewer sweeps continues from them. The result is the
    same as a fit from scratch, so a ``HalvingGridSearchCV`` with
    ``resource="implicitalsrecommender__iterations"`` gives the same
    ``cv_results_``, without re-running the sweeps of the earlier rungs.

    Only the checkpoint with the most sweeps is kept per matrix and
    parameters; the least recently used ones are dropped beyond
    ``max_bytes``. The store is per process: pickled (for ``n_jobs`` worker
    processes) it arrives empty, so each worker keeps its own.

    Parameters
    ----------
    max_bytes : int, default=2**31
        Memory budget of the kept factors (2 GiB).

    Attributes
    ----------
    nbytes : int
        Bytes held now.

    Examples
    --------
    >>> import numpy as np
    >>> from skals import ImplicitALSRecommender
    >>> from skals.recommender import FactorCheckpoints
    >>> X = np.kron(np.eye(2), np.ones((3, 3)))
    >>> store = FactorCheckpoints()
    >>> a = ImplicitALSRecommender(factors=2, iterations=2, random_state=0,
    ...                            warm_start=store).fit(X)
    >>> b = ImplicitALSRecommender(factors=2, iterations=5, random_state=0,
    ...                            warm_start=store).fit(X)  # 3 more sweeps
    >>> c = ImplicitALSRecommender(factors=2, iterations=5, random_state=0).fit(X)
    >>> np.array_equal(b.user_factors_, c.user_factors_), len(store)
    (True, 1)
    """

    def __init__(self, max_bytes=2**31):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, Integral):
            raise ValueError(f"max_bytes must be an integer, got {max_bytes!r}.")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict = OrderedDict()
        # a search with threads (n_jobs and the threading backend) shares it
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"FactorCheckpoints(max_bytes={self.max_bytes})"

    def __deepcopy__(self, memo):
        return self  # clone() deep-copies parameters: keep sharing

    def __reduce__(self):
        return (type(self), (self.max_bytes,))  # arrives empty in workers

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(u.nbytes + i.nbytes for _, u, i in self._entries.values())

    def get(self, key, max_iter: int):
        """``(n_iter, user_factors, item_factors)`` with ``n_iter <= max_iter``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] > max_iter:
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key, n_iter: int, user_factors, item_factors) -> None:
        """Keep the factors after ``n_iter`` sweeps (unless more are kept)."""
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old[0] >= n_iter:
                return
            self._entries[key] = (n_iter, user_factors, item_factors)
            self._entries.move_to_end(key)
            while self._entries and self.nbytes > self.max_bytes:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every checkpoint."""
        with self._lock:
            self._entries.clear()
