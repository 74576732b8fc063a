"""torch.distributed for the jobs torchrun can spread over processes (``vitzoo embed``, ``vitzoo finetune``): the one
place a process joins the group torchrun's environment describes, learns its rank, and sums across the group.

torchrun sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the rendezvous variables; a plain ``python`` run has none,
and is the world of one process, rank 0.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist


def env_world_size() -> int:
    """The number of processes torchrun started (``WORLD_SIZE``), 1 outside torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, the number of processes) of the joined group; (0, 1) when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def local_device(device: str | None) -> str | None:
    """``device``, with a bare ``cuda`` made this process's GPU under torchrun (``cuda:LOCAL_RANK``)."""
    if device == "cuda" and env_world_size() > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


@contextlib.contextmanager
def process_group(device: str | torch.device | None, *, required: bool = False) -> Iterator[tuple[int, int]]:
    """Inside the block, this process is in the group torchrun describes (when ``WORLD_SIZE`` > 1, or ``required``):
    NCCL for a CUDA device, Gloo otherwise. Yields (rank, world size). A group this call joined is left at the end;
    one joined before is left as it is."""
    joined = False
    if (required or env_world_size() > 1) and not dist.is_initialized():
        cuda = torch.device(device).type == "cuda" if device is not None else False
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        joined = True
    try:
        yield rank_and_world()
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()


def sum_across(value: torch.Tensor) -> torch.Tensor:
    """``value`` summed over the processes of the group (itself alone outside one)."""
    if rank_and_world()[1] > 1:
        value = value.clone()
        dist.all_reduce(value)
    return value


def mean_across(value: torch.Tensor) -> torch.Tensor:
    """``value`` averaged over the processes of the group."""
    return sum_across(value) / rank_and_world()[1]
