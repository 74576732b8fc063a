"""Fine-tune a checkpoint on a folder of images: the paper's transfer recipe or AdamW with layer-wise LR decay.

    vitzoo finetune vit_base_patch16_224.augreg_in21k data/train --val data/val --img-size 384 --out my-vit

Data: an ImageFolder (one sub-folder of images per class) or a CSV of ``path,label`` rows (paths relative to the
CSV); the validation set is matched to the training classes by name. Out: a ``save_pretrained`` folder with the new
class names (``create_model("local-dir:OUT", pretrained=True)``, timm's ``create_model("local-dir:OUT",
pretrained=True)``), ``log.json`` (per epoch: loss, accuracy, validation accuracy, per-step losses) and
``checkpoint/`` (weights, optimizer tensors and RNG state as safetensors; epoch, log, scheduler and the run's
identity as JSON: nothing is ever unpickled), swapped in whole after every epoch. Running the same command again
resumes from it exactly: the sampler's order and every augmentation are functions of (seed, epoch, image index), so
an interrupted run and an uninterrupted one end with the same weights. A resume with another model, weights, data
or hyper-parameter is refused, naming what differs. Under ``torchrun`` the ranks split each batch (DDP) and compute
the same steps as one process with the whole batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..atomic import atomic_write_text
from ..errors import ConfigError, InputError
from ..factory import create_model, save_pretrained
from ..features.batches import progress_bar
from ..features.distributed import local_device, mean_across, process_group, sum_across
from ..features.labelled import index_classes, read_labelled
from ..features.transforms import EvalTransform, TrainTransform, create_transform, load_image, resolve_data_config
from ..models.pretrained_cfg import PretrainedCfg
from ..models.vit import VisionTransformer
from ..weights.loading import weights_digest
from .checkpoint import CHECKPOINT, check_out, load_checkpoint, restore, save_checkpoint
from .recipes import RECIPES, Recipe, make_optimizer, warmup_cosine


# ------------------------------------------------------------------------------------------------------- data
def read_splits(
    train: str | Path, val: str | Path | None = None
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]], list[str]]:
    """(image path, class index) pairs of the training and validation sets, and the class names.

    Each set is an ImageFolder or a ``path,label`` CSV (``vitzoo.features.labelled.read_labelled``: absolute paths,
    listed images must exist). Classes are the sorted training labels, at least two; the validation set is matched
    to them by name, and a class the training set lacks is an error naming it.
    """
    train_set = read_labelled(train, must_exist=True)
    val_set = read_labelled(val, must_exist=True) if val is not None else None
    classes, train_y, val_y = index_classes(
        train_set.labels,
        val_set.labels if val_set is not None else [],
        f"the training set {train}",
        f"the validation set {val}",
    )

    def pairs(paths: Sequence[str], labels: torch.Tensor) -> list[tuple[Path, int]]:
        return [(Path(p), y) for p, y in zip(paths, labels.tolist(), strict=True)]

    return pairs(train_set.paths, train_y), pairs(val_set.paths, val_y) if val_set is not None else [], classes


class TrainingImages(Dataset[tuple[torch.Tensor, int]]):
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


# ----------------------------------------------------------------------------------------------- checkpoints


# ------------------------------------------------------------------------------------------------ the output


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
def top1_accuracy(
    model: nn.Module, data: TrainingImages, args: FinetuneArgs, device: torch.device, rank: int, world: int
) -> float:
    """Top-1 accuracy on ``data``; ranks split the images and sum their counts."""
    model.eval()
    indices = list(range(rank, len(data), world))
    loader = DataLoader(torch.utils.data.Subset(data, indices), batch_size=args.batch_size, num_workers=args.workers)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
        for x, y in loader:
            correct += (model(x.to(device)).argmax(-1).cpu() == y).sum().to(device)
    return float(sum_across(correct).item()) / len(data)


# What a resume may change: how the numbers are computed, not which (docs/finetune.md, "Resuming").
RESUME_MAY_CHANGE = ("out", "workers", "progress", "device", "grad_checkpointing")


def run_identity(
    args: FinetuneArgs,
    recipe: Recipe,
    model: VisionTransformer,
    train: Sequence[tuple[Path, int]],
    val: Sequence[tuple[Path, int]],
) -> dict[str, Any]:
    """What a run's result depends on, which a resume must share: the model (name, the digest of its starting
    weights, its preprocessing), the data (digests of the training and validation listings: paths and labels),
    the recipe with every hyper-parameter as used, and the seed. JSON values, as the checkpoint stores them."""
    identity = {
        "model": args.model,
        "weights": weights_digest(model),
        "preprocessing": resolve_data_config(model).to_dict(),
        "pretrained": args.pretrained,
        "train": _listing_digest(train),
        "val": _listing_digest(val) if val else None,
        "recipe": args.recipe,
        **{k: v for k, v in dataclasses.asdict(recipe).items() if k not in ("optimizer", "zero_head")},
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "bf16": args.bf16,
        "seed": args.seed,
        "img_size": list(model.config.img_size),
    }
    loaded: dict[str, Any] = json.loads(json.dumps(identity))
    return loaded


def _listing_digest(items: Sequence[tuple[Path, int]]) -> str:
    return hashlib.sha256("".join(f"{path}\t{label}\n" for path, label in items).encode()).hexdigest()


def check_same_run(folder: Path, saved: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """Refuse to resume the run in ``folder`` (identity ``saved``) with another one (``now``), naming what differs."""
    differ = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
    if not differ:
        return

    def change(key: str) -> str:
        old, new = json.dumps(saved.get(key)), json.dumps(now.get(key))
        return f"{key} ({old} before, {new} now)" if len(old) + len(new) < 60 else key

    raise ConfigError(
        f"{folder} is the checkpoint of another run (it differs in {', '.join(change(k) for k in differ)}); run the "
        "same command as before to resume it, or pass another (or an empty) --out to start a new run"
    )


def finetune(args: FinetuneArgs) -> Path:
    """Fine-tune ``args.model`` on ``args.train``; returns the ``save_pretrained`` folder ``args.out``.

    Resumes from ``OUT/checkpoint`` when it exists, if the run is the same (``run_identity``; else ``ConfigError``
    naming what differs). An ``out`` holding anything but a fine-tune output is refused before anything is written.
    Under torchrun (WORLD_SIZE > 1) each rank runs ``batch_size / world`` images per step and DDP averages the
    gradients.
    """
    device = torch.device(local_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu")) or "cpu")
    with process_group(device) as (rank, world):
        return _finetune(args, device, rank, world)


def _finetune(args: FinetuneArgs, device: torch.device, rank: int, world: int) -> Path:
    recipe = _recipe(args)
    if args.batch_size % world:
        raise ConfigError(f"batch_size {args.batch_size} must be divisible by the number of processes {world}")
    out = Path(args.out)
    check_out(out)
    train_items, val_items, classes = read_splits(args.train, args.val)
    torch.manual_seed(args.seed)
    model = build_model(args, len(classes), recipe)
    identity = run_identity(args, recipe, model, train_items, val_items)  # the starting weights, before any step
    checkpoint = load_checkpoint(out / CHECKPOINT)
    if checkpoint is not None:
        check_same_run(checkpoint.folder, checkpoint.state["run"], identity)
    model = model.to(device)
    size = model.config.img_size
    train = TrainingImages(train_items, create_transform(model, train=True, img_size=size), args.seed)
    val = TrainingImages(val_items, create_transform(model, img_size=size))
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
    if checkpoint is not None:
        start, log = restore(checkpoint, model, optimizer, scheduler)
        del checkpoint  # its tensors are in the model and optimizer now
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
            stats = sum_across(torch.stack([loss.detach() * len(y), (logits.argmax(-1) == y).sum().float()]))
            losses.append(float(mean_across(loss.detach()).item()))
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
            entry["val_acc"] = top1_accuracy(net, val, args, device, rank, world)
        log.append(entry)
        if rank == 0:
            line = (
                f"epoch {epoch + 1}/{args.epochs}  loss {entry['train_loss']:.4f}  train acc {entry['train_acc']:.4f}"
            )
            print(line + (f"  val acc {entry['val_acc']:.4f}" if val_items else ""), flush=True)
            state = {"epoch": epoch + 1, "log": log, "run": identity, "args": dataclasses.asdict(args)}
            save_checkpoint(out / CHECKPOINT, model, optimizer, scheduler, state)
            atomic_write_text(out / "log.json", json.dumps(log, indent=1) + "\n")
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
