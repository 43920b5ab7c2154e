"""Tests of snippets/pytorch/contrastive.py.

Oracles: a float64 loop over the pairs written here from Hadsell, Chopra and LeCun (CVPR 2006), the hand-computed
numbers of the metric-learning page (0.045, 0.245, 0 and the three-point mean 1/60), the analytic gradient of one
pair, and torch.autograd.gradcheck.
"""

import math

import pytest
import torch
from snippet_loader import load_snippet

contrastive = load_snippet("pytorch/contrastive.py")


def reference(embeddings, labels, margin):
    """Mean over pairs i < j of ½d² (same label) or ½max(0, m - d)² (different labels), by a float64 loop."""
    x, y = embeddings.tolist(), labels.tolist()
    losses = []
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            d = math.dist(x[i], x[j])
            losses.append(0.5 * d * d if y[i] == y[j] else 0.5 * max(0.0, margin - d) ** 2)
    return sum(losses) / len(losses)


def random_batch(seed, p=4, k=3, dim=5, scale=0.4):
    generator = torch.Generator().manual_seed(seed)
    embeddings = scale * torch.randn(p * k, dim, generator=generator, dtype=torch.float64)
    return embeddings, torch.arange(p).repeat_interleave(k)


LINE = torch.tensor([[0.0, 0.0], [0.3, 0.0], [1.2, 0.0]], dtype=torch.float64)


@pytest.mark.parametrize(
    "rows, labels, expected",
    [
        ([0, 1], [0, 0], 0.045),  # ½·0.3²
        ([0, 1], [0, 1], 0.245),  # ½·(1 - 0.3)²
        ([0, 2], [0, 1], 0.0),  # 1.2 is beyond the margin
        ([0, 1, 2], [0, 0, 1], (0.045 + 0.0 + 0.005) / 3),  # (1, 2) is dissimilar at 0.9: ½·0.1²
    ],
)
def test_matches_the_pages_worked_example(rows, labels, expected):
    loss = contrastive.contrastive_loss(LINE[rows], torch.tensor(labels), margin=1.0)
    assert loss.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_float64_reference(seed, margin):
    embeddings, labels = random_batch(seed)
    loss = contrastive.contrastive_loss(embeddings, labels, margin)
    assert 0 < loss.item()
    assert loss.item() == pytest.approx(reference(embeddings, labels, margin), rel=1e-12, abs=1e-14)


def test_gradient_of_one_dissimilar_pair_is_minus_the_hinge_along_the_pair():
    """dℓ/dx₁ = -(m - d)·(x₁ - x₂)/d for ℓ = ½(m - d)², d < m: the pair is pushed apart along the line joining it."""
    x = torch.tensor([[0.1, 0.2, 0.0], [0.4, -0.2, 0.0]], dtype=torch.float64, requires_grad=True)
    contrastive.contrastive_loss(x, torch.tensor([0, 1]), margin=1.0).backward()
    diff = (x[0] - x[1]).detach()
    d = diff.norm()
    torch.testing.assert_close(x.grad[0], -(1.0 - d) * diff / d)
    torch.testing.assert_close(x.grad[1], (1.0 - d) * diff / d)


def test_passes_gradcheck():
    embeddings, labels = random_batch(3, p=2, k=2, dim=3)
    assert torch.autograd.gradcheck(
        lambda e: contrastive.contrastive_loss(e, labels, 1.0), embeddings.clone().requires_grad_()
    )


@pytest.mark.parametrize("labels", [[0, 0, 1], [0, 1, 2]])
def test_gradient_is_finite_when_embeddings_coincide(labels):
    x = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], dtype=torch.float64, requires_grad=True)
    contrastive.contrastive_loss(x, torch.tensor(labels), 1.0).backward()
    assert torch.isfinite(x.grad).all()


def test_similar_pairs_are_weighted_like_dissimilar_ones():
    """Equal weight per pair: adding a far-away dissimilar point (loss 0) dilutes the mean by the pair count."""
    two = contrastive.contrastive_loss(LINE[[0, 1]], torch.tensor([0, 0]))
    far = torch.cat([LINE[[0, 1]], torch.tensor([[5.0, 0.0]], dtype=torch.float64)])
    three = contrastive.contrastive_loss(far, torch.tensor([0, 0, 1]))
    assert three.item() == pytest.approx(two.item() / 3, abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_embeddings_give_a_float32_loss(dtype):
    embeddings, labels = random_batch(4)
    loss = contrastive.contrastive_loss(embeddings.to(dtype), labels)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference(embeddings.to(dtype).double(), labels, 1.0), rel=1e-5)


def test_under_autocast_bf16_the_loss_is_float32():
    embeddings, labels = random_batch(5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = contrastive.contrastive_loss(embeddings.float(), labels)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference(embeddings.float().double(), labels, 1.0), rel=1e-5)


@pytest.mark.parametrize(
    "embeddings, labels, margin, message",
    [
        (torch.zeros(3), torch.tensor([0, 0, 1]), 1.0, "2-D float"),
        (torch.zeros(3, 2, dtype=torch.long), torch.tensor([0, 0, 1]), 1.0, "2-D float"),
        (torch.zeros(1, 2), torch.tensor([0]), 1.0, "at least two"),
        (torch.zeros(3, 2), torch.tensor([0.0, 0.0, 1.0]), 1.0, "integer"),
        (torch.zeros(3, 2), torch.tensor([0, 1]), 1.0, r"shape \[3\]"),
        (torch.zeros(3, 2), torch.tensor([0, 0, 1]), 0.0, "margin must be > 0"),
        (torch.zeros(3, 2), torch.tensor([0, 0, 1]), float("nan"), "margin must be > 0"),
    ],
    ids=["1-D", "integer embeddings", "one row", "float labels", "label count", "zero margin", "nan margin"],
)
def test_rejects_bad_input(embeddings, labels, margin, message):
    with pytest.raises(ValueError, match=message):
        contrastive.contrastive_loss(embeddings, labels, margin)
