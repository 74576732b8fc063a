"""vitzoo finetune on a generated dataset of coloured shapes: it learns (>= 95% validation accuracy), writes a folder
vitzoo and timm load with the new class names, resumes exactly after an interruption, and 2-process DDP (gloo)
computes the same losses as one process."""

from __future__ import annotations

import json
import os
import random

import pytest
import timm
import torch
import torch.multiprocessing as mp
from PIL import Image, ImageDraw

import vitzoo
import vitzoo.finetune as ft
from conftest import batch, cli, free_port, maxdiff
from vitzoo.finetune import FinetuneArgs, finetune

CLASSES = {"red_circle": (220, 40, 40), "green_square": (40, 200, 60), "blue_triangle": (50, 70, 230)}


def shapes(folder, per_class: int, seed: int) -> str:
    """An ImageFolder of 40x40 images: one shape of the class's colour (jittered) at a random place and size."""
    rng = random.Random(seed)
    for name, colour in CLASSES.items():
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            bg = tuple(rng.randint(90, 160) for _ in range(3))
            img = Image.new("RGB", (40, 40), bg)
            draw = ImageDraw.Draw(img)
            r = rng.randint(13, 19)
            cx, cy = rng.randint(r, 40 - r), rng.randint(r, 40 - r)
            fill = tuple(min(255, max(0, c + rng.randint(-25, 25))) for c in colour)
            box = (cx - r, cy - r, cx + r, cy + r)
            if name == "red_circle":
                draw.ellipse(box, fill=fill)
            elif name == "green_square":
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
            img.save(folder / name / f"{i}.png")
    return str(folder)


@pytest.fixture(autouse=True)
def one_thread():
    """Models this small gain nothing from threads; on a shared, loaded machine extra ones only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    tiny = vitzoo.create_model("vit_tiny_patch16_224", depth=2, embed_dim=64, num_heads=2, mlp_dim=128, img_size=32)
    return {
        "train": shapes(root / "train", 32, seed=0),
        "val": shapes(root / "val", 12, seed=1),
        "model": f"local-dir:{vitzoo.save_pretrained(tiny, root / 'tiny')}",
    }


def args(data, out, **kw) -> FinetuneArgs:
    base = dict(model=data["model"], train=data["train"], val=data["val"], out=str(out), epochs=4, batch_size=16)
    return FinetuneArgs(**{**base, "progress": False, **kw})


@pytest.mark.parametrize("recipe", ["paper", "adamw"])
def test_finetune_learns_and_saves_a_folder_vitzoo_and_timm_load(data, tmp_path, recipe):
    lr = {"paper": 0.03, "adamw": 2e-3}[recipe]
    out = finetune(args(data, tmp_path / "out", recipe=recipe, lr=lr))
    log = json.loads((out / "log.json").read_text())
    assert [e["epoch"] for e in log] == [1, 2, 3, 4]
    assert log[-1]["val_acc"] >= 0.95, log
    model = vitzoo.create_model(f"local-dir:{out}", pretrained=True).eval()
    assert model.pretrained_cfg.class_names() == sorted(CLASSES)
    ref = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    x = batch(32)
    with torch.no_grad():
        assert maxdiff(ref(x), model(x)) <= 1e-5
    assert list(ref.pretrained_cfg["label_names"]) == sorted(CLASSES)


class Interrupted(Exception):
    pass


def test_resume_after_an_interruption_ends_with_the_same_weights(data, tmp_path, monkeypatch):
    whole = finetune(args(data, tmp_path / "whole", epochs=2, val=None))
    save = ft.save_checkpoint

    def save_then_die(*a, **kw):  # the process is killed right after the first epoch's checkpoint
        save(*a, **kw)
        raise Interrupted

    monkeypatch.setattr(ft, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        finetune(args(data, tmp_path / "resumed", epochs=2, val=None))
    monkeypatch.setattr(ft, "save_checkpoint", save)
    state = torch.load(tmp_path / "resumed" / "checkpoint" / "state.pt", weights_only=False)
    assert state["epoch"] == 1
    resumed = finetune(args(data, tmp_path / "resumed", epochs=2, val=None))
    a = vitzoo.create_model(f"local-dir:{whole}", pretrained=True).state_dict()
    b = vitzoo.create_model(f"local-dir:{resumed}", pretrained=True).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _rank(rank: int, world: int, port: int, run: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        finetune(FinetuneArgs(**run))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters: about 25 s on a loaded 2-core machine
def test_two_process_ddp_computes_the_losses_of_one_process(data, tmp_path):
    run = dict(model=data["model"], train=data["train"], out=str(tmp_path / "one"), epochs=1, batch_size=16)
    run.update(progress=False, device="cpu")
    finetune(FinetuneArgs(**run))
    one = json.loads((tmp_path / "one" / "log.json").read_text())[0]["losses"]
    run["out"] = str(tmp_path / "two")
    mp.spawn(_rank, args=(2, free_port(), run), nprocs=2, join=True)
    two = json.loads((tmp_path / "two" / "log.json").read_text())[0]["losses"]
    assert len(one) == len(two) == 6
    assert max(abs(a - b) for a, b in zip(one, two, strict=True)) <= 1e-5, (one, two)


def test_cli_finetune(data, tmp_path):
    out = cli(
        "finetune",
        data["model"],
        data["train"],
        "--out",
        tmp_path / "cli",
        "--epochs",
        "1",
        "--quiet",
        "--batch-size",
        "32",
        "--recipe",
        "adamw",
        "--grad-checkpointing",
        "--bf16",
    )
    assert out.returncode == 0, out.stderr
    assert "epoch 1/1" in out.stdout and out.stdout.strip().endswith(str(tmp_path / "cli"))
    assert (tmp_path / "cli" / "model.safetensors").is_file() and (
        tmp_path / "cli" / "checkpoint" / "state.pt"
    ).is_file()
