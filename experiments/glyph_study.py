"""The glyph study: 1,500 training syllables, verification of 400 unseen syllables in typefaces never seen.

The plan (every run the same CNN, batches, optimizer and schedule; s by the AdaCos rule; paper margins; a margin
warm-up over the first 30 % of the steps for every margin head):
- headline: every method × SEEDS, plus the raw-pixel and untrained-CNN baselines;
- studies, seed 0: the margin of CosFace and ArcFace, the scale of ArcFace, and the number of training classes
  for softmax, NormFace and ArcFace.
The schedule (1,000 steps of 128 images of 24 × 24 pixels, a CNN of 8, 16 and 32 channels) is what fits the
10-minute budget of `make figures` on a two-core machine; the Experiments page says what that costs.
Publishes docs/assets/results/glyphs/{summary.json, table, paired, studies}.{ko,en}.txt and the glyph figures.
"""

import hashlib
import json
import time
from pathlib import Path

import glyphs
import numpy as np
import plots
import runner
import train
from heads import DEFAULT_MARGINS, MARGIN_KEY, METHODS, adacos_scale
from metrics import nearest_neighbors, pca_2d, seed_stats, unit

SEEDS = (0, 1, 2)
SHARED = {
    "steps": 1000,
    "p": 32,
    "k": 4,
    "lr": 4e-3,
    "embedding_size": 128,
    "classes": 1500,
    "margin_warmup": 0.3,
}
MARGIN_SWEEP = {"cosface": (0.2, 0.35, 0.5), "arcface": (0.3, 0.5, 0.7)}  # each includes the paper's default
SCALE_SWEEP = {"methods": ("arcface",), "s": (32, 64)}  # plus the AdaCos value 10.3 of the headline runs
CLASS_SWEEP = {"methods": ("softmax", "normface", "arcface"), "classes": (6, 50, 200, 1500)}
WARMUP_STUDY = {"methods": ("arcface",), "warmup": (0.0,)}  # plus the headline's 0.3: what the warm-up buys
BATCH_IMAGES = SHARED["p"] * SHARED["k"]
# The paired comparisons the page makes: (a, b) -> per-seed a - b on the same batches.
PAIRS = (
    ("arcface", "normface"),
    ("normface", "softmax"),
    ("cosface", "normface"),
    ("arcface", "cosface"),
    ("arcface", "triplet"),
    ("keras-arcface", "arcface"),
)
HEADLINE = "tar_at_far_1e-3"
COLUMNS = ("tar_at_far_1e-3", "tar_at_far_1e-2", "eer", "recall_at_1")


def make_config(method, seed, params, s=None, m=None, classes=None, warmup=None) -> dict:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    classes = classes or SHARED["classes"]
    hp = dict(DEFAULT_MARGINS.get(method, {}))
    if m is not None:
        hp[MARGIN_KEY.get(method, "m")] = float(m)
    p = min(SHARED["p"], classes)  # few classes: every class in each batch, more images of each
    return {
        "study": "glyphs",
        "method": method,
        "seed": int(seed),
        "hp": hp,
        "s": float(s if s is not None else adacos_scale(classes)),
        "lr": SHARED["lr"],
        "steps": SHARED["steps"],
        "margin_warmup": float(SHARED["margin_warmup"] if warmup is None else warmup),
        "p": p,
        "k": BATCH_IMAGES // p,
        "embedding_size": SHARED["embedding_size"],
        "classes": int(classes),
        "data": params,
    }


def plan(params: dict) -> dict:
    """run name -> config, headline first."""
    runs = {f"{m}-seed{seed}": make_config(m, seed, params) for seed in SEEDS for m in METHODS}
    for method, values in MARGIN_SWEEP.items():
        for m in values:
            if m != DEFAULT_MARGINS[method]["m"]:
                runs[f"{method}-m{m}-seed0"] = make_config(method, 0, params, m=m)
    for method in SCALE_SWEEP["methods"]:
        for s in SCALE_SWEEP["s"]:
            runs[f"{method}-s{s:g}-seed0"] = make_config(method, 0, params, s=s)
    for method in CLASS_SWEEP["methods"]:
        for c in CLASS_SWEEP["classes"]:
            if c != SHARED["classes"]:
                runs[f"{method}-c{c}-seed0"] = make_config(method, 0, params, classes=c)
    for method in WARMUP_STUDY["methods"]:
        for w in WARMUP_STUDY["warmup"]:
            runs[f"{method}-warmup{w:g}-seed0"] = make_config(method, 0, params, warmup=w)
    return runs


def run_study(params: dict | None = None, fresh: bool = False) -> tuple:
    start = time.perf_counter()
    data = glyphs.load_glyphs(params)
    print(f"glyphs: data ready in {time.perf_counter() - start:.1f} s ({len(data['faces'])} faces)", flush=True)
    params = data["fingerprint"]["params"]
    runs = plan(params)
    results = runner.run_all(
        list(runs.values()), list(runs), "glyphs", data["fingerprint"]["key"], params=params, fresh=fresh
    )
    return data, results


# --- summaries --------------------------------------------------------------------------------------------
def summarise(results: dict, baselines: dict) -> dict:
    """method -> eval set -> column -> stats over SEEDS; baselines as rows of their own."""
    summary = {}
    for method in METHODS:
        seeds = [results[f"{method}-seed{s}"]["metrics"] for s in SEEDS]
        summary[method] = {where: {c: seed_stats([m[where][c] for m in seeds]) for c in COLUMNS} for where in seeds[0]}
    for name, runs in baselines.items():
        summary[name] = {where: {c: seed_stats([r[where][c] for r in runs]) for c in COLUMNS} for where in runs[0]}
    return summary


def paired(results: dict) -> dict:
    """(a, b) -> per-seed differences of the headline TAR on held-out faces, in points."""
    out = {}
    for a, b in PAIRS:
        d = [
            100
            * (
                results[f"{a}-seed{s}"]["metrics"]["held_out_faces"][HEADLINE]
                - results[f"{b}-seed{s}"]["metrics"]["held_out_faces"][HEADLINE]
            )
            for s in SEEDS
        ]
        out[f"{a} - {b}"] = {**seed_stats(d), "per_seed": [round(x, 2) for x in d]}
    return out


def studies(results: dict) -> dict:
    """The seed-0 sweeps: study -> method -> [(x, headline TAR)]."""

    def tar(name):
        return results[name]["metrics"]["held_out_faces"][HEADLINE]

    out = {"margin": {}, "scale": {}, "classes": {}, "warmup": {}}
    for method, values in MARGIN_SWEEP.items():
        default = DEFAULT_MARGINS[method]["m"]
        out["margin"][method] = [
            [m, tar(f"{method}-seed0" if m == default else f"{method}-m{m}-seed0")] for m in values
        ]
    for method in SCALE_SWEEP["methods"]:
        points = [[adacos_scale(SHARED["classes"]), tar(f"{method}-seed0")]]
        out["scale"][method] = points + [[s, tar(f"{method}-s{s:g}-seed0")] for s in SCALE_SWEEP["s"]]
    for method in CLASS_SWEEP["methods"]:
        out["classes"][method] = [
            [c, tar(f"{method}-seed0" if c == SHARED["classes"] else f"{method}-c{c}-seed0")]
            for c in CLASS_SWEEP["classes"]
        ]
    for method in WARMUP_STUDY["methods"]:
        points = [[w, tar(f"{method}-warmup{w:g}-seed0")] for w in WARMUP_STUDY["warmup"]]
        out["warmup"][method] = sorted(points + [[SHARED["margin_warmup"], tar(f"{method}-seed0")]])
    return out


def pct(x, std=None):
    return f"{100 * x:.1f}" if std is None else f"{100 * x:.1f} ± {100 * std:.1f}"


HEADERS = {
    "en": ("TAR@FAR=10⁻³", "TAR@FAR=10⁻²", "EER ↓", "Recall@1", "TAR@FAR=10⁻³, training typefaces"),
    "ko": ("TAR@FAR=10⁻³", "TAR@FAR=10⁻²", "EER ↓", "Recall@1", "학습 글꼴에서 TAR@FAR=10⁻³"),
}
PAIRED_HEADERS = {"en": ("mean ± std (points)", "per seed"), "ko": ("평균 ± 표준편차(%포인트)", "시드별")}
STUDY_HEADERS = {
    "en": ("sweep", "method", "value → TAR@FAR=10⁻³ (%)"),
    "ko": ("비교 실험", "방법", "값 → TAR@FAR=10⁻³ (%)"),
}
STUDY_NAMES = {
    "en": {"margin": "margin m", "scale": "scale s", "classes": "training classes", "warmup": "margin warm-up"},
    "ko": {"margin": "마진 m", "scale": "스케일 s", "classes": "학습 클래스 수", "warmup": "마진 워밍업"},
}


def name_of(method: str, lang: str) -> str:
    return plots.label(method, lang) if method in METHODS else f"*{plots.label('glyph-' + method, lang)}*"


def markdown_table(summary: dict, lang: str = "en") -> str:
    header = "| | " + " | ".join(HEADERS[lang]) + " |\n" + "|---" + "|---:" * len(HEADERS[lang]) + "|\n"
    best = max(summary[m]["held_out_faces"][HEADLINE]["mean"] for m in METHODS)
    lines = []
    for name, row in summary.items():
        cells = []
        for where, column in [("held_out_faces", c) for c in COLUMNS] + [("training_faces", HEADLINE)]:
            st = row[where][column]
            cells.append(pct(st["mean"], st["std"] if st["n"] > 1 else None))
        if name in METHODS and np.isclose(row["held_out_faces"][HEADLINE]["mean"], best):
            cells[0] = f"**{cells[0]}**"
        lines.append(f"| {name_of(name, lang)} | " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n"


def paired_table(pairs: dict, lang: str = "en") -> str:
    lines = ["| | " + " | ".join(PAIRED_HEADERS[lang]) + " |", "|---|---:|---:|"]
    for name, d in pairs.items():
        a, b = name.split(" - ")
        lines.append(
            f"| {plots.label(a, lang)} − {plots.label(b, lang)} | {d['mean']:+.1f} ± {d['std']:.1f} | "
            + ", ".join(f"{x:+.1f}" for x in d["per_seed"])
            + " |"
        )
    return "\n".join(lines) + "\n"


def studies_table(sweeps: dict, lang: str = "en") -> str:
    lines = ["| " + " | ".join(STUDY_HEADERS[lang]) + " |", "|---|---|---|"]
    for study, by_method in sweeps.items():
        for method, points in by_method.items():
            fmt = "{:g}" if study != "scale" else "{:.1f}"
            cells = ", ".join(f"{fmt.format(x)} → {100 * t:.1f}" for x, t in points)
            lines.append(f"| {STUDY_NAMES[lang][study]} | {plots.label(method, lang)} | {cells} |")
    return "\n".join(lines) + "\n"


# --- publishing -------------------------------------------------------------------------------------------
def publish(data: dict, results: dict, assets: Path) -> dict:
    start = time.perf_counter()
    figures, out = assets / "figures", assets / "results" / "glyphs"
    out.mkdir(parents=True, exist_ok=True)
    baselines = cached_baselines(data)
    summary = summarise(results, baselines)
    pairs, sweeps = paired(results), studies(results)
    record = {
        "shared": SHARED,
        "seeds": SEEDS,
        "margins": DEFAULT_MARGINS,
        "s": adacos_scale(SHARED["classes"]),
        "torch_threads": 1,
        "data": {
            **data["fingerprint"],
            "licenses": {p: glyphs.LICENSES[p] for p in sorted(set(data["packages"]))},
            "dropped": data["dropped"],
            "missing_syllables": data["missing_syllables"],
            "families": sorted(set(data["families"])),
            "held_out_families": list(glyphs.HELD_OUT_FAMILIES),
            "train_faces": len(data["train_faces"]),
            "held_out_faces": len(data["held_faces"]),
        },
        "pairs": {k: results["arcface-seed0"]["metrics"][k]["pairs"] for k in ("held_out_faces", "training_faces")},
        "summary": summary,
        "paired": pairs,
        "studies": sweeps,
        "train_seconds": {n: r["train_seconds"] for n, r in results.items()},
    }
    (out / "summary.json").write_text(json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    for lang in ("ko", "en"):  # one table per language, the same numbers (the pages include theirs)
        (out / f"table.{lang}.txt").write_text(markdown_table(summary, lang))
        (out / f"paired.{lang}.txt").write_text(paired_table(pairs, lang))
        (out / f"studies.{lang}.txt").write_text(studies_table(sweeps, lang))
    for stale in ("table.txt", "paired.txt", "studies.txt"):  # single-language tables of earlier versions
        (out / stale).unlink(missing_ok=True)
    (out / "runs").mkdir(exist_ok=True)
    for stale in (out / "runs").glob("*.json"):
        if stale.stem not in results:
            stale.unlink()
    for name, run in results.items():
        (out / "runs" / f"{name}.json").write_text(json.dumps(run, indent=1, sort_keys=True) + "\n")

    plots.glyph_samples(data, figures / "glyph-samples.svg")
    plots.glyph_sweeps(sweeps, adacos_scale(SHARED["classes"]), figures / "glyph-sweeps.svg")
    roc = {m: [results[f"{m}-seed{s}"]["metrics"]["held_out_faces"]["roc_tar"] for s in SEEDS] for m in METHODS}
    roc["glyph-pixels"] = [baselines["pixels"][0]["held_out_faces"]["roc_tar"]]
    roc["glyph-untrained"] = [b["held_out_faces"]["roc_tar"] for b in baselines["untrained"]]
    plots.glyph_roc(roc, figures / "glyph-roc.svg")
    gallery = {"glyph-pixels": pixel_gallery(data, results["arcface-seed0"]["gallery"]["queries"])}
    for m in ("softmax", "normface", "arcface"):
        gallery[m] = results[f"{m}-seed0"]["gallery"]
    plots.glyph_gallery(data, gallery, figures / "glyph-gallery.svg")
    panels = {"glyph-pixels": pixel_pca(data)}
    for m in ("softmax", "normface", "arcface"):
        panels[m] = (results[f"{m}-seed0"]["unseen_pca"]["xy"], results[f"{m}-seed0"]["unseen_pca"]["labels"])
    plots.glyph_embeddings(panels, figures / "glyph-embeddings.svg")
    print(f"glyphs: baselines, tables and figures in {time.perf_counter() - start:.1f} s", flush=True)
    return record


def cached_baselines(data: dict) -> dict:
    """The raw-pixel and untrained-CNN baselines, from the experiments cache when nothing they depend on changed
    (a warm `make figures` then evaluates nothing); a missing or corrupt entry is computed again."""
    code = [runner.HERE / f for f in ("train.py", "architectures.py", "metrics.py")]
    code.append(runner.SNIPPETS / "experiments" / "verification.py")
    h = hashlib.sha256(json.dumps([data["fingerprint"]["key"], SEEDS, SHARED["embedding_size"]]).encode())
    h.update(runner.versions({"method": "baselines"}).encode())
    for path in code:
        h.update(path.read_bytes())
    path = runner.CACHE / f"glyph-baselines-{h.hexdigest()[:20]}.json"
    cached = runner.read_cached(path)
    if cached is not None:
        return cached["metrics"]
    baselines = {
        "pixels": [train.glyph_baseline(data, "pixels")],  # no randomness: one value
        "untrained": [train.glyph_baseline(data, "untrained", s, SHARED["embedding_size"]) for s in SEEDS],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    runner._write(path, {"metrics": baselines})
    return baselines


def _held_out_grid(data):
    return train.eval_sets(data)["held_out_faces"]


def pixel_gallery(data: dict, queries) -> dict:
    faces, syllables = _held_out_grid(data)
    x = train.eval_images(data, faces, syllables).flatten(1).numpy()
    index = {(int(f), int(s)): i for i, (f, s) in enumerate(zip(faces, syllables, strict=True))}
    q = [index[tuple(pair)] for pair in queries]
    near = nearest_neighbors(x, q, train.GALLERY_NEIGHBORS)
    return {"queries": queries, "neighbors": [[[int(faces[j]), int(syllables[j])] for j in row] for row in near]}


def pixel_pca(data: dict):
    faces, syllables = _held_out_grid(data)
    shown = np.isin(syllables, data["unseen_syl"][: train.PCA_SYLLABLES])
    x = unit(train.eval_images(data, faces, syllables)[shown].flatten(1).numpy())
    return np.round(pca_2d(x), 4).tolist(), syllables[shown].tolist()
