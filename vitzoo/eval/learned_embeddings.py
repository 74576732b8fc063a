"""What the embeddings learned (the ViT paper, Figure 7 left and center): the principal components of the
patch-embedding filters, and how similar the position embeddings of the grid are to each other.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError, VitzooError
from ..models.vit import VisionTransformer


def patch_embed_components(model: VisionTransformer, n: int = 28) -> torch.Tensor:
    """The top ``n`` principal components of the patch-embedding filters, as (n, C, ph, pw) images in [0, 1].

    Recipe (Figure 7 left): flatten the D filters of ``patch_embed.proj`` to vectors of C*ph*pw, subtract their
    mean, take the right singular vectors of that (D, C*ph*pw) matrix in order of singular value, and min-max scale
    each component to [0, 1] for display (a component's sign is arbitrary).
    """
    if model.config.is_hybrid:
        raise VitzooError("a hybrid embeds CNN features, not pixels: it has no pixel filters to show")
    weight = model.patch_embed.proj.weight.detach().float().cpu()  # (D, C, ph, pw)
    flat = weight.flatten(1)
    flat = flat - flat.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    comps = vh[: min(n, vh.shape[0])]
    lo, hi = comps.min(dim=1, keepdim=True).values, comps.max(dim=1, keepdim=True).values
    return ((comps - lo) / (hi - lo).clamp_min(1e-12)).reshape(-1, *weight.shape[1:])


def pos_embed_similarity(model: VisionTransformer) -> torch.Tensor:
    """Cosine similarity of each patch's position embedding with every other: (h, w, h, w) (Figure 7 center)."""
    if model.pos_embed is None:
        raise ConfigError("this model has no learned position table (abs_pos_embed=False, DINOv3): nothing to compare")
    h, w = model.grid_size
    pe = model.pos_embed.detach().float().cpu()[0, model.config.pos_embed_prefix_tokens :]  # (h*w, D)
    pe = torch.nn.functional.normalize(pe, dim=-1)
    return (pe @ pe.T).reshape(h, w, h, w)
