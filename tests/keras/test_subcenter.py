"""Keras subcenter.py: parity with the PyTorch twin (logits, loss, gradients, outliers), worked numbers, errors."""

import math

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from keras import ops
from keras_parity import ATOL, RTOL, keras_ce, keras_value_and_grad, snippet_main_output, torch_value_and_grad
from snippet_loader import load_snippet

ks = load_snippet("keras/subcenter.py")
ps = load_snippet("pytorch/subcenter.py")


def cosine_batch(seed, batch=10, classes=4, k=3, edges=False):
    rng = np.random.default_rng(seed)
    cosine = rng.uniform(-1, 1, size=(batch, classes * k)).astype("float32")
    labels = rng.integers(0, classes, size=batch).astype("int64")
    if edges:  # every sub-center of the target at cos = 1, -1 and past θ + m > π (ties in the max, too)
        for row, value in enumerate([1.0, -1.0, -0.95, -0.9]):
            cosine[row, labels[row] * k : (labels[row] + 1) * k] = value
    return cosine, labels


@pytest.mark.parametrize("k, s, m", [(3, 64.0, 0.5), (2, 30.0, 0.3), (1, 64.0, 0.5)])
@pytest.mark.parametrize("edges", [False, True], ids=["random", "edges"])
def test_logits_loss_and_gradient_match_pytorch_twin(k, s, m, edges):
    cosine, labels = cosine_batch(0, k=k, edges=edges)
    torch_labels = torch.from_numpy(labels)
    logits = ops.convert_to_numpy(ks.subcenter_arcface_logits(cosine, labels, k, s, m))
    ref = ps.subcenter_arcface_logits(torch.from_numpy(cosine), torch_labels, k, s, m).numpy()
    np.testing.assert_allclose(logits, ref, rtol=RTOL, atol=ATOL * s)  # atol in units of the logits' scale s

    loss, grad = keras_value_and_grad(
        lambda c: keras_ce(ks.subcenter_arcface_logits(c, labels, k, s, m), labels), cosine
    )
    ref_loss, ref_grad = torch_value_and_grad(
        lambda c: F.cross_entropy(ps.subcenter_arcface_logits(c, torch_labels, k, s, m), torch_labels), cosine
    )
    np.testing.assert_allclose(loss, ref_loss, rtol=RTOL, atol=ATOL)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=ATOL * s)


def test_worked_example_reduces_to_arcface_e2():
    """K = 2 with mirrored sub-centers: the max gives E2's cosines (worked_examples.md), so the loss is E2's
    1.4844746655638588."""
    cosine = np.array([[-0.7, 0.7, 0.3, -0.3, 0.1, -0.1], [0.2, -0.2, 0.75, -0.75, 0.35, -0.35]], dtype="float32")
    labels = np.array([0, 1])
    logits = ks.subcenter_arcface_logits(cosine, labels, num_subcenters=2)
    np.testing.assert_allclose(
        ops.convert_to_numpy(logits), [[17.40348648, 19.2, 6.4], [12.8, 21.82891101, 22.4]], rtol=1e-6
    )
    loss = keras_ce(logits, labels)
    assert float(ops.convert_to_numpy(loss)) == pytest.approx(1.4844746655638588, rel=1e-6)


def test_outliers_match_pytorch_twin():
    cosine, labels = cosine_batch(5, batch=40, classes=4, k=3)
    dominant, outliers = ks.subcenter_outliers(cosine, labels, num_subcenters=3, max_angle=math.radians(60.0))
    ref_dominant, ref_outliers = ps.subcenter_outliers(
        torch.from_numpy(cosine), torch.from_numpy(labels), 3, math.radians(60.0)
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(dominant), ref_dominant.numpy())
    np.testing.assert_array_equal(ops.convert_to_numpy(outliers), ref_outliers.numpy())
    assert 0 < ref_outliers.sum() < len(labels)  # the example has both kinds


def test_layer_and_loss_match_pytorch_module():
    rng = np.random.default_rng(2)
    embeddings = rng.normal(size=(6, 5)).astype("float32")
    labels = np.array([0, 1, 2, 3, 1, 0])
    ref_classifier = ps.SubCenterCosineClassifier(embedding_size=5, num_classes=4, num_subcenters=2)
    ref_loss_fn = ps.SubCenterArcFaceLoss(num_subcenters=2, s=30.0, m=0.5)
    layer = ks.SubCenterCosineClassifier(5, 4, num_subcenters=2)
    layer.build((None, 5))
    layer.kernel.assign(ref_classifier.weight.detach().numpy().T)  # Keras [D, C·K], PyTorch [C·K, D]: same column order
    loss_fn = ks.SubCenterArcFaceLoss(num_subcenters=2, s=30.0, m=0.5)
    loss, grad = keras_value_and_grad(lambda x: loss_fn(labels, layer(x)), embeddings)
    ref_loss, ref_grad = torch_value_and_grad(
        lambda x: ref_loss_fn(ref_classifier(x), torch.from_numpy(labels)), embeddings
    )
    np.testing.assert_allclose(loss, ref_loss, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=ATOL)
    restored = keras.losses.deserialize(keras.losses.serialize(loss_fn))
    assert (restored.num_subcenters, restored.s, restored.m) == (2, 30.0, 0.5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ks.subcenter_arcface_logits(np.zeros((2, 6), "float32"), np.array([0, 1]), 4), "multiple"),
        (lambda: ks.subcenter_arcface_logits(np.zeros((2, 6), "float32"), np.array([0, 3]), 2), r"\[0, 3\)"),
        (lambda: ks.subcenter_arcface_logits(np.zeros((2, 6), "float32"), np.array([0.0, 1.0]), 2), "integer"),
        (lambda: ks.subcenter_arcface_logits(np.zeros((2, 6), "float32"), np.array([0, 1, 1]), 2), "shape"),
        (lambda: ks.subcenter_arcface_logits(np.zeros(6, "float32"), np.array([0]), 2), "2-D float"),
        (lambda: ks.subcenter_arcface_logits(np.zeros((0, 6), "float32"), np.zeros(0, "int64"), 2), "empty"),
        (lambda: ks.subcenter_arcface_logits(np.zeros((2, 6), "float32"), np.array([0, 1]), 0), "positive integer"),
        (lambda: ks.subcenter_arcface_logits(np.zeros((2, 6), "float32"), np.array([0, 1]), 2, m=2.0), "radians"),
        (lambda: ks.subcenter_arcface_logits(np.zeros((2, 6), "float32"), np.array([0, 1]), 2, s=0.0), "scale"),
        (lambda: ks.SubCenterArcFaceLoss(num_subcenters=3, m=-0.5), "radians"),
    ],
    ids=[
        "K does not divide",
        "label range",
        "float labels",
        "label count",
        "1-D",
        "empty",
        "K=0",
        "m",
        "s",
        "loss config",
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_runs_as_a_script(capsys):
    """The file's __main__ block."""
    out = snippet_main_output("subcenter.py", capsys)
    assert "logits: [[17.4035, 19.2, 6.4], [12.8, 21.8289, 22.4]]" in out
    assert "dominant sub-center per class: [1, 0, 0]" in out
