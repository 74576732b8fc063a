"""The ``vitzoo`` command.

Two tests start real processes (``python -m vitzoo``: the entry point, stdout/stderr and exit codes through
``sys.exit``; one of them in the fast suite); the others call the same entry point (``vitzoo.cli:main``, what the
console script runs) in this process, which checks the same parsing and printing without paying an interpreter start
per command.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image

import vitzoo
import vitzoo.catalog
import vitzoo.cli
import vitzoo.cli.embed
import vitzoo.cli.list
from conftest import cli, cli_env, fast_first, one_line_error, randomize_, run_cli

DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"


@pytest.mark.slow  # an interpreter start per command (about 2 s each); the fast suite runs `python -m vitzoo` in
# test_closed_pipe_exits_quietly (its status through sys.exit), and both commands in this process in
# test_version_in_this_process and test_no_match_and_no_command_fail_on_stderr
def test_python_m_vitzoo_runs_as_a_process_with_exit_codes():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"vitzoo {vitzoo.__version__}"
    out = run_cli("list", "resnet*")
    assert out.returncode == 1 and out.stdout == "" and "no model matches 'resnet*'" in out.stderr


def test_version_in_this_process():
    out = cli("--version")  # argparse's version action: SystemExit(0)
    assert out.returncode == 0 and out.stdout.strip() == f"vitzoo {vitzoo.__version__}" and out.stderr == ""


def test_closed_pipe_exits_quietly():
    """`vitzoo list --pretrained | head -1`: the reader takes one line and leaves; no traceback, status 141."""
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        pytest.skip("needs Linux pipes")
    read_end, write_end = os.pipe()
    # One page of pipe: the ~7 kB table cannot all be written before the reader leaves, whatever the timing.
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vitzoo", "list", "--pretrained"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    os.close(write_end)
    with open(read_end, "rb", buffering=0) as reader:  # unbuffered: reads exactly one line, the rest stays unread
        first = reader.readline()
    _, err = proc.communicate(timeout=120)
    assert first.split()[:2] == [b"checkpoint", b"family"]
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141, (proc.returncode, err)


def _interrupt(args):
    raise KeyboardInterrupt


def test_ctrl_c_in_embed_exits_130_and_says_how_to_resume(monkeypatch, tmp_path):
    monkeypatch.setattr(vitzoo.cli.embed, "run", _interrupt)
    out = tmp_path / "feats.safetensors"
    res = cli("embed", "vit_tiny_patch16_224", tmp_path, "--out", out)
    assert res.returncode == 130
    assert res.stdout == "" and res.stderr.count("\n") == 1, res
    assert f"{out}.parts/" in res.stderr and "re-running the same command resumes" in res.stderr


def test_ctrl_c_elsewhere_exits_130_in_one_line(monkeypatch):
    monkeypatch.setattr(vitzoo.cli.list, "run", _interrupt)
    res = cli("list")
    assert res.returncode == 130 and res.stderr == "vitzoo: interrupted\n"


def test_list_table_and_pattern():
    out = cli("list")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "family", "aliases"]
    assert [line.split()[0] for line in lines[1:]] == vitzoo.list_models()
    assert "86,567,656" in out.stdout and "630,764,800" in out.stdout
    names = cli("list", "*large*", "--format", "names").stdout.split()
    assert names == [n for n in vitzoo.list_models() if "large" in n] and "vit_large_patch14_dinov2" in names
    assert cli("list", "ViT-B*", "--format", "names").stdout.split() == ["vit_base_patch16_224", "vit_base_patch32_224"]


def test_no_match_and_no_command_fail_on_stderr():
    out = cli("list", "resnet*")
    assert out.returncode == 1 and out.stdout == "" and "no model matches" in out.stderr
    out = cli()
    assert out.returncode == 2 and "usage: vitzoo" in out.stderr


def test_docs_models_table_is_current():
    out = cli("list", "--format", "markdown")
    assert out.returncode == 0
    assert DOCS.read_text() == out.stdout, "regenerate: vitzoo list --format markdown > docs/models.md"


def test_list_pretrained_and_docs_table_is_current():
    out = cli("list", "--pretrained", "*huge*", "--format", "names")
    assert out.returncode == 0 and out.stdout.split() == vitzoo.list_pretrained("*huge*")
    table = cli("list", "--pretrained")
    assert "vit_base_patch16_224.augreg2_in21k_ft_in1k" in table.stdout and "85.10" in table.stdout
    doc = (DOCS.parent / "pretrained.md").read_text()
    inner = doc.split("<!-- BEGIN PRETRAINED TABLE -->\n")[1].split("<!-- END PRETRAINED TABLE -->")[0]
    assert inner == cli("list", "--pretrained", "--format", "markdown").stdout, (
        "regenerate the table in docs/pretrained.md: vitzoo list --pretrained --format markdown"
    )


def test_pretrained_registry_matches_timm():
    """Every tag's facts equal timm's pretrained_cfg (the source this table was generated from)."""
    from timm.models import get_pretrained_cfg

    for name in vitzoo.list_pretrained():
        ours, ref = vitzoo.get_pretrained_cfg(name), get_pretrained_cfg(name).to_dict()
        assert ours.hf_hub_id == ref["hf_hub_id"] and ours.num_classes == ref["num_classes"], name
        assert ours.input_size == tuple(ref["input_size"]) and ours.crop_pct == ref["crop_pct"], name
        assert ours.mean == tuple(ref["mean"]) and ours.interpolation == ref["interpolation"], name


# ------------------------------------------------------------------------------------------------- info
@functools.cache  # shared by the two info tests of each tag, which only read it
def _timm_meta(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return timm.create_model(name).eval()


@functools.cache  # the two info tests of each tag check one run of the command (its FLOP count is a meta forward)
def _info_json(tag: str) -> subprocess.CompletedProcess:
    return cli("info", tag, "--json")


INFO_TAGS = [
    "vit_base_patch16_224.augreg2_in21k_ft_in1k",
    "vit_tiny_patch16_384.augreg_in21k_ft_in1k",
    "vit_base_patch16_224.mae",
    "vit_base_r50_s16_384.orig_in21k_ft_in1k",
]


@pytest.mark.parametrize("tag", fast_first(INFO_TAGS, 2))
def test_info_json_equals_timms_model_and_pretrained_cfg(tag):
    """Sizes, parameter count, eval data config and checkpoint facts against timm's model built on the meta device
    and timm's pretrained_cfg for the same tag."""
    out = _info_json(tag)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    ref = _timm_meta(tag)
    pcfg = ref.pretrained_cfg
    cfg = info["config"]
    assert info["params"] == sum(p.numel() for p in ref.parameters())
    assert (cfg["embed_dim"], cfg["depth"], cfg["num_heads"]) == (
        ref.embed_dim,
        len(ref.blocks),
        ref.blocks[0].attn.num_heads,
    )
    assert cfg["mlp_dim"] == ref.blocks[0].mlp.fc1.out_features and cfg["num_classes"] == ref.num_classes
    assert tuple(cfg["img_size"]) == tuple(pcfg["input_size"][1:]) == tuple(ref.patch_embed.img_size)
    data = timm.data.resolve_data_config({}, model=ref)
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in info["data_config"].items()} == {
        k: data[k] for k in ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
    }
    ckpt = info["checkpoint"]
    assert ckpt["tag"] == tag and ckpt["hf_hub_id"] == pcfg["hf_hub_id"] and ckpt["num_classes"] == pcfg["num_classes"]
    assert ckpt["license"] == pcfg["license"]
    facts = vitzoo.get_pretrained_cfg(tag)  # published accuracies: the registry's (timm's results table)
    assert (ckpt["top1"], ckpt["top5"], ckpt["description"]) == (facts.top1, facts.top5, facts.description)


@pytest.mark.parametrize("tag", fast_first(INFO_TAGS))
def test_info_gflops_equal_a_flop_count_of_timms_forward(tag):
    """GFLOPs (2 x multiply-adds of matmuls and convolutions) equal torch's FlopCounterMode on timm's forward."""
    from torch.utils.flop_counter import FlopCounterMode

    ref = _timm_meta(tag)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ref(torch.empty(1, *ref.pretrained_cfg["input_size"], device="meta"))
    out = _info_json(tag)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["gflops"] == round(counter.get_total_flops() / 1e9, 2)


def test_info_text_alias_and_local_dir(tmp_path):
    """The plain text says what the JSON says; an alias resolves to its arch and default checkpoint; a saved folder
    is described from its config.json."""
    text = cli("info", "ViT-B/16")
    info = json.loads(cli("info", "ViT-B/16", "--json").stdout)
    assert text.returncode == 0 and text.stderr == ""
    lines = text.stdout.splitlines()
    assert lines[0] == f"ViT-B/16: {info['params']:,} parameters, {info['gflops']} GFLOPs at 224x224"
    assert lines[1].split(", ")[:4] == ["  layers 12", "width 768", "MLP 3072", "heads 12"]
    assert info["checkpoint"]["tag"] == vitzoo.list_pretrained("vit_base_patch16_224.*")[0]
    assert f"checkpoint {info['checkpoint']['tag']}: {info['checkpoint']['hf_hub_id']}" in text.stdout

    model = vitzoo.create_model("vit_tiny_patch16_224", depth=2, num_classes=7)
    folder = vitzoo.save_pretrained(model, tmp_path / "tiny")
    local = json.loads(cli("info", f"local-dir:{folder}", "--json").stdout)
    assert local["params"] == sum(p.numel() for p in model.parameters())
    assert local["config"]["depth"] == 2 and local["config"]["num_classes"] == 7


# ---------------------------------------------------------------------------------------------- fewshot
def _image_folders(root: Path, swap_test: bool = False) -> tuple[Path, Path]:
    """train/ and test/ with one sub-folder per class of flat red or blue images of several sizes."""
    colours = [(230, 20, 20), (20, 20, 230)]
    for split, count in (("train", 3), ("test", 2)):
        for c in range(2):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            colour = colours[1 - c] if (split == "test" and swap_test) else colours[c]
            for i in range(count):
                Image.new("RGB", (64 + 8 * i, 48), colour).save(folder / f"{i}.png")
    return root / "train", root / "test"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny headless model with random weights, written by save_pretrained (a local-dir: checkpoint)."""
    torch.manual_seed(0)
    model = randomize_(vitzoo.create_model("vit_tiny_patch16_224", depth=2, num_classes=0), seed=5)
    return vitzoo.save_pretrained(model, tmp_path_factory.mktemp("fewshot") / "tiny")


def test_fewshot_command_on_image_folders(tiny_folder, tmp_path):
    """Flat colours give identical features per class: every shot count is exact; with the test folders' colours
    swapped every prediction is wrong, so the labels come from the folder names."""
    train, test = _image_folders(tmp_path / "ok")
    args = ("fewshot", f"local-dir:{tiny_folder}", train, test, "--shots", "1", "3", "--workers", "0")
    out = cli(*args, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"1": 1.0, "3": 1.0}
    table = [line.split() for line in cli(*args).stdout.splitlines()]  # probe's columns, percent with one decimal
    assert table == [["model", "pool", "1-shot", "3-shot"], [args[1], "token", "100.0", "100.0"]]
    train, test = _image_folders(tmp_path / "swapped", swap_test=True)
    out = cli("fewshot", f"local-dir:{tiny_folder}", train, test, "--shots", "2", "--workers", "0", "--json")
    assert json.loads(out.stdout) == {"2": 0.0}


def _flat_classes(root: Path, classes: dict[str, tuple[int, int, int]], count: int = 2) -> Path:
    """An ImageFolder of flat images, one colour per class."""
    for name, colour in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (40 + 8 * i, 32), colour).save(root / name / f"{i}.png")
    return root


RED, GREEN, BLUE = (230, 20, 20), (20, 200, 20), (20, 20, 230)


def test_fewshot_matches_the_train_and_test_classes_by_name(tiny_folder, tmp_path):
    """Train {cat, dog, fox} and test {cat, fox}: the test folder's fox is the training fox (class 2 of 3), not its
    own second class; indexing each folder separately scored 0.5 here."""
    train = _flat_classes(tmp_path / "train", {"cat": RED, "dog": GREEN, "fox": BLUE})
    test = _flat_classes(tmp_path / "test", {"cat": RED, "fox": BLUE})
    out = cli("fewshot", f"local-dir:{tiny_folder}", train, test, "--shots", "1", "2", "--workers", "0", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"1": 1.0, "2": 1.0}


def test_fewshot_input_faults_are_one_line_errors(tiny_folder, tmp_path):
    model = f"local-dir:{tiny_folder}"
    train = _flat_classes(tmp_path / "train", {"cat": RED, "dog": GREEN})
    args = ("--shots", "1", "--workers", "0")
    one_line_error(cli("fewshot", model, train, tmp_path / "nonexist", *args), "nonexist", "no such file or folder")
    wolf = _flat_classes(tmp_path / "wolf", {"cat": RED, "wolf": BLUE})
    one_line_error(cli("fewshot", model, train, wolf, *args), "'wolf'", "lacks")
    one = _flat_classes(tmp_path / "one", {"cat": RED})
    one_line_error(cli("fewshot", model, one, train, *args), "only 'cat'", "at least two classes")
    for name in ("cat", "dog"):
        (tmp_path / "empty" / name).mkdir(parents=True)
    one_line_error(cli("fewshot", model, tmp_path / "empty", train, *args), "hold no images")
    (tmp_path / "flat").mkdir()
    one_line_error(cli("fewshot", model, tmp_path / "flat", train, *args), "no class sub-folders")


def test_a_csv_with_a_bad_row_gets_the_same_error_from_every_command(tiny_folder, tmp_path):
    """probe, fewshot and finetune read labelled images with one reader: one rule for a bad row, one message."""
    train = _flat_classes(tmp_path / "train", {"cat": RED, "dog": GREEN})
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path,label\n{train / 'cat' / '0.png'},cat\n{train / 'dog' / '0.png'}\n")
    want = f"vitzoo: error: {bad}: line 3 is not a path,label row ("
    model = f"local-dir:{tiny_folder}"
    for command in (
        ["probe", model, "--train", bad, "--test", train, "--workers", "0"],
        ["fewshot", model, bad, train, "--workers", "0"],
        ["finetune", model, bad, "--out", tmp_path / "ft", "--workers", "0"],
    ):
        assert one_line_error(cli(*command)).startswith(want), command


def test_a_full_disk_is_one_line_naming_the_path_and_what_to_do(monkeypatch, tmp_path):
    """An OSError from the file system (here ENOSPC, as a full disk raises it) ends the command in one line."""
    import errno

    def full(_args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "shard-000000.features.npy"))

    monkeypatch.setattr(vitzoo.cli.list_, "run", full)
    message = one_line_error(cli("list"))
    path = tmp_path / "out" / "shard-000000.features.npy"
    assert message == f"vitzoo: error: {path}: No space left on device; free some space or write elsewhere\n"
