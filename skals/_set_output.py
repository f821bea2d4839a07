"""``set_output`` for the frame transformers: choose the output's library."""

from __future__ import annotations

import functools

import polars as pl
from sklearn import get_config

_OPTIONS = ("default", "pandas", "polars")


def output_library(estimator) -> str:
    """``"default"``, ``"pandas"`` or ``"polars"``: what ``transform`` returns.

    The estimator's own :meth:`set_output` wins; else scikit-learn's global
    ``set_config(transform_output=...)``.
    """
    config = getattr(estimator, "_sklearn_output_config", {}).get("transform")
    if config is None:
        config = get_config().get("transform_output", "default")
    return config if config in _OPTIONS else "default"


def convert_output(out, library: str):
    """A polars or pandas frame converted to ``library``; anything else as is.

    An :class:`~skals.InteractionMatrix` (the builder's output) and Spark
    DataFrames are not frames of either library and pass through unchanged.
    """
    if library == "default":
        return out
    is_pandas = type(out).__module__.startswith("pandas") and hasattr(out, "columns")
    if library == "pandas" and isinstance(out, (pl.DataFrame, pl.LazyFrame)):
        return (out.collect() if isinstance(out, pl.LazyFrame) else out).to_pandas()
    if library == "polars" and is_pandas:
        return pl.from_pandas(out)
    return out


def _wrap(method):
    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        return convert_output(method(self, *args, **kwargs), output_library(self))

    wrapped._skals_output_wrapped = True
    return wrapped


class FrameOutputMixin:
    """``set_output(transform="pandas"|"polars"|"default")`` for frame steps.

    scikit-learn's own ``set_output`` needs ``get_feature_names_out`` and
    numeric arrays; the skals transformers take and return dataframes, so
    they convert their output themselves: ``"pandas"`` returns pandas,
    ``"polars"`` polars (a LazyFrame stays lazy), ``"default"`` the input's
    library. ``Pipeline.set_output`` calls it on every step. A step whose
    output is not a frame (the builder's
    :class:`~skals.InteractionMatrix`) accepts the call and returns what it
    always does.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("transform", "fit_transform"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(
                method, "_skals_output_wrapped", False
            ):
                setattr(cls, name, _wrap(method))

    def set_output(self, *, transform=None):
        """Choose the dataframe library of ``transform``'s output.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            ``"pandas"`` or ``"polars"``: frames come out in that library;
            ``"default"``: in the input's library (polars in, polars out);
            ``None``: leave the setting as it is. Outputs that are not
            frames (an :class:`~skals.InteractionMatrix`, a Spark DataFrame)
            are never converted.

        Returns
        -------
        self : estimator
            The estimator, configured.
        """
        if transform is None:
            return self
        if transform not in _OPTIONS:
            raise ValueError(
                f"set_output: transform must be one of {list(_OPTIONS)} or None; "
                f"got {transform!r}."
            )
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config = {}
        self._sklearn_output_config["transform"] = transform
        return self
