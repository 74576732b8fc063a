"""Where the text tower of an image-only checkpoint is published: for the error that says a repo has none.

timm's CLIP and SigLIP tag repos (``timm/<arch>.<tag>``) hold the image tower. Some also carry open_clip's files, with
the text tower (OpenAI, LAION-400M, MetaCLIP: open_clip 3.3's pretrained table points at them); for the others the
text tower is in the repo open_clip loads the same checkpoint from, listed here from that table (open_clip 3.3.0,
``open_clip/pretrained.py``). SigLIP's ``_gap`` tags are the same image weights without the attention-pool head.
"""

from __future__ import annotations

TEXT_TOWER_REPOS: dict[str, str] = {  # timm image-tower repo -> a repo with both towers (open_clip's files)
    "timm/vit_base_patch32_clip_224.laion2b": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
    "timm/vit_base_patch16_clip_224.laion2b": "laion/CLIP-ViT-B-16-laion2B-s34B-b88K",
    "timm/vit_large_patch14_clip_224.laion2b": "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
    "timm/vit_huge_patch14_clip_224.laion2b": "laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
    "timm/vit_gigantic_patch14_clip_224.laion2b": "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k",
    "timm/vit_base_patch32_clip_224.datacompxl": "laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K",
    "timm/vit_base_patch32_clip_256.datacompxl": "laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K",
    "timm/vit_base_patch16_clip_224.datacompxl": "laion/CLIP-ViT-B-16-DataComp.XL-s13B-b90K",
    "timm/vit_large_patch14_clip_224.datacompxl": "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K",
    "timm/vit_base_patch16_clip_224.dfn2b": "apple/DFN2B-CLIP-ViT-B-16",
    "timm/vit_large_patch14_clip_224.dfn2b": "apple/DFN2B-CLIP-ViT-L-14",
    "timm/vit_large_patch14_clip_224.dfn2b_s39b": "apple/DFN2B-CLIP-ViT-L-14-39B",
    "timm/vit_huge_patch14_clip_224.dfn5b": "apple/DFN5B-CLIP-ViT-H-14",
    "timm/vit_huge_patch14_clip_378.dfn5b": "apple/DFN5B-CLIP-ViT-H-14-378",
    "timm/vit_base_patch16_siglip_224.webli": "timm/ViT-B-16-SigLIP",
    "timm/vit_base_patch16_siglip_256.webli": "timm/ViT-B-16-SigLIP-256",
    "timm/vit_base_patch16_siglip_384.webli": "timm/ViT-B-16-SigLIP-384",
    "timm/vit_base_patch16_siglip_512.webli": "timm/ViT-B-16-SigLIP-512",
    "timm/vit_base_patch16_siglip_256.webli_i18n": "timm/ViT-B-16-SigLIP-i18n-256",
    "timm/vit_large_patch16_siglip_256.webli": "timm/ViT-L-16-SigLIP-256",
    "timm/vit_large_patch16_siglip_384.webli": "timm/ViT-L-16-SigLIP-384",
    "timm/vit_so400m_patch14_siglip_224.webli": "timm/ViT-SO400M-14-SigLIP",
    "timm/vit_so400m_patch14_siglip_378.webli": "timm/ViT-SO400M-14-SigLIP-384",  # open_clip's 378 loads the 384 repo
    "timm/vit_so400m_patch16_siglip_256.webli_i18n": "timm/ViT-SO400M-16-SigLIP-i18n-256",
    "timm/vit_base_patch16_siglip_224.v2_webli": "timm/ViT-B-16-SigLIP2",
    "timm/vit_base_patch16_siglip_256.v2_webli": "timm/ViT-B-16-SigLIP2-256",
    "timm/vit_base_patch16_siglip_384.v2_webli": "timm/ViT-B-16-SigLIP2-384",
    "timm/vit_base_patch16_siglip_512.v2_webli": "timm/ViT-B-16-SigLIP2-512",
    "timm/vit_base_patch32_siglip_256.v2_webli": "timm/ViT-B-32-SigLIP2-256",
    "timm/vit_large_patch16_siglip_256.v2_webli": "timm/ViT-L-16-SigLIP2-256",
    "timm/vit_large_patch16_siglip_384.v2_webli": "timm/ViT-L-16-SigLIP2-384",
    "timm/vit_large_patch16_siglip_512.v2_webli": "timm/ViT-L-16-SigLIP2-512",
    "timm/vit_so400m_patch14_siglip_224.v2_webli": "timm/ViT-SO400M-14-SigLIP2",
    "timm/vit_so400m_patch14_siglip_378.v2_webli": "timm/ViT-SO400M-14-SigLIP2-378",
    "timm/vit_so400m_patch16_siglip_256.v2_webli": "timm/ViT-SO400M-16-SigLIP2-256",
    "timm/vit_so400m_patch16_siglip_384.v2_webli": "timm/ViT-SO400M-16-SigLIP2-384",
    "timm/vit_so400m_patch16_siglip_512.v2_webli": "timm/ViT-SO400M-16-SigLIP2-512",
    "timm/vit_giantopt_patch16_siglip_256.v2_webli": "timm/ViT-gopt-16-SigLIP2-256",
    "timm/vit_giantopt_patch16_siglip_384.v2_webli": "timm/ViT-gopt-16-SigLIP2-384",
}


def text_tower_repo(repo_id: str | None) -> str | None:
    """The repo holding the text tower of the image-only ``repo_id``, where vitzoo knows it."""
    if repo_id is None:
        return None
    return TEXT_TOWER_REPOS.get(repo_id.replace("_siglip_gap_", "_siglip_"))
