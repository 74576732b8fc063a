"""The values of the library's options that the command line lists, importable without torch: the names to choose
from and the default lists, so that ``vitzoo --help`` shows them without importing torch.

The library reads them from here (``ViTConfig`` its pools, ``models.dtypes`` its names, ``export`` its formats,
the probes their defaults); ``train.recipes.RECIPES`` is keyed by ``RECIPES`` (tests/test_cli_help.py checks).
"""

from __future__ import annotations

POOLS = ("token", "avg", "map")  # global_pool: class token, mean of the patch tokens, attention pool (SigLIP)
# What feature extraction returns: the global pools, every token, what the head sees, or the model's output.
FEATURE_POOLS: tuple[str, ...] = (*POOLS, "tokens", "pre_logits", "output")
VECTOR_POOLS: tuple[str, ...] = tuple(p for p in FEATURE_POOLS if p != "tokens")  # one vector per image: the probes'
TEXT_POOL = "text"  # the pool an output of texts records (vitzoo embed --text-file): the text tower's embedding
DTYPES = ("fp32", "bf16", "fp16")  # model dtypes by short name
INT8 = "int8"  # inference only: onnxruntime's dynamic quantisation of an fp32 graph (vitzoo.features.runtimes)
INFERENCE_DTYPES = (*DTYPES, INT8)  # what the commands that run a model over images take
RUNTIMES = ("torch", "compile", "onnxruntime", "auto")  # where their forward runs (vitzoo.features.runtimes)
EXPORT_FORMATS = ("onnx", "pt2")  # ONNX, or a torch.export program
RECIPES = ("paper", "adamw")  # fine-tuning recipes
KNN_K = (10, 20, 100, 200)  # k-NN neighbours (DINOv2's nb_knn)
FEWSHOT_SHOTS = (1, 5, 10, 25)  # images per class of the few-shot regression (the ViT paper's)
SEARCH_BLOCK_ROWS = 16384  # rows of an embed output searched at a time: 48 MiB of 768-wide float32 rows
