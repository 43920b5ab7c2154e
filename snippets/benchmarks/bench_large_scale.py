"""Benchmark of the large-scale heads: the chunked margin loss against the dense one, and the model-parallel head.

Part 1 - chunked vs dense, one process. ArcFace (s = 64, m = 0.5 rad), B = 256, C = 10⁶ classes and D = 128 by
default (--dim 512 for the issue's D; at D = 512 the dense step needs about 13 GB, more than a machine shared with
other jobs can spare). One step = forward + backward to the embeddings and the class centers:
  dense    CosineClassifier + arcface_logits + cross-entropy of margins.py (cos θ [B, C], logits, softmax, their
           gradients: what MarginLoss computes)
  chunked  chunked_margin_cross_entropy of snippets/pytorch/chunked_loss.py, for several chunk sizes
Part 2 - the model-parallel head (snippets/pytorch/model_parallel.py) in 1, 2 and 4 processes (gloo on 127.0.0.1),
C = 5·10⁴, D = 128, global batch 256 split evenly; four variants: dense, chunked (chunk 8192), Partial FC
(r = 0.1) and both. A step's time is the slowest rank's (each rank times its step after a barrier).

Memory: every configuration runs in fresh processes; "peak extra" is the process's peak resident set size during
the steps (VmHWM, reset just before them by writing 5 to /proc/self/clear_refs) minus its resident size at that
moment: what the steps add on top of the class centers and the inputs. Both heads allocate the C×D gradient of
the centers during backward, so the tables also give the peak extra minus that gradient. Also listed, computed
(not measured): the bytes of a rank's shard of W and of one [B, classes used] logit matrix.

Times are medians over the repetitions after a warm-up step; ratios are ratios of medians of the same run. torch
runs with one thread per process (see bench_heads.py): with 4 ranks on 2 cores the processes share cores, so the
per-step times of world size 4 measure contention as much as the head. The code is device-agnostic (NCCL and CUDA
tensors when a GPU is present), but these numbers are CPU-only.
Writes results_large_scale.json, results_chunked.md and results_model_parallel.md (included by the pages).

    python snippets/benchmarks/bench_large_scale.py           # full run, 10 to 25 minutes on 2 shared cores
    python snippets/benchmarks/bench_large_scale.py --quick   # smoke run: small sizes, prints only
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
PYTORCH = HERE.parent / "pytorch"
S, M = 64.0, 0.5


def load(name):
    """Import snippets/pytorch/<name>.py by path (the snippets are scripts, not a package)."""
    if str(PYTORCH) not in sys.path:
        sys.path.insert(0, str(PYTORCH))
    spec = importlib.util.spec_from_file_location(name, PYTORCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def status_kib(field):
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def reset_peak():
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    return status_kib("VmRSS")


# ---------------------------------------------------------------------------------------------------------------
# Part 1: chunked vs dense in one process
# ---------------------------------------------------------------------------------------------------------------


def chunk_child(num_classes, dim, batch, chunk_size, reps, warmup):
    margins, chunked = load("margins"), load("chunked_loss")
    torch.manual_seed(0)
    classifier = margins.CosineClassifier(dim, num_classes)
    weight = classifier.weight
    x = torch.randn(batch, dim, requires_grad=True)
    y = torch.randint(0, num_classes, (batch,))

    def loss_fn():
        if chunk_size is None:  # the dense head of margins.py: cos θ [B, C], ArcFace logits, cross-entropy
            return F.cross_entropy(margins.arcface_logits(classifier(x), y, s=S, m=M), y)
        return chunked.chunked_margin_cross_entropy(x, weight, y, margins.arcface_logits, chunk_size, s=S, m=M)

    small = margins.CosineClassifier(dim, 1000)  # one-time set-up (thread pools) not counted
    F.cross_entropy(margins.arcface_logits(small(x.detach()), y % 1000), y % 1000).backward()
    chunked.chunked_margin_cross_entropy(x, small.weight, y % 1000, margins.arcface_logits, 100).backward()
    times = []
    before = reset_peak()
    for _ in range(warmup + reps):
        x.grad = weight.grad = None
        start = time.perf_counter()
        loss_fn().backward()
        times.append(time.perf_counter() - start)
    peak = status_kib("VmHWM")
    return {
        "C": num_classes,
        "D": dim,
        "B": batch,
        "chunk_size": chunk_size,
        "repetitions": reps,
        "step_ms": statistics.median(times[warmup:]) * 1e3,
        "peak_extra_mib": (peak - before) / 1024,
        "weight_grad_mib": num_classes * dim * 4 / 2**20,
        "loss": float(loss_fn().item()),
    }


def run_child(flag, config, env=None):
    out = subprocess.run(
        [sys.executable, __file__, flag, json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_chunks(num_classes, dim, batch, chunk_sizes, reps, warmup):
    rows = []
    dense = run_child("--chunk-child", [num_classes, dim, batch, None, reps, warmup])
    print(f"dense   C={num_classes} D={dim}: {dense['step_ms']:9.1f} ms  peak extra {dense['peak_extra_mib']:8.1f} MiB")
    rows.append(dense)
    for chunk in chunk_sizes:
        row = run_child("--chunk-child", [num_classes, dim, batch, chunk, reps, warmup])
        row["time_over_dense"] = row["step_ms"] / dense["step_ms"]
        row["memory_over_dense"] = row["peak_extra_mib"] / dense["peak_extra_mib"]
        row["memory_over_dense_without_weight_grad"] = (row["peak_extra_mib"] - row["weight_grad_mib"]) / (
            dense["peak_extra_mib"] - dense["weight_grad_mib"]
        )
        row["loss_relative_difference"] = abs(row["loss"] - dense["loss"]) / abs(dense["loss"])
        rows.append(row)
        print(
            f"chunk {chunk:>7}: {row['step_ms']:9.1f} ms ({row['time_over_dense']:.2f}x)  peak extra "
            f"{row['peak_extra_mib']:8.1f} MiB ({row['memory_over_dense']:.3f}x; without the W gradient "
            f"{row['memory_over_dense_without_weight_grad']:.3f}x)",
            flush=True,
        )
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Part 2: the model-parallel head in several processes
# ---------------------------------------------------------------------------------------------------------------

VARIANTS = {"dense": (1.0, None), "chunked": (1.0, 8192), "partial_fc": (0.1, None), "partial_fc+chunked": (0.1, 8192)}


def dist_child(num_classes, dim, batch, variant, reps, warmup):
    import functools

    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mp, margins, chunked = load("model_parallel"), load("margins"), load("chunked_loss")
    sample_rate, chunk = VARIANTS[variant]
    loss_fn = mp.dist_margin_cross_entropy
    if chunk:
        loss_fn = functools.partial(chunked.chunked_margin_cross_entropy, chunk_size=chunk)
    torch.manual_seed(rank)
    head = mp.ModelParallelMarginLoss(
        dim, num_classes, margins.arcface_logits, sample_rate=sample_rate, loss_fn=loss_fn, s=S, m=M
    )
    x = torch.randn(batch // world, dim, requires_grad=True)
    y = torch.randint(0, num_classes, (batch // world,))
    small = mp.ModelParallelMarginLoss(dim, 1000, margins.arcface_logits, sample_rate=sample_rate, loss_fn=loss_fn)
    small(x, y % 1000).backward()  # one-time set-up (gloo buffers, thread pools) not counted
    times = []
    before = reset_peak()
    for _ in range(warmup + reps):
        x.grad = head.weight.grad = None
        dist.barrier()
        start = time.perf_counter()
        head(x, y).backward()
        elapsed = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the step takes as long as its slowest rank
        times.append(float(elapsed))
    peak = torch.tensor([(status_kib("VmHWM") - before) / 1024], dtype=torch.float64)
    peaks = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(peaks, peak)
    used = int(head.last_index.numel())
    if rank == 0:
        print(
            json.dumps(
                {
                    "world_size": world,
                    "variant": variant,
                    "C": num_classes,
                    "D": dim,
                    "B": batch,
                    "r": sample_rate,
                    "chunk_size": chunk,
                    "repetitions": reps,
                    "step_ms": statistics.median(times[warmup:]) * 1e3,
                    "peak_extra_mib_per_rank": [float(p) for p in peaks],
                    "shard_classes_rank0": head.num_local,
                    "classes_used_rank0": used,
                    "weight_mib_rank0": head.num_local * dim * 4 / 2**20,
                    "logits_mib_rank0": batch * (min(used, chunk) if chunk else used) * 4 / 2**20,
                    "weight_grad_mib_rank0": head.num_local * dim * 4 / 2**20,
                }
            )
        )
    dist.destroy_process_group()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(world, config, threads):
    port, procs = free_port(), []
    for rank in range(world):
        env = dict(
            os.environ,
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            RANK=str(rank),
            WORLD_SIZE=str(world),
            GLOO_SOCKET_IFNAME="lo",
            OMP_NUM_THREADS=str(threads),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--threads", str(threads), "--dist-child", json.dumps(config)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [proc.communicate(timeout=1800) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    if any(proc.returncode for proc in procs):
        raise RuntimeError("\n".join(err[-2000:] for _, err in outputs))
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def bench_ranks(num_classes, dim, batch, worlds, reps, warmup, threads):
    rows = []
    for world in worlds:
        for variant in VARIANTS:
            row = launch(world, [num_classes, dim, batch, variant, reps, warmup], threads)
            rows.append(row)
            print(
                f"world {world} {variant:<19}: {row['step_ms']:8.1f} ms  peak extra per rank "
                f"{max(row['peak_extra_mib_per_rank']):7.1f} MiB",
                flush=True,
            )
    return rows


# ---------------------------------------------------------------------------------------------------------------


def machine(threads):
    cpu = platform.processor() or "unknown"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads_per_process": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }


def write_markdown(result, out):
    m, chunks = result["machine"], result["chunked"]
    head = (
        f"CPU: {m['cpu']} ({m['cores']} cores, shared; load average {m['load_average_1min_at_start']} at start, "
        f"{m['load_average_1min_at_end']} at end), torch {m['torch']}, {m['torch_threads_per_process']} thread per "
        f"process, no GPU; {result['date']}."
    )
    dense = chunks[0]
    lines = [
        head,
        "",
        f"ArcFace, C = {dense['C']:,}, D = {dense['D']}, B = {dense['B']}; forward + backward, median of n = "
        f"{dense['repetitions']} (ms); peak extra memory in MiB (the C×D gradient of W, "
        f"{dense['weight_grad_mib']:,.0f} MiB, is part of it for both).",
        "",
        "| head | chunk | step (ms) | time / dense | peak extra (MiB) | memory / dense | without W's gradient |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| dense | — | {dense['step_ms']:,.0f} | 1.00 | {dense['peak_extra_mib']:,.0f} | 1.000 | 1.000 |",
    ]
    for r in chunks[1:]:
        lines.append(
            f"| chunked | {r['chunk_size']:,} | {r['step_ms']:,.0f} | {r['time_over_dense']:.2f} | "
            f"{r['peak_extra_mib']:,.0f} | {r['memory_over_dense']:.3f} | "
            f"{r['memory_over_dense_without_weight_grad']:.3f} |"
        )
    (out / "results_chunked.md").write_text("\n".join(lines) + "\n")

    ranks = result["model_parallel"]
    if not ranks:
        return
    first = ranks[0]
    lines = [
        head,
        "",
        f"ArcFace, C = {first['C']:,}, D = {first['D']}, global B = {first['B']}; Partial FC r = 0.1, chunk 8,192. "
        "Per rank (rank 0): W shard, one logit matrix and W's gradient computed from the sizes; peak extra memory "
        "measured (largest rank); step = forward + backward of the slowest rank, median (ms).",
        "",
        "| ranks | head | W shard (MiB) | logits (MiB) | W gradient (MiB) | peak extra (MiB) | step (ms) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in ranks:
        lines.append(
            f"| {r['world_size']} | {r['variant'].replace('_', ' ').replace('partial fc', 'Partial FC')} | "
            f"{r['weight_mib_rank0']:,.1f} | {r['logits_mib_rank0']:,.1f} | {r['weight_grad_mib_rank0']:,.1f} | "
            f"{max(r['peak_extra_mib_per_rank']):,.0f} | {r['step_ms']:,.0f} |"
        )
    (out / "results_model_parallel.md").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, writes only with --out")
    parser.add_argument("--out", type=Path, default=None, help="folder for the results (default: this folder)")
    parser.add_argument("--dim", type=int, default=128, help="D of part 1 (default 128, see the docstring)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--chunk-child", help=argparse.SUPPRESS)
    parser.add_argument("--dist-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.chunk_child:
        print(json.dumps(chunk_child(*json.loads(args.chunk_child))))
        return
    if args.dist_child:
        dist_child(*json.loads(args.dist_child))
        return

    if args.quick:
        part1 = (20_000, args.dim, 64, [1024, 4096], 2, 1)
        part2 = (8_000, 32, 64, [1, 2], 2, 1)
    else:
        part1 = (1_000_000, args.dim, 256, [2048, 8192, 32768], 2, 1)
        part2 = (50_000, 128, 256, [1, 2, 4], 3, 1)
    result = {"date": datetime.date.today().isoformat(), "machine": machine(args.threads), "model_parallel": []}
    out = args.out if args.out is not None else (None if args.quick else HERE)
    start = time.perf_counter()

    def save():  # after each part, so that a long run that is stopped keeps what it measured
        result["wall_s"] = round(time.perf_counter() - start, 1)
        result["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "results_large_scale.json").write_text(json.dumps(result, indent=2) + "\n")
            write_markdown(result, out)
            print(f"wrote results_large_scale.json, results_chunked.md and results_model_parallel.md to {out}")

    result["chunked"] = bench_chunks(*part1)
    best = min(result["chunked"][1:], key=lambda r: r["memory_over_dense"])
    result["targets"] = {
        "chunked peak extra memory <= 1/10 of dense (best chunk)": best["memory_over_dense"] <= 0.1,
        "chunked time <= 1.3x dense (same chunk)": best["time_over_dense"] <= 1.3,
    }
    save()
    result["model_parallel"] = bench_ranks(*part2, args.threads)
    save()
    print(json.dumps(result["targets"], indent=1), f"\nwall time {result['wall_s']} s")


if __name__ == "__main__":
    main()
