"""vitzoo finetune on a generated dataset of coloured shapes: it learns (>= 95% validation accuracy), writes a folder
vitzoo and timm load with the new class names, resumes exactly after an interruption, and 2-process DDP (gloo)
computes the same losses as one process."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil

import pytest
import timm
import torch
import torch.multiprocessing as mp
from PIL import Image, ImageDraw

import vitzoo
import vitzoo.train.finetune as ft
from conftest import batch, cli, free_port, maxdiff, one_line_error, randomize_
from vitzoo.train.finetune import FinetuneArgs, finetune

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module

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
    """Also when the resume changes what may change (progress, gradient checkpointing: the same numbers), and when
    the process died between the two renames of a checkpoint save (the previous checkpoint is used)."""
    whole = finetune(args(data, tmp_path / "whole", epochs=2, val=None))
    save = ft.save_checkpoint

    def save_then_die(*a, **kw):  # the process is killed right after the first epoch's checkpoint
        save(*a, **kw)
        raise Interrupted

    monkeypatch.setattr(ft, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        finetune(args(data, tmp_path / "resumed", epochs=2, val=None))
    monkeypatch.setattr(ft, "save_checkpoint", save)
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1
    shutil.copytree(tmp_path / "resumed", tmp_path / "cut")
    os.replace(tmp_path / "cut" / "checkpoint", tmp_path / "cut" / "checkpoint.previous")  # died between renames
    resumed = finetune(args(data, tmp_path / "resumed", epochs=2, val=None, progress=True, grad_checkpointing=True))
    cut = finetune(args(data, tmp_path / "cut", epochs=2, val=None))
    a = vitzoo.create_model(f"local-dir:{whole}", pretrained=True).state_dict()
    for out in (resumed, cut):
        b = vitzoo.create_model(f"local-dir:{out}", pretrained=True).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert json.loads((out / "log.json").read_text()) == json.loads((whole / "log.json").read_text())
    assert not (tmp_path / "cut" / "checkpoint.previous").exists()


def _rank(rank: int, world: int, port: int, run: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    finetune(FinetuneArgs(**run))
    assert not torch.distributed.is_initialized()  # finetune left the group it joined


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
    assert (tmp_path / "cli" / "model.safetensors").is_file()
    assert {p.name for p in (tmp_path / "cli" / "checkpoint").iterdir()} == {
        "model.safetensors",
        "state.safetensors",
        "state.json",
    }


# ------------------------------------------------------------------------------------- resuming safely
@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """A finished one-epoch run, no validation set: the command of ``run_cli``."""
    out = tmp_path_factory.mktemp("finished") / "out"
    finetune(args(data, out, epochs=1, val=None))
    return out


def run_cli(data, out):
    """``vitzoo finetune`` with the arguments of ``finished``: a resume with nothing left to train."""
    return cli("finetune", data["model"], data["train"], "--out", out, "--epochs", "1", "--batch-size", "16", "--quiet")


class Payload:
    """A pickle that makes a folder when it is loaded: what a planted file would do instead (any command)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize(
    "planted",
    [
        "checkpoint/state.pt",  # the old layout's file, beside a good checkpoint: ignored
        "checkpoint/state.json",
        "checkpoint/state.safetensors",
        "checkpoint/model.safetensors",
        "old",  # the old layout alone: model.safetensors and a state.pt
        "checkpoint.previous/state.json",  # the checkpoint a save cut short between its renames leaves
        "log.json",  # read (as JSON) to recognise an output whose checkpoint/ was deleted
    ],
)
def test_a_planted_pickle_never_runs(data, finished, tmp_path, planted):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    marker = tmp_path / "pwned"
    torch.save(Payload(marker), tmp_path / "payload.pt")
    torch.load(tmp_path / "payload.pt", weights_only=False)  # the payload is live: unpickling it runs it
    assert marker.is_dir()
    marker.rmdir()
    if planted == "old":
        for name in ("state.json", "state.safetensors"):
            (out / "checkpoint" / name).unlink()
        planted = "checkpoint/state.pt"
    elif planted.startswith("checkpoint.previous/"):
        os.replace(out / "checkpoint", out / "checkpoint.previous")
    elif planted == "log.json":
        shutil.rmtree(out / "checkpoint")
    shutil.copy(tmp_path / "payload.pt", out / planted)
    res = run_cli(data, out)
    assert not marker.exists(), "the planted pickle ran"
    if planted == "checkpoint/state.pt" and (out / "checkpoint" / "state.json").exists():
        assert res.returncode == 0, res.stderr  # the checkpoint is whole: a clean (finished) resume
    elif planted == "log.json":
        one_line_error(res, "holds no vitzoo fine-tune output")  # not a log: OUT is not recognised as ours
    else:
        one_line_error(res, "checkpoint", "to start over")


@pytest.mark.parametrize("name", ["model.safetensors", "state.safetensors", "state.json"])
def test_a_truncated_checkpoint_is_one_line_saying_what_to_do(data, finished, tmp_path, name):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    path = out / "checkpoint" / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    one_line_error(run_cli(data, out), f"delete {out / 'checkpoint'} to start over", "truncated or corrupt")


def test_a_resume_refuses_another_run_and_names_what_differs(data, finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    state = (out / "checkpoint" / "state.json").read_bytes()
    other = vitzoo.create_model("vit_tiny_patch16_224", depth=1, embed_dim=64, num_heads=2, mlp_dim=128, img_size=32)
    other_model = f"local-dir:{vitzoo.save_pretrained(other, tmp_path / 'other')}"
    changes = {
        "lr (0.01 before, 0.03 now)": dict(lr=0.03),
        "seed (0 before, 1 now)": dict(seed=1),
        "batch_size (16 before, 32 now)": dict(batch_size=32),
        "epochs (1 before, 2 now)": dict(epochs=2),
        "bf16 (false before, true now)": dict(bf16=True),
        "img_size ([32, 32] before, [48, 48] now)": dict(img_size=48),
        "recipe": dict(recipe="adamw"),  # once a traceback (the optimizer state did not fit)
        "train": dict(train=data["val"]),
        "val": dict(val=data["val"]),
        "differs in model, weights)": dict(model=other_model),  # another model: a traceback before
        "pretrained (true before, false now)": dict(pretrained=False),
    }
    for named, change in changes.items():
        with pytest.raises(vitzoo.ConfigError, match="run the same command as before") as err:
            finetune(args(data, out, **{"epochs": 1, "val": None, **change}))
        assert named in str(err.value) and "\n" not in str(err.value), (named, str(err.value))
    assert (out / "checkpoint" / "state.json").read_bytes() == state  # nothing was written


def test_a_resume_refuses_changed_local_weights(data, tmp_path):
    tiny = vitzoo.create_model("vit_tiny_patch16_224", depth=1, embed_dim=64, num_heads=2, mlp_dim=128, img_size=32)
    folder = vitzoo.save_pretrained(tiny, tmp_path / "tiny")
    finetune(args(data, tmp_path / "out", model=f"local-dir:{folder}", epochs=1, val=None))
    vitzoo.save_pretrained(randomize_(tiny, seed=3), folder)  # other weights behind the same name
    with pytest.raises(vitzoo.ConfigError, match=r"differs in weights\)"):
        finetune(args(data, tmp_path / "out", model=f"local-dir:{folder}", epochs=1, val=None))


def test_every_argument_is_in_the_run_identity_or_may_change_on_resume(finished):
    run = json.loads((finished / "checkpoint" / "state.json").read_text())["run"]
    fields = {f.name for f in dataclasses.fields(FinetuneArgs)}
    assert fields - set(ft.RESUME_MAY_CHANGE) <= run.keys(), fields - set(ft.RESUME_MAY_CHANGE) - run.keys()
    assert not set(ft.RESUME_MAY_CHANGE) & run.keys()


def test_out_must_be_new_empty_or_a_finetune_output(data, finished, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(vitzoo.ConfigError, match="is not empty and holds no vitzoo fine-tune output"):
        finetune(args(data, foreign, epochs=1, val=None))
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]  # nothing written
    (tmp_path / "file").write_text("x")
    with pytest.raises(vitzoo.ConfigError, match="is a file"):
        finetune(args(data, tmp_path / "file", epochs=1, val=None))
    restart = tmp_path / "restart"  # what the checkpoint errors advise: delete OUT/checkpoint, run again
    shutil.copytree(finished, restart)
    shutil.rmtree(restart / "checkpoint")
    finetune(args(data, restart, epochs=1, val=None))
    assert json.loads((restart / "checkpoint" / "state.json").read_text())["epoch"] == 1


def test_labels_one_class_unknown_validation_classes_and_missing_images(data, tmp_path):
    one = tmp_path / "one"
    shutil.copytree(os.path.join(data["train"], "red_circle"), one / "red_circle")
    with pytest.raises(vitzoo.ConfigError, match="only 'red_circle': at least two classes are needed"):
        finetune(args(data, tmp_path / "a", train=str(one), val=None))
    odd = tmp_path / "odd"
    shutil.copytree(data["val"], odd)
    os.rename(odd / "red_circle", odd / "purple_star")
    with pytest.raises(vitzoo.InputError, match="'purple_star'"):
        finetune(args(data, tmp_path / "b", val=str(odd)))
    listing = tmp_path / "train.csv"
    listing.write_text(
        "path,label\nnowhere.png,red_circle\n"
        + "".join(f"{p},{p.parent.name}\n" for p in sorted((tmp_path / "odd").rglob("*.png")))
    )
    with pytest.raises(vitzoo.InputError, match=r"do not exist, e\.g\. .*nowhere\.png"):
        finetune(args(data, tmp_path / "c", train=str(listing), val=None))
    assert not any((tmp_path / name).exists() for name in "abc")
