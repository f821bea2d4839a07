"""Two autodoc adjustments for skals' API pages.

* Members come from skals' own code: a class page shows the methods defined
  in skals (its own and those of skals' private bases, such as
  ``BaseRecommender.predict``), not the ones inherited from scikit-learn
  (``get_params``, ``set_output``, ...), which scikit-learn documents and
  whose docstrings point into scikit-learn's own site.
* In a numpydoc parameter line such as ``user_prefix : str, default="u_"``
  a word ending in ``_`` before a quote reads as a reST hyperlink reference;
  the underscore is escaped.
"""

from __future__ import annotations

import re

_PARAM_LINE = re.compile(r"^\s*\w+ : .*default=")
_TRAILING_UNDERSCORE = re.compile(r"(\w)_(['\"])")


def _defining_module(obj) -> str:
    if isinstance(obj, property):
        obj = obj.fget
    return getattr(obj, "__module__", None) or ""


def _skip_foreign_members(app, what, name, obj, skip, options):
    if what != "class" or skip:
        return None
    module = _defining_module(obj)
    if module and not module.startswith("skals"):
        return True
    return None


def _escape_defaults(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if _PARAM_LINE.match(line):
            lines[i] = _TRAILING_UNDERSCORE.sub(r"\1\\_\2", line)


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
    # before numpydoc (priority 500) turns the sections into reST
    app.connect("autodoc-process-docstring", _escape_defaults, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
