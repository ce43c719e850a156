"""Multi-process training support: process groups from torchrun, rank-0 helpers, sharding.

``torchrun`` (``python -m torch.distributed.run``) starts one process per GPU (or per CPU
worker) and tells each, through environment variables, who it is: ``RANK`` (global index),
``LOCAL_RANK`` (index on its machine, = the GPU it drives), ``WORLD_SIZE`` (number of
processes) and ``MASTER_ADDR``/``MASTER_PORT`` (the rendezvous). :func:`distributed_session`
turns those into an initialised process group -- NCCL when the process trains on CUDA, Gloo on
CPU -- and is a no-op when the variables are absent or ``WORLD_SIZE`` is 1, so the same
``fusioncore train`` command runs with or without torchrun.

Sharding follows :class:`torch.utils.data.DistributedSampler` with ``drop_last=True``: every
process permutes the *whole* index set with the same seeded generator (so the per-epoch
shuffle is identical everywhere), the tail that does not divide by the world size is dropped
for that epoch (a different tail each epoch, because the permutation changes), and rank ``r``
takes positions ``r, r + W, r + 2W, ...``. Consecutive per-rank mini-batches of size ``b``
then form, together, exactly the consecutive global batches of size ``b * W`` of the
single-process order -- which is what makes a DDP run reproduce a single-process run with the
same global batch. Equal per-rank batch sizes matter: each model's ``loss`` is a *mean over its
local batch*, and DDP averages gradients over ranks, so the average of equal-sized local means
equals the mean over the global batch.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist

from ..device import select_device

#: Environment variables torchrun sets for every worker (all are needed for ``env://``).
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Who this process is in a (possibly single-process) run.

    ``backend`` is None when no process group is in use (a plain single-process run).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes checkpoints, metrics and progress bars."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 and self.backend is not None


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when not launched by torchrun)."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        value = int(raw)
    except ValueError as err:
        raise ValueError(f"environment variable WORLD_SIZE={raw!r}: expected a whole number") from err
    if value < 1:
        raise ValueError(f"environment variable WORLD_SIZE={value}: expected >= 1")
    return value


def _env_int(name: str) -> int:
    raw = os.environ.get(name)
    if raw is None:
        raise ValueError(
            f"environment variable {name} is not set; launch multi-process training with torchrun "
            f"(it sets {', '.join(TORCHRUN_VARS)})"
        )
    try:
        return int(raw)
    except ValueError as err:
        raise ValueError(f"environment variable {name}={raw!r}: expected a whole number") from err


def choose_backend(device: torch.device) -> str:
    """NCCL for CUDA training, Gloo for CPU (``FUSIONCORE_DIST_BACKEND`` overrides)."""
    forced = os.environ.get("FUSIONCORE_DIST_BACKEND", "").strip().lower()
    if forced:
        if forced not in ("nccl", "gloo"):
            raise ValueError(f"FUSIONCORE_DIST_BACKEND={forced!r}: use nccl or gloo")
        if forced == "nccl" and device.type != "cuda":
            raise ValueError("FUSIONCORE_DIST_BACKEND=nccl needs CUDA training (--device cuda); use gloo on CPU")
        return forced
    return "nccl" if device.type == "cuda" else "gloo"


def current_context() -> DistContext:
    """The context of an already-initialised default process group (or single-process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistContext()
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=str(dist.get_backend()),
    )


def resolve_device(preference: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """The device of this process: ``cuda`` without an index becomes ``cuda:LOCAL_RANK``."""
    device = select_device(preference)
    if device.type == "cuda" and device.index is None:
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise ValueError(
                f"LOCAL_RANK={local_rank} but this machine has {count} CUDA device(s); "
                f"use --nproc-per-node {count} or fewer"
            )
        device = torch.device("cuda", local_rank)
    return device


def init_distributed(device_preference: str | torch.device | None = "auto", *, timeout_s: float = 1800.0):
    """Join the process group described by torchrun's environment.

    Returns ``(context, device)``. With ``WORLD_SIZE`` unset or 1 nothing is initialised and
    the context is single-process. ``timeout_s`` bounds how long a collective waits for a
    dead peer before failing (rather than hanging a cluster job for ever).
    """
    world = env_world_size()
    if world == 1:
        return DistContext(), select_device(device_preference)
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed support")
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ValueError(f"environment variable {name} is not set; launch multi-process training with torchrun")
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside 0..WORLD_SIZE-1 ({world - 1})")
    device = resolve_device(device_preference, local_rank)
    backend = choose_backend(device)
    if dist.is_initialized():
        return current_context(), device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend=backend,
        init_method="env://",
        timeout=timedelta(seconds=timeout_s),
        device_id=device if device.type == "cuda" else None,
    )
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, backend=backend), device


def shutdown() -> None:
    """Leave the default process group (safe to call when none was initialised)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed_session(device_preference: str | torch.device | None = "auto") -> Iterator[tuple[DistContext, torch.device]]:
    """``with distributed_session(args.device) as (ctx, device): ...`` -- init, then clean up.

    Only a group created here is destroyed on exit; a caller that initialised its own keeps it.
    """
    created = not (dist.is_available() and dist.is_initialized())
    ctx, device = init_distributed(device_preference)
    try:
        yield ctx, device
    finally:
        if created and ctx.enabled:
            shutdown()


# --------------------------------------------------------------------------- sharding
def shard_order(order: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s share of the (already permuted) global index ``order``.

    DistributedSampler(drop_last=True) semantics: ``len(order) % world_size`` trailing
    positions are dropped so every rank gets the same number ``len(order) // world_size`` of
    samples, and rank ``r`` takes positions ``r::world_size``. With ``world_size == 1`` the
    order is returned unchanged.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard_order: rank {rank} is not in 0..{world_size - 1}")
    order = np.asarray(order)
    if world_size == 1:
        return order
    usable = (len(order) // world_size) * world_size
    if usable == 0:
        raise ValueError(
            f"{len(order)} training samples cannot be shared by {world_size} processes (each needs at least one)"
        )
    return order[:usable][rank::world_size]


def epoch_batches(order: np.ndarray, batch_size: int, rank: int = 0, world_size: int = 1) -> list[np.ndarray]:
    """This rank's mini-batches (row indices) of one epoch whose global permutation is ``order``.

    Batch ``k`` of every rank together is positions ``[k*b*W, (k+1)*b*W)`` of ``order``
    (truncated to a multiple of ``W``): the single-process batch ``k`` with batch size ``b*W``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    local = shard_order(order, rank, world_size)
    return [local[start : start + batch_size] for start in range(0, len(local), batch_size)]


# --------------------------------------------------------------------------- collectives
def all_reduce_mean(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of ``values`` over ranks (returned as a new tensor; identity when single-process)."""
    if not ctx.enabled:
        return values
    out = values.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / ctx.world_size


def all_gather_bytes(values: torch.Tensor, ctx: DistContext, device: torch.device) -> list[torch.Tensor]:
    """Every rank's copy of a uint8 tensor of the same size on every rank (on CPU, rank order).

    Used to collect per-rank RNG states so that rank 0 can write them all. NCCL only moves
    CUDA tensors, hence the round trip through ``device``.
    """
    if not ctx.enabled:
        return [values.detach().cpu().clone()]
    local = values.detach().to(device).contiguous()
    parts = [torch.empty_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(parts, local)
    return [p.cpu() for p in parts]


def all_gather_json(obj, ctx: DistContext, device: torch.device) -> list:
    """Every rank's JSON-serialisable ``obj`` (rank order), sent as UTF-8 bytes (no pickle).

    Used where ranks may legitimately differ in *structure*, e.g. the loss terms a method
    reports depend on which modalities a local batch contains.
    """
    if not ctx.enabled:
        return [obj]
    data = torch.tensor(list(json.dumps(obj).encode("utf-8")), dtype=torch.uint8)
    length = torch.tensor([data.numel()], dtype=torch.int64, device=device)
    lengths = [torch.zeros_like(length) for _ in range(ctx.world_size)]
    dist.all_gather(lengths, length)
    sizes = [int(n.item()) for n in lengths]
    padded = torch.zeros(max(sizes), dtype=torch.uint8)
    padded[: data.numel()] = data
    parts = all_gather_bytes(padded, ctx, device)
    return [json.loads(bytes(part[:n].tolist()).decode("utf-8")) for part, n in zip(parts, sizes)]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


__all__ = [
    "DistContext",
    "TORCHRUN_VARS",
    "all_gather_bytes",
    "all_gather_json",
    "all_reduce_mean",
    "barrier",
    "choose_backend",
    "current_context",
    "distributed_session",
    "env_world_size",
    "epoch_batches",
    "init_distributed",
    "resolve_device",
    "shard_order",
    "shutdown",
]
