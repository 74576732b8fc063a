"""The Perception Encoder's own checkpoints (facebook/PE-Core-*, PE-Lang-*, PE-Spatial-* ``.pt`` files, the layout
of Meta's perception_models: OpenAI CLIP's names plus layer scales and an attention pool) load into the ``vit_pe_*``
archs and compute what timm computes from the same file.

Each file is a timm PE model's random weights (``randomize_``) written back in Meta's layout (``pe_original``); timm's
own reader (``eva.checkpoint_filter_fn``) must give back exactly those weights, so the layout is timm's reading of
Meta's, not a guess. Tiny widths, two blocks, real patch and image sizes.
"""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models import eva

import vitzoo
from conftest import TOL, batch, fast_first, maxdiff, randomize_

TINY = {"embed_dim": 64, "depth": 2, "num_heads": 4}
SWAPS = [  # timm's name -> Meta's (applied in order, on the part after the block index)
    ("patch_embed.proj", "conv1"),
    ("norm_pre", "ln_pre"),
    ("attn.qkv.", "attn.in_proj_"),
    ("attn.proj", "attn.out_proj"),
    ("gamma_1", "ls_1.gamma"),
    ("gamma_2", "ls_2.gamma"),
    ("norm1", "ln_1"),
    ("norm2", "ln_2"),
    ("mlp.fc1", "mlp.c_fc"),
    ("mlp.fc2", "mlp.c_proj"),
]


def pe_original(timm_sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A timm PE state dict in perception_models' layout (``prefix``: ``visual.`` in the CLIP files)."""
    out: dict[str, torch.Tensor] = {}
    sd = dict(timm_sd)
    out["class_embedding"] = sd.pop("cls_token").reshape(-1)
    out["positional_embedding"] = sd.pop("pos_embed")[0]
    if "head.weight" in sd:
        out["proj"] = sd.pop("head.weight").t().contiguous()
        sd.pop("head.bias")
    if "attn_pool.q.weight" in sd:
        for kind in ("weight", "bias"):
            out[f"attn_pool.attn.in_proj_{kind}"] = torch.cat(
                [sd.pop(f"attn_pool.q.{kind}"), sd.pop(f"attn_pool.kv.{kind}")]
            )
        out["attn_pool.probe"] = sd.pop("attn_pool.latent")
    for key, value in sd.items():
        name = "ln_post." + key.removeprefix("norm.") if key.startswith("norm.") else key
        name = name.replace("blocks.", "transformer.resblocks.")
        if name.startswith("attn_pool."):
            name = name.replace("attn_pool.proj", "attn_pool.attn.out_proj").replace(
                "attn_pool.norm", "attn_pool.layernorm"
            )
        for theirs, meta in SWAPS:
            name = name.replace(theirs, meta)
        out[name] = value
    return {prefix + k: v for k, v in out.items()}


CASES = {  # arch: (prefix in the file, extra keys of the file that are not the image tower)
    "vit_pe_core_tiny_patch16_384": ("visual.", {"logit_scale": torch.tensor(4.6)}),  # CLIP file: text half too
    "vit_pe_lang_large_patch14_448": ("", {}),  # layer scale, no final norm, an image tower alone
    "vit_pe_spatial_tiny_patch16_512": ("", {}),
}


@pytest.mark.parametrize("arch", fast_first(CASES))
@torch.no_grad()
def test_perception_encoder_file_equals_timm(arch, tmp_path):
    prefix, extra = CASES[arch]
    img = 56 if "patch14" in arch else 64
    ref = randomize_(timm.create_model(arch, **TINY, img_size=img)).eval()
    if "head.bias" in ref.state_dict():
        ref.head.bias.zero_()  # PE's projection has no bias (timm's reader gives zeros)
    original = {**pe_original(ref.state_dict(), prefix), **extra}
    theirs = eva.checkpoint_filter_fn(dict(original), ref)
    assert theirs.keys() == ref.state_dict().keys()  # timm reads the layout back to its own weights
    assert all(torch.equal(theirs[k], v) for k, v in ref.state_dict().items())
    path = tmp_path / "pe.pt"
    torch.save(original, path)
    mlp = ref.blocks[0].mlp.fc1.weight.shape[0]
    ours = vitzoo.create_model(arch, pretrained=str(path), mlp_dim=mlp, img_size=img, **TINY).eval()
    report = ours.load_report
    assert report.format == "open_clip" and not report.missing and not report.unexpected
    assert bool(report.dropped) == bool(extra)  # a CLIP file's text half (here logit_scale), reported
    x = batch(img, img)
    assert maxdiff(ours.forward_features(x), ref.forward_features(x)) <= TOL
    assert maxdiff(ours(x), ref(x)) <= TOL
