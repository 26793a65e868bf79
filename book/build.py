"""Build the course as a static website (Jupyter Book 1.x, offline) from the executed lessons.

    .venv/bin/python book/build.py                       # what `make book` runs
    .venv/bin/python book/build.py --lessons DIR --out DIR

Source: the notebooks `python -m tlwidgets.course --quick` wrote to build/lessons/ (with their
outputs: figures, results tables, the saved state of their widgets). When that folder is
missing or lacks a lesson, the course is run first (quick mode, ~2-3 min on 2 CPU cores).

Output: build/book/_build/html/index.html, a folder any static web host serves (docs/deploy.md).
Nothing is executed during the build and nothing is fetched: the widget scripts (requirejs,
@jupyter-widgets/html-manager) and MathJax come from deploy/npm/node_modules
(scripts/install_npm.sh), not from a CDN. The build time is printed and kept in build-time.txt.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NPM = REPO / "deploy" / "npm" / "node_modules"
# (source in node_modules, destination in the book's _static, via html_static_path "_widgets")
STATIC_FILES = [
    ("requirejs/require.js", "require.js"),
    ("@jupyter-widgets/html-manager/dist/embed-amd.js", "wm/embed-amd.js"),
    ("mathjax/es5/tex-chtml.js", "mathjax/tex-chtml.js"),
    ("mathjax/es5/output/chtml/fonts/woff-v2", "mathjax/output/chtml/fonts/woff-v2"),
]
#: html-manager's embed-amd.js loads its icon fonts (Font Awesome) from a path it derives from the page's
#: URL and its own module name, not from where require.js found it: lessons/@jupyter-widgets/html-manager/dist/
#: and lessons/@jupyter-widgets/. The font files are copied there (html_extra_path), so no page asks for a
#: file the site lacks.
WIDGET_FONT_DIRS = ["lessons/@jupyter-widgets/html-manager/dist", "lessons/@jupyter-widgets"]
WIDGET_FONT_SUFFIXES = (".woff2", ".woff", ".ttf", ".eot", ".svg")
__all__ = ["lesson_info", "lesson_map", "static_widgets", "static_controls", "stage", "build",
           "strip_thebe"]
#: widget model modules the served html-manager renders itself; any other (anywidget: the digit pad's canvas)
#: it would fetch from a CDN, so the book leaves those widgets out and says why
SERVED_WIDGET_MODULES = {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"}
NEEDS_KERNEL_NOTE = ("<p><i>This widget draws with JavaScript that talks to a running Python kernel (the digit "
                     "pad's canvas): open the lesson in JupyterLab to use it.</i></p>")


def _text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def lesson_info(path: Path) -> dict:
    """Title and the 'What you will learn' bullets of an executed lesson, and whether it has outputs."""
    nb = json.loads(path.read_text())
    md = [_text(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    first = md[0] if md else ""
    title = next((line.lstrip("# ").strip() for line in first.splitlines() if line.startswith("# ")), path.stem)
    learn = re.search(r"\*\*What you will learn\*\*\s*\n(.*?)(?:\n\s*\n|\*\*Prerequisites)", first, re.S)
    bullets = ([re.sub(r"\s+", " ", b).strip() for b in re.split(r"\n- ", "\n" + learn.group(1).strip())[1:]]
               if learn else [])
    figures = sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    executed = any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    return {"stem": path.stem, "title": title, "learn": bullets, "figures": figures, "executed": executed}


def lesson_map(infos: list[dict], results: list[dict]) -> str:
    """The book's front page: what each lesson teaches, how long it ran, what it measured."""
    by_name = {r["lesson"]: r for r in results}
    lines = ["# Transfer Learning Lab", "",
             "A hands-on course in transfer learning with PyTorch: take a model trained on one task and reuse "
             "it on another with little labelled data. Running examples: MNIST digits 0–4 → 5–9, and an "
             "ImageNet model (118 dog breeds, five kinds of cat) → twelve cat breeds.", "",
             "These pages are the lessons **as executed** by `python -m tlwidgets.course --quick` (quick mode: "
             "smaller models and fewer epochs than the full run); widgets show the state they were saved in. "
             "To run and change them, open the notebooks in JupyterLab (`make lab`).", "",
             "## Lesson map", "",
             "| lesson | what you will learn | run time (quick) | headline results |", "|---|---|---:|---|"]
    for info in infos:
        r = by_name.get(info["stem"], {})
        learn = "<br>".join(info["learn"]) or "–"
        seconds = f"{r['seconds']:.0f} s" if isinstance(r.get("seconds"), (int, float)) else "–"
        headline = ", ".join(f"{k} = {v}" for k, v in (r.get("results") or {}).items()) or "–"
        lines.append(f"| [{info['title']}](lessons/{info['stem']}.ipynb) | {learn} | {seconds} | {headline} |")
    lines += ["", "The [results page](results.md) has the course run's whole table.", ""]
    return "\n".join(lines)


def _config(title: str) -> str:
    return f"""\
title: "{title}"
author: Transfer Learning Lab contributors
only_build_toc_files: true
execute:
  execute_notebooks: "off"     # pages show the outputs of the course run; nothing runs here
launch_buttons:
  thebe: false
  binderhub_url: ""
html:
  use_repository_button: false
  use_issues_button: false
  use_edit_page_button: false
  use_multitoc_numbering: false
sphinx:
  recursive_update: true                     # merge the dicts below into Jupyter Book's own (theme options)
  config:
    html_context:
      default_mode: light                    # unset, pydata's theme logs "invalid theme mode" on every page
    html_static_path: ["_widgets"]          # copied into _static (not named _static: Sphinx owns that)
    html_extra_path: ["_extra"]             # copied as is to the site's root (the widget fonts)
    nb_ipywidgets_js:                        # widget scripts from npm, served with the site
      "require.js": {{}}
      "wm/embed-amd.js": {{}}
    mathjax_path: "mathjax/tex-chtml.js"     # MathJax from npm, not a CDN
    html_show_copyright: false
"""


def static_widgets(nb: dict) -> int:
    """Remove from ``nb``'s saved widget state the models the static page cannot render offline; returns how many.

    A static page has no kernel, and the html-manager would fetch an unknown widget module (anywidget) from a
    CDN — a request the offline book must not make. Such models are dropped, references to them are removed
    from their containers, and each cell that displayed one gets a note saying where the widget works.
    """
    bundle = nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    state = bundle.get("state", {})
    gone = {mid for mid, m in state.items() if m.get("model_module") not in SERVED_WIDGET_MODULES}
    if not gone:
        return 0
    refs = {f"IPY_MODEL_{mid}" for mid in gone}
    contains: dict[str, set[str]] = {}
    for mid in gone:
        del state[mid]
    for mid, model in state.items():
        children = model.get("state", {}).get("children")
        if isinstance(children, list) and refs & set(children):
            model["state"]["children"] = [c for c in children if c not in refs]
            contains[mid] = refs & set(children)

    def holds_removed(mid: str, seen: set[str]) -> bool:
        if mid in gone or mid in contains:
            return True
        kids = state.get(mid, {}).get("state", {}).get("children") or []
        return any(holds_removed(k.removeprefix("IPY_MODEL_"), seen | {mid}) for k in kids
                   if k.removeprefix("IPY_MODEL_") not in seen)

    for cell in nb.get("cells", []):
        outputs = cell.get("outputs", [])
        views = [o["data"]["application/vnd.jupyter.widget-view+json"].get("model_id", "") for o in outputs
                 if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        if any(holds_removed(v, set()) for v in views):
            outputs.append({"output_type": "display_data", "metadata": {},
                            "data": {"text/html": NEEDS_KERNEL_NOTE, "text/plain": "(needs a running kernel)"}})
    return len(gone)


def static_controls(nb: dict) -> int:
    """Show every saved control of ``nb`` (slider, drop-down, button, ...) disabled; returns how many.

    A static page has no kernel: a freeze slider that still moved would move above a table that never
    changes, as if the page were broken. Disabled, each control shows the value it had when the lesson ran.
    """
    bundle = nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    count = 0
    for model in bundle.get("state", {}).values():
        state = model.get("state", {})
        if "disabled" in state and state["disabled"] is not True:
            state["disabled"] = True
            count += 1
    return count


def stage(lessons: Path, src: Path) -> list[dict]:
    """Write the book's sources to ``src``: config, toc, lesson map, results page, notebooks, static JS."""
    paths = sorted(lessons.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no executed lessons (NN_*.ipynb) in {lessons}: run `make course` first")
    if src.exists():
        shutil.rmtree(src)
    (src / "lessons").mkdir(parents=True)
    infos = [lesson_info(p) for p in paths]
    for p in paths:
        nb = json.loads(p.read_text())
        static_widgets(nb)
        static_controls(nb)
        (src / "lessons" / p.name).write_text(json.dumps(nb, indent=1))
    results_json, results_md = lessons / "results.json", lessons / "results.md"
    results = json.loads(results_json.read_text()) if results_json.exists() else []
    (src / "intro.md").write_text(lesson_map(infos, results))
    table = results_md.read_text() if results_md.exists() else "No course results were found next to the notebooks."
    (src / "results.md").write_text("# Results of the course run\n\nOne row per lesson, as printed by "
                                    "`python -m tlwidgets.course --quick` (peak RSS is the lesson's kernel).\n\n"
                                    + table)
    chapters = "\n".join(f"      - file: lessons/{i['stem']}" for i in infos)
    (src / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nparts:\n  - caption: Lessons\n    chapters:\n"
                                  f"{chapters}\n  - caption: Results\n    chapters:\n      - file: results\n")
    (src / "_config.yml").write_text(_config("Transfer Learning Lab"))
    for rel, dest in STATIC_FILES:
        source = NPM / rel
        if not source.exists():
            raise FileNotFoundError(f"{source} is missing: run `bash scripts/install_npm.sh`")
        target = src / "_widgets" / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    fonts = [f for f in (NPM / "@jupyter-widgets" / "html-manager" / "dist").iterdir()
             if f.suffix in WIDGET_FONT_SUFFIXES]
    for folder in WIDGET_FONT_DIRS:
        (src / "_extra" / folder).mkdir(parents=True, exist_ok=True)
        for font in fonts:
            shutil.copy(font, src / "_extra" / folder / font.name)
    return infos


#: what Jupyter Book 1 puts into every page for Thebe (live code via a Binder kernel) even with ``thebe: false``:
#: its ``const THEBE_JS_URL`` snippet (twice: a console error "already declared" on every page) pointing at
#: unpkg.com, the loader script and its CSS. The offline site has no kernel to offer, so they go.
THEBE_LINE = re.compile(r"^\s*<(script|link)\b[^\n]*(THEBE_JS_URL|sphinx-thebe)[^\n]*$\n?", re.M)


def strip_thebe(html: str) -> str:
    """``html`` without Jupyter Book's Thebe snippets (:data:`THEBE_LINE`), each one line of the page's head."""
    return THEBE_LINE.sub("", html)


def build(src: Path, out: Path) -> float:
    """``jupyter-book build`` (Sphinx, HTML), then the Thebe snippets removed from every page; returns the
    seconds it took."""
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]
    t0 = time.perf_counter()
    subprocess.run(cmd + ["build", str(src), "--path-output", str(out), "--builder", "html", "--quiet"],
                   check=True)
    for page in (out / "_build" / "html").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if (clean := strip_thebe(text)) != text:
            page.write_text(clean, encoding="utf-8")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lessons", type=Path, default=REPO / "build" / "lessons",
                   help="executed lesson notebooks (default: build/lessons, from `make course`)")
    p.add_argument("--out", type=Path, default=REPO / "build" / "book", help="output folder (default: build/book)")
    p.add_argument("--no-run", action="store_true", help="never run the course, even if lessons are missing")
    args = p.parse_args(argv)
    wanted = {q.name for q in (REPO / "lessons").glob("[0-9][0-9]_*.ipynb")}
    have = {q.name for q in args.lessons.glob("[0-9][0-9]_*.ipynb")} if args.lessons.is_dir() else set()
    if not args.no_run and args.lessons == REPO / "build" / "lessons" and not wanted <= have:
        print(f"executed lessons missing ({sorted(wanted - have)}): running the course first", flush=True)
        subprocess.run([sys.executable, "-m", "tlwidgets.course", "--quick", "--no-html"], check=False, cwd=REPO)
    src = args.out / "src"
    infos = stage(args.lessons, src)
    seconds = build(src, args.out)
    index = args.out / "_build" / "html" / "index.html"
    (args.out / "build-time.txt").write_text(f"{seconds:.1f}\n")
    print(f"book: {len(infos)} lessons, built in {seconds:.1f} s -> {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
