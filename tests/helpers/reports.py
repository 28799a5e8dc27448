"""The handmade store: a real SQLite store whose runs were finished with chosen per-epoch
numbers (as some task declaring an F1 metric would report them), so that every statistic in
the tables can be checked against a value computed by hand; and a reader of markdown tables."""
from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Any, Callable

from regsuite import api
from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve
from regsuite.store import Store
from regsuite.train import summarize

HANDMADE_SPEC = """
name = "handmade"
task = "image_classification"
seeds = [0, 1, 2]

[dataset]
name = "digits"

[model]
name = "small_cnn"

[training]
epochs = 3

[[sets]]
label = "none"

[[sets]]
label = "l2"
regularizers = [{ name = "l2", weight = 1e-3 }]

[[sets]]
label = "dropout"
regularizers = [{ name = "dropout", p = 0.25 }]
reference = { train_loss = 1.0, val_loss = 2.5 }
"""
# Final (train loss, val loss, val F1) per seed. Paired by seed against none:
#   l2:      Δ val loss = [1, 2, 3]           → +2.000, 95% CI 2 ± 4.302653/√3 = [-0.484, +4.484]
#   dropout: Δ val loss = [-.2, -.21, -.19]   → -0.200, sd 0.01, CI ± 0.02484 = [-0.225, -0.175]
#            Δ gap = [-.7, -.71, -.69]        → -0.700, [-0.725, -0.675]
FINAL = {
    "none": [(1.0, 2.0, 0.60), (1.0, 2.0, 0.62), (1.0, 2.0, 0.64)],
    "l2": [(1.0, 3.0, 0.50), (1.0, 4.0, 0.50), (1.0, 5.0, 0.50)],
    "dropout": [(1.5, 1.8, 0.70), (1.5, 1.79, 0.71), (1.5, 1.81, 0.72)],
}
F1 = {"key": "f1", "label": "F1", "higher_is_better": True}


def history(label: str, train: float, val: float, f1: float) -> list[dict[str, float]]:
    """Three epochs ending at the final values; none's val loss is lowest at epoch 2 (1.9)."""
    val_by_epoch = [2.2, 1.9, val] if label == "none" else [val + 0.2, val + 0.1, val]
    return [{"epoch": e, "train_loss": train + 0.5 * (3 - e), "val_loss": val_by_epoch[e - 1],
             "train_f1": f1 + 0.1, "val_f1": f1 - 0.05 * (3 - e), "train_penalty": 0.0} for e in (1, 2, 3)]


TWO_MODELS = ('seeds = [0, 1, 2]\n', 'seeds = [0, 1, 2]\nmodels = [{ name = "small_cnn", width = 4 }, { name = "small_cnn", width = 8 }]\n')


def make_handmade(directory: Path, spec_dir: Path, unfinished: set[tuple[str, int]] = frozenset(),
                  two_models: bool = False, extra: str = "") -> Path:
    """Finish the handmade spec's runs with the FINAL numbers; with ``two_models``, the grid has
    small_cnn at widths 4 and 8, and width 8 scores 1.0 higher val loss everywhere."""
    text = dedent(HANDMADE_SPEC).lstrip() + dedent(extra)
    if two_models:
        text = text.replace('[model]\nname = "small_cnn"\n', "").replace(*TWO_MODELS)
    spec_path = spec_dir / "handmade.toml"
    spec_path.write_text(text, encoding="utf-8")

    def epochs(run) -> list[dict[str, float]] | None:
        if (run.label, run.seed) in unfinished:
            return None
        train, val, f1 = FINAL[run.label][run.seed]
        shift = 1.0 if run.config["model"]["params"]["width"] == 8 else 0.0
        return history(run.label, train, val + shift, f1)

    return finish_runs(directory, spec_path, epochs, extra=lambda run: {"metrics": [F1]})


def finish_runs(directory: Path, spec_path: Path, epochs: Callable[[Any], list[dict[str, float]] | None],
                test: Callable[[Any], dict[str, float]] = lambda run: {},
                extra: Callable[[Any], dict[str, Any]] = lambda run: {}) -> Path:
    """Register the spec's grid in a real store at ``directory`` and finish each run with the
    per-epoch metrics ``epochs(run)`` (None: leave it unfinished), its test metrics
    ``test(run)``, and ``extra(run)`` added to its summary."""
    plan = resolve(load_spec(spec_path), get_registry())
    info = api.DataInfo(num_classes=10, input_shape=(1, 8, 8))
    with Store(directory) as store:
        store.register_plan(plan)
        for run in plan.runs:
            run_epochs = epochs(run)
            if run_epochs is None:
                continue
            assert store.claim(run.run_id)
            for metrics in run_epochs:
                store.record_epoch(run.run_id, metrics["epoch"], {k: v for k, v in metrics.items() if k != "epoch"})
            summary = summarize(run_epochs, test(run), info, seconds=1.0)
            summary.update(extra(run))
            store.finish(run.run_id, summary, "cpu", wall_time=1.0)
    return directory


def markdown_rows(text: str, section: str) -> dict[str, dict[str, str]]:
    """The cells of one markdown section, by row label and column header."""
    lines = text[text.index(section):].splitlines()[2:]  # heading, blank line, then the table
    table = lines[: next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))]
    heads = [c.strip() for c in table[0].strip("|").split("|")]
    rows = {}
    for line in table[2:]:
        cells = dict(zip(heads, (c.strip() for c in line.strip("|").split("|"))))
        rows[cells["regularizers"].replace(" (baseline)", "")] = cells
    return rows


# A data-regime grid: train_fraction swept (out of size order) under none, l2 and dropout.
REGIME_SPEC = """
name = "regime-test"
task = "image_classification"
seeds = [0, 1, 2]

[dataset]
name = "digits"
train_fraction = { sweep = [1.0, 0.25, 0.5] }   # not in size order: the figure sorts by size

[model]
name = "small_cnn"

[training]
epochs = 2

[[sets]]
label = "none"

[[sets]]
label = "l2"
regularizers = [{ name = "l2", weight = 1e-3 }]

[[sets]]
label = "dropout"
regularizers = [{ name = "dropout", p = 0.25 }]
"""
SIZES = {0.25: 314, 0.5: 628, 1.0: 1257}  # the train_size each fraction's runs report
NONE_VAL = {0.25: [2.0, 2.2, 2.4], 0.5: [1.5, 1.6, 1.7], 1.0: [1.0, 1.1, 1.2]}  # per seed


def finish_losses(directory: Path, spec_dir: Path, text: str, val_loss, train_size=None) -> Path:
    """Register the spec's grid in a store at ``directory`` and finish every run with
    ``val_loss(run)`` as its final val loss (train loss 0.5) and ``train_size(run)`` in its
    summary (left out when that is None)."""
    spec_path = spec_dir / "spec.toml"
    spec_path.write_text(dedent(text).lstrip(), encoding="utf-8")

    def epochs(run) -> list[dict[str, float]]:
        val = val_loss(run)
        return [{"epoch": 1, "train_loss": 1.0, "val_loss": val + 0.3}, {"epoch": 2, "train_loss": 0.5, "val_loss": val}]

    def extra(run) -> dict[str, int]:
        size = train_size(run) if train_size else None
        return {} if size is None else {"train_size": size}

    return finish_runs(directory, spec_path, epochs, extra=extra)


def fraction(run) -> float:
    return run.config["dataset"]["params"]["train_fraction"]
