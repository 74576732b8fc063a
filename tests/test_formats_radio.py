"""NVIDIA's own C-RADIO checkpoints (nvidia/C-RADIOv3-*, C-RADIOv4-*: the RADIO wrapper's ``model.safetensors``) load
into the ``vit_*_radio_*`` archs and compute what timm computes from the same file.

Each file is a timm RADIO model's random weights written back in the wrapper's layout (``radio_original``) with a
random 128 x 128 position grid; timm's own reader (``checkpoint_filter_fn`` with RADIO's resize settings) loads it into
the reference. One block at the real widths of B (its grid resized with ``align_corners=True``, as timm does for v3-B)
and L (``False``), at a non-square size for L (resized to a square of the larger side, then cropped).
"""

from __future__ import annotations

import functools

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.models.vision_transformer import checkpoint_filter_fn

import vitzoo
from conftest import TOL, batch, fast_first, maxdiff, randomize_

PREFIX = "radio_model.model."


def radio_original(timm_sd: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    """timm's RADIO tensors in the RADIO wrapper's layout, with a random 128 x 128 CPE grid and the extras."""
    gen = torch.Generator().manual_seed(seed)
    sd = dict(timm_sd)
    kernel = sd.pop("patch_embed.proj.weight")
    sd.pop("patch_embed.proj.bias")  # RADIO's patch Linear has none (timm reads zeros)
    width = kernel.shape[0]
    out = {
        PREFIX + "patch_generator.embedder.weight": kernel.reshape(width, -1),
        PREFIX + "patch_generator.pos_embed": 0.02 * torch.randn(1, 128 * 128, width, generator=gen),
        PREFIX + "patch_generator.cls_token.token": torch.cat([sd.pop("cls_token"), sd.pop("reg_token")], dim=1)[0],
        "radio_model.input_conditioner.norm_mean": torch.zeros(3, 1, 1),
        "radio_model.summary_idxs": torch.arange(3),
    }
    sd.pop("pos_embed")
    out |= {PREFIX + k.replace(".gamma", ".grandma"): v for k, v in sd.items()}
    return out


CASES = {  # arch: (width, heads, image size, timm's align_corners for it)
    "vit_base_patch16_radio_v3": (768, 12, (64, 64), True),
    "vit_large_patch16_radio_v3": (1024, 16, (64, 96), False),
}


@pytest.mark.parametrize("arch", fast_first(CASES))
@torch.no_grad()
def test_radio_repo_file_equals_timm(arch, tmp_path):
    width, heads, img, align = CASES[arch]
    size = {"embed_dim": width, "num_heads": heads, "depth": 1, "img_size": img}
    ref = randomize_(timm.create_model(arch, **size))
    ref.patch_embed.proj.bias.zero_()
    original = radio_original(ref.state_dict())
    read = functools.partial(checkpoint_filter_fn, interpolation="bilinear", antialias=False, align_corners=align)
    ref.load_state_dict(read(dict(original), ref), strict=True)  # timm's reading of the file
    ref.eval()
    save_file(original, tmp_path / "model.safetensors")
    ours = vitzoo.create_model(arch, pretrained=str(tmp_path / "model.safetensors"), **size).eval()
    report = ours.load_report
    assert report.format == "radio" and not report.missing and not report.unexpected
    assert "pos_embed" in report.resized and any("input_conditioner" in k for k in report.dropped)
    x = batch(*img)
    assert maxdiff(ours.forward_features(x), ref.forward_features(x)) <= TOL
    assert maxdiff(ours(x), ref(x)) <= TOL
