"""Pipeline-level calls: answers by the user's own ids, and answers in long format."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from ._frame import FrameKind, index_of, to_native, to_polars
from ._warnings import warn
from .preprocessing import InteractionMatrix, PseudoUserUnifier
from .recommender._base import quiet_answers
from .recommender._calls import FALLBACK, SOURCE, frame_kind_of

__all__ = ["recommend", "to_long"]


def _ids(values, name: str) -> list | None:
    if values is None:
        return None
    if np.ndim(values) == 0:
        return [values]
    return list(values)


def _render(value) -> str | None:
    """The key text of one id, as PseudoUserUnifier renders it."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _id_column(name: str, values: list) -> pl.Series:
    """The ids as given; as strings when they mix types (``["u_1", 2]``)."""
    try:
        return pl.Series(name, values)
    except (TypeError, pl.exceptions.PolarsError):
        return pl.Series(name, [None if v is None else str(v) for v in values])


def _split(pipeline):
    """(preprocessing steps or None, final recommender, unifier or None)."""
    steps = getattr(pipeline, "steps", None)
    if steps is None:
        return None, pipeline, None
    model = steps[-1][1]
    unifier = next((s for _, s in steps[:-1] if isinstance(s, PseudoUserUnifier)), None)
    return pipeline[:-1], model, unifier


def recommend(pipeline, *, user_id=None, session_id=None, events=None, k=None):
    """Recommend for users and sessions by their own ids.

    The key of each request is built as the fitted
    :class:`~skals.PseudoUserUnifier` of ``pipeline`` builds it: the user
    prefix and the user id where a user id is given, else the session prefix
    and the session id (``user_id=243`` is the key ``"u_243"``). A key seen
    in fit is answered from its history; with ``events``, the requests'
    events are folded in (merged with that history, as ``predict``
    does). A request the model knows nothing about is answered by the
    fallback, says so in the ``source`` column, and is counted in a warning
    that names its ids.

    Parameters
    ----------
    pipeline : Pipeline or recommender
        A fitted pipeline whose last step is a skals recommender; or a
        fitted recommender (the ids are then its keys, unchanged).
    user_id : id or list of ids, optional
        Logged-in user ids. ``None`` entries (anonymous) use the session id
        at the same position.
    session_id : id or list of ids, optional
        Session ids, used where the user id is missing. With both given,
        the lists pair up position by position.
    events : dataframe, optional
        New events of the requests, in the pipeline's input format (the
        columns the pipeline was fitted on; ``add_to_cart`` may be absent).
        Given alone, its sessions are the requests: one per session, in the
        order of their first event, with the user id where logged in.
        They are put through the pipeline's fitted preprocessing; the rows
        whose key (or, at session grain, session) is requested are folded
        in. Requests without events are answered from their history.
    k : int or None, default=None
        Items per answer; ``None`` uses the recommender's ``k``.

    Returns
    -------
    answers : polars or pandas DataFrame
        One row per request, in order: the ids as given (columns named as
        the unifier's ``user_col`` and ``session_col``), the key, then
        ``recommendations``, ``scores`` and ``source`` (``"history"``,
        ``"fold_in"`` or ``"fallback"``; see :doc:`/recommendation_calls`).
        pandas when the model was fitted on data from pandas.

    Examples
    --------
    >>> import polars as pl
    >>> from sklearn.pipeline import make_pipeline
    >>> import skals
    >>> events = pl.DataFrame({
    ...     "session_id": [1, 1, 2, 2, 3, 3], "user_id": [243, 243, None, None, 7, 7],
    ...     "partnumber": [10, 11, 11, 12, 10, 12], "add_to_cart": [0, 1, 0, 0, 1, 0]})
    >>> pipe = make_pipeline(
    ...     skals.PseudoUserUnifier(), skals.ConfidenceEncoder(),
    ...     skals.InteractionMatrixBuilder(),
    ...     skals.ImplicitALSRecommender(factors=2, k=2, random_state=0)).fit(events)
    >>> out = skals.recommend(pipe, user_id=[243, None], session_id=[None, 2])
    >>> out.select("user_id", "session_id", "unified_user_id", "source").rows()
    [(243, None, 'u_243', 'history'), (None, 2, 's_2', 'history')]
    """
    pre, model, unifier = _split(pipeline)
    check_is_fitted(model)
    users, sessions = _ids(user_id, "user_id"), _ids(session_id, "session_id")
    if users is None and sessions is None and events is not None:
        users, sessions = _requests_of(events, unifier)
    if users is None and sessions is None:
        raise ValueError(
            "recommend: give user_id, session_id or both (or events=, whose "
            "sessions are then the requests)."
        )
    n = len(users if users is not None else sessions)
    users = users if users is not None else [None] * n
    sessions = sessions if sessions is not None else [None] * n
    if len(users) != len(sessions):
        raise ValueError(
            f"recommend: user_id has {len(users)} ids and session_id "
            f"{len(sessions)}; with both, they pair up position by position."
        )
    user_col = unifier.user_col if unifier is not None else "user_id"
    session_col = unifier.session_col if unifier is not None else "session_id"
    u_prefix = unifier.user_prefix if unifier is not None else ""
    s_prefix = unifier.session_prefix if unifier is not None else ""
    keys = []
    for i, (u, s) in enumerate(zip(users, sessions, strict=True)):
        u, s = _render(u), _render(s)
        if u is None and s is None:
            raise ValueError(
                f"recommend: request {i} has neither a user nor a session id."
            )
        keys.append(u_prefix + u if u is not None else s_prefix + s)
    if model.item_ids_ is None:
        raise ValueError(
            "recommend: the model was fitted on a plain matrix, which has no "
            "ids; fit it on the InteractionMatrix of InteractionMatrixBuilder."
        )
    key_series = pl.Series(model.key_name_, keys, dtype=pl.String)
    train = model._training_keys()
    if train is not None and train.dtype != pl.String:
        key_series = key_series.cast(train.dtype, strict=False)
    key_series = _logged_in_sessions(model, key_series, users, sessions)
    k = model.k if k is None else k
    if events is None:
        with quiet_answers():  # unknown ids are counted below (this thread)
            answers = model.recommend_keys(key_series, k=k)
        kind = frame_kind_of(model)
    else:
        answers, kind = _fold_in_requests(pre, model, events, key_series, sessions, k)
    if SOURCE in answers.columns:
        unknown = (answers[SOURCE] == FALLBACK).to_numpy()
        unknown &= ~model._known_keys(key_series)
        if unknown.any():
            _warn_unknown(model, unknown, users, sessions, unifier)
    first = pl.DataFrame(
        [_id_column(user_col, users), _id_column(session_col, sessions)]
    )
    out = pl.concat([first, answers], how="horizontal")
    return to_native(out, kind)


def _requests_of(events, unifier) -> tuple[list, list]:
    """The sessions of ``events`` as requests: ``(user ids, session ids)``.

    One request per session, in the order of the session's first event;
    its user id is the session's first non-null one (``None`` if anonymous).
    """
    user_col = unifier.user_col if unifier is not None else "user_id"
    session_col = unifier.session_col if unifier is not None else "session_id"
    frame = to_polars(events, allow_lazy=False)
    if session_col not in frame.columns:
        raise ValueError(
            f"recommend: events has no session column {session_col!r} to take "
            "the requests from; give user_id= or session_id=."
        )
    if user_col not in frame.columns:
        sessions = frame[session_col].unique(maintain_order=True).to_list()
        return [None] * len(sessions), sessions
    per_session = frame.group_by(session_col, maintain_order=True).agg(
        pl.col(user_col).drop_nulls().first()
    )
    return per_session[user_col].to_list(), per_session[session_col].to_list()


def _logged_in_sessions(model, keys, users, sessions):
    """Session requests of training sessions keyed by their user.

    The unifier keys a logged-in user's session by the user (``u_243``),
    so its ``s_`` key is unknown; a model that keeps its training
    sessions (session grain) knows the session's key.
    """
    pairs = zip(users, sessions, strict=True)
    only_session = [u is None and s is not None for u, s in pairs]
    if not any(only_session):
        return keys
    session_keys = model._session_keys(_id_column("session", sessions))
    if session_keys is None:
        return keys
    found = session_keys.is_not_null() & pl.Series(only_session)
    if not found.any():
        return keys
    resolved = session_keys.cast(keys.dtype, strict=False)
    return (
        pl.select(pl.when(pl.lit(found)).then(pl.lit(resolved)).otherwise(pl.lit(keys)))
        .to_series()
        .rename(keys.name)
    )


def _warn_unknown(model, unknown, users, sessions, unifier) -> None:
    """Warn about requests answered by the fallback, with the likely cause."""
    user_col = unifier.user_col if unifier is not None else "user_id"
    session_col = unifier.session_col if unifier is not None else "session_id"
    prefixes = (
        (unifier.user_prefix, unifier.session_prefix) if unifier is not None else ()
    )
    bad = [(u, s) for u, s, b in zip(users, sessions, unknown, strict=True) if b]
    shown = [
        f"{user_col}={u!r}" if u is not None else f"{session_col}={s!r}" for u, s in bad
    ]
    hints = []
    if model._key_answer == "fallback":
        hints.append(
            f"{type(model).__name__} keeps no training history and answers "
            "from a request's own events: pass them as events=."
        )
    if any(
        isinstance(v, str) and p and v.startswith(p)
        for u, s in bad
        for v in (u, s)
        for p in prefixes
    ):
        hints.append("Give the ids as in the event log, without the key prefix.")
    if model._key_answer == "history" and any(u is None for u, _ in bad):
        grain = model._session_keys(pl.Series([], dtype=pl.Int64)) is not None
        hints.append(
            "These session ids are not training sessions of the model."
            if grain
            else "A logged-in user's session is keyed by its user: ask for it "
            f"with {user_col}=, or fit at session grain to ask by {session_col}."
        )
    warn(
        f"recommend: {int(unknown.sum())} of {unknown.size} requests have neither "
        f"a history in the model nor a known event: {', '.join(shown[:5])}"
        f"{' ...' if len(shown) > 5 else ''}; they are answered by the "
        f"fallback (source='fallback'). {' '.join(hints)}".rstrip(),
        UserWarning,
    )


def _item_col(item_col, schema) -> str:
    """The item column name of :func:`to_long`'s result."""
    if item_col is not None:
        return item_col
    if schema is None:
        return "item"
    from .schema import Schema, schema_of

    if not isinstance(schema, Schema):
        schema = schema_of(schema)
    return schema.item


def _fold_in_requests(pre, model, events, keys, sessions, k):
    """Answers for the requests, from their rows of ``events`` (if any)."""
    if pre is None:
        raise ValueError("recommend: events need a pipeline to preprocess them.")
    im = pre.transform(events)
    if not isinstance(im, InteractionMatrix):
        raise TypeError(
            "recommend: the pipeline's steps must build an InteractionMatrix."
        )
    n = len(keys)
    # the builder's rows are sorted by id: sessions at session grain
    by_session = im.id_name != im.row_keys.name
    wanted = pl.Series(sessions, strict=False) if by_session else keys
    pos = index_of(wanted, im.row_ids)  # exact: "010" is not session 10
    found = pos.is_not_null().to_numpy()
    rows = pos.fill_null(0).to_numpy()
    pick = sp.csr_matrix(
        (found.astype(np.float32), (np.arange(n), rows)),
        shape=(n, im.matrix.shape[0]),
    )
    pick.eliminate_zeros()
    segments = None
    if im.row_segments is not None:
        seg = im.row_segments.gather(pl.Series(rows))
        segments = pl.select(
            pl.when(pl.lit(pl.Series(found))).then(pl.lit(seg))
        ).to_series()
    matrix = sp.csr_matrix(pick @ im.matrix, dtype=np.float32)
    matrix.sort_indices()
    recency = row_times = None
    if im.recency is not None:  # the order of events (session models)
        recency = sp.csr_matrix(pick @ im.recency, dtype=np.float32)
        recency.sort_indices()
    if im.row_times is not None:
        row_times = np.where(found, np.asarray(im.row_times)[rows], np.nan)
    request = InteractionMatrix(
        matrix=matrix,
        row_ids=keys,
        row_keys=keys,
        item_ids=model.item_ids_,
        id_name=keys.name,
        item_name=model.item_name_,
        row_segments=segments,
        kind=FrameKind("polars"),
        row_times=row_times,
        recency=recency,
    )
    return model._predict(request, k), im.kind


def to_long(answers, *, item_col=None, schema=None):
    """Answers (or similar items) in long format: one row per recommended item.

    Parameters
    ----------
    answers : polars or pandas DataFrame
        What ``predict``, :func:`recommend`, ``recommend_keys`` or
        ``similar_items`` return: id columns, a list column of item ids
        (``recommendations`` or ``similar_items``) and ``scores``.
    item_col : str or None, default=None
        Name of the item column of the result (e.g. the catalogue's
        ``"partnumber"``, to join product metadata on). ``None``: the item
        column of ``schema`` (``"item"`` without one); for similar items,
        whose frame already has that column (the queried item), the result's
        column is ``"similar_<name>"``.
    schema : Schema, Pipeline or None, default=None
        The event log's columns (:class:`~skals.Schema`), or the fitted
        pipeline they are read from (:func:`skals.schema.schema_of`).

    Returns
    -------
    long : polars or pandas DataFrame
        The other columns of ``answers`` (the key, ``source``) repeated,
        then ``rank`` (1 is best), ``item_col`` and ``score``: one row per
        (row, recommended item), in the library of ``answers``.

    Examples
    --------
    >>> import polars as pl
    >>> import skals
    >>> answers = pl.DataFrame({"session_id": [7, 8],
    ...                         "recommendations": [[3, 1], [2]],
    ...                         "scores": [[0.9, 0.5], [0.7]]})
    >>> skals.to_long(answers, item_col="partnumber").rows()
    [(7, 1, 3, 0.9), (7, 2, 1, 0.5), (8, 1, 2, 0.7)]
    >>> skals.to_long(answers, schema=skals.Schema(item="sku")).columns
    ['session_id', 'rank', 'sku', 'score']
    """
    item_col, defaulted = _item_col(item_col, schema), item_col is None
    library = "polars"
    if type(answers).__module__.startswith("pandas"):
        library = "pandas"
        answers = pl.from_pandas(answers)
    if not isinstance(answers, pl.DataFrame):
        raise TypeError(
            f"to_long: expected an answers frame (polars or pandas), got "
            f"{type(answers).__name__}."
        )
    lists = [c for c, t in answers.schema.items() if isinstance(t, pl.List)]
    items = [c for c in lists if c != "scores"]
    if len(items) != 1 or "scores" not in lists:
        raise ValueError(
            "to_long: expected one list column of item ids and a list column "
            f"'scores'; got list columns {lists!r}."
        )
    (items_col,) = items
    if defaulted and item_col in answers.columns and item_col != items_col:
        item_col = f"similar_{item_col}"  # the queried item holds the name
    if item_col in answers.columns and item_col != items_col:
        raise ValueError(
            f"to_long: the answers already have a column {item_col!r}; "
            "choose another item_col."
        )
    others = [c for c in answers.columns if c not in lists]
    out = (
        answers.with_columns(
            pl.int_ranges(1, pl.col(items_col).list.len() + 1).alias("rank")
        )
        .explode([items_col, "scores", "rank"])
        .filter(pl.col("rank").is_not_null())
        .select(
            *others,
            pl.col("rank").cast(pl.Int64),
            pl.col(items_col).alias(item_col),
            pl.col("scores").alias("score"),
        )
    )
    return to_native(out, FrameKind(library))
