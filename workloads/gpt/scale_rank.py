"""One rank of the distributed GPT training step: run by torchrun (``spikeflops gpt scale`` launches it).

Every rank builds the same seeded model, takes its slice of one seeded global batch,
wraps the model in DDP or FSDP2 (``fully_shard`` per block, then the root), and runs the
single-device step of :mod:`workloads.gpt.steps` (forward, loss, backward, AdamW), timed
as the single-device step is (warm-up, repeats, each synchronised). Rank 0 gathers
every rank's numbers and writes the record.

A process group made by the caller (a multi-node ``torchrun --nnodes ... --rdzv-endpoint``
launch, or your own ``init_process_group``) is used as it is: see :func:`run_rank`.

A rank that fails prints one line starting with :data:`ERROR_MARK` (:data:`OOM_MARK` when
it ran out of memory) on stderr and exits non-zero; torchrun then stops the other ranks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
from torch.nn import functional as F

from ..errors import SpikeflopsError
from ..memory import is_oom_error
from .maxbatch import OOM_EXIT_CODE
from .scale import ScaleCase, ScaleRecord

ERROR_MARK = "spikeflops-rank-error:"
OOM_MARK = "spikeflops-rank-oom:"
# Collective ops as torch.profiler names them: c10d's ops on the CPU side (gloo runs them on the CPU),
# NCCL's kernels on the GPU side.
_CPU_COLLECTIVES = ("allreduce", "all_reduce", "allgather", "all_gather", "reduce_scatter", "broadcast",
                    "gloo:")
_GPU_COLLECTIVE = "nccl"


def _device_for_rank(case: ScaleCase) -> torch.device:
    if case.device == "cuda":
        if not torch.cuda.is_available():
            raise SpikeflopsError("no CUDA device on this machine: run the distributed case with --device cpu")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise SpikeflopsError(f"local rank {local} has no GPU: {torch.cuda.device_count()} on this node")
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def init_group(case: ScaleCase) -> None:
    """Join the process group torchrun describes, unless the caller made one already."""
    if dist.is_initialized():
        return
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise SpikeflopsError(f"no process group and no torchrun environment ({', '.join(missing)} unset): "
                              "launch with `spikeflops gpt scale` or torchrun")
    dist.init_process_group(backend=case.backend)


def wrap(model, case: ScaleCase, device: torch.device, group=None):
    """DDP, or FSDP2's fully_shard on each transformer block and then the root, over ``group`` (default: all)."""
    if case.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                       process_group=group)
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:                                   # torch < 2.6 has FSDP2 under _composable
        from torch.distributed._composable.fsdp import fully_shard
    from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

    mesh = (init_device_mesh(device.type, (dist.get_world_size(),)) if group is None
            else DeviceMesh.from_group(group, device.type))
    blocks = model.blocks if hasattr(model, "blocks") else model.trf_blocks
    for block in blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _mean_over_ranks(value: torch.Tensor) -> float:
    value = value.detach().float().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return float(value.item()) / dist.get_world_size()


def _grad_digest(model) -> str:
    """A digest of the full gradients this rank sees: the same on every rank, bit for bit, under DDP
    (averaged copies) and FSDP (shards gathered here, a collective every rank makes in the same order)."""
    h = hashlib.sha1()
    for p in model.parameters():
        if p.grad is not None:
            grad = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
            h.update(grad.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def _synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interval_union(intervals) -> float:
    total, end = 0.0, -math.inf
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def collective_seconds(events, on_gpu: bool) -> float:
    """Time (s) during which at least one collective was in flight, from profiler events.

    A union of intervals, not a sum: gloo's op and its c10d wrapper nest, and overlapping
    NCCL kernels on several streams must not count twice.
    """
    spans = []
    for evt in events:
        name = evt.name.lower()
        if on_gpu:
            hit = _GPU_COLLECTIVE in name and str(getattr(evt, "device_type", "")).endswith("CUDA")
        else:
            hit = any(k in name for k in _CPU_COLLECTIVES)
        if hit:
            spans.append((evt.time_range.start, evt.time_range.end))
    return _interval_union(spans) / 1e6


def _topology(device: torch.device) -> dict:
    world, local = dist.get_world_size(), int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
    facts = {"backend": dist.get_backend(), "world_size": world, "local_world_size": local,
             "nodes": max(1, world // max(local, 1))}
    if device.type == "cuda":
        count = torch.cuda.device_count()
        facts.update(device_count=count, device_name=torch.cuda.get_device_name(device),
                     peer_access=[[i == j or torch.cuda.can_device_access_peer(i, j) for j in range(count)]
                                  for i in range(count)])
        facts["interconnect"] = ("peer-to-peer between every GPU pair" if all(all(r) for r in facts["peer_access"])
                                 else "some GPU pairs go through the host")
    else:
        facts.update(device_count=os.cpu_count(), device_name="cpu",
                     interconnect="shared memory on one host" if facts["nodes"] == 1 else "network")
    return facts


def _peak(case: ScaleCase, device: torch.device):
    from .utilisation import measure_matmul_peak, reference_peak
    from .steps import DTYPES

    def measure():
        dist.barrier()                     # every rank measures at once: the ceiling each really has
        return measure_matmul_peak(device, DTYPES[case.dtype], repeats=5)
    return reference_peak(device, case.dtype, measure)


def _timed_steps(step, device, warmup: int, repeats: int, align=None) -> list[float]:
    """Seconds of ``repeats`` synchronised steps after ``warmup`` untimed ones (then ``align()``: a barrier)."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    if align is not None:
        align()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        _synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def one_rank_baseline(case: ScaleCase, device: torch.device, warmup: int, repeats: int) -> float | None:
    """Tokens/s of the same case on rank 0 alone, in this launch: a one-rank group of its own (DDP or FSDP2 over
    it, as a one-rank launch would have), while every other rank waits in a barrier. Rank 0 gets the number,
    the others None. The same processes, threads and moment as the world it is the baseline of, and no
    second launch (on a CPU, torchrun's start and stop are most of a launch: 4.7 s of a 5 s one)."""
    from .fast import build_model
    from .steps import DTYPES, make_optimizer, make_train_step, random_tokens

    alone = dist.new_group([0])                 # every rank makes every group, in the same order
    tokens_per_s = None
    if dist.get_rank() == 0:
        one = case.with_(world_size=1)
        cfg = one.config
        model = wrap(build_model(cfg, one.variant, device=device, dtype=DTYPES[one.dtype], seed=one.seed),
                     one, device, group=alone)
        inputs, targets = random_tokens(cfg.vocab_size, one.global_batch, cfg.context_length, device, seed=one.seed)
        step = make_train_step(model, make_optimizer(model), inputs, targets)
        # as many untimed steps as a world's ranks take before their timed ones (the digested first step,
        # the second-loss step, then the warm-up)
        seconds = _timed_steps(step, device, warmup + 2, repeats)
        tokens_per_s = one.global_batch * one.seq_len / statistics.median(seconds)
        del model, step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    dist.barrier()
    dist.destroy_process_group(alone)
    return tokens_per_s


def run_rank(case: ScaleCase, warmup: int = 2, repeats: int = 5, profiled_steps: int = 2,
             fail_on_rank: int | None = None, probe_only: bool = False,
             baseline: bool = False) -> ScaleRecord | None:
    """This rank's part of the case; rank 0 returns the gathered record, the others None.

    ``probe_only``: one update and a second step, nothing timed (a max-batch probe). ``baseline``: the record
    carries its one-rank baseline, measured first in this launch (:func:`one_rank_baseline`).
    """
    from .fast import build_model
    from .flops import analytic_flops
    from .steps import DTYPES, check_initial_loss, make_optimizer, make_train_step, random_tokens

    init_group(case)
    if dist.get_world_size() != case.world_size:
        raise SpikeflopsError(f"the process group has {dist.get_world_size()} ranks, the case asks for "
                              f"{case.world_size}")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = _device_for_rank(case)
    if fail_on_rank == rank:
        raise SpikeflopsError(f"failure injected on rank {rank} (--fail-on-rank)")
    cfg = case.config
    peak = None if probe_only else _peak(case, device)
    base = one_rank_baseline(case, device, warmup, repeats) if baseline and not probe_only and world > 1 else None

    model = build_model(cfg, case.variant, device=device, dtype=DTYPES[case.dtype], seed=case.seed)
    model = wrap(model, case, device)
    tokens, targets = random_tokens(cfg.vocab_size, case.global_batch, cfg.context_length, device, seed=case.seed)
    lo = rank * case.local_batch
    inputs, targets = tokens[lo:lo + case.local_batch], targets[lo:lo + case.local_batch]
    optimizer = make_optimizer(model)

    model.train()                          # the first step by hand: its gradients are digested
    loss = F.cross_entropy(model(inputs).flatten(0, 1).float(), targets.flatten())
    loss.backward()
    digest = _grad_digest(model)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    loss_first = _mean_over_ranks(loss)
    check_initial_loss(loss_first, cfg.vocab_size)

    step = make_train_step(model, optimizer, inputs, targets)
    loss_second = _mean_over_ranks(step())
    if probe_only:
        _synchronize(device)
        return None
    seconds = _timed_steps(step, device, warmup, repeats, align=dist.barrier)

    collective, profiled = _profile_collectives(step, device, profiled_steps)
    loss_last = _mean_over_ranks(step())
    if not (math.isfinite(loss_last) and loss_last < loss_first):
        raise SpikeflopsError(f"{case.label()}: loss did not fall ({loss_first:.3f} -> {loss_last:.3f})")

    mine = {"seconds": seconds, "collective": collective, "profiled": profiled, "digest": digest}
    gathered = [None] * world
    dist.all_gather_object(gathered, mine)
    if rank != 0:
        return None
    per_rank = [tuple(g["seconds"]) for g in gathered]
    record = ScaleRecord(
        case=case, step_seconds=tuple(max(s) for s in zip(*per_rank)), rank_step_seconds=tuple(per_rank),
        flops_per_step_per_rank=analytic_flops(cfg, case.local_batch, cfg.context_length, backward=True),
        peak_flops_per_s=peak.flops_per_s if peak else None, peak_source=peak.source if peak else None,
        collective_seconds=tuple(g["collective"] for g in gathered),
        profiled_step_seconds=tuple(g["profiled"] for g in gathered),
        loss_first=loss_first, loss_second=loss_second, loss_last=loss_last,
        grad_digests=tuple(g["digest"] for g in gathered),
        threads_per_rank=torch.get_num_threads() if device.type == "cpu" else None,
        topology=_topology(device))
    if baseline:                                 # one rank: its own numbers are the baseline
        record = record.with_baseline(base if base is not None else record.tokens_per_s_per_rank)
    return record


def _profile_collectives(step, device, steps: int) -> tuple[float, float]:
    """(seconds with a collective in flight, wall seconds) per step, over ``steps`` profiled steps
    after one warm-up step of the profiler (its start-up must not count)."""
    from torch.profiler import ProfilerActivity, profile, schedule

    from ..quietlogs import without_native_logs

    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    wall = 0.0
    # kineto prints its own start and stop lines to stderr: kept out of the command's output
    with without_native_logs(), profile(activities=activities,
                                        schedule=schedule(wait=0, warmup=1, active=steps, repeat=1)) as prof:
        for i in range(1 + steps):
            start = time.perf_counter()
            step()
            _synchronize(device)
            if i >= 1:
                wall += time.perf_counter() - start
            prof.step()
    return collective_seconds(prof.events(), on_gpu) / steps, wall / steps


def _parse(argv):
    p = argparse.ArgumentParser(prog="python -m workloads.gpt.scale_rank",
                                description="one rank of a distributed GPT training step (run under torchrun)")
    p.add_argument("--case", required=True, help="the ScaleCase as JSON")
    p.add_argument("--out", help="rank 0 writes the record here (JSON)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--probe", action="store_true", help="one update, nothing timed (max-batch probe)")
    p.add_argument("--baseline", action="store_true",
                   help="first time the case on rank 0 alone (its one-rank baseline), the other ranks waiting")
    p.add_argument("--cpu-memory-budget", type=int, help="cap each rank's address space at its baseline + this")
    p.add_argument("--fail-on-rank", type=int, help="make this rank fail (tests the teardown of the others)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    rank = os.environ.get("RANK", "?")
    try:
        case = ScaleCase(**json.loads(args.case))
        if args.cpu_memory_budget:
            from .probe import cap_address_space

            init_group(case)                    # before the cap: gloo's buffers are not the model's
            cap_address_space(args.cpu_memory_budget)
        record = run_rank(case, warmup=args.warmup, repeats=args.repeats, fail_on_rank=args.fail_on_rank,
                          probe_only=args.probe, baseline=args.baseline)
        if record is not None and args.out:
            tmp = f"{args.out}.partial"
            with open(tmp, "w") as f:
                json.dump(record.to_dict(), f, indent=1)
            os.replace(tmp, args.out)
    except SpikeflopsError as exc:
        print(f"{ERROR_MARK} rank {rank}: {exc}", file=sys.stderr, flush=True)
        return 1
    except BaseException as exc:  # noqa: BLE001 - classified for the launcher, then the traceback follows
        if is_oom_error(exc):
            print(f"{OOM_MARK} rank {rank}: out of memory ({type(exc).__name__})", file=sys.stderr, flush=True)
            return OOM_EXIT_CODE
        print(f"{ERROR_MARK} rank {rank}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr, flush=True)
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main()          # the record is written and the group destroyed: nothing is left to clean up
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)         # skip the interpreter's teardown of torch (a tenth of a CPU launch)
