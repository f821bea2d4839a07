"""skals: scikit-learn-compatible implicit-feedback recommendation with ALS.

The pieces compose in a scikit-learn ``Pipeline``::

    make_pipeline(PseudoUserUnifier(), ConfidenceEncoder(),
                  InteractionMatrixBuilder(), ImplicitALSRecommender())

and tune with ``GridSearchCV`` and the scorers of :mod:`skals.metrics`.
"""

from ._version import __version__
from .metrics import make_top_k_overlap_scorer, top_k_overlap_scorer
from .model_selection import SessionHoldoutSplit, TemporalSplit
from .preprocessing import (
    ConfidenceEncoder,
    InteractionMatrix,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)
from .recommender import (
    BlendRecommender,
    ImplicitALSRecommender,
    PopularityRecommender,
    RepeatRecommender,
    SessionKNNRecommender,
)

__all__ = [
    "BlendRecommender",
    "ConfidenceEncoder",
    "ImplicitALSRecommender",
    "InteractionMatrix",
    "InteractionMatrixBuilder",
    "PopularityRecommender",
    "PseudoUserUnifier",
    "RepeatRecommender",
    "SessionHoldoutSplit",
    "SessionKNNRecommender",
    "TemporalSplit",
    "__version__",
    "make_top_k_overlap_scorer",
    "top_k_overlap_scorer",
]
