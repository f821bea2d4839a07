"""Same answers, factors and cv_results_ in two checkouts of skals.

The check behind issue 11's "no behaviour change": run it once per tree,
then compare::

    PYTHONPATH=<old checkout> python benchmarks/refactor_parity.py old.pkl
    PYTHONPATH=<new checkout> python benchmarks/refactor_parity.py new.pkl
    python benchmarks/refactor_parity.py --compare old.pkl new.pkl

Every setting is explicit (factors, iterations, alpha), so a later change of
a default does not show up as a difference.
"""

import argparse
import pickle
import sys

import numpy as np
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skals
from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    SessionHoldoutSplit,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer


def als(**params):
    return ImplicitALSRecommender(alpha=1.0, random_state=0, num_threads=1, **params)


def run(path):
    print(skals.__file__, file=sys.stderr)
    events = make_sessions(20_000, random_state=0)
    new = events.tail(3000).drop("add_to_cart")
    out = {}
    for grain in ("key", "session"):
        pipe = make_pipeline(
            PseudoUserUnifier(),
            ConfidenceEncoder(grain=grain),
            InteractionMatrixBuilder(),
            als(factors=32, iterations=5),
        ).fit(events)
        answers = pipe.predict(new)
        out[f"answers_{grain}"] = answers.select(answers.columns[:3]).rows()
        out[f"factors_{grain}"] = pipe[-1].item_factors_.copy()
    search = GridSearchCV(
        make_pipeline(
            PseudoUserUnifier(),
            ConfidenceEncoder(),
            InteractionMatrixBuilder(),
            als(iterations=3),
        ),
        {
            "implicitalsrecommender__factors": [16, 32],
            "confidenceencoder__cart_weight": [5, 10],
        },
        scoring=make_session_scorer(["ndcg", "precision"]),
        refit="ndcg@5",
        cv=SessionHoldoutSplit(n_splits=2, test_size=2000),
    ).fit(events)
    out["cv"] = {k: v for k, v in search.cv_results_.items() if "test" in k}
    pop = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        PopularityRecommender(),
    ).fit(events)
    answers = pop.predict(new)
    out["popularity"] = answers.select(answers.columns[:3]).rows()
    with open(path, "wb") as fh:
        pickle.dump(out, fh)


def compare(a_path, b_path):
    with open(a_path, "rb") as fh:
        a = pickle.load(fh)
    with open(b_path, "rb") as fh:
        b = pickle.load(fh)
    same = True
    for key in a:
        if key == "cv":
            for name, values in a[key].items():
                ok = np.allclose(values, b[key][name], equal_nan=True)
                same &= ok
                print(f"cv_results_[{name!r}]: {'identical' if ok else 'DIFFERENT'}")
        else:
            ok = (
                np.array_equal(a[key], b[key]) if "factors" in key else a[key] == b[key]
            )
            same &= ok
            print(f"{key}: {'identical' if ok else 'DIFFERENT'}")
    print("all identical" if same else "DIFFERENCES FOUND")
    return 0 if same else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.compare:
        sys.exit(compare(*args.paths))
    run(args.paths[0])
