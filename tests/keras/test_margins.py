"""Keras margins.py: parity with the PyTorch twin (logits, loss, input gradients), known numbers, edge cases, errors.

The Keras twin runs on whatever KERAS_BACKEND this process uses (torch, jax or tensorflow); the PyTorch twin is the
oracle for parity, and hand-checked numbers from the guide's worked examples are a second, independent oracle.
"""

import math

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from keras import ops
from keras_parity import (
    ATOL,
    BACKEND,
    RTOL,
    assert_parity,
    keras_ce,
    keras_value_and_grad,
    snippet_main_output,
    torch_value_and_grad,
)
from snippet_loader import load_snippet

km = load_snippet("keras/margins.py")
pm = load_snippet("pytorch/margins.py")


CASES = [
    ("normface_logits", {}),
    ("normface_logits", {"s": 10.0}),
    ("sphereface_logits", {}),
    ("sphereface_logits", {"s": 8.0, "m": 2}),
    ("sphereface_logits", {"m": 3}),
    ("cosface_logits", {}),
    ("cosface_logits", {"s": 30.0, "m": 0.4}),
    ("arcface_logits", {}),
    ("arcface_logits", {"s": 30.0, "m": 0.3}),
    ("combined_margin_logits", {}),
    ("combined_margin_logits", {"m1": 1.0, "m2": 0.3, "m3": 0.2}),
    ("combined_margin_logits", {"s": 30.0, "m1": 1.35, "m2": 0.0, "m3": 0.0}),
]
IDS = [f"{name}-{kwargs}" for name, kwargs in CASES]


def random_batch(seed, batch=16, classes=7):
    rng = np.random.default_rng(seed)
    cosine = rng.uniform(-1, 1, size=(batch, classes)).astype("float32")
    labels = rng.integers(0, classes, size=batch).astype("int64")
    return cosine, labels


def edge_batch(m=0.5):
    """Target cosines at the edges: ±1, just inside, θ + m > π, and both sides of cos(π - m) in float32."""
    threshold = np.float32(math.cos(math.pi - m))
    targets = np.array(
        [
            1.0,
            -1.0,
            np.nextafter(np.float32(1), np.float32(0)),
            np.nextafter(np.float32(-1), np.float32(0)),
            -0.95,
            -0.9,
            -0.87,
            threshold,
            np.nextafter(threshold, np.float32(1)),
            np.nextafter(threshold, np.float32(-1)),
            0.0,
            0.5,
        ],
        dtype="float32",
    )
    rng = np.random.default_rng(7)
    cosine = rng.uniform(-1, 1, size=(len(targets), 5)).astype("float32")
    labels = np.arange(len(targets)) % 5
    cosine[np.arange(len(targets)), labels] = targets
    cosine[0, 1] = -1.0  # a non-target cosine at the edge too
    cosine[1, 2] = 1.0
    return cosine, labels.astype("int64")


BATCHES = {"random": random_batch(0, batch=12, classes=5), "edges": edge_batch()}


@pytest.mark.parametrize("batch", sorted(BATCHES))
@pytest.mark.parametrize("name, kwargs", CASES, ids=IDS)
def test_logits_loss_and_gradients_match_pytorch_twin(name, kwargs, batch):
    cosine, labels = BATCHES[batch]
    keras_fn, torch_fn = getattr(km, name), getattr(pm, name)
    torch_labels = torch.from_numpy(labels)

    logits = ops.convert_to_numpy(keras_fn(cosine, labels, **kwargs))
    assert logits.dtype == np.float32
    assert_parity(logits, torch_fn(torch.from_numpy(cosine), torch_labels, **kwargs).numpy(), "logits")

    loss, grad = keras_value_and_grad(lambda c: keras_ce(keras_fn(c, labels, **kwargs), labels), cosine)
    ref_loss, ref_grad = torch_value_and_grad(
        lambda c: F.cross_entropy(torch_fn(c, torch_labels, **kwargs), torch_labels), cosine
    )
    assert_parity(loss, ref_loss, "loss")
    assert np.all(np.isfinite(grad)), "gradient must be finite, also at cos θ = ±1 and θ + m > π"
    assert_parity(grad, ref_grad, "d loss / d cosine")

    # d(Σ w ⊙ logits)/d cosine for a fixed random w: every entry of the Jacobian counts, not only the CE's mix
    weights = np.random.default_rng(3).normal(size=cosine.shape).astype("float32")
    _, grad = keras_value_and_grad(lambda c: ops.sum(ops.multiply(keras_fn(c, labels, **kwargs), weights)), cosine)
    _, ref_grad = torch_value_and_grad(
        lambda c: (torch_fn(c, torch_labels, **kwargs) * torch.from_numpy(weights)).sum(), cosine
    )
    assert np.all(np.isfinite(grad))
    assert_parity(grad, ref_grad, "d logits / d cosine")


def test_arcface_worked_example_e2():
    """Hand-checkable: θ = acos 0.7, 64·cos(θ + 0.5) = 17.40348648; mean CE 1.4844746655638588 (float64 reference)."""
    cosine = np.array([[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]], dtype="float32")
    labels = np.array([0, 1])
    logits = ops.convert_to_numpy(km.arcface_logits(cosine, labels))
    np.testing.assert_allclose(logits, [[17.40348648, 19.2, 6.4], [12.8, 21.82891101, 22.4]], rtol=1e-6)
    assert float(keras_ce(logits, labels)) == pytest.approx(1.4844746655638588, rel=1e-6)


def test_arcface_fallback_past_pi_minus_m_e4():
    """cos θ = -0.95 with m = 0.5: θ + m > π, target 64·(-0.95 - 0.5·sin 0.5) = -76.1416172353 (not cos(θ+m)·64)."""
    cosine = np.array([[0.8, 0.3, -0.2], [0.1, 0.6, -0.95]], dtype="float32")
    labels = np.array([0, 2])
    logits = ops.convert_to_numpy(km.arcface_logits(cosine, labels))
    np.testing.assert_allclose(logits[:, [0, 2]].diagonal(), [26.5222864864, -76.1416172353], rtol=1e-6)
    assert float(keras_ce(logits, labels)) == pytest.approx(57.271138833558666, rel=1e-6)


def test_arcface_target_logit_never_rises_as_theta_grows():
    cos_t = np.cos(np.linspace(0, math.pi, 2001)).astype("float32")
    cosine = np.stack([cos_t, np.zeros_like(cos_t)], axis=1)
    target = ops.convert_to_numpy(km.arcface_logits(cosine, np.zeros(len(cos_t), "int64")))[:, 0]
    assert np.all(np.diff(target) <= 1e-4), f"largest rise {np.diff(target).max()}"


def test_combined_margin_special_cases_equal_arcface_cosface_sphereface():
    """Inside the monotone range (θ + 0.5 ≤ π): past it ArcFace and the combined margin continue differently."""
    cosine, labels = random_batch(5)
    cosine = np.maximum(cosine, -0.85)
    combined = km.combined_margin_logits
    np.testing.assert_allclose(
        ops.convert_to_numpy(combined(cosine, labels, m1=1.0, m2=0.5, m3=0.0)),
        ops.convert_to_numpy(km.arcface_logits(cosine, labels, m=0.5)),
        rtol=1e-5,
        atol=1e-4,
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(combined(cosine, labels, m1=1.0, m2=0.0, m3=0.35)),
        ops.convert_to_numpy(km.cosface_logits(cosine, labels, m=0.35)),
        rtol=1e-5,
        atol=1e-4,
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(combined(cosine, labels, s=30.0, m1=4, m2=0.0, m3=0.0)),
        ops.convert_to_numpy(km.sphereface_logits(cosine, labels, s=30.0, m=4)),
        rtol=1e-5,
        atol=1e-4,
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_cosines_get_float32_margin_math(dtype):
    cosine, labels = random_batch(2)
    half = ops.cast(cosine, dtype)
    logits = km.arcface_logits(half, labels)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    expected = km.arcface_logits(ops.cast(half, "float32"), labels)
    np.testing.assert_array_equal(ops.convert_to_numpy(logits), ops.convert_to_numpy(expected))
    assert np.all(np.isfinite(ops.convert_to_numpy(logits)))


def test_only_the_target_column_changes():
    cosine, labels = random_batch(3)
    for name, kwargs in CASES:
        logits = ops.convert_to_numpy(getattr(km, name)(cosine, labels, **kwargs))
        s = kwargs.get("s", {"normface_logits": 30.0, "sphereface_logits": 30.0}.get(name, 64.0))
        off_target = np.ones_like(cosine, dtype=bool)
        off_target[np.arange(len(labels)), labels] = False
        np.testing.assert_allclose(logits[off_target], s * cosine[off_target], rtol=1e-6, err_msg=name)


# --- the layer and the loss -------------------------------------------------------------------------------------


def test_cosine_classifier_and_margin_loss_match_pytorch_margin_loss():
    """Same class weights (Keras keeps them [D, C], PyTorch [C, D]), same embeddings: same loss and embedding grad."""
    rng = np.random.default_rng(11)
    embeddings = rng.normal(size=(6, 5)).astype("float32")
    embeddings[2] = 0.0  # an all-zero embedding: cosines 0, finite gradient
    labels = np.array([0, 1, 2, 3, 1, 0])
    ref_classifier = pm.CosineClassifier(embedding_size=5, num_classes=4)
    ref_loss_fn = pm.MarginLoss("arcface", s=30.0, m=0.5)
    classifier = km.CosineClassifier(embedding_size=5, num_classes=4)
    classifier.build((None, 5))
    classifier.kernel.assign(ref_classifier.weight.detach().numpy().T)
    loss_fn = km.MarginLoss("arcface", s=30.0, m=0.5)

    loss, grad = keras_value_and_grad(lambda x: loss_fn(labels, classifier(x)), embeddings)
    ref_loss, ref_grad = torch_value_and_grad(
        lambda x: ref_loss_fn(ref_classifier(x), torch.from_numpy(labels)), embeddings
    )
    np.testing.assert_allclose(loss, ref_loss, rtol=RTOL, atol=ATOL)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=ATOL)
    cosines = ops.convert_to_numpy(classifier(embeddings))
    np.testing.assert_array_equal(cosines[2], 0.0)
    np.testing.assert_allclose(
        cosines, ref_classifier(torch.from_numpy(embeddings)).detach().numpy(), rtol=RTOL, atol=ATOL
    )


def test_margin_loss_accepts_float_and_column_labels_as_keras_passes_them():
    """Keras casts y_true to float32 before Loss.call, often with shape [B, 1]: the loss must undo both."""
    cosine = np.array([[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]], dtype="float32")
    loss_fn = km.MarginLoss("arcface")
    for y_true in (np.array([0, 1]), np.array([[0.0], [1.0]], dtype="float32")):
        assert float(ops.convert_to_numpy(loss_fn(y_true, cosine))) == pytest.approx(1.4844746655638588, rel=1e-6)


@pytest.mark.parametrize(
    "margin, args",
    [
        ("arcface", {"s": 30.0, "m": 0.4}),
        ("combined", {"m1": 1.0, "m2": 0.3, "m3": 0.2}),
        ("sphereface", {"m": 2}),
        ("normface", {}),
    ],
)
def test_margin_loss_config_round_trip(margin, args):
    loss_fn = km.MarginLoss(margin, **args)
    restored = keras.losses.deserialize(keras.losses.serialize(loss_fn))
    # by name: every load of margins.py (runpy, original_post.py) re-registers its own copy of the class
    assert type(restored).__name__ == "MarginLoss" and restored.margin == margin and restored.margin_args == args
    cosine, labels = random_batch(4)
    assert float(ops.convert_to_numpy(restored(labels, cosine))) == float(ops.convert_to_numpy(loss_fn(labels, cosine)))


# --- bad input --------------------------------------------------------------------------------------------------

GOOD_COS, GOOD_Y = np.array([[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]], dtype="float32"), np.array([0, 1])


@pytest.mark.parametrize("name", [name for name, _ in CASES[::2]])
@pytest.mark.parametrize(
    "cosine, labels, kwargs, message",
    [
        (GOOD_COS[0], GOOD_Y, {}, "2-D"),
        (np.zeros((0, 3), "float32"), np.zeros(0, "int64"), {}, "empty"),
        (np.array([[1, 0], [0, 1]]), GOOD_Y, {}, "floating-point"),
        (GOOD_COS, GOOD_Y.astype("float32"), {}, "integer"),
        (GOOD_COS, np.array([0, 1, 1]), {}, "shape"),
        (GOOD_COS, np.array([0, 3]), {}, r"\[0, 3\)"),
        (GOOD_COS, np.array([-1, 0]), {}, r"\[0, 3\)"),
        (GOOD_COS, GOOD_Y, {"s": 0.0}, "s must be > 0"),
    ],
    ids=["1-D cosine", "empty", "int cosine", "float labels", "label count", "label too big", "negative label", "s=0"],
)
def test_bad_input_raises_value_error(name, cosine, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        getattr(km, name)(cosine, labels, **kwargs)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("arcface_logits", {"m": math.pi / 2}, "radians"),
        ("arcface_logits", {"m": -0.1}, "radians"),
        ("cosface_logits", {"m": 2.0}, r"\[0, 2\)"),
        ("sphereface_logits", {"m": 1.5}, "positive integer"),
        ("sphereface_logits", {"m": 0}, "positive integer"),
        ("combined_margin_logits", {"m1": 0.0}, "m1"),
        ("combined_margin_logits", {"m2": 2.0}, "m2"),
        ("combined_margin_logits", {"m3": -0.1}, "m3"),
    ],
)
def test_margin_out_of_range_raises_value_error(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        getattr(km, name)(GOOD_COS, GOOD_Y, **kwargs)
    with pytest.raises(ValueError, match=message):  # the twin agrees
        getattr(pm, name)(torch.from_numpy(GOOD_COS), torch.from_numpy(GOOD_Y), **kwargs)


def test_margin_loss_and_classifier_reject_bad_configuration():
    with pytest.raises(ValueError, match="unknown margin"):
        km.MarginLoss("magface")
    with pytest.raises(ValueError, match="radians"):
        km.MarginLoss("arcface", m=2.0)  # fails when built, not at the first batch
    with pytest.raises(ValueError, match=r"\[batch, 4\]"):
        km.CosineClassifier(embedding_size=4, num_classes=3)(np.zeros((2, 5), "float32"))


def test_label_range_is_checked_on_concrete_values():
    """Eager (a direct call; model.fit on the torch backend): out-of-range labels raise ValueError."""
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        km.arcface_logits(GOOD_COS, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        km.arcface_logits(ops.convert_to_tensor(GOOD_COS), ops.convert_to_tensor(np.array([-1, 0])))


def test_works_under_tracing_and_still_checks_dtype():
    """jax.jit / tf.function make labels symbolic: shape and dtype are still checked, the range check is skipped
    (documented in the module docstring). torch has no tracing here (model.fit runs eagerly), so this is eager."""
    if BACKEND == "jax":
        import jax

        trace = jax.jit
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        trace = tf.function
    else:
        trace = lambda fn: fn  # noqa: E731  (torch: eager)
    traced = trace(km.arcface_logits)
    np.testing.assert_allclose(
        ops.convert_to_numpy(traced(GOOD_COS, GOOD_Y)),
        ops.convert_to_numpy(km.arcface_logits(GOOD_COS, GOOD_Y)),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="integer"):
        trace(km.arcface_logits)(GOOD_COS, GOOD_Y.astype("float32"))
    with pytest.raises(ValueError, match="shape"):
        trace(km.arcface_logits)(GOOD_COS, np.array([0, 1, 2]))


def test_runs_as_a_script(capsys):
    """The file's __main__ block."""
    out = snippet_main_output("margins.py", capsys)
    assert "arcface   s=64, m=0.5 : logits [[17.4035, 19.2, 6.4], [12.8, 21.8289, 22.4]]" in out


def test_integer_margins_accept_numpy_integers_in_both_twins():
    """SphereFace's m and the number of sub-centers may be any integral type (np.int64 from a config array): the
    PyTorch twins accepted it and the Keras twins raised ValueError before (isinstance(m, int))."""
    ks, ps = load_snippet("keras/subcenter.py"), load_snippet("pytorch/subcenter.py")
    want = ops.convert_to_numpy(km.sphereface_logits(GOOD_COS, GOOD_Y, m=4))
    np.testing.assert_allclose(
        ops.convert_to_numpy(km.sphereface_logits(GOOD_COS, GOOD_Y, m=np.int64(4))), want, rtol=1e-6
    )
    np.testing.assert_allclose(
        pm.sphereface_logits(torch.from_numpy(GOOD_COS), torch.from_numpy(GOOD_Y), m=np.int64(4)).numpy(),
        want,
        rtol=1e-6,
    )
    cosine = np.linspace(-0.9, 0.9, 12, dtype="float32").reshape(2, 6)
    labels = np.array([0, 2])
    want = ops.convert_to_numpy(ks.subcenter_arcface_logits(cosine, labels, 2))
    np.testing.assert_allclose(
        ops.convert_to_numpy(ks.subcenter_arcface_logits(cosine, labels, np.int64(2))), want, rtol=1e-6
    )
    torch_out = ps.subcenter_arcface_logits(torch.from_numpy(cosine), torch.from_numpy(labels), np.int64(2))
    np.testing.assert_allclose(torch_out.numpy(), want, rtol=1e-6)
