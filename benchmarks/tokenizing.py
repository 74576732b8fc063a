"""Tokenizing speed and exactness of vitzoo's tokenizers against their peers, on 10k zero-shot captions.

    python benchmarks/tokenizing.py               # 10,000 captions (ImageNet labels in OpenAI's 80 templates)
    python benchmarks/tokenizing.py --texts 2000  # quicker

Rows, each on the same captions, one process, one thread for the tokenizers library (TOKENIZERS_PARALLELISM=false):

- CLIP, the vocabulary vitzoo ships: vitzoo (``kind="openai"``) and open_clip's ``SimpleTokenizer``, each from a
  fresh object (cold: the BPE of every word computed) and again (warm: words cached); and the road not taken, the
  ``tokenizers`` library running CLIP's pattern itself, with its mismatches against open_clip on awkward texts.
- CLIP of a transformers repo: vitzoo (the ``tokenizers`` library) and transformers' ``AutoTokenizer``.
- SigLIP's SentencePiece (a model trained here; needs sentencepiece): vitzoo's reader and transformers'
  ``SiglipTokenizer``.

Every vitzoo row is checked equal to its peer's ids first.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from vitzoo.weights.tokenizers import clip, load_tokenizer


def captions(n: int) -> list[str]:
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    labels = (resources.files("vitzoo") / "data" / "imagenet21k_labels.txt").read_text().splitlines()
    rng = random.Random(0)
    return [rng.choice(OPENAI_IMAGENET_TEMPLATES)(rng.choice(labels).split(",")[0]) for _ in range(n)]


def awkward(n: int) -> list[str]:
    rng = random.Random(1)
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x4FF), (0x3000, 0x30FF), (0x1F300, 0x1F64F)]
    return [
        " ".join("".join(chr(rng.randint(*rng.choice(blocks))) for _ in range(5)) for _ in range(rng.randint(1, 8)))
        for _ in range(n)
    ]


def timed(label: str, fn: Callable[[], torch.Tensor], n: int) -> torch.Tensor:
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<62} {seconds:7.3f} s  {n / seconds:9,.0f} texts/s")
    return out


def same(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a != b).any(1).sum())


def rust_clip_pattern() -> Callable[[list[str]], torch.Tensor]:
    """open_clip's cleaning, then CLIP's pattern and BPE all in the tokenizers library (the road not taken)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    bpe = clip.shipped_bpe()
    merges = sorted(bpe.ranks, key=bpe.ranks.__getitem__)
    backend = Tokenizer(models.BPE(bpe.encoder, merges, end_of_word_suffix="</w>", continuing_subword_prefix=""))
    pattern = Regex("(?i)" + clip._PATTERN)
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(pattern, "removed", invert=True), pre_tokenizers.ByteLevel(False, use_regex=False)]
    )
    cleaner = clip.clean_fn("lower")

    def tokenize(texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), 77, dtype=torch.long)
        for row, enc in zip(out, backend.encode_batch([cleaner(t) for t in texts]), strict=True):
            ids = [clip.SOT, *enc.ids, clip.EOT]
            ids = ids if len(ids) <= 77 else [*ids[:76], clip.EOT]
            row[: len(ids)] = torch.tensor(ids)
        return out

    return tokenize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=10_000)
    n = parser.parse_args().texts
    texts = captions(n)
    import open_clip
    import transformers

    print(f"{n} captions, torch {torch.__version__}, transformers {transformers.__version__}")
    print("\nCLIP, the shipped vocabulary (OpenAI's; open_clip's SimpleTokenizer)")
    clip.shipped_bpe.cache_clear()
    ours = timed("vitzoo kind='openai', cold (vocabulary read, no word cached)", lambda: load_tokenizer(
        "vit_base_patch16_clip_224.openai")(texts), n)  # fmt: skip
    tok = load_tokenizer("vit_base_patch16_clip_224.openai")
    timed("vitzoo kind='openai', warm", lambda: tok(texts), n)
    theirs = timed("open_clip SimpleTokenizer(), cold", lambda: open_clip.tokenizer.SimpleTokenizer()(texts), n)
    simple = open_clip.tokenizer.SimpleTokenizer()
    simple(texts)
    timed("open_clip SimpleTokenizer(), warm", lambda: simple(texts), n)
    rust = rust_clip_pattern()
    timed("tokenizers library with CLIP's pattern (not used)", lambda: rust(texts), n)
    odd = awkward(2000)
    print(f"  ids differing from open_clip: vitzoo {same(ours, theirs)} of {n} captions, "
          f"{same(tok(odd), simple(odd))} of {len(odd)} awkward texts; tokenizers library "
          f"{same(rust(texts), theirs)} and {same(rust(odd), simple(odd))}")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clip"
        gz = (resources.files("vitzoo") / "data" / clip.VOCAB_FILE).read_bytes()
        merges = gzip.decompress(gz).decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
        vocab = {t: i for t, i in clip.shipped_bpe().encoder.items() if i < clip.SOT}
        vocab |= {"<|startoftext|>": clip.SOT, "<|endoftext|>": clip.EOT}
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        hf = transformers.CLIPTokenizer(vocab=f"{tmp}/vocab.json", merges=f"{tmp}/merges.txt")
        hf.save_pretrained(folder)
        transformers.CLIPConfig().save_pretrained(folder)
        print("\nCLIP of a transformers repo (tokenizer.json)")
        tok = load_tokenizer(folder)
        ours = timed("vitzoo (tokenizers library)", lambda: tok(texts), n)
        auto = transformers.AutoTokenizer.from_pretrained(folder)
        theirs = timed("transformers AutoTokenizer, padding='max_length'", lambda: auto(
            texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids, n)  # fmt: skip
        print(f"  ids differing: {same(ours, theirs)} of {n}")
        siglip(Path(tmp), texts, n)


def siglip(tmp: Path, texts: list[str], n: int) -> None:
    try:
        import sentencepiece
    except ImportError:
        print("\nSigLIP's SentencePiece: skipped (pip install sentencepiece)")
        return
    import transformers

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(captions(20_000)), model_writer=model,
        vocab_size=4000, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2)  # fmt: skip
    (tmp / "spiece.model").write_bytes(model.getvalue())
    folder = tmp / "siglip"
    transformers.SiglipTokenizer(str(tmp / "spiece.model")).save_pretrained(folder)
    transformers.SiglipConfig().save_pretrained(folder)
    print("\nSigLIP's SentencePiece (spiece.model, a 4k unigram model trained on captions here)")
    tok = load_tokenizer(folder)
    ours = timed("vitzoo (its own reader, no sentencepiece)", lambda: tok(texts), n)
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    theirs = timed("transformers SiglipTokenizer (sentencepiece)", lambda: auto(
        texts, padding="max_length", max_length=64, truncation=True, return_tensors="pt").input_ids, n)  # fmt: skip
    print(f"  ids differing: {same(ours, theirs)} of {n}")


if __name__ == "__main__":
    main()
