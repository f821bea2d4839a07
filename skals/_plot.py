"""The grid-search heatmap of the command line (needs matplotlib, ``skals[plot]``).

Nothing here imports matplotlib at module level: :func:`missing_matplotlib`
says whether a plot can be drawn, :func:`plot_grid_scores` draws it.
"""

from __future__ import annotations

import itertools
import math
from numbers import Real

import numpy as np

#: Parameters put on the heatmap's rows and columns first, when they vary.
_PREFERRED_AXES = ("factors", "regularization", "cart_weight")
#: Beyond this many panels, one panel shows the best over the other parameters.
_MAX_PANELS = 12


def missing_matplotlib() -> str | None:
    """Why no plot can be drawn (matplotlib not importable), or None."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        return (
            f"matplotlib is not installed ({exc}); install the plot extra: "
            "pip install 'skals[plot]'"
        )
    return None


def short_name(param: str) -> str:
    """``"implicitalsrecommender__factors"`` -> ``"factors"``."""
    return param.rsplit("__", 1)[-1]


def _sort_key(value):
    if isinstance(value, Real) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def format_value(value) -> str:
    """A parameter value for labels: ``0.1``, ``64``, ``-`` for None."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _layout(params: list[dict], names: list[str]):
    """(row param, column param, panel params, values of each) for the grid."""
    values = {n: sorted({p.get(n) for p in params}, key=_sort_key) for n in names}
    varying = [n for n in names if len(values[n]) > 1]
    rank = {n: i for i, n in enumerate(_PREFERRED_AXES)}
    varying.sort(key=lambda n: rank.get(short_name(n), len(rank)))
    rows = varying[0] if varying else None
    cols = varying[1] if len(varying) > 1 else None
    panels = varying[2:]
    return rows, cols, panels, values


def plot_grid_scores(
    params: list[dict],
    scores,
    path,
    *,
    metric: str,
    title: str,
) -> None:
    """Save a heatmap of grid-search scores to ``path`` (PNG).

    The two first varying parameters (``factors`` x ``regularization`` when
    they vary) are the rows and columns; every combination of the others
    (``cart_weight``) gets a panel. A cell shows the best mean score of the
    candidates that fall in it; the best cell overall is framed in red.

    Parameters
    ----------
    params : list of dict
        ``cv_results_["params"]`` of a search.
    scores : array-like of float
        Mean test score of each candidate (``cv_results_["mean_test_..."]``).
    path : str or path-like
        Where to write the PNG.
    metric : str
        Name of the score, for the colour bar.
    title : str
        Figure title.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    scores = np.asarray(scores, dtype=float)
    names = sorted({n for p in params for n in p})
    rows, cols, panel_names, values = _layout(params, names)
    row_values = values[rows] if rows else [None]
    col_values = values[cols] if cols else [None]
    panel_keys = list(itertools.product(*(values[n] for n in panel_names)))
    summary = None
    if len(panel_keys) > _MAX_PANELS:
        summary = ", ".join(short_name(n) for n in panel_names)
        panel_names, panel_keys = [], [()]

    grids = {
        key: np.full((len(row_values), len(col_values)), np.nan) for key in panel_keys
    }
    for p, score in zip(params, scores, strict=True):
        if not np.isfinite(score):
            continue
        key = tuple(p.get(n) for n in panel_names)
        i = row_values.index(p.get(rows)) if rows else 0
        j = col_values.index(p.get(cols)) if cols else 0
        cell = grids[key][i, j]
        grids[key][i, j] = score if np.isnan(cell) else max(cell, score)

    finite = scores[np.isfinite(scores)]
    vmin = float(finite.min()) if finite.size else 0.0
    vmax = float(finite.max()) if finite.size else 1.0
    if vmax <= vmin:
        vmax = vmin + 1e-9
    best = float(finite.max()) if finite.size else math.nan

    n_panels = len(panel_keys)
    n_cols = min(n_panels, 3)
    n_rows = math.ceil(n_panels / n_cols)
    fig = Figure(
        figsize=(
            1.2 + n_cols * max(3.0, 1.1 * len(col_values) + 1.0),
            0.9 + n_rows * max(2.6, 0.6 * len(row_values) + 1.2),
        ),
        layout="constrained",
    )
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for ax, key in zip(axes.flat, panel_keys, strict=False):
        grid = grids[key]
        image = ax.imshow(grid, vmin=vmin, vmax=vmax, cmap="viridis", aspect="auto")
        if cols:
            ax.set_xticks(range(len(col_values)), [format_value(v) for v in col_values])
        else:
            ax.set_xticks([])
        ax.set_yticks(range(len(row_values)), [format_value(v) for v in row_values])
        ax.set_xlabel(short_name(cols) if cols else "")
        ax.set_ylabel(short_name(rows) if rows else "")
        if panel_names:
            ax.set_title(
                ", ".join(
                    f"{short_name(n)} = {format_value(v)}"
                    for n, v in zip(panel_names, key, strict=True)
                )
            )
        elif summary:
            ax.set_title(f"best over {summary}")
        for (i, j), v in np.ndenumerate(grid):
            if np.isnan(v):
                continue
            light = (v - vmin) / (vmax - vmin) > 0.6
            ax.text(
                j,
                i,
                f"{v:.3f}",
                ha="center",
                va="center",
                fontsize=9,
                color="black" if light else "white",
            )
            if v == best:
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        fill=False,
                        edgecolor="red",
                        linewidth=2.5,
                    )
                )
    for ax in list(axes.flat)[n_panels:]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes, label=metric, shrink=0.9)
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
