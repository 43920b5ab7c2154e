"""Sub-center ArcFace: Q centers per class, a sample only has to be near one of them.

Idea: web-scale face data is noisy. Give every class Q sub-centers instead of one weight vector; a sample's
cosine to its class is the cosine to the NEAREST sub-center, and ArcFace's margin is applied to that. Clean
faces gather around one dominant sub-center, while mislabeled or hard faces settle on the others instead of
pulling the main center away. After training, samples far (> 75 degrees) from their class's dominant
sub-center can be dropped as noise and a plain ArcFace retrained on the cleaned data.

    cos θ_j = max_q cos(x, W_{j,q}),   q = 1..Q
    target logit  s·cos(θ_y + m)   while θ_y + m ≤ π,   else s·(cos θ_y - m·sin m)   (ArcFace, m in RADIANS)

Paper: Deng, Guo, Liu, Gong, Zafeiriou, "Sub-center ArcFace: Boosting Face Recognition by Large-scale Noisy Web
Faces", ECCV 2020; also in the TPAMI version of ArcFace (arXiv:1801.07698v4). Recommended Q = 3.

Conventions: the class weights are one [C·Q, D] matrix; class j owns rows j·Q .. j·Q + Q - 1 (the same order as
pytorch-metric-learning's SubCenterArcFaceLoss columns). Functions take the [B, C·Q] cosine matrix and return
SCALED logits [B, C] for `torch.nn.functional.cross_entropy`. The ArcFace margin is the one of margins.py,
repeated here so that this file runs on its own.

Run `python snippets/pytorch/subcenter.py` for a worked example you can check by hand.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`subcenter_arcface_logits(cosine, labels, num_subcenters, s, m)` returns the scaled logits [B, C] for the
[B, C·Q] cosines; `SubCenterCosineClassifier(embedding_size, num_classes, num_subcenters)` returns those cosines;
`SubCenterArcFaceLoss(num_subcenters, s, m)` takes them and the labels and returns the scalar mean loss.
"""

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn


# --8<-- [start:helpers]
def _check_inputs(cosine, labels, num_subcenters):
    """Raise a short ValueError that names the problem instead of returning a silently wrong answer."""
    if isinstance(num_subcenters, bool) or not isinstance(num_subcenters, numbers.Integral) or num_subcenters < 1:
        raise ValueError(f"num_subcenters must be a positive integer, got {num_subcenters!r}")
    if cosine.dim() != 2 or not cosine.is_floating_point():
        raise ValueError(
            f"cosine must be a 2-D float tensor [batch, classes·Q], got {cosine.dtype} of shape {tuple(cosine.shape)}"
        )
    if cosine.shape[0] == 0 or cosine.shape[1] == 0:
        raise ValueError(f"cosine is empty (shape {tuple(cosine.shape)}): need at least one sample and one class")
    if cosine.shape[1] % num_subcenters:
        raise ValueError(f"cosine has {cosine.shape[1]} columns, not a multiple of num_subcenters={num_subcenters}")
    num_classes = cosine.shape[1] // num_subcenters
    if labels.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != cosine.shape[0]:
        raise ValueError(f"labels must have shape [{cosine.shape[0]}] to match cosine, got {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values in [{int(labels.min())}, {int(labels.max())}]"
        )


# --8<-- [end:helpers]


# --8<-- [start:subcenter_arcface_logits]
def subcenter_arcface_logits(cosine, labels, num_subcenters=3, s=64.0, m=0.5):
    """[B, C·Q] cosines to sub-centers -> ArcFace logits [B, C] on the nearest sub-center of each class."""
    _check_inputs(cosine, labels, num_subcenters)
    if not (s > 0 and math.isfinite(s)):
        raise ValueError(f"scale s must be a finite number > 0, got {s}")
    if not 0 <= m < math.pi / 2:
        raise ValueError(f"ArcFace margin m must be in [0, π/2) radians, got {m}")
    cosine = cosine.to(torch.promote_types(cosine.dtype, torch.float32))  # margin in float32 under bf16/fp16
    cosine = cosine.reshape(cosine.shape[0], -1, num_subcenters).amax(dim=2)  # nearest sub-center per class
    index = labels[:, None].long()
    cos_t = cosine.gather(1, index).clamp(-1.0, 1.0)
    sin_t = (1.0 - cos_t * cos_t).clamp(min=1e-20).sqrt()  # clamp: finite gradient at cos θ = ±1
    cos_t_plus_m = cos_t * math.cos(m) - sin_t * math.sin(m)
    target = torch.where(cos_t >= math.cos(math.pi - m), cos_t_plus_m, cos_t - m * math.sin(m))
    return (cosine * s).scatter_(1, index, target * s)


# --8<-- [end:subcenter_arcface_logits]


# --8<-- [start:subcenter_outliers]
def subcenter_outliers(cosine, labels, num_subcenters=3, max_angle=75 * math.pi / 180):
    """Dominant sub-center of each class (the one most of its samples are nearest to) and a [B] bool mask of
    samples more than `max_angle` radians away from their class's dominant sub-center (likely label noise)."""
    _check_inputs(cosine, labels, num_subcenters)
    labels = labels.long()
    num_classes = cosine.shape[1] // num_subcenters
    with torch.no_grad():
        own = cosine.reshape(cosine.shape[0], num_classes, num_subcenters)[torch.arange(len(labels)), labels]  # [B, Q]
        votes = torch.zeros(num_classes, num_subcenters, device=cosine.device)
        votes.index_put_((labels, own.argmax(dim=1)), torch.ones(len(labels), device=cosine.device), accumulate=True)
        dominant = votes.argmax(dim=1)  # [C]; classes without samples get sub-center 0
        outliers = own.gather(1, dominant[labels][:, None])[:, 0] < math.cos(max_angle)
    return dominant, outliers


# --8<-- [end:subcenter_outliers]


# --8<-- [start:subcenter_arcface]
class SubCenterCosineClassifier(nn.Module):
    """num_classes·num_subcenters class centers W [C·Q, D]; returns the cosines [B, C·Q] (class j: columns
    j·Q .. j·Q + Q - 1) between normalized embeddings and normalized sub-centers. Predict with argmax // Q."""

    def __init__(self, embedding_size, num_classes, num_subcenters=3):
        super().__init__()
        if isinstance(num_subcenters, bool) or not isinstance(num_subcenters, numbers.Integral) or num_subcenters < 1:
            raise ValueError(f"num_subcenters must be a positive integer, got {num_subcenters!r}")
        self.num_subcenters = num_subcenters
        self.weight = nn.Parameter(torch.empty(num_classes * num_subcenters, embedding_size))
        nn.init.normal_(self.weight, std=0.01)  # the scale is irrelevant: rows are normalized in forward

    def forward(self, embeddings):
        if embeddings.dim() != 2 or embeddings.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"embeddings must have shape [batch, {self.weight.shape[1]}], got {tuple(embeddings.shape)}"
            )
        return F.linear(F.normalize(embeddings, dim=1, eps=1e-12), F.normalize(self.weight, dim=1, eps=1e-12))


class SubCenterArcFaceLoss(nn.Module):
    """ArcFace on the nearest sub-center + mean cross-entropy: forward(cosine, labels) returns the scalar loss for
    the [B, C·Q] cosines of a SubCenterCosineClassifier with the same num_subcenters."""

    def __init__(self, num_subcenters=3, s=64.0, m=0.5):
        super().__init__()
        self.num_subcenters, self.s, self.m = num_subcenters, s, m
        subcenter_arcface_logits(
            torch.zeros(1, num_subcenters), torch.zeros(1, dtype=torch.long), num_subcenters, s, m
        )  # bad arguments fail now, not at the first batch

    def forward(self, cosine, labels):
        logits = subcenter_arcface_logits(cosine, labels, self.num_subcenters, self.s, self.m)
        return F.cross_entropy(logits, labels.long())


# --8<-- [end:subcenter_arcface]


if __name__ == "__main__":
    # Two samples, three classes, Q = 2 sub-centers; columns are (class 0: q=0, q=1), (class 1: ...), ...
    # Sample 0 (class 0) is near class 0's SECOND sub-center: cosine 0.7 there, -0.7 at the first.
    cosine = torch.tensor(
        [[-0.7, 0.7, 0.3, -0.3, 0.1, -0.1], [0.2, -0.2, 0.75, -0.75, 0.35, -0.35]], dtype=torch.float64
    )
    labels = torch.tensor([0, 1])
    logits = subcenter_arcface_logits(cosine, labels, num_subcenters=2, s=64.0, m=0.5)
    print("nearest-sub-center cosines:", cosine.view(2, 3, 2).amax(2).tolist())
    print("logits:", logits.numpy().round(4).tolist())
    print("loss:", round(F.cross_entropy(logits, labels).item(), 6))
    # By hand: the max over sub-centers gives [[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]], the ArcFace worked example,
    # so the logits are [[17.4035, 19.2, 6.4], [12.8, 21.8289, 22.4]] and the loss is 1.484475.
    dominant, outliers = subcenter_outliers(cosine, labels, num_subcenters=2)
    print("dominant sub-center per class:", dominant.tolist(), " outliers (> 75 degrees):", outliers.tolist())

    torch.manual_seed(0)
    classifier, loss_fn = SubCenterCosineClassifier(4, 3, num_subcenters=2), SubCenterArcFaceLoss(num_subcenters=2)
    loss = loss_fn(classifier(torch.randn(2, 4)), labels).item()
    print("SubCenterArcFaceLoss(Q=2) on an untrained classifier, a random batch of two:", round(loss, 4))

    # --8<-- [start:clean_one_class]
    # Cleaning one class j: the cosines between its n_j images and its own Q sub-centers only (rows j·Q .. j·Q + Q - 1
    # of classifier.weight, [C·Q, D]), with label 0 for every image. In a real run, classifier is the trained
    # SubCenterCosineClassifier and emb_j holds the embeddings of all of class j's images; here six images lie near
    # sub-center 1 of class 2 and two point the other way, as mislabeled images would.
    torch.manual_seed(0)
    Q, j = 3, 2
    classifier = SubCenterCosineClassifier(embedding_size=8, num_classes=5, num_subcenters=Q)
    center = F.normalize(classifier.weight[j * Q + 1].detach(), dim=0)
    emb_j = torch.cat([center + 0.3 * torch.randn(6, 8), -center + 0.3 * torch.randn(2, 8)])  # [n_j, D]

    cos_j = F.normalize(emb_j, dim=1) @ F.normalize(classifier.weight[j * Q : (j + 1) * Q], dim=1).T  # [n_j, Q]
    dominant, outliers = subcenter_outliers(cos_j, torch.zeros(len(emb_j), dtype=torch.long), num_subcenters=Q)
    print(f"class {j}: dominant sub-center {dominant[0].item()}, images to drop {outliers.nonzero()[:, 0].tolist()}")
    # --8<-- [end:clean_one_class]
