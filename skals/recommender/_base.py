"""What every skals recommender shares: input handling, filters, answers."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from numbers import Integral

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, check_non_negative
from sklearn_compat.utils.validation import validate_data

from .._frame import FrameKind, index_of
from .._sklearn import Interval, validate_parameter_constraints
from .._warnings import warn
from ..preprocessing._builder import InteractionMatrix
from ..preprocessing._confidence import CART_COUNT, VIEW_COUNT
from ._calls import MODEL, SOURCE, check_not_event_log

#: Column names of the answers frame.
RECOMMENDATIONS, SCORES = "recommendations", "scores"

#: Whether answer warnings are silenced in the current context (a context
#: variable: per thread and per asyncio task, unlike ``catch_warnings``).
_QUIET = ContextVar("skals_quiet_answers", default=False)


@contextmanager
def quiet_answers():
    """Silence the recommenders' answer warnings, in this context only.

    For callers that answer by design what the warnings are about (a scorer
    giving unknown keys the fallback). Unlike ``warnings.catch_warnings``,
    which swaps the process-wide filters, other threads keep their warnings.
    """
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def warn_answer(message: str, stacklevel: int = 2) -> None:
    """``warnings.warn(message, UserWarning)`` unless :func:`quiet_answers`."""
    if not _QUIET.get():
        warn(message, UserWarning)  # attributed to the user's line


def encoder_confidences(im: InteractionMatrix) -> bool:
    """Whether ``im``'s values are ConfidenceEncoder confidences.

    The encoder's output carries the view and cart counts the values were
    made from (the builder sums them into ``item_stats``); any other value
    column does not.
    """
    stats = im.item_stats
    return stats is not None and {VIEW_COUNT, CART_COUNT} <= set(stats.columns)


def to_key_grain(im: InteractionMatrix) -> tuple[sp.csr_matrix, pl.Series]:
    """Training rows per key from a matrix whose rows may be sessions.

    The sessions of a key are summed per item so that the result is what the
    same values give at key grain:

    * ConfidenceEncoder confidences (``c = 1 + w_v * views + w_c * carts``,
      recognised by the view and cart counts the builder carries) are summed
      as ``1 + sum(c_s - 1)``: the encoder's formula on the summed counts,
      with its intercept of 1 counted once. Such values are at least 1; a
      value below 1 is refused (it cannot come from that formula).
    * Any other non-negative values (binary flags, ratings, counts) are
      summed plainly: two sessions with value 1 give 2.
    """
    keys = im.row_keys
    if im.id_name == keys.name:
        return im.matrix, im.row_ids
    vocab = keys.unique().sort()
    key_of_row = index_of(keys, vocab).to_numpy()
    coo = im.matrix.tocoo()
    values = coo.data.astype(np.float64)
    excess = encoder_confidences(im)
    if excess:
        n_low = int((values < 1.0).sum())
        if n_low:
            raise ValueError(
                f"InteractionMatrix: {n_low} session confidences are below 1, "
                "so they are not ConfidenceEncoder confidences (1 + weighted "
                "counts) although the matrix carries its view/cart counts; "
                "sessions of a key cannot be summed as 1 + sum(c_s - 1). "
                "Build the matrix from the encoder's output unchanged, or at "
                "key grain."
            )
        # 1 + sum(c_s - 1): sum the excess over 1, add the intercept once
        values -= 1.0
    # scipy's COO -> CSR sums the entries of a (key, item) pair (in float64)
    # and keeps the pairs whose sum is 0; no frame or hash table of the
    # pairs is made (the polars group-by of the pairs took 0.7 s and about
    # 2 GB at the challenge's scale)
    rows = key_of_row.astype(np.int32 if len(vocab) < 2**31 else np.int64)[coo.row]
    summed = sp.csr_matrix(
        (values, (rows, coo.col)), shape=(len(vocab), im.matrix.shape[1])
    )
    del rows, values, coo
    summed.sum_duplicates()
    if excess:
        summed.data += 1.0
    matrix = sp.csr_matrix(
        (summed.data.astype(np.float32), summed.indices, summed.indptr),
        shape=summed.shape,
    )
    return matrix, vocab


#: Why a model may lack a call, for :func:`unsupported`.
_WHY = {
    "similar_items": "it has no item-item similarity",
    "explain": "its scores do not split into contributions",
}


def supports(cls, call: str) -> bool:
    """Whether the recommender class ``cls`` defines ``call`` itself.

    ``similar_items`` is defined by a ``_similar_ranked`` of its own,
    ``explain`` by an ``explain`` of its own (the base's raise).
    """
    attr = "_similar_ranked" if call == "similar_items" else call
    return getattr(cls, attr) is not getattr(BaseRecommender, attr)


def public_recommenders() -> list:
    """The skals recommender classes loaded so far (public names only)."""
    found, stack = set(), list(BaseRecommender.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("skals.") and not cls.__name__.startswith(
            ("Base", "_")
        ):
            found.add(cls)
    return sorted(found, key=lambda c: c.__name__)


def unsupported(model, call: str) -> str:
    """The message of the ``NotImplementedError`` of an undefined call."""
    name = type(model).__name__
    having = [c.__name__ for c in public_recommenders() if supports(c, call)]
    having = [
        f"{n} (when one of its components has it)" if n == "BlendRecommender" else n
        for n in having
    ]
    return (
        f"{name} does not define {call}: {_WHY[call]}. {call} is defined for "
        f"{', '.join(having) or 'no loaded model'} (see the table in the docs' "
        "recommendation_calls page)."
    )


class BaseRecommender(BaseEstimator):
    """Base class: users x items matrix in, top-k items out.

    Subclasses call ``_fit_input(X)`` in ``fit`` and implement
    ``_rank_context(matrix, row_keys, im, *, k) -> (ids, scores, counts)``
    (ending with ``_finish_answers``); ``_answers_frame`` builds the output.
    Parameters named in ``_predict_params`` are read when answering and are
    validated there (``_check_predict_params``), so ``set_params(k=0)``
    after fit is an error, not empty answers.
    """

    _parameter_constraints: dict = {
        "k": [Interval(Integral, 1, None, closed="left")],
        "filter_already_liked_items": ["boolean"],
        "filter_items": ["array-like", None],
        "items": ["array-like", None],
    }

    #: Parameters read when answering; validated at every answer.
    _predict_params = ("k", "filter_already_liked_items", "filter_items", "items")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.target_tags.required = False
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fit
    def _check_fit_matrix(self, matrix) -> sp.csr_matrix:
        """The training matrix validated: CSR float32, >= 0, no stored zeros.

        Sparse matrices and arrays alike; a copy before dropping stored
        zeros, as ``csr_matrix()`` of a CSR input shares the caller's arrays.
        """
        matrix = validate_data(
            self,
            matrix,
            accept_sparse="csr",
            dtype=np.float32,
            reset=True,
            ensure_min_samples=1,
            ensure_min_features=1,
        )
        check_non_negative(matrix, f"{type(self).__name__}.fit")
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        if matrix.nnz and not matrix.data.all():
            matrix = matrix.copy()
            matrix.eliminate_zeros()
        return matrix

    def _fit_input(self, X):
        """Validate the training input: (csr float32, keys, item ids, im)."""
        check_not_event_log(self, X, "fit")
        im = X if isinstance(X, InteractionMatrix) else None
        if im is not None:
            matrix, keys = to_key_grain(im)
        else:
            matrix, keys = X, None
        matrix = self._check_fit_matrix(matrix)
        if im is not None:
            self.user_ids_ = keys
            self.item_ids_ = im.item_ids
            self.key_name_ = im.row_keys.name
            self.item_name_ = im.item_name
            self._frame_kind = im.kind  # answers of similar_items, explain
        else:
            self.user_ids_ = None
            self.item_ids_ = None
            self.key_name_ = "user"
            self.item_name_ = "item"
            self._frame_kind = None
        return matrix, im

    # -------------------------------------------------------------- filters
    def _item_indices(self, ids, param: str) -> np.ndarray:
        """Map item ids of a parameter to column indices (warn on unknown)."""
        ids = np.asarray(ids).ravel()
        n_items = self.n_features_in_
        if self.item_ids_ is None:
            if ids.size and (
                not np.issubdtype(ids.dtype, np.integer)
                or ids.min() < 0
                or ids.max() >= n_items
            ):
                raise ValueError(
                    f"{param} must hold column indices in [0, {n_items}) when the "
                    f"model was fitted on a plain matrix; got {ids[:5]!r}..."
                )
            return np.unique(ids.astype(np.int64))
        idx = index_of(pl.Series(ids), self.item_ids_)
        unknown = idx.null_count()
        if unknown:
            warn_answer(
                f"{type(self).__name__}: {unknown} of {len(ids)} ids in {param} "
                "are not items of the model and are ignored.",
                stacklevel=4,
            )
        return np.unique(idx.drop_nulls().to_numpy().astype(np.int64))

    def _filters(self):
        """(banned, allowed) column indices from ``filter_items``/``items``."""
        if self.filter_items is not None and self.items is not None:
            raise ValueError("Set at most one of filter_items and items.")
        banned = allowed = None
        if self.filter_items is not None:
            banned = self._item_indices(self.filter_items, "filter_items")
        if self.items is not None:
            allowed = self._item_indices(self.items, "items")
            if allowed.size == 0:
                raise ValueError("items leaves no item of the model to recommend.")
        n_eligible = self.n_features_in_
        if banned is not None:
            n_eligible -= banned.size
        if allowed is not None:
            n_eligible = allowed.size
        if n_eligible <= 0:
            raise ValueError("filter_items excludes every item of the model.")
        return banned, allowed

    # -------------------------------------------------------------- predict
    def _check_predict_params(self, k=None) -> int:
        """Validate the answer-time parameters; the ``k`` to answer with."""
        names = self._predict_params
        validate_parameter_constraints(
            {p: self._parameter_constraints[p] for p in names},
            {p: getattr(self, p) for p in names},
            caller_name=type(self).__name__,
        )
        if k is None:
            return int(self.k)
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}.")
        return int(k)

    def _check_predict_matrix(self, X):
        check_not_event_log(self, X, "predict")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float32, reset=False)
        check_non_negative(X, f"{type(self).__name__}.predict")
        return sp.csr_matrix(X, dtype=np.float32)

    def predict(self, X):
        """Top-k recommendations for every row of ``X``.

        Parameters
        ----------
        X : InteractionMatrix, or {array-like, sparse matrix} of shape \
                (n_rows, n_items)
            Interactions to answer for. From the builder: rows are keys (or
            sessions) in original ids. A plain matrix: every row is treated as
            a user's interactions over the fitted items.

        Returns
        -------
        recommendations : polars or pandas DataFrame, or ndarray
            For an :class:`InteractionMatrix`: a frame with the row id column,
            ``recommendations`` (list of item ids, best first), ``scores``
            (list of floats) and ``source`` (which model answered the row:
            ``"history"``, ``"fold_in"``, ``"fallback"`` or ``"popularity"``;
            see :doc:`/recommendation_calls`), in the library of the
            original input. For a
            plain matrix: int array of shape (n_rows, k) of column indices
            (``k`` clipped, with a warning, to the fewest eligible items of any
            row).
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, k: int | None = None):
        k = self._check_predict_params(k)
        if isinstance(X, InteractionMatrix):
            self._check_items_match(X)
            matrix = sp.csr_matrix(X.matrix, dtype=np.float32)
            ids, scores, counts = self._rank_context(matrix, X.row_keys, X, k=k)
            source = self._answer_sources(matrix, X.row_keys, im=X)
            return self._answers_frame(X.row_ids, ids, scores, counts, X.kind, source)
        X = self._check_predict_matrix(X)
        ids, _, counts = self._rank_context(X, None, None, k=k)
        k = int(counts.min()) if counts.size else k
        return ids[:, :k].astype(np.intp)

    def _blend_candidates(self, matrix, row_keys, im, *, k):
        """``(ids, scores, n_own)``: what a blend normalises, and sums.

        ``ids``/``scores`` are the model's ranked answer
        (:meth:`_rank_context`); a blend normalises each row over all of it,
        then sums only its first ``n_own`` entries: the model's own
        candidates. By default every answered item is one. A model whose
        answer is its own few items completed by a fallback gives the count
        of its own items: the fill stays the anchor of the normalisation, but
        it is not that model's opinion, and the blend completes its lists with
        its own fallback.
        """
        ids, scores, _ = self._rank_context(matrix, row_keys, im, k=k)
        return ids, scores, (ids >= 0).sum(axis=1)

    def _check_items_match(self, im: InteractionMatrix) -> None:
        if im.matrix.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {im.matrix.shape[1]} items, but {type(self).__name__} "
                f"was fitted with {self.n_features_in_}."
            )
        # same size is not enough: columns of another vocabulary would be
        # answered with this model's item ids
        if self.item_ids_ is not None and not im.item_ids.equals(
            self.item_ids_, check_names=False
        ):
            raise ValueError(
                f"X's items differ from those {type(self).__name__} was fitted "
                "with; build X with the InteractionMatrixBuilder of the fit."
            )
        data = im.matrix.data
        n_bad = int((~np.isfinite(data) | (data < 0)).sum())
        if n_bad:
            raise ValueError(
                f"X has {n_bad} NaN, infinite or negative confidences; "
                "confidences must be finite and >= 0."
            )

    def _finish_answers(self, ids, scores, counts, *, filtered, rerank):
        """Never an empty list; warn when rows got fewer than ``k`` items.

        Rows left with nothing because everything eligible was already liked
        are answered again without that filter (``rerank(rows)``).
        """
        empty = np.flatnonzero(counts == 0)
        if empty.size and filtered:
            warn_answer(
                f"{type(self).__name__}: {empty.size} rows have already liked "
                "every eligible item; they are answered without "
                "filter_already_liked_items.",
                stacklevel=4,
            )
            ids[empty], scores[empty], counts[empty] = rerank(empty)
        self._warn_short(counts, ids.shape[1])
        return ids, scores, counts

    def _warn_short(self, counts: np.ndarray, k: int) -> None:
        short = int((counts < k).sum())
        if short:
            warn_answer(
                f"{type(self).__name__}: k={k} clipped for {short} of "
                f"{counts.size} rows that have fewer eligible items "
                f"(min {int(counts.min())}).",
                stacklevel=4,
            )

    def _answer_sources(self, matrix, row_keys, use_history=None, im=None):
        """Which model answered each row: the ``source`` column.

        The default, for a model that does not tell its rows apart, labels
        every row ``"model"``; the skals models say more (see
        :doc:`/recommendation_calls`).
        """
        return np.full(matrix.shape[0], MODEL, dtype=object)

    # ------------------------------------------------- the common contract
    #: What ``recommend_keys`` answers a key from: ``"history"`` (its
    #: training rows; unknown keys get the fallback, with a warning),
    #: ``"popularity"`` (every key alike, no warning) or ``"fallback"`` (the
    #: model keeps no history: every key gets the fallback, with a warning).
    _key_answer = "history"

    def _training_keys(self) -> pl.Series | None:
        """Keys whose training history the model answers from (or None)."""
        return getattr(self, "user_ids_", None)

    def _known_keys(self, keys: pl.Series) -> np.ndarray:
        """Whether each key has a training history the model answers from."""
        train = self._training_keys()
        if self._key_answer != "history" or train is None or not len(keys):
            return np.zeros(len(keys), dtype=bool)
        train = train.unique().sort()
        return index_of(keys, train).is_not_null().to_numpy()

    def _session_keys(self, session_ids: pl.Series) -> pl.Series | None:
        """The training key of each training session id (null if unknown).

        ``None`` when the model keeps no training sessions (it was fitted
        at key grain, or does not keep them): a logged-in user's session is
        then only reachable through its user's key.
        """
        return None

    def _rank_keys(self, keys: pl.Series, k: int):
        """``(ids, scores, counts)`` for keys, from their history alone."""
        empty = sp.csr_matrix((len(keys), self.n_features_in_), dtype=np.float32)
        return self._rank_context(empty, keys, None, k=k)

    def _blend_key_candidates(self, keys: pl.Series, k: int):
        """``(ids, scores, n_own)`` for keys: :meth:`_blend_candidates` of a key.

        A key's answer is the model's own opinion only where the model
        answers it from what it learnt: a known key (``"history"``), every
        key (``"popularity"``), none (``"fallback"``: a model without
        history answers every key with its fallback). Elsewhere the answer
        is its fallback, which a blend only normalises against.
        """
        ids, scores, _ = self._rank_keys(keys, k)
        if self._key_answer == "popularity":
            own = np.ones(len(keys), dtype=bool)
        else:  # "fallback" models know no key
            own = self._known_keys(keys)
        return ids, scores, np.where(own, (ids >= 0).sum(axis=1), 0)

    def recommend_keys(self, keys, *, k=None):
        """Answer keys from what the model keeps of their training history.

        What a key's answer is made of depends on the model (its ``source``
        column says it): ImplicitALSRecommender uses the key's trained
        factor, SessionKNNRecommender the items of the key's training
        sessions as one query, PopularityRecommender the global ranking;
        RepeatRecommender keeps no history, so every key gets its fallback.
        Keys unknown to a model with a history get the fallback (source
        ``"fallback"``), with a warning that counts them.

        Parameters
        ----------
        keys : array-like of str
            User keys, as built by :class:`~skals.PseudoUserUnifier`
            (``"u_243"``); :func:`skals.recommend` builds them from the
            user's own ids.
        k : int or None, default=None
            Items per answer; ``None`` uses the ``k`` parameter.

        Returns
        -------
        recommendations : polars.DataFrame
            One row per key: the key, ``recommendations``, ``scores`` and
            ``source`` (see :doc:`/recommendation_calls`).
        """
        check_is_fitted(self)
        k = self._check_predict_params(k)
        keys = pl.Series(getattr(self, "key_name_", "user"), list(keys))
        name = type(self).__name__
        if self._key_answer == "history":
            n_unknown = int((~self._known_keys(keys)).sum())
            if n_unknown:
                warn_answer(
                    f"{name}: {n_unknown} of {len(keys)} keys were not seen in "
                    "fit; they get the fallback (source 'fallback'). Keys carry "
                    "the unifier's prefix (u_243); skals.recommend(pipeline, "
                    "user_id=243) builds them from the user's own id.",
                    stacklevel=2,
                )
        elif self._key_answer == "fallback" and len(keys):
            warn_answer(
                f"{name} keeps no training history: the {len(keys)} keys get "
                "the fallback (source 'fallback'). It answers from a row's own "
                "events: predict, or skals.recommend(pipeline, ..., events=...).",
                stacklevel=2,
            )
        ids, scores, counts = self._rank_keys(keys, k)
        empty = sp.csr_matrix((len(keys), self.n_features_in_), dtype=np.float32)
        source = self._answer_sources(empty, keys, use_history=True)
        return self._answers_frame(
            keys, ids, scores, counts, FrameKind("polars"), source
        )

    def _supports(self, call: str) -> bool:
        """Whether this model defines ``call`` (``"similar_items"``, ``"explain"``)."""
        return supports(type(self), call)

    def _similar_ranked(self, queries: np.ndarray, k: int):
        """``(ids, scores, counts)`` of the items most similar to each query."""
        raise NotImplementedError(unsupported(self, "similar_items"))

    def similar_items(self, item_ids, k=10):
        """Items most similar to each given item, where the model defines it.

        ImplicitALSRecommender: cosine of the item factors;
        SessionKNNRecommender: cosine of the items' co-occurrence over the
        training sessions; BlendRecommender: its components' similarities,
        normalised and weighted as its answers. Other models raise
        ``NotImplementedError`` naming the models that have it.

        Parameters
        ----------
        item_ids : item id or array-like of item ids
            Ids as in the training data (column indices for a model fitted
            on a plain matrix). An unknown id raises ``ValueError``.
        k : int, default=10
            Similar items per item (clipped, with a warning, to those with a
            similarity).

        Returns
        -------
        similar : polars or pandas DataFrame
            One row per given item: the item id, ``similar_items`` (list of
            ids, best first) and ``scores``.
        """
        if not self._supports("similar_items"):
            raise NotImplementedError(unsupported(self, "similar_items"))
        from ._calls import similar_items

        return similar_items(self, item_ids, k=k)

    def explain(self, item_id, context=None, *, key=None, k=None):
        """What made ``item_id``'s score, where the model defines it.

        ImplicitALSRecommender: one term per context item (Hu et al. 2008);
        SessionKNNRecommender: the neighbour sessions that contributed, with
        the items they share with the context. Other models raise
        ``NotImplementedError`` naming the models that have it.

        Parameters
        ----------
        item_id : item id
            The recommended item to explain.
        context : object, default=None
            The row's events (see the model's own ``explain``).
        key : str or None, default=None
            A training key whose history joins the context.
        k : int or None, default=None
            Keep the ``k`` largest contributions; ``None`` keeps all.

        Returns
        -------
        contributions : polars or pandas DataFrame
            See the model's own ``explain``.
        """
        raise NotImplementedError(unsupported(self, "explain"))

    def _answers_frame(
        self, row_ids, ids, scores, counts, kind: FrameKind, source=None
    ):
        from .._frame import to_native

        n, k = ids.shape
        if self.item_ids_ is not None:
            item_ids = self.item_ids_
        else:
            item_ids = pl.Series("item", np.arange(self.n_features_in_))
        flat = ids.ravel()
        valid = pl.Series(flat >= 0)
        gathered = item_ids.gather(pl.Series(np.where(flat >= 0, flat, 0)))
        items = pl.select(pl.when(valid).then(pl.lit(gathered))).to_series()
        score = pl.select(
            pl.when(valid).then(pl.lit(pl.Series(scores.ravel().astype(np.float64))))
        ).to_series()
        if n:
            items = items.reshape((n, k)).cast(pl.List(item_ids.dtype))
            score = score.reshape((n, k)).cast(pl.List(pl.Float64))
        else:
            items = pl.Series([], dtype=pl.List(item_ids.dtype))
            score = pl.Series([], dtype=pl.List(pl.Float64))
        df = pl.DataFrame(
            {
                row_ids.name: row_ids,
                RECOMMENDATIONS: items.list.drop_nulls(),
                SCORES: score.list.drop_nulls(),
            }
        )
        if source is not None:
            df = df.with_columns(pl.Series(SOURCE, source, dtype=pl.String))
        return to_native(df, kind)
