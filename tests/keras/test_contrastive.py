"""Keras contrastive.py: parity with the PyTorch twin (loss and embedding gradients), worked numbers, edges, errors."""

import numpy as np
import pytest
import torch
from keras import ops
from keras_parity import ATOL, RTOL, keras_value_and_grad, snippet_main_output, torch_value_and_grad
from snippet_loader import load_snippet

kc = load_snippet("keras/contrastive.py")
pc = load_snippet("pytorch/contrastive.py")


def random_batch(seed, p=4, k=3, dim=5):
    rng = np.random.default_rng(seed)
    return (0.4 * rng.normal(size=(p * k, dim))).astype("float32"), np.repeat(np.arange(p), k).astype("int64")


def exact_edge_batch():
    """Small integers (exact expansion on every backend): two coinciding points, a zero vector, a far pair."""
    embeddings = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0], [3, 0, 0]], "float32")
    return embeddings, np.array([0, 0, 1, 1, 2])


BATCHES = {"random": random_batch(0), "exact-edges": exact_edge_batch()}


@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_loss_and_gradient_match_pytorch_twin(batch, margin):
    embeddings, labels = BATCHES[batch]
    loss, grad = keras_value_and_grad(lambda e: kc.contrastive_loss(e, labels, margin), embeddings)
    ref_loss, ref_grad = torch_value_and_grad(
        lambda e: pc.contrastive_loss(e, torch.from_numpy(labels), margin), embeddings
    )
    assert loss > 0
    np.testing.assert_allclose(loss, ref_loss, rtol=RTOL, atol=ATOL)
    assert np.all(np.isfinite(grad)), "finite gradient also for coinciding embeddings and a zero vector"
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "rows, labels, expected",
    [([0, 1], [0, 0], 0.045), ([0, 1], [0, 1], 0.245), ([0, 2], [0, 1], 0.0), ([0, 1, 2], [0, 0, 1], 0.05 / 3)],
)
def test_worked_example(rows, labels, expected):
    """The metric-learning page's numbers (float64 in, float64 out, at 1e-12: tests/keras/test_float64.py)."""
    line = np.array([[0.0, 0.0], [0.3, 0.0], [1.2, 0.0]], "float32")
    loss = kc.contrastive_loss(line[rows], np.array(labels), 1.0)
    assert float(ops.convert_to_numpy(loss)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_embeddings_give_a_float32_loss(dtype):
    embeddings, labels = random_batch(2)
    loss = kc.contrastive_loss(ops.cast(embeddings, dtype), labels)
    assert ops.convert_to_numpy(loss).dtype == np.float32


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: kc.contrastive_loss(np.zeros(3, "float32"), np.array([0, 0, 1])), "2-D float"),
        (lambda: kc.contrastive_loss(np.zeros((1, 2), "float32"), np.array([0])), "at least two"),
        (lambda: kc.contrastive_loss(np.zeros((3, 2), "float32"), np.array([0.0, 0.0, 1.0])), "integer"),
        (lambda: kc.contrastive_loss(np.zeros((3, 2), "float32"), np.array([0, 1])), r"shape \[3\]"),
        (lambda: kc.contrastive_loss(np.zeros((3, 2), "float32"), np.array([0, 0, 1]), 0.0), "margin must be > 0"),
    ],
    ids=["1-D", "one row", "float labels", "label count", "zero margin"],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_runs_as_a_script(capsys):
    """The file's __main__ block prints the page's worked numbers."""
    out = snippet_main_output("contrastive.py", capsys)
    assert "two points 0.3 apart, same label:      0.045" in out
    assert "two points 0.3 apart, different labels: 0.245" in out
    assert "two points 1.2 apart, different labels: 0.0" in out
    assert "all three, labels [0, 0, 1]: 0.016667" in out
