"""EarlyStoppingPipeline: early stopping on whole validation sessions (issue 15)."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.model_selection import EarlyStoppingPipeline


@pytest.fixture(scope="module")
def events():
    return make_sessions(500, n_items=50, random_state=0)


def steps(iterations=5):
    return [
        ("unifier", PseudoUserUnifier()),
        ("encoder", ConfidenceEncoder()),
        ("builder", InteractionMatrixBuilder()),
        (
            "als",
            ImplicitALSRecommender(factors=4, iterations=iterations, random_state=0),
        ),
    ]


def test_scores_are_those_of_cold_fits_on_the_training_sessions(events):
    pipe = EarlyStoppingPipeline(
        steps(5), validation_interval=2, tol=-np.inf, random_state=0
    ).fit(events)
    np.testing.assert_array_equal(pipe.validation_iterations_, [2, 4, 5])
    assert pipe.n_iter_ == pipe[-1].n_iter_ == 5
    train, validation = pipe._split_sessions(events)
    scorer = make_session_scorer("ndcg")
    for k, score in zip(
        pipe.validation_iterations_, pipe.validation_scores_, strict=True
    ):
        cold = Pipeline(steps(int(k))).fit(train)
        assert score == scorer(cold, validation)
    cold = Pipeline(steps(5)).fit(train)
    np.testing.assert_array_equal(pipe[-1].user_factors_, cold[-1].user_factors_)


def test_stops_after_n_iter_no_change_stalled_stages(events):
    # no improvement of at least 1.0 is possible: stages 2 and 3 stall
    pipe = EarlyStoppingPipeline(
        steps(10), tol=1.0, n_iter_no_change=2, random_state=0
    ).fit(events)
    np.testing.assert_array_equal(pipe.validation_iterations_, [1, 2, 3])
    best = int(pipe.validation_scores_.argmax()) + 1
    assert pipe.n_iter_ == best and pipe[-1].n_iter_ == best
    assert len(pipe.validation_scores_) == 3


class Scripted:
    """A scorer that returns the given scores in turn (and counts its calls)."""

    def __init__(self, scores):
        self.scores = list(scores)
        self.calls = 0

    def __call__(self, pipeline, events):
        self.calls += 1
        return self.scores[self.calls - 1]


def test_the_best_stage_is_kept_not_the_last(events):
    # best after 2 sweeps; 3 and 4 do not improve: stop at 4, keep 2
    scorer = Scripted([0.1, 0.3, 0.2, 0.25, 0.9])
    pipe = EarlyStoppingPipeline(
        steps(10), scoring=scorer, n_iter_no_change=2, random_state=0
    ).fit(events)
    np.testing.assert_array_equal(pipe.validation_iterations_, [1, 2, 3, 4])
    np.testing.assert_array_equal(pipe.validation_scores_, [0.1, 0.3, 0.2, 0.25])
    assert pipe.best_validation_score_ == 0.3
    assert pipe.n_iter_ == 2 and pipe[-1].n_iter_ == 2
    train, _ = pipe._split_sessions(events)
    cold = Pipeline(steps(2)).fit(train)
    np.testing.assert_array_equal(pipe[-1].user_factors_, cold[-1].user_factors_)
    np.testing.assert_array_equal(pipe[-1].item_factors_, cold[-1].item_factors_)
    # the parameters are the user's again, and the kept model answers as cold
    assert pipe[-1].iterations == 10 and pipe[-1].warm_start is False
    assert pipe.predict(events).equals(cold.predict(events))


def test_stages_without_a_score_keep_the_last_stage(events):
    # a validation set that scores NaN throughout (no cart adds, say): no
    # stage is better than another, the last one is kept, as before
    pipe = EarlyStoppingPipeline(
        steps(3), scoring=Scripted([np.nan] * 3), random_state=0
    ).fit(events)
    np.testing.assert_array_equal(pipe.validation_iterations_, [1, 2, 3])
    assert pipe.n_iter_ == 3 and pipe[-1].n_iter_ == 3
    assert np.isnan(pipe.best_validation_score_)


def test_memory_caches_the_training_sessions_preprocessing(events):
    from skals import FrameCache

    memory = FrameCache()
    given = steps(3)
    builder = given[2][1]
    first = EarlyStoppingPipeline(
        given, memory=memory, tol=-np.inf, random_state=0
    ).fit(events)
    assert (memory.misses, memory.hits) == (3, 0)
    other = EarlyStoppingPipeline(
        steps(3), memory=memory, tol=-np.inf, random_state=0
    ).set_params(als__factors=6)
    other.fit(events)
    assert (memory.misses, memory.hits) == (3, 3)
    plain = EarlyStoppingPipeline(steps(3), tol=-np.inf, random_state=0).fit(events)
    np.testing.assert_array_equal(first[-1].user_factors_, plain[-1].user_factors_)
    np.testing.assert_array_equal(first.validation_scores_, plain.validation_scores_)
    # as in scikit-learn's Pipeline with memory, clones are fitted
    assert first.steps[2][1] is not builder
    check_is_fitted(first.steps[2][1])
    with pytest.raises(NotFittedError):
        check_is_fitted(builder)


def test_parameters_are_left_as_given(events):
    pipe = EarlyStoppingPipeline(steps(10), tol=1.0, random_state=0).fit(events)
    assert pipe[-1].iterations == 10 and pipe[-1].warm_start is False
    first = pipe.validation_scores_.copy()
    pipe.fit(events)  # a second fit starts from scratch again
    np.testing.assert_array_equal(pipe.validation_scores_, first)


def test_validation_holds_out_whole_sessions(events):
    pipe = EarlyStoppingPipeline(steps(), validation_fraction=0.1, random_state=0)
    train, validation = pipe._split_sessions(events)
    s_train = set(train["session_id"].unique().to_list())
    s_val = set(validation["session_id"].unique().to_list())
    assert not s_train & s_val
    assert len(s_val) == 50 and len(s_train) == 450
    assert train.height + validation.height == events.height
    other = EarlyStoppingPipeline(steps(), validation_fraction=30, random_state=1)
    _, val = other._split_sessions(events)
    assert val["session_id"].n_unique() == 30
    assert set(val["session_id"].unique().to_list()) != s_val


def test_without_early_stopping_it_is_the_plain_pipeline(events):
    pipe = EarlyStoppingPipeline(steps(3), early_stopping=False).fit(events)
    ref = Pipeline(steps(3)).fit(events)
    np.testing.assert_array_equal(pipe[-1].user_factors_, ref[-1].user_factors_)
    assert pipe.n_iter_ == 3 and pipe.validation_scores_.size == 0


def test_clone_and_params():
    pipe = EarlyStoppingPipeline(steps(), validation_fraction=0.2, tol=0.01)
    params = clone(pipe).get_params()
    assert params["validation_fraction"] == 0.2 and params["tol"] == 0.01
    assert params["als__factors"] == 4


@pytest.mark.parametrize(
    "options, match",
    [
        ({"validation_fraction": 1.5}, "validation_fraction must be"),
        ({"validation_fraction": 0}, "validation_fraction must be"),
        ({"n_iter_no_change": 0}, "n_iter_no_change must be"),
        ({"validation_interval": 2.0}, "validation_interval must be"),
        ({"tol": "small"}, "tol must be"),
        ({"validation_fraction": 500}, "holds out 500 of 500 sessions"),
    ],
)
def test_bad_parameters(events, options, match):
    with pytest.raises(ValueError, match=match):
        EarlyStoppingPipeline(steps(), **options).fit(events)


def test_last_step_needs_iterations(events):
    bad = [*steps()[:-1], ("pop", PopularityRecommender())]
    with pytest.raises(TypeError, match="'iterations' and 'warm_start'"):
        EarlyStoppingPipeline(bad).fit(events)


def test_later_stages_only_sweep(events, monkeypatch):
    # a later stage fits the same training matrix again: it continues the
    # factors and keeps the previous stage's key grain, ids and fallback
    # (refitting them was 39% of a two-sweep stage on the benchmark log),
    # with the factors and answers of one cold fit
    from skals import PopularityRecommender

    fits = []
    original = PopularityRecommender.fit

    def counting(self, X, y=None):
        fits.append(1)
        return original(self, X, y)

    monkeypatch.setattr(PopularityRecommender, "fit", counting)
    pipe = EarlyStoppingPipeline(
        steps(4), scoring=Scripted([0.1, 0.2, 0.3, 0.4]), random_state=0
    ).fit(events)
    np.testing.assert_array_equal(pipe.validation_iterations_, [1, 2, 3, 4])
    assert len(fits) == 1  # one fallback fit, not one per stage
    train, _ = pipe._split_sessions(events)
    cold = Pipeline(steps(4)).fit(train)
    np.testing.assert_array_equal(pipe[-1].user_factors_, cold[-1].user_factors_)
    np.testing.assert_array_equal(pipe[-1].item_factors_, cold[-1].item_factors_)
    assert pipe.predict(events).equals(cold.predict(events))


class CopyingUnifier(PseudoUserUnifier):
    """The unifier without its declaration: the split copies the training rows."""

    _transforms_sessions_alone = False


def test_the_training_events_are_not_copied(events, monkeypatch):
    # the unifier transforms the whole log and the encoder reads a lazy
    # filter of it: no frame of the training rows is made (at the
    # challenge's scale that copy was 3 GB next to the log)
    import polars as pl

    heights = []
    original = pl.DataFrame.filter

    def recording(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        heights.append(out.height)
        return out

    monkeypatch.setattr(pl.DataFrame, "filter", recording)
    pipe = EarlyStoppingPipeline(steps(2), tol=-np.inf, random_state=0).fit(events)
    monkeypatch.undo()
    _, validation = pipe._split_sessions(events)
    assert heights and max(heights) <= validation.height
    # the same model as the copying split's (the rule for any first step)
    copying = [("unifier", CopyingUnifier()), *steps(2)[1:]]
    ref = EarlyStoppingPipeline(copying, tol=-np.inf, random_state=0).fit(events)
    np.testing.assert_array_equal(pipe[-1].user_factors_, ref[-1].user_factors_)
    np.testing.assert_array_equal(pipe.validation_scores_, ref.validation_scores_)
    assert pipe[2].user_ids_.equals(ref[2].user_ids_)


def test_steps_after_the_lazy_split_are_cached_by_provenance(events):
    # the encoder's and builder's inputs are lazy filters of the unifier's
    # output: they are keyed on the log's content, the held-out sessions
    # and the steps before them, so other held-out sessions or another
    # unifier never get a stored result
    from skals import FrameCache

    memory = FrameCache()

    def fit(random_state=0, **params):
        pipe = EarlyStoppingPipeline(
            steps(1), memory=memory, random_state=random_state
        ).set_params(**params)
        return pipe.fit(events)

    first = fit()
    assert (memory.misses, memory.hits) == (3, 0)
    fit(als__factors=3)  # only the recommender differs: every step hits
    assert (memory.misses, memory.hits) == (3, 3)
    other = fit(random_state=1)  # other sessions held out: the unifier hits
    assert (memory.misses, memory.hits) == (5, 4)
    fit(unifier__user_prefix="user_")  # another unifier: nothing hits
    assert (memory.misses, memory.hits) == (8, 4)
    fit(encoder__cart_weight=3.0)  # another encoder: unifier hits, builder not
    assert (memory.misses, memory.hits) == (10, 5)
    plain = EarlyStoppingPipeline(steps(1), random_state=1).fit(events)
    np.testing.assert_array_equal(other[-1].user_factors_, plain[-1].user_factors_)
    assert not np.array_equal(first[-1].user_factors_, other[-1].user_factors_)


def test_stages_after_a_worse_one_sweep_in_place(events, monkeypatch):
    # stage 1 is best and kept: stage 2 sweeps in a copy of its factors;
    # stage 2 is kept by nobody: stage 3 sweeps in stage 2's own arrays
    # (one set of user factors fewer alive), and every stage's factors are
    # those of a cold fit of as many sweeps
    original = ImplicitALSRecommender._more_sweeps
    seen = []

    def recording(self, X, in_place=False):
        before = self.user_factors_
        original(self, X, in_place=in_place)
        seen.append((before, self.user_factors_, self.user_factors_.copy()))
        return self

    monkeypatch.setattr(ImplicitALSRecommender, "_more_sweeps", recording)
    pipe = EarlyStoppingPipeline(
        steps(10), scoring=Scripted([0.3, 0.1, 0.2]), random_state=0
    ).fit(events)
    np.testing.assert_array_equal(pipe.validation_iterations_, [1, 2, 3])
    (b2, a2, f2), (b3, a3, f3) = seen
    assert a2 is not b2 and a3 is b3
    train, _ = pipe._split_sessions(events)
    for k, factors in [(2, f2), (3, f3)]:
        cold = Pipeline(steps(k)).fit(train)
        np.testing.assert_array_equal(factors, cold[-1].user_factors_)
    cold = Pipeline(steps(1)).fit(train)
    assert pipe.n_iter_ == 1
    np.testing.assert_array_equal(pipe[-1].user_factors_, cold[-1].user_factors_)


@pytest.mark.parametrize(
    "script, kept", [([0.3, 0.1, 0.2], 1), ([0.3, 0.1, 0.4, 0.2, 0.1], 3)]
)
def test_keep_best_on_disk_sweeps_in_place_and_keeps_the_same_model(
    events, monkeypatch, tmp_path, script, kept
):
    # keep_best="disk": the best stage's arrays go to a temporary directory,
    # so the next stage sweeps in them (no second set of factors); the kept
    # model is the memory mode's, read back, and the directory is removed
    original = ImplicitALSRecommender._more_sweeps
    swept_in_place = []

    def recording(self, X, in_place=False):
        before = self.user_factors_
        original(self, X, in_place=in_place)
        swept_in_place.append(self.user_factors_ is before)
        return self

    monkeypatch.setattr(ImplicitALSRecommender, "_more_sweeps", recording)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fits = {
        keep: EarlyStoppingPipeline(
            steps(10), scoring=Scripted(script), random_state=0, keep_best=keep
        ).fit(events)
        for keep in ("memory", "disk")
    }
    n = len(script) - 1  # stages after the first, per fit
    assert swept_in_place[n:] == [True] * n  # disk: every stage in place
    assert False in swept_in_place[:n]  # memory: a copy after a best stage
    assert list(tmp_path.iterdir()) == []
    disk, memory = fits["disk"], fits["memory"]
    assert disk.n_iter_ == memory.n_iter_ == disk[-1].n_iter_ == kept
    for name in ("user_factors_", "item_factors_"):
        np.testing.assert_array_equal(
            getattr(disk[-1], name), getattr(memory[-1], name)
        )
    train, _ = disk._split_sessions(events)
    cold = Pipeline(steps(kept)).fit(train)
    np.testing.assert_array_equal(disk[-1].user_factors_, cold[-1].user_factors_)
    assert disk.predict(events).equals(memory.predict(events))


def test_keep_best_must_be_memory_or_disk(events):
    with pytest.raises(ValueError, match="keep_best must be one of"):
        EarlyStoppingPipeline(steps(2), keep_best="gpu").fit(events)
