"""Shared by the benchmark scripts and tests/test_model_parallel.py: the machine, the tables' first line, local ranks.

- `machine(threads, **extra)`: what a result file records about the machine (CPU model, cores, torch threads per
  process, versions, GPU if any, 1-minute load average at start); the caller adds the load at the end.
- `header(machine, date, lang)`: the first line of every results table, in Korean ("ko") or English ("en").
- `launch_ranks(argv, world, log_dir, timeout_s)`: starts `world` processes as the ranks of one torch.distributed
  group on 127.0.0.1 (the environment variables torchrun would set), waits at most `timeout_s` seconds for all of
  them, and kills every rank still running at the deadline, always.
"""

import os
import platform
import signal
import socket
import subprocess
import time
from pathlib import Path

import torch

LANGS = ("ko", "en")


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(threads, **extra):
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        **extra,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }


def header(machine, date, lang):
    """'CPU: ... (2 cores, shared; load average 5.1 at start, 6.3 at end), torch ..., 1 thread per process, ...'."""
    versions = f"torch {machine['torch']}"
    if machine.get("pytorch_metric_learning"):
        versions += f", pytorch-metric-learning {machine['pytorch_metric_learning']}"
    load = machine["load_average_1min_at_start"], machine.get("load_average_1min_at_end", "—")
    gpu, threads = machine.get("gpu"), machine["torch_threads"]
    if lang == "ko":
        return (
            f"CPU: {machine['cpu']}(코어 {machine['cores']}개, 공유; 부하 평균 시작 {load[0]}, 끝 {load[1]}), "
            f"{versions}, 프로세스마다 스레드 {threads}개, GPU {gpu or '없음'}; {date}."
        )
    return (
        f"CPU: {machine['cpu']} ({machine['cores']} cores, shared; load average {load[0]} at start, {load[1]} at "
        f"end), {versions}, {threads} thread{'s' if threads != 1 else ''} per process, GPU: {gpu or 'none'}; {date}."
    )


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_ranks(argv, world, log_dir, timeout_s, threads=1):
    """Run `argv` as ranks 0..world-1 on 127.0.0.1; returns (exit codes, stdout texts, stderr texts, seconds).

    An exit code is None for a rank still running at the deadline (a hang). Each rank has its own process group,
    so that killpg also reaches anything it started; its output goes to log_dir/rank<r>.out and rank<r>.err.
    """
    log_dir = Path(log_dir)
    port, procs, start = free_port(), [], time.monotonic()
    try:
        for rank in range(world):
            env = dict(
                os.environ,
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
                RANK=str(rank),
                WORLD_SIZE=str(world),
                LOCAL_RANK=str(rank),
                GLOO_SOCKET_IFNAME="lo",
                OMP_NUM_THREADS=str(threads),
            )
            with open(log_dir / f"rank{rank}.out", "w") as out, open(log_dir / f"rank{rank}.err", "w") as err:
                procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=err, start_new_session=True))
        codes = []
        for proc in procs:
            try:
                codes.append(proc.wait(timeout=max(0.1, start + timeout_s - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    read = [(log_dir / f"rank{r}.{kind}").read_text() for kind in ("out", "err") for r in range(world)]
    return codes, read[:world], read[world:], time.monotonic() - start
