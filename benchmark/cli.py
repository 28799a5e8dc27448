"""The ``regsuite`` command line. Errors at this boundary become one message and exit 2
(``REGSUITE_DEBUG=1`` shows the traceback).

Each command imports what it uses when it runs: most of regsuite imports torch (seconds),
which ``regsuite --help``, ``version`` or ``leaderboard`` do not need. This module is the
only one that imports :mod:`regsuite.progress`, and the only one that composes the layers
(see the import contracts in ``pyproject.toml``)."""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from regsuite import __version__
from regsuite.errors import RegsuiteError, at_most

if TYPE_CHECKING:
    from regsuite.store import RunStatus

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark what regularizers do to generalization.")
console = Console()
errors = Console(stderr=True)

RESULTS_HELP = "folder of the results store (regsuite.db); default ./results or $REGSUITE_RESULTS"
SET_HELP = "override a spec value, e.g. --set training.epochs=1 --set seeds=[0,1] (repeatable)"
FORMATS = ("rich", "markdown", "csv", "json")


def tagged(tag: str, style: str, message: object) -> Text:
    """``tag`` in ``style``, then ``message`` as it is: user text (labels, paths, error
    messages) is never read as rich markup."""
    return Text.assemble((tag, style), " ", str(message))


def friendly(command: Callable) -> Callable:
    """Turn domain errors into one plain message on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RegsuiteError as exc:
            if os.environ.get("REGSUITE_DEBUG"):
                raise
            errors.print(tagged("error:", "bold red", exc), highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if os.environ.get("REGSUITE_DEBUG"):
                raise
            errors.print("interrupted; finished runs are kept. Run the same command again to resume.")
            raise typer.Exit(130) from None

    return wrapper


def results_dir(results: Optional[Path]) -> Path:
    from regsuite.store import default_results_dir

    return results if results is not None else default_results_dir()


def load_plan(spec: Path, overrides: list[str]):
    """The spec's plan under ``overrides``; when they pick part of the file's grid, its
    ``whole`` is the file's plan (see spec.whole_plan) and the command says so."""
    from regsuite.registry import get_registry
    from regsuite.spec import load_spec, resolve, whole_plan

    registry = get_registry()
    plan = resolve(load_spec(spec, overrides), registry)
    if overrides:
        plan.whole = whole_plan(spec, overrides, plan, registry)
        if plan.whole is not None:
            console.print(f"--set picks {len(plan.runs)} of the spec's {len(plan.whole.runs)} runs; `run` records the "
                          "whole spec, so its leaderboard gathers every part", highlight=False, markup=False)
    return plan, registry


@app.command()
@friendly
def run(
    spec: Path = typer.Argument(..., help="TOML spec file"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="train failed runs again"),
    export: bool = typer.Option(False, "--export", help="also write leaderboard/<spec name>.md and its plots"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write learning-curve PNGs to <results>/plots/<spec>/"),
    executor: Optional[str] = typer.Option(None, "--executor", help="local (worker processes, default) or ray"),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", help="runs at once (default: GPUs × runs per GPU, or 1 on CPU; 0 = in this process)"),
    runs_per_gpu: Optional[int] = typer.Option(None, "--runs-per-gpu", help="runs sharing each GPU (local executor)"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads per run (default: cores // runs at once)"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="seconds a run may take before it is killed and recorded as failed"),
    keep_checkpoints: Optional[bool] = typer.Option(None, "--keep-checkpoints", help="keep the checkpoints of finished runs"),
    address: Optional[str] = typer.Option(None, "--address", help='Ray cluster address ("auto", "host:6379"); default: a local Ray instance'),
    num_gpus: Optional[float] = typer.Option(None, "--num-gpus", help="GPUs per run on Ray (fractional allowed)"),
    num_cpus: Optional[float] = typer.Option(None, "--num-cpus", help="CPUs per run on Ray"),
) -> None:
    """Train every run of SPEC that is not finished yet, then print the leaderboard and write the plots.

    Flags override the spec's execution table; execution settings never change run ids."""
    from regsuite.execution import execute_plan
    from regsuite.progress import RichGridReporter
    from regsuite.store import Store

    plan, registry = load_plan(spec, set_)
    execution = plan.spec.execution.with_overrides(
        executor=executor, workers=workers, runs_per_gpu=runs_per_gpu, threads=threads, timeout=timeout,
        keep_checkpoints=keep_checkpoints, address=address, num_gpus=num_gpus, num_cpus=num_cpus)
    if execution.executor == "ray":
        from regsuite.execution.ray_cluster import import_ray

        import_ray()  # a missing Ray is reported before anything is written
    directory = results_dir(results)
    with Store(directory) as store:
        with RichGridReporter(console) as reporter:
            outcome = execute_plan(plan, store, registry, reporter, execution, retry_failed=retry_failed)
        console.print(
            f"trained {len(outcome.trained)}, already done {len(outcome.skipped)}, failed {len(outcome.failed)}"
            + (f", interrupted {len(outcome.interrupted)}" if outcome.interrupted else "")
            + (f", failed before {len(outcome.failed_before)} (not retried)" if outcome.failed_before else "")
            + (f", busy elsewhere {len(outcome.busy)}" if outcome.busy else "")
        )
        try:
            show_leaderboard(store, plan.spec.name, "rich", "val_loss")
        except RegsuiteError as exc:  # nothing finished yet: the summary below says why
            console.print(f"no leaderboard: {exc.message}", highlight=False, markup=False)
        else:
            if plots:
                print_plots(write_plot_files(store, plan.spec.name, plot_root(directory, None)))
            if export:
                try:
                    console.print(f"wrote {write_export(store, plan.spec.name, Path('leaderboard'), command_line())}",
                                  markup=False)
                except RegsuiteError as exc:  # the runs are done; say why the export is not, then report failures
                    errors.print(tagged("not exported:", "bold red", exc), highlight=False, soft_wrap=True)
    console.print(f"results: {directory / 'regsuite.db'}", markup=False)
    for shown, (planned, reason) in enumerate(outcome.failed):
        lines = reason.splitlines() or [""]
        errors.print(f"failed: {planned.describe()}: {lines[0]}", highlight=False, markup=False)
        if shown < FAILURE_TAILS_SHOWN and len(lines) > 1:  # what the run or its worker said last
            tail = "\n".join(f"    {line}" for line in lines[1:][-FAILURE_TAIL_LINES:])
            errors.print(tail, highlight=False, markup=False, soft_wrap=True)
    if outcome.stopped:
        errors.print(f"stopped: {len(outcome.interrupted)} run(s) interrupted, their last checkpoints kept. "
                     f"Resume with: {command_line()}", highlight=False, markup=False)
        raise typer.Exit(130)
    if outcome.interrupted:  # a signal stopped workers, not this process: the grid is not complete
        errors.print(f"{len(outcome.interrupted)} run(s) interrupted: a signal stopped their worker; their last "
                     f"checkpoints are kept. Resume with: {command_line()}", highlight=False, markup=False)
    if outcome.failed:
        errors.print(f"{len(outcome.failed)} run(s) failed; the others are kept. Fix the cause and rerun with "
                     f"--retry-failed (the reasons are in the store; worker logs in {directory / 'logs'}).", markup=False)
        raise typer.Exit(1)
    if outcome.interrupted:
        raise typer.Exit(1)
    if outcome.failed_before:
        errors.print(f"{len(outcome.failed_before)} run(s) of this grid failed in an earlier invocation and were "
                     "not retried; --retry-failed trains them again.")
        raise typer.Exit(1)


FAILURE_TAILS_SHOWN = 3  # failed runs whose last lines of output `run` prints (all are in the store)
FAILURE_TAIL_LINES = 6


@app.command()
@friendly
def validate(
    spec: Path = typer.Argument(..., help="TOML spec file"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
) -> None:
    """Validate SPEC and show the runs it expands to; trains nothing, writes nothing."""
    from regsuite.store import Store, store_exists

    plan, registry = load_plan(spec, set_)
    directory = results_dir(results)
    statuses: dict[str, RunStatus | str] = {}
    if store_exists(directory):
        with Store(directory, readonly=True) as store:
            statuses = store.statuses([r.run_id for r in plan.runs])
            statuses.update(code_changed(store, plan, registry, statuses))
    if plan.spec.sweeps:
        console.print(sweep_table(plan))
        console.print(grid_size(plan), highlight=False, markup=False, soft_wrap=True)
    table = Table(title=Text(f"{plan.spec.name}: {len(plan.runs)} runs ({plan.spec.task.name})"))
    for head in ("#", "run id", "dataset", "model", "set", "regularizers", "seed", "status"):
        table.add_column(head, overflow="fold")
    given = {s.label: ", ".join(describe_ref(r) for r in s.regularizers) or "—" for s in plan.spec.sets}
    if len(plan.runs) > MAX_LISTED_RUNS:
        table.caption = f"the first {MAX_LISTED_RUNS} of {len(plan.runs)} runs"
    for i, planned in enumerate(plan.runs[:MAX_LISTED_RUNS], 1):
        c = planned.config
        table.add_row(*map(Text, (str(i), planned.run_id[:12], c["dataset"]["name"], c["model"]["name"], planned.label,
                                  given[planned.label], str(planned.seed), statuses.get(planned.run_id, "new"))))
    console.print(table)
    done = sum(1 for s in statuses.values() if s == "done")
    console.print(f"spec is valid: {len(plan.runs)} runs, {done} done, {len(plan.runs) - done} to train")
    changed = sum(1 for s in statuses.values() if s == CODE_CHANGED)
    if changed:
        console.print(f"{changed} run(s) {CODE_CHANGED}: the store holds runs identical to them but for the code of "
                      "a third-party plugin, which is part of a run's key; they train anew (the old runs are kept)",
                      highlight=False, markup=False)


CODE_CHANGED = "code changed"
MAX_LISTED_RUNS = 200  # a sweep's grid may hold thousands: validate lists the first ones


def sweep_table(plan) -> Table:
    """The spec's swept axes and the grid's size, dimension by dimension."""
    spec = plan.spec
    table = Table(title=Text(f"{spec.name}: sweeps"))
    for head in ("axis", "values", "n"):
        table.add_column(head, overflow="fold")
    for axis in spec.sweeps:
        table.add_row(Text(axis.path), Text(", ".join(json.dumps(v) for v in axis.values)), Text(str(len(axis.values))))
    return table


def grid_size(plan) -> str:
    spec = plan.spec
    parts = [(len(spec.refs("dataset")), "dataset"), (len(spec.refs("model")), "model"),
             (len(spec.training_settings()), "training setting"), (len(spec.sets), "set"), (len(spec.seeds), "seed")]
    product = " × ".join(f"{n} {name}{'s' if n != 1 else ''}" for n, name in parts)
    return f"grid: {product} = {len(plan.runs)} runs"


def code_changed(store, plan, registry, statuses) -> dict[str, str]:
    """The planned runs, new to the store, for which the spec's stored rows hold a run that
    differs only in the code of third-party plugins: ``{run_id: "code changed"}``."""
    from regsuite.spec import run_id_without_plugin_code

    new = {r.run_id: r for r in plan.runs if r.run_id not in statuses and "plugin_code" in r.config["versions"]}
    if not new:
        return {}
    stored = set()
    for _, _, record in store.spec_rows(plan.spec.name):
        if "plugin_code" not in record.config.get("versions", {}):
            continue
        try:
            stored.add(run_id_without_plugin_code(registry, record.config))
        except (RegsuiteError, KeyError, TypeError):  # a plugin it used is gone: not comparable
            continue
    return {run_id: CODE_CHANGED for run_id, r in new.items() if run_id_without_plugin_code(registry, r.config) in stored}


def describe_ref(ref) -> str:
    params = ", ".join(f"{k}={v}" for k, v in ref.params.items())
    return f"{ref.name}({params})" if params else ref.name


@app.command()
@friendly
def leaderboard(
    spec: Optional[str] = typer.Argument(None, help="spec name or spec file (default: every spec in the store)"),
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
    format: str = typer.Option("rich", "--format", "-f", help="rich, markdown, csv or json"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write to this file instead of the terminal"),
    export: bool = typer.Option(False, "--export", help="write leaderboard/<spec name>.md and its plots in leaderboard/<spec name>/"),
    partial: bool = typer.Option(False, "--partial", help="with --export: publish even though some runs are unfinished"),
    sort: str = typer.Option("val_loss", "--sort",
                             help="column to rank by (val_loss, gap, train_loss, val_accuracy, delta_val_loss, best_epoch, label, …)"),
    where: list[str] = typer.Option([], "--where", help="keep rows whose swept value matches, e.g. --where weight=1e-4 (repeatable)"),
) -> None:
    """Render the leaderboard from stored results, without training."""
    from regsuite.store import Store

    if format not in FORMATS:
        raise RegsuiteError(f"unknown format {format!r}", hint=f"choose one of: {', '.join(FORMATS)}")
    with Store(results_dir(results), readonly=True) as store:
        names = [spec_name_of(spec)] if spec else store.spec_names()
        if not names:
            raise RegsuiteError(f"the results store {store.path} holds no runs", hint="run a spec first: regsuite run SPEC")
        if export:
            names = names_for_paths(names, store, given=spec is not None)
            for name in names:
                console.print(f"wrote {write_export(store, name, Path('leaderboard'), command_line(), sort, partial)}",
                              markup=False)
            return
        selection = parse_where(where)
        texts = [show_leaderboard(store, name, format, sort, to_terminal=out is None, where=selection) for name in names]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(texts), encoding="utf-8")
        console.print(f"wrote {out}", markup=False)


def names_for_paths(names: list[str], store, given: bool) -> list[str]:
    """Spec names about to become file names, checked first: given on the command line, or
    read back from ``store`` (which may hold anything)."""
    from regsuite.safety import check_spec_names

    return check_spec_names(names, None if given else f"the results store {store.path}")


def spec_name_of(spec: str) -> str:
    path = Path(spec)
    if path.suffix == ".toml":
        from regsuite.spec import load_spec

        return load_spec(path).name
    return spec


def parse_where(where: list[str]) -> dict[str, str]:
    selection = {}
    for text in where:
        key, sep, value = text.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise RegsuiteError(f"--where {text!r} is not of the form name=value", hint="e.g. --where weight=1e-4")
        selection[key.strip()] = value.strip()
    return selection


def show_leaderboard(store, name: str, format: str, sort: str, to_terminal: bool = True,
                     where: dict[str, str] | None = None) -> str:
    """Render one spec's leaderboard; print it when ``to_terminal``; return it as text.
    Unfinished runs are named on stderr: the table shows what exists."""
    from regsuite import leaderboard as lb

    board = lb.build(store, name, sort, where=where)
    rendered = lb.RENDERERS[format](board)
    if format == "rich":
        with open(os.devnull, "w") as sink:
            recorder = Console(record=True, width=120, file=sink)
            recorder.print(rendered)
        text = recorder.export_text()
        if to_terminal:
            wide_enough(console).print(rendered)
    else:
        text = rendered if rendered.endswith("\n") else rendered + "\n"
        if to_terminal:
            sys.stdout.write(text)
    if board.missing:
        warn_missing(board)
    return text


def wide_enough(target: Console, width: int = 120) -> Console:
    """Piped output gets 80 columns from rich, too few for the leaderboard: give it ``width``."""
    if target.is_terminal or target.width >= width:
        return target
    return Console(file=target.file, width=width, highlight=False)


def warn_missing(board) -> None:
    shown = at_most(board.missing)
    errors.print(tagged("warning:", "yellow", f"{board.spec_name}: {len(board.missing)} planned run(s) not finished; "
                        "the table shows the finished ones. Missing:"), highlight=False, soft_wrap=True)
    for line in shown:
        errors.print(f"  - {line}", highlight=False, markup=False, soft_wrap=True)
    errors.print(f"hint: finish them with regsuite run specs/{board.spec_name}.toml "
                 "(add --retry-failed for failed ones)", highlight=False, markup=False, soft_wrap=True)


def write_export(store, name: str, directory: Path, command: str, sort: str = "val_loss",
                 partial: bool = False) -> Path:
    from regsuite import export
    from regsuite.registry import get_registry

    return export.write_markdown(store, name, directory, command, sort, partial, registry=get_registry())


def plot_root(results: Path, out: Optional[Path]) -> Path:
    return out if out is not None else results / "plots"


def write_plot_files(store, name: str, root: Path) -> list:
    from regsuite.plots import write_spec_plots

    return write_spec_plots(store, name, root)


def print_plots(files: list) -> None:
    if files:
        console.print(f"plots ({len(files)}) in {files[0].path.parent}:", highlight=False, markup=False)
    for file in files:
        console.print(f"  {file.path}", highlight=False, markup=False, soft_wrap=True)


@app.command()
@friendly
def plot(
    spec: Optional[str] = typer.Argument(None, help="spec name or spec file (default: every spec in the store)"),
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for the plots (default <results>/plots); each spec gets a subfolder"),
) -> None:
    """Write learning-curve PNGs: per row loss and metrics per epoch (train vs val), and an overview of every row."""
    from regsuite.store import Store

    directory = results_dir(results)
    with Store(directory, readonly=True) as store:
        names = [spec_name_of(spec)] if spec else store.spec_names()
        if not names:
            raise RegsuiteError(f"the results store {store.path} holds no runs", hint="run a spec first: regsuite run SPEC")
        for name in names_for_paths(names, store, given=spec is not None):
            print_plots(write_plot_files(store, name, plot_root(directory, out)))


def command_line() -> str:
    import shlex

    return shlex.join(["regsuite", *sys.argv[1:]])


@app.command()
@friendly
def plugins(
    name: Optional[str] = typer.Argument(None, help="show this plugin in full: its docstring and every parameter"),
    kind: Optional[str] = typer.Option(None, "--kind", help="only this kind: task, dataset, model or regularizer"),
) -> None:
    """List every registered task, dataset, model and regularizer: what it serves, its slots, who provides it.

    With NAME, one plugin in full: module, docstring, tasks, slots, conflicts, and each parameter's
    type, default, range and description."""
    from regsuite import plugin_listing
    from regsuite.registry import get_registry

    registry = get_registry()
    shown = plugin_listing.overview(registry, kind) if name is None else plugin_listing.details(registry, name, kind)
    for renderable in shown:
        console.print(renderable, highlight=False)


data_app = typer.Typer(no_args_is_help=True, help="Fetch the files that datasets need, for offline runs.")
app.add_typer(data_app, name="data")


@data_app.command("download")
@friendly
def data_download(
    dataset: str = typer.Argument(..., help="dataset name (regsuite plugins lists them)"),
    directory: Optional[Path] = typer.Option(None, "--dir", help="where to put the files (default: the dataset's documented place)"),
) -> None:
    """Download what DATASET needs, so that runs work without a network."""
    from regsuite.registry import get_registry

    lines = get_registry().cls("dataset", dataset).download(directory)
    for line in lines or [f"dataset {dataset!r} has nothing to download"]:
        console.print(line, highlight=False, markup=False)


results_app = typer.Typer(no_args_is_help=True, help="Carry finished runs between results stores as JSON-lines files.")
app.add_typer(results_app, name="results")


@results_app.command("export")
@friendly
def results_export(
    spec: Optional[str] = typer.Argument(None, help="spec name or spec file (default: every finished run of the store; then give --out)"),
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="the file to write (default leaderboard/<spec name>.runs.jsonl)"),
) -> None:
    """Write the finished runs (configs, summaries, per-epoch metrics, spec rows) to a JSON-lines file
    that `regsuite results import` merges into another store. No paths of this machine go into it."""
    from regsuite import results_file
    from regsuite.store import Store

    name = spec_name_of(spec) if spec else None
    if out is None:
        if name is None:
            raise RegsuiteError("exporting every spec of the store needs --out FILE",
                                hint="or name one spec: regsuite results export SPEC (writes leaderboard/<spec>.runs.jsonl)")
        out = results_file.default_path(names_for_paths([name], None, given=True)[0])
    with Store(results_dir(results), readonly=True) as store:
        exported = results_file.export_results(store, out, name)
    console.print(f"wrote {exported.path}: {exported.runs} finished run(s) of {len(exported.specs)} spec(s)",
                  highlight=False, markup=False)
    for spec_name, count in sorted(exported.unfinished.items()):
        errors.print(tagged("warning:", "yellow", f"{spec_name}: {count} planned run(s) not finished, so not in the file"),
                     highlight=False, soft_wrap=True)


@results_app.command("import")
@friendly
def results_import(
    file: Path = typer.Argument(..., help="a file written by regsuite results export"),
    results: Optional[Path] = typer.Option(None, "--results", help=RESULTS_HELP),
) -> None:
    """Merge a results file into a store (created if needed): runs it lacks or has unfinished are added,
    finished ones are kept. The whole file is checked first; a problem writes nothing."""
    from regsuite import results_file
    from regsuite.store import Store

    parsed = results_file.read_results(file)
    directory = results_dir(results)
    with Store(directory) as store:
        merged = results_file.merge(store, parsed)
    console.print(merged.summary(), highlight=False, markup=False)
    for note in merged.notes():
        console.print(note, highlight=False, markup=False, soft_wrap=True)
    console.print(f"results: {directory / 'regsuite.db'}", highlight=False, markup=False)


@app.command()
def version() -> None:
    """Print regsuite's version."""
    console.print(f"regsuite {__version__}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
