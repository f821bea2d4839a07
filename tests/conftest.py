"""Shared test helpers: the four-step skals pipeline, and a six-session log.

``setup.cfg`` puts ``tests/`` on ``sys.path`` (``pythonpath = tests``), so a
test module imports the helper with ``from conftest import skals_pipeline``.
"""

import polars as pl
from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
    Schema,
)

#: The columns of :func:`six_sessions`, as a skals schema (renamed columns).
SIX_SESSIONS_SCHEMA = Schema(
    session="sid", user="uid", item="sku", cart="cart", time="ts"
)


def six_sessions() -> pl.DataFrame:
    """Six sessions; user 243 owns sessions 1 and 5, user 7 session 3."""
    return pl.DataFrame(
        {
            "sid": [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6],
            "uid": [243, 243, 243, None, None, 7, 7, None, None, 243, 243, None],
            "sku": ["a", "b", "c", "b", "c", "a", "d", "d", "e", "e", "a", "f"],
            "cart": [0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0],
            "ts": list(range(12)),
        }
    ).with_columns(pl.from_epoch("ts"))


def skals_pipeline(final=None, grain="key", **encoder):
    """Unifier -> encoder (``grain``, ``**encoder``) -> builder -> ``final``.

    ``final`` defaults to a small seeded ALS (8 factors, 5 sweeps).
    """
    if final is None:
        final = ImplicitALSRecommender(factors=8, iterations=5, random_state=0)
    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain=grain, **encoder),
        InteractionMatrixBuilder(),
        final,
    )
