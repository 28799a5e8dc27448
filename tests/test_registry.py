from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from regsuite import hookimpl, registry
from regsuite.api import Regularizer
from regsuite.errors import RegsuiteError

ROOT = Path(__file__).resolve().parents[1]


class Noise(Regularizer):
    """Adds nothing; a third-party test plugin."""

    name = "noise"


def plugin_module(name: str, *classes: type) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def regsuite_register_regularizers():
        return list(classes)

    module.regsuite_register_regularizers = regsuite_register_regularizers
    return module


class FakeEntryPoint:
    def __init__(self, name: str, group: str, module: types.ModuleType):
        self.name, self.group, self.module = name, group, module

    def load(self):
        return self.module


class FakeDistribution:
    """Stands in for an installed distribution, as pluggy's own tests do."""

    def __init__(self, name: str, version: str, entry_points: list[FakeEntryPoint]):
        self.metadata = {"name": name}
        self.version = version
        self.entry_points = entry_points

    @property
    def name(self):
        return self.metadata["name"]


@pytest.fixture
def fake_distributions(monkeypatch):
    def install(*dists: FakeDistribution):
        real = list(importlib.metadata.distributions())
        monkeypatch.setattr(importlib.metadata, "distributions", lambda: real + list(dists))

    return install


def test_builtins_are_registered_through_the_hooks():
    reg = registry.collect(registry.make_plugin_manager(load_external=False))
    assert {"l2", "dropout", "augmentation"} <= set(reg.names("regularizer"))
    assert "digits" in reg.names("dataset") and "small_cnn" in reg.names("model")
    assert reg.get("regularizer", "l2").provider.startswith("regsuite ")


def test_entry_point_plugins_are_discovered_with_their_distribution(fake_distributions):
    fake_distributions(FakeDistribution("regsuite-noise", "1.2.3", [FakeEntryPoint("noise", "regsuite", plugin_module("noise_mod", Noise))]))
    reg = registry.collect(registry.make_plugin_manager(load_external=True))
    entry = reg.get("regularizer", "noise")
    assert entry.cls is Noise and entry.provider == "regsuite-noise 1.2.3"


def test_external_plugins_can_be_disabled(fake_distributions, monkeypatch):
    fake_distributions(FakeDistribution("regsuite-noise", "1.2.3", [FakeEntryPoint("noise", "regsuite", plugin_module("noise_mod", Noise))]))
    monkeypatch.setenv(registry.DISABLE_ENV, "1")
    reg = registry.collect(registry.make_plugin_manager())
    assert "noise" not in reg.names("regularizer")


def test_a_builtin_name_stays_the_builtins_and_the_clash_is_reported(fake_distributions):
    class FakeL2(Regularizer):
        name = "l2"

    fake_distributions(FakeDistribution("regsuite-l2", "0.9", [FakeEntryPoint("l2x", "regsuite", plugin_module("l2x", FakeL2, Noise))]))
    reg = registry.collect(registry.make_plugin_manager(load_external=True))
    assert reg.get("regularizer", "l2").provider == "regsuite 0.1.0 (built-in)"
    assert reg.get("regularizer", "noise").provider == "regsuite-l2 0.9"  # the plugin's other names load
    [problem] = reg.problems
    assert problem.loaded and problem.names == (("regularizer", "l2"),) and problem.provider == "regsuite-l2 0.9"
    assert "built-in" in problem.reason and "keeps it" in problem.reason


def test_a_plugin_returning_a_non_plugin_class_is_left_out(fake_distributions):
    fake_distributions(FakeDistribution("bad", "1", [FakeEntryPoint("bad", "regsuite", plugin_module("bad", dict))]))
    reg = registry.collect(registry.make_plugin_manager(load_external=True))
    [problem] = reg.problems
    assert not problem.loaded and "not a regsuite.api.Regularizer subclass" in problem.reason
    assert "l2" in reg.names("regularizer")


def test_a_plugin_with_an_unknown_hook_is_left_out(fake_distributions):
    module = types.ModuleType("typo")

    @hookimpl
    def regsuite_register_regularisers():
        return []

    module.regsuite_register_regularisers = regsuite_register_regularisers
    fake_distributions(FakeDistribution("typo", "1", [FakeEntryPoint("typo", "regsuite", module)]))
    pm = registry.make_plugin_manager(load_external=True)
    [problem] = pm.problems
    assert problem.distribution == "typo" and "does not define: regsuite_register_regularisers" in problem.reason
    assert not pm.has_plugin("typo")
    assert "l2" in registry.collect(pm).names("regularizer")


def test_unknown_name_suggests_the_closest():
    reg = registry.get_registry()
    with pytest.raises(RegsuiteError, match="did you mean 'dropout'"):
        reg.get("regularizer", "dropuot")


def test_a_real_installed_plugin_package_is_found_and_trains(tmp_path, files, example_site):
    """pip-installs examples/regsuite-cutout into a folder and uses it from a fresh process."""
    target = example_site
    env = {**os.environ, "PYTHONPATH": str(target), "COLUMNS": "200"}
    regsuite = [sys.executable, "-m", "regsuite.cli"]
    listed = subprocess.run([*regsuite, "plugins"], env=env, capture_output=True, text=True, check=True)
    assert "cutout" in listed.stdout and "regsuite-cutout 0.1.0" in listed.stdout
    spec = files({"cut.toml": """
        name = "cut"
        task = "image_classification"
        [dataset]
        name = "digits"
        train_limit = 40
        [model]
        name = "small_cnn"
        width = 2
        hidden = 8
        [training]
        epochs = 1
        [[sets]]
        label = "cutout"
        regularizers = [{ name = "cutout", size = 0.25 }]
    """}) / "cut.toml"
    ran = subprocess.run([*regsuite, "run", str(spec), "--results", str(tmp_path / "r")],
                         env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert "trained 1" in ran.stdout
