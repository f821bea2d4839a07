"""A pipeline that stops ALS early, on a validation set of whole sessions."""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from numbers import Integral, Real

import numpy as np
import polars as pl
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_memory

from .._frame import to_polars
from ..preprocessing._cache import _frame_fingerprint, _Uncacheable, _update
from ._halving import _session_codes

__all__ = ["EarlyStoppingPipeline", "make_early_stopping_pipeline"]

#: where the best stage's arrays wait while later stages sweep
KEEP_BEST = ("memory", "disk")


class EarlyStoppingPipeline(Pipeline):
    """A skals pipeline whose ALS sweeps stop when a validation score stalls.

    With ``early_stopping=True``, :meth:`fit` holds out a random
    ``validation_fraction`` of the **whole sessions** of the event log, fits
    the transformers on the other events, and fits the final recommender
    ``validation_interval`` sweeps at a time (``warm_start``: each stage
    continues the previous one exactly), scoring the pipeline on the
    held-out sessions after each stage with the session protocol (by default
    ``make_session_scorer("ndcg")``: first 3 events revealed, NDCG@5 on
    carts). It stops when the score has not improved by at least ``tol`` for
    ``n_iter_no_change`` stages in a row, or at the recommender's
    ``iterations``. The model keeps the factors of the stage that scored
    best (as scikit-learn's ``MLPClassifier`` keeps its best
    weights), and is trained without the validation sessions, as
    scikit-learn's estimators with ``early_stopping`` are.

    The names are scikit-learn's (``HistGradientBoostingClassifier``,
    ``MLPClassifier``). Early stopping lives on the pipeline, not on the
    recommender, because the session protocol needs the raw events of the
    validation sessions (their order and cart column), and the recommender
    only sees the confidence matrix.

    Parameters
    ----------
    steps : list of (str, estimator)
        As for :class:`~sklearn.pipeline.Pipeline`; the last step must have
        ``iterations`` and ``warm_start`` parameters
        (:class:`~skals.ImplicitALSRecommender`).
    early_stopping : bool, default=True
        ``False`` makes :meth:`fit` the plain pipeline's (all events, the
        recommender's ``iterations``).
    validation_fraction : float or int, default=0.1
        Share of the sessions held out (a float in (0, 1)), or their number
        (an int).
    n_iter_no_change : int, default=2
        Stages without an improvement of at least ``tol`` before stopping.
    tol : float, default=1e-4
        Smallest improvement of the score that counts.
    validation_interval : int, default=1
        ALS sweeps per stage (between two scorings).
    scoring : callable or None, default=None
        ``scorer(pipeline, events) -> float``, higher is better; ``None``
        means ``make_session_scorer("ndcg", schema=schema)`` (the scorer
        reads the other columns from the pipeline's steps).
    session_col : str or None, default=None
        Column holding the session id. ``None``: the ``schema``'s
        ``session``, else the one the pipeline's steps name
        (:func:`~skals.schema.schema_of`).
    schema : Schema or None, default=None
        The event log's column names (:class:`~skals.schema.Schema`), as
        given to :func:`~skals.schema.make_recommender_pipeline` (which
        passes it with ``early_stopping=``): the held-out sessions and the
        default scorer use it.
    random_state : int, RandomState instance or None, default=None
        Which sessions are held out.
    keep_best : {"memory", "disk"}, default="memory"
        Where the best stage's fitted arrays wait while a later stage
        sweeps (the later stage needs arrays of its own, since it may score
        worse). ``"memory"`` keeps them as they are: a second set of factors
        in memory (2.3 GB of user factors for 4.5M sessions and 128
        factors). ``"disk"`` writes them to a temporary directory
        (``tempfile.TemporaryDirectory``, under ``TMPDIR``) and reads them back if
        that stage stays the best; the directory is removed when ``fit``
        returns. The fitted model is the same either way.
    transform_input, memory, verbose
        As for :class:`~sklearn.pipeline.Pipeline`. With ``memory`` (for
        example :class:`~skals.FrameCache`), the transformers' work on the
        training sessions is cached as the plain pipeline caches it, so
        candidates of a search that differ only in the recommender's
        parameters preprocess each fold once.

    Attributes
    ----------
    n_iter_ : int
        ALS sweeps of the kept recommender (the best stage's).
    best_validation_score_ : float
        Its score on the validation sessions (NaN when no stage had a
        score: then the last stage is kept).
    validation_scores_ : ndarray of shape (n_stages,)
        Score on the validation sessions after each stage (including the
        stages after the best one, which are not kept).
    validation_iterations_ : ndarray of shape (n_stages,)
        Sweeps done at each of those scorings.

    Examples
    --------
    >>> from skals import (ConfidenceEncoder, ImplicitALSRecommender,
    ...                    InteractionMatrixBuilder, PseudoUserUnifier)
    >>> from skals.datasets import make_sessions
    >>> from skals.model_selection import EarlyStoppingPipeline
    >>> events = make_sessions(600, n_items=60, random_state=0)
    >>> pipe = EarlyStoppingPipeline(
    ...     [("unifier", PseudoUserUnifier()), ("encoder", ConfidenceEncoder()),
    ...      ("builder", InteractionMatrixBuilder()),
    ...      ("als", ImplicitALSRecommender(factors=8, iterations=6, random_state=0))],
    ...     validation_interval=2, random_state=0,
    ... ).fit(events)
    >>> pipe.validation_iterations_
    array([2, 4, 6])
    >>> best = pipe.validation_scores_.argmax()
    >>> bool(pipe.n_iter_ == pipe[-1].n_iter_ == pipe.validation_iterations_[best])
    True
    """

    def __init__(
        self,
        steps,
        *,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=2,
        tol=1e-4,
        validation_interval=1,
        scoring=None,
        session_col=None,
        schema=None,
        random_state=None,
        keep_best="memory",
        transform_input=None,
        memory=None,
        verbose=False,
    ):
        super().__init__(
            steps, transform_input=transform_input, memory=memory, verbose=verbose
        )
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.validation_interval = validation_interval
        self.scoring = scoring
        self.session_col = session_col
        self.schema = schema
        self.random_state = random_state
        self.keep_best = keep_best

    def _session_col(self) -> str:
        """``session_col``, else the schema's, else the steps' session column."""
        from ..schema import Schema, schema_of

        if self.schema is not None and not isinstance(self.schema, Schema):
            raise TypeError(
                "EarlyStoppingPipeline(schema=...) takes a skals Schema, got "
                f"{type(self.schema).__name__}."
            )
        if self.session_col is not None:
            if self.schema is not None and self.session_col != self.schema.session:
                raise ValueError(
                    f"EarlyStoppingPipeline: session_col={self.session_col!r} "
                    f"disagrees with the schema's session={self.schema.session!r}; "
                    "give it once."
                )
            return self.session_col
        if self.schema is not None:
            return self.schema.session
        return schema_of(self).session

    def _check_early_stopping(self):
        def positive_int(name):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}.")

        positive_int("n_iter_no_change")
        positive_int("validation_interval")
        f = self.validation_fraction
        if isinstance(f, bool) or not isinstance(f, Real):
            bad = True
        elif isinstance(f, Integral):
            bad = f < 1
        else:
            bad = not 0 < f < 1
        if bad:
            raise ValueError(
                "validation_fraction must be a float in (0, 1) or an integer "
                f">= 1 (a number of sessions), got {f!r}."
            )
        if isinstance(self.tol, bool) or not isinstance(self.tol, Real):
            raise ValueError(f"tol must be a real number, got {self.tol!r}.")
        if not (isinstance(self.keep_best, str) and self.keep_best in KEEP_BEST):
            raise ValueError(
                f"keep_best must be one of {sorted(KEEP_BEST)}, got {self.keep_best!r}."
            )
        final = self._final_estimator
        params = final.get_params() if hasattr(final, "get_params") else {}
        if not {"iterations", "warm_start"} <= set(params):
            raise TypeError(
                "EarlyStoppingPipeline: the last step must have 'iterations' and "
                f"'warm_start' parameters (ImplicitALSRecommender); got "
                f"{type(final).__name__}."
            )

    def _held_out(self, events) -> np.ndarray:
        """Boolean mask of the rows of the validation sessions."""
        code = _session_codes(events, self._session_col(), type(self).__name__)
        n = int(code.max()) + 1 if code.size else 0
        f = self.validation_fraction
        n_val = int(f) if isinstance(f, Integral) else int(np.ceil(f * n))
        if not 1 <= n_val < n:
            raise ValueError(
                f"EarlyStoppingPipeline: validation_fraction={f!r} holds out "
                f"{n_val} of {n} sessions; at least one must remain on each side."
            )
        held = np.zeros(n, dtype=bool)
        held[check_random_state(self.random_state).permutation(n)[:n_val]] = True
        return held[code]

    def _split_sessions(self, events):
        """(training events, validation events): whole sessions on each side."""
        mask = self._held_out(events)
        return events.filter(~mask), events.filter(mask)

    def fit(self, X, y=None, **params):
        """Fit the pipeline, stopping the ALS sweeps early (see the class docs).

        Parameters
        ----------
        X : polars.DataFrame or pandas.DataFrame
            The event log.
        y : None
            Ignored.
        **params : dict
            With ``early_stopping=False``, passed to
            :meth:`sklearn.pipeline.Pipeline.fit`; otherwise not supported.

        Returns
        -------
        self : EarlyStoppingPipeline
            Fitted pipeline.
        """
        if not self.early_stopping:
            super().fit(X, y, **params)
            final = self._final_estimator
            self.n_iter_ = getattr(final, "n_iter_", None)
            self.validation_scores_ = np.array([])
            self.validation_iterations_ = np.array([], dtype=int)
            return self
        if params:
            raise TypeError(
                f"EarlyStoppingPipeline.fit: fit parameters {sorted(params)!r} are "
                "not supported with early_stopping=True."
            )
        self._check_early_stopping()
        if self.scoring is None:
            from ..metrics import make_session_scorer

            scorer = make_session_scorer("ndcg", schema=self.schema)
        else:
            scorer = self.scoring
        events = to_polars(X, allow_lazy=False)
        held = self._held_out(events)
        validation = events.filter(held)
        Xt = self._fit_transformers(events, ~held)
        del events
        final = self._final_estimator
        total, warm = final.iterations, final.warm_start
        stages = list(range(self.validation_interval, total, self.validation_interval))
        stages.append(total)
        scores, done = [], []
        best, stalled, kept, kept_k = -np.inf, 0, None, None
        spill = _DiskState() if self.keep_best == "disk" else None
        try:
            for i, k in enumerate(stages):
                if i > 0 and spill is not None and kept_k == done[-1]:
                    # the best stage's arrays to disk: this stage may sweep
                    # in them
                    kept = spill.save(kept)
                # the first stage starts from scratch, the others continue
                final.set_params(iterations=k, warm_start=i > 0)
                if i > 0 and hasattr(final, "_more_sweeps"):
                    # the same Xt: only more sweeps; in the current arrays
                    # unless they are the kept best stage's
                    shared = kept_k == done[-1] and spill is None
                    final._more_sweeps(Xt, in_place=not shared)
                else:
                    final.fit(Xt)
                score = float(scorer(self, validation))
                scores.append(score)
                done.append(k)
                stalled = stalled + 1 if score < best + self.tol else 0
                if score > best:
                    best = score
                    # the best stage's fitted state (factors, fallback, ...);
                    # a model whose warm fits assign new arrays (never
                    # writing into the previous ones) is kept without a copy
                    kept = None if k == stages[-1] else _fitted_state(final)
                    kept_k = k
                if stalled >= self.n_iter_no_change:
                    break
            if kept_k is None:
                # no stage scored (NaN throughout): the last one stays
                kept_k, best = done[-1], np.nan
            elif kept_k != done[-1]:
                vars(final).clear()  # the last stage's arrays go first
                vars(final).update(spill.load(kept) if spill else kept)
        finally:
            # the user's parameters as they were; the fitted state keeps k
            final.set_params(iterations=total, warm_start=warm)
            if spill is not None:
                spill.cleanup()
        self.n_iter_ = kept_k
        self.best_validation_score_ = best
        self.validation_scores_ = np.array(scores)
        self.validation_iterations_ = np.array(done)
        return self

    def _fit_transformers(self, events, keep):
        """Fit the transformers on the rows ``keep`` of ``events``, return the output.

        The training sessions are not copied out of the log when the first
        transformer maps each session on its own (it declares
        ``_transforms_sessions_alone``, as :class:`~skals.PseudoUserUnifier`
        does: its fit learns nothing from the rows, and a session's output
        rows depend on that session's rows only). It then transforms the
        whole log, and the next transformer gets a lazy filter of that
        output (nothing of the log is copied; the filter runs in the next
        step's own query). Otherwise the training rows are filtered out
        first, as a copy.

        With ``memory``, a step whose input is a plain frame is cached on its
        content, as :class:`~sklearn.pipeline.Pipeline` does; the steps after
        the lazy filter are cached on its provenance: the content
        fingerprint of ``events``, the mask, and the classes and parameters
        of the steps before.
        """
        memory = check_memory(self.memory)
        todo = [
            (i, name, step)
            for i, (name, step) in enumerate(self.steps[:-1])
            if step is not None and step != "passthrough"
        ]
        source = None
        if todo and getattr(type(todo[0][2]), "_transforms_sessions_alone", False):
            i, name, step = todo.pop(0)
            X = self._fit_one(memory, i, name, step, events)
            X = to_polars(X).lazy().filter(pl.Series(keep))
            source = _provenance(events, keep, step)
        else:
            X = events.filter(keep)
        for i, name, step in todo:
            X = self._fit_one(memory, i, name, step, X, source)
            if source is not None:
                source = _chain(source, step)
        return X

    def _fit_one(self, memory, i, name, step, X, source=None):
        """Fit step ``i`` on ``X`` (through ``memory``), return its output."""
        if self.memory is None:
            return step.fit_transform(X)
        if source is None:
            cached = memory.cache(_fit_transform_one)
            X, fitted = cached(clone(step), X)
        elif source is _UNKEYED:
            # an input without a fingerprint: nothing to key it on
            fitted = clone(step)
            X = fitted.fit_transform(X)
        else:
            # as scikit-learn's Pipeline: a clone is fitted (or fetched)
            cached = memory.cache(_fit_transform_from, ignore=["X"])
            X, fitted = cached(clone(step), X, source)
        self.steps[i] = (name, fitted)
        return X


#: the provenance of an input without a content fingerprint
_UNKEYED = object()


def _provenance(events, keep, step):
    """Key of ``step``'s output on the rows ``keep`` of ``events``."""
    h = hashlib.blake2b(digest_size=20)
    try:
        _frame_fingerprint(events, h)
    except _Uncacheable:
        return _UNKEYED
    h.update(np.packbits(keep).tobytes())
    return _chain(h.hexdigest(), step)


def _chain(source, step):
    """Key of ``step``'s output on an input whose key is ``source``."""
    if source is _UNKEYED:
        return source
    h = hashlib.blake2b(source.encode(), digest_size=20)
    try:
        _update(h, step)  # the class and parameters, as FrameCache keys a step
    except _Uncacheable:
        return _UNKEYED
    return h.hexdigest()


def _fitted_state(estimator) -> dict:
    """The estimator's attributes, to put back after later (warm) fits.

    A shallow copy when the class declares ``_warm_fit_keeps_arrays`` (its
    warm-started fits replace every fitted attribute with a new object, as
    :class:`~skals.ImplicitALSRecommender`'s does: the factors of the best
    stage are then not copied a second time); a deep copy otherwise.
    """
    if getattr(type(estimator), "_warm_fit_keeps_arrays", False):
        return dict(vars(estimator))
    return copy.deepcopy(vars(estimator))


class _DiskState:
    """A fitted state's numeric arrays in a temporary directory, and back.

    For ``EarlyStoppingPipeline(keep_best="disk")``: :meth:`save` writes
    every numeric array of a state dict (``vars`` of an estimator) with
    :func:`numpy.save` and returns the dict with the arrays replaced by
    their files; :meth:`load` reads them back (``allow_pickle=False``:
    nothing in the files runs). Object arrays and other values stay in
    memory.
    """

    def __init__(self):
        self._dir = None

    def save(self, state: dict) -> dict:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="skals-best-stage-")
        for old in os.listdir(self._dir.name):  # an earlier best stage's
            os.remove(os.path.join(self._dir.name, old))
        out = {}
        for i, (name, value) in enumerate(state.items()):
            if isinstance(value, np.ndarray) and not value.dtype.hasobject:
                path = os.path.join(self._dir.name, f"{i}.npy")
                np.save(path, value, allow_pickle=False)
                value = _OnDisk(path)
            out[name] = value
        return out

    @staticmethod
    def load(state: dict) -> dict:
        return {
            name: np.load(v.path, allow_pickle=False) if isinstance(v, _OnDisk) else v
            for name, v in state.items()
        }

    def cleanup(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


class _OnDisk:
    """The file of an array that :class:`_DiskState` wrote."""

    __slots__ = ("path",)

    def __init__(self, path):
        self.path = path


def _fit_transform_one(transformer, X):
    """``transformer.fit_transform(X)`` and the fitted transformer (cacheable)."""
    return transformer.fit_transform(X), transformer


def _fit_transform_from(transformer, X, source):
    """:func:`_fit_transform_one`, cached on ``source`` (the key of ``X``)."""
    return transformer.fit_transform(X), transformer


def make_early_stopping_pipeline(
    recommender=None,
    *,
    schema=None,
    grain="session",
    validation_fraction=0.1,
    n_iter_no_change=2,
    tol=1e-4,
    validation_interval=1,
    scoring=None,
    random_state=None,
    keep_best="memory",
    memory=None,
    verbose=False,
    **encoder_params,
):
    """:func:`~skals.schema.make_recommender_pipeline`, stopping ALS early.

    The same four steps, every column name from ``schema``, in an
    :class:`EarlyStoppingPipeline` given that ``schema`` too: the held-out
    sessions and the default scorer use it, so the schema is named once.

    Parameters
    ----------
    recommender : estimator or None, default=None
        The final step, with ``iterations`` and ``warm_start``; ``None``
        means ``ImplicitALSRecommender()``.
    schema : Schema or None, default=None
        The event log's column names; ``None`` means ``Schema()``.
    grain : {"session", "key"}, default="session"
        The encoder's grain.
    validation_fraction, n_iter_no_change, tol, validation_interval, \
            scoring, random_state, keep_best
        As for :class:`EarlyStoppingPipeline`.
    memory, verbose
        As for :class:`sklearn.pipeline.Pipeline`.
    **encoder_params
        Other :class:`~skals.ConfidenceEncoder` parameters.

    Returns
    -------
    pipeline : EarlyStoppingPipeline

    Examples
    --------
    >>> from skals import ImplicitALSRecommender, Schema
    >>> from skals.model_selection import make_early_stopping_pipeline
    >>> pipe = make_early_stopping_pipeline(
    ...     ImplicitALSRecommender(), schema=Schema(session="visit"))
    >>> pipe.schema.session, pipe[0].session_col
    ('visit', 'visit')
    """
    from ..schema import make_recommender_pipeline

    pipe = make_recommender_pipeline(
        recommender, schema=schema, grain=grain, **encoder_params
    )
    return EarlyStoppingPipeline(
        pipe.steps,
        validation_fraction=validation_fraction,
        n_iter_no_change=n_iter_no_change,
        tol=tol,
        validation_interval=validation_interval,
        scoring=scoring,
        schema=schema,
        random_state=random_state,
        keep_best=keep_best,
        memory=memory,
        verbose=verbose,
    )
