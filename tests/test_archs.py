"""Every registered arch has timm's parameters: same names (DINOv3: timm's Eva names, ``to_timm``, what
``save_pretrained`` writes), same shapes, same head size for ``create_model(arch)``, and the flags that change the
numbers (activation, norm eps, pooling, tokens) as timm's module has them. Built on the meta device, so even ViT-bigG
costs nothing."""

from __future__ import annotations

import pytest
import timm
import torch

import vitzoo
from conftest import fast_first
from vitzoo.factory import describe
from vitzoo.models.archs import ARCHS, family_of
from vitzoo.weights.formats import to_timm

_ACT = {"GELU": "gelu", "GELUTanh": "gelu_tanh", "QuickGELU": "quick_gelu", "SiLU": "silu"}


def _timm_facts(model: torch.nn.Module) -> dict[str, object]:
    block = model.blocks[0]
    parallel = not hasattr(block, "mlp")  # timm's ParallelScalingBlock: mlp_act and in_norm
    act_layer = block.mlp_act if parallel else block.mlp.act
    act = type(act_layer).__name__
    if act == "GELU" and act_layer.approximate == "tanh":
        act = "GELUTanh"
    return {
        "act": _ACT[act],
        "eps": (block.in_norm if parallel else block.norm1).eps,
        "prefix": model.num_prefix_tokens,
        "dynamic": getattr(model, "dynamic_img_size", False),  # timm's relpos ViT has none
        "pool": model.global_pool,
    }


# One arch per family in the default (fast) suite; `pytest` checks all of them.
FIRST_OF_FAMILY = {family_of(a): a for a in reversed(list(ARCHS)) if not ARCHS[a].is_hybrid}.values()


@pytest.mark.parametrize(
    "arch",
    [a if a in FIRST_OF_FAMILY else pytest.param(a, marks=pytest.mark.slow) for a in ARCHS if not ARCHS[a].is_hybrid],
)
def test_every_arch_has_timms_parameters_and_flags(arch):
    # timm sizes the head from the arch's default checkpoint; vitzoo keeps a 1000-class head on the paper's two archs
    # whose default checkpoint is the headless ImageNet-21k release
    keep_head = {"num_classes": 1000} if arch in ("vit_large_patch32_224", "vit_huge_patch14_224") else {}
    with torch.device("meta"):
        ref = timm.create_model(arch, **keep_head)
    ours = vitzoo.create_model(arch, device="meta")
    theirs = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    mine = {k: tuple(v.shape) for k, v in to_timm(ours.state_dict(), ours.config).items()}
    assert mine == theirs
    # `vitzoo list` counts one block for all of them
    assert describe(arch)["params"] == sum(p.numel() for p in ours.parameters())
    facts = _timm_facts(ref)
    cfg = ours.config
    assert (cfg.act_layer, cfg.layer_norm_eps, ours.num_prefix_tokens, cfg.dynamic_img_size) == (
        facts["act"],
        facts["eps"],
        facts["prefix"],
        facts["dynamic"],
    )
    # DINOv3 is the one family whose pooled output vitzoo takes from the class token (upstream's and transformers'
    # choice) where timm's Eva averages the patch tokens
    assert cfg.global_pool == ("token" if family_of(arch) == "dinov3" else facts["pool"])
    assert cfg.img_size == tuple(ref.patch_embed.img_size)


@pytest.mark.parametrize("arch", fast_first([a for a in ARCHS if ARCHS[a].is_hybrid]))
def test_the_listed_parameter_count_of_a_hybrid_is_its_models(arch):
    """The CNN stem is counted once, the blocks as many times as there are."""
    ours = vitzoo.create_model(arch, device="meta")
    assert describe(arch)["params"] == sum(p.numel() for p in ours.parameters())
