"""A broken third-party plugin costs only itself (issue 12): a warning naming it, every other
plugin loaded, a clear error where a spec uses what it provides, a section in `regsuite plugins`."""
from __future__ import annotations

import types

import pytest
from test_registry import FakeDistribution, FakeEntryPoint, Noise, fake_distributions, plugin_module  # noqa: F401

from regsuite import hookimpl, registry
from regsuite.api import Regularizer
from regsuite.errors import RegsuiteError, SpecError
from regsuite.spec import load_spec, resolve


class Jitter(Regularizer):
    """Another third-party test regularizer."""

    name = "jitter"


class Nameless(Regularizer):
    """A class its author forgot to name."""


class FailingEntryPoint(FakeEntryPoint):
    def __init__(self, name: str, exc: BaseException):
        super().__init__(name, "regsuite", None)
        self.exc = exc

    def load(self):
        raise self.exc


def raising_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def regsuite_register_regularizers():
        raise RuntimeError("the author's bug")

    module.regsuite_register_regularizers = regsuite_register_regularizers
    return module


def good():
    return FakeDistribution("regsuite-noise", "1.2.3", [FakeEntryPoint("noise", "regsuite", plugin_module("noise_mod", Noise))])


@pytest.fixture
def fresh_registry():
    registry.reset()
    yield registry.get_registry
    registry.reset()


def spec_using(files, name: str):
    return files({"s.toml": f"""
        name = "s"
        task = "image_classification"
        [dataset]
        name = "digits"
        train_limit = 40
        [model]
        name = "small_cnn"
        [[sets]]
        label = "x"
        regularizers = [{{ name = "{name}" }}]
    """}) / "s.toml"


@pytest.mark.parametrize("broken, reason", [
    (FakeDistribution("regsuite-gone", "0.3", [FailingEntryPoint("gone", ModuleNotFoundError("No module named 'scipy_extra'"))]),
     "importing it failed: ModuleNotFoundError: No module named 'scipy_extra'"),
    (FakeDistribution("regsuite-exits", "0.3", [FailingEntryPoint("exits", SystemExit(3))]), "importing it failed: SystemExit: 3"),
    (FakeDistribution("regsuite-raises", "0.3", [FakeEntryPoint("raises", "regsuite", raising_module("raises_mod"))]),
     "its hook regsuite_register_regularizers raised RuntimeError: the author's bug"),
    (FakeDistribution("regsuite-nameless", "0.3", [FakeEntryPoint("nameless", "regsuite", plugin_module("nl", Nameless, Jitter))]),
     "registered the regularizer class Nameless without a name"),
])
def test_a_broken_plugin_is_a_warning_and_the_rest_loads(fake_distributions, fresh_registry, capsys, broken, reason):
    fake_distributions(broken, good())
    reg = fresh_registry()
    err = capsys.readouterr().err
    assert f"{broken.name} 0.3" in err and reason in err and "warning" in err
    assert {"l2", "dropout", "noise"} <= set(reg.names("regularizer"))
    assert "digits" in reg.names("dataset")
    [problem] = reg.problems
    assert problem.distribution == broken.name and problem.version == "0.3" and not problem.loaded
    assert "jitter" not in reg.names("regularizer")  # a broken plugin is left out whole


def test_a_spec_naming_what_a_broken_plugin_provides_says_why(fake_distributions, fresh_registry, files):
    fake_distributions(FakeDistribution("regsuite-nameless", "0.3", [FakeEntryPoint("nameless", "regsuite", plugin_module("nl", Nameless, Jitter))]))
    with pytest.raises(SpecError) as info:
        resolve(load_spec(spec_using(files, "jitter")), fresh_registry())
    text = str(info.value)
    assert "regularizer 'jitter' is unavailable" in text and "regsuite-nameless 0.3 did not load" in text
    assert "without a name" in text


def test_a_plugin_that_failed_to_import_is_named_where_a_name_is_unknown(fake_distributions, fresh_registry, files):
    fake_distributions(FakeDistribution("regsuite-gone", "0.3", [FailingEntryPoint("gone", ImportError("no torchvision"))]))
    with pytest.raises(SpecError) as info:
        resolve(load_spec(spec_using(files, "cutout")), fresh_registry())
    text = str(info.value)
    assert "unknown regularizer 'cutout'" in text and "'gone' of regsuite-gone 0.3 (importing it failed: ImportError: no torchvision)" in text


def test_plain_unknown_names_keep_their_suggestion(fake_distributions, fresh_registry):
    fake_distributions(FakeDistribution("regsuite-gone", "0.3", [FailingEntryPoint("gone", ImportError("x"))]))
    with pytest.raises(RegsuiteError, match="did you mean 'dropout'"):
        fresh_registry().get("regularizer", "dropuot")


def test_two_external_plugins_with_one_name_both_lose_it(fake_distributions):
    class OtherNoise(Regularizer):
        name = "noise"

    fake_distributions(good(), FakeDistribution("regsuite-other", "2.0", [FakeEntryPoint("other", "regsuite", plugin_module("other", OtherNoise, Jitter))]))
    reg = registry.collect(registry.make_plugin_manager(load_external=True))
    assert "noise" not in reg.names("regularizer") and "jitter" in reg.names("regularizer")
    assert sorted(p.provider for p in reg.problems) == ["regsuite-noise 1.2.3", "regsuite-other 2.0"]
    assert all(p.loaded and p.names == (("regularizer", "noise"),) for p in reg.problems)
    with pytest.raises(RegsuiteError) as info:
        reg.get("regularizer", "noise")
    assert "regsuite-noise 1.2.3" in str(info.value) and "regsuite-other 2.0" in str(info.value)
    assert "neither" in str(info.value)


def test_some_distributions_can_be_disabled_by_name(fake_distributions, monkeypatch, fresh_registry, capsys):
    fake_distributions(good(), FakeDistribution("regsuite-gone", "0.3", [FailingEntryPoint("gone", ImportError("x"))]))
    monkeypatch.setenv(registry.DISABLE_SOME_ENV, "Regsuite_Gone, other")
    reg = fresh_registry()
    assert "noise" in reg.names("regularizer") and not reg.problems
    assert [d.distribution for d in reg.disabled] == ["regsuite-gone"]
    assert "warning" not in capsys.readouterr().err


def test_regsuite_plugins_lists_broken_plugins_apart(fake_distributions, fresh_registry):
    from typer.testing import CliRunner

    from regsuite.cli import app

    fake_distributions(good(), FakeDistribution("regsuite-raises", "0.3", [FakeEntryPoint("raises", "regsuite", raising_module("raises_mod"))]))
    result = CliRunner().invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "broken plugins" in out and "regsuite-raises 0.3" in out and "the author's bug" in out
    assert out.index("broken plugins") > out.index("noise")
