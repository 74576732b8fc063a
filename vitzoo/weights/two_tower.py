"""Where a checkpoint's text tower is: the config describing both towers, and the one weights file holding them.

A name ``source.resolve`` has parsed holds an image-text model when its Hub repo or folder has

1. a transformers two-tower ``config.json`` (``CLIPModel``, ``SiglipModel``, ``Siglip2Model``) beside
   ``model.safetensors`` / ``pytorch_model.bin``, or
2. an ``open_clip_config.json`` beside ``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin``: open_clip's
   hub layout (laion/CLIP-ViT-*, timm/ViT-*-SigLIP*), which timm's CLIP tag repos of the OpenAI, LAION-400M and
   MetaCLIP weights carry beside timm's own files.

A registered tag (or an architecture, by its default tag) is looked up in its Hub repo. Anything else holds no text
tower, and ``locate`` says so in one line, naming the repo that has it where ``text_repos`` knows one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..models.config import ViTConfig
from ..models.pretrained_cfg import PretrainedCfg
from ..models.text import TextConfig
from . import hub, loading
from .configs import from_open_clip, from_transformers, is_open_clip
from .configs.text import has_logit_bias, has_text_tower, text_config
from .source import Location, Source, default_checkpoint, resolve
from .text_repos import text_tower_repo
from .tokenizers import load_tokenizer

TRANSFORMERS_FILES = ("config.json", ("model.safetensors", "pytorch_model.bin"))
OPEN_CLIP_FILES = ("open_clip_config.json", loading.OPEN_CLIP_WEIGHT_FILES)


@dataclass(frozen=True)
class TwoTower:
    """A checkpoint with both towers: what each is, its facts, and where its weights are."""

    source: Source  # the name as resolved (its repo or folder also holds the tokenizer's files)
    config: Mapping[str, Any]  # the two-tower config: a transformers config.json or an open_clip_config.json
    vision: ViTConfig
    text: TextConfig
    logit_bias: bool  # SigLIP: the logits have a learned bias
    facts: PretrainedCfg  # the image tower's preprocessing and provenance
    location: Location  # the weights file holding both towers (filenames in preference order)

    @property
    def layout(self) -> str:
        """``"open_clip"`` or ``"transformers"``: who wrote the config and the weights."""
        return "open_clip" if is_open_clip(self.config) else "transformers"

    def read(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The checkpoint's tensors (downloaded first when on the Hub) and the file they were read from."""
        path = self.location.weights_file()
        return loading.read_file(path), (str(path),)


def locate(src: Source, revision: str | None = None) -> TwoTower:
    """The two towers of ``src``: a Hub repo, a folder, a registered tag or an arch (its default tag)."""
    src = default_checkpoint(src, revision)
    where = src.location
    if where is None or (where.path is not None and not where.path.is_dir()):
        raise CheckpointError(
            f"{src.label} holds no text tower config: load an image-text model from a Hub repo or folder with a "
            "transformers CLIPModel / SiglipModel config.json or an open_clip_config.json"
        )
    seen: dict[str, Mapping[str, Any]] = {}
    for filename, weights in (TRANSFORMERS_FILES, OPEN_CLIP_FILES):
        config = _config(where, filename)
        if config is None:
            continue
        if has_text_tower(config):
            return _two_tower(src, where, config, weights)
        seen[filename] = config
    raise _no_text_tower(src, where, seen)


def prefetch(name: str, revision: str | None = None) -> tuple[TwoTower, Path]:
    """Every file ``create_image_text_model(name, revision=revision)`` reads, and its tokenizer's, into the Hugging
    Face cache (the same reads, so the files a repo lacks are remembered as missing too): afterwards the model and its
    tokenizer load with ``HF_HUB_OFFLINE=1``. The tokenizer is read to learn which files it needs (a
    ``tokenizer.json`` needs ``vitzoo[text]``). Returns the towers and their weights file."""
    towers = locate(resolve(name, revision=revision), revision)
    weights = towers.location.weights_file()
    load_tokenizer(towers.source, kind=towers.layout)
    return towers, weights


def _config(where: Location, filename: str) -> dict[str, Any] | None:
    if where.repo_id is None:
        assert where.path is not None
        return loading.read_config(where.path, filename)
    path = hub.download_if_present(where.repo_id, filename, revision=where.revision)
    return None if path is None else loading.read_config(path, filename)


def _two_tower(src: Source, where: Location, config: Mapping[str, Any], weights: tuple[str, ...]) -> TwoTower:
    name = src.name
    if is_open_clip(config):
        vision, facts = from_open_clip(config, name, where.repo_id)
        if src.arch is not None and src.facts is not None:  # a timm tag: its license and recipe still apply
            facts = dataclasses.replace(
                facts, license=src.facts.license, description=f"{src.facts.description}; open_clip's two towers"
            )
    else:
        vision, facts = from_transformers(config, name, set(), where.repo_id, where.processor_config())
    return TwoTower(
        source=src,
        config=config,
        vision=vision,
        text=text_config(config, name),
        logit_bias=has_logit_bias(config),
        facts=facts,
        location=dataclasses.replace(where, filenames=weights),
    )


def _no_text_tower(src: Source, where: Location, seen: Mapping[str, Mapping[str, Any]]) -> CheckpointError:
    config = seen.get("config.json")
    if config is None:
        what = "it has no config.json or open_clip_config.json"
    elif config.get("model_type"):
        what = f"its config.json describes a transformers {config['model_type']!r} image model"
    else:
        what = f"its config.json describes timm's image model {config.get('architecture', '?')}"
    repo = text_tower_repo(where.repo_id)
    if repo is not None:
        hint = f"its text tower is in hf-hub:{repo}: create_image_text_model('hf-hub:{repo}')"
    else:
        hint = (
            f"create_model({src.name!r}) loads the image tower; image-text models load from transformers CLIPModel / "
            "SiglipModel / Siglip2Model repos and open_clip repos"
        )
    return CheckpointError(f"{src.label} holds no text tower ({what}, and no open_clip_config.json); {hint}")
