"""``pca.patch_pca`` against a PCA by eigen-decomposition of the patch tokens of ``forward_features``, for a
model of every family (class, distillation and register tokens, RoPE, no prefix at all), and ``analyze --pca``."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

import vitzoo
from conftest import batch, cli, fast_first, randomize_
from vitzoo.eval import pca

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module

FAMILIES = [  # (arch, input size): a 4x4 patch grid each
    ("vit_tiny_patch16_224", 64),  # class token
    ("deit_tiny_distilled_patch16_224", 64),  # class + distillation token
    ("vit_small_patch14_reg4_dinov2", 56),  # class + 4 registers
    ("vit_small_patch16_dinov3", 64),  # class + 4 registers, RoPE
    ("vit_base_patch32_clip_224", 128),  # pre-norm
    ("vit_base_patch16_siglip_224", 64),  # no prefix token, attention pool
    ("vit_base_r50_s16_224", 64),  # hybrid: the patches are ResNet features
]


def reference(tokens: np.ndarray, h: int, w: int, mask: bool = True):
    """DINOv2's recipe written out with numpy: PCA of every patch, first component signed so the border of the
    grid is negative on average, foreground above 0, then a PCA of the foreground patches, min-max scaled."""
    b = tokens.shape[0]
    x = tokens.reshape(-1, tokens.shape[-1])

    def pca(rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores on the top ``n`` axes from the eigenvectors of the (rows x rows) Gram matrix (dual PCA: a few dozen
        patches, hundreds of dims), and each axis' share of the variance."""
        centred = rows - rows.mean(axis=0)
        values, vectors = np.linalg.eigh(centred @ centred.T)  # ascending
        values, vectors = values[::-1], vectors[:, ::-1]
        return vectors[:, :n] * np.sqrt(values[:n]), values[:n] / values.sum()

    first = pca(x, 1)[0][:, 0].reshape(b, h, w)
    border = np.ones((h, w), bool)
    border[1:-1, 1:-1] = False
    if first[:, border].mean() > 0:
        first = -first
    fg = first > 0 if mask else np.ones_like(first, bool)
    comps, explained = pca(x[fg.reshape(-1)], 3)
    scaled = (comps - comps.min(axis=0)) / (comps.max(axis=0) - comps.min(axis=0))
    return first, fg, scaled, explained


@pytest.mark.parametrize(("arch", "size"), fast_first(FAMILIES, [FAMILIES[1], FAMILIES[3]]))  # fast: DeiT, DINOv3
@torch.no_grad()
def test_patch_pca_is_the_pca_of_the_patch_tokens_without_prefix_tokens(arch, size):
    torch.manual_seed(0)
    model = randomize_(vitzoo.create_model(arch, depth=2, img_size=size), seed=1).eval()
    x = batch(size, n=3, seed=2)
    got = pca.patch_pca(model, x)
    h, w = model.grid_size
    assert (h, w) == (4, 4)
    tokens = model.forward_features(x)[:, model.num_prefix_tokens :].double().numpy()  # another code path
    first, fg, scaled, explained = reference(tokens, h, w)
    assert got.rgb.shape == (3, h, w, 3) and got.upsampled.shape == (3, size, size, 3)
    assert np.abs(got.first.numpy() - first).max() <= 1e-3 * np.abs(first).max()
    assert torch.equal(got.foreground, torch.from_numpy(fg)) and 0 < fg.sum() < fg.size
    assert got.rgb[~got.foreground].abs().max() == 0  # background is black
    fg_rgb = got.rgb[got.foreground].double().numpy()
    for c in range(3):  # each component's sign is arbitrary: min-max of -v is 1 - min-max of v
        assert min(np.abs(fg_rgb[:, c] - scaled[:, c]).max(), np.abs(fg_rgb[:, c] - (1 - scaled[:, c])).max()) <= 1e-3
    assert np.allclose(got.explained.numpy(), explained, atol=1e-4)
    assert got.upsampled.min() >= 0 and got.upsampled.max() <= 1


@torch.no_grad()
def test_unmasked_pca_and_an_earlier_layer():
    torch.manual_seed(0)
    model = randomize_(vitzoo.create_model("vit_small_patch14_reg4_dinov2", depth=3, img_size=56), seed=1).eval()
    x = batch(56, n=2, seed=3)
    got = pca.patch_pca(model, x, layer=0, mask=False)
    assert got.foreground.all()
    (patches,) = model.forward_intermediates(x, indices=[0], norm=True, output_fmt="NLC", intermediates_only=True)
    _, _, scaled, _ = reference(patches.double().numpy(), 4, 4, mask=False)
    flat = got.rgb.reshape(-1, 3).double().numpy()
    for c in range(3):
        assert min(np.abs(flat[:, c] - scaled[:, c]).max(), np.abs(flat[:, c] - (1 - scaled[:, c])).max()) <= 1e-3


def test_images_in_a_tar_shard_through_a_decoding_worker_are_the_files(tmp_path):
    """patch_pca runs the one batch loop: a .tar shard's members decoded by a worker process give the PCA of the
    same images read as files in this process."""
    model = randomize_(vitzoo.create_model("vit_small_patch14_reg4_dinov2", depth=2, img_size=56), seed=1).eval()
    rng = np.random.default_rng(1)
    files = []
    for name in ("a", "b", "c"):
        files.append(tmp_path / f"{name}.png")
        Image.fromarray(rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)).save(files[-1])
    with tarfile.open(tmp_path / "shard.tar", "w") as tar:
        for f in files:
            tar.add(f, arcname=f.name)
    from_files = pca.patch_pca(model, files)
    from_tar = pca.patch_pca(model, tmp_path / "shard.tar", num_workers=1)
    assert torch.equal(from_files.rgb, from_tar.rgb) and torch.equal(from_files.first, from_tar.first)


def test_analyze_pca_writes_one_figure_per_image_and_the_numbers(tmp_path):
    torch.manual_seed(0)
    model = randomize_(vitzoo.create_model("vit_small_patch14_reg4_dinov2", depth=2, img_size=56), seed=1)
    folder = vitzoo.save_pretrained(model, tmp_path / "m")
    rng = np.random.default_rng(0)
    images = []
    for name in ("a", "b"):
        images.append(tmp_path / f"{name}.png")
        Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(images[-1])
    res = cli("analyze", f"local-dir:{folder}", *images, "--out", tmp_path / "fig", "--pca")
    assert res.returncode == 0, res.stderr
    assert {p.name for p in (tmp_path / "fig").iterdir()} == {"pca_a.png", "pca_b.png", "pca.json"}
    with Image.open(tmp_path / "fig" / "pca_a.png") as png:
        assert png.format == "PNG" and png.width > 300
    numbers = json.loads((tmp_path / "fig" / "pca.json").read_text())
    assert len(numbers["explained_variance"]) == 3 and set(numbers["images"]) == {str(p) for p in images}
    assert np.array(numbers["images"][str(images[0])]["rgb"]).shape == (4, 4, 3)


def test_analyze_pca_takes_a_folder_of_images(tmp_path):
    """`analyze M FOLDER --pca` runs over the folder's images (it used to open the folder as an image): the same
    numbers as naming the images one by one."""
    torch.manual_seed(0)
    model = randomize_(vitzoo.create_model("vit_small_patch14_reg4_dinov2", depth=1, img_size=56), seed=1)
    folder = vitzoo.save_pretrained(model, tmp_path / "m")
    rng = np.random.default_rng(0)
    for rel in ("cat/1.png", "dog/1.png"):
        (tmp_path / "imgs" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(tmp_path / "imgs" / rel)
    res = cli("analyze", f"local-dir:{folder}", tmp_path / "imgs", "--out", tmp_path / "fig", "--pca")
    assert res.returncode == 0, res.stderr
    assert {p.name for p in (tmp_path / "fig").iterdir()} == {"pca_cat_1.png", "pca_dog_1.png", "pca.json"}
    images = [tmp_path / "imgs" / "cat" / "1.png", tmp_path / "imgs" / "dog" / "1.png"]
    one_by_one = cli("analyze", f"local-dir:{folder}", *images, "--out", tmp_path / "fig2", "--pca")
    assert one_by_one.returncode == 0, one_by_one.stderr
    numbers = json.loads((tmp_path / "fig" / "pca.json").read_text())
    assert numbers == json.loads((tmp_path / "fig2" / "pca.json").read_text())
    assert set(numbers["images"]) == {str(p) for p in images}
