"""scikit-learn's estimator checks, and skals' own, on every public estimator.

Estimators are discovered: every ``BaseEstimator`` subclass named in the
``__all__`` of ``skals`` or of one of its public subpackages is checked, so a
new estimator is picked up without editing this file (the count test below
derives how many checks each one must get from the check generators).
:class:`~skals.spark.SparkALSRecommender` is checked where pyspark (and
Java) are installed: every one of its checks trains on a local Spark.

* Estimators that take a users x items matrix (the recommenders) run
  scikit-learn's full suite. The only expected failures are the two
  sparse-input checks that assert a 1-D ``predict`` output: a recommender's
  ``predict`` returns the top ``k`` items of every row, shape (n_rows, k).
  ``xfail`` is strict, so a check that starts passing fails the suite.
* The dataframe transformers declare non-array input (``two_d_array=False``);
  scikit-learn then runs only ``check_estimator_cloneable`` on them, and
  skals' battery (``tests/_frame_checks.py``) runs instead, on the
  default instances and on instances with non-default column names and
  options.
"""

import importlib
import importlib.util
import inspect
import os
import pkgutil
import subprocess
import sys
import warnings
from collections import Counter

import numpy as np
import polars as pl
import pytest
import sklearn
from _frame_checks import (
    check_clone_and_pickle,
    check_duplicate_column_names,
    check_empty_frame,
    check_fit_then_transform,
    check_frame_libraries,
    check_frame_transformer,
    check_input_not_mutated,
    check_missing_columns,
    check_refit,
    frame_checks_generator,
    parametrize_with_frame_checks,
)
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import SkipTestWarning
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (
    check_param_validation,
    estimator_checks_generator,
    parametrize_with_checks,
)
from sklearn.utils.fixes import parse_version

import skals
from skals import (
    ConfidenceEncoder,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)

# parametrize_with_checks(xfail_strict=...) needs scikit-learn >= 1.8, the
# floor pyproject.toml declares: this module runs on every supported release.
assert parse_version(sklearn.__version__) >= parse_version("1.8")


# ---------------------------------------------------------------- discovery
def _public_packages():
    """``skals`` and every public subpackage, imported."""
    yield skals
    for info in pkgutil.walk_packages(skals.__path__, "skals."):
        if info.ispkg and not any(p.startswith("_") for p in info.name.split(".")):
            yield importlib.import_module(info.name)


def _is_meta(cls):
    """Meta-estimators (searches, pipelines) wrap estimators: they are tested
    with them (tests/test_halving.py, tests/test_early_stopping.py)."""
    return bool({"estimator", "steps"} & set(inspect.signature(cls).parameters))


def all_estimators():
    """Public estimator classes of skals, sorted by name."""
    found = {}
    for module in _public_packages():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and not inspect.isabstract(obj)
                and not _is_meta(obj)
            ):
                found[obj.__name__] = obj
    return [found[name] for name in sorted(found)]


#: Small, fast settings for the checks; everything else is the default.
FAST_PARAMS = {
    "ImplicitALSRecommender": {"factors": 2, "iterations": 2, "random_state": 0},
    "SparkALSRecommender": {
        "factors": 2,
        "iterations": 2,
        "num_blocks": 1,
        "random_state": 0,
    },
    "BlendRecommender": {
        "estimators": [
            ("repeat", skals.RepeatRecommender()),
            ("pop", skals.PopularityRecommender()),
        ]
    },
    # the default's STAN part needs the events' order, which arrays have not
    "RerankRecommender": {
        "estimators": [
            ("repeat", skals.RepeatRecommender()),
            ("pop", skals.PopularityRecommender()),
        ]
    },
}


def _runnable(cls):
    """False for the Spark estimator where pyspark is not installed."""
    if cls.__module__.startswith("skals.spark"):
        return importlib.util.find_spec("pyspark") is not None
    return True


def _instance(cls):
    return cls(**FAST_PARAMS.get(cls.__name__, {}))


ESTIMATORS = [_instance(cls) for cls in all_estimators() if _runnable(cls)]
FRAME_TRANSFORMERS = [e for e in ESTIMATORS if not get_tags(e).input_tags.two_d_array]
ARRAY_ESTIMATORS = [e for e in ESTIMATORS if get_tags(e).input_tags.two_d_array]

#: Non-default configurations that change which columns are read and written.
CONFIGURED_TRANSFORMERS = [
    PseudoUserUnifier(
        user_col="uid", session_col="sid", output_col="key", user_prefix="U"
    ),
    ConfidenceEncoder(grain="session", segment_col="country", cart_weight=3.5),
    ConfidenceEncoder(grain="session", time_col="timestamp_local"),
    ConfidenceEncoder(user_col="key", item_col="sku", cart_col="cart", view_weight=0),
    InteractionMatrixBuilder(segment_col="country"),
    InteractionMatrixBuilder(item_col="sku", value_col="c", session_col="sid"),
]

SPARSE_1D_PREDICT = (
    "predict returns the top-k items of every row, shape (n_rows, k); this "
    "check asserts a 1-D predict output of shape (n_rows,)"
)


def expected_failed_checks(estimator):
    """The sklearn checks a skals estimator is known to fail, with reasons."""
    if get_tags(estimator).input_tags.two_d_array and hasattr(estimator, "predict"):
        return {
            "check_estimator_sparse_array": SPARSE_1D_PREDICT,
            "check_estimator_sparse_matrix": SPARSE_1D_PREDICT,
        }
    return {}


# ------------------------------------------------------- scikit-learn's suite
with warnings.catch_warnings():
    # "Can't test estimator ... which requires input of type": the frame
    # transformers, which skals' battery below covers
    warnings.simplefilter("ignore", SkipTestWarning)
    sklearn_checks = parametrize_with_checks(
        ESTIMATORS, expected_failed_checks=expected_failed_checks, xfail_strict=True
    )


@sklearn_checks
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        # small random matrices leave some rows with fewer than k items: the
        # clipping warning is expected there (tests/test_robustness.py); by
        # category: skals attributes it to the caller, so module="skals" missed it
        warnings.filterwarnings("ignore", ".*k=.* clipped", skals.SkalsWarning)
        check(estimator)


@pytest.mark.parametrize("estimator", ARRAY_ESTIMATORS, ids=lambda e: repr(e))
def test_param_validation(estimator):
    # not part of sklearn's generator; the frame battery runs it for the
    # transformers. Constraints cover every parameter, and each bad type or
    # value raises InvalidParameterError naming the parameter.
    check_param_validation(type(estimator).__name__, estimator)


ARRAY_API_CHECK = """
import warnings
from sklearn.utils.estimator_checks import check_array_api_input
{imports}
warnings.simplefilter("ignore")
for estimator in [{instances}]:
    check_array_api_input(
        type(estimator).__name__, estimator, array_namespace="numpy",
        expect_only_array_outputs=False,
    )
print("checked", {n})
"""


@pytest.mark.slow
def test_array_api_check_in_fresh_interpreter():
    # check_array_api_input is skipped above ("SCIPY_ARRAY_API is not set"):
    # the variable must be set before scipy is first imported, so it runs in
    # a fresh interpreter instead
    code = ARRAY_API_CHECK.format(
        imports="\n".join(
            f"from {type(e).__module__} import {type(e).__name__}"
            for e in ARRAY_ESTIMATORS
        ),
        instances=", ".join(repr(e) for e in ARRAY_ESTIMATORS),
        n=len(ARRAY_ESTIMATORS),
    )
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"checked {len(ARRAY_ESTIMATORS)}"


# ------------------------------------------------------------- skals' battery
frame_checks = parametrize_with_frame_checks(
    FRAME_TRANSFORMERS + CONFIGURED_TRANSFORMERS
)


@frame_checks
def test_frame_transformer(estimator, check):
    check(estimator)


# ------------------------------------------------ the suite checks something
def _collected(mark):
    """{class name: number of (estimator, check) cases} of a parametrize mark."""
    cases = mark.mark.args[1]  # tuples, or pytest.param for the xfail ones
    return Counter(type(getattr(c, "values", c)[0]).__name__ for c in cases)


def _generated(estimators, generator):
    """{class name: number of checks the generator yields for it}."""
    out = Counter()
    for est in estimators:
        out[type(est).__name__] += sum(1 for _ in generator(est))
    return out


def test_estimators_discovered():
    """Every public estimator class is found, and only those."""
    public = {}
    for module in _public_packages():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and not _is_meta(obj)
            ):
                public[name] = obj
    names = [type(e).__name__ for e in ESTIMATORS]
    assert names == sorted(n for n, cls in public.items() if _runnable(cls))
    assert {"ImplicitALSRecommender", "PopularityRecommender"} <= set(names)
    assert [type(e).__name__ for e in FRAME_TRANSFORMERS] == [
        n for n in names if n.endswith(("Encoder", "Builder", "Unifier"))
    ]


@pytest.mark.filterwarnings("ignore:Can't test estimator")  # SkipTestWarning
def test_number_of_checks():
    """What was collected is everything the generators yield; recommenders get
    scikit-learn's full suite, frame transformers only the cloneable check
    (plus skals' battery)."""
    sk = _collected(sklearn_checks)
    expected = _generated(
        ESTIMATORS,
        lambda e: estimator_checks_generator(
            e, legacy=True, expected_failed_checks=expected_failed_checks(e)
        ),
    )
    assert sk == expected
    for est in ARRAY_ESTIMATORS:
        assert sk[type(est).__name__] >= 40, sk
    for est in FRAME_TRANSFORMERS:
        assert sk[type(est).__name__] == 1, sk  # check_estimator_cloneable
    battery = FRAME_TRANSFORMERS + CONFIGURED_TRANSFORMERS
    assert _collected(frame_checks) == _generated(battery, frame_checks_generator)
    n_battery = sum(1 for _ in frame_checks_generator(PseudoUserUnifier()))
    assert check_frame_transformer(PseudoUserUnifier()) == n_battery
    n_instances = Counter(type(e).__name__ for e in battery)
    assert n_instances == {
        "ConfidenceEncoder": 4,
        "InteractionMatrixBuilder": 3,
        "PseudoUserUnifier": 2,
    }


def test_expected_failures_are_the_sparse_1d_predict_checks():
    for est in ARRAY_ESTIMATORS:
        assert expected_failed_checks(est) == {
            "check_estimator_sparse_array": SPARSE_1D_PREDICT,
            "check_estimator_sparse_matrix": SPARSE_1D_PREDICT,
        }
    for est in FRAME_TRANSFORMERS:
        assert expected_failed_checks(est) == {}


def test_recommender_predict_is_top_k():
    # the reason for the two expected failures, checked on its own
    X = np.kron(np.eye(2), np.ones((3, 3)))
    for est in ARRAY_ESTIMATORS:
        pred = clone(est).set_params(k=2).fit(X).predict(X)
        assert pred.shape == (6, 2)


# ---------------------------------------------- the battery catches defects
class MutatingUnifier(PseudoUserUnifier):
    def transform(self, X):
        out = super().transform(X)
        if not isinstance(X, (pl.DataFrame, pl.LazyFrame)):
            X["session_id"] = 0
        return out


class PolarsOnlyEncoder(ConfidenceEncoder):
    def transform(self, X):
        out = super().transform(X)
        return out if isinstance(out, pl.DataFrame) else pl.from_pandas(out)


class WarmStartBuilder(InteractionMatrixBuilder):
    def fit(self, X, y=None):
        if hasattr(self, "item_ids_"):
            return self
        return super().fit(X, y)


class ShortcutEncoder(ConfidenceEncoder):
    def fit_transform(self, X, y=None):
        # an "optimised" fit_transform that forgot the cart counts
        out = super().fit_transform(X, y)
        return out.with_columns(pl.lit(0).alias("cart_count"))


class StatefulEncoder(ConfidenceEncoder):
    def transform(self, X):
        self.calls_ = getattr(self, "calls_", 0) + 1
        out = super().transform(X)
        return out.head(1) if self.calls_ > 1 else out


class TypeErrorUnifier(PseudoUserUnifier):
    def fit(self, X, y=None):
        X[self.session_col]  # a KeyError / ColumnNotFoundError deep inside
        return super().fit(X, y)


class NoDuplicateCheckUnifier(PseudoUserUnifier):
    def fit(self, X, y=None):
        if not isinstance(X, (pl.DataFrame, pl.LazyFrame)):
            X = X.loc[:, ~X.columns.duplicated()]
        return super().fit(X, y)


class EmptyFailsEncoder(ConfidenceEncoder):
    def transform(self, X):
        if len(X.columns) and pl.DataFrame(X).height == 0:
            raise IndexError("list index out of range")
        return super().transform(X)


DEFECTS = [
    (check_input_not_mutated, MutatingUnifier(), "mutated a pandas"),
    (check_frame_libraries, PolarsOnlyEncoder(), "gave polars output"),
    (check_refit, WarmStartBuilder(), "refit"),
    (check_fit_then_transform, ShortcutEncoder(), "fit_transform"),
    (check_clone_and_pickle, StatefulEncoder(), "after pickle"),
    (check_missing_columns, TypeErrorUnifier(), "expected a ValueError"),
    (check_duplicate_column_names, NoDuplicateCheckUnifier(), "accepted two"),
    (check_empty_frame, EmptyFailsEncoder(), "list index"),
]


@pytest.mark.parametrize(
    "check, estimator, message",
    DEFECTS,
    ids=[f"{c.__name__}-{type(e).__name__}" for c, e, _ in DEFECTS],
)
@pytest.mark.filterwarnings("ignore:.*was not seen in fit:UserWarning")
def test_battery_catches_defect(check, estimator, message):
    with pytest.raises((AssertionError, IndexError), match=message):
        check(type(estimator).__name__, estimator)


def test_frame_checks_need_a_known_input():
    class NewTransformer(BaseEstimator):
        def fit(self, X, y=None):
            return self

    with pytest.raises(TypeError, match="no test input for NewTransformer"):
        check_fit_then_transform("NewTransformer", NewTransformer())
