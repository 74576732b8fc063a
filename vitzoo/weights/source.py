"""One road from a name to a model: whatever the user passed, parsed once into a ``Source``.

This module is the only place where the grammar of model and checkpoint names is understood:

==========================================  ==================================================================
``"vit_base_patch16_224"``, ``"ViT-B/16"``  a registered architecture (timm name) or paper alias: a config
``"vit_base_patch16_224.augreg_in21k"``     a pretrained tag: the arch's config and a published checkpoint
``"hf-hub:org/repo"``                       a Hub repo: timm/transformers/open_clip config and weights
``"local-dir:PATH"``                        a folder laid out as such a repo, or by vitzoo.save_pretrained
a path (``str`` or ``Path``)                a weights file (.safetensors/.bin/.pth/.npz), or a folder
a mapping                                   a state dict in any supported format
==========================================  ==================================================================

``resolve`` returns the config the name describes, the checkpoint's facts (preprocessing, labels, provenance), where
its weights are, and, only when asked with ``weights=True``, the weights themselves (safetensors memory-mapped).
Without ``weights`` nothing but a config is ever downloaded, so preprocessing can be resolved cheaply. The config
is ``config.json``, or, in an open_clip repo or folder that has none, ``open_clip_config.json``
(``loading.CONFIG_FILES``).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, HubError, UnknownModelError
from ..models import archs
from ..models.config import ViTConfig
from ..models.pretrained_cfg import PretrainedCfg
from . import configs, hub, loading, pretrained

logger = logging.getLogger("vitzoo")

HF_HUB = "hf-hub:"
PROCESSOR_FILE = "preprocessor_config.json"  # a transformers repo's image processor: its eval recipe
LOCAL_DIR = "local-dir:"
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pth", ".pt", ".npz"}
_ALIASES = {alias.lower(): arch for alias, arch in archs.ALIASES.items()}


@dataclass(frozen=True)
class Location:
    """Where a checkpoint's files are: a Hub repo (weights files tried in order) or a local file or folder."""

    repo_id: str | None = None
    path: Path | None = None
    filenames: tuple[str, ...] = loading.WEIGHT_FILES
    revision: str | None = None

    def weights_file(self, local_dir: str | Path | None = None) -> Path:
        """The weights file on disk (downloaded into the HF cache, or ``local_dir``, when on the Hub)."""
        if self.repo_id is not None:
            return hub.download(self.repo_id, self.filenames, revision=self.revision, local_dir=local_dir)
        assert self.path is not None
        return loading.weights_in(self.path, self.filenames) if self.path.is_dir() else self.path

    def config_file(self, local_dir: str | Path | None = None) -> Path:
        """The ``config.json`` (else ``open_clip_config.json``) on disk (Hub repos only; none raises ``HubError``)."""
        if self.repo_id is None:
            raise CheckpointError(f"{self.path} is local: there is nothing to download")
        return hub.download(self.repo_id, loading.CONFIG_FILES, revision=self.revision, local_dir=local_dir)

    def download(self, local_dir: str | Path | None = None) -> list[Path]:
        """Every file loading needs, into the HF cache (or ``local_dir``): the config, a transformers repo's
        preprocessor_config.json, and the weights (last in the list)."""
        assert self.repo_id is not None, "a local checkpoint has nothing to download"
        files = [self.config_file(local_dir)]
        if configs.is_transformers(loading.read_config(files[0], files[0].name) or {}):
            extra = hub.download_if_present(self.repo_id, PROCESSOR_FILE, revision=self.revision, local_dir=local_dir)
            files += [extra] if extra is not None else []
        return [*files, self.weights_file(local_dir)]

    def processor_config(self) -> dict[str, Any] | None:
        """A transformers repo's ``preprocessor_config.json``, None where there is none.

        On the Hub it is optional: a repo without one, or one that cannot be had (Hub unreachable and the file not
        cached, say by an older download), leaves ``ViTImageProcessor``'s defaults, with a warning in the latter case.
        """
        if self.path is not None:
            return loading.read_config(self.path, PROCESSOR_FILE)
        assert self.repo_id is not None
        try:
            path = hub.download_if_present(self.repo_id, PROCESSOR_FILE, revision=self.revision)
        except HubError as err:
            logger.warning(
                "%s: %s not available, using ViTImageProcessor's defaults (%s)", self.repo_id, PROCESSOR_FILE, err
            )
            return None
        return None if path is None else loading.read_config(path, PROCESSOR_FILE)


@dataclass(frozen=True)
class Source:
    """A resolved name: the architecture it describes, its checkpoint's facts, where the weights are, and them."""

    name: str  # as the user wrote it (a path as a string; "state dict" for a mapping)
    config: ViTConfig | None  # the network the name describes; None for weights alone (a bare file or state dict)
    facts: PretrainedCfg | None = None  # preprocessing, labels and provenance of the checkpoint, when known
    location: Location | None = None  # where the weights are; None for an architecture alone or a state dict
    arch: str | None = None  # the registered architecture, when the name is one or a tag of one
    tensors: Mapping[str, Any] | None = None  # the checkpoint's tensors (read by resolve(..., weights=True))
    files: tuple[str, ...] = ()  # the files they were read from

    @property
    def has_weights(self) -> bool:
        """The name points at a checkpoint (a tag, a repo, a folder, a file or a state dict)."""
        return self.location is not None or self.tensors is not None

    @property
    def label(self) -> str:
        """How reports name this source: the tag, the repo id, the local path or "state dict"."""
        if self.location is not None and self.location.path is not None:
            return str(self.location.path)
        return self.facts.name if self.facts is not None and self.arch is not None else self.name


def resolve(spec: str | Path | Mapping[str, Any], *, weights: bool = False, revision: str | None = None) -> Source:
    """Parse ``spec`` (see the module docstring) into a ``Source``; ``weights=True`` also reads the checkpoint.

    A bare architecture with ``weights=True`` takes its default (first listed) pretrained tag. ``revision`` pins a
    Hub branch, tag or commit. Unknown names raise ``UnknownModelError`` with the closest known names; paths that
    do not exist raise ``CheckpointError``.
    """
    if isinstance(spec, Mapping):
        return Source("state dict", None, tensors=spec)
    if isinstance(spec, Path):
        return _local(str(spec), spec, weights)
    if not isinstance(spec, str) or not spec:
        raise UnknownModelError(f"a model name must be a non-empty string, a path or a state dict; got {spec!r}")
    if spec.startswith(HF_HUB):
        return _hub_repo(spec, weights, revision)
    if spec.startswith(LOCAL_DIR):
        return _local(spec, Path(spec.removeprefix(LOCAL_DIR)), weights)
    parsed = _split(spec)
    if parsed is not None and not (parsed[1] and Path(spec).exists()):  # "arch.npz" on disk is a file
        return _registered(spec, *parsed, weights, revision)
    if _looks_like_path(spec):
        return _local(spec, Path(spec), weights)
    raise _unknown(spec, "(and no such file or folder)")


def default_checkpoint(src: Source, revision: str | None = None) -> Source:
    """A bare registered arch as its default (first listed) checkpoint, weights not read; others as they are."""
    if src.arch is None or src.has_weights or not pretrained.tags_of(src.arch):
        return src
    return _registered(src.name, src.arch, None, True, revision, read=False)


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """The checkpoint facts for ``arch.tag``; a bare arch (or alias) gives its default (first) tag."""
    parsed = _split(name)
    if parsed is None:
        raise _unknown(name, "(not a registered architecture or tag)")
    arch, tag = parsed
    return _tag_facts(arch, tag) if tag is not None else _default_facts(arch)


def arch_defaults(arch: str, config: ViTConfig) -> PretrainedCfg | None:
    """The facts of a model of ``arch`` built without checkpoint facts (random weights, or a bare weights file): the
    preprocessing of the arch's default checkpoint, as timm gives every model its default ``pretrained_cfg``, under
    the arch's own name and claiming nothing of that checkpoint (no repo, labels, license or accuracy). None for an
    arch without checkpoints."""
    tags = pretrained.tags_of(arch)
    if not tags:
        return None
    default = tags[0]
    return dataclasses.replace(
        default,
        name=arch,
        hf_hub_id=None,
        num_classes=config.num_classes,
        input_size=(config.in_chans, *config.img_size),
        labels=None,
        label_names=None,
        license=None,
        top1=None,
        top5=None,
        description=f"no checkpoint facts: the preprocessing of {default.name}, the arch's default checkpoint",
    )


def arch_name(name: str) -> str:
    """The registered arch a name or alias stands for (``"ViT-B/16"`` -> ``"vit_base_patch16_224"``)."""
    src = resolve(name)
    if src.arch is None:
        raise UnknownModelError(f"{name!r} is not a registered architecture; see vitzoo.list_models()")
    return src.arch


# ------------------------------------------------------------------------------------------- registry names
def _split(name: str) -> tuple[str, str | None] | None:
    """``"arch.tag"`` or an alias (case-insensitive) -> (registered arch, tag or None); None if not registered."""
    if name.lower() in _ALIASES:
        return _ALIASES[name.lower()], None
    arch, _, tag = name.partition(".")
    arch = _ALIASES.get(arch.lower(), arch)
    return (arch, tag or None) if arch in archs.ARCHS else None


def _unknown(name: str, what: str) -> UnknownModelError:
    known = list(archs.ARCHS) + list(archs.ALIASES)
    close = difflib.get_close_matches(name.partition(".")[0], known, n=5, cutoff=0.5)
    hint = f"closest known names: {', '.join(close)}" if close else "see vitzoo.list_models()"
    return UnknownModelError(
        f"unknown model {name!r} {what}; {hint}. Hub repos are named 'hf-hub:org/repo', saved folders 'local-dir:PATH'"
    )


def _tag_facts(arch: str, tag: str) -> PretrainedCfg:
    full = f"{arch}.{tag}"
    if full not in pretrained.PRETRAINED:
        tags = [cfg.tag for cfg in pretrained.tags_of(arch)]
        close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownModelError(f"unknown pretrained tag {full!r}; {hint}{arch} has: {', '.join(tags) or 'none'}")
    return pretrained.PRETRAINED[full]


def _default_facts(arch: str) -> PretrainedCfg:
    tags = pretrained.tags_of(arch)
    if not tags:
        raise UnknownModelError(f"{arch} has no pretrained weights; create it with pretrained=False")
    return tags[0]


def _registered(
    name: str, arch: str, tag: str | None, weights: bool, revision: str | None, read: bool | None = None
) -> Source:
    """An arch (config only), or with a tag or ``weights`` its checkpoint; ``read`` (default: ``weights``) reads it."""
    config = archs.ARCHS[arch]
    if tag is None and not weights:
        return Source(name, config, arch=arch)
    facts = _tag_facts(arch, tag) if tag is not None else _default_facts(arch)
    config = config.replace(num_classes=facts.num_classes, img_size=facts.img_size)
    assert facts.hf_hub_id is not None, f"{facts.name} has no Hub repo"
    location = Location(repo_id=facts.hf_hub_id, filenames=facts.filenames, revision=revision)
    src = Source(name, config, facts, location, arch)
    return with_weights(src) if (weights if read is None else read) else src


# -------------------------------------------------------------------------------------------- repos and files
def _hub_repo(name: str, weights: bool, revision: str | None) -> Source:
    location = Location(repo_id=hub.check_repo_id(name.removeprefix(HF_HUB)), revision=revision)
    config_path = location.config_file()
    config_json = loading.read_config(config_path, config_path.name) or {}
    src = Source(name, None, location=location)
    if weights:
        src = with_weights(src)
    processor = location.processor_config() if configs.is_transformers(config_json) else None
    config, facts = configs.parse(config_json, name, set(src.tensors or ()), location.repo_id, processor)
    return dataclasses.replace(src, config=config, facts=facts)


def _local(name: str, path: Path, weights: bool) -> Source:
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    src = Source(name, None, location=Location(path=path))
    if weights:
        src = with_weights(src)
    config_json = loading.find_config(path)
    if config_json is None:
        return src
    processor = loading.read_config(path, PROCESSOR_FILE) if configs.is_transformers(config_json) else None
    config, facts = configs.parse(config_json, name, set(src.tensors or ()), processor=processor)
    return dataclasses.replace(src, config=config, facts=facts)


def local_weights_digest(src: Source) -> str | None:
    """The SHA-256 of a local source's weights file (a folder's, or the file itself), without reading it as a
    checkpoint; None for a Hub tag or repo (named by its id and revision) and for an architecture alone."""
    if src.location is None or src.location.path is None:
        return None
    return loading.file_digest(src.location.weights_file())


def with_weights(src: Source) -> Source:
    """``src`` with its checkpoint's tensors read (downloaded first when on the Hub)."""
    if src.location is None:
        raise CheckpointError(f"{src.name} has no weights to read")
    path = src.location.weights_file()
    return dataclasses.replace(src, tensors=loading.read_file(path), files=(str(path),))


def _looks_like_path(text: str) -> bool:
    """A string that is not a registered name is taken as a path when it plausibly is one ("ViT-B/61" is not)."""
    path = Path(text)
    explicit = text.startswith(("/", "./", "../", "~", "\\")) or path.suffix.lower() in _WEIGHT_SUFFIXES
    return explicit or path.exists() or (len(path.parts) > 1 and path.parent.is_dir())
