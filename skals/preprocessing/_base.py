"""Tags and bookkeeping shared by the dataframe transformers."""

from __future__ import annotations

import numpy as np

from .._frame import schema_of
from .._set_output import FrameOutputMixin


def spark_call(estimator, method: str, X):
    """Run ``estimator.<method>(X)`` with skals' Spark implementation.

    The transformers call this for a pyspark DataFrame; the Spark code (and
    pyspark itself) is imported only then. ``skals.spark`` imports no
    transformer back: it dispatches on the estimator's class name.
    """
    from ..spark._preprocessing import dispatch

    return dispatch(estimator, method, X)


class FrameTransformerMixin(FrameOutputMixin):
    """Tags and bookkeeping for transformers whose input is an event log.

    The input is a dataframe (polars or pandas), not a 2-D numeric array, so
    the tags say ``two_d_array=False``: scikit-learn's estimator checks then run
    only their data-free checks, and skals' own battery covers the rest.

    Nothing is cached implicitly: to share preprocessing between the
    candidates of a grid search, give the pipeline a
    :class:`~skals.preprocessing.FrameCache` as ``memory``.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.requires_fit = True
        tags.target_tags.required = False
        return tags

    def _remember_columns(self, df) -> None:
        names = schema_of(df).names()
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
