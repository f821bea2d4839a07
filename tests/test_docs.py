"""The documentation covers the public API, and its examples run.

* every name of a public ``__all__`` (``skals`` and each public subpackage or
  module) is listed in the API reference, ``docs/api.rst``, under its module;
* every public class and function has a numpydoc Examples section with a
  doctest (the doctests themselves run with ``--doctest-modules``);
* the ``>>>`` examples of the user guide's pages run and print what the
  pages say.

The Sphinx build itself (``make docs``) is not run here: it needs the docs
extra and executes the gallery.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import re
import warnings
from pathlib import Path

import pytest

import skals

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api.rst"
PACKAGE = Path(skals.__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    not API.exists(), reason="docs/ is not part of this installation"
)


def read_all(path: Path) -> list[str] | None:
    """The literal ``__all__`` of a module's source, without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return list(ast.literal_eval(node.value))
    return None


def public_modules() -> dict[str, list[str]]:
    """``{module: __all__}`` for ``skals`` and its public modules/subpackages."""
    found = {"skals": read_all(PACKAGE / "__init__.py")}
    for path in sorted(PACKAGE.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            source = path / "__init__.py"
        elif path.suffix == ".py":
            source = path
        else:
            continue
        names = read_all(source)
        if names is not None:
            found[f"skals.{path.stem}"] = names
    return found


def documented() -> tuple[dict[str, set[str]], set[str]]:
    """Autosummary entries of api.rst per current module, and other targets.

    Returns ``({module: {names}}, {names of ``.. data::`` directives}``.
    """
    entries: dict[str, set[str]] = {}
    data = set()
    module = None
    in_autosummary = False
    for line in API.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            module, in_autosummary = m.group(1), False
        elif line.startswith(".. autosummary::"):
            in_autosummary = True
        elif m := re.match(r"\.\. (?:py:)?data:: (\S+)", line):
            data.add(m.group(1))
        elif in_autosummary:
            stripped = line.strip()
            if line and not line[0].isspace():
                in_autosummary = False
            elif stripped and not stripped.startswith(":"):
                entries.setdefault(module, set()).add(stripped.lstrip("~"))
    return entries, data


def test_public_modules_are_found():
    modules = public_modules()
    # the ones the package has had from the start; a parser that found
    # nothing would make the next tests pass vacuously
    expected = {
        "skals",
        "skals.preprocessing",
        "skals.recommender",
        "skals.metrics",
        "skals.model_selection",
        "skals.datasets",
    }
    assert expected <= set(modules)
    assert all(modules[m] for m in expected)


@pytest.mark.parametrize("module", sorted(public_modules()))
def test_every_public_name_is_in_the_api_reference(module):
    entries, data = documented()
    names = public_modules()[module]
    if module == "skals":
        # the top-level names are re-exports: each is documented once, in
        # the module that defines it, or as a ``.. data::`` of its own
        listed = set().union(*entries.values()) | data
        missing = [n for n in names if n not in listed]
    else:
        missing = [n for n in names if n not in entries.get(module, set())]
    assert not missing, (
        f"{module}.__all__ names missing from docs/api.rst: {missing}; add them "
        f"to the autosummary table of `.. currentmodule:: {module}`."
    )


def test_api_reference_lists_only_public_names():
    entries, _ = documented()
    modules = public_modules()
    for module, names in entries.items():
        assert module in modules, f"docs/api.rst documents unknown module {module}"
        stale = sorted(names - set(modules[module]))
        assert not stale, f"docs/api.rst lists {stale} not in {module}.__all__"


def _public_callables():
    for module_name, names in public_modules().items():
        module = importlib.import_module(module_name)
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{module_name}.{name}", obj


def _sections(doc: str) -> set[str]:
    lines = doc.splitlines()
    return {
        lines[i].strip()
        for i in range(len(lines) - 1)
        if lines[i].strip() and set(lines[i + 1].strip()) == {"-"}
    }


@pytest.mark.parametrize(
    "name, obj",
    list(_public_callables()),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_public_objects_have_numpydoc_examples(name, obj):
    doc = inspect.getdoc(obj) or ""
    sections = _sections(doc)
    assert "Parameters" in sections or not _takes_parameters(obj), name
    assert "Examples" in sections, f"{name} has no Examples section"
    examples = doc[doc.index("Examples\n") :]
    assert ">>>" in examples, f"{name}'s Examples section has no doctest"
    if inspect.isfunction(obj):
        assert sections & {"Returns", "Yields"} or _returns_none(obj), name


def _takes_parameters(obj) -> bool:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return any(p not in ("self", "args", "kwargs") for p in params)


def _returns_none(func) -> bool:
    """True for a function whose source never returns a value (a check)."""
    source = inspect.getsource(func)
    tree = ast.parse(source.lstrip() if source[0].isspace() else source)
    body = tree.body[0]
    nested = {
        id(n)
        for f in ast.walk(body)
        if f is not body and isinstance(f, (ast.FunctionDef, ast.Lambda))
        for n in ast.walk(f)
    }
    return not any(
        isinstance(n, ast.Return) and n.value is not None and id(n) not in nested
        for n in ast.walk(body)
    )


PAGES_WITH_DOCTESTS = sorted(
    p.name for p in DOCS.glob("*.rst") if ">>> " in p.read_text(encoding="utf-8")
)


def test_user_guide_has_doctests():
    assert {"confidence.rst", "evaluation.rst", "fold_in.rst"} <= set(
        PAGES_WITH_DOCTESTS
    )


@pytest.mark.parametrize("page", PAGES_WITH_DOCTESTS)
def test_user_guide_examples_run(page):
    with warnings.catch_warnings():
        # the pages show answers, not the warnings that come with them
        warnings.simplefilter("ignore", UserWarning)
        result = doctest.testfile(
            str(DOCS / page),
            module_relative=False,
            optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
            verbose=False,
            report=True,
        )
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} examples of docs/{page} failed"
