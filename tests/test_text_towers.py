"""Image-text models: both towers, loaded by ``create_image_text_model``, against the libraries that define them.

Same weights in, same numbers out (max abs diff <= ``TOL`` = 1e-4): ``encode_text``, ``encode_image`` and the
logits equal transformers' ``CLIPModel`` (QuickGELU and GELU, both end-of-text rules) / ``SiglipModel`` /
``Siglip2Model`` (``get_text_features``, ``get_image_features``, ``logits_per_image``) and open_clip's ``CLIP`` /
``CustomTextCLIP`` (``encode_text``, ``encode_image``, ``get_logits``). Each peer model is built from a tiny config,
given random weights (``randomize_``), written by its own save function and served by the loopback Hub; token ids come
from the peer's own tokenizer (CLIP's real BPE; a word-level stand-in for SigLIP's, which cannot be downloaded).
Also: the message of an image-only repo, meta-device loading, bf16, ``torch.compile`` and the ONNX text tower.
"""

from __future__ import annotations

import shutil

import numpy as np
import open_clip
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, CLIPConfig, CLIPModel, Siglip2Config, Siglip2Model, SiglipConfig, SiglipModel

import vitzoo
from conftest import (
    TEXTS,
    TOL,
    batch,
    clip_tokenizer,
    fast_first,
    folder_files,
    maxdiff,
    randomize_,
    save_open_clip,
    tiny_timm_trunk,
    word_tokenizer,
)
from vitzoo.models.layers import Block
from vitzoo.models.text import TextConfig, TextTransformer
from vitzoo.weights.text_repos import TEXT_TOWER_REPOS, text_tower_repo

VISION = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
CLIP_TEXT = dict(TEXT, vocab_size=49408, max_position_embeddings=77)  # OpenAI's BPE and context
SIGLIP_CONTEXT = 16


def _hf_repo(hub, tmp_path, repo: str, model: torch.nn.Module, tokenizer) -> torch.nn.Module:
    """``model`` with random weights, saved with ``tokenizer`` by transformers and served as ``repo``."""
    randomize_(model).eval()
    folder = tmp_path / repo.replace("/", "--")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    hub.add_commit(repo, folder_files(folder))
    return model


def _patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Images (B, C, H, W) as Siglip2ImageProcessor's patches: (B, h * w, P * P * C)."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // patch, patch, W // patch, patch).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // patch) * (W // patch), patch * patch * C)


# --------------------------------------------------------------------------------------------------- transformers
# OpenAI's repos: QuickGELU, the legacy eos_token_id 2 (argmax), padded with <|endoftext|>; LAION's: GELU, the
# end-of-text id 49407 (its first position), padded with "!" (id 0)
CLIP_CASES = {
    "openai": (dict(hidden_act="quick_gelu", eos_token_id=2), "<|endoftext|>", "argmax"),
    "laion": (dict(hidden_act="gelu", eos_token_id=49407), "!", "eos"),
}


@pytest.mark.parametrize("case", fast_first(CLIP_CASES))
@torch.no_grad()
def test_transformers_clip_matches(case, hub, tmp_path):
    text, pad, pool = CLIP_CASES[case]
    config = CLIPConfig(
        vision_config=dict(VISION, image_size=32, patch_size=8, hidden_act=text["hidden_act"]),
        text_config={**CLIP_TEXT, **text},
        projection_dim=16,
    )
    hf = _hf_repo(hub, tmp_path, "org/clip-like", CLIPModel(config), clip_tokenizer(pad))
    inputs = AutoTokenizer.from_pretrained(tmp_path / "org--clip-like")(
        TEXTS, padding="max_length", max_length=77, return_tensors="pt"
    )
    model = vitzoo.create_image_text_model("hf-hub:org/clip-like").eval()
    assert (model.family, model.text.config.pool, model.text.config.causal) == ("clip", pool, True)
    assert model.text.config.act_layer == model.visual.config.act_layer == text["hidden_act"]
    x = batch(32, n=3)
    ids = inputs.input_ids
    assert maxdiff(model.encode_text(ids), hf.get_text_features(**inputs).pooler_output) <= TOL  # causal: mask moot
    assert maxdiff(model.encode_image(x), hf.get_image_features(pixel_values=x).pooler_output) <= TOL
    assert maxdiff(model(x, ids), hf(**inputs, pixel_values=x).logits_per_image) <= TOL
    report = model.load_report
    assert report.format == "transformers-clip + transformers-text" and not report.missing and not report.dropped
    assert report.loaded == len(model.state_dict())


@torch.no_grad()
def test_clip_pools_at_the_end_of_text_rule_of_its_config(tmp_path):
    """eos_token_id 2 pools at argmax(ids), any other id at its first position: on ids where the two differ, each
    config equals transformers and the two embeddings differ."""
    ids = torch.randint(3, 64, (3, 12), generator=torch.Generator().manual_seed(0))
    ids[:, 6] = 1
    ids[0, 2] = 1  # an earlier end-of-text token in one row
    out = {}
    for eos in (2, 1):
        text = dict(TEXT, vocab_size=64, max_position_embeddings=12, eos_token_id=eos, bos_token_id=0, pad_token_id=1)
        config = CLIPConfig(vision_config=dict(VISION, image_size=32, patch_size=8), text_config=text)
        hf = randomize_(CLIPModel(config)).eval()
        hf.save_pretrained(tmp_path / str(eos))
        model = vitzoo.create_image_text_model(f"local-dir:{tmp_path / str(eos)}").eval()
        out[eos] = model.encode_text(ids)
        assert maxdiff(out[eos], hf.get_text_features(input_ids=ids).pooler_output) <= TOL
    assert maxdiff(out[2], out[1]) > 1e-2


@pytest.mark.parametrize("family", ["siglip", "siglip2"])
@torch.no_grad()
def test_transformers_siglip_matches_on_input_ids_alone(family, hub, tmp_path):
    """SigLIP's text tower attends to the padding as it was trained: vitzoo equals transformers given the ids alone;
    the attention mask transformers 5's tokenizer also returns would change the embedding."""
    text = dict(TEXT, vocab_size=64, max_position_embeddings=SIGLIP_CONTEXT, projection_size=64, pad_token_id=0)
    tok = word_tokenizer(SIGLIP_CONTEXT)
    if family == "siglip":
        config = SiglipConfig(vision_config=dict(VISION, image_size=32, patch_size=8), text_config=text)
        hf = _hf_repo(hub, tmp_path, "google/siglip-like", SiglipModel(config), tok)
    else:
        config = Siglip2Config(vision_config=dict(VISION, num_patches=16, patch_size=8), text_config=text)
        hf = _hf_repo(hub, tmp_path, "google/siglip-like", Siglip2Model(config), tok)
    inputs = AutoTokenizer.from_pretrained(tmp_path / "google--siglip-like")(
        TEXTS, padding="max_length", max_length=SIGLIP_CONTEXT, return_tensors="pt"
    )
    model = vitzoo.create_image_text_model("hf-hub:google/siglip-like").eval()
    assert model.family == "siglip" and (model.text.config.pool, model.text.config.causal) == ("last", False)
    ids, x = inputs.input_ids, batch(32, n=3)
    ref = hf.get_text_features(input_ids=ids).pooler_output
    assert maxdiff(model.encode_text(ids), ref) <= TOL
    assert maxdiff(hf.get_text_features(**inputs).pooler_output, ref) > 1e-2  # the mask matters
    if family == "siglip":
        image = hf.get_image_features(pixel_values=x).pooler_output
        logits = hf(input_ids=ids, pixel_values=x).logits_per_image
    else:  # NaFlex on whole images: every patch real
        pixels = dict(
            pixel_values=_patchify(x, 8),
            pixel_attention_mask=torch.ones(3, 16, dtype=torch.long),
            spatial_shapes=torch.tensor([[4, 4]] * 3),
        )
        image = hf.get_image_features(**pixels).pooler_output
        logits = hf(input_ids=ids, **pixels).logits_per_image
    assert maxdiff(model.encode_image(x), image) <= TOL
    assert maxdiff(model(x, ids), logits) <= TOL  # with the logit bias
    assert model.logit_bias is not None and model.load_report.format == "transformers-siglip + transformers-text"


# ------------------------------------------------------------------------------------------------------ open_clip
CLIP_VISION = {"image_size": 32, "layers": 2, "width": 64, "head_width": 16, "patch_size": 8}
OPEN_CLIP_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}


@pytest.mark.parametrize(
    ("base", "text"),
    [("ViT-B-16-quickgelu", OPEN_CLIP_TEXT), ("ViT-B-16", {**OPEN_CLIP_TEXT, "ls_init_value": 0.1})],
    ids=["quickgelu", "gelu-layer-scale"],
)
@torch.no_grad()
def test_open_clip_clip_matches(base, text, hub, tmp_path):
    ref = save_open_clip(tmp_path / "repo", base, CLIP_VISION, text, embed_dim=16)
    hub.add_commit("laion/CLIP-like", folder_files(tmp_path / "repo"))
    tokenizer = open_clip.get_tokenizer("ViT-B-16")  # open_clip's own: pads with 0
    model = vitzoo.create_image_text_model("hf-hub:laion/CLIP-like", tokenizer=tokenizer).eval()
    assert model.text.config.act_layer == ("quick_gelu" if "quickgelu" in base else "gelu")
    ids, x = tokenizer(TEXTS), batch(32, n=3)
    assert maxdiff(model.encode_text(TEXTS), ref.encode_text(ids)) <= TOL
    assert maxdiff(model.encode_image(x), ref.encode_image(x)) <= TOL
    assert maxdiff(model(x, TEXTS), ref.get_logits(x, ids)[0]) <= TOL
    assert model.load_report.format == "open_clip + open_clip-text"
    assert model.load_report.files[0].endswith("open_clip_model.safetensors")


SIGLIP_TRUNK = "vit_base_patch16_siglip_224"


@pytest.mark.parametrize("base", ["ViT-B-16-SigLIP", "ViT-B-16-SigLIP2"])
@torch.no_grad()
def test_open_clip_siglip_matches(base, hub, tmp_path, monkeypatch):
    """CustomTextCLIP (the text tower under ``text.``, a projection with bias, a logit bias) with a timm image
    tower; SigLIP 2's text tower uses tanh GELU (``act_kwargs``), SigLIP's open_clip config erf GELU."""
    tiny_timm_trunk(monkeypatch, SIGLIP_TRUNK, 32)
    vision = {"image_size": 32, "timm_model_name": SIGLIP_TRUNK, "timm_pool": "map", "timm_proj": "none"}
    text = {**open_clip.get_model_config(base)["text_cfg"], "context_length": SIGLIP_CONTEXT, "vocab_size": 64}
    text.update(width=32, heads=2, layers=2)
    ref = save_open_clip(tmp_path / "repo", base, vision, text, embed_dim=64)
    hub.add_commit("timm/ViT-SigLIP-like", folder_files(tmp_path / "repo"))
    model = vitzoo.create_image_text_model("hf-hub:timm/ViT-SigLIP-like").eval()
    assert model.text.config.act_layer == ("gelu_tanh" if "SigLIP2" in base else "gelu")
    ids = torch.randint(0, 64, (3, SIGLIP_CONTEXT), generator=torch.Generator().manual_seed(0))
    x = batch(32, n=2)
    assert maxdiff(model.encode_text(ids), ref.encode_text(ids)) <= TOL
    assert maxdiff(model.encode_image(x), ref.encode_image(x)) <= TOL
    assert maxdiff(model(x, ids), ref.get_logits(x, ids)[0]) <= TOL


@torch.no_grad()
def test_a_timm_clip_tag_finds_the_open_clip_files_in_its_repo(hub, tmp_path):
    """timm's CLIP tag repos carry open_clip's files beside timm's image tower: the tag loads both towers from them
    (open_clip's config decides both towers: QuickGELU for OpenAI's weights), ``create_model`` the image tower."""
    ref = save_open_clip(tmp_path / "repo", "ViT-B-16-quickgelu", CLIP_VISION, OPEN_CLIP_TEXT, embed_dim=16)
    timm_config = b'{"architecture": "vit_base_patch16_clip_224", "num_classes": 512}'
    hub.add_commit(
        "timm/vit_base_patch16_clip_224.openai", {**folder_files(tmp_path / "repo"), "config.json": timm_config}
    )
    model = vitzoo.create_image_text_model("vit_base_patch16_clip_224.openai").eval()
    assert model.pretrained_cfg.license == vitzoo.get_pretrained_cfg("vit_base_patch16_clip_224.openai").license
    ids = open_clip.get_tokenizer("ViT-B-16")(TEXTS)
    assert maxdiff(model.encode_text(ids), ref.encode_text(ids)) <= TOL
    assert maxdiff(model.encode_image(batch(32)), ref.encode_image(batch(32))) <= TOL
    assert isinstance(vitzoo.create_model("vit_base_patch16_clip_224.openai", device="meta"), vitzoo.VisionTransformer)


# --------------------------------------------------------------------------------------------- image-only repos
def test_an_image_only_tag_says_so_and_where_its_text_tower_is(hub, tmp_path):
    hub.add_commit("timm/vit_base_patch16_siglip_224.webli", {"config.json": b'{"architecture": "x"}'})
    with pytest.raises(vitzoo.CheckpointError, match="no text tower") as err:
        vitzoo.create_image_text_model("vit_base_patch16_siglip_224.webli")
    assert "create_image_text_model('hf-hub:timm/ViT-B-16-SigLIP')" in str(err.value)
    assert "\n" not in str(err.value)


def test_the_text_tower_table_names_registered_tags_and_open_clips_repos():
    """Each key is the repo of a registered timm tag, each value a repo open_clip 3.3 loads that checkpoint from."""
    from open_clip import pretrained as oc

    open_clip_repos = {
        cfg["hf_hub"].rstrip("/")
        for name in open_clip.list_models()
        for tag in oc.list_pretrained_tags_by_model(name)
        if (cfg := oc.get_pretrained_cfg(name, tag)).get("hf_hub")
    }
    tag_repos = {cfg.hf_hub_id for cfg in (vitzoo.get_pretrained_cfg(n) for n in vitzoo.list_pretrained())}
    assert set(TEXT_TOWER_REPOS) <= tag_repos
    assert set(TEXT_TOWER_REPOS.values()) <= open_clip_repos
    assert text_tower_repo("timm/vit_base_patch16_siglip_gap_224.webli") == "timm/ViT-B-16-SigLIP"


def test_a_dinov2_repo_holds_no_text_tower(hub, tmp_path):
    from transformers import Dinov2Config, Dinov2Model

    Dinov2Model(Dinov2Config(**VISION, image_size=28, patch_size=14)).save_pretrained(tmp_path / "dino")
    hub.add_commit("facebook/dinov2-like", folder_files(tmp_path / "dino"))
    with pytest.raises(vitzoo.CheckpointError) as err:
        vitzoo.create_image_text_model("hf-hub:facebook/dinov2-like")
    message = str(err.value)
    assert "holds no text tower" in message and "transformers 'dinov2' image model" in message
    assert "create_model('hf-hub:facebook/dinov2-like') loads the image tower" in message


# ------------------------------------------------------------------------------------ loading, dtypes, graphs
@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A transformers CLIPModel folder (with its tokenizer) and the model that wrote it."""
    folder = tmp_path_factory.mktemp("clip") / "clip"
    config = CLIPConfig(
        vision_config=dict(VISION, image_size=32, patch_size=8), text_config=CLIP_TEXT, projection_dim=16
    )
    hf = randomize_(CLIPModel(config)).eval()
    hf.save_pretrained(folder)
    clip_tokenizer().save_pretrained(folder)
    return hf, folder


def _ids(folder) -> torch.Tensor:
    return AutoTokenizer.from_pretrained(folder)(
        TEXTS, padding="max_length", max_length=77, return_tensors="pt"
    ).input_ids


def test_loading_assigns_the_checkpoint_on_the_meta_device(clip_folder, monkeypatch):
    """No random init runs (the towers are built on the meta device); every tensor is the checkpoint's."""

    def never(self):
        raise AssertionError("init_weights ran")

    monkeypatch.setattr(TextTransformer, "init_weights", never)
    monkeypatch.setattr(vitzoo.VisionTransformer, "init_weights", never)
    hf, folder = clip_folder
    model = vitzoo.create_image_text_model(f"local-dir:{folder}")
    assert not any(t.is_meta for t in model.state_dict().values())
    assert torch.equal(model.text.token_embed.weight, hf.text_model.embeddings.token_embedding.weight)
    assert torch.equal(model.logit_scale, hf.logit_scale)


def test_a_strict_load_refuses_a_missing_text_tensor(tmp_path, clip_folder):
    folder = shutil.copytree(clip_folder[1], tmp_path / "broken")
    weights = load_file(folder / "model.safetensors")
    del weights["text_model.final_layer_norm.weight"]
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(vitzoo.CheckpointError, match=r"strict load failed: missing \['text.norm.weight'\]"):
        vitzoo.create_image_text_model(f"local-dir:{folder}")
    model = vitzoo.create_image_text_model(f"local-dir:{folder}", strict=False)
    assert model.load_report.missing == ["text.norm.weight"]


def test_older_files_position_ids_are_dropped_and_reported(tmp_path, clip_folder):
    folder = shutil.copytree(clip_folder[1], tmp_path / "older")
    weights = load_file(folder / "model.safetensors")
    weights["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    save_file(weights, str(folder / "model.safetensors"))
    report = vitzoo.create_image_text_model(f"local-dir:{folder}").load_report
    assert "buffer of token indices" in report.dropped["text_model.embeddings.position_ids"]


@torch.no_grad()
def test_an_open_clip_bin_alone_loads_without_unpickling_code(tmp_path):
    """open_clip's ``open_clip_pytorch_model.bin`` (read with ``weights_only=True``) when there is no safetensors."""
    ref = save_open_clip(tmp_path / "repo", "ViT-B-16-quickgelu", CLIP_VISION, OPEN_CLIP_TEXT, embed_dim=16)
    (tmp_path / "repo" / "open_clip_model.safetensors").unlink()
    model = vitzoo.create_image_text_model(f"local-dir:{tmp_path / 'repo'}").eval()
    assert model.load_report.files == [str(tmp_path / "repo" / "open_clip_pytorch_model.bin")]
    ids = open_clip.get_tokenizer("ViT-B-16")(TEXTS)
    assert maxdiff(model.encode_text(ids), ref.encode_text(ids)) <= TOL


@torch.no_grad()
def test_bf16_is_close_to_fp32(clip_folder):
    """Max |bf16 - fp32| / max |fp32| of the text and image embeddings (8 mantissa bits; 2 blocks)."""
    folder = clip_folder[1]
    fp32 = vitzoo.create_image_text_model(f"local-dir:{folder}").eval()
    bf16 = vitzoo.create_image_text_model(f"local-dir:{folder}", dtype="bf16").eval()
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    ids, x = _ids(folder), batch(32)
    for got, want in (
        (bf16.encode_text(ids), fp32.encode_text(ids)),
        (bf16.encode_image(x.bfloat16()), fp32.encode_image(x)),
    ):
        assert got.dtype == torch.bfloat16 and got.isfinite().all()
        assert maxdiff(got, want) / want.abs().max().item() <= 0.04


@torch.no_grad()
def test_the_text_tower_compiles_without_graph_breaks(clip_folder):
    model = vitzoo.create_image_text_model(f"local-dir:{clip_folder[1]}").eval()
    ids = _ids(clip_folder[1])
    torch._dynamo.reset()
    compiled = torch.compile(model.text, fullgraph=True, backend="eager")
    assert maxdiff(compiled(ids), model.text(ids)) <= 1e-5


@pytest.mark.slow  # inductor compiles C++: about 25 s on CPU
@torch.no_grad()
def test_the_text_tower_compiles_with_inductor(clip_folder):
    model = vitzoo.create_image_text_model(f"local-dir:{clip_folder[1]}").eval()
    ids = _ids(clip_folder[1])
    torch._dynamo.reset()
    assert maxdiff(torch.compile(model.text, fullgraph=True)(ids), model.text(ids)) <= 1e-5


@pytest.mark.slow  # ONNX export of an image tower runs in the fast suite (test_export.py)
@pytest.mark.parametrize("family", ["clip", "siglip"])
@torch.no_grad()
def test_onnx_text_tower_equals_pytorch(family, tmp_path):
    """The causal tower pooled at argmax (an int32 ArgMax in the graph) and the bidirectional one pooled last."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    siglip = family == "siglip"
    config = TextConfig(
        vocab_size=64, context_length=16, width=32, depth=2, num_heads=2, mlp_dim=64, embed_dim=16,
        causal=not siglip, pool="last" if siglip else "argmax", proj_bias=siglip,
        act_layer="gelu_tanh" if siglip else "quick_gelu", layer_norm_eps=1e-6 if siglip else 1e-5,
    )  # fmt: skip
    tower = randomize_(TextTransformer(config)).eval()
    path = vitzoo.export_text_onnx(tower, tmp_path / "text.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = torch.randint(0, 64, (3, 16), generator=torch.Generator().manual_seed(0))  # batch 3: dynamic
    (out,) = session.run(["text_embeds"], {"input_ids": ids.numpy()})
    assert out.dtype == np.float32 and maxdiff(torch.from_numpy(out), tower(ids)) <= TOL


# ---------------------------------------------------------------------------------------------- model surface
def test_texts_use_the_checkpoints_own_tokenizer_and_ids_need_none(clip_folder, tmp_path):
    """By default texts go through the checkpoint's own tokenizer (its files in the repo, read when first used): the
    ids transformers' tokenizer makes from the same folder. A folder without tokenizer files still takes ids; texts
    then fail naming the missing files."""
    hf, folder = clip_folder
    model = vitzoo.create_image_text_model(f"local-dir:{folder}").eval()
    with torch.no_grad():
        assert torch.equal(model.tokenize(TEXTS), _ids(folder))
        assert torch.equal(model.encode_text(TEXTS), model.encode_text(_ids(folder)))
        assert model.encode_text("a photo of a cat").shape == (1, 16)
    with pytest.raises(vitzoo.InputError, match="1 to 77"):
        model.encode_text(torch.zeros(1, 78, dtype=torch.long))
    bare = tmp_path / "bare"
    hf.save_pretrained(bare)  # weights and config only
    model = vitzoo.create_image_text_model(f"local-dir:{bare}").eval()
    with torch.no_grad():
        assert torch.equal(
            model.encode_text(_ids(folder)),
            vitzoo.create_image_text_model(f"local-dir:{folder}").encode_text(_ids(folder)),
        )
    with pytest.raises(vitzoo.CheckpointError, match=r"no tokenizer\.json"):
        model.encode_text(TEXTS)


def test_random_init_from_the_config_alone(clip_folder):
    model = vitzoo.create_image_text_model(f"local-dir:{clip_folder[1]}", pretrained=False)
    assert model.load_report is None and model.text.config.embed_dim == 16
    assert model.logit_scale.item() == pytest.approx(np.log(1 / 0.07))


def test_text_config_is_checked():
    with pytest.raises(vitzoo.ConfigError, match="pool='eos' needs the end-of-text id"):
        TextConfig(pool="eos")
    with pytest.raises(vitzoo.ConfigError, match="not divisible by num_heads"):
        TextConfig(width=30, num_heads=8)


@torch.no_grad()
def test_the_causal_mask_is_the_same_in_the_recording_path():
    """The explicit attention of ``capture_attention`` masks later tokens as the fused kernel does."""
    block = randomize_(Block(TextConfig(width=32, num_heads=2, mlp_dim=64).block_config())).eval()
    x = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(0))
    fused = block(x, causal=True)
    seen = []
    block.attn.record = seen.append
    assert maxdiff(block(x, causal=True), fused) <= 1e-6
    assert not seen[0].triu(1).any()  # no weight on later tokens
    assert maxdiff(block(x), fused) > 1e-3
