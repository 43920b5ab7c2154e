"""Benchmark of the classification heads: forward + backward time (and Partial FC's peak memory) on the CPU.

Part 1 - the cost of the margin. Batch B = 256, embedding D = 512, C in {1k, 10k, 100k} classes; one step is
normalize embeddings and class weights, cosine matrix, logits, mean cross-entropy, backward to the embeddings and
the weights. Three heads, timed in turn inside each repetition so that they share the machine's noise:
  normface  s * cos(theta) for every class, no margin (the plain cosine-softmax head)
  arcface   arcface_logits from snippets/pytorch/margins.py (margin on the target column only)
  pml       pytorch-metric-learning's ArcFaceLoss (margin given in degrees: degrees(0.5 rad))

Part 2 - Partial FC (snippets/pytorch/partial_fc.py), B = 256, D = 128, C in {100k, 1M}, sample rate
r in {1.0, 0.3, 0.1}. One step = sample centers (r < 1), forward, backward. D is 128 rather than 512 to keep the run
short: the C = 1M full softmax fits in memory at D = 512 too (bench_large_scale.py runs it: about 12 GB), but one
dense step there takes about 45 s against 18 s at D = 128, and every configuration is repeated; the cost of every
part of the step still grows linearly with the number of centers used.
Memory: each Partial FC configuration runs in a fresh process; "peak extra memory" is the process's peak resident
set size (VmHWM in /proc/self/status, reset just before the steps by writing 5 to /proc/self/clear_refs) minus its
resident set size (VmRSS) at that moment, i.e. what the steps themselves added on top of the weights and inputs.
(Not resource.getrusage's ru_maxrss: Linux carries it over from the parent across fork + exec.)

Every time is the median of the repetitions after warm-up steps; ratios are ratios of medians of the same run.
torch runs with ONE thread by default (--threads): on 2 cores shared with other jobs, two OpenMP threads mostly
wait for each other (measured 2 to 3 times slower per step here), and the timings become far noisier.
Writes results.json (data, machine information) and from it results.ko.md and results.en.md (the same tables in
Korean and English, included by the pages); --render rewrites the tables from results.json without measuring.

    python snippets/benchmarks/bench_heads.py            # full run, about 5 to 8 minutes on 2 cores
    python snippets/benchmarks/bench_heads.py --quick    # smoke run: small sizes, prints only
"""

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
SNIPPETS = HERE.parent
B, D_HEADS, D_PFC, S, M = 256, 512, 128, 64.0, 0.5


sys.path.insert(0, str(SNIPPETS.parent / "tests"))
from snippet_loader import load_snippet as load  # noqa: E402  (the one loader: tests, experiments, benchmarks)

sys.path.insert(0, str(HERE))
from common import LANGS, header, machine  # noqa: E402  (next to this file)


def status_kib(field):
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


# ---------------------------------------------------------------------------------------------------------------
# Part 1: NormFace vs ArcFace vs PML ArcFaceLoss
# ---------------------------------------------------------------------------------------------------------------


def make_heads(num_classes, margins):
    from pytorch_metric_learning.losses import ArcFaceLoss

    weight = torch.nn.Parameter(torch.randn(num_classes, D_HEADS) * 0.01)
    pml = ArcFaceLoss(num_classes=num_classes, embedding_size=D_HEADS, margin=math.degrees(M), scale=S)
    with torch.no_grad():
        pml.W.copy_(weight.T)

    def cosine(x):
        return F.linear(F.normalize(x, eps=1e-12), F.normalize(weight, eps=1e-12))

    def normface(x, y):
        return F.cross_entropy(S * cosine(x), y)

    def arcface(x, y):
        return F.cross_entropy(margins.arcface_logits(cosine(x), y, s=S, m=M), y)

    return {"normface": (normface, [weight]), "arcface": (arcface, [weight]), "pml": (pml, list(pml.parameters()))}


def time_step(loss_fn, params, x, y):
    x.grad = None
    for p in params:
        p.grad = None
    start = time.perf_counter()
    loss_fn(x, y).backward()
    return time.perf_counter() - start


def bench_heads(class_counts, reps, warmup):
    rows = []
    for num_classes in class_counts:
        torch.manual_seed(0)
        heads = make_heads(num_classes, margins)
        x = torch.randn(B, D_HEADS, requires_grad=True)
        y = torch.randint(0, num_classes, (B,))
        times = {name: [] for name in heads}
        for rep in range(warmup + reps[num_classes]):
            for name, (loss_fn, params) in heads.items():  # interleaved: the heads share the machine's noise
                elapsed = time_step(loss_fn, params, x, y)
                if rep >= warmup:
                    times[name].append(elapsed)
        med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
        paired = [a / n for a, n in zip(times["arcface"], times["normface"], strict=True)]
        rows.append(
            {
                "C": num_classes,
                "B": B,
                "D": D_HEADS,
                "repetitions": reps[num_classes],
                "normface_ms": med["normface"],
                "arcface_ms": med["arcface"],
                "pml_ms": med["pml"],
                "arcface_over_normface": med["arcface"] / med["normface"],
                "arcface_over_pml": med["arcface"] / med["pml"],
                "arcface_over_normface_paired_median": statistics.median(paired),
            }
        )
        print(
            f"C={num_classes:>7}: normface {med['normface']:8.1f} ms  arcface {med['arcface']:8.1f} ms  "
            f"pml {med['pml']:8.1f} ms  arcface/normface {rows[-1]['arcface_over_normface']:.3f}  "
            f"arcface/pml {rows[-1]['arcface_over_pml']:.3f}",
            flush=True,
        )
        del heads
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Part 2: Partial FC, one configuration per fresh process
# ---------------------------------------------------------------------------------------------------------------


def pfc_one(num_classes, sample_rate, reps, warmup):
    """Run in a child process: time the Partial FC step and measure the memory the steps add."""
    partial_fc = load("pytorch/partial_fc.py")
    torch.manual_seed(0)
    tiny = partial_fc.PartialFCLoss(D_PFC, 1_000, sample_rate=sample_rate)  # one-time set-up (thread pools) not counted
    time_step(tiny, list(tiny.parameters()), torch.randn(8, D_PFC, requires_grad=True), torch.arange(8))
    head = partial_fc.PartialFCLoss(D_PFC, num_classes, sample_rate=sample_rate, s=S, m=M)
    x = torch.randn(B, D_PFC, requires_grad=True)
    y = torch.randint(0, num_classes, (B,))
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current resident size
    before = status_kib("VmRSS")
    times = [time_step(head, list(head.parameters()), x, y) for _ in range(warmup + reps)][warmup:]
    peak = status_kib("VmHWM")
    num_sample = num_classes if sample_rate >= 1 else max(int(sample_rate * num_classes), int(torch.unique(y).numel()))
    return {
        "C": num_classes,
        "B": B,
        "D": D_PFC,
        "r": sample_rate,
        "num_sample": num_sample,
        "repetitions": reps,
        "step_ms": statistics.median(times) * 1e3,
        "peak_extra_mib": (peak - before) / 1024,
        "weight_mib": num_classes * D_PFC * 4 / 2**20,
    }


def bench_partial_fc(class_counts, rates, reps, warmup):
    rows = []
    for num_classes in class_counts:
        full = None
        for rate in rates:
            args = json.dumps([num_classes, rate, reps[num_classes], warmup])
            out = subprocess.run(
                [sys.executable, __file__, "--threads", str(torch.get_num_threads()), "--pfc-child", args],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            full = row["step_ms"] if rate == 1.0 else full
            row["speedup_vs_full"] = full / row["step_ms"] if full else None
            rows.append(row)
            print(
                f"C={num_classes:>8} r={rate:<4}: {row['step_ms']:9.1f} ms  x{row['speedup_vs_full'] or 1:.2f}  "
                f"peak extra {row['peak_extra_mib']:8.1f} MiB",
                flush=True,
            )
    return rows


# ---------------------------------------------------------------------------------------------------------------


TEXT = {  # the tables' words in both languages; numbers and units are the same
    "en": {
        "heads caption": "B = {B}, D = {D}, s = {s:g}, m = {m} rad; forward + backward, median of n repetitions (ms).",
        "pfc caption": "Partial FC (ArcFace): B = {B}, D = {D}; step = sampling + forward + backward, median of n "
        "(ms); peak extra memory = peak resident size during the steps − resident size before them (MiB).",
        "pfc columns": "| C | r | sampled centers | n | step | speed-up vs. r = 1 | peak extra memory |",
    },
    "ko": {
        "heads caption": "B = {B}, D = {D}, s = {s:g}, m = {m} 라디안; 순전파 + 역전파, n회 반복의 중앙값(ms).",
        "pfc caption": "Partial FC(ArcFace): B = {B}, D = {D}; 스텝 = 샘플링 + 순전파 + 역전파, n회의 중앙값(ms); "
        "추가 최대 메모리 = 스텝 동안의 최대 상주 메모리 − 스텝 직전의 상주 메모리(MiB).",
        "pfc columns": "| C | r | 뽑은 클래스 중심 | n | 스텝 | r = 1 대비 배수 | 추가 최대 메모리 |",
    },
}


def markdown(result, lang):
    t = TEXT[lang]
    lines = [
        header(result["machine"], result["date"], lang),
        "",
        t["heads caption"].format(B=B, D=D_HEADS, s=S, m=M),
        "",
        "| C | n | NormFace | ArcFace | PML ArcFaceLoss | ArcFace / NormFace | ArcFace / PML |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["heads"]:
        lines.append(
            f"| {r['C']:,} | {r['repetitions']} | {r['normface_ms']:.1f} | {r['arcface_ms']:.1f} | "
            f"{r['pml_ms']:.1f} | {r['arcface_over_normface']:.3f} | {r['arcface_over_pml']:.3f} |"
        )
    lines += ["", t["pfc caption"].format(B=B, D=D_PFC), "", t["pfc columns"], "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["partial_fc"]:
        lines.append(
            f"| {r['C']:,} | {r['r']} | {r['num_sample']:,} | {r['repetitions']} | {r['step_ms']:.1f} | "
            f"{r['speedup_vs_full']:.2f}× | {r['peak_extra_mib']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_markdown(result, out):
    """results.ko.md and results.en.md, the same numbers, from the result dictionary."""
    for lang in LANGS:
        (out / f"results.{lang}.md").write_text(markdown(result, lang))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, few repetitions, writes nothing")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for results.json/.md (default: this folder; --quick writes only when --out is given)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, see the docstring)")
    parser.add_argument("--render", action="store_true", help="only rewrite results.{ko,en}.md from results.json")
    parser.add_argument("--pfc-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.render:
        out = args.out or HERE
        write_markdown(json.loads((out / "results.json").read_text()), out)
        return
    if args.pfc_child:
        print(json.dumps(pfc_one(*json.loads(args.pfc_child))))
        return

    global margins
    margins = load("pytorch/margins.py")
    if args.quick:
        head_counts, head_reps, pfc_counts, pfc_reps, warmup = (
            [1_000, 10_000],
            {1_000: 5, 10_000: 5},
            [10_000],
            {10_000: 3},
            1,
        )
    else:
        head_counts = [1_000, 10_000, 100_000]
        head_reps = {1_000: 31, 10_000: 15, 100_000: 7}
        pfc_counts, pfc_reps, warmup = [100_000, 1_000_000], {100_000: 7, 1_000_000: 5}, 2
    rates = [1.0, 0.3, 0.1]

    result = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(
            torch.get_num_threads(), pytorch_metric_learning=__import__("pytorch_metric_learning").__version__
        ),
        "settings": {
            "B": B,
            "D_heads": D_HEADS,
            "D_partial_fc": D_PFC,
            "s": S,
            "m_rad": M,
            "warmup": warmup,
            "statistic": "median",
            "memory": "VmHWM after the steps minus VmRSS before them (peak reset via clear_refs), fresh process",
        },
    }
    start = time.perf_counter()
    result["heads"] = bench_heads(head_counts, head_reps, warmup)
    result["partial_fc"] = bench_partial_fc(pfc_counts, rates, pfc_reps, warmup)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    result["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    at_100k = next((r for r in result["heads"] if r["C"] == 100_000), None)
    pfc_1m = next((r for r in result["partial_fc"] if r["C"] == 1_000_000 and r["r"] == 0.1), None)
    result["targets"] = {
        "arcface_over_normface_at_100k <= 1.10": at_100k and at_100k["arcface_over_normface"] <= 1.10,
        "arcface_over_pml_at_100k <= 1.0": at_100k and at_100k["arcface_over_pml"] <= 1.0,
        "partial_fc_r0.1_speedup_at_1M >= 5": pfc_1m and pfc_1m["speedup_vs_full"] >= 5,
    }
    print(json.dumps(result["targets"], indent=1), f"\nwall time {result['wall_s']} s")

    out = args.out if args.out is not None else (None if args.quick else HERE)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        write_markdown(result, out)
        print(f"wrote results.json and results.{{ko,en}}.md to {out}")


if __name__ == "__main__":
    main()
