"""BlendRecommender: a weighted sum of several recommenders' normalised scores."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.utils import Bunch
from sklearn.utils.validation import check_memory
from sklearn_compat.base import _fit_context

from .._sklearn import HasMethods, Interval, RealNotInt, StrOptions
from .._warnings import warn
from ._als import ImplicitALSRecommender
from ._base import BaseRecommender, quiet_answers, unsupported
from ._blend_auto import (
    VALIDATION_K,
    holdout_split,
    local_moves,
    mrr,
    ndcg,
    session_split,
    simplex_grid,
)
from ._blend_scores import normalise, own_normalised, sum_parts
from ._calls import BLEND, FALLBACK
from ._knn import SessionKNNRecommender
from ._popularity import FallbackMixin, PopularityRecommender
from ._repeat import (
    RepeatRecommender,
    eligible_columns,
    fill_ranked,
    row_mask,
    sparse_topk,
)
from ._rules import SequentialRulesRecommender


def default_session_estimators(random_state=None) -> list:
    """The components of ``BlendRecommender()``: the recommended session recipe.

    ALS (what the user's history says), session-kNN (what similar sessions
    went on to), repeat (the session's own items) and sequential rules (what
    followed the session's last items), each at its defaults. Sequential
    rules joined last (Unreleased): a fixed weight vector of the earlier
    three-part recipe, ``[1, 3, 2]``, is ``[1, 3, 2, 0]`` now.
    ``BlendRecommender(estimators=None)`` uses these; pass
    ``estimators=default_session_estimators()`` to tune their parameters
    (``als__factors``, ``knn__n_neighbors``, ...) in a grid.

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=None
        Seed of the ALS component.

    Returns
    -------
    estimators : list of (str, recommender) tuples
        ``[("als", ...), ("knn", ...), ("repeat", ...), ("sr", ...)]``,
        unfitted.

    Examples
    --------
    >>> from skals.recommender import default_session_estimators
    >>> [name for name, _ in default_session_estimators()]
    ['als', 'knn', 'repeat', 'sr']
    """
    return [
        ("als", ImplicitALSRecommender(random_state=random_state)),
        ("knn", SessionKNNRecommender()),
        ("repeat", RepeatRecommender()),
        ("sr", SequentialRulesRecommender()),
    ]


def make_cart_blend() -> BlendRecommender:
    """The cart recipe: the session's items by count, then session-kNN's.

    For cart adds that follow re-views (the challenge's NDCG@5 on the
    products a session adds to its cart): a
    ``RepeatRecommender(recency_decay=1.0)`` (the session's own items, by
    how often they were seen) and a ``SessionKNNRecommender()`` at its
    defaults, rank-normalised and summed 10 : 1. That keeps every item of
    the session ahead of kNN's items, which fill the rest of the list;
    among the session's items kNN's ranks only break near-ties of the count
    order (a place in the repeat's list is worth ten times a place in
    kNN's). On every cart-scored set measured it ranks better than
    ``BlendRecommender()``; where nobody views a product twice, or for the
    next click, it is worse (:ref:`which_recommender`), so it is a recipe,
    not the default. ``skals fit --recommender carts`` fits it.

    Returns
    -------
    blend : BlendRecommender
        Unfitted, with components ``"repeat"`` and ``"knn"`` (tune them as
        ``repeat__recency_decay``, ``knn__n_neighbors``, ... and the
        ``weights``).

    See Also
    --------
    default_session_estimators : The components of ``BlendRecommender()``.

    Examples
    --------
    >>> import numpy as np
    >>> from skals.recommender import make_cart_blend
    >>> X = np.array([[1, 1, 0, 0]] * 3 + [[0, 1, 1, 0]] * 2 + [[0, 0, 0, 1]] * 4)
    >>> blend = make_cart_blend().set_params(k=3).fit(X)
    >>> # item 2 seen twice, item 0 once: both first, then kNN's item 1
    >>> blend.predict(np.array([[1, 0, 2, 0]])).tolist()
    [[2, 0, 1]]
    """
    return BlendRecommender(
        [
            ("repeat", RepeatRecommender(recency_decay=1.0)),
            ("knn", SessionKNNRecommender()),
        ],
        weights=[10.0, 1.0],
        normalization="rank",
    )


def _fit_component(estimator, X, versions):
    """Fit one (already cloned) component; what ``memory`` caches.

    ``versions`` (skals, implicit, the component's class) is part of the
    cache key only: an upgrade or another class never serves an old fit.
    """
    return estimator.fit(X)


def _fit_components(active, fit_one, X) -> list:
    """Clones of ``active``'s (name, estimator, weight) estimators fitted on
    ``X`` by ``fit_one`` (:func:`_fit_component` through the memory)."""
    return [fit_one(clone(est), X, _cache_versions(est)) for _, est, _ in active]


def _cache_versions(estimator) -> tuple:
    from importlib.metadata import PackageNotFoundError, version

    from .._version import __version__

    try:
        implicit = version("implicit")
    except PackageNotFoundError:  # pragma: no cover - a dependency
        implicit = None
    cls = type(estimator)
    return (__version__, implicit, f"{cls.__module__}.{cls.__qualname__}")


class BlendRecommender(FallbackMixin, BaseRecommender):
    """Weighted sum of the normalised scores of several recommenders.

    Every component (for example :class:`ImplicitALSRecommender`,
    ``SessionKNNRecommender``, :class:`RepeatRecommender`,
    :class:`PopularityRecommender`) is fitted on the same input. To answer a
    row, each component ranks its top ``n_candidates`` items (with its own
    filters and fallback); their scores are normalised per row
    (``normalization``) and summed with ``weights``:

    .. math:: s_i = \\sum_c w_c \\, \\tilde s_{c,i}

    where :math:`\\tilde s_{c,i}` is 0 for an item outside component
    :math:`c`'s candidates. The best ``k`` items by :math:`s_i` are answered
    (ties: lower column index first); a row with fewer than ``k`` candidates
    is completed by the ``fallback``.

    **Tuning the weights without refitting.** The weights act only at predict
    time, but a grid search clones and fits the whole pipeline for every
    candidate. Pass ``memory`` (a directory or a :class:`joblib.Memory`, as
    for :class:`sklearn.pipeline.Pipeline`): each component's fit is then
    cached on disk, keyed by the component's parameters and the training
    matrix, so candidates that differ only in ``weights`` (or
    ``normalization``, ``n_candidates``, ``k``) reuse the fitted components
    of the first candidate on the same fold, across clones and worker
    processes. Without ``memory`` every fit refits every component. The cost
    of a hit is hashing the training matrix and loading the fitted component.

    **Weights fitted on the data** (``weights="auto"``, the default). As
    ``sklearn.ensemble.StackingClassifier`` does with an internal
    split, ``fit`` first holds out the latest ``validation_size`` of the
    training sessions (those with at least two items, at most
    ``max_validation_sessions``; by ``row_times``, else the last rows),
    fits the components on the other rows, and asks each of them for the
    held-out sessions, cut in one or both of two ways (``validation``):

    * ``"next_item"``: each session without its last item (``recency`` 1; a
      plain matrix has no order: its last stored column), scored by the
      MRR@20 of that item (session-rec's next-click protocol). An item seen
      more than once (its value is above what one event gives) stays in the
      query as one earlier event, so that a repeat component is judged
      fairly (for ConfidenceEncoder values, "one event" is read from the
      view and cart weights, which ``item_stats`` give).
    * ``"session"``: each session's first ``n_revealed`` items (by their
      last event) with one view's value, plus each later item seen more
      than once with the chance that one of its earlier events came among
      the first ``n_revealed`` events; scored by NDCG@``k`` of the items
      with a cart add when the log has cart adds (the challenge's
      protocol), else of the items not revealed (rest of the session).
    * ``"both"`` (default): a weight vector's MRR@20 and HitRate@20 on the
      next-item cut and its NDCG@``k`` on the session cut are each divided
      by the best single component's, and the smallest of the three ratios
      is its score: the vector that loses least to the best part on any of
      them wins. Both cuts share the held-out sessions, so the components
      are fitted once for them.

    Every weight vector of a simplex grid (steps of ``1 / grid_resolution``;
    the vertices, each component alone, included) is scored. Then, for
    ``grid_refinements`` rounds, the step is halved and every vector one
    step away from the best so far (a step of weight moved from one
    component to another) is scored too: the two protocols often want
    different mixes, and the least-losing compromise can lie between the
    coarse grid's points. The best is kept (ties: the first, the vertices
    first, the coarse grid before its refinements) and the components are
    refitted on every row. So on that split the blend is never worse than
    its best component.

    **Cost.** The components are fitted twice and answer the validation
    sessions once; the grid costs a sparse sum and a top-k per vector and
    protocol. See BENCHMARKS.md ("The repeat part's fill in a blend") for
    the measured ratio to a fixed-weight blend: 2.8x-4.2x for the default's
    4 parts. With ``memory``, the second fit of each component is a cache
    hit whenever the same training matrix comes again.

    Parameters
    ----------
    estimators : list of (str, recommender) tuples or None, default=None
        The components, with names (their parameters are reachable as
        ``<name>__<param>``, e.g. ``blendrecommender__als__factors``).
        A component may be ``"drop"``. ``None``: the recommended session
        recipe, :func:`default_session_estimators` (ALS + session-kNN +
        repeat + sequential rules), resolved at fit time into
        ``estimators_``; to tune its components' parameters, pass
        ``default_session_estimators()``.
    weights : "auto", array-like of float or None, default="auto"
        One weight per component (``None``: all 1), or ``"auto"``: chosen
        at fit time on an internal split (see above; ``weights_`` and
        ``weight_scores_`` say what was chosen). Components with weight 0
        are not asked to rank.
    normalization : {"minmax", "rank"}, default="minmax"
        How each component's candidate scores are made comparable, per row:
        ``"minmax"`` maps the row's candidate scores to ``[0, 1]``;
        ``"rank"`` gives the ``j``-th of ``n`` candidates ``(n - j) / n``.
        Each row is normalised over the component's whole answer, but only
        the component's own candidates are summed: a repeat model's
        popularity fill after the session's items is not its opinion (the
        blend's ``fallback`` completes the lists).
        ``"minmax"`` keeps the gaps between scores (a repeat model's own items
        stay far above its popularity tail); ``"rank"`` flattens them and was
        worse in ``benchmarks/session_quality.py`` (e.g. NDCG@5 0.26 against
        0.51 for ALS + repeat + popularity with equal weights on
        ``make_sessions`` defaults).
    n_candidates : int, default=100
        Candidates asked of each component per row.
    memory : str, joblib.Memory or None, default=None
        Cache of the components' fits (see above). ``None``: no caching.
        Its entries are pickles (joblib's): like ``Pipeline(memory=)``'s, the
        directory must be private to you.
    k : int, default=5
        Items per answer.
    filter_already_liked_items : bool, default=False
        Leave out the row's own items.
    filter_items : array-like or None, default=None
        Item ids never to recommend.
    items : array-like or None, default=None
        Only recommend these item ids.
    fallback : PopularityRecommender or None, default=None
        Completes rows with fewer than ``k`` candidates; ``None`` means
        ``PopularityRecommender()``.
    validation_size : float or int, default=0.2
        With ``weights="auto"``: the share (float in (0, 1)) or number (int)
        of the sessions with at least two items held out, the latest ones.
    max_validation_sessions : int or None, default=50_000
        With ``weights="auto"``: at most this many sessions are held out,
        whatever ``validation_size`` says (``None``: no cap). The components'
        candidates for every held-out session are kept while the weight
        vectors are scored, so memory grows with this number times
        ``n_candidates`` times the number of components. Uncapped, at the
        challenge's scale (4.5 million sessions, 578,100 of them held out)
        the default blend's fit passed 21 GB; capped, it peaked at 9.8 GB.
        50,000 sessions measure MRR@20 to about 0.002.
    grid_resolution : int, default=4
        With ``weights="auto"``: the simplex grid's step is ``1 /
        grid_resolution`` (15 weight vectors for 3 components at 4, 35 for
        the default's 4).
    grid_refinements : int, default=2
        With ``weights="auto"``: rounds of the local search after the grid
        (see above); each halves the step and scores at most ``n * (n - 1)``
        more vectors for ``n`` components (12 for the default's 4). ``0``:
        the grid alone.
    validation : {"both", "session", "next_item"}, default="both"
        With ``weights="auto"``: the protocol that scores the weight vectors
        (see above). ``"both"`` was the one whose weights never fell below
        0.99x of the best component on any data set of
        ``benchmarks/session_quality.py`` and ``benchmarks/real_clicks.py``
        (BENCHMARKS.md, "Default blend vs its parts"); ``"next_item"`` was
        the only protocol before ``"both"`` and lost to the repeat
        component on cart adds.
    n_revealed : int, default=3
        With ``validation`` ``"session"`` or ``"both"``: the items revealed
        of each held-out session (the challenge reveals 3 events).
    random_state : int, RandomState instance or None, default=None
        Seed of the default components (``estimators=None``: the ALS one).
        The internal split itself is deterministic (the latest sessions).

    Attributes
    ----------
    estimators_ : list of recommenders
        The fitted components (not the dropped ones).
    named_estimators_ : sklearn.utils.Bunch
        The fitted components by name.
    weights_ : ndarray of shape (n_fitted_components,)
        The weights of the fitted components, as given at fit time or chosen
        by ``"auto"`` (predict reads these: changing ``weights`` takes effect
        at the next fit, which ``memory`` makes cheap).
    weight_grid_ : ndarray of shape (n_vectors, n_fitted_components)
        With ``weights="auto"``: the weight vectors scored (else ``None``):
        the simplex grid's, then those of each refinement round.
    weight_scores_ : ndarray of shape (n_vectors,)
        With ``weights="auto"``: the validation score of each row of
        ``weight_grid_`` (else ``None``): MRR@20 (``"next_item"``), NDCG@k
        (``"session"``) or the smallest ratio to the best component's
        (``"both"``).
    fallback_ : PopularityRecommender
        The fitted fallback.
    n_features_in_ : int
        Number of items.

    See Also
    --------
    RepeatRecommender : The session's own items, a component that blends well.

    Examples
    --------
    >>> import numpy as np
    >>> from skals import BlendRecommender, PopularityRecommender, RepeatRecommender
    >>> X = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]])
    >>> blend = BlendRecommender(
    ...     [("repeat", RepeatRecommender()), ("pop", PopularityRecommender())],
    ...     weights=[3.0, 1.0], k=2).fit(X)
    >>> blend.predict(np.array([[0, 0, 1, 0]]))
    array([[2, 0]])

    Weights chosen on the data, over the default recipe:

    >>> from skals.datasets import make_sessions
    >>> from skals import make_recommender_pipeline
    >>> events = make_sessions(300, n_items=50, random_state=0)
    >>> pipe = make_recommender_pipeline(BlendRecommender(random_state=0))
    >>> blend = pipe.fit(events)[-1]
    >>> list(blend.named_estimators_)
    ['als', 'knn', 'repeat', 'sr']
    >>> blend.weight_grid_.shape  # the grid's 35 vectors, 18 of refinements
    (53, 4)
    """

    _parameter_constraints: dict = {
        **BaseRecommender._parameter_constraints,
        "estimators": [list, None],
        "weights": ["array-like", None, StrOptions({"auto"})],
        "normalization": [StrOptions({"rank", "minmax"})],
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "memory": [None, str, HasMethods(["cache"])],
        "fallback": [PopularityRecommender, None],
        "validation_size": [
            Interval(RealNotInt, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "max_validation_sessions": [Interval(Integral, 1, None, closed="left"), None],
        "grid_resolution": [Interval(Integral, 1, None, closed="left")],
        "grid_refinements": [Interval(Integral, 0, None, closed="left")],
        "validation": [StrOptions({"both", "session", "next_item"})],
        "n_revealed": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimators=None,
        *,
        weights="auto",
        normalization="minmax",
        n_candidates=100,
        memory=None,
        k=5,
        filter_already_liked_items=False,
        filter_items=None,
        items=None,
        fallback=None,
        validation_size=0.2,
        max_validation_sessions=50_000,
        grid_resolution=4,
        grid_refinements=2,
        validation="both",
        n_revealed=3,
        random_state=None,
    ):
        self.estimators = estimators
        self.weights = weights
        self.normalization = normalization
        self.n_candidates = n_candidates
        self.memory = memory
        self.k = k
        self.filter_already_liked_items = filter_already_liked_items
        self.filter_items = filter_items
        self.items = items
        self.fallback = fallback
        self.validation_size = validation_size
        self.max_validation_sessions = max_validation_sessions
        self.grid_resolution = grid_resolution
        self.grid_refinements = grid_refinements
        self.validation = validation
        self.n_revealed = n_revealed
        self.random_state = random_state

    # ------------------------------------------- nested parameters (sklearn)
    def _pairs(self) -> list:
        """``estimators`` as (name, estimator) pairs; ``[]`` if malformed."""
        if self.estimators is None:  # the default recipe, as fit builds it
            return default_session_estimators(self.random_state)
        try:
            return [(name, est) for name, est in self.estimators]
        except (TypeError, ValueError):  # fit gives the error
            return []

    def get_params(self, deep=True):
        """Parameters, with each component's as ``<name>__<param>``.

        Parameters
        ----------
        deep : bool, default=True
            Include the components and their parameters.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        out = super().get_params(deep=False)
        if not deep:
            return out
        for name, est in self._pairs():
            out[name] = est
            if hasattr(est, "get_params"):
                for key, value in est.get_params(deep=True).items():
                    out[f"{name}__{key}"] = value
        return out

    def set_params(self, **params):
        """Set parameters, a component's by ``<name>`` or ``<name>__<param>``.

        Parameters
        ----------
        **params : dict
            Parameters to set.

        Returns
        -------
        self : BlendRecommender
            This estimator.
        """
        if "estimators" in params:
            self.estimators = params.pop("estimators")
        names = [name for name, _ in self._pairs()]
        if self.estimators is None and any(
            key.partition("__")[0] in names for key in params
        ):
            # a component of the default recipe is set: make the recipe
            # explicit first (as FallbackMixin does for fallback__<p>)
            self.estimators = self._pairs()
        for name in list(params):
            if name in names:
                est = params.pop(name)
                self.estimators = [
                    (n, est if n == name else e) for n, e in self.estimators
                ]
        nested = {}
        for key in list(params):
            head, sep, rest = key.partition("__")
            if sep and head in names:
                nested.setdefault(head, {})[rest] = params.pop(key)
        for name, sub in nested.items():
            dict(self.estimators)[name].set_params(**sub)
        return super().set_params(**params)

    # ------------------------------------------------------------------ fit
    def _active(self):
        """(name, estimator, weight) of the components that are not dropped."""
        names = [name for name, _ in self._pairs()]
        if not names or len(set(names)) != len(names):
            raise ValueError(
                "estimators must be a non-empty list of (name, recommender) "
                f"with unique names; got names {names!r}."
            )
        own = set(self.get_params(deep=False))
        for name in names:
            if "__" in name:
                raise ValueError(f"Component name {name!r} must not contain '__'.")
            if name in own:
                # set_params(k=...) would replace that component instead (as
                # in sklearn's VotingClassifier, names share one namespace)
                raise ValueError(
                    f"Component name {name!r} is a parameter of "
                    f"{type(self).__name__}; rename the component (e.g. 'knn' "
                    "for session-kNN)."
                )
        out = []
        for (name, est), w in zip(
            self._pairs(), self._given_weights(names), strict=True
        ):
            if est == "drop":
                continue
            if not isinstance(est, BaseRecommender):
                raise TypeError(
                    f"Component {name!r} must be a skals recommender or 'drop'; "
                    f"got {type(est).__name__}."
                )
            out.append((name, est, float(w)))
        if not out:
            raise ValueError(
                f"Every component of the {type(self).__name__} is dropped."
            )
        return out

    def _given_weights(self, names) -> np.ndarray:
        """The ``weights`` parameter, checked: one per component of ``names``."""
        if self.weights is None or self._auto:
            weights = np.ones(len(names))
        else:
            weights = np.asarray(self.weights, dtype=np.float64).ravel()
            if weights.size != len(names):
                raise ValueError(
                    f"weights has {weights.size} entries for {len(names)} "
                    f"estimators ({names!r})."
                )
            if not np.isfinite(weights).all() or (weights < 0).any():
                raise ValueError(
                    f"weights must be finite and >= 0; got {weights.tolist()!r}."
                )
        return weights

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit every component (through ``memory`` when given) and the fallback.

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix} of shape \
                (n_users, n_items)
            Training interactions, given to every component.
        y : None
            Ignored.

        Returns
        -------
        self : BlendRecommender
            Fitted recommender.
        """
        active = self._active()
        matrix, im = self._fit_input(X)
        fit_one = check_memory(self.memory).cache(_fit_component)
        self.weight_grid_ = self.weight_scores_ = None
        if self._auto:
            weights = self._auto_weights(active, fit_one, matrix, im)
            active = [(n, e, w) for (n, e, _), w in zip(active, weights, strict=True)]
        return self._keep_fitted(active, fit_one, X)

    def _keep_fitted(self, active, fit_one, X):
        """Fit ``active``'s components on ``X`` and keep them, and the fallback.

        Sets ``estimators_``, ``named_estimators_``, ``weights_`` (the
        weights of ``active``) and ``fallback_``; returns ``self``.
        """
        fitted = _fit_components(active, fit_one, X)
        self.estimators_ = fitted
        self.named_estimators_ = Bunch(
            **{name: est for (name, _, _), est in zip(active, fitted, strict=True)}
        )
        self.weights_ = np.array([w for _, _, w in active])
        self._fit_fallback(X)
        return self

    @property
    def _auto(self) -> bool:
        return isinstance(self.weights, str) and self.weights == "auto"

    def _auto_weights(self, active, fit_one, matrix, im) -> np.ndarray:
        """The weights of ``weights="auto"``; sets ``weight_grid_``/``_scores_``."""
        n_comp = len(active)
        protocols = (
            ("session", "next_item")
            if self.validation == "both"
            else (self.validation,)
        )
        splits = {}
        for protocol in protocols:
            if protocol == "session":
                split = session_split(
                    im,
                    matrix,
                    self.validation_size,
                    self.n_revealed,
                    self.random_state,
                    self.max_validation_sessions,
                )
            else:
                split = holdout_split(
                    im,
                    matrix,
                    self.validation_size,
                    self.random_state,
                    self.max_validation_sessions,
                )
            if split is not None:
                splits[protocol] = split
        if not splits:
            warn(
                f"BlendRecommender(weights='auto'): {matrix.shape[0]} training "
                "rows leave no session of two or more items to validate on "
                f"(validation_size={self.validation_size!r}); every component "
                "gets weight 1.",
                UserWarning,
            )
            return np.ones(n_comp)
        # both splits hold out the same sessions: one fit per component
        fit_input = next(iter(splits.values()))[0]
        fitted = _fit_components(active, fit_one, fit_input)
        grid = simplex_grid(n_comp, self.grid_resolution)
        parts = {p: self._grid_parts(fitted, *splits[p][1:3]) for p in splits}

        def score(vectors):
            # one array per measure: MRR@20 and HR@20 (next item), NDCG@k
            out = {}
            for p, (_, query, _, truth) in splits.items():
                out.update(self._grid_scores(parts[p], vectors, p, query, truth))
            return out

        scores = score(grid)
        criterion = self._criterion(scores, n_comp)
        step = 1.0 / self.grid_resolution
        for _ in range(self.grid_refinements):
            # halve the step around the best vector so far (ties: the earlier)
            step /= 2
            local = local_moves(grid[int(np.argmax(criterion))], step, grid)
            if not len(local):
                continue
            grid = np.vstack([grid, local])
            more = score(local)
            scores = {m: np.concatenate([scores[m], more[m]]) for m in scores}
            criterion = self._criterion(scores, n_comp)
        self.weight_grid_, self.weight_scores_ = grid, criterion
        return grid[int(np.argmax(criterion))]

    def _criterion(self, scores: dict, n_comp: int) -> np.ndarray:
        """One score per vector, from the measures of :meth:`_grid_scores`.

        ``"next_item"``: MRR@20; ``"session"``: NDCG@k; ``"both"``: the
        smallest of the three measures' ratios to their best component's
        (the vertices are the grid's first rows).
        """
        if self.validation == "next_item" or "ndcg" not in scores:
            return scores["mrr"]
        if self.validation == "session" or "mrr" not in scores:
            return scores["ndcg"]
        return np.min(
            [s / max(s[:n_comp].max(), 1e-12) for s in scores.values()], axis=0
        )

    def _grid_parts(self, fitted, query, query_im):
        """Each component's normalised candidates for the validation queries."""
        row_keys = None if query_im is None else query_im.row_keys
        n_cand = min(self.n_candidates, self.n_features_in_)
        parts = []
        for part in fitted:
            with quiet_answers():
                cand = part._blend_candidates(query, row_keys, query_im, k=n_cand)
            parts.append(own_normalised(*cand, self.normalization))
        return parts

    def _grid_scores(self, parts, grid, protocol, query, truth):
        """The validation measures of every weight vector of ``grid``.

        ``{"ndcg": ...}`` on the session protocol, ``{"mrr": ..., "hr":
        ...}`` (at 20) on the next-item one: one array of ``len(grid)`` each.
        """
        banned, allowed = self._filters()
        keep = eligible_columns(self.n_features_in_, banned, allowed)
        liked = query > 0 if self.filter_already_liked_items else None
        names = ("ndcg",) if protocol == "session" else ("mrr", "hr")
        out = {m: np.empty(len(grid)) for m in names}
        for g, weights in enumerate(grid):
            S = _candidates(
                sum_parts(parts, weights, (query.shape[0], self.n_features_in_)),
                keep,
                liked,
            )
            if protocol == "session":
                ids, _, _ = sparse_topk(S, self.k)
                out["ndcg"][g] = ndcg(ids, truth, self.k)
            else:
                ids, _, _ = sparse_topk(S, VALIDATION_K)
                out["mrr"][g] = mrr(ids, truth)
                out["hr"][g] = float(np.mean((ids == truth[:, None]).any(axis=1)))
        return out

    # -------------------------------------------------------------- predict
    def blend_scores(self, matrix, row_keys, im) -> sp.csr_matrix:
        """Blended scores of the candidates: a sparse rows x items matrix."""
        n_cand = min(self.n_candidates, self.n_features_in_)
        parts = []
        for est, w in zip(self.estimators_, self.weights_, strict=True):
            if w == 0:  # not asked to rank: sum_parts skips it
                parts.append((None, None))
                continue
            with quiet_answers():  # short candidate lists: by design, this thread
                cand = est._blend_candidates(matrix, row_keys, im, k=n_cand)
            parts.append(own_normalised(*cand, self.normalization))
        return sum_parts(parts, self.weights_, (matrix.shape[0], self.n_features_in_))

    def _rank_context(self, matrix, row_keys, im, *, k):
        liked = None
        if self.filter_already_liked_items:
            liked = sp.csr_matrix(matrix, dtype=np.float32)
            liked.eliminate_zeros()
        segments = im.row_segments if im is not None else None
        S = self.blend_scores(matrix, row_keys, im)
        return self._answer_blended(S, k, liked=liked, segments=segments)

    def _answer_blended(self, S, k, *, liked=None, segments=None):
        """The top ``k`` of blended scores ``S``, completed by the fallback.

        ``liked`` (rows x items, or None) is removed from the answers; the
        fallback's items, by ``segments`` (or None), rank below every
        candidate.
        """
        banned, allowed = self._filters()
        keep = eligible_columns(self.n_features_in_, banned, allowed)
        S = _candidates(S, keep, None if liked is None else liked > 0)
        first = sparse_topk(S, k)
        exclude = sp.csr_matrix(S, dtype=np.float32)
        exclude.data[:] = 1.0
        if liked is not None:
            exclude = exclude.maximum(liked)
        codes = self.fallback_._segment_codes(segments, S.shape[0])
        ids2, sc2, n2 = self.fallback_._rank_rows(codes, exclude, banned, allowed, k)
        sc2 = np.where(ids2 >= 0, -1.0 / (1.0 + np.arange(k))[None, :], -np.inf)
        ids, scores, counts = fill_ranked(first, (ids2, sc2, n2))
        return self._finish_answers(
            ids, scores, counts, filtered=False, rerank=lambda rows: None
        )

    # ------------------------------------------ the common calls (contract)
    def _weighted(self):
        """(estimator, weight) of the fitted components with weight > 0."""
        return [
            (est, w)
            for est, w in zip(self.estimators_, self.weights_, strict=True)
            if w != 0
        ]

    def _training_keys(self):
        return self.user_ids_

    def _known_keys(self, keys):
        known = np.zeros(len(keys), dtype=bool)
        for est, _ in self._weighted():
            known |= est._known_keys(keys)
        return known

    def _session_keys(self, session_ids):
        for est, _ in self._weighted():
            found = est._session_keys(session_ids)
            if found is not None:
                return found
        return None

    def _rank_keys(self, keys, k):
        """The components' answers for keys, blended as in :meth:`predict`."""
        n = len(keys)
        n_cand = min(self.n_candidates, self.n_features_in_)
        with quiet_answers():  # unknown keys are counted by recommend_keys
            weighted = self._weighted()
            parts = [
                own_normalised(
                    *est._blend_key_candidates(keys, n_cand), self.normalization
                )
                for est, _ in weighted
            ]
        S = sum_parts(parts, [w for _, w in weighted], (n, self.n_features_in_))
        return self._answer_blended(S, k)

    def _answer_sources(self, matrix, row_keys, use_history=None, im=None):
        """``"blend"`` where a component answered from its own model.

        A row is ``"fallback"`` when every weighted component gave it its
        fallback (a popularity component counts as answering).
        """
        own = np.zeros(matrix.shape[0], dtype=bool)
        for est, _ in self._weighted():
            src = est._answer_sources(matrix, row_keys, use_history=use_history, im=im)
            own |= np.asarray(src) != FALLBACK
        return np.where(own, BLEND, FALLBACK).astype(object)

    def _supports(self, call):
        if call != "similar_items":
            return super()._supports(call)
        if not hasattr(self, "estimators_"):  # unfitted: ask the parameters
            return any(est._supports(call) for _, est, w in self._active() if w)
        return any(est._supports(call) for est, _ in self._weighted())

    def _similar_ranked(self, queries, k):
        """The components' similar items, normalised and weighted."""
        having = [(e, w) for e, w in self._weighted() if e._supports("similar_items")]
        if not having:
            raise NotImplementedError(unsupported(self, "similar_items"))
        n_cand = min(self.n_candidates, self.n_features_in_)
        with quiet_answers():
            ranked = [e._similar_ranked(queries, n_cand) for e, _ in having]
        parts = [
            (ids, normalise(ids, scores, self.normalization))
            for ids, scores, _ in ranked
        ]
        S = sum_parts(
            parts, [w for _, w in having], (queries.size, self.n_features_in_)
        )
        S.data = S.data + 1e-12
        return sparse_topk(S, k)

    def similar_items(self, item_ids, k=10):
        """Items most similar to each given item, by the blended components.

        Each component with weight > 0 that has ``similar_items``
        (ImplicitALSRecommender, SessionKNNRecommender, ...) ranks its
        ``n_candidates`` most similar items; their scores are normalised
        per item (``normalization``) and summed with the blend's weights,
        as :meth:`predict` blends answers. Raises ``NotImplementedError``
        when no weighted component has it.

        Parameters
        ----------
        item_ids : item id or array-like of item ids
            Ids as in the training data. An unknown id raises ``ValueError``.
        k : int, default=10
            Similar items per item.

        Returns
        -------
        similar : polars or pandas DataFrame
            One row per given item: the item id, ``similar_items`` (list of
            ids, best first) and ``scores`` (blended, normalised).
        """
        return super().similar_items(item_ids, k=k)


def _candidates(S, keep, liked):
    """Blended scores ``S`` in the ``keep`` columns, less the ``liked`` cells.

    Every stored entry stays a candidate, a blended score of 0 too (it gets
    1e-12); ``liked`` is a boolean rows x items matrix or None.
    """
    S = row_mask(S, keep)
    S.data = S.data + 1e-12
    if liked is not None:
        S = S - S.multiply(liked)
        S.eliminate_zeros()
    return S
