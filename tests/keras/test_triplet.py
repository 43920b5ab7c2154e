"""Keras triplet.py: parity with the PyTorch twin (loss and embedding gradients), worked numbers, edges, errors."""

import keras
import numpy as np
import pytest
import torch
from keras import ops
from keras_parity import ATOL, RTOL, keras_value_and_grad, snippet_main_output, torch_value_and_grad
from snippet_loader import load_snippet

kt = load_snippet("keras/triplet.py")
pt = load_snippet("pytorch/triplet.py")


def random_pk_batch(seed, p=4, k=3, dim=6):
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(p * k, dim)).astype("float32")
    return embeddings, np.repeat(np.arange(p), k).astype("int64")


def exact_edge_batch():
    """Small integers, so ‖a‖² + ‖b‖² - 2a·b is exact on every backend: duplicates (distance 0), a zero vector,
    a class with a single sample (an anchor without positive)."""
    embeddings = np.array([[1, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 0], [0, 2, 0], [2, 1, 0], [1, 1, 1]], "float32")
    return embeddings, np.array([0, 0, 1, 1, 2, 2, 3])


BATCHES = {"random": random_pk_batch(0), "exact-edges": exact_edge_batch()}
LOSSES = ["batch_hard_triplet_loss", "batch_all_triplet_loss"]


@pytest.mark.parametrize("margin", [0.2, 1.0])
@pytest.mark.parametrize("batch", sorted(BATCHES))
@pytest.mark.parametrize("name", LOSSES)
def test_batch_losses_and_gradients_match_pytorch_twin(name, batch, margin):
    embeddings, labels = BATCHES[batch]
    loss, grad = keras_value_and_grad(lambda e: getattr(kt, name)(e, labels, margin), embeddings)
    ref_loss, ref_grad = torch_value_and_grad(
        lambda e: getattr(pt, name)(e, torch.from_numpy(labels), margin), embeddings
    )
    assert loss > 0
    np.testing.assert_allclose(loss, ref_loss, rtol=RTOL, atol=ATOL)
    assert np.all(np.isfinite(grad)), "finite gradient also for coinciding embeddings and a zero vector"
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_pairwise_distances_match_pytorch_twin(batch):
    embeddings, _ = BATCHES[batch]
    """Off the diagonal. On it, ‖a‖² + ‖a‖² - 2a·a is float32 rounding noise (up to ~1e-6 before the square root,
    ~1e-3 after) that differs between backends' matrix products; the losses never use the diagonal."""
    ours = ops.convert_to_numpy(kt.pairwise_distances(embeddings))
    theirs = pt.pairwise_distances(torch.from_numpy(embeddings)).numpy()
    off = ~np.eye(len(embeddings), dtype=bool)
    np.testing.assert_allclose(ours[off], theirs[off], rtol=RTOL, atol=ATOL)
    assert np.abs(np.diag(ours)).max() < 3e-3 and np.abs(np.diag(theirs)).max() < 3e-3


def test_triplet_loss_and_gradients_match_pytorch_twin():
    rng = np.random.default_rng(1)
    triplets = rng.normal(size=(3, 8, 5)).astype("float32")
    triplets[1, 0] = triplets[0, 0]  # a positive that coincides with its anchor: distance 0, finite gradient
    loss, grad = keras_value_and_grad(lambda t: kt.triplet_loss(t[0], t[1], t[2], margin=0.5), triplets)
    ref_loss, ref_grad = torch_value_and_grad(lambda t: pt.triplet_loss(t[0], t[1], t[2], margin=0.5), triplets)
    np.testing.assert_allclose(loss, ref_loss, rtol=RTOL, atol=ATOL)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=ATOL)


def test_worked_example_e9():
    """Four 2-D unit vectors, labels [0, 0, 1, 1], margin 0.05 (worked_examples.md E9; PML's values)."""
    embeddings = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]], dtype="float32")
    labels = np.array([0, 0, 1, 1])
    value = lambda x: float(ops.convert_to_numpy(x))  # noqa: E731
    assert value(kt.triplet_loss(embeddings[[0]], embeddings[[1]], embeddings[[2]], 0.05)) == pytest.approx(
        0.311971659, rel=1e-6
    )
    assert value(kt.batch_hard_triplet_loss(embeddings, labels, 0.05)) == pytest.approx(0.48677806874576846, rel=1e-6)
    assert value(kt.batch_all_triplet_loss(embeddings, labels, 0.05)) == pytest.approx(0.42850926548592566, rel=1e-6)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("labels", [np.zeros(4, "int64"), np.arange(4)], ids=["one class", "all different"])
def test_no_valid_triplet_gives_zero_loss_and_zero_gradient(name, labels):
    embeddings, _ = random_pk_batch(2, p=2, k=2)
    loss, grad = keras_value_and_grad(lambda e: getattr(kt, name)(e, labels, 0.2), embeddings)
    assert float(loss) == 0.0
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_embeddings_give_float32_distances(dtype):
    embeddings, labels = random_pk_batch(3)
    half = ops.cast(embeddings, dtype)
    loss = kt.batch_hard_triplet_loss(half, labels)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    expected = kt.batch_hard_triplet_loss(ops.cast(half, "float32"), labels)
    assert float(ops.convert_to_numpy(loss)) == float(ops.convert_to_numpy(expected))


def test_batch_triplet_loss_for_fit_equals_the_functions_and_round_trips():
    embeddings, labels = random_pk_batch(4)
    for mining, fn in [("hard", kt.batch_hard_triplet_loss), ("all", kt.batch_all_triplet_loss)]:
        loss_fn = kt.BatchTripletLoss(mining, margin=0.3)
        y_true = labels.astype("float32")[:, None]  # the way Keras hands y_true to a loss
        expected = float(ops.convert_to_numpy(fn(embeddings, labels, 0.3)))
        assert float(ops.convert_to_numpy(loss_fn(y_true, embeddings))) == pytest.approx(expected, rel=1e-6)
        restored = keras.losses.deserialize(keras.losses.serialize(loss_fn))
        assert (restored.mining, restored.margin) == (mining, 0.3)


def test_pk_batches_hold_p_classes_of_k_samples():
    labels = np.repeat(np.arange(6), [5, 5, 4, 3, 2, 1])
    batches = kt.pk_batches(labels, p=3, k=4, seed=0)
    assert len(batches) == 2
    seen = []
    for batch in batches:
        classes, counts = np.unique(labels[batch], return_counts=True)
        assert len(batch) == 12 and len(classes) == 3 and np.all(counts == 4)
        seen += classes.tolist()
    assert sorted(seen) == list(range(6))  # one pass over the classes


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: kt.batch_hard_triplet_loss(np.zeros(4, "float32"), np.zeros(4, "int64")), "2-D float"),
        (lambda: kt.batch_hard_triplet_loss(np.zeros((4, 2), "int64"), np.zeros(4, "int64")), "2-D float"),
        (lambda: kt.batch_all_triplet_loss(np.zeros((0, 2), "float32"), np.zeros(0, "int64")), "empty"),
        (lambda: kt.batch_all_triplet_loss(np.zeros((4, 2), "float32"), np.zeros(4, "float32")), "integer"),
        (lambda: kt.batch_hard_triplet_loss(np.zeros((4, 2), "float32"), np.zeros(3, "int64")), r"shape \[4\]"),
        (lambda: kt.batch_hard_triplet_loss(np.zeros((4, 2), "float32"), np.zeros(4, "int64"), -0.1), "margin"),
        (
            lambda: kt.triplet_loss(
                np.zeros((4, 2), "float32"), np.zeros((4, 2), "float32"), np.zeros((3, 2), "float32")
            ),
            "same shape",
        ),
        (lambda: kt.BatchTripletLoss("semihard"), "unknown mining"),
        (lambda: kt.pk_batches(np.array([0, 0, 1]), p=3, k=2), "number of classes"),
    ],
    ids=[
        "1-D",
        "int embeddings",
        "empty",
        "float labels",
        "label count",
        "negative margin",
        "triplet shapes",
        "mining",
        "p too large",
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_runs_as_a_script(capsys):
    """The file's __main__ block."""
    out = snippet_main_output("triplet.py", capsys)
    assert "batch_hard_triplet_loss(margin=0.05): 0.486778" in out
    assert "batch_all_triplet_loss(margin=0.05):  0.428509" in out
