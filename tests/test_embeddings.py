"""``vitzoo.open_embeddings``: one reader for the dataset directory and the single files, without reading it all.

The embed job's own outputs are read in test_embed.py; here the shard format is written directly, at 3,000,000 rows.
"""

from __future__ import annotations

import numpy as np
import pytest

import vitzoo
from vitzoo.embeddings import ConcatArray, write_index, write_shard


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
