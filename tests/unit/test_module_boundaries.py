"""No tlwidgets module reaches into another module's private (``_name``) names.

Why: a private name is free to change with its module; a module that imports
one breaks silently when it does (issue 11: ``_fingerprint``, ``_take_per_class``
and ``_decode_images.cache_clear()`` were used across modules). Shared helpers
get a public name in their one home instead. Checked on the source, by an AST
walk, so the rule holds for code no test happens to run.
"""
from __future__ import annotations

import ast
import re
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


# ------------------------------------------------------------------------------------ import graph ---
def import_graph(files: list[Path] | None = None) -> dict[str, set[str]]:
    """``module -> the package modules it imports``, at module level *and* inside functions (deferred imports).

    Why deferred ones count: an import moved into a function to dodge a cycle
    still ties the two modules together (issue 21: ``data.photos`` imported
    ``models`` inside a function). ``from .data import Task`` is an edge to
    ``tlwidgets.data``; ``from .data.mnist import x`` and ``from .data import
    mnist`` to ``tlwidgets.data.mnist``. A package importing its own
    sub-modules (``tlwidgets/__init__`` -> ``tlwidgets.models``) is an edge
    like any other, so a sub-module importing its package back is a cycle.
    """
    graph: dict[str, set[str]] = {}
    for path in files if files is not None else sorted(PACKAGE.rglob("*.py")):
        own = _module_name(path)
        edges = graph.setdefault(own, set())
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(path, node)
                if target is None:
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if _is_module(sub) else target)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name == "tlwidgets" or a.name.startswith("tlwidgets."))
        edges.discard(own)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a sorted list: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_package_modules_deferred_imports_included():
    graph = import_graph()
    assert len(graph) > 30 and "tlwidgets.data.photos" in graph
    found = cycles(graph)
    assert not found, "import cycles (module-level or inside functions):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_models_import_nothing_from_data_and_both_read_the_input_configuration():
    """The input configuration (mean, std, size) has one home that models and data both import (issue 21 §2)."""
    graph = import_graph()
    assert not {m for m in graph["tlwidgets.models"] if m == "tlwidgets.data" or m.startswith("tlwidgets.data.")}
    assert "tlwidgets.inputs" in graph["tlwidgets.models"]
    assert {"tlwidgets.inputs"} <= graph["tlwidgets.data.mnist"] | graph["tlwidgets.data.tasks"]
    assert graph["tlwidgets.inputs"] <= {"tlwidgets.validate"}


def _write_package(root: Path, files: dict[str, str]) -> list[Path]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return sorted(root.rglob("*.py"))


@pytest.mark.parametrize("files, expected", [
    ({"a.py": "from .b import x\n", "b.py": "def f():\n    from .a import y\n"}, [["tlwidgets.a", "tlwidgets.b"]]),
    ({"a.py": "from .b import x\n", "b.py": "from .c import y\n", "c.py": "import tlwidgets.a\n"},
     [["tlwidgets.a", "tlwidgets.b", "tlwidgets.c"]]),
    ({"a.py": "from .b import x\n", "b.py": "from .c import y\n", "c.py": "z = 1\n"}, []),
    ({"d/__init__.py": "from .m import x\n", "d/m.py": "from . import helper\n"},   # a sub-module imports its package
     [["tlwidgets.d", "tlwidgets.d.m"]]),
])
def test_the_cycle_check_finds_deferred_and_long_cycles(tmp_path, monkeypatch, files, expected):
    """The graph and the cycle search, on small packages written to a temporary folder."""
    import sys

    package = tmp_path / "tlwidgets"
    paths = _write_package(package, {"__init__.py": "", **files})
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert cycles(import_graph([p for p in paths if p != package / "__init__.py"])) == expected


# ------------------------------------------------------------------------------ names that exist ---
_TL_NAME = re.compile(r"\btl\.([A-Za-z_]\w*)")


def tl_names_in_strings(path: Path) -> list[tuple[int, str]]:
    """``(line, name)`` for every ``tl.<name>`` inside a string literal of ``path`` (messages and docstrings)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out += [(node.lineno, m.group(1)) for m in _TL_NAME.finditer(node.value)]
    return out


def test_every_tl_name_the_package_mentions_exists():
    """A message that tells a student to call ``tl.x`` must name something ``import tlwidgets as tl`` has.

    Issue 21: two errors advised ``tl.image_to_tensor``, which ``tl`` did not export.
    """
    import tlwidgets as tl

    mentioned = [(path, line, name) for path in sorted(PACKAGE.rglob("*.py")) for line, name in tl_names_in_strings(path)]
    assert len(mentioned) > 10
    missing = [f"{path.relative_to(PACKAGE.parent)}:{line}: tl.{name}" for path, line, name in mentioned
               if not hasattr(tl, name)]
    assert not missing, "messages name things tlwidgets does not export:\n" + "\n".join(missing)


def test_the_name_scan_reads_string_literals_only(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text('import tlwidgets as tl\nx = tl.fit\nraise ValueError("use tl.image_to_tensor(x) or tl.nope")\n')
    assert tl_names_in_strings(path) == [(3, "image_to_tensor"), (3, "nope")]


def test_lessons_import_only_the_student_surface():
    """Lessons reach the package through ``tlwidgets`` (as ``tl``), ``tlwidgets.widgets`` and ``tlwidgets.checks``.

    Why: one surface a student learns; sub-modules are the package's own organisation (issue 21 §6). Every
    ``tl.<name>`` a lesson uses must exist too.
    """
    import json

    import tlwidgets as tl

    allowed = {"tlwidgets", "tlwidgets.widgets", "tlwidgets.checks"}
    lessons = sorted((PACKAGE.parent / "lessons").rglob("*.ipynb"))
    assert lessons
    bad = []
    for nb in lessons:
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(code)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tlwidgets"):
                    if node.module not in allowed:
                        bad.append(f"{nb.name}: from {node.module} import ...")
                    elif node.module == "tlwidgets":
                        bad += [f"{nb.name}: tlwidgets has no {a.name}" for a in node.names
                                if not (hasattr(tl, a.name) or _is_module(f"tlwidgets.{a.name}"))]
                elif isinstance(node, ast.Import):
                    bad += [f"{nb.name}: import {a.name}" for a in node.names
                            if a.name.startswith("tlwidgets") and a.name not in allowed]
            bad += [f"{nb.name}: tl.{m.group(1)} does not exist" for m in _TL_NAME.finditer(code)
                    if not hasattr(tl, m.group(1))]
    assert not bad, "\n".join(bad)
