"""ImplicitALSRecommender: implicit's ALS as a scikit-learn estimator."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import polars as pl
import scipy.sparse as sp
from implicit.cpu import _als
from implicit.cpu.als import AlternatingLeastSquares
from implicit.recommender_base import ModelFitError
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from sklearn_compat.base import _fit_context
from threadpoolctl import threadpool_limits

from .._frame import FrameKind, index_of
from .._warnings import warn
from ..preprocessing._builder import InteractionMatrix
from . import _calls
from ._base import BaseRecommender
from ._popularity import PopularityRecommender
from ._topk import topk, writeable


def implicit_seed(random_state):
    """The int seed implicit needs, from scikit-learn's ``random_state``.

    An int passes through unchanged (so ``random_state=0`` here equals
    ``random_state=0`` in implicit); ``None`` draws from numpy's global
    generator and a ``RandomState`` draws from itself, as scikit-learn does.
    """
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))


class ImplicitALSRecommender(BaseRecommender):
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
    alpha : float, default=1.0
        Multiplier of the confidences (implicit's ``alpha``).
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
        ``PopularityRecommender()``. Cloned and fitted in :meth:`fit`.
    use_cg : bool, default=True
        implicit's conjugate-gradient solver (faster, near-exact).
    use_native : bool, default=True
        implicit's compiled kernels.
    calculate_training_loss : bool, default=False
        Log the training loss each iteration.
    num_threads : int, default=0
        Threads for the solve and for scoring (implicit's name; 0: all cores).
        BLAS is limited to one thread inside the solve.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial factors; turned into the int seed implicit needs.
    show_progress : bool, default=False
        Show implicit's progress bar while fitting.
    engine : {"implicit", "spark"}, default="implicit"
        ``"spark"`` trains with Spark MLlib's ALS
        (``pyspark.ml.recommendation.ALS(implicitPrefs=True)``) on the active
        SparkSession: from the Spark DataFrame of a
        :class:`~skals.spark.SparkInteractionMatrix`, or from the entries of
        a local matrix sent to Spark. The factors are collected to the
        driver, so predicting, folding in and the fitted attributes are the
        same as with implicit. The models are mapped as follows: implicit's
        confidence is ``c = alpha * value``, Spark's is ``1 + alpha * r``,
        so Spark is given ``r = c - 1`` (the notebook's
        ``c = 1 + views + 10 * carts`` becomes ``r = views + 10 * carts``).
        Spark multiplies ``regularization`` by each user's and item's number
        of entries (ALS-WR), implicit does not: the same value is a stronger
        penalty on Spark (tune it per engine), and new rows are folded into
        Spark-trained factors with ``regularization * n_u`` for a row of
        ``n_u`` entries. ``use_cg``, ``use_native``, ``num_threads`` (for the
        solve), ``calculate_training_loss`` and ``show_progress`` only apply
        to implicit; :meth:`recommend` keeps implicit's own rule. Needs
        ``pip install skals[spark]``.

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
    n_features_in_ : int
        Number of items.

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
        **BaseRecommender._parameter_constraints,
        "factors": [Interval(Integral, 1, None, closed="left")],
        "regularization": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "iterations": [Interval(Integral, 1, None, closed="left")],
        "merge_history": ["boolean"],
        "fold_in": ["boolean"],
        "fallback": [PopularityRecommender, None],
        "use_cg": ["boolean"],
        "use_native": ["boolean"],
        "calculate_training_loss": ["boolean"],
        "num_threads": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "show_progress": ["boolean"],
        "engine": [StrOptions({"implicit", "spark"})],
    }

    def __init__(
        self,
        factors=64,
        regularization=0.05,
        alpha=1.0,
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

    # ------------------------------------------------------------------ fit
    def _new_implicit_model(self, random_state=None) -> AlternatingLeastSquares:
        # built with BLAS at one thread, so implicit's threadpool warning
        # (a one-time check at construction) never reaches the user
        with threadpool_limits(1, "blas"):
            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                dtype=np.float32,
                use_native=self.use_native,
                use_cg=self.use_cg,
                iterations=self.iterations,
                calculate_training_loss=self.calculate_training_loss,
                num_threads=self.num_threads,
                random_state=random_state,
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the ALS factors (and the fallback).

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix} of shape \
                (n_users, n_items)
            Non-negative confidences. A float32 CSR matrix is used without
            a copy.
        y : None
            Ignored.

        Returns
        -------
        self : ImplicitALSRecommender
            Fitted estimator.
        """
        matrix, _ = self._fit_input(X)
        if self.engine == "spark":
            from ..spark._als import spark_als_factors

            users, items = spark_als_factors(self, X, matrix)
        else:
            model = self._new_implicit_model(implicit_seed(self.random_state))
            with threadpool_limits(1, "blas"):
                try:
                    model.fit(matrix, show_progress=self.show_progress)
                except ModelFitError as exc:  # implicit's own NaN check
                    raise ValueError(
                        "ALS produced NaN factors; the confidences may be too "
                        "large for this regularization. Increase regularization "
                        "or scale the confidences down."
                    ) from exc
            users, items = model.user_factors, model.item_factors
        if not (np.isfinite(users).all() and np.isfinite(items).all()):
            raise ValueError(
                "ALS produced non-finite factors (NaN or inf); the confidences "
                "may be too large for this regularization. Increase "
                "regularization or scale the confidences down."
            )
        self.user_factors_ = users
        self.item_factors_ = items
        self.user_items_ = matrix
        fallback = PopularityRecommender() if self.fallback is None else self.fallback
        self.fallback_ = clone(fallback).fit(X)
        return self

    # ------------------------------------------------------------- fold-in
    def _fold_in(self, rows: sp.csr_matrix) -> np.ndarray:
        """User factors solved against the fixed item factors (Cholesky).

        The same least-squares step as implicit's ``recalculate_user``, in
        one batch; read-only (memory-mapped) factors are copied first.
        Spark-trained factors use Spark's rule (``regularization * n_u``).
        """
        if self.engine == "spark":
            from ..spark._als import fold_in_als_wr

            return fold_in_als_wr(
                rows, self.item_factors_, self.regularization, self.alpha
            )
        item_factors = writeable(self.item_factors_)
        rows = sp.csr_matrix(rows, dtype=np.float32)
        if self.alpha != 1.0:
            rows = self.alpha * rows
        out = np.zeros((rows.shape[0], self.factors), dtype=np.float32)
        if rows.shape[0] == 0:
            return out
        _als._least_squares(
            item_factors.T.dot(item_factors),
            rows.indptr,
            rows.indices,
            rows.data.astype(np.float32),
            out,
            item_factors,
            self.regularization,
            num_threads=self.num_threads,
        )
        return out

    def _history_rows(self, hist: np.ndarray) -> sp.csr_matrix:
        """Training rows for ``hist`` indices; empty rows where ``hist < 0``."""
        known = hist >= 0
        rows = self.user_items_[np.where(known, hist, 0)]
        rows = sp.diags(known.astype(np.float32)) @ rows
        rows = sp.csr_matrix(rows)
        rows.eliminate_zeros()
        return rows

    def _history_index(self, row_keys) -> np.ndarray:
        if row_keys is None or self.user_ids_ is None:
            n = 0 if row_keys is None else len(row_keys)
            return np.full(n, -1, dtype=np.int64)
        return index_of(row_keys, self.user_ids_).fill_null(-1).to_numpy()

    def _rank_context(self, matrix, row_keys, im, *, k, use_history=None):
        """Rank items for rows of new context ``matrix`` (see class docs)."""
        banned, allowed = self._filters()
        n = matrix.shape[0]
        use_history = self.merge_history if use_history is None else use_history
        hist = self._history_index(row_keys)
        if hist.size != n:
            hist = np.full(n, -1, dtype=np.int64)
        known = (hist >= 0) & use_history
        has_new = matrix.getnnz(axis=1) > 0
        if not self.fold_in:
            # the notebook's way: a known key's trained row, nothing else
            known, has_new = hist >= 0, np.zeros(n, dtype=bool)
        context = matrix.maximum(self._history_rows(hist)) if known.any() else matrix
        context = sp.csr_matrix(context, dtype=np.float32)
        trained = known & ~has_new
        als_rows = trained | has_new
        factors = np.zeros((n, self.factors), dtype=np.float32)
        factors[trained] = self.user_factors_[hist[trained]]
        factors[has_new] = self._fold_in(context[has_new])
        exclude = context if self.filter_already_liked_items else None

        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        counts = np.zeros(n, dtype=np.int64)
        idx = np.flatnonzero(als_rows)
        if idx.size:
            ids[idx], scores[idx], counts[idx] = topk(
                factors[idx],
                self.item_factors_,
                k,
                exclude=None if exclude is None else exclude[idx],
                banned=banned,
                allowed=allowed,
                num_threads=self.num_threads,
            )
        cold = np.flatnonzero(~als_rows)
        if cold.size:
            segments = None
            if im is not None and im.row_segments is not None:
                segments = im.row_segments.gather(cold)
            codes = self.fallback_._segment_codes(segments, cold.size)
            ids[cold], scores[cold], counts[cold] = self.fallback_._rank_rows(
                codes,
                None if exclude is None else exclude[cold],
                banned,
                allowed,
                k,
                num_threads=self.num_threads,
            )
        return self._finish_answers(
            ids,
            scores,
            counts,
            filtered=exclude is not None,
            rerank=lambda rows: topk(
                factors[rows],
                self.item_factors_,
                k,
                banned=banned,
                allowed=allowed,
                num_threads=self.num_threads,
            ),
        )

    # --------------------------------------------------------------- public
    def recommend_keys(self, keys, *, k=None):
        """Answer known keys from their training history alone.

        Keys unknown to the model get the fallback (global popularity), with a
        warning that counts them.

        Parameters
        ----------
        keys : array-like of str
            User keys (as built by :class:`~skals.PseudoUserUnifier`).
        k : int or None, default=None
            Items per answer; ``None`` uses the ``k`` parameter.

        Returns
        -------
        recommendations : polars.DataFrame
            One row per key: the key, ``recommendations``, ``scores`` and
            ``source`` (``"history"`` or ``"fallback"``).
        """
        check_is_fitted(self)
        keys = pl.Series(self.key_name_, list(keys))
        if self.user_ids_ is not None and len(keys):
            keys = keys.cast(self.user_ids_.dtype, strict=False)
        n_unknown = int((self._history_index(keys) < 0).sum())
        if n_unknown:
            warn(
                f"{type(self).__name__}: {n_unknown} of {len(keys)} keys were not "
                "seen in fit; they get the fallback.",
                UserWarning,
            )
        empty = sp.csr_matrix((len(keys), self.n_features_in_), dtype=np.float32)
        ids, scores, counts = self._rank_context(
            empty, keys, None, k=self.k if k is None else k, use_history=True
        )
        source = self._answer_sources(empty, keys, use_history=True)
        return self._answers_frame(
            keys, ids, scores, counts, FrameKind("polars"), source
        )

    def _answer_sources(self, matrix, row_keys, use_history=None):
        return _calls.als_sources(self, matrix, row_keys, use_history=use_history)

    def similar_items(self, item_ids, k=10):
        """Items most similar to each given item: cosine of the item factors.

        As implicit's ``similar_items``: the score of item ``j`` for item
        ``i`` is :math:`y_i^T y_j / (\\lVert y_i \\rVert \\lVert y_j
        \\rVert)` (a zero factor gets the norm ``1e-10``), and the ``k``
        highest are returned, best first. Unlike implicit, the item itself
        is left out.

        Parameters
        ----------
        item_ids : item id or array-like of item ids
            Ids as in the training data (column indices for a model fitted
            on a plain matrix). An unknown id raises ``ValueError``.
        k : int, default=10
            Similar items per item (clipped, with a warning, to
            ``n_items - 1``).

        Returns
        -------
        similar : polars or pandas DataFrame
            One row per given item, in order: the item id (column named as
            the item column, e.g. ``partnumber``), ``similar_items`` (list of
            ids, best first) and ``scores`` (list of cosines). pandas when
            the model was fitted on data that came from pandas.
            :func:`skals.to_long` makes it one row per pair.

        Examples
        --------
        >>> import numpy as np
        >>> import polars as pl
        >>> from skals import ImplicitALSRecommender
        >>> X = np.kron(np.eye(2), np.ones((3, 3)))
        >>> model = ImplicitALSRecommender(factors=2, random_state=0).fit(X)
        >>> model.item_factors_ = np.array(
        ...     [[1, 0], [3, 1], [0, 1], [-1, 0], [2, 0], [1, -2]], dtype=np.float32)
        >>> out = model.similar_items([0], k=3)
        >>> out["similar_items"].to_list(), out["scores"].list.eval(
        ...     pl.element().round(3)).to_list()
        ([[4, 1, 5]], [[1.0, 0.949, 0.447]])
        """
        return _calls.similar_items(self, item_ids, k=k)

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
        user_items : csr_matrix
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
        model = self._new_implicit_model()
        model.user_factors = writeable(self.user_factors_)
        model.item_factors = writeable(self.item_factors_)
        ids, scores = model.recommend(
            userid,
            user_items,
            N=N,
            filter_already_liked_items=filter_already_liked_items,
            filter_items=filter_items,
            recalculate_user=recalculate_user,
            items=items,
        )
        # valid entries are a prefix: real scores, then the padding
        n_candidates = self.n_features_in_ if items is None else len(items)
        valid = (scores > np.finfo(np.float32).min) & (
            np.arange(scores.shape[-1]) < n_candidates
        )
        n_valid = int(valid.sum(axis=-1).min()) if valid.size else 0
        if n_valid < scores.shape[-1]:
            warn(
                f"{type(self).__name__}.recommend: N={N} clipped to {n_valid}, "
                "the fewest eligible items of any row.",
                UserWarning,
            )
            ids, scores = ids[..., :n_valid], scores[..., :n_valid]
        return ids, scores

    def score(self, X, y=None):
        """Mean top-k overlap ``|top-k ∩ truth| / k``.

        For an :class:`~skals.InteractionMatrix` of held-out events: the keys
        seen in fit are answered from their training history alone (the model
        sees nothing of ``X``), and the truth of a key is the items it has in
        ``X``. For a plain matrix: each row is folded in and compared with its
        own items.

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix}
            Held-out interactions.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean overlap in [0, 1]; 0.0 (with a warning) if no row can be
            scored.
        """
        check_is_fitted(self)
        if isinstance(X, InteractionMatrix):
            self._check_items_match(X)
            hist = self._history_index(X.row_keys)
            rows = np.flatnonzero(hist >= 0)
            truth = X.matrix[rows]
            empty = sp.csr_matrix(truth.shape, dtype=np.float32)
            ids, _, _ = self._rank_context(
                empty, X.row_keys.gather(rows), None, k=self.k, use_history=True
            )
        else:
            truth = self._check_predict_matrix(X)
            ids, _, _ = self._rank_context(truth, None, None, k=self.k)
            rows = np.arange(truth.shape[0])
        if rows.size == 0:
            warn(
                "score: no held-out row was seen in fit; returning 0.0.",
                UserWarning,
            )
            return 0.0
        r = np.repeat(np.arange(rows.size), ids.shape[1])
        c = ids.ravel()
        valid = c >= 0
        hits = np.zeros(c.size, dtype=bool)
        hits[valid] = np.asarray(truth[r[valid], c[valid]]).ravel() > 0
        return float(hits.reshape(ids.shape).sum(axis=1).mean() / self.k)
