"""Benchmark of the large-scale heads: the chunked margin loss against the dense one, and the model-parallel head.

Part 1 - chunked vs dense, one process. ArcFace (s = 64, m = 0.5 rad), B = 256, C = 10⁶ classes, D = 512 (the
issue's size; the dense step then adds about 10 GB, so check `free -g` first, or pass --dim 128). One step =
forward + backward to the embeddings and the class centers:
  dense    CosineClassifier + arcface_logits + cross-entropy of margins.py (cos θ [B, C], logits, softmax, their
           gradients: what MarginLoss computes)
  chunked  chunked_margin_cross_entropy of snippets/pytorch/chunked_loss.py, for several chunk sizes, and once
           with lr= (the SGD step applied to each chunk of W inside backward: no C×D gradient is built)
Part 2 - the model-parallel head (snippets/pytorch/model_parallel.py) in 1, 2 and 4 processes (gloo on 127.0.0.1),
C = 5·10⁴, D = 128, global batch 256 split evenly; four variants: dense, chunked (chunk 8192), Partial FC
(r = 0.1) and both. A step's time is the slowest rank's (each rank times its step after a barrier).

Memory: every configuration runs in fresh processes; "peak extra" is the process's peak resident set size during
the steps (VmHWM, reset just before them by writing 5 to /proc/self/clear_refs) minus its resident size at that
moment: what the steps add on top of the class centers W and the inputs. Dense and plain chunked heads both hold
the C×D gradient of W at their peak (any head that hands W's gradient to an optimizer does), so the tables also
give the ratio without it: (peak extra - W gradient held) / (dense peak extra - W gradient). Also listed, computed
(not measured): the bytes of a rank's shard of W and of one [B, classes used] logit matrix.

Times are medians over the repetitions after a warm-up step; ratios are ratios of medians of the same run. torch
runs with one thread per process (see bench_heads.py): with 4 ranks on 2 cores the processes share cores, so the
per-step times of world size 4 measure contention as much as the head. The code is device-agnostic (NCCL and CUDA
tensors when a GPU is present), but these numbers are CPU-only.
Writes results_large_scale.json, and from it results_chunked.{ko,en}.md and results_model_parallel.{ko,en}.md
(the same numbers in Korean and English, included by the pages); --render rewrites the tables from the JSON.

    python snippets/benchmarks/bench_large_scale.py                  # full run, about 12 minutes on 2 idle cores
    python snippets/benchmarks/bench_large_scale.py --part chunked   # part 1 only (keeps part 2 of the JSON)
    python snippets/benchmarks/bench_large_scale.py --quick          # smoke run: small sizes, prints only
"""

import argparse
import datetime
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
PYTORCH = HERE.parent / "pytorch"
sys.path.insert(0, str(HERE))
from common import LANGS, header, launch_ranks, machine  # noqa: E402  (next to this file)

S, M = 64.0, 0.5
SGD_LR = 0.1  # learning rate of the "SGD in backward" variant (any value: the step's cost does not depend on it)


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


def chunk_child(num_classes, dim, batch, chunk_size, reps, warmup, lr=None):
    margins, chunked = load("margins"), load("chunked_loss")
    torch.manual_seed(0)
    classifier = margins.CosineClassifier(dim, num_classes)
    weight = classifier.weight
    x = torch.randn(batch, dim, requires_grad=True)
    y = torch.randint(0, num_classes, (batch,))

    def loss_fn():
        if chunk_size is None:  # the dense head of margins.py: cos θ [B, C], ArcFace logits, cross-entropy
            return F.cross_entropy(margins.arcface_logits(classifier(x), y, s=S, m=M), y)
        return chunked.chunked_margin_cross_entropy(x, weight, y, margins.arcface_logits, chunk_size, lr=lr, s=S, m=M)

    small = margins.CosineClassifier(dim, 1000)  # one-time set-up (thread pools) not counted
    F.cross_entropy(margins.arcface_logits(small(x.detach()), y % 1000), y % 1000).backward()
    chunked.chunked_margin_cross_entropy(x, small.weight, y % 1000, margins.arcface_logits, 100).backward()
    times, cpu = [], []
    before = reset_peak()
    for _ in range(warmup + reps):
        x.grad = weight.grad = None
        start, start_cpu = time.perf_counter(), time.process_time()
        loss_fn().backward()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak = status_kib("VmHWM")
    return {
        "C": num_classes,
        "D": dim,
        "B": batch,
        "chunk_size": chunk_size,
        "sgd_in_backward_lr": lr,
        "repetitions": reps,
        "step_ms": statistics.median(times[warmup:]) * 1e3,
        "step_ms_all": [t * 1e3 for t in times[warmup:]],
        "step_cpu_ms_all": [t * 1e3 for t in cpu[warmup:]],  # this process's CPU time: less inflated by others
        "peak_extra_mib": (peak - before) / 1024,
        "weight_grad_mib": 0.0 if lr is not None else num_classes * dim * 4 / 2**20,  # held at the peak
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


def compare(row, dense):
    """Ratios of a chunked row to the dense row: time, peak extra memory with and without W's gradient, loss."""
    row["time_over_dense"] = row["step_ms"] / dense["step_ms"]
    row["memory_over_dense"] = row["peak_extra_mib"] / dense["peak_extra_mib"]
    row["memory_over_dense_without_weight_grad"] = (row["peak_extra_mib"] - row["weight_grad_mib"]) / (
        dense["peak_extra_mib"] - dense["weight_grad_mib"]
    )
    row["loss_relative_difference"] = abs(row["loss"] - dense["loss"]) / abs(dense["loss"])
    if row.get("sgd_in_backward_lr"):  # its steps have moved W, so its last loss is not the dense one's
        row["loss_relative_difference"] = None
    return row


def bench_chunks(num_classes, dim, batch, chunk_sizes, reps, warmup, sgd_chunk=None, save=lambda rows: None):
    rows = []
    dense = run_child("--chunk-child", [num_classes, dim, batch, None, reps, warmup])
    print(f"dense   C={num_classes} D={dim}: {dense['step_ms']:9.1f} ms  peak extra {dense['peak_extra_mib']:8.1f} MiB")
    rows.append(dense)
    save(rows)
    configs = [(chunk, None) for chunk in chunk_sizes] + ([(sgd_chunk, SGD_LR)] if sgd_chunk else [])
    configs.sort(key=lambda c: c[0] != sgd_chunk)  # the main chunk size and its SGD variant first
    for chunk, lr in configs:
        row = run_child("--chunk-child", [num_classes, dim, batch, chunk, reps, warmup, lr])
        rows.append(compare(row, dense))
        save(rows)
        print(
            f"chunk {chunk:>7}{' + SGD' if lr else ''}: {row['step_ms']:9.1f} ms ({row['time_over_dense']:.2f}x)  "
            "peak extra "
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


def launch(world, config, threads):
    argv = [sys.executable, __file__, "--threads", str(threads), "--dist-child", json.dumps(config)]
    with tempfile.TemporaryDirectory() as logs:
        codes, outs, errs, _ = launch_ranks(argv, world, logs, timeout_s=1800, threads=threads)
    if codes != [0] * world:
        raise RuntimeError(f"ranks exited with {codes}:\n" + "\n".join(err[-2000:] for err in errs))
    return json.loads(outs[0].strip().splitlines()[-1])


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


TEXT = {  # the tables' words in both languages; numbers and units are the same
    "en": {
        "chunked caption": "ArcFace, C = {C:,}, D = {D}, B = {B}; forward + backward, median (range) of n = {n} (ms); "
        "peak extra memory in MiB (both heads hold the C×D gradient of W, {wgrad:,.0f} MiB, at their peak; "
        "SGD in backward never builds it).",
        "chunked columns": "| head | chunk | step (ms) | time / dense | peak extra (MiB) | memory / dense "
        "| without W's gradient |",
        "dense": "dense",
        "chunked": "chunked",
        "sgd": "chunked + SGD in backward",
        "ranks caption": "ArcFace, C = {C:,}, D = {D}, global B = {B}; Partial FC r = 0.1, chunk 8,192. Per rank "
        "(rank 0): W shard, one logit matrix and W's gradient computed from the sizes; peak extra memory measured "
        "(largest rank); step = forward + backward of the slowest rank, median (ms).",
        "ranks columns": "| ranks | head | W shard (MiB) | logits (MiB) | W gradient (MiB) | peak extra (MiB) "
        "| step (ms) |",
        "variants": {
            "dense": "dense",
            "chunked": "chunked",
            "partial_fc": "Partial FC",
            "partial_fc+chunked": "Partial FC + chunked",
        },
    },
    "ko": {
        "chunked caption": "ArcFace, C = {C:,}, D = {D}, B = {B}; 순전파 + 역전파, n = {n}회의 중앙값(범위)(ms); "
        "추가 최대 메모리(MiB). 두 헤드 모두 최대치일 때 W의 C×D 기울기({wgrad:,.0f} MiB)를 들고 있고, "
        "역전파 안 SGD는 그것을 만들지 않습니다.",
        "chunked columns": "| 헤드 | 덩어리 | 스텝(ms) | 시간 / 밀집 | 추가 최대 메모리(MiB) | 메모리 / 밀집 "
        "| W 기울기를 뺀 비율 |",
        "dense": "밀집",
        "chunked": "청크",
        "sgd": "청크 + 역전파 안 SGD",
        "ranks caption": "ArcFace, C = {C:,}, D = {D}, 전역 B = {B}; Partial FC r = 0.1, 덩어리 8,192. 프로세스마다"
        "(랭크 0): W 조각, 로짓 행렬 한 벌, W 기울기는 크기로 계산한 값이고, 추가 최대 메모리는 잰 값(가장 큰 "
        "프로세스), 스텝은 가장 느린 프로세스의 순전파 + 역전파 중앙값(ms)입니다.",
        "ranks columns": "| 프로세스 | 헤드 | W 조각(MiB) | 로짓(MiB) | W 기울기(MiB) | 추가 최대 메모리(MiB) "
        "| 스텝(ms) |",
        "variants": {
            "dense": "밀집",
            "chunked": "청크",
            "partial_fc": "Partial FC",
            "partial_fc+chunked": "Partial FC + 청크",
        },
    },
}


def step(row):
    """Median step time, and the range of the repetitions when there are several: '68,140 (33,661–82,172)'."""
    times = row.get("step_ms_all", [])
    spread = f" ({min(times):,.0f}–{max(times):,.0f})" if len(times) > 1 else ""
    return f"{row['step_ms']:,.0f}{spread}"


def chunked_table(result, lang):
    t, chunks = TEXT[lang], result["chunked"]
    dense = chunks[0]
    caption = t["chunked caption"].format(
        C=dense["C"], D=dense["D"], B=dense["B"], n=dense["repetitions"], wgrad=dense["weight_grad_mib"]
    )
    lines = [header(result["machine"], result["date"], lang), "", caption, "", t["chunked columns"]]
    lines += ["|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {t['dense']} | — | {step(dense)} | 1.00 | {dense['peak_extra_mib']:,.0f} | 1.000 | 1.000 |"]
    for r in chunks[1:]:
        lines.append(
            f"| {t['sgd'] if r.get('sgd_in_backward_lr') else t['chunked']} | {r['chunk_size']:,} | "
            f"{step(r) if r.get('timed', True) else '—'} | "
            f"{format(r['time_over_dense'], '.2f') if r.get('timed', True) else '—'} | {r['peak_extra_mib']:,.0f} | "
            f"{r['memory_over_dense']:.3f} | {r['memory_over_dense_without_weight_grad']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def ranks_table(result, lang):
    t, ranks = TEXT[lang], result["model_parallel"]
    first = ranks[0]
    head = header(
        result.get("machine_model_parallel", result["machine"]), result.get("date_model_parallel", result["date"]), lang
    )
    lines = [head, "", t["ranks caption"].format(C=first["C"], D=first["D"], B=first["B"]), "", t["ranks columns"]]
    lines += ["|---:|---|---:|---:|---:|---:|---:|"]
    for r in ranks:
        lines.append(
            f"| {r['world_size']} | {t['variants'][r['variant']]} | {r['weight_mib_rank0']:,.1f} | "
            f"{r['logits_mib_rank0']:,.1f} | {r['weight_grad_mib_rank0']:,.1f} | "
            f"{max(r['peak_extra_mib_per_rank']):,.0f} | {r['step_ms']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_markdown(result, out):
    """results_chunked.<lang>.md and results_model_parallel.<lang>.md, ko and en, from the result dictionary."""
    for lang in LANGS:
        if result["chunked"]:
            (out / f"results_chunked.{lang}.md").write_text(chunked_table(result, lang))
        if result["model_parallel"]:
            (out / f"results_model_parallel.{lang}.md").write_text(ranks_table(result, lang))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, writes only with --out")
    parser.add_argument("--out", type=Path, default=None, help="folder for the results (default: this folder)")
    parser.add_argument("--dim", type=int, default=512, help="D of part 1 (default 512, the issue's size)")
    parser.add_argument("--reps", type=int, default=3, help="timed steps per configuration of part 1 (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument(
        "--part", choices=["all", "chunked", "model-parallel"], default="all", help="run one part, keep the other's"
    )
    parser.add_argument("--render", action="store_true", help="only rewrite the .md tables from the .json")
    parser.add_argument("--chunk-child", help=argparse.SUPPRESS)
    parser.add_argument("--dist-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.render:
        out = args.out or HERE
        write_markdown(json.loads((out / "results_large_scale.json").read_text()), out)
        return
    if args.chunk_child:
        print(json.dumps(chunk_child(*json.loads(args.chunk_child))))
        return
    if args.dist_child:
        dist_child(*json.loads(args.dist_child))
        return

    if args.quick:
        part1 = (20_000, args.dim, 64, [1024, 4096], 2, 1, 1024)
        part2 = (8_000, 32, 64, [1, 2], 2, 1)
    else:
        part1 = (1_000_000, args.dim, 256, [2048, 8192, 32768], args.reps, 1, 8192)
        part2 = (50_000, 128, 256, [1, 2, 4], 3, 1)
    out = args.out if args.out is not None else (None if args.quick else HERE)
    result = {"chunked": [], "model_parallel": []}
    if args.part != "all" and out is not None and (out / "results_large_scale.json").exists():
        result = json.loads((out / "results_large_scale.json").read_text())  # keep the part not rerun
    part_key = "" if args.part != "model-parallel" else "_model_parallel"
    result["machine" + part_key] = machine(args.threads)
    result["date" + part_key] = datetime.date.today().isoformat()
    start = time.perf_counter()

    def save():  # after each configuration, so that a long run that is stopped keeps what it measured
        result["wall_s" + part_key] = round(time.perf_counter() - start, 1)
        result["machine" + part_key]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "results_large_scale.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
            write_markdown(result, out)

    if args.part != "model-parallel":
        result["chunked"] = bench_chunks(*part1, save=lambda rows: (result.update(chunked=rows), save()))
    if args.part != "chunked":
        result["model_parallel"] = bench_ranks(*part2, args.threads)
        save()
    print(f"wall time {round(time.perf_counter() - start, 1)} s; results in {out}")


if __name__ == "__main__":
    main()
