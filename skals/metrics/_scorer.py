"""Scorers for ``GridSearchCV(scoring=...)`` on fitted skals pipelines.

Both kinds take the scikit-learn scorer signature ``scorer(estimator, X,
y=None)``: ``estimator`` is a fitted pipeline (unifier -> encoder -> builder
-> recommender) and ``X`` the held-out raw events. Each separates what the
model may see from the truth, and builds both from ``X`` itself.
"""

from __future__ import annotations

import math
from numbers import Integral

import polars as pl
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .._frame import index_of, to_polars
from .._utils import answering_pipeline
from .._warnings import warn
from ..model_selection._protocol import reveal_first_n
from ..recommender._base import quiet_answers
from ..schema import resolve_schema
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
    """What a scorer reads from a fitted pipeline: columns, steps, answers.

    The columns come from the pipeline's own steps (:func:`skals.schema.
    schema_of`), or from the schema given to the scorer, checked against
    them; steps are found by what they do, not by their class.
    """

    def __init__(self, estimator, schema=None):
        # a fitted search scores as its refitted best pipeline
        estimator = getattr(estimator, "best_estimator_", estimator)
        if not isinstance(estimator, Pipeline) or len(estimator.steps) < 2:
            raise TypeError(
                "skals scorers need a fitted pipeline from events to a "
                "recommender (e.g. make_recommender_pipeline(...)); got "
                f"{type(estimator).__name__}."
            )
        self.pipeline = estimator
        self.final = estimator.steps[-1][1]
        check_is_fitted(self.final)
        self.schema = resolve_schema(estimator, schema)
        self.key_col = getattr(self.final, "key_name_", None) or self._encoded_key()
        self.item_col = self.schema.item
        self.cart_col = self.schema.cart
        self.session_col = self.schema.session

    def _encoded_key(self) -> str:
        # the key column the encoding step groups by (the step with a grain)
        for _, step in self.pipeline.steps[:-1]:
            params = step.get_params(deep=False)
            if "grain" in params and "user_col" in params:
                return params["user_col"]
        raise TypeError(
            "skals scorers need a pipeline with an encoding step (a "
            "ConfidenceEncoder) before the recommender."
        )

    def keyed(self, df: pl.DataFrame) -> pl.DataFrame:
        """The events with the key column: the steps run until it appears.

        ``n_keying_steps`` counts the steps that ran (the rest answer).
        """
        self.n_keying_steps = 0
        for _, step in self.pipeline.steps[:-1]:
            if self.key_col in df.columns:
                break
            df = to_polars(step.transform(df), allow_lazy=False)
            self.n_keying_steps += 1
        if self.key_col not in df.columns:
            raise ValueError(
                f"Scorer: no step of the pipeline adds the key column "
                f"{self.key_col!r} the recommender was fitted with."
            )
        return df

    def answer_sessions(
        self, context: pl.DataFrame, k: int, *, keyed: bool = False
    ) -> pl.DataFrame:
        """One answer per session of ``context`` (public ``predict`` only).

        ``keyed=True``: ``context`` came through :meth:`keyed`, so the steps
        that made its keys are not run again.
        """
        pipe = self.pipeline[self.n_keying_steps :] if keyed else self.pipeline
        answering = answering_pipeline(pipe, k=k, grain="session")
        with quiet_answers():  # this thread's answer warnings only
            answers = answering.predict(context)
        return to_polars(answers, allow_lazy=False)


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
            warn(
                "top_k_overlap_scorer: no held-out key was seen in training; "
                "score is 0.0 (pass include_unknown=True to score them).",
                UserWarning,
            )
            return 0.0
        with quiet_answers():  # unknown keys get the fallback by design here
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
        schema=None,
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
        self.schema = schema

    def __repr__(self) -> str:
        m = self.metrics[0] if self.single else self.metrics
        return (
            f"make_session_scorer({m!r}, k={self.k}, n_revealed={self.n_revealed}, "
            f"relevance={self.relevance!r}, by_segment={self.by_segment})"
        )

    def protocol(self, parts: _Parts, X):
        """Split held-out events into (context events, truth per session)."""
        time_col = self.time_col or parts.schema.time
        lazy = isinstance(X, pl.LazyFrame)  # refused below, with its own error
        columns = () if lazy else [str(c) for c in getattr(X, "columns", ())]
        if (
            not lazy
            and time_col not in columns
            and self.time_col is None
            and self.schema is None
        ):
            raise ValueError(
                f"Session scorer: the held-out events have no time column "
                f"{time_col!r}. The pipeline's steps do not read event times "
                "(ALS needs no order), so give the scorer the schema the "
                "pipeline was built with: make_session_scorer(..., schema=schema)."
            )
        context, truth = reveal_first_n(
            X,
            self.n_revealed,
            session_col=parts.session_col,
            item_col=parts.item_col,
            time_col=time_col,
            cart_col=parts.cart_col,
            user_col=self.user_col or parts.schema.user,
            relevance=self.relevance,
        )
        return context, truth.rename({"relevant": "__truth"}), None

    def details(self, estimator, X) -> pl.DataFrame:
        """Per-session scores: one row per scored session."""
        parts = _Parts(estimator, self.schema)
        context, truth, _ = self.protocol(parts, X)
        s = parts.session_col
        if truth.height == 0:
            raise ValueError(
                "Session scorer: no held-out session has a relevant item "
                f"(relevance={self.relevance!r}); nothing to score."
            )
        context = context.filter(pl.col(s).is_in(truth[s].implode()))
        answers = parts.answer_sessions(context, self.k)
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
                    # NaN, not 0.0: an empty segment has no score, and a
                    # mean over segments (np.nanmean) must not count it
                    out[f"{n}_{seg}"] = float(sub[n].mean()) if sub.height else math.nan
        return out[names[0]] if self.single else out


def make_session_scorer(
    metrics="ndcg",
    *,
    k=5,
    n_revealed=3,
    relevance="cart",
    by_segment=False,
    time_col=None,
    user_col=None,
    schema=None,
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
        the returned dict. A segment without any scored session is ``NaN``
        (not 0.0), so that means over segments or folds can skip it
        (``numpy.nanmean``).
    time_col : str or None, default=None
        Orders the events of a session: a datetime, date or number column
        (strings are refused with the splitters' ``TypeError``, as they would
        sort as text). ``None``: the schema's ``time``.
    user_col : str or None, default=None
        Tells logged-in sessions apart (for ``by_segment``); it must be a
        column of the held-out events. ``None``: the schema's ``user``.
    schema : Schema or None, default=None
        The event log's columns (:class:`~skals.schema.Schema`). ``None``
        reads them from the scored pipeline's steps
        (:func:`~skals.schema.schema_of`); a schema given here is checked
        against them. The session, item and cart columns always come from
        the pipeline, so they cannot disagree with what it was fitted on.

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
        metrics, k, n_revealed, relevance, by_segment, time_col, user_col, schema
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
