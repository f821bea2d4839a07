"""The Spark engine: the same pipeline on a Spark DataFrame, Spark MLlib's ALS.

Spark runs in local mode (``local[2]``), started once per test session. The
tests that need it skip where pyspark is not installed; the fold-in tests are
plain numpy and always run.
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skals import (
    ConfidenceEncoder,
    ImplicitALSRecommender,
    InteractionMatrix,
    InteractionMatrixBuilder,
    PopularityRecommender,
    PseudoUserUnifier,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer
from skals.model_selection import SessionHoldoutSplit
from skals.spark import SparkALSRecommender, SparkInteractionMatrix
from skals.spark import _als_wr as spark_als

pytestmark = pytest.mark.filterwarnings(
    # pyspark's own notice about pandas 3 (skals does not use pandas there)
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)

#: Spark's regularization for the holdout test: ALS-WR multiplies it by each
#: row's and column's number of entries, so it is far below implicit's best
#: (see benchmarks/spark_vs_implicit.py for the sweep).
SPARK_REGULARIZATION = 0.1
#: The event time column of make_sessions (and of the challenge).
TIME = "timestamp_local"


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip(
        "pyspark", reason="pyspark is not installed (pip install skals[spark])"
    )
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("skals-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.adaptive.enabled", "false")  # faster on tiny data
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def to_spark(spark, df: pl.DataFrame):
    return spark.createDataFrame(df.to_arrow())


def collect(sdf) -> pl.DataFrame:
    return pl.from_arrow(sdf.toArrow())


@pytest.fixture(scope="module")
def split():
    events = make_sessions(3_000, random_state=0)
    train, test = next(SessionHoldoutSplit(n_splits=1, test_size=0.2).split(events))
    return events[train], events[test]


def als(engine, **params):
    params = {"factors": 32, "iterations": 10, "random_state": 0, **params}
    if engine == "spark":
        return SparkALSRecommender(**params)
    return ImplicitALSRecommender(**params)


@pytest.fixture(scope="module")
def spark_pipe(spark, split):
    """A pipeline fitted on a Spark DataFrame, SparkALSRecommender last."""
    train, _ = split
    pipe = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        als("spark", regularization=SPARK_REGULARIZATION),
    )
    return pipe.fit(to_spark(spark, train))


@pytest.fixture(scope="module")
def encoded(spark, split):
    """Session-grain encodings of the training log: (polars, Spark)."""
    train = PseudoUserUnifier().fit_transform(split[0])
    encoder = ConfidenceEncoder(grain="session", segment_col="country", cart_weight=4)
    return encoder.fit_transform(train), encoder.transform(to_spark(spark, train))


# ------------------------------------------------------------ preprocessing
def test_unifier_matches_polars(spark):
    events = pl.DataFrame(
        {
            "session_id": [7, 8, 9, 10, 11],
            "user_id": [12.0, None, 1.5, float("nan"), 3.0],
            "partnumber": [1, 2, 3, 4, 5],
        }
    )
    unifier = PseudoUserUnifier()
    expected = unifier.fit_transform(events)
    out = unifier.fit_transform(to_spark(spark, events))
    assert type(out).__module__.startswith("pyspark.sql")
    # the session's user is a window over sessions: Spark reorders the rows
    assert collect(out).sort("session_id")["unified_user_id"].to_list() == [
        "u_12",
        "s_8",
        "u_1.5",
        "s_10",
        "u_3",
    ]
    assert collect(out).sort("session_id").equals(expected)
    assert list(unifier.feature_names_in_) == events.columns


def test_spark_unifier_rules_match_polars(spark):
    # one key per session (smallest user id), coded-missing and infinite ids
    events = pl.DataFrame(
        {
            "session_id": [1, 1, 1, 2, 2, 3, 4, 5],
            "user_id": [None, "5", None, "7", "3", "", "NaN", "None"],
            "partnumber": [1, 2, 3, 1, 2, 3, 4, 5],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = PseudoUserUnifier().fit_transform(events)
    out = collect(PseudoUserUnifier().fit_transform(to_spark(spark, events)))
    order = ["session_id", "partnumber"]
    assert out.sort(order).equals(expected.sort(order))
    assert expected["unified_user_id"].to_list() == ["u_5"] * 3 + ["u_3"] * 2 + [
        "s_3",
        "s_4",
        "s_5",
    ]
    floats = pl.DataFrame({"session_id": [1, 2], "user_id": [float("inf"), 2.0]})
    keys = collect(PseudoUserUnifier().fit_transform(to_spark(spark, floats)))
    assert keys.sort("session_id")["unified_user_id"].to_list() == ["s_1", "u_2"]
    with pytest.raises(ValueError, match="could give a user and a session"):
        PseudoUserUnifier(user_prefix="k", session_prefix="k").fit(
            to_spark(spark, events)
        )


def test_spark_session_grain_does_not_depend_on_row_order(spark):
    # regression: a session whose events carry two keys took the key of the
    # first row Spark happened to see
    events = pl.DataFrame(
        {
            "session_id": [1, 1, 1, 2, 2, 2, 3],
            "user_id": [None, 5, None, 7, 3, 7, None],
            "partnumber": [1, 2, 3, 1, 2, 2, 3],
            "add_to_cart": [0, 1, 0, 0, 0, 1, 0],
        }
    )
    pre = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        "passthrough",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        local = pre.fit_transform(events)
    for seed in range(3):
        shuffled = events.sample(fraction=1, shuffle=True, seed=seed)
        im = pre.fit_transform(to_spark(spark, shuffled).repartition(3))
        assert im.row_keys.to_list() == ["u_5", "u_3", "s_3"]
        assert im.row_keys.equals(local.row_keys)
        assert (im.matrix != local.matrix).nnz == 0


def test_spark_builder_matches_ids_exactly_and_takes_smallest_key(spark):
    fit_rows = pl.DataFrame(
        {"unified_user_id": ["a", "b"], "partnumber": [10, 20], "confidence": [1.0, 2]}
    )
    builder = InteractionMatrixBuilder().fit(to_spark(spark, fit_rows))
    strings = fit_rows.with_columns(pl.Series("partnumber", ["010", "20"]))
    with pytest.warns(UserWarning, match=r"dropped 2 of 2 rows .* \(2 distinct ids\)"):
        assert builder.transform(to_spark(spark, strings)).nnz == 0
    enc = pl.DataFrame(
        {
            "unified_user_id": ["s_1", "u_9", "u_2"],
            "session_id": [1, 1, 2],
            "partnumber": [10, 20, 10],
            "confidence": [1.0, 2.0, 3.0],
        }
    )
    with pytest.warns(UserWarning, match="1 values of 'session_id' have rows"):
        im = builder.transform(to_spark(spark, enc))
    assert im.row_keys.to_list() == ["s_1", "u_2"]


def test_spark_encoder_drops_duplicates_and_refuses_ignored_segments(spark):
    log = pl.DataFrame(
        {
            "unified_user_id": ["a", "a", "a", "b"],
            "partnumber": [1, 1, 1, 1],
            "add_to_cart": [1, 1, 0, 0],
            "country": ["x", "x", "x", "y"],
        }
    )
    encoder = ConfidenceEncoder(drop_duplicates=True, segment_col="country")
    with pytest.warns(UserWarning, match="dropped 1 of 4 events"):
        out = encoder.fit_transform(to_spark(spark, log))
    assert collect(out).sort("unified_user_id")["view_count"].to_list() == [2, 1]
    with pytest.raises(ValueError, match=r"segment_col='country'\) too"):
        InteractionMatrixBuilder().fit(out)


def test_encoder_matches_polars(encoded):
    expected, out = encoded
    keys = expected.columns[:3]
    got = collect(out).sort(keys)
    assert got.columns == expected.columns
    assert got.equals(expected.sort(keys))


def test_encoder_rejects_bad_flags_on_spark(spark):
    events = pl.DataFrame(
        {"unified_user_id": ["u_1", "u_1"], "partnumber": [1, 2], "add_to_cart": [0, 2]}
    )
    encoder = ConfidenceEncoder().fit(events)
    with pytest.raises(ValueError, match="must hold only 0 and 1; 1 "):
        encoder.transform(to_spark(spark, events))


def test_builder_matches_polars(encoded):
    encoded, spark_encoded = encoded
    builder = InteractionMatrixBuilder(segment_col="country")
    expected = builder.fit_transform(encoded)
    spark_builder = InteractionMatrixBuilder(segment_col="country")
    im = spark_builder.fit_transform(spark_encoded)
    assert isinstance(im, SparkInteractionMatrix)
    assert spark_builder.user_ids_.equals(builder.user_ids_)
    assert spark_builder.item_ids_.equals(builder.item_ids_)
    assert im.shape == expected.shape
    assert im.id_name == expected.id_name
    for name in ("row_ids", "row_keys", "item_ids", "row_segments"):
        assert getattr(im, name).equals(getattr(expected, name)), name
    assert im.item_stats.equals(expected.item_stats)
    assert im.matrix.dtype == np.float32
    assert (im.matrix != expected.matrix).nnz == 0
    assert im.nnz == expected.nnz


def test_builder_drops_unknown_items_on_spark(spark):
    fit_rows = pl.DataFrame(
        {
            "unified_user_id": ["u_1", "u_2"],
            "partnumber": [1, 2],
            "confidence": [2.0, 3.0],
        }
    )
    builder = InteractionMatrixBuilder().fit(to_spark(spark, fit_rows))
    new = pl.DataFrame(
        {
            "unified_user_id": ["u_3", "u_3"],
            "partnumber": [2, 9],
            "confidence": [4.0, 5.0],
        }
    )
    with pytest.warns(UserWarning, match=r"dropped 1 of 2 rows .* \(1 distinct ids\)"):
        im = builder.transform(to_spark(spark, new))
    assert im.row_ids.to_list() == ["u_3"]
    assert im.matrix.toarray().tolist() == [[0.0, 4.0]]


# -------------------------------------------------------------- estimator
def test_spark_pipeline_fits_like_the_local_one(spark_pipe, split):
    """Fitted from a Spark DataFrame or from the local matrix: one model.

    Both send Spark the same ratings with the same seed and blocks, so the
    factors agree (up to the order of Spark's float sums).
    """
    train, _ = split
    local = make_pipeline(
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session"),
        InteractionMatrixBuilder(),
        als("spark", regularization=SPARK_REGULARIZATION),
    ).fit(train)
    model, ref = spark_pipe[-1], local[-1]
    assert model.user_ids_.equals(ref.user_ids_)
    assert model.item_ids_.equals(ref.item_ids_)
    assert type(model.user_items_) is type(ref.user_items_)
    assert (model.user_items_ != ref.user_items_).nnz == 0
    for name in ("user_factors_", "item_factors_"):
        got, want = getattr(model, name), getattr(ref, name)
        assert type(got) is np.ndarray and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert type(model.fallback_) is type(ref.fallback_)
    np.testing.assert_array_equal(
        model.fallback_.item_popularity_, ref.fallback_.item_popularity_
    )


def test_spark_trained_factors_solve_als_wr(spark_pipe):
    """Spark's last half-step solves the users against the final items.

    So folding the training rows back in with Spark's rule (r = c - 1,
    regularization * n_u) must give Spark's user factors; implicit's rule
    (no n_u) must not.
    """
    model = spark_pipe[-1]
    folded = model._fold_in(model.user_items_)
    np.testing.assert_allclose(folded, model.user_factors_, rtol=1e-3, atol=1e-4)
    implicit_rule = AlternatingLeastSquares(
        factors=model.item_factors_.shape[1], regularization=SPARK_REGULARIZATION
    )
    implicit_rule.item_factors = model.item_factors_
    rows = np.arange(model.user_items_.shape[0])
    other = implicit_rule.recalculate_user(rows, model.user_items_)
    assert np.abs(other - model.user_factors_).max() > 1e-2


def test_spark_pipeline_predicts_spark_and_polars_alike(spark, spark_pipe, split):
    _, test = split
    context = test.sort("timestamp_local").group_by("session_id").head(3)
    context = context.drop("add_to_cart")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unknown items dropped
        local = spark_pipe.predict(context)
        remote = spark_pipe.predict(to_spark(spark, context))
    assert isinstance(remote, pl.DataFrame)
    assert remote.columns == ["session_id", "recommendations", "scores", "source"]
    assert remote.height == context["session_id"].n_unique()
    assert remote["recommendations"].list.len().min() == 5
    assert remote.equals(local)
    # fitted on Spark, the pipeline holds no Spark object: it pickles
    restored = pickle.loads(pickle.dumps(spark_pipe))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert restored.predict(context).equals(local)
    with pytest.raises(TypeError, match="Spark DataFrame is taken by the pipeline"):
        make_session_scorer("ndcg")(spark_pipe, to_spark(spark, test))
    keys = spark_pipe[-1].user_ids_[:3]
    answers = spark_pipe[-1].recommend_keys(keys)
    assert answers["unified_user_id"].equals(keys)


def test_spark_engine_recovers_planted_blocks(spark):
    """Two blocks of users x items with one cell per user held out."""
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 16
    block = np.arange(n_users) // (n_users // 2)
    X = (block[:, None] == (np.arange(n_items) // (n_items // 2))[None, :]).astype(
        np.float32
    ) * rng.integers(2, 6, size=(n_users, n_items))
    held_out = block * (n_items // 2) + rng.integers(0, n_items // 2, size=n_users)
    X[np.arange(n_users), held_out] = 0
    params = dict(
        factors=2, iterations=10, regularization=0.1, alpha=1.0, random_state=0
    )
    model = SparkALSRecommender(**params, k=1, filter_already_liked_items=True)
    model.fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(model.predict(X)[:, 0], held_out)
    # the deprecated engine="spark" still trains the same model, and says so
    old = ImplicitALSRecommender(**params, engine="spark")
    with pytest.warns(FutureWarning, match="SparkALSRecommender"):
        old.fit(sp.csr_matrix(X))
    np.testing.assert_allclose(old.item_factors_, model.item_factors_, rtol=1e-5)
    np.testing.assert_allclose(old._fold_in(sp.csr_matrix(X)), model._fold_in(X))


def test_engines_beat_popularity(spark, split):
    train, test = split
    scorer = make_session_scorer("ndcg")

    def score(estimator):
        pipe = make_pipeline(
            PseudoUserUnifier(),
            ConfidenceEncoder(),
            InteractionMatrixBuilder(),
            estimator,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return scorer(pipe.fit(train), test)

    popularity = score(PopularityRecommender())
    implicit = score(als("implicit", regularization=1.0))
    on_spark = score(als("spark", regularization=SPARK_REGULARIZATION))
    assert popularity > 0
    assert implicit >= 2 * popularity, (implicit, popularity)
    assert on_spark >= 2 * popularity, (on_spark, popularity)


# ---------------------------------------------------------------- fold-in
def hand_fold_in(rows, Y, regularization, alpha):
    """Spark's normal equations, one row at a time."""
    rows = sp.csr_matrix(rows)
    out = np.zeros((rows.shape[0], Y.shape[1]))
    for u in range(rows.shape[0]):
        items = rows.indices[rows.indptr[u] : rows.indptr[u + 1]]
        values = rows.data[rows.indptr[u] : rows.indptr[u + 1]]
        if items.size == 0:
            continue
        c = 1 + np.maximum(alpha * values - 1, spark_als.EPS)
        Yu = Y[items]
        A = Y.T @ Y + Yu.T @ np.diag(c - 1) @ Yu
        A += regularization * items.size * np.eye(Y.shape[1])
        out[u] = np.linalg.solve(A, Yu.T @ c)
    return out


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_fold_in_als_wr_matches_per_row_solve(monkeypatch, alpha):
    rng = np.random.default_rng(1)
    n_rows, n_items, n_factors = 60, 30, 5
    lengths = rng.integers(0, 12, size=n_rows)
    lengths[:3] = [0, 1, n_items]
    dense = np.zeros((n_rows, n_items))
    for u, n in enumerate(lengths):
        cols = rng.choice(n_items, size=n, replace=False)
        dense[u, cols] = rng.choice([0.5, 1.0, 2.0, 13.0], size=n)
    rows = sp.csr_matrix(dense)
    Y = rng.normal(size=(n_items, n_factors))
    expected = hand_fold_in(rows, Y, 0.1, alpha)
    # small batches: rows of different lengths share and straddle batches
    monkeypatch.setattr(spark_als, "BATCH_CELLS", 16)
    got = spark_als.fold_in_als_wr(rows, Y, 0.1, alpha)
    assert got.dtype == np.float32 and got.shape == (n_rows, n_factors)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not got[0].any()
    # the regularization is scaled per row: without the n_u factor it differs
    unscaled = hand_fold_in(rows, Y, 0.1 / n_items, alpha)
    assert not np.allclose(got[2], unscaled[2], rtol=1e-3)


def test_spark_recommender_folds_in_with_als_wr(spark):
    X = sp.random(12, 8, density=0.5, random_state=3, format="csr") * 10
    model = SparkALSRecommender(factors=3, regularization=0.5, iterations=3)
    model.fit(X + sp.eye(12, 8, format="csr"))
    rows = sp.random(5, 8, density=0.5, random_state=4, format="csr") * 10
    expected = hand_fold_in(rows, model.item_factors_.astype(np.float64), 0.5, 1.0)
    np.testing.assert_allclose(model._fold_in(rows), expected, rtol=1e-4, atol=1e-5)
    # predict reads the regularization of the fit, not the parameter
    before = model.predict(rows)
    model.set_params(regularization=50.0, factors=7)
    np.testing.assert_array_equal(model.predict(rows), before)


def test_fold_in_als_wr_leaves_its_input_alone():
    rows = sp.csr_matrix(
        (np.array([3.0, 0.0, 2.0]), np.array([2, 0, 1]), np.array([0, 3])),
        shape=(1, 4),
    )
    before = [a.copy() for a in (rows.data, rows.indices, rows.indptr)]
    Y = np.random.default_rng(0).normal(size=(4, 2))
    spark_als.fold_in_als_wr(rows, Y, 0.1)
    for a, b in zip((rows.data, rows.indices, rows.indptr), before, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ misc
def test_engine_is_validated():
    with pytest.raises(InvalidParameterError, match="engine"):
        ImplicitALSRecommender(engine="mllib").fit(np.eye(3))
    with pytest.raises(InvalidParameterError, match="num_blocks"):
        SparkALSRecommender(num_blocks=0).fit(np.eye(3))


def test_skals_imports_without_pyspark():
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "import numpy as np, polars as pl, scipy.sparse as sp\n"
        "import skals, skals.spark\n"
        "from skals._frame import is_spark\n"
        "im = skals.InteractionMatrix(sp.csr_matrix(np.eye(2, dtype='f4')),\n"
        "    pl.Series('k', ['a', 'b']), pl.Series('k', ['a', 'b']),\n"
        "    pl.Series('i', [1, 2]))\n"
        "assert not is_spark(im) and not is_spark(pl.DataFrame({'a': [1]}))\n"
        "skals.spark.SparkALSRecommender(factors=2).get_params()\n"
        "assert 'pyspark.sql' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "ok"


def test_spark_matrix_answers_like_its_local_copy(encoded):
    """A SparkInteractionMatrix is used wherever an InteractionMatrix is."""
    local_enc, spark_enc = encoded
    builder = InteractionMatrixBuilder(segment_col="country").fit(local_enc)
    im = builder.transform(spark_enc)
    assert isinstance(im, SparkInteractionMatrix)
    local = im.to_local()
    assert type(local) is InteractionMatrix
    assert (local.matrix != builder.transform(local_enc).matrix).nnz == 0
    a = PopularityRecommender(k=3).fit(im)
    b = PopularityRecommender(k=3).fit(local)
    np.testing.assert_array_equal(a.segment_popularity_, b.segment_popularity_)
    assert a.predict(im).equals(b.predict(local))


def test_spark_sums_sessions_by_the_local_rule(spark):
    """Binary values at session grain: Spark trains on the plain sums, the
    same matrix the estimator keeps as history (not 1 + sum(c - 1))."""
    enc = pl.DataFrame(
        {
            "session_id": [1, 2, 3, 4],
            "unified_user_id": ["a", "a", "b", "b"],
            "partnumber": [10, 10, 20, 10],
            "confidence": [1.0, 1.0, 1.0, 1.0],
        }
    )
    builder = InteractionMatrixBuilder().fit(enc)
    im = builder.transform(to_spark(spark, enc))
    params = dict(factors=2, iterations=3, regularization=0.1, random_state=0)
    remote = SparkALSRecommender(**params).fit(im)
    local = SparkALSRecommender(**params).fit(im.to_local())
    assert remote.user_items_.toarray().tolist() == [[2.0, 0.0], [1.0, 1.0]]
    np.testing.assert_allclose(remote.user_factors_, local.user_factors_, rtol=1e-4)


# ------------------------------------------------ event order (time_col)
@pytest.fixture(scope="module")
def timed(spark, split):
    """A training log with ties in time and repeated items, polars and Spark."""
    train = split[0].head(4_000)
    return train, to_spark(spark, train)


@pytest.mark.parametrize("grain", ["session", "key"])
def test_spark_encoder_orders_events_like_polars(timed, grain):
    local_log, spark_log = timed
    steps = [PseudoUserUnifier(), ConfidenceEncoder(grain=grain, time_col=TIME)]
    local = make_pipeline(*steps).fit_transform(local_log)
    remote = collect(make_pipeline(*steps).fit(local_log).transform(spark_log))
    keys = [c for c in ("unified_user_id", "session_id", "partnumber") if c in local]
    assert remote.columns == local.columns
    assert local.columns[-2:] == ["last_time", "recency"]
    remote = remote.with_columns(pl.col("last_time").dt.replace_time_zone(None))
    assert remote.sort(keys).equals(local.sort(keys).cast(remote.schema))
    assert local["recency"].min() == 1


def test_spark_builder_keeps_row_times_and_recency(timed):
    local_log, spark_log = timed
    steps = [
        PseudoUserUnifier(),
        ConfidenceEncoder(grain="session", time_col=TIME),
        InteractionMatrixBuilder(),
    ]
    pipe = make_pipeline(*steps).fit(local_log)
    local = pipe.transform(local_log)
    remote = pipe.transform(spark_log)
    assert isinstance(remote, SparkInteractionMatrix)
    assert remote.row_ids.equals(local.row_ids)
    np.testing.assert_array_equal(remote.row_times, local.row_times)
    assert (remote.matrix != local.matrix).nnz == 0
    assert (remote.recency != local.recency).nnz == 0
    np.testing.assert_array_equal(remote.recency.indices, local.matrix.indices)
    copy = remote.to_local()
    assert (copy.recency != local.recency).nnz == 0
    np.testing.assert_array_equal(copy.row_times, local.row_times)


def test_spark_session_seconds_of_dates_and_numbers(spark):
    """Dates count days from 1970-01-01, numbers are seconds, as locally."""
    import datetime as dt

    base = {"unified_user_id": ["a", "a", "b"], "partnumber": [1, 2, 1]}
    for times in (
        [dt.date(1970, 1, 2), dt.date(2024, 5, 1), dt.date(2024, 5, 3)],
        [10.5, 3.0, 7.0],
        [10, 3, 7],
    ):
        log = pl.DataFrame({**base, "session_id": [1, 1, 2], "t": times})
        steps = [
            ConfidenceEncoder(grain="session", time_col="t", cart_col="c"),
            InteractionMatrixBuilder(),
        ]
        log = log.with_columns(c=pl.lit(0))
        pipe = make_pipeline(*steps).fit(log)
        local, remote = pipe.transform(log), pipe.transform(to_spark(spark, log))
        np.testing.assert_array_equal(remote.row_times, local.row_times)
        assert (remote.recency != local.recency).nnz == 0
    # the last log: session 1 saw item 1 at 10 s and item 2 at 3 s
    assert local.row_times.tolist() == [10.0, 7.0]
    assert local.recency.toarray().tolist() == [[1, 2], [1, 0]]


def test_spark_encoder_refuses_bad_or_missing_times(spark):
    log = pl.DataFrame(
        {
            "unified_user_id": ["a", "a"],
            "session_id": [1, 1],
            "partnumber": [1, 2],
            "add_to_cart": [0, 1],
            "t": [None, 5.0],
            "s": ["x", "y"],
        }
    )
    encoder = ConfidenceEncoder(grain="session", time_col="t").fit(log)
    with pytest.raises(ValueError, match="column 't' has 1 null values"):
        encoder.transform(to_spark(spark, log))
    encoder = ConfidenceEncoder(grain="session", time_col="s").fit(log)
    with pytest.raises(TypeError, match="column 's' has dtype string; event times"):
        encoder.transform(to_spark(spark, log))


def _session_models():
    from skals import BlendRecommender, RepeatRecommender, SessionKNNRecommender

    return {
        "knn": SessionKNNRecommender(n_neighbors=50, sample_size=200),
        "repeat": RepeatRecommender(),
        "blend": BlendRecommender(
            [
                (
                    "als",
                    ImplicitALSRecommender(factors=8, iterations=3, random_state=0),
                ),
                ("knn", SessionKNNRecommender(n_neighbors=50, sample_size=200)),
                ("repeat", RepeatRecommender()),
            ],
            weights=[1.0, 3.0, 2.0],
        ),
    }


@pytest.mark.parametrize("name", ["knn", "repeat", "blend"])
def test_session_models_fit_from_spark_like_from_polars(spark, split, name):
    """session-kNN, repeat and the blend fitted on a Spark DataFrame of events
    answer as the same pipeline fitted on the polars log."""
    from skals import Schema, make_recommender_pipeline

    train, test = split
    schema = Schema()
    remote = make_recommender_pipeline(_session_models()[name], schema=schema)
    local = make_recommender_pipeline(_session_models()[name], schema=schema)
    assert remote[1].time_col == TIME  # the factory orders the events
    remote.fit(to_spark(spark, train))
    local.fit(train)
    context = test.sort(TIME).group_by("session_id", maintain_order=True).head(3)
    context = context.drop("add_to_cart")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unknown items dropped
        want = local.predict(context)
        got = remote.predict(context)
        from_spark = remote.predict(to_spark(spark, context))
    assert want.height == context["session_id"].n_unique()
    assert got.equals(want)
    assert from_spark.equals(want)
    if name == "knn":  # the fitted state itself, not only its answers
        a, b = remote[-1], local[-1]
        assert (a.session_items_ != b.session_items_).nnz == 0
        assert a.session_ids_.equals(b.session_ids_)
