"""Successive halving whose resource is the number of whole training sessions."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import polars as pl
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingGridSearchCV, check_cv
from sklearn.utils import check_random_state

from .._frame import check_columns, reject_lazy, to_polars

__all__ = ["SessionHalvingGridSearchCV", "SessionSubsampleSplit"]


def _session_codes(X, session_col: str, where: str) -> np.ndarray:
    """0-based rank of each row's session id among the distinct ids (sorted)."""
    reject_lazy(X, what=f"{where}.split")
    df = to_polars(X, allow_lazy=False)
    check_columns(df, [session_col], where=where)
    col = df.get_column(session_col)
    n_null = col.null_count()
    if n_null:
        raise ValueError(
            f"{where}: {n_null} row(s) have a null {session_col!r}; every event "
            "needs a session to be sampled with it."
        )
    return (col.rank("dense").cast(pl.Int64) - 1).to_numpy()


def _int_seed(random_state) -> int:
    """One int seed from ``random_state`` (an int passes through)."""
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class SessionSubsampleSplit:
    """Train each fold of ``cv`` on a random sample of whole sessions.

    Wraps a cross-validator: each training set of ``cv`` is cut down to the
    events of ``n_sessions`` of its sessions, drawn at random, and every
    event that the fold trains on of a drawn session is kept (a session
    never loses events to the sample). Test sets are passed through whole,
    so every candidate and every sample size is scored on the same held-out
    sessions.

    Sessions are drawn in one random order of all the sessions of ``X``
    (fixed by ``random_state``), and a fold keeps the first ``n_sessions``
    of its own sessions in that order. So with an int ``random_state`` the
    sample of ``n`` sessions is contained in the sample of ``m > n``
    sessions, and the draw does not depend on the row order of ``X``.

    Parameters
    ----------
    cv : cross-validation generator or int
        The splitter to wrap, such as
        :class:`~skals.model_selection.SessionHoldoutSplit`; an int means
        scikit-learn's ``check_cv(cv)`` (which slices events, not sessions).
    n_sessions : int or None, default=None
        Sessions to train on per fold. ``None``, or a number at least the
        fold's number of sessions, keeps the fold's training set unchanged.
    session_col : str, default="session_id"
        Column holding the session id.
    random_state : int, RandomState instance or None, default=None
        Order in which sessions are drawn. Pass an int for reproducible
        and nested samples.

    See Also
    --------
    SessionHalvingGridSearchCV : Successive halving with this splitter.

    Examples
    --------
    >>> import polars as pl
    >>> from skals.model_selection import SessionHoldoutSplit, SessionSubsampleSplit
    >>> events = pl.DataFrame(
    ...     {
    ...         "session_id": [1, 1, 2, 3, 3, 3, 4, 5],
    ...         "timestamp_local": [1, 2, 3, 4, 5, 6, 7, 8],
    ...     }
    ... )
    >>> cv = SessionSubsampleSplit(
    ...     SessionHoldoutSplit(n_splits=1, test_size=1), n_sessions=2, random_state=0
    ... )
    >>> for train, test in cv.split(events):
    ...     print("train:", train, "test:", test)
    train: [0 1 3 4 5] test: [7]
    """

    def __init__(
        self, cv, n_sessions=None, *, session_col="session_id", random_state=None
    ):
        self.cv = cv
        self.n_sessions = n_sessions
        self.session_col = session_col
        self.random_state = random_state

    def __repr__(self) -> str:
        return (
            f"SessionSubsampleSplit({self.cv!r}, n_sessions={self.n_sessions!r}, "
            f"session_col={self.session_col!r}, random_state={self.random_state!r})"
        )

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splitting iterations of the wrapped ``cv``.

        Parameters
        ----------
        X, y, groups : object
            Passed to the wrapped splitter.

        Returns
        -------
        n_splits : int
            The number of folds.
        """
        return check_cv(self.cv).get_n_splits(X, y, groups)

    def split(self, X, y=None, groups=None):
        """Generate indices to split the event log into training and test set.

        Parameters
        ----------
        X : polars.DataFrame or pandas.DataFrame
            The event log, with a ``session_col`` column.
        y : object
            Passed to the wrapped splitter.
        groups : object
            Passed to the wrapped splitter.

        Yields
        ------
        train : ndarray of int
            Row positions of the training events of the sampled sessions.
        test : ndarray of int
            Row positions of the test events, as the wrapped splitter gives
            them.
        """
        n = self.n_sessions
        if n is not None and (
            isinstance(n, bool) or not isinstance(n, Integral) or n < 1
        ):
            raise ValueError(f"n_sessions must be None or an integer >= 1, got {n!r}.")
        code = _session_codes(X, self.session_col, type(self).__name__)
        n_all = int(code.max()) + 1 if code.size else 0
        # rank of each session in one random order of all sessions
        priority = np.empty(n_all, dtype=np.int64)
        priority[check_random_state(self.random_state).permutation(n_all)] = np.arange(
            n_all
        )
        for train, test in check_cv(self.cv).split(X, y, groups):
            train = np.asarray(train)
            if n is None:
                yield train, test
                continue
            present = np.unique(code[train])
            if n >= present.size:
                yield train, test
                continue
            keep = np.zeros(n_all, dtype=bool)
            keep[present[np.argsort(priority[present], kind="stable")[:n]]] = True
            yield train[keep[code[train]]], test


class SessionHalvingGridSearchCV(HalvingGridSearchCV):
    """Successive halving over a grid, with whole sessions as the resource.

    scikit-learn's :class:`~sklearn.model_selection.HalvingGridSearchCV`
    with ``resource="n_samples"`` trains its early rungs on a random sample
    of events: sessions lose events, so the confidences change and held-out
    sessions lose the events that the reveal-the-first-n protocol needs. Here
    the default ``resource="n_sessions"`` makes each rung train every
    candidate on a random sample of **whole sessions** of each fold
    (:class:`SessionSubsampleSplit`), ``factor`` times more sessions per
    rung, while the test sessions stay whole and the same in every rung.
    Samples are nested: a rung's sessions contain the previous rung's.

    Any other ``resource`` (an estimator parameter such as
    ``"implicitalsrecommender__iterations"``) behaves exactly as in
    scikit-learn.

    A :class:`~skals.FrameCache` given as the pipeline's ``memory`` shares
    the preprocessing of a fold between the candidates of a rung. When a
    rung is done its entries are dropped (no later rung, nor the refit,
    trains on the same sample of sessions: at the challenge's scale they
    were 0.7 GB held to the end); the entries the cache held before the
    search stay.

    Parameters
    ----------
    estimator : estimator object
        A skals pipeline (unifier, encoder, builder, recommender).
    param_grid : dict or list of dict
        The grid, as for :class:`~sklearn.model_selection.GridSearchCV`.
    factor : int or float, default=3
        Proportion of candidates kept per rung (``1 / factor``), and growth of
        the number of sessions per rung.
    resource : str, default="n_sessions"
        ``"n_sessions"``, or a parameter of ``estimator``.
    max_resources : int or "auto", default="auto"
        Largest number of sessions per fold. ``"auto"`` is the number of
        distinct sessions in ``X``: the last rung then trains on every
        session of each fold (the folds hold fewer than ``X``).
    min_resources : int, "exhaust" or "smallest", default="exhaust"
        Sessions of the first rung; "exhaust" chooses it so that the last rung
        uses about ``max_resources``, "smallest" starts at 1.
    aggressive_elimination : bool, default=False
        As in scikit-learn.
    cv : cross-validation generator or int, default=5
        Use :class:`~skals.model_selection.SessionHoldoutSplit`.
    scoring : callable or None, default=None
        A skals scorer such as ``make_session_scorer("ndcg")``.
    refit : bool, default=True
        Refit the best candidate on all of ``X``.
    error_score : "raise" or float, default=np.nan
        As in scikit-learn.
    return_train_score : bool, default=False
        Score the training sets too (costly with session scorers; off here,
        unlike scikit-learn's default).
    random_state : int, RandomState instance or None, default=None
        Which sessions each rung draws (one draw per ``fit``).
    n_jobs : int or None, default=None
        Parallel fits, as in scikit-learn.
    verbose : int, default=0
        As in scikit-learn.
    session_col : str, default="session_id"
        Column holding the session id.

    Attributes
    ----------
    n_resources_ : list of int
        Sessions per fold of each rung (a fold with fewer trains on all of
        its sessions).
    cv_results_, best_params_, best_score_, best_estimator_ : see \
scikit-learn
        The rung of each row is ``cv_results_["iter"]``.

    See Also
    --------
    SessionSubsampleSplit : The per-rung splitter.
    sklearn.model_selection.HalvingGridSearchCV : The search this extends.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from skals import (ConfidenceEncoder, ImplicitALSRecommender,
    ...                    InteractionMatrixBuilder, PseudoUserUnifier)
    >>> from skals.datasets import make_sessions
    >>> from skals.metrics import make_session_scorer
    >>> from skals.model_selection import (SessionHalvingGridSearchCV,
    ...                                    SessionHoldoutSplit)
    >>> events = make_sessions(600, n_items=60, random_state=0)
    >>> pipe = make_pipeline(
    ...     PseudoUserUnifier(), ConfidenceEncoder(), InteractionMatrixBuilder(),
    ...     ImplicitALSRecommender(factors=8, iterations=3, random_state=0))
    >>> search = SessionHalvingGridSearchCV(
    ...     pipe, {"implicitalsrecommender__regularization": [0.01, 0.1, 1.0]},
    ...     cv=SessionHoldoutSplit(n_splits=2, test_size=60),
    ...     scoring=make_session_scorer("ndcg"), refit=False, random_state=0,
    ... ).fit(events)
    >>> search.n_candidates_, search.n_resources_
    ([3, 1], [200, 600])
    """

    _parameter_constraints: dict = {
        **HalvingGridSearchCV._parameter_constraints,
        "session_col": [str],
    }

    def __init__(
        self,
        estimator,
        param_grid,
        *,
        factor=3,
        resource="n_sessions",
        max_resources="auto",
        min_resources="exhaust",
        aggressive_elimination=False,
        cv=5,
        scoring=None,
        refit=True,
        error_score=np.nan,
        return_train_score=False,
        random_state=None,
        n_jobs=None,
        verbose=0,
        session_col="session_id",
    ):
        super().__init__(
            estimator,
            param_grid,
            factor=factor,
            resource=resource,
            max_resources=max_resources,
            min_resources=min_resources,
            aggressive_elimination=aggressive_elimination,
            cv=cv,
            scoring=scoring,
            refit=refit,
            error_score=error_score,
            return_train_score=return_train_score,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.session_col = session_col

    def _check_input_parameters(self, X, y, split_params):
        if self.resource != "n_sessions":
            return super()._check_input_parameters(X, y, split_params)
        if "n_sessions" in self.estimator.get_params():
            raise ValueError(
                "resource='n_sessions' is the number of training sessions, but "
                "the estimator has a parameter named 'n_sessions': rename it or "
                "pass its full name as resource."
            )
        code = _session_codes(X, self.session_col, type(self).__name__)
        n_sessions = int(code.max()) + 1 if code.size else 0
        minimum = self.min_resources
        self.min_resources_ = 1 if minimum in ("smallest", "exhaust") else minimum
        maximum = self.max_resources
        self.max_resources_ = n_sessions if maximum == "auto" else maximum
        if self.min_resources_ > self.max_resources_:
            raise ValueError(
                f"min_resources_={self.min_resources_} is greater than "
                f"max_resources_={self.max_resources_} (sessions)."
            )
        # one seed per fit: every rung draws from the same order of sessions
        self._session_seed = _int_seed(self.random_state)

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        # scikit-learn >= 1.9 passes callback_ctx (found by signature)
        kwargs = {} if callback_ctx is None else {"callback_ctx": callback_ctx}
        if self.resource != "n_sessions":
            return super()._run_search(evaluate_candidates, **kwargs)

        # the estimator's FrameCaches: a rung's entries are of its own
        # samples of sessions, which no later rung (nor the refit) trains
        # on; they are dropped when the rung is done, the entries the
        # caches held before the search are kept
        caches = _frame_caches(self.estimator)
        before = [cache._keys() for cache in caches]

        def forget_the_rung():
            for cache, keys in zip(caches, before, strict=True):
                cache._keep_only(keys)

        def evaluate(candidate_params, cv, **options):
            forget_the_rung()
            # the parent sets candidate["n_sessions"] on its own copies: the
            # number of sessions goes to the splitter, not to the estimator
            sizes = {candidate.pop("n_sessions") for candidate in candidate_params}
            (n_sessions,) = sizes
            cv = SessionSubsampleSplit(
                cv,
                n_sessions,
                session_col=self.session_col,
                random_state=self._session_seed,
            )
            return evaluate_candidates(candidate_params, cv, **options)

        try:
            return super()._run_search(evaluate, **kwargs)
        finally:
            forget_the_rung()


def _frame_caches(estimator) -> list:
    """The distinct :class:`~skals.FrameCache` objects among the parameters."""
    from ..preprocessing._cache import FrameCache

    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    found = {}
    for value in params.values():
        if isinstance(value, FrameCache):
            found[id(value)] = value
    return list(found.values())
