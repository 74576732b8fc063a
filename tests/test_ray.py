"""``vitzoo.BatchEmbedder`` in Ray Data on a local cluster: the same rows and features as ``vitzoo embed``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vitzoo
import vitzoo.cli
from conftest import save_tiny_model, write_images

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module


def test_batch_embedder_without_ray_equals_embed(tmp_path):
    model, name = save_tiny_model(tmp_path)
    files = write_images(tmp_path / "imgs")
    paths = [str(files[n]) for n in ("a_photo.jpg", "b_alpha.png", "c_gray.png")]
    embedder = vitzoo.BatchEmbedder(name, pool="avg")
    by_path = embedder({"path": np.array(paths), "label": np.arange(3)})
    by_bytes = embedder({"bytes": np.array([Path(p).read_bytes() for p in paths], dtype=object)})
    api = vitzoo.extract_features(model, paths, pool="avg", num_workers=0, progress=False).numpy()
    assert set(by_path) == {"path", "label", "features"} and set(by_bytes) == {"features"}
    assert np.abs(by_path["features"] - api).max() <= 1e-5 and np.abs(by_bytes["features"] - api).max() <= 1e-5


@pytest.mark.slow  # starting a local Ray cluster takes 10-20 s
def test_ray_data_equals_vitzoo_embed(tmp_path):
    ray = pytest.importorskip("ray", reason="the vitzoo[ray] extra (ray[data]) is not installed")
    _, name = save_tiny_model(tmp_path)
    files = write_images(tmp_path / "imgs", n_plain=5)
    (tmp_path / "imgs" / "d_corrupt.jpg").unlink()  # Ray's job fails on an unreadable image; embed skips it
    assert vitzoo.cli.main(["embed", name, str(tmp_path / "imgs"), "--out", str(tmp_path / "emb"), "--quiet"]) == 0
    ref = vitzoo.open_embeddings(tmp_path / "emb")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.read_binary_files(str(tmp_path / "imgs"), include_paths=True)
        ds = ds.map_batches(vitzoo.BatchEmbedder, fn_constructor_kwargs={"name": name}, concurrency=1, batch_size=4)
        ds.write_parquet(str(tmp_path / "parquet"))
        rows = ray.data.read_parquet(str(tmp_path / "parquet")).take_all()
    finally:
        ray.shutdown()
    got = {row["path"].removeprefix("file://"): row["features"] for row in rows}
    assert sorted(got) == sorted(ref.paths) and len(got) == len(files) - 1
    feats = np.stack([got[p] for p in ref.paths])
    assert np.abs(feats - np.asarray(ref["features"])).max() <= 1e-5
