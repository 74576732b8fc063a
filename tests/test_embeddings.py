"""``vitzoo.open_embeddings``: one reader for the dataset directory and the single files, without reading it all.

The embed job's own outputs are read in test_embed.py; here the shard format is written directly, at 3,000,000 rows.
"""

from __future__ import annotations

import json
import mmap
import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import vitzoo
from vitzoo.features.shards import write_index, write_shard
from vitzoo.features.store import ConcatArray, read_rows, row_blocks


@pytest.mark.slow  # a scale test: test_embed.py writes and reads back paths of every kind in the fast suite
def test_three_million_paths_write_and_reopen(tmp_path):
    n, per = 3_000_000, 500_000  # 6 shards; 2 float16 features per row keep the arrays small
    meta = {"model": "synthetic", "pool": "token"}
    for k in range(n // per):
        rows = np.arange(k * per, (k + 1) * per)
        feats = np.stack([rows % 1024, rows // 1024 % 1024], axis=1).astype(np.float16)
        paths = [f"images/{i:07d}.jpg" for i in range(k * per, (k + 1) * per)]
        failed = [(f"images/bad{k}.jpg", "cannot read the image")] if k == 2 else []
        write_shard(tmp_path, k, {"features": feats}, paths, failed)
    (tmp_path / "failed.txt").write_text("images/bad2.jpg\tcannot read the image\n")
    index = write_index(tmp_path, n // per, meta, {"inputs": "digest"})
    assert index["rows"] == n and index["failed"] == 1
    assert index["arrays"] == {"features": {"shape": [2], "dtype": "float16"}}

    E = vitzoo.open_embeddings(tmp_path)
    assert len(E) == n and E.keys() == ["features"] and E.meta == meta
    feats = E["features"]
    assert isinstance(feats, ConcatArray) and feats.shape == (n, 2) and feats.dtype == np.float16
    assert E.paths[0] == "images/0000000.jpg" and E.paths[-1] == "images/2999999.jpg" and len(E.paths) == n
    assert E.paths[1_499_999] == "images/1499999.jpg"
    rows = np.arange(499_990, 500_010)  # across a shard boundary
    expected = np.stack([rows % 1024, rows // 1024 % 1024], axis=1).astype(np.float16)
    np.testing.assert_array_equal(feats[499_990:500_010], expected)
    np.testing.assert_array_equal(feats[rows[::-1]], expected[::-1])
    np.testing.assert_array_equal(feats[499_991], expected[1])
    np.testing.assert_array_equal(feats[499_990:500_010:3, 1], expected[::3, 1])
    assert E.failed == [("images/bad2.jpg", "cannot read the image")]
    shards = iter(E)
    first = next(shards)
    assert len(first) == per and first.paths[-1] == "images/0499999.jpg" and first["features"].shape == (per, 2)
    assert isinstance(first["features"], np.memmap)  # read on demand, not loaded


def test_concat_array_indexing_equals_numpy():
    parts = [np.arange(12, dtype=np.float32).reshape(4, 3), np.zeros((0, 3), np.float32), np.ones((2, 3), np.float32)]
    a, ref = ConcatArray(parts, [3], np.float32), np.concatenate(parts)
    for idx in (0, -1, 5, slice(None), slice(1, 5), slice(5, 1, -1), slice(None, None, 2), [0, 5, 3], (slice(2, 6), 1)):
        np.testing.assert_array_equal(a[idx], ref[idx])
    np.testing.assert_array_equal(np.asarray(a), ref)
    np.testing.assert_array_equal(a[np.array([True, False, True, False, False, True])], ref[[0, 2, 5]])
    with pytest.raises(IndexError):
        a[6]


def test_not_an_output(tmp_path):
    with pytest.raises(vitzoo.FormatError, match=r"no index\.json"):
        vitzoo.open_embeddings(tmp_path)
    with pytest.raises(vitzoo.FormatError, match="no such"):
        vitzoo.open_embeddings(tmp_path / "missing.safetensors")


def write_dir(folder, rows):
    """A one-shard dataset directory of ``rows`` rows, as the embed job writes it."""
    folder.mkdir()
    write_shard(folder, 0, {"features": np.ones((rows, 3), np.float32)}, [f"img/{i}.jpg" for i in range(rows)], [])
    write_index(folder, 1, {"model": "synthetic"}, {"inputs": "digest"})


def test_rows_are_checked_against_paths(tmp_path):
    """Paths and rows are two files (or a header and data): one path too many or too few is refused, never read as
    another image's row."""
    st = tmp_path / "e.safetensors"
    save_file({"features": torch.zeros(8, 3)}, str(st), metadata={"paths": json.dumps([f"{i}.jpg" for i in range(13)])})
    with pytest.raises(vitzoo.FormatError, match="13 paths for 8 rows"):
        vitzoo.open_embeddings(st)
    npy = tmp_path / "e.npy"
    np.save(npy, np.zeros((4, 3), np.float32))
    (tmp_path / "e.npy.paths.txt").write_text("a.jpg\nb.jpg\nc.jpg\n")
    with pytest.raises(vitzoo.FormatError, match="3 paths for 4 rows"):
        vitzoo.open_embeddings(npy)
    folder = tmp_path / "dir"
    write_dir(folder, rows=4)
    (folder / "shard-000000.paths.txt").write_text("a.jpg\nb.jpg\nc.jpg\nd.jpg\ne.jpg\n")
    E = vitzoo.open_embeddings(folder)  # the index alone is read on open; a shard when it is first used
    with pytest.raises(vitzoo.FormatError, match="5 paths for 4 rows"):
        E.paths[0]
    with pytest.raises(vitzoo.FormatError, match="5 paths for 4 rows"):
        next(iter(E))
    np.save(folder / "shard-000000.features.npy", np.ones((3, 3), np.float32))
    with pytest.raises(vitzoo.FormatError, match="3 rows of an array for 4 rows"):
        vitzoo.open_embeddings(folder)["features"][0]


def other_programs_files(folder):
    """Files named like embed outputs that vitzoo did not write (or that were damaged), by what they are."""
    rng = np.random.default_rng(0)
    files = {}

    def put(name, data):
        files[name] = folder / name
        files[name].parent.mkdir(parents=True, exist_ok=True)
        files[name].write_bytes(data)

    put("random.safetensors", rng.bytes(4096))
    put("short.safetensors", b"\x01\x02\x03")
    put("huge-header.safetensors", struct.pack("<Q", 2**62) + b"{}")
    put("header-not-json.safetensors", struct.pack("<Q", 4) + b"\xff\xfe{[")
    put("header-a-list.safetensors", struct.pack("<Q", 2) + b"[]")
    bogus = json.dumps({"__metadata__": {"paths": "[]"}, "features": {"dtype": "F32", "shape": [2, 3]}}).encode()
    put("bogus-tensor.safetensors", struct.pack("<Q", len(bogus)) + bogus)
    past = json.dumps({"__metadata__": {"paths": '["a", "b"]'},
                       "features": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}).encode()  # fmt: skip
    put("past-the-end.safetensors", struct.pack("<Q", len(past)) + past + bytes(8))
    save_file({"weight": torch.zeros(2, 2)}, str(folder / "a-checkpoint.safetensors"), metadata={"format": "pt"})
    files["a-checkpoint.safetensors"] = folder / "a-checkpoint.safetensors"
    save_file({"x": torch.zeros(2)}, str(folder / "plain-metadata.safetensors"), metadata={"paths": "a.jpg"})
    files["plain-metadata.safetensors"] = folder / "plain-metadata.safetensors"
    np.save(folder / "full.npy", np.zeros((10, 4), np.float32))
    put("truncated.npy", (folder / "full.npy").read_bytes()[:100])
    put("random.npy", rng.bytes(100))
    put("empty.npy", b"")
    put("no-paths-file.npy", (folder / "full.npy").read_bytes())
    put("pickled.npy", pickle.dumps({"a": 1}))
    ours = {"format": "vitzoo.features.store", "version": 1}
    bad_shards = {**ours, "rows": 1, "shards": [{"rows": "x"}], "arrays": {}, "meta": {}, "command": {}}
    for name, text in {
        "index-list": "[1, 2]",
        "index-not-json": "{not json",
        "index-other-format": '{"format": "something-else", "shards": []}',
        "index-no-shards": json.dumps({**ours, "rows": 0}),
        "index-bad-shards": json.dumps(bad_shards),
        "index-newer": json.dumps({**ours, "version": 99}),
    }.items():
        put(f"{name}/index.json", text.encode())
    put("index-latin1/index.json", b'{"format": "\xe9"}')
    for name in list(files):  # a directory's entry is the directory
        if name.endswith("/index.json"):
            files[name.removesuffix("/index.json")] = files.pop(name).parent
    return files


def test_files_of_other_programs_raise_format_error(tmp_path):
    """Never struct.error, MemoryError, JSONDecodeError, KeyError, UnicodeDecodeError, ...: a FormatError (a
    VitzooError, so the CLI prints one line), raised on open."""
    files = other_programs_files(tmp_path)
    assert len(files) == 21
    for name, path in files.items():
        with pytest.raises(vitzoo.FormatError) as raised:
            vitzoo.open_embeddings(path)
        assert str(path) in str(raised.value), name


def test_row_blocks_reads_every_layout_in_order_one_mapping_at_a_time(tmp_path):
    """The blocks of a search: the rows in order, converted, in one buffer; a memory-mapped file's rows through a
    mapping of their own, so the pages read are let go with each block."""
    rows = np.arange(70 * 3, dtype=np.float16).reshape(70, 3)
    folder = tmp_path / "dir"
    folder.mkdir()
    for k, (a, b) in enumerate([(0, 30), (30, 30), (30, 52), (52, 70)]):  # an empty shard too
        write_shard(folder, k, {"features": rows[a:b]}, [f"{i}.jpg" for i in range(a, b)], [])
    write_index(folder, 4, {"model": "synthetic"}, {"inputs": "digest"})
    np.save(tmp_path / "e.npy", rows)
    (tmp_path / "e.npy.paths.txt").write_text("".join(f"{i}.jpg\n" for i in range(70)))
    save_file(
        {"features": torch.from_numpy(rows)},
        str(tmp_path / "e.safetensors"),
        metadata={"paths": json.dumps([f"{i}.jpg" for i in range(70)])},
    )
    for path in (folder, tmp_path / "e.npy", tmp_path / "e.safetensors"):
        features = vitzoo.open_embeddings(path)["features"]
        for block_rows in (1, 16, 70, 100):
            blocks = [b.copy() for b in row_blocks(features, block_rows, np.float32)]
            assert [len(b) for b in blocks[:-1]] == [block_rows] * (len(blocks) - 1) and blocks[-1].dtype == np.float32
            np.testing.assert_array_equal(np.concatenate(blocks), rows.astype(np.float32))
    mapped = vitzoo.open_embeddings(tmp_path / "e.npy")["features"]
    piece = read_rows(mapped, 10, 20)
    assert isinstance(piece.base, mmap.mmap) and piece.base is not mapped.base  # a mapping of its own
    np.testing.assert_array_equal(piece, rows[10:20])
