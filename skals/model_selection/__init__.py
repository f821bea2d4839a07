"""Splitters, searches and the reveal-the-first-n protocol for event logs."""

from ._early_stopping import EarlyStoppingPipeline, make_early_stopping_pipeline
from ._halving import SessionHalvingGridSearchCV, SessionSubsampleSplit
from ._protocol import reveal_first_n
from ._split import SessionHoldoutSplit, TemporalSplit

__all__ = [
    "EarlyStoppingPipeline",
    "SessionHalvingGridSearchCV",
    "SessionHoldoutSplit",
    "SessionSubsampleSplit",
    "TemporalSplit",
    "reveal_first_n",
    "make_early_stopping_pipeline",
]
