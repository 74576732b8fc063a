"""The original DeiT-III files (``deit_3_*_{224,384}_{1k,21k}.pth``, facebookresearch/deit ``models_v2``) to timm
names, as timm's ``checkpoint_filter_fn(adapt_layer_scale=True)`` does: ``blocks.N.gamma_1`` / ``gamma_2`` are
``blocks.N.ls1.gamma`` / ``ls2.gamma``; every other name is timm's already.

Their ``pos_embed`` has no class-token row (it is added to the patches before the class token is prepended): timm's
and vitzoo's ``no_embed_class=True``. timm's DINOv3 checkpoints also say ``gamma_1`` (timm's Eva names), but have no
``pos_embed``; ``detect_format`` tells them apart by that.
"""

from __future__ import annotations

import torch

from .base import Converted
from .timm import from_timm, gammas_to_layer_scales


def from_deit3(state_dict: dict[str, torch.Tensor]) -> Converted:
    """Rename the layer scales (and strip training wrappers, as for timm files)."""
    stripped = from_timm(state_dict)
    out = gammas_to_layer_scales(stripped.state_dict)
    notes = [*stripped.notes, "renamed DeiT-III layer scales gamma_1 / gamma_2 to ls1.gamma / ls2.gamma"]
    notes.append("pos_embed has no class-token row: the model needs no_embed_class=True (timm's deit3_* archs)")
    return Converted("deit3", out, notes)
