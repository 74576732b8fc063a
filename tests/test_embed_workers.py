"""Several processes on one embed output: claims, a rank that is killed, a rank that is slow, torchrun over two nodes.

The slow rank is made slow by the test hook ``VITZOO_EMBED_TEST_GATE`` (it waits before writing each shard until a
file exists), so every assertion follows from events (a claim file appears, a process exits), never from timing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from subprocess import PIPE

import numpy as np
import pytest
import torch

import vitzoo
import vitzoo.cli
from conftest import cli, free_port, save_tiny_model, write_images
from vitzoo.features import embed_job as embed
from vitzoo.features.claims import Claims
from vitzoo.features.embed_job import GATE_ENV

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread for this module

HERE = str(Path(vitzoo.__file__).parents[1])  # the processes import this vitzoo, not another installed copy
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",  # the same thread count as this process (one_thread): the same numbers
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]),
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    write_images(folder, n_plain=27)  # 32 inputs (one corrupt): 8 shards of 4
    return folder


def embed_args(name: str, images: Path, out: Path) -> list[str]:
    return [name, str(images), "--out", str(out), "--shard-size", "4", "--batch-size", "3", "--workers", "0"]


def start(args: list[str], **env: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "vitzoo", "embed", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**ENV, **env})


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    """Until ``path`` exists (an event, not a guess: the deadline only stops a broken test)."""
    deadline = time.monotonic() + 300
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def assert_same_output(a: Path, b: Path) -> None:
    ea, eb = vitzoo.open_embeddings(a), vitzoo.open_embeddings(b)
    assert list(ea.paths) == list(eb.paths) and len(ea) == 31 and ea.failed == eb.failed
    assert np.abs(np.asarray(ea["features"]) - np.asarray(eb["features"])).max() <= 1e-5


def test_claims_are_exclusive_and_stale_ones_are_taken_over(tmp_path):
    mine, other = Claims(tmp_path), Claims(tmp_path, lease_s=60)
    assert mine.take("shard-000000") and not other.take("shard-000000")  # held by a live process: this one
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    path = mine.path("shard-000001")
    path.write_text(json.dumps({**mine.owner, "pid": int(dead.stdout)}))  # its owner exited
    assert other.stale("shard-000001") and other.take("shard-000001")
    assert json.loads(path.read_text())["pid"] == os.getpid()
    far = Claims(tmp_path, lease_s=60)
    far.owner = {**far.owner, "host": "another-node"}  # a live owner elsewhere: only the lease can expire
    path = far.path("shard-000002")
    path.write_text(json.dumps(far.owner))
    assert not other.stale("shard-000002") and not other.take("shard-000002")
    os.utime(path, (time.time() - 61, time.time() - 61))  # not renewed for longer than the lease
    assert other.take("shard-000002")


@pytest.mark.parametrize("content", [b"", b'{"host": "node-1", "pi', b"[1, 2]", b"\xff\xfe\x00"])
def test_a_claim_that_cannot_be_parsed_is_stale_at_once(tmp_path, content):
    """Claims are written whole (linked into place), so an empty or half-written one has no live owner: it used to
    make every other process wait the whole lease (or, while it looked like being written, forever)."""
    claims = Claims(tmp_path, lease_s=600)
    claims.path("listing").write_bytes(content)
    assert claims.stale("listing") and claims.take("listing")
    assert claims.holder("listing")["id"] == claims.owner["id"]


def test_a_claim_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    """What another process can see of a claim being made: nothing, then the owner's JSON (never an empty file)."""
    claims, seen = Claims(tmp_path), []
    link = os.link

    def watched_link(src, dst):
        seen.append(claims.path("shard-000000").exists())
        link(src, dst)
        seen.append(json.loads(claims.path("shard-000000").read_text())["id"])

    monkeypatch.setattr(os, "link", watched_link)
    assert claims.take("shard-000000")
    assert seen == [False, claims.owner["id"]] and sorted(p.name for p in tmp_path.iterdir()) == ["shard-000000.claim"]


def test_of_two_processes_taking_over_one_stale_claim_one_wins(tmp_path, monkeypatch):
    """B judges a claim stale; before B moves it aside, A takes it over and makes a fresh one. B must not take A's
    fresh claim (it moves it, sees it is not the claim it judged, and puts it back)."""
    a, b = Claims(tmp_path, lease_s=60), Claims(tmp_path, lease_s=60)
    dead = Claims(tmp_path, lease_s=60)
    dead.owner = {**dead.owner, "host": "another-node"}
    assert dead.take("shard-000003")
    os.utime(dead.path("shard-000003"), (0, 0))  # not renewed for decades
    judge = Claims._judge

    def judge_then_a_takes_over(self, name):
        judged = judge(self, name)
        if self is b:
            assert a.take(name)  # A, a moment faster
        return judged

    monkeypatch.setattr(Claims, "_judge", judge_then_a_takes_over)
    assert not b.take("shard-000003")
    assert a.holder("shard-000003")["id"] == a.owner["id"] and "shard-000003" not in b.held
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-000003.claim"]


def test_releasing_leaves_a_claim_taken_over_alone(tmp_path):
    slow, other = Claims(tmp_path, lease_s=60), Claims(tmp_path, lease_s=60)
    assert slow.take("shard-000000")
    os.utime(slow.path("shard-000000"), (0, 0))  # the slow one missed its renewals
    assert other.take("shard-000000")
    slow.release_all()  # the slow one finishes (or is interrupted) and hands back what it held
    assert other.holder("shard-000000")["id"] == other.owner["id"] and slow.held == set()
    other.release("shard-000000")
    assert not other.path("shard-000000").exists()


def test_claims_never_create_their_folder(tmp_path):
    """The work folder is made once, with its mark, by the embed job; a folder another process removed (the run is
    finished) stays removed (claims used to re-create it with mkdir(parents=True))."""
    claims = Claims(tmp_path / "out.parts" / "claims")
    assert not claims.take("finalize") and not claims.take("shard-000000") and claims.held == set()
    assert not (tmp_path / "out.parts").exists()


def test_a_late_process_leaves_a_finished_run_alone(tmp_path):
    """A process that starts listing after the others finished and removed the work files returns at once
    (it used to wait forever for a listing that no one would write)."""
    claims = Claims(tmp_path / "out" / "claims")  # finalised meanwhile: the claims folder is gone
    assert embed._listing(tmp_path / "out", iter(["a.jpg"]), {}, claims) is None
    assert not (tmp_path / "out").exists()  # and nothing re-created it


@pytest.mark.parametrize("layout", ["dir", pytest.param("safetensors", marks=pytest.mark.slow)])
def test_slow_rank_and_killed_rank(saved_model, images, tmp_path, layout):
    """One process claims a shard and stalls (the gate stays closed); a second one (this one: the claims only see
    another live pid, and an interpreter start costs about 2 s) embeds every other shard and returns at once, without
    waiting. Then the stalled one is released (it finalises right after its last shard) or killed (a re-run takes its
    shard over and finishes). Either way the output equals a one-process run's."""
    _, name = saved_model
    suffix = "" if layout == "dir" else ".safetensors"
    ref, out = tmp_path / f"ref{suffix}", tmp_path / f"out{suffix}"
    assert vitzoo.cli.main(["embed", *embed_args(name, images, ref), "--quiet"]) == 0
    gate = tmp_path / "gate"
    slow = start(embed_args(name, images, out), **{GATE_ENV: str(gate)})
    work = out / ".vitzoo-embed" if layout == "dir" else Path(f"{out}.parts")
    wait_for(work / "claims" / "shard-000000.claim", slow)
    fast = cli("embed", *embed_args(name, images, out))  # one intra-op thread here too (one_thread)
    assert fast.returncode == 0, fast.stderr[-2000:]
    assert "embedded 7 of 8 shards" in fast.stderr and "other processes hold the remaining shards" in fast.stderr
    assert slow.poll() is None and not (out / "index.json").exists() and not Path(f"{out}").is_file()
    if layout == "dir":  # released: the slow process writes its one shard and finalises
        gate.touch()
        stdout, stderr = slow.communicate(timeout=300)
        assert slow.returncode == 0, stderr[-2000:]
        assert "embedded 1 of 8 shards" in stderr and stdout.strip() == str(out)
    else:  # killed while holding shard 0: re-running takes it over (its owner is gone) and finishes
        slow.kill()
        slow.wait()
        rerun = subprocess.run(
            [sys.executable, "-m", "vitzoo", "embed", *embed_args(name, images, out)],
            capture_output=True, text=True, env=ENV, timeout=300, check=False,
        )  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert "resuming: 7 of 8 shards already done" in rerun.stderr and "embedded 1 of 8 shards" in rerun.stderr
        assert not work.exists()
    assert_same_output(out, ref)


@pytest.mark.slow  # 10 s: two torchrun agents and their ranks; the fast test above runs the same claims
def test_torchrun_two_nodes_equal_one_process(saved_model, images, tmp_path):
    """``torchrun --nnodes 2``, one process per "node", both on this machine with a shared rendezvous."""
    _, name = saved_model
    assert torch.get_num_threads() == 1
    ref, out = tmp_path / "ref", tmp_path / "two"
    assert vitzoo.cli.main(["embed", *embed_args(name, images, ref), "--quiet"]) == 0
    port = free_port()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                "--master-addr", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
    embed = ["-m", "vitzoo", "embed", *embed_args(name, images, out)]
    env = {**ENV, "LOGLEVEL": "INFO"}  # torchrun's agents say what they wait for (rendezvous, the exit barrier)
    nodes = [
        subprocess.Popen([*torchrun, "--node-rank", str(r), *embed], stdout=PIPE, stderr=PIPE, text=True, env=env)
        for r in (0, 1)
    ]
    try:
        results = [node.communicate(timeout=300) for node in nodes]
    except subprocess.TimeoutExpired:  # once in CI (rank 0 had finished): both nodes' stderr, to see who waited
        for node in nodes:
            node.kill()
        tails = [f"node {r}:\n{node.communicate()[1][-4000:]}" for r, node in enumerate(nodes)]
        pytest.fail("torchrun did not finish in 300 s\n" + "\n".join(tails))
    for node, (_, err) in zip(nodes, results, strict=True):
        assert node.returncode == 0, err[-3000:]
    done = [re.search(rf"\[rank {r}\] embedded (\d+) of 8", err) for r, (_, err) in enumerate(results)]
    assert sum(int(m.group(1)) for m in done if m) == 8  # every shard once, split by whoever was free (or one)
    assert sum(stdout.strip() == str(out) for stdout, _ in results) == 1  # one of them finalised
    assert_same_output(out, ref)
