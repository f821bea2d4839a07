"""`make demo`, as the README tells a new user to run it: it explains every
row of its table and saves the model that won it."""

import json

import skals
from skals.cli import main
from skals.cli._report import DEMO_ROWS, demo_winner


def test_demo_saves_the_winner_of_its_table_and_explains_each_row(tmp_path, capsys):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"factors": [8], "iterations": [3]}))
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--n-sessions", "1500", "--grid", str(grid)]
    assert main([*args, "-q"]) == 0
    stdout = capsys.readouterr().out
    lines = stdout.splitlines()
    ndcg = {
        label: float(line[len(label) :].split()[0])
        for line in lines
        for label in DEMO_ROWS
        if line.startswith(label)
    }
    assert list(ndcg) == list(DEMO_ROWS)  # every row of the table is explained
    for label, text in DEMO_ROWS.items():
        explained = label.split() + text.split()
        assert any(ln.split() == explained for ln in lines), label
    best = max(ndcg.values())
    pipe, info = skals.load(out / "model.skals", return_metadata=True)
    assert info["winner"] in DEMO_ROWS
    assert ndcg[info["winner"]] == best  # as printed, to 4 decimals
    assert f"wrote {out / 'model.skals'}: {info['winner']!r}" in stdout
    target = json.loads((out / "predictions.json").read_text())["target"]
    assert len(target) == 150
    assert type(pipe[-1]).__name__ in {
        "ImplicitALSRecommender",
        "SessionKNNRecommender",
        "RepeatRecommender",
        "BlendRecommender",
        "RerankRecommender",
        "PopularityRecommender",
    }


def test_demo_winner_is_the_best_mean_and_the_first_among_ties():
    import polars as pl

    scores = {
        "a": pl.DataFrame({"ndcg@5": [0.25, 0.25]}),
        "b": pl.DataFrame({"ndcg@5": [0.5, 0.0]}),
        "c": pl.DataFrame({"ndcg@5": [0.2, 0.2]}),
    }
    assert demo_winner(scores, "ndcg@5") == "a"
    scores["c"] = pl.DataFrame({"ndcg@5": [0.5, 0.5]})
    assert demo_winner(scores, "ndcg@5") == "c"
