"""Utilities for developers: skals' check battery for dataframe transformers."""

from .estimator_checks import (
    check_clone_and_pickle,
    check_duplicate_column_names,
    check_empty_frame,
    check_feature_names_in,
    check_fit_then_transform,
    check_frame_libraries,
    check_frame_transformer,
    check_input_not_mutated,
    check_missing_columns,
    check_params,
    check_refit,
    check_transform_before_fit,
    frame_checks_generator,
    parametrize_with_frame_checks,
)

__all__ = [
    "check_clone_and_pickle",
    "check_duplicate_column_names",
    "check_empty_frame",
    "check_feature_names_in",
    "check_fit_then_transform",
    "check_frame_libraries",
    "check_frame_transformer",
    "check_input_not_mutated",
    "check_missing_columns",
    "check_params",
    "check_refit",
    "check_transform_before_fit",
    "frame_checks_generator",
    "parametrize_with_frame_checks",
]
