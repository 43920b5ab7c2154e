"""Scores whose code the pages leave out: distance histograms, a 2-D PCA, nearest-centroid accuracy, nearest neighbors.

The verification metrics the Experiments page shows live in snippets/experiments/verification.py.
"""

import numpy as np
from snippet_loader import load_snippet

verification = load_snippet("experiments/verification.py")
unit, verification_metrics, pk_batches, FAR_GRID = (
    verification.unit,
    verification.verification_metrics,
    verification.pk_batches,
    verification.FAR_GRID,
)
DISTANCE_BINS = np.linspace(0.0, 2.0, 51)  # Euclidean distance between unit vectors lies in [0, 2]


def distance_histograms(embeddings: np.ndarray, labels: np.ndarray) -> dict:
    """Histograms (densities) of positive- and negative-pair distances between unit embeddings."""
    e = unit(embeddings.astype(np.float64))
    i, j = np.triu_indices(len(labels), k=1)
    d = np.sqrt(np.maximum(2.0 - 2.0 * np.sum(e[i] * e[j], axis=1), 0.0))
    same = labels[i] == labels[j]
    pos, _ = np.histogram(d[same], bins=DISTANCE_BINS, density=True)
    neg, _ = np.histogram(d[~same], bins=DISTANCE_BINS, density=True)
    return {"positive": np.round(pos, 5).tolist(), "negative": np.round(neg, 5).tolist()}


def seed_stats(values) -> dict:
    """Mean and sample standard deviation (ddof = 1) over seeds, and their number: the "mean ± std" of every
    table of the Experiments page (one seed: std 0)."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}


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


def nearest_neighbors(embeddings: np.ndarray, queries, k: int) -> np.ndarray:
    """Indices of the k most similar other images (cosine) of each query index; ties by index."""
    e = unit(embeddings.astype(np.float64))
    sim = e[queries] @ e.T
    sim[np.arange(len(queries)), queries] = -np.inf
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]
