"""Partial FC (snippets/pytorch/partial_fc.py): the sampling rules, and the loss against a float64 full-softmax
ArcFace/CosFace oracle (tests/oracles.py, written from the papers) and against pytorch-metric-learning's ArcFaceLoss."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from oracles import margin_loss
from pytorch_metric_learning.losses import ArcFaceLoss
from snippet_loader import ROOT, load_snippet

partial_fc = load_snippet("pytorch/partial_fc.py")


def test_sample_keeps_every_present_class():
    labels = torch.tensor([3, 97, 3, 41, 0, 99])
    for seed in range(50):
        index, _ = partial_fc.sample_class_centers(labels, 100, 8, generator=torch.Generator().manual_seed(seed))
        assert set(labels.tolist()) <= set(index.tolist())


def test_sample_index_is_sorted_distinct_and_of_requested_size():
    index, _ = partial_fc.sample_class_centers(
        torch.tensor([5, 1, 5]), 50, 12, generator=torch.Generator().manual_seed(0)
    )
    assert index.shape == (12,)
    assert torch.all(index[1:] > index[:-1])  # strictly increasing: sorted and no repeats
    assert 0 <= index.min() and index.max() < 50


def test_sample_remapped_labels_point_back_to_the_original_classes():
    labels = torch.tensor([7, 2, 7, 19, 2])
    index, remapped = partial_fc.sample_class_centers(labels, 20, 6, generator=torch.Generator().manual_seed(3))
    assert torch.equal(index[remapped], labels)
    assert remapped.max() < 6


def test_sample_of_all_classes_is_the_identity():
    labels = torch.tensor([4, 0, 4])
    index, remapped = partial_fc.sample_class_centers(labels, 5, 5)
    assert index.tolist() == [0, 1, 2, 3, 4] and torch.equal(remapped, labels)


def test_sample_fills_with_uniformly_random_negatives():
    # 2 positives kept; 3 of the 8 other classes drawn each time: each negative with probability 3/8.
    labels = torch.tensor([2, 7])
    gen = torch.Generator().manual_seed(0)
    counts = np.zeros(10)
    trials = 4000
    for _ in range(trials):
        index, _ = partial_fc.sample_class_centers(labels, 10, 5, generator=gen)
        counts[index.numpy()] += 1
    negatives = np.delete(counts, [2, 7]) / trials
    assert counts[2] == counts[7] == trials
    np.testing.assert_allclose(negatives, 3 / 8, atol=0.04)  # 5 sigma of a binomial(4000, 3/8) is ~0.038


def test_partial_fc_full_rate_equals_full_softmax_arcface_oracle():
    torch.manual_seed(0)
    head = partial_fc.PartialFCLoss(16, 40, sample_rate=1.0)
    embeddings, labels = torch.randn(12, 16), torch.randint(0, 40, (12,))
    loss = head(embeddings, labels)
    want = margin_loss(embeddings.numpy(), head.weight.detach().numpy(), labels.numpy())
    assert loss.item() == pytest.approx(want, rel=1e-5)


def test_partial_fc_full_rate_cosface_equals_oracle():
    torch.manual_seed(1)
    head = partial_fc.PartialFCLoss(16, 30, sample_rate=1.0, margin="cosface", s=30.0, m=0.35)
    embeddings, labels = torch.randn(10, 16), torch.randint(0, 30, (10,))
    want = margin_loss(embeddings.numpy(), head.weight.detach().numpy(), labels.numpy(), "cosface", 30.0, 0.35)
    assert head(embeddings, labels).item() == pytest.approx(want, rel=1e-5)


def test_partial_fc_full_rate_matches_pytorch_metric_learning_arcface():
    torch.manual_seed(2)
    head = partial_fc.PartialFCLoss(16, 25, sample_rate=1.0, s=30.0, m=0.5)
    pml = ArcFaceLoss(num_classes=25, embedding_size=16, margin=math.degrees(0.5), scale=30.0)
    with torch.no_grad():
        pml.W.copy_(head.weight.T)
    embeddings, labels = torch.randn(9, 16), torch.randint(0, 25, (9,))
    assert head(embeddings, labels).item() == pytest.approx(pml(embeddings, labels).item(), rel=1e-5)


def test_partial_fc_eval_mode_uses_all_centers():
    torch.manual_seed(3)
    head = partial_fc.PartialFCLoss(8, 200, sample_rate=0.1).eval()
    embeddings, labels = torch.randn(6, 8), torch.randint(0, 200, (6,))
    want = margin_loss(embeddings.numpy(), head.weight.detach().numpy(), labels.numpy())
    assert head(embeddings, labels).item() == pytest.approx(want, rel=1e-5)


def test_partial_fc_sampled_loss_is_the_oracle_on_the_sampled_centers():
    head = partial_fc.PartialFCLoss(8, 200, sample_rate=0.1)
    embeddings, labels = torch.randn(6, 8), torch.tensor([5, 17, 5, 199, 0, 64])
    torch.manual_seed(11)
    loss = head(embeddings, labels)
    torch.manual_seed(11)  # the module draws from the global generator: replay the same draw
    index, remapped = partial_fc.sample_class_centers(labels, 200, 20)
    want = margin_loss(embeddings.numpy(), head.weight.detach()[index].numpy(), remapped.numpy())
    assert loss.item() == pytest.approx(want, rel=1e-5)
    full = margin_loss(embeddings.numpy(), head.weight.detach().numpy(), labels.numpy())
    assert loss.item() < full  # fewer competitors in the denominator


def test_partial_fc_only_sampled_centers_get_a_gradient():
    torch.manual_seed(4)
    head = partial_fc.PartialFCLoss(8, 500, sample_rate=0.1)
    labels = torch.tensor([1, 2, 3, 250])
    head(torch.randn(4, 8), labels).backward()
    touched = (head.weight.grad.abs().sum(dim=1) > 0).nonzero().squeeze(1)
    assert touched.numel() == 50
    assert set(labels.tolist()) <= set(touched.tolist())


def test_partial_fc_with_too_small_rate_samples_one_center_per_sample_and_keeps_present_classes():
    torch.manual_seed(5)
    head = partial_fc.PartialFCLoss(8, 1000, sample_rate=0.0)
    embeddings, labels = torch.randn(5, 8), torch.tensor([9, 4, 9, 600, 4])
    head(embeddings, labels).backward()
    touched = (head.weight.grad.abs().sum(dim=1) > 0).nonzero().squeeze(1)
    assert touched.numel() == 5 and {4, 9, 600} <= set(touched.tolist())


def test_partial_fc_gradcheck_float64_full_rate():
    torch.manual_seed(6)
    head = partial_fc.PartialFCLoss(5, 7, sample_rate=1.0, s=4.0).double()
    embeddings = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 3, 6, 3])
    assert torch.autograd.gradcheck(lambda e: head(e, labels), (embeddings,))


def test_partial_fc_finite_gradients_at_cosine_plus_minus_one_and_zero_embedding():
    head = partial_fc.PartialFCLoss(3, 4, sample_rate=1.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, 0, 0]]))
    embeddings = torch.tensor([[2.0, 0, 0], [-3.0, 0, 0], [0, 0, 0]], requires_grad=True)  # cos = 1, -1; zero vector
    loss = head(embeddings, torch.tensor([0, 0, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all() and torch.isfinite(head.weight.grad).all()


@pytest.mark.parametrize(
    "labels, num_classes, num_sample, message",
    [
        (torch.tensor([1, 2, 3]), 10, 2, "smaller than the 3 distinct classes"),
        (torch.tensor([1, 2]), 10, 11, "exceeds num_classes"),
        (torch.tensor([1, 10]), 10, 5, r"\[0, 10\)"),
        (torch.tensor([1.0, 2.0]), 10, 5, "integer"),
        (torch.zeros(0, dtype=torch.long), 10, 5, "empty batch"),
        (torch.tensor([[1, 2]]), 10, 5, "1-D"),
    ],
)
def test_sample_bad_inputs_raise_value_error(labels, num_classes, num_sample, message):
    with pytest.raises(ValueError, match=message):
        partial_fc.sample_class_centers(labels, num_classes, num_sample)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sample_rate=1.5), "sample_rate"),
        (dict(margin="sphereface"), "margin"),
        (dict(s=0.0), "s must"),
        (dict(m=2.0), "m must"),
    ],
)
def test_partial_fc_bad_settings_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        partial_fc.PartialFCLoss(4, 10, **kwargs)


def test_partial_fc_batch_mismatch_raises_value_error():
    with pytest.raises(ValueError, match="match the batch"):
        partial_fc.PartialFCLoss(4, 10)(torch.randn(3, 4), torch.tensor([1, 2]))


def test_partial_fc_script_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "snippets/pytorch/partial_fc.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "index[remapped] == labels: True" in result.stdout


def test_margin_logits_at_cos_one_are_cos_m_to_float64_precision():
    # Same sin clamp as margins.py (1e-20): at cos = 1 the ArcFace target is cos(m) to 1e-10; 1e-12 would be 4.8e-7 off.
    cosine = torch.tensor([[1.0, 0.2]], dtype=torch.float64)
    logits = partial_fc._margin_logits(cosine, torch.tensor([0]), "arcface", 1.0, 0.5)
    assert abs(logits[0, 0].item() - math.cos(0.5)) < 1e-9
