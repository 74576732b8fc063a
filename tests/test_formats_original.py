"""Checkpoints in their original releases' layouts, each against the library that defines or converts it
(max abs diff <= TOL, tiny random towers: width 64, 2 blocks).

* open_clip / OpenAI CLIP: a tiny open_clip model written by open_clip's own hub export (``save_for_hf``:
  ``open_clip_config.json``, ``open_clip_model.safetensors``, ``open_clip_pytorch_model.bin``), read back by
  open_clip (``create_model("local-dir:...")``) as the reference for ``encode_image``; vitzoo reads the same folder
  (``local-dir:``), the same files from the loopback Hub (``hf-hub:``), and open_clip's timm-trunk towers.
* DINOv2 / DINOv3 / DeiT-III ``.pth``: their packages are not on PyPI, so each file is written here from a random timm
  model in the original layout (key names from docs: shared reference families.md 3.2, 3.4, 3.5, i.e. the classes
  the upstream hub builders instantiate and load with ``strict=True``). The reference is timm's own converter
  reading the same file: ``vision_transformer.checkpoint_filter_fn`` (DINOv2, DeiT-III with
  ``adapt_layer_scale=True``) and ``eva.checkpoint_filter_fn`` (DINOv3), loaded strictly into a fresh timm model.
* DeiT ``.pth``: ``{"model": state_dict}`` with timm's names; the reference is the timm model itself.
"""

from __future__ import annotations

import functools
import json
import re
import types
from pathlib import Path

import open_clip
import pytest
import timm
import torch
from open_clip.push_to_hf_hub import save_for_hf
from safetensors.torch import load_file, save_file
from timm.models import eva
from timm.models.vision_transformer import checkpoint_filter_fn

import vitzoo
from conftest import TOL, batch, fast_first, folder_files, maxdiff, randomize_, timm_model
from vitzoo.errors import CheckpointError, ConfigError
from vitzoo.weights.configs import parse
from vitzoo.weights.formats import FormatError, detect_format, from_open_clip

TINY = {"embed_dim": 64, "depth": 2, "num_heads": 4}  # timm and vitzoo keyword names alike


def vitzoo_model(arch: str, pretrained, mlp_dim: int = 256, **overrides) -> torch.nn.Module:
    """The registered ``arch`` (its family flags) made tiny, loaded from ``pretrained``."""
    return vitzoo.create_model(arch, pretrained=pretrained, mlp_dim=mlp_dim, **TINY, **overrides).eval()


def timm_reference(name: str, state_dict: dict[str, torch.Tensor], filter_fn, **kw) -> torch.nn.Module:
    """A fresh timm ``name`` loaded strictly from ``filter_fn(state_dict, model)``: timm's reading of the file."""
    model = timm.create_model(name, pretrained=False, **TINY, **kw)
    model.load_state_dict(filter_fn(dict(state_dict), model), strict=True)
    return model.eval()


def mlp_rows(state_dict: dict[str, torch.Tensor]) -> int:
    """vitzoo's ``mlp_dim``: the rows of the first MLP projection (packed or gate) of block 0."""
    key = next(k for k in state_dict if k.startswith("blocks.0.mlp.") and k.endswith(("fc1.weight", "fc1_g.weight")))
    return state_dict[key].shape[0]


# ------------------------------------------------------------------------------------------------- open_clip
TEXT = {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1}
NO_TOKENIZER = types.SimpleNamespace(save_pretrained=lambda folder: None)  # save_for_hf also saves the tokenizer


def open_clip_folder(folder: Path, base: str, vision: dict, embed_dim: int = 32, **preprocess) -> Path:
    """open_clip's ``base`` config with a tiny ``vision_cfg`` and random weights, written by its ``save_for_hf``."""
    model = open_clip.create_model(
        base, embed_dim=embed_dim, vision_cfg=vision, text_cfg=TEXT, force_preprocess_cfg=preprocess or None
    )
    randomize_(model)
    config = {**open_clip.get_model_config(base), "embed_dim": embed_dim, "vision_cfg": vision, "text_cfg": TEXT}
    save_for_hf(model, NO_TOKENIZER, config, folder)
    return folder


def open_clip_reference(folder: Path) -> torch.nn.Module:
    """open_clip's own reading of the folder (config and weights)."""
    return open_clip.create_model(f"local-dir:{folder}").eval()


CLIP_VISION = {"image_size": 48, "layers": 2, "width": 64, "head_width": 16, "patch_size": 16}
OPEN_CLIP_CASES = {  # name: (open_clip base config, vision_cfg, image height and width)
    "openai_quickgelu": ("ViT-B-16-quickgelu", CLIP_VISION, (48, 48)),
    # layer scale, no ln_pre, mean of the patch tokens, a non-square input
    "ls_avg_no_ln_pre": (
        "ViT-B-16",
        {**CLIP_VISION, "image_size": (32, 48), "ls_init_value": 0.1, "no_ln_pre": True, "pool_type": "avg"},
        (32, 48),
    ),
}


@pytest.mark.parametrize("case", list(OPEN_CLIP_CASES))
@torch.no_grad()
def test_open_clip_local_dir_equals_open_clip_encode_image(tmp_path, case):
    base, vision, (h, w) = OPEN_CLIP_CASES[case]
    folder = open_clip_folder(tmp_path / "repo", base, vision)
    assert not (folder / "config.json").exists()  # an open_clip-only folder, as on the Hub
    ref = open_clip_reference(folder)
    model = vitzoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    x = batch(h, w)
    assert maxdiff(model(x), ref.encode_image(x)) <= TOL
    report = model.load_report
    assert report.format == "open_clip" and report.files == [str(folder / "open_clip_model.safetensors")]
    text = sum(1 for k in load_file(folder / "open_clip_model.safetensors") if not k.startswith("visual."))
    (why,) = report.dropped.values()  # the text tower: one entry
    assert f"the text tower and logit scale ({text} tensors)" in why
    cfg = model.config
    assert (cfg.num_classes, cfg.img_size, cfg.layer_norm_eps, cfg.patch_bias) == (32, (h, w), 1e-5, False)
    assert cfg.act_layer == ("quick_gelu" if "quickgelu" in base else "gelu")


def test_open_clip_pytorch_model_bin_alone(tmp_path):
    folder = open_clip_folder(tmp_path / "repo", "ViT-B-16-quickgelu", CLIP_VISION)
    ref = open_clip_reference(folder)
    (folder / "open_clip_model.safetensors").unlink()
    model = vitzoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert model.load_report.files == [str(folder / "open_clip_pytorch_model.bin")]
    with torch.no_grad():
        assert maxdiff(model(batch(48)), ref.encode_image(batch(48))) <= TOL


@torch.no_grad()
def test_open_clip_weights_into_the_registered_clip_arch(tmp_path):
    folder = open_clip_folder(tmp_path / "repo", "ViT-B-16-quickgelu", CLIP_VISION)
    ref = open_clip_reference(folder)
    weights = load_file(folder / "open_clip_model.safetensors")  # the state dict alone: no config beside it
    model = vitzoo_model("vit_base_patch16_clip_quickgelu_224", weights, img_size=48)
    assert model.config.num_classes == 32  # the checkpoint's projection width
    assert maxdiff(model(batch(48)), ref.encode_image(batch(48))) <= TOL


def test_open_clip_hub_repo_and_its_preprocessing(hub, tmp_path):
    folder = open_clip_folder(tmp_path / "repo", "ViT-B-16-quickgelu", CLIP_VISION, resize_mode="squash")
    hub.add_commit("org/tiny-open-clip", folder_files(folder))
    ref = open_clip_reference(folder)
    model = vitzoo.create_model("hf-hub:org/tiny-open-clip", pretrained=True).eval()
    with torch.no_grad():
        assert maxdiff(model(batch(48)), ref.encode_image(batch(48))) <= TOL
    assert model.load_report.files[0].endswith("open_clip_model.safetensors")
    facts = model.pretrained_cfg
    pp = ref.visual.preprocess_cfg
    assert (facts.mean, facts.std) == (tuple(pp["mean"]), tuple(pp["std"]))
    assert (facts.input_size, facts.crop_pct, facts.crop_mode, facts.interpolation) == (
        (3, 48, 48),
        1.0,
        "squash",
        "bicubic",
    )
    assert facts.hf_hub_id == "org/tiny-open-clip" and facts.num_classes == 32
    data = vitzoo.resolve_data_config("hf-hub:org/tiny-open-clip")  # from open_clip_config.json alone
    assert (data.crop_mode, data.mean) == ("squash", facts.mean)


def test_open_clip_shortest_resize_is_a_center_crop_and_longest_is_refused(tmp_path):
    config = json.loads(
        (open_clip_folder(tmp_path / "a", "ViT-B-16", CLIP_VISION) / "open_clip_config.json").read_text()
    )
    assert config["preprocess_cfg"]["resize_mode"] == "shortest"
    _, facts = parse(config, "a", set())
    assert (facts.crop_mode, facts.crop_pct) == ("center", 1.0)
    folder = open_clip_folder(tmp_path / "b", "ViT-B-16", CLIP_VISION, resize_mode="longest")
    with pytest.raises(ConfigError, match="resize_mode='longest'"):
        vitzoo.create_model(f"local-dir:{folder}")


@pytest.mark.parametrize(
    ("option", "value"), [("attentional_pool", True), ("final_ln_after_pool", True), ("qk_norm", True)]
)
def test_open_clip_towers_vitzoo_does_not_build_are_refused(option, value):
    config = {"model_cfg": {"embed_dim": 32, "vision_cfg": {**CLIP_VISION, option: value}, "text_cfg": TEXT}}
    with pytest.raises(ConfigError, match=option):
        parse(config, "x", set())


def test_open_clip_resnet_tower_is_refused():
    model = open_clip.create_model(
        "RN50", embed_dim=32, vision_cfg={"image_size": 64, "layers": [1, 1, 1, 1], "width": 16}, text_cfg=TEXT
    )
    with pytest.raises(FormatError, match="ModifiedResNet"):
        from_open_clip(model.state_dict())
    with pytest.raises(ConfigError, match="ModifiedResNet"):
        parse({"model_cfg": open_clip.get_model_config("RN50")}, "rn50", set())


def test_open_clip_module_prefix_and_unknown_image_tower_keys():
    sd = open_clip.create_model("ViT-B-16", embed_dim=32, vision_cfg=CLIP_VISION, text_cfg=TEXT).state_dict()
    plain = from_open_clip(dict(sd))
    wrapped = from_open_clip({f"module.{k}": v for k, v in sd.items()})
    assert detect_format({f"module.{k}": v for k, v in sd.items()}) == "open_clip"
    assert wrapped.state_dict.keys() == plain.state_dict.keys() and "stripped the 'module.'" in wrapped.notes[0]
    with pytest.raises(FormatError, match=r"visual\.mystery"):
        from_open_clip({**sd, "visual.mystery": torch.zeros(1)})


# open_clip with a timm trunk: (timm arch named in the config, timm_pool, timm_proj, classes out)
TRUNK_CASES = {
    "siglip_map_no_proj": ("vit_base_patch16_siglip_224", "map", "none", 0),
    "token_linear_proj": ("vit_base_patch16_224", "token", "linear", 32),
    # timm Eva trunks (open_clip's EVA02-B-16 and PE-Core-*): split q/k/v, RoPE, the trunk's head the projection
    "eva02_clip_trunk_head": ("eva02_base_patch16_clip_224", "token", None, 32),
    "pe_core_trunk_map": ("vit_pe_core_tiny_patch16_384", "map", None, 32),
}


@pytest.mark.parametrize("case", fast_first(TRUNK_CASES, 2))  # the Eva trunks: slow
@torch.no_grad()
def test_open_clip_timm_trunk(tmp_path, monkeypatch, case):
    arch, pool, proj, classes = TRUNK_CASES[case]
    # open_clip builds its trunk with timm.create_model(arch): make that tower tiny
    monkeypatch.setattr(timm, "create_model", functools.partial(timm.create_model, **TINY, img_size=32))
    base = "ViT-B-16-SigLIP" if "siglip" in arch else "ViT-B-16"
    vision = {"image_size": 32, "timm_model_name": arch, "timm_pool": pool, "timm_proj": proj}
    folder = open_clip_folder(tmp_path / "repo", base, vision)
    ref = open_clip_reference(folder)
    weights = load_file(folder / "open_clip_model.safetensors")
    assert any(k.startswith("visual.trunk.") for k in weights)
    trunk = {k.removeprefix("visual.trunk."): v for k, v in weights.items() if k.startswith("visual.trunk.")}
    mlp = mlp_rows(trunk) if "blocks.0.mlp.fc1.weight" in trunk or "blocks.0.mlp.fc1_g.weight" in trunk else 256
    model = vitzoo_model(arch, weights, mlp_dim=mlp, img_size=32, global_pool=pool, num_classes=classes)
    assert model.load_report.format == "open_clip"
    assert maxdiff(model(batch(32)), ref.encode_image(batch(32))) <= TOL
    # the config alone: the registered arch (full size: the trunk was made tiny above), the pool, the projection
    vit, facts = parse(json.loads((folder / "open_clip_config.json").read_text()), "trunk", set())
    assert vit == vitzoo.models.archs.ARCHS[arch].replace(img_size=32, global_pool=pool, num_classes=classes)
    assert facts.input_size == (3, 32, 32)


# --------------------------------------------------------------------------------------------------- DINOv2
def dinov2_original(ref: torch.nn.Module, swiglu: bool, seed: int = 1) -> dict[str, torch.Tensor]:
    """timm DINOv2 weights in the torch.hub layout: ``mask_token``; reg models keep the class row in ``pos_embed``
    (its value taken back out of ``cls_token``) and name the registers ``register_tokens``; the SwiGLU giant names its
    MLP ``w12`` / ``w3``."""
    gen = torch.Generator().manual_seed(seed)
    sd = dict(ref.state_dict())
    width = sd["cls_token"].shape[-1]
    out = {"mask_token": torch.randn(1, width, generator=gen)}
    if "reg_token" in sd:
        cls_row = 0.02 * torch.randn(1, 1, width, generator=gen)
        out["register_tokens"] = sd.pop("reg_token")
        out["cls_token"] = sd.pop("cls_token") - cls_row
        out["pos_embed"] = torch.cat([cls_row, sd.pop("pos_embed")], dim=1)
    for k, v in sd.items():
        out[k.replace("mlp.fc1", "mlp.w12").replace("mlp.fc2", "mlp.w3") if swiglu else k] = v
    return out


# name: (timm and vitzoo arch, timm kwargs)
DINOV2_CASES = {
    "plain": ("vit_small_patch14_dinov2", {}),
    "reg4": ("vit_small_patch14_reg4_dinov2", {}),
    # fc1 rows 2 * ((int(4 * 64 * 2 / 3) + 7) // 8 * 8) = 352, as dinov2's SwiGLUFFNFused sizes them
    "giant_swiglu": ("vit_giant_patch14_dinov2", {"mlp_ratio": 5.5}),
}


@pytest.mark.parametrize("case", list(DINOV2_CASES))
@pytest.mark.parametrize("img", [70, 98])  # the file's own 5x5 grid, and its position table resampled to 7x7
@torch.no_grad()
def test_dinov2_pth_equals_timm_reading_it(tmp_path, case, img):
    arch, timm_kw = DINOV2_CASES[case]
    src = timm_model(arch, **TINY, img_size=70, num_classes=0, **timm_kw)
    upstream = dinov2_original(src, swiglu="giant" in arch)
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(upstream, path)
    ref = timm_reference(arch, torch.load(path, weights_only=True), checkpoint_filter_fn, img_size=img, **timm_kw)
    model = vitzoo_model(arch, str(path), mlp_rows(ref.state_dict()), img_size=img)
    x = batch(img)
    assert maxdiff(model.forward_features(x), ref.forward_features(x)) <= TOL
    assert maxdiff(model(x), ref(x)) <= TOL
    report = model.load_report
    assert report.format == "dinov2" and list(report.dropped) == ["mask_token"]
    assert ("pos_embed" in report.resized) == (img != 70)


# --------------------------------------------------------------------------------------------- DeiT, DeiT-III
@pytest.mark.parametrize("arch", ["deit_tiny_patch16_224", "deit_tiny_distilled_patch16_224"])
@torch.no_grad()
def test_deit_pth_with_its_model_wrapper(tmp_path, arch):
    ref = timm_model(arch, **TINY, img_size=48, num_classes=10)
    torch.save({"model": ref.state_dict()}, tmp_path / "deit.pth")  # as the DeiT release: torch.load(...)["model"]
    model = vitzoo_model(arch, str(tmp_path / "deit.pth"), img_size=48)
    assert model.load_report.format == "timm" and model.config.num_classes == 10
    assert maxdiff(model(batch(48)), ref(batch(48))) <= TOL


@torch.no_grad()
def test_deit3_pth_equals_timm_reading_it(tmp_path):
    src = timm_model("deit3_small_patch16_224", **TINY, img_size=48, num_classes=10)
    upstream = {
        k.replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2"): v for k, v in src.state_dict().items()
    }
    assert upstream["pos_embed"].shape[1] == 9  # models_v2: no class-token row
    torch.save({"model": upstream}, tmp_path / "deit_3_small_224_1k.pth")
    loaded = torch.load(tmp_path / "deit_3_small_224_1k.pth", weights_only=True)
    filter_fn = functools.partial(checkpoint_filter_fn, adapt_layer_scale=True)  # what timm's deit.py passes
    ref = timm_reference("deit3_small_patch16_224", loaded, filter_fn, img_size=48, num_classes=10)
    model = vitzoo_model("deit3_small_patch16_224", str(tmp_path / "deit_3_small_224_1k.pth"), img_size=48)
    assert model.load_report.format == "deit3"
    assert maxdiff(model(batch(48)), ref(batch(48))) <= TOL


def test_detect_original_formats():
    # key signatures of the original files (families.md 3.2-3.5); the timm fallback sees patch_embed.proj.weight
    block = {"patch_embed.proj.weight": 0, "blocks.0.attn.qkv.weight": 0}
    assert detect_format({"visual.class_embedding": 0, "token_embedding.weight": 0}) == "open_clip"
    assert detect_format({"module.visual.trunk.patch_embed.proj.weight": 0}) == "open_clip"
    assert detect_format({**block, "cls_token": 0, "pos_embed": 0, "mask_token": 0}) == "dinov2"
    assert detect_format({**block, "cls_token": 0, "storage_tokens": 0, "mask_token": 0}) == "dinov3"
    assert detect_format({**block, "pos_embed": 0, "blocks.0.gamma_1": 0}) == "deit3"
    assert detect_format({**block, "pos_embed": 0, "blocks.0.ls1.gamma": 0}) == "timm"


def test_gamma_names_are_deit3_only_with_a_position_table():
    eva_names = timm_model("vit_small_patch16_dinov3", **TINY, img_size=32, num_classes=0).state_dict()
    assert "blocks.0.gamma_1" in eva_names and "pos_embed" not in eva_names
    assert detect_format(eva_names) == "timm-eva"  # timm's own DINOv3 checkpoints
    assert detect_format({f"module.{k}": v for k, v in eva_names.items()}) == "timm-eva"
    deit3 = timm_model("deit3_small_patch16_224", **TINY, img_size=32, num_classes=0).state_dict()
    assert detect_format({k.replace("ls1.gamma", "gamma_1"): v for k, v in deit3.items()}) == "deit3"


# --------------------------------------------------------------------------------------------------- DINOv3
def dinov3_original(ref: torch.nn.Module, biases: str, seed: int = 2) -> dict[str, torch.Tensor]:
    """timm DINOv3 (Eva names) weights in the facebookresearch/dinov3 layout: ``storage_tokens``, ``ls1.gamma``,
    fused ``attn.qkv.bias`` with its ``bias_mask`` (the k third random, masked by the original), the persistent
    ``rope_embed.periods``, ``mask_token`` and SwiGLU ``mlp.w1/w2/w3``. ``biases="zero"``: q/v biases of zeros (what
    a timm model without them reads, as the released B/L/H files have)."""
    gen = torch.Generator().manual_seed(seed)
    sd = dict(ref.state_dict())
    width, heads = sd["cls_token"].shape[-1], ref.blocks[0].attn.num_heads
    hd = width // heads
    out = {
        "mask_token": torch.randn(1, width, generator=gen),
        "rope_embed.periods": 100.0 ** (2 * torch.arange(hd // 4) / (hd // 2)),
        "storage_tokens": sd.pop("reg_token"),
    }
    names = [("gamma_1", "ls1.gamma"), ("gamma_2", "ls2.gamma"), ("fc1_g", "w1"), ("fc1_x", "w2")]
    swiglu = "blocks.0.mlp.fc1_g.weight" in sd
    for k, v in sd.items():
        if k.endswith(("attn.q_bias", "attn.v_bias")):
            continue
        name = k
        for old, new in names + ([("mlp.fc2", "mlp.w3")] if swiglu else []):
            name = name.replace(old, new)
        out[name] = v
    for i in range(len(ref.blocks)):
        zero = torch.zeros(width)
        q, v = (sd[f"blocks.{i}.attn.{b}"] for b in ("q_bias", "v_bias")) if biases == "random" else (zero, zero)
        out[f"blocks.{i}.attn.qkv.bias"] = torch.cat([q, torch.randn(width, generator=gen), v])
        out[f"blocks.{i}.attn.qkv.bias_mask"] = torch.cat([torch.ones(width), zero, torch.ones(width)])
    return out


# name: (timm and vitzoo arch, q/v biases in the file)
DINOV3_CASES = {
    "qkvb": ("vit_small_patch16_dinov3_qkvb", "random"),
    "zero_biases": ("vit_small_patch16_dinov3", "zero"),
    "swiglu": ("vit_small_plus_patch16_dinov3", "zero"),
}


@pytest.mark.parametrize("case", list(DINOV3_CASES))
@torch.no_grad()
def test_dinov3_pth_equals_timm_eva_reading_it(tmp_path, case):
    arch, biases = DINOV3_CASES[case]
    kw = {"img_size": 48, "num_classes": 0, "global_pool": "token"}  # upstream's output: the normed class token
    upstream = dinov3_original(timm_model(arch, **TINY, **kw), biases)
    path = tmp_path / "dinov3_vits16_pretrain_lvd1689m.pth"
    torch.save(upstream, path)
    ref = timm_reference(arch, torch.load(path, weights_only=True), eva.checkpoint_filter_fn, **kw)
    model = vitzoo_model(arch, str(path), mlp_rows(ref.state_dict()), img_size=48)
    for h, w in ((48, 48), (64, 32)):
        x = batch(h, w)
        assert maxdiff(model.forward_features(x), ref.forward_features(x)) <= TOL
        assert maxdiff(model(x), ref(x)) <= TOL
    dropped = model.load_report.dropped
    assert {"mask_token", "rope_embed.periods", "blocks.1.attn.qkv.bias_mask"} <= set(dropped)
    assert ("blocks.0.attn.q_bias" in dropped) == (biases == "zero")


def test_dinov3_nonzero_biases_into_a_model_without_them_fail_loudly(tmp_path):
    src = timm_model("vit_small_patch16_dinov3_qkvb", **TINY, img_size=48, num_classes=0)
    torch.save(dinov3_original(src, "random"), tmp_path / "dinov3.pth")
    with pytest.raises(CheckpointError, match=r"unexpected \['blocks.0.attn.q_bias'"):
        vitzoo_model("vit_small_patch16_dinov3", str(tmp_path / "dinov3.pth"), img_size=48)


def test_dinov3_7b_local_cls_norm_is_dropped_and_unknown_keys_are_named():
    src = timm_model("vit_small_patch16_dinov3", **TINY, img_size=48, num_classes=0)
    upstream = dinov3_original(src, "zero")
    converted = vitzoo.weights.formats.convert({**upstream, "local_cls_norm.weight": torch.ones(64)})
    assert converted.format == "dinov3" and "local_cls_norm.weight" in converted.dropped
    with pytest.raises(FormatError, match=r"projectors\.head"):
        vitzoo.weights.formats.convert({**upstream, "projectors.head.weight": torch.ones(1)})


# ------------------------------------------------------------------------------------------------- Sapiens2
def sapiens2_original(ref: torch.nn.Module, seed: int = 3) -> dict[str, torch.Tensor]:
    """timm Sapiens2 (Eva names) weights in Meta's layout, what the ``timm/vit_*_sapiens2.fb`` repos hold: the
    inverse of the renames of timm's ``eva.checkpoint_filter_fn`` (``storage_tokens``, ``patch_embed.projection``,
    ``attn.wq/wk/wv``, ``attn.gamma.weight``, ``ffn.w12/w3``, ``ln1/ln2``, the final ``ln1``) plus ``mask_token``."""
    renames = [
        ("reg_token", "storage_tokens"),
        ("patch_embed.proj.", "patch_embed.projection."),
        (".attn.q_proj.", ".attn.wq."),
        (".attn.k_proj.", ".attn.wk."),
        (".attn.v_proj.", ".attn.wv."),
        (".mlp.fc1.", ".ffn.w12."),
        (".mlp.fc2.", ".ffn.w3."),
        (".norm1.", ".ln1."),
        (".norm2.", ".ln2."),
    ]
    out = {}
    for k, v in ref.state_dict().items():
        name = k
        for old, new in renames:
            name = name.replace(old, new)
        name = re.sub(r"blocks\.(\d+)\.gamma_1", r"blocks.\1.attn.gamma.weight", name)
        out["ln1." + name[len("norm.") :] if name.startswith("norm.") else name] = v
    out["mask_token"] = torch.randn(1, out["cls_token"].shape[-1], generator=torch.Generator().manual_seed(seed))
    return out


@torch.no_grad()
def test_sapiens2_repo_by_tag_equals_timm_reading_it(hub, tmp_path):
    """Grouped-query blocks (4 query heads, 2 key/value heads) between full ones, q/k norms, the attention-only layer
    scale, RMSNorm, 8 storage tokens: the Meta-layout file through the loopback Hub by tag, against timm's own
    converter reading the same file into timm's Sapiens2."""
    arch, kv = "vit_large_patch16_sapiens2", (4, 2, 2, 4)
    kw = {"embed_dim": 64, "depth": 4, "num_heads": 4, "img_size": (64, 48)}
    src = randomize_(timm.create_model(arch, num_kv_heads=kv, **kw)).eval()
    upstream = sapiens2_original(src)
    assert detect_format(upstream) == "sapiens2"
    save_file(upstream, tmp_path / "model.safetensors")
    hub.add_commit(
        "timm/vit_large_patch16_sapiens2.fb", {"model.safetensors": (tmp_path / "model.safetensors").read_bytes()}
    )
    ref = timm.create_model(arch, num_kv_heads=kv, **kw)
    ref.load_state_dict(eva.checkpoint_filter_fn(load_file(tmp_path / "model.safetensors"), ref), strict=True)
    ref.eval()
    ours = vitzoo.create_model(
        f"{arch}.fb", pretrained=True, num_kv_heads=2, full_attn_blocks=1, mlp_dim=mlp_rows(ref.state_dict()), **kw
    ).eval()
    assert [block.attn.kv_heads for block in ours.blocks] == list(kv)
    assert set(ours.load_report.dropped) == {"mask_token"} and not ours.load_report.missing
    for h, w in ((64, 48), (48, 80)):  # the portrait size it was built at, and another (dynamic, as timm's)
        x = batch(h, w)
        assert maxdiff(ours.forward_features(x), ref.forward_features(x)) <= TOL
        assert maxdiff(ours(x), ref(x)) <= TOL  # the class token, normed
    data = vitzoo.resolve_data_config(f"{arch}.fb")
    assert (data.input_size, data.crop_mode, data.interpolation) == ((3, 1024, 768), "squash", "bilinear")
