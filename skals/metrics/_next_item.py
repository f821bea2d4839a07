"""The next-item protocol of session-based recommendation, as a scorer."""

from __future__ import annotations

import polars as pl

from .._frame import to_polars
from ..model_selection._split import check_time_column, library_of
from ._scorer import _check_k, _Parts

#: Metrics of the next-item protocol.
NEXT_ITEM_METRICS = ("hit_rate", "mrr")


class NextItemScorer:
    """Next-item scorer; create it with :func:`make_next_item_scorer`."""

    def __init__(self, metrics, k, time_col, schema=None):
        single = isinstance(metrics, str)
        names = [metrics] if single else list(metrics)
        unknown = [m for m in names if m not in NEXT_ITEM_METRICS]
        if unknown or not names:
            raise ValueError(
                f"Unknown metric(s) {unknown!r}; choose from {list(NEXT_ITEM_METRICS)}."
            )
        self.metrics = names
        self.single = single
        self.k = _check_k(k)
        self.time_col = time_col
        self.schema = schema

    def __repr__(self) -> str:
        m = self.metrics[0] if self.single else self.metrics
        return f"make_next_item_scorer({m!r}, k={self.k})"

    def protocol(self, parts: _Parts, X):
        """(context events of every prefix, truth: next item of every prefix).

        Prefix ``p`` (``1 <= p < n``) of a session of ``n`` events is its
        first ``p`` events by time, given as a session of its own (a new
        session id, the ``__prefix`` column of the truth); its truth is the
        item of event ``p + 1``.
        """
        # keys from the real sessions (a prefix id must not be taken for
        # another session's key, such as a training session's)
        df = parts.keyed(to_polars(X, allow_lazy=False))
        s, item = parts.session_col, parts.item_col
        time_col = self.time_col or parts.schema.time
        missing = [c for c in (s, item, time_col) if c not in df.columns]
        if missing:
            raise ValueError(
                f"Next-item scorer: held-out events lack {missing!r}; name the "
                "columns in the schema (make_next_item_scorer(schema=...))."
            )
        check_time_column(df, time_col, where="Next-item scorer", library=library_of(X))
        df = (
            df.with_row_index("__row")
            .sort([s, time_col, "__row"])
            .drop("__row")
            .with_columns(pl.int_range(pl.len()).over(s).alias("__pos"))
        )
        truth = (
            df.filter(pl.col("__pos") >= 1)
            .select(
                s, pl.col("__pos").alias("__position"), pl.col(item).alias("__next")
            )
            .with_row_index("__prefix")
        )
        context = (
            df.join(truth.select(s, "__prefix", "__position"), on=s)
            .filter(pl.col("__pos") < pl.col("__position"))
            .sort("__prefix", "__pos")
        )
        context = context.with_columns(
            pl.col("__prefix").cast(df.schema[s]).alias(s)
        ).drop("__prefix", "__position", "__pos")
        truth = truth.with_columns(pl.col("__prefix").cast(df.schema[s]))
        return context, truth

    def details(self, estimator, X) -> pl.DataFrame:
        """One row per prefix: session, position of the next event, its item, the
        rank of that item in the answer (null if absent) and the metrics."""
        parts = _Parts(estimator, self.schema)
        s = parts.session_col
        context, truth = self.protocol(parts, X)
        if truth.height == 0:
            raise ValueError(
                "Next-item scorer: no held-out session has two events or more; "
                "nothing to score."
            )
        answers = parts.answer_sessions(context, self.k, keyed=True)
        ranked = (
            answers.select(
                pl.col(s).alias("__prefix"),
                pl.col("recommendations").alias("__next"),
                pl.int_ranges(pl.col("recommendations").list.len()).alias("rank"),
            )
            .explode("__next", "rank")
            .drop_nulls("__next")
            .group_by("__prefix", "__next")
            .agg(pl.col("rank").min() + 1)
        )
        out = truth.join(ranked, on=["__prefix", "__next"], how="left")
        hit = pl.col("rank").is_not_null() & (pl.col("rank") <= self.k)
        cols = {
            f"hit_rate@{self.k}": hit.cast(pl.Float64),
            f"mrr@{self.k}": pl.when(hit).then(1.0 / pl.col("rank")).otherwise(0.0),
        }
        return out.sort("__prefix").select(
            s,
            pl.col("__position").alias("position"),
            pl.col("__next").alias("next_item"),
            "rank",
            **{f"{m}@{self.k}": cols[f"{m}@{self.k}"] for m in self.metrics},
        )

    def __call__(self, estimator, X, y=None):
        per = self.details(estimator, X)
        out = {
            f"{m}@{self.k}": float(per[f"{m}@{self.k}"].mean()) for m in self.metrics
        }
        return next(iter(out.values())) if self.single else out


def make_next_item_scorer(
    metrics=("hit_rate", "mrr"), *, k=20, time_col=None, schema=None
):
    """Build the next-item scorer of session-based recommendation.

    The evaluation protocol of session-rec (Ludewig & Jannach 2018): for every
    held-out session (use a splitter that holds out whole sessions, such as
    :class:`~skals.model_selection.SessionHoldoutSplit`) and every prefix of
    it, the model answers from the prefix and the truth is the next event's
    item. A session of ``n`` events gives ``n - 1`` prefixes, each scored
    once (so long sessions weigh more, as in the literature). The scores are
    averaged over all prefixes:

    - ``"hit_rate"``: the next item is in the top ``k``;
    - ``"mrr"``: ``1 / rank`` of the next item in the top ``k`` (0 if absent).

    The prefixes are answered in **one** call of the pipeline's transformers
    and recommender, each prefix as a session of its own (a fresh session id;
    a logged-in user's training history is still used). Prefix events keep
    all their columns (a cart add in the prefix has happened). A next item
    unknown to the model counts as a miss; repeated items count (the next
    event may re-view an item of the prefix).

    Parameters
    ----------
    metrics : str or sequence of str, default=("hit_rate", "mrr")
        ``"hit_rate"``, ``"mrr"`` or both. A string makes the scorer return a
        float, a sequence a dict ``{"hit_rate@20": ..., "mrr@20": ...}``.
    k : int, default=20
        List length.
    time_col : str or None, default=None
        Orders the events of a session (ties: input order); a datetime, date
        or number. ``None``: the schema's ``time``.
    schema : Schema or None, default=None
        The event log's columns (:class:`~skals.schema.Schema`); ``None``
        reads them from the scored pipeline (session and item always come
        from it; a schema given here is checked against it).

    Returns
    -------
    scorer : NextItemScorer
        ``scorer(estimator, X, y=None)``; ``scorer.details(estimator, X)``
        gives one row per prefix.

    References
    ----------
    .. [1] Ludewig, M., & Jannach, D. (2018). Evaluation of session-based
       recommendation algorithms. User Modeling and User-Adapted
       Interaction, 28, 331-390.

    Examples
    --------
    >>> from skals.metrics import make_next_item_scorer
    >>> make_next_item_scorer(k=20)
    make_next_item_scorer(['hit_rate', 'mrr'], k=20)
    """
    return NextItemScorer(metrics, k, time_col, schema)
