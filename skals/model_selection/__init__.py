"""Cross-validation splitters and searches for event logs."""

from ._early_stopping import EarlyStoppingPipeline
from ._halving import SessionHalvingGridSearchCV, SessionSubsampleSplit
from ._split import SessionHoldoutSplit, TemporalSplit

__all__ = [
    "EarlyStoppingPipeline",
    "SessionHalvingGridSearchCV",
    "SessionHoldoutSplit",
    "SessionSubsampleSplit",
    "TemporalSplit",
]
