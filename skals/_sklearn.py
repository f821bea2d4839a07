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

import sys

from sklearn.utils._param_validation import (  # noqa: F401
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
    generate_valid_param,
    make_constraint,
    validate_parameter_constraints,
)


def event_subsampling_fraction(depth: int = 2) -> float | None:
    """Fraction of rows kept when a splitter runs under halving's subsampler.

    ``HalvingGridSearchCV(resource="n_samples")`` wraps the ``cv`` in
    scikit-learn's private ``_SubsampleMetaSplitter``, which keeps a random
    fraction of each fold's row positions. A splitter calls this from its
    ``split`` to learn whether its caller (``depth`` frames up) is that
    subsampler; ``None`` when it is not, or when scikit-learn no longer has
    it (then ``tests/test_split.py`` fails).
    """
    try:
        from sklearn.model_selection._search_successive_halving import (
            _SubsampleMetaSplitter,
        )
    except ImportError:  # pragma: no cover - a scikit-learn without it
        return None
    frame = sys._getframe(depth)
    owner = frame.f_locals.get("self") if frame is not None else None
    if isinstance(owner, _SubsampleMetaSplitter):
        return float(owner.fraction)
    return None


__all__ = [
    "event_subsampling_fraction",
    "Interval",
    "StrOptions",
    "generate_valid_param",
    "make_constraint",
    "validate_parameter_constraints",
]
