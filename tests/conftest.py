"""Shared test helpers: the four-step skals pipeline that most test files build.

``setup.cfg`` puts ``tests/`` on ``sys.path`` (``pythonpath = tests``), so a
test module imports the helper with ``from conftest import skals_pipeline``.
"""

from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)


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
