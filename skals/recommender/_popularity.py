"""PopularityRecommender: the baseline and the cold-start fallback."""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.base import clone
from sklearn_compat.base import _fit_context

from .._frame import index_of
from .._sklearn import StrOptions
from ..preprocessing._confidence import CART_COUNT, CONFIDENCE, VIEW_COUNT
from ._base import BaseRecommender
from ._calls import POPULARITY
from ._topk import topk

_STAT = {"confidence": CONFIDENCE, "cart": CART_COUNT, "view": VIEW_COUNT}


def _order_scores(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Scores that order items by ``primary``, then ``secondary``, then index.

    Distinct values ``n_items - rank``: no ties, so answers are deterministic.
    """
    n = primary.size
    order = np.lexsort((np.arange(n), -secondary, -primary))
    out = np.empty(n, dtype=np.float32)
    out[order] = np.arange(n, 0, -1, dtype=np.float32)
    return out


def _distinct_keys_by_segment(im, segments: pl.Series) -> np.ndarray:
    """Distinct keys per (segment, item) with a positive value, from ``im``."""
    coo = im.matrix.tocoo()
    positive = coo.data > 0
    rows, cols = coo.row[positive], coo.col[positive]
    seg = index_of(im.row_segments, segments).fill_null(-1).to_numpy()
    key_vocab = im.row_keys.unique()
    key = index_of(im.row_keys, key_vocab).to_numpy()
    df = (
        pl.DataFrame({"s": seg[rows], "u": key[rows], "c": cols})
        .filter(pl.col("s") >= 0)
        .unique()
        .group_by("s", "c")
        .len()
    )
    out = np.zeros((len(segments), im.matrix.shape[1]), dtype=np.float64)
    out[df["s"].to_numpy(), df["c"].to_numpy()] = df["len"].to_numpy()
    return out


class PopularityRecommender(BaseRecommender):
    """Recommend the most popular items, optionally within a segment.

    A baseline with the same input and output as
    :class:`ImplicitALSRecommender`, and the fallback that model uses for rows
    with nothing to go on (no known item in their events and no history).

    Parameters
    ----------
    k : int, default=5
        Items per answer.
    by : {"confidence", "cart", "view", "users"}, default="confidence"
        What popularity counts: summed confidence, add-to-cart events, events,
        or distinct users (distinct keys with a positive value for the item,
        globally and within a segment alike: a key with several sessions
        counts once). ``"cart"`` and ``"view"`` need the
        :class:`~skals.InteractionMatrix` from the builder (it carries the
        counts); a plain matrix offers ``"confidence"`` and ``"users"``.
    use_segments : bool, default=True
        Rank within the row's segment (e.g. country) when the data carries
        segments (``segment_col`` of the encoder and builder). Ties within a
        segment, and rows of a segment unseen in fit, use global popularity.
    filter_already_liked_items : bool, default=False
        Leave out items in the row's own events.
    filter_items : array-like or None, default=None
        Item ids never to recommend.
    items : array-like or None, default=None
        Only recommend these item ids.

    Attributes
    ----------
    item_popularity_ : ndarray of shape (n_items,)
        Global popularity of every column.
    segments_ : polars.Series or None
        Segment values seen in fit.
    segment_popularity_ : ndarray of shape (n_segments, n_items) or None
        Popularity within each segment.
    user_ids_ : polars.Series or None
        Training keys (when fitted on an InteractionMatrix).
    item_ids_ : polars.Series or None
        Item id of every column (when fitted on an InteractionMatrix).
    n_features_in_ : int
        Number of items.

    See Also
    --------
    ImplicitALSRecommender : The collaborative model.

    Examples
    --------
    >>> import numpy as np
    >>> from skals import PopularityRecommender
    >>> X = np.array([[1, 0, 3], [0, 0, 2], [1, 1, 0]])
    >>> PopularityRecommender(k=2).fit(X).predict(X[:1])
    array([[2, 0]])
    """

    #: Every key gets the global ranking (no warning: nothing is unknown).
    _key_answer = "popularity"

    _parameter_constraints: dict = {
        **BaseRecommender._parameter_constraints,
        "by": [StrOptions({"confidence", "cart", "view", "users"})],
        "use_segments": ["boolean"],
    }

    def __init__(
        self,
        k=5,
        *,
        by="confidence",
        use_segments=True,
        filter_already_liked_items=False,
        filter_items=None,
        items=None,
    ):
        self.k = k
        self.by = by
        self.use_segments = use_segments
        self.filter_already_liked_items = filter_already_liked_items
        self.filter_items = filter_items
        self.items = items

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Count item popularity.

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix} of shape \
                (n_users, n_items)
            Training interactions (non-negative).
        y : None
            Ignored.

        Returns
        -------
        self : PopularityRecommender
            Fitted recommender.
        """
        matrix, im = self._fit_input(X)
        n_items = matrix.shape[1]
        stats = im.item_stats if im is not None else None
        if self.by in ("cart", "view") and (
            stats is None or _STAT[self.by] not in stats.columns
        ):
            raise ValueError(
                f"by={self.by!r} needs cart/view counts: fit on the "
                "InteractionMatrix of ConfidenceEncoder -> InteractionMatrixBuilder, "
                "or use by='confidence' or by='users'."
            )
        if self.by == "users":
            glob = np.asarray((matrix > 0).sum(axis=0)).ravel().astype(np.float64)
        elif stats is None:
            glob = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        else:
            glob = self._from_stats(stats, n_items)
        self.item_popularity_ = glob
        self.segments_ = None
        self.segment_popularity_ = None
        seg_col = None
        if stats is not None and im.row_segments is not None:
            seg_col = im.row_segments.name
        if self.use_segments and seg_col is not None and seg_col in stats.columns:
            segments = stats[seg_col].drop_nulls().unique().sort()
            if self.by == "users":
                table = _distinct_keys_by_segment(im, segments)
            else:
                table = np.vstack(
                    [
                        self._from_stats(stats.filter(pl.col(seg_col) == s), n_items)
                        for s in segments
                    ]
                )
            self.segments_ = segments
            self.segment_popularity_ = table
        return self

    def _from_stats(self, stats: pl.DataFrame, n_items: int) -> np.ndarray:
        col = _STAT[self.by]
        agg = stats.group_by("item_index").agg(pl.col(col).sum())
        out = np.zeros(n_items, dtype=np.float64)
        out[agg["item_index"].to_numpy()] = agg[col].to_numpy()
        return out

    def _segment_codes(self, segments: pl.Series | None, n_rows: int) -> np.ndarray:
        """Index into ``segments_`` per row; ``-1`` for the global ranking."""
        if self.segments_ is None or segments is None:
            return np.full(n_rows, -1, dtype=np.int64)
        return index_of(segments, self.segments_).fill_null(-1).to_numpy()

    def _rank_rows(self, codes, exclude, banned, allowed, k, num_threads=1):
        """Popular items per row of ``codes``, best first, with filters."""
        glob = self.item_popularity_
        columns = [_order_scores(glob, glob)]
        values = [glob]
        if self.segment_popularity_ is not None:
            for seg in self.segment_popularity_:
                columns.append(_order_scores(seg, glob))
                values.append(seg)
        item_factors = np.ascontiguousarray(np.vstack(columns).T, dtype=np.float32)
        user_factors = np.zeros((codes.size, len(columns)), dtype=np.float32)
        user_factors[np.arange(codes.size), codes + 1] = 1.0
        ids, _, counts = topk(
            user_factors,
            item_factors,
            k,
            exclude=exclude,
            banned=banned,
            allowed=allowed,
            num_threads=num_threads,
        )
        table = np.vstack(values)
        safe = np.where(ids >= 0, ids, 0)
        scores = table[(codes + 1)[:, None], safe].astype(np.float32)
        scores[ids < 0] = -np.inf
        return ids, scores, counts

    def _rank_context(self, matrix, row_keys, im, *, k):
        banned, allowed = self._filters()
        exclude = matrix if self.filter_already_liked_items else None
        segments = im.row_segments if im is not None else None
        codes = self._segment_codes(segments, matrix.shape[0])
        ids, scores, counts = self._rank_rows(codes, exclude, banned, allowed, k)
        return self._finish_answers(
            ids,
            scores,
            counts,
            filtered=exclude is not None,
            rerank=lambda rows: self._rank_rows(codes[rows], None, banned, allowed, k),
        )

    def _answer_sources(self, matrix, row_keys, use_history=None, im=None):
        return np.full(matrix.shape[0], POPULARITY, dtype=object)


#: Answer-time parameters a fallback takes from the model it serves.
_FALLBACK_OWNED = ("k", "filter_already_liked_items", "filter_items", "items")


class FallbackMixin:
    """The ``fallback`` parameter of a recommender: one rule for all of them.

    ``fallback=None`` means ``PopularityRecommender()``; ``fallback__<p>``
    in a grid works with it; a fallback may not set the answer-time
    parameters (``k`` and the filters) that it takes from the model.
    """

    def set_params(self, **params):
        """Set parameters; ``fallback__<p>`` also works with ``fallback=None``.

        ``fallback=None`` means ``PopularityRecommender()``; setting one of
        its parameters (as a grid over ``fallback__by`` does) makes that
        default explicit first, so the grid works without naming the
        fallback.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            This estimator.
        """
        nested = any(name.startswith("fallback__") for name in params)
        if nested and params.get("fallback", self.fallback) is None:
            # scikit-learn sets nested parameters after the top-level ones
            params = {**params, "fallback": PopularityRecommender()}
        return super().set_params(**params)

    # ------------------------------------------------------------------ fit
    def _check_fallback(self):
        fallback = PopularityRecommender() if self.fallback is None else self.fallback
        defaults = PopularityRecommender().get_params()
        own = fallback.get_params(deep=False)
        changed = [
            p
            for p in _FALLBACK_OWNED
            if not (own[p] is None and defaults[p] is None)
            and (own[p] is None or defaults[p] is None or own[p] != defaults[p])
        ]
        if changed:
            raise ValueError(
                f"{type(self).__name__}: fallback sets {changed!r}, which the "
                "fallback takes from the model itself (rows answered by the "
                f"fallback use {type(self).__name__}'s k and filters). Set "
                f"them on {type(self).__name__} instead."
            )
        return fallback

    def _fit_fallback(self, X):
        """``self.fallback_``: a fitted clone of the checked fallback."""
        self.fallback_ = clone(self._check_fallback()).fit(X)
        return self.fallback_
