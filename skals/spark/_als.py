"""SparkALSRecommender: Spark MLlib's ALS-WR as a scikit-learn estimator."""

from __future__ import annotations

from numbers import Integral, Real

from sklearn_compat.base import _fit_context

from .._sklearn import Interval
from .._utils import implicit_seed
from ..recommender._factor import BaseFactorRecommender
from ._als_wr import fold_in_als_wr, spark_als_factors


class SparkALSRecommender(BaseFactorRecommender):
    """Implicit-feedback ALS trained by Spark MLlib (ALS-WR).

    Trains ``pyspark.ml.recommendation.ALS(implicitPrefs=True)`` on the
    active SparkSession: from the Spark DataFrame of a
    :class:`~skals.spark.SparkInteractionMatrix`, or from the entries of a
    local matrix sent to Spark. The factors are collected to the driver, so
    predicting, history, fold-in, filters, fallback and the answers work as
    in :class:`~skals.ImplicitALSRecommender` (the two share their base
    class); only the training step and the fold-in rule differ.

    The model is Hu et al.'s (2008) implicit-feedback loss with Spark's
    regularization, which differs from implicit's in two ways:

    * **Confidence.** implicit reads a stored value ``v`` as ``c = alpha *
      v``; Spark reads a rating ``r`` as ``c = 1 + r``. Spark is given
      ``r = alpha * v - 1`` (at least a tiny positive value), so both see the
      same confidences: the notebook's ``c = 1 + views + 10 * carts``
      becomes ``r = views + 10 * carts``.
    * **Regularization.** Spark multiplies ``regularization`` by each user's
      (item's) number of entries (ALS-WR, Zhou et al. 2008): the same value
      is a much stronger penalty than implicit's, so tune it for this model.
      New rows are folded in with the same rule, ``regularization * n_u``
      for a row of ``n_u`` entries, as Spark's own last half-step does.

    Needs ``pip install skals[spark]`` (pyspark and a Java runtime).

    Parameters
    ----------
    factors : int, default=64
        Number of latent factors (Spark's ``rank``).
    regularization : float, default=0.05
        Spark's ``regParam``, multiplied by counts (see above).
    alpha : float, default=1.0
        Multiplier of the stored values before they become confidences.
    iterations : int, default=15
        ALS sweeps (Spark's ``maxIter``).
    k : int, default=5
        Items per answer.
    filter_already_liked_items : bool, default=False
        Leave out items the row already has (history and context).
    filter_items : array-like or None, default=None
        Item ids never to recommend.
    items : array-like or None, default=None
        Only recommend these item ids (an allow-list).
    merge_history : bool, default=True
        Merge a known key's training history into its new events (element-wise
        maximum, as in :class:`~skals.ImplicitALSRecommender`).
    fold_in : bool, default=True
        Fold rows with new events in; ``False`` answers known keys from their
        trained factor and everything else from the fallback.
    fallback : PopularityRecommender or None, default=None
        Model for rows with nothing to go on; ``None`` means
        ``PopularityRecommender()``.
    num_blocks : int or None, default=None
        Spark's ``numUserBlocks`` and ``numItemBlocks``; ``None``: one per
        core of the SparkSession.
    random_state : int, RandomState instance or None, default=None
        Spark's ``seed``.

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
    skals.ImplicitALSRecommender : The same model on implicit, on one machine.

    Examples
    --------
    >>> import numpy as np
    >>> from skals.spark import SparkALSRecommender
    >>> model = SparkALSRecommender(factors=2, regularization=0.01, k=3)
    >>> model.get_params()["factors"]
    2
    """

    _parameter_constraints: dict = {
        **BaseFactorRecommender._parameter_constraints,
        "factors": [Interval(Integral, 1, None, closed="left")],
        "regularization": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "iterations": [Interval(Integral, 1, None, closed="left")],
        "num_blocks": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
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
        num_blocks=None,
        random_state=None,
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
        self.num_blocks = num_blocks
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Spark's ALS partitions the data by core count: equal seeds give
        # equal factors on one machine, not bit for bit across set-ups
        tags.non_deterministic = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train Spark's ALS on ``X`` (and fit the fallback).

        Parameters
        ----------
        X : InteractionMatrix, SparkInteractionMatrix or {array-like, sparse \
                matrix} of shape (n_users, n_items)
            Non-negative values.
        y : None
            Ignored.

        Returns
        -------
        self : SparkALSRecommender
            Fitted estimator.
        """
        return self._fit(X)

    def _train(self, matrix, X):
        self._fit_alpha_ = float(self.alpha)
        self._fit_regularization_ = float(self.regularization)
        return spark_als_factors(
            X,
            matrix,
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            seed=implicit_seed(self.random_state),
            num_blocks=self.num_blocks,
        )

    def _fold_in(self, rows):
        """Spark's ALS-WR rule against the fixed item factors (see class)."""
        return fold_in_als_wr(
            rows, self.item_factors_, self._fit_regularization_, self._fit_alpha_
        )
