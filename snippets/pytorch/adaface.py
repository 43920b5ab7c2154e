"""AdaFace: a margin whose *shape* follows the feature norm, used as a proxy for image quality.

Kim, Jain, Liu, "AdaFace: Quality Adaptive Margin for Face Recognition", CVPR 2022, arXiv 2204.00964.

The norm ||x|| of the embedding before normalization is standardized with running batch statistics and clipped:

    ms = clip(h * (||x|| - mu) / (sigma + eps), -1, 1)          (norms detached: no gradient through the margin)

and the target logit of sample i becomes

    s * (cos(clip(theta_y - m * ms, eps, pi - eps)) - m * (1 + ms))

so ms = -1 (small norm, probably a poor image) gives ArcFace's cos(theta + m), ms = 0 gives CosFace's cos(theta) - m
and ms = +1 (large norm) gives cos(theta - m) - 2m. Every other logit stays s * cos(theta_j).

Conventions (shared with margins.py): angles and m in radians; `adaface_logits` returns the *scaled* logits
[B, C] for `torch.nn.functional.cross_entropy` and changes only the target column; the margin is computed in
float32 (float64 stays float64) even under autocast; the target cosine is clamped to [-1 + eps, 1 - eps] before
arccos so gradients stay finite at cos(theta) = +-1
(the authors' head.py clamps every cosine of the [B, C] matrix to that range, so its non-target logits can
differ from ours by at most s * eps).

`AdaFaceHead` keeps mu and sigma as running averages (buffers starting at 20 and 100, as the authors' code), updated
from each training batch *before* it is used: mu <- t_alpha * mean + (1 - t_alpha) * mu, sigma likewise with the
unbiased (ddof = 1) standard deviation of the batch norms. A batch of one has no standard deviation: sigma keeps
its old value instead of becoming NaN (the authors' code turns the whole row and the buffer into NaN there).

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`adaface_logits(cosine, labels, norms, batch_mean, batch_std, ...)` returns the scaled logits [B, C];
`AdaFaceHead(embedding_size, num_classes, ...)` holds the class centers and the running norm statistics and
returns the scaled logits [B, C] for (embeddings, labels) - a head, not a loss: take the cross-entropy yourself.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


# --8<-- [start:helpers]
def _check_inputs(cosine, labels, s, m):
    """Short ValueErrors for the mistakes that would otherwise give a silently wrong loss."""
    if not torch.is_tensor(cosine) or cosine.ndim != 2:
        raise ValueError(
            f"cosine must be a 2-D tensor [batch, classes], got shape {tuple(getattr(cosine, 'shape', ()))}"
        )
    if not cosine.is_floating_point():
        raise ValueError(f"cosine must be a floating-point tensor, got {cosine.dtype}")
    if cosine.shape[0] == 0:
        raise ValueError("empty batch: cosine has 0 rows")
    if not torch.is_tensor(labels) or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != (cosine.shape[0],):
        raise ValueError(f"labels must have shape [{cosine.shape[0]}] to match the batch, got {list(labels.shape)}")
    num_classes = cosine.shape[1]
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values from {labels.min().item()} to {labels.max().item()}"
        )
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"s must be a positive finite scale, got {s}")
    if not (0 <= m < math.pi / 2):
        raise ValueError(f"m must be an angle in radians in [0, pi/2), got {m}")


# --8<-- [end:helpers]


# --8<-- [start:adaface_logits]
def adaface_logits(cosine, labels, norms, batch_mean, batch_std, s=64.0, m=0.4, h=0.333, eps=1e-3):
    """Scaled AdaFace logits [B, C]: only the target column gets the norm-adaptive margin.

    cosine: [B, C] cosines; labels: [B] integer targets; norms: [B] (or [B, 1]) norms of the un-normalized embeddings;
    batch_mean, batch_std: the running statistics mu, sigma of the norms (numbers or 0-d tensors).
    """
    _check_inputs(cosine, labels, s, m)
    if not (0 < eps < 0.1):
        raise ValueError(f"eps must be in (0, 0.1), got {eps}")
    norms = torch.as_tensor(norms).reshape(-1)
    if norms.shape[0] != cosine.shape[0]:
        raise ValueError(f"norms must have one value per row of cosine ({cosine.shape[0]}), got {norms.shape[0]}")
    dtype = torch.float64 if cosine.dtype == torch.float64 else torch.float32  # margin math never in bf16/fp16
    cosine = cosine.to(dtype)
    norms = norms.detach().to(dtype)
    mu = torch.as_tensor(batch_mean, dtype=dtype, device=cosine.device).detach()
    sigma = torch.as_tensor(batch_std, dtype=dtype, device=cosine.device).detach()

    ms = torch.clamp(h * (norms - mu) / (sigma + eps), -1.0, 1.0)  # margin scaler in [-1, 1]
    index = labels.long().unsqueeze(1)
    cos_y = cosine.gather(1, index).squeeze(1).clamp(-1 + eps, 1 - eps)
    theta = torch.acos(cos_y)
    theta_m = torch.clamp(theta - m * ms, eps, math.pi - eps)  # angular margin g_angle = -m * ms
    target = torch.cos(theta_m) - m * (1 + ms)  # additive margin g_add = m * (1 + ms)
    return s * cosine.scatter(1, index, target.unsqueeze(1))


# --8<-- [end:adaface_logits]


# --8<-- [start:adaface]
class AdaFaceHead(nn.Module):
    """Class centers plus the running norm statistics; forward(embeddings, labels) returns the scaled logits [B, C].

    Feed the logits to F.cross_entropy(logits, labels). In train() mode each call first updates mu and sigma from
    the batch, then uses them; in eval() mode the statistics are left alone.
    """

    def __init__(self, embedding_size, num_classes, s=64.0, m=0.4, h=0.333, t_alpha=0.01):
        super().__init__()
        if not (0 < t_alpha <= 1):
            raise ValueError(f"t_alpha must be in (0, 1], got {t_alpha}")
        self.s, self.m, self.h, self.t_alpha, self.eps = s, m, h, t_alpha, 1e-3
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_size) * 0.01)  # one row per class center
        self.register_buffer("batch_mean", torch.tensor(20.0))
        self.register_buffer("batch_std", torch.tensor(100.0))

    def forward(self, embeddings, labels):
        if embeddings.ndim != 2 or embeddings.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"embeddings must have shape [batch, {self.weight.shape[1]}], got {list(embeddings.shape)}"
            )
        dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
        norms = torch.linalg.vector_norm(embeddings.detach().to(dtype), dim=1).clamp(1e-3, 100)  # as head.py
        cosine = F.linear(F.normalize(embeddings, eps=1e-12), F.normalize(self.weight, eps=1e-12)).clamp(-1, 1)
        if self.training:
            _check_inputs(cosine, labels, self.s, self.m)  # a bad call must not move the statistics
            with torch.no_grad():  # update before use
                a = self.t_alpha
                self.batch_mean.mul_(1 - a).add_(a * norms.mean())
                if norms.numel() > 1:  # the unbiased std of one value is NaN: keep the old sigma
                    self.batch_std.mul_(1 - a).add_(a * norms.std(correction=1))
        return adaface_logits(cosine, labels, norms, self.batch_mean, self.batch_std, self.s, self.m, self.h, self.eps)


# --8<-- [end:adaface]


if __name__ == "__main__":
    # Worked example: three samples whose norms are below, at and above the batch mean (mu = 20, sigma = 10).
    cosine = torch.tensor([[0.8, 0.3, -0.2], [0.1, 0.6, -0.4], [0.2, -0.1, 0.5]])
    labels = torch.tensor([0, 1, 2])
    norms = torch.tensor([10.0, 20.0, 30.0])
    logits = adaface_logits(cosine, labels, norms, batch_mean=20.0, batch_std=10.0)
    print("margin scaler ms:", [round(x, 6) for x in (0.333 * (norms - 20) / (10 + 1e-3)).tolist()])
    print("logits:\n", logits)  # targets 28.5712, 12.8 (= 64 * (0.6 - 0.4)), 4.9528
    print("loss:", F.cross_entropy(logits, labels).item())  # 2.616444

    torch.manual_seed(0)
    head = AdaFaceHead(embedding_size=4, num_classes=3)
    embeddings = torch.randn(5, 4) * 15
    loss = F.cross_entropy(head(embeddings, torch.tensor([0, 1, 2, 0, 1])), torch.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    print(f"after one batch: batch_mean {head.batch_mean.item():.4f}, batch_std {head.batch_std.item():.4f}")
