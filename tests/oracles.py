"""float64 oracles used by several test files, each written from the paper's formula (angles with math.acos, an
explicit log-sum-exp), independent of the snippet code under test (which uses sqrt/Chebyshev/atan2 forms).

ArcFace: Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019, arXiv:1801.07698.
CosFace: Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", CVPR 2018, arXiv:1801.09414.
Angles and margins are in radians. Import with `from oracles import ...` (tests/ is on pytest's pythonpath).
"""

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
