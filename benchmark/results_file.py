"""Results that travel: the finished runs of a store as a JSON-lines file, and back.

``regsuite results export`` writes, one JSON object a line::

    {"format": "regsuite-results", "regsuite": "0.1.0", "version": 1}      the header
    {"kind": "spec", "name": …, "spec": {…}, "baseline": …}               one per spec, by name
    {"kind": "run", "run_id": …, "config": {…}, "epochs": [...], "rows": [...], …}
                                                                          one per finished run
    {"kind": "end", "specs": S, "runs": R}                                so that a cut-off file is noticed

Specs are ordered by name, runs by (first spec, row position, run id), keys are sorted and
there are no timestamps, so exporting the same store twice gives the same bytes. Non-finite
floats are written as null. Parameters that only say where things are (``api.NOT_IN_RUN_KEY``)
and hold an absolute path are written relative to the working directory when they lie under
it, as ``$REGSUITE_DATA`` when they are that folder, and as null otherwise: a file holds no
paths of the machine it was made on.

``regsuite results import`` reads and validates the whole file before it writes anything,
then merges it into a store in one transaction:

- a run the store does not have is inserted; one it has as done (same run key) is left
  alone; one it has as pending, failed or interrupted gets the file's results (its stored
  config, with this machine's paths, is kept); one that is running here is skipped;
- a run the store has with a different run key view is an error, and nothing is written;
- a spec the store does not have is inserted with its rows; a spec the store already has
  keeps the store's own record and rows (the file has no timestamps to say which is newer,
  and the store's is the one ``regsuite run`` last wrote here). ``regsuite run SPEC`` then
  registers the plan again and finds the imported runs done.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from regsuite import __version__, atomic
from regsuite.errors import RegsuiteError
from regsuite.registry import Registry, get_registry
from regsuite.safety import PLUGIN_KINDS, PortablePaths, check_spec_names
from regsuite.spec import RegularizerSet, Spec, format_validation_errors, run_id_of, run_key_view
from regsuite.store import Store

FORMAT = "regsuite-results"
VERSION = 1

# The same rules as a spec's name and a set's label: reused from the spec models, not copied.
SpecName = Annotated[str, Spec.model_fields["name"]]
Label = Annotated[str, RegularizerSet.model_fields["label"]]


def default_path(spec_name: str) -> Path:
    return Path("leaderboard") / f"{spec_name}.runs.jsonl"


# ============================================================================ export


@dataclass
class Exported:
    path: Path
    specs: list[str]
    runs: int
    #: per spec: planned runs that are not finished, so not in the file
    unfinished: dict[str, int] = field(default_factory=dict)


def export_results(store: Store, out: Path, spec_name: str | None = None, registry: Registry | None = None,
                   cwd: Path | None = None) -> Exported:
    """Write the finished runs of ``store`` (all, or those of spec ``spec_name``) to ``out``,
    atomically (a temporary file renamed over ``out``)."""
    lines, exported = export_lines(store, spec_name, registry, cwd)
    exported.path = out
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out, "".join(line + "\n" for line in lines))
    return exported


def export_lines(store: Store, spec_name: str | None = None, registry: Registry | None = None,
                 cwd: Path | None = None) -> tuple[list[str], Exported]:
    registry = registry or get_registry()
    paths = PortablePaths.here(cwd)
    if spec_name is not None:
        if store.spec_info(spec_name) is None:
            raise RegsuiteError(f"no results for spec {spec_name!r} in {store.path}",
                                hint=f"specs with results: {', '.join(sorted(store.spec_names())) or 'none'}")
        names = [spec_name]
    else:
        # Names read back from a store may be anything; a file of bad names would not import.
        names = sorted(check_spec_names(store.spec_names(), f"the results store {store.path}"))

    done = {run.run_id: run for run in store.runs_with_status("done")}
    memberships: dict[str, list[dict[str, Any]]] = {}
    order: dict[str, tuple] = {}
    unfinished: dict[str, int] = {}
    for index, name in enumerate(names):
        for entry in store.spec_row_entries(name):
            run_id = entry["run_id"]
            if run_id not in done:
                unfinished[name] = unfinished.get(name, 0) + 1
                continue
            memberships.setdefault(run_id, []).append(
                {"spec": name, "position": entry["position"], "label": entry["label"], "reference": entry["reference"]})
            order[run_id] = min(order.get(run_id, (math.inf,)), (index, entry["position"], run_id))
    if spec_name is None:  # every finished run, also those no spec of the store lists any more
        for run_id in done:
            order.setdefault(run_id, (len(names), 0, run_id))
    if not order:
        what = f"spec {spec_name!r}" if spec_name else f"the results store {store.path}"
        raise RegsuiteError(f"{what} has no finished runs to export",
                            hint="finish some first: regsuite run SPEC")

    lines = [dumps({"format": FORMAT, "version": VERSION, "regsuite": __version__})]
    for name in names:
        info = store.spec_info(name)
        # The spec keeps its own key order (that of the stored spec), so that an imported store
        # shows it as the original does.
        lines.append(dumps({"kind": "spec", "name": name, "baseline": info["baseline"],
                            "spec": paths.spec(registry, info["spec"], f"spec {name!r}")}, sort_keys=False))
    for run_id in sorted(order, key=order.__getitem__):
        run = done[run_id]
        lines.append(dumps({
            "kind": "run", "run_id": run_id, "status": run.status, "seed": run.seed,
            "config": paths.config(registry, run.config, f"run {run_id}"),
            "device": run.device, "wall_time": run.wall_time, "summary": run.summary,
            "epochs": store.epochs(run_id),
            "rows": sorted(memberships.get(run_id, []), key=lambda r: (r["spec"], r["position"])),
        }))
    lines.append(dumps({"kind": "end", "specs": len(names), "runs": len(order)}))
    return lines, Exported(Path(), names, len(order), unfinished)


def dumps(record: dict[str, Any], sort_keys: bool = True) -> str:
    return json.dumps(finite(record), sort_keys=sort_keys, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def finite(value: Any) -> Any:
    """``value`` with every NaN and ±inf replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


# ============================================================================ the records


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Header(Record):
    format: Literal["regsuite-results"]
    version: int
    regsuite: str


class SpecRecord(Record):
    kind: Literal["spec"]
    name: SpecName
    spec: dict[str, Any]
    baseline: Label | None = None


class PluginConfig(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # a dataset also has its fingerprint
    name: str = Field(min_length=1)
    params: dict[str, Any]


class RunConfig(BaseModel):
    """The shape of a resolved run config (see ``spec.resolve``); its values are kept as given."""

    model_config = ConfigDict(extra="allow", strict=True)
    task: PluginConfig
    dataset: PluginConfig
    model: PluginConfig
    regularizers: list[PluginConfig]
    training: dict[str, Any]
    seed: int
    versions: dict[str, Any]


class RowRecord(Record):
    spec: SpecName
    position: int = Field(ge=0)
    label: Label
    reference: dict[str, float | None]  # null: a non-finite value


class RunRecord(Record):
    kind: Literal["run"]
    run_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    status: Literal["done"]
    seed: int
    config: RunConfig
    device: str | None
    wall_time: float | None = Field(ge=0)
    summary: dict[str, Any]
    epochs: list[dict[str, Any]]
    rows: list[RowRecord]

    @field_validator("epochs")
    @classmethod
    def epoch_rows(cls, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen = set()
        for i, row in enumerate(rows):
            epoch = row.get("epoch")
            if type(epoch) is not int or epoch < 0:
                raise ValueError(f"epochs[{i}]: 'epoch' must be a whole number ≥ 0 (got {epoch!r})")
            if epoch in seen:
                raise ValueError(f"epochs[{i}]: epoch {epoch} appears twice")
            seen.add(epoch)
            for name, value in row.items():
                if name != "epoch" and (value is not None and (type(value) not in (int, float))):
                    raise ValueError(f"epochs[{i}].{name}: a metric must be a number or null (got {value!r})")
        return rows


class EndRecord(Record):
    kind: Literal["end"]
    specs: int = Field(ge=0)
    runs: int = Field(ge=0)


RECORDS: dict[str, type[Record]] = {"spec": SpecRecord, "run": RunRecord, "end": EndRecord}


# ============================================================================ import


@dataclass
class ResultsFile:
    """A validated results file: nothing in it was written anywhere yet."""

    path: Path
    header: Header
    specs: dict[str, tuple[int, SpecRecord, dict[str, Any]]]  # name → (line, record, raw)
    runs: list[tuple[int, RunRecord, dict[str, Any]]]  # (line, record, raw), in file order


@dataclass
class Merged:
    imported: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # of imported: were pending/failed/interrupted here
    already: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # running in this store
    specs_added: list[str] = field(default_factory=list)
    specs_same: list[str] = field(default_factory=list)
    specs_kept: list[str] = field(default_factory=list)  # the store's own, different record kept

    def summary(self) -> str:
        return f"imported {len(self.imported)}, already there {len(self.already)}, skipped {len(self.skipped)}"

    def notes(self) -> list[str]:
        notes = []
        if self.replaced:
            notes.append(f"{len(self.replaced)} of the imported run(s) were unfinished here (pending, failed or "
                         "interrupted) and now hold the file's results")
        if self.skipped:
            notes.append(f"skipped {len(self.skipped)} run(s) that are running in this store: {', '.join(self.skipped)}")
        for name in self.specs_added:
            notes.append(f"spec {name}: added")
        for name in self.specs_kept:
            notes.append(f"spec {name}: the store's own record and rows are kept (they differ from the file's); "
                         f"regsuite run with the spec file registers its plan again and finds the imported runs done")
        return notes


def read_results(path: Path, registry: Registry | None = None) -> ResultsFile:
    """Parse and validate every line of ``path``; a problem is one RegsuiteError naming the line."""
    registry = registry or get_registry()
    path = Path(path)
    if not path.is_file():
        raise RegsuiteError(f"results file not found: {path}", hint="regsuite results export writes one")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise problem(path, raw[: exc.start].count(b"\n") + 1, "is not UTF-8 text: not a regsuite results file") from None
    if not text:
        raise problem(path, 1, "the file is empty: not a regsuite results file")
    lines = text.split("\n")
    terminated = lines[-1] == ""
    if terminated:
        lines.pop()

    header: Header | None = None
    specs: dict[str, tuple[int, SpecRecord, dict[str, Any]]] = {}
    runs: list[tuple[int, RunRecord, dict[str, Any]]] = []
    end: EndRecord | None = None
    for number, line in enumerate(lines, 1):
        obj = parse_line(path, number, line, cut_off=number == len(lines) and not terminated)
        if number == 1:
            header = read_header(path, obj)
            continue
        if end is not None:
            raise problem(path, number, "a record after the end record")
        kind = obj.get("kind")
        if kind not in RECORDS:
            raise problem(path, number, f"unknown record kind {kind!r}",
                          hint=f"a regsuite results file (version {VERSION}) has records of kind: {', '.join(RECORDS)}")
        try:
            record = RECORDS[kind].model_validate(obj)
        except ValidationError as exc:
            raise problem(path, number, f"invalid {kind} record", details=format_validation_errors(exc)) from None
        if isinstance(record, SpecRecord):
            check_spec_record(path, number, record, specs)
            specs[record.name] = (number, record, obj)
        elif isinstance(record, RunRecord):
            runs.append((number, record, obj))
        else:
            end = record
    if end is None:
        raise problem(path, len(lines), "the file ends without its end record: it is truncated",
                      hint="copy or export it again")
    if (end.specs, end.runs) != (len(specs), len(runs)):
        raise problem(path, len(lines), f"the end record counts {end.specs} spec(s) and {end.runs} run(s), "
                      f"the file holds {len(specs)} and {len(runs)}: records are missing or were added")
    check_runs(path, registry, specs, runs)
    return ResultsFile(path, header, specs, runs)


def problem(path: Path, line: int, message: str, details: list[str] | None = None, hint: str | None = None) -> RegsuiteError:
    return RegsuiteError(f"{path}, line {line}: {message}; nothing was imported", details=details,
                         hint=hint or "regsuite results import reads the files that regsuite results export writes")


def parse_line(path: Path, number: int, line: str, cut_off: bool) -> dict[str, Any]:
    try:
        obj = json.loads(line, parse_constant=reject_constant)
    except ValueError as exc:
        if number == 1:
            raise problem(path, 1, "is not a JSON header: not a regsuite results file") from None
        if cut_off:
            raise problem(path, number, "the last line is cut off: the file is truncated",
                          hint="copy or export it again") from None
        raise problem(path, number, "is not JSON" if line.strip() else "is empty",
                      details=[str(exc)] if line.strip() else None) from None
    if not isinstance(obj, dict):
        raise problem(path, number, "is not a JSON object" + (": not a regsuite results file" if number == 1 else ""))
    return obj


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_header(path: Path, obj: dict[str, Any]) -> Header:
    if obj.get("format") != FORMAT:
        raise problem(path, 1, f'the header has no "format": "{FORMAT}": not a regsuite results file')
    version = obj.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise problem(path, 1, f"written by a newer regsuite ({obj.get('regsuite')!r}, format version {version}); "
                      f"this one reads version {VERSION}", hint="upgrade regsuite to import it")
    try:
        header = Header.model_validate(obj)
    except ValidationError as exc:
        raise problem(path, 1, "invalid header", details=format_validation_errors(exc)) from None
    if header.version != VERSION:
        raise problem(path, 1, f"unknown format version {header.version} (this regsuite reads version {VERSION})")
    return header


def check_spec_record(path: Path, number: int, record: SpecRecord, specs: dict) -> None:
    if record.name in specs:
        raise problem(path, number, f"spec {record.name!r} appears twice (first on line {specs[record.name][0]})")
    inner = record.spec.get("name")
    if inner != record.name:
        raise problem(path, number, f"spec record {record.name!r} holds a spec named {inner!r}")


def check_runs(path: Path, registry: Registry, specs: dict, runs: list) -> None:
    seen: dict[str, int] = {}
    positions: dict[tuple[str, int], str] = {}
    for number, run, raw in runs:
        if run.run_id in seen:
            raise problem(path, number, f"run {run.run_id} appears twice (first on line {seen[run.run_id]})")
        seen[run.run_id] = number
        if run.seed != run.config.seed:
            raise problem(path, number, f"run {run.run_id}: seed {run.seed} but its config has seed {run.config.seed}")
        in_specs = [row.spec for row in run.rows]
        for row in run.rows:
            if row.spec not in specs:
                raise problem(path, number, f"run {run.run_id} is a row of spec {row.spec!r}, which has no spec record in the file")
            if in_specs.count(row.spec) > 1:
                raise problem(path, number, f"run {run.run_id} is a row of spec {row.spec!r} more than once")
            other = positions.setdefault((row.spec, row.position), run.run_id)
            if other != run.run_id:
                raise problem(path, number, f"runs {other} and {run.run_id} both hold row {row.position} of spec {row.spec!r}")
        view = key_view(registry, raw["config"])
        if view is not None and run_id_of(view) != run.run_id:
            raise problem(
                path, number, f"run {run.run_id} ({describe(raw['config'], run)}): its config hashes to "
                f"{run_id_of(view)} here, not to its run id",
                hint="the file was edited, or a plugin here keys its parameters differently from the machine that "
                     "wrote the file (compare the plugin versions in the run's config.versions)",
            )


def key_view(registry: Registry, config: dict[str, Any]) -> dict[str, Any] | None:
    """``spec.run_key_view`` of ``config``, or None when a plugin it names is not registered here."""
    try:
        for kind in PLUGIN_KINDS:
            registry.get(kind, config[kind]["name"])
        for ref in config["regularizers"]:
            registry.get("regularizer", ref["name"])
    except RegsuiteError:
        return None
    return run_key_view(registry, config)


def describe(config: dict[str, Any], run: RunRecord | None = None) -> str:
    label = run.rows[0].label if run is not None and run.rows else "?"
    return f"{config['dataset']['name']} / {config['model']['name']} / {label} / seed {config['seed']}"


def merge(store: Store, results: ResultsFile, registry: Registry | None = None) -> Merged:
    """Merge a validated results file into ``store``, in one transaction (see the module's
    docstring for the rules). A conflicting run raises and leaves the store as it was."""
    registry = registry or get_registry()
    merged = Merged()
    with store.transaction() as tx:
        for number, run, raw in results.runs:
            existing = store.get_run(run.run_id)
            if existing is not None:
                differences = config_differences(registry, existing.config, raw["config"])
                if differences:
                    raise RegsuiteError(
                        f"{results.path}, line {number}: run {run.run_id} ({describe(raw['config'], run)}) is in the "
                        f"store {store.path} with a different configuration; nothing was imported",
                        details=[f"differs in {d}" for d in differences],
                        hint="the two are not the same run (a file edited by hand, or a plugin that keys its "
                             "parameters differently here): import the file into another results folder",
                    )
                if existing.status == "done":
                    merged.already.append(run.run_id)
                    continue
                if existing.status == "running":
                    merged.skipped.append(run.run_id)
                    continue
                merged.replaced.append(run.run_id)
            store.put_done_run(tx, run.run_id, raw["config"], run.seed, run.device, run.wall_time, raw["summary"],
                               raw["epochs"])
            merged.imported.append(run.run_id)
        for name, (_, spec, raw) in sorted(results.specs.items()):
            rows = sorted((row.position, run.run_id, row.label, stored_reference(row.reference))
                          for _, run, _ in results.runs for row in run.rows if row.spec == name)
            info = store.spec_info(name)
            if info is None:
                store.put_spec(tx, name, raw["spec"], spec.baseline, rows)
                merged.specs_added.append(name)
            elif same_spec(registry, store, name, info, raw["spec"], spec.baseline, rows):
                merged.specs_same.append(name)
            else:
                merged.specs_kept.append(name)
    for run_id in merged.replaced:  # an interrupted run's checkpoint is of no use any more
        (store.directory / "checkpoints" / f"{run_id}.pt").unlink(missing_ok=True)
    return merged


def stored_reference(reference: dict[str, float | None]) -> dict[str, float]:
    """A reference value is a float; null in a file stands for a non-finite one."""
    return {k: (math.nan if v is None else v) for k, v in reference.items()}


def config_differences(registry: Registry, stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """Where two configs differ in what the run key covers. When a plugin they name is not
    registered here, which parameters only say where things are cannot be told: they are
    compared in full."""
    a, b = key_view(registry, stored), key_view(registry, given)
    if a is None or b is None:
        a, b = stored, given
    return differing_paths(a, b, "")[:10]


def differing_paths(a: Any, b: Any, path: str) -> list[str]:
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for key in sorted(set(a) | set(b), key=str)
                for p in differing_paths(a.get(key, _ABSENT), b.get(key, _ABSENT), f"{path}.{key}" if path else str(key))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b)) for p in differing_paths(x, y, f"{path}[{i}]")]
    return [path or "(the whole config)"]


_ABSENT = object()


def same_spec(registry: Registry, store: Store, name: str, info: dict[str, Any], spec: dict[str, Any],
              baseline: str | None, rows: list[tuple]) -> bool:
    """Does the store hold this spec as the file does (its rows may list more: unfinished runs)?"""
    try:
        portable = PortablePaths.here().spec(registry, info["spec"], name)
    except RegsuiteError:
        return False
    if finite(portable) != spec or info["baseline"] != baseline:
        return False
    stored = {(e["position"], e["run_id"], e["label"], json.dumps(finite(e["reference"]), sort_keys=True))
              for e in store.spec_row_entries(name)}
    given = {(p, r, label, json.dumps(finite(ref), sort_keys=True)) for p, r, label, ref in rows}
    return given <= stored
