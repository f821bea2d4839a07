"""What the command line prints: log lines, progress, tables and error lines."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("skals")


class CLIError(Exception):
    """A problem with the user's input, reported as one line on stderr."""


def one_line(obj, limit: int = 600) -> str:
    """The first paragraph of ``str(obj)`` on one line, at most ``limit`` chars."""
    text = str(obj).strip().split("\n\n")[0]
    text = " ".join(text.split()) or type(obj).__name__
    return text if len(text) <= limit else text[: limit - 5] + " ..."


class Formatter(logging.Formatter):
    """``skals: message`` and ``skals: warning: message``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"skals: {record.levelname.lower()}: {message}"
        return f"skals: {message}"


class Handler(logging.Handler):
    """Log records to stderr through tqdm, so that a running bar stays whole."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def warning_printer():
    """A ``warnings.showwarning`` that logs each distinct message once."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if str(message) not in seen:
            seen.add(str(message))
            log.warning("%s", message)

    return show


class Progress:
    """A tqdm bar on a terminal, log lines otherwise, nothing when quiet."""

    def __init__(self, total: int, desc: str, mode: str):
        self.total, self.desc, self.mode, self.done = total, desc, mode, 0
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="fit", file=sys.stderr)

    def step(self, message: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(message, refresh=False)
            self.bar.update(1)
        elif self.mode == "log":
            log.info("%s %d/%d: %s", self.desc, self.done, self.total, message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def shown_params(params: dict, sep: str = ", ") -> str:
    """``factors=64, regularization=0.05`` with short parameter names."""
    from .. import _plot

    return sep.join(
        f"{_plot.short_name(p)}={_plot.format_value(v)}" for p, v in params.items()
    )


class ProgressScorer:
    """Wrap a scorer so that every scored fit of a search moves the progress.

    It reports from the process that scores, so ``tune`` uses it only
    without ``--n-jobs``: workers would score on copies.
    """

    def __init__(self, scorer, progress: Progress, params, refit: str):
        self.scorer, self.progress = scorer, progress
        self.params, self.refit = params, refit

    def __call__(self, estimator, X, y=None):
        scores = self.scorer(estimator, X, y)
        values = estimator.get_params()
        shown = shown_params({p: values[p] for p in self.params}, sep=" ")
        self.progress.step(f"{shown}: {self.refit}={scores[self.refit]:.4f}")
        return scores


def format_table(header: list[list[str]], rows: list[list[str]]) -> str:
    """Text table: first column left-aligned, the others right-aligned."""
    lines = header + rows
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in lines
    )


def varying(grid: list[dict]) -> list[str]:
    """Parameters that take more than one value in the grid."""
    return sorted({p for g in grid for p, v in g.items() if len(v) > 1})


def cv_table(search, top: int = 10) -> str:
    """The ``top`` candidates of a fitted search, best first."""
    import numpy as np

    from .. import _plot

    res, refit = search.cv_results_, search.refit
    order = np.argsort(res[f"rank_test_{refit}"], kind="stable")[:top]
    params = varying(search.param_grid)
    metrics = [refit, f"{refit}_anonymous", f"{refit}_logged_in"]
    if not refit.startswith("precision"):
        metrics.append(f"precision@{refit.partition('@')[2]}")
    header = [
        ["rank", *(_plot.short_name(p) for p in params), *metrics, "std", "fit s"]
    ]
    rows = [
        [
            str(res[f"rank_test_{refit}"][i]),
            *(_plot.format_value(res["params"][i].get(p)) for p in params),
            *(f"{res[f'mean_test_{m}'][i]:.4f}" for m in metrics),
            f"{res[f'std_test_{refit}'][i]:.4f}",
            f"{res['mean_fit_time'][i]:.1f}",
        ]
        for i in order
    ]
    more = len(res["params"]) - len(order)
    return format_table(header, rows) + (f"\n({more} more)" if more > 0 else "")


def demo_table(scores: dict, k: int, n_revealed: int) -> str:
    """NDCG@k and overlap@k per model, overall, anonymous and logged-in."""
    import polars as pl

    counts = next(iter(scores.values()))
    n, n_logged = counts.height, int(counts["logged_in"].sum())
    segments = (
        ("all", pl.lit(True)),
        ("anonymous", ~pl.col("logged_in")),
        ("logged-in", pl.col("logged_in")),
    )
    header = [
        ["", f"NDCG@{k}", "", "", f"overlap@{k}", "", ""],
        ["model", *[name for name, _ in segments] * 2],
    ]
    rows = []
    for label, per in scores.items():
        row = [label]
        for metric in (f"ndcg@{k}", f"precision@{k}"):
            for _, cond in segments:
                sub = per.filter(cond)[metric]
                row.append(f"{sub.mean():.4f}" if sub.len() else "-")
        rows.append(row)
    title = (
        f"{n:,} held-out sessions with a cart add ({n - n_logged:,} anonymous, "
        f"{n_logged:,} logged-in); first {n_revealed} events revealed, "
        f"relevant = added to cart"
    )
    return title + "\n" + format_table(header, rows)


#: What each row of the demo's table is (label: explanation), in its order.
DEMO_ROWS = {
    "ALS, tuned": "implicit ALS with the grid's best point (GridSearchCV on "
    "the training sessions, scored as the table is)",
    "ALS, default": "implicit ALS at the library's defaults",
    "session-kNN (V-SKNN)": "the sessions of the training log most similar to "
    "the revealed events vote for their items, the last events weigh most",
    "repeat": "the session's own items again, most recent and most viewed "
    "first; popularity after them",
    "sequential rules": "what followed the session's last items in training "
    "(SequentialRulesRecommender, session-rec's SR)",
    "SLIST": "a closed-form linear item-item model of the sessions "
    "(SLISTRecommender, Choi et al. 2021)",
    "blend (auto weights)": "BlendRecommender(): ALS + session-kNN + repeat "
    "+ sequential rules, "
    "scores normalised per session and summed with weights it fits on the "
    "latest training sessions' next clicks and cart adds (what --recommender "
    "blend fits)",
    "blend (1:3:2)": "ALS, kNN and repeat with fixed weights 1:3:2 (no "
    "sequential rules), the recipe of skals 0.1",
    "carts: repeat, then kNN": "the session's own items by how often they were "
    "seen, then session-kNN's (--recommender carts: repeat 10 : kNN 1, rank "
    "normalisation)",
    "reranker, cart target": "RerankRecommender(target='session'): "
    "gradient-boosted trees order the candidates of ALS, session-kNN (V-SKNN "
    "and STAN weights), repeat and sequential rules, trained to find the cart "
    "adds of the latest training sessions from their first events "
    "(--recommender rerank-carts)",
    "popularity": "the most popular items of training (summed confidences), "
    "the same for every session (the baseline)",
    "notebook's approach": "the challenge's reference notebook: ALS that "
    "answers a logged-in user from training history only (no fold-in of the "
    "revealed events, items already seen filtered out) and every anonymous "
    "session with popularity",
}


def demo_rows_explained(k: int, n_revealed: int) -> str:
    """One line per row of :func:`demo_table`: what the model is."""
    width = max(map(len, DEMO_ROWS))
    lines = [
        f"rows (each answers from the first {n_revealed} events of the "
        f"session; NDCG@{k} ranks the top {k} against its cart adds, "
        f"overlap@{k} is the share of the top {k} that it added to the cart):"
    ]
    lines += [f"  {label.ljust(width)}  {text}" for label, text in DEMO_ROWS.items()]
    return "\n".join(lines)


def demo_winner(scores: dict, metric: str) -> str:
    """The label with the best mean ``metric`` (the first among ties)."""
    means = {label: float(per[metric].mean()) for label, per in scores.items()}
    return max(means, key=lambda label: (means[label], -list(means).index(label)))


def plot_search(search, path) -> None:
    """Heatmap of a search's mean scores (needs matplotlib)."""
    from .. import _plot

    refit = search.refit
    _plot.plot_grid_scores(
        search.cv_results_["params"],
        search.cv_results_[f"mean_test_{refit}"],
        path,
        metric=f"mean {refit}",
        title=f"Grid search: held-out {refit} (best framed)",
    )
