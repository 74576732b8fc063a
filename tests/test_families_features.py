"""Everything beyond the forward pass works for one arch of every family (issue 10): ``save_pretrained`` folders that
vitzoo and timm read back, timm's own folders read by vitzoo, feature extraction and ``vitzoo embed`` with extra or
no prefix tokens, attention capture and analysis, ``predict`` only where a classifier is, dynamic sizes and
``set_input_size``, meta-device loading and ``torch.compile`` without graph breaks.

Two blocks at real widths (at smaller ones: the giant DINOv2, whose family differs by its packed SwiGLU only, and
SigLIP B/16 of the fast suite, whose family differs by its attention pool and missing class token) and small grids
(the native 518 px of DINOv2 where sizes are tested), random weights (``randomize_``); timm runs the same weights.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors import safe_open

import vitzoo
from conftest import TOL, batch, cli, fast_first, maxdiff, randomize_, timm_model, timm_repo
from vitzoo.eval import attention, learned_embeddings
from vitzoo.models.archs import ARCHS
from vitzoo.weights.formats import to_timm

DEPTH = 2
# arch: tokens before the patches (class + distillation + registers), what extract_features must never average
PREFIX = {
    "deit_tiny_distilled_patch16_224": 2,
    "deit3_small_patch16_224": 1,
    "vit_small_patch8_224": 1,  # DINO
    "vit_small_patch14_dinov2": 1,
    "vit_small_patch14_reg4_dinov2": 5,
    "vit_giant_patch14_dinov2": 1,  # packed SwiGLU
    "vit_base_patch32_clip_224": 1,
    "vit_base_patch32_clip_quickgelu_224": 1,
    "vit_base_patch16_siglip_224": 0,  # MAP head
    "vit_base_patch32_siglip_256": 0,  # SigLIP 2: tanh GELU
    "vit_base_patch16_siglip_gap_224": 0,
    "vit_small_patch16_dinov3": 5,  # RoPE, 4 storage tokens
    "vit_small_plus_patch16_dinov3_qkvb": 5,  # q/v biases, split SwiGLU
    "eva02_tiny_patch14_224": 1,  # EVA RoPE beside a table, packed SwiGLU, patch mean through fc_norm
    "eva02_base_patch16_clip_224": 1,  # split q/k/v in timm, norms inside attention and the MLP
    "vit_medium_patch16_rope_reg1_gap_256": 1,  # one register, no class token, RoPE without a table
    "vit_pe_core_tiny_patch16_384": 1,  # RoPE x first, an attention pool over the class token too
    "vit_pe_spatial_tiny_patch16_512": 1,  # no final norm
    "vit_base_patch16_radio_v3": 8,  # 7 registers outside the table, no final norm
    "vit_intern300m_patch14_448": 1,  # layer scale 0.1, no final norm
    "aimv2_large_patch14_224": 0,  # RMSNorm, the patch embedding normed, no biases, no class token
    "beit3_base_patch16_224": 1,  # norms inside attention and the MLP, a class token never pooled
    "vit_base_patch16_rpn_224": 0,  # res-post-norm
    "vit_relpos_small_patch16_224": 0,  # relative position MLP per block, no position table
    "vit_srelpos_small_patch16_224": 0,  # one shared relative position MLP
    "vit_relpos_medium_patch16_cls_224": 1,  # relative positions with a class token
    "vit_small_patch16_lingbot": 5,  # DINOv3's network
    "vit_small_patch16_rope_mixed_224": 1,  # RoPE-Mixed: a rotary embedding per block from learned frequencies
    "vit_pwee_patch16_reg1_gap_256": 1,  # parallel blocks: attention and MLP from one projection
}
# Each test runs every family; the default (fast) suite runs three that cover the prefix-token cases between them:
# registers without a class slot in the table, no class token with an attention pool, and RoPE with storage tokens,
# q/v biases and a split SwiGLU (the distillation token is in test_families.py and test_model_flags.py).
# `pytest` (no -m) runs them all.
FAST = (
    "vit_small_patch14_reg4_dinov2",
    "vit_base_patch16_siglip_224",
    "vit_small_plus_patch16_dinov3_qkvb",
)
FAMILY_ARCHS = fast_first(PREFIX, FAST)
SMALLER = {  # fewer tokens than at the native size
    "vit_small_patch8_224": {"img_size": 112},
    "vit_base_patch16_siglip_224": {"img_size": 112, "embed_dim": 384, "num_heads": 6, "mlp_dim": 1536},
    "vit_small_patch14_dinov2": {"img_size": 224},
    "vit_small_patch14_reg4_dinov2": {"img_size": 224},
    "vit_giant_patch14_dinov2": {"img_size": 112, "embed_dim": 192, "num_heads": 3, "mlp_dim": 1024},
    "eva02_base_patch16_clip_224": {"img_size": 112},
    "vit_pe_core_tiny_patch16_384": {"img_size": 128},
    "vit_pe_spatial_tiny_patch16_512": {"img_size": 128},
    "vit_base_patch16_radio_v3": {"img_size": 128},
    "vit_intern300m_patch14_448": {"img_size": 112, "embed_dim": 384, "num_heads": 6, "mlp_dim": 1536},
    "aimv2_large_patch14_224": {"img_size": 112, "embed_dim": 384, "num_heads": 6, "mlp_dim": 1024},
    "vit_small_patch16_lingbot": {"img_size": 128},
}
_MODELS: dict[str, torch.nn.Module] = {}


def build(arch: str, native: bool = False, **kw) -> torch.nn.Module:
    """``arch`` at two blocks (``SMALLER`` unless ``native``) with seeded random weights, in eval mode."""
    smaller = {} if native else SMALLER.get(arch, {})
    return randomize_(vitzoo.create_model(arch, depth=DEPTH, **{**smaller, **kw})).eval()


def model_of(arch: str) -> torch.nn.Module:
    """``build(arch)``, made once per session (tests that change a model build their own)."""
    if arch not in _MODELS:
        _MODELS[arch] = build(arch)
    return _MODELS[arch]


def timm_like(arch: str, model: torch.nn.Module) -> torch.nn.Module:
    """timm's model of ``arch`` holding ``model``'s weights under its names (DINOv3: timm's Eva, told to pool the
    class token)."""
    pool = {"global_pool": model.config.global_pool} if model.config.rope else {}
    ref = timm_model(arch, depth=DEPTH, num_classes=model.config.num_classes, img_size=model.config.img_size, **pool)
    ref.load_state_dict(to_timm(model.state_dict(), model.config), strict=True)
    return ref.eval()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Bitwise equal state dicts. (Outputs of equal weights can still differ by ~1e-6: weights read from a file may
    sit at another memory alignment, which changes the CPU kernels' summation order.)"""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def inputs(model: torch.nn.Module, n: int = 2) -> torch.Tensor:
    return batch(*model.config.img_size, n=n)


def extract(model, x, **kw):
    return vitzoo.extract_features(model, x, num_workers=0, progress=False, **kw)


# --------------------------------------------------------------------------------------------- save_pretrained
@pytest.mark.parametrize("arch", FAMILY_ARCHS)
@torch.no_grad()
def test_saved_folder_reads_back_in_vitzoo_and_timm(arch, tmp_path):
    model = model_of(arch)
    folder = vitzoo.save_pretrained(model, tmp_path / "saved")
    assert json.loads((folder / "config.json").read_text())["architecture"] == arch  # the family's own entry point
    x = inputs(model, n=1)
    again = vitzoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert again.config == model.config and same_weights(again, model)
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    cfg = model.config
    classes = {"Eva": cfg.rope, "VisionTransformerDistilled": cfg.distilled, "VisionTransformerRelPos": cfg.rel_pos}
    assert type(theirs).__name__ == next((name for name, used in classes.items() if used), "VisionTransformer")
    tokens = model.forward_features(x)
    assert maxdiff(theirs.forward_features(x), tokens) <= TOL
    assert maxdiff(theirs(x), model.forward_head(tokens)) <= TOL


# configs that equal no registered arch: the closest arch of the family plus model_args
CHANGED = [
    ("vit_small_patch14_reg4_dinov2", {"img_size": (224, 168)}, "vit_small_patch14_reg4_dinov2"),
    ("vit_small_patch14_dinov2", {"img_size": 224, "global_pool": "avg"}, "vit_small_patch14_dinov2"),
    ("vit_base_patch16_siglip_224", {"global_pool": "avg"}, "vit_base_patch16_siglip_gap_224"),
    ("vit_small_patch16_dinov3", {"img_size": 224, "global_pool": "avg"}, "vit_small_patch16_dinov3"),
    ("vit_base_patch32_clip_quickgelu_224", {"num_classes": 0, "img_size": 160}, "vit_base_patch32_clip_quickgelu_224"),
    ("deit3_small_patch16_224", {"embed_dim": 64, "num_heads": 2, "mlp_dim": 100}, "deit3_small_patch16_224"),
    ("deit_tiny_distilled_patch16_224", {"num_classes": 7, "img_size": 160}, "deit_tiny_distilled_patch16_224"),
]


@pytest.mark.parametrize(("arch", "changes", "written"), fast_first(CHANGED, 2))
@torch.no_grad()
def test_a_config_no_arch_equals_round_trips(arch, changes, written, tmp_path):
    model = build(arch, native=True, **changes)
    assert model.config not in ARCHS.values()
    folder = vitzoo.save_pretrained(model, tmp_path / "saved")
    written_arch = json.loads((folder / "config.json").read_text())["architecture"]
    assert written_arch == written
    x = inputs(model, n=1)
    again = vitzoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert again.config == model.config and same_weights(again, model) and maxdiff(again(x), model(x)) <= 1e-5
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert maxdiff(theirs(x), model(x)) <= TOL


def test_a_config_timm_cannot_build_is_saved_with_a_warning(tmp_path, caplog):
    model = build("vit_small_patch14_dinov2", patch_bias=False, num_classes=0)  # no patch bias without norm_pre
    with caplog.at_level(logging.WARNING, logger="vitzoo"):
        folder = vitzoo.save_pretrained(model, tmp_path / "saved")
    assert "timm's model_args cannot carry patch_bias" in caplog.text
    again = vitzoo.create_model(f"local-dir:{folder}", pretrained=True)
    assert again.config == model.config


@pytest.mark.parametrize("arch", FAMILY_ARCHS)
@torch.no_grad()
def test_timms_own_folder_reads_in_vitzoo(arch, tmp_path):
    """What timm's save_for_hf writes (architecture + model_args; DINOv3 with timm's default average pool)."""
    kw = dict(SMALLER.get(arch, {}))
    if "mlp_dim" in kw:
        kw["mlp_ratio"] = kw.pop("mlp_dim") / kw["embed_dim"]
    ref, files = timm_repo(arch, tmp_path, num_classes=ARCHS[arch].num_classes, safe=True, depth=DEPTH, **kw)
    folder = tmp_path / "timm"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    ours = vitzoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert ours.config.global_pool == ref.global_pool and ours.config.depth == DEPTH
    x = inputs(ours)
    assert maxdiff(ours(x), ref(x)) <= TOL


# ----------------------------------------------------------------------------------------- features and embed
@pytest.mark.parametrize("arch", FAMILY_ARCHS)
@torch.no_grad()
def test_every_pool_and_layer_of_every_family(arch):
    model, P = model_of(arch), PREFIX[arch]
    assert model.num_prefix_tokens == P
    x = inputs(model)
    tokens = model.forward_features(x)
    h, w = model.grid_size
    assert tokens.shape[1] == P + h * w
    pooled = model.forward_head(tokens, pre_logits=True)
    assert maxdiff(extract(model, x), pooled) <= TOL  # None: the model's own pooling
    # prefix tokens never averaged; a pooled vector gets fc_norm where the model norms after pooling (EVA-02)
    assert maxdiff(extract(model, x, pool="avg"), model.fc_norm(tokens[:, P:].mean(1))) <= TOL
    assert maxdiff(extract(model, x, pool="output"), model(x)) <= TOL
    assert maxdiff(extract(model, x, pool="tokens"), tokens) <= TOL
    if model.config.class_token:
        assert maxdiff(extract(model, x, pool="token"), model.fc_norm(tokens[:, 0])) <= TOL
    else:
        with pytest.raises(vitzoo.ConfigError, match="class token"):
            extract(model, x, pool="token")
    if model.config.global_pool == "map":
        assert maxdiff(extract(model, x, pool="map"), pooled) <= TOL
    else:
        with pytest.raises(vitzoo.ConfigError, match="attention-pool"):
            extract(model, x, pool="map")
    layers = extract(model, x, layers=[0, -1], pool="avg")
    # the last block through the final norm, as timm's forward_intermediates (fc_norm models: none; EVA-02)
    assert maxdiff(layers["layer_1"], tokens[:, P:].mean(1)) <= TOL
    assert extract(model, x, layers=[0], pool="tokens")["layer_0"].shape == tokens.shape
    _, maps = model.forward_intermediates(x, indices=[0, 1], norm=True, return_prefix_tokens=True)
    (first, first_prefix), (last, last_prefix) = maps
    assert first.shape == last.shape == (2, model.num_features, h, w)  # registers are not in the maps
    assert first_prefix.shape == last_prefix.shape == (2, P, model.num_features)
    assert maxdiff(last, tokens[:, P:].transpose(1, 2).reshape(2, -1, h, w)) <= TOL
    assert torch.allclose(last_prefix, tokens[:, :P], atol=TOL)


def test_distilled_deit_default_pool_is_the_mean_of_class_and_distillation_tokens():
    model = model_of("deit_tiny_distilled_patch16_224")
    x = inputs(model)
    with torch.no_grad():
        tokens = model.forward_features(x)
    assert maxdiff(extract(model, x), (tokens[:, 0] + tokens[:, 1]) / 2) <= TOL
    assert maxdiff(extract(model, x, pool="token"), tokens[:, 0]) <= TOL  # "token" is the class token alone


def write_jpegs(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        paths.append(folder / f"img{i}.jpg")
        Image.fromarray(rng.integers(0, 256, (90 + 10 * i, 120, 3), dtype=np.uint8)).save(paths[-1])
    return paths


EMBEDDED = [  # a distillation token, registers, no class token, RoPE with storage tokens
    "deit_tiny_distilled_patch16_224",
    "vit_small_patch14_reg4_dinov2",
    "vit_base_patch16_siglip_224",
    "vit_small_patch16_dinov3",
]


@pytest.mark.parametrize("arch", fast_first(EMBEDDED, 2))
def test_embed_command_for_extra_and_missing_prefix_tokens(arch, tmp_path):
    model = model_of(arch)
    name = f"local-dir:{vitzoo.save_pretrained(model, tmp_path / 'model')}"
    paths = write_jpegs(tmp_path / "imgs")
    for pool, layers in ((None, []), ("avg", ["0", "-1"]), (None, ["-1"])):
        out = tmp_path / f"{pool}-{'_'.join(layers)}.safetensors"  # one file per command
        args = ["embed", name, *paths, "--out", out, "--workers", "0", "--quiet"]
        args += ([] if pool is None else ["--pool", pool]) + (["--layers", *layers] if layers else [])
        assert cli(*args).returncode == 0
        with safe_open(str(out), "pt") as f:
            got = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
            meta = f.metadata()
        api = extract(model, paths, pool=pool, layers=[int(i) for i in layers] or None)
        api = api if isinstance(api, dict) else {"features": api}
        assert got.keys() == api.keys() and all(maxdiff(got[k], api[k]) <= 1e-5 for k in api)
        if pool is None:  # the model's own pooling; blocks have no head: the class token, or the patch mean
            own = "pre_logits" if model.config.distilled else model.config.global_pool
            with_layers = "token" if model.cls_token is not None else "avg"
            assert json.loads(meta["pool"]) == (with_layers if layers else own)


# ----------------------------------------------------------------------------------------------------- analysis
@pytest.mark.parametrize("arch", FAMILY_ARCHS)
@torch.no_grad()
def test_attention_capture_and_analysis_with_extra_or_no_prefix_tokens(arch):
    model, P = model_of(arch), PREFIX[arch]
    x = inputs(model)
    plain = model.forward_features(x)
    with vitzoo.capture_attention(model) as rec:
        captured = model.forward_features(x)
    assert maxdiff(captured, plain) <= 1e-5  # the recorded attention is the one the model uses (RoPE included)
    h, w = model.grid_size
    L = P + h * w
    assert rec.num_prefix_tokens == P and rec.grid == (h, w)
    assert [a.shape for a in rec.attentions] == [(2, model.config.num_heads, L, L)] * DEPTH
    distance = attention.mean_attention_distance(rec.attentions, P, rec.grid, model.patch_size)
    assert distance.shape == (DEPTH, model.config.num_heads) and bool(torch.isfinite(distance).all())
    if model.cls_token is not None:
        assert attention.attention_rollout(rec.attentions, P, rec.grid).shape == (2, h, w)
        assert attention.cls_attention(rec.attentions[-1], P, rec.grid).shape == (2, model.config.num_heads, h, w)
    else:
        assert rec.has_class_token is False  # registers alone (timm's SBB gap ViTs) are no class token
        for fn in (lambda: attention.attention_rollout(rec.attentions, P, rec.grid, rec.has_class_token),
                   lambda: attention.cls_attention(rec.attentions[-1], P, rec.grid, rec.has_class_token)):  # fmt: skip
            with pytest.raises(vitzoo.ConfigError, match="class token"):
                fn()
    if model.pos_embed is None:
        with pytest.raises(vitzoo.ConfigError, match="no learned position table"):
            learned_embeddings.pos_embed_similarity(model)
    else:
        sim = learned_embeddings.pos_embed_similarity(model)
        assert sim.shape == (h, w, h, w)
        table = model.pos_embed[0, model.pos_embed.shape[1] - h * w :]  # the patch rows, whatever precedes them
        pe = torch.nn.functional.normalize(table, dim=-1)
        assert maxdiff(sim.reshape(h * w, h * w), pe @ pe.T) <= 1e-5


@pytest.mark.parametrize("arch", fast_first(["vit_small_patch16_dinov3", "vit_base_patch16_siglip_224"]))
def test_analyze_command_skips_what_the_family_lacks(arch, tmp_path):
    model = model_of(arch)
    name = f"local-dir:{vitzoo.save_pretrained(model, tmp_path / 'model')}"
    (img,) = write_jpegs(tmp_path / "imgs", n=1)
    result = cli("analyze", name, img, "--out", tmp_path / "out", "--components", "4")
    assert result.returncode == 0, result.stderr
    written = {p.name for p in (tmp_path / "out").iterdir()}
    numbers = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert len(numbers["mean_attention_distance"]) == DEPTH
    assert ("rollout_img0.png" in written) == (model.cls_token is not None)
    assert ("position_similarity.png" in written) == (model.pos_embed is not None)
    if model.cls_token is None:
        assert "no class token" in result.stderr


def test_fewshot_pools_as_the_model_does_by_default(tmp_path, monkeypatch):
    """SigLIP has no class token: the paper's pool="token" cannot apply, and the default is the model's own pool
    (its attention pool): fewshot_eval scores the map-pooled features (equal to 1e-6), not another pool's. The
    features are compared, not the accuracies: 6 images give accuracies that two pools can share by chance."""
    from vitzoo.eval import fewshot

    model = model_of("vit_base_patch16_siglip_224")
    for c in range(2):
        write_jpegs(tmp_path / f"class{c}", n=3)
    seen: list[torch.Tensor] = []

    def extract_and_keep(*args, **kwargs):
        seen.append(vitzoo.extract_features(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(fewshot, "extract_features", extract_and_keep)
    acc = vitzoo.fewshot_eval(model, tmp_path, tmp_path, shots=[1, 2], num_workers=0, progress=False)
    paths = sorted(str(p) for p in tmp_path.rglob("*.jpg"))
    labels = torch.tensor([int(Path(p).parent.name[-1]) for p in paths])
    feats = {p: vitzoo.extract_features(model, paths, pool=p, num_workers=0, progress=False) for p in ("map", "avg")}
    assert seen and all(maxdiff(f, feats["map"]) < 1e-6 for f in seen)  # the train and the test features
    assert maxdiff(feats["avg"], feats["map"]) > 1e-3  # the pools differ: the check above tells them apart
    assert vitzoo.fewshot_eval(model, (feats["map"], labels), (feats["map"], labels), shots=[1, 2]) == acc
    with pytest.raises(vitzoo.ConfigError, match="class token"):
        vitzoo.fewshot_eval(model, tmp_path, tmp_path, shots=[1], pool="token", num_workers=0, progress=False)


# ------------------------------------------------------------------------------------------------------ predict
def test_predict_only_with_a_classifier_head():
    x = batch(224, n=2)
    clip = vitzoo.create_model("vit_base_patch32_clip_224.laion2b", depth=DEPTH)  # head: the joint-space projection
    with pytest.raises(vitzoo.ConfigError, match="pool='output'"):
        vitzoo.predict(clip, x, num_workers=0)
    dinov2 = vitzoo.create_model("vit_small_patch14_dinov2.lvd142m", depth=DEPTH, img_size=224)
    with pytest.raises(vitzoo.ConfigError, match="extract_features"):
        vitzoo.predict(dinov2, x, num_workers=0)
    deit = randomize_(vitzoo.create_model("deit_tiny_distilled_patch16_224.fb_in1k", depth=DEPTH)).eval()
    top = vitzoo.predict(deit, x, topk=3, num_workers=0)
    with torch.no_grad():
        probs = deit(x).softmax(-1)
    names = deit.pretrained_cfg.class_names()
    assert [[p.label for p in row] for row in top] == [[names[i] for i in probs[b].topk(3).indices] for b in range(2)]
    assert abs(top[0][0].prob - probs[0].max().item()) <= 1e-5
    new_head = vitzoo.create_model("deit_tiny_distilled_patch16_224.fb_in1k", depth=DEPTH, num_classes=10)
    assert all(p.label.startswith("class_") for p in vitzoo.predict(new_head, x, num_workers=0)[0])


def test_predict_command_on_clip_says_what_to_use(tmp_path):
    model = model_of("vit_base_patch32_clip_224")
    model.pretrained_cfg = vitzoo.get_pretrained_cfg("vit_base_patch32_clip_224.laion2b")
    name = f"local-dir:{vitzoo.save_pretrained(model, tmp_path / 'model')}"
    model.pretrained_cfg = None
    (img,) = write_jpegs(tmp_path / "imgs", n=1)
    result = cli("predict", name, img)
    assert result.returncode == 2 and "pool='output'" in result.stderr


# ---------------------------------------------------------------------------------------------- dynamic sizes
@pytest.mark.parametrize(
    ("arch", "new"),
    fast_first(
        [
            ("deit_tiny_distilled_patch16_224", (288, 288)),  # two prefix slots resampled with the grid
            ("deit3_small_patch16_224", (160, 256)),  # no_embed_class: patch rows only, to a non-square size
            ("vit_small_patch14_dinov2", (224, 224)),  # 518 native -> 224, one class slot
            ("vit_small_patch14_dinov2", (280, 196)),  # the same resampling to a non-square size
            ("vit_small_patch14_reg4_dinov2", (252, 252)),
            ("vit_base_patch16_siglip_224", (256, 192)),
        ],
        2,
    ),
)
@torch.no_grad()
def test_set_input_size_and_dynamic_sizes_equal_timm(arch, new):
    model = build(arch, native=True)
    ref = timm_like(arch, model)
    x = inputs(model, n=1)
    assert maxdiff(model(x), ref(x)) <= TOL  # the native size first
    model.set_input_size(new)
    ref.set_input_size(img_size=new)
    assert model.pos_embed.shape == ref.pos_embed.shape
    assert maxdiff(model.pos_embed, ref.pos_embed) <= TOL
    y = batch(*new, n=1)
    assert maxdiff(model(y), ref(y)) <= TOL
    dynamic = build(arch, native=True, dynamic_img_size=True)
    dynamic_ref = timm_model(arch, depth=DEPTH, num_classes=dynamic.config.num_classes, dynamic_img_size=True,
                             img_size=dynamic.config.img_size)  # fmt: skip
    dynamic_ref.load_state_dict(to_timm(dynamic.state_dict(), dynamic.config))
    assert maxdiff(dynamic(y), dynamic_ref(y)) <= TOL


@torch.no_grad()
def test_checkpoint_resampled_at_load_equals_timms_set_input_size(tmp_path):
    for arch, size in (("deit_tiny_distilled_patch16_224", 160), ("vit_small_patch14_reg4_dinov2", 168)):
        model = model_of(arch)
        folder = vitzoo.save_pretrained(model, tmp_path / arch)
        ours = vitzoo.create_model(f"local-dir:{folder}", pretrained=True, img_size=size).eval()
        assert ours.load_report.resized.keys() == {"pos_embed"}
        ref = timm_like(arch, model)
        ref.set_input_size(img_size=(size, size))
        y = batch(size, n=1)
        assert maxdiff(ours(y), ref(y)) <= TOL, arch


@torch.no_grad()
def test_dinov3_takes_any_multiple_of_16():
    arch = "vit_small_plus_patch16_dinov3_qkvb"
    model = model_of(arch)
    ref = timm_like(arch, model)
    for size in ((224, 320), (160, 160), (256, 256)):
        y = batch(*size, n=1)
        assert maxdiff(model(y), ref(y)) <= TOL, size
    resized = build(arch)
    resized.set_input_size(320)
    assert resized.config.img_size == (320, 320) and resized.pos_embed is None
    y = batch(320, n=1)
    assert torch.equal(resized(y), model(y))
    with pytest.raises(vitzoo.InputError, match="divisible by the patch size 16"):
        model(batch(250, n=1))


# --------------------------------------------------------------------------------------------- meta device
@pytest.mark.parametrize("arch", FAMILY_ARCHS)
@torch.no_grad()
def test_meta_device_loading_leaves_nothing_on_meta(arch, tmp_path):
    """Loading builds on the meta device and assigns the checkpoint's tensors; a new head (DeiT: both heads) is made
    and zeroed on the real device."""
    model = model_of(arch)
    folder = vitzoo.save_pretrained(model, tmp_path / "saved")
    loaded = vitzoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    assert not any(t.is_meta for t in [*loaded.state_dict().values(), *loaded.buffers()])
    assert same_weights(loaded, model)
    new_head = vitzoo.create_model(f"local-dir:{folder}", pretrained=True, num_classes=7).eval()
    assert not any(t.is_meta for t in [*new_head.state_dict().values(), *new_head.buffers()])
    heads = [k for k in new_head.state_dict() if k.startswith(("head.", "head_dist."))]
    assert len(heads) == (4 if model.config.distilled else 2)
    assert set(heads) <= new_head.load_report.reinitialized.keys()
    assert not any(torch.count_nonzero(new_head.get_parameter(k)) for k in heads)  # zeros, as the paper does
    logits = new_head(inputs(model, n=1))
    assert logits.shape == (1, 7) and not torch.count_nonzero(logits)


# ------------------------------------------------------------------------------------------------ torch.compile
@pytest.mark.parametrize("arch", fast_first(PREFIX, ["vit_small_plus_patch16_dinov3_qkvb"]))
@torch.no_grad()
def test_compiles_without_graph_breaks(arch):
    """fullgraph=True fails on any graph break; the eager backend checks the tracing only (inductor is slow on CPU)."""
    model = model_of(arch)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = inputs(model, n=1)
    assert maxdiff(compiled(x), model(x)) <= 1e-5


# ------------------------------------------------------------------------------------------------ dtype matrix
# Max |half - fp32| / max |fp32| of the output, measured on CPU with these random weights (docs/performance.md):
# bf16 (8 mantissa bits) 0.4% to 1.9% (DINOv3), fp16 (11 bits) 0.05% to 0.12%; a cast that loses a table or
# overflows gives NaN or errors of order 1. Two families in the fast suite (half precision is slow on CPU).
HALF_TOL = {torch.bfloat16: 0.04, torch.float16: 0.005}
FAST_HALF = ("deit_tiny_distilled_patch16_224", "vit_small_patch16_dinov3")


@pytest.mark.parametrize("dtype", list(HALF_TOL), ids=["bf16", "fp16"])
@pytest.mark.parametrize("arch", [a if a in FAST_HALF else pytest.param(a, marks=pytest.mark.slow) for a in PREFIX])
@torch.no_grad()
def test_half_precision_is_close_to_fp32(arch, dtype):
    model = model_of(arch)
    x = inputs(model, n=1)
    want = model(x)
    got = copy.deepcopy(model).to(dtype)(x.to(dtype))
    assert got.dtype == dtype and not got.isnan().any() and got.isfinite().all()
    assert maxdiff(got, want) / want.abs().max().item() <= HALF_TOL[dtype]
