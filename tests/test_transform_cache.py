"""FrameCache: explicit, safe caching of the preprocessing in a pipeline.

A grid search over ALS parameters must not redo the preprocessing its
candidates share, and the cache that does this must never return a result
for other data or other parameters, nor a result changed in place, must not
fail on frames it cannot hash, and must keep warnings with their thread.
"""

import pickle
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrixBuilder,
    PseudoUserUnifier,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.model_selection import SessionHoldoutSplit
from skals.preprocessing import FrameCache


@pytest.fixture(scope="module")
def events():
    return make_sessions(300, n_items=80, random_state=0)


def big_log(n=60_000, seed=0) -> pl.DataFrame:
    """An event log above the old implicit cache's 50,000-row threshold."""
    rng = np.random.default_rng(seed)
    sessions = rng.integers(0, n // 5, n)
    return pl.DataFrame(
        {
            "session_id": sessions,
            "user_id": pl.Series(sessions % 300, dtype=pl.Float64),
            "partnumber": rng.integers(0, 500, n),
            "add_to_cart": rng.integers(0, 2, n),
        }
    )


def preprocessing(memory=None, **params):
    pre = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(),
        InteractionMatrixBuilder(),
        "passthrough",
        memory=memory,
    )
    return pre.set_params(**params)


class Mutate(TransformerMixin, BaseEstimator):
    """A last step that changes its input in place (as a careless step may)."""

    def fit(self, X, y=None):
        if isinstance(X, pl.DataFrame):
            X.replace_column(X.columns.index("add_to_cart"), pl.Series([7] * len(X)))
        else:
            X.matrix.data[:] = -1.0
        return self

    def transform(self, X):
        return X


def test_nothing_is_cached_without_memory():
    # regression: the transformers cached fit_transform per process, so a
    # second call handed back the first call's object (changed in place)
    log = big_log()
    first = PseudoUserUnifier().fit_transform(log)
    first.replace_column(0, pl.Series("session_id", [0] * first.height))
    second = PseudoUserUnifier().fit_transform(log)
    assert second is not first
    assert second["session_id"].equals(log["session_id"])
    third = ConfidenceEncoder().fit_transform(second)
    assert third["cart_count"].sum() == log["add_to_cart"].sum()


def test_equal_content_and_params_hit(events):
    memory = FrameCache()
    first = preprocessing(memory)
    im1 = first.fit_transform(events)
    second = clone(first)
    assert second.memory is memory  # clones share the cache
    im2 = second.fit_transform(events.clone())  # another object, same content
    assert (memory.misses, memory.hits) == (3, 3)
    assert im2 is not im1
    assert (im2.matrix != im1.matrix).nnz == 0
    assert second[2].item_ids_.equals(first[2].item_ids_)
    assert second[2].user_ids_.equals(first[2].user_ids_)
    assert second[0].n_features_in_ == first[0].n_features_in_
    # a hit leaves the steps fitted: they transform new data like the original
    tail = events.tail(50)
    assert (second.transform(tail).matrix != first.transform(tail).matrix).nnz == 0


def test_other_params_or_content_miss(events):
    memory = FrameCache()
    im = preprocessing(memory).fit_transform(events)
    heavier = preprocessing(memory, confidenceencoder__cart_weight=20).fit_transform(
        events
    )
    # the unifier's result is shared, the encoder and builder are not
    assert (memory.misses, memory.hits) == (5, 1)
    assert heavier.matrix.sum() > im.matrix.sum()
    flipped = events.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(1 - pl.col("add_to_cart"))
        .otherwise(pl.col("add_to_cart"))
        .alias("add_to_cart")
    )
    other = preprocessing(memory).fit_transform(flipped)
    assert memory.hits == 1
    assert abs(other.matrix.sum() - im.matrix.sum()) == 10


def test_row_order_is_part_of_the_key(events):
    memory = FrameCache()
    pipe = make_pipeline(PseudoUserUnifier(), "passthrough", memory=memory)
    out = pipe.fit_transform(events)
    reversed_out = clone(pipe).fit_transform(events.reverse())
    assert memory.hits == 0
    assert reversed_out.equals(out.reverse())


@pytest.mark.parametrize("frame", ["polars", "matrix"])
def test_output_changed_in_place_is_not_served_again(events, frame):
    memory = FrameCache()
    steps = [PseudoUserUnifier()]
    if frame == "matrix":
        steps += [ConfidenceEncoder(), InteractionMatrixBuilder()]
    reference = make_pipeline(*[clone(s) for s in steps], "passthrough")
    expected = reference.fit_transform(events)
    for _ in range(3):  # the last step changes what the cache handed out
        pipe = make_pipeline(*[clone(s) for s in steps], Mutate(), memory=memory)
        pipe.fit(events)
    assert memory.hits == 2 * len(steps)
    got = make_pipeline(
        *[clone(s) for s in steps], "passthrough", memory=memory
    ).fit_transform(events)
    if frame == "polars":
        assert got.equals(expected)
    else:
        assert (got.matrix != expected.matrix).nnz == 0


def test_frame_without_fingerprint_is_computed_not_cached():
    # regression: hash_rows panics (a BaseException) on an Object column of
    # unhashable values with 50,000+ rows; the old implicit cache let the
    # panic through
    notes = pl.Series("note", [{"n": i} for i in range(60_000)], dtype=pl.Object)
    log = big_log().with_columns(notes)
    with pytest.raises(BaseException, match="hashable"):
        log.hash_rows()
    out = PseudoUserUnifier().fit_transform(log)
    assert out.height == log.height
    memory = FrameCache()
    pipe = make_pipeline(PseudoUserUnifier(), "passthrough", memory=memory)
    got = pipe.fit_transform(log)
    assert got["unified_user_id"].equals(out["unified_user_id"])
    assert (memory.skipped, memory.misses, len(memory)) == (1, 0, 0)


def test_lazy_frames_and_small_frames_are_not_cached(events):
    memory = FrameCache(min_rows=events.height + 1)
    preprocessing(memory).fit_transform(events)
    # the unifier's and encoder's inputs are small; the encoded frame too
    assert memory.misses == 0
    memory = FrameCache()
    preprocessing(memory).fit_transform(events.lazy())
    # a LazyFrame may read a file that changes: only the builder (whose
    # input the encoder collected) is cached
    assert (memory.skipped, memory.misses) == (2, 1)


def test_pandas_input_is_cached_by_content(events):
    memory = FrameCache()
    pdf = events.to_pandas()
    im1 = preprocessing(memory).fit_transform(pdf)
    im2 = preprocessing(memory).fit_transform(pdf.copy())
    assert memory.hits == 3
    assert (im1.matrix != im2.matrix).nnz == 0
    changed = pdf.copy()
    changed.loc[0, "add_to_cart"] = 1 - changed.loc[0, "add_to_cart"]
    preprocessing(memory).fit_transform(changed)
    assert memory.hits == 3
    assert isinstance(pdf, pd.DataFrame)


def test_budget_evicts_least_recently_used(events):
    size = PseudoUserUnifier().fit_transform(events).estimated_size()
    memory = FrameCache(max_bytes=size + size // 2)
    pipe = make_pipeline(PseudoUserUnifier(), "passthrough", memory=memory)
    clone(pipe).fit_transform(events)
    head = events.head(events.height - 10)
    clone(pipe).fit_transform(head)
    # both do not fit in the budget: the older entry was dropped
    assert len(memory) == 1
    clone(pipe).fit_transform(head)
    clone(pipe).fit_transform(events)
    assert (memory.hits, memory.misses) == (1, 3)


def test_result_too_large_to_keep_is_not_copied(events, monkeypatch):
    from skals.preprocessing import _cache

    copies = []
    real = _cache._copy
    monkeypatch.setattr(_cache, "_copy", lambda obj: copies.append(1) or real(obj))
    memory = FrameCache(max_bytes=1)
    pipe = make_pipeline(PseudoUserUnifier(), "passthrough", memory=memory)
    out = pipe.fit_transform(events)
    # sized before copying: nothing kept, nothing copied, the result returned
    assert (len(memory), memory.misses, copies) == (0, 1, [])
    assert out.columns[-1] == "unified_user_id"


def test_pickled_cache_starts_empty_and_is_shared_in_its_process(events):
    memory = FrameCache()
    preprocessing(memory).fit_transform(events)
    copy = pickle.loads(pickle.dumps(memory))
    # in this process the unpickled cache is a worker-side cache: empty,
    # with the same settings, and the same object for every unpickling
    assert copy is not memory and len(copy) == 0
    assert copy.max_bytes == memory.max_bytes
    assert pickle.loads(pickle.dumps(memory)) is copy


def test_warnings_of_a_hit_are_the_first_calls(events):
    memory = FrameCache()
    coded = events.with_columns(
        pl.when(pl.int_range(pl.len()) < 5)
        .then(pl.lit("NaN"))
        .otherwise(pl.col("user_id").cast(pl.String))
        .alias("user_id")
    )
    pipe = make_pipeline(PseudoUserUnifier(), "passthrough", memory=memory)
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clone(pipe).fit_transform(coded)
        assert [str(w.message).split(":")[1].split(" rows")[0] for w in caught] == [
            " 5"
        ]
    assert memory.hits == 1


def test_warnings_stay_with_their_thread():
    # regression: the implicit cache recorded warnings with the process-global
    # catch_warnings, so a thread's warning was shown (and cached) by another
    memory = FrameCache()
    n = 6
    logs = []
    for i in range(n):
        log = big_log(seed=i).with_columns(pl.col("user_id").cast(pl.String))
        log = log.with_columns(
            pl.when(pl.int_range(pl.len()) < i + 1)
            .then(pl.lit(""))
            .otherwise(pl.col("user_id"))
            .alias("user_id")
        )
        logs.append(log)
    shown = []
    barrier = threading.Barrier(n)

    def show(message, category, filename, lineno, file=None, line=None):
        shown.append((threading.current_thread().name, str(message)))

    def job(i):
        threading.current_thread().name = f"job{i}"
        barrier.wait()
        for _ in range(2):  # a miss, then a hit
            pipe = make_pipeline(
                PseudoUserUnifier(), ConfidenceEncoder(), "passthrough", memory=memory
            )
            pipe.fit_transform(logs[i])
        for _ in range(20):  # other code warning meanwhile
            warnings.warn(f"plain {i}", UserWarning, stacklevel=1)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(job, range(n)))
    assert memory.hits == 2 * n
    for i in range(n):
        mine = [m for name, m in shown if name == f"job{i}"]
        coded = [m for m in mine if "coded as missing" in m]
        assert [m.split(": ")[1].split(" rows")[0] for m in coded] == [str(i + 1)] * 2
        assert [m for m in mine if m.startswith("plain")] == [f"plain {i}"] * 20


def test_grid_search_results_equal_with_and_without_cache(events):
    grid = {
        "confidenceencoder__cart_weight": [5, 20],
        "implicitalsrecommender__regularization": [0.01, 1.0],
    }

    def run(memory):
        pipe = make_pipeline(
            PseudoUserUnifier(),
            ConfidenceEncoder(),
            InteractionMatrixBuilder(),
            ImplicitALSRecommender(factors=4, iterations=3, random_state=0),
            memory=memory,
        )
        search = GridSearchCV(
            pipe,
            grid,
            scoring=make_session_scorer("ndcg"),
            cv=SessionHoldoutSplit(n_splits=2),
            refit=False,
        )
        return search.fit(events).cv_results_["mean_test_score"]

    memory = FrameCache()
    without = run(None)
    with_cache = run(memory)
    # 2 folds x 4 candidates x 3 steps = 24 calls: per fold one unifier, and
    # per cart weight one encoder and one builder, were computed
    assert (memory.misses, memory.hits) == (2 * (1 + 2 + 2), 24 - 10)
    np.testing.assert_array_equal(with_cache, without)


def test_object_ids_as_ints_and_as_strs_are_different_keys(events):
    """The same ids as Python ints and as strs in object columns (issue 19)."""
    memory = FrameCache()
    as_int = events.to_pandas()
    as_int["partnumber"] = as_int["partnumber"].astype(object)
    as_str = as_int.copy()
    as_str["partnumber"] = as_str["partnumber"].map(str).astype(object)
    assert as_int["partnumber"].dtype == as_str["partnumber"].dtype == object
    # the hash pandas gives both is the same: only the value types differ
    assert pd.util.hash_pandas_object(as_int).equals(pd.util.hash_pandas_object(as_str))
    first = preprocessing(memory).fit_transform(as_int)
    second = preprocessing(memory).fit_transform(as_str)
    assert memory.hits == 0
    assert first.item_ids.dtype == pl.Int64
    assert second.item_ids.dtype == pl.String
    # a mixed column is neither (it may be refused; it must not be a hit)
    mixed = as_int.copy()
    mixed.loc[0, "partnumber"] = str(mixed.loc[0, "partnumber"])
    with pytest.raises((TypeError, ValueError, pl.exceptions.PolarsError)):
        preprocessing(memory).fit_transform(mixed)
    assert memory.hits == 0
    preprocessing(memory).fit_transform(as_str.copy())
    assert memory.hits == 3
