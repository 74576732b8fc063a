"""The embed job when something is wrong: what it refuses, what it leaves behind, what the user reads.

Nothing lost (vitzoo deletes only what it wrote), nothing run (a mistake is an error before any work), nothing
silently wrong (paths are exact, shards of another command or other weights are never reused). Every failure is one
``vitzoo: error:`` line and exit 2. Runs go through ``vitzoo.cli.main`` in this process; races between processes are
played out here step by step (the second "process" runs inside a step of the first), never left to timing.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing.process
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import vitzoo
from conftest import cli, randomize_
from test_extract import one_thread, save_tiny_model, write_images  # noqa: F401 (autouse)
from vitzoo import embed
from vitzoo.loading import weights_digest


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def loaded(saved_model):
    return vitzoo.create_model(saved_model[1], pretrained=True)  # as the CLI loads it: from its checkpoint file


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    write_images(folder, n_plain=1)  # 6 inputs, the 4th corrupt: 3 shards of 2
    return folder


def embed_cli(*args: object) -> subprocess.CompletedProcess:
    return cli("embed", *args, "--workers", "0", "--quiet")


def assert_error(res: subprocess.CompletedProcess, *needles: object) -> None:
    """Exit 2 with one ``vitzoo: error:`` line that says each of ``needles``, and no traceback."""
    assert res.returncode == 2 and res.stdout == "", res
    assert res.stderr.startswith("vitzoo: error: ") and res.stderr.count("\n") == 1, res.stderr
    assert "Traceback" not in res.stderr
    for needle in needles:
        assert str(needle) in res.stderr, (needle, res.stderr)


def interrupted_after_first_shard(monkeypatch: pytest.MonkeyPatch, *args: object) -> None:
    """Run ``vitzoo embed ARGS`` and press Ctrl-C right after its first shard is written."""
    write = embed._write_shard

    def interrupted(folder, shard, *rest):
        write(folder, shard, *rest)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(embed, "_write_shard", interrupted)
        assert embed_cli(*args).returncode == 130


# ------------------------------------------------------------------------- nothing silently wrong: mixed outputs


def test_resuming_after_the_weights_changed_is_refused(tmp_path, monkeypatch):
    model, name = save_tiny_model(tmp_path / "model")  # a copy of its own: this test rewrites its weights
    folder = tmp_path / "imgs"
    write_images(folder)
    out = tmp_path / "e.safetensors"
    args = [name, folder, "--out", out, "--shard-size", "2"]
    interrupted_after_first_shard(monkeypatch, *args)
    vitzoo.save_pretrained(randomize_(model, seed=4), tmp_path / "model" / "tiny")  # fine-tuned in place, say
    assert_error(embed_cli(*args), "differs in weights")
    assert embed_cli(*args[:-1], "3").returncode == 2  # (another command, too)
    shutil.rmtree(f"{out}.parts")
    assert embed_cli(*args).returncode == 0
    meta = vitzoo.open_embeddings(out).meta
    assert meta["weights"] == weights_digest(vitzoo.create_model(name, pretrained=True)) and len(meta["weights"]) == 64


def test_img_size_is_the_size_images_are_resized_to(loaded, monkeypatch):
    """``EmbedMeta.img_size`` comes from the data config (which may follow a checkpoint's processor rather than
    ``config.img_size``)."""
    real = embed.resolve_data_config
    monkeypatch.setattr(embed, "resolve_data_config", lambda m: dataclasses.replace(real(m), input_size=(3, 160, 176)))
    meta = embed.EmbedMeta.of(loaded, name="tiny", revision=None, pool="token", layers=None)
    assert meta.img_size == [160, 176] and list(loaded.config.img_size) == [224, 224]


# ------------------------------------------------------------------------------------ nothing run: exit codes


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [("--batch-size", "0", "batch_size (--batch-size) must be a whole number >= 1, got 0"),
     ("--shard-size", "0", "shard_size (--shard-size) must be a whole number >= 1"),
     ("--lease", "0", "lease_s (--lease) must be a number of seconds > 0"),
     ("--lease", "nan", "lease_s (--lease) must be a number of seconds > 0"),
     ("--workers", "-1", "num_workers (--workers) must be a whole number >= 0")],
)  # fmt: skip
def test_arguments_are_checked_before_anything_is_written(saved_model, images, tmp_path, flag, value, needle):
    """``--batch-size 0`` used to leave a manifest that made the corrected command refuse to run."""
    _, name = saved_model
    out = tmp_path / "emb"
    assert_error(cli("embed", name, images, "--out", out, "--quiet", flag, value), needle)
    assert not out.exists()
    assert embed_cli(name, images, "--out", out).returncode == 0


# --------------------------------------------------------------------------- one line, never a traceback


def test_ctrl_c_while_the_decoding_workers_start(saved_model, images, tmp_path, monkeypatch):
    """Ctrl-C between the start of two decoding workers: exit 130 with one line, no claim held, and no traceback from
    torch's half-started loader (its finaliser used to fail, printed as an ignored exception)."""
    _, name = saved_model
    start, started, unraisable = multiprocessing.process.BaseProcess.start, [], []

    def start_then_ctrl_c(self):
        started.append(self)
        if len(started) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends
        start(self)

    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", start_then_ctrl_c)
    out = tmp_path / "e.safetensors"
    res = cli("embed", name, images, "--out", out, "--workers", "2", "--shard-size", "2", "--quiet")
    gc.collect()
    assert res.returncode == 130 and res.stderr.startswith("vitzoo: interrupted; ") and res.stderr.count("\n") == 1
    assert len(started) >= 2 and unraisable == []
    assert not list(Path(f"{out}.parts", "claims").glob("*.claim*"))
    monkeypatch.undo()
    assert embed_cli(name, images, "--out", out, "--shard-size", "2").returncode == 0  # and it resumes
