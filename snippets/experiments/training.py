"""One training run of the experiments: data splits, the shared backbone, every method's head, metrics.

Everything a run needs is in its config (a plain dict), so a run is a pure function
`train_run(config) -> results` and can be cached by a hash of the config and of the code it uses.

Data: scikit-learn's bundled digits (1,797 grey 8x8 images, 10 classes; no download). Two fixed splits:
- closed set: stratified 75/25 train/test over all 10 classes (`train_test_split(..., random_state=0)`);
- open set: train on the closed-set training images of digits 0-5; verify on ALL images of the
  unseen digits 6-9 (every pair of them), as a face model is tested on people it never saw.

The losses come from the reader-facing snippets (snippets/pytorch/*.py), loaded by path.
"""

import contextlib
import importlib.util
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.metrics import roc_curve
from sklearn.model_selection import train_test_split
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "snippets"

SEEN_CLASSES = (0, 1, 2, 3, 4, 5)
UNSEEN_CLASSES = (6, 7, 8, 9)
SPLIT_SEED = 0
FAR_GRID = np.logspace(-4, 0, 81)  # where every run samples its ROC, so seeds can be averaged
DISTANCE_BINS = np.linspace(0.0, 2.0, 51)  # Euclidean distance between unit vectors lies in [0, 2]


def load_snippet(relpath: str):
    """Import snippets/<relpath> by path (snippets are standalone files, not a package)."""
    path = SNIPPETS / relpath
    if not path.is_file():
        raise FileNotFoundError(f"experiments need {path.relative_to(ROOT)}, which does not exist yet")
    name = "snippet_" + relpath.removesuffix(".py").replace("/", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- data ------------------------------------------------------------------------------------------------
def load_splits() -> dict:
    """The fixed splits as numpy arrays; pixels scaled to [0, 1]."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=SPLIT_SEED)
    seen_train = train_idx[np.isin(y[train_idx], SEEN_CLASSES)]
    seen_test = test_idx[np.isin(y[test_idx], SEEN_CLASSES)]
    unseen = np.flatnonzero(np.isin(y, UNSEEN_CLASSES))
    return {
        "x": x,
        "y": y,
        # split name -> (training indices, held-out indices used for the per-epoch accuracy)
        "closed": (np.sort(train_idx), np.sort(test_idx)),
        "open": (np.sort(seen_train), np.sort(seen_test)),
        "unseen": unseen,
    }


# --8<-- [start:pk_batches]
def pk_batches(labels: np.ndarray, steps: int, k: int, rng: np.random.Generator) -> list:
    """`steps` class-balanced batches: every class present in `labels`, K random images of each."""
    classes = np.unique(labels)
    by_class = [np.flatnonzero(labels == c) for c in classes]
    return [np.concatenate([rng.choice(idx, size=k, replace=False) for idx in by_class]) for _ in range(steps)]


# --8<-- [end:pk_batches]


# --- model -----------------------------------------------------------------------------------------------
class Backbone(nn.Module):
    """The one backbone every method shares: a 3-layer MLP from 64 pixels to the embedding."""

    def __init__(self, embedding_size: int, hidden: int = 128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(64, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, embedding_size),
        )

    def forward(self, x):
        return self.layers(x)


class MarginHead(nn.Module):
    """Cosine classifier + one of the margin functions of snippets/pytorch/margins.py."""

    def __init__(self, embedding_size, num_classes, logits_fn):
        super().__init__()
        self.classifier = load_snippet("pytorch/margins.py").CosineClassifier(embedding_size, num_classes)
        self.logits_fn = logits_fn

    def forward(self, embeddings, labels):
        return self.logits_fn(self.classifier(embeddings), labels)

    def scores(self, embeddings):
        return self.classifier(embeddings)


class ModuleHead(nn.Module):
    """A head module taking (embeddings, labels) and returning scaled logits: AdaFaceHead, CurricularFaceHead."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, embeddings, labels):
        return self.module(embeddings, labels)

    def scores(self, embeddings):
        weight = self.module.weight
        return F.normalize(embeddings) @ F.normalize(weight, dim=1).T


class SoftmaxHead(nn.Module):
    """Plain softmax: a linear layer with bias on the raw embedding."""

    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.linear = nn.Linear(embedding_size, num_classes)

    def forward(self, embeddings, labels):
        return self.linear(embeddings)

    def scores(self, embeddings):
        return self.linear(embeddings)

    def class_directions(self):
        return self.linear.weight


METHODS = (
    "softmax",
    "normface",
    "sphereface",
    "cosface",
    "arcface",
    "combined",
    "adaface",
    "curricularface",
    "triplet",
    "keras-arcface",
)
# The paper-default margin of each method (no method is tuned; see the Experiments page).
DEFAULT_MARGINS = {
    "sphereface": {"m": 4},
    "cosface": {"m": 0.35},
    "arcface": {"m": 0.5},
    "keras-arcface": {"m": 0.5},
    "combined": {"m1": 1.0, "m2": 0.3, "m3": 0.2},
    "adaface": {"m": 0.4, "h": 0.333, "t_alpha": 0.01},
    "curricularface": {"m": 0.5, "momentum": 0.01},
    "triplet": {"margin": 0.2},
}
SNIPPET_FILES = {
    "softmax": [],
    "normface": ["pytorch/margins.py"],
    "sphereface": ["pytorch/margins.py"],
    "cosface": ["pytorch/margins.py"],
    "arcface": ["pytorch/margins.py"],
    "combined": ["pytorch/margins.py"],
    "adaface": ["pytorch/adaface.py"],
    "curricularface": ["pytorch/curricularface.py"],
    "triplet": ["pytorch/triplet.py"],
    "keras-arcface": ["keras/margins.py"],
}


def make_head(method: str, embedding_size: int, num_classes: int, s: float, hp: dict):
    """The head of one method; None for the triplet loss (it has no classifier)."""
    if method == "softmax":
        return SoftmaxHead(embedding_size, num_classes)
    if method == "triplet":
        return None
    if method == "adaface":
        adaface = load_snippet("pytorch/adaface.py")
        return ModuleHead(
            adaface.AdaFaceHead(embedding_size, num_classes, s=s, m=hp["m"], h=hp["h"], t_alpha=hp["t_alpha"])
        )
    if method == "curricularface":
        curricular = load_snippet("pytorch/curricularface.py")
        return ModuleHead(
            curricular.CurricularFaceHead(embedding_size, num_classes, s=s, m=hp["m"], momentum=hp["momentum"])
        )
    margins = load_snippet("pytorch/margins.py")
    logits_fn = {
        "normface": lambda c, y: margins.normface_logits(c, y, s),
        "sphereface": lambda c, y: margins.sphereface_logits(c, y, s, m=hp["m"]),
        "cosface": lambda c, y: margins.cosface_logits(c, y, s, m=hp["m"]),
        "arcface": lambda c, y: margins.arcface_logits(c, y, s, m=hp["m"]),
        "combined": lambda c, y: margins.combined_margin_logits(c, y, s, hp["m1"], hp["m2"], hp["m3"]),
    }[method]
    return MarginHead(embedding_size, num_classes, logits_fn)


def class_directions(head) -> torch.Tensor:
    """The class-centre vectors W (num_classes x embedding_size) of a head."""
    if isinstance(head, SoftmaxHead):
        return head.linear.weight
    if isinstance(head, MarginHead):
        return head.classifier.weight
    return head.module.weight


# --- metrics ---------------------------------------------------------------------------------------------
def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


# --8<-- [start:verification_metrics]
def verification_metrics(embeddings: np.ndarray, labels: np.ndarray) -> dict:
    """Verification (every pair, cosine score) and Recall@1 on a set of embeddings."""
    e = unit(embeddings.astype(np.float64))
    sim = e @ e.T  # cosine similarity of every pair of images
    i, j = np.triu_indices(len(labels), k=1)  # each unordered pair once, no image with itself
    same = labels[i] == labels[j]  # genuine pairs (same digit) vs impostor pairs
    fpr, tpr, _ = roc_curve(same, sim[i, j])  # FAR = fpr, TAR = tpr, one point per threshold
    fnr = 1.0 - tpr
    k = int(np.argmin(np.abs(fnr - fpr)))  # the threshold where false rejects = false accepts
    np.fill_diagonal(sim, -np.inf)  # Recall@1: an image may not retrieve itself
    nearest = sim.argmax(axis=1)
    return {
        "tar_at_far_1e-2": float(tpr[fpr <= 1e-2].max()),
        "tar_at_far_1e-3": float(tpr[fpr <= 1e-3].max()),
        "eer": float((fpr[k] + fnr[k]) / 2),
        "recall_at_1": float(np.mean(labels[nearest] == labels)),
        # ROC sampled on a fixed log grid of FAR (the largest TAR reached at or below each FAR)
        "roc_tar": [float(tpr[fpr <= far].max()) for far in FAR_GRID],
        "pairs": {"positive": int(same.sum()), "negative": int((~same).sum())},
    }


# --8<-- [end:verification_metrics]


def distance_histograms(embeddings: np.ndarray, labels: np.ndarray) -> dict:
    """Histograms (densities) of positive- and negative-pair distances between unit embeddings."""
    e = unit(embeddings.astype(np.float64))
    i, j = np.triu_indices(len(labels), k=1)
    d = np.sqrt(np.maximum(2.0 - 2.0 * np.sum(e[i] * e[j], axis=1), 0.0))
    same = labels[i] == labels[j]
    pos, _ = np.histogram(d[same], bins=DISTANCE_BINS, density=True)
    neg, _ = np.histogram(d[~same], bins=DISTANCE_BINS, density=True)
    return {"positive": np.round(pos, 5).tolist(), "negative": np.round(neg, 5).tolist()}


def pca_2d(embeddings: np.ndarray) -> np.ndarray:
    """Project unit embeddings onto their first two principal axes (sign fixed for determinism)."""
    e = unit(embeddings.astype(np.float64))
    e = e - e.mean(axis=0)
    _, _, vt = np.linalg.svd(e, full_matrices=False)
    axes = vt[:2] * np.sign(vt[:2, :1] + 1e-300)
    return e @ axes.T


def nearest_centroid_accuracy(train_emb, train_y, test_emb, test_y) -> float:
    """Accuracy of the nearest class mean (cosine) — how a classifier-free embedding is scored."""
    classes = np.unique(train_y)
    centroids = unit(np.stack([unit(train_emb[train_y == c]).mean(axis=0) for c in classes]))
    pred = classes[np.argmax(unit(test_emb) @ centroids.T, axis=1)]
    return float(np.mean(pred == test_y))


# --- one run ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def deterministic(seed: int):
    """Seeded, single-threaded, deterministic torch inside; the caller's global torch state restored after."""
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(strict)


def lr_at(step: int, total: int, lr: float) -> float:
    """Cosine decay from lr to 0 over `total` steps (the same formula as keras CosineDecay)."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / total))


def run_results(config, curves, start, data, y, embed, before, groups) -> dict:
    """The results record of one run (shared by the PyTorch runs and the Keras ArcFace run): curves, closed-set
    accuracy, and for open-set runs the unseen-class verification metrics, distance histograms and a 2-D PCA."""
    split = config["split"]
    results = {"config": config, "curves": curves, "train_seconds": round(time.perf_counter() - start, 2)}
    results["metrics"] = {"closed_set_accuracy": curves["held_out_accuracy"][-1]} if split == "closed" else {}
    if split == "open":
        unseen_emb, unseen_y = embed(data["unseen"]), y[data["unseen"]]
        results["metrics"].update(verification_metrics(unseen_emb, unseen_y))
        results["distances"] = {
            g: {"before": before[g], "after": distance_histograms(embed(idx), y[idx])} for g, idx in groups.items()
        }
        results["unseen_pca"] = {"xy": np.round(pca_2d(unseen_emb), 4).tolist(), "labels": unseen_y.tolist()}
    return results


def train_run(config: dict, data: dict | None = None, progress=None) -> dict:
    """Train one method on one split with one seed; return metrics, curves and figure data."""
    with deterministic(config["seed"]):
        return _train_run(config, data or load_splits(), progress)


def _train_run(config, data, progress):
    method, split, seed = config["method"], config["split"], config["seed"]
    rng = np.random.default_rng(seed)
    x, y = data["x"], data["y"]
    train_idx, held_idx = data[split]
    classes = np.unique(y[train_idx])  # labels are remapped to 0..C-1 inside the run
    remap = np.full(10, -1)
    remap[classes] = np.arange(len(classes))
    xt, yt = torch.from_numpy(x), torch.from_numpy(remap[y].clip(0))

    backbone = Backbone(config["embedding_size"])
    head = make_head(method, config["embedding_size"], len(classes), config["s"], config["hp"])
    params = list(backbone.parameters()) + (list(head.parameters()) if head is not None else [])
    optimizer = torch.optim.Adam(params, lr=config["lr"], eps=1e-7)
    triplet = load_snippet("pytorch/triplet.py") if method == "triplet" else None

    def embed(idx):
        backbone.eval()
        with torch.no_grad():
            return backbone(xt[idx]).numpy()

    def held_out_accuracy():
        if head is None:
            return nearest_centroid_accuracy(embed(train_idx), y[train_idx], embed(held_idx), y[held_idx])
        with torch.no_grad():
            scores = head.scores(torch.from_numpy(embed(held_idx)))
        return float(np.mean(classes[scores.argmax(dim=1).numpy()] == y[held_idx]))

    groups = {"seen": held_idx, "unseen": data["unseen"]}  # held-out images of the training digits; unseen digits
    before = {g: distance_histograms(embed(idx), y[idx]) for g, idx in groups.items()} if split == "open" else None
    steps = len(train_idx) // (len(classes) * config["k"])
    total = steps * config["epochs"]
    curves = {"train_loss": [], "held_out_accuracy": []}
    start = time.perf_counter()
    for epoch in range(config["epochs"]):
        backbone.train()
        losses = []
        for b, batch in enumerate(pk_batches(y[train_idx], steps, config["k"], rng)):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch * steps + b, total, config["lr"])
            idx = torch.from_numpy(train_idx[batch])
            emb = backbone(xt[idx])
            if head is None:
                # on the unit sphere, like every other method; the margin is then a chord length in [0, 2]
                loss = triplet.batch_hard_triplet_loss(F.normalize(emb), yt[idx], config["hp"]["margin"])
            else:
                loss = F.cross_entropy(head(emb, yt[idx]), yt[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curves["train_loss"].append(float(np.mean(losses)))
        curves["held_out_accuracy"].append(held_out_accuracy())
        if progress:
            progress(epoch + 1, config["epochs"], curves["train_loss"][-1], curves["held_out_accuracy"][-1])

    results = run_results(config, curves, start, data, y, embed, before, groups)
    if config["embedding_size"] == 2 and head is not None:
        shown = held_idx
        results["toy2d"] = {
            "angles": np.round(np.arctan2(*embed(shown).T[::-1]), 5).tolist(),
            "labels": y[shown].tolist(),
            "class_angles": np.round(np.arctan2(*class_directions(head).detach().numpy().T[::-1]), 5).tolist(),
            "classes": classes.tolist(),
        }
    return results


def baseline_metrics(data: dict, kind: str, seed: int = 0, embedding_size: int = 32) -> dict:
    """Scores without training, for reference rows: "pixels" (raw pixels as the embedding), "untrained" (the
    backbone at its initialisation) or "random" (Gaussian noise). Closed-set accuracy by nearest class mean."""
    x, y = data["x"], data["y"]
    (train, test), unseen = data["closed"], data["unseen"]
    if kind == "pixels":
        embed = lambda idx: x[idx]  # noqa: E731
    elif kind == "untrained":
        with deterministic(seed), torch.no_grad():
            backbone = Backbone(embedding_size).eval()
            features = backbone(torch.from_numpy(x)).numpy()
        embed = lambda idx: features[idx]  # noqa: E731
    elif kind == "random":
        noise = np.random.default_rng(seed).standard_normal((len(y), embedding_size))
        embed = lambda idx: noise[idx]  # noqa: E731
    else:
        raise ValueError(f"unknown baseline {kind!r}: choose pixels, untrained or random")
    results = verification_metrics(embed(unseen), y[unseen])
    results["closed_set_accuracy"] = nearest_centroid_accuracy(embed(train), y[train], embed(test), y[test])
    return results
