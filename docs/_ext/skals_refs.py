"""Resolve references to skals objects by their public names.

Each public object has one page, under the subpackage that defines it
(``skals.preprocessing.ConfidenceEncoder``). Docstrings also name objects by
their top-level re-export (``skals.ConfidenceEncoder``) or, across
subpackages, by their bare name (``InteractionMatrix`` in
``skals.recommender``). Sphinx's Python domain does not know these aliases;
this handler maps them to the canonical page. A name that is not public
still fails the nitpicky build.
"""

from __future__ import annotations

import importlib
import pkgutil

import skals


def public_modules() -> list[str]:
    """``skals`` and every public subpackage or module with an ``__all__``."""
    names = ["skals"]
    for info in pkgutil.iter_modules(skals.__path__):
        if not info.name.startswith("_"):
            names.append(f"skals.{info.name}")
    out = []
    for name in names:
        module = importlib.import_module(name)
        if hasattr(module, "__all__"):
            out.append(name)
    return out


def canonical_names() -> dict[str, str]:
    """Map ``skals.Name`` and bare ``Name`` to ``skals.<sub>.Name``.

    The canonical module of an object is the public subpackage that lists it
    in its ``__all__``; the top-level ``skals`` names are aliases of those.
    """
    canonical: dict[int, str] = {}
    by_name: dict[str, set[str]] = {}
    for modname in public_modules():
        if modname == "skals":
            continue
        module = importlib.import_module(modname)
        for name in module.__all__:
            full = f"{modname}.{name}"
            canonical.setdefault(id(getattr(module, name)), full)
            by_name.setdefault(name, set()).add(full)
    aliases = {}
    for name in skals.__all__:
        full = canonical.get(id(getattr(skals, name)))
        if full is not None:
            aliases[f"skals.{name}"] = full
    for name, fulls in by_name.items():
        if len(fulls) == 1:
            aliases[name] = next(iter(fulls))
    return aliases


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    aliases = _aliases()
    parts = target.split(".")
    # the longest prefix of the target that is an alias: Name, skals.Name,
    # or either followed by a member (skals.Name.method)
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        if head in aliases:
            new = ".".join([aliases[head], *parts[cut:]])
            domain = env.get_domain("py")
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], new, node, contnode
            )
    return None


_ALIASES: dict[str, str] = {}


def _aliases() -> dict[str, str]:
    if not _ALIASES:
        _ALIASES.update(canonical_names())
    return _ALIASES


def setup(app):
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
