"""Data-parallel training across processes, GPUs or machines, on PyTorch's own engine.

A training stage started by `torchrun` (which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT) joins a process group: NCCL when it trains on CUDA, gloo on the CPU. Each process
then sees its own shard of every batch (`epoch_rows`) and DistributedDataParallel averages the
gradients, so N processes with batch B/N each take the same steps as one process with batch B.
Everything that writes (checkpoints, history, MLflow) happens on rank 0 only.

`pipeline/train.py` launches torchrun itself when params.yaml asks for `train.nproc` > 1; on a
cluster, start `torchrun --nnodes ... pipeline/train.py MODEL` on each node instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def join(device_type: str) -> World:
    """Join the process group torchrun described (a no-op World for a plain single process)."""
    if not launched_by_torchrun():
        return World()
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if world.distributed and not torch.distributed.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
    return world


def device_for(world: World, device: torch.device) -> torch.device:
    """One GPU per process: the local rank picks it (CPU processes share the CPU)."""
    if device.type == "cuda" and world.distributed:
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def wrap(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around the module when there is more than one process. BatchNorm
    statistics are synchronised across GPUs (SyncBatchNorm has no CPU kernel, so CPU processes
    keep per-process statistics, the one way a gloo run differs from a single process)."""
    if not world.distributed:
        return module
    if device.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    ids = [device.index] if device.type == "cuda" else None
    # Frozen pre-trained parts (Koalarization's embedder) get no gradients: tell DDP not to wait.
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=False)


def epoch_rows(n: int, world: World, seed: int, epoch: int) -> list[int]:
    """This process's rows of one shuffled epoch, from DistributedSampler with set_epoch: the
    order depends only on (seed, epoch), so a resumed run replays it, and rank r takes every
    size-th row from r, so the ranks' batches together are exactly one process's batch."""
    sampler = torch.utils.data.DistributedSampler(
        range(n), num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    return list(sampler)


def barrier(world: World) -> None:
    if world.distributed:
        torch.distributed.barrier()


def all_mean(value: float, world: World) -> float:
    """The mean of a number over all processes (a float on every rank)."""
    if not world.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return float(t.item()) / world.size


def leave(world: World) -> None:
    if world.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relaunch_with_torchrun(nproc: int, script: str, args: list[str]) -> int:
    """Run `script args` as nproc local processes under torchrun; its exit code."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}", script, *args,
    ]
    return subprocess.call(command)
