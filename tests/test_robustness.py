"""Bad input: a clear error naming what is wrong, or a counted warning.

Never a crash deep inside numpy or implicit, never a silent wrong answer.
One section per item of the list in issue 4.
"""

import re
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from polars.testing import assert_frame_equal
from sklearn.exceptions import FitFailedWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.utils._param_validation import InvalidParameterError

from conftest import skals_pipeline
from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer, top_k_overlap_scorer
from skals.model_selection import SessionHoldoutSplit

COLUMNS = ["session_id", "user_id", "partnumber", "add_to_cart", "timestamp_local"]


@pytest.fixture(scope="module")
def events():
    # 150 sessions, 2015 events, 60 items, 7 logged-in users
    log = make_sessions(150, n_items=60, random_state=0).select(COLUMNS)
    # 3-digit partnumbers: their string and integer orders agree
    return log.with_columns(pl.col("partnumber") + 100)


def als(**params):
    return ImplicitALSRecommender(
        **{"factors": 4, "iterations": 3, "random_state": 0, "num_threads": 1, **params}
    )


def pipeline(final=None, **encoder):
    return skals_pipeline(als() if final is None else final, **encoder)


@pytest.fixture(scope="module")
def fitted(events):
    return pipeline().fit(events)


def _set_null(df, col, rows):
    """``df`` with ``col`` set to null on the given row positions."""
    mask = pl.Series(np.isin(np.arange(df.height), rows))
    return df.with_columns(pl.when(mask).then(None).otherwise(pl.col(col)).alias(col))


def _messages(record, pattern):
    return [str(w.message) for w in record if re.search(pattern, str(w.message))]


# ----------------------------------------------------------- missing columns
def test_cart_column_required_to_fit(events):
    msg = r"ConfidenceEncoder: missing required column\(s\) \['add_to_cart'\]"
    with pytest.raises(ValueError, match=msg):
        pipeline().fit(events.drop("add_to_cart"))


def test_cart_column_optional_at_predict(events, fitted):
    # the challenge's test log has no add_to_cart: every event is a view
    test = events.head(40)
    without = fitted.predict(test.drop("add_to_cart"))
    as_zero = fitted.predict(test.with_columns(pl.lit(0).alias("add_to_cart")))
    assert_frame_equal(without, as_zero)
    keyed = PseudoUserUnifier().fit_transform(events)
    enc = ConfidenceEncoder().fit(keyed)
    out = enc.transform(keyed.drop("add_to_cart"))
    assert (out["cart_count"] == 0).all()
    assert (out["confidence"] == 1.0 + out["view_count"]).all()


@pytest.mark.parametrize(
    "step, column",
    [
        (PseudoUserUnifier(), "session_id"),
        (PseudoUserUnifier(), "user_id"),
        (ConfidenceEncoder(), "unified_user_id"),
        (ConfidenceEncoder(), "partnumber"),
        (ConfidenceEncoder(grain="session"), "session_id"),
        (InteractionMatrixBuilder(), "confidence"),
        (InteractionMatrixBuilder(), "partnumber"),
    ],
    ids=lambda v: v if isinstance(v, str) else repr(v),
)
def test_missing_column_named(events, step, column):
    data = PseudoUserUnifier().fit_transform(events)
    if isinstance(step, InteractionMatrixBuilder):
        data = ConfidenceEncoder().fit_transform(data)
    if isinstance(step, PseudoUserUnifier):
        data = events
    where = type(step).__name__
    msg = rf"{where}: missing required column\(s\) \['{column}'\]"
    with pytest.raises(ValueError, match=msg):
        step.fit(data.drop(column))
    fitted_step = step.fit(data)
    # a transform with a frame missing a column it was fitted with
    with pytest.raises(ValueError, match=msg):
        fitted_step.transform(data.drop(column))


def test_transform_missing_fitted_segment_column(events):
    keyed = PseudoUserUnifier().fit_transform(
        make_sessions(50, n_items=20, random_state=1)
    )
    enc = ConfidenceEncoder(segment_col="country").fit(keyed)
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['country'\]"):
        enc.transform(keyed.drop("country"))
    encoded = enc.transform(keyed)
    builder = InteractionMatrixBuilder(segment_col="country").fit(encoded)
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['country'\]"):
        builder.transform(encoded.drop("country"))


def test_predict_missing_column(events, fitted):
    with pytest.raises(ValueError, match=r"PseudoUserUnifier: .*\['session_id'\]"):
        fitted.predict(events.drop("session_id"))
    with pytest.raises(ValueError, match=r"ConfidenceEncoder: .*\['partnumber'\]"):
        fitted.predict(events.drop("partnumber"))


# --------------------------------------------------------------- wrong dtypes
def test_string_cart_flags(events):
    bad = events.with_columns(pl.col("add_to_cart").cast(pl.String))
    msg = r"column 'add_to_cart' has dtype String; it must hold 0/1"
    with pytest.raises(TypeError, match=msg):
        pipeline().fit(bad)
    with pytest.raises(TypeError, match=msg):
        pipeline().fit(bad.to_pandas())


def test_cart_flags_other_than_0_1(events):
    bad = events.with_columns(pl.col("add_to_cart") * 2)
    with pytest.raises(ValueError, match="'add_to_cart' must hold only 0 and 1"):
        pipeline().fit(bad)


def test_float_partnumbers_with_nan(events):
    bad = events.with_columns(pl.col("partnumber").cast(pl.Float64))
    bad = bad.with_columns(
        pl.when(pl.int_range(pl.len()) % 100 == 0)
        .then(float("nan"))
        .otherwise(pl.col("partnumber"))
        .alias("partnumber")
    )
    msg = r"column 'partnumber' is a float column with 21 NaN or null values"
    with pytest.raises(ValueError, match=msg):
        pipeline().fit(bad)
    with pytest.raises(ValueError, match=msg):
        pipeline().fit(bad.to_pandas())


def test_fractional_partnumbers(events):
    bad = events.with_columns(pl.col("partnumber") + 0.5)
    with pytest.raises(TypeError, match="'partnumber' holds 2015 non-integral"):
        pipeline().fit(bad)


def test_int_and_string_partnumbers_both_valid(events):
    test = events.head(60)
    as_int = pipeline().fit(events).predict(test)
    as_str = pipeline().fit(events.with_columns(pl.col("partnumber").cast(pl.String)))
    as_str = as_str.predict(test.with_columns(pl.col("partnumber").cast(pl.String)))
    assert as_int.schema["recommendations"] == pl.List(pl.Int64)
    assert as_str.schema["recommendations"] == pl.List(pl.String)
    # same ids, same order of columns (3-digit ids): the same answers
    assert_frame_equal(
        as_str.with_columns(pl.col("recommendations").cast(pl.List(pl.Int64))), as_int
    )
    # integral floats (a pandas column that had NaN once) are integers
    as_float = pipeline().fit(events.with_columns(pl.col("partnumber").cast(float)))
    assert_frame_equal(as_float.predict(test), as_int)


# ---------------------------------------------------------------------- nulls
def test_null_partnumber(events):
    bad = _set_null(events, "partnumber", [3, 70])
    msg = "column 'partnumber' has null values"
    with pytest.raises(ValueError, match=msg):
        pipeline().fit(bad)
    # the builder on its own: a null id must not become a vocabulary entry
    enc = pl.DataFrame(
        {"unified_user_id": ["a", "b"], "partnumber": [1, None], "confidence": [1.0, 2]}
    )
    with pytest.raises(ValueError, match="column 'partnumber' has 1 null values"):
        InteractionMatrixBuilder().fit(enc)


def test_null_session_id(events):
    bad = _set_null(events, "session_id", [5])
    msg = "PseudoUserUnifier: column 'session_id' has 1 null or NaN values"
    with pytest.raises(ValueError, match=msg):
        pipeline().fit(bad)
    with pytest.raises(ValueError, match=msg):
        pipeline().fit(bad.to_pandas())
    # a LazyFrame is not computed by the unifier: the encoder catches the
    # null key and says where it comes from (row 5 is anonymous)
    assert events["user_id"][5] is None
    with pytest.raises(ValueError, match="neither a user id nor a session id"):
        pipeline().fit(bad.lazy())


def test_null_session_id_at_session_grain():
    enc = pl.DataFrame(
        {
            "unified_user_id": ["a", "a"],
            "session_id": [1, None],
            "partnumber": [1, 2],
            "confidence": [1.0, 2.0],
        }
    )
    with pytest.raises(ValueError, match="column 'session_id' has 1 null values"):
        InteractionMatrixBuilder().fit(enc)


@pytest.mark.parametrize("library", ["polars", "pandas"])
def test_nan_user_ids_are_anonymous(library):
    events = pl.DataFrame(
        {"session_id": [7, 8, 9], "user_id": [12.0, float("nan"), None]}
    )
    if library == "pandas":
        events = events.to_pandas()
    keys = PseudoUserUnifier().fit_transform(events)["unified_user_id"]
    assert list(keys) == ["u_12", "s_8", "s_9"]


def test_nan_user_ids_pipeline(events, fitted):
    # pandas turns the nullable integer user ids into floats with NaN
    pdf = events.to_pandas()
    assert pdf["user_id"].dtype == np.float64 and pdf["user_id"].isna().any()
    from_pandas = pipeline().fit(pdf).predict(pdf.head(50))
    assert_frame_equal(pl.from_pandas(from_pandas), fitted.predict(events.head(50)))


# ------------------------------------------------------------------ empty frame
def test_empty_frame(events, fitted):
    with pytest.raises(ValueError, match="InteractionMatrixBuilder: cannot fit on an"):
        pipeline().fit(events.head(0))
    answers = fitted.predict(events.head(0))
    assert answers.height == 0
    assert answers.columns == ["unified_user_id", "recommendations", "scores", "source"]
    with pytest.raises(ValueError, match="0 sample"):
        als().fit(sp.csr_matrix((0, 5)))


# --------------------------------------------------- single user, single item
def test_single_user(events):
    sizes = events.group_by("session_id").agg(pl.col("partnumber").n_unique())
    longest = sizes.sort("partnumber", "session_id")["session_id"][-1]
    one = events.filter(pl.col("session_id") == longest)
    assert one["user_id"].is_null().all() and one["partnumber"].n_unique() >= 3
    model = pipeline(final=als(k=3)).fit(one)
    assert model[-1].user_factors_.shape == (1, 4)
    answers = model.predict(one)
    assert answers["recommendations"].list.len().to_list() == [3]
    # a new session is folded in against the single user's items
    new = one.head(2).with_columns(pl.lit(-1).alias("session_id"))
    assert model.predict(new)["recommendations"].list.len().to_list() == [3]


def test_single_item(events):
    one = events.with_columns(pl.lit(555).alias("partnumber"))
    model = pipeline().fit(one)
    test = one.head(30)
    with pytest.warns(UserWarning) as record:
        answers = model.predict(test)
    n = answers.height
    assert _messages(record, rf"k=5 clipped for {n} of {n} rows .*\(min 1\)")
    assert answers["recommendations"].to_list() == [[555]] * n


# ------------------------------------------------- weights and confidences
@pytest.mark.parametrize("param", ["view_weight", "cart_weight"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_weights(events, param, value):
    msg = rf"The '{param}' parameter of ConfidenceEncoder must be"
    with pytest.raises(InvalidParameterError, match=msg):
        pipeline(**{param: value}).fit(events)


@pytest.mark.parametrize(
    "value, message",
    [
        (-1.0, "has 1 negative values"),
        (float("nan"), "has 1 null, NaN or infinite values"),
        (float("inf"), "has 1 null, NaN or infinite values"),
        (None, "has 1 null, NaN or infinite values"),
    ],
)
def test_bad_confidences_in_frame(value, message):
    enc = pl.DataFrame(
        {
            "unified_user_id": ["a", "b", "c"],
            "partnumber": [1, 2, 3],
            "confidence": pl.Series([2.0, value, 3.0], dtype=pl.Float64),
        }
    )
    with pytest.raises(ValueError, match=f"column 'confidence' {message}"):
        InteractionMatrixBuilder().fit(enc)


def test_string_confidences():
    enc = pl.DataFrame(
        {"unified_user_id": ["a"], "partnumber": [1], "confidence": ["2.0"]}
    )
    with pytest.raises(TypeError, match="'confidence' has dtype String"):
        InteractionMatrixBuilder().fit(enc)


@pytest.mark.parametrize("estimator", [als(), PopularityRecommender()], ids=repr)
@pytest.mark.parametrize(
    "value, message",
    [(-1.0, "Negative values"), (np.nan, "NaN"), (np.inf, "infinity")],
)
def test_bad_confidences_in_matrix(estimator, value, message):
    X = np.ones((4, 3))
    bad = X.copy()
    bad[1, 2] = value
    for matrix in (bad, sp.csr_matrix(bad)):
        with pytest.raises(ValueError, match=message):
            estimator.fit(matrix)
        with pytest.raises(ValueError, match=message):
            estimator.fit(X).predict(matrix)


@pytest.mark.parametrize("value", [-1.0, np.nan, np.inf])
def test_bad_confidences_in_interaction_matrix(events, fitted, value):
    # an InteractionMatrix is public and mutable: predict checks its values
    im = fitted[:-1].transform(events.head(20))
    im.matrix.data[0] = value
    with pytest.raises(ValueError, match="X has 1 NaN, infinite or negative conf"):
        fitted[-1].predict(im)


def test_interaction_matrix_of_another_vocabulary(events, fitted):
    # same number of items, other ids: answering would mix the ids up
    shifted = events.with_columns(pl.col("partnumber") + 1000)
    other = pipeline().fit(shifted)
    im = other[:-1].transform(shifted.head(20))
    assert im.shape[1] == fitted[-1].n_features_in_
    with pytest.raises(ValueError, match="items differ from those"):
        fitted[-1].predict(im)


# -------------------------------------------- k larger than the eligible items
@pytest.mark.parametrize(
    "final", [als(k=10), PopularityRecommender(k=10)], ids=lambda e: type(e).__name__
)
def test_k_larger_than_eligible_items(events, final):
    allowed = [101, 102, 103]
    model = pipeline(final=final.set_params(items=allowed)).fit(events)
    test = events.head(50)
    with pytest.warns(UserWarning) as record:
        answers = model.predict(test)
    n = answers.height
    assert _messages(record, rf"k=10 clipped for {n} of {n} rows .*\(min 3\)")
    for recs in answers["recommendations"]:
        assert sorted(recs) == allowed


def test_k_larger_than_items_plain_matrix():
    X = np.kron(np.eye(2), np.ones((3, 3)))
    for est in (als(k=8), PopularityRecommender(k=8)):
        with pytest.warns(UserWarning, match=r"k=8 clipped for 6 of 6 rows"):
            pred = est.fit(X).predict(X)
        assert pred.shape == (6, 6)
        assert all(len(set(row)) == 6 for row in pred)


@pytest.mark.parametrize("estimator", [als, PopularityRecommender])
def test_everything_liked_is_not_an_empty_answer(estimator):
    X = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1.0]])
    model = estimator(k=2, filter_already_liked_items=True).fit(X)
    with pytest.warns(UserWarning) as record:
        pred = model.predict(np.array([[1, 1, 1], [1, 0, 1.0]]))
    assert _messages(record, "1 rows have already liked every eligible item")
    assert _messages(record, r"k=2 clipped for 1 of 2 rows .*\(min 1\)")
    assert pred.shape == (2, 1)  # clipped to the other row's one eligible item
    assert pred[1, 0] == 1


def test_recommend_n_larger_than_eligible_items():
    # implicit pads with filtered items (score -FLT_MAX) and zeros
    X = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3))))
    model = als().fit(X)
    with pytest.warns(UserWarning, match=r"recommend: N=100 clipped to 3, the"):
        ids, scores = model.recommend(0, X[0], N=100)
    assert sorted(ids) == [3, 4, 5]
    assert (scores > np.finfo(np.float32).min).all()
    with pytest.warns(UserWarning, match=r"N=100 clipped to 2"):
        ids, scores = model.recommend([0, 3], X[[0, 3]], N=100, filter_items=[5])
    assert ids.shape == scores.shape == (2, 2)
    assert set(ids[0]) == {3, 4} and set(ids[1]) <= {0, 1, 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids, _ = model.recommend([0, 3], X[[0, 3]], N=3)
    assert ids.shape == (2, 3)


# ---------------------------------------------------- unknown items at predict
def test_unknown_items_at_predict(events, fitted):
    test = events.head(30).with_columns(
        pl.when(pl.int_range(pl.len()) < 4)
        .then(pl.col("partnumber") + 10_000)
        .otherwise(pl.col("partnumber"))
        .alias("partnumber")
    )
    n_rows = ConfidenceEncoder().fit_transform(PseudoUserUnifier().fit_transform(test))
    with pytest.warns(UserWarning) as record:
        answers = fitted.predict(test)
    pattern = (
        rf"dropped \d+ of {n_rows.height} rows whose 'partnumber' \(4 distinct "
        "ids\\) was not seen in fit"
    )
    assert len(_messages(record, pattern)) == 1
    # every session still gets a full answer
    assert answers.height == test["session_id"].n_unique()
    assert (answers["recommendations"].list.len() == 5).all()


def test_unknown_filter_items_warn(events):
    model = pipeline(final=als(filter_items=[101, 99_999, 99_998])).fit(events)
    with pytest.warns(UserWarning, match="2 of 3 ids in filter_items are not items"):
        answers = model.predict(events.head(20))
    assert not answers["recommendations"].explode().is_in([101]).any()


# ------------------------------------------------ a LazyFrame in GridSearchCV
def test_lazyframe_in_cross_validation(events, fitted):
    """Fails early, before any fit; skals' own entry points say to collect.

    GridSearchCV checks ``X`` with sklearn's ``indexable`` before it calls
    the splitter or any estimator, and ``cross_validate`` validates ``X``
    first too: a LazyFrame never reaches skals' code there, so the error is
    scikit-learn's (it names the LazyFrame). skals' splitters and scorers,
    which is where skals code meets cross-validation, say how to fix it.
    """
    lazy = events.lazy()
    grid = {"implicitalsrecommender__factors": [2, 3]}
    for cv in (3, SessionHoldoutSplit(n_splits=2)):
        search = GridSearchCV(pipeline(), grid, cv=cv)
        with pytest.raises(TypeError, match="LazyFrame"):
            search.fit(lazy)
        assert not hasattr(search, "cv_results_")
    with pytest.raises(InvalidParameterError, match="LazyFrame"):
        cross_validate(pipeline(), lazy, cv=3)
    collect = r"LazyFrame cannot be used for .* Collect it first"
    with pytest.raises(TypeError, match=collect):
        list(SessionHoldoutSplit(n_splits=2).split(lazy))
    for scorer in (make_session_scorer("ndcg"), top_k_overlap_scorer):
        with pytest.raises(TypeError, match=collect):
            scorer(fitted, lazy)
    # outside cross-validation a LazyFrame is a valid input
    assert_frame_equal(fitted.predict(lazy.head(30)), fitted.predict(events.head(30)))


# ------------------------------------------ hyperparameters out of range
@pytest.mark.parametrize(
    "param, value",
    [
        ("factors", 0),
        ("regularization", -0.1),
        ("iterations", 0),
        ("alpha", 0.0),
        ("k", 0),
        ("num_threads", -1),
        ("factors", 2.5),
    ],
)
def test_hyperparameters_out_of_range(events, param, value):
    msg = rf"The '{param}' parameter of ImplicitALSRecommender must be .* Got"
    with pytest.raises(InvalidParameterError, match=msg):
        pipeline(final=als(**{param: value})).fit(events)


@pytest.mark.filterwarnings("ignore:.*was not seen in fit:UserWarning")
@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_out_of_range_in_grid_search(events):
    grid = {"implicitalsrecommender__factors": [0, 2]}
    cv = SessionHoldoutSplit(n_splits=2)
    scorer = make_session_scorer("ndcg")
    search = GridSearchCV(pipeline(), grid, cv=cv, scoring=scorer, error_score=np.nan)
    with pytest.warns(FitFailedWarning, match="'factors' parameter"):
        search.fit(events)
    scores = search.cv_results_["mean_test_score"]
    assert np.isnan(scores[0]) and np.isfinite(scores[1])
    search.set_params(error_score="raise")
    with pytest.raises(InvalidParameterError, match="'factors' parameter"):
        search.fit(events)


# ------------------------------------------------------- before fit
def test_not_fitted(events):
    X = np.ones((3, 3))
    calls = [
        lambda: als().predict(X),
        lambda: als().score(X),
        lambda: als().recommend(0, sp.csr_matrix(X[:1])),
        lambda: als().recommend_keys(["u_1"]),
        lambda: PopularityRecommender().predict(X),
        lambda: PopularityRecommender().recommend_keys(["u_1"]),
        lambda: PseudoUserUnifier().transform(events),
        lambda: ConfidenceEncoder().transform(events),
        lambda: InteractionMatrixBuilder().transform(events),
        lambda: pipeline().predict(events),
    ]
    for call in calls:
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


# ------------------------------------------------------ duplicate columns
def test_duplicate_column_names(events, fitted):
    dup = events.head(50).to_pandas()
    dup.insert(dup.shape[1], "partnumber", dup["partnumber"], allow_duplicates=True)
    msg = r"Duplicate column names in the input: \['partnumber'\]"
    with pytest.raises(ValueError, match=msg):
        pipeline().fit(dup)
    with pytest.raises(ValueError, match=msg):
        fitted.predict(dup)


# --------------------------------------------------- non-finite factors
def _corrupting_fit(value, when=lambda model: True):
    original = AlternatingLeastSquares.fit

    def fit(self, user_items, show_progress=True, callback=None):
        original(self, user_items, show_progress=show_progress, callback=callback)
        if when(self):
            self.item_factors[0, 0] = value

    return fit


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_non_finite_factors_raise(monkeypatch, value):
    # implicit checks for NaN only; inf factors get through it
    monkeypatch.setattr(AlternatingLeastSquares, "fit", _corrupting_fit(value))
    with pytest.raises(ValueError, match=r"ALS produced non-finite factors"):
        als().fit(np.ones((4, 3)))


@pytest.mark.filterwarnings("ignore:overflow encountered in multiply:RuntimeWarning")
def test_nan_factors_from_absurd_confidences():
    # implicit raises its own ModelFitError; skals says what to do instead
    X = np.full((5, 5), 3e38, dtype=np.float32)
    with pytest.raises(ValueError, match="ALS produced NaN factors") as info:
        als().fit(X)
    assert type(info.value.__cause__).__name__ == "ModelFitError"


@pytest.mark.filterwarnings("ignore:.*was not seen in fit:UserWarning")
def test_non_finite_factors_in_grid_search(monkeypatch, events):
    # one candidate diverges: GridSearchCV records error_score for it
    corrupt = _corrupting_fit(np.nan, when=lambda model: model.factors == 3)
    monkeypatch.setattr(AlternatingLeastSquares, "fit", corrupt)
    grid = {"implicitalsrecommender__factors": [2, 3]}
    search = GridSearchCV(
        pipeline(),
        grid,
        cv=SessionHoldoutSplit(n_splits=2),
        scoring=make_session_scorer("ndcg"),
        error_score=-1.0,
    )
    with pytest.warns(FitFailedWarning, match="non-finite factors"):
        search.fit(events)
    np.testing.assert_array_equal(search.cv_results_["split0_test_score"][1], -1.0)
    assert search.cv_results_["mean_test_score"][0] > 0
    assert search.best_params_ == {"implicitalsrecommender__factors": 2}


def test_no_warning_on_clean_input(events, fitted):
    # the warnings above are about the bad input, not noise on every call
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        local = fitted.predict(events.head(50))
        pipeline().fit(events)
        # the pandas path too: conversion at the edge adds no warning
        from_pandas = pipeline().fit(events.to_pandas())
        answers = from_pandas.predict(events.head(50).to_pandas())
    assert isinstance(answers, pd.DataFrame)
    assert_frame_equal(pl.from_pandas(answers), local)
