"""The loss pages' analytic figures: each one evaluates a snippet on a grid and draws what it returns.

Four figures, language-neutral (symbols and numbers only; the alt text and captions are on the pages), drawn by
`make figures` through make_figures.py:

- adaface-margin.svg: AdaFace's target logit for low, average and high feature norms, and the margin's angular part
  g_angle = -m·ẑ and additive part g_add = m·(1 + ẑ) against the feature norm (snippets/pytorch/adaface.py).
- curricularface-negatives.svg: a negative logit cos θ_j, and what CurricularFace makes of it, cos θ_j·(t + cos θ_j)
  when it is hard, as t grows (snippets/pytorch/curricularface.py).
- arcface-geometry.svg: two class centers on the unit circle and where each class wins with ArcFace's margin; the
  band between them, where neither does, is m wide in angle (snippets/pytorch/margins.py).
- partial-fc-memory.svg: the class centers one Partial FC step samples, and the memory of a logit matrix on one
  device against C (snippets/pytorch/partial_fc.py).
- subcenter-geometry.svg: two classes with two sub-centers each on the unit circle, where each class wins with the
  margin on its nearest sub-center, and a class's samples: the clean ones gather at the dominant sub-center, a
  mislabeled one settles on the other and is flagged as more than 75° from the dominant one
  (snippets/pytorch/subcenter.py).

- triplet-geometry.svg: an anchor a, its positive p and three negatives in the embedding plane, with the circle of
  radius d(a, p) and the ring out to d(a, p) + m that make a negative hard or semi-hard, and the loss of a triplet
  against d(a, n) (snippets/pytorch/triplet.py).
- metric-learning-chord.svg: two unit vectors a and b at angle θ, the chord d = ‖a - b‖ between them and the arc
  θ, and both against θ from 0 to 180° (snippets/pytorch/triplet.py's pairwise_distances on unit vectors), with the
  page's example: a squared distance of 1.42 is an angle of 73.1°.

Each `*_data()` function returns the numbers a figure draws, so tests/test_loss_figures.py can hold them to float64
formulas written from the papers; each drawing function only plots that data. Style and the deterministic SVG
writer come from plots.py.
"""

import math
from pathlib import Path

import numpy as np
import plots
import torch
from plots import GRID, INK, save
from snippet_loader import load_snippet

plt = plots.plt

# The pages' defaults: AdaFace m = 0.4, h = 0.333; CurricularFace and ArcFace m = 0.5.
ADAFACE = {"m": 0.4, "h": 0.333, "eps": 1e-3, "batch_mean": 20.0, "batch_std": 5.0}
CURRICULAR = {"m": 0.5, "cos_y": 0.5, "t": (0.0, 0.25, 0.5, 0.75, 1.0)}
ARCFACE = {"m": 0.5, "centers_deg": (-40.0, 40.0)}  # W_1 and W_2, 80° apart
# The Partial FC page's memory arithmetic: D = 512, B = 1024, float32 (4 bytes), G = 8 devices, r = 0.1.
PARTIAL_FC = {"D": 512, "B": 1024, "G": 8, "r": 0.1, "bytes": 4, "demo_classes": 48, "demo_r": 0.25}
PARTIAL_FC_DEMO_LABELS = (3, 17, 17, 30, 41, 8)  # the batch's labels in the left panel
MB = 1e6
# Sub-center ArcFace: class 1's sub-centers at -35° (dominant) and 135°, class 2's at 45° and -135°; Q = 2 so that
# the picture stays readable (the paper recommends Q = 3). Class 1's samples: four clean faces near its dominant
# sub-center and one mislabeled face (really a face of another identity) near its other sub-center.
SUBCENTER = {
    "m": 0.5,
    "Q": 2,
    "centers_deg": ((-35.0, 135.0), (45.0, -135.0)),
    "samples_deg": (-52.0, -42.0, -30.0, -18.0, 128.0),
    "max_angle_deg": 75.0,
}
# The grids each figure is evaluated on.
THETAS_DEG = np.linspace(0.0, 180.0, 361)
NORMS = np.linspace(0.0, 40.0, 401)
COS_J = np.linspace(-1.0, 1.0, 401)
PHIS_DEG = np.linspace(-180.0, 180.0, 1441)
CLASSES = np.logspace(4, 7, 61)


# --- AdaFace --------------------------------------------------------------------------------------------------
def adaface_data(thetas_deg=THETAS_DEG, norms=NORMS) -> dict:
    """Target logits (s = 1) against θ at ẑ = -1, 0, +1, and the margin's two parts against the feature norm ‖x‖.

    The curves are the snippet's adaface_logits. The parts g_angle = -m·ẑ and g_add = m·(1 + ẑ), with
    ẑ = clip(h·(‖x‖ - μ)/(σ + eps), -1, 1), are computed here and checked against the snippet: cos(θ + g_angle) - g_add
    must reproduce its target logit at every norm and every θ away from its clamps, or nothing is drawn.
    """
    adaface = load_snippet("pytorch/adaface.py")
    p = ADAFACE
    mu, sigma, m, h, eps = p["batch_mean"], p["batch_std"], p["m"], p["h"], p["eps"]

    def snippet_target(cos_y, norm):
        cos_y, norm = np.broadcast_arrays(np.asarray(cos_y, float), np.asarray(norm, float))
        cosine = torch.tensor(np.stack([cos_y, np.zeros_like(cos_y)], axis=1), dtype=torch.float64)
        labels = torch.zeros(len(cos_y), dtype=torch.long)
        logits = adaface.adaface_logits(cosine, labels, torch.tensor(norm), mu, sigma, s=1.0, m=m, h=h, eps=eps)
        return logits[:, 0].numpy()

    # The norms at which ẑ is -1, 0 and +1 (low, average and high image quality).
    quality = {z: mu + z * (sigma + eps) / h for z in (-1.0, 0.0, 1.0)}
    curves = {z: snippet_target(np.cos(np.radians(thetas_deg)), n) for z, n in quality.items()}
    z_hat = np.clip(h * (norms - mu) / (sigma + eps), -1.0, 1.0)
    g_angle, g_add = -m * z_hat, m * (1.0 + z_hat)
    check = np.radians(np.linspace(30.0, 130.0, 11))  # away from the clamps at θ = 0 and π
    grid_theta, grid_norm = np.meshgrid(check, norms)
    expected = np.cos(grid_theta + (-m * np.clip(h * (grid_norm - mu) / (sigma + eps), -1, 1))) - m * (
        1 + np.clip(h * (grid_norm - mu) / (sigma + eps), -1, 1)
    )
    drawn = snippet_target(np.cos(grid_theta.ravel()), grid_norm.ravel()).reshape(grid_theta.shape)
    if not np.allclose(drawn, expected, atol=1e-9):
        raise RuntimeError("adaface-margin.svg: the margin parts no longer match snippets/pytorch/adaface.py")
    return {
        "thetas_deg": thetas_deg,
        "curves": curves,
        "quality_norms": quality,
        "norms": norms,
        "g_angle": g_angle,
        "g_add": g_add,
    }


def adaface_margin(path: Path):
    d = adaface_data()
    colors = {-1.0: "#1f77b4", 0.0: "#7f7f7f", 1.0: "#d62728"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 3.4), gridspec_kw={"wspace": 0.35})
    left.plot(
        d["thetas_deg"], np.cos(np.radians(d["thetas_deg"])), color=GRID, lw=1.2, ls="--", label=r"$\cos\theta_y$"
    )
    for z, curve in d["curves"].items():
        label = rf"$\hat z = {z:+.0f}$  ($\|\mathbf{{x}}\| = {d['quality_norms'][z]:.1f}$)".replace("+0", "0")
        left.plot(d["thetas_deg"], curve, color=colors[z], lw=1.6, label=label)
    left.set(
        xlim=(0, 180), ylim=(-1.9, 1.05), xticks=range(0, 181, 30), xlabel=r"$\theta_y$ (°)", ylabel="target logit / s"
    )
    left.legend(loc="lower left", fontsize=7.5)
    left.set_title(r"$m = 0.4,\ h = 0.333,\ \mu = 20,\ \sigma = 5$", fontsize=8.5)
    right.plot(d["norms"], d["g_angle"], color="#9467bd", lw=1.8, label=r"$g_\mathrm{angle} = -m\hat z$ (rad)")
    right.plot(d["norms"], d["g_add"], color="#2ca02c", lw=1.8, label=r"$g_\mathrm{add} = m(1 + \hat z)$")
    for z, n in d["quality_norms"].items():
        right.axvline(n, color=colors[z], lw=0.8, ls=":")
    right.axhline(0, color=INK, lw=0.6)
    right.set(xlim=(d["norms"][0], d["norms"][-1]), ylim=(-0.5, 0.9), xlabel=r"$\|\mathbf{x}\|$", ylabel="margin")
    right.legend(loc="upper left", fontsize=7.5)
    save(fig, path)


# --- CurricularFace -------------------------------------------------------------------------------------------
def curricularface_data(cos_j=COS_J) -> dict:
    """The negative logit (s = 1) the snippet returns for a negative cosine cos θ_j, at each t, for one sample whose
    target cosine is cos θ_y: cos θ_j·(t + cos θ_j) where the negative is hard (cos θ_j > cos(θ_y + m)), else cos θ_j.
    """
    curricular = load_snippet("pytorch/curricularface.py")
    p = CURRICULAR
    cosine = torch.tensor(np.stack([np.full_like(cos_j, p["cos_y"]), cos_j], axis=1), dtype=torch.float64)
    labels = torch.zeros(len(cos_j), dtype=torch.long)
    curves = {t: curricular.curricularface_logits(cosine, labels, t, s=1.0, m=p["m"])[:, 1].numpy() for t in p["t"]}
    threshold = math.cos(math.acos(p["cos_y"]) + p["m"])  # cos(θ_y + m): negatives above it are hard
    return {"cos_j": cos_j, "curves": curves, "threshold": threshold}


def curricularface_negatives(path: Path):
    d = curricularface_data()
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    ax.axvspan(d["threshold"], 1.0, color=GRID, alpha=0.35, lw=0)
    ax.plot(d["cos_j"], d["cos_j"], color=INK, lw=1.0, ls="--", label=r"$\cos\theta_j$")
    for i, (t, curve) in enumerate(d["curves"].items()):
        ax.plot(d["cos_j"], curve, color=cmap(0.1 + 0.8 * i / (len(d["curves"]) - 1)), lw=1.5, label=f"$t = {t:g}$")
    ax.axvline(d["threshold"], color=INK, lw=0.8, ls=":")
    ax.text(d["threshold"] + 0.02, -0.95, r"$\cos(\theta_y + m)$", fontsize=8)
    ax.text(0.98, -0.95, r"$\cos\theta_j\,(t + \cos\theta_j)$", fontsize=8, ha="right")
    ax.set(xlim=(-1, 1), ylim=(-1.05, 2.05), xlabel=r"$\cos\theta_j$", ylabel="negative logit / s")
    ax.set_title(r"$\cos\theta_y = 0.5,\ m = 0.5$", fontsize=8.5)
    ax.legend(loc="upper left", fontsize=7.5)
    save(fig, path)


# --- ArcFace --------------------------------------------------------------------------------------------------
def center_arrow(ax, degrees, label, color, label_at, ls="-"):
    """A class center (or sub-center) on the unit circle: an arrow from the origin and its label outside the circle."""
    center = math.radians(degrees)
    ax.annotate(
        "", (math.cos(center), math.sin(center)), (0, 0), arrowprops={"arrowstyle": "->", "color": color, "ls": ls}
    )
    ax.text(label_at * math.cos(center), label_at * math.sin(center), label, color=color, ha="center", va="center")


def arcface_data(phis_deg=PHIS_DEG) -> dict:
    """For points at angle φ on the unit circle, which class wins with the margin: class j wins where the snippet's
    margin logit of j (label j) exceeds the other class's plain logit, s·cos(θ_j + m) > s·cos θ_other."""
    margins = load_snippet("pytorch/margins.py")
    m, centers = ARCFACE["m"], np.radians(ARCFACE["centers_deg"])
    phis = np.radians(phis_deg)
    cosine = torch.tensor(np.cos(phis[:, None] - centers[None, :]), dtype=torch.float64)  # [N, 2]
    wins = {}
    for j in (0, 1):
        labels = torch.full((len(phis),), j, dtype=torch.long)
        logits = margins.arcface_logits(cosine, labels, s=1.0, m=m).numpy()
        wins[j] = logits[:, j] > logits[:, 1 - j]
    return {"phis_deg": phis_deg, "cosine": cosine.numpy(), "wins": wins, "centers_deg": ARCFACE["centers_deg"]}


def arcface_geometry(path: Path):
    d = arcface_data()
    colors = {0: "#1f77b4", 1: "#d62728"}
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    phis = np.radians(d["phis_deg"])
    ax.plot(np.cos(phis), np.sin(phis), color=GRID, lw=1.0)
    for j in (0, 1):
        arc = np.where(d["wins"][j], 1.0, np.nan)  # draw only where class j wins
        ax.plot(arc * np.cos(phis), arc * np.sin(phis), color=colors[j], lw=4, solid_capstyle="butt")
        center_arrow(ax, d["centers_deg"][j], rf"$\mathbf{{W}}_{j + 1}$", colors[j], label_at=1.12)
    band = ~(d["wins"][0] | d["wins"][1])
    for side in (phis > 0, phis < 0):  # the band near the great circle between the centers, and its far twin
        part = band & side & (np.abs(phis) < math.pi / 2)
        if part.any():
            lo, hi = phis[part].min(), phis[part].max()
            wedge = np.linspace(lo, hi, 50)
            ax.fill(np.r_[0, np.cos(wedge), 0], np.r_[0, np.sin(wedge), 0], color=GRID, alpha=0.6, lw=0)
    bisector = math.radians(sum(d["centers_deg"]) / 2)  # the boundary without a margin
    ax.plot([0, math.cos(bisector)], [0, math.sin(bisector)], color=INK, lw=0.8, ls="--")
    middle = band & (np.abs(phis) < math.pi / 2)
    lo, hi = phis[middle].min(), phis[middle].max()
    ax.text(
        1.13 * math.cos((lo + hi) / 2), 1.13 * math.sin((lo + hi) / 2), "$m$", ha="center", va="center", fontsize=11
    )
    ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), aspect="equal", xticks=[], yticks=[])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(
        rf"$m = {ARCFACE['m']},\ \angle(\mathbf{{W}}_1, \mathbf{{W}}_2) = {abs(np.diff(d['centers_deg'])[0]):.0f}°$",
        fontsize=8.5,
    )
    save(fig, path)


# --- Partial FC -----------------------------------------------------------------------------------------------
def num_sampled(num_classes, batch_size, r):
    """The snippet's rule (PartialFCLoss.forward): min(C, max(⌊r·C⌋, B)) centers a step."""
    return np.minimum(num_classes, np.maximum(np.floor(r * np.asarray(num_classes, float)), batch_size))


def partial_fc_data(classes=CLASSES) -> dict:
    """Left: one step's sampled centers from the snippet's sample_class_centers. Right: megabytes on one of G devices
    of the class-center shard W_g (C/G × D), one dense logit matrix B × C/G and one Partial FC logit matrix."""
    partial_fc = load_snippet("pytorch/partial_fc.py")
    p = PARTIAL_FC
    c_demo = p["demo_classes"]
    labels = torch.tensor(PARTIAL_FC_DEMO_LABELS)
    n_demo = int(num_sampled(c_demo, 0, p["demo_r"]))
    index, _ = partial_fc.sample_class_centers(labels, c_demo, n_demo, torch.Generator().manual_seed(0))
    shard = classes / p["G"]
    memory = {
        "W_g": shard * p["D"] * p["bytes"] / MB,
        "dense": p["B"] * shard * p["bytes"] / MB,
        "partial": p["B"] * num_sampled(shard, p["B"], p["r"]) * p["bytes"] / MB,
    }
    return {
        "demo_classes": c_demo,
        "demo_labels": PARTIAL_FC_DEMO_LABELS,
        "demo_sampled": index.numpy(),
        "classes": classes,
        "memory": memory,
    }


def partial_fc_memory(path: Path):
    d = partial_fc_data()
    p = PARTIAL_FC
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.6, 3.4), gridspec_kw={"width_ratios": [1, 1.25], "wspace": 0.3})
    columns = 8
    positives, sampled = set(d["demo_labels"]), set(d["demo_sampled"].tolist())
    for j in range(d["demo_classes"]):
        x, y = j % columns, -(j // columns)
        if j in positives:
            style = {"color": "#d62728", "marker": "o"}
        elif j in sampled:
            style = {"color": "#1f77b4", "marker": "o"}
        else:
            style = {"color": GRID, "marker": "o", "markerfacecolor": "none"}
        left.plot(x, y, ms=9, ls="none", **style)
        left.text(x, y - 0.42, str(j), ha="center", va="top", fontsize=6)
    for label, color, face in (
        (r"$j \in P$", "#d62728", None),
        (r"$j \in S \setminus P$", "#1f77b4", None),
        (r"$j \notin S$", GRID, "none"),
    ):
        left.plot([], [], ls="none", marker="o", color=color, markerfacecolor=face, label=label)
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=7.5)
    left.set_title(f"$C = {d['demo_classes']},\\ r = {p['demo_r']},\\ |S| = {len(sampled)}$", fontsize=8.5)
    left.set(xlim=(-0.6, columns - 0.4), ylim=(-(d["demo_classes"] // columns) + 0.3, 0.6), xticks=[], yticks=[])
    left.grid(False)
    for spine in left.spines.values():
        spine.set_visible(False)
    lines = (
        ("W_g", "#7f7f7f", "-", r"$\mathbf{W}_g$  ($C/G \times D$)"),
        ("dense", "#d62728", "-", r"$B \times C/G$"),
        ("partial", "#1f77b4", "-", rf"$B \times |S|,\ r = {p['r']}$"),
    )
    for key, color, ls, label in lines:
        right.plot(d["classes"], d["memory"][key], color=color, ls=ls, lw=1.6, label=label)
    right.set(xscale="log", yscale="log", xlabel="$C$", ylabel="MB (float32)")
    right.set_title(rf"$G = {p['G']},\ B = {p['B']},\ D = {p['D']}$", fontsize=8.5)
    right.legend(loc="upper left", fontsize=7.5)
    save(fig, path)


# --- Sub-center ArcFace ---------------------------------------------------------------------------------------
def subcenter_cosines(phis_deg) -> torch.Tensor:
    """[N, C·Q] cosines of points at angle φ to every sub-center, class j owning columns j·Q .. j·Q + Q - 1."""
    centers = np.radians(np.ravel(SUBCENTER["centers_deg"]))
    phis = np.radians(np.asarray(phis_deg, float))
    return torch.tensor(np.cos(phis[:, None] - centers[None, :]), dtype=torch.float64)


def subcenter_data(phis_deg=PHIS_DEG) -> dict:
    """Where each class wins on the circle (the snippet's subcenter_arcface_logits: class j's margin logit, label j,
    above the other class's plain logit), and what subcenter_outliers says of class 1's samples."""
    subcenter = load_snippet("pytorch/subcenter.py")
    p = SUBCENTER
    cosine = subcenter_cosines(phis_deg)
    wins = {}
    for j in (0, 1):
        labels = torch.full((cosine.shape[0],), j, dtype=torch.long)
        logits = subcenter.subcenter_arcface_logits(cosine, labels, num_subcenters=p["Q"], s=1.0, m=p["m"]).numpy()
        wins[j] = logits[:, j] > logits[:, 1 - j]
    samples = subcenter_cosines(p["samples_deg"])
    sample_labels = torch.zeros(len(p["samples_deg"]), dtype=torch.long)  # all labeled class 1
    dominant, outliers = subcenter.subcenter_outliers(
        samples, sample_labels, num_subcenters=p["Q"], max_angle=math.radians(p["max_angle_deg"])
    )
    return {
        "phis_deg": phis_deg,
        "wins": wins,
        "dominant": int(dominant[0]),
        "outliers": outliers.numpy(),
    }


def subcenter_geometry(path: Path):
    d, p = subcenter_data(), SUBCENTER
    colors = {0: "#1f77b4", 1: "#d62728"}
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    phis = np.radians(d["phis_deg"])
    ax.plot(np.cos(phis), np.sin(phis), color=GRID, lw=1.0)
    for j in (0, 1):
        arc = np.where(d["wins"][j], 1.0, np.nan)
        ax.plot(arc * np.cos(phis), arc * np.sin(phis), color=colors[j], lw=4, solid_capstyle="butt")
        for q, degrees in enumerate(p["centers_deg"][j]):
            main = j == 1 or q == d["dominant"]  # class 1's other sub-center is drawn dashed
            label = rf"$\mathbf{{W}}_{{{j + 1},{q + 1}}}$"
            center_arrow(ax, degrees, label, colors[j], label_at=1.16, ls="-" if main else "--")
    for degrees, outlier in zip(p["samples_deg"], d["outliers"], strict=True):
        angle = math.radians(degrees)
        ax.plot(
            0.86 * math.cos(angle),
            0.86 * math.sin(angle),
            marker="x" if outlier else "o",
            ms=6,
            color=colors[0],
            mew=1.6,
            ls="none",
        )
    ax.set(xlim=(-1.35, 1.35), ylim=(-1.35, 1.35), aspect="equal", xticks=[], yticks=[])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(rf"$Q = {p['Q']},\ m = {p['m']}$", fontsize=8.5)
    save(fig, path)


# --- Triplet loss ---------------------------------------------------------------------------------------------
# The page's default margin m = 0.2 on plain distances; the anchor at the origin, the positive 0.5 away, and one
# negative of each kind: inside the circle d(a, n) < d(a, p) (hard), in the ring (semi-hard), outside it (easy).
TRIPLET = {"margin": 0.2, "positive": (0.5, 20.0), "negatives": ((0.32, 150.0), (0.6, 250.0), (0.9, 60.0))}
DISTANCES = np.linspace(0.0, 1.2, 241)


def polar(r, degrees):
    return (r * math.cos(math.radians(degrees)), r * math.sin(math.radians(degrees)))


def triplet_data(distances=DISTANCES) -> dict:
    """The snippet's triplet_loss for the three negatives, and for a negative at each distance from the anchor."""
    triplet = load_snippet("pytorch/triplet.py")
    p = TRIPLET

    def loss(negative_xy):
        anchor = torch.zeros(1, 2, dtype=torch.float64)
        positive = torch.tensor([polar(*p["positive"])], dtype=torch.float64)
        negative = torch.tensor([negative_xy], dtype=torch.float64)
        return float(triplet.triplet_loss(anchor, positive, negative, margin=p["margin"]))

    return {
        "d_ap": p["positive"][0],
        "negatives": [(polar(*n), n[0], loss(polar(*n))) for n in p["negatives"]],  # (xy, d(a, n), loss)
        "distances": distances,
        "losses": np.array([loss((float(d), 0.0)) for d in distances]),
    }


def triplet_geometry(path: Path):
    d, p = triplet_data(), TRIPLET
    d_ap, m = d["d_ap"], p["margin"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.6, 3.6), gridspec_kw={"width_ratios": [1, 1.15]})
    ring = plt.Circle((0, 0), d_ap + m, color="#fdd9b5", lw=0)
    disk = plt.Circle((0, 0), d_ap, color="#f4a582", lw=0)
    left.add_patch(ring)
    left.add_patch(disk)
    for radius in (d_ap, d_ap + m):
        left.add_patch(plt.Circle((0, 0), radius, fill=False, color=INK, lw=0.8, ls="--"))
    left.plot([0], [0], "o", color=INK, ms=6)
    left.text(-0.1, -0.1, "$a$", color=INK)
    px, py = polar(*p["positive"])
    left.plot([px], [py], "o", color="#1f77b4", ms=7)
    left.text(px + 0.04, py + 0.03, "$p$", color="#1f77b4")
    for (nx, ny), _, loss in d["negatives"]:
        left.plot([nx], [ny], "s", color="#d62728", ms=6)
        left.text(nx + 0.05, ny - 0.02, rf"$n,\ \ell = {loss:.2f}$", color="#d62728", fontsize=8)
    left.annotate("", (d_ap, 0), (0, 0), arrowprops={"arrowstyle": "<->", "color": INK, "lw": 0.8})
    left.text(d_ap / 2, 0.03, "$d(a, p)$", ha="center", fontsize=8)
    left.text(0.0, -(d_ap + m) - 0.09, "$d(a, p) + m$", ha="center", fontsize=8)
    left.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), aspect="equal", xticks=[], yticks=[])
    left.grid(False)
    for spine in left.spines.values():
        spine.set_visible(False)
    right.axvspan(0, d_ap, color="#f4a582", lw=0)
    right.axvspan(d_ap, d_ap + m, color="#fdd9b5", lw=0)
    right.plot(d["distances"], d["losses"], color=INK, lw=1.6)
    for _, distance, loss in d["negatives"]:
        right.plot([distance], [loss], "s", color="#d62728", ms=5)
    right.set_xticks([0, 0.25, d_ap, d_ap + m, 1.0, 1.2])
    right.set(xlim=(0, 1.2), ylim=(-0.02, d_ap + m + 0.05), xlabel="$d(a, n)$", ylabel=r"$\ell(a, p, n)$")
    right.set_title(rf"$m = {m},\ d(a, p) = {d_ap}$", fontsize=8.5)
    save(fig, path)


# --- Metric learning: the chord and the angle --------------------------------------------------------------------
# The drawn pair, and the metric-learning page's example: a squared-distance threshold of 1.42 is an angle of 73.1°.
CHORD = {"theta_deg": 100.0, "squared_threshold": 1.42}
ANGLES_DEG = np.linspace(0.0, 180.0, 181)


def chord_data(angles_deg=ANGLES_DEG) -> dict:
    """The snippet's pairwise_distances between the unit vector at 0° and unit vectors at each angle."""
    triplet = load_snippet("pytorch/triplet.py")
    angles = np.radians(np.asarray(angles_deg, float))
    points = np.stack([np.cos(np.r_[0.0, angles]), np.sin(np.r_[0.0, angles])], axis=1)
    distances = triplet.pairwise_distances(torch.tensor(points, dtype=torch.float64))[0, 1:].numpy()
    return {"angles_deg": angles_deg, "distances": distances}


def metric_learning_chord(path: Path):
    d, p = chord_data(), CHORD
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.6, 3.6), gridspec_kw={"width_ratios": [1, 1.15]})
    circle = np.linspace(0, 2 * math.pi, 361)
    left.plot(np.cos(circle), np.sin(circle), color=GRID, lw=1.0)
    theta = math.radians(p["theta_deg"])
    a, b = (1.0, 0.0), (math.cos(theta), math.sin(theta))
    for point, label, color in ((a, r"$\mathbf{a}$", "#1f77b4"), (b, r"$\mathbf{b}$", "#d62728")):
        left.annotate("", point, (0, 0), arrowprops={"arrowstyle": "->", "color": color})
        left.text(1.13 * point[0], 1.13 * point[1], label, color=color, ha="center", va="center")
    arc = np.linspace(0, theta, 80)
    left.plot(np.cos(arc), np.sin(arc), color="#2ca02c", lw=3, solid_capstyle="butt")
    left.text(1.16 * math.cos(theta / 2), 1.16 * math.sin(theta / 2), r"$\theta$", color="#2ca02c", ha="center")
    left.plot([a[0], b[0]], [a[1], b[1]], color=INK, lw=1.6)
    left.text(0.42 * (a[0] + b[0]) - 0.08, 0.42 * (a[1] + b[1]) - 0.08, "$d$", fontsize=11)
    left.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), aspect="equal", xticks=[], yticks=[])
    left.grid(False)
    for spine in left.spines.values():
        spine.set_visible(False)
    right.plot(d["angles_deg"], np.radians(d["angles_deg"]), color="#2ca02c", lw=1.6, label=r"$\theta$ (rad)")
    right.plot(d["angles_deg"], d["distances"], color=INK, lw=1.6, label=r"$d = \|\mathbf{a} - \mathbf{b}\|$")
    at = math.degrees(math.acos(1 - p["squared_threshold"] / 2))  # cos θ = 1 - d²/2
    level = math.sqrt(p["squared_threshold"])
    right.plot([0, at, at], [level, level, 0], color="#1f77b4", lw=0.8, ls="--")
    right.set_xticks([0, 45, 90, 135, 180])
    right.set(xlim=(0, 180), ylim=(0, 3.25), xlabel=r"$\theta$ (°)")
    right.legend(loc="upper left", fontsize=7.5)
    right.set_title(rf"$d^2 = {p['squared_threshold']}\ \Leftrightarrow\ \theta = {at:.1f}°$", fontsize=8.5)
    save(fig, path)


FIGURES = {
    "adaface-margin.svg": adaface_margin,
    "curricularface-negatives.svg": curricularface_negatives,
    "arcface-geometry.svg": arcface_geometry,
    "partial-fc-memory.svg": partial_fc_memory,
    "subcenter-geometry.svg": subcenter_geometry,
    "triplet-geometry.svg": triplet_geometry,
    "metric-learning-chord.svg": metric_learning_chord,
}


def draw_all(figures: Path):
    for name, draw in FIGURES.items():
        draw(figures / name)
