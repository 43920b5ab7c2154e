"""The digits study: few classes (6 training digits, 4 unseen), every method, 3 seeds; the figures it draws.

`make figures` runs it through make_figures.py. Publishes docs/assets/results/runs/<run>.json, summary.{ko,en}.txt
(a markdown table; .txt because every file under docs/assets/ is copied into both sites and a .md file there
would become a page) and summary.json, and the digits figures.
"""

import json
from pathlib import Path

import digits
import numpy as np
import plots
import runner
import train
from heads import DEFAULT_MARGINS, MARGIN_KEY, METHODS
from metrics import seed_stats

DIGIT_METHODS = METHODS
# The one set of hyperparameters every method shares (see the Experiments page for why these values).
SHARED = {"s": 16.0, "lr": 1e-3, "epochs": 20, "embedding_size": 32}
K = {"closed": 6, "open": 10}  # a batch holds every training class x K images: 10 x 6 = 6 x 10 = 60 images
SEEDS = (0, 1, 2)
TOY_METHODS = ("softmax", "normface", "cosface", "arcface")  # the 2-D embedding runs (embeddings-2d.svg)
UNSEEN_PANELS = ("softmax", "normface", "arcface", "triplet")  # embeddings-unseen.svg, next to the pixels


# --- configs ---- and the cache -------------------------------------------------------------------------------
def make_config(method, split, seed, s=None, m=None, lr=None, epochs=None, embedding_size=None) -> dict:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    hp = dict(DEFAULT_MARGINS.get(method, {}))
    if m is not None:
        key = None if method in ("softmax", "normface") else MARGIN_KEY.get(method, "m")
        if key is None:
            raise ValueError(f"{method} has no margin; drop --m")
        if method == "sphereface" and m != int(m):
            raise ValueError(f"SphereFace's margin m must be an integer, got {m}")
        hp[key] = int(m) if method == "sphereface" else float(m)
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return {
        "study": "digits",
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


def run_digits(configs: list, fresh: bool = False) -> tuple:
    data = digits.load_splits()
    names = [run_name(c) for c in configs]
    return data, runner.run_all(configs, names, "digits", digits.split_fingerprint(data), fresh=fresh)


# --- summary ---------------------------------------------------------------------------------------------
COLUMNS = ("closed_set_accuracy", "tar_at_far_1e-2", "tar_at_far_1e-3", "eer", "recall_at_1")
# One language-neutral table for both pages (they explain ACC = closed-set accuracy and the two baselines).
HEADERS = ("", "ACC", "TAR@FAR=10⁻²", "TAR@FAR=10⁻³", "EER ↓", "Recall@1")
HEADERS_KO = ("", "정확도", "TAR@FAR=10⁻²", "TAR@FAR=10⁻³", "EER ↓", "Recall@1")


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
            summary[method] = {c: seed_stats(v) for c, v in values.items() if v}
    for name, runs in (baselines or {}).items():
        summary[name] = {c: seed_stats([r[c] for r in runs]) for c in COLUMNS if c in runs[0]}
    return summary


def markdown_table(summary: dict, lang: str = "en") -> str:
    trained = [m for m in summary if m in DIGIT_METHODS]
    best = {}
    for column in COLUMNS:
        means = [summary[m][column]["mean"] for m in trained if column in summary[m]]
        best[column] = (min if column == "eer" else max)(means)
    headers = HEADERS_KO if lang == "ko" else HEADERS
    lines = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for method, row in summary.items():
        name = plots.label(method, lang)
        name = name if method in DIGIT_METHODS else f"*{name}*"  # baselines in italics
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


# --- publishing -------------------------------------------------------------------------------------------
def publish(results: dict, data: dict, assets: Path):
    figures, out = assets / "figures", assets / "results"
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for stale in (out / "runs").glob("*.json"):  # runs no longer in the plan must not linger
        if stale.stem not in results:
            stale.unlink()
    for name, run in results.items():
        (out / "runs" / f"{name}.json").write_text(json.dumps(run, indent=1, sort_keys=True) + "\n")
    baselines = {
        "pixels": [train.digits_baseline(data, "pixels")],  # no randomness: one value
        "untrained": [train.digits_baseline(data, "untrained", seed, SHARED["embedding_size"]) for seed in SEEDS],
    }
    summary = summarise(results, DIGIT_METHODS, SEEDS, baselines)
    (out / "summary.json").write_text(
        json.dumps(
            {"shared": SHARED, "k": K, "seeds": SEEDS, "margins": DEFAULT_MARGINS, "summary": summary},
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    for lang in ("ko", "en"):  # one table per language, the same numbers (the pages include theirs)
        (out / f"summary.{lang}.txt").write_text(markdown_table(summary, lang))
    (out / "summary.txt").unlink(missing_ok=True)  # the single-language table of earlier versions

    def runs(methods, split, seeds=SEEDS):
        return {m: [results[f"{m}-{split}-seed{s}"] for s in seeds] for m in methods}

    def loss_curves(path):
        plots.loss_curves(runs(DIGIT_METHODS, "closed"), path)

    def roc_unseen(path):
        roc = {m: [r["metrics"]["roc_tar"] for r in rs] for m, rs in runs(DIGIT_METHODS, "open").items()}
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


def plan(methods=DIGIT_METHODS, seeds=SEEDS, **overrides) -> list:
    configs = [
        make_config(m, split, seed, **overrides) for m in methods for split in ("closed", "open") for seed in seeds
    ]
    if not overrides and tuple(methods) == DIGIT_METHODS:
        configs += [make_config(m, "open", 0, embedding_size=2) for m in TOY_METHODS]
    return configs
