"""The public API: a name plus overrides in, a ready ``VisionTransformer`` (or, with its text tower, an
``ImageTextModel``) out, and weights in and out of it."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import torch
from safetensors.torch import save_file

from ._version import __version__
from .errors import ConfigError
from .models.archs import ARCHS, family_of
from .models.config import to_pair
from .models.dtypes import resolve_dtype
from .models.features_only import FeaturesOnly
from .models.image_text import ImageTextModel, TextTokenizer
from .models.pretrained_cfg import LoadReport
from .models.timm_api import refuse_timm_only
from .models.vit import VisionTransformer
from .weights.configs.timm import to_json
from .weights.formats import convert, split_towers, to_timm
from .weights.loading import assign, load_into
from .weights.source import Source, arch_defaults, arch_name, resolve, with_weights
from .weights.tokenizers import Tokenizer, load_tokenizer
from .weights.two_tower import locate


@overload
def create_model(
    name: str | Source,
    pretrained: bool | str | Path | Mapping[str, Any] = False,
    *,
    features_only: Literal[False] = False,
    **kwargs: Any,
) -> VisionTransformer: ...
@overload
def create_model(
    name: str | Source,
    pretrained: bool | str | Path | Mapping[str, Any] = False,
    *,
    features_only: Literal[True],
    **kwargs: Any,
) -> FeaturesOnly: ...
def create_model(
    name: str | Source,
    pretrained: bool | str | Path | Mapping[str, Any] = False,
    *,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    checkpoint_path: str | Path | None = None,
    img_size: int | tuple[int, int] | None = None,
    patch_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    global_pool: str | None = None,
    dynamic_img_size: bool = False,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    revision: str | None = None,
    strict: bool = True,
    **overrides: Any,
) -> VisionTransformer | FeaturesOnly:
    """Build a ViT by timm name (``"vit_base_patch16_224"``), paper alias (``"ViT-B/16"``), pretrained tag
    (``"vit_base_patch16_224.augreg_in21k"``), Hub repo (``"hf-hub:google/vit-base-patch16-224"``) or saved folder
    (``"local-dir:path"``).

    ``pretrained``: ``True`` loads the tag's weights (an arch's default tag if none is given) or the repo's/folder's;
    it also takes a file, folder, ``hf-hub:`` id, tag or state dict to load into the named architecture. Loading
    builds the model on the meta device and assigns the checkpoint's tensors (cast to ``dtype``, on ``device``): no
    random init, no second copy. ``num_classes`` and ``img_size`` default to the checkpoint's; another
    ``num_classes`` re-initialises the head with zeros, 0 drops it; another ``img_size`` resamples the position
    embeddings. Any other ``ViTConfig`` field can be overridden by keyword. ``model.load_report`` says what loading
    did, ``model.pretrained_cfg`` holds the checkpoint's facts (preprocessing, labels, provenance).

    timm's keywords: ``checkpoint_path=PATH`` is ``pretrained=PATH``; ``features_only=True`` returns a
    ``FeaturesOnly`` whose forward gives the NCHW outputs of the blocks ``out_indices`` (default: the last 3), as
    timm's. timm's keywords that vitzoo does not take (``pretrained_cfg_overlay``, ``scriptable``, ...) raise a
    ``ConfigError`` naming the vitzoo way (docs/from-timm.md).
    """
    refuse_timm_only(overrides)
    feature_cls = overrides.pop("feature_cls", "getter")
    if not features_only and out_indices is not None:
        raise ConfigError(
            "out_indices is for features_only=True; for block outputs of a whole model use "
            "model.forward_intermediates(x, indices=...)"
        )
    if feature_cls != "getter":
        raise ConfigError(
            f"features_only=True gives timm's 'getter' features (forward_intermediates), not feature_cls="
            f"{feature_cls!r}; for other outputs use model.forward_intermediates or vitzoo.capture_attention"
        )
    if checkpoint_path is not None:
        if pretrained is not False:
            raise ConfigError(f"pass the weights once: checkpoint_path={str(checkpoint_path)!r} or pretrained=")
        pretrained = Path(checkpoint_path)
    changes: dict[str, Any] = dict(overrides)
    if img_size is not None:
        changes["img_size"] = to_pair(img_size, "img_size")
    if patch_size is not None:
        changes["patch_size"] = to_pair(patch_size, "patch_size")
    if num_classes is not None:
        changes["num_classes"] = num_classes
    if global_pool is not None:
        changes["global_pool"] = global_pool
    if dynamic_img_size:
        changes["dynamic_img_size"] = True

    src = name if isinstance(name, Source) else resolve(name, weights=pretrained is True, revision=revision)
    if src.config is None:
        raise ConfigError(
            f"{src.name} holds weights but names no architecture (no config.json beside it): name the architecture "
            f"and pass the weights, e.g. create_model('vit_base_patch16_224', pretrained={src.name!r})"
        )
    base, facts, ckpt = src.config, src.facts, None
    if pretrained is True:
        ckpt = src if src.tensors is not None else with_weights(src)
    elif pretrained is not False:
        if src.arch is None and src.has_weights:
            raise ConfigError(f"{src.name!r} names its own weights: pass pretrained=True or False, not a source")
        ckpt = resolve(pretrained, weights=True, revision=revision)
        if ckpt.facts is not None:
            facts = ckpt.facts
            base = base.replace(num_classes=facts.num_classes, img_size=facts.img_size)

    converted = convert(ckpt.tensors) if ckpt is not None and ckpt.tensors is not None else None
    if converted is not None and "num_classes" not in changes and facts is None:
        head = converted.state_dict.get("head.weight")  # a bare checkpoint: keep its head size if it has one
        changes["num_classes"] = int(head.shape[0]) if head is not None and torch.count_nonzero(head) else 0
    config = base.replace(**changes)  # validates; unknown fields raise with close-match hints

    report: LoadReport | None = None
    if converted is None:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = VisionTransformer(config)
        model = model.to(dtype=dtype) if dtype is not None else model
    else:
        assert ckpt is not None
        with torch.device("meta"):
            model = VisionTransformer(config)
        if dtype is not None:
            model = model.to(dtype=dtype)
        report = load_into(
            model, converted, label=ckpt.label, files=ckpt.files, facts=ckpt.facts, strict=strict, device=device
        )
    if facts is None and src.arch is not None:  # no facts: the arch's default preprocessing, as timm
        facts = arch_defaults(src.arch, config)
    elif facts is not None and img_size is not None:  # the eval transform prepares the size asked for
        facts = dataclasses.replace(facts, input_size=(config.in_chans, *config.img_size))
    model.pretrained_cfg = facts
    model.load_report = report
    if features_only:
        return FeaturesOnly(model, 3 if out_indices is None else out_indices)
    return model


def create_image_text_model(
    name: str | Source,
    pretrained: bool = True,
    *,
    tokenizer: TextTokenizer | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    revision: str | None = None,
    strict: bool = True,
) -> ImageTextModel:
    """An image-text model (CLIP, SigLIP, SigLIP 2) with both towers, from a transformers ``CLIPModel`` /
    ``SiglipModel`` / ``Siglip2Model`` repo or folder (``"hf-hub:openai/clip-vit-base-patch32"``,
    ``"hf-hub:google/siglip-base-patch16-224"``), an open_clip one (``"hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"``,
    ``"hf-hub:timm/ViT-B-16-SigLIP"``), or a timm CLIP tag whose repo carries open_clip's files
    (``"vit_base_patch16_clip_224.openai"``).

    Both towers are built as the checkpoint's config describes them (``create_model`` of the same name gives the
    image tower alone) on the meta device and the checkpoint's tensors assigned (cast to ``dtype``, on ``device``),
    strictly; ``model.load_report`` says what was loaded, ``model.pretrained_cfg`` the image preprocessing.
    ``pretrained=False`` reads the config only and initialises randomly. ``tokenizer``: what ``model.tokenize`` and
    ``encode_text(texts)`` use, by default the checkpoint's own (``load_tokenizer``: ``pip install 'vitzoo[text]'``;
    token ids are always accepted). A name without a text tower raises
    ``CheckpointError`` saying so, and where the text tower is when vitzoo knows it.
    """
    src = name if isinstance(name, Source) else resolve(name, revision=revision)
    towers = locate(src, revision)
    torch_dtype = resolve_dtype(dtype)
    place = "meta" if pretrained else device  # loading assigns the checkpoint's tensors: no init to waste
    with torch.device(place) if place is not None else contextlib.nullcontext():
        model = ImageTextModel(towers.vision, towers.text, logit_bias=towers.logit_bias)
    if torch_dtype is not None:
        model = model.to(dtype=torch_dtype)
    if pretrained:
        tensors, files = towers.read()
        image, text = split_towers(tensors)
        label = towers.source.label
        report = load_into(
            model.visual, convert(image), label=label, files=files, facts=towers.facts, strict=strict, device=device
        )
        report.format = f"{report.format} + {text.format}"
        report.notes += text.notes
        report.dropped.update(text.dropped)
        assign(model, dict(text.state_dict), report, strict=strict, device=device, skip="visual.")
        model.load_report = report
    model.pretrained_cfg = model.visual.pretrained_cfg = towers.facts
    model.tokenizer = tokenizer if tokenizer is not None else _OwnTokenizer(towers.source, towers.layout)
    return model


class _OwnTokenizer:
    """A checkpoint's own tokenizer (``load_tokenizer``, from the files of the layout whose weights were read), read
    when it is first used: a model takes token ids without it, and only tokenizing needs ``vitzoo[text]``."""

    def __init__(self, source: Source, kind: str) -> None:
        self.source, self.kind = source, kind

    @functools.cached_property
    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.source, kind=self.kind)

    @property
    def context_length(self) -> int:
        return self.tokenizer.context_length

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        return self.tokenizer(texts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source.name!r}, kind={self.kind!r})"


def load_pretrained(
    model: VisionTransformer,
    source: str | Path | Mapping[str, Any],
    *,
    strict: bool = True,
    revision: str | None = None,
) -> LoadReport:
    """Load ``source`` into ``model`` (already built) and return what was done (also kept as ``model.load_report``).

    ``source``: a pretrained tag (``"vit_base_patch16_224.augreg2_in21k_ft_in1k"``), an ``"hf-hub:org/repo"`` id,
    a ``.safetensors`` / ``.bin`` / ``.pth`` / ``.npz`` file, a folder with ``config.json`` and weights, or a state
    dict in any supported format (timm, transformers, torchvision, JAX). Position and patch embeddings are
    resampled to the model, the head is re-initialised (zeros) when ``num_classes`` differs, and anything else that
    does not fit raises ``CheckpointError``; ``strict=False`` loads what fits and lists the rest.
    """
    ckpt = resolve(source, weights=True, revision=revision)
    assert ckpt.tensors is not None
    report = load_into(
        model, convert(ckpt.tensors), label=ckpt.label, files=ckpt.files, facts=ckpt.facts, strict=strict
    )
    if ckpt.facts is not None:
        model.pretrained_cfg = ckpt.facts
    model.load_report = report
    return report


def save_pretrained(model: VisionTransformer, folder: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (timm's layout plus vitzoo's config) into ``folder``.

    The tensors have the names of the timm class that builds the model (``formats.to_timm``: Eva's for DINOv3), so
    timm reads the folder; ``create_model("local-dir:FOLDER", pretrained=True)`` and ``load_pretrained`` read it back.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = to_timm({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, model.config)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt", "vitzoo": __version__})
    config = to_json(model.config, getattr(model, "pretrained_cfg", None))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def describe(name: str) -> dict[str, Any]:
    """Facts of a registered arch without allocating weights: sizes, tokens, params.

    The blocks of a ViT are alike (but for grouped-query attention's key/value rows, counted apart), so the arch is
    built on the meta device with one block, which stands for all of them in the parameter count (a twelfth of the
    time of building every block: ``vitzoo list`` describes every arch).
    """
    arch = arch_name(name)
    cfg = ARCHS[arch]
    model = create_model(arch, device="meta", depth=1)
    per_block = sum(p.numel() for p in model.blocks[0].parameters())
    if model.rope is not None:  # RoPE-Mixed's frequencies: a slice per block, outside the blocks
        per_block += model.rope.freqs[:, :1].numel()
    params = sum(p.numel() for p in model.parameters()) + (cfg.depth - 1) * per_block
    # block 0 has every key/value head; a grouped-query block (Sapiens2) has fewer k and v rows (and biases)
    fewer = sum(cfg.num_heads - cfg.kv_heads(i) for i in range(cfg.depth))
    params -= 2 * fewer * cfg.head_dim * (cfg.embed_dim + int(cfg.qkv_bias))
    n_head = sum(p.numel() for p in model.head.parameters())
    return {
        "name": arch,
        "family": family_of(arch),
        "layers": cfg.depth,
        "width": cfg.embed_dim,
        "mlp": cfg.mlp_dim,
        "heads": cfg.num_heads,
        "patch": cfg.patch_size[0],
        "img_size": cfg.img_size[0] if cfg.img_size[0] == cfg.img_size[1] else "x".join(map(str, cfg.img_size)),
        "tokens": cfg.num_tokens,
        "pool": cfg.global_pool,
        "params": params,
        "params_no_head": params - n_head,
    }
