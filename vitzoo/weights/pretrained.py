"""The published checkpoints, keyed ``arch.tag``: the generated table (``vitzoo.weights.tags``) looked up exactly.

A user's name is parsed by ``vitzoo.weights.source``; this module only answers for names already split.
"""

from __future__ import annotations

import fnmatch

from ..models.pretrained_cfg import PretrainedCfg
from .tags import TAGS

# every published checkpoint, keyed "arch.tag", in table order (each arch's default tag first)
PRETRAINED: dict[str, PretrainedCfg] = {cfg.name: cfg for cfg in TAGS}


def list_pretrained(pattern: str | None = None) -> list[str]:
    """``arch.tag`` names of every known checkpoint, in table order (each arch's default tag first), optionally
    filtered by a shell-style ``pattern``."""
    return [n for n in PRETRAINED if pattern is None or fnmatch.fnmatch(n, pattern)]


def tags_of(arch: str) -> list[PretrainedCfg]:
    """The checkpoints of a registered arch, default first (empty when it has none)."""
    return [cfg for cfg in PRETRAINED.values() if cfg.arch == arch]
