"""The example plugin package (examples/regsuite-cutout), installed into a folder of its own:
its own tests (the author's kit on its task, dataset, model and regularizer) pass against it,
`regsuite plugins` shows its plugins of every kind, and its spec trains."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers.example_package import DISTRIBUTION, EXAMPLE
from helpers.tables import rows
from rich.console import Console
from typer.testing import CliRunner

from regsuite import cli, registry

PLUGINS = {"task": "tabular_classification", "dataset": "moons", "model": "mlp", "regularizer": "cutout"}


@pytest.fixture
def with_example(example_site, monkeypatch):
    """This process's registry with the installed package in it (and without, after)."""
    monkeypatch.syspath_prepend(str(example_site))
    monkeypatch.setattr(cli, "console", Console(width=80, color_system=None, highlight=False))
    registry.reset()
    yield registry.get_registry()
    registry.reset()
    for module in [m for m in sys.modules if m.partition(".")[0] == "regsuite_cutout"]:
        del sys.modules[module]


def test_the_packages_own_tests_pass_against_it_installed(example_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(example_site), "PYTHONDONTWRITEBYTECODE": "1"}
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "6 passed" in ran.stdout


def test_regsuite_plugins_shows_a_plugin_of_every_kind_from_the_package(with_example):
    for kind, name in PLUGINS.items():
        entry = with_example.get(kind, name)
        assert entry.provider == DISTRIBUTION and entry.cls.__module__.startswith("regsuite_cutout.")
    out = CliRunner().invoke(cli.app, ["plugins"]).stdout
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    table = rows(out)
    for name in PLUGINS.values():
        assert any(line.startswith(f"│ {name} ") for line in lines), name  # whole, on one line
        assert table[name][1] == DISTRIBUTION
    mlp = CliRunner().invoke(cli.app, ["plugins", "mlp"])
    assert mlp.exit_code == 0, mlp.output
    for text in ("model mlp", "regsuite_cutout.mlp", "tabular_classification", "slots        dropout",
                 "tuple[int ≥ 1, ...] = [64, 64], length ≥ 1, length ≤ 8", "'relu' | 'tanh' | 'gelu' = 'relu'",
                 "code hash"):
        assert text in mlp.stdout, text


def test_the_packages_spec_trains_with_builtin_regularizers_on_its_task(with_example):
    spec = EXAMPLE / "specs" / "moons.toml"
    ran = CliRunner().invoke(cli.app, ["run", str(spec), "--workers", "0", "--no-plots",
                                       "--set", "training.epochs=1", "--set", "seeds=[0]"])
    assert ran.exit_code == 0, ran.output
    assert "trained 4, already done 0, failed 0" in ran.stdout
    for label in ("none (baseline)", "l2 + dropout", "dropout", "l2"):
        assert label in ran.stdout
