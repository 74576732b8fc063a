"""What an embedding was made with, recorded once: ``EmbedMeta`` (the model, its weights and preprocessing, the pool,
layers, dtype and decode; pool ``"text"`` for texts), written into every output and compared before a run resumes,
and the fingerprint of a whole command (``EmbedMeta`` plus the batching and the inputs). The probe's embedding cache
is keyed by the same record, so the two can never drift apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..choices import TEXT_POOL
from ..errors import VitzooError
from ..models.image_text import ImageTextModel
from ..models.vit import VisionTransformer, take_indices
from ..weights.loading import weights_digest
from .transforms import resolve_data_config


def encode(values: Mapping[str, Any]) -> dict[str, str]:
    """Every value as JSON text (safetensors metadata is str -> str); ``json.loads`` reads each one back."""
    return {key: json.dumps(value) for key, value in values.items()}


@dataclass(frozen=True)
class EmbedMeta:
    """What an embeddings file was computed with. Encoded once (``encode``) for both the manifest and the output."""

    model: str | None  # the name the model was created from (arch.tag, hf-hub:..., local-dir:...)
    tag: str | None  # the checkpoint's tag, None without one
    revision: str | None  # the Hub revision asked for, None for the default
    img_size: list[int]  # [height, width] the images are resized to (the model's data config)
    pool: str
    layers: list[int]  # absolute block indices (sorted); [] for the final output
    dtype: str  # the model's dtype: float32, bfloat16 or float16; int8 (onnxruntime's dynamic quantisation)
    decode: str = "exact"  # "exact" (every pixel decoded, as timm) or "fast" (large JPEGs in draft mode)
    runtime: str = "torch"  # where the forward ran, as asked: torch, compile, onnxruntime or auto
    weights: str | None = None  # vitzoo.loading.weights_digest: the SHA-256 of the checkpoint file (or tensors)
    config: str | None = None  # SHA-256 of the model's ViTConfig (its shape and numerics)
    preprocessing: dict[str, Any] | None = None  # the data config: size, resize, crop, mean, std, processor
    vitzoo_version: str = __version__

    @classmethod
    def of(
        cls,
        model: VisionTransformer,
        *,
        name: str | None,
        revision: str | None,
        pool: str,
        layers: Sequence[int] | None,
        exact_decode: bool,
        weights: str | None = None,
        runtime: str = "torch",
        int8: bool = False,
    ) -> EmbedMeta:
        """The metadata of embedding with ``model`` as it is now (its dtype, its checkpoint facts). ``weights``
        stands in for ``weights_digest(model)`` where the weights are not loaded (the probe's cache key, worked out
        from a model on the meta device). ``runtime`` is recorded as asked (``auto`` stays ``auto``: it only chooses
        among runtimes that give eager's features); ``int8`` records dtype int8."""
        facts = model.pretrained_cfg
        tag = facts.name if facts is not None and facts.name != facts.arch else None  # not an arch's defaults
        data = resolve_data_config(model)
        config = json.dumps(dataclasses.asdict(model.config), sort_keys=True)
        return cls(
            model=name or tag,
            tag=tag,
            revision=revision,
            img_size=list(data.input_size[1:]),
            pool=pool,
            layers=take_indices(len(model.blocks), list(layers)) if layers else [],
            dtype="int8" if int8 else str(next(model.parameters()).dtype).removeprefix("torch."),
            decode="exact" if exact_decode else "fast",
            runtime=runtime,
            weights=weights if weights is not None else weights_digest(model),
            config=hashlib.sha256(config.encode()).hexdigest(),
            preprocessing=json.loads(json.dumps(data.to_dict())),  # tuples as lists, as JSON reads them back
        )

    @classmethod
    def of_text(cls, model: ImageTextModel, *, name: str | None, revision: str | None) -> EmbedMeta:
        """The metadata of embedding texts with ``model``'s text tower (``vitzoo.features.texts``): pool ``"text"``,
        no image size, ``config`` the text tower's, ``preprocessing`` the tokenizer's context length; ``decode``
        keeps its default, so a query image searched against the texts is decoded exactly."""
        facts = model.pretrained_cfg
        tag = facts.name if facts is not None and facts.name != facts.arch else None
        config = json.dumps(dataclasses.asdict(model.text.config), sort_keys=True)
        tokenizer = model.tokenizer
        return cls(
            model=name or tag,
            tag=tag,
            revision=revision,
            img_size=[],
            pool=TEXT_POOL,
            layers=[],
            dtype=str(next(model.text.parameters()).dtype).removeprefix("torch."),
            weights=weights_digest(model),
            config=hashlib.sha256(config.encode()).hexdigest(),
            preprocessing=None if tokenizer is None else {"context_length": tokenizer.context_length},
        )

    def encode(self) -> dict[str, str]:
        return encode(dataclasses.asdict(self))


def check_fingerprint(work: Path, old: Mapping[str, str] | None, fingerprint: Mapping[str, str]) -> None:
    """Refuse ``work`` if it holds the work of another command (different model, pool, inputs, ...)."""
    if old is not None and dict(old) != dict(fingerprint):
        changed = sorted(k for k in old.keys() | fingerprint.keys() if old.get(k) != fingerprint.get(k))
        what = "the output" if work.is_file() else "shards"
        fix = "delete it" if work.is_file() else "delete that folder, or run the original command to finish it"
        raise VitzooError(
            f"{work} holds {what} of a different command (it differs in {', '.join(changed)}); {fix}, or choose "
            "another --out"
        )


def inputs_digest(items: Sequence[str]) -> str:
    """SHA-256 of the inputs as given (before they are listed)."""
    return hashlib.sha256("\n".join(items).encode("utf-8", "surrogatepass")).hexdigest()
