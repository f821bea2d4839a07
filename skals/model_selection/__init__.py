"""Cross-validation splitters and searches for event logs."""

from ._halving import SessionHalvingGridSearchCV, SessionSubsampleSplit
from ._split import SessionHoldoutSplit, TemporalSplit

__all__ = [
    "SessionHalvingGridSearchCV",
    "SessionHoldoutSplit",
    "SessionSubsampleSplit",
    "TemporalSplit",
]
