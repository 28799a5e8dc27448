"""The import rules of regsuite, enforced.

``pyproject.toml`` ([tool.importlinter]) writes the layering down as import-linter contracts:
the CLI on top, then progress, then execution and the results files, the reports, the core,
the built-in plugins, and the plugin-facing modules at the bottom. ``lint-imports`` checks
them here, so that CI does. An import inside a function is for an optional or heavy
dependency (Ray, torch, matplotlib), never to break a cycle: the module graph, counting every
import made inside a function (and none under ``if TYPE_CHECKING:``), has no cycle.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: {"regsuite": "benchmark", "regsuite.plugins": "plugins"}: import names → source folders.
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
CORE = ("regsuite.registry", "regsuite.spec", "regsuite.train", "regsuite.checkpoint", "regsuite.store",
        "regsuite.vocabulary")


def source_files() -> dict[str, Path]:
    """Every module of regsuite by import name, from the source folders the package-dir maps."""
    modules: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The regsuite modules ``name`` imports, at the top or inside a function alike (an import
    of ``regsuite.x.y`` counts as one of ``regsuite.x.y``; ``from regsuite import api`` of
    ``regsuite.api``; ``from regsuite import hookimpl`` of ``regsuite`` itself)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return {module for module in found if module in modules and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = source_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]], nodes: set[str]) -> list[str] | None:
    """One import cycle among ``nodes`` (imports leaving them are ignored), or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node] & nodes):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(nodes):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_scan_sees_imports_inside_functions_and_skips_type_checking_blocks():
    graph = import_graph()
    assert set(CORE) <= set(graph) and "regsuite.plugins.datasets.tiny_imagenet" in graph
    assert "regsuite.plugins" in graph["regsuite.registry"]  # imported inside make_plugin_manager
    assert "regsuite.execution.inprocess" in graph["regsuite.execution"]  # inside execute_plan
    assert "regsuite.spec" not in graph["regsuite.execution"]  # only under TYPE_CHECKING
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}, {"a", "b", "c"}) == ["a", "b", "c", "a"]


def test_no_import_cycle_among_the_core_modules_counting_imports_in_functions():
    assert find_cycle(import_graph(), set(CORE)) is None


def test_no_import_cycle_anywhere_in_regsuite_counting_imports_in_functions():
    graph = import_graph()
    assert find_cycle(graph, set(graph)) is None


def test_the_execution_package_imports_no_executor_until_a_plan_runs():
    graph = import_graph()
    modules = source_files()
    tree = ast.parse(modules["regsuite.execution"].read_text(encoding="utf-8"))
    top_level = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top_level |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    assert not {module for module in top_level if module.startswith("regsuite")}
    assert graph["regsuite.execution"] == {"regsuite.execution.inprocess", "regsuite.execution.local",
                                           "regsuite.execution.ray_cluster"}


# ---------------------------------------------------------------------------- import-linter


@pytest.fixture(scope="module")
def installed_layout(tmp_path_factory) -> Path:
    """The package as it installs (``regsuite/`` with ``regsuite/plugins/`` inside), copied from
    the source folders: import-linter analyses one folder per top-level package, and an
    editable install maps ``regsuite.plugins`` from a folder of its own (``plugins/``)."""
    site = tmp_path_factory.mktemp("layout")
    for package, folder in sorted(PACKAGE_DIRS.items()):
        shutil.copytree(ROOT / folder, site.joinpath(*package.split(".")), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return site


def test_the_import_contracts_hold(installed_layout):
    pytest.importorskip("importlinter", reason="import-linter is in the test extra")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(installed_layout), *filter(None, [os.environ.get("PYTHONPATH")])]))
    check = ("import sys; from importlinter.cli import lint_imports; "
             "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, verbose=False))")
    result = subprocess.run([sys.executable, "-c", check, str(ROOT / "pyproject.toml")], cwd=installed_layout,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    contracts = PYPROJECT["tool"]["importlinter"]["contracts"]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout


def test_the_reports_and_the_execution_package_import_without_torch():
    """``regsuite leaderboard`` and ``plot`` read a store without torch (seconds to import);
    ``regsuite.execution`` imports an executor only when a plan runs."""
    check = ("import sys; import regsuite.leaderboard, regsuite.plots, regsuite.claims, regsuite.regime, regsuite.safety, "
             "regsuite.stats, regsuite.vocabulary, regsuite.execution, regsuite.cli; "
             "heavy = sorted(m for m in ('torch', 'regsuite.spec', 'regsuite.execution.grid') if m in sys.modules); "
             "sys.exit(' '.join(heavy) or None)")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
