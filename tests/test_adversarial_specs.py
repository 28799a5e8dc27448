"""Adversarial inputs: spec files, grids, seeds, archives. Each gives one clear message (a
RegsuiteError that the CLI turns into exit 2, no traceback) naming the cause and the fix."""
from __future__ import annotations

import gc
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers.execution import runs_by_label
from helpers.specs import TINY_SPEC
from regsuite import datacache
from regsuite.cli import app
from regsuite.datacache import FolderTree, ZipTree
from regsuite.errors import DataError, SpecError
from regsuite.spec import load_spec

runner = CliRunner()
MiB = 1 << 20


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def assert_one_message(result, *expected: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert result.stdout == "" and result.stderr.count("error:") == 1, result.output
    for text in expected:
        assert text in result.stderr, (text, result.stderr)


def write_bytes(tmp_path: Path, data: bytes, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------- spec files


def test_spec_that_is_not_utf8_names_the_line_and_the_fix(tmp_path, isolated_results):
    text = TINY_SPEC.replace('name = "tiny"', 'name = "tiny"\ndescription = "café"')
    line = text[: text.index("é")].count("\n") + 1
    path = write_bytes(tmp_path, text.encode("latin-1"))
    result = invoke("validate", str(path))
    assert_one_message(result, f"{path} is not UTF-8 text: byte 0xe9 at line {line}, column 19", "save the file as UTF-8")
    assert not isolated_results.exists()


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01" + bytes(range(256)),  # a PNG image
    TINY_SPEC.encode() + b"\x00\x00\x00\x00",  # UTF-8 text with NUL bytes in it
], ids=["png", "nul bytes"])
def test_binary_spec_is_named_as_binary(data, tmp_path):
    path = write_bytes(tmp_path, data)
    result = invoke("validate", str(path))
    assert_one_message(result, f"{path} is a binary file, not a TOML spec", "NUL byte")


def test_spec_with_a_utf8_bom_validates(tmp_path):
    path = write_bytes(tmp_path, b"\xef\xbb\xbf" + TINY_SPEC.encode())
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "spec is valid: 4 runs" in result.stdout


def test_deeply_nested_spec_is_one_message(tmp_path):
    path = write_bytes(tmp_path, ("a = " + "[" * 100_000 + "]" * 100_000 + "\n").encode())
    result = invoke("validate", str(path))
    assert_one_message(result, f"{path} nests arrays or tables too deeply")


def test_deeply_nested_override_is_one_message(tiny_spec):
    result = invoke("validate", str(tiny_spec), "--set", "description=" + "[" * 100_000 + "]" * 100_000)
    assert_one_message(result, "--set description=", "nests arrays or tables too deeply")


def test_spec_path_that_is_a_folder_says_so(tmp_path):
    (tmp_path / "specs.toml").mkdir()
    result = invoke("validate", str(tmp_path / "specs.toml"))
    assert_one_message(result, f"{tmp_path / 'specs.toml'} is a folder, not a spec file")
    assert "not found" not in result.stderr


# ---------------------------------------------------------------------------- grids


DUPLICATE_SET = TINY_SPEC + """
[[sets]]
label = "l2 again"
regularizers = [{ name = "l2", weight = 1e-3, include_biases = false }, { name = "dropout" }]
"""


@pytest.mark.parametrize("command", ["validate", "run"])
def test_two_sets_that_resolve_to_the_same_runs_are_a_validation_error(command, files, isolated_results):
    spec = files({"dup.toml": DUPLICATE_SET}) / "dup.toml"
    result = invoke(command, str(spec))
    # dropout's default p is 0.25 and include_biases defaults to false: the same runs as sets[1]
    assert_one_message(result, "sets[2] ('l2 again') and sets[1] ('l2 + dropout') resolve to the same runs",
                       "remove one")
    assert "IntegrityError" not in result.output
    assert not isolated_results.exists()


def test_a_dataset_listed_twice_is_a_validation_error(files):
    text = TINY_SPEC.replace('[dataset]\nname = "digits"\ntrain_limit = 60\n',
                             '[[datasets]]\nname = "digits"\ntrain_limit = 60\n\n'
                             '[[datasets]]\nname = "digits"\ntrain_limit = 50\n\n'
                             '[[datasets]]\nname = "digits"\ntrain_limit = 60\nsplit_seed = 0\n')
    spec = files({"dup.toml": text}) / "dup.toml"
    result = invoke("validate", str(spec))
    assert_one_message(result, "datasets[2] ('digits') and datasets[0] ('digits') resolve to the same runs", "remove one")
    assert "datasets[1]" not in result.stderr


def test_a_model_listed_twice_is_a_validation_error(files):
    text = TINY_SPEC.replace('[model]\nname = "small_cnn"\nwidth = 4\nhidden = 16\n',
                             '[[models]]\nname = "small_cnn"\nwidth = 4\nhidden = 16\n\n'
                             '[[models]]\nname = "small_cnn"\nhidden = 16\nwidth = 4\n')
    spec = files({"dup.toml": text}) / "dup.toml"
    result = invoke("validate", str(spec))
    assert_one_message(result, "models[1] ('small_cnn') and models[0] ('small_cnn') resolve to the same runs")
    # the same clash for each set: reported once, not once per run
    assert result.stderr.count("resolve to the same runs") == 1


def test_a_clash_of_two_duplicated_dimensions_is_not_repeated(files):
    text = TINY_SPEC.replace('[dataset]\nname = "digits"\ntrain_limit = 60\n',
                             '[[datasets]]\nname = "digits"\ntrain_limit = 60\n\n[[datasets]]\nname = "digits"\ntrain_limit = 60\n')
    text = text.replace('[model]\nname = "small_cnn"\nwidth = 4\nhidden = 16\n',
                        '[[models]]\nname = "small_cnn"\n\n[[models]]\nname = "small_cnn"\nwidth = 32\n')
    result = invoke("validate", str(files({"dup.toml": text}) / "dup.toml"))
    lines = [line for line in result.stderr.splitlines() if "resolve to the same runs" in line]
    assert [line.split(" resolve")[0] for line in lines] == [
        "  - datasets[1] ('digits') and datasets[0] ('digits')",
        "  - models[1] ('small_cnn') and models[0] ('small_cnn')",  # width 32 is small_cnn's default
    ], result.stderr


def test_thousands_of_identical_sets_give_a_short_message(tmp_path):
    from regsuite.registry import get_registry
    from regsuite.spec import resolve

    head = TINY_SPEC[: TINY_SPEC.index("[[sets]]")]
    body = "".join(f'[[sets]]\nlabel = "s{i}"\nregularizers = []\n' for i in range(2000))
    spec = load_spec(write_bytes(tmp_path, (head + body).encode()))
    with pytest.raises(SpecError) as caught:
        resolve(spec, get_registry())
    details = caught.value.details
    assert details[0].startswith("sets[1] ('s1') and sets[0] ('s0') resolve to the same runs")
    assert len(details) == 11 and details[-1] == "… and 1989 more such pairs"


# ---------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("seeds", ["[1180591620717411303424]", "[0, 9223372036854775808]", "[-1]", "[true]", "[1.0]"])
def test_seeds_outside_0_to_2_63_are_refused(seeds, tiny_spec, isolated_results):
    result = invoke("validate", str(tiny_spec), "--set", f"seeds={seeds}")
    assert_one_message(result, "seeds[", "an integer from 0 to 2**63 - 1")
    assert not isolated_results.exists()


def train_here(spec: Path, results: Path, overrides: list[str] = ()) -> dict[str, dict]:
    """Train a spec's grid in this process (no plots, no leaderboard); its runs by label."""
    from regsuite.registry import get_registry
    from regsuite.execution.inprocess import run_plan
    from regsuite.spec import resolve
    from regsuite.store import Store

    registry = get_registry()
    plan = resolve(load_spec(spec, overrides), registry)
    with Store(results) as store:
        store.register_plan(plan)
        run_plan(plan, store, registry)
    return runs_by_label(results)


def test_the_largest_seed_trains_and_is_stored(tiny_spec, isolated_results):
    largest = 2**63 - 1
    runs = train_here(tiny_spec, isolated_results, [f"seeds=[{largest}]", "training.epochs=1", 'sets=[{label = "none"}]'])
    assert list(runs) == [f"none/{largest}"] and runs[f"none/{largest}"]["status"] == "done"


# ---------------------------------------------------------------------------- validation speed


def test_twenty_thousand_sets_load_in_linear_time(tmp_path):
    head = TINY_SPEC[: TINY_SPEC.index("[[sets]]")]

    def load_seconds(count: int) -> float:
        """The best of three loads, in this process's CPU time (other processes do not move
        it) and without the garbage collector (its passes land on one size or the other)."""
        body = "".join(f'[[sets]]\nlabel = "s{i}"\nregularizers = []\n' for i in range(count))
        path = write_bytes(tmp_path, (head + body).encode())
        times = []
        for _ in range(3):
            gc.collect()
            gc.disable()
            try:
                started = time.process_time()
                spec = load_spec(path)
                times.append(time.process_time() - started)
            finally:
                gc.enable()
            assert len(spec.sets) == count
        return min(times)

    small, large = load_seconds(5_000), load_seconds(20_000)
    # Four times the sets: linear loading takes about 4× as long (2.5–5.6× measured); the
    # quadratic label check it once had (20,000² comparisons) takes 16×.
    assert large < 8 * small, (small, large)


def test_a_repeated_label_among_many_is_named_once(tmp_path):
    head = TINY_SPEC[: TINY_SPEC.index("[[sets]]")]
    labels = [f"s{i}" for i in range(2000)] + ["s7", "s7", "s1999"]
    body = "".join(f'[[sets]]\nlabel = "{label}"\n' for label in labels)
    with pytest.raises(SpecError) as caught:
        load_spec(write_bytes(tmp_path, (head + body).encode()))
    assert "set labels must be unique; repeated: s1999, s7" in str(caught.value)


# ---------------------------------------------------------------------------- archives


def zeros_member(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """A member of ``size`` zero bytes, written 1 MiB at a time (deflates to ~1/1000)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=size > 2**31) as member:
        chunk = bytes(MiB)
        for start in range(0, size, MiB):
            member.write(chunk[: min(MiB, size - start)])


def bomb(path: Path, size: int = 64 * MiB, member: str = "top/train/bomb.JPEG", text: int = 0) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("top/wnids.txt", "n01443537\n")
        zeros_member(zf, member, size)
        if text:
            zeros_member(zf, "top/words.txt", text)
    return path


def test_zip_member_that_inflates_past_the_limit_is_refused_before_reading(tmp_path):
    archive = bomb(tmp_path / "bomb.zip")
    assert archive.stat().st_size < MiB  # 64 MiB of zeros
    with ZipTree(archive, "wnids.txt", max_member_bytes=4 * MiB) as tree:
        tracemalloc.start()
        try:
            with pytest.raises(DataError) as caught:
                tree.read_bytes("train/bomb.JPEG")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    message = str(caught.value)
    assert f"{archive}:top/train/bomb.JPEG" in message
    assert "67,108,864 bytes" in message and "4,194,304" in message and "max_member_bytes" in message
    assert peak < MiB


def test_zip_member_with_a_lying_size_is_read_in_bounded_memory(tmp_path):
    archive = bomb(tmp_path / "liar.zip")
    data = bytearray(archive.read_bytes())
    # the central directory's "uncompressed size" of the bomb: 1,000 bytes
    entry = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    data[entry + 24: entry + 28] = struct.pack("<I", 1000)
    archive.write_bytes(bytes(data))
    with ZipTree(archive, "wnids.txt", max_member_bytes=4 * MiB) as tree:
        tracemalloc.start()
        try:
            with pytest.raises(DataError, match="top/train/bomb.JPEG"):
                tree.read_bytes("train/bomb.JPEG")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < MiB  # zf.read() inflated all 64 MiB to keep the first 1,000 bytes


def test_text_members_have_their_own_larger_limit(tmp_path):
    archive = bomb(tmp_path / "words.zip", size=MiB, text=3 * MiB)
    with ZipTree(archive, "wnids.txt", max_member_bytes=2 * MiB, max_text_bytes=4 * MiB) as tree:
        assert len(tree.read_text("words.txt")) == 3 * MiB  # a 3 MiB words.txt is text, under its limit
        assert len(tree.read_bytes("train/bomb.JPEG")) == MiB
    with ZipTree(archive, "wnids.txt", max_text_bytes=2 * MiB) as tree:
        with pytest.raises(DataError, match=r"words.txt declares 3,145,728 bytes.*max_text_bytes"):
            tree.read_text("words.txt")
    # the defaults leave room for the real words.txt (2.6 MB) and keep images small
    assert datacache.MAX_TEXT_BYTES >= 32 * MiB and datacache.MAX_MEMBER_BYTES <= 16 * MiB


def test_folder_files_have_the_same_limits(tmp_path):
    (tmp_path / "top").mkdir()
    with open(tmp_path / "top" / "big.JPEG", "wb") as sparse:
        sparse.truncate(64 * MiB)  # no disk space used
    tree = FolderTree(tmp_path / "top", max_member_bytes=4 * MiB)
    with pytest.raises(DataError, match=r"big.JPEG is 67,108,864 bytes, more than the 4,194,304"):
        tree.read_bytes("big.JPEG")


def test_many_members_each_under_the_limit_are_no_way_round_it(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("top/wnids.txt", "n01443537\n")
        for i in range(6):
            zeros_member(zf, f"top/train/{i}.JPEG", MiB)
    rels = [f"train/{i}.JPEG" for i in range(6)]
    with ZipTree(archive, "wnids.txt", max_member_bytes=2 * MiB) as tree:
        with pytest.raises(DataError, match=r"the 6 images of .* hold more than 3,145,728 bytes \(reached at .*/3.JPEG\)"):
            datacache.decode_images(tree, rels, (64, 64), max_total_bytes=3 * MiB)


def test_tiny_imagenet_refuses_an_archive_with_a_bomb_image(tmp_path, monkeypatch):
    from regsuite.plugins.datasets.tiny_imagenet import TinyImageNet, TinyImageNetParams, write_tiny_layout

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    archive = write_tiny_layout(tmp_path / "zipped", archive="tiny.zip")
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf:
        zeros_member(zf, "tiny-imagenet-200/train/n01443537/images/n01443537_bomb.JPEG", 17 * MiB)
    params = TinyImageNetParams(root=archive, classes=3, cache_dir=tmp_path / "cache", download=False)
    with pytest.raises(DataError) as caught:
        TinyImageNet(params).load()
    assert "n01443537_bomb.JPEG declares 17,825,792 bytes" in str(caught.value)


def test_nltk_treebank_checks_declared_sizes_before_nltk_reads_the_zip(isolated_nltk, monkeypatch):
    from regsuite.plugins.datasets import nltk_treebank as tb
    from helpers.treebank import dataset, write_fake_nltk_data

    write_fake_nltk_data(isolated_nltk["dir"])
    corpus = isolated_nltk["dir"] / "corpora" / "treebank.zip"
    with zipfile.ZipFile(corpus, "a", zipfile.ZIP_DEFLATED) as zf:
        zeros_member(zf, "treebank/combined/wsj_0002.mrg", 2 * MiB)
    monkeypatch.setattr(tb, "MAX_MEMBER_BYTES", MiB)
    with pytest.raises(DataError) as caught:
        dataset().load()
    assert f"{corpus}:treebank/combined/wsj_0002.mrg declares 2,097,152 bytes" in str(caught.value)


# ---------------------------------------------------------------------------- messages that tell the truth


def test_non_finite_penalty_is_named_as_the_penalty(files, isolated_results):
    # one batch per epoch: the data loss of epoch 1 is finite, λ·Σw² overflows float32
    spec = files({"big.toml": TINY_SPEC.replace("seeds = [0, 1]", "seeds = [0]").replace("weight = 1e-3", "weight = 1e38")
                  .replace("batch_size = 32", "batch_size = 64")}) / "big.toml"
    error = train_here(spec, isolated_results)["l2 + dropout"]["error"]
    assert error.startswith("the penalty of l2 (train_penalty) became inf in epoch 1; the data loss was 2."), error
    assert "training loss became" not in error


def test_non_finite_messages_name_the_term_that_went_wrong():
    from regsuite.train import non_finite_message

    assert non_finite_message({"train_loss": float("nan"), "train_penalty": 0.0}, 3, []) == \
        "the training loss became nan in epoch 3"
    assert non_finite_message({"train_loss": float("nan"), "train_penalty": 0.25}, 2, ["l2"]) == \
        "the training loss became nan in epoch 2 (the data loss; the penalty of l2 (train_penalty) was 0.25)"
    assert non_finite_message({"train_loss": 2.3194, "train_penalty": float("inf")}, 1, ["l2"]) == \
        "the penalty of l2 (train_penalty) became inf in epoch 1; the data loss was 2.319"
    # both: the epoch's sums cannot tell which was first, and the message does not pretend to
    both = non_finite_message({"train_loss": float("nan"), "train_penalty": float("inf")}, 1, ["l2", "x"])
    assert both.startswith("the training loss (the data loss) became nan and the penalties of l2 and x "
                           "(train_penalty) became inf in epoch 1; ")


def test_infinite_parameters_are_refused_when_the_spec_loads(files, isolated_results):
    spec = files({"inf.toml": TINY_SPEC.replace("weight = 1e-3", "weight = inf")}) / "inf.toml"
    result = invoke("validate", str(spec))
    assert_one_message(result, "sets[1].regularizers[0].weight: Input should be a finite number")
    lr = invoke("validate", str(spec), "--set", "sets.1.regularizers.0.weight=1e-3", "--set", "training.lr=inf")
    assert_one_message(lr, "training.lr: Input should be a finite number")


def number_parameters():
    from regsuite.api import number_fields
    from regsuite.registry import KINDS
    from regsuite.testing import plugin_classes

    return [pytest.param(cls, name, id=f"{kind}:{cls.name}.{name}")
            for kind in KINDS for cls in plugin_classes(kind) for name in sorted(number_fields(cls.Params))]


@pytest.mark.parametrize("cls, name", number_parameters())
def test_every_plugins_number_parameters_refuse_booleans(cls, name):
    from pydantic import ValidationError

    for flag in (True, False):
        with pytest.raises(ValidationError, match="a number is expected here, not a boolean") as info:
            cls.Params.model_validate({name: flag})
        assert any(error["loc"] == (name,) for error in info.value.errors())


def test_a_boolean_for_a_number_is_refused_when_the_spec_loads(files, isolated_results):
    spec = files({"bool.toml": TINY_SPEC.replace("weight = 1e-3", "weight = true")}) / "bool.toml"
    result = invoke("run", str(spec))  # pydantic alone would train it with an L2 weight of 1
    assert_one_message(result, "sets[1].regularizers[0].weight: a number is expected here, not a boolean")
    assert not isolated_results.exists()
    for override in ("training.epochs=true", "training.lr=false", "execution.workers=true"):
        fixed = ("--set", "sets.1.regularizers.0.weight=1e-3")
        assert_one_message(invoke("validate", str(spec), *fixed, "--set", override),
                           f"{override.split('=')[0]}: a number is expected here, not a boolean")
    flags = invoke("validate", str(spec), "--set", "sets.1.regularizers.0.weight=1e-3", "--set", "training.deterministic=false")
    assert flags.exit_code == 0, flags.output  # a boolean setting still takes booleans


def executor_for(results: Path, timeout: float):
    from regsuite.execution.local import Active, Lane, LocalExecutor
    from regsuite.spec import ExecutionConfig, Plan, PlannedRun
    from regsuite.store import Store

    store = Store(results)
    run = PlannedRun("0123456789abcdef", "none", {"dataset": {"name": "digits"}, "model": {"name": "small_cnn"}, "seed": 0})
    executor = LocalExecutor(Plan(None, [run]), store, None, [Lane(0, None, 1)], ExecutionConfig(timeout=timeout), False)
    active = Active(run, Lane(0, None, 1), None, None, 0.0, results / "logs" / "x.log", 0, timed_out=True)
    return executor, active, store


def test_timeout_message_mentions_a_checkpoint_only_when_there_is_one(tmp_path):
    from regsuite.checkpoint import Checkpoints

    results = tmp_path / "results"
    executor, active, store = executor_for(results, 3)
    with store:
        without = executor.exit_reason(active, -9)
        assert without.startswith("timed out after 3 s (execution.timeout)")
        assert "checkpoint is kept" not in without
        assert "no epoch finished, so there is no checkpoint and --retry-failed starts it over" in without
        path = Checkpoints(results / "checkpoints").path(active.run.run_id)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"a checkpoint")
        with_one = executor.exit_reason(active, -9)
        assert "the last checkpoint is kept and --retry-failed resumes from it" in with_one
