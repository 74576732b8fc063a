"""vitzoo's tokenizers give the ids of the peer that each checkpoint's files are made for: open_clip's
SimpleTokenizer and HFTokenizer, transformers' AutoTokenizer (CLIP, SigLIP 2's Gemma, SigLIP's SentencePiece), on the
same files and awkward texts, from local folders and through the loopback Hub.

The files are made by the real libraries: CLIP's real vocabulary (the one vitzoo ships), a small Gemma BPE trained by
the tokenizers library, a small T5-style SentencePiece model trained by sentencepiece (the peers' own settings; the
real 32k/256k vocabularies are too large to build here)."""

# ruff: noqa: RUF001  (the texts are full of look-alike characters on purpose)

from __future__ import annotations

import gzip
import io
import json
import random
import shutil
import sys
from importlib import resources
from pathlib import Path

import huggingface_hub
import pytest
import torch

from conftest import fast_first, folder_files
from vitzoo.errors import CheckpointError, ConfigError, InputError, VitzooError
from vitzoo.weights import tokenizers
from vitzoo.weights.source import resolve
from vitzoo.weights.tokenizers import load_tokenizer

transformers = pytest.importorskip("transformers")
open_clip = pytest.importorskip("open_clip")

LABELS = (resources.files("vitzoo") / "data" / "imagenet1k_labels.txt").read_text().splitlines()
AWKWARD = [
    "", " ", "   \t\n  ", "\u3000\u00a0", "a photo of a cat.", "A PHOTO OF A CAT", "MiXeD CaSe Words", "café naïve",
    "cafe\u0301", "ΟΔΟΣ Σίσυφος", "İstanbul straße ﬁne", "😀 🐈‍⬛ 👩🏽‍🚀 🇫🇷", "猫の写真", "一只猫的照片", "고양이 사진",
    "фото кота", "صورة قطة", "१२३ ٣٤٥ 12345 3.14159 1,000,000 ½ ²", "!!! ... ((())) [x] {y} <z> @#$%^&*_+=|\\/~`",
    "&amp; &lt;b&gt; &quot;q&quot; &#39;a&#39; &amp;amp;lt; &nbsp;x", "Ã©tÃ© â€œquotedâ€\x9d", "doesnÃ¢â‚¬â„¢t",
    "it's they're we've I'm IT'S ''s", "a\x00b\x1fc\x7fd", "<|startoftext|> <|endoftext|>", "!<end_of_text>",
    "<start_of_text>hi<end_of_text>", "</s> <unk> <pad> <eos> <bos> x</s>y", "tab\tnew\nline\r\n", "zero\u200bwidth",
    "x" * 300, "word " * 100, "a" * 77, "猫" * 100, "the_snake_case name", "´ ¨ trailing´", "ｆｕｌｌ　ＡＢＣ",
    "Ⅻ ① ㎏", "\u0301 combining first", "q\u0301 \u0345x", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "▁▁a ▁ b", "ΣΑΣ σας",
]  # fmt: skip


def _random_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F), (0, 0x1F),
              (0x2000, 0x206F), (0x3000, 0x30FF), (0x4E00, 0x4E40), (0xFF00, 0xFFEF), (0x1F300, 0x1F64F)]  # fmt: skip
    out = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(1, 10)):
            lo, hi = rng.choice(blocks)
            words.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))))
            words.append(rng.choice([" ", "", "  ", "\t", "'s ", ". "]))
        out.append("".join(words))
    return out


TEMPLATES = ["a photo of a {}.", "a bad photo of the {}.", "This is a photo of {}.", "art of the {}", "{}"]
CAPTIONS = [TEMPLATES[i % 5].format(label) for i, label in enumerate(LABELS[::4])]
TEXTS = AWKWARD + CAPTIONS + _random_texts(300, seed=0)


def _assert_same(got: torch.Tensor, want: torch.Tensor, texts: list[str]) -> None:
    assert got.dtype == torch.long and got.shape == want.shape, (got.shape, want.shape)
    bad = [i for i in range(len(texts)) if not torch.equal(got[i], want[i])]
    assert not bad, [(texts[i][:40], got[i].tolist()[:12], want[i].tolist()[:12]) for i in bad[:3]]


def _transformers_ids(folder: Path, texts: list[str], length: int) -> torch.Tensor:
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    return tok(texts, padding="max_length", max_length=length, truncation=True, return_tensors="pt").input_ids


def _open_clip_config(folder: Path, model: str, **text_cfg) -> Path:
    """An open_clip repo's ``open_clip_config.json``: the model config open_clip ships, ``text_cfg`` updated."""
    cfg = json.loads((Path(open_clip.__file__).parent / "model_configs" / f"{model}.json").read_text())
    cfg["text_cfg"].update(text_cfg)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    return folder


def _edit_json(path: Path, **entries) -> None:
    data = json.loads(path.read_text())
    data.update(entries)
    path.write_text(json.dumps(data))


# ------------------------------------------------------------------------------------------------- CLIP
@pytest.fixture(scope="module")
def clip_vocab(tmp_path_factory) -> Path:
    """``vocab.json`` + ``merges.txt`` of the vocabulary vitzoo ships, as transformers' CLIP repos have them."""
    folder = tmp_path_factory.mktemp("clip-vocab")
    gz = (resources.files("vitzoo") / "data" / "bpe_simple_vocab_16e6.txt.gz").read_bytes()
    merges = gzip.decompress(gz).decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    chars = list(open_clip.tokenizer.bytes_to_unicode().values())
    vocab = [*chars, *(c + "</w>" for c in chars), *("".join(m.split()) for m in merges)]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


def _clip_repo(folder: Path, vocab: Path, pad: str) -> Path:
    tok = transformers.CLIPTokenizer(vocab=str(vocab / "vocab.json"), merges=str(vocab / "merges.txt"), pad_token=pad)
    tok.save_pretrained(folder)
    transformers.CLIPConfig().save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("clean", "length"), fast_first([("lower", 77), ("whitespace", 77), ("canonicalize", 16)]))
def test_open_clip_simple_tokenizer(tmp_path, hub, clean, length):
    """An open_clip repo without hf_tokenizer_name: SimpleTokenizer over the shipped vocabulary, its clean and
    context length; the same from the folder and through the Hub."""
    kwargs = {} if clean == "lower" else {"tokenizer_kwargs": {"clean": clean}}
    folder = _open_clip_config(tmp_path / "oc", "ViT-B-32", context_length=length, **kwargs)
    want = open_clip.get_tokenizer(f"local-dir:{folder}")(TEXTS)
    hub.add_commit("laion/clip-test", folder_files(folder))
    for name in (f"local-dir:{folder}", "hf-hub:laion/clip-test"):
        tok = load_tokenizer(name)
        assert (tok.kind, tok.context_length, tok.pad_id, tok.eot_id) == ("open_clip", length, 0, 49407)
        _assert_same(tok(TEXTS), want, TEXTS)


def test_openai_clip_tags_use_the_shipped_vocabulary(hub):
    """timm's CLIP tags have no tokenizer files: OpenAI's tokenizer (open_clip.tokenize), nothing downloaded."""
    requests = hub.count()
    tok = load_tokenizer("vit_base_patch16_clip_224.openai")
    assert (tok.kind, tok.context_length, tok.pad_id, tok.eot_id, tok.vocab_size) == ("openai", 77, 0, 49407, 49408)
    assert "bpe_simple_vocab_16e6.txt.gz" in tok.name and hub.count() == requests
    _assert_same(tok(TEXTS), open_clip.tokenize(TEXTS), TEXTS)
    assert load_tokenizer("vit_base_patch32_clip_224").name == tok.name  # a bare CLIP arch too
    assert tok("a cat").shape == (1, 77) and tok([]).shape == (0, 77)


@pytest.mark.parametrize("pad", fast_first(["<|endoftext|>", "!"]))
def test_transformers_clip(tmp_path, hub, clip_vocab, pad):
    """transformers CLIP repos, OpenAI's (padded with <|endoftext|>) and LAION's (padded with "!", id 0)."""
    folder = _clip_repo(tmp_path / "clip", clip_vocab, pad)
    want = _transformers_ids(folder, TEXTS, 77)
    hub.add_commit("openai/clip-test", folder_files(folder))
    for name in (f"local-dir:{folder}", "hf-hub:openai/clip-test"):
        tok = load_tokenizer(name)
        assert (tok.kind, tok.pad_id, tok.eot_id) == ("transformers", 49407 if pad != "!" else 0, 49407)
        _assert_same(tok(TEXTS), want, TEXTS)


def test_transformers_clip_from_vocab_and_merges(tmp_path, clip_vocab):
    """A CLIP repo with vocab.json + merges.txt and no tokenizer.json; merges starting with "#" are merges."""
    folder = _clip_repo(tmp_path / "clip", clip_vocab, "<|endoftext|>")
    want = _transformers_ids(folder, TEXTS, 77)
    (folder / "tokenizer.json").unlink()
    shutil.copy(clip_vocab / "vocab.json", folder)
    shutil.copy(clip_vocab / "merges.txt", folder)
    tok = load_tokenizer(folder)
    assert tok.name.endswith("vocab.json + merges.txt")
    _assert_same(tok(TEXTS), want, TEXTS)


def test_the_two_clip_tokenizers_differ_where_their_peers_do(tmp_path, clip_vocab):
    """open_clip fixes mojibake and HTML entities (ftfy) and transformers does not: one shipped vocabulary, two
    tokenizers, each equal to its own peer (the tests above) and different from the other."""
    folder = _clip_repo(tmp_path / "clip", clip_vocab, "<|endoftext|>")
    texts = ["&amp; co", "doesnÃ¢â‚¬â„¢t", "<end_of_text>"]
    hf, oc = load_tokenizer(folder)(texts), load_tokenizer(folder, kind="openai")(texts)
    assert all(not torch.equal(hf[i], oc[i]) for i in range(len(texts)))


def test_kind_picks_the_layout_of_a_repo_with_two(tmp_path, clip_vocab):
    """LAION's repos have transformers' config.json and open_clip's config: the transformers tokenizer by default
    (the config resolve reads), open_clip's with kind="open_clip"; a timm config.json of a CLIP tower is OpenAI's."""
    folder = _open_clip_config(_clip_repo(tmp_path / "laion", clip_vocab, "!"), "ViT-B-32")
    src = resolve(f"local-dir:{folder}")
    assert load_tokenizer(src).kind == "transformers"
    _assert_same(load_tokenizer(src)(TEXTS), _transformers_ids(folder, TEXTS, 77), TEXTS)
    tok = load_tokenizer(src, kind="open_clip")
    assert tok.kind == "open_clip"
    _assert_same(tok(TEXTS), open_clip.get_tokenizer(f"local-dir:{folder}")(TEXTS), TEXTS)
    timm = tmp_path / "timm"
    timm.mkdir()
    (timm / "config.json").write_text(json.dumps({"architecture": "vit_base_patch16_clip_224", "num_classes": 512}))
    assert load_tokenizer(timm).kind == "openai"


# ----------------------------------------------------------------------------------- SigLIP 2 (Gemma BPE)
@pytest.fixture(scope="module")
def gemma_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A small Gemma-style BPE (byte fallback, "▁" for spaces) trained by the tokenizers library."""
    from tokenizers import Tokenizer, models, normalizers, trainers

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *(f"<0x{i:02X}>" for i in range(256))]
    tk = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tk.normalizer = normalizers.Replace(" ", "▁")
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=specials, limit_alphabet=200, show_progress=False)
    tk.train_from_iterator(CAPTIONS + AWKWARD, trainer)
    data = json.loads(tk.to_str())
    return data["model"]["vocab"], [tuple(m) for m in data["model"]["merges"]]


def _gemma_repo(folder: Path, vocab, siglip2: bool, **config) -> Path:
    """Files as google/siglip2-* (transformers) or timm/ViT-*-SigLIP2 (open_clip) have them: GemmaTokenizer with
    add_bos_token false, add_eos_token true, padded on the right (transformers 4 wrote both add_* entries)."""
    tok = transformers.GemmaTokenizer(vocab=vocab[0], merges=vocab[1], add_eos_token=True, padding_side="right")
    tok.save_pretrained(folder)
    _edit_json(folder / "tokenizer_config.json", add_bos_token=False, add_eos_token=True, **config)
    if siglip2:
        transformers.Siglip2Config().save_pretrained(folder)
    return folder


def test_transformers_siglip2(tmp_path, hub, gemma_vocab):
    """google/siglip2-*: transformers 5 reads them as Siglip2Tokenizer, lower-casing (as SigLIP 2 was trained)."""
    folder = _gemma_repo(tmp_path / "siglip2", gemma_vocab, siglip2=True)
    want = _transformers_ids(folder, TEXTS, 64)
    hub.add_commit("google/siglip2-test", folder_files(folder))
    tok = load_tokenizer("hf-hub:google/siglip2-test")
    assert (tok.kind, tok.context_length, tok.pad_id, tok.eot_id) == ("transformers", 64, 0, 1)
    _assert_same(tok(TEXTS), want, TEXTS)
    assert torch.equal(tok("A CAT"), tok("a cat"))


@pytest.mark.parametrize("side", ["right", "left"])
def test_gemma_special_tokens_and_padding_side(tmp_path, gemma_vocab, side):
    """padding_side of tokenizer_config.json counts, add_bos_token / add_eos_token do not (transformers 5 keeps the
    tokenizer.json's post-processor, here an end-of-sequence token); model_max_length is the context length."""
    folder = _gemma_repo(tmp_path / "gemma", gemma_vocab, siglip2=False, padding_side=side)
    _edit_json(folder / "tokenizer_config.json", add_bos_token=True, add_eos_token=False, model_max_length=24)
    tok = load_tokenizer(folder, kind="transformers")
    assert (tok.context_length, tok.eot_id, tok.padding_side) == (24, 1, side)
    _assert_same(tok(TEXTS), _transformers_ids(folder, TEXTS, 24), TEXTS)


def test_a_tokenizer_json_of_another_class_is_read_as_it_is(tmp_path, gemma_vocab):
    """tokenizer_class PreTrainedTokenizerFast: transformers 5 runs the file's own pipeline (no lower-casing or
    Gemma class here), and so does vitzoo."""
    folder = _gemma_repo(tmp_path / "fast", gemma_vocab, siglip2=False)
    _edit_json(folder / "tokenizer_config.json", tokenizer_class="PreTrainedTokenizerFast", model_max_length=40)
    tok = load_tokenizer(folder)
    assert (tok.context_length, tok.pad_id, tok.eot_id) == (40, 0, 1)
    _assert_same(tok(TEXTS), _transformers_ids(folder, TEXTS, 40), TEXTS)


def test_offline_from_the_cache(hub, gemma_vocab, tmp_path, monkeypatch):
    """Once loaded, a repo's tokenizer loads again with HF_HUB_OFFLINE=1 from the cache, with no request; the files
    the repo lacks are remembered as missing."""
    folder = _gemma_repo(tmp_path / "siglip2", gemma_vocab, siglip2=True)
    hub.add_commit("google/siglip2-offline", folder_files(folder))
    want = load_tokenizer("hf-hub:google/siglip2-offline")(TEXTS)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    requests = hub.count()
    _assert_same(load_tokenizer("hf-hub:google/siglip2-offline")(TEXTS), want, TEXTS)
    assert hub.count() == requests


# --------------------------------------------------------------------------------- SigLIP (SentencePiece)
@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> Path:
    """A T5-style unigram SentencePiece model (pad 0, </s> 1, <unk> 2, nmt_nfkc), trained by sentencepiece."""
    spm = pytest.importorskip("sentencepiece")
    path = tmp_path_factory.mktemp("spm") / "spiece.model"
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CAPTIONS + LABELS + AWKWARD),
        model_writer=model,
        vocab_size=1000,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=0.995,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())
    return path


def test_sentencepiece_reader_encodes_as_sentencepiece(spm_model):
    """The reader's normalizer and Viterbi give sentencepiece's pieces and ids, ties included ("a" * n)."""
    import sentencepiece

    from vitzoo.weights.tokenizers.spm import SentencePiece, read_model

    ours, theirs = SentencePiece(read_model(spm_model)), sentencepiece.SentencePieceProcessor(model_file=str(spm_model))
    texts = [*TEXTS, *("a" * n for n in range(1, 80)), *("ab" * n for n in range(1, 40)), *("<unk>" + t for t in TEXTS)]
    for text in texts:
        want = [(piece, theirs.piece_to_id(piece)) for piece in theirs.encode(text, out_type=str)]
        assert ours.encode(text) == want, text


@pytest.mark.parametrize("variant", fast_first(["as saved", "legacy false", "stripping"]))
def test_transformers_siglip(tmp_path, hub, spm_model, variant):
    """google/siglip-* (spiece.model alone): transformers' SiglipTokenizer (sentencepiece); legacy false turns the
    dummy prefix off; the Hub's files have special tokens that strip the whitespace around them."""
    folder = tmp_path / "siglip"
    transformers.SiglipTokenizer(str(spm_model)).save_pretrained(folder)
    transformers.SiglipConfig().save_pretrained(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    if variant == "legacy false":
        _edit_json(folder / "tokenizer_config.json", legacy=False)
    if variant == "stripping":
        for token in config["added_tokens_decoder"].values():
            token.update(lstrip=True, rstrip=True)
        _edit_json(folder / "tokenizer_config.json", added_tokens_decoder=config["added_tokens_decoder"])
    want = _transformers_ids(folder, TEXTS, 64)
    hub.add_commit("google/siglip-test", folder_files(folder))
    tok = load_tokenizer("hf-hub:google/siglip-test")
    assert (tok.context_length, tok.pad_id, tok.eot_id, tok.name) == (64, 1, 1, "google/siglip-test: spiece.model")
    _assert_same(tok(TEXTS), want, TEXTS)


def test_open_clip_siglip(tmp_path, hub, spm_model, gemma_vocab):
    """timm/ViT-*-SigLIP and -SigLIP2: open_clip's HFTokenizer (canonicalized text, then the repo's T5 or Gemma
    tokenizer.json as transformers reads it); open_clip reads a Hub repo's files from hf_tokenizer_name."""
    t5 = tmp_path / "t5-src"
    t5.mkdir()
    shutil.copy(spm_model, t5 / "spiece.model")
    (t5 / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer", "extra_ids": 0}))
    siglip = tmp_path / "ViT-B-16-SigLIP"
    tok = transformers.T5Tokenizer.from_pretrained(t5, legacy=False)  # open_clip's SigLipTokenizer("c4-en")
    tok.pad_token_id = tok.eos_token_id = 1
    tok.save_pretrained(siglip)
    _open_clip_config(siglip, "ViT-B-16-SigLIP", hf_tokenizer_name="timm/ViT-B-16-SigLIP")
    siglip2 = _gemma_repo(tmp_path / "ViT-B-16-SigLIP2", gemma_vocab, siglip2=False)
    _open_clip_config(siglip2, "ViT-B-16-SigLIP2", hf_tokenizer_name="timm/ViT-B-16-SigLIP2")
    for folder, pad in ((siglip, 1), (siglip2, 0)):
        want = open_clip.get_tokenizer(f"local-dir:{folder}")(TEXTS)
        hub.add_commit(f"timm/{folder.name}", folder_files(folder))
        hub.add_commit(
            f"mirror/{folder.name}", {"open_clip_config.json": (folder / "open_clip_config.json").read_bytes()}
        )
        for name in (f"local-dir:{folder}", f"hf-hub:timm/{folder.name}", f"hf-hub:mirror/{folder.name}"):
            tok = load_tokenizer(name)
            assert (tok.kind, tok.context_length, tok.pad_id, tok.eot_id) == ("open_clip", 64, pad, 1)
            _assert_same(tok(TEXTS), want, TEXTS)


# -------------------------------------------------------------------------------------------------- errors
def test_errors_are_one_actionable_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="openai, open_clip, transformers"):
        load_tokenizer("vit_base_patch16_clip_224.openai", kind="clip")
    with pytest.raises(CheckpointError, match="no tokenizer"):
        load_tokenizer("vit_base_patch16_224.augreg_in21k")
    with pytest.raises(InputError, match="text 1 is a int"):
        load_tokenizer("vit_base_patch16_clip_224")(["a cat", 3])
    transformers.CLIPConfig().save_pretrained(tmp_path / "bert")
    (tmp_path / "bert" / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    with pytest.raises(CheckpointError, match="'BertTokenizer' is not supported"):
        load_tokenizer(tmp_path / "bert")
    transformers.CLIPConfig().save_pretrained(tmp_path / "bare")
    with pytest.raises(CheckpointError, match=r"no tokenizer\.json"):
        load_tokenizer(tmp_path / "bare")
    monkeypatch.setitem(sys.modules, "ftfy", None)
    with pytest.raises(VitzooError, match=r"pip install 'vitzoo\[text\]'"):
        load_tokenizer("vit_base_patch16_clip_224")("café")
    assert tokenizers.KINDS == ("openai", "open_clip", "transformers")
