"""The analysis toolkit against independent brute-force computations on small random models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vitzoo
from conftest import cli, randomize_
from vitzoo.eval import attention, fewshot, learned_embeddings
from vitzoo.eval.analyze import attention_figures


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return randomize_(
        vitzoo.create_model("vit_tiny_patch16_224", depth=3, num_classes=10, dynamic_img_size=True), seed=4
    ).eval()


@torch.no_grad()
def test_captured_attention_is_softmax_qk_recomputed_from_the_weights(model):
    x = torch.randn(2, 3, 160, 96, generator=torch.Generator().manual_seed(0))
    inputs = {}
    hooks = [
        blk.norm1.register_forward_hook(lambda m, i, o, k=k: inputs.__setitem__(k, o))
        for k, blk in enumerate(model.blocks)
    ]
    plain = model(x)
    with vitzoo.capture_attention(model, layers=[0, -1]) as rec:
        captured = model(x)
    for h in hooks:
        h.remove()
    assert torch.allclose(plain, captured, atol=1e-5)  # capturing does not change the outputs
    assert rec.layers == [0, 2] and rec.grid == (10, 6) and rec.num_prefix_tokens == 1
    assert [a.shape for a in rec.attentions] == [(2, 3, 61, 61)] * 2
    for attn, layer in zip(rec.attentions, rec.layers, strict=True):
        y = inputs[layer].double()  # the block's LayerNorm output: what attention sees
        w, b = model.blocks[layer].attn.qkv.weight.double(), model.blocks[layer].attn.qkv.bias.double()
        for head in range(3):
            rows = slice(head * 64, (head + 1) * 64)
            q = y @ w[:192][rows].T + b[:192][rows]
            k = y @ w[192:384][rows].T + b[192:384][rows]
            ref = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(64), dim=-1)
            assert (attn[:, head].double() - ref).abs().max().item() <= 1e-5
    assert all(blk.attn.record is None for blk in model.blocks)  # the fused path is back after the context


def test_rollout_matches_the_formula_by_hand():
    rng = np.random.default_rng(0)
    n, p, grid = 5, 1, (2, 2)
    layers = []
    for _ in range(3):
        a = rng.random((1, 2, n, n))
        layers.append(a / a.sum(-1, keepdims=True))
    joint = np.eye(n)
    for a in layers:  # by hand, one layer at a time
        avg = a[0].mean(0)
        mixed = 0.5 * avg + 0.5 * np.eye(n)
        mixed = mixed / mixed.sum(-1, keepdims=True)
        joint = mixed @ joint
    got = attention.attention_rollout([torch.from_numpy(a) for a in layers], p, grid)
    assert np.abs(got[0].numpy() - joint[0, p:].reshape(grid)).max() <= 1e-6
    identity = [torch.eye(n).expand(1, 2, n, n) for _ in range(4)]  # identity attention: nothing flows to patches
    assert attention.attention_rollout(identity, p, grid).abs().max().item() == 0.0


def test_mean_attention_distance_of_uniform_attention_is_the_grid_mean_distance():
    h, w, patch, p = 3, 4, (16, 16), 1
    n = p + h * w
    uniform = torch.full((2, 5, n, n), 1.0 / n)
    got = attention.mean_attention_distance([uniform, uniform], p, (h, w), patch)
    cells = [(i * 16, j * 16) for i in range(h) for j in range(w)]
    analytic = np.mean([math.dist(a, b) for a in cells for b in cells])  # every pair of patch centres
    assert got.shape == (2, 5) and np.allclose(got.numpy(), analytic, atol=1e-4)
    local = torch.eye(n).expand(1, 5, n, n)  # attending only to itself: distance 0
    assert attention.mean_attention_distance([local], p, (h, w), patch).abs().max().item() == 0.0


def test_filter_components_and_position_similarity(model):
    comps = learned_embeddings.patch_embed_components(model, n=28)
    assert comps.shape == (28, 3, 16, 16) and comps.min() >= 0 and comps.max() <= 1
    w = model.patch_embed.proj.weight.detach().flatten(1).double()
    w = w - w.mean(0)
    top = torch.linalg.eigh(w.T @ w).eigenvectors[:, -1]  # largest principal axis, by eigen-decomposition
    first = comps[0].flatten().double()
    first = (first - first.mean()) / first.std()
    ref = (top - top.mean()) / top.std()
    assert min((first - ref).abs().max(), (first + ref).abs().max()) <= 1e-3  # same axis up to sign
    sim = learned_embeddings.pos_embed_similarity(model)
    pe = model.pos_embed.detach()[0, 1:]
    assert sim.shape == (14, 14, 14, 14)
    assert torch.allclose(sim[2, 3, 5, 7], torch.cosine_similarity(pe[2 * 14 + 3], pe[5 * 14 + 7], dim=0), atol=1e-6)


def test_fewshot_separable_is_perfect_and_random_labels_are_near_chance():
    gen = torch.Generator().manual_seed(0)
    centers = torch.randn(5, 32, generator=gen) * 5
    y_train = torch.arange(5).repeat_interleave(30)
    y_test = torch.arange(5).repeat_interleave(40)
    x_train = centers[y_train] + 0.3 * torch.randn(len(y_train), 32, generator=gen)
    x_test = centers[y_test] + 0.3 * torch.randn(len(y_test), 32, generator=gen)
    acc = vitzoo.fewshot_eval(None, (x_train, y_train), (x_test, y_test), shots=(1, 5, 10, 25))
    assert acc == {1: 1.0, 5: 1.0, 10: 1.0, 25: 1.0}
    noise_train, noise_test = torch.randn(150, 32, generator=gen), torch.randn(2000, 32, generator=gen)
    chance = vitzoo.fewshot_eval(
        None, (noise_train, y_train), (noise_test, torch.randint(0, 5, (2000,), generator=gen)), shots=(25,)
    )
    assert abs(chance[25] - 0.2) < 0.05


def test_fewshot_on_image_folders_uses_the_extraction_pipeline(model, tmp_path, monkeypatch):
    """Folders go through extract_features (its options passed on), with the classes matched by name: the same
    accuracies as fewshot_eval on those features and labels."""
    for split, count in (("train", 3), ("test", 2)):
        for c, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
            folder = tmp_path / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (64 + i, 48), colour).save(folder / f"{i}.png")
    calls = []
    real = fewshot.extract_features

    def recording(model, paths, **kwargs):
        calls.append((list(paths), kwargs))
        return real(model, paths, **kwargs)

    monkeypatch.setattr(fewshot, "extract_features", recording)
    acc = vitzoo.fewshot_eval(model, tmp_path / "train", tmp_path / "test", shots=(1, 3), num_workers=0, progress=False)
    assert [len(paths) for paths, _ in calls] == [6, 4] and all(k["num_workers"] == 0 for _, k in calls)
    for (paths, _), split in zip(calls, ("train", "test"), strict=True):
        assert {Path(p).parent.parent.name for p in paths} == {split}
    monkeypatch.setattr(fewshot, "extract_features", real)
    train_x = vitzoo.extract_features(model, calls[0][0], num_workers=0, progress=False)
    test_x = vitzoo.extract_features(model, calls[1][0], num_workers=0, progress=False)
    labels = lambda paths: torch.tensor([int(Path(p).parent.name[-1]) for p in paths])  # noqa: E731
    direct = vitzoo.fewshot_eval(model, (train_x, labels(calls[0][0])), (test_x, labels(calls[1][0])), shots=(1, 3))
    assert acc == direct and set(acc) == {1, 3} and acc[3] == 1.0


def test_analyze_command_writes_pngs_and_numbers(model, tmp_path):
    folder = vitzoo.save_pretrained(model, tmp_path / "m")
    img = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(img)
    res = cli("analyze", f"local-dir:{folder}", img, "--out", tmp_path / "fig")
    assert res.returncode == 0, res.stderr
    names = {p.name for p in (tmp_path / "fig").iterdir()}
    assert names == {
        "rollout_img.png",
        "cls_attention_img.png",
        "attention_distance.png",
        "embedding_filters.png",
        "position_similarity.png",
        "analysis.json",
    }
    for name in names - {"analysis.json"}:
        with Image.open(tmp_path / "fig" / name) as png:
            assert png.format == "PNG" and png.width > 100
    numbers = json.loads((tmp_path / "fig" / "analysis.json").read_text())
    assert np.array(numbers["mean_attention_distance"]).shape == (3, 3)
    assert res.stdout.splitlines()[-1] == str(tmp_path / "fig" / "analysis.json")  # what was written, the JSON last
    assert sorted(res.stdout.split()) == sorted(str(tmp_path / "fig" / name) for name in names)


def test_attention_figures_is_the_library_job_and_says_what_it_skips(tmp_path):
    """The command's job without the command: it returns the files it wrote and tells ``log`` what it skipped."""
    model = randomize_(
        vitzoo.create_model("vit_small_patch16_224", depth=1, img_size=32, class_token=False, global_pool="avg"), seed=2
    )
    img = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(img)
    notes: list[str] = []
    written = attention_figures(model, img, tmp_path / "out", name="mine", progress=False, log=notes.append)
    assert sorted(written) == sorted((tmp_path / "out").iterdir()) and written[-1].name == "analysis.json"
    assert not any(p.name.startswith("rollout_") for p in written)
    assert notes == ["no class token: attention rollout and class-token maps are skipped"]
    assert json.loads(written[-1].read_text())["model"] == "mine"


def test_missing_matplotlib_gives_the_install_hint(monkeypatch):
    import sys

    from vitzoo.eval import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(vitzoo.VitzooError, match=r"pip install 'vitzoo\[plot\]'"):
        plots._plt()


def test_analyze_takes_folders_and_names_a_figure_per_image(model, tmp_path):
    """A folder is its images (recursively, as predict takes it); images that share a name are told apart by their
    folder. The folder itself used to be opened as an image."""
    folder = vitzoo.save_pretrained(model, tmp_path / "m")
    rng = np.random.default_rng(0)
    for rel in ("a/x.png", "b/x.png", "c.png"):
        (tmp_path / "imgs" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "imgs" / rel)
    res = cli("analyze", f"local-dir:{folder}", tmp_path / "imgs", "--out", tmp_path / "fig")
    assert res.returncode == 0, res.stderr
    rollouts = sorted(p.name for p in (tmp_path / "fig").glob("rollout_*.png"))
    assert rollouts == ["rollout_a_x.png", "rollout_b_x.png", "rollout_c.png"]
    numbers = json.loads((tmp_path / "fig" / "analysis.json").read_text())
    assert sorted(numbers["images"]) == sorted(str(tmp_path / "imgs" / rel) for rel in ("a/x.png", "b/x.png", "c.png"))
    (tmp_path / "none").mkdir()
    empty = cli("analyze", f"local-dir:{folder}", tmp_path / "none", "--out", tmp_path / "fig2")
    assert empty.returncode == 2 and empty.stderr.count("\n") == 1 and "no images in the inputs" in empty.stderr
    assert not (tmp_path / "fig2").exists()  # refused before anything is written
