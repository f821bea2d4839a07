"""skals.recommender._topk.topk: the same answers as implicit's kernel.

Parity with ``implicit.cpu.topk.topk`` (ids and score bits) on random
factors, with each filter, and with a literal heap loop on integer factors,
where most scores tie.
"""

import heapq

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.topk import topk as implicit_topk
from numpy.testing import assert_array_equal

from skals.recommender import _topk
from skals.recommender._topk import topk

FLT_MIN = np.finfo(np.float32).min


@pytest.fixture(params=["one block", "many blocks"])
def blocks(request, monkeypatch):
    """The default blocking, or blocks of 16 rows with a 40-column bound."""
    if request.param == "many blocks":
        monkeypatch.setattr(_topk, "BLOCK_BYTES", 1)
        monkeypatch.setattr(_topk, "SAMPLE", 40)
        monkeypatch.setattr(_topk, "SAMPLE_PER_K", 2)
    return request.param


def factors(n_rows, n_items, n_factors=8, seed=0, integers=False):
    rng = np.random.default_rng(seed)
    if integers:  # exact products: most scores tie
        users = rng.integers(-2, 3, size=(n_rows, n_factors))
        items = rng.integers(-1, 2, size=(n_items, n_factors))
        return users.astype(np.float32), items.astype(np.float32)
    users = rng.normal(size=(n_rows, n_factors)).astype(np.float32)
    items = rng.normal(size=(n_items, n_factors)).astype(np.float32)
    return users, items


def seen_matrix(n_rows, n_items, density=0.2, seed=1):
    m = sp.random(n_rows, n_items, density=density, random_state=seed, format="csr")
    m.data[:] = 1
    return m.astype(np.float32)


def implicit_answers(users, items, k, exclude=None, banned=None):
    """implicit's kernel with skals' padding: filtered places -> -1, -inf."""
    k_eff = min(k, items.shape[0])
    ids = np.full((users.shape[0], k), -1, dtype=np.int64)
    scores = np.full((users.shape[0], k), -np.inf, dtype=np.float32)
    got_ids, got_scores = implicit_topk(
        items,
        users,
        k_eff,
        filter_query_items=exclude,
        filter_items=None if banned is None else np.asarray(banned, np.int32),
    )
    real = got_scores > FLT_MIN
    ids[:, :k_eff][real] = got_ids[real]
    scores[:, :k_eff][real] = got_scores[real]
    return ids, scores, real.sum(axis=1)


def heap_answers(scores, k, eligible):
    """implicit's selection, literally: columns in order, a min-heap of
    (score, column) pairs, admitted only if strictly above the heap's
    smallest score; sorted by score then column, both descending."""
    n_rows = scores.shape[0]
    ids = np.full((n_rows, k), -1, dtype=np.int64)
    out = np.full((n_rows, k), -np.inf, dtype=np.float32)
    for i in range(n_rows):
        heap = []
        for j in range(scores.shape[1]):
            s = scores[i, j] if eligible[i, j] else FLT_MIN
            if len(heap) < k:
                heapq.heappush(heap, (s, j))
            elif s > heap[0][0]:
                heapq.heapreplace(heap, (s, j))
        best = [(s, j) for s, j in sorted(heap, reverse=True) if s > FLT_MIN]
        for place, (s, j) in enumerate(best):
            ids[i, place], out[i, place] = j, s
    return ids, out


def assert_same(got, want):
    assert_array_equal(got[0], want[0])
    assert got[1].tobytes() == want[1].tobytes()  # bit for bit
    assert_array_equal(got[2], want[2])


@pytest.mark.parametrize("k", [1, 5, 37])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_unfiltered_matches_implicit(blocks, k, num_threads):
    users, items = factors(300, 500)
    got = topk(users, items, k, num_threads=num_threads)
    assert_same(got, implicit_answers(users, items, k))


@pytest.mark.parametrize("k", [1, 5, 37])
def test_exclude_matches_implicit(blocks, k):
    users, items = factors(300, 500, seed=2)
    seen = seen_matrix(300, 500)
    seen.data[seen.indptr[7] : seen.indptr[8]] = 0  # stored zeros exclude too
    got = topk(users, items, k, exclude=seen)
    assert_same(got, implicit_answers(users, items, k, exclude=seen))
    assert not np.isin(got[0][7], seen[7].indices).any()


def test_banned_matches_implicit(blocks):
    users, items = factors(200, 300, seed=3)
    banned = np.array([0, 5, 5, 17, 299])  # unsorted duplicates are fine
    got = topk(users, items, 5, banned=banned)
    assert_same(got, implicit_answers(users, items, 5, banned=np.unique(banned)))


def test_banned_best_items_are_not_the_bound(blocks):
    """Banning the items of largest norm (the bound's columns otherwise)
    leaves the answers exact, and the bound is read from other columns, so
    rows keep a handful of candidates rather than every item."""
    users, items = factors(200, 600, seed=12)
    banned = np.argsort(-np.linalg.norm(items, axis=1))[:300]
    got = topk(users, items, 5, banned=banned)
    assert_same(got, implicit_answers(users, items, 5, banned=np.sort(banned)))
    cols = _topk._bound_columns(items, 5, np.sort(banned))
    if blocks == "many blocks":
        assert cols.size == 40 and not np.isin(cols, banned).any()
    else:  # 256 of the 300 eligible: the whole row is partitioned
        assert cols is None


def test_allowed_matches_implicit_on_the_allowed_items(blocks):
    users, items = factors(200, 300, seed=4)
    allowed = np.sort(np.random.default_rng(0).choice(300, 120, replace=False))
    seen = seen_matrix(200, 300, seed=5)
    banned = allowed[::7]
    got = topk(users, items, 5, exclude=seen, banned=banned, allowed=allowed)
    want = implicit_answers(
        users,
        np.ascontiguousarray(items[allowed]),
        5,
        exclude=seen[:, allowed].tocsr(),
        banned=np.flatnonzero(np.isin(allowed, banned)),
    )
    real = want[0] >= 0
    want[0][real] = allowed[want[0][real]]
    assert_same(got, want)


def test_k_larger_than_the_candidates_left(blocks):
    """Rows with fewer eligible items than k: the eligible ones, then -1."""
    users, items = factors(40, 30, seed=6)
    dense = seen_matrix(40, 30, density=0.6, seed=7).toarray()
    dense[3] = 1  # nothing left
    seen = sp.csr_matrix(dense)
    got = topk(users, items, 20, exclude=seen, banned=[1, 2])
    want = implicit_answers(users, items, 20, exclude=seen, banned=[1, 2])
    assert_same(got, want)
    dense[:, [1, 2]] = 1
    assert_array_equal(got[2], np.minimum(30 - dense.sum(axis=1), 20))
    assert (got[2] < 20).any()
    assert (got[0][3] == -1).all() and np.isneginf(got[1][3]).all()


def test_k_larger_than_the_items(blocks):
    users, items = factors(50, 7, seed=8)
    ids, scores, counts = topk(users, items, 10)
    want = implicit_answers(users, items, 10)
    assert_same((ids, scores, counts), want)
    assert (counts == 7).all() and (ids[:, 7:] == -1).all()
    assert_array_equal(np.sort(ids[:, :7], axis=1), np.tile(np.arange(7), (50, 1)))


def test_empty_inputs():
    users, items = factors(0, 20)
    ids, scores, counts = topk(users, items, 3)
    assert ids.shape == scores.shape == (0, 3) and counts.shape == (0,)
    users, items = factors(4, 20)
    ids, scores, counts = topk(users, items[:0], 3)
    assert (ids == -1).all() and np.isneginf(scores).all() and (counts == 0).all()
    ids, scores, counts = topk(users, items, 3, allowed=np.array([], dtype=np.int64))
    assert (ids == -1).all() and (counts == 0).all()


@pytest.mark.parametrize("k", [1, 3, 8, 25])
def test_ties_resolved_as_implicit_does(blocks, k):
    """Integer factors: exact scores, many ties at the k-th place."""
    users, items = factors(120, 90, n_factors=3, seed=9, integers=True)
    seen = seen_matrix(120, 90, density=0.1, seed=10)
    eligible = np.ones((120, 90), dtype=bool)
    for exclude in (None, seen):
        if exclude is not None:
            eligible = ~exclude.toarray().astype(bool)
        got = topk(users, items, k, exclude=exclude)
        want = implicit_answers(users, items, k, exclude=exclude)
        assert_same(got, want)
        heap = heap_answers(users @ items.T, k, eligible)
        assert_array_equal(got[0], heap[0])
        assert_array_equal(got[1], heap[1])


def test_ties_by_hand():
    """One row of scores 2, 1, 0 (integers): among the tied, implicit keeps
    the first columns while the heap is filling and evicts the lowest
    columns first; the answer lists ties by column, descending."""
    row = [2, 1, 1, 0, 0, 0, 0, 0, 0, 2, 1, 2, 1, 1, 2, 2, 1, 1, 1, 2]
    row += [0, 2, 2, 0, 1, 2, 1, 0, 2, 2]
    items = np.array(row, dtype=np.float32)[:, None]
    users = np.ones((1, 1), dtype=np.float32)
    twos = [29, 28, 25, 22, 21, 19, 15, 14, 11, 9, 0]
    assert topk(users, items, 3)[0][0].tolist() == [11, 9, 0]
    assert topk(users, items, 8)[0][0].tolist() == twos[3:]
    assert topk(users, items, 12)[0][0].tolist() == twos + [17]
    ones = [26, 24, 18, 17, 16, 13, 12, 10, 2, 1]
    zeros = [27, 23, 20, 8, 7, 6, 5, 4, 3]
    assert topk(users, items, 30)[0][0].tolist() == twos + ones + zeros
    for k in (3, 8, 12, 30):
        assert_array_equal(topk(users, items, k)[0], implicit_topk(items, users, k)[0])


def test_read_only_and_non_contiguous_factors():
    users, items = factors(64, 80, seed=11)
    want = implicit_answers(users, items, 5)
    u = np.asfortranarray(users)
    it = np.array(items)
    it.setflags(write=False)
    assert_same(topk(u, it, 5), want)
    wide = np.hstack([users, users])[:, :8]  # strided view
    assert_same(topk(wide, items, 5), want)


# ----------------------------------------------- sparse_topk (stored scores)
def _naive_sparse_topk(scores, k):
    """Per row: stored entries by score desc, then column asc; the first k."""
    m = sp.csr_matrix(scores)
    ids = np.full((m.shape[0], k), -1)
    vals = np.full((m.shape[0], k), -np.inf)
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        ranked = sorted(zip(-m.data[lo:hi], m.indices[lo:hi], strict=True))[:k]
        for j, (neg, col) in enumerate(ranked):
            ids[r, j], vals[r, j] = col, -neg
    return ids, vals, np.minimum(np.diff(m.indptr), k)


def _unsorted(m, rng):
    """``m`` with each row's stored entries in a random order."""
    m = sp.csr_matrix(m)
    order = np.concatenate(
        [
            rng.permutation(np.arange(m.indptr[r], m.indptr[r + 1]))
            for r in range(m.shape[0])
        ]
        + [np.zeros(0, dtype=np.int64)]
    ).astype(np.int64)
    out = sp.csr_matrix((m.data[order], m.indices[order], m.indptr), shape=m.shape)
    out.has_sorted_indices = False
    return out


@pytest.mark.parametrize("density", [0.02, 0.3, 0.95])
@pytest.mark.parametrize("k", [1, 3, 20])
def test_sparse_topk_matches_a_naive_sort(density, k):
    # ties (scores on a grid of quarters), a zero stored as an entry, rows
    # dense enough for the larger sample, and unsorted indices
    rng = np.random.default_rng(int(density * 100) + k)
    m = sp.random(40, 600, density=density, random_state=k, format="csr")
    m.data = np.round(m.data * 4) / 4
    scores = _unsorted(m, rng)
    before = (scores.indices.copy(), scores.data.copy())
    got = _topk.sparse_topk(scores, k)
    for g, e in zip(got, _naive_sparse_topk(m, k), strict=True):
        assert_array_equal(g, e)
    # the input is left as it was (its indices not sorted in place)
    assert_array_equal(scores.indices, before[0])
    assert_array_equal(scores.data, before[1])


def test_sparse_topk_exact_by_hand():
    scores = sp.csr_matrix(
        (np.array([0.5, 2.0, 0.5, 0.0, 1.0]), np.array([3, 1, 0, 2, 4]), [0, 4, 5, 5]),
        shape=(3, 5),
    )
    ids, vals, counts = _topk.sparse_topk(scores, 3)
    # row 0: 2.0 (col 1), then the tie 0.5 by column (0 before 3); row 1 has
    # one entry; row 2 none
    assert ids.tolist() == [[1, 0, 3], [4, -1, -1], [-1, -1, -1]]
    assert vals[0].tolist() == [2.0, 0.5, 0.5] and vals[1, 0] == 1.0
    assert counts.tolist() == [3, 1, 0]


@pytest.mark.parametrize("order", ["ascending", "descending"])
@pytest.mark.parametrize("k", [1, 5, 16])
def test_sparse_topk_rows_stored_in_value_order(order, k):
    # the bound's sample is spread over each row: rows whose storage order
    # follows their values (as a sparse product's can), of lengths around
    # the sample's size (64 here: a row of 64 is taken whole, longer ones
    # strided), with ties
    rng = np.random.default_rng(k)
    widths = [k + 1, 63, 64, 65, 128, 129, 700]
    rows, cols, vals = [], [], []
    for r, w in enumerate(widths):
        c = rng.choice(1000, size=w, replace=False)
        v = np.round(rng.random(w) * 8) / 8
        v = np.sort(v) if order == "ascending" else -np.sort(-v)
        rows += [r] * w
        cols += c.tolist()
        vals += v.tolist()
    indptr = np.concatenate([[0], np.cumsum(widths)])
    scores = sp.csr_matrix(
        (np.array(vals), np.array(cols), indptr), shape=(len(widths), 1000)
    )
    scores.has_sorted_indices = False
    for g, e in zip(
        _topk.sparse_topk(scores, k), _naive_sparse_topk(scores, k), strict=True
    ):
        assert_array_equal(g, e)
