"""Cross-validation splitters for event logs."""

from ._split import SessionHoldoutSplit, TemporalSplit

__all__ = ["SessionHoldoutSplit", "TemporalSplit"]
