"""No tlwidgets module reaches into another module's private (``_name``) names.

Why: a private name is free to change with its module; a module that imports
one breaks silently when it does (issue 11: ``_fingerprint``, ``_take_per_class``
and ``_decode_images.cache_clear()`` were used across modules). Shared helpers
get a public name in their one home instead. Checked on the source, by an AST
walk, so the rule holds for code no test happens to run.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tlwidgets"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(path: Path, node: ast.ImportFrom) -> str | None:
    """The absolute module an ``import from`` names, or None when it is outside tlwidgets."""
    if node.level == 0:
        module = node.module or ""
        return module if module == "tlwidgets" or module.startswith("tlwidgets.") else None
    current = _module_name(path)
    package = current if path.name == "__init__.py" else current.rpartition(".")[0]
    parts = package.split(".")
    base = parts[:len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(module: str) -> bool:
    base = PACKAGE.parent / module.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of names, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def private_uses(path: Path, source: str | None = None) -> list[str]:
    """``file:line: what`` for each private name of another tlwidgets module that ``path`` imports or reads."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    own = _module_name(path)
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> the tlwidgets module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(path, node)
            if target is None:
                continue
            for alias in node.names:
                if _is_module(f"{target}.{alias.name}"):
                    # a module of the package: binding it is fine (``from . import _util`` is the package's own
                    # business); what is read from it is checked below
                    modules[alias.asname or alias.name] = f"{target}.{alias.name}"
                elif _private(alias.name) and target != own:
                    found.append(f"{path.name}:{node.lineno}: from {target} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "tlwidgets" or alias.name.startswith("tlwidgets."):
                    if alias.asname:
                        modules[alias.asname] = alias.name
                    else:
                        modules["tlwidgets"] = "tlwidgets"
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        dotted = _dotted(node.value)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        if head not in modules:
            continue
        target = modules[head] + (f".{rest}" if rest else "")
        if _is_module(target) and target != own:
            found.append(f"{path.name}:{node.lineno}: {dotted}.{node.attr} ({target})")
    return found


def test_no_module_uses_another_modules_private_names():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    found = [use for path in files for use in private_uses(path)]
    assert not found, "private names used across modules (give them a public name in their one home):\n" + \
        "\n".join(found)


@pytest.mark.parametrize("source, expected", [
    ("from ..data.mnist import _check_digits\n", ["from tlwidgets.data.mnist import _check_digits"]),
    ("from tlwidgets.images import _name\n", ["from tlwidgets.images import _name"]),
    ("from .. import images\nimages._name('x')\n", ["images._name (tlwidgets.images)"]),
    ("import tlwidgets.images as im\nim._array_to_pil\n", ["im._array_to_pil (tlwidgets.images)"]),
    ("import tlwidgets.data.mnist\ntlwidgets.data.mnist._MNIST_CACHE.clear()\n",
     ["tlwidgets.data.mnist._MNIST_CACHE (tlwidgets.data.mnist)"]),
    ("from ..images import decode_image\nfrom . import _util\n_util.helper()\n", []),   # public names
    ("from ..data import tasks\nclass X:\n    def _own(self):\n        return self._own, tasks.Task\n", []),
])
def test_the_check_finds_private_imports_and_attribute_reads(source, expected):
    """The walk itself, on small sources as if they were a module of tlwidgets.widgets."""
    path = PACKAGE / "widgets" / "probe.py"
    assert [use.split(": ", 1)[1] for use in private_uses(path, source)] == expected
