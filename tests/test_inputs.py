"""Inputs that scale (``vitzoo.features.inputs``): list files and WebDataset ``.tar`` shards give the same features, in
the same order, as the same images in a folder; the manifest reads names back by position."""

from __future__ import annotations

import csv
import io
import os
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import vitzoo
import vitzoo.cli
from conftest import save_tiny_model, tar_bytes, write_unreadable_lists
from vitzoo.features.inputs import (
    Manifest,
    format_failed,
    format_names,
    iter_names,
    open_source,
    parse_failed,
    parse_names,
    write_manifest,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model"))


def make_images(folder: Path) -> list[Path]:
    """Six small images, one in a sub-folder, in sorted(rglob) order."""
    rng = np.random.default_rng(1)
    paths = [folder / "a0.jpg", folder / "a1.png", folder / "b" / "c2.jpg", folder / "d3.webp", folder / "e4.jpg",
             folder / "f5.png"]  # fmt: skip
    for i, path in enumerate(paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 256, (40 + 8 * i, 56, 3), dtype=np.uint8)
        vitzoo.features.transforms.Image.fromarray(arr).save(path)
    return paths


def write_tar(shard: Path, folder: Path, images: list[Path]) -> None:
    """A WebDataset shard: per key its image and two other members (a label and JSON), grouped by key."""
    with tarfile.open(shard, "w") as tar:
        for path in images:
            key = path.relative_to(folder).with_suffix("").as_posix()
            for name, data in ((f"{key}.cls", b"3"), (path.relative_to(folder).as_posix(), path.read_bytes()),
                               (f"{key}.json", b"{}")):  # fmt: skip
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def embed(name: str, out: Path, *inputs: object) -> vitzoo.Embeddings:
    args = ["embed", name, *map(str, inputs), "--out", str(out), "--workers", "0", "--shard-size", "4", "--quiet"]
    assert vitzoo.cli.main(args) == 0
    return vitzoo.open_embeddings(out)


def test_lists_and_tar_shards_equal_the_folder(saved_model, tmp_path):
    pytest.importorskip("pyarrow", reason="parquet lists need the vitzoo[parquet] extra (pyarrow)")
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, name = saved_model
    folder = tmp_path / "imgs"
    paths = make_images(folder)
    (tmp_path / "list.txt").write_text("".join(f"{p}\n" for p in paths))
    with open(tmp_path / "list.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "path"])
        writer.writerows([i, p] for i, p in enumerate(paths))
    pq.write_table(pa.table({"path": [str(p) for p in paths], "label": list(range(6))}), tmp_path / "list.parquet")
    (tmp_path / "shards").mkdir()
    write_tar(tmp_path / "shards" / "s0.tar", folder, paths[:4])
    write_tar(tmp_path / "shards" / "s1.tar", folder, paths[4:])

    ref = embed(name, tmp_path / "from-folder", folder)
    assert list(ref.paths) == [str(p) for p in paths]
    members = [f"{tmp_path}/shards/s0.tar/{p.relative_to(folder).as_posix()}" for p in paths[:4]]
    members += [f"{tmp_path}/shards/s1.tar/{p.name}" for p in paths[4:]]
    runs = {
        "txt": (tmp_path / "list.txt", [str(p) for p in paths]),
        "csv": (tmp_path / "list.csv", [str(p) for p in paths]),
        "parquet": (tmp_path / "list.parquet", [str(p) for p in paths]),
        "tar": (f"{tmp_path}/shards/*.tar", members),  # a glob of shards, expanded in sorted order
    }
    for kind, (source, expected) in runs.items():
        got = embed(name, tmp_path / f"from-{kind}", source)
        assert list(got.paths) == expected, kind
        assert np.array_equal(np.asarray(got["features"]), np.asarray(ref["features"])), kind
    api = vitzoo.extract_features(saved_model[0], members, num_workers=0, progress=False).numpy()  # other batches
    assert np.abs(api - np.asarray(ref["features"])).max() <= 1e-5


ODD_NAMES = ["ünïcode name.png", "a\nb.jpg", "c\rd.jpg", "e\tf.jpg", "g\\nh.jpg", "i\u2028j\x85k\x0bl.png",
             "m\\.png", os.fsdecode(b"n\xff\xfeo.png"), "p\\\n.png"]  # fmt: skip  # any name a file system holds


def test_manifest_reads_names_by_position(tmp_path):
    names = [f"dir/{i:05d}.jpg" for i in range(70_000)] + ODD_NAMES  # more than one offset chunk
    count, digest = write_manifest(iter(names), tmp_path)
    manifest = Manifest(tmp_path)
    assert count == len(manifest) == len(names) and len(digest) == 64
    assert manifest[0] == names[0] and manifest[-1] == names[-1] and manifest[65_535:65_538] == names[65_535:65_538]
    assert list(manifest[70_000:]) == [manifest[i] for i in range(70_000, len(names))] == ODD_NAMES  # exact strings
    text = (tmp_path / "inputs.txt").read_bytes()
    assert text.count(b"\n") == len(names) and b"a\\nb.jpg\n" in text and b"n\xff\xfeo.png\n" in text  # readable


def test_names_files_round_trip_exactly():
    assert parse_names(format_names(ODD_NAMES)) == ODD_NAMES and parse_names(format_names([])) == []
    failed = [(name, f"cannot read\t{name}\nline 2") for name in ODD_NAMES]
    assert parse_failed(format_failed(failed)) == failed
    assert format_names(["a.jpg", "b c.png"]) == b"a.jpg\nb c.png\n"  # plain names are written as they are


def test_manifest_reads_are_right_in_forked_workers(tmp_path):
    """Forked DataLoader workers share the parent's open file; reads must not depend on a shared file offset."""
    names = [f"img/{i:06d}.jpg" for i in range(4000)]
    write_manifest(names, tmp_path)
    manifest = Manifest(tmp_path)
    assert manifest[5] == names[5]  # the parent opens the file before the workers fork
    loader = torch.utils.data.DataLoader(manifest, batch_size=50, num_workers=2, collate_fn=list,
                                         multiprocessing_context="fork")  # fmt: skip
    for k, batch in enumerate(loader):
        assert manifest[k * 50 + 49 : k * 50 : -1] == names[k * 50 + 49 : k * 50 : -1]  # the parent reads meanwhile
        assert batch == names[k * 50 : (k + 1) * 50]


def test_csv_without_a_path_column_is_refused(tmp_path):
    (tmp_path / "list.csv").write_text("file,label\na.jpg,1\n")
    with pytest.raises(vitzoo.ConfigError, match="'path' column"):
        list(iter_names(tmp_path / "list.csv"))


def test_checked_inputs_exist_and_hold_images(tmp_path):
    """The embed job's inputs (``check=True``): a typo or an empty input is an error naming it, not "0 images"."""
    (tmp_path / "a.jpg").write_bytes(b"any bytes: decoding comes later")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.jpg'}\n{tmp_path / 'missing.jpg'}\n")
    with tarfile.open(tmp_path / "labels.tar", "w") as tar:
        info = tarfile.TarInfo("0001.cls")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"3"))
    first = str(tmp_path / "a.jpg")
    assert list(iter_names([first, "missing.jpg"])) == [first, "missing.jpg"]  # unchecked (extract_features): as given
    assert list(iter_names([tmp_path / "list.txt"], check=True)) == [first, str(tmp_path / "missing.jpg")]  # entries
    for bad, why in {
        tmp_path / "missing.jpg": "no such file or folder",
        tmp_path / "empty": "no images in this folder",
        tmp_path / "empty.txt": "this list names no image",
        tmp_path / "labels.tar": "no image members in this tar shard",
        f"{tmp_path}/*.png": "this pattern matches no file",
    }.items():
        with pytest.raises(vitzoo.ConfigError, match=f"^{re.escape(f'{bad}: {why}')}"):
            list(iter_names([first, bad], check=True))


def test_unreadable_lists_and_shards_are_format_errors(tmp_path):
    for path, why in write_unreadable_lists(tmp_path).items():
        with pytest.raises(vitzoo.FormatError, match=f"^{re.escape(f'{path}: {why}')}"):
            list(iter_names(path))
    rng = np.random.default_rng(1)
    (tmp_path / "0001.jpg").write_bytes(b"abc")
    (tmp_path / "ok.tar").write_bytes(tar_bytes({"0001.jpg": b"abc"}))
    names = list(iter_names(tmp_path / "ok.tar"))
    (tmp_path / "ok.tar").write_bytes(rng.bytes(2000))  # changed after it was listed: that image is unreadable
    with pytest.raises(vitzoo.ImageError, match="not a readable tar archive"):
        open_source(names[0])


def test_a_list_keeps_the_bytes_of_names_that_are_not_utf8(tmp_path):
    """A list written by ``find`` holds file names as bytes: read back, they name the same files."""
    name = tmp_path / os.fsdecode(b"caf\xe9 \xff.jpg")
    name.write_bytes(b"x")
    (tmp_path / "list.txt").write_bytes(os.fsencode(f"{name}\n"))
    (tmp_path / "list.csv").write_bytes(b"path\n" + os.fsencode(str(name)) + b"\n")
    for listing in ("list.txt", "list.csv"):
        [got] = iter_names(tmp_path / listing, check=True)
        assert got == str(name) and os.path.exists(got)
