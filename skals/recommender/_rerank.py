"""RerankRecommender: a learned ranker over several recommenders' candidates."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_memory
from sklearn_compat.base import _fit_context

from .._interaction import InteractionMatrix
from .._sklearn import HasMethods, Interval, RealNotInt, StrOptions
from .._warnings import warn
from ._als import ImplicitALSRecommender
from ._base import BaseRecommender, quiet_answers
from ._blend import BlendRecommender, _fit_component, _fit_components
from ._blend_auto import _split_output, _validation_rows, holdout_split, session_split
from ._blend_scores import own_normalised
from ._knn import SessionKNNRecommender
from ._popularity import PopularityRecommender
from ._repeat import RepeatRecommender
from ._rules import SequentialRulesRecommender

#: Names of the features of a (row, candidate) pair after the parts' own
#: two each (``<part>_score``, ``<part>_rank``).
ROW_FEATURES = (
    "value",
    "row_items",
    "item_share",
    "recent_share",
    "recency",
    "is_last",
    "inverse_recency",
)


def default_rerank_estimators(random_state=None) -> list:
    """The parts of ``RerankRecommender()``: five session recommenders.

    ALS, session-kNN at its defaults (V-SKNN's weights), session-kNN with
    STAN's weights (position and neighbour-position decay, idf, cosine, no
    recency decay, 500 neighbours of 2,500 sampled), repeat and sequential
    rules. Pass ``estimators=default_rerank_estimators()`` to tune their
    parameters (``knn__n_neighbors``, ...).

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=None
        Seed of the ALS part.

    Returns
    -------
    estimators : list of (str, recommender) tuples
        ``[("als", ...), ("knn", ...), ("stan", ...), ("repeat", ...),
        ("sr", ...)]``, unfitted.

    Examples
    --------
    >>> from skals.recommender import default_rerank_estimators
    >>> [name for name, _ in default_rerank_estimators()]
    ['als', 'knn', 'stan', 'repeat', 'sr']
    """
    stan = SessionKNNRecommender(
        n_neighbors=500,
        sample_size=2500,
        similarity="cosine",
        weighting=8.0,
        recency_decay=None,
        neighbor_position_decay=8.0,
        weighting_score=0.5,
        idf_weighting=2.0,
    )
    return [
        ("als", ImplicitALSRecommender(random_state=random_state)),
        ("knn", SessionKNNRecommender()),
        ("stan", stan),
        ("repeat", RepeatRecommender()),
        ("sr", SequentialRulesRecommender()),
    ]


class RerankRecommender(BlendRecommender):
    """A learned ranker over the candidates of several recommenders.

    Where :class:`BlendRecommender` sums its components' normalised scores
    with weights, this model learns how to order their candidates: a
    classifier (``ranker``, by default gradient-boosted trees) scores each
    (session, candidate) pair from what every part says of it and from the
    session itself, and the answer is the top ``k`` by that score.

    **Features** of a (row, candidate item) pair: for every part, its
    min-max normalised score of the item and ``1 / (1 + rank)`` (both 0
    where the part did not propose the item among its ``n_candidates``);
    then the item's value in the row, the row's number of items, the log of
    the share of training rows that hold the item and of the share of the
    latest 5% of them (by ``row_times``: what is popular now), and the
    item's recency in the row (raw, ``== 1`` and ``1 / recency``; 0 for an item not in
    the row or a matrix without recency). ``feature_names_`` lists them.

    **Training** (an internal split, as ``StackingClassifier`` uses one):
    the latest ``validation_size`` of the training sessions with at least
    two events (at most ``max_validation_sessions``; by ``row_times``) are
    held out and the parts are fitted on the other rows (``n_folds``: on a
    small log, earlier shares too, each in turn). Every prefix of a
    held-out session's events (at most ``max_prefixes`` per session, drawn
    at random) is a query, built as the encoder would build that session's
    row from those events (values and recency), and the event that came
    next is the positive among the parts' candidates: session-rec's
    next-click protocol, on the training log (``target="session"``: the
    challenge's protocol instead, one query a session). The ranker is
    fitted on those pairs, then the parts are refitted on every row.

    Every prefix needs the order of each session's events, which the
    matrix carries only when the encoder kept them
    (``ConfidenceEncoder(time_col=..., keep_events=True)``;
    :func:`~skals.make_recommender_pipeline` sets it for this model).
    Without them (a plain matrix, or an encoder without ``keep_events``)
    each held-out row gives one query, itself without its last item
    (``BlendRecommender``'s next-item cut), which learns re-clicks worse;
    an InteractionMatrix without events gets a warning that says so.

    Answers by user key (:meth:`recommend_keys`) and :meth:`similar_items`
    sum the parts' answers with equal weights (the ranker learnt from
    session rows, not from keys).

    **Cost.** The parts are fitted once per fold and once more on every
    row, and answer every training prefix once; the ranker's training set
    has one row per (prefix, candidate) (up to ``n_candidates`` times the
    number of parts per prefix).

    Parameters
    ----------
    estimators : list of (str, recommender) tuples or None, default=None
        The parts, with names (their parameters are reachable as
        ``<name>__<param>``); a part may be ``"drop"``. ``None``:
        :func:`default_rerank_estimators` (ALS, session-kNN, STAN-weighted
        session-kNN, repeat, sequential rules), resolved at fit time.
    ranker : classifier or None, default=None
        A scikit-learn classifier with ``predict_proba``; it is cloned and
        fitted on the features (positive class: the next event's item).
        ``None``: ``HistGradientBoostingClassifier(max_iter=300,
        learning_rate=0.05)`` seeded by ``random_state``.
    n_candidates : int, default=100
        Candidates asked of each part per row.
    memory : str, joblib.Memory or None, default=None
        Cache of the parts' fits, as for :class:`BlendRecommender`.
    k : int, default=5
        Items per answer.
    filter_already_liked_items : bool, default=False
        Leave out the row's own items.
    filter_items : array-like or None, default=None
        Item ids never to recommend.
    items : array-like or None, default=None
        Only recommend these item ids.
    fallback : PopularityRecommender or None, default=None
        Completes rows with fewer than ``k`` candidates; ``None`` means
        ``PopularityRecommender()``.
    validation_size : float or int, default=0.2
        The share (float in (0, 1)) or number (int) of the sessions with at
        least two events held out to train the ranker, the latest ones.
    max_validation_sessions : int or None, default=10_000
        At most this many sessions are held out (``None``: no cap). The
        ranker's training set holds every candidate of every prefix of
        them: about 9 prefixes a session and 400 candidates a prefix on a
        challenge-shaped log, so 10,000 sessions are 36 million rows of
        float32 features (2.3 GB). The cap counts the sessions of every
        fold (``n_folds``).
    n_folds : int, default=3
        Folds of held-out sessions the ranker learns from, when the matrix
        carries its events: the first is the latest ``validation_size`` of
        the sessions, each next one the same share just before it, each
        with the parts fitted on all other sessions (later ones included).
        Folds stop once ``max_validation_sessions`` are held out, so a log
        whose first fold reaches the cap (10,000 sessions: any log of more
        than 50,000 at the defaults) pays for one fold, and a small log
        learns from up to three times the queries for as many part fits.
        On YooChoose 100k (17,794 sessions) three folds lifted MRR@20 from
        0.3799 to 0.3833 (mean of three seeds; BENCHMARKS.md,
        "RerankRecommender"). ``1``: a single split.
    max_prefixes : int or None, default=20
        At most this many prefixes of one held-out session are queries,
        drawn at random (``None``: every prefix). A session of ``n`` events
        has ``n - 1``; the cap keeps a few long sessions (or users' long
        histories) from outweighing the rest.
    max_negatives : int or None, default=50
        At most this many negative pairs (candidates that are not the
        positive) of one query are kept in the ranker's training set, drawn
        uniformly (``None``: every one, about 300 a query on YooChoose 100k).
        Every positive is kept. With 50 the ranker fits faster and in a
        sixth of the memory, and ranked next clicks better on every set
        measured (YooChoose 100k MRR@20 0.3788 against 0.3652), NDCG@5
        within 1.3% (BENCHMARKS.md, "RerankRecommender").
    target : {"next_item", "session"}, default="next_item"
        What the ranker learns to find. ``"next_item"``: the next event of
        every prefix (session-rec's next-click protocol). ``"session"``:
        each held-out session's first ``n_revealed`` events are the query,
        each worth one view (the challenge's test log has no cart column),
        and its positives are the items ``relevance`` names: the session
        scorers' protocol, the challenge's NDCG@5; one query per session.
    n_revealed : int, default=3
        With ``target="session"``: the events revealed of each held-out
        session.
    relevance : {"auto", "cart", "rest"}, default="auto"
        With ``target="session"``: the positives of a held-out session, as
        :func:`~skals.metrics.make_session_scorer` names them. ``"cart"``:
        the items it added to the cart anywhere (revealed ones included);
        ``"rest"``: the items of its events after the revealed ones (re-views
        of revealed items included); ``"auto"``: ``"cart"`` when the log has
        cart adds, else ``"rest"``. Choose what you score: on a log whose
        "cart adds" are something else (high ratings, say) the rest of the
        session may be what counts. Without the matrix's events only
        ``"auto"`` is possible (the blend's session cut, whose rule it is;
        another value raises).
    random_state : int, RandomState instance or None, default=None
        Seed of the default parts (the ALS one), of the prefixes and
        negatives drawn and of the default ranker.

    Attributes
    ----------
    estimators_ : list of recommenders
        The fitted parts (not the dropped ones).
    named_estimators_ : sklearn.utils.Bunch
        The fitted parts by name.
    ranker_ : classifier or None
        The fitted ranker; ``None`` when the training log left no query
        with the next item among the candidates (the parts' scores are
        then summed with equal weights, with a warning).
    feature_names_ : list of str
        Names of the ranker's features, in order.
    n_training_queries_ : int
        Prefixes (or held-out rows) the ranker learnt from.
    n_folds_ : int
        Folds of held-out sessions the ranker learnt from (at most
        ``n_folds``; 0 when the training log left none).
    n_candidates_ : int
        Candidates asked of each part per row (``n_candidates``, at most
        the number of items), as the ranker learnt them.
    weights_ : ndarray
        All 1: the weights of the parts in the calls that sum them
        (:meth:`recommend_keys`, :meth:`similar_items`, no ranker).
    item_share_ : ndarray of shape (n_items,)
        Share of the training rows that hold each item (a feature).
    recent_item_share_ : ndarray of shape (n_items,)
        The same share among the latest 5% of the training rows (by
        ``row_times``; else the last rows): a feature.
    fallback_ : PopularityRecommender
        The fitted fallback.
    n_features_in_ : int
        Number of items.

    See Also
    --------
    BlendRecommender : A weighted sum of the parts' scores.

    Examples
    --------
    >>> from skals import RerankRecommender, RepeatRecommender, SessionKNNRecommender
    >>> from skals import make_recommender_pipeline
    >>> from skals.datasets import make_sessions
    >>> events = make_sessions(200, n_items=30, random_state=0)
    >>> model = RerankRecommender(
    ...     [("knn", SessionKNNRecommender()), ("repeat", RepeatRecommender())],
    ...     random_state=0)
    >>> pipe = make_recommender_pipeline(model).fit(events)
    >>> pipe[1].keep_events  # the encoder keeps each session's events
    True
    >>> pipe[-1].feature_names_[:4]
    ['knn_score', 'knn_rank', 'repeat_score', 'repeat_rank']
    """

    #: The matrix must carry each row's events (make_recommender_pipeline
    #: sets the encoder's keep_events) and their order.
    _requires_events = True
    _requires_order = True

    _parameter_constraints: dict = {
        **BaseRecommender._parameter_constraints,
        "estimators": [list, None],
        "ranker": [HasMethods(["fit", "predict_proba"]), None],
        "n_candidates": [Interval(Integral, 1, None, closed="left")],
        "memory": [None, str, HasMethods(["cache"])],
        "fallback": [PopularityRecommender, None],
        "validation_size": [
            Interval(RealNotInt, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "max_validation_sessions": [Interval(Integral, 1, None, closed="left"), None],
        "n_folds": [Interval(Integral, 1, None, closed="left")],
        "max_prefixes": [Interval(Integral, 1, None, closed="left"), None],
        "max_negatives": [Interval(Integral, 1, None, closed="left"), None],
        "target": [StrOptions({"next_item", "session"})],
        "n_revealed": [Interval(Integral, 1, None, closed="left")],
        "relevance": [StrOptions({"auto", "cart", "rest"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimators=None,
        *,
        ranker=None,
        n_candidates=100,
        memory=None,
        k=5,
        filter_already_liked_items=False,
        filter_items=None,
        items=None,
        fallback=None,
        validation_size=0.2,
        max_validation_sessions=10_000,
        n_folds=3,
        max_prefixes=20,
        max_negatives=50,
        target="next_item",
        n_revealed=3,
        relevance="auto",
        random_state=None,
    ):
        self.estimators = estimators
        self.ranker = ranker
        self.n_candidates = n_candidates
        self.memory = memory
        self.k = k
        self.filter_already_liked_items = filter_already_liked_items
        self.filter_items = filter_items
        self.items = items
        self.fallback = fallback
        self.validation_size = validation_size
        self.max_validation_sessions = max_validation_sessions
        self.n_folds = n_folds
        self.max_prefixes = max_prefixes
        self.max_negatives = max_negatives
        self.target = target
        self.n_revealed = n_revealed
        self.relevance = relevance
        self.random_state = random_state

    #: How the parts' scores are made comparable (features and sums).
    normalization = "minmax"

    def _pairs(self) -> list:
        if self.estimators is None:
            return default_rerank_estimators(self.random_state)
        return super()._pairs()

    def _given_weights(self, names) -> np.ndarray:
        return np.ones(len(names))

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the parts on most rows, the ranker on the rest, the parts again.

        Parameters
        ----------
        X : InteractionMatrix or {array-like, sparse matrix} of shape \
                (n_users, n_items)
            Training interactions; an InteractionMatrix with ``events``
            (``ConfidenceEncoder(keep_events=True)``) trains on every prefix.
        y : None
            Ignored.

        Returns
        -------
        self : RerankRecommender
            Fitted recommender.
        """
        active = self._active()
        matrix, im = self._fit_input(X)
        fit_one = check_memory(self.memory).cache(_fit_component)
        rng = check_random_state(self.random_state)
        seed = rng.randint(np.iinfo(np.int32).max)
        names = [name for name, _, _ in active]
        self.feature_names_ = [
            f"{n}_{f}" for n in names for f in ("score", "rank")
        ] + list(ROW_FEATURES)
        if im is not None and im.events is None:
            warn(
                "RerankRecommender: the InteractionMatrix has no events, so the "
                "ranker learns from cuts of the held-out rows (BlendRecommender's "
                "internal split), not from their events in order (which learns "
                "re-clicks better); set ConfidenceEncoder(time_col=..., "
                "keep_events=True).",
                UserWarning,
            )
        # what predict reads: the candidates the ranker learnt from
        self.n_candidates_ = min(self.n_candidates, matrix.shape[1])
        self.ranker_, self.n_training_queries_, self.n_folds_ = None, 0, 0
        sets = []
        for fit_input, query, query_im, truth in self._training_splits(im, matrix, rng):
            parts = _fit_components(active, fit_one, fit_input)
            F, rows, items = _features(
                parts, query, query_im, self.n_candidates_, _item_shares(fit_input)
            )
            if sp.issparse(truth):  # the session target: a set per query
                positive = np.asarray(truth[rows, items]).ravel() > 0
            else:
                positive = items == truth[rows]
            self.n_training_queries_ += int(query.shape[0])
            self.n_folds_ += 1
            if self.max_negatives is not None:
                kept = _sample_negatives(rows, positive, self.max_negatives, rng)
                F, positive = F[kept], positive[kept]
            sets.append((F, positive))
        if sets:
            F = sets[0][0] if len(sets) == 1 else np.vstack([f for f, _ in sets])
            positive = np.concatenate([p for _, p in sets])
            del sets
            if positive.any() and not positive.all():
                ranker = self.ranker
                if ranker is None:
                    ranker = HistGradientBoostingClassifier(
                        max_iter=300, learning_rate=0.05, random_state=seed
                    )
                self.ranker_ = clone(ranker).fit(F, positive)
        if self.ranker_ is None:
            warn(
                f"RerankRecommender: the {matrix.shape[0]} training rows leave "
                "no held-out query with a positive (the next item, or a "
                "relevant one) among the parts' candidates, and one without; "
                "the parts' scores are summed with equal weights.",
                UserWarning,
            )
        self.item_share_, self.recent_item_share_ = _item_shares(
            matrix if im is None else im
        )
        # the parts' weights are all 1 (_given_weights)
        return self._keep_fitted(active, fit_one, X)

    def _training_splits(self, im, matrix, rng):
        """Yield each fold's ``(fit_input, query, query_im, truth)``.

        With the matrix's events: up to ``n_folds`` folds, each the
        ``validation_size`` of sessions before the previous fold's, until
        ``max_validation_sessions`` are held out in all; without them one
        (the blend's internal split).
        """
        events = im is not None and im.events is not None
        held, cap = 0, self.max_validation_sessions
        for _ in range(self.n_folds if events else 1):
            left = None if cap is None else cap - held
            if left is not None and left < 1:
                return
            split = self._training_split(im, matrix, rng, held, left)
            if split is None:
                return
            yield split
            if events:  # the next fold skips every fold's rows so far
                held += im.matrix.shape[0] - _rows_of(split[0]).shape[0]

    def _training_split(self, im, matrix, rng, skip=0, cap=None):
        """``(fit_input, query, query_im, truth)`` of the ranker, or None."""
        size = self.validation_size
        if self.target == "session":
            if im is not None and im.events is not None:
                return revealed_split(
                    im, size, cap, self.n_revealed, self.relevance, skip
                )
            if self.relevance != "auto":
                raise ValueError(
                    f"RerankRecommender(relevance={self.relevance!r}) needs the "
                    "events of each session, which the input has not; give an "
                    "InteractionMatrix encoded with ConfidenceEncoder(time_col="
                    "..., keep_events=True), or relevance='auto'."
                )
            split = session_split(im, matrix, size, self.n_revealed, rng, cap)
            return split if split is None else (*split[:3], sp.csr_matrix(split[3]))
        if im is not None and im.events is not None:
            return prefix_split(im, size, cap, self.max_prefixes, rng, skip)
        split = holdout_split(im, matrix, size, rng, cap)
        return split if split is None else (*split[:3], np.asarray(split[3]))

    def blend_scores(self, matrix, row_keys, im) -> sp.csr_matrix:
        """The ranker's score of every candidate: a sparse rows x items matrix."""
        if self.ranker_ is None:
            return super().blend_scores(matrix, row_keys, im)
        F, rows, items = _features(
            self.estimators_,
            matrix,
            im,
            self.n_candidates_,
            (self.item_share_, self.recent_item_share_),
            row_keys=row_keys,
        )
        p = self.ranker_.predict_proba(F)[:, 1] + 1e-9
        return sp.csr_matrix((p, (rows, items)), shape=matrix.shape)


def _sample_negatives(rows, positive, n, random_state) -> np.ndarray:
    """Indices of every positive pair and of at most ``n`` negatives a query.

    The negatives of a query (``rows``) are drawn uniformly without
    replacement (``random_state``); the indices come back sorted.
    """
    neg = np.flatnonzero(~positive)
    drawn = neg[_draw_per_group(rows[neg], n, random_state)]
    return np.sort(np.concatenate([np.flatnonzero(positive), drawn]))


def _draw_per_group(groups, n, random_state) -> np.ndarray:
    """Sorted indices of at most ``n`` members of each group, drawn uniformly.

    ``groups`` is each member's group; the members of a group are ranked
    by a uniform draw (``random_state``), its first ``n`` kept.
    """
    rng = check_random_state(random_state)
    order = np.lexsort((rng.uniform(size=groups.size), groups))
    g = groups[order]
    first = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    place = np.arange(order.size) - np.repeat(first, np.diff(np.r_[first, g.size]))
    return np.sort(order[place < n])


def _rows_of(X):
    """The matrix of ``X``'s rows (an InteractionMatrix's: its sessions)."""
    return X.matrix if isinstance(X, InteractionMatrix) else X


#: The latest share of the training rows whose item shares are the
#: ``recent_share`` feature.
RECENT_ROWS = 0.05


def _item_share(matrix) -> np.ndarray:
    """Share of the rows of ``matrix`` that hold each item."""
    m = sp.csr_matrix(matrix)
    counts = np.bincount(m.indices[m.data != 0], minlength=m.shape[1])
    return counts / max(m.shape[0], 1)


def _item_shares(X) -> tuple:
    """``(share, recent)``: each item's share of all rows and of the latest.

    The latest rows are the last :data:`RECENT_ROWS` of ``X``'s rows (at
    least one) by ``row_times`` (an InteractionMatrix's last event of each
    session; else the matrix's last rows).
    """
    m = sp.csr_matrix(_rows_of(X))
    n = max(1, int(round(RECENT_ROWS * m.shape[0])))
    times = X.row_times if isinstance(X, InteractionMatrix) else None
    if times is None:
        late = np.arange(max(m.shape[0] - n, 0), m.shape[0])
    else:
        late = np.lexsort((np.arange(m.shape[0]), times))[-n:]
    return _item_share(m), _item_share(m[np.sort(late)])


def _features(parts, matrix, im, n_cand, shares, row_keys=None):
    """``(features, rows, items)`` of every candidate of every row.

    The candidates are the union of the parts' own ``n_cand`` best items
    per row; the columns are :class:`RerankRecommender`'s features
    (``shares``: :func:`_item_shares` of the parts' training rows).
    """
    if row_keys is None and im is not None:
        row_keys = im.row_keys
    n_items = matrix.shape[1]
    keys, values = [], []
    for est in parts:
        with quiet_answers():  # short candidate lists: by design
            ids, scores, n_own = est._blend_candidates(matrix, row_keys, im, k=n_cand)
        ids, norm = own_normalised(ids, scores, n_own, "minmax")
        r, j = np.nonzero(ids >= 0)
        keys.append(r.astype(np.int64) * n_items + ids[r, j])
        values.append((norm[r, j], 1.0 / (1.0 + j)))
    union = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    # filled in place, float32: the training set can hold tens of millions
    # of (row, candidate) pairs
    F = np.zeros((union.size, 2 * len(keys) + len(ROW_FEATURES)), dtype=np.float32)
    for p, (key, (norm, rank)) in enumerate(zip(keys, values, strict=True)):
        at = np.searchsorted(union, key)
        F[at, 2 * p] = norm
        F[at, 2 * p + 1] = rank
    rows, items = union // n_items, union % n_items
    m = sp.csr_matrix(matrix)
    recency = None if im is None else im.recency
    if recency is not None and recency.shape != m.shape:
        recency = None
    rec = _cells(recency, rows, items) if recency is not None else np.zeros(rows.size)
    c = 2 * len(keys)
    floor = 1.0 / (1.0 + n_items)  # the log of a share never seen
    F[:, c] = _cells(m, rows, items)
    F[:, c + 1] = np.diff(m.indptr)[rows]
    F[:, c + 2] = np.log(shares[0][items] + floor)
    F[:, c + 3] = np.log(shares[1][items] + floor)
    F[:, c + 4] = rec
    F[:, c + 5] = rec == 1
    F[:, c + 6] = np.where(rec > 0, 1.0 / np.maximum(rec, 1.0), 0.0)
    return F, rows, items


def _cells(m, rows, cols) -> np.ndarray:
    """``m[rows[i], cols[i]]`` for every ``i`` (0 where not stored)."""
    if rows.size == 0:
        return np.zeros(0)
    return np.asarray(sp.csr_matrix(m)[rows, cols], dtype=np.float64).ravel()


def _held_out_events(im, size, max_rows, skip=0):
    """``(events, lengths, matrix, rows)``: the rows the ranker learns from.

    :func:`_validation_rows`' latest ``size`` rows with at least two events
    (at most ``max_rows``) after the latest ``skip`` of those, with ``im``'s
    events, each row's number of them and its matrix; ``None`` when none or
    all would be held out.
    """
    ev = im.events
    lengths = np.diff(ev.indptr)
    matrix, val = _validation_rows(im, None, size, max_rows, lengths, skip)
    return None if val is None else (ev, lengths, matrix, val)


def prefix_split(im, size, max_rows, max_prefixes, random_state, skip=0):
    """The ranker's training queries: every prefix of the held-out sessions.

    The held-out rows are :func:`_validation_rows`' (the latest ``size``
    with at least two events, at most ``max_rows``, after the latest
    ``skip`` of those: an earlier fold's). A row of ``n`` events
    gives ``n - 1`` queries, its first ``t`` events for ``t = 1 .. n - 1``
    (at most ``max_prefixes`` of them, drawn with ``random_state``): each
    item's value is 1 plus its events' values, its recency the rank of its
    last event among the prefix's items (1: the latest); the truth is the
    item of event ``t + 1``.

    Returns ``None`` when nothing is left to validate or to fit on; else
    ``(fit_input, query_matrix, query_im, truth)`` with ``truth`` the column
    of each query's next event.
    """
    held = _held_out_events(im, size, max_rows, skip)
    if held is None:
        return None
    ev, lengths, matrix, val = held
    n_items = matrix.shape[1]
    n_pref = lengths[val] - 1
    owner = np.repeat(np.arange(val.size), n_pref)  # held-out row of a query
    starts = np.concatenate([[0], np.cumsum(n_pref)[:-1]])
    t = np.arange(owner.size) - starts[owner] + 1  # prefix length
    if max_prefixes is not None and (n_pref > max_prefixes).any():
        kept = _draw_per_group(owner, max_prefixes, random_state)
        owner, t = owner[kept], t[kept]
    first = ev.indptr[val[owner]]
    truth = ev.items[first + t].astype(np.int64)
    q, recency = _prefix_rows(ev, first, t, n_items)
    fit_input, q, query_im, _ = _split_output(
        im, matrix, val, val[owner], q, recency, None
    )
    return fit_input, q, query_im, truth


def _prefix_rows(ev, first, t, n_items, value=None):
    """``(matrix, recency)`` of queries made of events ``first .. first + t``.

    Query ``i`` holds the ``t[i]`` events from position ``first[i]`` of
    ``ev``: an item's value is 1 plus its events' values (each event worth
    ``value`` instead, when given), its recency the rank of its last event
    among the query's items (1: the latest).
    """
    n_q = t.size
    # one entry per (query, event of its prefix)
    query = np.repeat(np.arange(n_q), t)
    q_start = np.concatenate([[0], np.cumsum(t)[:-1]]).astype(np.int64)
    j = np.arange(query.size) - q_start[query]  # the event's place
    event = first[query] + j
    key = query * n_items + ev.items[event].astype(np.int64)
    order = np.lexsort((j, key))
    key, j = key[order], j[order]
    worth = ev.values[event][order] if value is None else np.full(key.size, value)
    cell, at = np.unique(key, return_index=True)
    sums = 1.0 + np.add.reduceat(worth.astype(np.float64), at)
    last = np.maximum.reduceat(j, at)
    q_rows, q_cols = cell // n_items, cell % n_items
    indptr = np.zeros(n_q + 1, dtype=np.int64)
    np.cumsum(np.bincount(q_rows, minlength=n_q), out=indptr[1:])
    q = sp.csr_matrix((sums.astype(np.float32), q_cols, indptr), shape=(n_q, n_items))
    by_last = np.lexsort((-last, q_rows))
    rank = np.empty(cell.size, dtype=np.int32)
    rank[by_last] = np.arange(cell.size) - indptr[q_rows[by_last]] + 1
    recency = sp.csr_matrix((rank, q_cols, indptr), shape=(n_q, n_items))
    return q, recency


def revealed_split(im, size, max_rows, n_revealed, relevance="auto", skip=0):
    """The ranker's training queries for the session protocol (carts).

    The held-out rows are :func:`prefix_split`'s (``skip`` as there). Each
    gives one query: its first ``n_revealed`` events (all of them in a
    shorter session), each worth one view (the challenge's test log has no
    cart column: the smallest event value of the log). Its truth, by ``relevance``:
    ``"cart"``, the items with a cart add anywhere in the session (an event
    worth more than a view); ``"rest"``, the items of the events after the
    revealed ones (re-views of revealed items included), as
    :func:`~skals.model_selection.reveal_first_n` defines them; ``"auto"``,
    ``"cart"`` when the log has a cart add, else ``"rest"``. Rows without a
    truth are dropped.

    Returns ``None`` when nothing is left to validate or to fit on; else
    ``(fit_input, query_matrix, query_im, truth)`` with ``truth`` a boolean
    CSR matrix over the items, one row per query.
    """
    held = _held_out_events(im, size, max_rows, skip)
    if held is None:
        return None
    ev, lengths, matrix, val = held
    n_items = matrix.shape[1]
    first = ev.indptr[val]
    t = np.minimum(n_revealed, lengths[val])
    view = float(ev.values.min()) if ev.values.size else 0.0
    q, recency = _prefix_rows(ev, first, t, n_items, value=view)
    # every event of the held-out sessions, by session
    kept = ev.take(val)
    session = np.repeat(np.arange(val.size), np.diff(kept.indptr))
    place = np.arange(kept.items.size) - kept.indptr[session]
    carted = kept.values > view * (1 + 1e-6) + 1e-12
    if relevance == "auto":
        relevance = "cart" if carted.any() else "rest"
    relevant = carted if relevance == "cart" else place >= t[session]
    truth = sp.csr_matrix(
        (
            np.ones(int(relevant.sum()), bool),
            (session[relevant], kept.items[relevant]),
        ),
        shape=(val.size, n_items),
    )
    truth.sum_duplicates()
    keep = np.flatnonzero(np.diff(truth.indptr) > 0)
    if keep.size == 0:
        return None
    fit_input, q, query_im, _ = _split_output(
        im, matrix, val, val[keep], q[keep], recency[keep], None
    )
    return fit_input, q, query_im, truth[keep].astype(bool)
