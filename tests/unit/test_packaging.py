"""Packaging: pip (pyproject.toml) and conda (environment.yml) describe one environment; the README's
two commands exist."""
from __future__ import annotations

import re
import shlex
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]


def _requirements(lines) -> dict[str, Requirement]:
    reqs = {}
    for line in lines:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in reqs, f"{req.name} is listed twice"
        reqs[name] = req
    return reqs


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def pip_requirements(pyproject) -> dict[str, Requirement]:
    project = pyproject["project"]
    lines = list(project["dependencies"])
    for extra in ("dev", "build"):
        lines += project["optional-dependencies"][extra]
    return _requirements(lines)


@pytest.fixture(scope="module")
def conda_env() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def _conda_pip_list(conda_env) -> list[str]:
    pips = [d["pip"] for d in conda_env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1, "environment.yml needs exactly one pip: section"
    return pips[0]


def test_environment_yml_and_pyproject_name_the_same_packages_and_versions(pip_requirements, conda_env):
    entries = _conda_pip_list(conda_env)
    assert "-e ." in entries, "environment.yml must install the course package itself (-e .)"
    conda = _requirements(e for e in entries if not e.startswith("-"))
    only_pip = sorted(set(pip_requirements) - set(conda))
    only_conda = sorted(set(conda) - set(pip_requirements))
    assert not only_pip and not only_conda, f"only in pyproject.toml: {only_pip}; only in environment.yml: {only_conda}"
    for name, req in pip_requirements.items():
        assert req.specifier == conda[name].specifier, (
            f"{name}: pyproject.toml says {req.specifier or 'any'}, environment.yml says {conda[name].specifier or 'any'}")
        assert req.extras == conda[name].extras and req.marker == conda[name].marker, name
    assert len(pip_requirements) >= 20  # the whole course stack, not an accidental empty list


def test_conda_python_satisfies_requires_python(pyproject, conda_env):
    pythons = [d for d in conda_env["dependencies"] if isinstance(d, str) and re.match(r"python\b", d)]
    assert len(pythons) == 1, pythons
    version = pythons[0].split("=", 1)[1].lstrip("=")
    requires = Requirement(f"python{pyproject['project']['requires-python']}").specifier
    assert Version(version) in requires, f"conda's python {version} vs requires-python {requires}"
    assert Version("3.10") in requires and Version("3.9") not in requires


def test_declared_ranges_admit_the_torch_pair_the_course_is_tested_with(pip_requirements):
    assert Version("2.14.1") in pip_requirements["torch"].specifier
    assert Version("0.29.1") in pip_requirements["torchvision"].specifier


def test_installed_packages_satisfy_the_declared_ranges(pip_requirements):
    checked = 0
    for name, req in pip_requirements.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra this environment did not install
        assert req.specifier.contains(installed, prereleases=True), f"{name} {installed} is outside {req.specifier}"
        checked += 1
    assert checked >= 15


def test_setup_script_installs_the_declared_torch_pair(pip_requirements):
    script = (REPO / "scripts" / "setup.sh").read_text()
    installs = []
    for line in script.splitlines():
        words = shlex.split(line.strip()) if "pip install" in line else []
        if "install" in words:
            args = [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
            if args and args[0].startswith("torch"):
                installs.append(args)
    assert installs, "scripts/setup.sh no longer installs the torch pair first"
    pinned = _requirements(installs[0])
    for name in ("torch", "torchvision"):
        assert pinned[name].specifier == pip_requirements[name].specifier, name
    assert '-e ".[dev]"' in script and "dev" in tomllib.loads((REPO / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]


# ---------------------------------------------------------------------------------- two commands ---
def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, flags=re.M))


def test_ci_runs_exactly_the_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "make test"
    assert "test" in _make_targets() and "course" in _make_targets()


def test_readme_two_commands_exist_in_the_makefile():
    readme = REPO / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not written yet")
    text = readme.read_text()
    section = re.search(r"^## Two commands\n(.*?)(?=^## )", text, flags=re.M | re.S)
    assert section, "README.md has no '## Two commands' section"
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", section.group(1), flags=re.S)
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    commands = [c for c in commands if c]
    assert len(commands) == 2, commands
    targets = _make_targets()
    for command in commands:
        words = command.split()
        assert words[0] == "make" and len(words) == 2, command
        assert words[1] in targets, f"README's `{command}` has no Makefile target"
    assert commands[1] == "make test"  # what CI runs
    # every other `make X` the README mentions exists too
    for target in re.findall(r"`make ([\w-]+)`|^make ([\w-]+)", text, flags=re.M):
        name = target[0] or target[1]
        assert name in targets, f"README mentions make {name}"
