"""Tuned comparisons: [selection] carves a selection split out of the training data, each set's
candidates come from its ranges, and the leaderboard's tuned table chooses per set by the mean
selection loss and reports the held-out split (regsuite.selection)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helpers.reports import finish_runs, markdown_rows
from helpers.specs import TINY_SPEC
from regsuite import api, selection
from regsuite import leaderboard as lb
from regsuite.errors import DataError, SpecError
from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve, run_id_of, run_key_view
from regsuite.store import Store
from regsuite.train import build_context, prepare, run_training

REPO = Path(__file__).resolve().parents[1]

TUNED = TINY_SPEC.replace("epochs = 2", "epochs = 1").replace(
    'regularizers = [{ name = "l2", weight = 1e-3 }, { name = "dropout", p = 0.25 }]\n'
    'reference = { train_loss = 1.5, val_loss = 2.0 }',
    'regularizers = [{ name = "l2", weight = { range = [1e-6, 1e-2], log = true } }]',
).replace('label = "l2 + dropout"', 'label = "l2"') + """
[[sets]]
label = "l2 + dropout"
regularizers = [{ name = "l2", weight = { range = [1e-6, 1e-2], log = true } },
                { name = "dropout", p = { range = [0.05, 0.6] } }]

[selection]
fraction = 0.2
budget = 4
method = "random"
"""


def spec_of(files, text: str, *overrides: str):
    return load_spec(files({"spec.toml": text}) / "spec.toml", list(overrides))


def values_of(spec, label: str, key: str) -> list[float]:
    return [next(v for path, v in s.swept.items() if path.endswith(key)) for s in spec.sets if s.tuned_from == label]


# ---------------------------------------------------------------------------- candidates


def test_grid_candidates_are_evenly_spaced(files):
    spec = spec_of(files, TUNED, 'selection.method="grid"')
    assert values_of(spec, "l2", "weight") == [1e-6, 2.15e-5, 0.000464, 0.01]  # log-spaced, 3 significant digits
    pairs = [tuple(s.swept.values()) for s in spec.sets if s.tuned_from == "l2 + dropout"]
    assert pairs == [(1e-6, 0.05), (1e-6, 0.6), (0.01, 0.05), (0.01, 0.6)]  # 2 per axis: 2 ** 2 <= 4
    labels = [s.label for s in spec.sets]
    assert labels[:3] == ["none", "l2 (weight=1e-06)", "l2 (weight=2.15e-05)"]
    assert "l2 + dropout (weight=1e-06, p=0.6)" in labels
    assert spec.sets[0].tuned_from == "none" and spec.sets[0].swept == {}  # no ranges: one candidate
    linear = spec_of(files, TUNED, 'selection.method="grid"', "selection.budget=3",
                     'sets[1].regularizers[0].weight={ range = [0.0, 1.0] }')
    assert values_of(linear, "l2", "weight") == [0.0, 0.5, 1.0]
    single = spec_of(files, TUNED, 'selection.method="grid"', "selection.budget=1")
    assert values_of(single, "l2", "weight") == [1e-4]  # one point: the (geometric) middle


def test_random_candidates_are_seeded_in_range_and_exactly_the_budget(files):
    spec = spec_of(files, TUNED)
    weights = values_of(spec, "l2", "weight")
    ps = values_of(spec, "l2 + dropout", "p")
    assert len(weights) == len(ps) == 4 and len(set(weights)) == 4
    assert all(1e-6 <= w <= 1e-2 for w in weights) and all(0.05 <= p <= 0.6 for p in ps)
    assert all(float(f"{w:.3g}") == w for w in weights)
    assert values_of(spec_of(files, TUNED), "l2", "weight") == weights  # deterministic
    assert values_of(spec_of(files, TUNED, "selection.seed=1"), "l2", "weight") != weights
    # the set's label seeds its draws too: two sets with the same range draw differently
    assert values_of(spec, "l2 + dropout", "weight") != weights
    assert len(spec_of(files, TUNED, "selection.budget=7").sets) == 1 + 7 + 7


def test_random_draws_are_log_uniform(files):
    config = selection.SelectionConfig(fraction=0.2, budget=2000, method="random")
    regset = {"label": "l2", "regularizers": [{"name": "l2", "weight": {"range": [1e-6, 1e-2], "log": True}}]}
    points, located = selection.candidates(regset, "sets[0]", config)
    assert located == {"sets[0].regularizers[0].weight": ["regularizers", 0, "weight"]}
    logs = [math.log10(p["sets[0].regularizers[0].weight"]) for p in points]
    assert min(logs) >= -6 and max(logs) <= -2
    quarters = [sum(lo <= x < lo + 1 for x in logs) for lo in (-6, -5, -4, -3)]
    assert all(400 <= q <= 600 for q in quarters), quarters  # about 500 per decade


def test_grid_larger_than_the_budget_is_refused(files):
    swept = TUNED.replace('p = { range = [0.05, 0.6] }', "p = { sweep = [0.1, 0.2, 0.3] }")
    spec = spec_of(files, swept, 'selection.method="grid"')  # 3 listed p × 1 weight (4 // 3 = 1)
    assert [tuple(s.swept.values()) for s in spec.sets if s.tuned_from == "l2 + dropout"] == [
        (1e-4, 0.1), (1e-4, 0.2), (1e-4, 0.3)]
    spec = spec_of(files, swept, 'selection.method="grid"', "selection.budget=6")  # 2 weights × 3 p
    assert len([s for s in spec.sets if s.tuned_from == "l2 + dropout"]) == 6
    too_many = swept.replace("p = { sweep = [0.1, 0.2, 0.3] }", "p = { sweep = [0.1, 0.2, 0.3, 0.4, 0.5] }")
    with pytest.raises(SpecError, match=r"sets\[2\].*at least 5 candidates .* more than the budget of 4"):
        spec_of(files, too_many, 'selection.method="grid"')
    drawn = spec_of(files, swept)  # random: exactly the budget, p drawn from its list
    assert {s.swept["sets[2].regularizers[1].p"] for s in drawn.sets if s.tuned_from == "l2 + dropout"} <= {0.1, 0.2, 0.3}


@pytest.mark.parametrize("override, message", [
    ('sets[1].regularizers[0].weight={ range = [1e-2, 1e-6] }', "lo must be below hi"),
    ('sets[1].regularizers[0].weight={ range = [0.0, 1.0], log = true }', "log range needs lo > 0"),
    ('sets[1].regularizers[0].weight={ range = [1e-3] }', "two finite numbers"),
    ('sets[1].regularizers[0].weight={ range = [1e-6, 1e-2], step = 2 }', "unknown key"),
    ("training.lr={ range = [1e-4, 1e-2] }", "only in a set's regularizer parameters"),
])
def test_bad_ranges_are_spec_errors(files, override, message):
    with pytest.raises(SpecError, match=message):
        spec_of(files, TUNED, override)


def test_a_range_needs_a_selection_table(files):
    text = TUNED[: TUNED.index("[selection]")]
    with pytest.raises(SpecError, match=r"sets\[1\]\.regularizers\[0\]\.weight: a range .* needs a \[selection\] table"):
        spec_of(files, text)


def test_every_candidate_is_validated_as_a_plain_value(files):
    spec = spec_of(files, TUNED, 'sets[2].regularizers[1].p={ range = [0.5, 1.5] }', 'selection.method="grid"')
    with pytest.raises(SpecError, match=r"sets\[\d+\]\.regularizers\[1\]\.p"):
        resolve(spec, get_registry())


def test_bad_selection_tables_are_refused(files):
    for override in ("selection.fraction=1.0", "selection.budget=0", 'selection.method="bayes"', "selection.extra=1"):
        with pytest.raises(SpecError, match="selection"):
            spec_of(files, TUNED, override)


# ---------------------------------------------------------------------------- run keys


def test_a_spec_without_selection_keeps_its_run_ids_and_stored_form(files):
    registry = get_registry()
    for path in (REPO / "specs" / "quickstart.toml", files({"tiny.toml": TINY_SPEC}) / "tiny.toml"):
        spec = load_spec(path)
        stored = json.loads(spec.model_dump_json())
        assert "selection" not in stored and all("tuned_from" not in s for s in stored["sets"])
        plan = resolve(spec, registry)
        for run in plan.runs:
            assert set(run.config) == {"task", "dataset", "model", "regularizers", "training", "seed", "versions"}
            assert run.run_id == run_id_of(run_key_view(registry, run.config))


def test_the_selection_is_part_of_the_run_key(files):
    registry = get_registry()
    plain = resolve(spec_of(files, TINY_SPEC), registry)
    tuned = resolve(spec_of(files, TINY_SPEC + "\n[selection]\nfraction = 0.2\nbudget = 1\n"), registry)
    assert [s.label for s in tuned.spec.sets] == [s.label for s in plain.spec.sets]  # no ranges: one candidate each
    assert tuned.runs[0].config["selection"] == {"fraction": 0.2, "seed": 0}
    assert not {r.run_id for r in tuned.runs} & {r.run_id for r in plain.runs}
    reseeded = resolve(spec_of(files, TINY_SPEC + "\n[selection]\nfraction = 0.2\nseed = 1\nbudget = 1\n"), registry)
    assert not {r.run_id for r in reseeded.runs} & {r.run_id for r in tuned.runs}


# ---------------------------------------------------------------------------- the split


def test_the_selection_split_is_disjoint_balanced_and_the_same_for_every_run(files):
    plan = resolve(spec_of(files, TUNED), get_registry())
    registry = get_registry()
    loaded = build_context(plan.runs[0].config, registry).dataset.load().train
    splits = []
    for run in [plan.runs[0], plan.runs[1], plan.runs[-1]]:  # none seed 0, none seed 1, l2 + dropout seed 1
        ctx = build_context(run.config, registry)
        data, _, _ = prepare(ctx)
        assert ctx.train_size == len(data.train) == len(loaded) - len(ctx.selection)
        splits.append((data.train, ctx.selection))
    train, held = splits[0]
    for other_train, other_held in splits[1:]:
        assert torch.equal(held.inputs, other_held.inputs) and torch.equal(held.targets, other_held.targets)
        assert torch.equal(train.inputs, other_train.inputs)
    rows = {tuple(x.flatten().tolist()) for x in loaded.inputs}
    assert len(rows) == len(loaded)  # digits images are distinct, so rows identify samples
    train_rows = {tuple(x.flatten().tolist()) for x in train.inputs}
    held_rows = {tuple(x.flatten().tolist()) for x in held.inputs}
    assert not train_rows & held_rows and train_rows | held_rows == rows
    for c, n in zip(*torch.unique(loaded.targets, return_counts=True)):
        assert int((held.targets == c).sum()) == max(1, round(0.2 * int(n)))


def test_token_data_gets_a_random_share():
    split = api.Split(torch.arange(50 * 4).reshape(50, 4), torch.zeros(50, 4, dtype=torch.int64))
    train, held = selection.carve(split, 0.2, seed=0)
    assert len(held) == 10 and len(train) == 40
    assert not set(held.inputs[:, 0].tolist()) & set(train.inputs[:, 0].tolist())
    again, _ = selection.carve(split, 0.2, seed=0)
    assert torch.equal(again.inputs, train.inputs)


def test_a_fraction_that_leaves_nothing_is_a_data_error():
    split = api.Split(torch.zeros(3, 1), torch.tensor([0, 1, 2]))
    with pytest.raises(DataError, match="leaves no training samples"):
        selection.carve(split, 0.2, seed=0)


def test_a_run_evaluates_the_selection_split_every_epoch(files):
    plan = resolve(spec_of(files, TUNED), get_registry())
    summary = run_training(build_context(plan.runs[0].config, get_registry()))
    assert {"sel_loss", "sel_accuracy", "val_loss"} <= set(summary["final"])
    assert summary["selection_size"] > 0 and summary["train_size"] > 0


# ---------------------------------------------------------------------------- the tuned table

GRID = """
name = "handtuned"
task = "image_classification"
seeds = [0, 1, 2]

[dataset]
name = "digits"

[model]
name = "small_cnn"

[training]
epochs = 1

[selection]
fraction = 0.2
budget = 3
method = "grid"

[[sets]]
label = "none"

[[sets]]
label = "l2"
regularizers = [{ name = "l2", weight = { sweep = [1e-4, 1e-3, 1e-2] } }]

[[claims]]
text = "tuned l2 lowers val loss against none"
row = "l2"
lower_than = "none"
"""
# (sel loss, val loss) per seed. Mean sel loss: 1e-4 → 1.0, 1e-3 → 0.9 (chosen, though 1e-4 is
# lowest on seed 0), 1e-2 → 0.95. The chosen candidate's val loss against none's:
#   Δ = [-0.5, -0.4, -0.6] → -0.5, sd 0.1, 95% CI -0.5 ± 4.302653 × 0.1/√3 = [-0.748, -0.252].
NUMBERS = {
    "none": [(1.5, 2.0), (1.5, 2.0), (1.5, 2.0)],
    "l2 (weight=0.0001)": [(0.7, 1.0), (1.1, 1.0), (1.2, 1.0)],
    "l2 (weight=0.001)": [(0.8, 1.5), (0.9, 1.6), (1.0, 1.4)],
    "l2 (weight=0.01)": [(0.95, 0.1), (0.95, 0.1), (0.95, 0.1)],
}
ACCURACY = {"key": "accuracy", "label": "acc", "higher_is_better": True}


def make_store(directory: Path, files, test_split: bool = False) -> Store:
    def epochs(run) -> list[dict[str, float]]:
        sel, val = NUMBERS[run.label][run.seed]
        return [{"epoch": 1, "train_loss": 0.5, "val_loss": val, "val_accuracy": 1 - val / 4, "sel_loss": sel,
                 "sel_accuracy": 0.5, "train_penalty": 0.0}]

    def test(run) -> dict[str, float]:
        return {"test_loss": NUMBERS[run.label][run.seed][1] + 10, "test_accuracy": 0.25} if test_split else {}

    finish_runs(directory, files({"spec.toml": GRID}) / "spec.toml", epochs, test, extra=lambda run: {"metrics": [ACCURACY]})
    return Store(directory, create=False)


def test_the_tuned_table_chooses_the_lowest_mean_selection_loss(tmp_path, files):
    with make_store(tmp_path / "results", files) as store:
        board = lb.build(store, "handtuned")
    tuned = {t.label: t for t in board.tuned}
    assert list(tuned) == ["none", "l2"]
    assert tuned["l2"].chosen.label == "l2 (weight=0.001)" and len(tuned["l2"].candidates) == 3
    assert tuned["l2"].sel_loss.mean == pytest.approx(0.9)
    assert tuned["none"].is_baseline and tuned["none"].chosen.label == "none"
    # held-out = val: the chosen candidate's val loss, never its selection loss
    assert tuned["l2"].held_out == "val"
    assert tuned["l2"].stat("heldout_loss").mean == pytest.approx(1.5)
    assert tuned["l2"].stat("heldout_accuracy").mean == pytest.approx(1 - 1.5 / 4)
    assert tuned["l2"].stat("heldout_gap").mean == pytest.approx(1.0)
    d = tuned["l2"].delta
    assert (d.mean, d.low, d.high) == pytest.approx((-0.5, -0.5 - 4.302653 * 0.1 / math.sqrt(3),
                                                     -0.5 + 4.302653 * 0.1 / math.sqrt(3)), abs=1e-5)
    # the claims are judged on the chosen candidates
    assert [c.verdict for c in board.claims] == ["held"]
    text = lb.to_markdown(board)
    cells = markdown_rows(text.replace("| set ", "| regularizers "), "Tuned:")
    assert cells["l2"]["chosen"] == "weight=0.001" and cells["l2"]["held-out loss"] == "1.500 ± 0.100"
    assert cells["l2"]["Δ held-out loss [95% CI]"] == "**-0.500 [-0.748, -0.252]**"
    assert cells["none"]["chosen"] == "(as given)"
    records = json.loads(lb.to_json(board))["tuned"]
    assert records[1]["chosen"] == "l2 (weight=0.001)" and records[1]["chosen_swept"] == {"weight": 0.001}
    assert records[1]["delta_heldout_loss"] == pytest.approx(-0.5)
    assert "heldout_loss" in lb.to_csv(board)


def test_ties_go_to_the_first_candidate_and_where_does_not_change_the_choice(tmp_path, files):
    with make_store(tmp_path / "results", files) as store:
        board = lb.build(store, "handtuned", where={"weight": "0.01"})
    assert {t.label: t.chosen.label for t in board.tuned}["l2"] == "l2 (weight=0.001)"
    rows = [lb.Row("l2 (a)", "d", "m", {}), lb.Row("l2 (b)", "d", "m", {})]
    for row in rows:
        row.runs, row.by_seed = [object()], {"sel_loss": {0: 1.0}}
    assert lb.choose(rows)[0] is rows[0]


def test_the_held_out_split_is_test_where_the_runs_have_one(tmp_path, files):
    with make_store(tmp_path / "results", files, test_split=True) as store:
        board = lb.build(store, "handtuned")
    tuned = {t.label: t for t in board.tuned}
    assert tuned["l2"].held_out == "test" and tuned["l2"].chosen.label == "l2 (weight=0.001)"
    assert tuned["l2"].stat("heldout_loss").mean == pytest.approx(11.5)
    assert tuned["l2"].stat("heldout_accuracy").mean == pytest.approx(0.25)


def test_a_board_without_selection_has_no_tuned_table(tmp_path, files):
    from helpers.reports import make_handmade

    with Store(make_handmade(tmp_path / "results", tmp_path)) as store:
        board = lb.build(store, "handmade")
    assert board.tuned is None and "tuned" not in json.loads(lb.to_json(board)) and "Tuned" not in lb.to_markdown(board)


def test_tuned_from_is_written_by_regsuite(files):
    text = TUNED.replace('label = "none"', 'label = "none"\ntuned_from = "x"')
    with pytest.raises(SpecError, match="'tuned_from' is written by regsuite"):
        spec_of(files, text)


def test_held_out_labels_never_influence_the_choice(files):
    """Every run of a tuned spec trained twice: once as is, once with the held-out (val)
    labels scrambled. The selection metrics, the only input of the choice, are identical; the
    held-out metrics are not (so the scrambling did reach the runs)."""
    plan = resolve(spec_of(files, TUNED.replace("seeds = [0, 1]", "seeds = [0]")), get_registry())
    chosen = {}
    for scramble in (False, True):
        selection_losses, val_losses = {}, {}
        for run in plan.runs:
            ctx = build_context(run.config, get_registry())
            if scramble:
                load = ctx.dataset.load

                def scrambled(load=load):
                    data = load()
                    data.val.targets = (data.val.targets + 1) % data.info.num_classes
                    return data

                ctx.dataset.load = scrambled
                ctx.config = {**ctx.config, "dataset": {**ctx.config["dataset"], "fingerprint": None}}
            summary = run_training(ctx)
            selection_losses[run.label] = summary["final"]["sel_loss"]
            val_losses[run.label] = summary["final"]["val_loss"]
        groups: dict[str, list[str]] = {}
        for s in plan.spec.sets:
            groups.setdefault(s.tuned_from or s.label, []).append(s.label)
        chosen[scramble] = ({name: min(labels, key=selection_losses.get) for name, labels in groups.items()},
                            selection_losses, val_losses)
    assert chosen[True][0] == chosen[False][0]
    assert chosen[True][1] == chosen[False][1]
    assert all(chosen[True][2][label] != chosen[False][2][label] for label in chosen[False][2])
