"""Scorers for ``GridSearchCV(scoring=...)`` on fitted skals pipelines.

Both kinds take the scikit-learn scorer signature ``scorer(estimator, X,
y=None)``: ``estimator`` is a fitted pipeline (unifier -> encoder -> builder
-> recommender) and ``X`` the held-out raw events. Each separates what the
model may see from the truth, and builds both from ``X`` itself.
"""

from __future__ import annotations

import copy
import warnings
from numbers import Integral

import polars as pl
from sklearn.pipeline import Pipeline

from .._frame import index_of, to_polars
from ..preprocessing import (
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)
from ._ranking import (
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

METRICS = {
    "precision": precision_at_k,
    "overlap": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": map_at_k,
    "hit_rate": hit_rate_at_k,
}


class _Parts:
    """The steps of a fitted skals pipeline that a scorer needs."""

    def __init__(self, estimator):
        # a fitted search scores as its refitted best pipeline
        estimator = getattr(estimator, "best_estimator_", estimator)
        steps = (
            [s for _, s in estimator.steps]
            if isinstance(estimator, Pipeline)
            else [estimator]
        )
        steps = [s for s in steps if s not in (None, "passthrough")]
        self.final = steps[-1]
        self.transformers = steps[:-1]

        def first(cls):
            return next((s for s in self.transformers if isinstance(s, cls)), None)

        self.unifier = first(PseudoUserUnifier)
        self.encoder = first(ConfidenceEncoder)
        self.builder = first(InteractionMatrixBuilder)
        if self.encoder is None or self.builder is None:
            raise TypeError(
                "skals scorers need a fitted pipeline with a ConfidenceEncoder and "
                "an InteractionMatrixBuilder before the recommender; got "
                f"{type(estimator).__name__}."
            )
        self.key_col = self.encoder.user_col
        self.item_col = self.encoder.item_col
        self.cart_col = self.encoder.cart_col
        self.session_col = self.encoder.session_col

    def keyed(self, df: pl.DataFrame) -> pl.DataFrame:
        """The events with the key column (via the pipeline's unifier)."""
        if self.unifier is not None and self.key_col not in df.columns:
            df = self.unifier.transform(df)
        return df

    def transform(self, df: pl.DataFrame, *, grain: str):
        """Run the transformers, with the encoder at ``grain``."""
        Xt = df
        for step in self.transformers:
            if step is self.encoder and step.grain != grain:
                step = copy.copy(step)
                step.grain = grain
            Xt = step.transform(Xt)
        return Xt


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    return int(k)


class TopKOverlapScorer:
    """The notebook's metric: mean ``|top-k ∩ truth| / k`` per held-out key.

    Create it with :func:`make_top_k_overlap_scorer`; ``top_k_overlap_scorer``
    is the instance with ``k=5``.
    """

    def __init__(self, k=5, include_unknown=False):
        self.k = _check_k(k)
        self.include_unknown = include_unknown

    def __repr__(self) -> str:
        return (
            f"make_top_k_overlap_scorer(k={self.k}, "
            f"include_unknown={self.include_unknown})"
        )

    def __call__(self, estimator, X, y=None) -> float:
        parts = _Parts(estimator)
        df = parts.keyed(to_polars(X, allow_lazy=False))
        truth = (
            df.group_by(parts.key_col)
            .agg(pl.col(parts.item_col).unique().alias("__truth"))
            .sort(parts.key_col)
        )
        final = parts.final
        users = getattr(final, "user_ids_", None)
        if users is not None and not self.include_unknown:
            known = index_of(truth[parts.key_col], users).is_not_null()
            truth = truth.filter(known)
        if truth.height == 0:
            warnings.warn(
                "top_k_overlap_scorer: no held-out key was seen in training; "
                "score is 0.0 (pass include_unknown=True to score them).",
                UserWarning,
                stacklevel=2,
            )
            return 0.0
        with warnings.catch_warnings():
            # unknown keys get the fallback by design here
            warnings.simplefilter("ignore", UserWarning)
            recs = final.recommend_keys(truth[parts.key_col], k=self.k)
        return precision_at_k(
            truth["__truth"].to_list(), recs["recommendations"].to_list(), k=self.k
        )


def make_top_k_overlap_scorer(k=5, *, include_unknown=False):
    """Build the top-k overlap scorer for ``GridSearchCV(scoring=...)``.

    The model sees nothing of the held-out events ``X``: each held-out key
    that the model saw in training is answered from its training history
    (:meth:`~skals.ImplicitALSRecommender.recommend_keys`). The truth of a key
    is the set of items it has any event with in ``X``, read from the raw
    events, so items unknown to the model count as misses. The score is
    ``|top-k ∩ truth| / k`` averaged over those keys. Filtering never removes
    truth: only the model's own history is filtered.

    Parameters
    ----------
    k : int, default=5
        List length.
    include_unknown : bool, default=False
        Also score held-out keys the model never saw (they get the fallback's
        popularity answer).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``.

    Examples
    --------
    >>> from skals.metrics import make_top_k_overlap_scorer
    >>> make_top_k_overlap_scorer(k=10)
    make_top_k_overlap_scorer(k=10, include_unknown=False)
    """
    return TopKOverlapScorer(k=k, include_unknown=include_unknown)


#: ``make_top_k_overlap_scorer(k=5)``: the notebook's top-5 overlap.
top_k_overlap_scorer = make_top_k_overlap_scorer(k=5)


class SessionScorer:
    """Challenge-style scorer; create it with :func:`make_session_scorer`."""

    def __init__(
        self,
        metrics,
        k,
        n_revealed,
        relevance,
        by_segment,
        time_col,
        user_col,
    ):
        single = isinstance(metrics, str)
        names = [metrics] if single else list(metrics)
        unknown = [m for m in names if m not in METRICS]
        if unknown or not names:
            raise ValueError(
                f"Unknown metric(s) {unknown!r}; choose from {sorted(METRICS)}."
            )
        if relevance not in ("cart", "any", "rest"):
            raise ValueError(
                f"relevance must be 'cart', 'any' or 'rest', got {relevance!r}."
            )
        if isinstance(n_revealed, bool) or not isinstance(n_revealed, Integral):
            raise ValueError(f"n_revealed must be an int >= 1, got {n_revealed!r}.")
        if n_revealed < 1:
            raise ValueError(f"n_revealed must be an int >= 1, got {n_revealed!r}.")
        self.metrics = names
        self.single = single and not by_segment
        self.k = _check_k(k)
        self.n_revealed = int(n_revealed)
        self.relevance = relevance
        self.by_segment = by_segment
        self.time_col = time_col
        self.user_col = user_col

    def __repr__(self) -> str:
        m = self.metrics[0] if self.single else self.metrics
        return (
            f"make_session_scorer({m!r}, k={self.k}, n_revealed={self.n_revealed}, "
            f"relevance={self.relevance!r}, by_segment={self.by_segment})"
        )

    def protocol(self, parts: _Parts, X):
        """Split held-out events into (context events, truth per session)."""
        df = to_polars(X, allow_lazy=False)
        s, item, cart = parts.session_col, parts.item_col, parts.cart_col
        needed = [s, item, self.time_col] + ([cart] if self.relevance == "cart" else [])
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise ValueError(f"Session scorer: held-out events lack {missing!r}.")
        df = (
            df.with_row_index("__row")
            .sort([s, self.time_col, "__row"])
            .with_columns(pl.int_range(pl.len()).over(s).alias("__pos"))
        )
        context = df.filter(pl.col("__pos") < self.n_revealed)
        context = context.drop([c for c in (cart, "__row", "__pos") if c in df.columns])
        relevant = {
            "cart": pl.col(cart) == 1,
            "any": pl.lit(True),
            "rest": pl.col("__pos") >= self.n_revealed,
        }[self.relevance]
        relevant = df.filter(relevant)
        truth = relevant.group_by(s).agg(pl.col(item).unique().alias("__truth"))
        info = df.group_by(s).agg(
            (pl.col(self.user_col).is_not_null().any()).alias("logged_in")
            if self.user_col in df.columns
            else pl.lit(False).alias("logged_in"),
            pl.len().clip(0, self.n_revealed).alias("n_context"),
        )
        truth = truth.join(info, on=s, how="left").sort(s)
        n_sessions = df[s].n_unique()
        return context, truth, n_sessions

    def details(self, estimator, X) -> pl.DataFrame:
        """Per-session scores: one row per scored session."""
        parts = _Parts(estimator)
        context, truth, _ = self.protocol(parts, X)
        s = parts.session_col
        if truth.height == 0:
            raise ValueError(
                "Session scorer: no held-out session has a relevant item "
                f"(relevance={self.relevance!r}); nothing to score."
            )
        context = context.filter(pl.col(s).is_in(truth[s].implode()))
        Xt = parts.transform(context, grain="session")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            answers = parts.final._predict(Xt, self.k)
        answers = to_polars(answers, allow_lazy=False)
        joined = truth.join(answers, on=s, how="left")
        preds = [p if p is not None else [] for p in joined["recommendations"]]
        cols = {
            f"{m}@{self.k}": METRICS[m](
                joined["__truth"].to_list(), preds, k=self.k, average=False
            )
            for m in self.metrics
        }
        return joined.select(s, "logged_in", "n_context").with_columns(
            **{name: pl.Series(v) for name, v in cols.items()}
        )

    def __call__(self, estimator, X, y=None):
        per = self.details(estimator, X)
        names = [f"{m}@{self.k}" for m in self.metrics]
        out = {n: float(per[n].mean()) for n in names}
        if self.by_segment:
            segments = {
                "anonymous": ~pl.col("logged_in"),
                "logged_in": pl.col("logged_in"),
                "short_context": pl.col("n_context") < self.n_revealed,
                "full_context": pl.col("n_context") >= self.n_revealed,
            }
            for seg, cond in segments.items():
                sub = per.filter(cond)
                for n in names:
                    out[f"{n}_{seg}"] = float(sub[n].mean()) if sub.height else 0.0
        return out[names[0]] if self.single else out


def make_session_scorer(
    metrics="ndcg",
    *,
    k=5,
    n_revealed=3,
    relevance="cart",
    by_segment=False,
    time_col="timestamp_local",
    user_col="user_id",
):
    """Build a challenge-style scorer for ``GridSearchCV(scoring=...)``.

    For each held-out session (use a splitter that holds out whole sessions,
    such as :class:`~skals.model_selection.SessionHoldoutSplit`), its first
    ``n_revealed`` events by time are revealed as context with the cart
    column removed, as in the challenge's test log. The pipeline answers each
    session from that context (plus, for a logged-in user, the user's
    training history). Relevant items are those carted anywhere in the session,
    revealed ones included (``relevance="cart"``), or every item of the
    session (``"any"``). Truth never enters the context, the training fold or
    the filter. Sessions without a relevant item are skipped.

    Parameters
    ----------
    metrics : str or list of str, default="ndcg"
        One of ``"ndcg"``, ``"precision"`` (= ``"overlap"``), ``"recall"``,
        ``"map"``, ``"hit_rate"``, or a list of them. A list makes the scorer
        return a dict ``{"ndcg@5": ..., ...}`` from one round of predictions
        (use it with ``GridSearchCV(refit="ndcg@5")``).
    k : int, default=5
        List length.
    n_revealed : int, default=3
        Events revealed per session (>= 1).
    relevance : {"cart", "any", "rest"}, default="cart"
        What counts as relevant: carted items, every item of the session, or
        every item of the remaining (not revealed) events.
    by_segment : bool, default=False
        Add ``"<metric>_anonymous"``, ``"_logged_in"``, ``"_short_context"``
        (fewer than ``n_revealed`` events) and ``"_full_context"`` entries to
        the returned dict.
    time_col : str, default="timestamp_local"
        Orders the events of a session.
    user_col : str, default="user_id"
        Tells logged-in sessions apart (for ``by_segment``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None)`` returning a float (one metric) or a
        dict. ``scorer.details(estimator, X)`` gives per-session scores.

    Examples
    --------
    >>> from skals.metrics import make_session_scorer
    >>> make_session_scorer(["ndcg", "precision"], k=5)
    make_session_scorer(['ndcg', 'precision'], k=5, n_revealed=3, relevance='cart', by_segment=False)
    """  # noqa: E501
    return SessionScorer(
        metrics, k, n_revealed, relevance, by_segment, time_col, user_col
    )


#: Challenge-style NDCG@5 on cart adds, 3 events revealed.
session_ndcg_scorer = make_session_scorer("ndcg")
#: Challenge-style precision (overlap) @5.
session_precision_scorer = make_session_scorer("precision")
#: Challenge-style recall@5.
session_recall_scorer = make_session_scorer("recall")
#: Challenge-style MAP@5.
session_map_scorer = make_session_scorer("map")
#: Challenge-style hit rate@5.
session_hit_rate_scorer = make_session_scorer("hit_rate")
#: All five challenge-style metrics in one dict, from one round of predictions.
session_scorers = make_session_scorer(
    ["ndcg", "precision", "recall", "map", "hit_rate"]
)
