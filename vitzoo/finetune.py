"""Fine-tune a checkpoint on a folder of images: the paper's transfer recipe or AdamW with layer-wise LR decay.

    vitzoo finetune vit_base_patch16_224.augreg_in21k data/train --val data/val --img-size 384 --out my-vit

Data: an ImageFolder (one sub-folder of images per class) or a CSV of ``path,label`` rows (paths relative to the
CSV). Out: a ``save_pretrained`` folder with the new class names (``create_model("local-dir:OUT",
pretrained=True)``, timm's ``create_model("local-dir:OUT", pretrained=True)``), ``log.json`` (per epoch: loss,
accuracy, validation accuracy, per-step losses) and ``checkpoint/`` (weights as safetensors; optimizer, scheduler,
epoch and RNG state), written after every epoch. Running the same command again resumes from it exactly: the
sampler's order and every augmentation are functions of (seed, epoch, image index), so an interrupted run and an
uninterrupted one end with the same weights. Under ``torchrun`` the ranks split each batch (DDP) and compute the
same steps as one process with the whole batch.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .errors import ConfigError, InputError
from .extract import progress_bar
from .factory import create_model, save_pretrained
from .model import VisionTransformer
from .pretrained_cfg import PretrainedCfg
from .transforms import EvalTransform, TrainTransform, create_transform, load_image
from .tuning import param_groups

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Recipe:
    """Optimizer, schedule and head of a fine-tuning recipe (every field can be overridden per run)."""

    optimizer: str  # "sgd" (momentum 0.9) or "adamw"
    lr: float  # peak learning rate, after linear warmup, then cosine decay to 0
    weight_decay: float
    layer_decay: float | None  # lr of layer i: lr * layer_decay ** (num_layers - 1 - i) (vitzoo.param_groups)
    clip_grad: float | None  # max global gradient norm
    warmup: float  # fraction of the steps spent in linear warmup
    zero_head: bool  # the new head starts at zero (paper App. B.1.1)


RECIPES: dict[str, Recipe] = {
    # Paper §3.2, App. B.1.1, Table 4: SGD momentum 0.9, no weight decay, cosine, grad clip 1, zero-init head,
    # lr 0.01 (VTAB; swept over {0.001, 0.003, 0.01, 0.03}), warmup 500 of 10k-20k steps
    "paper": Recipe("sgd", lr=0.01, weight_decay=0.0, layer_decay=None, clip_grad=1.0, warmup=0.05, zero_head=True),
    # DeiT / BEiT style: AdamW, weight decay 0.05, layer-wise lr decay 0.65
    "adamw": Recipe(
        "adamw", lr=5e-4, weight_decay=0.05, layer_decay=0.65, clip_grad=None, warmup=0.05, zero_head=False
    ),
}


# ------------------------------------------------------------------------------------------------------- data
def read_labelled(source: str | Path, classes: Sequence[str] | None = None) -> tuple[list[tuple[Path, int]], list[str]]:
    """(image path, class index) pairs and the class names of an ImageFolder or a ``path,label`` CSV.

    Classes are the sorted folder names (or CSV labels); pass the training ``classes`` to read a validation set.
    """
    root = Path(source)
    pairs: list[tuple[Path, str]] = []
    if root.is_file() and root.suffix.lower() == ".csv":
        with root.open(newline="") as f:
            for row in csv.reader(f):
                if len(row) < 2 or row[0].strip().lower() == "path":
                    continue
                pairs.append(((root.parent / row[0].strip()), row[1].strip()))
    elif root.is_dir():
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    pairs.append((path, folder.name))
    else:
        raise InputError(f"{source} is neither a folder of class sub-folders nor a .csv of path,label rows")
    if not pairs:
        raise InputError(f"no images found in {source} (ImageFolder: one sub-folder of images per class)")
    names = list(classes) if classes is not None else sorted({label for _, label in pairs})
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({label for _, label in pairs if label not in index})
    if unknown:
        raise InputError(f"{source} has classes the training set does not: {unknown[:10]}")
    return [(path, index[label]) for path, label in pairs], names


class LabelledImages(Dataset[tuple[torch.Tensor, int]]):
    """Images and labels; the training transform's random state is seeded per (seed, epoch, index)."""

    def __init__(
        self, items: Sequence[tuple[Path, int]], transform: TrainTransform | EvalTransform, seed: int = 0
    ) -> None:
        self.items, self.transform, self.seed, self.epoch = list(items), transform, seed, 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        if isinstance(self.transform, TrainTransform):
            self.transform.rng = random.Random(f"{self.seed}-{self.epoch}-{index}")
        return self.transform(load_image(path)), label


# -------------------------------------------------------------------------------------------------- schedule
def warmup_cosine(total: int, warmup: int) -> Callable[[int], float]:
    """lr factor at step s: linear from 1/warmup to 1 over ``warmup`` steps, then cosine to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def make_optimizer(model: VisionTransformer, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD (momentum 0.9) or AdamW over ``vitzoo.param_groups`` with the recipe's lr, decay and layer decay."""
    groups = param_groups(model, recipe.lr, recipe.weight_decay, recipe.layer_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=0.9)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    raise ConfigError(f"optimizer must be 'sgd' or 'adamw', got {recipe.optimizer!r}")


# ----------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(folder: Path, model: nn.Module, state: dict[str, Any]) -> None:
    """Weights (safetensors) and the training state (optimizer, scheduler, epoch, RNG, log) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(folder / "model.safetensors.tmp"))
    torch.save(state, folder / "state.pt.tmp")
    os.replace(folder / "model.safetensors.tmp", folder / "model.safetensors")  # both complete before either counts
    os.replace(folder / "state.pt.tmp", folder / "state.pt")


def load_checkpoint(folder: Path, model: nn.Module) -> dict[str, Any] | None:
    """Load the weights into ``model`` and return the training state; None when ``folder`` holds no checkpoint."""
    if not (folder / "state.pt").is_file():
        return None
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    state: dict[str, Any] = torch.load(folder / "state.pt", weights_only=False)
    return state


def _rng_state() -> dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda, "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])


# ---------------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class FinetuneArgs:
    """Everything one run needs; ``None`` fields take the recipe's (or the checkpoint's) value."""

    model: str  # arch.tag, hf-hub:..., local-dir:...
    train: str  # ImageFolder or CSV
    out: str
    val: str | None = None
    recipe: str = "paper"
    img_size: int | tuple[int, int] | None = None  # default: the checkpoint's (paper: 384)
    epochs: int = 10
    batch_size: int = 64  # global: split across DDP ranks
    lr: float | None = None
    weight_decay: float | None = None
    layer_decay: float | None = None
    clip_grad: float | None = None
    warmup: float | None = None
    bf16: bool = False  # bf16 autocast
    grad_checkpointing: bool = False
    workers: int = 0
    seed: int = 0
    device: str | None = None  # default: cuda (this rank's) when available, else cpu
    pretrained: bool = True
    progress: bool = True


def _recipe(args: FinetuneArgs) -> Recipe:
    if args.recipe not in RECIPES:
        raise ConfigError(f"recipe must be one of {tuple(RECIPES)}, got {args.recipe!r}")
    changes = {
        k: getattr(args, k)
        for k in ("lr", "weight_decay", "layer_decay", "clip_grad", "warmup")
        if getattr(args, k) is not None
    }
    return dataclasses.replace(RECIPES[args.recipe], **changes)


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group from torchrun's environment when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _mean(value: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(value)
        value = value / world
    return value


def _sum(value: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(value)
    return value


def build_model(args: FinetuneArgs, num_classes: int, recipe: Recipe) -> VisionTransformer:
    """The checkpoint with a new ``num_classes``-way head (zero with the paper's recipe) at ``img_size``."""
    model = create_model(args.model, pretrained=args.pretrained, num_classes=num_classes, img_size=args.img_size)
    if recipe.zero_head:
        for head in (model.head, model.head_dist):
            if isinstance(head, nn.Linear):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
    model.set_grad_checkpointing(args.grad_checkpointing)
    return model


@torch.no_grad()
def evaluate(
    model: nn.Module, data: LabelledImages, args: FinetuneArgs, device: torch.device, rank: int, world: int
) -> float:
    """Top-1 accuracy on ``data``; ranks split the images and sum their counts."""
    model.eval()
    indices = list(range(rank, len(data), world))
    loader = DataLoader(torch.utils.data.Subset(data, indices), batch_size=args.batch_size, num_workers=args.workers)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
        for x, y in loader:
            correct += (model(x.to(device)).argmax(-1).cpu() == y).sum().to(device)
    return float(_sum(correct, world).item()) / len(data)


def finetune(args: FinetuneArgs) -> Path:
    """Fine-tune ``args.model`` on ``args.train``; returns the ``save_pretrained`` folder ``args.out``.

    Resumes from ``OUT/checkpoint`` when it exists (same arguments). Under torchrun (WORLD_SIZE > 1) each rank
    runs ``batch_size / world`` images per step and DDP averages the gradients.
    """
    recipe = _recipe(args)
    rank, world = _distributed()
    if args.batch_size % world:
        raise ConfigError(f"batch_size {args.batch_size} must be divisible by the number of processes {world}")
    local = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    device = torch.device(args.device or (local if torch.cuda.is_available() else "cpu"))
    out = Path(args.out)
    train_items, classes = read_labelled(args.train)
    val_items = read_labelled(args.val, classes)[0] if args.val else []
    torch.manual_seed(args.seed)
    model = build_model(args, len(classes), recipe).to(device)
    size = model.config.img_size
    train = LabelledImages(train_items, create_transform(model, train=True, img_size=size), args.seed)
    val = LabelledImages(val_items, create_transform(model, img_size=size))
    sampler: DistributedSampler[int] = DistributedSampler(
        train, num_replicas=world, rank=rank, shuffle=True, seed=args.seed, drop_last=True
    )
    loader = DataLoader(train, batch_size=args.batch_size // world, sampler=sampler, num_workers=args.workers)
    steps_per_epoch = len(loader)
    if not steps_per_epoch:
        raise InputError(f"{len(train)} training images is fewer than one batch per process; lower --batch-size")
    total = steps_per_epoch * args.epochs
    optimizer = make_optimizer(model, recipe)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, round(recipe.warmup * total)))
    log: list[dict[str, Any]] = []
    start = 0
    state = load_checkpoint(out / "checkpoint", model)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start, log = state["epoch"], state["log"]
    net: nn.Module = DistributedDataParallel(model) if world > 1 else model
    params = [p for p in model.parameters() if p.requires_grad]
    for epoch in range(start, args.epochs):
        net.train()
        sampler.set_epoch(epoch)
        train.epoch = epoch
        losses: list[float] = []
        seen = correct = 0.0
        bar = progress_bar(steps_per_epoch * args.batch_size, args.progress and rank == 0, f"epoch {epoch + 1}")
        for images, labels in loader:
            x, y = images.to(device), labels.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                logits = net(x)
            loss = nn.functional.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            if recipe.clip_grad is not None:
                nn.utils.clip_grad_norm_(params, recipe.clip_grad)
            optimizer.step()
            scheduler.step()
            stats = _sum(torch.stack([loss.detach() * len(y), (logits.argmax(-1) == y).sum().float()]), world)
            losses.append(float(_mean(loss.detach().clone(), world).item()))
            seen += len(y) * world
            correct += float(stats[1].item())
            bar.update(len(y) * world)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", acc=f"{correct / seen:.3f}")
        bar.close()
        entry: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": sum(losses) / len(losses),
            "train_acc": correct / seen,
            "lr": scheduler.get_last_lr()[0],
            "losses": losses,
        }
        if val_items:
            entry["val_acc"] = evaluate(net, val, args, device, rank, world)
        log.append(entry)
        if rank == 0:
            line = (
                f"epoch {epoch + 1}/{args.epochs}  loss {entry['train_loss']:.4f}  train acc {entry['train_acc']:.4f}"
            )
            print(line + (f"  val acc {entry['val_acc']:.4f}" if val_items else ""), flush=True)
            state = {
                "epoch": epoch + 1,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": _rng_state(),
                "log": log,
                "args": dataclasses.asdict(args),
            }
            save_checkpoint(out / "checkpoint", model, state)
            (out / "log.json").write_text(json.dumps(log, indent=1) + "\n")
        if world > 1:
            dist.barrier()
    if rank == 0:
        model.pretrained_cfg = _facts(model, classes)
        save_pretrained(model.eval(), out)
    return out


def _facts(model: VisionTransformer, classes: Sequence[str]) -> PretrainedCfg:
    """The checkpoint's facts with the new head's class names and the fine-tuning size."""
    cfg = model.config
    old = model.pretrained_cfg
    size = (cfg.in_chans, *cfg.img_size)
    if old is None:
        return PretrainedCfg(
            name="finetuned", hf_hub_id=None, num_classes=len(classes), input_size=size, label_names=tuple(classes)
        )
    tag = f"{old.arch}.finetuned"
    return dataclasses.replace(
        old,
        name=tag,
        hf_hub_id=None,
        num_classes=len(classes),
        input_size=size,
        labels="custom",
        label_names=tuple(classes),
        top1=None,
        top5=None,
    )
