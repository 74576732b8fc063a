"""Shared helpers: one tolerance, seeded inputs, seeded peer models with fully random weights, the loopback Hub,
and the command line run as a real process."""

from __future__ import annotations

import contextlib
import functools
import gc
import gzip
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import types
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import huggingface_hub
import numpy as np
import pytest
import torch
from _pytest.mark.structures import ParameterSet
from PIL import Image
from safetensors.torch import load_file, save_file

import vitzoo
from vitzoo.cli import main
from vitzoo.features.transforms import create_transform, load_image

# Under pytest-xdist (the fast suite, see pytest_xdist_auto_num_workers) the workers share the cores: one intra-op
# thread each, so no worker's matmuls wait on threads the other worker's are holding.
torch.set_num_threads(max(1, torch.get_num_threads() // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


# Every full garbage collection walks every tracked object, and the libraries these tests import (torch, timm,
# transformers, open_clip, scikit-learn, ...) hold millions that are never garbage: a run made some 25 full
# collections of 0.2-0.4 s each, and pytest makes five more at exit, 6-8 s in all. gc.freeze() moves the objects alive
# now out of the collector's sight (they stay alive, as they would anyway); what the tests create is collected as
# before. Once here, after the imports above; once after the test modules are imported; and after each test module,
# once its garbage is collected (what is left: the libraries its tests imported, module-level caches), so nothing
# that is garbage is ever frozen.
gc.freeze()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): the fast suite (``-m "not slow"``) runs in one worker per core, so it stays
    within a minute on 2 cores; every other run, the full suite included, runs in this one process as before (its
    large models and multi-process tests each want the whole machine)."""
    return (os.cpu_count() or 1) if config.option.markexpr == "not slow" else 0


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()


@pytest.hookimpl(trylast=True)  # after pytest's own teardown has released the module's fixtures
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or getattr(nextitem, "module", None) is not getattr(item, "module", None):
        gc.collect()
        gc.freeze()


# Max abs difference allowed between vitzoo and a peer library (timm, transformers, torchvision) running the same
# weights on the same input in float32. Both compute the same function with a different order of operations (fused
# or explicit attention, one qkv matmul or three), which leaves differences of 1e-6 to 1e-5 on outputs of order 1.
# A wrong mapping (a swapped or transposed tensor, a missed bias, another interpolation) moves the outputs by 1e-2 or
# more with the random weights of ``randomize_``, so 1e-4 separates the two by two orders of magnitude either way.
TOL = 1e-4


def fast_first(cases: Iterable[Any], fast: int | Collection[Any] = 1) -> list[Any]:
    """A test matrix split between the two suites: the first ``fast`` cases (or the cases in the collection
    ``fast``) run in the fast suite (``pytest -m "not slow"``, the edit loop, within 60 s on 2 cores); the others are
    marked slow, so ``pytest`` (what CI runs) runs every case. Cases are values, tuples or ``pytest.param``s."""
    out = []
    for i, case in enumerate(cases):
        values = case.values if isinstance(case, ParameterSet) else case
        in_fast = i < fast if isinstance(fast, int) else values in fast
        if in_fast:
            out.append(case)
        elif isinstance(case, ParameterSet):
            out.append(pytest.param(*case.values, marks=[*case.marks, pytest.mark.slow], id=case.id))
        else:
            out.append(pytest.param(*(case if isinstance(case, tuple) else (case,)), marks=pytest.mark.slow))
    return out


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs difference of two tensors of the same shape (the shapes are checked first)."""
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return (a.float() - b.float()).abs().max().item()


def batch(h: int = 224, w: int | None = None, n: int = 2, seed: int = 0) -> torch.Tensor:
    """A seeded random image batch (n, 3, h, w); the same arguments give the same tensor in every test."""
    return torch.randn(n, 3, h, h if w is None else w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def images():
    """``batch`` as a fixture: ``images(h, w, n=2, seed=0)``."""
    return batch


@torch.no_grad()
def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (LayerNorm scales around 1), so no mapping can pass by accident.

    Freshly initialised models have unit LayerNorm scales and zero biases; a swapped norm or bias would not change
    any output. After this, every tensor matters.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
        if p.ndim == 1 and ("norm" in name or "layernorm" in name) and name.endswith("weight"):
            p.copy_(1.0 + 0.1 * noise)
        else:
            p.copy_(0.02 * noise if p.ndim > 1 or "token" in name or "pos" in name else 0.05 * noise)
    return module


def timm_model(name: str, seed: int = 0, **kw) -> torch.nn.Module:
    """timm's ``create_model(name, **kw)`` with every weight random (``randomize_``), in eval mode.

    ``randomize_`` overwrites every parameter, so timm's own (slow, for large models) init is skipped: the model is
    built on the meta device and given uninitialised memory first. Models with buffers are built normally.
    """
    import timm

    with torch.device("meta"):
        model = timm.create_model(name, **kw)
    if any(True for _ in model.buffers()):
        torch.manual_seed(seed)
        model = timm.create_model(name, **kw)
    else:
        model = model.to_empty(device="cpu")
    return randomize_(model, seed=seed).eval()


def safetensors_round_trip(state_dict: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Write ``state_dict`` as a safetensors file and read it back (what a user holding a checkpoint has)."""
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    return load_file(str(path))


def save_safetensors(state_dict: dict[str, torch.Tensor], path: Path) -> str:
    """Write ``state_dict`` as a safetensors file; returns the path as a string (a ``pretrained=`` source)."""
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    return str(path)


@pytest.fixture(scope="session")
def hub_server():
    """One loopback Hub for the session; tests add repos to it."""
    from hub_server import HubServer

    server = HubServer().start()
    yield server
    server.stop()


@pytest.fixture
def hub(hub_server, tmp_path, monkeypatch):
    """The loopback Hub as HF_ENDPOINT, with an empty HF cache for this test; HF_HUB_OFFLINE unset."""
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # whatever the session started with
    return hub_server


def free_port() -> int:
    """A loopback port nothing listens on: bound and released just now, so a connection is refused at once (a fixed
    port such as 9 may be filtered instead, and then every request waits for its timeout)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hf_saved(model: torch.nn.Module, folder: Path, seed: int = 0) -> tuple[torch.nn.Module, Path]:
    """A transformers ``model`` with random weights (``randomize_``), in eval mode, written by its own
    ``save_pretrained`` to ``folder`` (config.json + model.safetensors with transformers' on-disk names)."""
    randomize_(model, seed=seed).eval()
    model.save_pretrained(folder)
    return model, folder


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file of a folder written by a peer library's save function, as a Hub commit's tree."""
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}


def timm_repo(name: str, tmp_path: Path, num_classes: int, safe: bool | str = "both", seed: int = 0, **kw):
    """A timm model with random weights saved by timm's own ``save_for_hf`` (config.json + weights)."""
    from timm.models._hub import save_for_hf

    model = timm_model(name, seed=seed, num_classes=num_classes, **kw)
    folder = tmp_path / f"timm-{name}-{seed}"
    save_for_hf(model, str(folder), safe_serialization=safe)
    return model, folder_files(folder)


# The vitzoo package these tests import (a checkout on PYTHONPATH or the installed one): subprocesses get the same.
_PACKAGE_ROOT = str(Path(vitzoo.__file__).resolve().parents[1])


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a ``python -m vitzoo`` subprocess: this one, importing the same vitzoo, plus ``extra``."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": _PACKAGE_ROOT + (os.pathsep + path if path else ""), **extra}


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m vitzoo ARGS`` as a real process (no reliance on PATH or the working directory)."""
    return subprocess.run(
        [sys.executable, "-m", "vitzoo", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env or cli_env(),
        cwd=cwd,
        check=False,
    )


def cli(*args: str) -> subprocess.CompletedProcess:
    """The ``vitzoo`` command's entry point (``vitzoo.cli:main``, what the console script calls) run in this process,
    with stdout, stderr and the exit code captured: the same behaviour as ``run_cli`` without a new interpreter."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse: --version, --help, usage errors
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(["vitzoo", *map(str, args)], code, out.getvalue(), err.getvalue())


def one_line_error(res, *needles: str) -> str:
    """The command failed as vitzoo's errors do: exit 2, one `vitzoo: error:` line, no traceback; returns the line."""
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.startswith("vitzoo: error: ") and res.stderr.count("\n") == 1, res.stderr
    for needle in needles:
        assert needle in res.stderr, (needle, res.stderr)
    return res.stderr


# ------------------------------------------------------------------------------ shared by the data and job tests
TINY_TAG = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"  # the checkpoint facts (transform, labels) of save_tiny_model
BF16_TOL = 2e-2  # relative L2 error of bf16 features (8 mantissa bits, 2 blocks): 6e-3 measured


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): tiny forwards, the
    probes' small matrices and L-BFGS steps are fastest so on a shared machine (threads that wait on each other cost
    far more than they save), and numbers are bitwise reproducible against other 1-thread runs (the torchrun ranks
    run with OMP_NUM_THREADS=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = {"depth": 2, "embed_dim": 64, "num_heads": 2, "mlp_dim": 128}
ONE_PER_FAMILY = [  # one arch per family (export, runtimes); patch 14 ones at multiples of 14 near test_export's SIZES
    "deit_tiny_distilled_patch16_224",
    "vit_small_patch14_dinov2",
    "vit_small_patch14_reg4_dinov2",
    "vit_base_patch16_clip_224",
    "vit_base_patch16_siglip_224",
    "vit_small_patch16_dinov3",
    "eva02_tiny_patch14_224",  # EVA RoPE (scaled to its reference grid) beside a table
    "vit_pe_core_tiny_patch16_384",  # RoPE x first, the attention pool over every token
    "vit_small_patch16_rope_mixed_224",  # a rotary embedding per block from learned frequencies
    "vit_relpos_small_patch16_224",  # relative position MLP, no table
    "vit_srelpos_small_patch16_224",
    "vit_base_patch16_rpn_224",  # res-post-norm
    "beit3_base_patch16_224",
    "aimv2_large_patch14_224",  # RMSNorm, no biases
    "vit_base_patch16_radio_v3",  # registers outside the table, no final norm
    "vit_dpwee_patch16_reg1_gap_256",  # parallel blocks with differential attention
]


def tiny(arch: str = "vit_base_patch16_224", **kw) -> torch.nn.Module:
    """``arch`` at ``SMALL`` (two blocks, width 64), 224 px, random weights (``randomize_``), in eval mode."""
    kw = {**SMALL, "img_size": 224, **kw}
    if "dinov3" in arch:
        kw["num_heads"] = 4  # RoPE needs a head width divisible by 4
    return randomize_(vitzoo.create_model(arch, **kw)).eval()


def save_tiny_model(folder: Path) -> tuple[torch.nn.Module, str]:
    """A tiny ImageNet-1k classifier saved with its checkpoint facts (transform, labels); its ``local-dir:`` name."""
    model = randomize_(vitzoo.create_model(TINY_TAG, depth=2), seed=3).eval()  # facts of the tag, random weights
    return model, f"local-dir:{vitzoo.save_pretrained(model, folder / 'tiny')}"


def write_images(folder: Path, n_plain: int = 0) -> dict[str, Path]:
    """Five awkward images (JPEG, RGBA, grey, corrupt, EXIF-rotated) and ``n_plain`` small JPEGs, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def rgb(w: int, h: int) -> Image.Image:
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))

    rgb(500, 375).save(folder / "a_photo.jpg", quality=90)
    img = rgb(120, 90)
    Image.merge("RGBA", (*img.split(), Image.new("L", img.size, 128))).save(folder / "b_alpha.png")
    rgb(200, 300).convert("L").save(folder / "c_gray.png")
    (folder / "d_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 270
    rgb(160, 100).save(folder / "e_rotated.jpg", exif=exif.tobytes())
    for i in range(n_plain):
        rgb(64 + i % 5 * 16, 48 + i % 3 * 16).save(folder / f"p{i:03d}.jpg")
    return {p.name: p for p in sorted(folder.iterdir())}


def preprocess(model, paths) -> torch.Tensor:
    return torch.stack([create_transform(model)(load_image(p)) for p in paths])


def to_npz(
    model: torch.nn.Module,
    path,
    *,
    big_vision: bool = False,
    scanned: bool = False,
    pre_logits: int = 0,
    zero_head: bool = False,
) -> None:
    """Write a timm ViT in the JAX layout (the inverse of timm's _load_weights)."""
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    D = sd["cls_token"].shape[-1]
    H = model.blocks[0].attn.num_heads
    p = "params/" if big_vision else ""
    mha, ln2, mlp = (
        ("MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")
        if big_vision
        else ("MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3")
    )
    w = {
        f"{p}embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
        f"{p}embedding/bias": sd["patch_embed.proj.bias"],
        f"{p}cls": sd["cls_token"],
        f"{p}Transformer/encoder_norm/scale": sd["norm.weight"],
        f"{p}Transformer/encoder_norm/bias": sd["norm.bias"],
    }
    if big_vision:
        w[f"{p}pos_embedding"] = sd["pos_embed"]  # a no_embed_class model: (1, N, D)
    else:
        w[f"{p}Transformer/posembed_input/pos_embedding"] = sd["pos_embed"]
    blocks = []
    for i in range(len(model.blocks)):
        b = f"blocks.{i}."
        qkv_w, qkv_b = sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"]
        entry = {
            "LayerNorm_0/scale": sd[b + "norm1.weight"],
            "LayerNorm_0/bias": sd[b + "norm1.bias"],
            f"{mha}/out/kernel": sd[b + "attn.proj.weight"].T.reshape(H, D // H, D),
            f"{mha}/out/bias": sd[b + "attn.proj.bias"],
            f"{ln2}/scale": sd[b + "norm2.weight"],
            f"{ln2}/bias": sd[b + "norm2.bias"],
            f"{mlp}/Dense_0/kernel": sd[b + "mlp.fc1.weight"].T,
            f"{mlp}/Dense_0/bias": sd[b + "mlp.fc1.bias"],
            f"{mlp}/Dense_1/kernel": sd[b + "mlp.fc2.weight"].T,
            f"{mlp}/Dense_1/bias": sd[b + "mlp.fc2.bias"],
        }
        for j, n in enumerate(("query", "key", "value")):
            entry[f"{mha}/{n}/kernel"] = qkv_w[j * D : (j + 1) * D].T.reshape(D, H, D // H)
            entry[f"{mha}/{n}/bias"] = qkv_b[j * D : (j + 1) * D].reshape(H, D // H)
        blocks.append(entry)
    if scanned:
        for k in blocks[0]:
            w[f"{p}Transformer/encoderblock/{k}"] = np.stack([blk[k] for blk in blocks])
    else:
        for i, blk in enumerate(blocks):
            w.update({f"{p}Transformer/encoderblock_{i}/{k}": v for k, v in blk.items()})
    if "head.weight" in sd:
        w[f"{p}head/kernel"] = sd["head.weight"].T * (0 if zero_head else 1)
        w[f"{p}head/bias"] = sd["head.bias"] * (0 if zero_head else 1)
    if pre_logits:
        w[f"{p}pre_logits/kernel"] = np.random.default_rng(0).normal(size=(D, pre_logits)).astype(np.float32)
        w[f"{p}pre_logits/bias"] = np.zeros(pre_logits, np.float32)
    np.savez(path, **w)


def tar_bytes(members: dict[str, bytes]) -> bytes:
    """An uncompressed tar archive of ``members`` (name -> content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_unreadable_lists(folder: Path) -> dict[Path, str]:
    """Input files vitzoo cannot read, each with the start of the error it names: random bytes as a ``.tar``, a
    gzipped and a truncated tar, a CSV over the csv module's field limit, random bytes as a ``.parquet`` (when
    pyarrow is installed)."""
    rng = np.random.default_rng(0)
    shard = tar_bytes({"0001.jpg": b"abc"})
    files = {
        "random.tar": (rng.bytes(5000), "not a readable tar archive"),
        "zipped.tar": (gzip.compress(shard), "a gzip-compressed tar; vitzoo reads the members of a .tar in place"),
        "truncated.tar": (shard[:700], "not a readable tar archive"),
        "big.csv": (b"path\n" + b"x" * 200_000, "not a readable CSV list"),
    }
    if importlib.util.find_spec("pyarrow"):
        files["garbage.parquet"] = (rng.bytes(3000), "not a readable parquet file")
    cases = {}
    for name, (data, why) in files.items():
        (folder / name).write_bytes(data)
        cases[folder / name] = why
    return cases


# ------------------------------------------------------------------ image-text models (test_text_towers, test_zeroshot)
TEXTS = ["a photo of a cat", "A diagram!", "two dogs playing in the snow at night", "a photo of a cat"]


class PeerTokenizer:
    """A peer library's tokenizer behind the interface vitzoo's models take: texts -> ids (N, context_length)."""

    def __init__(self, tokenize, context_length: int) -> None:
        self.tokenize, self.context_length = tokenize, context_length

    def __call__(self, texts) -> torch.Tensor:
        return self.tokenize([texts] if isinstance(texts, str) else list(texts))


def clip_tokenizer(pad_token: str = "<|endoftext|>"):
    """transformers' ``CLIPTokenizer`` over OpenAI's BPE vocabulary as open_clip ships it (nothing downloaded). It
    pads with the end-of-text token as OpenAI's repos do, or with ``pad_token="!"`` (id 0) as LAION's."""
    import transformers
    from open_clip.tokenizer import SimpleTokenizer

    simple = SimpleTokenizer()
    special = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}  # transformers' spelling
    vocab = {special.get(k, k): v for k, v in simple.encoder.items()}
    merges = sorted(simple.bpe_ranks, key=simple.bpe_ranks.get)
    return transformers.CLIPTokenizer(vocab=vocab, merges=merges, pad_token=pad_token, model_max_length=77)


def word_tokenizer(context_length: int):
    """A tiny word-level tokenizer (``tokenizers``), lower-casing, ``</s>`` appended, padded with ``<pad>``: a stand-in
    for SigLIP's SentencePiece and SigLIP 2's Gemma tokenizers, which cannot be downloaded here."""
    import tokenizers
    import transformers

    words = sorted({w for text in TEXTS for w in text.lower().replace("!", " !").split()})
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = tokenizers.normalizers.Lowercase()
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.post_processor = tokenizers.processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=context_length
    )


def tiny_timm_trunk(monkeypatch, arch: str, img_size: int) -> None:
    """Make the registered ``arch`` tiny (width 64, 2 blocks) for timm, so open_clip builds a tiny timm image tower,
    and for vitzoo alike, which reads an open_clip config's timm tower as its registered config."""
    import timm

    from vitzoo.models.archs import ARCHS

    tiny = {"embed_dim": 64, "depth": 2, "num_heads": 4}
    monkeypatch.setattr(
        timm, "create_model", functools.partial(timm.create_model, **tiny, mlp_ratio=2, img_size=img_size)
    )
    monkeypatch.setitem(ARCHS, arch, ARCHS[arch].replace(**tiny, mlp_dim=128))


def save_open_clip(folder: Path, base: str, vision: dict, text: dict, embed_dim: int, seed: int = 0):
    """open_clip's ``base`` config with ``vision_cfg`` / ``text_cfg`` and random weights, written by its hub export
    (``save_for_hf``: ``open_clip_config.json``, ``open_clip_model.safetensors``, ``open_clip_pytorch_model.bin``);
    returns open_clip's own reading of the folder, in eval mode."""
    import open_clip
    from open_clip.push_to_hf_hub import save_for_hf

    model = open_clip.create_model(base, embed_dim=embed_dim, vision_cfg=vision, text_cfg=text)
    randomize_(model, seed=seed)
    config = {**open_clip.get_model_config(base), "embed_dim": embed_dim, "vision_cfg": vision, "text_cfg": text}
    no_tokenizer = types.SimpleNamespace(save_pretrained=lambda folder: None)  # save_for_hf saves one too
    save_for_hf(model, no_tokenizer, config, folder)
    return open_clip.create_model(f"local-dir:{folder}").eval()


def save_tiny_clip(folder: Path, seed: int = 0, scale: float = 20.0) -> str:
    """A tiny transformers ``CLIPModel`` folder (32 px images, width-32 text tower, OpenAI's BPE tokenizer saved with
    it) for the commands that take an image-text model; returns its ``local-dir:`` name. The random weights' matrices
    are scaled by ``scale``: ``randomize_``'s small weights map every input to nearly one vector, these spread them."""
    import transformers

    config = transformers.CLIPConfig(
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        ),
        text_config=dict(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            vocab_size=49408,
            max_position_embeddings=77,
        ),
        projection_dim=16,
    )
    model = randomize_(transformers.CLIPModel(config), seed=seed).eval()
    with torch.no_grad():
        for weight in (p for n, p in model.named_parameters() if p.ndim > 1 and "embedding" not in n):
            weight.mul_(scale)
    model.save_pretrained(folder)
    clip_tokenizer().save_pretrained(folder)
    return f"local-dir:{folder}"
