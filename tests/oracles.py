"""float64 oracles used by several test files, each written from the paper's formula (angles with math.acos, an
explicit log-sum-exp), independent of the snippet code under test (which uses sqrt/Chebyshev/atan2 forms).

ArcFace: Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019, arXiv:1801.07698.
CosFace: Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", CVPR 2018, arXiv:1801.09414.
Angles and margins are in radians. Import with `from oracles import ...` (tests/ is on pytest's pythonpath).
"""

import itertools
import math

import numpy as np


def arcface_target(c, m):
    """ArcFace's margined target cosine of one float c = cos θ: cos(θ + m) with θ = acos(c) while θ + m ≤ π, past
    that the insightface fallback c − m·sin m (which keeps the target logit falling as θ grows)."""
    theta = math.acos(c)
    return math.cos(theta + m) if theta + m <= math.pi else c - m * math.sin(m)


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy in float64: log Σ_j exp(z_j) − z_y per row (row max subtracted first), averaged."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    logsumexp = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(logsumexp - logits[np.arange(len(labels)), labels]))


def cosine_matrix(embeddings, weight):
    """cos(x_i, w_j) in float64 for rows x_i of embeddings [N, D] and w_j of weight [C, D], clipped to [−1, 1]."""
    x = np.asarray(embeddings, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    return np.clip(x @ w.T, -1, 1)


def margin_loss(embeddings, weight, labels, margin="arcface", s=64.0, m=0.5):
    """Full-softmax margin loss in float64: logits s·cos θ_j, the target replaced by s·arcface_target(cos θ_y, m)
    (margin="arcface") or s·(cos θ_y − m) (margin="cosface"), then the mean cross-entropy."""
    cosine = cosine_matrix(embeddings, weight)
    logits = s * cosine
    for i, y in enumerate(labels):
        if margin == "arcface":
            logits[i, y] = s * arcface_target(cosine[i, y], m)
        elif margin == "cosface":
            logits[i, y] = s * (cosine[i, y] - m)
        else:
            raise AssertionError(margin)
    return cross_entropy(logits, labels)


def distance(x, y):
    return float(np.sqrt(np.sum((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2)))


def reference_triplets(labels):
    n = len(labels)
    return [
        (a, p, q)
        for a, p, q in itertools.product(range(n), repeat=3)
        if a != p and labels[a] == labels[p] and labels[q] != labels[a]
    ]


def reference_batch_all(x, labels, margin):
    losses = [max(0.0, distance(x[a], x[p]) - distance(x[a], x[n]) + margin) for a, p, n in reference_triplets(labels)]
    positive = [loss for loss in losses if loss > 0]
    return sum(positive) / len(positive) if positive else 0.0


def reference_batch_hard(x, labels, margin):
    losses = []
    for a in range(len(labels)):
        pos = [distance(x[a], x[p]) for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        neg = [distance(x[a], x[n]) for n in range(len(labels)) if labels[n] != labels[a]]
        if pos and neg:
            losses.append(max(0.0, max(pos) - min(neg) + margin))
    return sum(losses) / len(losses) if losses else 0.0


def reference_subcenter_logits(cosine, labels, num_subcenters, s, m):
    """float64: cos θ_j = max_k cos(x, w_jk); target s·cos(θ + m) if θ + m ≤ π else s·(cos θ - m·sin m)."""
    cosine = np.asarray(cosine, dtype=np.float64)
    nearest = cosine.reshape(len(cosine), -1, num_subcenters).max(axis=2)
    logits = s * nearest
    for i, y in enumerate(labels):
        logits[i, y] = s * arcface_target(nearest[i, y], m)
    return logits


def reference_curricularface_logits(cosine, labels, t, s=64.0, m=0.5):
    """float64 oracle with angles: ArcFace target (th/mm fallback), hard negatives c*(t + c), the rest c."""
    cosine = np.asarray(cosine, dtype=np.float64)
    out = cosine.copy()
    for i, y in enumerate(labels):
        theta = math.acos(cosine[i, y])
        cos_y_m = math.cos(theta + m)
        for j in range(cosine.shape[1]):
            if j != y and cosine[i, j] > cos_y_m:
                out[i, j] = cosine[i, j] * (t + cosine[i, j])
        out[i, y] = arcface_target(cosine[i, y], m)
    return s * out


def reference_adaface_logits(cosine, norms, labels, mu, sigma, s=64.0, m=0.4, h=0.333, eps=1e-3):
    """float64 oracle: s*cos(theta_j) everywhere, s*(cos(clip(theta_y - m*ms)) - m*(1+ms)) at the target."""
    cosine = np.asarray(cosine, dtype=np.float64)
    out = s * cosine.copy()
    for i, y in enumerate(labels):
        ms = min(1.0, max(-1.0, h * (norms[i] - mu) / (sigma + eps)))
        theta = math.acos(min(1 - eps, max(-1 + eps, cosine[i, y])))
        theta_m = min(math.pi - eps, max(eps, theta - m * ms))
        out[i, y] = s * (math.cos(theta_m) - m * (1.0 + ms))
    return out


def reference_target(c, kind, m=None, m1=1.0, m2=0.0, m3=0.0):
    """Margined target cosine of one float c, written from each paper's formula with math.acos."""
    theta = math.acos(c)
    if kind == "normface":
        return c
    if kind == "cosface":
        return c - m
    if kind == "arcface":
        return arcface_target(c, m)
    if kind == "sphereface":
        k = min(math.floor(m * theta / math.pi), m - 1)
        return (-1) ** k * math.cos(m * theta) - 2 * k
    if kind == "combined":
        phi = m1 * theta + m2
        k = math.floor(phi / math.pi)
        return (-1) ** k * math.cos(phi) - 2 * k - m3
    raise AssertionError(kind)


def reference_logits(cosine, labels, kind, s, **margin):
    logits = s * np.array(cosine, dtype=np.float64)
    for i, y in enumerate(labels):
        logits[i, y] = s * reference_target(float(cosine[i][y]), kind, **margin)
    return logits
