"""Same weights in, same numbers out: vitzoo against transformers' DINOv2, DINOv2 with registers, CLIP, SigLIP,
SigLIP 2, DINOv3 and DeiT, each loaded through vitzoo's own path.

Each transformers model is built from a tiny config, given random weights (``randomize_``) and written by its own
``save_pretrained`` (config.json + model.safetensors with transformers' on-disk names). vitzoo reads that folder as
``local-dir:`` (format detection, ``config.json`` parsing, conversion) and must agree within ``TOL`` at the native
size and at a non-square size, where each family resamples its position table its own way (or, for DINOv3, rotates
by RoPE). One family is also served by the loopback Hub.
"""

from __future__ import annotations

import shutil

import pytest
import torch
import transformers
from safetensors.torch import load_file
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    DeiTConfig,
    DeiTForImageClassification,
    DeiTForImageClassificationWithTeacher,
    DeiTModel,
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    DINOv3ViTConfig,
    DINOv3ViTModel,
    Siglip2Config,
    Siglip2Model,
    SiglipConfig,
    SiglipModel,
)

import vitzoo
from conftest import TOL, folder_files, hf_saved, maxdiff
from vitzoo.weights import configs

TOWER = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
TEXT = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=64)
TEXT_IDS = dict(bos_token_id=0, eos_token_id=1, pad_token_id=2)  # inside the tiny vocabulary
NATIVE, OTHER = (32, 32), (24, 40)  # patch 8: a 4 x 4 grid, and a 3 x 5 one (shrinks one axis, grows the other)


def _ours(folder, **kw) -> vitzoo.VisionTransformer:
    return vitzoo.create_model(f"local-dir:{folder}", pretrained=True, **kw).eval()


def _dinov2(tmp_path, registers: bool, swiglu: bool = False):
    config = dict(TOWER, image_size=56, patch_size=14, use_swiglu_ffn=swiglu)  # 4 x 4 grid of 14 px patches
    if registers:
        return hf_saved(Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**config)), tmp_path / "dinov2-reg")
    return hf_saved(Dinov2Model(Dinov2Config(**config)), tmp_path / "dinov2")


# ------------------------------------------------------------------------------------------------- DINOv2
@pytest.mark.parametrize(
    ("registers", "swiglu"), [(False, False), (False, True), (True, False)], ids=["dinov2", "dinov2-g", "reg4"]
)
@torch.no_grad()
def test_dinov2_tokens_and_pooled_match(registers, swiglu, tmp_path, images):
    """Dinov2Model resamples its table bicubic without antialiasing, Dinov2WithRegistersModel with it; both at
    every size, which vitzoo does with the dynamic_img_size its config.json gives."""
    hf, folder = _dinov2(tmp_path, registers, swiglu)
    ours = _ours(folder)
    assert ours.config.dynamic_img_size and ours.config.no_embed_class == registers
    assert ours.load_report.format == "transformers-dinov2"
    assert "embeddings.mask_token" in ours.load_report.dropped
    for size in [(56, 56), (42, 70)]:
        x = images(*size)
        ref = hf(pixel_values=x)
        assert maxdiff(ours.forward_features(x), ref.last_hidden_state) <= TOL, size
        assert maxdiff(ours(x), ref.pooler_output) <= TOL, size


# --------------------------------------------------------------------------------------------------- CLIP
@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    config = CLIPConfig(
        vision_config=dict(TOWER, image_size=32, patch_size=8), text_config={**TEXT, **TEXT_IDS}, projection_dim=16
    )
    return hf_saved(CLIPModel(config), tmp_path_factory.mktemp("clip") / "clip")


@pytest.mark.parametrize("size", [NATIVE, OTHER], ids=str)
@torch.no_grad()
def test_clip_tokens_pooled_and_image_embedding_match(size, clip, images):
    """CLIP's last_hidden_state comes before post_layernorm (vitzoo's tokens after it); the pooled output is the
    normed class token; ``model(x)`` is the projected image embedding of ``get_image_features``."""
    hf, folder = clip
    ours = _ours(folder, dynamic_img_size=size != NATIVE)
    x = images(*size)
    tower = hf.vision_model(pixel_values=x, interpolate_pos_encoding=size != NATIVE)
    tokens = ours.forward_features(x)
    assert maxdiff(tokens, hf.vision_model.post_layernorm(tower.last_hidden_state)) <= TOL
    assert maxdiff(ours.forward_head(tokens, pre_logits=True), tower.pooler_output) <= TOL
    embedding = hf.get_image_features(pixel_values=x, interpolate_pos_encoding=size != NATIVE).pooler_output
    assert maxdiff(ours(x), embedding) <= TOL


def test_clip_text_tower_is_reported_dropped(clip):
    ours = _ours(clip[1])
    report = ours.load_report
    assert report.format == "transformers-clip" and ours.config.num_classes == 16  # projection_dim
    (why,) = report.dropped.values()
    assert "text tower" in why and "text_model" in next(iter(report.dropped))
    assert (ours.config.act_layer, ours.config.pre_norm, ours.config.patch_bias) == ("quick_gelu", True, False)


@torch.no_grad()
def test_clip_vision_model_with_projection_matches(tmp_path, images):
    """The image tower alone (model_type clip_vision_model): ``image_embeds`` is ``model(x)``; GELU from the file."""
    config = CLIPVisionConfig(**TOWER, image_size=32, patch_size=8, projection_dim=16, hidden_act="gelu")
    hf, folder = hf_saved(CLIPVisionModelWithProjection(config), tmp_path / "clip-vision")
    ours = _ours(folder)
    assert (ours.config.num_classes, ours.config.act_layer) == (16, "gelu") and not ours.load_report.dropped
    x = images(*NATIVE)
    assert maxdiff(ours(x), hf(pixel_values=x).image_embeds) <= TOL


# ------------------------------------------------------------------------------------------------- SigLIP
@pytest.fixture(scope="module")
def siglip(tmp_path_factory):
    config = SiglipConfig(vision_config=dict(TOWER, image_size=32, patch_size=8), text_config={**TEXT, **TEXT_IDS})
    return hf_saved(SiglipModel(config), tmp_path_factory.mktemp("siglip") / "siglip")


@pytest.mark.parametrize("size", [NATIVE, OTHER], ids=str)
@torch.no_grad()
def test_siglip_tokens_and_map_head_match(size, siglip, images):
    hf, folder = siglip
    ours = _ours(folder, dynamic_img_size=size != NATIVE)
    assert (ours.config.global_pool, ours.config.class_token, ours.config.act_layer) == ("map", False, "gelu_tanh")
    x = images(*size)
    ref = hf.vision_model(pixel_values=x, interpolate_pos_encoding=size != NATIVE)
    assert maxdiff(ours.forward_features(x), ref.last_hidden_state) <= TOL
    assert maxdiff(ours(x), ref.pooler_output) <= TOL
    assert (
        maxdiff(ours(x), hf.get_image_features(pixel_values=x, interpolate_pos_encoding=size != NATIVE).pooler_output)
        <= TOL
    )


def test_siglip_from_the_hub_with_its_processor(hub, siglip, tmp_path, images):
    """A google/siglip-* style repo (SiglipModel + SiglipImageProcessor) by ``hf-hub:`` id: weights, facts, report."""
    hf, saved = siglip
    folder = shutil.copytree(saved, tmp_path / "repo")  # the module's folder stays without a processor
    transformers.SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    hub.add_commit("google/siglip-like", folder_files(folder))
    ours = vitzoo.create_model("hf-hub:google/siglip-like", pretrained=True).eval()
    facts = ours.pretrained_cfg
    assert (facts.input_size, facts.mean, facts.interpolation, facts.crop_mode) == (
        (3, 32, 32),
        (0.5, 0.5, 0.5),
        "bicubic",
        "squash",
    )
    assert "SigLIP" in facts.description and facts.license is None
    assert any("text tower" in why for why in ours.load_report.dropped.values())
    x = images(*NATIVE)
    with torch.no_grad():
        assert maxdiff(ours(x), hf.vision_model(pixel_values=x).pooler_output) <= TOL


# ----------------------------------------------------------------------------------------- SigLIP 2 (NaFlex)
def _patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Images (B, C, H, W) as Siglip2ImageProcessor's patches: (B, h * w, P * P * C), each flattened (P, P, C)."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // patch, patch, W // patch, patch).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // patch) * (W // patch), patch * patch * C)


@pytest.mark.parametrize("size", [NATIVE, OTHER, (48, 40)], ids=str)
@torch.no_grad()
def test_siglip2_naflex_whole_images_match(size, tmp_path, images):
    """Siglip2 embeds (P, P, C)-flattened patches with a Linear and resizes its 4 x 4 position grid to each image's
    grid (bilinear, antialias): vitzoo's conv kernel and dynamic pos-embed give the same numbers for an unpadded
    image (every patch real, attention mask all ones)."""
    config = Siglip2Config(vision_config=dict(TOWER, num_patches=16, patch_size=8), text_config={**TEXT, **TEXT_IDS})
    hf, folder = hf_saved(Siglip2Model(config), tmp_path / "siglip2")
    ours = _ours(folder)
    assert ours.config.img_size == (32, 32) and ours.config.pos_embed_interpolation == "bilinear"
    x = images(*size)
    grid = (size[0] // 8, size[1] // 8)
    ref = hf.vision_model(
        pixel_values=_patchify(x, 8),
        pixel_attention_mask=torch.ones(x.shape[0], grid[0] * grid[1], dtype=torch.long),
        spatial_shapes=torch.tensor([grid] * x.shape[0]),
    )
    assert maxdiff(ours.forward_features(x), ref.last_hidden_state) <= TOL
    assert maxdiff(ours(x), ref.pooler_output) <= TOL


# ------------------------------------------------------------------------------------------------- DINOv3
@pytest.mark.parametrize("gated", [False, True], ids=["mlp", "gated-mlp"])
@torch.no_grad()
def test_dinov3_tokens_and_pooled_match(gated, tmp_path, images):
    """RoPE (no position table), 4 storage tokens, q and v biases, layer scale; the gated MLP of S+ / H+."""
    config = DINOv3ViTConfig(**TOWER, image_size=32, patch_size=8, num_register_tokens=4, use_gated_mlp=gated)
    hf, folder = hf_saved(DINOv3ViTModel(config), tmp_path / "dinov3")
    ours = _ours(folder)
    assert (ours.config.rope, ours.config.reg_tokens, ours.config.global_pool) == (True, 4, "token")
    assert "embeddings.mask_token" in ours.load_report.dropped
    for size in [NATIVE, OTHER]:
        x = images(*size)
        ref = hf(pixel_values=x)
        assert maxdiff(ours.forward_features(x), ref.last_hidden_state) <= TOL, size
        assert maxdiff(ours(x), ref.pooler_output) <= TOL, size


# --------------------------------------------------------------------------------------------------- DeiT
@pytest.mark.parametrize("size", [NATIVE, OTHER], ids=str)
@torch.no_grad()
def test_deit_distilled_logits_and_tokens_match(size, tmp_path, images):
    """The teacher model's logits are the mean of its two heads; layer_norm_eps 1e-12 comes from config.json."""
    config = DeiTConfig(**TOWER, image_size=32, patch_size=8, num_labels=5)
    hf, folder = hf_saved(DeiTForImageClassificationWithTeacher(config), tmp_path / "deit")
    ours = _ours(folder, dynamic_img_size=size != NATIVE)
    assert ours.config.distilled and ours.config.layer_norm_eps == 1e-12
    x = images(*size)
    interpolate = size != NATIVE
    assert maxdiff(ours.forward_features(x), hf.deit(x, interpolate_pos_encoding=interpolate).last_hidden_state) <= TOL
    assert maxdiff(ours(x), hf(pixel_values=x, interpolate_pos_encoding=interpolate).logits) <= TOL


@torch.no_grad()
def test_deit_single_head_classifier_matches(tmp_path, images):
    """DeiTForImageClassification's head reads the class token only; its distillation token rides as a register."""
    config = DeiTConfig(**TOWER, image_size=32, patch_size=8, num_labels=5)
    hf, folder = hf_saved(DeiTForImageClassification(config), tmp_path / "deit-single")
    ours = _ours(folder)
    assert (ours.config.distilled, ours.config.reg_tokens) == (False, 1)
    x = images(*NATIVE)
    assert maxdiff(ours(x), hf(pixel_values=x).logits) <= TOL


@torch.no_grad()
def test_deit_model_tokens_match_and_its_pooler_is_reported(tmp_path, images):
    """DeiTModel has no head: ``model(x)`` is the mean of the class and distillation tokens (timm's pre-logits of a
    distilled DeiT); its tanh pooler reads the class token alone and is dropped, with the reason in the report."""
    config = DeiTConfig(**TOWER, image_size=32, patch_size=8)
    hf, folder = hf_saved(DeiTModel(config), tmp_path / "deit-model")
    ours = _ours(folder)
    assert "pooler" in next(iter(ours.load_report.dropped))
    x = images(*NATIVE)
    tokens = hf(pixel_values=x).last_hidden_state
    assert maxdiff(ours.forward_features(x), tokens) <= TOL
    assert maxdiff(ours(x), (tokens[:, 0] + tokens[:, 1]) / 2) <= TOL


# ---------------------------------------------------------------------------------- in-memory names, errors
@pytest.mark.parametrize("family", ["dinov2-g", "dinov3", "deit"])
@torch.no_grad()
def test_in_memory_names_of_transformers_5_load_too(family, tmp_path, images):
    """transformers 5 renames keys in memory (q_proj, gate_proj/up_proj, model.layer.N, layers.N) and writes the
    legacy names to disk; a live model's ``state_dict()`` loads as its file does."""
    if family == "dinov2-g":
        hf, folder = _dinov2(tmp_path, registers=False, swiglu=True)
        x, ref = images(56, 56), lambda x: hf(pixel_values=x).last_hidden_state
    elif family == "dinov3":
        config = DINOv3ViTConfig(**TOWER, image_size=32, patch_size=8, num_register_tokens=4, use_gated_mlp=True)
        hf, folder = hf_saved(DINOv3ViTModel(config), tmp_path / "dinov3")
        x, ref = images(*NATIVE), lambda x: hf(pixel_values=x).last_hidden_state
    else:
        config = DeiTConfig(**TOWER, image_size=32, patch_size=8, num_labels=5)
        hf, folder = hf_saved(DeiTForImageClassificationWithTeacher(config), tmp_path / "deit")
        x, ref = images(*NATIVE), lambda x: hf.deit(x).last_hidden_state
    assert set(hf.state_dict()) != set(load_file(str(folder / "model.safetensors")))  # the namings really differ
    ours = vitzoo.create_model(f"local-dir:{folder}").eval()
    vitzoo.load_pretrained(ours, hf.state_dict())
    assert maxdiff(ours.forward_features(x), ref(x)) <= TOL


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"model_type": "beit", "hidden_size": 64}, r"'beit' model, which vitzoo does not build"),
        ({"model_type": "vit", "hidden_act": "relu"}, r"hidden_act='relu' is not supported"),
        ({"model_type": "dinov3_vit", "key_bias": True}, r"DINOv3 with key_bias=True"),
    ],
)
def test_configs_vitzoo_cannot_build_are_refused(config, named):
    with pytest.raises(vitzoo.ConfigError, match=named):
        configs.parse(config, "repo", set())


def test_every_family_config_is_recognised_as_transformers():
    families = ["deit", "dinov2", "dinov2_with_registers", "clip", "clip_vision_model", "siglip", "siglip_vision_model"]
    for model_type in [*families, "siglip2", "siglip2_vision_model", "dinov3_vit"]:
        assert configs.is_transformers({"model_type": model_type}), model_type
    assert not configs.is_transformers({"architecture": "vit_base_patch16_224"})


# ------------------------------------------------------------------------------------ repos with their processor
@torch.no_grad()
def test_clip_and_dinov2_repos_load_with_their_shortest_edge_processors(hub, tmp_path, images):
    """openai/clip-vit-* and facebook/dinov2-* carry a shortest-edge processor: by ``hf-hub:`` id the model loads and
    its eval transform is that processor's (pixels compared in test_preprocessor.py). DINOv2's processor crops less
    than its table covers (224 of 518 on the Hub; 42 of 56 here): the model takes any size, as transformers' does, and
    the transform prepares the processor's."""
    clip = CLIPModel(
        CLIPConfig(vision_config=dict(TOWER, image_size=32, patch_size=8), text_config={**TEXT, **TEXT_IDS})
    )
    _, clip_folder = hf_saved(clip, tmp_path / "clip")
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        clip_folder
    )
    hf, dino_folder = _dinov2(tmp_path, registers=False)
    transformers.BitImageProcessor(
        size={"shortest_edge": 48}, crop_size={"height": 42, "width": 42}, image_mean=(0.485, 0.456, 0.406)
    ).save_pretrained(dino_folder)
    for repo, folder, size in (("openai/clip-like", clip_folder, 32), ("facebook/dinov2-like", dino_folder, 42)):
        hub.add_commit(repo, folder_files(folder))
        model = vitzoo.create_model(f"hf-hub:{repo}", pretrained=True).eval()
        cfg = vitzoo.resolve_data_config(model)
        assert (cfg.input_size, cfg.crop_mode, cfg.processor) == ((3, size, size), "center", "transformers"), repo
    assert model.config.img_size == (56, 56)  # the table as trained: other sizes are resampled from it
    x = images(42, 42)
    assert maxdiff(model(x), hf(pixel_values=x).pooler_output) <= TOL
    saved = vitzoo.save_pretrained(model, tmp_path / "saved")  # the saved folder keeps both sizes
    again = _ours(saved)
    assert again.config.img_size == (56, 56) and vitzoo.resolve_data_config(again) == cfg


def test_a_naflex_processor_leaves_the_model_and_refuses_the_transform(tmp_path):
    """google/siglip2-*-naflex: vitzoo builds the model, but its variable-resolution processor is not reproduced, so
    ``create_transform`` refuses (saying why) instead of preparing other pixels."""
    config = Siglip2Config(vision_config=dict(TOWER, num_patches=16, patch_size=8), text_config={**TEXT, **TEXT_IDS})
    _, folder = hf_saved(Siglip2Model(config), tmp_path / "siglip2")
    transformers.Siglip2ImageProcessor(max_num_patches=16, patch_size=8).save_pretrained(folder)
    model = _ours(folder)
    assert model.pretrained_cfg.processor == "unsupported" and "NaFlex" in model.pretrained_cfg.description
    with pytest.raises(vitzoo.ConfigError, match="does not reproduce this checkpoint's image processor"):
        vitzoo.create_transform(model)
