"""Triplet losses: plain, batch-hard and batch-all, on Euclidean distances between embeddings.

Idea: an anchor a should be closer to a positive p (same class) than to a negative n (other class) by at least
a margin m (the code's `margin`). Only the relative distances matter, so the loss is zero once every triplet
respects the margin:

    ℓ(a, p, n) = max(0, d(a, p) - d(a, n) + m),     d(x, y) = ‖x - y‖₂  (not squared)

Which triplets to use decides whether training works. With a P×K batch (P classes, K samples each):
- batch-hard: for every anchor, its farthest positive and its nearest negative in the batch; mean over the
  anchors that have at least one positive and one negative.
- batch-all: every valid (a, p, n) in the batch; mean over the triplets whose loss is > 0 (0 when none), so
  the many already-satisfied triplets do not dilute the gradient.

Papers: Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face Recognition and Clustering",
CVPR 2015, arXiv:1503.03832 (triplet loss, α = 0.2 on unit-length embeddings, squared distance);
Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person Re-Identification", arXiv preprint 2017,
arXiv:1703.07737 (batch-hard, batch-all, P×K batches, plain Euclidean distance).

Conventions: distances are Euclidean on the embeddings AS GIVEN (normalize them first if you want the unit
sphere; the margin is then in the units of a chord, between 0 and 2). Distances are computed in float32 even
for bfloat16/float16 inputs or under autocast. The square root is taken of a value clamped away from 0, so the
gradient stays finite when two embeddings coincide.

Run `python snippets/pytorch/triplet.py` for a worked example you can check by hand.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`pairwise_distances(embeddings)` returns [B, B] distances; every `*_triplet_loss` function and
`BatchTripletLoss(mining, margin)` return a scalar mean loss; `pk_batches(labels, p, k, seed)` returns lists of
indices.
"""

import torch
import torch.nn.functional as F
from torch import nn


# --8<-- [start:helpers]
def _check_inputs(embeddings, labels, margin):
    """Raise a short ValueError that names the problem instead of returning a silently wrong answer."""
    if embeddings.dim() != 2 or not embeddings.is_floating_point():
        raise ValueError(
            f"embeddings must be a 2-D float tensor [batch, dim], got {embeddings.dtype} "
            f"of shape {tuple(embeddings.shape)}"
        )
    if embeddings.shape[0] == 0:
        raise ValueError("embeddings is an empty batch: need at least one row")
    if labels is not None:
        if labels.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
            raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
        if labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
            raise ValueError(
                f"labels must have shape [{embeddings.shape[0]}] to match embeddings, got {tuple(labels.shape)}"
            )
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")


def _safe_sqrt(squared):
    # sqrt'(0) is infinite: clamp so that coinciding embeddings give distance ~1e-6 and a zero gradient.
    return squared.clamp(min=1e-12).sqrt()


# --8<-- [end:helpers]


# --8<-- [start:pairwise_distances]


def pairwise_distances(embeddings):
    """[B, B] Euclidean distances, from ‖a‖² + ‖b‖² - 2a·b (one matrix product, no [B, B, D] tensor)."""
    x = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
    with torch.autocast(x.device.type, enabled=False):  # in bf16 the expansion would cancel catastrophically
        squared_norms = (x * x).sum(dim=1)
        squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * x @ x.T
    return _safe_sqrt(squared.clamp(min=0.0))  # rounding can make the expansion slightly negative


# --8<-- [end:pairwise_distances]


# --8<-- [start:triplet_loss]
def triplet_loss(anchor, positive, negative, margin=0.2):
    """Mean over rows of max(0, d(a, p) - d(a, n) + margin) for given [B, D] triplets."""
    _check_inputs(anchor, None, margin)
    if positive.shape != anchor.shape or negative.shape != anchor.shape:
        raise ValueError(
            f"anchor, positive and negative must have the same shape, got {tuple(anchor.shape)}, "
            f"{tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    anchor, positive, negative = (
        x.to(torch.promote_types(x.dtype, torch.float32)) for x in (anchor, positive, negative)
    )  # float32 for bf16/fp16 inputs
    d_ap = _safe_sqrt(((anchor - positive) ** 2).sum(dim=1))
    d_an = _safe_sqrt(((anchor - negative) ** 2).sum(dim=1))
    return F.relu(d_ap - d_an + margin).mean()


# --8<-- [end:triplet_loss]


# --8<-- [start:batch_hard_triplet_loss]
def batch_hard_triplet_loss(embeddings, labels, margin=0.2):
    """Per anchor: farthest positive, nearest negative; mean over anchors having both (0 if there are none)."""
    _check_inputs(embeddings, labels, margin)
    distances = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)  # not itself
    hardest_positive = distances.masked_fill(~positive, float("-inf")).max(dim=1).values
    hardest_negative = distances.masked_fill(same, float("inf")).min(dim=1).values
    valid = positive.any(dim=1) & (~same).any(dim=1)
    losses = F.relu(hardest_positive - hardest_negative + margin)  # 0 (not NaN) for anchors without a pair
    return losses[valid].sum() / valid.sum().clamp(min=1)


# --8<-- [end:batch_hard_triplet_loss]


# --8<-- [start:batch_all_triplet_loss]
def batch_all_triplet_loss(embeddings, labels, margin=0.2):
    """All valid (a, p, n); mean over the triplets with loss > 0 (0 when none)."""
    _check_inputs(embeddings, labels, margin)
    distances = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    valid = positive[:, :, None] & ~same[:, None, :]  # [a, p, n]
    losses = F.relu(distances[:, :, None] - distances[:, None, :] + margin) * valid  # d(a,p) - d(a,n) + m
    return losses.sum() / (losses > 0).sum().clamp(min=1)


# --8<-- [end:batch_all_triplet_loss]


# --8<-- [start:batch_triplet_loss]
MINING = {"hard": batch_hard_triplet_loss, "all": batch_all_triplet_loss}


class BatchTripletLoss(nn.Module):
    """Batch-hard or batch-all triplet loss: forward(embeddings, labels) returns the scalar loss of the batch."""

    def __init__(self, mining="hard", margin=0.2):
        super().__init__()
        if mining not in MINING:
            raise ValueError(f"unknown mining {mining!r}; choose one of {sorted(MINING)}")
        if not margin >= 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.mining, self.margin = mining, margin

    def forward(self, embeddings, labels):
        return MINING[self.mining](embeddings, labels, self.margin)


# --8<-- [end:batch_triplet_loss]


# --8<-- [start:pk_batches]
def pk_batches(labels, p, k, seed=None):
    """Index batches of p classes × k samples each (Hermans et al.'s P×K batches), one pass over the classes.

    Classes with fewer than k samples are drawn with replacement. Call it once per epoch (a different seed each
    epoch, or seed=None for torch's global generator) and pass the list as a DataLoader `batch_sampler`.
    """
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    labels = torch.as_tensor(labels)
    classes = labels.unique()
    if not (p >= 1 and k >= 1 and p <= len(classes)):
        raise ValueError(f"need 1 <= p <= number of classes ({len(classes)}) and k >= 1, got p={p}, k={k}")
    order = classes[torch.randperm(len(classes), generator=generator)]
    batches = []
    for start in range(0, len(order) - p + 1, p):  # drop the last incomplete group of classes
        batch = []
        for c in order[start : start + p]:
            members = (labels == c).nonzero()[:, 0]
            if len(members) >= k:
                pick = torch.randperm(len(members), generator=generator)[:k]
            else:
                pick = torch.randint(len(members), (k,), generator=generator)
            batch += members[pick].tolist()
        batches.append(batch)
    return batches


# --8<-- [end:pk_batches]


if __name__ == "__main__":
    # Four 2-D unit embeddings, two classes (tests/worked_examples.md, E9):
    #   0: (1, 0)  1: (0.6, 0.8)  -> class 0        2: (0.8, 0.6)  3: (0, 1)  -> class 1
    embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    print("distances:\n", pairwise_distances(embeddings).numpy().round(4))
    # By hand: d(0,1) = sqrt(0.16 + 0.64) = 0.8944, d(0,2) = sqrt(0.04 + 0.36) = 0.6325, d(1,2) = 0.2828.
    # Anchor 0: positive 1 (0.8944) is farther than negative 2 (0.6325): loss 0.8944 - 0.6325 + 0.05 = 0.3120.
    a, p, n = embeddings[[0]], embeddings[[1]], embeddings[[2]]
    print("triplet_loss(a=0, p=1, n=2, margin=0.05):", round(triplet_loss(a, p, n, margin=0.05).item(), 6))
    print("batch_hard_triplet_loss(margin=0.05):", round(batch_hard_triplet_loss(embeddings, labels, 0.05).item(), 6))
    print("batch_all_triplet_loss(margin=0.05): ", round(batch_all_triplet_loss(embeddings, labels, 0.05).item(), 6))
    print(
        "batch_hard / batch_all at margin=0.2 (the page's worked example):",
        round(batch_hard_triplet_loss(embeddings, labels, 0.2).item(), 6),
        round(batch_all_triplet_loss(embeddings, labels, 0.2).item(), 6),
    )
    print("BatchTripletLoss('hard', margin=0.05):", round(BatchTripletLoss("hard", 0.05)(embeddings, labels).item(), 6))
    # batch-hard: anchors 0..3 each pick hardest pairs -> (0.3120 + 0.6616 + 0.6616 + 0.3120) / 4 = 0.4868
    # batch-all: 8 triplets, 6 with loss > 0, mean of those = 0.4285
    print("P x K batches (p=2, k=2):", pk_batches(labels, p=2, k=2, seed=0))
