"""``load_tokenizer``: which tokenizer a checkpoint has, read from its own files.

==============================  ============================================================================
``kind``                        read from
==============================  ============================================================================
``"openai"``                    the CLIP vocabulary vitzoo ships, as open_clip's default ``SimpleTokenizer``
``"open_clip"``                 ``open_clip_config.json``'s ``text_cfg``: ``SimpleTokenizer`` over the shipped
                                vocabulary, or ``HFTokenizer`` over the files of ``hf_tokenizer_name``
``"transformers"``              ``tokenizer_config.json`` with ``tokenizer.json``, ``vocab.json`` +
                                ``merges.txt`` or ``spiece.model``; the context length from ``config.json``
==============================  ============================================================================

Without ``kind``, a repo or folder is read as the config ``resolve`` reads (``config.json`` of transformers first,
then ``open_clip_config.json``); a timm CLIP image tower (a registered tag such as
``vit_base_patch16_clip_224.openai``, or a repo with timm's ``config.json``) has no tokenizer files and gets
``"openai"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import CheckpointError, ConfigError
from .. import configs, hub
from ..source import Source, resolve
from .base import Tokenizer
from .clip import CONTEXT_LENGTH, VOCAB_FILE, simple_tokenizer
from .files import RepoFiles
from .hf import CLASSES, hf_tokenizer
from .siglip import siglip_tokenizer
from .text import CLEANS, clean_fn

KINDS = ("openai", "open_clip", "transformers")
OPEN_CLIP_CONFIG = "open_clip_config.json"
_BY_MODEL_TYPE = {"clip": "CLIPTokenizer", "siglip": "SiglipTokenizer", "siglip2": "Siglip2Tokenizer"}
_MAX_CONTEXT = 100_000  # a model_max_length above this is transformers' "no limit" (1e30), not a context length


def load_tokenizer(source: Source | str, *, kind: str | None = None) -> Tokenizer:
    """The tokenizer of a checkpoint: a name ``resolve`` reads (a tag, ``hf-hub:org/repo``, ``local-dir:PATH``, a
    folder) or a resolved ``Source``; ``kind`` (one of ``KINDS``) picks whose files to read when a repo has more than
    one layout. Nothing but the tokenizer's files is downloaded."""
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"tokenizer kind {kind!r} is unknown; use one of {', '.join(KINDS)}, or None to detect it")
    src = source if isinstance(source, Source) else resolve(source)
    files = _files(src)
    kind = kind or _detect(src, files)
    if kind == "openai":
        return simple_tokenizer(name=f"vitzoo: {VOCAB_FILE}", kind="openai")
    if files is None:
        raise CheckpointError(f"{src.label} names no repo or folder to read a {kind} tokenizer from")
    return _open_clip(files) if kind == "open_clip" else transformers_tokenizer(files)


def _files(src: Source) -> RepoFiles | None:
    """Where the source's files are: its Hub repo, or the folder of its local file or folder."""
    location = src.location
    if location is None:
        return None
    if location.repo_id is not None:
        return RepoFiles(location.repo_id, repo_id=location.repo_id, revision=location.revision)
    assert location.path is not None
    folder = location.path if location.path.is_dir() else location.path.parent
    return RepoFiles(str(folder), folder=folder)


def _is_clip_tower(arch: str) -> bool:
    return "clip" in arch and "siglip" not in arch


def _detect(src: Source, files: RepoFiles | None) -> str:
    """The kind of tokenizer a source has: "openai" for a CLIP image tower of the registry, else by its files."""
    if src.arch is not None or files is None:
        if src.arch is not None and _is_clip_tower(src.arch):
            return "openai"
        raise CheckpointError(
            f"{src.label} is an image model whose checkpoint has no tokenizer; load an image-text checkpoint "
            "(hf-hub:ORG/REPO of open_clip or transformers) or pass kind='openai' for CLIP's vocabulary"
        )
    config = files.json("config.json")
    if config is not None and configs.is_transformers(config):
        return "transformers"
    if files.get(OPEN_CLIP_CONFIG) is not None:
        return "open_clip"
    if config is not None and _is_clip_tower(str(config.get("architecture", ""))):
        return "openai"  # timm's config.json of a CLIP image tower
    if files.get("tokenizer_config.json") is not None or files.get("tokenizer.json") is not None:
        return "transformers"
    raise CheckpointError(
        f"{files.label} has no tokenizer: none of config.json (transformers), {OPEN_CLIP_CONFIG}, "
        "tokenizer_config.json or tokenizer.json"
    )


def transformers_tokenizer(
    files: RepoFiles, *, context_length: int | None = None, clean: str | None = None, kind: str = "transformers"
) -> Tokenizer:
    """What ``transformers.AutoTokenizer.from_pretrained`` loads from ``files``, called with ``padding="max_length",
    max_length=context_length, truncation=True`` (by default the text tower's ``max_position_embeddings``); ``clean``
    (an open_clip ``clean=``) runs on each text first."""
    settings: dict[str, Any] = {
        **(files.json("special_tokens_map.json") or {}),
        **(files.json("tokenizer_config.json") or {}),
    }
    config = files.json("config.json") or {}
    model_type = config.get("model_type")
    cls = str(settings.get("tokenizer_class") or "").removesuffix("Fast") or _BY_MODEL_TYPE.get(str(model_type), "")
    if model_type == "siglip2":
        cls = "Siglip2Tokenizer"  # transformers 5 overrides the GemmaTokenizer the Hub's files name
    if not cls and files.get("tokenizer.json") is not None:
        cls = "TokenizersBackend"
    if cls not in (*CLASSES, "SiglipTokenizer", "PreTrainedTokenizerFast", "PreTrainedTokenizer"):
        raise CheckpointError(
            f"{files.label}: tokenizer class {cls or 'unknown'!r} is not supported; vitzoo reads "
            f"{', '.join((*CLASSES, 'SiglipTokenizer'))}"
        )
    length = context_length or _context_length(config, settings, files.label)
    if cls == "SiglipTokenizer":
        if clean is not None:
            raise CheckpointError(f"{files.label}: open_clip cleaning of a SiglipTokenizer is not supported")
        return siglip_tokenizer(files, settings, context_length=length, kind=kind)
    return hf_tokenizer(
        files, cls, settings, context_length=length, clean=clean_fn(clean) if clean else None, kind=kind
    )


def _context_length(config: Mapping[str, Any], settings: Mapping[str, Any], label: str) -> int:
    """The text tower's ``max_position_embeddings``, else the tokenizer's ``model_max_length`` when it is one."""
    text = config.get("text_config")
    for value in (
        text.get("max_position_embeddings") if isinstance(text, Mapping) else None,
        settings.get("model_max_length"),
    ):
        if isinstance(value, int) and 0 < value <= _MAX_CONTEXT:
            return value
    raise CheckpointError(
        f"{label}: no context length (config.json text_config.max_position_embeddings, or tokenizer_config.json "
        "model_max_length); add one to either file"
    )


def _open_clip(files: RepoFiles) -> Tokenizer:
    """open_clip's ``get_tokenizer`` of a repo or folder: ``text_cfg`` of its ``open_clip_config.json``."""
    config = files.json(OPEN_CLIP_CONFIG)
    if config is None:
        raise CheckpointError(f"{files.label} has no {OPEN_CLIP_CONFIG}")
    model_cfg = config.get("model_cfg", config)
    text_cfg: Mapping[str, Any] = model_cfg.get("text_cfg") or {} if isinstance(model_cfg, Mapping) else {}
    context_length = int(text_cfg.get("context_length") or CONTEXT_LENGTH)
    kwargs = dict(text_cfg.get("tokenizer_kwargs") or {})
    hf_name = text_cfg.get("hf_tokenizer_name")
    clean = kwargs.pop("clean", "whitespace" if hf_name else "lower")
    unsupported = sorted(kwargs) + (["tokenizer_mode"] if text_cfg.get("tokenizer_mode") else [])
    if unsupported or clean not in CLEANS:
        raise CheckpointError(
            f"{files.where(OPEN_CLIP_CONFIG)}: tokenizer options {unsupported or [f'clean={clean}']} are not "
            "supported; vitzoo reads context_length, hf_tokenizer_name and clean"
        )
    if not hf_name:
        name = files.where(f"{OPEN_CLIP_CONFIG} + {VOCAB_FILE}")
        return simple_tokenizer(context_length=context_length, clean=clean, name=name, kind="open_clip")
    # open_clip reads a folder's own tokenizer files, and a Hub repo's from the repo hf_tokenizer_name names
    tokenizer_files = files
    if files.repo_id is not None and hf_name != files.repo_id:
        repo_id = hub.check_repo_id(str(hf_name))
        tokenizer_files = RepoFiles(repo_id, repo_id=repo_id)
    return transformers_tokenizer(tokenizer_files, context_length=context_length, clean=clean, kind="open_clip")
