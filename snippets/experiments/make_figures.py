"""Run every experiment of the guide and draw every figure: `make figures` runs this file.

    python snippets/experiments/make_figures.py                  # everything (cached runs are skipped)
    python snippets/experiments/make_figures.py --only arcface --s 16 --m 0.3 --seeds 0
                                                                  # explore: print a table, publish nothing

Full mode writes docs/assets/figures/*.svg, docs/assets/results/runs/<run>.json and the summary table as
markdown, docs/assets/results/summary.txt (+ summary.json), included by both languages' Experiments page. It
ends in .txt, not .md: every file under docs/assets/ is added to both site builds, and a .md file there would
become a page of its own. Every run is cached in .cache/experiments/ under a
content hash of everything that can change its result: its config (hyperparameters, seed), the experiments code
that trains it, the snippet files it uses, the data split and the library versions. Unchanged runs are loaded,
not retrained. The analytic figures (target-logits.svg, decision-boundaries.svg) need no training at all.
"""

import argparse
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import plots  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
import training  # noqa: E402
from training import DEFAULT_MARGINS, METHODS  # noqa: E402

ROOT = HERE.parents[1]
ASSETS = ROOT / "docs" / "assets"
CACHE = ROOT / ".cache" / "experiments"

# The one set of hyperparameters every method shares (see the Experiments page for why these values).
SHARED = {"s": 16.0, "lr": 1e-3, "epochs": 20, "embedding_size": 32}
K = {"closed": 6, "open": 10}  # a batch holds every training class x K images: 10 x 6 = 6 x 10 = 60 images
SEEDS = (0, 1, 2)
TOY_METHODS = ("softmax", "normface", "cosface", "arcface")  # the 2-D embedding runs (embeddings-2d.svg)
UNSEEN_PANELS = ("softmax", "normface", "arcface", "triplet")  # embeddings-unseen.svg, next to the pixels


# --- configs and the cache -------------------------------------------------------------------------------
def make_config(method, split, seed, s=None, m=None, lr=None, epochs=None, embedding_size=None) -> dict:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    hp = dict(DEFAULT_MARGINS.get(method, {}))
    if m is not None:
        key = {"triplet": "margin", "combined": "m2", "softmax": None, "normface": None}.get(method, "m")
        if key is None:
            raise ValueError(f"{method} has no margin; drop --m")
        if method == "sphereface" and m != int(m):
            raise ValueError(f"SphereFace's margin m must be an integer, got {m}")
        hp[key] = int(m) if method == "sphereface" else float(m)
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return {
        "method": method,
        "split": split,
        "seed": int(seed),
        "hp": hp,
        "k": K[split],
        "s": float(pick(s, SHARED["s"])),
        "lr": float(pick(lr, SHARED["lr"])),
        "epochs": int(pick(epochs, SHARED["epochs"])),
        "embedding_size": int(pick(embedding_size, SHARED["embedding_size"])),
    }


def run_name(config: dict) -> str:
    split = "toy2d" if config["embedding_size"] == 2 else config["split"]
    return f"{config['method']}-{split}-seed{config['seed']}"


def code_files(method: str) -> list:
    files = [HERE / "training.py"] + [training.SNIPPETS / f for f in training.SNIPPET_FILES[method]]
    return files + ([HERE / "keras_arcface.py"] if method == "keras-arcface" else [])


def split_fingerprint(data: dict) -> str:
    h = hashlib.sha256(data["x"].tobytes() + data["y"].tobytes() + data["unseen"].tobytes())
    for split in ("closed", "open"):
        for idx in data[split]:
            h.update(idx.tobytes())
    return h.hexdigest()


def cache_key(config: dict, fingerprint: str) -> str:
    versions = f"torch {torch.__version__} numpy {np.__version__} sklearn {sklearn.__version__}"
    if config["method"] == "keras-arcface":
        versions += f" keras {importlib.metadata.version('keras')}"  # importing keras would cost seconds
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode() + fingerprint.encode() + versions.encode())
    for path in code_files(config["method"]):
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


# --- running ---------------------------------------------------------------------------------------------
def run_all(configs: list, data: dict, cache: Path | None = None, fresh: bool = False) -> dict:
    """Results of every config, from the cache or trained now; keyed by run name."""
    cache = cache or CACHE
    cache.mkdir(parents=True, exist_ok=True)
    fingerprint = split_fingerprint(data)
    paths = {run_name(c): cache / f"{run_name(c)}-{cache_key(c, fingerprint)}.json" for c in configs}
    todo = [c for c in configs if fresh or not paths[run_name(c)].is_file()]
    print(f"experiments: {len(configs)} runs, {len(configs) - len(todo)} cached, {len(todo)} to train", flush=True)
    tty = sys.stdout.isatty()
    for i, config in enumerate(c for c in todo if c["method"] != "keras-arcface"):
        label = f"[{i + 1:2d}/{len(todo)}] {run_name(config):28s}"

        def progress(epoch, epochs, loss, acc, label=label):
            if tty or epoch == epochs:
                end = "\n" if epoch == epochs else ""
                print(
                    f"\r{label} epoch {epoch:2d}/{epochs}  loss {loss:.4f}  held-out acc {acc:.3f}", end=end, flush=True
                )

        start = time.perf_counter()
        results = training.train_run(config, data, progress)
        paths[run_name(config)].write_text(json.dumps(results))
        print(f"{' ' * len(label)} done in {time.perf_counter() - start:.1f} s", flush=True)
    keras_todo = [c for c in todo if c["method"] == "keras-arcface"]
    if keras_todo:
        # Keras fixes its backend per process: train in a child process with KERAS_BACKEND=torch.
        print(f"[keras] {len(keras_todo)} Keras ArcFace runs in a subprocess (KERAS_BACKEND=torch)", flush=True)
        start = time.perf_counter()
        jobs = [{"config": c, "out": str(paths[run_name(c)])} for c in keras_todo]
        env = dict(os.environ, KERAS_BACKEND="torch", PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3")
        child = subprocess.run(
            [sys.executable, str(HERE / "keras_arcface.py")],
            input=json.dumps(jobs),
            text=True,
            env=env,
            cwd=HERE,
            stderr=subprocess.PIPE,
        )
        # TensorFlow (imported by keras.utils.set_random_seed when installed) logs start-up notes: drop those.
        noise = ("WARNING: All log messages before absl", "I0000 ")
        print("".join(line for line in child.stderr.splitlines(True) if not line.startswith(noise)), end="")
        if child.returncode:
            raise SystemExit(f"the Keras runs failed (exit status {child.returncode})")
        print(f"[keras] done in {time.perf_counter() - start:.1f} s", flush=True)
    return {name: json.loads(path.read_text()) for name, path in paths.items()}


# --- summary ---------------------------------------------------------------------------------------------
COLUMNS = ("closed_set_accuracy", "tar_at_far_1e-2", "tar_at_far_1e-3", "eer", "recall_at_1")
# One language-neutral table for both pages (they explain ACC = closed-set accuracy and the two baselines).
HEADERS = ("", "ACC", "TAR@FAR=10⁻²", "TAR@FAR=10⁻³", "EER ↓", "Recall@1")


def summarise(results: dict, methods, seeds, baselines=None) -> dict:
    """method -> column -> {"mean", "std", "n"} over seeds (closed-set and open-set runs of each seed)."""
    summary = {}
    for method in methods:
        values = {c: [] for c in COLUMNS}
        for seed in seeds:
            for split in ("closed", "open"):
                run = results.get(f"{method}-{split}-seed{seed}")
                for column, value in (run["metrics"] if run else {}).items():
                    if column in values:
                        values[column].append(value)
        if any(values.values()):
            summary[method] = {
                c: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} for c, v in values.items() if v
            }
    for name, runs in (baselines or {}).items():
        summary[name] = {
            c: {
                "mean": float(np.mean([r[c] for r in runs])),
                "std": float(np.std([r[c] for r in runs])),
                "n": len(runs),
            }
            for c in COLUMNS
            if c in runs[0]
        }
    return summary


def markdown_table(summary: dict) -> str:
    trained = [m for m in summary if m in METHODS]
    best = {}
    for column in COLUMNS:
        means = [summary[m][column]["mean"] for m in trained if column in summary[m]]
        best[column] = (min if column == "eer" else max)(means)
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for method, row in summary.items():
        name = plots.LABELS[method] if method in METHODS else f"*{plots.LABELS[method]}*"  # baselines in italics
        cells = []
        for column in COLUMNS:
            if column not in row:
                cells.append("—")
                continue
            mean, std = row[column]["mean"], row[column]["std"]
            cell = f"{mean:.3f} ± {std:.3f}" if row[column]["n"] > 1 else f"{mean:.3f}"
            bold = len(trained) > 1 and method in trained and np.isclose(mean, best[column], atol=5e-4)
            cells.append(f"**{cell}**" if bold else cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- the whole pipeline ----------------------------------------------------------------------------------
def draw_analytic(figures: Path):
    plots.target_logits(figures / "target-logits.svg")
    plots.decision_boundaries(figures / "decision-boundaries.svg")


def publish(results: dict, data: dict, assets: Path):
    figures, out = assets / "figures", assets / "results"
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for stale in (out / "runs").glob("*.json"):  # runs no longer in the plan must not linger
        if stale.stem not in results:
            stale.unlink()
    for name, run in results.items():
        (out / "runs" / f"{name}.json").write_text(json.dumps(run, indent=1, sort_keys=True) + "\n")
    baselines = {
        "pixels": [training.baseline_metrics(data, "pixels")],  # no randomness: one value
        "untrained": [training.baseline_metrics(data, "untrained", seed, SHARED["embedding_size"]) for seed in SEEDS],
    }
    summary = summarise(results, METHODS, SEEDS, baselines)
    (out / "summary.json").write_text(
        json.dumps(
            {"shared": SHARED, "k": K, "seeds": SEEDS, "margins": DEFAULT_MARGINS, "summary": summary},
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    (out / "summary.txt").write_text(markdown_table(summary))

    def runs(methods, split, seeds=SEEDS):
        return {m: [results[f"{m}-{split}-seed{s}"] for s in seeds] for m in methods}

    def loss_curves(path):
        plots.loss_curves(runs(METHODS, "closed"), path)

    def roc_unseen(path):
        roc = {m: [r["metrics"]["roc_tar"] for r in rs] for m, rs in runs(METHODS, "open").items()}
        plots.roc_unseen({**roc, "pixels": [baselines["pixels"][0]["roc_tar"]]}, path)

    def embeddings_unseen(path):
        panels = {"pixels": plots.pixel_panel(data)}
        for method, (run,) in runs(UNSEEN_PANELS, "open", [0]).items():
            panels[method] = (run["unseen_pca"]["xy"], run["unseen_pca"]["labels"])
        plots.embeddings_unseen(panels, path)

    def embeddings_2d(path):
        plots.embeddings_2d({m: rs[0] for m, rs in runs(TOY_METHODS, "toy2d", [0]).items()}, path)

    def triplet_distances(path):
        plots.triplet_distances(results["triplet-open-seed0"], path)

    for draw in (loss_curves, roc_unseen, embeddings_unseen, embeddings_2d, triplet_distances):
        name = draw.__name__.replace("_", "-") + ".svg"
        try:
            draw(figures / name)
        except KeyError as missing:  # a run was skipped because its snippet file does not exist yet
            print(f"WARNING: {name} not drawn: run {missing} is missing", flush=True)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", help="comma-separated methods to run (explore mode: publishes nothing): " + ", ".join(METHODS)
    )
    parser.add_argument("--seeds", help=f"comma-separated seeds (default {','.join(map(str, SEEDS))})")
    parser.add_argument("--s", type=float, help=f"scale s of every margin head (default {SHARED['s']})")
    parser.add_argument("--m", type=float, help="margin of the method(s) (combined: m2; triplet: its margin)")
    parser.add_argument("--lr", type=float, help=f"Adam learning rate (default {SHARED['lr']})")
    parser.add_argument("--epochs", type=int, help=f"epochs (default {SHARED['epochs']})")
    parser.add_argument("--embedding-size", type=int, help=f"embedding size (default {SHARED['embedding_size']})")
    parser.add_argument("--fresh", action="store_true", help="retrain even if a cached result exists")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    overrides = dict(s=args.s, m=args.m, lr=args.lr, epochs=args.epochs, embedding_size=args.embedding_size)
    explore = args.only is not None or args.seeds is not None or any(v is not None for v in overrides.values())
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(SEEDS)
    methods = args.only.split(",") if args.only else list(METHODS)

    if not explore:
        draw_analytic(ASSETS / "figures")
    data = training.load_splits()
    missing = {m: f for m in methods for f in training.SNIPPET_FILES[m] if not (training.SNIPPETS / f).is_file()}
    for method, file in missing.items():
        print(f"WARNING: skipping {method}: snippets/{file} does not exist yet", flush=True)
    methods = [m for m in methods if m not in missing]
    configs = [
        make_config(m, split, seed, **overrides) for m in methods for split in ("closed", "open") for seed in seeds
    ]
    if not explore:
        configs += [make_config(m, "open", 0, embedding_size=2) for m in TOY_METHODS]
    results = run_all(configs, data, fresh=args.fresh)
    if explore:
        print(markdown_table(summarise(results, methods, seeds)))
    else:
        summary = publish(results, data, ASSETS)
        print(markdown_table(summary))
        print(f"figures: {len(list((ASSETS / 'figures').glob('*.svg')))} SVG files in docs/assets/figures")
    print(f"experiments: finished in {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
