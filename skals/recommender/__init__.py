"""Recommenders: users x items matrix in, top-k items out."""

from ._als import ImplicitALSRecommender
from ._checkpoints import FactorCheckpoints
from ._popularity import PopularityRecommender

__all__ = ["FactorCheckpoints", "ImplicitALSRecommender", "PopularityRecommender"]
