"""transformers' ``SiglipTokenizer`` (google/siglip-* repos: ``spiece.model`` alone) without sentencepiece.

What transformers 5 does with ``tokenizer(texts, padding="max_length", max_length=64, truncation=True)``:

1. ``"▁" + text`` (any ``▁`` in the text first made a space), split at the added and special tokens (``</s>``,
   ``<unk>``, ...), which stand for their own ids;
2. each other piece canonicalized (lower-cased when ``do_lower_case``, ASCII punctuation removed, whitespace runs
   to one space, stripped), then encoded as ``"<unk>" + piece`` with the pieces of ``"<unk>"`` dropped from the front
   (sentencepiece's dummy ``▁`` prefix stays on unless ``tokenizer_config.json`` says ``legacy: false``);
3. a leading ``▁`` piece before a special token dropped; truncated to ``max_length - 1`` ids, then ``</s>`` appended
   unless the ids already end with it; padded with ``pad_token`` (``</s>``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from ...errors import CheckpointError
from .base import Tokenizer, per_text
from .files import RepoFiles
from .hf import token_name
from .spm import SPACE, SentencePiece, read_model

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_WHITESPACE = re.compile(r"\s+")


def siglip_tokenizer(files: RepoFiles, settings: Mapping[str, Any], *, context_length: int, kind: str) -> Tokenizer:
    """The ``SiglipTokenizer`` of a repo's ``spiece.model`` and ``tokenizer_config.json`` entries ``settings``."""
    path = files.get("spiece.model")
    if path is None:
        raise CheckpointError(f"{files.label}: a SiglipTokenizer is read from spiece.model, and the repo has none")
    sp = SentencePiece(read_model(path))
    dummy_prefix = sp.model.add_dummy_prefix and bool(settings.get("legacy", True))
    lower = bool(settings.get("do_lower_case", True))
    named = {key: token_name(settings.get(key)) or default for key, default in _NAMED.items()}
    added, special = _added_tokens(sp, settings, named)
    eos_id, pad_id, unk = added[named["eos_token"]], added[named["pad_token"]], named["unk_token"]
    unk_length = len(sp.encode(unk, dummy_prefix))
    splitter = re.compile("|".join(re.escape(t) for t in sorted(added, key=len, reverse=True)))

    def canonicalize(text: str) -> str:  # transformers' own: "_" is removed (open_clip's makes it a space)
        text = text.lower() if lower else text
        return _WHITESPACE.sub(" ", text.translate(_PUNCTUATION)).strip()

    def encode(text: str) -> list[int]:
        text = SPACE + text.replace(SPACE, " ")
        tokens: list[tuple[str, int]] = []
        last = 0
        for match in [*splitter.finditer(text), None]:
            chunk = text[last : match.start() if match is not None else len(text)]
            if chunk:
                pieces = sp.encode(unk + canonicalize(chunk), dummy_prefix)
                tokens += pieces[unk_length:] if len(pieces) >= unk_length else pieces
            if match is not None:
                tokens.append((match.group(), added[match.group()]))
                last = match.end()
        if len(tokens) > 1 and tokens[0][0] == SPACE and tokens[1][0] in special:
            tokens = tokens[1:]
        ids = [i for _, i in tokens][: context_length - 1]
        return ids if ids and ids[-1] == eos_id else [*ids, eos_id]

    return Tokenizer(
        per_text(encode),
        files.where("spiece.model"),
        kind,
        context_length,
        pad_id=pad_id,
        eot_id=eos_id,
        vocab_size=max(len(sp.model.pieces), max(added.values()) + 1),
    )


_NAMED = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "</s>"}  # SiglipTokenizer's defaults


def _added_tokens(
    sp: SentencePiece, settings: Mapping[str, Any], named: dict[str, str]
) -> tuple[dict[str, int], set[str]]:
    """Every token the text is split at, with its id (the named special tokens, ``additional_special_tokens``, and
    ``added_tokens_decoder`` with ids past the vocabulary for tokens it does not have), and the special ones."""
    special = set(named.values())
    for token in settings.get("additional_special_tokens") or settings.get("extra_special_tokens") or []:
        special |= {name} if (name := token_name(token)) is not None else set()
    added = {token: sp.piece_to_id(token) for token in special}
    decoder = settings.get("added_tokens_decoder") or {}
    for key, token in decoder.items() if isinstance(decoder, Mapping) else ():
        if (name := token_name(token)) is not None:
            added[name] = int(key)
    missing = [t for t in named.values() if added[t] == sp.model.unk_id and t != named["unk_token"]]
    if missing:
        raise CheckpointError(
            f"the special tokens {missing} are not in the SentencePiece model; fix tokenizer_config.json"
        )
    return added, special
