"""Prototype, not a library model: a learned reranker over the session parts.

Usage::

    python benchmarks/rerank_prototype.py [--datasets default,sequential,movielens]
        [--yoochoose GITDIR] [--no-recency]

What it measures (issue 22: the blend's parts are short of VSTAN and a
linear mix of them cannot pass 1.008x): whether a gradient-boosted ranker
over the parts' candidates beats the linear blend on the protocols of
``benchmarks/session_quality.py`` (next click HR@20 / MRR@20 on every
prefix, NDCG@5 of the rest of the session or of the carts).

* Parts: ALS, session-kNN (V-SKNN defaults), session-kNN with STAN's
  weights (``session_quality``'s "stan weights" row at 500 neighbours),
  repeat and sequential rules, each at its defaults.
* Features of a (session, candidate) pair: each part's min-max normalised
  score and ``1 / (1 + rank)`` (0 where the part did not propose it), the
  candidate's value in the session's row, the row's number of items, the
  log of the item's training sessions and, unless ``--no-recency``, its
  recency in the session (raw, ``== 1`` and its inverse).
* Training: the latest 20% of the training sessions are held out as
  events; the parts are fitted on the rest; every prefix of every held-out
  session is a query (``NextItemScorer.protocol``, the test protocol) and
  the next item is the positive. ``HistGradientBoostingClassifier(
  max_iter=300, learning_rate=0.05, random_state=0)``.
* Answers: the parts refitted on the whole training log; the ranker's
  probability is the blended score; the blend's fallback fills the rest.

Superseded by :class:`skals.RerankRecommender`, which learns from the
matrix's ``events`` (``ConfidenceEncoder(keep_events=True)``); this script
stays to reproduce the figures of BENCHMARKS.md's "A learned reranker over
the session parts". Cut from the matrix without events (``holdout_split``'s
way), the training queries lose the re-clicks' order and the ranker learns
it wrong (YooChoose 100k MRR@20 0.245 against 0.377).

It reads private methods (``_blend_candidates``, the scorer's protocol), so
it may break when they change; it pins nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import session_quality as sq  # noqa: E402
from real_clicks import STAN_HR  # noqa: E402

from skals import (  # noqa: E402
    BlendRecommender,
    ImplicitALSRecommender,
    RepeatRecommender,
    SequentialRulesRecommender,
    SessionKNNRecommender,
)
from skals.metrics import make_next_item_scorer, make_session_scorer  # noqa: E402
from skals.metrics._next_item import NextItemScorer  # noqa: E402
from skals.metrics._scorer import _Parts  # noqa: E402
from skals.model_selection import SessionHoldoutSplit  # noqa: E402
from skals.recommender._base import quiet_answers  # noqa: E402
from skals.recommender._blend_scores import own_normalised  # noqa: E402


def parts() -> list:
    stan = {**STAN_HR, "recency_decay": None, "n_neighbors": 500}
    return [
        ("als", ImplicitALSRecommender(random_state=0)),
        ("knn", SessionKNNRecommender()),
        ("stan", SessionKNNRecommender(**stan)),
        ("repeat", RepeatRecommender()),
        ("sr", SequentialRulesRecommender()),
    ]


class Reranked(BlendRecommender):
    """The parts with equal weights, their sum replaced by ``ranker_``.

    ``ranker_`` and ``recency`` are set from outside before ``fit`` (a
    prototype: not a scikit-learn estimator of its own).
    """

    ranker_ = None
    recency = True

    def fit(self, X, y=None):
        matrix, _ = self._fit_input(X)
        seen = sp.csr_matrix(matrix).astype(bool)
        self.item_sessions_ = np.asarray(seen.sum(axis=0)).ravel().astype(float)
        super().fit(X)
        return self

    def features(self, fitted, matrix, row_keys, im):
        """(features, rows, items) of every candidate of every row."""
        n_items = self.n_features_in_
        n_cand = min(self.n_candidates, n_items)
        keys, values = [], []
        for est in fitted:
            with quiet_answers():
                ids, sc, n_own = est._blend_candidates(matrix, row_keys, im, k=n_cand)
            ids, norm = own_normalised(ids, sc, n_own, "minmax")
            valid = ids >= 0
            r = np.broadcast_to(np.arange(ids.shape[0])[:, None], ids.shape)[valid]
            j = np.broadcast_to(np.arange(ids.shape[1])[None, :], ids.shape)[valid]
            keys.append(r.astype(np.int64) * n_items + ids[valid])
            values.append((norm[valid], 1.0 / (1.0 + j)))
        union = np.unique(np.concatenate(keys))
        cols = []
        for key, (norm, rank) in zip(keys, values, strict=True):
            at = np.searchsorted(union, key)
            for v in (norm, rank):
                col = np.zeros(union.size)
                col[at] = v
                cols.append(col)
        rows, items = union // n_items, union % n_items
        m = sp.csr_matrix(matrix)
        cols += [
            np.asarray(m[rows, items]).ravel(),
            np.diff(m.indptr)[rows].astype(float),
            np.log1p(self.item_sessions_[items]),
        ]
        if self.recency and im is not None and im.recency is not None:
            rec = np.asarray(sp.csr_matrix(im.recency)[rows, items]).ravel()
            rec = rec.astype(float)
            inverse = np.where(rec > 0, 1.0 / np.maximum(rec, 1.0), 0.0)
            cols += [rec, (rec == 1).astype(float), inverse]
        return np.column_stack(cols).astype(np.float32), rows, items

    def blend_scores(self, matrix, row_keys, im):
        F, rows, items = self.features(self.estimators_, matrix, row_keys, im)
        p = self.ranker_.predict_proba(F)[:, 1] + 1e-9
        shape = (matrix.shape[0], self.n_features_in_)
        return sp.csr_matrix((p, (rows, items)), shape=shape)


def training_rows(train, recency: bool):
    """Features and labels of every prefix of the latest 20% of ``train``."""
    fit_rows, val_rows = next(
        SessionHoldoutSplit(n_splits=1, test_size=0.2).split(train)
    )
    model = Reranked(parts(), random_state=0)
    model.recency = recency
    pipe = sq.pipeline(model).fit(train[fit_rows])
    answering = _Parts(pipe)
    context, truth = NextItemScorer(["mrr"], 20, None).protocol(
        answering, train[val_rows]
    )
    query = pipe[answering.n_keying_steps : -1].transform(context)
    F, rows, items = model.features(
        model.estimators_, query.matrix, query.row_keys, query
    )
    column = {v: i for i, v in enumerate(query.item_ids.to_list())}
    nxt = dict(zip(truth["__prefix"].to_list(), truth["__next"].to_list(), strict=True))
    target = np.array([column.get(nxt.get(p), -1) for p in query.row_ids.to_list()])
    return F, items == target[rows], query.shape[0]


def run(name, train, test, relevance, recency: bool):
    t0 = time.perf_counter()
    F, y, n_queries = training_rows(train, recency)
    ranker = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, random_state=0
    ).fit(F, y)
    model = Reranked(parts(), random_state=0)
    model.ranker_, model.recency = ranker, recency
    pipe = sq.pipeline(model).fit(train)
    s = make_next_item_scorer(k=20)(pipe, test)
    nd = make_session_scorer("ndcg", k=5, relevance=relevance)(pipe, test)
    print(
        f"{name}: {n_queries:,} training prefixes, {int(y.sum()):,} with the "
        f"next item among the candidates; HR@20 {s['hit_rate@20']:.4f} "
        f"MRR@20 {s['mrr@20']:.4f} NDCG@5 {nd:.4f} "
        f"({time.perf_counter() - t0:.0f} s)",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="default,sequential,movielens")
    parser.add_argument("--n-sessions", type=int, default=20_000)
    parser.add_argument("--yoochoose", metavar="GITDIR")
    parser.add_argument("--no-recency", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    recency = not args.no_recency
    if args.yoochoose:
        train, test = sq.yoochoose(args.yoochoose)
        run("yoochoose", train, test, "rest", recency)
    names = [n for n in args.datasets.split(",") if n and n != "none"]
    for name, (df, relevance) in sq.datasets(names, args.n_sessions, 0).items():
        train, test = sq.holdout(df)
        run(name, train, test, relevance, recency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
