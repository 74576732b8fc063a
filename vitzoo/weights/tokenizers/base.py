"""The one type every tokenizer is: texts in, a padded (N, context_length) tensor of token ids out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ...errors import InputError

# Texts to their ids: specials added and truncated to the context length as the source does it, unpadded.
EncodeBatch = Callable[[list[str]], list[list[int]]]


def per_text(encode: Callable[[str], list[int]]) -> EncodeBatch:
    """An ``EncodeBatch`` of a function of one text."""
    return lambda texts: [encode(text) for text in texts]


@dataclass(frozen=True)
class Tokenizer:
    """A checkpoint's tokenizer: ``tokenizer(texts)`` is the ``(N, context_length)`` int64 tensor its text tower
    reads, each row the ids of one text padded with ``pad_id`` (on the right unless the source says left)."""

    encode_batch: EncodeBatch  # texts -> ids each, specials added, at most context_length long, not padded
    name: str  # what it was read from: "<repo or folder>: <file>", or the vocabulary vitzoo ships
    kind: str  # "openai", "open_clip" or "transformers": whose tokenizer it reproduces (load_tokenizer's kind)
    context_length: int
    pad_id: int
    eot_id: int | None  # the id every sequence ends with (CLIP's <|endoftext|>, SigLIP's </s>); None if none
    vocab_size: int  # rows the text tower's token embedding needs: the largest id any text can give, plus one
    padding_side: str = "right"

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """The ids of ``texts`` (one string or a sequence of them) as a ``(N, context_length)`` LongTensor."""
        batch = [texts] if isinstance(texts, str) else list(texts)
        for i, text in enumerate(batch):
            if not isinstance(text, str):
                raise InputError(f"text {i} is a {type(text).__name__}, not a str: pass strings to the tokenizer")
        out = torch.full((len(batch), self.context_length), self.pad_id, dtype=torch.long)
        for row, ids in zip(out, self.encode_batch(batch), strict=True):
            assert len(ids) <= self.context_length, (self.name, len(ids))
            if ids:
                values = torch.tensor(ids, dtype=torch.long)
                if self.padding_side == "left":
                    row[self.context_length - len(ids) :] = values
                else:
                    row[: len(ids)] = values
        return out

    def __repr__(self) -> str:
        eot = "" if self.eot_id is None else f", eot_id={self.eot_id}"
        return (
            f"Tokenizer({self.name!r}, kind={self.kind!r}, context_length={self.context_length}, "
            f"pad_id={self.pad_id}{eot}, vocab_size={self.vocab_size})"
        )
