"""
=========================================
Session models: repeat, ALS and a blend
=========================================

Which recommender answers a session best depends on the data. This example
compares, on a log with sequential structure (``sequential_strength=0.5``:
the next product often follows from the last one), popularity, ALS with
fold-in, the session's own items (:class:`~skals.RepeatRecommender`) and a
:class:`~skals.BlendRecommender` of ALS and the repeat model whose weights
``GridSearchCV`` tunes. The blend's components are fitted once per fold
(``memory=``), however many weight vectors the search tries.

Two protocols: the next-item protocol of the session-based literature
(every prefix of every held-out session, the next event the truth;
HitRate@20 and MRR@20) and the challenge's rest of session (3 events
revealed, the session's cart adds the truth; NDCG@5).
"""

# %%
import tempfile
import warnings

import matplotlib.pyplot as plt
import polars as pl
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skals import (
    BlendRecommender,
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    RepeatRecommender,
    SessionHoldoutSplit,
)
from skals.datasets import make_sessions
from skals.metrics import make_next_item_scorer, make_session_scorer

warnings.simplefilter("ignore", UserWarning)
events = make_sessions(
    n_sessions=5_000, n_items=600, sequential_strength=0.5, random_state=0
)
train_idx, test_idx = next(SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events))
train, test = events[train_idx], events[test_idx]


def pipeline(recommender):
    """Session grain with the event times (the repeat model's recency)."""
    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session", time_col="timestamp_local"),
        InteractionMatrixBuilder(),
        recommender,
    )


def als():
    return ImplicitALSRecommender(alpha=10.0, num_threads=1, random_state=0)


# %%
# Tune the blend's weights
# ------------------------
# Only the weights change between candidates, so with ``memory`` the ALS and
# repeat components are fitted once per fold and reused.
cache = tempfile.TemporaryDirectory()
blend = BlendRecommender(
    [("als", als()), ("repeat", RepeatRecommender())], memory=cache.name
)
search = GridSearchCV(
    pipeline(blend),
    {"blendrecommender__weights": [[1, 0.5], [1, 1], [1, 2], [1, 4]]},
    scoring=make_next_item_scorer(k=20),
    refit="hit_rate@20",
    cv=SessionHoldoutSplit(n_splits=2),
).fit(train)
print("picked weights (als, repeat):", search.best_params_)

# %%
# Compare on the held-out sessions
# --------------------------------
fitted = {
    "popularity": pipeline(PopularityRecommender()).fit(train),
    "ALS fold-in": pipeline(als()).fit(train),
    "repeat": pipeline(RepeatRecommender()).fit(train),
    "blend (tuned)": search.best_estimator_,
}
next_item = make_next_item_scorer(k=20)
rest = make_session_scorer("ndcg", k=5)
rows = [
    {"model": name, **next_item(model, test), "ndcg@5": rest(model, test)}
    for name, model in fitted.items()
]
table = pl.DataFrame(rows)
print(table)
cache.cleanup()

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.27
x = range(table.height)
for i, metric in enumerate(["hit_rate@20", "mrr@20", "ndcg@5"]):
    ax.bar([j + (i - 1) * width for j in x], table[metric], width, label=metric)
ax.set_xticks(list(x), table["model"].to_list())
ax.set_ylabel("score (higher is better)")
ax.legend()
ax.set_title("Held-out sessions with sequential structure")
fig.tight_layout()
plt.show()
