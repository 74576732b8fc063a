"""OpenAI CLIP's byte-level BPE over the vocabulary vitzoo ships, as open_clip's ``SimpleTokenizer`` does it.

``bpe_simple_vocab_16e6.txt.gz`` (OpenAI, MIT; the copy open_clip ships) holds 48,894 merges; the vocabulary is the
256 byte characters, the same with ``</w>`` (end of word), one token per merge, then ``<start_of_text>`` 49406 and
``<end_of_text>`` 49407. A text is cleaned (``text.clean_fn``), split by CLIP's pattern (with the ``regex`` module:
``\\p{L}`` and ``IGNORECASE`` as open_clip compiles it, which no other engine reproduces on every character), each
word's UTF-8 bytes mapped to characters and merged lowest rank first. Written out here rather than run through the
``tokenizers`` library: its pattern engine splits some characters (combining marks such as U+0345) otherwise.
"""

from __future__ import annotations

import functools
import gzip
import itertools
from importlib import resources

from ...errors import VitzooError
from .base import Tokenizer, per_text
from .text import clean_fn

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
CONTEXT_LENGTH = 77
SOT, EOT = 49406, 49407
_N_MERGES = 49152 - 256 - 2  # the merges open_clip reads: lines 1 .. 48894 of the file
_SPECIALS = ("<start_of_text>", "<end_of_text>")
_PATTERN = r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
_CACHE_SIZE = 200_000  # words whose ids are kept; the cache starts over when full


@functools.cache
def _byte_chars() -> dict[int, str]:
    """GPT-2's reversible map of the 256 byte values to printable characters, in the vocabulary's order (the
    printable bytes first, as open_clip's ``bytes_to_unicode``)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {byte: chr(byte) for byte in printable}
    for byte in range(256):
        if byte not in chars:
            chars[byte] = chr(256 + len(chars) - len(printable))
    return chars


class ClipBPE:
    """Text (already cleaned) to CLIP BPE ids, without the start and end tokens."""

    def __init__(self, merges: list[tuple[str, str]]) -> None:
        try:
            import regex
        except ImportError as err:
            raise VitzooError("CLIP's tokenizer needs regex: pip install 'vitzoo[text]'") from err
        chars = list(_byte_chars().values())
        vocab = [*chars, *(c + "</w>" for c in chars), *("".join(m) for m in merges), *_SPECIALS]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.ranks = {merge: i for i, merge in enumerate(merges)}
        self.pattern = regex.compile(_PATTERN, regex.IGNORECASE)
        self.cache: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in self.pattern.findall(text):
            cached = self.cache.get(word)
            if cached is None:
                if len(self.cache) >= _CACHE_SIZE:
                    self.cache.clear()
                cached = self.cache[word] = self._word(word)
            ids += cached
        return ids

    def _word(self, word: str) -> list[int]:
        if word in _SPECIALS:
            return [self.encoder[word]]
        chars = _byte_chars()
        symbols = [chars[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        while len(symbols) > 1:
            pairs = set(itertools.pairwise(symbols))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, _N_MERGES))
            if best not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return [self.encoder[s] for s in symbols]


@functools.cache
def shipped_bpe() -> ClipBPE:
    """The BPE of the vocabulary vitzoo ships (read once per process)."""
    data = (resources.files("vitzoo") / "data" / VOCAB_FILE).read_bytes()
    lines = gzip.decompress(data).decode("utf-8").split("\n")[1 : _N_MERGES + 1]
    merges = [(a, b) for a, b in (line.split() for line in lines)]
    return ClipBPE(merges)


def simple_tokenizer(*, context_length: int = CONTEXT_LENGTH, clean: str = "lower", name: str, kind: str) -> Tokenizer:
    """open_clip's ``SimpleTokenizer(context_length=..., clean=...)``: start and end tokens, truncated to the
    context keeping the end token last, padded with 0."""
    bpe, cleaner = shipped_bpe(), clean_fn(clean)

    def encode(text: str) -> list[int]:
        ids = [SOT, *bpe.encode(cleaner(text)), EOT]
        return ids if len(ids) <= context_length else [*ids[: context_length - 1], EOT]

    return Tokenizer(per_text(encode), name, kind, context_length, pad_id=0, eot_id=EOT, vocab_size=len(bpe.encoder))
