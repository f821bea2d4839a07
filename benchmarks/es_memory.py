"""Where the moonshot's last-rung fit holds its memory (issue 21, item 2).

Usage::

    python benchmarks/es_memory.py [--scale full] [--tree DIR]
        [--columns all|schema] [--keep-best disk|memory]

Loads the scale's training log, gathers the first ``SessionHoldoutSplit``
fold as scikit-learn's ``_safe_indexing`` does, and fits
``benchmarks/tuning.py``'s early-stopped pipeline with the last rung's
candidate (cart weight 30, 128 factors, regularization 0.01) on it,
sampling the resident memory every 5 ms: one line per step (the
transformers, the first ALS fit, each later stage, each validation
scoring) with the resident size after it and the peak since the line
before, then the validation scores and the whole peak. ``--tree DIR``
measures the skals checked out in ``DIR`` (e.g. a worktree of an older
commit) with this script. ``--columns`` and ``--keep-best`` are
``tuning.py``'s ``--columns`` and ``EarlyStoppingPipeline(keep_best=...)``
(default: the moonshot's, ``all`` and ``disk``).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import threading
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
GB = 1024**3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="full")
    p.add_argument("--tree", default=str(HERE.parent))
    p.add_argument("--columns", choices=["all", "schema"], default="all")
    p.add_argument("--keep-best", choices=["disk", "memory"], default="disk")
    args = p.parse_args(argv)
    sys.path[:0] = [os.path.abspath(args.tree), str(HERE)]
    # skals first, from --tree: tuning.py puts this checkout first on the
    # path, but an imported package stays the one already imported
    importlib.import_module("skals")
    import tuning
    from _data import ensure
    from _tasks import maxrss, rss_now
    from sklearn.utils import _safe_indexing

    import skals.metrics._scorer as scorer
    import skals.model_selection._early_stopping as es
    import skals.recommender._als as als
    from skals.model_selection import SessionHoldoutSplit

    train_path, _ = ensure(args.scale)
    tuning.COLUMNS, tuning.KEEP_BEST = args.columns, args.keep_best
    events = tuning.read_log(train_path)
    loaded = rss_now()
    test_size = 1000 if args.scale == "tiny" else tuning.TEST_SIZE
    cv = SessionHoldoutSplit(n_splits=3, test_size=test_size)
    train, _ = next(cv.split(events))
    fold = _safe_indexing(events, train)
    del train
    import skals

    print(f"skals from {Path(skals.__file__).parent.parent}, {args}")
    print(f"loaded {loaded / GB:.2f} GB, with the fold's copy {rss_now() / GB:.2f} GB")
    pipe = tuning._early(15).set_params(
        implicitalsrecommender__factors=128,
        implicitalsrecommender__regularization=0.01,
        confidenceencoder__cart_weight=30.0,
    )
    peak = [0]

    def sample():
        while True:
            peak[0] = max(peak[0], rss_now())
            time.sleep(0.005)

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()

    def mark(name):
        print(
            f"{time.perf_counter() - t0:7.1f}s {name:28s} now {rss_now() / GB:6.2f} GB"
            f"  peak since the last line {peak[0] / GB:6.2f} GB",
            flush=True,
        )
        peak[0] = 0

    def after(owner, attr):
        if not hasattr(owner, attr):  # an older tree
            return
        f = getattr(owner, attr)

        @functools.wraps(f)
        def marked(*a, **k):
            try:
                return f(*a, **k)
            finally:
                mark(attr)

        setattr(owner, attr, marked)

    for name in ("_fit_transform_one", "_fit_transform_from"):
        after(es, name)
    after(scorer.SessionScorer, "__call__")
    after(als.ImplicitALSRecommender, "fit")
    after(als.ImplicitALSRecommender, "_more_sweeps")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "InteractionMatrixBuilder: dropped")
        pipe.fit(fold)
    seconds = time.perf_counter() - t0
    print(
        f"validation scores {pipe.validation_scores_.round(4).tolist()}, kept "
        f"{pipe.n_iter_} sweep(s), fit {seconds:.1f} s, peak RSS {maxrss() / GB:.2f} GB"
    )


if __name__ == "__main__":
    main()
