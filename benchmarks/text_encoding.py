"""Text-tower throughput of vitzoo next to transformers and open_clip, the same weights in all three.

    python benchmarks/text_encoding.py           # batch 64, 7 interleaved rounds (several minutes on 2 cores)
    python benchmarks/text_encoding.py --quick   # batch 16, 3 rounds (under 2 minutes)

Two text towers at their real size, randomly initialised by transformers (seed 0) and saved with
``save_pretrained``:

- CLIP ViT-B/16, the ``CLIPModel`` config of openai/clip-vit-base-patch16: width 512, 12 layers, 8 heads, context
  77, vocabulary 49408, projection 512, QuickGELU, the legacy ``eos_token_id=2`` (the end-of-text token is the
  highest id). OpenAI's BPE tokenizer (as open_clip ships it) is saved with it.
- SigLIP base, the ``SiglipModel`` config of google/siglip-base-patch16-224: width 768, 12 layers, 12 heads,
  context 64, vocabulary 32000, ``gelu_pytorch_tanh``, the last position pooled. No tokenizer: SigLIP's
  SentencePiece vocabulary cannot be made offline, so every library gets the same pre-tokenized ids.

The image towers are cut to one block at 32 px (their size does not touch the text tower, and it keeps building,
saving and loading cheap). vitzoo loads the folder (``create_image_text_model("local-dir:...")``); open_clip's
``CLIP`` (QuickGELU) / ``CustomTextCLIP`` (the ``ViT-B-16-SigLIP`` text config, with tanh GELU as transformers') is
built from its config and given the same text-tower tensors, converted here. Before anything is timed, each
library's text embeddings of the timed batch must equal transformers' within 1e-4 (max abs diff); the script stops
if they do not.

Timed: ``encode_text`` on token ids (vitzoo and open_clip; transformers' ``get_text_features(input_ids=...)``), fp32,
under ``torch.inference_mode``, the three libraries in interleaved rounds after one warm-up call each, the median
texts/s. CLIP's tokenizing of 1,000 captions is timed apart (vitzoo's ``model.tokenize``, transformers'
``AutoTokenizer`` of the same folder, open_clip's ``SimpleTokenizer``; median of 5 warm calls). Paste the printed
markdown into docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import open_clip
import torch
import transformers

import vitzoo

TOL = 1e-4
N_CAPTIONS = 1000
# The image tower, cut to one block at 32 px; B width so that SigLIP's (unprojected) image embedding is 768 wide.
VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=1, num_attention_heads=12, image_size=32)
OPEN_CLIP_VISION = dict(layers=1, width=64, head_width=32, patch_size=16, image_size=32)


def captions(n: int) -> list[str]:
    """ImageNet labels in OpenAI's zero-shot templates (as benchmarks/tokenizing.py)."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    labels = (resources.files("vitzoo") / "data" / "imagenet21k_labels.txt").read_text().splitlines()
    rng = random.Random(0)
    return [rng.choice(OPENAI_IMAGENET_TEMPLATES)(rng.choice(labels).split(",")[0]) for _ in range(n)]


def clip_tokenizer() -> transformers.CLIPTokenizer:
    """transformers' ``CLIPTokenizer`` over OpenAI's BPE as open_clip ships it, padded with ``<|endoftext|>`` as
    OpenAI's repos are (tests/conftest.py's ``clip_tokenizer``)."""
    simple = open_clip.tokenizer.SimpleTokenizer()
    special = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}  # transformers' spelling
    vocab = {special.get(k, k): v for k, v in simple.encoder.items()}
    merges = sorted(simple.bpe_ranks, key=simple.bpe_ranks.get)
    return transformers.CLIPTokenizer(vocab=vocab, merges=merges, pad_token="<|endoftext|>", model_max_length=77)


def hf_clip() -> transformers.CLIPModel:
    text = dict(
        hidden_size=512,
        intermediate_size=2048,
        num_hidden_layers=12,
        num_attention_heads=8,
        max_position_embeddings=77,
        vocab_size=49408,
        hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
        bos_token_id=0,
        pad_token_id=1,
        eos_token_id=2,  # openai/clip-vit-base-patch16's legacy value: pool at the highest id
    )
    vision = dict(VISION, patch_size=16, hidden_act="quick_gelu")
    config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=512)
    config._attn_implementation = "sdpa"
    return transformers.CLIPModel(config).eval()


def hf_siglip() -> transformers.SiglipModel:
    text = dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=64,
        vocab_size=32000,
        hidden_act="gelu_pytorch_tanh",
        layer_norm_eps=1e-6,
        pad_token_id=1,
        bos_token_id=None,  # SigLIP's SentencePiece has none (the config's default, 49406, is CLIP's)
        eos_token_id=1,
    )
    vision = dict(VISION, patch_size=16)
    config = transformers.SiglipConfig(text_config=text, vision_config=vision)
    config._attn_implementation = "sdpa"
    return transformers.SiglipModel(config).eval()


def open_clip_text(hf: dict[str, torch.Tensor], prefix: str, siglip: bool) -> dict[str, torch.Tensor]:
    """transformers' text-tower tensors under open_clip's names (``prefix``: ``""`` for ``CLIP``, ``"text."`` for
    ``CustomTextCLIP``); q, k and v fused into ``in_proj``."""
    t = "text_model."
    out = {
        f"{prefix}token_embedding.weight": hf[f"{t}embeddings.token_embedding.weight"],
        f"{prefix}positional_embedding": hf[f"{t}embeddings.position_embedding.weight"],
        f"{prefix}ln_final.weight": hf[f"{t}final_layer_norm.weight"],
        f"{prefix}ln_final.bias": hf[f"{t}final_layer_norm.bias"],
    }
    layers = 1 + max(int(k.split(".")[3]) for k in hf if k.startswith(f"{t}encoder.layers."))
    names = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj"}
    names |= {"mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    for i in range(layers):
        h, o = f"{t}encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{o}attn.in_proj_{kind}"] = torch.cat([hf[f"{h}self_attn.{x}_proj.{kind}"] for x in "qkv"])
            for ours, theirs in names.items():
                out[f"{o}{ours}.{kind}"] = hf[f"{h}{theirs}.{kind}"]
    if siglip:
        out[f"{prefix}text_projection.weight"] = hf[f"{t}head.weight"]
        out[f"{prefix}text_projection.bias"] = hf[f"{t}head.bias"]
    else:
        out[f"{prefix}text_projection"] = hf["text_projection.weight"].T  # open_clip: x @ text_projection
    return out


def open_clip_model(hf: torch.nn.Module, siglip: bool) -> torch.nn.Module:
    """open_clip's model of the same text config, given ``hf``'s text-tower tensors (every text tensor set)."""
    torch.manual_seed(0)
    if siglip:
        text = dict(open_clip.get_model_config("ViT-B-16-SigLIP")["text_cfg"], act_kwargs={"approximate": "tanh"})
        model = open_clip.CustomTextCLIP(768, OPEN_CLIP_VISION, text, init_logit_bias=-10.0)
    else:
        model = open_clip.CLIP(512, OPEN_CLIP_VISION, open_clip.get_model_config("ViT-B-16-quickgelu")["text_cfg"],
            quick_gelu=True)  # fmt: skip
    state = open_clip_text(hf.state_dict(), "text." if siglip else "", siglip)
    result = model.load_state_dict(state, strict=False)
    untouched = [k for k in result.missing_keys if not k.startswith("visual.") and not k.startswith("logit_")]
    if result.unexpected_keys or untouched:
        raise SystemExit(f"open_clip conversion: unexpected {result.unexpected_keys}, text tensors unset {untouched}")
    return model.eval()


def bench(runners: dict[str, Callable[[], object]], batch: int, rounds: int) -> dict[str, float]:
    """Median texts/s per runner over interleaved rounds (warm-up: the agreement check's call)."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: batch / statistics.median(ts) for name, ts in times.items()}


def towers(
    label: str, folder: Path, hf: torch.nn.Module, ids: torch.Tensor, rounds: int, siglip: bool
) -> dict[str, float]:
    ours = vitzoo.create_image_text_model(f"local-dir:{folder}").eval()
    theirs = open_clip_model(hf, siglip)
    runners = {
        "vitzoo": lambda: ours.encode_text(ids),
        "transformers": lambda: hf.get_text_features(input_ids=ids).pooler_output,
        "open_clip": lambda: theirs.encode_text(ids),
    }
    with torch.inference_mode():
        out = {name: fn() for name, fn in runners.items()}  # also each one's warm-up call
        ref = out["transformers"]
        diffs = {name: (out[name] - ref).abs().max().item() for name in ("vitzoo", "open_clip")}
        print(f"{label}: max |embedding| {ref.abs().max().item():.3g}, max abs diff vs transformers: "
              + ", ".join(f"{n} {d:.2e}" for n, d in diffs.items()), flush=True)  # fmt: skip
        if max(diffs.values()) > TOL:
            raise SystemExit(f"{label}: text embeddings differ from transformers' by more than {TOL}; not timing")
        return bench(runners, len(ids), rounds)


def tokenizing(folder: Path, texts: list[str], repeats: int) -> dict[str, float]:
    model = vitzoo.create_image_text_model(f"local-dir:{folder}", pretrained=False)
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    simple = open_clip.get_tokenizer("ViT-B-16")
    runners = {
        "vitzoo": lambda: model.tokenize(texts),
        "transformers": lambda: (
            auto(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        ),
        "open_clip": lambda: simple(texts),
    }
    ids = {name: fn() for name, fn in runners.items()}  # warm: every word's BPE cached
    if not torch.equal(ids["vitzoo"], ids["transformers"]):
        raise SystemExit("vitzoo's CLIP ids differ from transformers'")
    padded = torch.where(ids["open_clip"] == 0, 49407, ids["open_clip"])  # open_clip pads with 0, OpenAI's repo EOT
    print(f"CLIP tokenizing: vitzoo ids equal transformers'; rows differing from open_clip's (padding aside): "
          f"{int((padded != ids['vitzoo']).any(1).sum())} of {len(texts)}", flush=True)  # fmt: skip
    return bench(runners, len(texts), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 16, 3 rounds")
    args = parser.parse_args()
    transformers.utils.logging.disable_progress_bar()
    batch, rounds = (16, 3) if args.quick else (64, 7)
    texts = captions(N_CAPTIONS)
    rows: list[tuple[str, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        hf = hf_clip()
        folder = Path(tmp) / "clip"
        hf.save_pretrained(folder)
        clip_tokenizer().save_pretrained(folder)
        ids = transformers.AutoTokenizer.from_pretrained(folder)(
            texts[:batch], padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        ).input_ids
        rows.append(("CLIP B/16 text", f"encode_text, batch {batch}", towers("CLIP", folder, hf, ids, rounds, False)))
        rows.append(
            ("CLIP B/16 text", f"tokenize {N_CAPTIONS} captions", tokenizing(folder, texts, 3 if args.quick else 5))
        )
        del hf

        torch.manual_seed(0)
        hf = hf_siglip()
        folder = Path(tmp) / "siglip"
        hf.save_pretrained(folder)
        gen = torch.Generator().manual_seed(0)
        ids = torch.ones(batch, 64, dtype=torch.long)  # SigLIP pads with </s> (id 1), as google's tokenizer
        for row, n in zip(ids, torch.randint(4, 20, (batch,), generator=gen).tolist(), strict=True):
            row[:n] = torch.randint(2, 32000, (n,), generator=gen)
        rows.append(
            ("SigLIP B/16 text", f"encode_text, batch {batch}", towers("SigLIP", folder, hf, ids, rounds, True))
        )
        del hf

    print(
        f"\nMachine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, transformers {transformers.__version__}, open_clip {open_clip.__version__}; fp32, "
        f"{rounds} interleaved rounds, median\n"
    )
    print("| model | what | library | texts/s | vs transformers |")
    print("|---|---|---|---|---|")
    for model, what, tps in rows:
        for lib in ("vitzoo", "transformers", "open_clip"):
            print(f"| {model} | {what} | {lib} | {tps[lib]:,.1f} | {tps[lib] / tps['transformers']:.3f}x |")


if __name__ == "__main__":
    main()
