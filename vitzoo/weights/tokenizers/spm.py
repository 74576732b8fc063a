"""A SentencePiece unigram model (``spiece.model``) read and run without the sentencepiece library, id for id.

The file is a protobuf ``ModelProto``; the few fields used are read from the wire format directly (no protobuf
package). Encoding is sentencepiece's: the normalizer (the ``precompiled_charsmap`` rules, a double-array trie of
byte strings applied longest match first; whitespace runs dropped, ``▁`` for spaces, a ``▁`` prefix), then the
unigram Viterbi of ``EncodeOptimized`` with its float32 sums and its tie-breaking (the earliest start wins), unknown
characters scored ``min score - 10`` and their runs merged. The ``tokenizers`` library's Unigram breaks ties
otherwise (``"a" * 50``) and its ``Precompiled`` normalizer works grapheme by grapheme, hence this module.

Supported: unigram models without byte fallback or user-defined pieces (T5's and SigLIP's vocabularies).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import CheckpointError

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6  # SentencePiece.Type
SPACE = "▁"  # sentencepiece's whitespace symbol
_UNK_PENALTY = np.float32(10.0)


# ------------------------------------------------------------------------------------------ the protobuf file
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: an int for varints, the bytes of the others."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"protobuf wire type {wire}")
        out.append((number, value))
    return out


def _int32(value: int | bytes) -> int:
    assert isinstance(value, int)
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass(frozen=True)
class SentencePieceModel:
    """The fields of ``ModelProto`` that encoding needs (defaults as in sentencepiece_model.proto)."""

    pieces: list[tuple[str, float, int]] = field(default_factory=list)  # (piece, score, type) by id
    model_type: int = 1  # UNIGRAM
    unk_id: int = 0
    byte_fallback: bool = False
    treat_whitespace_as_suffix: bool = False
    charsmap: bytes = b""  # normalizer_spec.precompiled_charsmap; empty: no rules (identity)
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True


def read_model(path: Path) -> SentencePieceModel:
    """Parse a ``spiece.model``; ``CheckpointError`` for a file that is not one, or one this module cannot run."""
    try:
        model = _parse(path.read_bytes())
    except (ValueError, IndexError, UnicodeDecodeError, struct.error) as err:
        raise CheckpointError(f"{path}: not a SentencePiece model ({err})") from err
    types = {t for _, _, t in model.pieces}
    if model.model_type != 1 or model.byte_fallback or types & {USER_DEFINED, BYTE} or model.treat_whitespace_as_suffix:
        raise CheckpointError(
            f"{path}: only unigram SentencePiece models without byte fallback or user-defined pieces are supported "
            "(T5's and SigLIP's are); load the repo's tokenizer.json instead if it has one"
        )
    if not model.pieces or not 0 <= model.unk_id < len(model.pieces):
        raise CheckpointError(f"{path}: a SentencePiece model without pieces or with unk_id {model.unk_id}")
    return model


def _parse(data: bytes) -> SentencePieceModel:
    pieces: list[tuple[str, float, int]] = []
    trainer: dict[int, int | bytes] = {}
    normalizer: dict[int, int | bytes] = {}
    for number, value in _fields(data):
        if number == 1 and isinstance(value, bytes):
            piece, score, kind = "", 0.0, NORMAL
            for n, v in _fields(value):
                if n == 1 and isinstance(v, bytes):
                    piece = v.decode("utf-8")
                elif n == 2 and isinstance(v, bytes):
                    score = struct.unpack("<f", v)[0]
                elif n == 3 and isinstance(v, int):
                    kind = v
            pieces.append((piece, score, kind))
        elif number == 2 and isinstance(value, bytes):
            trainer = dict(_fields(value))
        elif number == 3 and isinstance(value, bytes):
            normalizer = dict(_fields(value))
    charsmap = normalizer.get(2, b"")
    return SentencePieceModel(
        pieces=pieces,
        model_type=_int32(trainer.get(3, 1)),
        unk_id=_int32(trainer.get(40, 0)),
        byte_fallback=bool(trainer.get(35, 0)),
        treat_whitespace_as_suffix=bool(trainer.get(24, 0)),
        charsmap=charsmap if isinstance(charsmap, bytes) else b"",
        add_dummy_prefix=bool(normalizer.get(3, 1)),
        remove_extra_whitespaces=bool(normalizer.get(4, 1)),
        escape_whitespaces=bool(normalizer.get(5, 1)),
    )


# ------------------------------------------------------------------------------------------------ normalizer
class _CharsMap:
    """sentencepiece's ``precompiled_charsmap``: a darts-clone double-array trie of UTF-8 byte strings, each leaf the
    offset of its replacement in the NUL-separated string table that follows the trie.

    The walk through each character's own bytes is cached (most characters start some key, a composition), so a
    position costs one trie step into the next character, which rarely continues the key."""

    def __init__(self, blob: bytes) -> None:
        (size,) = struct.unpack_from("<I", blob, 0)
        self.units = struct.unpack_from(f"<{size // 4}I", blob, 4)
        self.strings = blob[4 + size :]
        self.walks: dict[bytes, tuple[int, tuple[int, int] | None]] = {}  # char -> (node or -1, (length, value))
        self.replacements: dict[int, bytes] = {}

    def prefix(self, data: bytes, start: int) -> tuple[bytes, int]:
        """sentencepiece's ``NormalizePrefix``: (normalized bytes, bytes consumed) at ``start``: the replacement of
        the longest key ``data[start:]`` starts with, else the character itself."""
        char = data[start : start + _utf8_length(data[start])]
        walk = self.walks.get(char)
        if walk is None:
            walk = self.walks[char] = self._walk(char, 0, self._root(), None)
        node, found = walk
        if node >= 0 and start + len(char) < len(data):
            node, found = self._walk(data, start + len(char), node, found, start)
        if found is None:
            return char, len(char)
        replacement = self.replacements.get(found[1])
        if replacement is None:
            replacement = self.replacements[found[1]] = self.strings[found[1] : self.strings.index(b"\0", found[1])]
        return replacement, found[0]

    def _root(self) -> int:
        unit = self.units[0]
        return (unit >> 10) << ((unit & (1 << 9)) >> 6)

    def _walk(
        self, data: bytes, begin: int, node: int, found: tuple[int, int] | None, origin: int | None = None
    ) -> tuple[int, tuple[int, int] | None]:
        """Walk ``data[begin:]`` from ``node``: (the node reached, or -1 where the trie ends; the longest key met as
        (length from ``origin``, replacement offset))."""
        origin = begin if origin is None else origin
        units = self.units
        for i in range(begin, len(data)):
            node ^= data[i]
            unit = units[node]
            if unit & ((1 << 31) | 0xFF) != data[i]:
                return -1, found
            node ^= (unit >> 10) << ((unit & (1 << 9)) >> 6)
            if (unit >> 8) & 1:
                found = (i + 1 - origin, units[node] & ((1 << 31) - 1))
        return node, found


def _utf8_length(lead: int) -> int:
    return 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4


class SentencePiece:
    """``encode(text)``: sentencepiece's ``EncodeAsPieces`` of a unigram model, as (piece, id) pairs."""

    def __init__(self, model: SentencePieceModel) -> None:
        self.model = model
        self.charsmap = _CharsMap(model.charsmap) if model.charsmap else None
        self.ids = {
            piece: i for i, (piece, _, kind) in reversed(list(enumerate(model.pieces))) if kind in (NORMAL, UNUSED)
        }
        self.all_ids = {piece: i for i, (piece, _, _) in reversed(list(enumerate(model.pieces)))}
        self.unused = {i for i, (_, _, kind) in enumerate(model.pieces) if kind == UNUSED}
        self.scores = [np.float32(score) for _, score, _ in model.pieces]
        normal = [score for _, score, kind in model.pieces if kind == NORMAL] or [0.0]
        self.unk_score = np.float32(min(normal)) - _UNK_PENALTY
        self.prefixes = {piece[:k] for piece in self.ids for k in range(1, len(piece) + 1)}

    def piece_to_id(self, piece: str) -> int:
        """The id of a piece (control pieces included), the unknown id for anything else."""
        return self.all_ids.get(piece, self.model.unk_id)

    def normalize(self, text: str, add_dummy_prefix: bool) -> str:
        """sentencepiece's ``Normalizer::Normalize``."""
        spec, data = self.model, text.encode("utf-8")
        space = SPACE.encode() if spec.escape_whitespaces else b" "
        out, i = bytearray(), 0

        def prefix(start: int) -> tuple[bytes, int]:
            if self.charsmap is not None:
                return self.charsmap.prefix(data, start)
            n = _utf8_length(data[start])
            return data[start : start + n], n

        if spec.remove_extra_whitespaces:
            while i < len(data) and (step := prefix(i))[0] == b" ":
                i += step[1]
        if i >= len(data):
            return ""
        if add_dummy_prefix:
            out += space
        prev_space = spec.remove_extra_whitespaces
        while i < len(data):
            piece, consumed = prefix(i)
            while prev_space and piece.startswith(b" "):
                piece = piece[1:]
            if piece:
                out += piece.replace(b" ", space) if spec.escape_whitespaces else piece
                prev_space = piece.endswith(b" ")
            i += consumed
            prev_space = prev_space and spec.remove_extra_whitespaces
        if spec.remove_extra_whitespaces:
            while out.endswith(space):
                del out[-len(space) :]
        return out.decode("utf-8")

    def encode(self, text: str, add_dummy_prefix: bool | None = None) -> list[tuple[str, int]]:
        """(piece, id) of ``text``; ``add_dummy_prefix`` overrides the model's (transformers turns it off)."""
        prefix = self.model.add_dummy_prefix if add_dummy_prefix is None else add_dummy_prefix
        return self._viterbi(self.normalize(text, prefix))

    def _viterbi(self, text: str) -> list[tuple[str, int]]:
        """``EncodeOptimized``: the best path ending at each position, candidates in order of start then length,
        replaced only by a strictly better float32 score; unknown runs merged."""
        n = len(text)
        score: list[np.float32] = [np.float32(0.0)] * (n + 1)
        start, ids = [-1] * (n + 1), [-1] * (n + 1)
        for s in range(n):
            till, single = score[s], False
            for e in range(s + 1, n + 1):
                piece = text[s:e]
                if piece not in self.prefixes:
                    break
                i = self.ids.get(piece)
                if i is None or i in self.unused:
                    continue
                candidate = self.scores[i] + till
                if start[e] == -1 or candidate > score[e]:
                    score[e], start[e], ids[e] = candidate, s, i
                single = single or e == s + 1
            if not single:
                candidate = self.unk_score + till
                if start[s + 1] == -1 or candidate > score[s + 1]:
                    score[s + 1], start[s + 1], ids[s + 1] = candidate, s, self.model.unk_id
        path: list[tuple[str, int]] = []
        e = n
        while e > 0:
            s = start[e]
            if ids[e] == self.model.unk_id and path and path[-1][1] == self.model.unk_id:
                path[-1] = (text[s:e] + path[-1][0], ids[e])  # a run of unknown characters is one piece
            else:
                path.append((text[s:e], ids[e]))
            e = s
        return path[::-1]
