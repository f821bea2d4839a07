"""skals: scikit-learn-compatible implicit-feedback recommendation with ALS.

The pieces compose in a scikit-learn ``Pipeline``::

    make_pipeline(PseudoUserUnifier(), ConfidenceEncoder(),
                  InteractionMatrixBuilder(), ImplicitALSRecommender())

and tune with ``GridSearchCV`` and the scorers of :mod:`skals.metrics`.
``skals.save`` and ``skals.load`` write and read model files
(:mod:`skals.io`).

``import skals`` is quick: the names below and the subpackages are imported
on first use (PEP 562), so polars, scikit-learn and implicit load only when
something needs them.
"""

import importlib

from ._version import __version__

#: Where each top-level name is defined (imported on first access).
_EXPORTS = {
    "BlendRecommender": "recommender",
    "ConfidenceEncoder": "preprocessing",
    "FrameCache": "preprocessing",
    "ImplicitALSRecommender": "recommender",
    "InteractionMatrix": "preprocessing",
    "InteractionMatrixBuilder": "preprocessing",
    "PopularityRecommender": "recommender",
    "PseudoUserUnifier": "preprocessing",
    "RepeatRecommender": "recommender",
    "RerankRecommender": "recommender",
    "Schema": "schema",
    "SessionHoldoutSplit": "model_selection",
    "SessionKNNRecommender": "recommender",
    "SkalsDeprecationWarning": "_warnings",
    "SkalsWarning": "_warnings",
    "TemporalSplit": "model_selection",
    "collect_warnings": "_warnings",
    "load": "io",
    "make_recommender_pipeline": "schema",
    "make_top_k_overlap_scorer": "metrics",
    "recommend": "_recommend",
    "save": "io",
    "to_long": "_recommend",
    "top_k_overlap_scorer": "metrics",
    "SequentialRulesRecommender": "recommender",
    "SLISTRecommender": "recommender",
}

_SUBMODULES = (
    "cli",
    "datasets",
    "io",
    "metrics",
    "model_selection",
    "preprocessing",
    "recommender",
    "schema",
    "spark",
)

__all__ = [
    "BlendRecommender",
    "ConfidenceEncoder",
    "FrameCache",
    "ImplicitALSRecommender",
    "InteractionMatrix",
    "InteractionMatrixBuilder",
    "PopularityRecommender",
    "PseudoUserUnifier",
    "RepeatRecommender",
    "RerankRecommender",
    "Schema",
    "SessionHoldoutSplit",
    "SessionKNNRecommender",
    "SkalsDeprecationWarning",
    "SkalsWarning",
    "TemporalSplit",
    "__version__",
    "collect_warnings",
    "load",
    "make_recommender_pipeline",
    "make_top_k_overlap_scorer",
    "recommend",
    "save",
    "to_long",
    "top_k_overlap_scorer",
    "SequentialRulesRecommender",
    "SLISTRecommender",
]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'skals' has no attribute {name!r}")
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
