"""What a model that knew how the log was generated reaches on cart adds.

Usage::

    python benchmarks/cart_oracle.py [--datasets challenge,default,sequential]
        [--n-sessions 20000] [--seed 0] [--sims 16000]
        [--know taste,depth]

On the held-out sessions of ``benchmarks/session_quality.py`` (the last 20%
by time, first 3 events revealed, items carted anywhere in the session
relevant: the challenge's protocol and the goal of issue 22), the log is
generated again with the state a model never sees (``make_sessions``'
private ``_generate``): the true popularity tables of every country and
day, every item's taste, the successor cycles, the cart odds of each kind
of event, and which revealed events are re-views. From that state the rest
of each session, and the hidden cart flags of its revealed events, are
simulated ``--sims`` times, and the items are ranked by their expected
gain ``E[relevant / IDCG]``, which maximises the expected NDCG@5 given
what the oracle knows (by the rearrangement inequality).

What the oracle does not know, unless ``--know`` names it: the session's
taste (it takes the posterior over tastes given the revealed items and the
true tables; a logged-in session's true taste, as a user's history could
tell it) and its number of events (the generator's law, given the revealed
count). A model knows less than the oracle (it estimates the tables from
the training log, sees no re-view flag and no taste), so in expectation no
model ranks better: the printed NDCG@5 bounds what any model can reach on
that split, up to the simulation's noise, which only lowers the oracle
(rerun with more ``--sims`` to see it converge).
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np
import polars as pl
from session_quality import CHALLENGE

from skals.datasets import make_sessions
from skals.datasets._sessions import (
    _N_SUCCESSORS,
    _generate,
    _session_depths,
)
from skals.metrics import ndcg_at_k
from skals.model_selection import SessionHoldoutSplit, reveal_first_n

N_REVEALED, K = 3, 5

#: make_sessions' parameters and defaults (the simulation reads some).
DEFAULTS = {
    name: param.default
    for name, param in inspect.signature(make_sessions).parameters.items()
    if name not in ("n_sessions", "random_state")
}

DATASETS = {
    "default": {},
    "sequential": {"sequential_strength": 0.5},
    "challenge": CHALLENGE,
}


def generate(n_sessions, seed, params):
    """``make_sessions(n_sessions, random_state=seed, **params)`` and its state."""
    return _generate(n_sessions=n_sessions, random_state=seed, **{**DEFAULTS, **params})


class Oracle:
    """Simulates the rest of a session from the generator's state."""

    def __init__(self, state, params, know, rng):
        self.s, self.know, self.rng = state, know, rng
        p = {**DEFAULTS, **params}
        self.n_items, self.repeat = p["n_items"], p["repeat_rate"]
        self.taste_p, self.seq = p["taste_strength"], p["sequential_strength"]
        self.max_len = p["max_session_length"]
        # each item's slot in the by-taste layout of the tables
        self.slot = np.empty(self.n_items, dtype=np.int64)
        self.slot[state["by_taste"]] = np.arange(self.n_items)
        disc = 1 / np.log2(np.arange(2, K + 2))
        n = np.arange(self.max_len + 1)
        self.idcg = np.concatenate([[np.inf], np.cumsum(disc)])[np.minimum(n, K)]

    def weight(self, table, items):
        """Each item's draw probability in ``table`` (a table sums to 1)."""
        at = table * self.n_items + self.slot[items]
        return self.s["cum0"][at + 1] - self.s["cum0"][at]

    def taste_posterior(self, sid, revealed, new):
        """P(taste | the revealed new views), or the true taste."""
        s = self.s
        true = s["taste"][sid]
        if "taste" in self.know or s["logged_in"][sid]:
            post = np.zeros(s["taste_bounds"].size - 1)
            post[true] = 1.0
            return post
        bounds, item_taste = s["taste_bounds"], s["item_taste"]
        table = s["table"][sid]
        base = table * self.n_items
        mass = s["cum0"][base + bounds[1:]] - s["cum0"][base + bounds[:-1]]
        log_post = np.zeros(mass.size)
        for p, (item, fresh) in enumerate(zip(revealed, new, strict=True)):
            if not fresh:  # a re-view says nothing of the taste
                continue
            w = self.weight(table, np.array([item]))[0]
            # a new view: the taste's draw, the global draw or a step
            like = np.full(mass.size, (1 - self.taste_p) * w)
            t = item_taste[item]
            like[t] += self.taste_p * w / mass[t]
            seq = self.seq if p > 0 else 0.0
            step = float(item in s["successors"][revealed[p - 1]]) if seq else 0.0
            log_post += np.log((1 - seq) * like + seq * step / _N_SUCCESSORS)
        post = np.exp(log_post - log_post.max())
        return post / post.sum()

    def depths(self, depth, n):
        """The number of events of ``n`` simulated copies of the session."""
        if "depth" in self.know or depth < N_REVEALED:
            return np.full(n, depth)  # a short context tells its length
        out = np.empty(0, dtype=np.int64)
        while out.size < n:
            more = _session_depths(self.rng, 4 * n, self.max_len)
            out = np.concatenate([out, more[more >= N_REVEALED]])
        return out[:n]

    def answer(self, sid, n_sims):
        """The top 5 item indices by expected gain for session ``sid``."""
        s, rng, n_items = self.s, self.rng, self.n_items
        f, depth = int(s["first"][sid]), int(s["depth"][sid])
        r = min(N_REVEALED, depth)
        revealed, new_r = s["item"][f : f + r], s["is_new"][f : f + r]
        post = self.taste_posterior(sid, revealed, new_r)
        taste = rng.choice(post.size, size=n_sims, p=post)
        # longest copies first: position p simulates only the live prefix
        d_sim = np.sort(self.depths(depth, n_sims))[::-1]
        d = int(d_sim[0])
        live = np.searchsorted(-d_sim, -np.arange(d), side="left")
        items = np.zeros((n_sims, d), dtype=np.int64)
        new = np.zeros((n_sims, d), dtype=bool)
        items[:, :r], new[:, :r] = revealed, new_r
        bounds, cum, cum0 = s["taste_bounds"], s["cum"], s["cum0"]
        base = s["table"][sid] * n_items
        for p in range(r, d):
            m = int(live[p])  # copies with more than p events
            fresh = rng.random(m) >= self.repeat
            again = items[np.arange(m), (rng.random(m) * p).astype(np.int64)]
            in_taste = rng.random(m) < self.taste_p
            t = taste[:m]
            lo = base + np.where(in_taste, bounds[t], 0)
            hi = base + np.where(in_taste, bounds[t + 1], n_items)
            draw = cum0[lo] + rng.random(m) * (cum0[hi] - cum0[lo])
            slot = np.clip(np.searchsorted(cum, draw, side="right"), lo, hi - 1)
            drawn = s["by_taste"][slot - base]
            if self.seq > 0:
                step = rng.random(m) < self.seq
                nxt = s["successors"][
                    items[:m, p - 1], rng.integers(_N_SUCCESSORS, size=m)
                ]
                drawn = np.where(step, nxt, drawn)
            items[:m, p] = np.where(fresh, drawn, again)
            new[:m, p] = fresh
        kind = 2 * (~new) + (s["item_taste"][items] != taste[:, None])
        alive = np.arange(d)[None, :] < d_sim[:, None]
        carted = (rng.random((n_sims, d)) < s["p_cart"][kind]) & alive
        sim, col = np.nonzero(carted)
        pairs = np.unique(np.stack([sim, items[sim, col]], axis=1), axis=0)
        n_rel = np.bincount(pairs[:, 0], minlength=n_sims)
        gain = np.bincount(
            pairs[:, 1], weights=1 / self.idcg[n_rel[pairs[:, 0]]], minlength=n_items
        )
        top = np.argsort(-gain, kind="stable")[:K]
        return top[gain[top] > 0]


def bound(name, n_sessions, seed, n_sims, know):
    params = DATASETS[name]
    df, state = generate(n_sessions, seed, params)
    logged = df.group_by("session_id").agg(pl.col("user_id").is_not_null().any())
    state["logged_in"] = np.zeros(state["depth"].size, dtype=bool)
    state["logged_in"][logged["session_id"].to_numpy() - 1] = logged["user_id"]
    _, test = next(SessionHoldoutSplit(n_splits=1, test_size=0.2).split(df))
    _, truth = reveal_first_n(df[test], N_REVEALED, relevance="cart")
    oracle = Oracle(state, params, know, np.random.default_rng(seed))
    t0 = time.perf_counter()
    answers = [
        (oracle.answer(sid - 1, n_sims) + 1).tolist()  # partnumber = item + 1
        for sid in truth["session_id"].to_numpy()
    ]
    score = ndcg_at_k(truth["relevant"].to_list(), answers, k=K)
    print(
        f"{name}: {truth.height} sessions with a cart add, {n_sims} simulations "
        f"each, knows {sorted(know) or 'tables only'}: oracle NDCG@5 {score:.4f} "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    return score


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="challenge,default,sequential")
    parser.add_argument("--n-sessions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sims", type=int, default=16_000)
    parser.add_argument(
        "--know", default="", help="also known: taste, depth (comma-separated)"
    )
    args = parser.parse_args(argv)
    know = {k for k in args.know.split(",") if k}
    for name in args.datasets.split(","):
        bound(name, args.n_sessions, args.seed, args.sims, know)


if __name__ == "__main__":
    main()
