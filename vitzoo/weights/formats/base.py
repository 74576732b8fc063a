"""What every format converter returns, and the error it raises."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from ...errors import FormatError


@dataclass
class Converted:
    """A state dict under vitzoo (timm) names, plus what the conversion did that a user should hear about."""

    format: str
    state_dict: dict[str, torch.Tensor]
    notes: list[str] = field(default_factory=list)  # e.g. "stripped 'module.' prefix", "fused q/k/v"
    dropped: dict[str, str] = field(default_factory=dict)  # checkpoint key (or "prefix.*") -> why it was not kept
    # how this format's position table is resampled to a model's (h, w) grid; None: the model's own interpolation
    resample_pos_embed: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor] | None = None


def rename_keys(
    state_dict: Mapping[str, torch.Tensor], rules: Sequence[tuple[str, str]], what: str, strip: str = ""
) -> dict[str, torch.Tensor]:
    """Rename every key by the first rule whose regex matches the whole key (after removing ``strip``).

    A key no rule matches raises ``FormatError`` naming it, so nothing is silently dropped.
    """
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        name = key.removeprefix(strip) if strip else key
        for pattern, replacement in compiled:
            if pattern.fullmatch(name):
                out[pattern.sub(replacement, name)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise FormatError(f"keys not understood as a {what} checkpoint: {unknown[:8]}")
    return out


def concat_parts(
    state_dict: Mapping[str, torch.Tensor], pattern: str, order: Mapping[str, int], target: str, what: str
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Concatenate separately stored projections along dim 0 into one fused tensor (q/k/v into ``qkv``).

    ``pattern`` matches a whole key with three groups: the block number, the part's name (a key of ``order``,
    which gives its row position) and ``weight``/``bias``; ``target`` is formatted with the block and that last
    group (``"blocks.{}.attn.qkv.{}"``). Returns (the fused tensors, every other key untouched). A fused tensor with
    a part missing raises ``FormatError``.
    """
    regex = re.compile(pattern)
    groups: dict[tuple[int, str], dict[int, torch.Tensor]] = {}
    rest: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        match = regex.fullmatch(key)
        if match:
            block, part, kind = match.groups()
            groups.setdefault((int(block), kind), {})[order[part]] = value
        else:
            rest[key] = value
    fused = {}
    for (block, kind), parts in sorted(groups.items()):
        if sorted(parts) != sorted(set(order.values())):
            raise FormatError(f"{what}: block {block}: the {kind} of {sorted(order)} is incomplete in the checkpoint")
        fused[target.format(block, kind)] = torch.cat([parts[i] for i in sorted(parts)], dim=0)
    return fused, rest
