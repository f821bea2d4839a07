"""Cross-validation splitters for event logs, and the reveal-the-first-n protocol."""

from ._protocol import reveal_first_n
from ._split import SessionHoldoutSplit, TemporalSplit

__all__ = ["SessionHoldoutSplit", "TemporalSplit", "reveal_first_n"]
