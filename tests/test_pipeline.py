"""The README example, verbatim, and the scikit-learn habits it relies on."""

import pickle
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

import skals

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_example() -> str:
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (example,) = [b for b in blocks if "GridSearchCV" in b]
    return example


@pytest.mark.slow
def test_readme_example_runs_as_written():
    code = _readme_example()
    assert "n_jobs=2" in code
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    search, recs = namespace["search"], namespace["recs"]
    assert 0 < search.best_score_ <= 1
    assert set(search.best_params_) == {
        "confidenceencoder__cart_weight",
        "implicitalsrecommender__factors",
        "implicitalsrecommender__regularization",
    }
    assert isinstance(recs, pl.DataFrame)
    assert recs.columns == ["session_id", "recommendations", "scores", "source"]
    assert (recs["recommendations"].list.len() == 5).all()
    # the session protocol, not the top-k overlap of returning users: the
    # score is the held-out sessions' NDCG@5 on their cart adds
    assert search.scorer_.relevance == "cart" and search.scorer_.k == 5


COMPONENTS = [
    skals.PseudoUserUnifier(output_col="key"),
    skals.ConfidenceEncoder(cart_weight=3.0, grain="session"),
    skals.InteractionMatrixBuilder(segment_col="country"),
    skals.ImplicitALSRecommender(factors=7, k=3, random_state=2),
    skals.PopularityRecommender(by="cart", k=4),
]


@pytest.mark.parametrize("est", COMPONENTS, ids=lambda e: type(e).__name__)
def test_clone_get_set_params(est):
    params = est.get_params()
    other = clone(est)
    assert other is not est
    assert other.get_params() == params
    key = sorted(params)[-1]
    other.set_params(**{key: "changed"})
    assert other.get_params()[key] == "changed"
    assert est.get_params()[key] == params[key]
    assert pickle.loads(pickle.dumps(est)).get_params() == params


def test_set_params_reaches_the_steps():
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(
        skals.PseudoUserUnifier(),
        skals.ConfidenceEncoder(),
        skals.InteractionMatrixBuilder(),
        skals.ImplicitALSRecommender(),
    )
    pipe.set_params(
        confidenceencoder__cart_weight=20, implicitalsrecommender__factors=np.int64(9)
    )
    assert pipe[1].cart_weight == 20
    assert pipe[-1].factors == 9
