"""The embed job (``vitzoo embed``): output and metadata, refusals, resuming after an interruption, torchrun.

Runs go through ``vitzoo.cli.main`` in this process; only the 2-process torchrun run needs processes of its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import vitzoo
import vitzoo.cli
from test_extract import BF16_TOL, TAG, one_thread, preprocess, save_tiny_model, write_images  # noqa: F401 (autouse)
from vitzoo import embed
from vitzoo.embed import EmbedMeta

META_KEYS = {f.name for f in dataclasses.fields(EmbedMeta)}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model"))


def run_embed(*args: str) -> int:
    return vitzoo.cli.main(["embed", *map(str, args)])


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118


def assert_same_file(a: Path, b: Path) -> None:
    (ta, ma), (tb, mb) = read(a), read(b)
    assert ma == mb and ta.keys() == tb.keys() and ta, (ma, mb)
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


@pytest.fixture
def counted(monkeypatch):
    """Count DataLoader constructions and record the shards each run writes."""
    seen = {"loaders": 0, "shards": []}

    class CountingLoader(torch.utils.data.DataLoader):
        def __init__(self, *args, **kwargs):
            seen["loaders"] += 1
            super().__init__(*args, **kwargs)

    write = embed._write_shard

    def recording_write(parts, k, *args):
        write(parts, k, *args)
        seen["shards"].append(k)

    monkeypatch.setattr(torch.utils.data, "DataLoader", CountingLoader)
    monkeypatch.setattr(embed, "_write_shard", recording_write)
    return seen


def test_embed_matches_direct_forward_and_reports_bad_files(saved_model, tmp_path, capsys):
    model, name = saved_model
    files = write_images(tmp_path / "imgs")
    out = tmp_path / "emb.safetensors"
    assert run_embed(name, tmp_path / "imgs", "--out", out, "--workers", "1", "--batch-size", "2") == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "4 images embedded" in captured.err and "1 unreadable" in captured.err
    feats, raw = read(out)
    meta = {key: json.loads(value) for key, value in raw.items()}  # every value is JSON
    assert set(meta) == META_KEYS | {"paths", "num_failed"}
    assert [Path(p).name for p in meta["paths"]] == ["a_photo.jpg", "b_alpha.png", "c_gray.png", "e_rotated.jpg"]
    assert meta["model"] == name and meta["tag"] == TAG and meta["revision"] is None and meta["num_failed"] == 1
    assert meta["pool"] == "token" and meta["layers"] == [] and meta["img_size"] == [224, 224]
    assert meta["dtype"] == "float32" and meta["vitzoo_version"] == vitzoo.__version__
    with torch.no_grad():
        direct = model.forward_features(preprocess(model, meta["paths"]))[:, 0]
    assert (feats["features"] - direct).abs().max().item() <= 1e-4
    failed = (tmp_path / "emb.safetensors.failed.txt").read_text()
    assert failed.startswith(str(files["d_corrupt.jpg"])) and "cannot read" in failed
    assert not (tmp_path / "emb.safetensors.parts").exists()


def test_embed_npy_and_layers_match_the_api(saved_model, tmp_path, capsys):
    model, name = saved_model
    files = write_images(tmp_path / "imgs")
    paths = [files[n] for n in ("a_photo.jpg", "b_alpha.png", "c_gray.png")]
    out = tmp_path / "emb.npy"
    assert run_embed(name, *paths, "--out", out, "--pool", "avg", "--workers", "0", "--quiet") == 0
    assert capsys.readouterr().err == f"3 images embedded into {out}\n"  # --quiet: the summary, no progress bar
    assert (tmp_path / "emb.npy.paths.txt").read_text().split() == [str(p) for p in paths]
    api = vitzoo.extract_features(model, paths, pool="avg", num_workers=0, progress=False)
    assert np.abs(np.load(out) - api.numpy()).max() <= 1e-5
    out = tmp_path / "layers.safetensors"
    assert run_embed(name, *paths, "--out", out, "--layers", "-1", "0", "--workers", "0", "--quiet") == 0
    tensors, meta = read(out)
    api = vitzoo.extract_features(model, paths, layers=[0, 1], num_workers=0, progress=False)
    assert json.loads(meta["layers"]) == [0, 1] and tensors.keys() == api.keys()
    assert all((tensors[k] - api[k]).abs().max().item() <= 1e-5 for k in api)


def test_embed_refusals(saved_model, tmp_path, capsys):
    _, name = saved_model
    image = write_images(tmp_path / "imgs")["a_photo.jpg"]
    assert run_embed(name, image, "--out", tmp_path / "e.npy", "--layers", "0") == 2
    assert "write them to a .safetensors file" in capsys.readouterr().err
    assert run_embed(name, image, "--out", tmp_path / "e.pt") == 2
    assert "must end in .safetensors or .npy" in capsys.readouterr().err
    parts = tmp_path / "e.safetensors.parts"
    parts.mkdir()
    other = {key: json.dumps("another command") for key in META_KEYS}
    (parts / "manifest.json").write_text(json.dumps(other))
    assert run_embed(name, image, "--out", tmp_path / "e.safetensors") == 2
    err = capsys.readouterr().err
    assert "holds shards of a different command" in err and "delete that folder" in err and "pool" in err
    assert json.loads((parts / "manifest.json").read_text()) == other  # the other command's work is left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.safetensors.parts", "imgs"]  # refused before any work


def test_interrupted_run_resumes_to_the_same_file(saved_model, tmp_path, counted, monkeypatch, capsys):
    _, name = saved_model
    write_images(tmp_path / "imgs", n_plain=11)  # 16 inputs: 4 shards of 4, batches of 3 (never across a shard)
    args = [name, tmp_path / "imgs", "--shard-size", "4", "--batch-size", "3", "--workers", "0"]
    ref = tmp_path / "ref.safetensors"
    assert run_embed(*args, "--out", ref) == 0
    assert counted == {"loaders": 1, "shards": [0, 1, 2, 3]}  # one DataLoader (worker pool) for all shards

    write = embed._write_shard

    def interrupted(parts, k, *rest):
        write(parts, k, *rest)
        raise KeyboardInterrupt  # as if Ctrl-C arrived right after the first shard was written

    out = tmp_path / "run.safetensors"
    with monkeypatch.context() as patch:
        patch.setattr(embed, "_write_shard", interrupted)
        assert run_embed(*args, "--out", out) == 130  # the CLI's exit status for Ctrl-C
    assert "re-running the same command resumes" in capsys.readouterr().err
    parts = tmp_path / "run.safetensors.parts"
    assert sorted(p.name for p in parts.iterdir()) == ["manifest.json", "shard-000000.safetensors"]
    manifest = json.loads((parts / "manifest.json").read_text())
    assert not out.exists()

    capsys.readouterr()
    counted.update(loaders=0, shards=[])
    assert run_embed(*args, "--out", out) == 0
    assert counted == {"loaders": 1, "shards": [1, 2, 3]}  # shard 0 was kept, not recomputed
    assert "resuming: 1 of 4 shards already done" in capsys.readouterr().err
    assert_same_file(out, ref)
    _, meta = read(out)
    assert set(manifest) == META_KEYS | {"batch_size", "shard_size", "inputs"}  # metadata: one schema, one encoding
    assert {k: manifest[k] for k in META_KEYS} == {k: meta[k] for k in META_KEYS}


def test_bf16_through_the_cli(saved_model, tmp_path):
    model, name = saved_model
    files = write_images(tmp_path / "imgs")
    paths = [files[n] for n in ("a_photo.jpg", "c_gray.png")]
    out = tmp_path / "bf16.safetensors"
    assert run_embed(name, *paths, "--out", out, "--dtype", "bf16", "--workers", "0", "--quiet") == 0
    tensors, meta = read(out)
    fp32 = vitzoo.extract_features(model, paths, num_workers=0, progress=False)
    assert json.loads(meta["dtype"]) == "bfloat16" and tensors["features"].dtype == torch.float32
    assert 0 < (tensors["features"] - fp32).norm() / fp32.norm() <= BF16_TOL


def test_torchrun_two_processes_equal_one(saved_model, tmp_path):
    _, name = saved_model
    write_images(tmp_path / "imgs", n_plain=20)  # 25 inputs, 7 shards: ranks 0 and 1 take 4 and 3
    args = [name, tmp_path / "imgs", "--shard-size", "4", "--batch-size", "3", "--workers", "0"]
    assert torch.get_num_threads() == 1  # bitwise equality needs the ranks' thread count (OMP_NUM_THREADS=1)
    assert run_embed(*args, "--out", tmp_path / "one.safetensors") == 0
    # --standalone: the rendezvous binds port 0, so the OS gives a free port (no fixed port to collide on).
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "vitzoo", "embed", *map(str, args), "--out", str(tmp_path / "two.safetensors")]  # fmt: skip
    here = str(Path(vitzoo.__file__).parents[1])  # the ranks import this vitzoo, not another installed copy
    path = os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    two = subprocess.run(torchrun, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "[rank 0] 4 of 7 shards to embed" in two.stderr and "[rank 1] 3 of 7 shards to embed" in two.stderr
    assert_same_file(tmp_path / "two.safetensors", tmp_path / "one.safetensors")
