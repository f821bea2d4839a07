"""Recommenders: users x items matrix in, top-k items out."""

from ._als import ImplicitALSRecommender
from ._knn import SessionKNNRecommender
from ._popularity import PopularityRecommender

__all__ = ["ImplicitALSRecommender", "PopularityRecommender", "SessionKNNRecommender"]
