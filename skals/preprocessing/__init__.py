"""Pipeline steps from an event log to an interaction matrix."""

from ._builder import InteractionMatrix, InteractionMatrixBuilder
from ._cache import FrameCache
from ._confidence import ConfidenceEncoder
from ._unifier import PseudoUserUnifier

__all__ = [
    "ConfidenceEncoder",
    "FrameCache",
    "InteractionMatrix",
    "InteractionMatrixBuilder",
    "PseudoUserUnifier",
]
