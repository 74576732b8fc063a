"""The published checkpoints, keyed ``arch.tag``: the generated table (``vitzoo.weights.tags``) looked up exactly.

A user's name is parsed by ``vitzoo.weights.source``; this module only answers for names already split.
"""

from __future__ import annotations

import fnmatch

from ..models import archs
from ..models.pretrained_cfg import PretrainedCfg
from .tags import TAGS

# every published checkpoint, keyed "arch.tag", in table order (each arch's default tag first)
PRETRAINED: dict[str, PretrainedCfg] = {cfg.name: cfg for cfg in TAGS}


def list_pretrained(pattern: str | None = None) -> list[str]:
    """``arch.tag`` names of every known checkpoint, in table order (each arch's default tag first), optionally
    filtered by a shell-style ``pattern``."""
    return [n for n in PRETRAINED if pattern is None or fnmatch.fnmatch(n, pattern)]


def list_models(pattern: str | None = None, pretrained: bool = False) -> list[str]:
    """Arch names in table order, optionally filtered by a shell-style ``pattern`` (``"*base*"``; paper aliases
    match too). ``pretrained=True``: the checkpoints (``arch.tag``) instead, as timm's ``list_models(pretrained=True)``
    names them; a pattern without a tag also matches the tags of the archs it matches (``"vit_tiny*"``)."""
    if not pretrained:
        return archs.list_models(pattern)
    if pattern is None:
        return list_pretrained()
    matched = set(archs.list_models(pattern))
    return [
        n for n in PRETRAINED if fnmatch.fnmatch(n, pattern) or ("." not in pattern and n.partition(".")[0] in matched)
    ]


def tags_of(arch: str) -> list[PretrainedCfg]:
    """The checkpoints of a registered arch, default first (empty when it has none)."""
    return [cfg for cfg in PRETRAINED.values() if cfg.arch == arch]
