"""
===========
Quick start
===========

The whole workflow in a few lines: an event log in, five products per session
out. The four steps of the pipeline are the notebook's workflow: a user key
per event, a confidence per (key, product), a sparse matrix, and ALS.
"""

# %%
# An event log
# ------------
# :func:`~skals.datasets.make_sessions` generates a log in the challenge's
# schema: mostly anonymous, mostly short sessions, about 6% cart adds.
import matplotlib.pyplot as plt
import polars as pl
from sklearn.pipeline import make_pipeline

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

events = make_sessions(n_sessions=5_000, n_items=500, random_state=0)
events.head()

# %%
# Hold out the last sessions
# --------------------------
# The challenge asks for sessions that start after the training log ends.
# :class:`~skals.model_selection.SessionHoldoutSplit` holds out the last 20%
# of sessions, whole, and trains on everything that happened before them.
train_idx, test_idx = next(SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events))
train, test = events[train_idx], events[test_idx]
print(f"{train.height} training events, {test['session_id'].n_unique()} new sessions")

# %%
# The pipeline
# ------------
# ``grain="session"`` makes the encoder keep one row per session, so that
# ``predict`` answers every session of the test log (training is the same at
# both grains).
pipe = make_pipeline(
    PseudoUserUnifier(),
    ConfidenceEncoder(grain="session"),
    InteractionMatrixBuilder(),
    ImplicitALSRecommender(factors=32, num_threads=1, random_state=0),
)
pipe.fit(train)

# %%
# Recommend for new sessions
# --------------------------
# As in the challenge's test log, each new session reveals its first events
# and no ``add_to_cart`` column. The sessions were never seen in training:
# their user factors are solved from these events (fold-in).
context = (
    test.sort("session_id", "timestamp_local")
    .group_by("session_id", maintain_order=True)
    .head(3)
    .drop("add_to_cart")
)
recommendations = pipe.predict(context)
recommendations.head()

# %%
# How good is it?
# ---------------
# :func:`~skals.metrics.make_session_scorer` replays that protocol on the
# held-out sessions: it reveals the first ``n_revealed`` events of each,
# asks the pipeline for 5 products and scores NDCG@5 against the products
# the session added to its cart. More revealed events tell the model more
# about the session; popularity does not use them at all.
popularity = make_pipeline(
    PseudoUserUnifier(),
    ConfidenceEncoder(),
    InteractionMatrixBuilder(),
    PopularityRecommender(),
).fit(train)

revealed = [1, 2, 3, 5, 8]
scores = pl.DataFrame(
    {
        "revealed": revealed,
        "ALS with fold-in": [
            make_session_scorer("ndcg", n_revealed=n)(pipe, test) for n in revealed
        ],
        "popularity": [
            make_session_scorer("ndcg", n_revealed=n)(popularity, test)
            for n in revealed
        ],
    }
)
scores.with_columns(ratio=pl.col("ALS with fold-in") / pl.col("popularity"))

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name in ("ALS with fold-in", "popularity"):
    ax.plot(scores["revealed"], scores[name], marker="o", label=name)
ax.set_xlabel("events revealed per new session")
ax.set_ylabel("NDCG@5 on cart adds")
ax.set_ylim(0, None)
ax.legend()
fig.tight_layout()
