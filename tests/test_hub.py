"""Pretrained loading through the real huggingface_hub client against the loopback Hub in tests/hub_server.py.

Repos are written by the peer libraries themselves (timm's save_for_hf, transformers' save_pretrained), and the
numbers are compared with the peer's model on the same weights (max abs difference <= 1e-4).
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
import torch
import transformers
from safetensors.torch import load_file

import vitzoo
from conftest import (
    TOL,
    batch,
    cli,
    cli_env,
    folder_files,
    free_port,
    maxdiff,
    randomize_,
    save_open_clip,
    save_tiny_clip,
    timm_repo,
)

TAG = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
CLIP_TAG = "vit_base_patch16_clip_224.openai"


@torch.no_grad()
def test_tag_downloads_loads_strictly_and_carries_facts(hub, tmp_path):
    ref, files = timm_repo("vit_tiny_patch16_224", tmp_path, 1000)
    hub.add_commit(f"timm/{TAG}", files)
    model = vitzoo.create_model(TAG, pretrained=True).eval()
    assert maxdiff(model(batch()), ref(batch())) <= TOL
    report = model.load_report
    assert report.format == "timm" and report.loaded == len(ref.state_dict())
    assert report.files[0].endswith("model.safetensors")  # safetensors preferred over the .bin beside it
    assert not (report.missing or report.unexpected or report.resized or report.reinitialized or report.dropped)
    facts = model.pretrained_cfg
    assert facts.name == TAG and facts.top1 == 75.454 and facts.mean == (0.5, 0.5, 0.5) and facts.crop_pct == 0.9
    assert hub.count(f"timm/{TAG}/resolve/main/pytorch_model.bin") == 0  # this repo only: the Hub serves the session


@torch.no_grad()
def test_bare_arch_with_pretrained_true_takes_the_default_tag_and_resizes(hub, tmp_path):
    ref, files = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, seed=1)
    hub.add_commit(f"timm/{TAG}", files)
    model = vitzoo.create_model("ViT-Ti/16", pretrained=True, img_size=(320, 448), num_classes=5)
    assert model.pretrained_cfg.name == TAG
    report = model.load_report
    assert report.resized == {"pos_embed": ((1, 197, 192), (1, 561, 192))}
    assert set(report.reinitialized) == {"head.weight", "head.bias"} and not model.head.weight.any()
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    ref384 = timm.create_model("vit_tiny_patch16_224", img_size=(320, 448), num_classes=5).eval()
    sd = checkpoint_filter_fn(ref.state_dict(), ref384)
    sd["head.weight"], sd["head.bias"] = torch.zeros(5, 192), torch.zeros(5)
    ref384.load_state_dict(sd)
    assert maxdiff(model.eval().forward_features(batch(320, 448)), ref384.forward_features(batch(320, 448))) <= TOL


@torch.no_grad()
def test_falls_back_to_pytorch_model_bin(hub, tmp_path):
    ref, files = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, safe=False, seed=2)
    assert "model.safetensors" not in files
    hub.add_commit(f"timm/{TAG}", files)
    model = vitzoo.create_model(TAG, pretrained=True).eval()
    assert model.load_report.files[0].endswith("pytorch_model.bin")
    assert maxdiff(model(batch()), ref(batch())) <= TOL


@torch.no_grad()
def test_hf_hub_timm_repo_reads_its_config(hub, tmp_path):
    ref, files = timm_repo("vit_small_patch16_224", tmp_path, 21843, seed=3, depth=2)  # model_args: depth 2
    hub.add_commit("timm/vit_small_patch16_224.augreg_in21k", files)
    model = vitzoo.create_model("hf-hub:timm/vit_small_patch16_224.augreg_in21k", pretrained=True).eval()
    assert model.config.num_classes == 21843 and model.config.embed_dim == 384 and model.config.depth == 2
    assert maxdiff(model(batch()), ref(batch())) <= TOL
    assert model.pretrained_cfg.interpolation == "bicubic"


def _google_repo(tmp_path: Path, cls, **cfg) -> tuple[torch.nn.Module, dict[str, bytes]]:
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        hidden_size=192, num_hidden_layers=3, num_attention_heads=3, intermediate_size=768, **cfg
    )
    model = randomize_(cls(config), seed=4).eval()
    model.save_pretrained(tmp_path / "hf")
    return model, folder_files(tmp_path / "hf")


@torch.no_grad()
def test_google_classifier_repo_with_eps_1e12_and_labels(hub, tmp_path):
    labels = {i: f"class {i}" for i in range(10)}
    ref, files = _google_repo(
        tmp_path, transformers.ViTForImageClassification, id2label=labels, label2id={v: k for k, v in labels.items()}
    )
    assert transformers.ViTConfig.from_pretrained(tmp_path / "hf").layer_norm_eps == 1e-12
    hub.add_commit("google/vit-tiny-test-224", files)
    model = vitzoo.create_model("hf-hub:google/vit-tiny-test-224", pretrained=True).eval()
    assert model.config.layer_norm_eps == 1e-12 and model.config.num_classes == 10
    assert model.load_report.format == "transformers"
    assert maxdiff(model(batch()), ref(pixel_values=batch()).logits) <= TOL
    facts = model.pretrained_cfg
    assert (facts.crop_pct, facts.crop_mode, facts.interpolation) == (1.0, "squash", "bilinear")
    # and at another size: transformers' interpolate_pos_encoding is bicubic without antialiasing, as configured
    dyn = vitzoo.create_model("hf-hub:google/vit-tiny-test-224", pretrained=True, dynamic_img_size=True).eval()
    x = batch(320, 448)
    assert maxdiff(dyn(x), ref(pixel_values=x, interpolate_pos_encoding=True).logits) <= TOL


@torch.no_grad()
def test_google_in21k_vitmodel_pooler_is_the_pre_logits_layer(hub, tmp_path):
    ref, files = _google_repo(tmp_path, transformers.ViTModel)
    # the real -in21k repos also have pytorch_model.bin: same (file) key names
    sd = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert "pooler.dense.weight" in sd
    torch.save(sd, tmp_path / "pytorch_model.bin")
    files = {"config.json": files["config.json"], "pytorch_model.bin": (tmp_path / "pytorch_model.bin").read_bytes()}
    hub.add_commit("google/vit-tiny-test-224-in21k", files)
    model = vitzoo.create_model("hf-hub:google/vit-tiny-test-224-in21k", pretrained=True).eval()
    assert model.config.representation_size == 192 and model.config.num_classes == 0
    out = ref(pixel_values=batch())
    assert maxdiff(model(batch()), out.pooler_output) <= TOL
    assert maxdiff(model.forward_features(batch()), out.last_hidden_state) <= TOL
    # a model without the pre-logits layer drops it and says so
    plain = vitzoo.create_model(
        "vit_tiny_patch16_224", depth=3, num_classes=0, pretrained="hf-hub:google/vit-tiny-test-224-in21k"
    )
    assert "pre_logits.fc.weight" in plain.load_report.dropped


@torch.no_grad()
def test_revision_pins_a_commit(hub, tmp_path):
    ref_old, files_old = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, seed=5)
    old = hub.add_commit(f"timm/{TAG}", files_old)
    ref_new, files_new = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, seed=6)
    hub.add_commit(f"timm/{TAG}", files_new)
    pinned = vitzoo.create_model(TAG, pretrained=True, revision=old).eval()
    latest = vitzoo.create_model(TAG, pretrained=True).eval()
    assert maxdiff(pinned(batch()), ref_old(batch())) <= TOL
    assert maxdiff(latest(batch()), ref_new(batch())) <= TOL
    with pytest.raises(vitzoo.HubError, match="revision 'v9' not found"):
        vitzoo.create_model(TAG, pretrained=True, revision="v9")


@torch.no_grad()
def test_offline_uses_the_cache_with_zero_requests(hub, tmp_path, monkeypatch):
    ref, files = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, seed=7)
    hub.add_commit(f"timm/{TAG}", files)
    vitzoo.create_model(TAG, pretrained=True)  # fills the cache
    before = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = vitzoo.create_model(TAG, pretrained=True).eval()
    assert len(hub.requests) == before, hub.requests[before:]
    assert maxdiff(model(batch()), ref(batch())) <= TOL
    with pytest.raises(vitzoo.HubError, match=r"HF_HUB_OFFLINE=1 is set.*vitzoo download"):
        vitzoo.create_model("vit_small_patch16_224", pretrained=True)
    assert len(hub.requests) == before


def test_unreachable_hub_and_missing_or_gated_repos(hub, tmp_path, monkeypatch):
    _, files = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, seed=8)
    hub.add_commit("timm/vit_small_patch16_224.augreg_in21k_ft_in1k", files, gated=True)
    with pytest.raises(vitzoo.HubError, match=r"gated repo.*HF_TOKEN"):
        vitzoo.create_model("vit_small_patch16_224", pretrained=True)
    with pytest.raises(vitzoo.HubError, match="not found"):
        vitzoo.create_model("hf-hub:nobody/nothing", pretrained=True)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens: refused
    with pytest.raises(vitzoo.HubError, match=r"cannot be reached.*HF_ENDPOINT.*vitzoo download"):
        vitzoo.create_model(TAG, pretrained=True)


@pytest.mark.slow  # interpreter starts (about 2 s each); the next test runs the same loads in threads of this process
def test_cli_download_and_parallel_processes_share_one_cached_copy(hub, tmp_path):
    ref, files = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, seed=9)
    hub.add_commit(f"timm/{TAG}", files)
    env = cli_env(HF_ENDPOINT=hub.url, HF_HUB_CACHE=str(tmp_path / "shared-cache"))
    code = f"import vitzoo; m = vitzoo.create_model({TAG!r}, pretrained=True); print(m.load_report.loaded)"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outs]
    assert {o[0].strip() for o in outs} == {str(len(ref.state_dict()))}
    blobs = list((tmp_path / "shared-cache").glob("models--timm--*/blobs/*"))
    assert len([b for b in blobs if b.stat().st_size > 1_000_000]) == 1  # one copy of the weights

    out = cli("download", TAG, "--to", tmp_path / "dl")  # the command's code path, in this process
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == tmp_path / "dl" / "model.safetensors"
    assert (tmp_path / "dl" / "config.json").is_file()
    out = cli("download", "vit_huge_patch14_224.mae")
    assert out.returncode == 2 and "not found" in out.stderr


def test_cli_download_and_parallel_loads_share_one_cached_copy(hub, tmp_path, monkeypatch):
    """The test above with threads of this process for the processes: the cache's file locks are taken per open file,
    so threads wait for each other as processes do."""
    ref, files = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, seed=9)
    hub.add_commit(f"timm/{TAG}", files)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "shared-cache"))
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        loads = [pool.submit(vitzoo.create_model, TAG, pretrained=True) for _ in range(3)]
        assert {f.result().load_report.loaded for f in loads} == {len(ref.state_dict())}
    blobs = list((tmp_path / "shared-cache").glob("models--timm--*/blobs/*"))
    assert len([b for b in blobs if b.stat().st_size > 1_000_000]) == 1  # one copy of the weights

    out = cli("download", TAG, "--to", tmp_path / "dl")
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == tmp_path / "dl" / "model.safetensors"
    assert (tmp_path / "dl" / "config.json").is_file()
    out = cli("download", "vit_huge_patch14_224.mae")
    assert out.returncode == 2 and "not found" in out.stderr


@torch.no_grad()
def test_load_pretrained_by_tag_and_config_only_repo_creation(hub, tmp_path):
    ref, files = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, seed=10)
    hub.add_commit(f"timm/{TAG}", files)
    model = vitzoo.create_model("vit_tiny_patch16_224", num_classes=1000)
    report = vitzoo.load_pretrained(model, TAG)
    assert report.source == TAG and model.pretrained_cfg.name == TAG
    assert maxdiff(model.eval()(batch()), ref(batch())) <= TOL
    weights_before = hub.count("model.safetensors")
    shell = vitzoo.create_model(f"hf-hub:timm/{TAG}")  # architecture from config.json, random weights
    assert shell.config.num_classes == 1000 and shell.load_report is None
    assert hub.count("model.safetensors") == weights_before  # only config.json was fetched


def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@torch.no_grad()
def test_cli_download_text_prefetches_both_towers_and_the_tokenizer(hub, tmp_path, monkeypatch):
    """A plain download of a CLIP repo loads the model offline but not its tokenizer; ``--text`` fetches what
    ``create_image_text_model`` and the tokenizer read, so both work with ``HF_HUB_OFFLINE=1`` and no request: a
    transformers repo (its tokenizer.json), and a timm CLIP tag whose repo carries open_clip's files."""
    hub.add_commit("openai/clip-tiny", folder_files(Path(save_tiny_clip(tmp_path / "clip").removeprefix("local-dir:"))))
    want = vitzoo.create_image_text_model(f"local-dir:{tmp_path / 'clip'}").encode_text(["a photo of a cat"])
    vision = {"image_size": 32, "layers": 1, "width": 64, "head_width": 16, "patch_size": 8}
    text = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}
    save_open_clip(tmp_path / "open_clip", "ViT-B-16-quickgelu", vision, text, embed_dim=16)
    timm_config = b'{"architecture": "vit_base_patch16_clip_224", "num_classes": 512}'
    hub.add_commit(f"timm/{CLIP_TAG}", {**folder_files(tmp_path / "open_clip"), "config.json": timm_config})

    assert cli("download", "hf-hub:openai/clip-tiny").returncode == 0
    with monkeypatch.context() as offline:
        _offline(offline)
        model = vitzoo.create_image_text_model("hf-hub:openai/clip-tiny")  # the towers: yes
        with pytest.raises(vitzoo.HubError, match="HF_HUB_OFFLINE=1 is set"):
            model.encode_text(["a photo of a cat"])  # the tokenizer: no

    for name in ("hf-hub:openai/clip-tiny", CLIP_TAG):
        out = cli("download", name, "--text")
        assert out.returncode == 0, out.stderr
        assert Path(out.stdout.strip()).is_file() and "tokenizer" in out.stderr
    before = len(hub.requests)
    _offline(monkeypatch)
    model = vitzoo.create_image_text_model("hf-hub:openai/clip-tiny")
    assert maxdiff(model.encode_text(["a photo of a cat"]), want) <= TOL
    tag = vitzoo.create_image_text_model(CLIP_TAG)
    assert tag.encode_text(["a photo of a cat"]).shape == (1, 16) and tag.load_report.format.startswith("open_clip")
    assert len(hub.requests) == before, hub.requests[before:]


def test_cli_download_text_refusals(hub, tmp_path):
    _, files = timm_repo("vit_tiny_patch16_224", tmp_path, 1000, seed=11)
    hub.add_commit(f"timm/{TAG}", files)
    out = cli("download", TAG, "--text")
    assert out.returncode == 2 and out.stderr.startswith("vitzoo: error:") and "no text tower" in out.stderr
    out = cli("download", TAG, "--text", "--to", tmp_path / "dl")
    assert out.returncode == 2 and "leave out --to" in out.stderr and not (tmp_path / "dl").exists()
