"""
=====================================
Tuning the confidence and ALS jointly
=====================================

The confidence weights of :class:`~skals.ConfidenceEncoder` and the
hyperparameters of :class:`~skals.ImplicitALSRecommender` are parameters of
one pipeline, so one ``GridSearchCV`` tunes
them together. The folds hold out whole sessions that start after their
training events, and the scorer reveals the first events of each held-out
session and scores the products it added to its cart, as the challenge does.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    FrameCache,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
    SessionHoldoutSplit,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer

events = make_sessions(n_sessions=3_000, n_items=400, random_state=0)

# ``memory=FrameCache()``: candidates that differ only in the recommender's
# parameters share one preprocessing per fold (nothing is cached without it)
memory = FrameCache()
pipe = make_pipeline(
    PseudoUserUnifier(),
    ConfidenceEncoder(),
    InteractionMatrixBuilder(),
    # one thread: on a matrix this small, starting threads costs more than
    # they save
    ImplicitALSRecommender(iterations=10, num_threads=1, random_state=0),
    memory=memory,
)

# %%
# The grid and the search
# -----------------------
# A list of metrics makes the scorer return a dict from a single round of
# predictions per candidate; ``refit`` picks the one that selects the model.
param_grid = {
    "confidenceencoder__cart_weight": [1, 10],
    "implicitalsrecommender__factors": [16, 64],
    "implicitalsrecommender__regularization": [0.01, 0.1, 1.0],
}
search = GridSearchCV(
    pipe,
    param_grid,
    scoring=make_session_scorer(["ndcg", "precision"], n_revealed=3),
    refit="ndcg@5",
    cv=SessionHoldoutSplit(n_splits=2, test_size=0.1),
)
search.fit(events)
print("best:", search.best_params_)
print(f"preprocessing: {memory.misses} steps computed, {memory.hits} reused")
print(f"NDCG@5 = {search.best_score_:.3f}")

# %%
# The ``cv_results_`` as a table: the eight best candidates.
results = pl.DataFrame(
    {
        "cart_weight": search.cv_results_["param_confidenceencoder__cart_weight"],
        "factors": search.cv_results_["param_implicitalsrecommender__factors"],
        "regularization": search.cv_results_[
            "param_implicitalsrecommender__regularization"
        ],
        "ndcg@5": search.cv_results_["mean_test_ndcg@5"],
        "precision@5": search.cv_results_["mean_test_precision@5"],
    }
).sort("ndcg@5", descending=True)
results.head(8)

# %%
# A heatmap per cart weight
# -------------------------
# Rows are the number of factors, columns the regularization; one panel per
# cart weight, on a common colour scale.
weights = param_grid["confidenceencoder__cart_weight"]
factors = param_grid["implicitalsrecommender__factors"]
regs = param_grid["implicitalsrecommender__regularization"]
vmin, vmax = results["ndcg@5"].min(), results["ndcg@5"].max()

fig, axes = plt.subplots(
    1, len(weights), figsize=(8, 3.2), sharey=True, layout="constrained"
)
for ax, weight in zip(axes, weights, strict=True):
    grid = np.array(
        [
            [
                results.filter(
                    (pl.col("cart_weight") == weight)
                    & (pl.col("factors") == f)
                    & (pl.col("regularization") == r)
                )["ndcg@5"].item()
                for r in regs
            ]
            for f in factors
        ]
    )
    image = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax)
    for (i, j), value in np.ndenumerate(grid):
        dark = value < (vmin + vmax) / 2  # white text on the dark cells
        color = "white" if dark else "black"
        ax.text(j, i, f"{value:.3f}", ha="center", va="center", color=color)
    ax.set_xticks(range(len(regs)), [f"{r:g}" for r in regs])
    ax.set_yticks(range(len(factors)), factors)
    ax.set_xlabel("regularization")
    ax.set_title(f"cart_weight = {weight}")
axes[0].set_ylabel("factors")
fig.colorbar(image, ax=axes, label="mean NDCG@5", shrink=0.9)

# %%
# The refitted ``search.best_estimator_`` is a fitted pipeline, ready for
# ``predict``; see :ref:`sphx_glr_auto_examples_plot_challenge_json.py`.
