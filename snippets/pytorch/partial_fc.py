"""Partial FC: a margin softmax whose denominator uses only a sample of the class centers at each step.

An et al., "Partial FC: Training 10 Million Identities on a Single Machine",
ICCV Workshops 2021, arXiv 2010.05222; An, Deng, Guo, Feng, Zhu, Yang, Liu, "Killing Two Birds with One Stone:
Efficient and Robust Training of Face Recognition CNNs by Partial FC", CVPR 2022, arXiv 2203.15565.

With C classes the last layer costs O(B * C * D) time and holds a [B, C] logit matrix. Partial FC keeps every
class center, but at each training step it scores the batch against only num_sample = min(C, max(r * C, B)) of
them (at least one per sample, so every present class fits): every class that occurs in the batch (the positives,
whose target logit the loss needs) plus uniformly random other classes to fill up. The margin softmax then runs on
[B, num_sample] logits with the labels re-indexed into the sample, and only the sampled centers receive a gradient
in that step. r = 1 is the ordinary full softmax.
(insightface uses the positives alone when r * C is smaller than their number; a size fixed by r, C and B keeps
the shapes static, which the Keras twin needs under jax.jit.)

Across GPUs (insightface arcface_torch, partial_fc_v2.py) the centers are sharded: rank g of the G ranks owns about
C / G consecutive classes and samples from its own shard only; the embeddings and labels of all ranks are
all-gathered, labels outside the local shard become -1 (no target there), and the softmax max and sum are
all-reduced so that every rank computes its part of one global cross-entropy. This file is the single-process
version of the same computation: one shard that owns all classes.

Conventions (shared with margins.py): angles and m in radians; ArcFace target s * cos(theta + m), falling back to
s * (cos(theta) - m * sin(m)) once cos(theta) < cos(pi - m); CosFace target s * (cos(theta) - m); only the target
column changes; margin math in float32; `PartialFCLoss` returns the mean cross-entropy over the batch.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`sample_class_centers(labels, num_classes, num_sample, generator)` returns (index, remapped labels);
`PartialFCLoss(embedding_size, num_classes, sample_rate, margin, s, m, seed)` holds the class centers (it samples
them) and returns the scalar mean loss for (embeddings, labels).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


# --8<-- [start:helpers]
def _check_labels(labels, num_classes):
    if not torch.is_tensor(labels) or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D [batch], got shape {list(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError("empty batch: labels has 0 entries")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values from {labels.min().item()} to {labels.max().item()}"
        )


def _margin_logits(cosine, labels, margin, s, m):
    """ArcFace or CosFace scaled logits, target column only (the few lines of margins.py this file needs)."""
    dtype = torch.float64 if cosine.dtype == torch.float64 else torch.float32
    cosine = cosine.to(dtype)
    index = labels.unsqueeze(1)
    cos_y = cosine.gather(1, index)
    if margin == "arcface":
        sin_y = torch.sqrt((1.0 - cos_y * cos_y).clamp_min(1e-20))  # finite gradient at cos = +-1
        target = torch.where(
            cos_y < math.cos(math.pi - m), cos_y - m * math.sin(m), cos_y * math.cos(m) - sin_y * math.sin(m)
        )
    else:  # cosface
        target = cos_y - m
    return s * cosine.scatter(1, index, target)


# --8<-- [end:helpers]


# --8<-- [start:sample_class_centers]
def sample_class_centers(labels, num_classes, num_sample, generator=None):
    """Pick num_sample class centers: all classes present in labels, then random others. Returns (index, remapped).

    index: sorted int64 [num_sample] class ids; remapped: labels re-indexed so that index[remapped] == labels.
    The generator (optional torch.Generator) must live on the same device as labels.
    """
    _check_labels(labels, num_classes)
    positive = torch.unique(labels)  # sorted class ids present in the batch
    if num_sample > num_classes:
        raise ValueError(f"num_sample={num_sample} exceeds num_classes={num_classes}")
    if num_sample < positive.numel():
        raise ValueError(f"num_sample={num_sample} is smaller than the {positive.numel()} distinct classes in labels")
    score = torch.rand(num_classes, generator=generator, device=labels.device)
    score[positive] = 2.0  # above any uniform draw: present classes are always among the top num_sample
    index = torch.topk(score, num_sample, sorted=False).indices.sort().values
    return index, torch.searchsorted(index, labels)


# --8<-- [end:sample_class_centers]


# --8<-- [start:partial_fc]
class PartialFCLoss(nn.Module):
    """Class centers [C, D] and a margin softmax on a per-step sample of them; forward returns the mean CE loss.

    In train() mode with sample_rate < 1, each call samples min(C, max(int(sample_rate * C), batch size)) centers.
    In eval() mode, or with sample_rate = 1, all centers are used (the full-softmax loss).
    """

    def __init__(self, embedding_size, num_classes, sample_rate=0.1, margin="arcface", s=64.0, m=0.5, seed=None):
        super().__init__()
        if not (0 <= sample_rate <= 1):
            raise ValueError(f"sample_rate must be in [0, 1], got {sample_rate}")
        if margin not in ("arcface", "cosface"):
            raise ValueError(f"margin must be 'arcface' or 'cosface', got {margin!r}")
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"s must be a positive finite scale, got {s}")
        if not (0 <= m < math.pi / 2):
            raise ValueError(f"m must be in [0, pi/2) (radians for ArcFace), got {m}")
        self.num_classes, self.sample_rate, self.margin, self.s, self.m = num_classes, sample_rate, margin, s, m
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_size) * 0.01)  # one row per class center
        self.seed, self.generator = seed, None  # seed=None: the sample follows torch's global generator

    def forward(self, embeddings, labels):
        if embeddings.ndim != 2 or embeddings.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"embeddings must have shape [batch, {self.weight.shape[1]}], got {list(embeddings.shape)}"
            )
        _check_labels(labels, self.num_classes)
        if labels.shape[0] != embeddings.shape[0]:
            raise ValueError(
                f"labels must have shape [{embeddings.shape[0]}] to match the batch, got {list(labels.shape)}"
            )
        weight, target = self.weight, labels.long()
        if self.training and self.sample_rate < 1:
            num_sample = min(self.num_classes, max(int(self.sample_rate * self.num_classes), labels.shape[0]))
            if self.seed is not None and self.generator is None:  # made on first use, on the labels' device
                self.generator = torch.Generator(labels.device).manual_seed(self.seed)
            index, target = sample_class_centers(labels, self.num_classes, num_sample, self.generator)
            weight = self.weight[index]  # only these rows get a gradient this step
        cosine = F.linear(F.normalize(embeddings, eps=1e-12), F.normalize(weight, eps=1e-12)).clamp(-1, 1)
        return F.cross_entropy(_margin_logits(cosine, target, self.margin, self.s, self.m), target)


# --8<-- [end:partial_fc]


if __name__ == "__main__":
    # Worked example: 10 classes, 5 sampled; classes 2 and 7 occur in the batch and are always kept.
    labels = torch.tensor([7, 2, 7])
    index, remapped = sample_class_centers(
        labels, num_classes=10, num_sample=5, generator=torch.Generator().manual_seed(0)
    )
    print("sampled centers:", index.tolist(), " remapped labels:", remapped.tolist())
    print("index[remapped] == labels:", torch.equal(index[remapped], labels))

    torch.manual_seed(0)
    head = PartialFCLoss(embedding_size=8, num_classes=1000, sample_rate=0.1)
    embeddings, y = torch.randn(4, 8), torch.tensor([3, 14, 15, 3])
    loss = head(embeddings, y)
    loss.backward()
    rows_with_grad = int((head.weight.grad.abs().sum(dim=1) > 0).sum())
    print(f"loss {loss.item():.4f}; centers with a gradient: {rows_with_grad} of 1000 (100 sampled)")
    head.eval()
    print(f"full-softmax loss in eval mode: {head(embeddings, y).item():.4f}")
