"""Ranking metrics (higher is better) and scorers for GridSearchCV."""

from ._next_item import make_next_item_scorer
from ._ranking import (
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    overlap_at_k,
    precision_at_k,
    recall_at_k,
)
from ._scorer import (
    make_session_scorer,
    make_top_k_overlap_scorer,
    session_hit_rate_scorer,
    session_map_scorer,
    session_ndcg_scorer,
    session_precision_scorer,
    session_recall_scorer,
    session_scorers,
    top_k_overlap_scorer,
)

__all__ = [
    "hit_rate_at_k",
    "make_next_item_scorer",
    "make_session_scorer",
    "make_top_k_overlap_scorer",
    "map_at_k",
    "ndcg_at_k",
    "overlap_at_k",
    "precision_at_k",
    "recall_at_k",
    "session_hit_rate_scorer",
    "session_map_scorer",
    "session_ndcg_scorer",
    "session_precision_scorer",
    "session_recall_scorer",
    "session_scorers",
    "top_k_overlap_scorer",
]
