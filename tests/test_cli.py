"""The real ``vitzoo`` console script, run as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import vitzoo
from vitzoo import cli

DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def _run(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("vitzoo")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "vitzoo.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_version():
    out = _run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"vitzoo {vitzoo.__version__}"


def test_list_table_and_pattern():
    out = _run("list")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].split()[:2] == ["model", "aliases"]
    assert [line.split()[0] for line in lines[1:]] == vitzoo.list_models()
    assert "86,567,656" in out.stdout and "630,764,800" in out.stdout
    names = _run("list", "*large*", "--format", "names").stdout.split()
    assert names == [n for n in vitzoo.list_models() if "large" in n] and len(names) == 4
    assert _run("list", "ViT-B*", "--format", "names").stdout.split() == [
        "vit_base_patch16_224", "vit_base_patch32_224"
    ]  # fmt: skip


def test_no_match_and_no_command_fail_on_stderr():
    out = _run("list", "resnet*")
    assert out.returncode == 1 and out.stdout == "" and "no model matches" in out.stderr
    out = _run()
    assert out.returncode == 2 and "usage: vitzoo" in out.stderr


def test_docs_models_table_is_current():
    out = _run("list", "--format", "markdown")
    assert out.returncode == 0
    assert DOCS.read_text() == out.stdout, "regenerate: vitzoo list --format markdown > docs/models.md"


def test_list_pretrained_and_docs_table_is_current():
    out = _run("list", "--pretrained", "*huge*", "--format", "names")
    assert out.returncode == 0 and out.stdout.split() == vitzoo.list_pretrained("*huge*")
    table = _run("list", "--pretrained")
    assert "vit_base_patch16_224.augreg2_in21k_ft_in1k" in table.stdout and "85.10" in table.stdout
    doc = (DOCS.parent / "pretrained.md").read_text()
    inner = doc.split("<!-- BEGIN PRETRAINED TABLE -->\n")[1].split("<!-- END PRETRAINED TABLE -->")[0]
    assert inner == _run("list", "--pretrained", "--format", "markdown").stdout, (
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


def test_python_m_vitzoo_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "vitzoo", "--version"], capture_output=True, text=True, timeout=120,
                         check=False)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == f"vitzoo {vitzoo.__version__}"


def test_closed_pipe_exits_quietly():
    """`vitzoo list --pretrained | head -1`: the reader takes one line and leaves; no traceback, status 141."""
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        pytest.skip("needs Linux pipes")
    read_end, write_end = os.pipe()
    # One page of pipe: the ~7 kB table cannot all be written before the reader leaves, whatever the timing.
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([sys.executable, "-m", "vitzoo", "list", "--pretrained"], stdout=write_end,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    os.close(write_end)
    with open(read_end, "rb", buffering=0) as reader:  # unbuffered: reads exactly one line, the rest stays unread
        first = reader.readline()
    _, err = proc.communicate(timeout=120)
    assert first.split()[:2] == [b"checkpoint", b"classes"]
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 141, (proc.returncode, err)


def _interrupt(args):
    raise KeyboardInterrupt


def test_ctrl_c_in_embed_exits_130_and_says_how_to_resume(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "_cmd_embed", _interrupt)
    out = tmp_path / "feats.safetensors"
    assert cli.main(["embed", "vit_tiny_patch16_224", str(tmp_path), "--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    assert f"{out}.parts/" in captured.err and "re-running the same command resumes" in captured.err


def test_ctrl_c_elsewhere_exits_130_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_cmd_list", _interrupt)
    assert cli.main(["list"]) == 130
    assert capsys.readouterr().err == "vitzoo: interrupted\n"
