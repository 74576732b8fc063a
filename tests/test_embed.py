"""The embed job (``vitzoo embed``): output and metadata, refusals, resuming after an interruption, the dataset
directory. Runs go through ``vitzoo.cli.main`` in this process; several processes are in test_embed_workers.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

import vitzoo
import vitzoo.cli
from conftest import BF16_TOL, TINY_TAG, preprocess, save_tiny_model, write_images
from vitzoo.features import embed_job as embed
from vitzoo.features.fingerprint import EmbedMeta
from vitzoo.features.outputs import MARK
from vitzoo.features.shards import shard_done

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module

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

    def recording_write(work, shard, *args):
        write(work, shard, *args)
        seen["shards"].append(shard.k)

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
    assert set(meta) == META_KEYS | {"paths", "num_failed", "command"}  # command: the run's fingerprint (E.command)
    assert [Path(p).name for p in meta["paths"]] == ["a_photo.jpg", "b_alpha.png", "c_gray.png", "e_rotated.jpg"]
    assert meta["model"] == name and meta["tag"] == TINY_TAG and meta["revision"] is None and meta["num_failed"] == 1
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
    assert run_embed(name, image, "--out", tmp_path / "e.safetensors") == 2  # not vitzoo's: neither used nor removed
    assert "e.safetensors.parts exists and was not made by vitzoo embed" in capsys.readouterr().err
    (parts / MARK).write_text("{}")  # as vitzoo marks its work folders: now it is another command's work
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

    def interrupted(work, shard, *rest):
        write(work, shard, *rest)
        raise KeyboardInterrupt  # as if Ctrl-C arrived right after the first shard was written

    out = tmp_path / "run.safetensors"
    with monkeypatch.context() as patch:
        patch.setattr(embed, "_write_shard", interrupted)
        assert run_embed(*args, "--out", out) == 130  # the CLI's exit status for Ctrl-C
    assert "re-running the same command resumes" in capsys.readouterr().err
    parts = tmp_path / "run.safetensors.parts"
    assert [k for k in range(4) if shard_done(parts, k)] == [0]
    assert not any((parts / "claims").iterdir())  # the interrupted process handed its claims back
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


def test_dataset_directory_equals_the_single_file(saved_model, tmp_path, capsys):
    _, name = saved_model
    write_images(tmp_path / "imgs", n_plain=6)  # 11 inputs, the 4th corrupt: shards of 3, 4, 3 rows
    args = [name, tmp_path / "imgs", "--shard-size", "4", "--batch-size", "3", "--workers", "0", "--quiet"]
    one, folder = tmp_path / "one.safetensors", tmp_path / "emb"
    assert run_embed(*args, "--layers", "0", "1", "--out", one) == 0
    assert run_embed(*args, "--layers", "0", "1", "--out", folder) == 0
    assert capsys.readouterr().err.endswith(f"unreadable, listed in {folder / 'failed.txt'}\n")
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("shard-")) == ["failed.txt", "index.json"]
    a, b = vitzoo.open_embeddings(one), vitzoo.open_embeddings(folder)
    assert len(a) == len(b) == 10 and list(a.paths) == list(b.paths) and a.failed == b.failed and len(a.failed) == 1
    assert a.keys() == b.keys() == ["layer_0", "layer_1"] and a.meta.pop("num_failed") == 1 and a.meta == b.meta
    for key in ("layer_0", "layer_1"):
        assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])) and b[key][2:6].shape == (4, 192)
    assert [len(shard) for shard in b] == [3, 4, 3] and [len(shard) for shard in a] == [10]
    index = json.loads((folder / "index.json").read_text())
    assert index["rows"] == 10 and [s["rows"] for s in index["shards"]] == [3, 4, 3]
    assert set(index["meta"]) == META_KEYS and index["arrays"]["layer_0"] == {"shape": [192], "dtype": "float32"}
    assert run_embed(*args, "--layers", "0", "1", "--out", folder) == 0  # finished: nothing to redo
    assert capsys.readouterr().err == f"10 images embedded into {folder}; 1 unreadable, listed in {folder}/failed.txt\n"
    assert run_embed(*args, "--out", folder) == 2  # another command (no --layers)
    assert "holds shards of a different command (it differs in layers)" in capsys.readouterr().err


def test_large_jpegs_are_decoded_fast_unless_exact_decode(saved_model, tmp_path, capsys):
    model, name = saved_model  # 224 px, crop 0.9: a 4:3 JPEG is resized to 330x248, so 1400x1050 is over twice that
    files = write_images(tmp_path / "imgs")
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:1050, 0:1400]
    smooth = np.stack([xx * 255 // 1399, yy * 255 // 1049, (xx + yy) * 255 // 2448], -1)
    arr = np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "imgs" / "f_large.jpg", quality=92)
    paths = [files["a_photo.jpg"], files["b_alpha.png"], tmp_path / "imgs" / "f_large.jpg"]
    fast = vitzoo.extract_features(model, paths, num_workers=0, progress=False)  # one default: the fast decode
    exact = vitzoo.extract_features(model, paths, num_workers=0, progress=False, exact_decode=True)
    runs = [([], tmp_path / "fast.safetensors", fast), (["--exact-decode"], tmp_path / "exact.safetensors", exact)]
    for flag, out, want in runs:
        assert run_embed(name, *paths, "--out", out, "--workers", "1", "--quiet", *flag) == 0
        feats, meta = read(out)
        assert json.loads(meta["decode"]) == ("exact" if flag else "fast")
        assert (feats["features"] - want).abs().max().item() <= 1e-5
    assert torch.equal(fast[:2], exact[:2])  # small images: the same pixels either way
    assert not torch.equal(fast[2], exact[2])  # the large JPEG was decoded at 1/2 scale (700x525)
    assert torch.nn.functional.cosine_similarity(fast[2], exact[2], dim=0).item() > 0.999
    done = tmp_path / "dir"  # an output of one decode is not resumed (nor mixed) with the other
    assert run_embed(name, *paths, "--out", done, "--workers", "0", "--quiet", "--exact-decode") == 0
    capsys.readouterr()
    assert run_embed(name, *paths, "--out", done, "--workers", "0", "--quiet") == 2
    assert "it differs in decode" in capsys.readouterr().err


ODD_NAMES = ["b\u2028separator.png", "c\nnewline.png", "d\ttab.png", "e\\back\\slash.png", "f\rreturn.png",
             "g\x85next-line.png", os.fsdecode(b"h\xff\xfe-latin1.png"), "i\\n-not-a-newline.png"]  # fmt: skip


@pytest.mark.parametrize("suffix", ["", ".safetensors", ".npy"])
def test_any_file_name_is_stored_and_read_back_exactly(saved_model, tmp_path, suffix):
    """Names with line and paragraph separators, tabs, backslashes and bytes that are not UTF-8: each row's path
    is the file it was computed from (paths used to be split at U+2028 too, giving more paths than rows; names with
    a line break were refused)."""
    model, name = saved_model
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i, odd in enumerate(ODD_NAMES):
        Image.fromarray(rng.integers(0, 256, (32 + 8 * i, 40, 3), dtype=np.uint8)).save(folder / odd, format="PNG")
    (folder / "z\nbroken\u2028.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / f"emb{suffix}"
    assert run_embed(name, folder, "--out", out, "--shard-size", "3", "--workers", "0", "--quiet") == 0
    E = vitzoo.open_embeddings(out)
    readable = [str(p) for p in sorted(folder.iterdir()) if not p.name.startswith("z")]
    assert list(E.paths) == readable and len(E) == len(readable) == len(ODD_NAMES)
    assert [path for path, _ in E.failed] == [str(folder / "z\nbroken\u2028.jpg")]
    api = vitzoo.extract_features(model, readable, num_workers=0, progress=False).numpy()
    assert np.abs(np.asarray(E["features"]) - api).max() <= 1e-4  # row i is the image at E.paths[i]
