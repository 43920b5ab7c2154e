"""Float64 in, float64 out, at float64 accuracy: every Keras margin, distance and loss function against the float64
oracles of tests/oracles.py at 1e-12, on whichever backend runs the tests (torch by default; `make test-backends`
runs jax, with x64 switched on here, and tensorflow). And bfloat16/float16 still compute in float32.

Why a test of its own: keras.backend.result_type maps float64 to float32 on the torch and jax backends, so
ops.maximum, ops.matmul, ops.arctan2, ops.cos (jax) and ops.floor quietly return float32 for float64 input. The
snippets use where/einsum and the _atan2/_cos helpers instead; these tests fail if one of those ops comes back.
Layers and losses compute in their dtype policy (float32 by default), so they are built with dtype="float64" here.
"""

import keras
import numpy as np
import pytest
from keras import ops
from oracles import (
    cosine_matrix,
    cross_entropy,
    distance,
    reference_adaface_logits,
    reference_batch_all,
    reference_batch_hard,
    reference_curricularface_logits,
    reference_logits,
    reference_subcenter_logits,
)
from snippet_loader import load_snippet

km = load_snippet("keras/margins.py")
ka = load_snippet("keras/adaface.py")
kc = load_snippet("keras/curricularface.py")
ks = load_snippet("keras/subcenter.py")
kt = load_snippet("keras/triplet.py")
kco = load_snippet("keras/contrastive.py")
RTOL = 1e-12


@pytest.fixture(autouse=True, scope="module")
def float64_on_jax():
    """JAX is 32-bit unless x64 is enabled; switch it on for this module only and restore it afterwards."""
    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def assert_float64_close(got, want, scale=1.0):
    got = ops.convert_to_numpy(got)
    assert got.dtype == np.float64, f"float64 in, {got.dtype} out"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * scale)


def per_sample_cross_entropy(logits, labels):
    return np.array([cross_entropy(row[None], [y]) for row, y in zip(logits, labels, strict=True)])


def cosines(batch=12, classes=6, seed=0):
    rng = np.random.default_rng(seed)
    cosine = rng.uniform(-1, 1, (batch, classes))
    labels = rng.integers(0, classes, batch)
    # next to cos θ = ±1 (exactly ±1, the sqrt guard moves sin θ to 1e-10: see the test of its own below)
    cosine[0, labels[0]], cosine[1, labels[1]] = 1 - 1e-9, -1 + 1e-9
    cosine[2, labels[2]] = -0.95  # past θ + m > π for ArcFace's m = 0.5
    return cosine, labels


MARGINS = [
    ("normface", km.normface_logits, dict(s=30.0)),
    ("sphereface", km.sphereface_logits, dict(s=30.0, m=4)),
    ("cosface", km.cosface_logits, dict(s=64.0, m=0.35)),
    ("arcface", km.arcface_logits, dict(s=64.0, m=0.5)),
    ("combined", km.combined_margin_logits, dict(s=64.0, m1=1.2, m2=0.4, m3=0.1)),
]


@pytest.mark.parametrize("kind, fn, kwargs", MARGINS, ids=[m[0] for m in MARGINS])
def test_margin_logits_in_float64_match_the_float64_oracle(kind, fn, kwargs):
    cosine, labels = cosines()
    args = dict(kwargs)
    s = args.pop("s")
    assert_float64_close(fn(cosine, labels, **kwargs), reference_logits(cosine, labels, kind, s, **args), scale=s)


@pytest.mark.parametrize("kind, fn, kwargs", MARGINS, ids=[m[0] for m in MARGINS])
def test_margin_logits_at_exactly_plus_and_minus_one_are_off_by_the_sqrt_guard_only(kind, fn, kwargs):
    cosine, labels = np.array([[1.0, 0.2], [0.3, -1.0]]), np.array([0, 1])
    args = dict(kwargs)
    s = args.pop("s")
    got = ops.convert_to_numpy(fn(cosine, labels, **kwargs))
    assert got.dtype == np.float64
    # sin θ = sqrt(max(1 - cos²θ, 1e-20)) = 1e-10 instead of 0 there; the target moves by at most s·m·1e-10
    np.testing.assert_allclose(got, reference_logits(cosine, labels, kind, s, **args), rtol=0, atol=s * 2e-10)


@pytest.mark.parametrize("kind, fn, kwargs", MARGINS, ids=[m[0] for m in MARGINS])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_margin_logits_of_half_precision_cosines_are_float32(kind, fn, kwargs, dtype):
    cosine, labels = cosines()
    logits = fn(ops.cast(cosine, dtype), labels, **kwargs)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"


def test_cosine_classifier_and_margin_loss_in_float64():
    rng = np.random.default_rng(1)
    embeddings, labels = rng.normal(size=(7, 5)), rng.integers(0, 4, 7)
    classifier = km.CosineClassifier(5, 4, dtype="float64")
    classifier.build((None, 5))
    kernel = rng.normal(size=(5, 4))
    classifier.kernel.assign(kernel)
    cosine = cosine_matrix(embeddings, kernel.T)
    assert_float64_close(classifier(embeddings), cosine)
    # per-sample losses (reduction=None): Keras' own batch mean (ops.divide_no_nan) returns float32 on torch and jax
    loss = km.MarginLoss("arcface", s=30.0, m=0.5, reduction=None, dtype="float64")(labels, cosine)
    assert_float64_close(
        loss, per_sample_cross_entropy(reference_logits(cosine, labels, "arcface", 30.0, m=0.5), labels)
    )


def test_adaface_logits_in_float64_match_the_float64_oracle():
    cosine, labels = cosines(seed=2)
    norms = np.random.default_rng(2).uniform(1, 40, len(labels))
    got = ka.adaface_logits(cosine, labels, norms, 21.0, 6.5)
    assert_float64_close(got, reference_adaface_logits(cosine, norms, labels, 21.0, 6.5), scale=64.0)


def test_curricularface_logits_in_float64_match_the_float64_oracle():
    cosine, labels = cosines(seed=3)
    got = kc.curricularface_logits(cosine, labels, 0.3)
    assert_float64_close(got, reference_curricularface_logits(cosine, labels, 0.3), scale=64.0)


def test_subcenter_logits_classifier_and_loss_in_float64():
    cosine, labels = cosines(classes=4 * 3, seed=4)
    labels = labels % 4
    want = reference_subcenter_logits(cosine, labels, 3, 64.0, 0.5)
    assert_float64_close(ks.subcenter_arcface_logits(cosine, labels, 3), want, scale=64.0)
    loss = ks.SubCenterArcFaceLoss(num_subcenters=3, reduction=None, dtype="float64")(labels, cosine)
    assert_float64_close(loss, per_sample_cross_entropy(want, labels))
    rng = np.random.default_rng(4)
    classifier = ks.SubCenterCosineClassifier(5, 4, num_subcenters=3, dtype="float64")
    classifier.build((None, 5))
    kernel = rng.normal(size=(5, 12))
    classifier.kernel.assign(kernel)
    x = rng.normal(size=(6, 5))
    assert_float64_close(classifier(x), cosine_matrix(x, kernel.T))


def test_triplet_distances_and_losses_in_float64():
    rng = np.random.default_rng(5)
    x, labels = rng.normal(size=(12, 8)), np.repeat(np.arange(4), 3)
    want = np.array([[distance(a, b) if i != j else 0.0 for j, b in enumerate(x)] for i, a in enumerate(x)])
    got = ops.convert_to_numpy(kt.pairwise_distances(x))
    np.fill_diagonal(got, 0.0)  # the diagonal is sqrt(1e-12), the guard, not a distance
    assert_float64_close(got, want, scale=10.0)
    assert_float64_close(kt.batch_hard_triplet_loss(x, labels, 0.5), reference_batch_hard(x, labels, 0.5))
    assert_float64_close(kt.batch_all_triplet_loss(x, labels, 0.5), reference_batch_all(x, labels, 0.5))
    anchor, positive, negative = x[[0, 3, 6, 9]], x[[1, 4, 7, 10]], x[[3, 6, 9, 0]]  # classes 0..3; next class
    d_ap = np.array([distance(a, p) for a, p in zip(anchor, positive, strict=True)])
    d_an = np.array([distance(a, n) for a, n in zip(anchor, negative, strict=True)])
    got = kt.triplet_loss(anchor, positive, negative, margin=0.5)
    assert_float64_close(got, np.mean(np.maximum(0.0, d_ap - d_an + 0.5)))


def test_contrastive_loss_in_float64_matches_a_loop_over_the_pairs():
    rng = np.random.default_rng(5)
    x, labels = 0.4 * rng.normal(size=(9, 4)), np.repeat(np.arange(3), 3)
    losses = [
        0.5 * d**2 if labels[i] == labels[j] else 0.5 * max(0.0, 1.0 - d) ** 2
        for i in range(len(x))
        for j in range(i + 1, len(x))
        for d in [float(np.linalg.norm(x[i] - x[j]))]
    ]
    assert_float64_close(kco.contrastive_loss(x, labels, 1.0), np.mean(losses))
    line = np.array([[0.0, 0.0], [0.3, 0.0], [1.2, 0.0]])  # the metric-learning page's worked example
    assert_float64_close(kco.contrastive_loss(line, np.array([0, 0, 1]), 1.0), (0.045 + 0.005) / 3)
