"""The README example, verbatim, and the scikit-learn habits it relies on."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

import skals

# The README's example (the recommended session model, tuned) runs in
# tests/test_readme_session.py, on a renamed-column log at a smaller size.


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
