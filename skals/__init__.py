"""skals: scikit-learn-compatible implicit-feedback recommendation with ALS.

The pieces compose in a scikit-learn ``Pipeline``::

    make_pipeline(PseudoUserUnifier(), ConfidenceEncoder(),
                  InteractionMatrixBuilder(), ImplicitALSRecommender())

and tune with ``GridSearchCV`` and the scorers of :mod:`skals.metrics`.
"""

from ._recommend import recommend, to_long
from ._version import __version__
from ._warnings import collect_warnings
from .metrics import make_top_k_overlap_scorer, top_k_overlap_scorer
from .model_selection import SessionHoldoutSplit, TemporalSplit
from .preprocessing import (
    ConfidenceEncoder,
    InteractionMatrix,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)
from .recommender import ImplicitALSRecommender, PopularityRecommender

__all__ = [
    "ConfidenceEncoder",
    "ImplicitALSRecommender",
    "InteractionMatrix",
    "InteractionMatrixBuilder",
    "PopularityRecommender",
    "PseudoUserUnifier",
    "SessionHoldoutSplit",
    "TemporalSplit",
    "__version__",
    "collect_warnings",
    "make_top_k_overlap_scorer",
    "recommend",
    "to_long",
    "top_k_overlap_scorer",
]
