"""This process's place in a run: one process, or one rank of a ``torchrun`` group.

Under ``torchrun`` every rank trains on its own shard of each epoch's windows and
:class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients (gloo on CPU,
nccl on GPU); rank 0 alone writes checkpoints, metrics and progress.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly one-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1  # processes of this run on this machine (they share its cores)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over the ranks, in place (a no-op on one process)."""
        if self.active:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        return t

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel when there are several ranks, else itself."""
        if not self.active:
            return model
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def init_distributed() -> Dist:
    """Join the process group ``torchrun`` describes in the environment (nccl on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group(backend=backend)
    return Dist(rank=rank, world=world, local_rank=local_rank,
                local_world=int(os.environ.get("LOCAL_WORLD_SIZE", world)))


def pick_device(requested: str | None, dist: Dist) -> torch.device:
    """``requested`` when given; else this rank's GPU when there is CUDA, else the CPU."""
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank if dist.active else torch.cuda.current_device())
    return torch.device("cpu")
