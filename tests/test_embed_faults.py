"""The embed job when something is wrong: what it refuses, what it leaves behind, what the user reads.

Nothing lost (vitzoo deletes only what it wrote), nothing run (a mistake is an error before any work), nothing
silently wrong (paths are exact, shards of another command or other weights are never reused). Every failure is one
``vitzoo: error:`` line and exit 2. Runs go through ``vitzoo.cli.main`` in this process; races between processes are
played out here step by step (the second "process" runs inside a step of the first), never left to timing.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import multiprocessing.process
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import vitzoo
from conftest import cli, fast_first, randomize_, save_tiny_model, write_images, write_unreadable_lists
from vitzoo.features import embed_job as embed
from vitzoo.features import fingerprint, outputs
from vitzoo.features.embed_job import embed_to_file
from vitzoo.features.fingerprint import EmbedMeta
from vitzoo.features.outputs import Places, output_layout
from vitzoo.weights.loading import weights_digest

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module

LAYOUTS = ["", ".safetensors", ".npy"]  # a dataset directory, the two single files


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


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder below ``folder``: its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def assert_same_output(a: Path, b: Path) -> None:
    ea, eb = vitzoo.open_embeddings(a), vitzoo.open_embeddings(b)
    assert list(ea.paths) == list(eb.paths) and len(ea) > 0 and ea.failed == eb.failed
    assert np.array_equal(np.asarray(ea["features"]), np.asarray(eb["features"]))


def interrupted_after_first_shard(monkeypatch: pytest.MonkeyPatch, *args: object) -> None:
    """Run ``vitzoo embed ARGS`` and press Ctrl-C right after its first shard is written."""
    write = embed._write_shard

    def interrupted(folder, shard, *rest):
        write(folder, shard, *rest)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(embed, "_write_shard", interrupted)
        assert embed_cli(*args).returncode == 130


# ------------------------------------------------------------------------------- nothing lost: what is deleted
def test_a_work_folder_another_process_is_making_is_not_the_users(saved_model, images, tmp_path):
    """torchrun's nodes start together: one may see the other's work folder while it is being made (a temporary name,
    renamed into place once whole). That is vitzoo's own, not a user's folder: the run goes on."""
    _, name = saved_model
    out = tmp_path / "out"
    (out / ".vitzoo-embed.tmp999-abcd").mkdir(parents=True)
    assert embed_cli(name, images, "--out", out).returncode == 0
    assert vitzoo.open_embeddings(out).meta["model"] == name


def test_a_folder_of_the_users_files_is_refused_and_left_alone(saved_model, images, tmp_path):
    _, name = saved_model
    d = tmp_path / "d"
    d.mkdir()
    (d / "inputs.txt").write_text(f"{images / 'a_photo.jpg'}\n")  # the user's list, in the folder named as --out
    (d / "empty.txt").write_text("")
    (d / "notes").mkdir()
    (d / "notes" / "todo.md").write_text("mine")
    before = tree(d)
    for inputs in (d / "inputs.txt", d / "empty.txt", f"{tmp_path}/nothing-*.png"):
        assert_error(embed_cli(name, inputs, "--out", d), f"{d} is a folder of files that vitzoo embed did not write")
    assert tree(d) == before


@pytest.mark.parametrize("suffix", [".safetensors", ".npy"])
def test_a_single_file_is_overwritten_only_by_its_own_command(saved_model, images, tmp_path, suffix):
    """A file of the user's is refused and left as it was; a finished output of the same command is left as it is
    (nothing to do, nothing embedded); another command's output is refused, naming what differs."""
    _, name = saved_model
    out = tmp_path / f"emb{suffix}"
    out.write_bytes(b"the user's own file")
    assert_error(embed_cli(name, images, "--out", out), f"{out} exists and is not an output of vitzoo embed")
    assert out.read_bytes() == b"the user's own file"
    out.unlink()
    assert embed_cli(name, images, "--out", out).returncode == 0
    written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    stamp = out.stat().st_mtime_ns
    again = embed_cli(name, images, "--out", out)
    assert again.returncode == 0 and "5 images embedded" in again.stderr and out.stat().st_mtime_ns == stamp
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == written
    assert_error(embed_cli(name, images, "--out", out, "--pool", "avg"), "a different command", "differs in pool")
    assert vitzoo.open_embeddings(out).meta["model"] == name and vitzoo.open_embeddings(out).meta["pool"] == "token"


def test_a_failed_run_removes_what_it_made_and_nothing_else(saved_model, tmp_path):
    _, name = saved_model
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_error(embed_cli(name, empty, "--out", tmp_path / "new" / "sub" / "out"), f"{empty}: no images")
    assert not (tmp_path / "new").exists()  # made by the run, so removed with it
    mine = tmp_path / "mine"
    mine.mkdir()
    assert_error(embed_cli(name, empty, "--out", mine), f"{empty}: no images")
    assert mine.is_dir() and not any(mine.iterdir())  # the user's (empty) folder stays
    assert_error(embed_cli(name, empty, "--out", mine / "e.safetensors"), f"{empty}: no images")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mine"] and not any(mine.iterdir())


def test_finishing_a_run_removes_its_work_folder_only(saved_model, images, tmp_path, monkeypatch):
    """The user's own inputs.txt, manifest.json and claims/ in an output folder are not vitzoo's working files."""
    _, name = saved_model
    out = tmp_path / "emb"
    args = [name, images, "--out", out, "--shard-size", "2"]
    interrupted_after_first_shard(monkeypatch, *args)
    assert (out / ".vitzoo-embed" / "manifest.json").is_file() and (out / "shard-000000.json").is_file()
    (out / "inputs.txt").write_text("my list\n")
    (out / "manifest.json").write_text('{"mine": true}')
    (out / "claims").mkdir()
    (out / "claims" / "a.claim").write_text("mine")
    users = {k: v for k, v in tree(out).items() if not k.startswith(("shard-", ".vitzoo-embed"))}
    assert embed_cli(*args).returncode == 0
    after = tree(out)
    assert {k: after[k] for k in users} == users
    assert sorted(k for k in after if not k.startswith("shard-")) == sorted([*users, "index.json", "failed.txt"])


def test_an_unwritable_out_is_one_line(saved_model, images, tmp_path):
    _, name = saved_model
    (tmp_path / "file").write_text("a file, not a folder")  # fails for root too (chmod would not)
    for out in (tmp_path / "file" / "emb", tmp_path / "file" / "emb.safetensors", tmp_path / "file" / "a" / "e.npy"):
        assert_error(embed_cli(name, images, "--out", out), "cannot create the folder", tmp_path / "file")
    assert_error(embed_cli(name, images, "--out", tmp_path / "file"), "is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ------------------------------------------------------------------------------ nothing silently wrong: paths
def test_a_non_utf8_list_names_its_files_by_their_bytes(saved_model, tmp_path):
    """A list written by ``find`` holds names as bytes; they are read as such (and a list of garbage is an error)."""
    _, name = saved_model
    folder = tmp_path / "imgs"
    write_images(folder)
    latin = folder / os.fsdecode(b"caf\xe9.jpg")
    shutil.copy(folder / "a_photo.jpg", latin)
    listing = tmp_path / "list.txt"
    listing.write_bytes(os.fsencode(f"{latin}\n{folder / 'c_gray.png'}\n"))
    out = tmp_path / "e.safetensors"
    assert embed_cli(name, listing, "--out", out).returncode == 0
    assert vitzoo.open_embeddings(out).paths == [str(latin), str(folder / "c_gray.png")]
    (tmp_path / "garbage.txt").write_bytes(np.random.default_rng(0).bytes(3000))
    assert_error(embed_cli(name, tmp_path / "garbage.txt", "--out", tmp_path / "g.npy"), "could be read")


# ------------------------------------------------------------------------- nothing silently wrong: mixed outputs
def test_shards_of_another_command_are_refused(saved_model, images, tmp_path):
    """With index.json lost, another model or another --shard-size used to take the shards as its own (rows went
    missing, exit 0); the shards record their command."""
    _, name = saved_model
    out = tmp_path / "emb"
    args = [name, images, "--out", out, "--shard-size", "2"]
    assert embed_cli(*args).returncode == 0
    shutil.copytree(out, tmp_path / "ref")
    (out / "index.json").unlink()
    other = tmp_path / "other-model"
    shutil.copytree(name.removeprefix("local-dir:"), other)  # the same weights under another name
    assert_error(embed_cli(f"local-dir:{other}", *args[1:]), "holds shards of a different command", "differs in model")
    assert_error(embed_cli(*args[:-1], "3"), "differs in shard_size")
    assert_error(embed_cli(*args, "--pool", "avg"), "differs in pool")
    assert not (out / ".vitzoo-embed").exists()  # refused before anything was written
    assert embed_cli(*args).returncode == 0  # the command that made them finishes the output again
    assert_same_output(out, tmp_path / "ref")


def test_shards_of_another_listing_are_refused(saved_model, tmp_path):
    _, name = saved_model
    folder = tmp_path / "imgs"
    write_images(folder)
    out = tmp_path / "emb"
    assert embed_cli(name, folder, "--out", out, "--shard-size", "2").returncode == 0
    (out / "index.json").unlink()
    shutil.copy(folder / "a_photo.jpg", folder / "0_first.jpg")  # every row after it moves
    assert_error(embed_cli(name, folder, "--out", out, "--shard-size", "2"), "made from another listing")


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
    real = fingerprint.resolve_data_config
    resized = lambda m: dataclasses.replace(real(m), input_size=(3, 160, 176))  # noqa: E731
    monkeypatch.setattr(fingerprint, "resolve_data_config", resized)
    meta = EmbedMeta.of(loaded, name="tiny", revision=None, pool="token", layers=None, exact_decode=False)
    assert meta.img_size == [160, 176] and list(loaded.config.img_size) == [224, 224]


# ------------------------------------------------------------------------------------ nothing run: exit codes
def test_inputs_that_are_missing_or_hold_no_image_are_errors(saved_model, images, tmp_path):
    _, name = saved_model
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-notes").mkdir()
    (tmp_path / "only-notes" / "readme.md").write_text("no images here")
    (tmp_path / "empty.txt").write_text("\n\n")
    with tarfile.open(tmp_path / "labels.tar", "w") as tar:
        info = tarfile.TarInfo("0001.cls")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"3"))
    cases = {
        tmp_path / "nonexistent_dir": "no such file or folder",
        tmp_path / "empty": "no images in this folder",
        tmp_path / "only-notes": "no images in this folder",
        tmp_path / "empty.txt": "this list names no image",
        f"{tmp_path}/missing-*.jpg": "this pattern matches no file",
        tmp_path / "labels.tar": "no image members in this tar shard",
    }
    for inputs, why in cases.items():
        out = tmp_path / "out"
        assert_error(embed_cli(name, images / "a_photo.jpg", inputs, "--out", out), f"{inputs}: {why}")
        assert not out.exists()


@pytest.mark.parametrize("suffix", ["", ".npy"])
def test_a_run_where_nothing_is_readable_is_an_error(saved_model, images, tmp_path, suffix):
    """Entries of a list that are missing or corrupt are skipped and listed, as before; when that is every one, the
    run fails naming the list (which is kept: it says why), and so does running it again."""
    _, name = saved_model
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'gone.jpg'}\n{images / 'd_corrupt.jpg'}\n")
    out = tmp_path / f"e{suffix}"
    failed = out / "failed.txt" if not suffix else tmp_path / f"e{suffix}.failed.txt"
    for _ in range(2):
        assert_error(embed_cli(name, listing, "--out", out), "none of the 2 inputs could be read", failed)
    assert [path for path, _ in vitzoo.features.shards.read_failed(failed)] == [str(tmp_path / "gone.jpg"),
                                                                            str(images / "d_corrupt.jpg")]  # fmt: skip
    assert not Path(f"{out}.parts").exists() and (suffix == "" or not out.exists())
    listing.write_text(f"{tmp_path / 'gone.jpg'}\n{images / 'a_photo.jpg'}\n")
    out = tmp_path / "some.npy"
    assert embed_cli(name, listing, "--out", out).returncode == 0  # one readable: skipped and listed, exit 0
    assert len(vitzoo.open_embeddings(out)) == 1 and len(vitzoo.open_embeddings(out).failed) == 1


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
def test_unreadable_list_files_and_shards_are_one_line(saved_model, tmp_path):
    _, name = saved_model
    for inputs, why in write_unreadable_lists(tmp_path).items():
        assert_error(embed_cli(name, inputs, "--out", tmp_path / "out"), f"{inputs}: {why}")
        assert not (tmp_path / "out").exists()


def test_ctrl_c_while_the_decoding_workers_start(saved_model, images, tmp_path, monkeypatch):
    """Ctrl-C between the start of two decoding workers: exit 130 with one line, no claim held, and no traceback from
    torch's half-started loader (its finaliser used to fail, printed as an ignored exception)."""
    _, name = saved_model
    start, started, unraisable = multiprocessing.process.BaseProcess.start, [], []

    def start_then_ctrl_c(self):
        started.append(self)
        if len(started) == 2:
            signal.raise_signal(signal.SIGINT)  # what the terminal sends, here to this thread, before start returns
        start(self)

    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", start_then_ctrl_c)
    out = tmp_path / "e.safetensors"
    # Python's own handler, as in a terminal: a shell's background job starts with SIGINT ignored, and Python keeps
    # it ignored (pytest run as `... &` would see the job finish and exit 0)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        res = cli("embed", name, images, "--out", out, "--workers", "2", "--shard-size", "2", "--quiet")
    finally:
        signal.signal(signal.SIGINT, previous)
    gc.collect()
    assert res.returncode == 130 and res.stderr.startswith("vitzoo: interrupted; ") and res.stderr.count("\n") == 1
    assert len(started) >= 2 and unraisable == []
    assert not list(Path(f"{out}.parts", "claims").glob("*.claim*"))
    monkeypatch.undo()
    assert embed_cli(name, images, "--out", out, "--shard-size", "2").returncode == 0  # and it resumes


# ------------------------------------------------------------------------------- races between two processes
def run(model, images: Path, out: Path):
    return embed_to_file(model, images, out, shard_size=2, batch_size=2, num_workers=0, progress=False)


def age_claim(out: Path, name: str) -> None:
    """Make a claim look unrenewed for decades (its owner on another machine died, as far as others can tell)."""
    claim = Places(out, output_layout(out)).work / "claims" / f"{name}.claim"
    os.utime(claim, (0, 0))


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if any(s in p.name for s in (".tmp", ".removed", ".parts", ".stale"))]


@pytest.mark.parametrize("when", ["start", "middle", "end"])
@pytest.mark.parametrize("suffix", fast_first(LAYOUTS))
def test_two_processes_finalising_at_once(loaded, images, tmp_path, monkeypatch, suffix, when):
    """One process finalises; another takes its finalize claim over as stale and finalises too, completely, at the
    start, the middle or the end of the first one's finalisation. The first returns quietly (it used to crash, or
    leave .parts behind); the output is whole and the work folder gone."""
    ref, out = tmp_path / "ref" / f"e{suffix}", tmp_path / "out" / f"e{suffix}"
    ref.parent.mkdir()
    out.parent.mkdir()
    run(loaded, images, ref)
    second: list = []

    def other_process_finalises(step):
        def wrapper(*args, **kwargs):
            if not second:
                second.append(None)
                if when != "end" or suffix:
                    age_claim(out, "finalize")
                second[0] = run(loaded, images, out)
            return step(*args, **kwargs)

        return wrapper

    step = {"start": "finish_dir" if not suffix else "merge_shards", "end": "remove_work"}.get(when)
    module = embed if step else outputs  # the middle: after reading some shards, inside the finishing functions
    step = step or ("write_index" if not suffix else "shard_paths")
    monkeypatch.setattr(module, step, other_process_finalises(getattr(module, step)))
    first = run(loaded, images, out)
    assert second and second[0] is not None and second[0].rows == 5  # the other one finalised
    assert first is None or first == second[0]
    assert_same_output(out, ref)
    assert not Places(out, output_layout(out)).work.exists() and leftovers(out.parent) == []


@pytest.mark.parametrize("suffix", LAYOUTS)
def test_a_shard_taken_over_while_its_owner_still_works(loaded, images, tmp_path, monkeypatch, suffix):
    """A process stalls on its shard long enough for the lease to run out; another takes the shard over and finishes
    the whole output. When the first one gets to write, it stops quietly and re-creates nothing."""
    ref, out = tmp_path / "ref" / f"e{suffix}", tmp_path / "out" / f"e{suffix}"
    ref.parent.mkdir()
    out.parent.mkdir()
    run(loaded, images, ref)
    write, second = embed._write_shard, []

    def stalled_write(folder, shard, *rest):
        if not second:
            second.append(None)
            age_claim(out, f"shard-{shard.k:06d}")
            second[0] = run(loaded, images, out)
        return write(folder, shard, *rest)

    monkeypatch.setattr(embed, "_write_shard", stalled_write)
    assert run(loaded, images, out) is None
    assert second[0] is not None and second[0].rows == 5
    assert_same_output(out, ref)
    assert not Places(out, output_layout(out)).work.exists() and leftovers(out.parent) == []


def test_a_process_waiting_for_a_listing_that_failed_is_an_error(loaded, tmp_path, monkeypatch):
    """A makes the work folder and lists the inputs; B (same command, a thread here) waits for the listing. A's
    listing fails (no images): A removes the work folder it made, and B, finding it gone with no output, fails too
    (rather than saying "the other processes finished" and exiting 0). Events order the steps, not timing."""
    (tmp_path / "empty").mkdir()
    out = tmp_path / "emb"
    list_inputs = embed.write_manifest
    b_waits, a_failed, errors = threading.Event(), threading.Event(), []

    def b_runs():
        try:
            run(loaded, tmp_path / "empty", out)
        except vitzoo.VitzooError as err:
            errors.append(err)

    b = threading.Thread(target=b_runs)

    def a_lists(names, folder):
        b.start()
        assert b_waits.wait(timeout=300), "B never waited for the listing"
        return list_inputs(names, folder)

    def b_sleeps(_):  # B's wait for the listing, which A holds: it ends once A has failed
        b_waits.set()
        assert a_failed.wait(timeout=300), "A never failed"

    monkeypatch.setattr(embed, "write_manifest", a_lists)
    monkeypatch.setattr(time, "sleep", b_sleeps)
    with pytest.raises(vitzoo.ConfigError, match="no images in this folder"):
        run(loaded, tmp_path / "empty", out)
    a_failed.set()
    b.join(timeout=300)
    assert not b.is_alive() and [type(e) for e in errors] == [vitzoo.VitzooError]
    assert "was removed before its inputs were listed" in str(errors[0]) and not out.exists()


def test_a_work_folder_renamed_into_place_during_the_check_is_an_output(tmp_path, monkeypatch):
    """Two torchrun ranks start together: one renames its temporary work folder into place while the other asks
    whether the folder is vitzoo's. Whatever moment the rename falls on, the answer is yes (the checks follow the
    order a run makes its files); it once said no, and the late rank refused the output (a hang in CI)."""
    out = tmp_path / "out"
    tmp = out / f"{outputs.WORK_DIR}.tmp123-abcd"
    tmp.mkdir(parents=True)
    (tmp / outputs.MARK).write_text("{}")
    scandir = os.scandir

    def rename_then_scan(folder):  # the other rank's rename lands just before this process lists the folder
        if tmp.exists():
            os.rename(tmp, out / outputs.WORK_DIR)
        return scandir(folder)

    monkeypatch.setattr(outputs.os, "scandir", rename_then_scan)
    assert outputs.is_output_dir(out)
    assert (out / outputs.WORK_DIR / outputs.MARK).is_file()  # the rename did happen mid-check
