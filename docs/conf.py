"""Sphinx configuration of the skals documentation.

Build with ``make docs`` (or ``sphinx-build -W --keep-going -b html docs
docs/_build/html``): warnings are errors and every cross-reference must
resolve (``nitpicky``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import skals  # noqa: E402

# -- project -----------------------------------------------------------------
project = "skals"
author = "skals developers"
copyright = "skals developers"  # noqa: A001 (Sphinx's name)
release = skals.__version__
version = ".".join(release.split(".")[:2])

# -- extensions --------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    # MathJax served from the built site, so formulas render without network
    "sphinx-mathjax-offline",
    # cross-references to skals names re-exported at the top level
    "skals_refs",
    # the command line's --help, captured at build time
    "skals_cli_help",
    # class pages show skals' own members
    "skals_autodoc",
]

# The build machines have no network, so intersphinx (which downloads the
# inventories of numpy, scikit-learn, ... at build time) is opt-in:
# SKALS_DOCS_INTERSPHINX=1 make docs
if os.environ.get("SKALS_DOCS_INTERSPHINX"):
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "polars": ("https://docs.pola.rs/api/python/stable", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "joblib": ("https://joblib.readthedocs.io/en/stable", None),
        "implicit": ("https://benfred.github.io/implicit", None),
    }

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
root_doc = "index"
language = "en"

# -- cross-references --------------------------------------------------------
# Every reference must resolve. numpydoc's parameter types stay plain text
# (numpydoc_xref_param_type is off), so only explicit roles are checked. The
# third-party objects below are named with explicit roles in skals'
# docstrings and cannot be resolved without intersphinx (no network at build
# time); with SKALS_DOCS_INTERSPHINX=1 they resolve to their projects' pages.
nitpicky = True
nitpick_ignore = [
    ("py:class", "implicit.cpu.als.AlternatingLeastSquares"),
    ("py:class", "sklearn.model_selection.TimeSeriesSplit"),
    ("py:obj", "sklearn.model_selection.TimeSeriesSplit"),
    ("py:func", "polars.from_pandas"),
    ("py:func", "sklearn.utils.estimator_checks.parametrize_with_checks"),
    ("py:class", "sklearn.pipeline.Pipeline"),
    ("py:class", "joblib.Memory"),
    ("py:meth", "joblib.Memory.cache"),
    ("py:meth", "sklearn.pipeline.Pipeline.fit"),
    ("py:class", "sklearn.model_selection.HalvingGridSearchCV"),
    ("py:obj", "sklearn.model_selection.HalvingGridSearchCV"),
    ("py:class", "sklearn.model_selection.GridSearchCV"),
]

# -- autodoc / autosummary / numpydoc ----------------------------------------
autosummary_generate = True
autosummary_imported_members = False
# Members defined in skals, also when inherited from skals' private bases
# (BaseRecommender.predict); _ext/skals_autodoc.py leaves out the methods
# inherited from scikit-learn (get_params, set_output, ...).
autodoc_default_options = {"members": True, "inherited-members": True}
# The numpydoc sections carry the types; signatures stay short.
autodoc_typehints = "none"
autodoc_member_order = "groupwise"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# -- sphinx-gallery -----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": str(DOCS / "auto_examples"),
    "filename_pattern": r"/plot_",
    "within_subsection_order": "skals_gallery_order.GalleryOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "show_memory": False,
    # links from the API pages to the examples that use an object
    "doc_module": ("skals",),
    "backreferences_dir": str(DOCS / "generated" / "backreferences"),
    "reference_url": {"skals": None},
    "min_reported_time": 1,
    "abort_on_example_error": True,
}

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skals {release}"
html_static_path = ["_static"]
html_css_files = ["skals.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_context = {"default_mode": "light"}
