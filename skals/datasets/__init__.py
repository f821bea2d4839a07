"""Synthetic event logs shaped like the fashion-retail recommendation challenge."""

from ._sessions import make_sessions

__all__ = ["make_sessions"]
