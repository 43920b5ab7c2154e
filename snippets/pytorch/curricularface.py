"""CurricularFace: ArcFace for the target, plus hard negatives re-weighted by a curriculum that moves with training.

Huang, Wang, Tai, Liu, Shen, Li, Li, Huang, "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020, arXiv 2004.00288.

For sample i with target angle theta_y:

    target     T = cos(theta_y + m)                 (ArcFace; past theta_y + m > pi: cos(theta_y) - m * sin(m))
    negative j c_j            if c_j <= cos(theta_y + m)   (easy: already below the margined target)
               c_j * (t + c_j) otherwise                 (hard negative)

and every logit is multiplied by s. t is a running average of the mean target cosine,

    t <- momentum * mean_i cos(theta_y_i) + (1 - momentum) * t,     t starts at 0, momentum = 0.01,

updated from each training batch before it is used and never differentiated. Early in training t is near 0, so a
hard negative c_j * (t + c_j) < c_j is damped (easy samples dominate); once t + c_j > 1 it is amplified (hard
samples dominate). That is the curriculum: easy first, hard later, inside the loss, with no re-ordering of data.

Conventions (shared with margins.py): angles and m in radians; `curricularface_logits` returns scaled logits
[B, C] for `torch.nn.functional.cross_entropy`; margin math in float32 (float64 stays float64) even under autocast;
sqrt(1 - cos^2) is guarded so gradients stay finite at cos(theta) = +-1.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`curricularface_logits(cosine, labels, t, ...)` returns the scaled logits [B, C];
`CurricularFaceHead(embedding_size, num_classes, ...)` holds the class centers and the running t and returns the
scaled logits [B, C] for (embeddings, labels) - a head, not a loss: take the cross-entropy yourself.
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


# --8<-- [start:curricularface_logits]
def curricularface_logits(cosine, labels, t, s=64.0, m=0.5):
    """Scaled CurricularFace logits [B, C] for the curriculum parameter t (a number or 0-d tensor, not trained)."""
    _check_inputs(cosine, labels, s, m)
    dtype = torch.float64 if cosine.dtype == torch.float64 else torch.float32  # margin math never in bf16/fp16
    cosine = cosine.to(dtype)
    t = torch.as_tensor(t, dtype=dtype, device=cosine.device).detach()

    index = labels.long().unsqueeze(1)
    cos_y = cosine.gather(1, index)  # [B, 1]
    sin_y = torch.sqrt((1.0 - cos_y * cos_y).clamp_min(1e-20))  # guarded: finite gradient at cos = +-1
    cos_y_m = cos_y * math.cos(m) - sin_y * math.sin(m)  # cos(theta_y + m)
    # ArcFace target; past theta_y + m > pi, i.e. cos(theta_y) < cos(pi - m), fall back to cos(theta_y) - m sin(m)
    target = torch.where(cos_y < math.cos(math.pi - m), cos_y - m * math.sin(m), cos_y_m)

    hard = cosine > cos_y_m  # compared with cos(theta_y + m), as in the authors' code; a mask, no gradient
    logits = torch.where(hard, cosine * (t + cosine), cosine)
    return s * logits.scatter(1, index, target)


# --8<-- [end:curricularface_logits]


# --8<-- [start:curricularface]
class CurricularFaceHead(nn.Module):
    """Class centers plus the running curriculum parameter t; forward(embeddings, labels) returns scaled logits [B, C].

    Feed the logits to F.cross_entropy(logits, labels). In train() mode each call first updates t from the batch's
    target cosines, then uses it; in eval() mode t is left alone.
    """

    def __init__(self, embedding_size, num_classes, s=64.0, m=0.5, momentum=0.01):
        super().__init__()
        if not (0 < momentum <= 1):
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        self.s, self.m, self.momentum = s, m, momentum
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_size) * 0.01)  # one row per class center
        self.register_buffer("t", torch.tensor(0.0))

    def forward(self, embeddings, labels):
        if embeddings.ndim != 2 or embeddings.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"embeddings must have shape [batch, {self.weight.shape[1]}], got {list(embeddings.shape)}"
            )
        cosine = F.linear(F.normalize(embeddings, eps=1e-12), F.normalize(self.weight, eps=1e-12)).clamp(-1, 1)
        if self.training:
            _check_inputs(cosine, labels, self.s, self.m)  # before gather: bad labels must not move t
            with torch.no_grad():  # update before use, from the un-margined target cosines
                cos_y = cosine.detach().to(self.t.dtype).gather(1, labels.long().unsqueeze(1))
                self.t.mul_(1 - self.momentum).add_(self.momentum * cos_y.mean())
        return curricularface_logits(cosine, labels, self.t, self.s, self.m)


# --8<-- [end:curricularface]


if __name__ == "__main__":
    # Worked example: the first row has a hard negative (0.5 > cos(acos(0.8) + 0.5) = 0.4144), the second one too.
    cosine = torch.tensor([[0.8, 0.5, -0.2], [0.1, 0.6, 0.3]])
    labels = torch.tensor([0, 1])
    t = 0.01 * (0.8 + 0.6) / 2  # one update of t from 0 with this batch: 0.007
    logits = curricularface_logits(cosine, labels, t)
    print("t:", t)
    print("logits:\n", logits)  # 0.5 * (0.007 + 0.5) * 64 = 16.224; 0.3 * (0.007 + 0.3) * 64 = 5.8944
    print("loss:", F.cross_entropy(logits, labels).item())  # 0.048681

    torch.manual_seed(0)
    head = CurricularFaceHead(embedding_size=4, num_classes=3)
    embeddings, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    for step in range(2):
        F.cross_entropy(head(embeddings, y), y).backward()
        print(f"after batch {step + 1}: t = {head.t.item():.6f}")
