"""scikit-learn habits: set_output, warnings that point at the caller, clear errors."""

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
import sklearn
from polars.testing import assert_frame_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skals
from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrix,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
    TemporalSplit,
)
from skals.datasets import make_sessions


@pytest.fixture(scope="module")
def events():
    return make_sessions(n_sessions=600, n_items=80, random_state=0)


def _pipe(**als):
    params = dict(factors=3, iterations=2, random_state=0)
    params.update(als)
    return make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(),
        InteractionMatrixBuilder(),
        ImplicitALSRecommender(**params),
    )


# -------------------------------------------------------------- set_output
@pytest.mark.parametrize("step", [PseudoUserUnifier(), ConfidenceEncoder()])
def test_set_output_on_the_frame_transformers(events, step):
    keyed = PseudoUserUnifier().fit_transform(events)
    data = keyed if isinstance(step, ConfidenceEncoder) else events
    default = clone(step).fit_transform(data)
    assert isinstance(default, pl.DataFrame)
    as_pandas = clone(step).set_output(transform="pandas").fit(data)
    out = as_pandas.transform(data)
    assert isinstance(out, pd.DataFrame)
    cols = ["unified_user_id", "partnumber"]
    assert_frame_equal(
        pl.from_pandas(out[cols]).sort(cols), default.select(cols).sort(cols)
    )
    # the setting survives clone (GridSearchCV clones) and fit_transform
    assert isinstance(clone(as_pandas).fit_transform(data), pd.DataFrame)
    as_polars = clone(step).set_output(transform="polars")
    assert isinstance(as_polars.fit_transform(data.to_pandas()), pl.DataFrame)
    assert isinstance(
        clone(step).set_output(transform=None).fit_transform(data), pl.DataFrame
    )
    with pytest.raises(ValueError, match="transform must be one of"):
        clone(step).set_output(transform="numpy")


def test_pipeline_set_output(events):
    pipe = _pipe().set_output(transform="pandas").fit(events)
    assert isinstance(pipe[:2].transform(events), pd.DataFrame)
    # the builder's output is not a frame: it stays an InteractionMatrix
    assert isinstance(pipe[:3].transform(events), InteractionMatrix)
    # answers follow the library the builder was given: pandas here
    answers = pipe.predict(events.head(50))
    assert isinstance(answers, pd.DataFrame)
    polars_pipe = _pipe().set_output(transform="polars").fit(events.to_pandas())
    answers_pl = polars_pipe.predict(events.head(50).to_pandas())
    assert isinstance(answers_pl, pl.DataFrame)
    reference = _pipe().fit(events).predict(events.head(50))
    assert answers_pl.equals(reference)


def test_global_transform_output_config(events):
    with sklearn.config_context(transform_output="pandas"):
        out = PseudoUserUnifier().fit_transform(events)
    assert isinstance(out, pd.DataFrame)
    # the step's own setting wins over the global one
    with sklearn.config_context(transform_output="pandas"):
        step = PseudoUserUnifier().set_output(transform="polars")
        assert isinstance(step.fit_transform(events), pl.DataFrame)


# ---------------------------------------------------------------- warnings
def _unknown_item(events):
    return events.head(30).with_columns(
        partnumber=pl.when(pl.int_range(pl.len()) == 0)
        .then(-1)
        .otherwise(pl.col("partnumber"))
    )


def _filenames(record):
    return {w.filename for w in record}


def test_warnings_point_at_the_callers_line(events):
    pipe = _pipe(filter_items=["nope"]).fit(events)
    new = _unknown_item(events)
    with warnings.catch_warnings(record=True) as direct:
        warnings.simplefilter("always")
        pipe[2].transform(pipe[:2].transform(new))
    assert [str(w.message).split(":")[0] for w in direct] == [
        "InteractionMatrixBuilder"
    ]
    assert _filenames(direct) == {__file__}
    with warnings.catch_warnings(record=True) as via_pipeline:
        warnings.simplefilter("always")
        pipe.predict(new)
    messages = sorted(str(w.message) for w in via_pipeline)
    assert any("dropped 1 of" in m for m in messages)
    assert any("filter_items" in m for m in messages)
    assert _filenames(via_pipeline) == {__file__}


def _search(n_jobs):
    return GridSearchCV(
        _pipe(filter_items=["nope"]),
        {"implicitalsrecommender__factors": [2, 3]},
        scoring=None,  # the pipeline's score: builder transform, ALS score
        cv=TemporalSplit(n_splits=2),
        n_jobs=n_jobs,
    )


def test_grid_search_warnings_point_at_the_callers_line(events):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _search(1).fit(events)
    assert len(record) >= 4  # one per candidate and fold, at least
    assert _filenames(record) == {__file__}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_collect_warnings_counts_a_grid_searchs_warnings_once(events, n_jobs):
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with skals.collect_warnings() as log:
            _search(n_jobs).fit(events)
    counts = {msg.split(":")[0]: n for _, msg, n in log}
    # 2 candidates x 2 folds scored: the filter_items warning once per
    # score; the builder's unknown-item warning once per fold whose test
    # part has an item unseen in its training part
    assert counts["ImplicitALSRecommender"] == 4
    assert set(counts) == {"ImplicitALSRecommender", "InteractionMatrixBuilder"}
    assert len(shown) == len(log) == 2
    assert all("such warnings; first shown" in str(w.message) for w in shown)
    assert _filenames(shown) == {__file__}


def test_collect_warnings_counts_agree_across_n_jobs(events):
    logs = []
    for n_jobs in (1, 2):
        with skals.collect_warnings(reemit=False) as log:
            _search(n_jobs).fit(events)
        logs.append(sorted((msg, n) for _, msg, n in log))
    assert logs[0] == logs[1]


# ------------------------------------------------------ raw frames refused
@pytest.mark.parametrize("model", [ImplicitALSRecommender(), PopularityRecommender()])
def test_recommender_on_an_event_frame_says_build_the_matrix(events, model):
    encoded = ConfidenceEncoder().fit_transform(
        PseudoUserUnifier().fit_transform(events)
    )
    for frame in (events, encoded, events.to_pandas(), events.lazy()):
        with pytest.raises(TypeError, match="Build the matrix first"):
            clone(model).fit(frame)
    fitted = clone(model).fit(InteractionMatrixBuilder().fit_transform(encoded))
    with pytest.raises(TypeError, match="not a dataframe"):
        fitted.predict(encoded)
    # a frame of numbers is a dense matrix, as scikit-learn accepts it
    dense = pd.DataFrame(np.eye(3), columns=["x", "y", "z"])
    assert clone(model).set_params(k=2).fit(dense).predict(dense).shape == (3, 2)
    # a plain matrix still works
    assert clone(model).set_params(k=2).fit(np.eye(3)).predict(np.eye(3)).shape == (
        3,
        2,
    )
