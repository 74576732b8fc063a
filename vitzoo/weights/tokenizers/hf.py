"""A repo's ``tokenizer.json`` (or CLIP's ``vocab.json`` + ``merges.txt``) through the ``tokenizers`` library, as
transformers 5 loads it and ``tokenizer(texts, padding="max_length", max_length=L, truncation=True)`` encodes it.

transformers 5 takes the vocabulary, merges and added tokens from the file but the normalizer and pre-tokenizer from
its tokenizer class (``tokenizer_class`` of ``tokenizer_config.json``; for ``model_type: siglip2`` always
``Siglip2Tokenizer``, which the Hub files misname ``GemmaTokenizer``), so the same is done here for the classes the
CLIP and SigLIP checkpoints name:

==================  ===================================================================================
``CLIPTokenizer``   NFC, whitespace runs to a space, lower-case; CLIP's pattern, byte-level; BPE ``</w>``
``GemmaTokenizer``  spaces to ``▁``; BPE with byte fallback (SigLIP 2 in open_clip repos)
``Siglip2Tokenizer`` lower-case, then as Gemma (google/siglip2-* repos: SigLIP 2 was trained lower-cased)
``T5Tokenizer``     the file's SentencePiece character map; whitespace split, ``▁`` prefix; Unigram
others              the ``tokenizer.json`` as it is (``PreTrainedTokenizerFast``, ``TokenizersBackend``)
==================  ===================================================================================

The special tokens around a text are the file's post-processor's (CLIP's and T5's classes set their own):
transformers 5 ignores ``add_bos_token`` / ``add_eos_token`` of ``tokenizer_config.json`` when there is a
``tokenizer.json``. Truncation keeps those tokens (CLIP's end-of-text stays last); padding uses the ``pad_token`` and
``padding_side`` of ``tokenizer_config.json``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import CheckpointError, VitzooError
from .base import Tokenizer
from .files import RepoFiles

if TYPE_CHECKING:
    from tokenizers import Tokenizer as Backend

CLASSES = ("CLIPTokenizer", "GemmaTokenizer", "Siglip2Tokenizer", "T5Tokenizer", "TokenizersBackend")
_AS_IS = ("TokenizersBackend", "PreTrainedTokenizer", "PreTrainedTokenizerFast")  # the file as it is
_CLIP_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
# The special tokens each class defaults to when the repo's tokenizer_config.json names none.
_DEFAULTS: dict[str, dict[str, str]] = {
    "CLIPTokenizer": {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
    "GemmaTokenizer": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"},
    "Siglip2Tokenizer": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"},
    "T5Tokenizer": {"eos_token": "</s>", "pad_token": "<pad>"},
}


def token_name(value: Any) -> str | None:
    """A special token as ``tokenizer_config.json`` writes it: a string or an AddedToken's ``{"content": ...}``."""
    if isinstance(value, Mapping):
        value = value.get("content")
    return value if isinstance(value, str) else None


def hf_tokenizer(
    files: RepoFiles,
    cls: str,
    settings: Mapping[str, Any],
    *,
    context_length: int,
    clean: Callable[[str], str] | None = None,
    kind: str,
) -> Tokenizer:
    """The tokenizer of class ``cls`` (a name of ``CLASSES``) from ``files``; ``settings`` are its
    ``tokenizer_config.json`` (and ``special_tokens_map.json``) entries; ``clean`` runs on each text first (open_clip's
    ``HFTokenizer``)."""
    try:
        import tokenizers
    except ImportError as err:
        raise VitzooError("reading a tokenizer.json needs tokenizers: pip install 'vitzoo[text]'") from err
    cls = "TokenizersBackend" if cls in _AS_IS else cls
    named = {key: token_name(settings.get(key)) for key in ("bos_token", "eos_token", "pad_token")}
    special = {**_DEFAULTS.get(cls, {}), **{key: token for key, token in named.items() if token is not None}}
    path = files.get("tokenizer.json")
    if path is not None:
        backend = tokenizers.Tokenizer.from_file(str(path))
        name = files.where("tokenizer.json")
    elif cls == "CLIPTokenizer":
        backend, name = _clip_from_vocab(files, special), files.where("vocab.json + merges.txt")
    else:
        raise CheckpointError(f"{files.label} has no tokenizer.json: a {cls} is read from one")
    _as_class(backend, cls, path, special, settings)

    pad_id = _token_id(backend, special.get("pad_token"), "pad_token", name)
    backend.no_padding()
    backend.enable_truncation(context_length, direction=str(settings.get("truncation_side", "right")))
    empty = backend.encode("").ids
    eos = special.get("eos_token")
    eot_id = backend.token_to_id(eos) if eos is not None else None
    eot_id = eot_id if empty and empty[-1] == eot_id else None

    def encode_batch(texts: list[str]) -> list[list[int]]:
        cleaned = texts if clean is None else [clean(text) for text in texts]
        return [encoding.ids for encoding in backend.encode_batch(cleaned)]

    return Tokenizer(
        encode_batch,
        name,
        kind,
        context_length,
        pad_id=pad_id,
        eot_id=eot_id,
        vocab_size=backend.get_vocab_size(with_added_tokens=True),
        padding_side=str(
            settings.get("padding_side", "left" if cls in ("GemmaTokenizer", "Siglip2Tokenizer") else "right")
        ),
    )


def _as_class(
    backend: Backend, cls: str, path: Path | None, special: Mapping[str, str], settings: Mapping[str, Any]
) -> None:
    """Give ``backend`` the normalizer, pre-tokenizer and post-processor transformers 5's class ``cls`` gives it."""
    from tokenizers import Regex, normalizers, pre_tokenizers, processors

    if cls == "CLIPTokenizer":
        backend.normalizer = normalizers.Sequence(
            [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
        )
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(_CLIP_PATTERN), behavior="removed", invert=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False),
            ]
        )
        bos, eos = special["bos_token"], special["eos_token"]
        backend.post_processor = processors.RobertaProcessing(
            (eos, _token_id(backend, eos, "eos_token", cls)),
            (bos, _token_id(backend, bos, "bos_token", cls)),
            False,
            False,
        )
    elif cls in ("GemmaTokenizer", "Siglip2Tokenizer"):
        gemma = normalizers.Replace(" ", "▁")
        backend.normalizer = (
            normalizers.Sequence([normalizers.Lowercase(), gemma]) if cls == "Siglip2Tokenizer" else gemma
        )
        backend.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    elif cls == "T5Tokenizer":
        charsmap = _precompiled_charsmap(path)
        backend.normalizer = normalizers.Precompiled(charsmap) if charsmap is not None else None
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
        )
        eos = special["eos_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=["$A", eos],
            pair=["$A", eos, "$B", eos],
            special_tokens=[(eos, _token_id(backend, eos, "eos_token", cls))],
        )


def _token_id(backend: Backend, token: str | None, what: str, where: str) -> int:
    found = backend.token_to_id(token) if token is not None else None
    if found is None:
        raise CheckpointError(f"{where}: the {what} {token!r} is not in the vocabulary; fix tokenizer_config.json")
    return found


def _precompiled_charsmap(path: Path | None) -> bytes | None:
    """The SentencePiece character map of a ``tokenizer.json``'s normalizer (alone or in a Sequence), if any."""
    if path is None:
        return None
    normalizer = json.loads(path.read_text(encoding="utf-8")).get("normalizer") or {}
    for part in normalizer.get("normalizers", [normalizer]) if normalizer.get("type") == "Sequence" else [normalizer]:
        if part.get("type") == "Precompiled" and part.get("precompiled_charsmap"):
            return base64.b64decode(part["precompiled_charsmap"])
    return None


def _clip_from_vocab(files: RepoFiles, special: Mapping[str, str]) -> Backend:
    """CLIP's BPE from ``vocab.json`` and ``merges.txt`` (repos saved before ``tokenizer.json`` existed)."""
    from tokenizers import AddedToken
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import BPE

    vocab_path, merges_path = files.get("vocab.json"), files.get("merges.txt")
    if vocab_path is None or merges_path is None:
        raise CheckpointError(f"{files.label} has no tokenizer.json, and no vocab.json and merges.txt for CLIP's BPE")
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    lines = merges_path.read_text(encoding="utf-8").splitlines()
    lines = lines[1:] if lines and lines[0].startswith("#version") else lines  # "# :" is a merge, not a comment
    merges = [(a, b) for a, b in (line.split() for line in lines if line)]
    backend = Backend(
        BPE(
            vocab,
            merges,
            continuing_subword_prefix="",
            end_of_word_suffix="</w>",
            fuse_unk=False,
            unk_token=special["eos_token"],
        )
    )
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in dict.fromkeys(special.values())])
    return backend
