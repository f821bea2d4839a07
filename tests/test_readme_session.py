"""A new user's script, written from the README alone.

Their log has its own column names. Following the README's example, they fit
the recommended session model (the blend of ALS, session-kNN and repeat,
from a ``Schema``) with the session-grain factory, tune its weights with the
README's protocol, and use the answers: the ``source`` column,
``similar_items`` and ``skals.recommend``. Small sizes keep it quick; the
code is the README's.
"""

import warnings
from pathlib import Path

import pytest
from sklearn.model_selection import GridSearchCV

import skals
from skals import (
    BlendRecommender,
    Schema,
    SessionHoldoutSplit,
    make_recommender_pipeline,
)
from skals.datasets import make_sessions
from skals.metrics import make_session_scorer

README = Path(__file__).resolve().parents[1] / "README.md"
RENAME = {
    "session_id": "visit",
    "user_id": "customer",
    "partnumber": "sku",
    "add_to_cart": "carted",
    "timestamp_local": "ts",
}


def test_the_readme_shows_this_script():
    text = README.read_text(encoding="utf-8")
    for line in (
        'blend = BlendRecommender(random_state=0, memory="skals-cache")',
        "pipe = make_recommender_pipeline(blend, schema=schema)",
        '        "blendrecommender__weights": [\n            "auto",\n'
        "            [1, 3, 2, 0],\n"
        "            [1, 1, 1, 1],\n"
        "            [0, 3, 2, 1],\n",
        'scoring=make_session_scorer(["ndcg", "precision"], schema=schema),',
        "cv=SessionHoldoutSplit(n_splits=2, test_size=2_000, schema=schema),",
        "skals.recommend(best, session_id=[17, 42])",
        "best[-1].similar_items([item], k=10)",
    ):
        assert line in text, line
    # the weights in the CLI's order (ALS, kNN, repeat, SR), as the README says
    assert "in the order (ALS, kNN, repeat, SR)" in text
    from skals.cli._options import RECOMMENDERS

    assert "ALS + session-kNN + repeat + sequential rules" in RECOMMENDERS["blend"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    events = make_sessions(n_sessions=2_000, n_items=300, random_state=0)
    events = events.rename(RENAME)  # the user's own log
    schema = Schema(
        session="visit", user="customer", item="sku", cart="carted", time="ts"
    )
    # the README's recipe; a smaller ALS keeps the test quick
    blend = BlendRecommender(
        random_state=0, memory=str(tmp_path_factory.mktemp("skals-cache"))
    ).set_params(als__factors=16, als__iterations=5)
    pipe = make_recommender_pipeline(blend, schema=schema)
    search = GridSearchCV(
        pipe,
        {
            "blendrecommender__weights": [
                "auto",
                [1, 3, 2, 0],
                [1, 1, 1, 1],
                [0, 3, 2, 1],
            ]
        },
        scoring=make_session_scorer(["ndcg", "precision"], schema=schema),
        refit="ndcg@5",
        cv=SessionHoldoutSplit(n_splits=2, test_size=200, schema=schema),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unseen held-out items
        search.fit(events)
    best = search.best_estimator_
    recs = best.predict(events.tail(300).drop("carted"))
    return events, search, best, recs


def test_fits_and_tunes_the_recommended_session_model(fitted):
    events, search, best, recs = fitted
    assert isinstance(best[-1], BlendRecommender)
    assert search.best_params_["blendrecommender__weights"] in (
        "auto",
        [1, 3, 2, 0],
        [1, 1, 1, 1],
        [0, 3, 2, 1],
    )
    assert 0 < search.best_score_ <= 1
    # one answer per session of the user's log, in the user's column names
    sessions = events.tail(300)["visit"].unique()
    assert recs.columns[:3] == ["visit", "recommendations", "scores"]
    assert recs.height == sessions.len()
    assert recs["recommendations"].list.len().min() == 5
    long = skals.to_long(recs)
    assert long.height == 5 * recs.height


def test_answers_say_their_source(fitted):
    _, _, _, recs = fitted
    assert "source" in recs.columns
    assert recs["source"].null_count() == 0
    assert recs["source"].n_unique() >= 1


def test_similar_items_of_the_blend(fitted):
    _, _, best, recs = fitted
    item = recs["recommendations"][0][0]
    similar = best[-1].similar_items([item], k=10)
    assert similar["sku"].to_list() == [item]
    (items,) = similar["similar_items"].to_list()
    assert len(items) == 10 and item not in items


def test_skals_recommend_by_the_users_own_ids(fitted):
    events, _, best, recs = fitted
    train_sessions = events["visit"].unique().sort()[:2].to_list()
    by_session = skals.recommend(best, session_id=train_sessions)
    assert by_session.height == 2
    assert "source" in by_session.columns
    assert (by_session["source"] != "fallback").all()
    user = events["customer"].drop_nulls()[0]
    by_user = skals.recommend(best, user_id=user)
    assert by_user.height == 1
    assert by_user["recommendations"].list.len()[0] == 5
    new = events.tail(5).drop("carted")
    folded = skals.recommend(best, events=new)
    # events alone: one request per session, in the order of first events
    assert (
        folded["visit"].to_list() == new["visit"].unique(maintain_order=True).to_list()
    )
    assert folded["source"].null_count() == 0
