"""The command line, driven through ``main([...])`` on small generated files."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import joblib
import numpy as np
import polars as pl
import pytest
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import make_pipeline

import skals
from skals import __version__
from skals.cli import main
from skals.datasets import make_sessions
from skals.model_selection import SessionHoldoutSplit

# Small and quick: few factors and sweeps, one thread (no contention).
FAST = ["--factors", "8", "--iterations", "3", "--num-threads", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Train/test logs as the challenge ships them, plus variants."""
    d = tmp_path_factory.mktemp("cli")
    events = make_sessions(1_500, n_items=300, random_state=0)
    train_idx, test_idx = next(
        SessionHoldoutSplit(n_splits=1, test_size=0.1).split(events)
    )
    train, test = events[train_idx], events[test_idx].drop("add_to_cart")
    paths = {
        "train": d / "train.parquet",
        "test": d / "test.parquet",
        "train_csv": d / "train.csv",
        "dir": d,
    }
    train.write_parquet(paths["train"])
    test.write_parquet(paths["test"])
    train.write_csv(paths["train_csv"])
    paths["sessions"] = set(test["session_id"].cast(pl.String).to_list())
    paths["n_items"] = train["partnumber"].n_unique()
    return paths


@pytest.fixture(scope="module")
def model(files):
    path = files["dir"] / "model.skals"
    assert main(["fit", str(files["train"]), "--model", str(path), "-q", *FAST]) == 0
    return path


def _saved(path):
    """A model file's content: its header's entries and the pipeline."""
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("skals.json"))
    model, meta = skals.load(path, return_metadata=True)
    return {"format": header["format"], **meta, "pipeline": model}


@pytest.fixture(autouse=True)
def empty_cwd(tmp_path_factory, monkeypatch):
    """Each test runs in an empty working directory, which must stay empty."""
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    yield
    assert not list(cwd.iterdir()), "the CLI wrote into the working directory"


def _error_line(capsys) -> str:
    """The only stderr line, which must be a skals error (no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("skals: error: ")
    return lines[0]


def _check_target(path, sessions, k):
    """Every session present, with exactly k distinct integer partnumbers."""
    target = json.loads(path.read_text())["target"]
    assert set(target) == sessions
    for items in target.values():
        assert len(items) == k == len(set(items))
        assert all(type(p) is int for p in items)
    return target


# ------------------------------------------------------------------ fit/predict
def test_fit_then_predict_writes_the_challenge_json(files, model, tmp_path, capsys):
    out = tmp_path / "pred.json"
    code = main(["predict", str(model), str(files["test"]), "--output", str(out)])
    assert code == 0
    target = _check_target(out, files["sessions"], k=5)
    # answers are personal (fold-in), not one popularity list for everyone
    assert len({tuple(v) for v in target.values()}) > len(target) // 2
    assert "for each of" in capsys.readouterr().out


#: the command line prints skals' warnings as lines: let them through to it
PRINTED = pytest.mark.filterwarnings("default::skals.SkalsWarning")


@PRINTED
def test_predict_k_and_session_with_unknown_items_only(files, model, tmp_path, capsys):
    test = pl.read_parquet(files["test"])
    # a session whose only product the model never saw gets the fallback
    cold = test.head(1).with_columns(
        pl.lit(-1, pl.Int64).alias("session_id"),
        pl.lit(10**9, pl.Int64).alias("partnumber"),
    )
    events = tmp_path / "events.parquet"
    pl.concat([test, cold]).write_parquet(events)
    out = tmp_path / "pred.json"
    args = ["predict", str(model), str(events), "--output", str(out), "-k", "12"]
    assert main([*args, "-q"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("skals: warning: InteractionMatrixBuilder: dropped 1 of")
    target = _check_target(out, files["sessions"] | {"-1"}, k=12)
    assert target["-1"]


def test_predict_without_user_column_treats_sessions_as_anonymous(
    files, model, tmp_path, capsys
):
    events = tmp_path / "anon.parquet"
    pl.read_parquet(files["test"]).drop("user_id").write_parquet(events)
    out = tmp_path / "pred.json"
    assert main(["predict", str(model), str(events), "--output", str(out)]) == 0
    _check_target(out, files["sessions"], k=5)
    assert "every session is taken as anonymous" in capsys.readouterr().err


def test_fit_csv_with_renamed_columns_and_string_items(files, tmp_path, capsys):
    names = {"session_id": "sid", "user_id": "uid", "partnumber": "sku"}
    train = pl.read_csv(files["train_csv"], try_parse_dates=True).rename(names)
    train = train.with_columns(pl.format("p{}", "sku").alias("sku"))
    train.write_csv(tmp_path / "train.csv")
    cols = ["--session-col", "sid", "--user-col", "uid", "--item-col", "sku"]
    model = tmp_path / "m.joblib"
    assert (
        main(["fit", str(tmp_path / "train.csv"), "--model", str(model), *cols, *FAST])
        == 0
    )
    assert "fitted on" in capsys.readouterr().out
    # EVENTS in the model's names need no options; other names are given
    test = pl.read_parquet(files["test"]).rename(names)
    test = test.with_columns(pl.format("p{}", "sku").alias("sku"))
    test.write_parquet(tmp_path / "model_names.parquet")
    test.rename({"sid": "session"}).write_csv(tmp_path / "other_names.csv")
    for events, extra in [
        ("model_names.parquet", []),
        ("other_names.csv", ["--session-col", "session"]),
    ]:
        out = tmp_path / f"{events}.json"
        code = main(
            [
                "predict",
                str(model),
                str(tmp_path / events),
                "--output",
                str(out),
                "-q",
                *extra,
            ]
        )
        assert code == 0
        target = json.loads(out.read_text())["target"]
        assert set(target) == files["sessions"]
        assert all(
            len(set(v)) == 5 and all(isinstance(p, str) and p[0] == "p" for p in v)
            for v in target.values()
        )


def test_fit_hyperparameters_reach_the_saved_pipeline(files, tmp_path):
    path = tmp_path / "m.joblib"
    args = [
        "fit",
        str(files["train"]),
        "--model",
        str(path),
        "-q",
        *FAST,
        "--cart-weight",
        "2.5",
        "--no-fold-in",
        "--filter-already-liked-items",
    ]
    assert main(args) == 0
    saved = _saved(path)
    assert saved["format"] == "skals-model" and saved["skals_version"] == __version__
    params = saved["pipeline"].get_params()
    assert params["implicitalsrecommender__factors"] == 8
    assert params["implicitalsrecommender__fold_in"] is False
    assert params["implicitalsrecommender__filter_already_liked_items"] is True
    assert params["confidenceencoder__cart_weight"] == 2.5
    assert params["confidenceencoder__grain"] == "session"


def test_quiet_fit_writes_nothing_on_stderr(files, tmp_path, capsys):
    path = tmp_path / "m.joblib"
    assert main(["fit", str(files["train"]), "--model", str(path), "-q", *FAST]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "fitted on" in captured.out


def test_progress_bar_on_a_terminal(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"factors": [4, 8], "iterations": [2]}))
    args = [
        "tune",
        str(files["train"]),
        "--model",
        str(tmp_path / "m.joblib"),
        "--grid",
        str(grid),
        "--num-threads",
        "1",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "grid search: 100%" in err and "2/2" in err
    assert "grid search 1/2" not in err  # the bar, not log lines
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_log_lines_when_stderr_is_not_a_terminal(files, tmp_path, capsys):
    path = tmp_path / "m.joblib"
    assert main(["fit", str(files["train"]), "--model", str(path), *FAST]) == 0
    err = capsys.readouterr().err
    assert "skals: read " in err and "skals: fitting " in err
    assert "\r" not in err  # no progress bar


# ------------------------------------------------------------------------ tune
def test_tune_prints_best_params_and_saves_the_refit_model(files, tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"factors": [4, 8], "cart_weight": [5, 20]}))
    model, report = tmp_path / "best.joblib", tmp_path / "grid.png"
    args = [
        "tune",
        str(files["train"]),
        "--model",
        str(model),
        "--grid",
        str(grid),
        "--iterations",
        "3",
        "--num-threads",
        "1",
        "--scoring",
        "ndcg@5",
    ]
    pytest.importorskip("matplotlib", reason="--report needs matplotlib")
    assert main([*args, "--report", str(report)]) == 0
    captured = capsys.readouterr()
    assert "best: " in captured.out and "cart_weight=" in captured.out
    # one progress line per candidate x block when stderr is not a terminal
    assert captured.err.count("grid search ") == 4
    saved = _saved(model)
    best = saved["best_params"]
    params = saved["pipeline"].get_params()
    assert (
        params["implicitalsrecommender__factors"]
        == best["implicitalsrecommender__factors"]
    )
    assert f"factors={best['implicitalsrecommender__factors']}" in captured.out
    assert report.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the tuned model predicts like a fitted one
    out = tmp_path / "pred.json"
    assert main(["predict", str(model), str(files["test"]), "--output", str(out)]) == 0
    _check_target(out, files["sessions"], k=5)


def test_tune_report_without_matplotlib_fails_before_tuning(
    files, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    model = tmp_path / "best.joblib"
    args = [
        "tune",
        str(files["train"]),
        "--model",
        str(model),
        "--report",
        str(tmp_path / "r.png"),
    ]
    assert main(args) == 1
    assert "matplotlib" in _error_line(capsys)
    assert not model.exists()


# ------------------------------------------------------------------------ demo
@pytest.mark.parametrize("with_matplotlib", [True, False])
def test_demo_writes_its_files_and_prints_the_table(
    tmp_path, capsys, monkeypatch, with_matplotlib
):
    if with_matplotlib:
        pytest.importorskip("matplotlib", reason="the plot needs matplotlib")
    else:
        monkeypatch.setitem(sys.modules, "matplotlib", None)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"factors": [8, 16], "iterations": [3]}))
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--n-sessions", "1500", "--grid", str(grid)]
    assert main([*args, "-q"]) == 0
    stdout = capsys.readouterr().out
    rows = (
        "ALS, tuned",
        "ALS, default",
        "session-kNN (V-SKNN)",
        "repeat",
        "sequential rules",
        "SLIST",
        "blend (auto weights)",
        "blend (1:3:2)",
        "carts: repeat, then kNN",
        "popularity",
        "notebook's approach",
    )
    for row in rows:
        assert row in stdout
    assert "NDCG@5" in stdout and "overlap@5" in stdout and "anonymous" in stdout
    ndcg = {
        row.split(" (")[0]: float(line[len(row) :].split()[0])
        for line in stdout.splitlines()
        for row in (
            "ALS, default",
            "popularity",
            "session-kNN (V-SKNN)",
            "blend (auto weights)",
        )
        if line.startswith(row)
    }
    assert ndcg["ALS, default"] > 2 * ndcg["popularity"] > 0
    assert ndcg["session-kNN"] > 2 * ndcg["popularity"]
    assert ndcg["blend"] > ndcg["popularity"]
    # held-out sessions: the latest 10% of 1,500
    target = json.loads((out / "predictions.json").read_text())["target"]
    assert len(target) == 150
    assert all(len(set(v)) == 5 for v in target.values())
    assert _saved(out / "model.skals")["format"] == "skals-model"
    png = out / "grid_scores.png"
    if with_matplotlib:
        assert png.read_bytes()[:4] == b"\x89PNG"
    else:
        assert not png.exists()
        assert "no plot written: matplotlib is not installed" in stdout


@pytest.mark.parametrize("name", ["knn", "repeat", "blend"])
def test_fit_and_predict_other_recommenders(files, tmp_path, name):
    model = tmp_path / f"{name}.joblib"
    args = ["fit", str(files["train"]), "--model", str(model), "--recommender", name]
    assert main([*args, "-q"]) == 0
    final = skals.load(model).steps[-1][1]
    expected = {
        "knn": skals.SessionKNNRecommender,
        "repeat": skals.RepeatRecommender,
        "blend": skals.BlendRecommender,
    }[name]
    assert type(final) is expected
    out = tmp_path / "pred.json"
    assert main(["predict", str(model), str(files["test"]), "--output", str(out)]) == 0
    _check_target(out, files["sessions"], k=5)


def test_tune_other_recommender_has_its_own_default_grid(files, tmp_path, capsys):
    from skals.cli._options import DEFAULT_GRIDS

    model = tmp_path / "repeat.joblib"
    args = ["tune", str(files["train"]), "--model", str(model)]
    assert main([*args, "--recommender", "repeat", "-q"]) == 0
    search_params = skals.load(model, return_metadata=True)[1]["best_params"]
    assert set(search_params) == {
        "repeatrecommender__recency_decay",
        "repeatrecommender__count_weight",
    }
    assert (
        search_params["repeatrecommender__recency_decay"]
        in (DEFAULT_GRIDS["repeat"]["recency_decay"])
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        ("rules", "SequentialRulesRecommender"),
        ("slist", "SLISTRecommender"),
    ],
)
def test_fit_and_predict_rules_and_slist(files, tmp_path, name, expected):
    model = tmp_path / f"{name}.joblib"
    args = ["fit", str(files["train"]), "--model", str(model), "--recommender", name]
    assert main([*args, "-q"]) == 0
    pipe = skals.load(model)
    assert type(pipe.steps[-1][1]) is getattr(skals, expected)
    # the rules and SLIST read each session's order: the pipeline has it
    encoder = next(s for _, s in pipe.steps if isinstance(s, skals.ConfidenceEncoder))
    assert encoder.time_col == "timestamp_local"
    out = tmp_path / "pred.json"
    assert main(["predict", str(model), str(files["test"]), "--output", str(out)]) == 0
    _check_target(out, files["sessions"], k=5)


def test_tune_rules_searches_its_default_grid(files, tmp_path):
    from skals.cli._options import DEFAULT_GRIDS

    model = tmp_path / "rules.joblib"
    args = ["tune", str(files["train"]), "--model", str(model), "--cv", "1"]
    assert main([*args, "--recommender", "rules", "-q"]) == 0
    pipe, meta = skals.load(model, return_metadata=True)
    grid = DEFAULT_GRIDS["rules"]
    assert set(meta["best_params"]) == {
        f"sequentialrulesrecommender__{p}" for p in grid
    }
    final = pipe.steps[-1][1]
    assert type(final) is skals.SequentialRulesRecommender
    for p, values in grid.items():  # the refitted model is the best candidate
        assert (
            getattr(final, p) == meta["best_params"][f"sequentialrulesrecommender__{p}"]
        )
        assert getattr(final, p) in values


@pytest.mark.parametrize(
    "name", ["rules", "slist", "stan", "carts", "rerank", "rerank-carts"]
)
def test_new_default_grids_hold_the_defaults(name):
    from skals.cli._commands import recommender
    from skals.cli._options import DEFAULT_GRIDS

    grid = DEFAULT_GRIDS[name]
    assert 4 <= len(ParameterGrid(grid)) <= 9
    defaults = recommender(name).get_params()
    assert all(defaults[p] in values for p, values in grid.items())


def test_fit_stan_saves_the_stan_weighted_knn(files, tmp_path):
    from skals.cli._options import STAN_POINT

    model = tmp_path / "stan.joblib"
    args = ["fit", str(files["train"]), "--model", str(model), "--recommender", "stan"]
    assert main([*args, "-q"]) == 0
    pipe = skals.load(model)
    final = pipe.steps[-1][1]
    assert type(final) is skals.SessionKNNRecommender
    # every STAN weight is on, at VSTAN's setting, in what predict reads
    assert final.params_ == {
        **final.params_,
        **{p: v[0] for p, v in STAN_POINT.items()},
    }
    assert final.params_["recency_decay"] == 10.0
    out = tmp_path / "pred.json"
    assert main(["predict", str(model), str(files["test"]), "--output", str(out)]) == 0
    _check_target(out, files["sessions"], k=5)


@pytest.mark.parametrize(
    ("name", "target"), [("rerank", "next_item"), ("rerank-carts", "session")]
)
def test_fit_rerank_saves_a_reranker_that_learnt_from_the_events(
    files, tmp_path, name, target
):
    model = tmp_path / "rerank.skals"
    args = ["fit", str(files["train"]), "--model", str(model)]
    assert main([*args, "--recommender", name, "-q"]) == 0
    pipe = skals.load(model)
    final = pipe.steps[-1][1]
    assert type(final) is skals.RerankRecommender
    assert final.target == target
    assert pipe[1].keep_events  # the encoder kept each session's events
    assert final.ranker_ is not None
    assert list(final.named_estimators_) == ["als", "knn", "stan", "repeat", "sr"]
    out = tmp_path / "pred.json"
    assert main(["predict", str(model), str(files["test"]), "--output", str(out)]) == 0
    _check_target(out, files["sessions"], k=5)


def test_knn_default_grid_has_a_stan_weighted_point():
    from skals.cli._options import DEFAULT_GRIDS

    candidates = list(ParameterGrid(DEFAULT_GRIDS["knn"]))
    stan = [
        c
        for c in candidates
        if not isinstance(c["weighting"], str)
        and c.get("recency_decay") is not None
        and c.get("neighbor_position_decay") is not None
    ]
    assert len(stan) == 1
    # every candidate is a valid SessionKNNRecommender
    for c in candidates:
        skals.SessionKNNRecommender(**c)._validate_params()


# ------------------------------------------------------------- help, version
def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"skals {__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("demo", "fit", "predict", "tune"))
    for cmd, options in [
        ("demo", ["--out", "--n-sessions"]),
        ("fit", ["--model", "--factors", "--cart-weight", "--item-col"]),
        ("predict", ["--output", "-k", "--session-col"]),
        ("tune", ["--grid", "--cv", "--scoring", "--report", "--time-col"]),
    ]:
        assert main([cmd, "--help"]) == 0
        out = capsys.readouterr().out
        assert all(opt in out for opt in [*options, "--quiet"]), cmd


def test_python_dash_m_skals():
    result = subprocess.run(
        [sys.executable, "-m", "skals", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"skals {__version__}"


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main([]) == 2
    assert main(["fit", "x.parquet"]) == 2  # --model is required
    assert (
        main(["predict", "m", "e", "--output", str(tmp_path / "o.json"), "-k", "0"])
        == 2
    )
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------ bad input
def test_missing_train_file(tmp_path, capsys):
    code = main(
        ["fit", str(tmp_path / "nope.parquet"), "--model", str(tmp_path / "m"), "-q"]
    )
    assert code == 1
    assert "does not exist" in _error_line(capsys)


def test_unreadable_files(tmp_path, capsys):
    fake = tmp_path / "fake.parquet"
    fake.write_text("session_id,partnumber\n1,2\n")
    assert main(["fit", str(fake), "--model", str(tmp_path / "m"), "-q"]) == 1
    assert "is not a parquet file" in _error_line(capsys)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1" + b"\x00" * 64)
    assert main(["fit", str(corrupt), "--model", str(tmp_path / "m"), "-q"]) == 1
    assert "cannot read TRAIN file" in _error_line(capsys)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["fit", str(empty), "--model", str(tmp_path / "m"), "-q"]) == 1
    assert "cannot read TRAIN file" in _error_line(capsys)


def test_missing_columns_are_named(files, tmp_path, capsys):
    train = tmp_path / "no_cart.parquet"
    pl.read_parquet(files["train"]).drop("add_to_cart").write_parquet(train)
    assert main(["fit", str(train), "--model", str(tmp_path / "m"), "-q"]) == 1
    line = _error_line(capsys)
    assert "'add_to_cart'" in line and "--cart-col" in line
    # tune also needs the time column
    train = tmp_path / "no_time.parquet"
    pl.read_parquet(files["train"]).drop("timestamp_local").write_parquet(train)
    assert main(["tune", str(train), "--model", str(tmp_path / "m"), "-q"]) == 1
    assert "'timestamp_local'" in _error_line(capsys)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("add_to_cart", pl.lit("yes"), "'add_to_cart' has dtype String"),
        ("partnumber", pl.col("partnumber") + 0.5, "'partnumber' holds"),
    ],
)
def test_wrongly_typed_columns_are_named(
    files, tmp_path, capsys, column, values, message
):
    train = tmp_path / "bad.parquet"
    pl.read_parquet(files["train"]).with_columns(values.alias(column)).write_parquet(
        train
    )
    assert main(["fit", str(train), "--model", str(tmp_path / "m"), "-q"]) == 1
    assert message in _error_line(capsys)


def test_events_without_session_id(files, model, tmp_path, capsys):
    events = tmp_path / "events.parquet"
    pl.read_parquet(files["test"]).drop("session_id").write_parquet(events)
    code = main(
        ["predict", str(model), str(events), "--output", str(tmp_path / "o.json"), "-q"]
    )
    assert code == 1
    line = _error_line(capsys)
    assert "'session_id'" in line and "--session-col" in line


def test_model_that_is_not_a_skals_model(files, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    pickled = tmp_path / "other.joblib"
    joblib.dump({"weights": [1, 2, 3]}, pickled)
    for path in (text, pickled, files["test"]):
        code = main(
            [
                "predict",
                str(path),
                str(files["test"]),
                "--output",
                str(tmp_path / "o.json"),
                "-q",
            ]
        )
        assert code == 1
        line = _error_line(capsys)
        if path == pickled:
            assert "is a pickle" in line and "--allow-pickle" in line
        else:
            assert "is not a skals model" in line


@PRINTED
def test_model_of_another_version_warns(files, model, tmp_path, capsys):
    old = tmp_path / "old.joblib"
    with zipfile.ZipFile(model) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    header = json.loads(members["skals.json"])
    members["skals.json"] = json.dumps({**header, "skals_version": "0.0.1"}).encode()
    with zipfile.ZipFile(old, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    out = tmp_path / "pred.json"
    assert (
        main(["predict", str(old), str(files["test"]), "--output", str(out), "-q"]) == 0
    )
    err = capsys.readouterr().err
    assert err.startswith("skals: warning: ") and "saved by skals 0.0.1" in err
    _check_target(out, files["sessions"], k=5)


def test_k_larger_than_the_catalogue(files, model, tmp_path, capsys):
    k = str(files["n_items"] + 1)
    args = [
        "predict",
        str(model),
        str(files["test"]),
        "--output",
        str(tmp_path / "o.json"),
        "-k",
        k,
    ]
    assert main([*args, "-q"]) == 1
    assert "more items than the model knows" in _error_line(capsys)


def test_bad_grid_and_bad_hyperparameter(files, tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"factorz": [8]}))
    args = [
        "tune",
        str(files["train"]),
        "--model",
        str(tmp_path / "m"),
        "-q",
        "--grid",
        str(grid),
    ]
    assert main(args) == 1
    assert "unknown parameter 'factorz'" in _error_line(capsys)
    grid.write_text("{not json")
    assert main(args) == 1
    assert "cannot read grid file" in _error_line(capsys)
    code = main(
        [
            "fit",
            str(files["train"]),
            "--model",
            str(tmp_path / "m"),
            "-q",
            "--factors",
            "0",
        ]
    )
    assert code == 1
    assert "'factors'" in _error_line(capsys)


def test_unwritable_output_fails_before_the_work(files, model, tmp_path, capsys):
    nowhere = tmp_path / "no" / "such" / "dir"
    code = main(["fit", str(files["train"]), "--model", str(nowhere / "m"), "-q"])
    assert code == 1
    assert "its directory does not exist" in _error_line(capsys)
    args = ["predict", str(model), str(files["test"]), "--output", str(tmp_path)]
    assert main([*args, "-q"]) == 1
    assert "is a directory" in _error_line(capsys)


def test_ambiguous_short_parameter_name(files, tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"session_col": ["a", "b"]}))
    args = [
        "tune",
        str(files["train"]),
        "--model",
        str(tmp_path / "m"),
        "-q",
        "--grid",
        str(grid),
    ]
    assert main(args) == 1
    assert "ambiguous parameter 'session_col'" in _error_line(capsys)


def test_json_given_as_a_table_is_a_short_error(tmp_path, capsys):
    # a predictions file passed as TRAIN: once 30 KB of its content as
    # "column names" in the error line
    pred = tmp_path / "predictions.json"
    pred.write_text(json.dumps({"target": {str(i): [1, 2, 3] for i in range(3000)}}))
    assert main(["fit", str(pred), "--model", str(tmp_path / "m"), "-q"]) == 1
    line = _error_line(capsys)
    assert "looks like JSON, not a table" in line and len(line) < 200
    # a CSV whose header is not the log's: the columns are listed, shortened
    odd = tmp_path / "odd.csv"
    odd.write_text(",".join(f"column_{i}_" + "x" * 60 for i in range(500)) + "\n")
    assert main(["fit", str(odd), "--model", str(tmp_path / "m"), "-q"]) == 1
    line = _error_line(capsys)
    assert "has no column(s) 'session_id'" in line and "and 492 more" in line
    assert len(line) < 1_000


def test_default_grid_follows_the_hyperparameter_guide():
    from skals.cli._parser import DEFAULT_GRID

    # docs/hyperparameters.rst: search regularization 0.001 to 10, factors
    # 16 to 256, cart_weight 1 to 50; the grid brackets the library default
    assert all(0.001 <= r <= 10 for r in DEFAULT_GRID["regularization"])
    assert all(16 <= f <= 256 for f in DEFAULT_GRID["factors"])
    assert all(1 <= w <= 50 for w in DEFAULT_GRID["cart_weight"])
    default = skals.ImplicitALSRecommender().regularization
    assert min(DEFAULT_GRID["regularization"]) < default
    assert default < max(DEFAULT_GRID["regularization"])
    # and --help says so
    assert main(["tune", "--help"]) == 0


def test_tune_n_jobs_gives_the_same_search(files, tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"factors": [4, 8], "regularization": [0.01, 1.0]}))
    saved = {}
    for jobs in ("1", "2"):
        model = tmp_path / f"m{jobs}.joblib"
        args = ["tune", str(files["train"]), "--model", str(model), "--grid"]
        args += [str(grid), "--iterations", "2", "--num-threads", "1"]
        assert main([*args, "--n-jobs", jobs, "--random-state", "0", "-q"]) == 0
        saved[jobs] = _saved(model)
        out = capsys.readouterr().out
        assert out.count("\n") > 4  # the cv table
    assert saved["1"]["best_params"] == saved["2"]["best_params"]
    assert saved["1"]["best_score"] == saved["2"]["best_score"]
    assert main(["tune", "x", "--model", "m", "--n-jobs", "0"]) == 2


def test_predict_reads_a_pipeline_saved_in_python_and_back(files, tmp_path):
    train = pl.read_parquet(files["train"])
    test = pl.read_parquet(files["test"])
    # tuned in Python at key grain, saved with skals.save
    pipe = make_pipeline(
        skals.PseudoUserUnifier(),
        skals.ConfidenceEncoder(),
        skals.InteractionMatrixBuilder(),
        skals.ImplicitALSRecommender(factors=8, iterations=3, random_state=0),
    ).fit(train)
    skals.save(pipe, tmp_path / "py.joblib")
    out = tmp_path / "pred.json"
    args = ["predict", str(tmp_path / "py.joblib"), str(files["test"]), "-q"]
    assert main([*args, "--output", str(out)]) == 0
    target = _check_target(out, files["sessions"], k=5)
    assert target == skals.io.recommend_sessions(pipe, test, k=5)
    # and a `skals fit` model is an ordinary pipeline in Python
    model = tmp_path / "cli.joblib"
    assert main(["fit", str(files["train"]), "--model", str(model), "-q", *FAST]) == 0
    loaded = skals.load(model)
    assert loaded.get_params()["implicitalsrecommender__factors"] == 8
    recs = loaded.predict(test)
    assert recs["session_id"].n_unique() == len(files["sessions"])


@pytest.mark.parametrize(
    "code",
    [
        "import skals",
        "from skals.cli import main; main(['--help'])",
        "from skals.cli import main; main(['--version'])",
    ],
)
def test_import_and_help_load_no_heavy_dependency(code):
    heavy = ("polars", "sklearn", "implicit", "numpy", "scipy", "joblib")
    probe = f"import sys\n{code}\nprint([m for m in {heavy!r} if m in sys.modules])"
    # from the directory that holds the skals under test
    root = Path(skals.__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_lazy_top_level_names_are_the_modules_objects():
    import skals.recommender

    assert skals.ImplicitALSRecommender is skals.recommender.ImplicitALSRecommender
    assert skals.save is skals.io.save and skals.load is skals.io.load
    assert set(skals.__all__) <= set(dir(skals))
    for name in skals.__all__:
        assert getattr(skals, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        skals.nope  # noqa: B018


# ---------------------------------------------- outputs that are inputs (19)
@pytest.mark.parametrize("link", [False, True])
def test_output_that_is_an_input_is_refused_before_any_work(
    files, model, tmp_path, capsys, link
):
    train = tmp_path / "train.parquet"
    train.write_bytes(files["train"].read_bytes())
    before = train.read_bytes()
    same = tmp_path / "alias.parquet"
    if link:
        same.symlink_to(train)
    else:
        same = train
    assert main(["fit", str(train), "--model", str(same), "-q", *FAST]) == 1
    assert "is the same file as TRAIN" in _error_line(capsys)
    assert main(["tune", str(train), "--model", str(same), "-q", *FAST]) == 1
    assert "is the same file as TRAIN" in _error_line(capsys)
    grid = tmp_path / "grid.json"
    grid.write_text('{"factors": [4]}')
    code = main(["tune", str(train), "--model", str(grid), "--grid", str(grid), "-q"])
    assert code == 1 and "is the same file as grid" in _error_line(capsys)
    assert train.read_bytes() == before and grid.read_text() == '{"factors": [4]}'

    mod = tmp_path / "m.joblib"
    mod.write_bytes(model.read_bytes())
    alias = tmp_path / "m-alias"
    if link:
        alias.symlink_to(mod)
    else:
        alias = mod
    for output, what in ((alias, "MODEL"), (train, "EVENTS")):
        code = main(["predict", str(mod), str(train), "--output", str(output), "-q"])
        assert code == 1 and f"is the same file as {what}" in _error_line(capsys)
    assert mod.read_bytes() == model.read_bytes() and train.read_bytes() == before


def test_replacing_another_existing_file_is_said_in_one_line(
    files, model, tmp_path, capsys
):
    out = tmp_path / "p.json"
    out.write_text("old")
    args = ["predict", str(model), str(files["test"]), "--output", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("exists: it will be replaced") == 1
    _check_target(out, files["sessions"], k=5)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------- ids read exactly (19)
def test_csv_ids_with_leading_zeros_come_back_as_written(tmp_path, capsys):
    events = make_sessions(400, n_items=40, random_state=2)
    as_text = events.with_columns(
        pl.format("00{}", pl.col("session_id")).alias("session_id"),
        pl.format("0{}", pl.col("partnumber")).alias("partnumber"),
        pl.when(pl.col("user_id").is_not_null())
        .then(pl.format("000{}", pl.col("user_id").cast(pl.Int64)))
        .alias("user_id"),
    )
    train_idx, test_idx = next(SessionHoldoutSplit(1, test_size=0.2).split(as_text))
    train, test = as_text[train_idx], as_text[test_idx].drop("add_to_cart")
    train.write_csv(tmp_path / "train.csv")
    test.write_csv(tmp_path / "test.csv")
    model, out = tmp_path / "m.skals", tmp_path / "p.json"
    assert main(["fit", str(tmp_path / "train.csv"), "--model", str(model), "-q"]) == 0
    args = ["predict", str(model), str(tmp_path / "test.csv"), "--output", str(out)]
    assert main([*args, "-q"]) == 0
    target = json.loads(out.read_text())["target"]
    assert set(target) == set(test["session_id"].to_list())
    items = set(train["partnumber"].to_list())
    assert all(isinstance(i, str) and i in items for v in target.values() for i in v)
    # the fitted vocabulary holds the ids as written
    fitted = skals.load(model)
    assert fitted.steps[-1][1].item_ids_.dtype == pl.String


@PRINTED
def test_predict_reads_a_01x_pickle_only_with_allow_pickle(
    files, model, tmp_path, capsys
):
    old = tmp_path / "old.joblib"
    saved = _saved(model)
    joblib.dump(
        {
            "format": "skals-model",
            "format_version": 1,
            "skals_version": __version__,
            "columns": saved["columns"],
            "pipeline": saved["pipeline"],
        },
        old,
    )
    out = tmp_path / "p.json"
    args = ["predict", str(old), str(files["test"]), "--output", str(out), "-q"]
    assert main(args) == 1
    line = _error_line(capsys)
    assert "is a pickle" in line and "--allow-pickle" in line
    assert not out.exists()
    assert main([*args, "--allow-pickle"]) == 0
    assert "unpickling runs whatever code" in capsys.readouterr().err
    _check_target(out, files["sessions"], k=5)


def test_csv_ids_that_match_only_after_a_cast_are_an_error(
    files, model, tmp_path, capsys
):
    # model fitted on the parquet's integer ids, events given as CSV (strings)
    test_csv = tmp_path / "test.csv"
    pl.read_parquet(files["test"]).write_csv(test_csv)
    out = tmp_path / "p.json"
    args = ["predict", str(model), str(test_csv), "--output", str(out), "-q"]
    assert main(args) == 1
    line = _error_line(capsys)
    assert "String here and Int64 at fit" in line and "cast(pl.Int64)" in line
    assert not out.exists()


def test_carts_recipe_ranks_the_sessions_items_by_count_then_knns():
    from skals.cli._commands import recommender
    from skals.recommender import make_cart_blend

    # the CLI's --recommender carts is the library's recipe
    assert str(recommender("carts").get_params()) == str(make_cart_blend().get_params())

    X = np.array(
        [
            [1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0],
            [0, 1, 0, 1, 1],
            [0, 0, 1, 1, 1],
            [1, 0, 0, 0, 1],
            [0, 1, 1, 0, 0],
        ]
    )
    model = make_cart_blend().set_params(k=4).fit(X)
    knn = skals.SessionKNNRecommender(k=5).fit(X)
    for query, own in (([0, 1, 0, 3, 0], [3, 1]), ([0, 3, 0, 1, 0], [1, 3])):
        got = model.predict(np.array([query]))[0].tolist()
        # the session's items, most seen first, then kNN's other items in order
        others = [i for i in knn.predict(np.array([query]))[0] if i not in own]
        assert got == own + others[:2]
