"""Successive halving over whole sessions (issue 15)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingGridSearchCV
from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.model_selection import (
    SessionHalvingGridSearchCV,
    SessionHoldoutSplit,
    SessionSubsampleSplit,
)

GRID = {
    "confidenceencoder__cart_weight": [5.0, 20.0],
    "implicitalsrecommender__regularization": [0.01, 0.1, 1.0],
}
CV = SessionHoldoutSplit(n_splits=2, test_size=40)


@pytest.fixture(scope="module")
def events():
    ev = make_sessions(400, n_items=50, random_state=0)
    return ev.with_row_index("event_id")


class Recorder(TransformerMixin, BaseEstimator):
    """Passes events through; each fit appends its input to ``seen``."""

    seen: list = []

    def fit(self, X, y=None):
        Recorder.seen.append(X)
        return self

    def transform(self, X):
        return X


def pipeline():
    return make_pipeline(
        Recorder(),
        PseudoUserUnifier(),
        ConfidenceEncoder(),
        InteractionMatrixBuilder(),
        ImplicitALSRecommender(factors=4, iterations=2, random_state=0),
    )


def run(search_cls, events, **options):
    """Fit a search, return it with the training frames of its fits in order."""
    Recorder.seen = []
    search = search_cls(
        pipeline(),
        GRID,
        cv=CV,
        scoring=make_session_scorer("ndcg"),
        refit=False,
        return_train_score=False,
        **options,
    ).fit(events)
    seen, Recorder.seen = Recorder.seen, []
    return search, seen


def fold_trains(events):
    return [events[train] for train, _ in CV.split(events)]


def whole_sessions_of_a_fold(frame, folds):
    """Index of the fold whose sessions ``frame`` holds whole, else None."""
    ids = set(frame["event_id"].to_list())
    sessions = frame["session_id"].unique().implode()
    for f, fold in enumerate(folds):
        of_those = fold.filter(pl.col("session_id").is_in(sessions))
        if set(of_those["event_id"].to_list()) == ids:
            return f
    return None


def rung_of_each_fit(search):
    """Rung of each recorded fit (n_jobs=1: candidates x folds, in order)."""
    n_splits = CV.get_n_splits()
    return [r for r, n in enumerate(search.n_candidates_) for _ in range(n * n_splits)]


def test_every_rung_trains_on_whole_sessions(events):
    search, seen = run(SessionHalvingGridSearchCV, events, random_state=0)
    folds = fold_trains(events)
    assert search.n_candidates_ == [6, 2]
    assert len(seen) == sum(search.n_candidates_) * CV.get_n_splits()
    rungs = rung_of_each_fit(search)
    for i, (frame, rung) in enumerate(zip(seen, rungs, strict=True)):
        f = whole_sessions_of_a_fold(frame, folds)
        assert f == i % CV.get_n_splits(), f"fit {i}: a session lost events"
        n_fold = folds[f]["session_id"].n_unique()
        assert frame["session_id"].n_unique() == min(search.n_resources_[rung], n_fold)
    # the first rung really is a sample, the last trains on the whole folds
    assert seen[0].height < folds[0].height
    assert [s.height for s in seen[-2:]] == [f.height for f in folds]


def test_sample_based_halving_is_refused_and_would_break_sessions(events):
    # scikit-learn's default resource="n_samples" samples events: the
    # splitter refuses it, and the check above fails on such a sample
    with pytest.raises(ValueError, match="resource='n_samples'"):
        run(HalvingGridSearchCV, events, random_state=0)
    folds = fold_trains(events)
    sampled = folds[0].sample(fraction=1 / 3, seed=0)
    assert whole_sessions_of_a_fold(sampled, folds) is None


def test_rungs_are_nested_and_tests_whole(events):
    search, seen = run(SessionHalvingGridSearchCV, events, random_state=0)
    n_splits = CV.get_n_splits()
    first, last = seen[:n_splits], seen[-n_splits:]
    for small, big in zip(first, last, strict=True):
        assert set(small["event_id"].to_list()) < set(big["event_id"].to_list())
    sub = SessionSubsampleSplit(CV, 50, random_state=0)
    for (_, test), (_, ref) in zip(sub.split(events), CV.split(events), strict=True):
        np.testing.assert_array_equal(test, ref)


def test_random_state_fixes_the_search(events):
    a, seen_a = run(SessionHalvingGridSearchCV, events, random_state=0)
    b, seen_b = run(SessionHalvingGridSearchCV, events, random_state=0)
    _, seen_c = run(SessionHalvingGridSearchCV, events, random_state=1)
    np.testing.assert_array_equal(
        a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"]
    )
    assert a.cv_results_["params"] == b.cv_results_["params"]
    assert all(
        x["event_id"].equals(y["event_id"]) for x, y in zip(seen_a, seen_b, strict=True)
    )
    assert not seen_a[0]["event_id"].equals(seen_c[0]["event_id"])


def test_sample_does_not_depend_on_row_order(events):
    shuffled = events.sample(fraction=1.0, shuffle=True, seed=3)

    def sampled(ev):
        cv = SessionSubsampleSplit(CV, 60, random_state=0)
        return [sorted(ev["event_id"].gather(tr).to_list()) for tr, _ in cv.split(ev)]

    assert sampled(events) == sampled(shuffled)
    train, _ = next(SessionSubsampleSplit(CV, 60, random_state=0).split(events))
    assert events[train]["session_id"].n_unique() == 60


def test_refit_trains_the_best_on_all_events(events):
    search = SessionHalvingGridSearchCV(
        pipeline(),
        GRID,
        cv=CV,
        scoring=make_session_scorer("ndcg"),
        random_state=0,
    ).fit(events)
    best = search.best_estimator_
    assert best[-1].user_factors_.shape[0] == best[-2].user_ids_.len()
    assert best[1].transform(events)["session_id"].n_unique() == 400
    assert search.best_params_ in search.cv_results_["params"]
    assert search.cv_results_["iter"][search.best_index_] == 1


def test_other_resources_behave_as_in_scikit_learn(events):
    options = {
        "resource": "implicitalsrecommender__iterations",
        "max_resources": 6,
        "random_state": 0,
    }
    ours, _ = run(SessionHalvingGridSearchCV, events, **options)
    ref, _ = run(HalvingGridSearchCV, events, **options)
    assert ours.n_resources_ == ref.n_resources_ == [2, 6]
    np.testing.assert_array_equal(
        ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"]
    )


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_n_sessions(events, bad):
    with pytest.raises(ValueError, match="n_sessions must be None or an integer"):
        next(SessionSubsampleSplit(CV, bad).split(events))


def test_missing_and_null_session_column(events):
    with pytest.raises(ValueError, match="'sid'"):
        next(SessionSubsampleSplit(CV, 5, session_col="sid").split(events))
    nulls = events.with_columns(
        pl.when(pl.col("event_id") == 0)
        .then(None)
        .otherwise("session_id")
        .alias("session_id")
    )
    with pytest.raises(ValueError, match="1 row\\(s\\) have a null 'session_id'"):
        next(SessionSubsampleSplit(CV, 5).split(nulls))


def test_min_resources_above_max(events):
    search = SessionHalvingGridSearchCV(
        pipeline(), GRID, cv=CV, min_resources=500, scoring=make_session_scorer()
    )
    with pytest.raises(ValueError, match="min_resources_=500 is greater"):
        search.fit(events)


def test_a_rungs_cache_entries_are_dropped_when_it_is_done(events):
    # the candidates of a rung share each fold's preprocessing through the
    # FrameCache; no later rung trains on the same sessions, so the rung's
    # entries go when it is done, and what the cache held before stays
    from skals import FrameCache

    cache = FrameCache(max_bytes=1 << 30)
    double = cache.cache(lambda x: 2 * x)
    assert double(np.arange(3)).tolist() == [0, 2, 4]
    pipe = pipeline().set_params(memory=cache)
    sizes = []
    original = SessionSubsampleSplit.split

    def split(self, X, y=None, groups=None):
        sizes.append(len(cache))  # entries when a rung starts
        yield from original(self, X, y, groups)

    search_options = dict(
        cv=CV, scoring=make_session_scorer("ndcg"), refit=False, random_state=0
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SessionSubsampleSplit, "split", split)
        search = SessionHalvingGridSearchCV(pipe, GRID, **search_options).fit(events)
    assert len(search.n_resources_) == 2
    assert cache.hits > 0  # shared within a rung
    assert sizes == [1, 1] and len(cache) == 1
    hits = cache.hits
    assert double(np.arange(3)).tolist() == [0, 2, 4] and cache.hits == hits + 1
    plain = SessionHalvingGridSearchCV(pipeline(), GRID, **search_options).fit(events)
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"]
    )
