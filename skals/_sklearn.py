"""The one door to scikit-learn's private helpers that skals uses.

scikit-learn's parameter-validation machinery (``Interval``, ``StrOptions``,
``validate_parameter_constraints``, ``make_constraint``,
``generate_valid_param``) lives in the private module
``sklearn.utils._param_validation``; sklearn-compat only re-exports
``validate_params``. Every skals module imports these names from here, so a
change in scikit-learn is fixed in one place (and
``tests/test_sklearn_private.py`` fails first if their behaviour changes).
"""

from __future__ import annotations

from sklearn.utils._param_validation import (  # noqa: F401
    Interval,
    StrOptions,
    generate_valid_param,
    make_constraint,
    validate_parameter_constraints,
)

__all__ = [
    "Interval",
    "StrOptions",
    "generate_valid_param",
    "make_constraint",
    "validate_parameter_constraints",
]
