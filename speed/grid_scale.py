"""How regsuite scales with the size of a grid: expanding and validating a swept spec, and the
store, the leaderboard and the summary figures with thousands of finished runs (generated,
nothing trains).

    python speed/grid_scale.py                      # 100,000-point grid; 5,000-run stores
    python speed/grid_scale.py --points 20000 --runs 1000

Prints seconds per step. The grid is digits × small_cnn × an L2 strength sweep × seeds
(its dataset is fingerprinted once, as every grid's is). The second store adds a
train_fraction sweep, so that its leaderboard has the data-regime table and its plots the
regime and sensitivity figures.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

SPEC = """
name = "scale"
task = "image_classification"
seeds = {seeds}
[dataset]
name = "digits"
train_limit = 100{fractions}
[model]
name = "small_cnn"
[training]
epochs = 3
[[sets]]
label = "none"
[[sets]]
label = "l2"
regularizers = [{{ name = "l2", weight = {{ sweep = {weights} }} }}]
"""


def spec_text(points: int, fractions: int = 1) -> str:
    """A grid of about ``points`` runs: 10 seeds × (none + an L2 sweep), at ``fractions``
    training fractions (a sweep of them when more than one)."""
    seeds = 10
    weights = max(1, math.ceil(points / seeds / fractions) - 1)  # (1 + weights) sets × seeds × fractions ≈ points
    values = [round(1e-6 * (1 + i), 12) for i in range(weights)]
    swept = [round(1.0 - 0.09 * i, 2) for i in range(fractions)]
    sweep = f"\ntrain_fraction = {{ sweep = {swept} }}" if fractions > 1 else ""
    return SPEC.format(seeds=list(range(seeds)), weights=values, fractions=sweep)


def timed(label: str, action):
    start = time.perf_counter()
    result = action()
    print(f"{label:<60} {time.perf_counter() - start:8.2f} s", flush=True)
    return result


def fake_finish(store, plan, runs: int) -> None:
    """Finish the first ``runs`` planned runs with made-up three-epoch curves."""
    for i, run in enumerate(plan.runs[:runs]):
        assert store.claim(run.run_id)
        epochs = [{"epoch": e, "train_loss": 2.0 - 0.3 * e + 1e-4 * i, "val_loss": 2.1 - 0.2 * e + 1e-4 * (i % 7),
                   "train_penalty": 0.0, "val_accuracy": 0.3 + 0.1 * e, "train_accuracy": 0.3 + 0.1 * e}
                  for e in (1, 2, 3)]
        for metrics in epochs:
            store.record_epoch(run.run_id, metrics["epoch"], {k: v for k, v in metrics.items() if k != "epoch"})
        final = {k: v for k, v in epochs[-1].items() if k != "epoch"}
        fraction = run.config["dataset"]["params"].get("train_fraction", 1.0)
        summary = {"final": final, "test": {}, "epochs_run": 3, "train_size": round(100 * fraction), "best_epoch": 3, "best_val_loss": final["val_loss"],
                   "gap": final["val_loss"] - final["train_loss"], "gap_at_best": final["val_loss"] - final["train_loss"],
                   "train_seconds": 1.0, "class_names": [str(d) for d in range(10)],
                   "metrics": [{"key": "accuracy", "label": "acc", "higher_is_better": True}]}
        store.finish(run.run_id, summary, "cpu", wall_time=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000, help="grid size to expand and validate")
    parser.add_argument("--runs", type=int, default=5_000, help="finished runs in the generated store")
    args = parser.parse_args()

    from regsuite import leaderboard as lb
    from regsuite import plots
    from regsuite.registry import get_registry
    from regsuite.spec import load_spec, resolve
    from regsuite.store import Store

    registry = get_registry()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big = root / "big.toml"
        big.write_text(spec_text(args.points), encoding="utf-8")
        spec = timed("load + expand + validate the spec", lambda: load_spec(big))
        plan = timed(f"resolve {args.points:,}-point grid (imports the data's libraries)", lambda: resolve(spec, registry))
        plan = timed(f"resolve {args.points:,}-point grid again", lambda: resolve(spec, registry))
        print(f"  → {len(plan.runs):,} runs, {len(spec.sets):,} sets")

        small = root / "small.toml"
        small.write_text(spec_text(args.runs), encoding="utf-8")
        plan = resolve(load_spec(small), registry)
        with Store(root / "results") as store:
            timed(f"register a {len(plan.runs):,}-run plan in the store", lambda: store.register_plan(plan))
            timed(f"finish {len(plan.runs):,} runs (3 epochs each)", lambda: fake_finish(store, plan, len(plan.runs)))
        with Store(root / "results", readonly=True) as store:
            board = timed("leaderboard: build", lambda: lb.build(store, "scale"))
            timed("leaderboard: markdown", lambda: lb.to_markdown(board))
            timed("leaderboard: build, --where weight=1e-6", lambda: lb.build(store, "scale", where={"weight": "1e-6"}))
            # Per-row plots are left out: they draw one figure per row (seconds per hundred rows).

        regime = root / "regime.toml"
        regime.write_text(spec_text(args.runs, fractions=10), encoding="utf-8")
        plan = resolve(load_spec(regime), registry)
        with Store(root / "regime-results") as store:
            store.register_plan(plan)
            timed(f"finish {len(plan.runs):,} runs at 10 train_fractions", lambda: fake_finish(store, plan, len(plan.runs)))
        with Store(root / "regime-results", readonly=True) as store:
            board = timed("leaderboard with the data-regime table: build", lambda: lb.build(store, "scale"))
            lines = sum(len(table.lines) for table in board.regime)
            print(f"  → {len(board.rows):,} rows, a data-regime table of {lines} lines × 10 sizes")
            timed("leaderboard with the data-regime table: markdown", lambda: lb.to_markdown(board))
            spec = store.spec_info("scale")["spec"]
            summaries = timed("regime + sensitivity figures: compute", lambda: plots.regime_figures(board, spec)
                              + plots.sensitivity_figures(board, spec))
            timed(f"regime + sensitivity figures: draw and save {len(summaries)} PNGs",
                  lambda: [plots.save(plots.summary_figure(f), root / f"{f.stem}.png") for f in summaries])

if __name__ == "__main__":
    main()
