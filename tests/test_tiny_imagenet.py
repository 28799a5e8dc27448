"""The tiny_imagenet dataset: layouts, class selection, decoding, the cache, the download path
and every kind of bad input. Unit tests use a generated layout; the real mini archive (10
classes) is used where ../shared exists."""
from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from regsuite import datacache
from regsuite.errors import DataError, SpecError
from regsuite.plugins.datasets import tiny_imagenet as ti
from regsuite.plugins.datasets.tiny_imagenet import TinyImageNet, TinyImageNetParams, write_tiny_layout

REPO = Path(__file__).resolve().parents[1]
MINI = REPO.parent / "shared" / "data" / "tiny-imagenet-200-mini.zip"
MINI_SHA256 = "5b4bf8d239b109cf6c9d9a70bc1b8200867d160fa277ceafa47a8cce93123032"
needs_mini = pytest.mark.skipif(not MINI.is_file(), reason="../shared/data/tiny-imagenet-200-mini.zip is absent")

WNIDS = ("n01443537", "n01629819", "n01641577")  # write_tiny_layout's default classes, sorted


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ti.DATA_ENV, raising=False)


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def folder(tmp_path) -> Path:
    """A data folder holding an extracted tiny-imagenet-200/."""
    write_tiny_layout(tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def archive(tmp_path) -> Path:
    return write_tiny_layout(tmp_path / "zipped", archive="tiny.zip")


def load(cache: Path, **params):
    return TinyImageNet(TinyImageNetParams(cache_dir=cache, download=False, **params)).load()


def cache_entries(cache: Path) -> list[str]:
    """Everything in the cache folder: complete entries and anything half-written."""
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def rewrite_member(source: Path, dest: Path, name: str, data: bytes | None) -> Path:
    """Copy a zip, replacing member ``name`` by ``data`` (or leaving it out when None)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            if info.filename == name:
                if data is not None:
                    zout.writestr(info, data)
            else:
                zout.writestr(info, zin.read(info))
    return dest


# ---------------------------------------------------------------------------- layouts and content


def test_folder_loads_the_chosen_classes_with_labels_names_and_stats(folder, cache):
    data = load(cache, root=folder, classes=3)
    assert data.train.inputs.shape == (12, 3, 64, 64) and data.train.inputs.dtype == torch.uint8
    assert data.val.inputs.shape == (6, 3, 64, 64) and data.val.inputs.dtype == torch.uint8
    assert data.train.targets.dtype == torch.int64
    assert data.train.targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert sorted(data.val.targets.tolist()) == [0, 0, 1, 1, 2, 2]
    assert data.info.num_classes == 3 and data.info.input_shape == (3, 64, 64)
    assert data.info.extras["wnids"] == list(WNIDS)
    assert data.info.class_names == ["class 1, tiny class 1", "class 2, tiny class 2", "class 3, tiny class 3"]
    x = data.train.inputs.float().div(255).transpose(0, 1).reshape(3, -1)
    assert data.info.mean == pytest.approx(x.mean(1).tolist(), abs=1e-5)
    assert data.info.std == pytest.approx(x.std(1).tolist(), abs=1e-5)


def test_zip_and_folder_give_the_same_arrays(folder, archive, cache):
    from_folder = load(cache, root=folder, classes=3)
    from_zip = load(cache, root=archive, classes=3)
    assert torch.equal(from_folder.train.inputs, from_zip.train.inputs)
    assert torch.equal(from_folder.val.inputs, from_zip.val.inputs)
    assert torch.equal(from_folder.val.targets, from_zip.val.targets)


def test_images_are_the_decoded_jpegs(folder, cache):
    from PIL import Image

    data = load(cache, root=folder, classes=3)
    jpeg = folder / "tiny-imagenet-200" / "train" / WNIDS[1] / "images" / f"{WNIDS[1]}_2.JPEG"
    expected = np.asarray(Image.open(jpeg).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(data.train.inputs[4 + 2].numpy(), expected)


def test_grayscale_jpeg_becomes_three_equal_channels(folder, cache):
    from PIL import Image

    gray = folder / "tiny-imagenet-200" / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_0.JPEG"
    assert Image.open(gray).mode == "L"
    images = load(cache, root=folder, classes=1).train.inputs
    assert torch.equal(images[0, 0], images[0, 1]) and torch.equal(images[0, 1], images[0, 2])
    assert not torch.equal(images[1, 0], images[1, 1])  # a colour image stays colour


@pytest.mark.parametrize("form", ["data folder", "dataset folder", "official zip name", "zip path"])
def test_every_documented_root_form(tmp_path, cache, form):
    if form == "data folder":
        root = write_tiny_layout(tmp_path / "d").parent
    elif form == "dataset folder":
        root = write_tiny_layout(tmp_path / "d")
    elif form == "official zip name":
        root = write_tiny_layout(tmp_path / "d", archive="tiny-imagenet-200.zip").parent
    else:
        root = write_tiny_layout(tmp_path / "d", archive="any-name.zip")
    data = load(cache, root=root, classes=2, md5="")
    assert len(data.train) == 8 and len(data.val) == 4


def test_data_folder_from_environment_then_user_cache(tmp_path, monkeypatch, cache):
    write_tiny_layout(tmp_path / "env")
    monkeypatch.setenv(ti.DATA_ENV, str(tmp_path / "env"))
    assert len(load(cache, classes=2).train) == 8
    monkeypatch.delenv(ti.DATA_ENV)
    write_tiny_layout(tmp_path / "xdg" / "regsuite" / "data", train_per_class=1)
    assert len(load(cache, classes=2).train) == 2


def test_test_split_and_non_image_files_are_ignored(folder, cache):
    data = load(cache, root=folder, classes=3)
    assert len(data.train) + len(data.val) == 18  # not the test image, not *_boxes.txt


# ---------------------------------------------------------------------------- class selection


def test_classes_takes_the_first_wnids_in_sorted_order(folder, cache):
    # wnids.txt lists them in reverse; the selection must not depend on file order
    assert load(cache, root=folder, classes=2).info.extras["wnids"] == list(WNIDS[:2])


def test_wnids_choose_classes_and_their_order_gives_labels(folder, cache):
    data = load(cache, root=folder, wnids=[WNIDS[2], WNIDS[0]])
    assert data.info.extras["wnids"] == [WNIDS[2], WNIDS[0]]
    assert data.info.class_names == ["class 3, tiny class 3", "class 1, tiny class 1"]
    assert data.train.targets.tolist() == [0] * 4 + [1] * 4
    reference = load(cache, root=folder, classes=3)
    assert torch.equal(data.train.inputs[:4], reference.train.inputs[8:12])


def test_wnids_set_classes_and_survive_a_dump_round_trip():
    params = TinyImageNetParams(wnids=["n1", "n2"])
    assert params.classes == 2
    again = TinyImageNetParams.model_validate(params.model_dump(mode="json"))
    assert again == params


@pytest.mark.parametrize(
    "params, message",
    [
        ({"classes": 0}, "greater than or equal to 1"),
        ({"classes": 3, "wnids": ["n1", "n2"]}, "2 wnids given but classes = 3"),
        ({"wnids": ["n1", "n1"]}, "wnids repeat n1"),
        ({"wnids": []}, "at least 1 item"),
        ({"md5": "not-a-checksum"}, "should match pattern"),
        ({"clases": 3}, "Extra inputs are not permitted"),
    ],
)
def test_params_are_checked(params, message):
    with pytest.raises(Exception, match=message):
        TinyImageNetParams.model_validate(params)


def test_classes_zero_is_a_spec_error_at_load(tmp_path):
    from regsuite.registry import get_registry
    from regsuite.spec import load_spec, resolve

    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "t"\ntask = "image_classification"\n[dataset]\nname = "tiny_imagenet"\nclasses = 0\n'
        '[model]\nname = "small_cnn"\n[[sets]]\nlabel = "none"\n'
    )
    with pytest.raises(SpecError) as caught:
        resolve(load_spec(spec), get_registry())
    assert any("dataset.classes" in d and "greater than or equal to 1" in d for d in caught.value.details)


def test_more_classes_than_the_data_has(folder, cache):
    with pytest.raises(DataError, match=r"classes = 4, but .*wnids.txt lists only 3 classes"):
        load(cache, root=folder, classes=4)


def test_unknown_wnid_suggests_the_closest(folder, cache):
    with pytest.raises(DataError, match=r"'n01443538' is not in .*wnids.txt: did you mean 'n01443537'"):
        load(cache, root=folder, wnids=["n01443538"])


# ---------------------------------------------------------------------------- the cache


def test_second_load_comes_from_the_cache(folder, cache, monkeypatch):
    first = load(cache, root=folder, classes=3)
    assert len(cache_entries(cache)) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(ti, "decode_images", no_decoding)
    second = load(cache, root=folder, classes=3)
    assert torch.equal(first.train.inputs, second.train.inputs) and torch.equal(first.val.targets, second.val.targets)
    assert second.info == first.info
    assert second.train.inputs.is_contiguous()


def test_archive_cache_hit_does_not_open_the_archive(archive, cache, monkeypatch):
    load(cache, root=archive, classes=2)
    monkeypatch.setattr(ti, "ZipTree", None)  # any use would fail
    assert len(load(cache, root=archive, classes=2).train) == 8


def test_cache_key_follows_the_class_selection(folder, cache):
    load(cache, root=folder, classes=2)
    load(cache, root=folder, classes=3)
    load(cache, root=folder, wnids=list(WNIDS[:2]))
    load(cache, root=folder, wnids=[WNIDS[1], WNIDS[0]])
    assert len(cache_entries(cache)) == 3  # classes=2 and wnids=[first two] are the same selection


def test_cache_key_follows_the_source_files(folder, archive, cache):
    first = load(cache, root=folder, classes=2)
    jpeg = folder / "tiny-imagenet-200" / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_1.JPEG"
    shutil.copyfile(jpeg.with_name(f"{WNIDS[0]}_2.JPEG"), jpeg)  # same name, new content
    second = load(cache, root=folder, classes=2)
    assert torch.equal(second.train.inputs[1], second.train.inputs[2])
    assert not torch.equal(first.train.inputs[1], second.train.inputs[1])

    load(cache, root=archive, classes=2)
    entries = len(cache_entries(cache))
    write_tiny_layout(archive.parent, archive=archive.name, train_per_class=1)
    os.utime(archive, ns=(1, 1))
    assert len(load(cache, root=archive, classes=2).train) == 2
    assert len(cache_entries(cache)) == entries + 1


def test_damaged_cache_entry_is_rebuilt(folder, cache):
    first = load(cache, root=folder, classes=2)
    (entry,) = cache_entries(cache)
    damaged = cache / entry / "val_images.npy"
    damaged.unlink()  # never truncate a cache file in place: loaded data maps it
    damaged.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="damaged cache entry"):
        again = load(cache, root=folder, classes=2)
    assert torch.equal(again.val.inputs, first.val.inputs)
    assert cache_entries(cache) == [entry]


def test_a_failed_cache_write_leaves_nothing_and_still_loads(folder, cache, monkeypatch):
    real_save = np.save

    def save_then_fail(path, array, **kwargs):
        real_save(path, array, **kwargs)
        if "val_images" in str(path):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", save_then_fail)
    with pytest.warns(UserWarning, match="cannot write the data cache"):
        data = load(cache, root=folder, classes=2)
    assert len(data.train) == 8
    assert cache_entries(cache) == []


# ---------------------------------------------------------------------------- bad input


def test_missing_val_annotations(folder, cache):
    (folder / "tiny-imagenet-200" / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DataError, match=r"missing file: .*val/val_annotations.txt"):
        load(cache, root=folder, classes=2)
    assert cache_entries(cache) == []


def test_missing_val_image(folder, cache):
    (folder / "tiny-imagenet-200" / "val" / "images" / "val_1.JPEG").unlink()
    with pytest.raises(DataError, match=r"missing file: .*val/images/val_1.JPEG \(listed in .*line 2\)"):
        load(cache, root=folder, classes=2)


def test_missing_train_folder(folder, cache):
    shutil.rmtree(folder / "tiny-imagenet-200" / "train" / WNIDS[1])
    with pytest.raises(DataError, match=rf"missing folder: .*train/{WNIDS[1]}/images"):
        load(cache, root=folder, classes=2)


def test_malformed_annotation_line(folder, cache):
    annotations = folder / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    annotations.write_text(annotations.read_text() + "just-a-name\n")
    with pytest.raises(DataError, match=r"val_annotations.txt, line 7: expected"):
        load(cache, root=folder, classes=2)


def test_truncated_jpeg_in_a_folder(folder, cache):
    jpeg = folder / "tiny-imagenet-200" / "train" / WNIDS[1] / "images" / f"{WNIDS[1]}_3.JPEG"
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    with pytest.raises(DataError, match=rf"cannot decode .*{WNIDS[1]}_3.JPEG: image file is truncated"):
        load(cache, root=folder, classes=2)
    assert cache_entries(cache) == []


def test_truncated_jpeg_in_an_archive(archive, cache):
    name = "tiny-imagenet-200/val/images/val_0.JPEG"
    with zipfile.ZipFile(archive) as zf:
        cut = zf.read(name)[:300]
    bad = rewrite_member(archive, archive.with_name("bad.zip"), name, cut)
    with pytest.raises(DataError, match=r"cannot decode .*bad.zip:tiny-imagenet-200/val/images/val_0.JPEG"):
        load(cache, root=bad, classes=2)
    assert cache_entries(cache) == []


def test_image_of_the_wrong_size(folder, cache):
    from PIL import Image

    jpeg = folder / "tiny-imagenet-200" / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_1.JPEG"
    Image.new("RGB", (32, 48)).save(jpeg, format="JPEG")
    with pytest.raises(DataError, match=r"_1.JPEG is 32×48, expected 64×64"):
        load(cache, root=folder, classes=1)


def test_cut_archive_is_not_a_zip(archive, cache):
    cut = archive.with_name("cut.zip")
    cut.write_bytes(archive.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"cut.zip is not a readable zip archive"):
        load(cache, root=cut, classes=2)


def test_placed_official_archive_that_fails_its_checksum(tmp_path, cache):
    data_folder = write_tiny_layout(tmp_path / "d", archive="tiny-imagenet-200.zip").parent
    with pytest.raises(DataError, match=rf"tiny-imagenet-200.zip fails its checksum: MD5 [0-9a-f]{{32}}, expected {ti.OFFICIAL_MD5}"):
        load(cache, root=data_folder, classes=2)
    assert cache_entries(cache) == []


@pytest.mark.parametrize("entry", ["../evil.txt", "/etc/evil.txt", "tiny-imagenet-200/../../evil.txt", "C:/evil.txt"])
def test_archive_with_path_traversal_entries_is_refused(archive, cache, entry):
    evil = archive.with_name("evil.zip")
    shutil.copyfile(archive, evil)
    with zipfile.ZipFile(evil, "a") as zf:
        zf.writestr(zipfile.ZipInfo(entry), b"owned")
    with pytest.raises(DataError, match=rf"unsafe entry '{entry}'.*refusing the archive"):
        load(cache, root=evil, classes=2)
    assert cache_entries(cache) == []


def test_archive_without_the_layout(tmp_path, cache):
    empty = tmp_path / "other.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", b"hi")
    with pytest.raises(DataError, match=r"other.zip holds no wnids.txt"):
        load(cache, root=empty)


def test_no_data_and_no_download_says_where_to_put_it(tmp_path, cache):
    with pytest.raises(DataError) as caught:
        load(cache, root=tmp_path / "nothing")
    assert f"no Tiny ImageNet data in {tmp_path / 'nothing'}" in str(caught.value)
    assert "tiny-imagenet-200.zip" in str(caught.value) and ti.OFFICIAL_URL in str(caught.value)


def test_root_naming_a_missing_archive(tmp_path, cache):
    with pytest.raises(DataError, match=r"names an archive that does not exist"):
        load(cache, root=tmp_path / "gone.zip")


# ---------------------------------------------------------------------------- download


class Server:
    """A local HTTP server in a thread that serves the files of one folder."""

    def __init__(self, directory: Path):
        served = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                served.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.served = served
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(files: dict[str, Path]) -> Server:
        directory = tmp_path / f"served{len(servers)}"
        directory.mkdir()
        for name, source in files.items():
            shutil.copyfile(source, directory / name)
        servers.append(Server(directory))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def md5_hex(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def download_params(cache: Path, root: Path, url: str, md5: str, **extra) -> TinyImageNetParams:
    return TinyImageNetParams(root=root, url=url, md5=md5, cache_dir=cache, **extra)


def test_download_verifies_and_places_the_archive_once(tmp_path, archive, cache, serve):
    server = serve({"tiny-imagenet-200.zip": archive})
    root = tmp_path / "fresh" / "data"
    params = download_params(cache, root, server.url("tiny-imagenet-200.zip"), md5_hex(archive), classes=2)
    data = TinyImageNet(params).load()
    assert len(data.train) == 8
    assert sorted(p.name for p in root.iterdir()) == ["tiny-imagenet-200.zip"]  # no .part left
    assert (root / "tiny-imagenet-200.zip").read_bytes() == archive.read_bytes()
    TinyImageNet(params.model_copy(update={"classes": 3})).load()  # new selection, same archive
    assert server.served == ["/tiny-imagenet-200.zip"]


def test_prepare_downloads_without_decoding(tmp_path, archive, cache, serve):
    server = serve({"tiny-imagenet-200.zip": archive})
    params = download_params(cache, tmp_path / "d", server.url("tiny-imagenet-200.zip"), md5_hex(archive))
    assert TinyImageNet(params).prepare() == tmp_path / "d" / "tiny-imagenet-200.zip"
    assert cache_entries(cache) == []


def test_download_failing_its_checksum_keeps_nothing(tmp_path, archive, cache, serve):
    server = serve({"tiny-imagenet-200.zip": archive})
    root = tmp_path / "d"
    params = download_params(cache, root, server.url("tiny-imagenet-200.zip"), "0" * 32)
    with pytest.raises(DataError, match=r"fails its checksum: MD5 [0-9a-f]{32}, expected 0{32}"):
        TinyImageNet(params).load()
    assert list(root.iterdir()) == [] and cache_entries(cache) == []


def test_no_network_says_where_to_put_the_archive(tmp_path, cache):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tiny-imagenet-200.zip"
    root = tmp_path / "d"
    with pytest.raises(DataError) as caught:
        TinyImageNet(download_params(cache, root, url, ti.OFFICIAL_MD5)).load()
    message = str(caught.value)
    assert f"could not download {url}" in message and "refused" in message.lower()
    assert f"put it at {root / 'tiny-imagenet-200.zip'}" in message
    assert list(root.iterdir()) == []


def test_http_error_is_a_data_error(tmp_path, archive, cache, serve):
    server = serve({"other.zip": archive})
    with pytest.raises(DataError, match=r"could not download .*/tiny-imagenet-200.zip: File not found"):
        TinyImageNet(download_params(cache, tmp_path / "d", server.url("tiny-imagenet-200.zip"), "")).load()
    assert list((tmp_path / "d").iterdir()) == []


def test_download_cut_short_keeps_nothing(tmp_path, cache):
    class CutShort(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"PK" * 100)  # then the connection closes

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutShort)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    root = tmp_path / "d"
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/tiny-imagenet-200.zip"
        with pytest.raises(DataError, match=r"could not download .*: connection closed after 200 of 100,000 bytes"):
            TinyImageNet(download_params(cache, root, url, "")).load()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert list(root.iterdir()) == []


def test_download_writes_nothing_under_its_name_until_complete(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def watch(src, dst):
        seen.append((Path(src).name, Path(dst).exists()))
        real_replace(src, dst)

    source = tmp_path / "a.bin"
    source.write_bytes(os.urandom(3 * datacache.CHUNK_BYTES + 5))
    server = Server(tmp_path)
    try:
        monkeypatch.setattr(os, "replace", watch)
        dest = datacache.download(server.url("a.bin"), tmp_path / "out" / "a.bin", md5_hex(source), quiet=True)
    finally:
        server.close()
    assert dest.read_bytes() == source.read_bytes()
    assert len(seen) == 1 and seen[0][0].endswith(".part") and seen[0][1] is False


# ---------------------------------------------------------------------------- regsuite data download


@pytest.fixture
def official(archive, serve, monkeypatch):
    """The generated archive served as the official one (its URL and MD5 point at it)."""
    server = serve({"tiny-imagenet-200.zip": archive})
    monkeypatch.setattr(ti, "OFFICIAL_URL", server.url("tiny-imagenet-200.zip"))
    monkeypatch.setattr(ti, "OFFICIAL_MD5", md5_hex(archive))
    return server


def data_download(*args: str):
    from typer.testing import CliRunner

    from regsuite.cli import app

    return CliRunner().invoke(app, ["data", "download", "tiny_imagenet", *args])


def test_data_download_fetches_the_archive_into_the_folder_once(tmp_path, archive, official):
    target = tmp_path / "offline"
    first = data_download("--dir", str(target))
    assert first.exit_code == 0, first.output
    assert "downloaded the Tiny ImageNet archive" in first.output and "nothing to download" not in first.output
    assert sorted(p.name for p in target.iterdir()) == ["tiny-imagenet-200.zip"]  # no .part left
    assert (target / "tiny-imagenet-200.zip").read_bytes() == archive.read_bytes()
    assert f"export REGSUITE_DATA={target}" in " ".join(first.output.split())  # not where runs look by default
    again = data_download("--dir", str(target))
    assert again.exit_code == 0, again.output
    assert "already there, nothing downloaded" in again.output
    assert official.served == ["/tiny-imagenet-200.zip"]
    data = load(tmp_path / "cache", root=target, classes=2, md5="")  # what runs then load, offline (a stand-in archive)
    assert len(data.train) == 8


def test_data_download_defaults_to_the_data_folder(tmp_path, official, monkeypatch):
    monkeypatch.setenv(ti.DATA_ENV, str(tmp_path / "env-data"))
    result = data_download()
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env-data" / "tiny-imagenet-200.zip").is_file()
    assert "export REGSUITE_DATA" not in result.output  # runs look there already


def test_data_download_refuses_an_archive_that_fails_its_checksum(tmp_path, archive, official, monkeypatch):
    monkeypatch.setattr(ti, "OFFICIAL_MD5", "0" * 32)
    result = data_download("--dir", str(tmp_path / "bad"))
    assert result.exit_code == 2
    assert "fails its checksum" in result.output and "Traceback" not in result.output
    assert list((tmp_path / "bad").iterdir()) == []
    shutil.copyfile(archive, tmp_path / "bad" / "tiny-imagenet-200.zip")  # a damaged copy already there
    found = data_download("--dir", str(tmp_path / "bad"))
    assert found.exit_code == 2 and "fails its checksum" in found.output


# ---------------------------------------------------------------------------- the real mini archive


@pytest.mark.realdata
@needs_mini
def test_download_of_the_real_mini_archive(tmp_path, cache, serve):
    assert hashlib.sha256(MINI.read_bytes()).hexdigest() == MINI_SHA256
    server = serve({"tiny-imagenet-200.zip": MINI})
    params = download_params(cache, tmp_path / "d", server.url("tiny-imagenet-200.zip"), md5_hex(MINI), classes=2)
    data = TinyImageNet(params).load()
    assert len(data.train) == 1000 and len(data.val) == 100
    assert data.info.class_names == ["pizza, pizza pie", "potpie"]


@pytest.mark.realdata
@needs_mini
def test_real_mini_archive_ten_classes(cache):
    data = load(cache, root=MINI, classes=10)
    assert data.train.inputs.shape == (5000, 3, 64, 64) and data.train.inputs.dtype == torch.uint8
    assert data.val.inputs.shape == (500, 3, 64, 64) and data.val.inputs.dtype == torch.uint8
    assert torch.bincount(data.train.targets).tolist() == [500] * 10
    assert torch.bincount(data.val.targets).tolist() == [50] * 10
    assert data.info.extras["wnids"] == sorted(data.info.extras["wnids"]) and len(data.info.class_names) == 10
    assert all(0.2 < m < 0.7 for m in data.info.mean) and all(0.1 < s < 0.5 for s in data.info.std)
    again = load(cache, root=MINI, classes=10)
    assert torch.equal(again.val.inputs, data.val.inputs)


def test_smoke_params_load_generated_data(tmp_path):
    params = TinyImageNet.smoke_params(tmp_path)
    data = TinyImageNet(TinyImageNetParams.model_validate(params)).load()
    assert data.info.num_classes == 2 and len(data.train) == 8 and len(data.val) == 4
    assert Path(params["cache_dir"]).is_relative_to(tmp_path)


def test_download_into_an_unwritable_folder_is_a_data_error(tmp_path, cache):
    (tmp_path / "a-file").write_text("")
    root = tmp_path / "a-file" / "data"  # cannot be created (a read-only folder, for root)
    with pytest.raises(DataError, match=rf"cannot write the download to {root}"):
        TinyImageNet(download_params(cache, root, "http://127.0.0.1:9/x.zip", "")).load()
