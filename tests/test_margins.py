"""Tests of snippets/pytorch/margins.py.

Oracles: the float64 `reference_*` formulas of tests/oracles.py, written from the papers (acos-based, unlike the
snippet's sqrt/Chebyshev/atan2 forms), the worked numbers of tests/worked_examples.md (E2, E3 and table T), and
pytorch-metric-learning 2.9.0 (ArcFaceLoss, CosFaceLoss, SphereFaceLoss) as an independent implementation.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import cosine_matrix, cross_entropy, reference_logits
from pytorch_metric_learning import losses as pml_losses
from snippet_loader import load_snippet
from torch import nn

margins = load_snippet("pytorch/margins.py")

# E2 and E3 of tests/worked_examples.md: 2 samples x 3 classes, targets 0 and 1.
E2_COSINE = [[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]]
E3_COSINE = [[0.8, 0.3, -0.2], [0.1, 0.6, -0.4]]
E2_LABELS = [0, 1]


class Head(nn.Module):
    """CosineClassifier + MarginLoss as a training loop uses them: head(x, y) = loss(classifier(x), y)."""

    def __init__(self, embedding_size, num_classes, margin="arcface", **margin_args):
        super().__init__()
        self.classifier = margins.CosineClassifier(embedding_size, num_classes)
        self.loss = margins.MarginLoss(margin, **margin_args)
        self.margin_logits, self.margin_args = self.loss.margin_logits, self.loss.margin_args

    def forward(self, embeddings, labels):
        return self.loss(self.classifier(embeddings), labels)


# (kind, snippet function, keyword arguments) for every margin function with non-default, typical settings.
CASES = [
    ("normface", margins.normface_logits, dict(s=30.0)),
    ("sphereface", margins.sphereface_logits, dict(s=30.0, m=4)),
    ("cosface", margins.cosface_logits, dict(s=64.0, m=0.35)),
    ("arcface", margins.arcface_logits, dict(s=64.0, m=0.5)),
    ("combined", margins.combined_margin_logits, dict(s=64.0, m1=1.2, m2=0.4, m3=0.1)),
]
CASE_IDS = [case[0] for case in CASES]


def call_reference(kind, cosine, labels, kwargs):
    kwargs = dict(kwargs)
    s = kwargs.pop("s")
    return reference_logits(cosine, labels, kind, s, **kwargs)


def random_cosines(batch=16, classes=10, seed=0, low=-1.0, high=1.0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    cosine = low + (high - low) * torch.rand(batch, classes, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, classes, (batch,), generator=generator)
    return cosine.to(dtype), labels


def t(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


# ------------------------------------------------------------------------------------------- worked numbers
def test_arcface_matches_worked_example_e2():
    logits = margins.arcface_logits(t(E2_COSINE), torch.tensor(E2_LABELS), s=64.0, m=0.5)
    expected = [[17.40348648, 19.2, 6.4], [12.8, 21.82891101, 22.4]]
    torch.testing.assert_close(logits, t(expected), rtol=0, atol=5e-8)
    loss = F.cross_entropy(logits, torch.tensor(E2_LABELS))
    assert loss.item() == pytest.approx(1.4844746655638588, rel=1e-12)


@pytest.mark.parametrize("s, expected", [(30.0, 1.0221400992766618), (8.0, 0.8962543555627986)])
def test_arcface_worked_example_e2_loss_at_other_scales(s, expected):
    logits = margins.arcface_logits(t(E2_COSINE), torch.tensor(E2_LABELS), s=s, m=0.5)
    assert F.cross_entropy(logits, torch.tensor(E2_LABELS)).item() == pytest.approx(expected, rel=1e-12)


def test_arcface_float32_matches_worked_example_e2():
    logits = margins.arcface_logits(t(E2_COSINE, torch.float32), torch.tensor(E2_LABELS), s=64.0, m=0.5)
    assert F.cross_entropy(logits, torch.tensor(E2_LABELS)).item() == pytest.approx(1.4844746655638588, rel=1e-5)


# Table T of tests/worked_examples.md: unscaled target for m = 0.5 rad on both sides of θ = π - m (c = -0.87, -0.9).
TABLE_T = [
    (1.0, 0.8775825619),
    (0.99, 0.8011754413),
    (0.8, 0.4144107263),
    (0.5, 0.0235965853),
    (0.0, -0.4794255386),
    (-0.2, -0.6452556881),
    (-0.5, -0.8539859766),
    (-0.8, -0.9897213727),
    (-0.87, -0.9998784159),
    (-0.9, -1.1397127693),
    (-0.95, -1.1897127693),
    (-1.0, -1.2397127693),
]


@pytest.mark.parametrize("c, expected", TABLE_T)
def test_arcface_target_matches_table_t(c, expected):
    logits = margins.arcface_logits(t([[c, 0.0]]), torch.tensor([0]), s=1.0, m=0.5)
    assert logits[0, 0].item() == pytest.approx(expected, abs=1e-10)


def test_arcface_fallback_matches_worked_example_e4():
    cosine, labels = t([[0.8, 0.3, -0.2], [0.1, 0.6, -0.95]]), torch.tensor([0, 2])
    logits = margins.arcface_logits(cosine, labels, s=64.0, m=0.5)
    assert logits[1, 2].item() == pytest.approx(-76.1416172353345, rel=1e-12)
    assert F.cross_entropy(logits, labels).item() == pytest.approx(57.271138833558666, rel=1e-12)


@pytest.mark.parametrize(
    "cosine, m, expected",
    [
        (E2_COSINE, 0.35, 0.03995471354695432),
        (E3_COSINE, 0.35, 6.772644300312436e-05),
        (E3_COSINE, 0.40, 0.0016601784140455322),
    ],
)
def test_cosface_matches_worked_losses(cosine, m, expected):
    logits = margins.cosface_logits(t(cosine), torch.tensor(E2_LABELS), s=64.0, m=m)
    assert F.cross_entropy(logits, torch.tensor(E2_LABELS)).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("c, expected", [(0.8, -0.8432), (0.5, -1.5), (0.0, -3.0), (-0.5, -4.5), (-0.95, -6.29605)])
def test_sphereface_psi_matches_table_7(c, expected):
    logits = margins.sphereface_logits(t([[c, 0.0]]), torch.tensor([0]), s=1.0, m=4)
    assert logits[0, 0].item() == pytest.approx(expected, abs=1e-12)


def test_sphereface_matches_worked_example_e8():
    logits = margins.sphereface_logits(t(E3_COSINE), torch.tensor(E2_LABELS), s=1.0, m=4)
    assert F.cross_entropy(logits, torch.tensor(E2_LABELS)).item() == pytest.approx(1.8461258491387342, rel=1e-12)


@pytest.mark.parametrize(
    "m1, m2, m3, expected",
    [
        (1.0, 0.3, 0.2, 0.3869570673),
        (0.9, 0.4, 0.15, 0.4077274399),
        (1.2, 0.4, 0.0, 0.3881238642),
        (1.0, 0.0, 0.35, 0.45),
        (1.0, 0.5, 0.0, 0.4144107263),
    ],
)
def test_combined_margin_matches_table_7_at_cos_0_8(m1, m2, m3, expected):
    logits = margins.combined_margin_logits(t([[0.8, 0.1]]), torch.tensor([0]), s=1.0, m1=m1, m2=m2, m3=m3)
    assert logits[0, 0].item() == pytest.approx(expected, abs=1e-10)


# ------------------------------------------------------------------------------------- random vs reference
@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
def test_margin_matches_float64_reference_on_random_cosines(kind, fn, kwargs):
    cosine, labels = random_cosines()
    expected = call_reference(kind, cosine.tolist(), labels.tolist(), kwargs)
    torch.testing.assert_close(fn(cosine, labels, **kwargs), torch.from_numpy(expected), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
def test_margin_float32_matches_float64_reference(kind, fn, kwargs):
    cosine, labels = random_cosines(dtype=torch.float32)
    expected = call_reference(kind, cosine.double().tolist(), labels.tolist(), kwargs)
    logits = fn(cosine, labels, **kwargs)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits.double(), torch.from_numpy(expected), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
def test_margin_changes_only_the_target_column(kind, fn, kwargs):
    cosine, labels = random_cosines()
    logits = fn(cosine, labels, **kwargs)
    off_target = torch.ones_like(cosine, dtype=torch.bool).scatter(1, labels[:, None], False)
    assert torch.equal(logits[off_target], kwargs["s"] * cosine[off_target])


# ---------------------------------------------------------------------------- pytorch-metric-learning oracle
def pml_pair(margin, pml_loss, **margin_args):
    """Our MarginLoss and a PML loss holding the same class weights (PML's W is [D, C], ours [C, D])."""
    torch.manual_seed(1)
    head = Head(8, 5, margin=margin, **margin_args)
    with torch.no_grad():
        head.classifier.weight.normal_()
        pml_loss.W.copy_(head.classifier.weight.T)
    embeddings = torch.randn(12, 8)
    labels = torch.randint(0, 5, (12,))
    return head, embeddings, labels


def assert_same_loss_and_gradients(head, pml_loss, embeddings, labels, rtol):
    ours_x, theirs_x = embeddings.clone().requires_grad_(), embeddings.clone().requires_grad_()
    ours, theirs = head(ours_x, labels), pml_loss(theirs_x, labels)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=0)
    torch.testing.assert_close(ours_x.grad, theirs_x.grad, rtol=rtol, atol=1e-6)
    torch.testing.assert_close(head.classifier.weight.grad, pml_loss.W.grad.T, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("m", [0.5, 0.3])
def test_arcface_loss_matches_pml_arcfaceloss(m):
    pml_loss = pml_losses.ArcFaceLoss(num_classes=5, embedding_size=8, margin=math.degrees(m), scale=64.0)
    head, embeddings, labels = pml_pair("arcface", pml_loss, s=64.0, m=m)
    assert_same_loss_and_gradients(head, pml_loss, embeddings, labels, rtol=1e-5)


def test_cosface_loss_matches_pml_cosfaceloss():
    pml_loss = pml_losses.CosFaceLoss(num_classes=5, embedding_size=8, margin=0.35, scale=64.0)
    head, embeddings, labels = pml_pair("cosface", pml_loss, s=64.0, m=0.35)
    assert_same_loss_and_gradients(head, pml_loss, embeddings, labels, rtol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 warning inside PML's binomial table
def test_sphereface_loss_matches_pml_spherefaceloss_on_unit_embeddings():
    # PML multiplies ψ by the embedding norm (SphereFace's un-normalized features): feed unit vectors.
    pml_loss = pml_losses.SphereFaceLoss(num_classes=5, embedding_size=8, margin=4, scale=2.0)
    head, embeddings, labels = pml_pair("sphereface", pml_loss, s=2.0, m=4)
    embeddings = F.normalize(embeddings, dim=1)
    torch.testing.assert_close(head(embeddings, labels), pml_loss(embeddings, labels), rtol=1e-5, atol=0)


def test_arcface_with_pml_default_degrees_matches_worked_example_e2():
    # PML's default margin is 28.6 degrees = 0.49916 rad, not 0.5 rad: E2 then gives 1.44656..., not 1.48447...
    logits = margins.arcface_logits(t(E2_COSINE), torch.tensor(E2_LABELS), s=64.0, m=math.radians(28.6))
    assert F.cross_entropy(logits, torch.tensor(E2_LABELS)).item() == pytest.approx(1.4465641643199874, rel=1e-12)


# ---------------------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
def test_margin_loss_matches_float64_reference_end_to_end(kind, fn, kwargs):
    torch.manual_seed(2)
    head = Head(6, 4, margin=kind, **kwargs).double()
    embeddings, labels = torch.randn(9, 6, dtype=torch.float64), torch.randint(0, 4, (9,))
    cosine = cosine_matrix(embeddings.numpy(), head.classifier.weight.detach().numpy())
    expected = cross_entropy(call_reference(kind, cosine.tolist(), labels.tolist(), kwargs), labels)
    assert head(embeddings, labels).item() == pytest.approx(expected, rel=1e-10)


def test_cosine_classifier_returns_cosines_of_normalized_vectors():
    torch.manual_seed(3)
    classifier = margins.CosineClassifier(5, 7).double()
    embeddings = torch.randn(4, 5, dtype=torch.float64)
    x, w = embeddings.numpy(), classifier.weight.detach().numpy()
    expected = (x @ w.T) / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(w, axis=1))
    assert classifier.weight.shape == (7, 5)
    np.testing.assert_allclose(classifier(embeddings).detach().numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
def test_margin_loss_is_invariant_to_rescaling_embeddings_and_weights(kind, fn, kwargs):
    torch.manual_seed(4)
    head = Head(6, 4, margin=kind, **kwargs).double()
    embeddings, labels = torch.randn(9, 6, dtype=torch.float64), torch.randint(0, 4, (9,))
    before = head(embeddings, labels)
    with torch.no_grad():
        head.classifier.weight.mul_(7.0)
    assert head(3.0 * embeddings, labels).item() == pytest.approx(before.item(), rel=1e-12)


# ------------------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
def test_margin_passes_gradcheck_away_from_kinks(kind, fn, kwargs):
    # [-0.8, 0.95] avoids cos θ = ±1 and ArcFace's switch at cos(π - 0.5) = -0.878.
    cosine, labels = random_cosines(batch=6, classes=4, seed=5, low=-0.8, high=0.95)
    cosine.requires_grad_()
    assert torch.autograd.gradcheck(lambda c: fn(c, labels, **kwargs), (cosine,))


@pytest.mark.parametrize("kind", CASE_IDS)
def test_margin_loss_passes_gradcheck_for_embeddings_and_weights(kind):
    torch.manual_seed(6)
    head = Head(5, 4, margin=kind, s=8.0).double()
    embeddings = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    weight = head.classifier.weight.detach().clone().requires_grad_()
    labels = torch.randint(0, 4, (6,))

    def loss(x, w):
        return torch.func.functional_call(head, {"classifier.weight": w}, (x, labels))

    assert torch.autograd.gradcheck(loss, (embeddings, weight))


EDGE_COSINE = [[1.0, -1.0, 0.2], [-1.0, 1.0, 0.3], [0.5, -0.95, 1.0], [-1.0, -1.0, -1.0]]
EDGE_LABELS = [0, 0, 1, 2]


@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_margin_gradient_is_finite_at_cos_plus_and_minus_one(kind, fn, kwargs, dtype):
    cosine = t(EDGE_COSINE, dtype).requires_grad_()
    logits = fn(cosine, torch.tensor(EDGE_LABELS), **kwargs)
    F.cross_entropy(logits, torch.tensor(EDGE_LABELS)).backward()
    assert torch.isfinite(logits).all() and torch.isfinite(cosine.grad).all()


@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
def test_margin_gradient_is_finite_and_nonzero_past_theta_plus_m_over_pi(kind, fn, kwargs):
    cosine = t([[-0.99, 0.1], [-0.95, 0.2]], torch.float32).requires_grad_()
    logits = fn(cosine, torch.tensor([0, 0]), **kwargs)
    logits[:, 0].sum().backward()
    assert torch.isfinite(cosine.grad).all() and (cosine.grad[:, 0] > 0).all()


@pytest.mark.parametrize("kind", CASE_IDS)
def test_margin_loss_is_finite_for_an_all_zero_embedding(kind):
    head = Head(4, 3, margin=kind)
    embeddings = torch.zeros(2, 4)
    embeddings[1] = torch.tensor([1.0, -2.0, 0.5, 0.0])
    embeddings.requires_grad_()
    loss = head(embeddings, torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(embeddings.grad).all() and torch.isfinite(head.classifier.weight.grad).all()


@pytest.mark.parametrize("kind", CASE_IDS)
def test_margin_loss_under_autocast_bf16_is_finite_float32(kind):
    torch.manual_seed(7)
    head = Head(16, 10, margin=kind)
    embeddings = torch.randn(8, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cosine = head.classifier(embeddings)
        logits = head.margin_logits(cosine, torch.arange(8), **head.margin_args)
        loss = F.cross_entropy(logits, torch.arange(8))
    loss.backward()
    assert cosine.dtype == torch.bfloat16 and logits.dtype == torch.float32
    assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all()


@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_margin_on_low_precision_cosines_is_computed_in_float32(kind, fn, kwargs, dtype):
    cosine, labels = random_cosines(dtype=dtype)
    cosine = torch.cat([cosine, t(EDGE_COSINE, dtype).repeat(1, 4)[:, :10]])  # include exact ±1
    labels = torch.cat([labels, torch.tensor(EDGE_LABELS)])
    low = cosine.clone().requires_grad_()
    logits = fn(low, labels, **kwargs)
    F.cross_entropy(logits, labels).backward()
    assert logits.dtype == torch.float32 and torch.isfinite(low.grad).all()
    # the margin saw exactly the float32 values of the low-precision input (no rounding to bf16/fp16 inside)
    assert torch.equal(logits, fn(cosine.float(), labels, **kwargs))


# ------------------------------------------------------------------------------- combined margin identities
def test_combined_margin_equals_arcface_inside_the_monotone_range():
    cosine, labels = random_cosines(low=-0.87, high=1.0)  # cos(π - 0.5) = -0.8776
    torch.testing.assert_close(
        margins.combined_margin_logits(cosine, labels, s=64.0, m1=1.0, m2=0.5, m3=0.0),
        margins.arcface_logits(cosine, labels, s=64.0, m=0.5),
        rtol=1e-12,
        atol=1e-12,
    )


def test_combined_margin_equals_cosface_everywhere():
    cosine, labels = random_cosines()
    cosine[0, labels[0]], cosine[1, labels[1]] = 1.0, -1.0
    torch.testing.assert_close(
        margins.combined_margin_logits(cosine, labels, s=64.0, m1=1.0, m2=0.0, m3=0.35),
        margins.cosface_logits(cosine, labels, s=64.0, m=0.35),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_combined_margin_equals_sphereface_everywhere(m):
    cosine, labels = random_cosines()
    cosine[0, labels[0]], cosine[1, labels[1]] = 1.0, -1.0
    torch.testing.assert_close(
        margins.combined_margin_logits(cosine, labels, s=30.0, m1=float(m), m2=0.0, m3=0.0),
        margins.sphereface_logits(cosine, labels, s=30.0, m=m),
        rtol=1e-12,
        atol=1e-12,
    )


def test_combined_margin_without_margins_equals_normface():
    cosine, labels = random_cosines()
    torch.testing.assert_close(
        margins.combined_margin_logits(cosine, labels, s=30.0, m1=1.0, m2=0.0, m3=0.0),
        margins.normface_logits(cosine, labels, s=30.0),
        rtol=1e-12,
        atol=1e-12,
    )


# --------------------------------------------------------------------------------------------- monotonicity
def target_logit(fn, theta, **kwargs):
    return fn(t([[math.cos(theta), 0.0]]), torch.tensor([0]), **kwargs)[0, 0].item()


@settings(max_examples=150, deadline=None)
@given(theta1=st.floats(0.0, math.pi), theta2=st.floats(0.0, math.pi), m=st.floats(0.0, 1.5707))
def test_arcface_fallback_keeps_target_logit_monotone(theta1, theta2, m):
    low, high = sorted((theta1, theta2))
    assert (
        target_logit(margins.arcface_logits, low, s=1.0, m=m)
        >= target_logit(margins.arcface_logits, high, s=1.0, m=m) - 1e-12
    )


@settings(max_examples=150, deadline=None)
@given(
    theta1=st.floats(0.0, math.pi),
    theta2=st.floats(0.0, math.pi),
    m1=st.floats(0.5, 4.0),
    m2=st.floats(0.0, 1.5707),
    m3=st.floats(0.0, 1.0),
)
def test_combined_margin_keeps_target_logit_monotone(theta1, theta2, m1, m2, m3):
    low, high = sorted((theta1, theta2))
    kwargs = dict(s=1.0, m1=m1, m2=m2, m3=m3)
    assert (
        target_logit(margins.combined_margin_logits, low, **kwargs)
        >= target_logit(margins.combined_margin_logits, high, **kwargs) - 1e-12
    )


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_sphereface_keeps_target_logit_monotone(m):
    values = np.array([target_logit(margins.sphereface_logits, th, s=1.0, m=m) for th in np.linspace(0, math.pi, 721)])
    assert np.all(np.diff(values) <= 1e-12)
    assert values[-1] == pytest.approx(1 - 2 * m, abs=1e-9)  # ψ(π) = -(2m - 1)


def test_arcface_jumps_down_at_theta_equal_pi_minus_m():
    before, after = (
        target_logit(margins.arcface_logits, math.pi - 0.5 - 1e-9, s=1.0, m=0.5),
        target_logit(margins.arcface_logits, math.pi - 0.5 + 1e-9, s=1.0, m=0.5),
    )
    assert before == pytest.approx(-1.0, abs=1e-8)
    assert after == pytest.approx(-1.1172953311924743, abs=1e-8)


# ----------------------------------------------------------------------------------------------- bad inputs
GOOD_COSINE, GOOD_LABELS = t([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]]), torch.tensor([0, 2])
BAD_INPUTS = [
    (t([0.1, 0.2]), GOOD_LABELS, {}, "2-D"),
    (torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, dtype=torch.long), {}, "empty"),
    (GOOD_COSINE, t([0.0, 2.0]), {}, "integer"),
    (GOOD_COSINE, torch.tensor([0, 1, 2]), {}, "shape"),
    (GOOD_COSINE, torch.tensor([0, 3]), {}, r"\[0, 3\)"),
    (GOOD_COSINE, torch.tensor([-1, 0]), {}, r"\[0, 3\)"),
    (GOOD_COSINE, GOOD_LABELS, {"s": 0.0}, "scale s"),
    (GOOD_COSINE, GOOD_LABELS, {"s": -1.0}, "scale s"),
    (GOOD_COSINE, GOOD_LABELS, {"s": float("inf")}, "scale s"),
    (torch.tensor([[1, 0], [0, 1]]), torch.tensor([0, 1]), {}, "floating"),
]


@pytest.mark.parametrize("kind, fn, kwargs", CASES, ids=CASE_IDS)
@pytest.mark.parametrize(
    "cosine, labels, override, message",
    BAD_INPUTS,
    ids=[
        "1d",
        "empty",
        "float-labels",
        "shape",
        "label-too-big",
        "label-negative",
        "s-zero",
        "s-negative",
        "s-inf",
        "int-cosine",
    ],
)
def test_margin_rejects_bad_input(kind, fn, kwargs, cosine, labels, override, message):
    with pytest.raises(ValueError, match=message):
        fn(cosine, labels, **{**kwargs, **override})


@pytest.mark.parametrize(
    "fn, kwargs, message",
    [
        (margins.arcface_logits, dict(m=-0.1), "ArcFace margin m"),
        (margins.arcface_logits, dict(m=math.pi / 2), "ArcFace margin m"),
        (margins.arcface_logits, dict(m=float("nan")), "ArcFace margin m"),
        (margins.cosface_logits, dict(m=2.0), "CosFace margin m"),
        (margins.cosface_logits, dict(m=-0.1), "CosFace margin m"),
        (margins.sphereface_logits, dict(m=0), "positive integer"),
        (margins.sphereface_logits, dict(m=1.35), "positive integer"),
        (margins.sphereface_logits, dict(m=True), "positive integer"),
        (margins.combined_margin_logits, dict(m1=0.0), "m1"),
        (margins.combined_margin_logits, dict(m2=-0.1), "m2"),
        (margins.combined_margin_logits, dict(m2=2.0), "m2"),
        (margins.combined_margin_logits, dict(m3=2.5), "m3"),
    ],
    ids=[
        "arc-neg",
        "arc-pi/2",
        "arc-nan",
        "cos-2",
        "cos-neg",
        "sphere-0",
        "sphere-float",
        "sphere-bool",
        "comb-m1",
        "comb-m2-neg",
        "comb-m2-big",
        "comb-m3",
    ],
)
def test_margin_rejects_margin_where_the_formula_breaks(fn, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fn(GOOD_COSINE, GOOD_LABELS, **kwargs)


def test_sphereface_accepts_a_numpy_integer_margin():
    logits = margins.sphereface_logits(GOOD_COSINE, GOOD_LABELS, s=1.0, m=np.int64(4))
    torch.testing.assert_close(logits, margins.sphereface_logits(GOOD_COSINE, GOOD_LABELS, s=1.0, m=4))


def test_margin_loss_rejects_unknown_margin_name():
    with pytest.raises(ValueError, match="unknown margin 'arcfce'"):
        margins.MarginLoss(margin="arcfce")


def test_margin_loss_rejects_bad_margin_at_construction():
    with pytest.raises(ValueError, match="ArcFace margin m"):
        margins.MarginLoss(margin="arcface", m=2.0)


def test_cosine_classifier_rejects_wrong_embedding_size():
    with pytest.raises(ValueError, match=r"embeddings must have shape \[batch, 4\]"):
        margins.CosineClassifier(4, 3)(torch.zeros(2, 5))
