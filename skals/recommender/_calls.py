"""Recommendation calls on a fitted model: similar items, explain, answer sources."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl
import scipy.linalg
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from .._frame import FrameKind, index_of, to_native
from ..preprocessing._builder import InteractionMatrix
from ._topk import topk

#: Column name of the model that answered each row of an answers frame.
SOURCE = "source"
#: Values of :data:`SOURCE` for ImplicitALSRecommender and PopularityRecommender.
HISTORY, FOLD_IN, FALLBACK, POPULARITY = "history", "fold_in", "fallback", "popularity"
#: Values of :data:`SOURCE` for the session models and the default.
NEIGHBORS, REPEAT, BLEND, MODEL = "neighbors", "repeat", "blend", "model"
#: Column names of :func:`similar_items` and :func:`explain`.
SIMILAR, CONFIDENCE, CONTRIBUTION = "similar_items", "confidence", "contribution"


def frame_kind_of(model) -> FrameKind:
    """The dataframe library of the model's training input (polars if unknown)."""
    return getattr(model, "_frame_kind", None) or FrameKind("polars")


def item_positions(model, item_ids, param: str) -> np.ndarray:
    """Column index of every id in ``item_ids``; raise naming unknown ids."""
    ids = np.asarray(item_ids, dtype=object if model.item_ids_ is not None else None)
    ids = ids.ravel()
    n_items = model.n_features_in_
    if model.item_ids_ is None:
        ok = np.array([isinstance(i, (int, np.integer)) for i in ids.tolist()])
        ints = np.array([int(i) if o else -1 for i, o in zip(ids, ok, strict=True)])
        bad = ids[~ok | (ints < 0) | (ints >= n_items)] if ids.size else ids
        if bad.size:
            raise ValueError(
                f"{param}: {bad[:5].tolist()!r} are not column indices in "
                f"[0, {n_items}) (the model was fitted on a plain matrix)."
            )
        return ints.astype(np.int64)
    series = pl.Series(model.item_name_, ids.tolist())
    pos = index_of(series, model.item_ids_)
    if pos.null_count():
        bad = series.filter(pos.is_null()).to_list()
        raise ValueError(
            f"{param}: {len(bad)} ids are not items of the model "
            f"({model.item_name_!r}): {bad[:5]!r}."
        )
    return pos.to_numpy().astype(np.int64)


def _item_series(model, name: str, positions: np.ndarray) -> pl.Series:
    if model.item_ids_ is None:
        return pl.Series(name, positions)
    return model.item_ids_.gather(pl.Series(positions)).rename(name)


def similar_items(model, item_ids, k: int = 10):
    """Items most similar to each of ``item_ids``, by the model's similarity.

    ``model._similar_ranked(queries, k)`` ranks; this maps the ids and
    builds the frame. See
    :meth:`skals.recommender.ImplicitALSRecommender.similar_items`.
    """
    check_is_fitted(model)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"similar_items: k must be an int >= 1, got {k!r}.")
    scalar = np.ndim(item_ids) == 0
    queries = item_positions(model, [item_ids] if scalar else item_ids, "item_ids")
    ids, scores, counts = model._similar_ranked(queries, int(k))
    model._warn_short(counts, k)
    name = model.item_name_
    frame = model._answers_frame(
        _item_series(model, name, queries), ids, scores, counts, FrameKind("polars")
    )
    frame = frame.rename({frame.columns[1]: SIMILAR})
    return to_native(frame, frame_kind_of(model))


def factor_similar(model, queries: np.ndarray, k: int):
    """Cosine of the item factors: ``(ids, scores, counts)`` per query."""
    factors = np.asarray(model.item_factors_, dtype=np.float32)
    # implicit's rule: a zero factor gets a tiny norm instead of 0
    norms = np.linalg.norm(factors, axis=1)
    norms[norms == 0] = 1e-10
    unit = np.ascontiguousarray(factors / norms[:, None], dtype=np.float32)
    n = queries.size
    itself = sp.csr_matrix(
        (np.ones(n, dtype=np.float32), (np.arange(n), queries)),
        shape=(n, factors.shape[0]),
    )
    return topk(unit[queries], unit, k, exclude=itself)


def cooccurrence_similar(sessions: sp.csr_matrix, queries: np.ndarray, k: int):
    """Cosine of the items' session sets: ``(ids, scores, counts)`` per query.

    With ``B`` the binary sessions x items matrix, items ``i`` and ``j``
    score ``|S_i n S_j| / sqrt(|S_i| |S_j|)`` (``S_i``: the sessions holding
    ``i``); items that never share a session are not similar (score 0, left
    out), nor is the item itself. Ties: the lower column first.
    """
    from ._topk import sparse_topk

    B = sp.csr_matrix(sessions, dtype=np.float64, copy=True)
    B.eliminate_zeros()
    B.data[:] = 1.0
    n_with = np.asarray(B.sum(axis=0)).ravel()
    co = sp.csr_matrix(B[:, queries].T @ B)
    rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
    denom = np.sqrt(n_with[queries][rows] * n_with[co.indices])
    co.data = np.where(co.indices == queries[rows], 0.0, co.data / denom)
    co.eliminate_zeros()
    ids, scores, counts = sparse_topk(co, k)
    return ids, scores.astype(np.float32), counts.astype(np.int64)


def _context_row(model, context, key) -> sp.csr_matrix:
    """One row of confidences over the fitted items, as predict folds it in."""
    n_items = model.n_features_in_
    if context is None:
        row = sp.csr_matrix((1, n_items), dtype=np.float32)
    elif isinstance(context, InteractionMatrix):
        model._check_items_match(context)
        if context.matrix.shape[0] != 1:
            raise ValueError(
                f"context: an InteractionMatrix with one row is needed, got "
                f"{context.matrix.shape[0]}; select the row first."
            )
        row = context.matrix
        if key is None:  # the row's own key: its history, if it has one
            own = context.row_keys[0]
            if model._history_index(pl.Series([own]))[0] >= 0:
                key = own
    elif isinstance(context, Mapping):
        pos = item_positions(model, list(context), "context")
        values = np.asarray(list(context.values()), dtype=np.float32)
        if not (np.isfinite(values).all() and (values >= 0).all()):
            raise ValueError("context: confidences must be finite and >= 0.")
        row = sp.csr_matrix(
            (values, (np.zeros(pos.size, dtype=np.int64), pos)), shape=(1, n_items)
        )
    else:
        row = model._check_predict_matrix(context)
        if row.shape[0] != 1:
            raise ValueError(f"context: one row is needed, got {row.shape[0]}.")
    row = sp.csr_matrix(row, dtype=np.float32)
    if key is not None:
        hist = model._history_index(pl.Series([key]))
        if hist[0] < 0:
            raise ValueError(f"key={key!r} was not seen in fit.")
        if model.merge_history or row.nnz == 0:
            row = row.maximum(model._history_rows(hist))
    row = sp.csr_matrix(row)
    row.eliminate_zeros()
    row.sort_indices()
    return row


def explain(model, item_id, context=None, *, key=None, k=None):
    """Contribution of each context item to ``item_id``'s folded-in score.

    See :meth:`skals.recommender.ImplicitALSRecommender.explain`.
    """
    check_is_fitted(model)
    engine = getattr(model, "_fit_engine_", "implicit")
    if engine != "implicit":
        raise NotImplementedError(
            "explain follows implicit's fold-in; the factors of "
            f"engine={engine!r} are folded in with another rule."
        )
    (target,) = item_positions(model, [item_id], "item_id")
    row = _context_row(model, context, key)
    Y = np.asarray(model.item_factors_, dtype=np.float64)
    cols = row.indices.astype(np.int64)
    # the fitted model's alpha and regularization (predict reads fitted state)
    conf = float(model._fit_alpha_) * row.data.astype(np.float64)
    Yu = Y[cols]
    # Hu et al. (2008), section 5: W_u = (Y^T C_u Y + lambda I)^-1 and
    # s_ij = y_i^T W_u y_j c_uj; the s_ij sum to y_i^T x_u of the fold-in
    A = Y.T @ Y + model._fit_regularization_ * np.eye(Y.shape[1])
    A += (Yu.T * (conf - 1.0)) @ Yu
    weighted = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A), Y[target])
    contribution = (Yu @ weighted) * conf
    order = np.argsort(-contribution, kind="stable")
    if k is not None:
        order = order[:k]
    frame = pl.DataFrame(
        {
            model.item_name_: _item_series(model, model.item_name_, cols[order]),
            CONFIDENCE: conf[order],
            CONTRIBUTION: contribution[order],
        }
    )
    return to_native(frame, frame_kind_of(model))


def als_sources(model, matrix, row_keys, *, use_history=None) -> np.ndarray:
    """Which model answers each row: the rule of ``ImplicitALSRecommender``.

    ``"history"``: the key's trained factor; ``"fold_in"``: a factor solved
    from the row's events (merged with its history); ``"fallback"``: the
    fallback model.
    """
    n = matrix.shape[0]
    use_history = model.merge_history if use_history is None else use_history
    hist = model._history_index(row_keys)
    if hist.size != n:
        hist = np.full(n, -1, dtype=np.int64)
    known = (hist >= 0) & use_history
    has_new = np.asarray(matrix.getnnz(axis=1)) > 0
    if not model.fold_in:
        known, has_new = hist >= 0, np.zeros(n, dtype=bool)
    out = np.full(n, FALLBACK, dtype=object)
    out[known & ~has_new] = HISTORY
    out[has_new] = FOLD_IN
    return out


def check_not_event_log(model, X, method: str) -> None:
    """Raise a clear error when a recommender is given an event frame.

    A recommender takes the users x items matrix; an event log (or the
    encoder's output) must go through the preprocessing steps first. A frame
    of numbers only is a dense matrix, as scikit-learn accepts it.
    """
    module = type(X).__module__
    if not module.startswith(("polars", "pandas", "pyspark")):
        return
    schema = getattr(X, "collect_schema", None)  # polars, lazy or not
    if schema is not None:
        schema = schema()
        columns = schema.names()
        numeric = all(t.is_numeric() or t == pl.Boolean for t in schema.dtypes())
    elif hasattr(X, "columns") and hasattr(X, "dtypes"):  # pandas
        columns = list(X.columns)
        numeric = all(getattr(t, "kind", "O") in "biuf" for t in X.dtypes)
    elif hasattr(X, "columns"):  # Spark
        columns, numeric = list(X.columns), False
    else:  # e.g. a polars Series
        return
    if numeric:  # a dense users x items matrix, as scikit-learn accepts
        return
    name = type(model).__name__
    raise TypeError(
        f"{name}.{method} takes the users x items matrix, not a dataframe "
        f"(got a {module.split('.')[0]} {type(X).__name__} with columns "
        f"{columns[:6]!r}). Build the matrix first: "
        f"make_pipeline(PseudoUserUnifier(), ConfidenceEncoder(), "
        f"InteractionMatrixBuilder(), {name}()).fit(events), or pass "
        "InteractionMatrixBuilder().fit_transform(encoded)."
    )
