"""`regsuite plugins`: every plugin with what it serves, its slots, conflicts, provider and
description; `regsuite plugins NAME` one plugin in full; names whole in 80 columns."""
from __future__ import annotations

import re
from typing import Annotated, Literal

import pytest
from helpers.tables import rows
from pydantic import Field
from rich.console import Console
from test_registry import FakeDistribution, FakeEntryPoint, fake_distributions  # noqa: F401
from typer.testing import CliRunner

from regsuite import api, cli, hookimpl, registry
from regsuite.registry import KINDS

runner = CliRunner()


@pytest.fixture
def width(monkeypatch):
    """Render `regsuite` output at a given width (as a terminal of that many columns would)."""

    def set_width(columns: int) -> None:
        monkeypatch.setattr(cli, "console", Console(width=columns, color_system=None, highlight=False))

    set_width(80)
    return set_width


@pytest.fixture
def fresh_registry():
    registry.reset()
    yield registry.get_registry
    registry.reset()


def invoke(*args: str):
    return runner.invoke(cli.app, list(args), env={"COLUMNS": "80"})


# ---------------------------------------------------------------------------- plugins of a test distribution


class WideParams(api.Params):
    rate: float = Field(0.1, gt=0, lt=1, description="how much")
    steps: int = Field(3, ge=1, le=10, description="how often")
    where: str | None = Field(None, json_schema_extra=api.NOT_IN_RUN_KEY, description="a folder")
    late: float = Field(1.0, ge=0, json_schema_extra=api.KEYED_UNLESS_DEFAULT, description="added later")
    mode: Literal["fast", "slow"] = Field("fast", description="which way")
    sizes: tuple[Annotated[int, Field(ge=1)], ...] = Field((4, 8), min_length=1, description="units")


class VeryLongNamedRegularizerForTesting(api.Regularizer):
    """A third-party regularizer with a long name.

    Its docstring goes on, and `regsuite plugins NAME` shows all of it.
    """

    name = "a_very_long_regularizer_name"
    tasks = frozenset({"image_classification", "sequence_labelling"})
    claims_slots = frozenset({"dropout"})
    conflicts_with = frozenset({"dropout", "maxdropout"})
    Params = WideParams

    def penalty(self, model):
        return None


class TwinModel(api.Model):
    """A model named like a regularizer."""

    name = "twin"
    tasks = frozenset({"image_classification"})


class TwinRegularizer(api.Regularizer):
    """A regularizer named like a model."""

    name = "twin"


def returning(classes):
    @hookimpl
    def hook():
        return list(classes)

    return hook


def module_of(**hooks):
    import types

    module = types.ModuleType("regsuite_wide")
    for hook_name, classes in hooks.items():
        setattr(module, hook_name, returning(classes))
    return module


@pytest.fixture
def third_party(fake_distributions, fresh_registry):  # noqa: F811
    fake_distributions(FakeDistribution("regsuite-wide", "2.0.1", [FakeEntryPoint("wide", "regsuite", module_of(
        regsuite_register_regularizers=[VeryLongNamedRegularizerForTesting, TwinRegularizer],
        regsuite_register_models=[TwinModel]))]))
    return fresh_registry()


# ---------------------------------------------------------------------------- the overview


def test_the_overview_shows_what_each_plugin_serves_declares_and_who_provides_it(width):
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for kind in KINDS:
        assert f"{kind}s (" in out
    table = rows(out)
    name, provider, about = table["dropout"]
    assert provider == "regsuite 0.1.0 (built-in)"
    assert "Standard dropout" in about and "tasks: all" in about and "claims slots: dropout" in about
    assert "tasks: image_classification" in table["augmentation"][2]  # a regularizer for one task
    assert "tasks: image_classification" in table["small_cnn"][2] and "slots: dropout" in table["small_cnn"][2]
    assert "task: image_classification" in table["digits"][2]
    assert "metrics: accuracy (acc)" in table["image_classification"][2]
    assert "regsuite plugins NAME" in out


def test_no_name_is_broken_across_lines_in_80_columns(width, third_party):
    out = invoke("plugins").stdout
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80
    names = {name for kind in KINDS for name in third_party.names(kind)}
    assert "a_very_long_regularizer_name" in names
    for name in names:
        assert any(line.startswith(f"│ {name} ") for line in lines), name  # whole, in its table's first column
    row = rows(out)["a_very_long_regularizer_name"]
    assert row[1] == "regsuite-wide 2.0.1"
    assert "conflicts: dropout, maxdropout" in row[2] and "claims slots: dropout" in row[2]
    assert "tasks: image_classification, sequence_labelling" in row[2]


def test_the_overview_of_one_kind(width):
    out = invoke("plugins", "--kind", "model").stdout
    assert "models (" in out and "regularizers (" not in out and "│ small_cnn " in out


def test_a_wide_terminal_keeps_providers_on_one_line(width, third_party):
    width(200)
    out = invoke("plugins").stdout
    assert "regsuite-wide 2.0.1" in out and "regsuite 0.1.0 (built-in)" in out


# ---------------------------------------------------------------------------- one plugin


def test_one_plugin_in_full(width, third_party):
    result = invoke("plugins", "a_very_long_regularizer_name")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert max(map(len, out.splitlines())) <= 80
    assert "regularizer a_very_long_regularizer_name" in out
    assert "Its docstring goes on, and `regsuite plugins NAME` shows all of it." in out
    facts = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in out.splitlines()
                 if re.match(r"^(provided by|module|tasks|claims slots|conflicts|acts in|code hash)  ", line))
    assert facts["provided by"] == "regsuite-wide 2.0.1"
    assert facts["module"] == __name__
    assert facts["tasks"] == "image_classification, sequence_labelling"
    assert facts["claims slots"] == "dropout" and facts["conflicts"] == "dropout, maxdropout"
    assert facts["acts in"] == "penalty"
    assert re.match(r"[0-9a-f]{16} ", facts["code hash"])  # third-party code is part of the run key
    params = rows(out)
    assert params["rate"][1].startswith("float = 0.1, > 0, < 1") and params["rate"][1].endswith("how much")
    assert params["steps"][1].startswith("int = 3, ≥ 1, ≤ 10")
    assert params["where"][1].startswith("str | None = None") and "not part of the run key" in params["where"][1]
    assert "part of the run key only when it is not the default" in params["late"][1]
    assert params["mode"][1].startswith("'fast' | 'slow' = 'fast'")
    assert params["sizes"][1].startswith("tuple[int ≥ 1, ...] = [4, 8], length ≥ 1")


def test_a_wide_terminal_gives_each_parameter_field_its_column(width):
    width(160)
    out = invoke("plugins", "dropout").stdout
    header = next(line for line in out.splitlines() if line.startswith("│ name"))
    assert [cell.strip() for cell in header.strip("│").split("│")] == ["name", "type", "default", "range", "description"]
    assert [cell.strip() for cell in rows(out)["p"]] == ["p", "float", "0.25", "≥ 0, < 1", "probability of zeroing a unit"]


def test_a_builtin_in_full(width):
    out = invoke("plugins", "digits").stdout
    assert "dataset digits" in out and "regsuite.plugins.datasets.digits" in out
    assert "code hash" not in out  # regsuite's version stands for the built-ins' code
    assert rows(out)["train_limit"][1].startswith("int | None = None, ≥ 10")


def test_a_name_of_several_kinds_shows_each_unless_a_kind_is_given(width, third_party):
    both = invoke("plugins", "twin").stdout
    assert "model twin" in both and "regularizer twin" in both
    assert both.index("model twin") < both.index("regularizer twin")
    one = invoke("plugins", "twin", "--kind", "regularizer").stdout
    assert "regularizer twin" in one and "model twin" not in one


@pytest.mark.parametrize("args, message", [
    (["dropuot"], "unknown regularizer 'dropuot': did you mean 'dropout'?"),
    (["smal_cnn", "--kind", "model"], "unknown model 'smal_cnn': did you mean 'small_cnn'?"),
    (["dropout", "--kind", "model"], "unknown model 'dropout'"),
    (["qqqqqqqq"], "unknown plugin 'qqqqqqqq': known plugins: "),
    (["dropout", "--kind", "regularizers"], "unknown kind 'regularizers': did you mean 'regularizer'?"),
])
def test_an_unknown_name_is_one_message_and_exit_2(width, args, message):
    result = invoke("plugins", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output and result.stdout == ""


class Nameless(api.Regularizer):
    """Its author forgot the name: the plugin that registers it is broken."""


class Lost(api.Regularizer):
    """Registered beside a nameless class."""

    name = "lost_one"


def test_a_name_a_broken_plugin_would_provide_says_why(width, fake_distributions, fresh_registry):  # noqa: F811
    fake_distributions(FakeDistribution("regsuite-broken", "0.3", [FakeEntryPoint("broken", "regsuite", module_of(
        regsuite_register_regularizers=[Nameless, Lost]))]))
    fresh_registry()
    result = invoke("plugins", "lost_one")
    assert result.exit_code == 2, result.output
    assert "the regularizer 'lost_one' is unavailable" in result.stderr and "without a name" in result.stderr
    listed = invoke("plugins")
    assert listed.exit_code == 0 and "broken plugins" in listed.stdout and "│ broken " in listed.stdout
