"""Recommenders: users x items matrix in, top-k items out."""

from ._als import ImplicitALSRecommender
from ._blend import BlendRecommender, default_session_estimators, make_cart_blend
from ._checkpoints import FactorCheckpoints
from ._knn import SessionKNNRecommender
from ._popularity import PopularityRecommender
from ._repeat import RepeatRecommender
from ._rerank import RerankRecommender, default_rerank_estimators
from ._rules import SequentialRulesRecommender
from ._slist import SLISTRecommender

__all__ = [
    "BlendRecommender",
    "FactorCheckpoints",
    "ImplicitALSRecommender",
    "PopularityRecommender",
    "RepeatRecommender",
    "RerankRecommender",
    "SessionKNNRecommender",
    "SequentialRulesRecommender",
    "SLISTRecommender",
    "default_rerank_estimators",
    "default_session_estimators",
    "make_cart_blend",
]
