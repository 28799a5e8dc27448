"""A third-party plugin's code is part of its runs' identity (issue 12); the built-ins' runs
keep their keys (regsuite's version stands for their code)."""
from __future__ import annotations

import importlib
import importlib.metadata
import sys

import pytest
from test_registry import FakeDistribution, fake_distributions  # noqa: F401

from regsuite import registry
from regsuite.spec import load_spec, resolve, run_id_without_plugin_code
from regsuite.store import Store

PLUGIN = '''
from regsuite import hookimpl
from regsuite.api import Regularizer


class Wobble(Regularizer):
    """A third-party regularizer that does nothing."""

    name = "wobble"


@hookimpl
def regsuite_register_regularizers():
    return [Wobble]
'''

SPEC = """
name = "wob"
task = "image_classification"
[dataset]
name = "digits"
train_limit = 40
[model]
name = "small_cnn"
[[sets]]
label = "none"
regularizers = []
[[sets]]
label = "wobble"
regularizers = [{ name = "wobble" }]
"""


@pytest.fixture
def editable_plugin(tmp_path, monkeypatch, fake_distributions):
    """A plugin module in a folder on sys.path, as an editable install leaves it."""
    folder = tmp_path / "src"
    folder.mkdir()
    source = folder / "regsuite_wobble.py"
    source.write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))

    class Dist(FakeDistribution):  # enough of a distribution for other libraries' entry_points() too
        _normalized_name = "regsuite_wobble"

    fake_distributions(Dist("regsuite-wobble", "0.1",
                            [importlib.metadata.EntryPoint("wobble", "regsuite_wobble", "regsuite")]))

    def load():  # a fresh process after the edit: the module is imported anew
        sys.modules.pop("regsuite_wobble", None)
        importlib.invalidate_caches()
        registry.reset()
        return registry.get_registry()

    yield source, load
    sys.modules.pop("regsuite_wobble", None)
    registry.reset()


def test_editing_a_plugin_makes_new_runs_and_leaves_builtin_runs_alone(files, editable_plugin):
    source, load = editable_plugin
    spec = files({"wob.toml": SPEC}) / "wob.toml"
    reg = load()
    before = resolve(load_spec(spec), reg)
    none, wobble = before.runs
    assert "plugin_code" not in none.config["versions"]  # built-ins only: the key is as before
    assert set(wobble.config["versions"]["plugin_code"]) == {"regularizer:wobble"}

    source.write_text(PLUGIN.replace("does nothing", "does nothing, differently"))
    reg = load()
    after = resolve(load_spec(spec), reg)
    assert after.runs[0].run_id == none.run_id
    assert after.runs[1].run_id != wobble.run_id
    assert run_id_without_plugin_code(reg, after.runs[1].config) == run_id_without_plugin_code(reg, wobble.config)


def test_validate_shows_runs_whose_plugin_code_changed(files, editable_plugin, tmp_path):
    from typer.testing import CliRunner

    from regsuite.cli import app

    source, load = editable_plugin
    spec = files({"wob.toml": SPEC}) / "wob.toml"
    results = tmp_path / "store"
    with Store(results) as store:
        store.register_plan(resolve(load_spec(spec), load()))
    source.write_text(PLUGIN + "\n# edited\n")
    load()
    result = CliRunner().invoke(app, ["validate", str(spec), "--results", str(results)])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "│" in line]
    assert any("wobble" in line and "code changed" in line for line in rows)
    assert any(" none " in line and "pending" in line for line in rows)
    assert "1 run(s) code changed" in result.output


def test_builtin_classes_have_no_code_hash_and_third_party_ones_do():
    reg = registry.get_registry()
    assert all(entry.code is None for kind in registry.KINDS for entry in reg.entries[kind].values() if entry.builtin)

    class Local(registry.api.Regularizer):
        name = "local"

    entry = registry.Entry("regularizer", "local", Local, "x 1", "x", builtin=False)
    assert entry.code and entry.code != "unknown"
