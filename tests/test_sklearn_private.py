"""The scikit-learn private helpers skals uses (all through ``skals._sklearn``).

These names come from private scikit-learn modules; if a release changes
their behaviour, these tests fail before the estimators misbehave.
"""

import ast
import pathlib
from numbers import Integral, Real

import pytest
from sklearn.utils._param_validation import InvalidParameterError

import skals
from skals._sklearn import (
    Interval,
    StrOptions,
    generate_valid_param,
    make_constraint,
    validate_parameter_constraints,
)


def test_validate_parameter_constraints_names_parameter_and_value():
    constraints = {
        "k": [Interval(Integral, 1, None, closed="left")],
        "by": [StrOptions({"a", "b"})],
        "w": [Interval(Real, 0, 1, closed="neither"), None],
    }
    validate_parameter_constraints(
        constraints, {"k": 3, "by": "a", "w": None}, caller_name="Est"
    )
    for bad, name in [({"k": 0}, "k"), ({"by": "c"}, "by"), ({"w": 1.0}, "w")]:
        params = {"k": 3, "by": "a", "w": 0.5, **bad}
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of Est"):
            validate_parameter_constraints(constraints, params, caller_name="Est")


def test_generate_valid_param_satisfies_its_constraint():
    for constraint in (
        Interval(Integral, 1, None, closed="left"),
        Interval(Real, 0, 1, closed="neither"),
        StrOptions({"x", "y"}),
    ):
        value = generate_valid_param(make_constraint(constraint))
        assert make_constraint(constraint).is_satisfied_by(value)


def test_only_one_module_imports_sklearn_private_helpers():
    root = pathlib.Path(skals.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and (node.module.startswith("sklearn.utils._param_validation"))
            ):
                offenders.append(str(path.relative_to(root)))
    assert offenders == ["_sklearn.py"]
