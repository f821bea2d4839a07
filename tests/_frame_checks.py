"""Checks for skals' dataframe transformers, in the style of imbalanced-learn.

Test support, not library: it builds event logs for skals' own three
transformers only, so it lives under ``tests/`` (it was the public
``skals.utils.estimator_checks`` up to 0.1.0). ``tests/test_common.py``
runs it.

scikit-learn's :func:`~sklearn.utils.estimator_checks.parametrize_with_checks`
feeds estimators 2-D numeric arrays. The dataframe transformers
(:class:`~skals.PseudoUserUnifier`, :class:`~skals.ConfidenceEncoder`,
:class:`~skals.InteractionMatrixBuilder`) take an event log instead and say so
in their tags (``two_d_array=False``), so scikit-learn runs none of its checks
that need data on them. This module is the battery that takes their place:
each check builds a small event log shaped for the transformer (columns named
by its parameters) and checks one property:

* same results for a polars DataFrame, a polars LazyFrame and a pandas
  DataFrame, and the output in the input's library;
* ``fit`` then ``transform`` equals ``fit_transform``;
* the input is not mutated;
* clone and pickle round trips give equal output;
* ``get_params``/``set_params``/``clone`` agree;
* ``transform`` before ``fit`` raises ``NotFittedError``;
* a missing column, a duplicate column name or an empty frame gives a clear
  error naming it (or an empty answer);
* refitting forgets the previous fit; ``feature_names_in_`` is set.

scikit-learn's data-free API checks (repr, ``__init__`` that only stores its
arguments, parameter validation, ...) run as well.

Use :func:`parametrize_with_frame_checks` in a test suite, or
:func:`check_frame_transformer` to run everything at once.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import pickle
from functools import partial

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal
from sklearn import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as _sk
from sklearn.utils.validation import check_is_fitted

from skals._frame import frame_kind, to_polars
from skals._sklearn import generate_valid_param, make_constraint
from skals.preprocessing import (
    ConfidenceEncoder,
    InteractionMatrix,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
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

#: scikit-learn checks that need no data; its generator skips them for
#: estimators with ``two_d_array=False`` although they apply unchanged.
_SKLEARN_DATA_FREE_CHECKS = (
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_param_validation",
)


# ---------------------------------------------------------------- test data
def _event_log() -> pl.DataFrame:
    """60 events in the challenge's schema: 12 sessions, 3 users, 10 items.

    Sessions 1-4 belong to logged-in users (user 101 has two sessions); the
    other sessions are anonymous (null ``user_id``, which becomes NaN in
    pandas). About one event in five is an add-to-cart.
    """
    rng = np.random.RandomState(0)
    n = 60
    session = np.sort(rng.randint(1, 13, n))
    session[:12] = np.arange(1, 13)  # every session has events
    session = np.sort(session)
    user_of = {1: 101, 2: 102, 3: 101, 4: 103}
    return pl.DataFrame(
        {
            "session_id": session,
            "user_id": pl.Series(
                [user_of.get(int(s)) for s in session], dtype=pl.Int64
            ),
            "partnumber": rng.randint(1, 11, n),
            "add_to_cart": (rng.uniform(size=n) < 0.2).astype(np.int64),
            "country": np.where(session % 3 == 0, "FR", "ES"),
            "timestamp_local": np.arange(n) * 60,
        }
    )


def _frame_inputs(estimator) -> list[pl.DataFrame]:
    """Event logs shaped for ``estimator``, with columns named by its params."""
    events = _event_log()
    if isinstance(estimator, PseudoUserUnifier):
        names = {"user_id": estimator.user_col, "session_id": estimator.session_col}
        return [events.rename(names, strict=False)]
    keyed = PseudoUserUnifier().fit_transform(events)
    if isinstance(estimator, ConfidenceEncoder):
        names = {
            "unified_user_id": estimator.user_col,
            "partnumber": estimator.item_col,
            "add_to_cart": estimator.cart_col,
            "session_id": estimator.session_col,
        }
        if estimator.segment_col is not None:
            names["country"] = estimator.segment_col
        return [keyed.rename(names, strict=False)]
    if isinstance(estimator, InteractionMatrixBuilder):
        out = []
        for grain in ("key", "session"):
            # the segment only where the builder uses it (it refuses to
            # ignore an encoded segment column)
            segment = None if estimator.segment_col is None else "country"
            encoded = ConfidenceEncoder(grain=grain, segment_col=segment)
            encoded = encoded.fit_transform(keyed)
            names = {
                "unified_user_id": estimator.user_col,
                "partnumber": estimator.item_col,
                "confidence": estimator.value_col,
                "session_id": estimator.session_col,
            }
            if estimator.segment_col is not None:
                names["country"] = estimator.segment_col
            out.append(encoded.rename(names, strict=False))
        return out
    raise TypeError(
        f"skals' frame checks have no test input for {type(estimator).__name__}; "
        "add one to _frame_inputs in tests/_frame_checks.py."
    )


def _has_pandas() -> bool:
    return importlib.util.find_spec("pandas") is not None


def _variants(X: pl.DataFrame) -> list[tuple[str, object]]:
    """``X`` as every input library: polars, polars lazy, pandas."""
    out = [("polars DataFrame", X), ("polars LazyFrame", X.lazy())]
    if _has_pandas():
        out.append(("pandas DataFrame", X.to_pandas()))
    return out


def _require_pandas(what: str) -> None:
    if not _has_pandas():
        from sklearn.exceptions import SkipTest

        raise SkipTest(f"pandas is not installed: cannot check {what}.")


# ---------------------------------------------------------------- comparing
def _comparable(out):
    """Transformer output as plain objects: sorted polars frames, lists."""
    if isinstance(out, InteractionMatrix):
        return {
            "matrix": out.matrix.toarray(),
            "row_ids": out.row_ids.to_list(),
            "row_keys": out.row_keys.to_list(),
            "item_ids": out.item_ids.to_list(),
            "id_name": out.id_name,
            "item_name": out.item_name,
            "row_segments": None
            if out.row_segments is None
            else out.row_segments.to_list(),
            "item_stats": None
            if out.item_stats is None
            else _comparable(out.item_stats),
        }
    df = to_polars(out)
    if isinstance(df, pl.LazyFrame):
        df = df.collect()
    # pandas has no null in float columns: NaN and null compare equal here
    df = df.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))
    # a group-by's row order is not part of the contract; compare sorted
    return df.sort(df.columns, nulls_last=True) if df.width else df


def _assert_same(actual, expected, what: str) -> None:
    """Raise an ``AssertionError`` saying ``what`` when outputs differ."""
    a, b = _comparable(actual), _comparable(expected)
    if isinstance(b, dict):
        assert isinstance(a, dict), f"{what}: {type(actual).__name__} output"
        assert a.keys() == b.keys(), what
        for key in b:
            if isinstance(b[key], np.ndarray):
                np.testing.assert_array_equal(a[key], b[key], err_msg=what)
            elif isinstance(b[key], pl.DataFrame):
                _assert_frames(a[key], b[key], f"{what} ({key})")
            else:
                assert a[key] == b[key], f"{what}: {key} {a[key]!r} != {b[key]!r}"
        return
    _assert_frames(a, b, what)


def _assert_frames(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    try:
        # pandas round trips change some dtypes (Int64 with nulls -> float64,
        # datetime precision), never values
        assert_frame_equal(a, b, check_dtypes=False)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {exc}") from exc


def _library(out) -> str:
    if isinstance(out, InteractionMatrix):
        return out.kind.library
    return frame_kind(out).library


def _n_rows(out) -> int:
    if isinstance(out, InteractionMatrix):
        return out.shape[0]
    df = to_polars(out)
    return (
        df.select(pl.len()).collect().item()
        if isinstance(df, pl.LazyFrame)
        else df.height
    )


# ------------------------------------------------------------------- checks
def check_frame_libraries(name, transformer_orig):
    """Same output for polars DataFrame, polars LazyFrame and pandas input.

    Fits and transforms with each library; the outputs must be equal (as
    sets of rows, up to dtype changes of a pandas round trip), come back in
    the input's library, and a transformer fitted on one library must
    transform the others alike.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check (cloned, never fitted in place).

    Examples
    --------
    >>> from skals import PseudoUserUnifier
    >>> from _frame_checks import check_frame_libraries
    >>> check_frame_libraries("PseudoUserUnifier", PseudoUserUnifier())
    """
    _require_pandas("pandas input")
    for X in _frame_inputs(transformer_orig):
        fitted = clone(transformer_orig).fit(X)
        expected = fitted.transform(X)
        for variant, Xv in _variants(X):
            library = frame_kind(Xv).library
            out = clone(transformer_orig).fit(Xv).transform(Xv)
            assert _library(out) == library, (
                f"{name}: a {variant} input gave {_library(out)} output, "
                f"expected {library}."
            )
            _assert_same(out, expected, f"{name}: fit+transform on a {variant}")
            _assert_same(
                fitted.transform(Xv),
                expected,
                f"{name}: fitted on polars, transform of a {variant}",
            )


def check_fit_then_transform(name, transformer_orig):
    """``fit(X).transform(X)`` equals ``fit_transform(X)`` for every library.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import ConfidenceEncoder
    >>> from _frame_checks import check_fit_then_transform
    >>> check_fit_then_transform("ConfidenceEncoder", ConfidenceEncoder())
    """
    for X in _frame_inputs(transformer_orig):
        for variant, Xv in _variants(X):
            a = clone(transformer_orig).fit(Xv).transform(Xv)
            b = clone(transformer_orig).fit_transform(Xv)
            _assert_same(a, b, f"{name}: fit_transform vs fit.transform ({variant})")


def _snapshot(X):
    if isinstance(X, pl.LazyFrame):
        return X.collect(), X.collect_schema()
    if isinstance(X, pl.DataFrame):
        return X.clone(), X.schema
    return X.copy(deep=True), list(X.columns)


def _assert_unchanged(X, snapshot, what: str) -> None:
    data, schema = snapshot
    if isinstance(X, pl.LazyFrame):
        assert X.collect_schema() == schema, f"{what}: schema changed"
        _assert_frames(X.collect(), data, what)
    elif isinstance(X, pl.DataFrame):
        assert X.schema == schema, f"{what}: schema changed"
        assert_frame_equal(X, data)
    else:
        assert list(X.columns) == schema, f"{what}: columns changed"
        assert X.equals(data) and (X.dtypes == data.dtypes).all(), (
            f"{what}: values or dtypes changed"
        )


def check_input_not_mutated(name, transformer_orig):
    """``fit``, ``transform`` and ``fit_transform`` leave their input as it was.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import InteractionMatrixBuilder
    >>> from _frame_checks import check_input_not_mutated
    >>> check_input_not_mutated("InteractionMatrixBuilder",
    ...                         InteractionMatrixBuilder())
    """
    for X in _frame_inputs(transformer_orig):
        for variant, Xv in _variants(X):
            snapshot = _snapshot(Xv)
            est = clone(transformer_orig).fit(Xv)
            _assert_unchanged(Xv, snapshot, f"{name}.fit mutated a {variant}")
            est.transform(Xv)
            _assert_unchanged(Xv, snapshot, f"{name}.transform mutated a {variant}")
            clone(transformer_orig).fit_transform(Xv)
            _assert_unchanged(Xv, snapshot, f"{name}.fit_transform mutated a {variant}")


def check_clone_and_pickle(name, transformer_orig):
    """Clone and pickle round trips give equal output.

    A pickled and restored fitted transformer transforms as the original
    does; a clone of a fitted transformer is unfitted, has the same
    parameters, and once fitted gives the same output.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import ConfidenceEncoder
    >>> from _frame_checks import check_clone_and_pickle
    >>> check_clone_and_pickle("ConfidenceEncoder", ConfidenceEncoder())
    """
    for X in _frame_inputs(transformer_orig):
        fitted = clone(transformer_orig).fit(X)
        expected = fitted.transform(X)
        restored = pickle.loads(pickle.dumps(fitted))
        _assert_same(restored.transform(X), expected, f"{name}: after pickle")
        unfitted = pickle.loads(pickle.dumps(clone(transformer_orig)))
        _assert_same(
            unfitted.fit(X).transform(X), expected, f"{name}: pickled unfitted"
        )
        cloned = clone(fitted)
        try:
            check_is_fitted(cloned)
        except NotFittedError:
            pass
        else:
            raise AssertionError(f"{name}: a clone of a fitted transformer is fitted")
        assert repr(cloned.get_params(deep=False)) == repr(
            fitted.get_params(deep=False)
        ), f"{name}: clone changed the parameters"
        _assert_same(cloned.fit(X).transform(X), expected, f"{name}: after clone")


def _same_value(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a is b or a == b


def check_params(name, transformer_orig):
    """``get_params``, ``set_params`` and ``clone`` agree for every parameter.

    The parameters are exactly the ``__init__`` arguments; ``set_params``
    returns the estimator, sets each parameter to another valid value that
    ``get_params`` and ``clone`` then report, and rejects unknown names.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import PseudoUserUnifier
    >>> from _frame_checks import check_params
    >>> check_params("PseudoUserUnifier", PseudoUserUnifier())
    """
    est = clone(transformer_orig)
    params = est.get_params(deep=False)
    init = inspect.signature(type(est).__init__).parameters
    expected = [p for p in init if p != "self"]
    assert sorted(params) == sorted(expected), (
        f"{name}: get_params() keys {sorted(params)} != __init__ arguments "
        f"{sorted(expected)}"
    )
    assert est.set_params(**params) is est, f"{name}.set_params must return self"
    for param, value in params.items():
        assert _same_value(est.get_params()[param], value), (
            f"{name}: set_params(**get_params()) changed {param!r}"
        )
    constraints = getattr(est, "_parameter_constraints", {})
    for param in params:
        for constraint in constraints.get(param, []):
            try:
                new = generate_valid_param(make_constraint(constraint))
            except (NotImplementedError, ValueError):  # pragma: no cover
                continue
            est.set_params(**{param: new})
            assert _same_value(est.get_params()[param], new), (
                f"{name}: get_params()[{param!r}] does not report set_params"
            )
            assert _same_value(clone(est).get_params()[param], new), (
                f"{name}: clone does not keep {param}={new!r}"
            )
        est.set_params(**{param: params[param]})
    try:
        est.set_params(not_a_parameter_of_this_estimator=1)
    except ValueError:
        pass
    else:
        raise AssertionError(f"{name}.set_params accepts an unknown parameter")


def check_transform_before_fit(name, transformer_orig):
    """``transform`` before ``fit`` raises ``NotFittedError``.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import InteractionMatrixBuilder
    >>> from _frame_checks import check_transform_before_fit
    >>> check_transform_before_fit("InteractionMatrixBuilder",
    ...                            InteractionMatrixBuilder())
    """
    X = _frame_inputs(transformer_orig)[0]
    for variant, Xv in _variants(X):
        try:
            clone(transformer_orig).transform(Xv)
        except NotFittedError:
            continue
        raise AssertionError(
            f"{name}.transform of a {variant} before fit did not raise NotFittedError"
        )


def check_missing_columns(name, transformer_orig):
    """Every column the transformer needs is named when it is missing.

    Drops each column of the input in turn, for ``fit`` and for
    ``transform`` (after fitting on the full input): either the call works
    (the column is optional) or it raises a ``ValueError`` whose message
    names the column. At least one column must be required.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import ConfidenceEncoder
    >>> from _frame_checks import check_missing_columns
    >>> check_missing_columns("ConfidenceEncoder", ConfidenceEncoder())
    """
    X = _frame_inputs(transformer_orig)[0]
    fitted = clone(transformer_orig).fit(X)
    n_required = 0
    for col in X.columns:
        Xd = X.drop(col)
        calls = {
            "fit": lambda Xd=Xd: clone(transformer_orig).fit(Xd),
            "transform": lambda Xd=Xd: fitted.transform(Xd),
        }
        for stage, call in calls.items():
            try:
                call()
            except ValueError as exc:
                assert repr(col) in str(exc), (
                    f"{name}.{stage} without column {col!r} raised a ValueError "
                    f"that does not name it: {exc}"
                )
                n_required += 1
            except Exception as exc:
                raise AssertionError(
                    f"{name}.{stage} without column {col!r} raised "
                    f"{type(exc).__name__} ({exc}); expected a ValueError naming "
                    "the column."
                ) from exc
    assert n_required, f"{name} requires none of the columns {X.columns}"


def check_duplicate_column_names(name, transformer_orig):
    """A pandas frame with a duplicated column name is rejected, naming it.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import PseudoUserUnifier
    >>> from _frame_checks import check_duplicate_column_names
    >>> check_duplicate_column_names("PseudoUserUnifier", PseudoUserUnifier())
    """
    _require_pandas("duplicate column names")
    X = _frame_inputs(transformer_orig)[0]
    fitted = clone(transformer_orig).fit(X)
    for col in X.columns:
        dup = X.to_pandas()
        dup.insert(dup.shape[1], col, dup[col], allow_duplicates=True)
        for stage, call in (
            ("fit", lambda dup=dup: clone(transformer_orig).fit(dup)),
            ("transform", lambda dup=dup: fitted.transform(dup)),
        ):
            try:
                call()
            except ValueError as exc:
                assert "uplicate" in str(exc) and repr(col) in str(exc), (
                    f"{name}.{stage}: the error for a duplicated {col!r} does not "
                    f"say so: {exc}"
                )
                continue
            raise AssertionError(f"{name}.{stage} accepted two columns named {col!r}")


def check_empty_frame(name, transformer_orig):
    """An empty frame: ``transform`` gives an empty answer, ``fit`` is clear.

    ``transform`` of a frame with the right columns and no rows returns an
    output with no rows, for every library. ``fit`` on it either works or
    raises a ``ValueError`` that says the frame is empty.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import InteractionMatrixBuilder
    >>> from _frame_checks import check_empty_frame
    >>> check_empty_frame("InteractionMatrixBuilder", InteractionMatrixBuilder())
    """
    for X in _frame_inputs(transformer_orig):
        fitted = clone(transformer_orig).fit(X)
        for variant, Xv in _variants(X.head(0)):
            out = fitted.transform(Xv)
            assert _n_rows(out) == 0, (
                f"{name}.transform of an empty {variant} returned rows"
            )
            try:
                clone(transformer_orig).fit(Xv)
            except ValueError as exc:
                assert "empty" in str(exc), (
                    f"{name}.fit on an empty {variant}: unclear error {exc}"
                )


def check_refit(name, transformer_orig):
    """Refitting forgets the previous fit (no warm start, no leftover state).

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import InteractionMatrixBuilder
    >>> from _frame_checks import check_refit
    >>> check_refit("InteractionMatrixBuilder", InteractionMatrixBuilder())
    """
    for X in _frame_inputs(transformer_orig):
        expected = clone(transformer_orig).fit(X).transform(X)
        est = clone(transformer_orig).fit(X.head(X.height // 3))
        _assert_same(est.fit(X).transform(X), expected, f"{name}: refit")


def check_feature_names_in(name, transformer_orig):
    """``fit`` sets ``feature_names_in_`` and ``n_features_in_`` to the input's.

    Parameters
    ----------
    name : str
        Name of the transformer, for messages.
    transformer_orig : estimator
        The transformer to check.

    Examples
    --------
    >>> from skals import ConfidenceEncoder
    >>> from _frame_checks import check_feature_names_in
    >>> check_feature_names_in("ConfidenceEncoder", ConfidenceEncoder())
    """
    X = _frame_inputs(transformer_orig)[0]
    for variant, Xv in _variants(X):
        est = clone(transformer_orig).fit(Xv)
        assert list(est.feature_names_in_) == X.columns, (
            f"{name}: feature_names_in_ after fit on a {variant} is "
            f"{list(est.feature_names_in_)}, expected {X.columns}"
        )
        assert est.n_features_in_ == X.width, f"{name}: n_features_in_ ({variant})"


#: skals' own checks, in the order they run.
_SKALS_CHECKS = (
    check_params,
    check_transform_before_fit,
    check_feature_names_in,
    check_fit_then_transform,
    check_frame_libraries,
    check_input_not_mutated,
    check_clone_and_pickle,
    check_refit,
    check_missing_columns,
    check_duplicate_column_names,
    check_empty_frame,
)


def _check_name(check) -> str:
    return check.func.__name__ if isinstance(check, partial) else check.__name__


def frame_checks_generator(estimator):
    """Yield ``(estimator, check)`` pairs of the dataframe-transformer battery.

    The scikit-learn checks that need no data come first, then skals' own.
    Each ``check`` is called as ``check(estimator)``.

    Parameters
    ----------
    estimator : estimator
        A dataframe transformer instance.

    Yields
    ------
    estimator : estimator
        The same instance.
    check : callable
        The check, with the estimator's name bound.

    Examples
    --------
    >>> from skals import PseudoUserUnifier
    >>> from _frame_checks import frame_checks_generator
    >>> checks = list(frame_checks_generator(PseudoUserUnifier()))
    >>> checks[-1][1].func.__name__
    'check_empty_frame'
    """
    name = type(estimator).__name__
    for check_name in _SKLEARN_DATA_FREE_CHECKS:
        check = getattr(_sk, check_name, None)
        if check is not None:  # older scikit-learn releases lack some
            yield estimator, partial(check, name)
    for check in _SKALS_CHECKS:
        yield estimator, partial(check, name)


def _check_id(value) -> str | None:
    if callable(value) and not hasattr(value, "get_params"):
        return _check_name(value)
    if hasattr(value, "get_params"):
        changed = {
            k: v
            for k, v in value.get_params(deep=False).items()
            if not _same_value(v, type(value)().get_params(deep=False)[k])
        }
        args = ",".join(f"{k}={v!r}" for k, v in sorted(changed.items()))
        return f"{type(value).__name__}({args})"
    return None


def parametrize_with_frame_checks(estimators):
    """Pytest decorator: one test per (transformer, check) of the battery.

    The skals counterpart of
    :func:`sklearn.utils.estimator_checks.parametrize_with_checks` for the
    dataframe transformers.

    Parameters
    ----------
    estimators : list of estimators
        Transformer instances.

    Returns
    -------
    decorator : ``pytest.mark.parametrize``
        Parametrizes the arguments ``estimator`` and ``check``.

    Examples
    --------
    >>> from skals import ConfidenceEncoder
    >>> from _frame_checks import parametrize_with_frame_checks
    >>> @parametrize_with_frame_checks([ConfidenceEncoder()])
    ... def test_frame_transformer(estimator, check):
    ...     check(estimator)
    """
    import pytest

    params = [pair for est in estimators for pair in frame_checks_generator(est)]
    return pytest.mark.parametrize("estimator, check", params, ids=_check_id)


def check_frame_transformer(estimator):
    """Run the whole battery on ``estimator``; raise on the first failure.

    Parameters
    ----------
    estimator : estimator
        A dataframe transformer instance.

    Returns
    -------
    n_checks : int
        How many checks ran.

    Examples
    --------
    >>> from skals import ConfidenceEncoder
    >>> from _frame_checks import check_frame_transformer
    >>> check_frame_transformer(ConfidenceEncoder(grain="session"))
    21
    """
    n = 0
    for est, check in frame_checks_generator(estimator):
        check(copy.deepcopy(est))
        n += 1
    return n
