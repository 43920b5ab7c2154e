"""Run many configs: from the cache when nothing they depend on changed, else in worker processes.

Every run is cached in .cache/experiments/ as <run name>-<key>.json, the key a content hash of its config, the
data fingerprint, the library versions and the bytes of every file its result depends on. Up to WORKERS runs
train at once, each in its own process with one torch thread (a run's numbers do not depend on which worker
runs it, or when). Keras runs go to a child process with KERAS_BACKEND=torch (Keras fixes its backend per
process). A corrupt cache entry is retrained, never used.
"""

import concurrent.futures
import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SNIPPETS = ROOT / "snippets"
CACHE = ROOT / ".cache" / "experiments"
WORKERS = int(os.environ.get("EXPERIMENT_WORKERS", "2"))
CODE = ["train.py", "heads.py", "architectures.py", "metrics.py"]
DATA_CODE = {"digits": "digits.py", "glyphs": "glyphs.py"}


def code_files(config: dict) -> list:
    from heads import SNIPPET_FILES

    files = [HERE / f for f in CODE + [DATA_CODE[config["study"]]]]
    files += [SNIPPETS / "experiments" / "verification.py"] + [SNIPPETS / f for f in SNIPPET_FILES[config["method"]]]
    return files + ([HERE / "keras_run.py"] if config["method"] == "keras-arcface" else [])


def versions(config: dict) -> str:
    names = ["torch", "numpy"] + (["keras"] if config["method"] == "keras-arcface" else [])
    return " ".join(f"{n} {importlib.metadata.version(n)}" for n in names)


def cache_key(config: dict, fingerprint: str) -> str:
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode() + fingerprint.encode() + versions(config).encode())
    for path in code_files(config):
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


def read_cached(path: Path):
    """The cached results, or None when the entry is missing or unreadable (then the run is retrained)."""
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
        if not isinstance(results, dict) or "metrics" not in results:
            raise ValueError("no metrics")
        return results
    except (ValueError, UnicodeDecodeError) as error:
        print(f"cache: {path.name} is unreadable ({error}); training it again", flush=True)
        return None


# --- workers ----------------------------------------------------------------------------------------------
_DATA = {}


def _init_worker(study: str, params: dict):
    import torch

    torch.set_num_threads(1)
    _DATA["data"] = load_data(study, params, quiet=True)


def load_data(study: str, params: dict | None = None, quiet: bool = False) -> dict:
    if study == "digits":
        import digits

        return digits.load_splits()
    import glyphs

    return glyphs.load_glyphs(params, progress=(lambda *_: None) if quiet else print)


def _train_one(config: dict, out: str) -> float:
    import train

    start = time.perf_counter()
    results = train.train_run(config, _DATA["data"])
    _write(Path(out), results)
    return time.perf_counter() - start


def _pool_variant(variant: int):
    import train

    return train.pool_variant(_DATA["data"], variant)


def _train_keras(jobs: list) -> float:
    start = time.perf_counter()
    env = dict(os.environ, KERAS_BACKEND="torch", PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3")
    child = subprocess.run(
        [sys.executable, str(HERE / "keras_run.py")],
        input=json.dumps(jobs),
        text=True,
        env=env,
        cwd=HERE,
        capture_output=True,
    )
    if child.returncode:
        raise RuntimeError(f"the Keras runs failed (exit status {child.returncode}):\n{child.stderr[-3000:]}")
    return time.perf_counter() - start


def _make_pool(pool, params):
    import glyphs
    import train

    data = glyphs.load_glyphs(params, progress=lambda *_: None)
    if train.cached_pool(data) is not None:
        return
    start = time.perf_counter()
    train.save_pool(data, list(pool.map(_pool_variant, range(train.POOL_VARIANTS))))
    print(f"glyphs: {train.POOL_VARIANTS} distortions of every training image in {time.perf_counter() - start:.0f} s")


def _write(path: Path, results: dict):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results))
    tmp.replace(path)  # a run killed mid-write leaves no half-written entry


def run_all(configs: list, names: list, study: str, fingerprint: str, params=None, cache=None, fresh=False):
    """Results of every config (keyed by its name), from the cache or trained now, with a progress line per
    finished run and an estimate of the time left."""
    cache = Path(cache or CACHE)
    cache.mkdir(parents=True, exist_ok=True)
    paths = {n: cache / f"{n}-{cache_key(c, fingerprint)}.json" for n, c in zip(names, configs, strict=True)}
    results = {} if fresh else {n: r for n in names if (r := read_cached(paths[n])) is not None}
    todo = [(n, c) for n, c in zip(names, configs, strict=True) if n not in results]
    print(f"{study}: {len(configs)} runs, {len(results)} cached, {len(todo)} to train ({WORKERS} workers)", flush=True)
    if not todo:
        return results
    keras = [{"config": c, "out": str(paths[n]), "name": n} for n, c in todo if c["method"] == "keras-arcface"]
    tasks = [(n, c) for n, c in todo if c["method"] != "keras-arcface"]
    start, done, spent = time.perf_counter(), 0, []
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        WORKERS, mp_context=context, initializer=_init_worker, initargs=(study, params)
    ) as pool:
        if study == "glyphs":  # the training distortions first, one variant per task (train.training_pool)
            _make_pool(pool, params)
        futures = {}
        if keras:  # first: one child process trains every Keras run, while the other worker goes on
            futures[pool.submit(_train_keras, keras)] = (f"{len(keras)} keras-arcface runs", len(keras))
        for name, config in tasks:
            futures[pool.submit(_train_one, config, str(paths[name]))] = (name, 1)
        total = len(todo)
        for future in concurrent.futures.as_completed(futures):
            label, count = futures[future]
            seconds = future.result()
            done += count
            spent += [seconds / count] * count
            left = (total - done) * (sum(spent) / len(spent)) / WORKERS
            elapsed = time.perf_counter() - start
            print(
                f"[{done:3d}/{total}] {label:34s} {seconds:6.1f} s  elapsed {elapsed:4.0f} s, about {left:4.0f} s left",
                flush=True,
            )
    for name, _ in todo:
        results[name] = read_cached(paths[name])
        if results[name] is None:
            raise RuntimeError(f"run {name} finished but wrote no readable results")
    return results
