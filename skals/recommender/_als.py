"""ImplicitALSRecommender: implicit's ALS engine on the shared factor base."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.recommender_base import ModelFitError
from sklearn.utils.validation import check_is_fitted
from sklearn_compat.base import _fit_context
from threadpoolctl import threadpool_limits

from .._sklearn import Interval, StrOptions
from .._utils import implicit_seed
from .._warnings import SkalsDeprecationWarning, warn
from . import _calls
from ._checkpoints import FactorCheckpoints, matrix_fingerprint
from ._factor import BaseFactorRecommender, _check_finite_factors
from ._topk import writeable

__all__ = ["ImplicitALSRecommender"]


def _initial_factors(shape, factors, seed):
    """The factors implicit's ALS starts from, for a matrix of ``shape``.

    implicit 0.7 draws ``default_rng(seed).random((n, factors), float32)
    * 0.01``, users first, when its factors are unset; here the product is
    taken in place, so no second array is made. Bit-identical to
    implicit's (tests/test_recommender.py checks the factors of a fit
    against implicit's own fit, which catches a change of its rule).
    """
    rng = np.random.default_rng(seed)
    out = []
    for n in shape:
        a = rng.random((n, factors), dtype=np.float32)
        a *= 0.01
        out.append(a)
    return tuple(out)


class ImplicitALSRecommender(BaseFactorRecommender):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via ``implicit``.

    Fits :class:`implicit.cpu.als.AlternatingLeastSquares` on a users x items
    confidence matrix and recommends the top ``k`` items.

    **Input.** The :class:`~skals.InteractionMatrix` of
    :class:`~skals.InteractionMatrixBuilder` (answers come in original ids),
    or any non-negative scipy sparse or dense users x items matrix (answers
    are column indices).

    **Predicting.** Every row of the input is new context:

    * a row whose key was seen in fit, with no new known items, is answered
      from its trained factor (its history alone);
    * a row with new events is folded in: its user factor is solved against
      the fixed item factors (the least-squares step of implicit's
      ``recalculate_user``), in one batch. With ``merge_history=True`` a known
      key's training row is merged into its new events first, as the
      element-wise **maximum** of the two confidences. The maximum is
      idempotent: events that training already counted (predicting on the
      training log itself) are not counted twice, and an item seen both in
      history and in new events counts as the stronger of the two;
    * a row with nothing to go on (no known item, no history) gets the
      ``fallback`` (popularity, within the row's segment when available).

    Every answer has ``k`` distinct items unless fewer are eligible (then a
    warning says how many rows were clipped). The answers' ``source`` column
    says which of the three answered each row (``"history"``,
    ``"fold_in"``, ``"fallback"``) and so what its scores mean.

    Parameters
    ----------
    factors : int, default=64
        Number of latent factors.
    regularization : float, default=0.05
        L2 regularization (implicit's scale: not multiplied by counts).
    alpha : float, default=10.0
        Multiplier of the confidences (implicit's ``alpha``): a stored value
        ``c`` weighs ``alpha * c`` against the weight 1 of every unobserved
        cell. The default is 10, not implicit's 1: measured on every data set
        at hand (BENCHMARKS.md, ``benchmarks/session_quality.py``), 10 lifts
        NDCG@5 on the synthetic challenge-shaped logs by a fifth or more
        (a reviewer reported the same on a real click log, HitRate@20 0.50
        -> 0.65 at 128 factors; not measured here); only MovieLens ratings
        (not clicks) preferred 1. ``alpha`` and the
        encoder's weights play nearly the same role: tune one of them.
    iterations : int, default=15
        ALS sweeps.
    k : int, default=5
        Items per answer.
    filter_already_liked_items : bool, default=False
        Leave out items the row already has (history and context). Off by
        default: in the challenge's data re-viewed products are a large share
        of cart adds, and filtering them throws those hits away.
    filter_items : array-like or None, default=None
        Item ids never to recommend (column indices for a plain matrix).
    items : array-like or None, default=None
        Only recommend these item ids (an allow-list).
    merge_history : bool, default=True
        Merge a known key's training history into its new events. ``False``
        answers every row from its new events alone.
    fold_in : bool, default=True
        Fold rows with new events in. ``False`` is the notebook's approach:
        a known key is answered from its trained factor (its new events are
        ignored, except by ``filter_already_liked_items``) and every other
        row gets the fallback.
    fallback : PopularityRecommender or None, default=None
        Model for rows with nothing to go on; ``None`` means
        ``PopularityRecommender()`` (so a grid may set ``fallback__by``
        without naming the fallback). Cloned and fitted in :meth:`fit`. It
        answers with this model's ``k`` and filters: a fallback that sets
        its own ``k``, ``filter_items``, ``items`` or
        ``filter_already_liked_items`` is rejected at fit.
    use_cg : bool, default=True
        implicit's conjugate-gradient solver (faster, near-exact).
    use_native : bool, default=True
        implicit's compiled kernels.
    calculate_training_loss : bool, default=False
        Log the training loss each iteration.
    num_threads : int, default=0
        Threads for the solve and for scoring (implicit's name; 0: all cores).
        While ``fit`` runs, BLAS is limited to one thread (implicit's own
        advice; its solver threads do the parallel work). threadpoolctl sets
        that limit on the BLAS library itself, so it holds for the whole
        process (other threads' BLAS calls too) until ``fit`` returns, when
        the previous setting is restored.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial factors; turned into the int seed implicit needs.
    show_progress : bool, default=False
        Show implicit's progress bar while fitting.
    engine : {"implicit", "spark"}, default="implicit"
        .. deprecated:: 0.1.0
           ``"spark"`` still trains with Spark MLlib's ALS for one release,
           with a ``FutureWarning``: use
           :class:`skals.spark.SparkALSRecommender`, which has Spark's own
           parameters only (Spark's ALS-WR multiplies the regularization by
           counts, so it is a different model, not an engine option).

    warm_start : bool or FactorCheckpoints, default=False
        When fitted before on a matrix of the same shape with the same
        ``factors``, ``regularization``, ``alpha``, ``use_cg``,
        ``use_native`` and int ``random_state``, continue from the fitted
        factors for ``iterations - n_iter_`` more sweeps instead of starting
        again: the factors are identical to those of one fit of
        ``iterations`` sweeps (the same matrix is assumed, as in
        scikit-learn). Otherwise (or with ``engine="spark"``) fit from scratch.
        A :class:`~skals.recommender.FactorCheckpoints` store does the same
        across clones (in a search), for a matrix of the same content.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, factors)
        Trained user factors, rows following ``user_ids_``.
    item_factors_ : ndarray of shape (n_items, factors)
        Trained item factors, rows following ``item_ids_``.
    user_items_ : scipy.sparse.csr_matrix
        The training matrix (each key's history).
    user_ids_ : polars.Series or None
        Key of each training row (None for a plain matrix).
    item_ids_ : polars.Series or None
        Item id of each column (None for a plain matrix).
    fallback_ : PopularityRecommender
        The fitted fallback.
    n_iter_ : int
        ALS sweeps the factors have had (``iterations``; with ``warm_start``,
        counted over the fits that were continued).
    n_features_in_ : int
        Number of items.

    Predicting reads only fitted attributes (and the ``alpha`` and
    ``regularization`` the factors were fitted with): changing ``factors``,
    ``alpha``, ``regularization`` or ``engine`` after ``fit`` changes nothing
    until the next ``fit``. The answer-time parameters (``k``, the filters,
    ``merge_history``, ``fold_in``, ``num_threads``) apply at once and are
    validated when predicting.

    See Also
    --------
    PopularityRecommender : Baseline and fallback.
    InteractionMatrixBuilder : Builds the input from an event log.

    References
    ----------
    .. [1] Hu, Y., Koren, Y., & Volinsky, C. (2008). Collaborative filtering
       for implicit feedback datasets. ICDM 2008, 263-272.

    Examples
    --------
    >>> import numpy as np
    >>> from skals import ImplicitALSRecommender
    >>> X = np.kron(np.eye(2), np.ones((3, 3)))  # two blocks of 3 users x 3 items
    >>> model = ImplicitALSRecommender(factors=2, k=3, random_state=0).fit(X)
    >>> np.sort(model.predict(X[[0, 5]]), axis=1)
    array([[0, 1, 2],
           [3, 4, 5]])
    """

    _parameter_constraints: dict = {
        **BaseFactorRecommender._parameter_constraints,
        "factors": [Interval(Integral, 1, None, closed="left")],
        "regularization": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "iterations": [Interval(Integral, 1, None, closed="left")],
        "use_cg": ["boolean"],
        "use_native": ["boolean"],
        "calculate_training_loss": ["boolean"],
        "num_threads": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "show_progress": ["boolean"],
        "engine": [StrOptions({"implicit", "spark"})],
        "warm_start": ["boolean", FactorCheckpoints],
    }

    _predict_params = (*BaseFactorRecommender._predict_params, "num_threads")

    #: A warm-started fit copies the previous factors before implicit's
    #: sweeps write into them, and every fit assigns new fitted attributes:
    #: EarlyStoppingPipeline keeps its best stage without a copy.
    _warm_fit_keeps_arrays = True

    def _more_sweeps(self, X, in_place=False):
        """Continue the last fit on the same input ``X``: more sweeps only.

        For :class:`~skals.model_selection.EarlyStoppingPipeline`, whose
        later stages fit the very same ``X`` again with ``warm_start=True``
        and more ``iterations``: the key-grain matrix, the ids and the
        fallback of the previous stage are ``X``'s already, so only the
        factors move on (a fit would rebuild the first three: 39% of a
        two-sweep stage on the ``small`` benchmark log). ``in_place=True``
        sweeps in the current factor arrays instead of copies of them (the
        pipeline says so when it keeps no reference to them: one set of
        user factors less, 2.3 GB at the challenge's scale with 128 factors).
        """
        users, items = self._train(self.user_items_, X, in_place=in_place)
        _check_finite_factors(users, items)
        self.user_factors_, self.item_factors_ = users, items
        return self

    def __init__(
        self,
        factors=64,
        regularization=0.05,
        alpha=10.0,
        iterations=15,
        *,
        k=5,
        filter_already_liked_items=False,
        filter_items=None,
        items=None,
        merge_history=True,
        fold_in=True,
        fallback=None,
        use_cg=True,
        use_native=True,
        calculate_training_loss=False,
        num_threads=0,
        random_state=None,
        show_progress=False,
        engine="implicit",
        warm_start=False,
    ):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.k = k
        self.filter_already_liked_items = filter_already_liked_items
        self.filter_items = filter_items
        self.items = items
        self.merge_history = merge_history
        self.fold_in = fold_in
        self.fallback = fallback
        self.use_cg = use_cg
        self.use_native = use_native
        self.calculate_training_loss = calculate_training_loss
        self.num_threads = num_threads
        self.random_state = random_state
        self.show_progress = show_progress
        self.engine = engine
        self.warm_start = warm_start

    @property
    def _scoring_threads(self):
        return self.num_threads

    # ------------------------------------------------------------------ fit
    def _implicit_model(self, *, fitted, random_state=None):
        """An implicit model: from the parameters, or from the fitted state.

        ``fitted=True`` rebuilds the fitted model (factors, ``alpha`` and
        ``regularization`` of the fit), so predicting reads fitted state
        only. Built with BLAS at one thread, so implicit's threadpool
        warning (a one-time check at construction) never reaches the user.
        """
        if fitted:
            factors = self.item_factors_.shape[1]
            regularization, alpha = self._fit_regularization_, self._fit_alpha_
        else:
            factors, regularization, alpha = (
                self.factors,
                self.regularization,
                self.alpha,
            )
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=factors,
                regularization=regularization,
                alpha=alpha,
                dtype=np.float32,
                use_native=self.use_native,
                use_cg=self.use_cg,
                iterations=self.iterations,
                calculate_training_loss=self.calculate_training_loss,
                num_threads=self.num_threads,
                random_state=random_state,
            )
        if fitted:
            model.user_factors = writeable(self.user_factors_)
            model.item_factors = writeable(self.item_factors_)
        return model

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the ALS factors (and the fallback).

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix} of shape \
                (n_users, n_items)
            Non-negative confidences (``scipy.sparse`` matrices and arrays
            alike). A float32 CSR matrix is used without a copy, and never
            modified.
        y : None
            Ignored.

        Returns
        -------
        self : ImplicitALSRecommender
            Fitted estimator.
        """
        if self.engine == "spark":
            warnings.warn(  # a deprecation names the caller's fit: stacklevel
                "ImplicitALSRecommender(engine='spark') is deprecated and will "
                "be removed in the next release: use "
                "skals.spark.SparkALSRecommender, which trains Spark's ALS-WR "
                "with its own parameters.",
                SkalsDeprecationWarning,
                stacklevel=3,  # through scikit-learn's fit wrapper
            )
        return self._fit(X)

    def _train(self, matrix, X, in_place=False):
        self._fit_engine_ = self.engine
        self._fit_alpha_ = float(self.alpha)
        self._fit_regularization_ = float(self.regularization)
        if self.engine == "spark":
            from ..spark._als_wr import spark_als_factors

            self.n_iter_, self._warm_key_ = self.iterations, None

            return spark_als_factors(
                X,
                matrix,
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                seed=implicit_seed(self.random_state),
            )
        return self._fit_implicit(matrix, in_place=in_place)

    def _warm_key(self, matrix) -> tuple:
        """What must not change for a warm start to continue a previous fit."""
        names = ("factors", "regularization", "alpha", "use_cg", "use_native")
        seed = self.random_state
        return (
            *(self.get_params()[n] for n in names),
            seed if isinstance(seed, Integral) else None,
            matrix.shape,
            matrix.nnz,
        )

    def _fit_implicit(self, matrix, in_place=False):
        """implicit's ALS fit; with ``warm_start``, continued from the factors.

        implicit initialises the factors at random only when they are unset,
        and each sweep reads nothing but the factors, the matrix and the
        parameters, so ``n`` more sweeps from a fit of ``m`` give the very
        factors of one fit of ``m + n`` sweeps with the same seed. The
        previous factors are copied first unless ``in_place`` (a warm start
        of the fitted factors only, see :meth:`_more_sweeps`).
        """
        key = self._warm_key(matrix)
        done, start = 0, None
        store = self.warm_start
        if isinstance(store, FactorCheckpoints):
            key = (key, matrix_fingerprint(matrix))
            if isinstance(self.random_state, Integral):
                start = store.get(key, self.iterations)
        elif store and getattr(self, "_warm_key_", None) == key:
            start = (self.n_iter_, self.user_factors_, self.item_factors_)
            if self.iterations < start[0]:
                raise ValueError(
                    f"warm_start=True continues a fit of {start[0]} iterations: "
                    f"iterations={self.iterations} must be at least {start[0]}. "
                    "Set warm_start=False to fit from scratch."
                )
        seed = implicit_seed(self.random_state)
        model = self._implicit_model(fitted=False, random_state=seed)
        if start is None:
            # implicit's own initialisation, without its temporary: it
            # draws the user factors, then multiplies them into a second
            # array (2.3 GB more at the challenge's scale with 128 factors)
            model.user_factors, model.item_factors = _initial_factors(
                matrix.shape, self.factors, seed
            )
        else:
            done = start[0]
            # copies: the previous fit's arrays stay as they were
            fresh = in_place and start[1] is getattr(self, "user_factors_", None)
            model.user_factors = start[1] if fresh else start[1].copy()
            model.item_factors = start[2] if fresh else start[2].copy()
        model.iterations = self.iterations - done
        if model.iterations:
            # threadpoolctl limits the BLAS library itself, so this holds for
            # the whole process while fit runs (documented under num_threads)
            with threadpool_limits(1, "blas"):
                try:
                    model.fit(matrix, show_progress=self.show_progress)
                except ModelFitError as exc:  # implicit's own NaN check
                    raise ValueError(
                        "ALS produced NaN factors; the confidences may be too "
                        "large for this regularization. Increase regularization "
                        "or scale the confidences down."
                    ) from exc
        self._warm_key_ = key
        self.n_iter_ = self.iterations
        if isinstance(store, FactorCheckpoints) and isinstance(
            self.random_state, Integral
        ):
            store.put(key, self.iterations, model.user_factors, model.item_factors)
        return model.user_factors, model.item_factors

    # ------------------------------------------------------------- fold-in
    def _fold_in(self, rows: sp.csr_matrix) -> np.ndarray:
        """User factors solved against the fixed item factors.

        implicit's own ``recalculate_user`` (the exact least-squares step of
        Hu et al.), in one batch, with the ``alpha`` and ``regularization``
        of the fit. Spark-trained factors (deprecated ``engine="spark"``) use
        Spark's rule (``regularization * n_u``).
        """
        if self._fit_engine_ == "spark":
            from ..spark._als_wr import fold_in_als_wr

            return fold_in_als_wr(
                rows, self.item_factors_, self._fit_regularization_, self._fit_alpha_
            )
        n_factors = self.item_factors_.shape[1]
        if rows.shape[0] == 0:
            return np.zeros((0, n_factors), dtype=np.float32)
        model = self._implicit_model(fitted=True)
        rows = sp.csr_matrix(rows, dtype=np.float32)
        return model.recalculate_user(np.arange(rows.shape[0]), rows)

    # --------------------------------------------------------------- public
    def explain(self, item_id, context=None, *, key=None, k=None):
        """How much each item of a context adds to one item's score.

        implicit's ``explain`` (Hu, Koren & Volinsky 2008, section 5), in
        original ids. A row folded in from confidences :math:`c_{uj}` has
        the factor :math:`x_u = W_u Y^T C_u p(u)` with
        :math:`W_u = (Y^T C_u Y + \\lambda I)^{-1}`, so the score of item
        ``i`` splits into one term per item ``j`` of the row,

        .. math:: \\hat p_{ui} = \\sum_j s^u_{ij}, \\qquad
                  s^u_{ij} = y_i^T W_u y_j \\, c_{uj}.

        The terms sum to the score :meth:`predict` gives ``item_id`` for a
        folded-in row (source ``"fold_in"``). For a known key answered from
        its trained factor (source ``"history"``), its history is folded in
        here the same way, which matches the trained factor up to the
        last ALS sweep. Fallback answers (popularity) have no explanation.

        Parameters
        ----------
        item_id : item id
            The recommended item to explain.
        context : mapping, InteractionMatrix, array-like or None, default=None
            The row's events: a mapping ``{item id: confidence}``, an
            :class:`~skals.InteractionMatrix` with one row (its key's
            history is merged as in :meth:`predict`), or one row over the
            fitted items (plain-matrix models).
        key : str or None, default=None
            A training key (e.g. ``"u_243"``) whose history is merged into
            the context (element-wise maximum, as ``merge_history=True``
            does; with ``merge_history=False`` only an empty context uses
            it). An unknown key raises ``ValueError``.
        k : int or None, default=None
            Keep the ``k`` largest contributions; ``None`` keeps all.

        Returns
        -------
        contributions : polars or pandas DataFrame
            One row per context item, largest contribution first: the item
            id, ``confidence`` (``alpha`` times the value) and
            ``contribution`` (:math:`s^u_{ij}`).

        Examples
        --------
        >>> import numpy as np
        >>> from skals import ImplicitALSRecommender
        >>> X = np.kron(np.eye(2), np.ones((3, 3)))
        >>> model = ImplicitALSRecommender(factors=2, random_state=0).fit(X)
        >>> out = model.explain(1, {0: 3.0, 2: 1.0})
        >>> out.columns, out["item"].to_list()
        (['item', 'confidence', 'contribution'], [0, 2])
        """
        return _calls.explain(self, item_id, context, key=key, k=k)

    def recommend(
        self,
        userid,
        user_items,
        N=10,
        filter_already_liked_items=True,
        filter_items=None,
        recalculate_user=False,
        items=None,
    ):
        """implicit's ``recommend``, unchanged: ``(ids, scores)`` by index.

        Kept so that code written for implicit (and the notebook's
        ``model.recommend(userid, csr[userid], N=5,
        filter_already_liked_items=True)``) works as is. Ids are training row
        and column indices. Works on memory-mapped (read-only) factors.
        One change: where fewer than ``N`` items are eligible, implicit pads
        the answer with filtered items (score ``-FLT_MAX``) and zeros; here
        the answer is clipped to the fewest eligible items of any row, with
        a warning.

        Parameters
        ----------
        userid : int or array-like of int
            Training row(s).
        user_items : csr_matrix or csr_array
            The users' rows of the training matrix.
        N : int, default=10
            Number of items (implicit's name for k).
        filter_already_liked_items : bool, default=True
            Leave out the items in ``user_items``.
        filter_items : array-like of int, optional
            Column indices never to recommend.
        recalculate_user : bool, default=False
            Fold the user in from ``user_items`` instead of using its factor.
        items : array-like of int, optional
            Only rank these column indices.

        Returns
        -------
        ids : ndarray
            Column indices, best first.
        scores : ndarray
            Their scores.
        """
        check_is_fitted(self)
        model = self._implicit_model(fitted=True)
        if user_items is not None and sp.issparse(user_items):
            user_items = sp.csr_matrix(user_items)
        ids, scores = model.recommend(
            userid,
            user_items,
            N=N,
            filter_already_liked_items=filter_already_liked_items,
            filter_items=filter_items,
            recalculate_user=recalculate_user,
            items=items,
        )
        # valid entries are a prefix: real scores, then implicit's padding
        # (its -FLT_MAX score, pinned by tests/test_recommender.py)
        n_candidates = self.n_features_in_ if items is None else len(items)
        valid = (scores > np.finfo(np.float32).min) & (
            np.arange(scores.shape[-1]) < n_candidates
        )
        n_valid = int(valid.sum(axis=-1).min()) if valid.size else 0
        if n_valid < scores.shape[-1]:
            warn(
                f"{type(self).__name__}.recommend: N={N} clipped to {n_valid}, "
                "the fewest eligible items of any row.",
                stacklevel=2,
            )
            ids, scores = ids[..., :n_valid], scores[..., :n_valid]
        return ids, scores
