"""Angular-margin softmax heads: NormFace, SphereFace, CosFace, ArcFace and their combined form.

Idea: L2-normalize the embedding x and every class center W_j, so the classifier's logit is the cosine of the
angle between them, cos θ_j. Multiply by a scale s (the softmax needs logits of a few tens to become confident)
and make the target class y harder to win by pushing its logit down with a margin m. Only the target column
changes; every other column stays s·cos θ_j.

    NormFace   s·cos θ_y                      Wang et al., "NormFace: L2 Hypersphere Embedding for Face
                                              Verification", ACM MM 2017, arXiv:1704.06369
    SphereFace s·ψ(θ_y),  ψ(θ) = (-1)^k cos(mθ) - 2k,  k = ⌊mθ/π⌋  (integer m)
                                              Liu et al., "SphereFace: Deep Hypersphere Embedding for Face
                                              Recognition", CVPR 2017, arXiv:1704.08063
    CosFace    s·(cos θ_y - m)                Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face
                                              Recognition", CVPR 2018, arXiv:1801.09414
    ArcFace    s·cos(θ_y + m)                 Deng et al., "ArcFace: Additive Angular Margin Loss for Deep
                                              Face Recognition", CVPR 2019, arXiv:1801.07698
    combined   s·(cos(m1·θ_y + m2) - m3)      the same ArcFace paper (m1: SphereFace, m2: ArcFace, m3: CosFace)

Conventions:
- `cosine` is the [B, C] matrix of cosines, `labels` the [B] integer targets; every `*_logits` function returns
  the SCALED logits [B, C] that go straight into `torch.nn.functional.cross_entropy`.
- Angular margins (ArcFace m, combined m2) are in RADIANS: m = 0.5 rad is about 28.6 degrees.
- ArcFace past θ_y + m > π (that is cos θ_y < cos(π - m)) uses the usual fallback s·(cos θ_y - m·sin m), so the
  target logit keeps falling as θ_y grows (insightface 2018-2022, CurricularFace, pytorch-metric-learning).
  We need m in [0, π/2): there cos m + m·sin m ≥ 1, so the jump at θ_y = π - m goes down, never up.
- SphereFace and the combined margin keep falling past the turning point the way SphereFace does it: the
  curve is continued with ψ(θ) = (-1)^k cos(φ) - 2k, k = ⌊φ/π⌋, φ = m1·θ + m2. Inside m1·θ + m2 ≤ π the
  combined margin equals ArcFace (m1=1, m3=0); it equals CosFace (m1=1, m2=0) and SphereFace (m2=m3=0,
  integer m1) everywhere.
- Non-target logits are s·cos θ_j exactly as given (no acos or sqrt there, so nothing to clamp).
- Numerics: the margin is computed on the target column only (B values, not B·C), in float32 even when the
  cosines arrive in bfloat16/float16; sin θ = sqrt(1 - cos²θ) is clamped away from 0 so that the gradient stays
  finite at cos θ = ±1.

Run `python snippets/pytorch/margins.py` for a worked example you can check by hand.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
every `*_logits(cosine, labels, s, ...)` returns the scaled logits [B, C]; `CosineClassifier(embedding_size,
num_classes)` returns the cosines [B, C]; `MarginLoss(margin, **margin_args)` takes those cosines and the labels
and returns the scalar mean cross-entropy.
"""

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn


# --8<-- [start:helpers]
def _check_inputs(cosine, labels, s):
    """Raise a short ValueError that names the problem instead of returning a silently wrong answer."""
    if cosine.dim() != 2:
        raise ValueError(f"cosine must be 2-D [batch, classes], got shape {tuple(cosine.shape)}")
    if cosine.shape[0] == 0 or cosine.shape[1] == 0:
        raise ValueError(f"cosine is empty (shape {tuple(cosine.shape)}): need at least one sample and one class")
    if not cosine.is_floating_point():
        raise ValueError(f"cosine must be a floating-point tensor, got {cosine.dtype}")
    if labels.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != cosine.shape[0]:
        raise ValueError(f"labels must have shape [{cosine.shape[0]}] to match cosine, got {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() >= cosine.shape[1]:
        raise ValueError(
            f"labels must lie in [0, {cosine.shape[1]}), got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    if not (s > 0 and math.isfinite(s)):
        raise ValueError(f"scale s must be a finite number > 0, got {s}")


def _target(cosine, labels):
    """Target cosines [B, 1] in float32 (or float64), clamped into [-1, 1], and their sin θ."""
    cosine = cosine.to(torch.promote_types(cosine.dtype, torch.float32))  # bf16/fp16 -> float32
    cos_t = cosine.gather(1, labels[:, None].long()).clamp(-1.0, 1.0)
    # sin θ = sqrt(1 - cos²θ); the clamp keeps sqrt's gradient finite (it is 0 instead of inf at cos θ = ±1).
    sin_t = (1.0 - cos_t * cos_t).clamp(min=1e-20).sqrt()
    return cosine, cos_t, sin_t


def _with_target(cosine, labels, target, s):
    """s·cosine with the target column replaced by `target` (only B values are written)."""
    logits = cosine * s
    return logits.scatter_(1, labels[:, None].long(), target * s)  # in place on a fresh tensor: one copy fewer


# --8<-- [end:helpers]


# --8<-- [start:normface_logits]
def normface_logits(cosine, labels, s=30.0):
    """NormFace: s·cos θ for every class, no margin."""
    _check_inputs(cosine, labels, s)
    return cosine.to(torch.promote_types(cosine.dtype, torch.float32)) * s


# --8<-- [end:normface_logits]


# --8<-- [start:sphereface_logits]
def sphereface_logits(cosine, labels, s=30.0, m=4):
    """SphereFace: target s·ψ(θ), ψ(θ) = (-1)^k cos(mθ) - 2k, k = ⌊mθ/π⌋, integer m ≥ 1."""
    _check_inputs(cosine, labels, s)
    if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1:
        raise ValueError(f"SphereFace margin m must be a positive integer, got {m!r}")
    cosine, cos_t, sin_t = _target(cosine, labels)
    # cos(mθ) as the Chebyshev polynomial T_m(cos θ): no acos, so the gradient is finite at cos θ = ±1.
    cos_m_theta, previous = cos_t, torch.ones_like(cos_t)
    for _ in range(m - 1):
        cos_m_theta, previous = 2 * cos_t * cos_m_theta - previous, cos_m_theta
    with torch.no_grad():  # k is piecewise constant: no gradient
        k = torch.floor(m * torch.atan2(sin_t, cos_t) / math.pi).clamp(max=m - 1)
    psi = (1 - 2 * (k % 2)) * cos_m_theta - 2 * k
    return _with_target(cosine, labels, psi, s)


# --8<-- [end:sphereface_logits]


# --8<-- [start:cosface_logits]
def cosface_logits(cosine, labels, s=64.0, m=0.35):
    """CosFace: target s·(cos θ - m), additive cosine margin m in [0, 2)."""
    _check_inputs(cosine, labels, s)
    if not 0 <= m < 2:
        raise ValueError(f"CosFace margin m must be in [0, 2) (cos θ - m ≥ -1 somewhere), got {m}")
    cosine, cos_t, _ = _target(cosine, labels)
    return _with_target(cosine, labels, cos_t - m, s)


# --8<-- [end:cosface_logits]


# --8<-- [start:arcface_logits]
def arcface_logits(cosine, labels, s=64.0, m=0.5):
    """ArcFace: target s·cos(θ + m) while θ + m ≤ π, else s·(cos θ - m·sin m); m in radians, in [0, π/2)."""
    _check_inputs(cosine, labels, s)
    if not 0 <= m < math.pi / 2:
        raise ValueError(f"ArcFace margin m must be in [0, π/2) radians, got {m}")
    cosine, cos_t, sin_t = _target(cosine, labels)
    cos_t_plus_m = cos_t * math.cos(m) - sin_t * math.sin(m)  # cos(θ + m)
    fallback = cos_t - m * math.sin(m)  # past θ + m > π, cos(θ + m) would rise again
    target = torch.where(cos_t >= math.cos(math.pi - m), cos_t_plus_m, fallback)
    return _with_target(cosine, labels, target, s)


# --8<-- [end:arcface_logits]


# --8<-- [start:combined_margin_logits]
def combined_margin_logits(cosine, labels, s=64.0, m1=1.0, m2=0.5, m3=0.0):
    """Combined margin: target s·(cos(m1·θ + m2) - m3), continued monotonically past m1·θ + m2 > π."""
    _check_inputs(cosine, labels, s)
    if not m1 > 0:
        raise ValueError(f"combined margin m1 must be > 0, got {m1}")
    if not 0 <= m2 < math.pi / 2:
        raise ValueError(f"combined margin m2 must be in [0, π/2) radians, got {m2}")
    if not 0 <= m3 < 2:
        raise ValueError(f"combined margin m3 must be in [0, 2), got {m3}")
    cosine, cos_t, sin_t = _target(cosine, labels)
    phi = m1 * torch.atan2(sin_t, cos_t) + m2  # atan2 instead of acos: finite gradient at cos θ = ±1
    with torch.no_grad():
        k = torch.floor(phi / math.pi)
    target = (1 - 2 * (k % 2)) * torch.cos(phi) - 2 * k - m3  # k = 0 inside the monotone range
    return _with_target(cosine, labels, target, s)


# --8<-- [end:combined_margin_logits]


# --8<-- [start:cosine_classifier]
class CosineClassifier(nn.Module):
    """Class weights W [C, D]; returns cos θ [B, C] between normalized embeddings and normalized weights."""

    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)  # the scale is irrelevant: rows are normalized in forward

    def forward(self, embeddings):
        if embeddings.dim() != 2 or embeddings.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"embeddings must have shape [batch, {self.weight.shape[1]}], got {tuple(embeddings.shape)}"
            )
        # eps: an all-zero embedding gives cosine 0 everywhere instead of NaN
        return F.linear(F.normalize(embeddings, dim=1, eps=1e-12), F.normalize(self.weight, dim=1, eps=1e-12))


# --8<-- [end:cosine_classifier]


# --8<-- [start:margin_loss]
MARGINS = {
    "normface": normface_logits,
    "sphereface": sphereface_logits,
    "cosface": cosface_logits,
    "arcface": arcface_logits,
    "combined": combined_margin_logits,
}


class MarginLoss(nn.Module):
    """A margin from MARGINS + mean cross-entropy: forward(cosine, labels) returns the scalar loss.

    `cosine` is the [B, C] output of a CosineClassifier; `margin_args` go to the margin function (s, m, or
    m1/m2/m3), unset ones keep its defaults. The class weights live in the CosineClassifier, not here (as in
    Keras): optimize the parameters of both backbone and classifier.
    """

    def __init__(self, margin="arcface", **margin_args):
        super().__init__()
        if margin not in MARGINS:
            raise ValueError(f"unknown margin {margin!r}; choose one of {sorted(MARGINS)}")
        self.margin, self.margin_logits, self.margin_args = margin, MARGINS[margin], margin_args
        self.margin_logits(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long), **margin_args)  # fail now, not later

    def forward(self, cosine, labels):
        logits = self.margin_logits(cosine, labels, **self.margin_args)
        return F.cross_entropy(logits, labels.long())


# --8<-- [end:margin_loss]


if __name__ == "__main__":
    # Worked example: two samples, three classes, targets 0 and 1 (tests/worked_examples.md, E2).
    cosine = torch.tensor([[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    torch.set_printoptions(precision=4, sci_mode=False)
    print("cosine =", cosine.tolist(), " labels =", labels.tolist())
    for name, logits in [
        ("normface  s=64        ", normface_logits(cosine, labels, s=64.0)),
        ("sphereface s=64, m=4  ", sphereface_logits(cosine, labels, s=64.0, m=4)),
        ("cosface   s=64, m=0.35", cosface_logits(cosine, labels, s=64.0, m=0.35)),
        ("arcface   s=64, m=0.5 ", arcface_logits(cosine, labels, s=64.0, m=0.5)),
        ("combined  (1, 0.3, 0.2)", combined_margin_logits(cosine, labels, s=64.0, m1=1.0, m2=0.3, m3=0.2)),
    ]:
        loss = F.cross_entropy(logits, labels)
        print(f"{name}: logits {logits.numpy().round(4).tolist()}  loss {loss.item():.6f}")
    # ArcFace by hand, sample 0: θ = acos 0.7 = 0.7954 rad, cos(θ + 0.5) = 0.2719, 64·0.2719 = 17.4035;
    # loss = mean of log(e^17.4035 + e^19.2 + e^6.4) - 17.4035 and the same for sample 1 = 1.484475.

    torch.manual_seed(0)
    classifier, loss_fn = CosineClassifier(embedding_size=4, num_classes=3), MarginLoss("arcface", s=64.0, m=0.5)
    embeddings = torch.randn(2, 4)
    loss = loss_fn(classifier(embeddings), labels).item()  # untrained (random weights), so the loss is large
    print("MarginLoss('arcface') on an untrained CosineClassifier(4, 3), a random batch of two:", round(loss, 4))

    # --8<-- [start:quick_start]
    # Quick start: a backbone, then a CosineClassifier and MarginLoss, on a toy problem of 100 classes with four
    # noisy 32-D points each. Pick s by the number of classes: ArcFace's default s = 64 is meant for 10^4 classes
    # and more; from a few dozen to a few thousand, start from the AdaCos value sqrt(2)·ln(C - 1), here 6.5
    # (around ten classes, several times it).
    torch.manual_seed(0)
    num_classes, embedding_size = 100, 16
    backbone = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, embedding_size))
    classifier = CosineClassifier(embedding_size, num_classes)
    loss_fn = MarginLoss("arcface", s=math.sqrt(2) * math.log(num_classes - 1), m=0.5)
    optimizer = torch.optim.Adam([*backbone.parameters(), *classifier.parameters()], lr=0.01)  # both, not one

    targets = torch.arange(num_classes).repeat(4)  # labels 0..99, four times
    inputs = torch.randn(num_classes, 32)[targets] + 0.5 * torch.randn(len(targets), 32)
    for step in range(201):
        loss = loss_fn(classifier(backbone(inputs)), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            print(f"step {step:3d}: loss {loss.item():.3f}")

    # For verification, drop the classifier and compare normalized embeddings by their cosine.
    with torch.no_grad():
        embeddings = F.normalize(backbone(inputs), dim=1)
    similarity = embeddings @ embeddings.T
    same = targets[:, None] == targets[None, :]
    same_pairs = similarity[same & ~torch.eye(len(targets), dtype=torch.bool)]  # not a point with itself
    print(f"mean cosine: same class {same_pairs.mean():.2f}, different classes {similarity[~same].mean():.2f}")
    # --8<-- [end:quick_start]

    # --8<-- [start:sphereface_lambda_blend]
    # SphereFace's λ blend belongs in the training loop: λ falls with the iteration count, so it is not part of the
    # loss function. Two samples whose target cosines are 0.5 and -0.95 (the worked-example table), s = 30, m = 4.
    cosine = torch.tensor([[0.5, 0.1], [0.3, -0.95]])
    labels = torch.tensor([0, 1])
    s, m = 30.0, 4
    for iteration in (0, 1_000, 100_000):
        lam = max(5.0, 1000.0 / (1 + 0.12 * iteration))  # the official Caffe code's λ schedule (λ_min = 5)
        logits = (lam * normface_logits(cosine, labels, s) + sphereface_logits(cosine, labels, s, m)) / (1 + lam)
        target = logits[torch.arange(len(labels)), labels] / s
        print(f"iteration {iteration:6d}: lambda {lam:8.3f}, target logits / s", [f"{t:.4f}" for t in target.tolist()])
    # --8<-- [end:sphereface_lambda_blend]
