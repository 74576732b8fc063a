"""``BatchEmbedder``: a callable class mapping a batch of images (bytes or paths) to features, for engines that bring
their own scheduling, chiefly ``ray.data.Dataset.map_batches`` (one model per actor). It needs no Ray import."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..factory import create_model
from .batches import EXACT_DECODE, prepare_model
from .extract import feature_fn, resolve_pool
from .inputs import open_source
from .runtimes import check_runtime, model_dtype, runner_for
from .transforms import create_transform, load_image


class BatchEmbedder:
    """Features of a batch of images with ``name``'s checkpoint and its own eval transform, as ``vitzoo embed``
    computes them.

    Built once per worker (a Ray actor), then called per batch: ``batch`` is a dict of columns (Ray's default numpy
    batch format) holding the images as ``bytes`` (what ``ray.data.read_binary_files`` gives) or ``path`` (file
    names, ``.tar`` members included). The result keeps every column but ``bytes`` and adds ``features`` (or
    ``layer_<i>`` with ``layers``), float32 ``(B, ...)`` arrays. ``pool``, ``layers``, ``dtype``, ``device``,
    ``img_size``, ``revision``, ``exact_decode`` and ``runtime`` are those of ``vitzoo embed``; ``batch_size`` is
    the batch ``map_batches`` gives (``runtime="compile"`` runs batches of that size; "auto" measures at it). An
    unreadable image raises ``ImageError``.

    ```python
    ds = ray.data.read_binary_files("s3://bucket/images/", include_paths=True)
    name = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    ds = ds.map_batches(vitzoo.BatchEmbedder, fn_constructor_kwargs={"name": name}, concurrency=4, batch_size=64)
    ds.write_parquet("s3://bucket/embeddings/")
    ```
    """

    def __init__(
        self,
        name: str,
        *,
        pool: str | None = None,
        layers: Sequence[int] | None = None,
        img_size: int | tuple[int, int] | None = None,
        dtype: torch.dtype | str | None = None,
        device: str | torch.device | None = None,
        revision: str | None = None,
        exact_decode: bool = EXACT_DECODE,
        runtime: str = "torch",
        batch_size: int = 64,
    ) -> None:
        kw: dict[str, Any] = {} if img_size is None else {"img_size": img_size}
        int8 = check_runtime(runtime, dtype)
        model = create_model(name, pretrained=True, revision=revision, **kw)
        self.model = prepare_model(model, model_dtype(dtype), device)
        self.pool = resolve_pool(self.model, pool, layers)
        what = {"pool": self.pool, "layers": list(layers or [])}
        fn = feature_fn(self.model, self.pool, layers)
        self.fn = runner_for(self.model, fn, runtime, int8=int8, what=what, batch_size=batch_size)
        self.transform = create_transform(self.model)
        self.draft = None if exact_decode else self.transform.draft_size  # vitzoo embed's fast JPEG decode

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        if "bytes" in batch:
            images = [
                load_image(io.BytesIO(b), name=f"image {i} of the batch", draft=self.draft)
                for i, b in enumerate(batch["bytes"])
            ]
        elif "path" in batch:
            images = [load_image(open_source(str(p)), name=str(p), draft=self.draft) for p in batch["path"]]
        else:
            raise ConfigError(f"the batch needs a 'bytes' or a 'path' column; it has {sorted(batch)}")
        param = next(self.model.parameters())
        x = torch.stack([self.transform(img) for img in images]).to(device=param.device, dtype=param.dtype)
        with torch.inference_mode():
            feats = self.fn(x)
        out = {key: value for key, value in batch.items() if key != "bytes"}
        out.update({key: value.numpy().astype(np.float32) for key, value in feats.items()})
        return out
