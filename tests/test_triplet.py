"""Tests of snippets/pytorch/triplet.py.

Oracles: float64 `reference_*` loops written here from the definitions (FaceNet; Hermans et al. 2017), worked
example E9 of tests/worked_examples.md, and pytorch-metric-learning 2.9.0
(TripletMarginLoss over all triplets, with BatchHardMiner, and with explicit triplets).
"""

import numpy as np
import pytest
import torch
from oracles import distance, reference_batch_all, reference_batch_hard
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.reducers import MeanReducer
from snippet_loader import load_snippet

triplet = load_snippet("pytorch/triplet.py")

# E9: four unit vectors in 2-D, two classes.
E9 = [[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]]
E9_LABELS = [0, 0, 1, 1]
E9_NO_VIOLATION = [[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]]


def random_batch(p=4, k=4, dim=8, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(p * k, dim, generator=generator, dtype=torch.float64)
    labels = torch.arange(p).repeat_interleave(k)[torch.randperm(p * k, generator=generator)]
    return embeddings.to(dtype), labels


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


# ------------------------------------------------------------------------------------------- worked numbers
def test_pairwise_distances_match_worked_example_e9():
    expected = [
        [0, 0.894427191, 0.632455532, 1.4142135624],
        [0.894427191, 0, 0.2828427125, 0.632455532],
        [0.632455532, 0.2828427125, 0, 0.894427191],
        [1.4142135624, 0.632455532, 0.894427191, 0],
    ]
    torch.testing.assert_close(triplet.pairwise_distances(t(E9)), t(expected), rtol=0, atol=2e-6)


@pytest.mark.parametrize(
    "a, p, n, expected",
    [
        (0, 1, 2, 0.311971659),
        (0, 1, 3, 0.0),
        (1, 0, 2, 0.6615844785),
        (1, 0, 3, 0.311971659),
        (2, 3, 0, 0.311971659),
        (2, 3, 1, 0.6615844785),
        (3, 2, 0, 0.0),
        (3, 2, 1, 0.311971659),
    ],
)
def test_triplet_loss_matches_worked_example_e9(a, p, n, expected):
    x = t(E9)
    assert triplet.triplet_loss(x[[a]], x[[p]], x[[n]], margin=0.05).item() == pytest.approx(expected, abs=1e-9)


def test_batch_all_matches_worked_example_e9():
    loss = triplet.batch_all_triplet_loss(t(E9), torch.tensor(E9_LABELS), margin=0.05)
    assert loss.item() == pytest.approx(0.42850926548592566, rel=1e-12)  # 6 of the 8 triplets are > 0


def test_batch_hard_matches_worked_example_e9():
    loss = triplet.batch_hard_triplet_loss(t(E9), torch.tensor(E9_LABELS), margin=0.05)
    assert loss.item() == pytest.approx(0.48677806874576846, rel=1e-12)


@pytest.mark.parametrize("margin, expected", [(0.05, 0.0), (0.5, 0.23802834103375992), (1.0, 0.3915040934516405)])
def test_batch_all_matches_worked_no_violation_set(margin, expected):
    loss = triplet.batch_all_triplet_loss(t(E9_NO_VIOLATION), torch.tensor(E9_LABELS), margin=margin)
    assert loss.item() == pytest.approx(expected, rel=1e-12, abs=1e-15)


# ------------------------------------------------------------------------------------- random vs reference
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.2, 2.0])
def test_batch_all_matches_float64_reference(seed, margin):
    x, labels = random_batch(seed=seed)
    expected = reference_batch_all(x.numpy(), labels.tolist(), margin)
    assert triplet.batch_all_triplet_loss(x, labels, margin).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("margin", [0.2, 2.0])
def test_batch_hard_matches_float64_reference(seed, margin):
    x, labels = random_batch(seed=seed)
    expected = reference_batch_hard(x.numpy(), labels.tolist(), margin)
    assert triplet.batch_hard_triplet_loss(x, labels, margin).item() == pytest.approx(expected, rel=1e-10)


def test_triplet_loss_matches_float64_reference():
    generator = torch.Generator().manual_seed(3)
    a, p, n = (torch.randn(10, 6, generator=generator, dtype=torch.float64) for _ in range(3))
    expected = np.mean([max(0.0, distance(a[i], p[i]) - distance(a[i], n[i]) + 1.0) for i in range(10)])
    assert triplet.triplet_loss(a, p, n, margin=1.0).item() == pytest.approx(expected, rel=1e-12)


def test_batch_hard_skips_anchors_without_a_positive():
    # class 2 has one sample: it cannot be an anchor, but it is still a negative for the others
    x, labels = t(E9 + [[0.7, 0.7]]), torch.tensor(E9_LABELS + [2])
    expected = reference_batch_hard(x.numpy(), labels.tolist(), 0.05)
    assert expected != pytest.approx(0.48677806874576846)  # the singleton changes the hardest negatives
    assert triplet.batch_hard_triplet_loss(x, labels, 0.05).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("fn", [triplet.batch_hard_triplet_loss, triplet.batch_all_triplet_loss])
@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3]], ids=["one-class", "all-distinct"])
def test_batch_loss_without_any_valid_triplet_is_zero_with_zero_gradient(fn, labels):
    x = t(E9).requires_grad_()
    loss = fn(x, torch.tensor(labels), margin=0.2)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


# ---------------------------------------------------------------------------- pytorch-metric-learning oracle
RAW = LpDistance(normalize_embeddings=False, p=2, power=1)  # Euclidean on the embeddings as given


def assert_same_loss_and_gradient(ours_fn, pml_fn, embeddings):
    ours_x, pml_x = embeddings.clone().requires_grad_(), embeddings.clone().requires_grad_()
    ours, theirs = ours_fn(ours_x), pml_fn(pml_x)
    ours.backward()
    theirs.backward()
    assert theirs.item() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=0)
    torch.testing.assert_close(ours_x.grad, pml_x.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_all_matches_pml_triplet_margin_loss_over_all_triplets(seed):
    x, labels = random_batch(seed=seed, dtype=torch.float32)
    pml_loss = pml_losses.TripletMarginLoss(margin=0.5, distance=RAW)  # AvgNonZeroReducer: mean over loss > 0
    assert_same_loss_and_gradient(
        lambda e: triplet.batch_all_triplet_loss(e, labels, 0.5), lambda e: pml_loss(e, labels), x
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_hard_matches_pml_batch_hard_miner(seed):
    x, labels = random_batch(seed=seed, dtype=torch.float32)
    miner = pml_miners.BatchHardMiner(distance=RAW)
    pml_loss = pml_losses.TripletMarginLoss(margin=0.5, distance=RAW, reducer=MeanReducer())  # mean over anchors
    assert_same_loss_and_gradient(
        lambda e: triplet.batch_hard_triplet_loss(e, labels, 0.5), lambda e: pml_loss(e, labels, miner(e, labels)), x
    )


def test_triplet_loss_matches_pml_with_explicit_triplets():
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(18, 5, generator=generator)
    labels = torch.arange(3).repeat(6)  # rows 0..5 anchors, 6..11 positives, 12..17 negatives below
    a, p, n = torch.arange(0, 6), torch.arange(6, 12), torch.arange(12, 18)
    labels[p], labels[n] = labels[a], (labels[a] + 1) % 3
    pml_loss = pml_losses.TripletMarginLoss(margin=1.0, distance=RAW, reducer=MeanReducer())
    assert_same_loss_and_gradient(
        lambda e: triplet.triplet_loss(e[a], e[p], e[n], margin=1.0), lambda e: pml_loss(e, labels, (a, p, n)), x
    )


# ------------------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("fn", [triplet.batch_hard_triplet_loss, triplet.batch_all_triplet_loss])
def test_batch_loss_passes_gradcheck(fn):
    x, labels = random_batch(p=3, k=3, dim=4, seed=5)
    assert torch.autograd.gradcheck(lambda e: fn(e, labels, 1.0), (x.requires_grad_(),))


def test_triplet_loss_passes_gradcheck():
    generator = torch.Generator().manual_seed(6)
    a, p, n = (torch.randn(5, 4, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda *x: triplet.triplet_loss(*x, margin=1.0), (a, p, n))


@pytest.mark.parametrize("fn", [triplet.batch_hard_triplet_loss, triplet.batch_all_triplet_loss])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_loss_gradient_is_finite_when_embeddings_coincide(fn, dtype):
    x = t([[0.3, 0.4], [0.3, 0.4], [0.3, 0.4], [1.0, 0.0], [1.0, 0.0]], dtype).requires_grad_()
    loss = fn(x, torch.tensor([0, 0, 1, 1, 2]), margin=0.2)  # positive AND negative at distance 0
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(x.grad).all()


def test_triplet_loss_gradient_is_finite_when_embeddings_coincide():
    a = torch.tensor([[0.3, 0.4]], requires_grad=True)
    loss = triplet.triplet_loss(a, a.detach().clone(), a.detach().clone(), margin=0.2)
    loss.backward()
    assert loss.item() == pytest.approx(0.2) and torch.isfinite(a.grad).all()


@pytest.mark.parametrize("fn", [triplet.batch_hard_triplet_loss, triplet.batch_all_triplet_loss])
def test_batch_loss_scales_with_embeddings_and_margin_together(fn):
    x, labels = random_batch(seed=7)
    assert fn(3.0 * x, labels, 0.6).item() == pytest.approx(3.0 * fn(x, labels, 0.2).item(), rel=1e-12)


@pytest.mark.parametrize("fn", [triplet.batch_hard_triplet_loss, triplet.batch_all_triplet_loss])
def test_batch_loss_under_autocast_bf16_computes_distances_in_float32(fn):
    x, labels = random_batch(seed=8, dtype=torch.float32)
    x = torch.nn.functional.normalize(x, dim=1)
    expected = fn(x, labels, 0.2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = fn(x, labels, 0.2)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("fn", [triplet.batch_hard_triplet_loss, triplet.batch_all_triplet_loss])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_batch_loss_on_low_precision_embeddings_is_float32(fn, dtype):
    x, labels = random_batch(seed=9, dtype=dtype)
    x.requires_grad_()
    loss = fn(x, labels, 0.2)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(x.grad).all()
    torch.testing.assert_close(loss, fn(x.detach().float(), labels, 0.2), rtol=1e-6, atol=0)


# ----------------------------------------------------------------------------------------------- P×K batches
def test_pk_batches_hold_p_classes_with_k_samples_each():
    labels = torch.arange(10).repeat_interleave(torch.tensor([5, 6, 2, 4, 4, 8, 4, 3, 4, 9]))
    batches = triplet.pk_batches(labels, p=3, k=4, seed=0)
    assert len(batches) == 3  # 10 classes // 3
    seen = []
    for batch in batches:
        counts = torch.bincount(labels[batch], minlength=10)
        assert len(batch) == 12 and sorted(counts[counts > 0].tolist()) == [4, 4, 4]
        seen += counts.nonzero()[:, 0].tolist()
    assert len(set(seen)) == 9  # each class at most once per pass
    big = [b for b in batches if (labels[b] == 5).any()]
    assert not big or len(set(big[0]) & set((labels == 5).nonzero()[:, 0].tolist())) == 4  # no repeats if ≥ k


def test_pk_batches_are_reproducible_with_a_seed():
    labels = torch.arange(6).repeat(5)
    first = triplet.pk_batches(labels, 2, 3, seed=1)
    assert first == triplet.pk_batches(labels, 2, 3, seed=1)


def test_pk_batches_reject_more_classes_than_exist():
    with pytest.raises(ValueError, match="number of classes"):
        triplet.pk_batches(torch.tensor([0, 0, 1, 1]), p=3, k=2)


# ----------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("fn", [triplet.batch_hard_triplet_loss, triplet.batch_all_triplet_loss])
@pytest.mark.parametrize(
    "embeddings, labels, margin, message",
    [
        (t([1.0, 2.0]), torch.tensor([0, 1]), 0.2, "2-D"),
        (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 0.2, "empty"),
        (torch.zeros(2, 2, dtype=torch.long), torch.tensor([0, 1]), 0.2, "float"),
        (t([[1.0, 0.0], [0.0, 1.0]]), t([0.0, 1.0]), 0.2, "integer"),
        (t([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1, 1]), 0.2, "shape"),
        (t([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]), -0.1, "margin"),
        (t([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]), float("nan"), "margin"),
    ],
    ids=["1d", "empty", "int-embeddings", "float-labels", "shape", "negative-margin", "nan-margin"],
)
def test_batch_loss_rejects_bad_input(fn, embeddings, labels, margin, message):
    with pytest.raises(ValueError, match=message):
        fn(embeddings, labels, margin)


def test_triplet_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        triplet.triplet_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, 3))


def test_triplet_loss_rejects_negative_margin():
    with pytest.raises(ValueError, match="margin"):
        triplet.triplet_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), margin=-1.0)
