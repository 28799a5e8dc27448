"""The regularizers that act on training rather than on data or slots alone: decoupled weight
decay (optimizer groups), max-norm (after each step), the confidence penalty (of the outputs),
drop path (EfficientNet-B0's block slots) and early stopping (after each epoch, resumable)."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from helpers.execution import write_spec
from helpers.reports import markdown_rows
from torch import nn

from regsuite import leaderboard as lb
from regsuite.api import IGNORE_TARGET, Batch, DataInfo
from regsuite.checkpoint import Checkpoints
from regsuite.errors import RegsuiteError, SpecError
from regsuite.execution.inprocess import run_plan
from regsuite.execution.run import StoreSink, execute_run
from regsuite.plugins.models.efficientnet_b0 import DropPathSlot, EfficientNetB0, EfficientNetB0Params
from regsuite.plugins.regularizers.confidence_penalty import ConfidencePenalty, ConfidencePenaltyParams
from regsuite.plugins.regularizers.drop_path import DropPath, DropPathParams
from regsuite.plugins.regularizers.early_stopping import EarlyStopping, EarlyStoppingParams
from regsuite.plugins.regularizers.max_norm import MaxNorm, MaxNormParams
from regsuite.plugins.regularizers.weight_decay import WeightDecay, WeightDecayParams
from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve
from regsuite.store import Store, worker_id
from regsuite.testing import smoke_train
from regsuite.train import Reporter, build_context, make_optimizer, run_training


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from more threads (and the cores may be busy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def plan_of(path):
    return resolve(load_spec(path), get_registry())


# ---------------------------------------------------------------------------- weight decay


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))


def test_weight_decay_splits_each_incoming_group_and_keeps_its_keys() -> None:
    net = tiny_net()
    first, rest = list(net[0].parameters()), [*net[1].parameters(), *net[3].parameters()]
    incoming = [{"params": first, "lr": 0.5, "tag": "first"}, {"params": rest, "tag": "rest"}]
    groups = WeightDecay(WeightDecayParams(rate=0.03)).param_groups(net, incoming)

    decayed = [g for g in groups if g["weight_decay"] > 0]
    kept = [g for g in groups if g["weight_decay"] == 0]
    assert [g["tag"] for g in decayed] == ["first", "rest"] and [g["tag"] for g in kept] == ["first", "rest"]
    assert all(g["lr"] == 0.5 for g in groups if g["tag"] == "first") and all("lr" not in g for g in groups if g["tag"] == "rest")
    assert all(g["weight_decay"] == 0.03 and g["decoupled_weight_decay"] is True for g in decayed)
    assert [[p.shape for p in g["params"]] for g in decayed] == [[(3, 4)], [(2, 3)]]  # the two weight matrices
    assert {id(p) for g in kept for p in g["params"]} == {id(net[0].bias), id(net[1].weight), id(net[1].bias),
                                                          id(net[3].bias)}  # biases and batch norm
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
    assert [g["params"] for g in incoming] == [first, rest]  # the incoming groups are not changed

    everything = WeightDecay(WeightDecayParams(include_biases=True)).param_groups(net, incoming)
    assert [len(g["params"]) for g in everything] == [2, 4] and all(g["weight_decay"] == 0.01 for g in everything)
    assert WeightDecayParams().rate == 0.01  # PyTorch AdamW's default


def step(net: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    torch.manual_seed(1)
    x = torch.randn(8, 4)
    optimizer.zero_grad()
    net(x).square().mean().backward()
    optimizer.step()


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_a_step_with_weight_decay_is_a_step_of_adamw(optimizer) -> None:
    rate, lr = 0.1, 0.05
    ours, reference, plain = tiny_net(), tiny_net(), tiny_net()
    groups = WeightDecay(WeightDecayParams(rate=rate)).param_groups(ours, [{"params": list(ours.parameters())}])
    step(ours, make_optimizer({"optimizer": optimizer, "lr": lr, "momentum": 0.9}, groups))

    weights = [p for p in reference.parameters() if p.ndim > 1]
    others = [p for p in reference.parameters() if p.ndim <= 1]
    step(reference, torch.optim.AdamW([{"params": weights, "weight_decay": rate},
                                       {"params": others, "weight_decay": 0.0}], lr=lr))
    step(plain, torch.optim.Adam(plain.parameters(), lr=lr))
    for mine, theirs, undecayed in zip(ours.parameters(), reference.parameters(), plain.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-7)
        if mine.ndim > 1:  # decayed: p·(1 − lr·rate) on top of Adam's step
            assert not torch.allclose(mine, undecayed, rtol=0, atol=1e-6)
        else:  # biases and batch norm: Adam's step alone
            torch.testing.assert_close(mine, undecayed, rtol=0, atol=1e-7)


def test_weight_decay_with_plain_sgd_is_sgds_weight_decay() -> None:
    ours, reference = tiny_net(), tiny_net()
    groups = WeightDecay(WeightDecayParams(rate=0.1)).param_groups(ours, [{"params": list(ours.parameters())}])
    step(ours, make_optimizer({"optimizer": "sgd", "lr": 0.05, "momentum": 0.0}, groups))
    weights = [p for p in reference.parameters() if p.ndim > 1]
    others = [p for p in reference.parameters() if p.ndim <= 1]
    step(reference, torch.optim.SGD([{"params": weights, "weight_decay": 0.1}, {"params": others}], lr=0.05))
    for mine, theirs in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-7)


@pytest.mark.parametrize("order", [("l2", "weight_decay"), ("weight_decay", "l2")])
def test_l2_with_weight_decay_is_one_spec_error(tmp_path, order) -> None:
    regs = ", ".join(f'{{ name = "{name}" }}' for name in order)
    spec = write_spec(tmp_path / "both.toml", {"none": "[]", "both": f"[{regs}]"})
    with pytest.raises(SpecError) as error:
        plan_of(spec)
    assert error.value.details == ["sets[1] ('both'): regularizers 'weight_decay' and 'l2' cannot be combined"]


def test_weight_decay_with_sgd_momentum_fails_the_run_clearly(tmp_path) -> None:
    spec = write_spec(tmp_path / "sgd.toml", {"wd": '[{ name = "weight_decay" }]'}, epochs=1)
    spec.write_text(spec.read_text().replace('device = "cpu"', 'device = "cpu"\noptimizer = "sgd"'))
    run = plan_of(spec).runs[0]
    assert run.config["training"]["momentum"] == 0.9
    with pytest.raises(RegsuiteError, match="not defined for SGD with momentum") as error:
        run_training(build_context(run.config, get_registry()))
    assert "momentum = 0" in error.value.hint


# ---------------------------------------------------------------------------- max-norm


def unit_norms(weight: torch.Tensor) -> torch.Tensor:
    return weight.flatten(1).norm(dim=1)


def test_max_norm_rescales_only_the_units_above_the_bound() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(6, 5), nn.Embedding(3, 7))
    with torch.no_grad():
        net[0].weight[:2] *= 20  # units 0, 1 above the bound, 2, 3 below
        net[2].weight[::2] *= 20  # rows 0, 2, 4 above
        net[3].weight *= 50  # embeddings are no units' incoming weights: untouched
    before = copy.deepcopy(net)
    with torch.no_grad():
        MaxNorm(MaxNormParams(max_norm=2.0)).after_step(net)
    for index, above in ((0, [True, True, False, False]), (2, [True, False, True, False, True])):
        old, new = before[index].weight, net[index].weight
        assert (unit_norms(old) > 2.0).tolist() == above
        assert (unit_norms(new) <= 2.0).all()
        for unit, is_above in enumerate(above):
            if is_above:  # projected onto the ball: same direction, norm 2
                assert unit_norms(new[unit : unit + 1]).item() == pytest.approx(2.0, abs=1e-5)
                torch.testing.assert_close(new[unit] / 2.0, old[unit] / unit_norms(old[unit : unit + 1]), atol=1e-6, rtol=0)
            else:
                assert torch.equal(new[unit], old[unit])
        assert torch.equal(net[index].bias, before[index].bias)
    assert torch.equal(net[3].weight, before[3].weight)
    assert MaxNormParams().max_norm == 3.0


def test_max_norm_holds_after_every_step_of_a_run(tmp_path) -> None:
    summary, context = smoke_train(tmp_path, "image_classification", regularizers=[{"name": "max_norm", "max_norm": 0.2}],
                                   training={"epochs": 1, "batch_size": 16, "device": "cpu", "lr": 0.05},
                                   with_context=True)
    layers = [m for m in context.built_model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert layers and all((unit_norms(m.weight) <= 0.2 + 1e-6).all() for m in layers)
    assert any((unit_norms(m.weight) > 0.199).any() for m in layers)  # the bound was reached, not idle


# ---------------------------------------------------------------------------- confidence penalty


def by_hand_entropy(logits: torch.Tensor) -> torch.Tensor:
    p = torch.softmax(logits.double(), dim=-1)
    return -(p * p.log()).sum(dim=-1)


def test_confidence_penalty_is_minus_beta_times_the_mean_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 5) * 3
    batch = Batch(inputs=torch.zeros(6), targets=torch.arange(6) % 5)
    penalty = ConfidencePenalty(ConfidencePenaltyParams(beta=0.3)).output_penalty(logits, batch)
    entropy = by_hand_entropy(logits)
    assert penalty.item() == pytest.approx(-0.3 * entropy.mean().item(), rel=1e-6)
    assert ConfidencePenaltyParams().beta == 0.1 and ConfidencePenaltyParams().threshold is None

    hinge = ConfidencePenalty(ConfidencePenaltyParams(beta=0.3, threshold=1.0)).output_penalty(logits, batch)
    assert hinge.item() == pytest.approx(0.3 * (1.0 - entropy).clamp_min(0).mean().item(), rel=1e-6)
    assert 0 < (entropy < 1.0).sum() < 6  # the hinge is active for some samples only
    uniform = ConfidencePenalty(ConfidencePenaltyParams(threshold=1.0)).output_penalty(torch.zeros(4, 5), batch)
    assert uniform.item() == 0.0  # entropy ln 5 > 1: nothing to penalize


def test_confidence_penalty_of_token_outputs_skips_padding() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 6, requires_grad=True)
    targets = torch.tensor([[1, 2, IGNORE_TARGET, IGNORE_TARGET], [0, 1, 2, 3], [5, IGNORE_TARGET, IGNORE_TARGET, IGNORE_TARGET]])
    batch = Batch(inputs=torch.zeros(3, 4, dtype=torch.long), targets=targets)
    reg = ConfidencePenalty(ConfidencePenaltyParams(beta=0.5))
    penalty = reg.output_penalty(logits, batch)
    real = targets != IGNORE_TARGET
    assert penalty.item() == pytest.approx(-0.5 * by_hand_entropy(logits.detach())[real].mean().item(), rel=1e-6)

    penalty.backward()
    assert torch.equal(logits.grad[~real], torch.zeros_like(logits.grad[~real])) and logits.grad[real].abs().sum() > 0
    changed = logits.detach().clone()
    changed[~real] = 100 * torch.randn_like(changed[~real])
    assert reg.output_penalty(changed, batch).item() == pytest.approx(penalty.item(), rel=1e-6)
    everything_padded = batch.replace(targets=torch.full_like(targets, IGNORE_TARGET))
    assert reg.output_penalty(logits, everything_padded).item() == 0.0


def test_confidence_penalty_is_reported_as_the_train_penalty(tmp_path) -> None:
    summary = smoke_train(tmp_path, "image_classification", regularizers=[{"name": "confidence_penalty", "beta": 0.2}])
    penalty = summary["final"]["train_penalty"]
    assert -0.2 * math.log(10) <= penalty < 0  # −β·H, H between 0 and ln 10 for digits' 10 classes


# ---------------------------------------------------------------------------- drop path

INFO = DataInfo(num_classes=5, input_shape=(3, 16, 16), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))


def efficientnet(**params) -> nn.Module:
    torch.manual_seed(0)
    return EfficientNetB0(EfficientNetB0Params(resize=32, **params)).build(INFO)


def test_drop_path_fills_the_16_block_slots_with_its_schedule() -> None:
    from torchvision.ops import StochasticDepth

    model = efficientnet()
    slots = [m for m in model.modules() if isinstance(m, DropPathSlot)]
    assert [s.index for s in slots] == list(range(16)) and slots[-1].depth == 1.0
    assert [s.builtin.p for s in slots] == pytest.approx([0.2 * i / 16 for i in range(16)])  # torchvision's, unfilled

    model = DropPath(DropPathParams(rate=0.4)).configure_model(model)
    assert not any(isinstance(m, DropPathSlot) for m in model.modules())
    filled = [block.stochastic_depth for block in model[-1].features.modules() if hasattr(block, "stochastic_depth")]
    assert len(filled) == 16 and all(type(m) is StochasticDepth and m.mode == "row" for m in filled)
    assert [m.p for m in filled] == pytest.approx([0.4 * (i + 1) / 16 for i in range(16)])  # the paper's l/L·p_L
    assert model.train()(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)).shape == (2, 5)

    uniform = DropPath(DropPathParams(rate=0.3, schedule="uniform")).configure_model(efficientnet())
    assert [m.p for m in uniform.modules() if isinstance(m, StochasticDepth)] == [0.3] * 16
    assert DropPathParams().rate == 0.2 and DropPathParams().schedule == "linear"


def test_drop_path_needs_a_model_with_drop_path_slots(tmp_path) -> None:
    spec = write_spec(tmp_path / "dp.toml", {"dp": '[{ name = "drop_path" }]'})
    with pytest.raises(SpecError) as error:
        plan_of(spec)
    assert any("needs 'drop_path' slots, which model 'small_cnn' does not have" in line for line in error.value.details)


# ---------------------------------------------------------------------------- early stopping


def stops(reg: EarlyStopping, values: list[float], monitor: str = "val_loss") -> list[bool]:
    return [reg.after_epoch(epoch, {monitor: value, "train_loss": 0.0}) for epoch, value in enumerate(values, 1)]


def early(**params) -> EarlyStopping:
    return EarlyStopping(EarlyStoppingParams(**params))


def test_early_stopping_counts_epochs_without_improvement() -> None:
    assert stops(early(patience=2), [1.0, 0.9, 0.95, 0.85, 0.9, 0.9]) == [False, False, False, False, False, True]
    reg = early(patience=2)
    stops(reg, [1.0, 0.9, 0.95])
    assert (reg.best, reg.best_epoch, reg.wait) == (0.9, 2, 1)
    # min_delta: 1.0 → 0.96 is no improvement by more than 0.05, 1.0 → 0.9 is
    assert stops(early(patience=1, min_delta=0.05), [1.0, 0.96]) == [False, True]
    assert stops(early(patience=1, min_delta=0.05), [1.0, 0.9]) == [False, False]
    assert EarlyStoppingParams().patience == 5 and EarlyStoppingParams().monitor == "val_loss"


def test_early_stopping_baseline_and_mode() -> None:
    # the baseline must be beaten from the start
    assert stops(early(patience=2, baseline=0.5), [0.8, 0.7, 0.6]) == [False, True, True]
    assert stops(early(patience=2, baseline=0.5), [0.8, 0.4, 0.45, 0.42]) == [False, False, False, True]
    # accuracy is higher-is-better under mode auto; explicit modes override the name
    assert early(monitor="val_accuracy").higher_is_better and not early().higher_is_better
    assert stops(early(monitor="val_accuracy", patience=1), [0.5, 0.6, 0.55], "val_accuracy") == [False, False, True]
    assert stops(early(monitor="val_accuracy", mode="min", patience=1), [0.5, 0.6], "val_accuracy") == [False, True]
    assert stops(early(mode="max", patience=1, baseline=2.0), [1.0], "val_loss") == [True]


def test_an_unknown_monitor_is_a_clear_error() -> None:
    with pytest.raises(RegsuiteError) as error:
        early(monitor="val_acc").after_epoch(1, {"val_loss": 1.0, "val_accuracy": 0.5, "train_loss": 1.2})
    assert "'val_acc'" in error.value.message and "train_loss, val_accuracy, val_loss" in error.value.message
    assert "monitor" in error.value.hint


def test_early_stopping_state_continues_the_count() -> None:
    values = [1.0, 0.9, 0.95, 0.97, 0.96]
    whole = stops(early(patience=3), values)
    first = early(patience=3)
    decided = stops(first, values[:3])
    state = first.state_dict()
    assert state == {"best": 0.9, "best_epoch": 2, "wait": 1}
    second = early(patience=3)
    second.load_state_dict(state)
    decided += [second.after_epoch(epoch, {"val_loss": v}) for epoch, v in enumerate(values[3:], 4)]
    assert decided == whole == [False, False, False, False, True]


class StopAfter(Reporter):
    """Ctrl-C, as it were, right after epoch ``epoch`` was checkpointed."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def epoch_done(self, epoch: int, metrics: dict) -> None:
        if epoch == self.epoch + 1:
            raise KeyboardInterrupt


def test_a_resumed_run_continues_the_early_stopping_count(tmp_path) -> None:
    # No val loss beats the baseline 0: with patience 2 training stops after epoch 2, also when
    # the run is interrupted after epoch 1 (a resumed count starting at 0 would stop after 3).
    regs = '[{ name = "early_stopping", patience = 2, baseline = 0.0 }]'
    plan = plan_of(write_spec(tmp_path / "es.toml", {"early": regs}, epochs=4))
    run = plan.runs[0]
    results = tmp_path / "results"
    checkpoints = Checkpoints(results / "checkpoints")
    with Store(results) as store:
        store.register_plan(plan)
        for reporter, expected in ((StopAfter(1), "interrupted"), (None, "done")):
            assert store.claim(run.run_id, owner=worker_id())
            result = execute_run(run.run_id, run.config, StoreSink(store, run.run_id, worker_id()), checkpoints, reporter)
            assert result.status == expected, result.error
            if expected == "interrupted":
                saved = checkpoints.load(run.run_id)
                assert saved.epoch == 1 and saved.payload["regularizers"][0]["wait"] == 1
        summary = store.get_run(run.run_id).summary
    assert summary["resumed_from_epoch"] == 1 and summary["epochs_run"] == 2


def test_the_leaderboard_shows_epochs_run_when_a_run_stopped_early(tmp_path) -> None:
    regs = '[{ name = "early_stopping", patience = 1, baseline = 0.0 }]'
    plan = plan_of(write_spec(tmp_path / "stop.toml", {"none": "[]", "early stopping": regs}, epochs=3))
    with Store(tmp_path / "results") as store:
        store.register_plan(plan)
        outcome = run_plan(plan, store, get_registry())
        assert not outcome.stopped
        board = lb.build(store, "stop")
    assert "epochs_run" in [c.key for c in board.columns]
    rows = markdown_rows(lb.to_markdown(board), "Overfitting diagnostics")
    assert rows["early stopping"]["epochs run"].startswith("1") and rows["none"]["epochs run"].startswith("3")
