"""Every figure of the guide, drawn from the margin snippets (analytic figures) or from run results (the rest).

Figures are SVG, language-neutral (symbols and method names only: captions live on the pages), byte-identical on
a rerun (fixed `svg.hashsalt`, no date metadata, input data rounded in the results JSON), on a transparent
background with mid-gray text that reads on white and on the light card the site puts behind figures in dark mode.
"""

import math
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from metrics import DISTANCE_BINS, FAR_GRID, pca_2d  # noqa: E402
from snippet_loader import load_snippet  # noqa: E402

INK = "#4d4d4d"  # text, ticks and spines: readable on white and on the light card of the dark theme
GRID = "#c8c8c8"
plt.rcParams.update(
    {
        "svg.hashsalt": "metric-learning-guide",
        "svg.fonttype": "path",
        "font.size": 9,
        "text.color": INK,
        "axes.labelcolor": INK,
        "axes.edgecolor": INK,
        "axes.titlecolor": INK,
        "xtick.color": INK,
        "ytick.color": INK,
        "axes.grid": True,
        "grid.color": GRID,
        "grid.linewidth": 0.5,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "figure.facecolor": "none",
        "axes.facecolor": "none",
        "savefig.facecolor": "none",
    }
)

LABELS = {
    "softmax": "softmax",
    "normface": "NormFace",
    "sphereface": "SphereFace",
    "cosface": "CosFace",
    "arcface": "ArcFace",
    "combined": "combined",
    "adaface": "AdaFace",
    "curricularface": "CurricularFace",
    "triplet": "triplet",
    "keras-arcface": "ArcFace (Keras)",
    "subcenter": "sub-center ArcFace",
    "pixels": "raw pixels",
    "untrained": "untrained MLP",
    "glyph-pixels": "raw pixels",
    "glyph-untrained": "untrained CNN",
}
# The Korean page's tables name the methods the way its prose does (figures stay language-neutral: LABELS).
LABELS_KO = {
    **LABELS,
    "combined": "결합 마진",
    "triplet": "트리플릿",
    "subcenter": "서브센터 ArcFace",
    "pixels": "원시 픽셀",
    "untrained": "학습 전 MLP",
    "glyph-pixels": "원시 픽셀",
    "glyph-untrained": "학습 전 CNN",
}


def label(name: str, lang: str = "en") -> str:
    """A method's name in a table of the given language ("ko" or "en")."""
    if lang not in ("ko", "en"):
        raise ValueError(f"unknown language {lang!r}: choose ko or en")
    return (LABELS_KO if lang == "ko" else LABELS)[name]


COLORS = {
    "softmax": "#7f7f7f",
    "normface": "#17becf",
    "sphereface": "#9467bd",
    "cosface": "#2ca02c",
    "arcface": "#d62728",
    "combined": "#ff7f0e",
    "adaface": "#8c564b",
    "curricularface": "#e377c2",
    "triplet": "#1f77b4",
    "keras-arcface": "#d62728",
    "subcenter": "#bcbd22",
    "pixels": "#4d4d4d",
    "untrained": "#b0b0b0",
    "glyph-pixels": "#4d4d4d",
    "glyph-untrained": "#b0b0b0",
}
STYLES = {
    "keras-arcface": (0, (4, 2)),
    "pixels": (0, (1, 1.5)),
    "untrained": (0, (1, 1.5)),
    "glyph-pixels": (0, (1, 1.5)),
    "glyph-untrained": (0, (1, 1.5)),
}
DIGIT_COLORS = plt.get_cmap("tab10").colors


def save(fig, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None}, transparent=True, bbox_inches="tight")
    plt.close(fig)


# --- analytic figures (the margin functions of snippets/pytorch/margins.py) --------------------------------------
def margin_functions():
    """name -> f(cosine [N, 2] float64, labels [N]) giving unscaled (s = 1) logits, from the snippet file."""
    margins = load_snippet("pytorch/margins.py")
    return {
        "normface": lambda c, y: margins.normface_logits(c, y, s=1.0),
        "sphereface": lambda c, y: margins.sphereface_logits(c, y, s=1.0, m=4),
        "cosface": lambda c, y: margins.cosface_logits(c, y, s=1.0, m=0.35),
        "arcface": lambda c, y: margins.arcface_logits(c, y, s=1.0, m=0.5),
        "combined": lambda c, y: margins.combined_margin_logits(c, y, s=1.0, m1=1.0, m2=0.3, m3=0.2),
    }


CURVE_LABELS = {
    "normface": "softmax / NormFace: cos θ",
    "sphereface": "SphereFace (m = 4)",
    "cosface": "CosFace (m = 0.35)",
    "arcface": "ArcFace (m = 0.5)",
    "combined": "combined (1, 0.3, 0.2)",
}


def target_logits(path: Path):
    """Target logit (s = 1) against the target angle θ in degrees, 0..180."""
    degrees = np.linspace(0.0, 180.0, 721)
    cosine = torch.tensor(np.stack([np.cos(np.radians(degrees)), np.zeros_like(degrees)], axis=1))
    labels = torch.zeros(len(degrees), dtype=torch.long)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, fn in margin_functions().items():
        target = fn(cosine, labels)[:, 0].numpy()
        ax.plot(degrees, target, color=COLORS[name], lw=1.6, label=CURVE_LABELS[name])
    ax.axvline(180 - math.degrees(0.5), color=GRID, lw=0.8, ls="--")
    ax.text(180 - math.degrees(0.5) - 2, 0.85, "θ = π − 0.5", ha="right", fontsize=8)
    ax.set(xlim=(0, 180), ylim=(-2.0, 1.05), xticks=range(0, 181, 30), xlabel="θ (°)", ylabel="target logit / s")
    ax.legend(loc="lower left", fontsize=8)
    save(fig, path)


def decision_boundaries(path: Path):
    """Binary case (class 1 vs class 2): where each class wins in the (θ1, θ2) plane, margins left white."""
    degrees = np.linspace(0.0, 180.0, 241)
    t1, t2 = np.meshgrid(degrees, degrees)
    cosine = torch.tensor(np.stack([np.cos(np.radians(t1.ravel())), np.cos(np.radians(t2.ravel()))], axis=1))
    fns = margin_functions()
    fig, axes = plt.subplots(1, 4, figsize=(11.0, 3.1), sharey=True)
    for ax, name in zip(axes, ("normface", "sphereface", "cosface", "arcface"), strict=True):
        fn = fns[name]
        z1 = fn(cosine, torch.zeros(len(cosine), dtype=torch.long)).numpy()  # labeled class 1
        z2 = fn(cosine, torch.ones(len(cosine), dtype=torch.long)).numpy()  # labeled class 2
        win1 = (z1[:, 0] - z1[:, 1]).reshape(t1.shape)  # > 0: class 1 wins even with its margin
        win2 = (z2[:, 1] - z2[:, 0]).reshape(t1.shape)
        ax.contourf(t1, t2, win1, levels=[0, np.inf], colors=[DIGIT_COLORS[0]], alpha=0.35)
        ax.contourf(t1, t2, win2, levels=[0, np.inf], colors=[DIGIT_COLORS[1]], alpha=0.35)
        ax.contour(t1, t2, win1, levels=[0], colors=[DIGIT_COLORS[0]], linewidths=1.4)
        ax.contour(t1, t2, win2, levels=[0], colors=[DIGIT_COLORS[1]], linewidths=1.4)
        ax.text(22, 160, "1", color=DIGIT_COLORS[0], fontsize=14, ha="center", va="center")
        ax.text(160, 22, "2", color=DIGIT_COLORS[1], fontsize=14, ha="center", va="center")
        ax.set(
            title=CURVE_LABELS[name].split(":")[0].replace("softmax / ", ""),
            xlim=(0, 180),
            ylim=(0, 180),
            xticks=range(0, 181, 45),
            yticks=range(0, 181, 45),
            xlabel="θ₁ (°)",
            aspect="equal",
        )
        ax.grid(False)
    axes[0].set_ylabel("θ₂ (°)")
    save(fig, path)


# --- figures from run results ----------------------------------------------------------------------------------
def loss_curves(runs_by_method: dict, path: Path):
    """Training loss and held-out accuracy per epoch, mean over seeds (closed-set runs)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11.0, 3.8))
    for method, runs in runs_by_method.items():
        loss = np.mean([r["curves"]["train_loss"] for r in runs], axis=0)
        acc = np.mean([r["curves"]["held_out_accuracy"] for r in runs], axis=0)
        epochs = np.arange(1, len(loss) + 1)
        style = dict(color=COLORS[method], ls=STYLES.get(method, "-"), lw=1.4, label=LABELS[method])
        ax_loss.plot(epochs, np.maximum(loss, 1e-4), **style)
        ax_acc.plot(epochs, acc, **style)
    ax_loss.set(yscale="log", xlabel="epoch", ylabel="train loss", ylim=(1e-4, None))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_acc.set(xlabel="epoch", ylabel="held-out accuracy", ylim=(0.85, 1.0))
    ax_acc.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    save(fig, path)


def embeddings_2d(toy_runs: dict, path: Path):
    """2-D features on the unit circle (held-out images of the seen classes) and the class-center directions."""
    fig, axes = plt.subplots(1, len(toy_runs), figsize=(2.9 * len(toy_runs), 3.1))
    circle = np.linspace(0, 2 * np.pi, 361)
    for ax, (method, run) in zip(axes, toy_runs.items(), strict=True):
        toy = run["toy2d"]
        angles, labels = np.array(toy["angles"]), np.array(toy["labels"])
        ax.plot(np.cos(circle), np.sin(circle), color=GRID, lw=0.8)
        for c, a in zip(toy["classes"], toy["class_angles"], strict=True):
            ax.plot([0, 1.3 * np.cos(a)], [0, 1.3 * np.sin(a)], color=DIGIT_COLORS[c], lw=1.0, ls="--")
        radius = 1.0 + 0.025 * labels  # a small per-class offset so overlapping arcs stay visible
        ax.scatter(
            radius * np.cos(angles),
            radius * np.sin(angles),
            s=5,
            c=[DIGIT_COLORS[c] for c in labels],
            alpha=0.7,
            linewidths=0,
        )
        ax.set(title=LABELS[method], xlim=(-1.35, 1.35), ylim=(-1.35, 1.35), aspect="equal", xticks=[], yticks=[])
        ax.grid(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=DIGIT_COLORS[c], label=str(c))
        for c in next(iter(toy_runs.values()))["toy2d"]["classes"]
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), bbox_to_anchor=(0.5, -0.04), fontsize=8)
    save(fig, path)


def embeddings_unseen(panels: dict, path: Path):
    """PCA of the unit embeddings of the unseen digits, one panel per method (name -> (xy, labels))."""
    fig, axes = plt.subplots(1, len(panels), figsize=(2.9 * len(panels), 3.1))
    for ax, (method, (xy, labels)) in zip(axes, panels.items(), strict=True):
        xy, labels = np.asarray(xy), np.asarray(labels)
        ax.scatter(xy[:, 0], xy[:, 1], s=4, c=[DIGIT_COLORS[c] for c in labels], alpha=0.6, linewidths=0)
        ax.set(title=LABELS[method], xticks=[], yticks=[], xlabel="PC1", ylabel="PC2")
        ax.grid(False)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=DIGIT_COLORS[c], label=str(c))
        for c in sorted(set(np.asarray(next(iter(panels.values()))[1]).tolist()))
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), bbox_to_anchor=(0.5, -0.06), fontsize=8)
    save(fig, path)


def roc_unseen(roc_by_method: dict, path: Path):
    """ROC on the unseen classes (mean TAR over seeds at each FAR), log-scale FAR."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(FAR_GRID, FAR_GRID, color=GRID, lw=0.8, ls=":")
    for method, curves in roc_by_method.items():
        ax.plot(
            FAR_GRID,
            np.mean(curves, axis=0),
            color=COLORS[method],
            ls=STYLES.get(method, "-"),
            lw=1.4,
            label=LABELS[method],
        )
    ax.axvline(1e-2, color=GRID, lw=0.8)
    ax.axvline(1e-3, color=GRID, lw=0.8)
    ax.set(xscale="log", xlim=(1e-4, 1), ylim=(0, 1), xlabel="FAR", ylabel="TAR")
    ax.legend(loc="upper left", fontsize=8)
    save(fig, path)


def triplet_distances(run: dict, path: Path):
    """Same-class vs different-class pair distances, before and after training: held-out images of the
    training digits (top) and the unseen digits (bottom)."""
    fig, axes = plt.subplots(2, 2, figsize=(9.0, 5.4), sharex=True)
    epochs = run["config"]["epochs"]
    for row, (group, classes) in zip(axes, (("seen", "y ∈ {0, …, 5}"), ("unseen", "y ∈ {6, 7, 8, 9}")), strict=True):
        for ax, (when, epoch) in zip(row, (("before", 0), ("after", epochs)), strict=True):
            hist = run["distances"][group][when]
            ax.stairs(
                hist["positive"], DISTANCE_BINS, fill=True, alpha=0.45, color=COLORS["cosface"], label=r"$y_i = y_j$"
            )
            ax.stairs(
                hist["negative"], DISTANCE_BINS, fill=True, alpha=0.45, color=COLORS["arcface"], label=r"$y_i \neq y_j$"
            )
            ax.set(title=f"{classes},  epoch {epoch}", xlim=(0, 2))
        row[0].set_ylabel("density")
    for ax in axes[1]:
        ax.set_xlabel(r"$\|f(x_i) - f(x_j)\|_2$")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    save(fig, path)


def pixel_panel(data: dict):
    """The unseen digits' raw pixels, projected like the embeddings (a no-training reference)."""
    unseen = data["unseen"]
    return np.round(pca_2d(data["x"][unseen]), 4), data["y"][unseen]


# --- the glyph study -------------------------------------------------------------------------------------------
def glyph_samples(data: dict, path: Path, syllables=6, per_side=6):
    """A few training syllables, each in `per_side` training faces and `per_side` held-out faces."""
    train = data["train_faces"][np.linspace(0, len(data["train_faces"]) - 1, per_side).astype(int)]
    held = data["held_faces"][np.linspace(0, len(data["held_faces"]) - 1, per_side).astype(int)]
    faces = np.concatenate([train, held])
    fig, axes = plt.subplots(syllables, len(faces), figsize=(0.62 * len(faces), 0.62 * syllables))
    for r in range(syllables):
        for c, face in enumerate(faces):
            ax = axes[r, c]
            ax.imshow(255 - data["images"][face, r], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(c == per_side)  # a rule between training and held-out faces
                spine.set_color(COLORS["arcface"])
    axes[0, per_side // 2].set_title("training typefaces", fontsize=8)
    axes[0, per_side + per_side // 2].set_title("held-out typefaces", fontsize=8)
    save(fig, path)


def glyph_sweeps(sweeps: dict, adacos: float, path: Path):
    """Unseen-syllable TAR@FAR=1e-3 against the margin, the scale and the number of training classes."""
    panels = [
        (study, xlabel, log)
        for study, xlabel, log in (
            ("margin", "m", False),
            ("scale", "s", True),
            ("classes", "training classes C", True),
        )
        if sweeps[study]
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.7 * len(panels), 3.3), squeeze=False)
    axes = axes[0]
    for ax, (study, xlabel, log) in zip(axes, panels, strict=True):
        for method, points in sweeps[study].items():
            x, y = np.array(sorted(points)).T
            ax.plot(x, 100 * y, marker="o", ms=4, color=COLORS[method], lw=1.4, label=LABELS[method])
        ax.set(xlabel=xlabel, xscale="log" if log else "linear")
        if log:  # ticks at the values measured, written plainly (10.3, 32, 64; 6, 50, 200, 1500)
            ticks = sorted({p[0] for points in sweeps[study].values() for p in points})
            ax.set_xticks(ticks, [f"{t:g}" if t >= 20 or float(t).is_integer() else f"{t:.1f}" for t in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=8)
    if sweeps["scale"]:
        ax = axes[[p[0] for p in panels].index("scale")]
        ax.axvline(adacos, color=GRID, lw=0.8, ls="--")
        ax.text(adacos * 1.05, ax.get_ylim()[0], " AdaCos", fontsize=7, va="bottom")
    axes[0].set_ylabel("TAR@FAR=10⁻³ (%)")
    save(fig, path)


def glyph_roc(roc_by_method: dict, path: Path):
    """ROC on unseen syllables in held-out faces (mean TAR over seeds at each FAR)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for method, curves in roc_by_method.items():
        ax.plot(
            FAR_GRID,
            np.mean(curves, axis=0),
            color=COLORS[method],
            ls=STYLES.get(method, "-"),
            lw=1.3,
            label=LABELS[method],
        )
    for far in (1e-3, 1e-2):
        ax.axvline(far, color=GRID, lw=0.8)
    ax.set(xscale="log", xlim=(1e-5, 1), ylim=(0, 1), xlabel="FAR", ylabel="TAR")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    save(fig, path)


def glyph_gallery(data: dict, galleries: dict, path: Path):
    """Rows: a query (an unseen syllable in a held-out face) and each method's nearest neighbors, a green frame
    for the same syllable, red for another."""
    methods = list(galleries)
    queries = galleries[methods[0]]["queries"]
    k = len(galleries[methods[0]]["neighbors"][0])
    fig, axes = plt.subplots(
        len(queries), len(methods) * (k + 1), figsize=(0.5 * len(methods) * (k + 1), 0.56 * len(queries))
    )
    for r, (face, syllable) in enumerate(queries):
        for g, method in enumerate(methods):
            cells = [(face, syllable, None)] + [(f, s, s == syllable) for f, s in galleries[method]["neighbors"][r]]
            for c, (f, s, right) in enumerate(cells):
                ax = axes[r, g * (k + 1) + c]
                ax.imshow(255 - data["images"][f, s], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                ax.set(xticks=[], yticks=[])
                ax.grid(False)
                color = INK if right is None else ("#2ca02c" if right else "#d62728")
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color(color)
                    spine.set_linewidth(0.6 if right is None else 1.6)
            if r == 0:
                axes[0, g * (k + 1) + (k + 1) // 2].set_title(LABELS[method], fontsize=8)
    save(fig, path)


def glyph_embeddings(panels: dict, path: Path):
    """PCA of the unit embeddings of a few unseen syllables in every held-out face, one panel per method."""
    fig, axes = plt.subplots(1, len(panels), figsize=(2.9 * len(panels), 3.1))
    for ax, (method, (xy, labels)) in zip(axes, panels.items(), strict=True):
        xy, labels = np.asarray(xy), np.asarray(labels)
        classes = sorted(set(labels.tolist()))
        colors = [DIGIT_COLORS[classes.index(c) % 10] for c in labels]
        ax.scatter(xy[:, 0], xy[:, 1], s=6, c=colors, alpha=0.75, linewidths=0)
        ax.set(title=LABELS[method], xticks=[], yticks=[], xlabel="PC1", ylabel="PC2")
        ax.grid(False)
    save(fig, path)
