"""Tests of snippets/pytorch/subcenter.py.

Oracles: a float64 `reference_logits` written here from the paper (max over sub-centers, then ArcFace with acos),
worked example E8 of tests/worked_examples.md, and pytorch-metric-learning 2.9.0's
SubCenterArcFaceLoss (loss, gradients and get_outliers).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from oracles import cosine_matrix, cross_entropy
from oracles import reference_subcenter_logits as reference_logits
from pytorch_metric_learning import losses as pml_losses
from snippet_loader import load_snippet
from torch import nn

subcenter = load_snippet("pytorch/subcenter.py")


class Head(nn.Module):
    """SubCenterCosineClassifier + SubCenterArcFaceLoss as a training loop uses them: loss(classifier(x), y)."""

    def __init__(self, embedding_size, num_classes, num_subcenters=3, s=64.0, m=0.5):
        super().__init__()
        self.classifier = subcenter.SubCenterCosineClassifier(embedding_size, num_classes, num_subcenters)
        self.loss = subcenter.SubCenterArcFaceLoss(num_subcenters, s, m)

    @property
    def weight(self):
        return self.classifier.weight

    def cosine(self, embeddings):
        return self.classifier(embeddings)

    def forward(self, embeddings, labels):
        return self.loss(self.classifier(embeddings), labels)


def with_mirrored_subcenters(cosine):
    """K = 2 where each class's second sub-center is minus the first: the class cosine becomes |c|."""
    cosine = torch.tensor(cosine, dtype=torch.float64)
    return torch.stack([cosine, -cosine], dim=2).reshape(len(cosine), -1)


def random_cosines(batch=12, classes=5, num_subcenters=3, seed=0, low=-1.0, high=1.0):
    generator = torch.Generator().manual_seed(seed)
    cosine = low + (high - low) * torch.rand(batch, classes * num_subcenters, generator=generator, dtype=torch.float64)
    return cosine, torch.randint(0, classes, (batch,), generator=generator)


def test_subcenter_matches_worked_example_e8():
    # E3's cosines with mirrored sub-centers and PML's default margin 28.6 degrees, s = 64.
    cosine, labels = with_mirrored_subcenters([[0.8, 0.3, -0.2], [0.1, 0.6, -0.4]]), torch.tensor([0, 1])
    logits = subcenter.subcenter_arcface_logits(cosine, labels, num_subcenters=2, s=64.0, m=math.radians(28.6))
    losses = F.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(losses, torch.tensor([6.30110e-04, 16.3944770], dtype=torch.float64), rtol=1e-5, atol=0)
    assert losses.mean().item() == pytest.approx(8.197553530364138, rel=1e-12)


def test_subcenter_with_one_subcenter_is_arcface_worked_example_e2():
    cosine, labels = torch.tensor([[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]], dtype=torch.float64), torch.tensor([0, 1])
    logits = subcenter.subcenter_arcface_logits(cosine, labels, num_subcenters=1, s=64.0, m=0.5)
    assert F.cross_entropy(logits, labels).item() == pytest.approx(1.4844746655638588, rel=1e-12)


@pytest.mark.parametrize("num_subcenters", [1, 2, 3])
def test_subcenter_matches_float64_reference_on_random_cosines(num_subcenters):
    cosine, labels = random_cosines(num_subcenters=num_subcenters)
    expected = reference_logits(cosine.numpy(), labels.tolist(), num_subcenters, 64.0, 0.5)
    logits = subcenter.subcenter_arcface_logits(cosine, labels, num_subcenters, s=64.0, m=0.5)
    torch.testing.assert_close(logits, torch.from_numpy(expected), rtol=1e-12, atol=1e-12)


def test_subcenter_float32_matches_float64_reference():
    cosine, labels = random_cosines()
    expected = reference_logits(cosine.float().double().numpy(), labels.tolist(), 3, 64.0, 0.5)
    logits = subcenter.subcenter_arcface_logits(cosine.float(), labels, 3, s=64.0, m=0.5)
    torch.testing.assert_close(logits.double(), torch.from_numpy(expected), rtol=1e-5, atol=1e-4)


def pml_pair(m=0.5, s=64.0, num_subcenters=3):
    torch.manual_seed(1)
    head = Head(8, 5, num_subcenters=num_subcenters, s=s, m=m)
    pml_loss = pml_losses.SubCenterArcFaceLoss(
        num_classes=5, embedding_size=8, margin=math.degrees(m), scale=s, sub_centers=num_subcenters
    )
    with torch.no_grad():
        head.weight.normal_()
        pml_loss.W.copy_(head.weight.T)  # PML's W is [D, C·K] with the same class-major column order
    return head, pml_loss, torch.randn(16, 8), torch.randint(0, 5, (16,))


@pytest.mark.parametrize("m", [0.5, 0.2])
def test_subcenter_loss_matches_pml_subcenterarcfaceloss(m):
    head, pml_loss, embeddings, labels = pml_pair(m=m)
    ours_x, theirs_x = embeddings.clone().requires_grad_(), embeddings.clone().requires_grad_()
    ours, theirs = head(ours_x, labels), pml_loss(theirs_x, labels)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=0)
    torch.testing.assert_close(ours_x.grad, theirs_x.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(head.weight.grad, pml_loss.W.grad.T, rtol=1e-5, atol=1e-6)


def test_subcenter_outliers_match_pml_get_outliers():
    head, pml_loss, embeddings, labels = pml_pair()
    dominant, outliers = subcenter.subcenter_outliers(head.cosine(embeddings), labels, 3)
    pml_outliers, pml_dominant = pml_loss.get_outliers(embeddings, labels)
    assert outliers.any() and not outliers.all()  # the check below compares a non-trivial split
    assert sorted(outliers.nonzero()[:, 0].tolist()) == sorted(pml_outliers.tolist())
    for label in labels.unique().tolist():
        torch.testing.assert_close(pml_dominant[:, label], head.weight[label * 3 + dominant[label]].detach())


def test_subcenter_outliers_flags_the_sample_far_from_the_dominant_subcenter():
    # class 0: samples 0 and 1 sit at sub-center 1 (dominant); sample 2 sits at sub-center 0, at 84 degrees
    # (cos 0.1) from sub-center 1: an outlier. Class 1: one sample, its nearest sub-center is dominant.
    cosine = torch.tensor([[0.2, 0.9, 0.0, 0.0], [0.1, 0.8, 0.0, 0.0], [0.95, 0.1, 0.0, 0.0], [0.0, 0.0, 0.3, 0.2]])
    dominant, outliers = subcenter.subcenter_outliers(cosine, torch.tensor([0, 0, 0, 1]), num_subcenters=2)
    assert dominant.tolist() == [1, 0]
    assert outliers.tolist() == [False, False, True, False]


def test_subcenter_passes_gradcheck_away_from_kinks():
    cosine, labels = random_cosines(batch=5, classes=3, num_subcenters=2, seed=2, low=-0.8, high=0.95)
    cosine.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda c: subcenter.subcenter_arcface_logits(c, labels, 2, s=64.0, m=0.5), (cosine,)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_subcenter_gradient_is_finite_at_cos_plus_and_minus_one_and_past_pi_minus_m(dtype):
    cosine = torch.tensor(
        [[1.0, -1.0, 0.2, 0.1], [-1.0, -1.0, 1.0, 0.3], [-0.95, -0.99, 0.5, 0.5]], dtype=dtype, requires_grad=True
    )
    labels = torch.tensor([0, 0, 0])
    logits = subcenter.subcenter_arcface_logits(cosine, labels, 2, s=64.0, m=0.5)
    F.cross_entropy(logits, labels).backward()
    assert torch.isfinite(logits).all() and torch.isfinite(cosine.grad).all()


def test_subcenter_loss_is_finite_for_an_all_zero_embedding():
    head = Head(4, 3, num_subcenters=2)
    embeddings = torch.zeros(2, 4)
    embeddings[1, 0] = 1.0
    embeddings.requires_grad_()
    loss = head(embeddings, torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all() and torch.isfinite(head.weight.grad).all()


def test_subcenter_under_autocast_bf16_computes_the_margin_in_float32():
    torch.manual_seed(3)
    head = Head(16, 10, num_subcenters=3)
    embeddings, labels = torch.randn(8, 16, requires_grad=True), torch.arange(8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cosine = head.cosine(embeddings)
        logits = subcenter.subcenter_arcface_logits(cosine, labels, 3)
        loss = F.cross_entropy(logits, labels)
    loss.backward()
    assert cosine.dtype == torch.bfloat16 and logits.dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all()
    assert torch.equal(logits, subcenter.subcenter_arcface_logits(cosine.float(), labels, 3))


def test_subcenter_float16_cosines_give_float32_logits():
    cosine, labels = random_cosines()
    logits = subcenter.subcenter_arcface_logits(cosine.half(), labels, 3)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, subcenter.subcenter_arcface_logits(cosine.half().float(), labels, 3))


def test_subcenter_loss_is_invariant_to_rescaling_embeddings_and_weights():
    torch.manual_seed(4)
    head = Head(6, 4, num_subcenters=3).double()
    embeddings, labels = torch.randn(9, 6, dtype=torch.float64), torch.randint(0, 4, (9,))
    before = head(embeddings, labels).item()
    with torch.no_grad():
        head.weight.mul_(7.0)
    assert head(3.0 * embeddings, labels).item() == pytest.approx(before, rel=1e-12)


def test_subcenter_module_matches_float64_reference_end_to_end():
    torch.manual_seed(5)
    head = Head(6, 4, num_subcenters=2, s=30.0, m=0.4).double()
    embeddings, labels = torch.randn(9, 6, dtype=torch.float64), torch.randint(0, 4, (9,))
    cosine = cosine_matrix(embeddings.numpy(), head.weight.detach().numpy())
    expected = cross_entropy(reference_logits(cosine, labels.tolist(), 2, 30.0, 0.4), labels.numpy())
    assert head(embeddings, labels).item() == pytest.approx(expected, rel=1e-10)


GOOD = torch.zeros(2, 6, dtype=torch.float64), torch.tensor([0, 2])


@pytest.mark.parametrize(
    "cosine, labels, kwargs, message",
    [
        (torch.zeros(6, dtype=torch.float64), GOOD[1], {}, "2-D"),
        (torch.zeros(0, 6, dtype=torch.float64), torch.zeros(0, dtype=torch.long), {}, "empty"),
        (GOOD[0], torch.tensor([0.0, 2.0]), {}, "integer"),
        (GOOD[0], torch.tensor([0, 1, 2]), {}, "shape"),
        (GOOD[0], torch.tensor([0, 3]), {}, r"\[0, 3\)"),
        (GOOD[0], torch.tensor([-1, 0]), {}, r"\[0, 3\)"),
        (torch.zeros(2, 7, dtype=torch.float64), GOOD[1], {}, "multiple of num_subcenters"),
        (*GOOD, {"num_subcenters": 0}, "num_subcenters must be a positive integer"),
        (*GOOD, {"num_subcenters": 1.5}, "num_subcenters must be a positive integer"),
        (*GOOD, {"s": 0.0}, "scale s"),
        (*GOOD, {"m": math.pi / 2}, "ArcFace margin m"),
        (*GOOD, {"m": -0.1}, "ArcFace margin m"),
    ],
    ids=[
        "1d",
        "empty",
        "float-labels",
        "shape",
        "label-too-big",
        "label-negative",
        "columns",
        "k-zero",
        "k-float",
        "s-zero",
        "m-pi/2",
        "m-negative",
    ],
)
def test_subcenter_rejects_bad_input(cosine, labels, kwargs, message):
    kwargs = {"num_subcenters": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        subcenter.subcenter_arcface_logits(cosine, labels, **kwargs)


def test_subcenter_module_rejects_bad_arguments_at_construction():
    with pytest.raises(ValueError, match="ArcFace margin m"):
        Head(4, 3, num_subcenters=2, m=3.0)


def test_subcenter_outliers_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        subcenter.subcenter_outliers(torch.zeros(2, 4), torch.tensor([0, 2]), num_subcenters=2)
