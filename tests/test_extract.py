"""Feature extraction and the ``vitzoo predict`` / ``embed`` commands, run as real processes on generated images.

Every output is checked against ``model(create_transform(model)(image))`` computed directly in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

import vitzoo
from conftest import randomize_
from vitzoo.transforms import create_transform, load_image

TAG = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny ImageNet-1k classifier saved with its checkpoint facts (transform, labels) as a local folder."""
    torch.manual_seed(0)
    model = randomize_(vitzoo.create_model(TAG, depth=2), seed=3).eval()  # facts of the tag, random weights
    folder = vitzoo.save_pretrained(model, tmp_path_factory.mktemp("model") / "tiny")
    return model, f"local-dir:{folder}"


def _write_images(folder: Path, n_plain: int = 0) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def rgb(w: int, h: int) -> Image.Image:
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))

    files = {}
    rgb(500, 375).save(folder / "a_photo.jpg", quality=90)
    img = rgb(120, 90)
    Image.merge("RGBA", (*img.split(), Image.new("L", img.size, 128))).save(folder / "b_alpha.png")
    rgb(200, 300).convert("L").save(folder / "c_gray.png")
    (folder / "d_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 270
    rgb(160, 100).save(folder / "e_rotated.jpg", exif=exif.tobytes())
    for i in range(n_plain):
        rgb(64 + i % 5 * 16, 48 + i % 3 * 16).save(folder / f"p{i:03d}.jpg")
    for p in sorted(folder.iterdir()):
        files[p.name] = p
    return files


@torch.no_grad()
def _direct(model, path: Path) -> torch.Tensor:
    x = create_transform(model)(load_image(path)).unsqueeze(0)
    return model.forward_features(x)[0, 0]


def _vitzoo(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    exe = shutil.which("vitzoo")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "vitzoo", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_embed_cli_matches_direct_forward_and_reports_bad_files(saved_model, tmp_path):
    model, name = saved_model
    files = _write_images(tmp_path / "imgs")
    out = tmp_path / "emb.safetensors"
    res = _vitzoo("embed", name, str(tmp_path / "imgs"), "--out", str(out), "--workers", "1", "--batch-size", "2")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out)
    assert "4 images embedded" in res.stderr and "1 unreadable" in res.stderr
    with safe_open(str(out), "pt") as f:
        feats, meta = f.get_tensor("features"), f.metadata()
    paths = json.loads(meta["paths"])
    assert [Path(p).name for p in paths] == ["a_photo.jpg", "b_alpha.png", "c_gray.png", "e_rotated.jpg"]
    assert meta["pool"] == "token" and meta["model"] == name and meta["tag"] == TAG and meta["num_failed"] == "1"
    assert json.loads(meta["img_size"]) == [224, 224] and meta["dtype"] == "float32"
    for row, p in enumerate(paths):
        assert (feats[row] - _direct(model, Path(p))).abs().max().item() <= 1e-4, p
    failed = (tmp_path / "emb.safetensors.failed.txt").read_text()
    assert failed.startswith(str(files["d_corrupt.jpg"])) and "cannot read" in failed
    assert not (tmp_path / "emb.safetensors.parts").exists()


def test_embed_npy_layers_and_pools_through_the_api(saved_model, tmp_path):
    model, name = saved_model
    files = _write_images(tmp_path / "imgs")
    good = [files[n] for n in ("a_photo.jpg", "b_alpha.png", "c_gray.png")]
    out = tmp_path / "emb.npy"
    res = _vitzoo("embed", name, *map(str, good), "--out", str(out), "--pool", "avg", "--workers", "0")
    assert res.returncode == 0, res.stderr
    arr = np.load(out)
    assert (tmp_path / "emb.npy.paths.txt").read_text().split() == [str(p) for p in good]
    api = vitzoo.extract_features(model, good, pool="avg", num_workers=0, progress=False)
    assert np.abs(arr - api.numpy()).max() <= 1e-5
    with torch.no_grad():
        x = torch.stack([create_transform(model)(load_image(p)) for p in good])
        assert (api - model.forward_features(x)[:, 1:].mean(1)).abs().max().item() <= 1e-4
        multi = vitzoo.extract_features(model, good, layers=[0, -1], pool="tokens", num_workers=0, progress=False)
        _, inter = model.forward_intermediates(x, indices=[0, 1], norm=True, output_fmt="NLC", return_prefix_tokens=True)
        assert set(multi) == {"layer_0", "layer_1"} and multi["layer_1"].shape == (3, 197, 192)
        assert (multi["layer_0"] - torch.cat([inter[0][1], inter[0][0]], 1)).abs().max().item() <= 1e-4
    with pytest.raises(vitzoo.ImageError, match="d_corrupt.jpg"):
        vitzoo.extract_features(model, [files["d_corrupt.jpg"]], num_workers=0, progress=False)
    skipped = vitzoo.extract_features(model, [files["d_corrupt.jpg"], good[0]], num_workers=0, progress=False,
                                      on_error="skip")  # fmt: skip
    assert skipped.shape == (1, 192)
    tensors = vitzoo.extract_features(model, x, num_workers=0, progress=False)  # preprocessed tensors pass through
    with torch.no_grad():
        assert (tensors - model.forward_features(x)[:, 0]).abs().max().item() <= 1e-4


def test_predict_cli_uses_shipped_imagenet_names(saved_model, tmp_path):
    model, name = saved_model
    files = _write_images(tmp_path / "imgs")
    res = _vitzoo("predict", name, str(files["a_photo.jpg"]), "--json", "--topk", "3", "--workers", "0")
    assert res.returncode == 0, res.stderr
    top = json.loads(res.stdout)[0]["top"]
    with torch.no_grad():
        probs = model(create_transform(model)(load_image(files["a_photo.jpg"])).unsqueeze(0)).softmax(-1)[0]
    names = (Path(vitzoo.__file__).parent / "data" / "imagenet1k_labels.txt").read_text().splitlines()
    assert [t["index"] for t in top] == probs.topk(3).indices.tolist()
    assert top[0]["label"] == names[top[0]["index"]] and abs(top[0]["prob"] - probs.max().item()) <= 1e-5
    table = _vitzoo("predict", name, str(files["a_photo.jpg"]), "--workers", "0")
    assert names[top[0]["index"]] in table.stdout


def _bytes_of(path: Path) -> tuple[dict, dict]:
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118


def test_killed_run_resumes_to_the_same_file(saved_model, tmp_path):
    _, name = saved_model
    _write_images(tmp_path / "imgs", n_plain=120)
    args = ["embed", name, str(tmp_path / "imgs"), "--shard-size", "5", "--batch-size", "5", "--workers", "0"]
    env = {"OMP_NUM_THREADS": "1"}
    ref = _vitzoo(*args, "--out", str(tmp_path / "ref.safetensors"), env=env)
    assert ref.returncode == 0, ref.stderr

    out = tmp_path / "run.safetensors"
    exe = shutil.which("vitzoo")
    proc = subprocess.Popen([exe, *args, "--out", str(out)], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    parts = tmp_path / "run.safetensors.parts"
    deadline = time.time() + 120
    while time.time() < deadline and not (parts / "shard-000001.safetensors").exists():
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it could be interrupted"
    done = sorted(p.name for p in parts.glob("shard-*.safetensors"))
    assert 2 <= len(done) < 25
    again = _vitzoo(*args, "--out", str(out), env=env)
    assert again.returncode == 0, again.stderr
    assert f"resuming: {len(done)} of 25 shards already done" in again.stderr
    (a, meta_a), (b, meta_b) = _bytes_of(out), _bytes_of(tmp_path / "ref.safetensors")
    assert meta_a == meta_b and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_torchrun_two_processes_equal_one(saved_model, tmp_path):
    _, name = saved_model
    _write_images(tmp_path / "imgs", n_plain=20)
    args = ["embed", name, str(tmp_path / "imgs"), "--shard-size", "4", "--batch-size", "4", "--workers", "0"]
    env = {"OMP_NUM_THREADS": "1"}
    one = _vitzoo(*args, "--out", str(tmp_path / "one.safetensors"), env=env)
    assert one.returncode == 0, one.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
                "--master-port", "29517", "-m", "vitzoo", *args, "--out", str(tmp_path / "two.safetensors")]  # fmt: skip
    two = subprocess.run(torchrun, capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert two.returncode == 0, two.stderr[-3000:]
    assert "[rank 1]" in two.stderr or "rank" in two.stderr
    (a, meta_a), (b, meta_b) = _bytes_of(tmp_path / "two.safetensors"), _bytes_of(tmp_path / "one.safetensors")
    assert meta_a == meta_b and all(torch.equal(a[k], b[k]) for k in a)
