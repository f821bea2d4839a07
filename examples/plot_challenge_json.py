"""
==============================
Producing the challenge's JSON
==============================

The challenge's test log has a few thousand sessions, none of them in the
training log, and no ``add_to_cart`` column. The answer is a JSON file with
five partnumbers per session::

    {"target": {"<session_id>": [p1, p2, p3, p4, p5], ...}}

This example trains on a synthetic training log, builds a test log shaped
like the challenge's (the first one to five events of later sessions), and
writes that file. The
command line does the same in one line: ``skals predict MODEL EVENTS
--output predictions.json`` (see :doc:`/cli`).
"""

# %%
import json
from pathlib import Path
from tempfile import mkdtemp

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
    SessionHoldoutSplit,
)
from skals.datasets import make_sessions

events = make_sessions(n_sessions=5_000, n_items=500, random_state=2)
train_idx, test_idx = next(SessionHoldoutSplit(n_splits=1, test_size=0.1).split(events))
train, later = events[train_idx], events[test_idx]

# %%
# A test log like the challenge's
# -------------------------------
# Each later session reveals between one and five of its first events, and
# the ``add_to_cart`` column is dropped.
rng = np.random.default_rng(0)
sessions = later["session_id"].unique().sort()
n_shown = pl.DataFrame(
    {"session_id": sessions, "n_shown": rng.integers(1, 6, size=len(sessions))}
)
test_log = (
    later.sort("session_id", "timestamp_local")
    .with_columns(position=pl.int_range(pl.len()).over("session_id"))
    .join(n_shown, on="session_id")
    .filter(pl.col("position") < pl.col("n_shown"))
    .drop("add_to_cart", "position", "n_shown")
)
print(f"{test_log['session_id'].n_unique()} test sessions, {test_log.height} events")
test_log.head()

# %%
# One answer per session
# ----------------------
# ``grain="session"`` keeps one row per session in the encoded data, so the
# pipeline answers every ``session_id`` (a logged-in user's sessions each get
# their own answer, from the session's events plus the user's history).
# ``filter_already_liked_items`` stays off: products a session viewed are
# the ones it is most likely to add to its cart.
pipe = make_pipeline(
    PseudoUserUnifier(),
    ConfidenceEncoder(grain="session"),
    InteractionMatrixBuilder(),
    ImplicitALSRecommender(
        factors=64, regularization=0.1, k=5, num_threads=1, random_state=0
    ),
)
pipe.fit(train)
answers = pipe.predict(test_log)
answers.head()

# %%
# Check the answers and write the file
# ------------------------------------
# Every session of the test log gets exactly five distinct products.
assert answers["session_id"].sort().equals(sessions.rename("session_id"))
assert (answers["recommendations"].list.n_unique() == 5).all()

target = {
    str(session): [int(p) for p in products]
    for session, products in answers.select("session_id", "recommendations").rows()
}
path = Path(mkdtemp()) / "predictions.json"
path.write_text(json.dumps({"target": target}))
print(path.name, f"{path.stat().st_size / 1024:.0f} KiB")
print(json.dumps({"target": dict(list(target.items())[:3])}))

# %%
# Where the answers come from
# ---------------------------
# Products recommended to many sessions are the popular ones; the long tail
# comes from sessions whose revealed events point elsewhere in the catalogue.
counts = (
    answers.explode("recommendations")
    .group_by("recommendations")
    .len()
    .sort("len", descending=True)
)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.arange(1, counts.height + 1), counts["len"], marker=".", linestyle="")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("product, by number of sessions it is recommended to")
ax.set_ylabel("sessions")
ax.set_title(f"{counts.height} distinct products in {answers.height} answers")
fig.tight_layout()
