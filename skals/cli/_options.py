"""The command line's tables: default grid, hyperparameter options, flags, columns.

Shared by the parser and the commands (neither imports the other for them).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

#: Grid of ``skals tune`` without ``--grid``, and of ``skals demo``: the
#: example grid of the hyperparameter guide, inside its advised ranges
#: (regularization 0.001 to 10 around the default 0.05, cart weight 1 to 50).
DEFAULT_GRID = {
    "factors": [32, 64, 128],
    "regularization": [0.01, 0.1, 1.0],
    "cart_weight": [3.0, 10.0, 30.0],
}

#: ``--recommender`` choices of fit and tune (the final step of the pipeline).
RECOMMENDERS = {
    "als": "ImplicitALSRecommender: ALS, fold-in of new sessions (default)",
    "knn": "SessionKNNRecommender: V-SKNN session neighbours",
    "stan": "SessionKNNRecommender with STAN's weights (VSTAN): click logs",
    "repeat": "RepeatRecommender: the session's own items first",
    "rules": "SequentialRulesRecommender: what followed the session's last items",
    "slist": "SLISTRecommender: closed-form linear item x item model of sessions",
    "blend": (
        "BlendRecommender: ALS + session-kNN + repeat + sequential rules, "
        "weights fitted (auto)"
    ),
    "carts": (
        "BlendRecommender: the session's items by count, then session-kNN's "
        "(cart adds that follow re-views)"
    ),
    "rerank": (
        "RerankRecommender: a learned ranker over ALS, kNN, STAN, repeat and "
        "sequential rules (next clicks)"
    ),
    "rerank-carts": (
        "RerankRecommender(target='session'): the same ranker, trained on the "
        "cart adds after 3 revealed events (the challenge's protocol)"
    ),
}

#: STAN's weights in session-kNN: session-rec's VSTAN setting tuned for HR
#: on rsc15 in skals' names (BENCHMARKS.md, ``benchmarks/real_clicks.py``
#: "skals-stan-hr"), at 500 neighbours (HR@20 0.6934 against 0.6942 at 2000).
STAN_POINT = {
    "n_neighbors": [500],
    "sample_size": [2500],
    "similarity": ["cosine"],
    "weighting": [8.0],
    "weighting_score": [0.5],
    "recency_decay": [10.0],
    "neighbor_position_decay": [8.0],
    "idf_weighting": [2.0],
}

#: Grid of ``skals tune --recommender R`` without ``--grid`` (R other than als).
#: A list is several grids, searched one after the other (``GridSearchCV``).
DEFAULT_GRIDS = {
    "als": DEFAULT_GRID,
    "knn": [
        {
            "n_neighbors": [50, 100, 200],
            "sample_size": [500, 1000],
            "weighting": ["div", "quadratic"],
        },
        STAN_POINT,
    ],
    # 4 candidates around STAN_POINT: the score decay, which traded HR@20
    # for MRR@20 on YooChoose 100k, and the neighbourhood size (BENCHMARKS.md,
    # one parameter at a time from skals-stan-hr)
    "stan": {"n_neighbors": [500, 2000], "weighting_score": [0.5, 1.0]},
    "repeat": {"recency_decay": [0.3, 0.5, 0.8], "count_weight": [0.0, 0.1, 0.5]},
    # 8 candidates around the defaults (20, 3, "quadratic"); n_context=1 is
    # SR as published
    "rules": {
        "window": [10, 20],
        "n_context": [1, 3],
        "weighting": ["div", "quadratic"],
    },
    # 4 candidates around the recipe (repeat 10 : kNN 1, 100 neighbours)
    "carts": {"weights": [[10.0, 1.0], [3.0, 1.0]], "knn__n_neighbors": [100, 200]},
    # 6 candidates around the defaults (0.2, 10.0): SLIS against SLIT, ridge
    "slist": {"alpha": [0.2, 0.5], "l2": [1.0, 10.0, 100.0]},
    # 4 candidates around the defaults (100 candidates per part, 20% held out)
    "rerank": {"n_candidates": [50, 100], "validation_size": [0.2, 0.4]},
    "rerank-carts": {"n_candidates": [50, 100], "validation_size": [0.2, 0.4]},
    "blend": {
        "weights": [
            "auto",
            [1.0, 3.0, 2.0, 0.0],
            [1.0, 1.0, 1.0, 1.0],
            [1.0, 2.0, 3.0, 0.0],
            [0.0, 3.0, 2.0, 1.0],
        ]
    },
}

#: Hyperparameter options of fit and tune: (pipeline parameter, type, help).
HYPERPARAMETERS = (
    ("factors", int, "number of latent factors"),
    ("regularization", float, "L2 regularization of ALS"),
    ("alpha", float, "multiplier of the confidences"),
    ("iterations", int, "ALS sweeps"),
    ("cart_weight", float, "confidence weight of an add-to-cart event"),
    ("view_weight", float, "confidence weight of an event"),
    ("random_state", int, "seed of the initial factors"),
    ("num_threads", int, "threads for ALS (0: all cores)"),
)

#: The library's default of each hyperparameter option, as ``--help`` shows
#: it: written here so that ``skals fit --help`` reads them without importing
#: scikit-learn (0.1 s instead of seconds). tests/test_packaging.py checks
#: them against the estimators' real defaults (``_commands.defaults``).
DEFAULTS = {
    "factors": 64,
    "regularization": 0.05,
    "alpha": 10.0,
    "iterations": 15,
    "cart_weight": 10.0,
    "view_weight": 1.0,
    "random_state": None,
    "num_threads": 0,
}

#: Flags of fit and tune: (option, pipeline parameter, value when given, help).
FLAGS = (
    (
        "--filter-already-liked-items",
        "filter_already_liked_items",
        True,
        "never recommend an item the session or user already has",
    ),
    (
        "--no-fold-in",
        "fold_in",
        False,
        "the notebook's approach: answer known users from training only, "
        "every other session with popularity",
    ),
)


@dataclass(frozen=True)
class Columns:
    """Names of the event log's columns (the challenge's by default)."""

    session: str = "session_id"
    user: str = "user_id"
    item: str = "partnumber"
    cart: str = "add_to_cart"
    time: str = "timestamp_local"
    segment: str | None = None


ROLES = tuple(f.name for f in fields(Columns))

_COLUMN_HELP = {
    "session": "session id",
    "user": "logged-in user id, null when anonymous",
    "item": "product id (integers or strings)",
    "cart": "0/1 add-to-cart flag",
    "time": "event time (orders the events of a session)",
    "segment": "optional segment (e.g. country) for the popularity fallback",
}
