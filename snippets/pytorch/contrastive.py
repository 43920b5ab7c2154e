"""Contrastive loss: every pair of a batch, pulled together when both have the same label, pushed at least a
margin m apart when they do not.

    ℓ(i, j) = ½ d²                  if y_i = y_j     (similar pair)
    ℓ(i, j) = ½ max(0, m - d)²      if y_i ≠ y_j     (dissimilar pair),     d = ‖x_i - x_j‖₂

and the loss is the mean of ℓ over the B(B - 1)/2 pairs i < j of the batch. A dissimilar pair farther apart than
m costs nothing and gets no gradient; a similar pair always pays, so it is pulled toward distance 0.

Paper: Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006 (the margin
form; its label Y is 0 for a similar pair and 1 for a dissimilar one, the opposite of `same` here). Chopra,
Hadsell, LeCun, CVPR 2005, trained a face-verification network with an earlier pair loss.

Conventions: distances are Euclidean on the embeddings AS GIVEN (normalize them first if you want the unit
sphere: the margin is then a chord between 0 and 2, and m = 1 pushes dissimilar pairs beyond 60°). Distances are
computed in float32 even for bfloat16/float16 inputs or under autocast. The square root is taken of a value
clamped away from 0, so the gradient stays finite when two embeddings coincide. The pairs are averaged with equal
weight: in a P×K batch most of them are dissimilar.

Run `python snippets/pytorch/contrastive.py` for a worked example you can check by hand.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`contrastive_loss(embeddings, labels, margin)` returns a scalar mean loss.
"""

import torch
import torch.nn.functional as F


# --8<-- [start:helpers]
def _check_inputs(embeddings, labels, margin):
    """Raise a short ValueError that names the problem instead of returning a silently wrong answer."""
    if embeddings.dim() != 2 or not embeddings.is_floating_point():
        raise ValueError(
            f"embeddings must be a 2-D float tensor [batch, dim], got {embeddings.dtype} "
            f"of shape {tuple(embeddings.shape)}"
        )
    if embeddings.shape[0] < 2:
        raise ValueError(f"need at least two embeddings to make a pair, got {embeddings.shape[0]}")
    if labels.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"labels must have shape [{embeddings.shape[0]}] to match embeddings, got {tuple(labels.shape)}"
        )
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")


# --8<-- [end:helpers]


# --8<-- [start:contrastive_loss]
def contrastive_loss(embeddings, labels, margin=1.0):
    """Mean over all pairs i < j of ½d² (same label) or ½max(0, margin - d)² (different labels)."""
    _check_inputs(embeddings, labels, margin)
    x = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
    with torch.autocast(x.device.type, enabled=False):  # in bf16 the expansion would cancel catastrophically
        squared_norms = (x * x).sum(dim=1)
        squared = (squared_norms[:, None] + squared_norms[None, :] - 2.0 * x @ x.T).clamp(min=0.0)  # [B, B] d²
    distance = squared.clamp(min=1e-12).sqrt()  # sqrt'(0) is infinite: coinciding points get a zero gradient
    same = labels[:, None] == labels[None, :]
    losses = torch.where(same, 0.5 * squared, 0.5 * F.relu(margin - distance) ** 2)
    pairs = torch.ones_like(same).triu(diagonal=1)  # each pair once, no point with itself
    return losses[pairs].mean()


# --8<-- [end:contrastive_loss]


if __name__ == "__main__":
    # Worked example (the metric-learning page): margin 1, points on a line at 0, 0.3 and 1.2.
    x = torch.tensor([[0.0, 0.0], [0.3, 0.0], [1.2, 0.0]], dtype=torch.float64)
    print("two points 0.3 apart, same label:     ", round(contrastive_loss(x[:2], torch.tensor([0, 0])).item(), 6))
    print("two points 0.3 apart, different labels:", round(contrastive_loss(x[:2], torch.tensor([0, 1])).item(), 6))
    print("two points 1.2 apart, different labels:", round(contrastive_loss(x[[0, 2]], torch.tensor([0, 1])).item(), 6))
    # By hand: ½·0.3² = 0.045; ½·(1 - 0.3)² = 0.245; 1.2 > m, so 0.
    # All three, labels [0, 0, 1]: pairs (0, 1) similar at 0.3, (0, 2) dissimilar at 1.2, (1, 2) dissimilar at 0.9:
    # (0.045 + 0 + ½·0.1²) / 3 = (0.045 + 0.005) / 3 = 0.016667.
    loss = contrastive_loss(x.requires_grad_(), torch.tensor([0, 0, 1]))
    loss.backward()
    print("all three, labels [0, 0, 1]:", round(loss.item(), 6))
    print("gradient:", x.grad.numpy().round(6).tolist())
    # By hand: dℓ/dx for (0, 1) is ±0.3 along the line, for (1, 2) -(m - d) = -0.1 pushing them apart; / 3 pairs:
    # x0: -0.1, x1: (0.3 + 0.1) / 3 = 0.133333, x2: -0.1 / 3 = -0.033333 (first coordinate; the second is 0).

    # --8<-- [start:given_pairs]
    # No class labels, only given pairs: row k of `first` and `second` is pair k, and same[k] says whether it is a
    # similar pair. The same formula, pair by pair, then the mean (normalize the embeddings first for the unit sphere).
    first = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    second = torch.tensor([[0.3, 0.0], [0.3, 0.0], [1.2, 0.0]])
    same = torch.tensor([True, False, False])
    margin = 1.0
    squared = ((first - second) ** 2).sum(dim=1)  # [N] squared distances of the given pairs
    distance = squared.clamp(min=1e-12).sqrt()  # clamped: a zero distance would give an infinite gradient
    pair_losses = torch.where(same, 0.5 * squared, 0.5 * F.relu(margin - distance) ** 2)
    print("given pairs:", [round(v, 6) for v in pair_losses.tolist()], "mean", round(pair_losses.mean().item(), 6))
    # By hand: 0.045, 0.245 and 0, the three numbers above; their mean is 0.096667.
    # --8<-- [end:given_pairs]
