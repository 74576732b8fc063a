"""Regenerate vitzoo/weights/tags.py from timm's pretrained configs (dev tool; needs timm installed).

    python scripts/gen_pretrained.py > /tmp/tags.py && mv /tmp/tags.py vitzoo/weights/tags.py
    ruff format vitzoo/weights/tags.py

(write to a temporary file first: the script imports vitzoo, which imports the table).

Each entry is written with only what differs from the defaults of ``_timm`` in the generated file. Published
top-1/top-5 are timm's results/results-imagenet.csv (commit 0173a139), typed in below.
"""

from __future__ import annotations

import json
from typing import Any

from timm.models import get_pretrained_cfg
from timm.models._registry import _model_default_cfgs

import vitzoo

RESULTS = {  # name: (top1, top5) from timm results/results-imagenet.csv @ 0173a139
    "vit_tiny_patch16_224.augreg_in21k_ft_in1k": (75.454, 92.844),
    "vit_tiny_patch16_384.augreg_in21k_ft_in1k": (78.424, 94.540),
    "vit_small_patch16_224.augreg_in1k": (78.846, 94.288),
    "vit_small_patch16_224.augreg_in21k_ft_in1k": (81.384, 96.136),
    "vit_small_patch16_384.augreg_in1k": (81.116, 95.574),
    "vit_small_patch16_384.augreg_in21k_ft_in1k": (83.802, 97.098),
    "vit_base_patch16_224.augreg2_in21k_ft_in1k": (85.096, 97.530),
    "vit_base_patch16_224.augreg_in1k": (79.154, 94.090),
    "vit_base_patch16_224.augreg_in21k_ft_in1k": (84.532, 97.292),
    "vit_base_patch16_224.orig_in21k_ft_in1k": (81.786, 96.124),
    "vit_base_patch16_224.sam_in1k": (80.244, 94.756),
    "vit_base_patch16_384.augreg_in1k": (81.102, 95.330),
    "vit_base_patch16_384.augreg_in21k_ft_in1k": (85.996, 98.002),
    "vit_base_patch16_384.orig_in21k_ft_in1k": (84.200, 97.220),
    "vit_base_patch32_224.augreg_in1k": (74.894, 91.778),
    "vit_base_patch32_224.augreg_in21k_ft_in1k": (80.716, 95.566),
    "vit_base_patch32_224.sam_in1k": (73.694, 91.014),
    "vit_base_patch32_384.augreg_in1k": (78.752, 94.224),
    "vit_base_patch32_384.augreg_in21k_ft_in1k": (83.350, 96.838),
    "vit_large_patch16_224.augreg_in21k_ft_in1k": (85.834, 97.818),
    "vit_large_patch16_384.augreg_in21k_ft_in1k": (87.084, 98.302),
    "vit_large_patch32_384.orig_in21k_ft_in1k": (81.510, 96.090),
    "vit_base_r50_s16_384.orig_in21k_ft_in1k": (84.976, 97.290),
}
RECIPES = {
    "augreg2_in21k_ft_in1k": "AugReg ImageNet-21k pretrain, re-fine-tuned on ImageNet-1k by timm",
    "augreg_in21k_ft_in1k": "AugReg (Steiner et al. 2021): ImageNet-21k pretrain, ImageNet-1k fine-tune",
    "augreg_in21k": "AugReg ImageNet-21k pretrain with its 21,843-class head",
    "augreg_in1k": "AugReg trained on ImageNet-1k only",
    "orig_in21k_ft_in1k": "Original paper weights: ImageNet-21k pretrain, ImageNet-1k fine-tune",
    "orig_in21k": "Original paper ImageNet-21k pretrain, headless (zeroed 21k head and pre-logits removed)",
    "sam_in1k": "ImageNet-1k with the SAM optimizer (Chen et al. 2021)",
    "dino": "DINO self-supervised on ImageNet-1k (Caron et al. 2021), headless",
    "mae": "MAE self-supervised on ImageNet-1k (He et al. 2022), headless",
    "bamboo": "Bamboo pretrain (Zhang et al. 2022) with its 115,217-class head",
    "fb_in1k": "DeiT / DeiT-III (Touvron et al. 2021, 2022): ImageNet-1k only",
    "fb_in22k_ft_in1k": "DeiT-III: ImageNet-22k pretrain, ImageNet-1k fine-tune",
    "lvd142m": "DINOv2 self-supervised on LVD-142M (Oquab et al. 2024), headless",
    "lvd1689m": "DINOv3 self-supervised on LVD-1689M web images (Simeoni et al. 2025), headless",
    "sat493m": "DINOv3 self-supervised on SAT-493M satellite images, headless",
    "eupe_lvd1689m": "DINOv3 EUPE distilled on LVD-1689M, headless",
    "openai": "OpenAI CLIP (Radford et al. 2021) image tower; head = projection into the joint space",
    "openai_ft_in1k": "OpenAI CLIP image tower fine-tuned on ImageNet-1k by timm",
    "openai_ft_in12k": "OpenAI CLIP image tower fine-tuned on ImageNet-12k by timm",
    "openai_ft_in12k_in1k": "OpenAI CLIP image tower fine-tuned on ImageNet-12k, then ImageNet-1k, by timm",
    "laion2b": "OpenCLIP on LAION-2B (Cherti et al. 2023) image tower; head = projection",
    "laion2b_ft_in1k": "OpenCLIP LAION-2B image tower fine-tuned on ImageNet-1k by timm",
    "laion2b_ft_in12k": "OpenCLIP LAION-2B image tower fine-tuned on ImageNet-12k by timm",
    "laion2b_ft_in12k_in1k": "OpenCLIP LAION-2B image tower fine-tuned on ImageNet-12k, then ImageNet-1k, by timm",
    "laion400m_e32": "OpenCLIP on LAION-400M (32 epochs) image tower; head = projection",
    "datacompxl": "OpenCLIP on DataComp-XL (Gadre et al. 2023) image tower; head = projection",
    "dfn2b": "Apple DFN-2B (Fang et al. 2023) CLIP image tower; head = projection",
    "dfn2b_s39b": "Apple DFN-2B CLIP image tower (39B samples seen); head = projection",
    "dfn5b": "Apple DFN-5B CLIP image tower; head = projection",
    "apple_mclip2_dfndr2b": "Apple MobileCLIP2 DFNDR-2B image tower; head = projection",
    "metaclip_400m": "MetaCLIP 400M (Xu et al. 2024) image tower; head = projection",
    "metaclip_2pt5b": "MetaCLIP 2.5B image tower; head = projection",
    "metaclip_altogether": "MetaCLIP Altogether (re-aligned captions) image tower; head = projection",
    "metaclip2_worldwide": "MetaCLIP 2 worldwide (multilingual) image tower; head = projection",
    "webli": "SigLIP (Zhai et al. 2023) image tower trained on WebLI, headless",
    "v2_webli": "SigLIP 2 (Tschannen et al. 2025) image tower trained on WebLI, headless",
    "webli_i18n": "SigLIP multilingual WebLI image tower, headless",
    "webli_ft_in1k": "SigLIP WebLI image tower fine-tuned on ImageNet-1k",
    "pali_pt": "PaliGemma pretrain image tower (SigLIP so400m, no MAP head), headless",
    "pali_mix": "PaliGemma mix fine-tune image tower, headless",
    "pali_refcoco_seg": "PaliGemma RefCOCO segmentation fine-tune image tower, headless",
    "pali_ocrvqa": "PaliGemma OCR-VQA fine-tune image tower, headless",
    "pali2_3b_pt": "PaliGemma 2 3B pretrain image tower, headless",
    "pali2_10b_pt": "PaliGemma 2 10B pretrain image tower, headless",
    "pali2_3b_docci": "PaliGemma 2 3B DOCCI fine-tune image tower, headless",
    "pali2_10b_docci": "PaliGemma 2 10B DOCCI fine-tune image tower, headless",
    "in21k": "MIIL ImageNet-21K-P pretrain (Ridnik et al. 2021) with its 11,221-class head",
    "in21k_ft_in1k": "MIIL ImageNet-21K-P pretrain (Ridnik et al. 2021), ImageNet-1k fine-tune",
    "in22k_ft_in1k": "EVA-01 (Fang et al. 2023) MIM pretrain on ImageNet-22k, ImageNet-1k fine-tune",
    "in22k_ft_in22k_in1k": "EVA-01 MIM pretrain on ImageNet-22k, fine-tuned on ImageNet-22k, then ImageNet-1k",
    "300ep_in1k": "FlexiViT (Beyer et al. 2023) trained 300 epochs on ImageNet-1k with random patch sizes",
    "600ep_in1k": "FlexiViT trained 600 epochs on ImageNet-1k with random patch sizes",
    "1200ep_in1k": "FlexiViT trained 1200 epochs on ImageNet-1k with random patch sizes",
    "300ep_in21k": "FlexiViT trained 300 epochs on ImageNet-21k, with its 21,843-class head",
    "1000ep_in21k": "FlexiViT trained 1000 epochs on ImageNet-21k, with its 21,843-class head",
    "patch16_in21k": "ViT-B/16 trained on ImageNet-21k at patch 16 only (FlexiViT's baseline), 21,843-class head",
    "patch30_in21k": "ViT-B/30 trained on ImageNet-21k at patch 30 only (FlexiViT's baseline), 21,843-class head",
    "tinyclip_yfcc15m": "TinyCLIP (Wu et al. 2023) image tower distilled on YFCC-15M; head = projection",
    "tinyclip_laion400m": "TinyCLIP (Wu et al. 2023) image tower distilled on LAION-400M; head = projection",
    "sbb_in1k": "timm 'searching for better baselines' recipe (Wightman), ImageNet-1k only",
    "sbb_nadamuon_in1k": "timm SBB recipe with the NAdaMuon optimizer, ImageNet-1k only",
    "sbb_in12k": "timm SBB recipe on ImageNet-12k, with its 11,821-class head",
    "sbb_in12k_ft_in1k": "timm SBB recipe: ImageNet-12k pretrain, ImageNet-1k fine-tune",
    "sbb2_e200_in12k": "timm SBB2 recipe, 200 epochs on ImageNet-12k, with its 11,821-class head",
    "sbb2_e200_in12k_ft_in1k": "timm SBB2 recipe: 200 epochs on ImageNet-12k, ImageNet-1k fine-tune",
    "sbb_e200_in12k": "timm SBB recipe, 200 epochs on ImageNet-12k, with its 11,821-class head",
    "sbb_e200_in12k_ft_in1k": "timm SBB recipe: 200 epochs on ImageNet-12k, ImageNet-1k fine-tune",
    "sbb_e250_in12k": "timm SBB recipe, 250 epochs on ImageNet-12k, with its 11,821-class head",
    "sbb_e250_in12k_ft_in1k": "timm SBB recipe: 250 epochs on ImageNet-12k, ImageNet-1k fine-tune",
    "sw_in12k": "timm (Wightman) trained on ImageNet-12k, with its 11,821-class head",
    "sw_in12k_ft_in1k": "timm (Wightman): ImageNet-12k pretrain, ImageNet-1k fine-tune",
    "tipsv2_webli": "TIPSv2 (Google) image-text pretrain on WebLI, image tower, headless",
    "mim_in22k": "EVA-02 (Fang et al. 2024): masked image modelling of EVA-CLIP features on ImageNet-22k, headless",
    "mim_in22k_ft_in1k": "EVA-02 MIM on ImageNet-22k, ImageNet-1k fine-tune",
    "mim_in22k_ft_in22k": "EVA-02 MIM on ImageNet-22k, ImageNet-22k fine-tune with its 21,841-class head",
    "mim_in22k_ft_in22k_in1k": "EVA-02 MIM on ImageNet-22k, ImageNet-22k then ImageNet-1k fine-tunes",
    "mim_m38m": "EVA-02 MIM on Merged-38M (IN-22k, CC12M, CC3M, COCO, ADE20K, Object365, OpenImages), headless",
    "mim_m38m_ft_in1k": "EVA-02 MIM on Merged-38M, ImageNet-1k fine-tune",
    "mim_m38m_ft_in22k": "EVA-02 MIM on Merged-38M, ImageNet-22k fine-tune with its 21,841-class head",
    "mim_m38m_ft_in22k_in1k": "EVA-02 MIM on Merged-38M, ImageNet-22k then ImageNet-1k fine-tunes",
    "merged2b": "EVA-CLIP (Sun et al. 2023) image tower trained on Merged-2B; head = projection",
    "eva_clip_laion400m": "EVA-CLIP g image tower trained on LAION-400M; head = projection",
    "clip_ft_in1k": "EVA-01 g (Fang et al. 2023): EVA-CLIP image tower fine-tuned on ImageNet-1k",
    "m30m_ft_in22k_in1k": "EVA-01 g: MIM on Merged-30M, ImageNet-22k then ImageNet-1k fine-tunes",
    "naver_in1k": "RoPE-ViT (Heo et al. 2024, NAVER): DeiT-III recipe on ImageNet-1k with rotary positions",
    "pe_core_fb": "Perception Encoder core (Bolya et al. 2025, Meta): CLIP image tower; head = projection",
    "pe_lang_fb": "Perception Encoder lang (Meta): the core tower aligned to a language model, headless",
    "pe_lang_fb_tiling": "Perception Encoder lang (Meta), tuned on image tiles, headless",
    "pe_spatial_fb": "Perception Encoder spatial (Meta): the core tower distilled for dense features, headless",
    "sapiens2_fb": "Sapiens2 (Khirodkar et al. 2026): Meta's human-centric backbone at 1024 x 768, headless",
    "c_radio": "C-RADIO (NVIDIA): agglomerative distillation of SigLIP 2, DINOv3 and SAM teachers, headless",
    "ogvl_2pt5": "InternViT-300M-448px-V2.5 (OpenGVLab), InternVL 2.5's image encoder, headless",
    "ogvl_dist": "InternViT-300M-448px (OpenGVLab), distilled from InternViT-6B, headless",
    "apple_pt": "AIMv2 (Fini et al. 2025, Apple): multimodal autoregressive pretraining, image encoder, headless",
    "pt": "BEiT-3 (Wang et al. 2023): masked modelling of images, texts and image-text pairs, image tower, headless",
    "indomain_pt": "BEiT-3 pretrain, continued on in-domain data, image tower, headless",
    "beit3_in22k_ft_in1k": "BEiT-3 pretrain, ImageNet-22k then ImageNet-1k fine-tunes",
    "indomain_in22k_ft_in1k": "BEiT-3 in-domain pretrain, ImageNet-22k then ImageNet-1k fine-tunes",
    "sw_in1k": "timm (Wightman) trained on ImageNet-1k",
    "eva_clip_laion2b": "EVA-CLIP E/14 image tower trained on LAION-2B (4B samples seen); head = projection",
    "laion2b_plus": "EVA-CLIP E/14+ image tower trained on LAION-2B (9B samples seen); head = projection",
    "robbyant": "LingBot-Vision (Fu et al. 2026): pretraining for dense spatial perception, DINOv3-style, headless",
    "apple_pt_dist": "AIMv2 L distilled from AIMv2 3B (Apple), image encoder, headless",
}
# Tags whose name another family's recipe already uses: arch suffix -> (tag -> its own RECIPES key)
RECIPE_OF = {  # a part of the arch name: {tag: its RECIPES key}
    "_tipsv2": {"webli": "tipsv2_webli"},
    "eva_giant_patch14_clip_224": {"laion400m": "eva_clip_laion400m"},
    "vit_pe_core_": {"fb": "pe_core_fb"},
    "beit3_": {"in22k_ft_in1k": "beit3_in22k_ft_in1k"},
    "eva02_enormous_": {"laion2b": "eva_clip_laion2b"},
    "vit_pe_lang_": {"fb": "pe_lang_fb", "fb_tiling": "pe_lang_fb_tiling"},
    "vit_pe_spatial_": {"fb": "pe_spatial_fb"},
    "_sapiens2": {"fb": "sapiens2_fb"},
}
LABELS = {1000: "imagenet-1k", 21843: "imagenet-21k", 11821: "imagenet-12k", 115217: "bamboo"}
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def _q(value: Any) -> str:
    """Python literal with double-quoted strings (the project's format)."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def entry(arch: str, tag: str) -> str:
    """One ``_timm(...)`` call with the values that differ from its defaults."""
    c = get_pretrained_cfg(f"{arch}.{tag}").to_dict()
    side = c["input_size"][1]
    img = side if c["input_size"] == (3, side, side) else tuple(c["input_size"][1:])  # (height, width): Sapiens2
    top1, top5 = RESULTS.get(f"{arch}.{tag}", (None, None))
    defaults: dict[str, Any] = {
        "img": 224,
        "num_classes": 1000,
        "crop_pct": 1.0 if min(c["input_size"][1:]) >= 384 else 0.9,
        "crop_mode": "center",
        "interpolation": "bicubic",
        "license": "apache-2.0",
    }
    values: dict[str, Any] = {
        "img": img,
        "num_classes": c["num_classes"],
        "crop_pct": c["crop_pct"],
        "crop_mode": c["crop_mode"],
        "interpolation": c["interpolation"],
        "license": c.get("license"),
    }
    args = [_q(arch), _q(tag)] + [f"{k}={_q(v)}" for k, v in values.items() if v != defaults[k]]
    if c["hf_hub_id"] != f"timm/{arch}.{tag}":  # the QuickGELU archs share the weights of their GELU twin
        args.append(f"hub={_q(c['hf_hub_id'])}")
    mean, std = tuple(c["mean"]), tuple(c["std"])
    if (mean, std) == IMAGENET:
        args.append("norm=IMAGENET")
    elif (mean, std) == CLIP:
        args.append("norm=CLIP")
    elif (mean, std) != ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)):
        args.append(f"norm=({mean!r}, {std!r})")
    if top1 is not None:
        args += [f"top1={top1}", f"top5={top5}"]
    recipe = next((r[tag] for part, r in RECIPE_OF.items() if part in arch and tag in r), tag)
    if recipe != tag:
        args.append(f"recipe={_q(recipe)}")
    assert recipe in RECIPES, recipe
    return f"    _timm({', '.join(args)}),"


HEADER = '''"""Every pretrained checkpoint vitzoo knows, as plain data (generated by scripts/gen_pretrained.py).

An entry states only what differs from the defaults of ``_timm``: weights in the Hub repo ``timm/<arch>.<tag>``,
224 px input with crop_pct 0.9 (1.0 at 384 px and above), bicubic center crop, mean/std 0.5, 1000 ImageNet-1k
classes, Apache-2.0, and the description of the tag's training recipe (``RECIPES``). Facts come from timm's
``pretrained_cfg``; top-1/top-5 from timm's results-imagenet.csv.
"""

from __future__ import annotations

from ..models.pretrained_cfg import PretrainedCfg

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # mean, std
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))  # OpenAI CLIP's mean, std
LABELS = {1000: "imagenet-1k", 21843: "imagenet-21k", 11821: "imagenet-12k", 115217: "bamboo"}  # by head size
'''

TIMM = '''

def _timm(
    arch: str,
    tag: str,
    *,
    img: int | tuple[int, int] = 224,
    num_classes: int = 1000,
    crop_pct: float | None = None,
    crop_mode: str = "center",
    interpolation: str = "bicubic",
    norm: tuple[tuple[float, ...], tuple[float, ...]] = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    license: str | None = "apache-2.0",
    top1: float | None = None,
    top5: float | None = None,
    hub: str | None = None,
    recipe: str | None = None,
) -> PretrainedCfg:
    """A checkpoint published by timm on the Hub as ``timm/<arch>.<tag>`` (or ``hub``); ``recipe``: its ``RECIPES``
    key where another family's recipe has the tag's name; ``img``: one side, or (height, width)."""
    size = img if isinstance(img, tuple) else (img, img)
    return PretrainedCfg(
        name=f"{arch}.{tag}",
        hf_hub_id=hub or f"timm/{arch}.{tag}",
        num_classes=num_classes,
        input_size=(3, *size),
        crop_pct=crop_pct if crop_pct is not None else (1.0 if min(size) >= 384 else 0.9),
        crop_mode=crop_mode,
        interpolation=interpolation,
        mean=norm[0],
        std=norm[1],
        labels=LABELS.get(num_classes),
        license=license,
        top1=top1,
        top5=top5,
        description=RECIPES[recipe or tag],
    )

'''

print(HEADER)
print("RECIPES = {  # tag -> how the checkpoint was trained")
for tag, text in RECIPES.items():
    print(f"    {_q(tag)}: {_q(text)},")
print("}")
print(TIMM)
print("TAGS: list[PretrainedCfg] = [")
for arch in vitzoo.list_models():
    for tag in _model_default_cfgs[arch].tags:
        hub = get_pretrained_cfg(f"{arch}.{tag}").hf_hub_id or ""
        if tag != "untrained" and hub:  # weights on the Hub (a few cfgs only name a URL)
            print(entry(arch, tag))
print("]")
