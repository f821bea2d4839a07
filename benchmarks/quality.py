"""Ranking quality on make_sessions data: the figures quoted in the issue notes.

Usage::

    python benchmarks/quality.py [--n-sessions 50000] [--seed 0]

Part 1 runs the README example (top-5 overlap, ``TemporalSplit(n_splits=2)``)
and scores ``PopularityRecommender`` on the same folds.

Part 2 is the challenge-style comparison: whole sessions held out by time
(``SessionHoldoutSplit``), the first 3 events of each revealed without the
cart flag, relevance = cart adds. It compares the default ALS pipeline, the
pipeline tuned by GridSearchCV (on the training part only, with the same
protocol), popularity, and the notebook's approach (known users only, seen
items filtered, popularity for everyone else).
"""

from __future__ import annotations

import argparse
import time
import warnings

from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    SessionHoldoutSplit,
    TemporalSplit,
    top_k_overlap_scorer,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer


def pipeline(last, **encoder):
    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(**encoder),
        InteractionMatrixBuilder(),
        last,
    )


def readme_example():
    events = make_sessions(n_sessions=20_000, random_state=0)
    search = GridSearchCV(
        pipeline(ImplicitALSRecommender(factors=32, iterations=10, random_state=0)),
        {
            "confidenceencoder__cart_weight": [5, 10, 20],
            "implicitalsrecommender__factors": [20, 70],
            "implicitalsrecommender__regularization": [0.1, 1.0],
        },
        scoring=top_k_overlap_scorer,
        cv=TemporalSplit(n_splits=2),
        n_jobs=2,
    )
    search.fit(events)
    pop = cross_val_score(
        pipeline(PopularityRecommender()),
        events,
        scoring=top_k_overlap_scorer,
        cv=TemporalSplit(n_splits=2),
    )
    print("README example (top-5 overlap, TemporalSplit(n_splits=2), mean of folds)")
    print(f"  best params  {search.best_params_}")
    print(f"  tuned ALS    {search.best_score_:.4f}")
    print(f"  popularity   {pop.mean():.4f}")


def challenge(n_sessions: int, seed: int):
    events = make_sessions(n_sessions=n_sessions, random_state=seed)
    train_idx, test_idx = next(
        SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events)
    )
    train, test = events[train_idx], events[test_idx]
    scorer = make_session_scorer(["ndcg", "precision"], by_segment=True)
    tuned = GridSearchCV(
        pipeline(ImplicitALSRecommender(random_state=0)),
        {
            "confidenceencoder__cart_weight": [5, 10],
            "implicitalsrecommender__factors": [64, 128],
            "implicitalsrecommender__regularization": [0.05, 1.0],
        },
        scoring=scorer,
        refit="ndcg@5",
        cv=SessionHoldoutSplit(n_splits=2, test_size=0.1),
        n_jobs=1,
    )
    models = {
        "ALS tuned (GridSearchCV)": tuned,
        "ALS default": pipeline(ImplicitALSRecommender(random_state=0)),
        "popularity": pipeline(PopularityRecommender()),
        "notebook (known users, filtered)": pipeline(
            ImplicitALSRecommender(
                fold_in=False, filter_already_liked_items=True, random_state=0
            )
        ),
    }
    print(
        f"\nChallenge-style holdout: {events.height} events, {train.height} train, "
        f"{test['session_id'].n_unique()} held-out sessions, 3 events revealed"
    )
    header = (
        f"  {'model':34s} {'NDCG@5':>7s} {'overlap@5':>9s} {'anon':>7s} "
        f"{'logged':>7s} {'fit s':>6s}"
    )
    print(header)
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - start
        r = scorer(model, test)
        print(
            f"  {name:34s} {r['ndcg@5']:7.4f} {r['precision@5']:9.4f} "
            f"{r['ndcg@5_anonymous']:7.4f} {r['ndcg@5_logged_in']:7.4f} {fit_s:6.1f}"
        )
        if model is tuned:
            best = {k.split("__")[1]: v for k, v in tuned.best_params_.items()}
            print(f"  {'':34s} best: {best}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sessions", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-readme", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    if not args.skip_readme:
        readme_example()
    challenge(args.n_sessions, args.seed)


if __name__ == "__main__":
    main()
