"""Keras partial_fc.py: the sampling rules, parity with the PyTorch twin at full rate and in inference, the sampled
loss against a float64 oracle on the same sample, model.fit, save/load and bad inputs (any KERAS_BACKEND)."""

import keras
import numpy as np
import pytest
import torch
from keras import ops
from keras_parity import (
    BACKEND,
    RTOL,
    assert_parity,
    keras_value_and_grad,
    run_keras_snippet,
    torch_value_and_grad,
    twin_heads,
)
from oracles import margin_loss
from snippet_loader import load_snippet

kp = load_snippet("keras/partial_fc.py")
pp = load_snippet("pytorch/partial_fc.py")


def sample(labels, num_classes, num_sample, seed):
    index, remapped = kp.sample_class_centers(
        labels, num_classes, num_sample, generator=keras.random.SeedGenerator(seed)
    )
    return ops.convert_to_numpy(index), ops.convert_to_numpy(remapped)


def test_sample_keeps_every_present_class():
    labels = np.array([3, 97, 3, 41, 0, 99])
    for seed in range(20):
        index, _ = sample(labels, 100, 8, seed)
        assert set(labels.tolist()) <= set(index.tolist())


def test_sample_index_is_sorted_distinct_and_of_requested_size():
    index, _ = sample(np.array([5, 1, 5]), 50, 12, 0)
    assert index.shape == (12,) and np.all(np.diff(index) > 0) and 0 <= index.min() and index.max() < 50


def test_sample_remapped_labels_point_back_to_the_original_classes():
    labels = np.array([7, 2, 7, 19, 2])
    index, remapped = sample(labels, 20, 6, 3)
    assert np.array_equal(index[remapped], labels) and remapped.max() < 6


def test_sample_with_the_same_seed_is_reproducible():
    assert np.array_equal(sample(np.array([1, 2]), 30, 7, 5)[0], sample(np.array([1, 2]), 30, 7, 5)[0])


def test_sample_fills_with_uniformly_random_negatives():
    labels, gen, counts, trials = np.array([2, 7]), keras.random.SeedGenerator(0), np.zeros(10), 600
    for _ in range(trials):
        index, _ = kp.sample_class_centers(labels, 10, 5, generator=gen)
        counts[ops.convert_to_numpy(index)] += 1
    assert counts[2] == counts[7] == trials
    np.testing.assert_allclose(np.delete(counts, [2, 7]) / trials, 3 / 8, atol=0.1)  # 5 sigma is ~0.099


def make_pair(num_classes=40, embedding_size=8, seed=None, **kwargs):
    """seed: the Keras layer's SeedGenerator."""
    return twin_heads(
        pp.PartialFCLoss, kp.PartialFCLoss, embedding_size, num_classes, layer_kwargs=dict(seed=seed), **kwargs
    )


@pytest.mark.parametrize("kwargs", [dict(sample_rate=1.0), dict(sample_rate=1.0, margin="cosface", s=30.0, m=0.35)])
def test_partial_fc_full_rate_loss_and_gradient_match_pytorch(kwargs):
    module, layer = make_pair(**kwargs)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 8)).astype("float32"), rng.integers(0, 40, size=10)
    x[9] = 0.0  # an all-zero embedding: finite gradient
    loss, grad = keras_value_and_grad(lambda e: layer([e, y], training=True), x)
    ref_loss, ref_grad = torch_value_and_grad(lambda e: module(e, torch.from_numpy(y)), x)
    assert np.all(np.isfinite(grad))
    assert_parity(loss, ref_loss, "loss")
    assert_parity(grad, ref_grad, "d loss / d embeddings")


def test_partial_fc_inference_uses_all_centers_like_the_pytorch_eval_mode():
    module, layer = make_pair(num_classes=200, sample_rate=0.1)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 8)).astype("float32"), rng.integers(0, 200, size=6)
    loss = float(layer([x, y], training=False))
    assert loss == pytest.approx(module.eval()(torch.from_numpy(x), torch.from_numpy(y)).item(), rel=RTOL)
    assert loss == pytest.approx(margin_loss(x, module.weight.detach().numpy(), y), rel=RTOL)


def test_partial_fc_sampled_loss_is_the_oracle_on_the_sampled_centers():
    _, layer = make_pair(num_classes=200, sample_rate=0.1, seed=11)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 8)).astype("float32"), np.array([5, 17, 5, 199, 0, 64])
    index, remapped = sample(y, 200, 20, 11)  # a fresh SeedGenerator(11) replays the layer's first draw
    loss = float(layer([x, y], training=True))
    kernel = ops.convert_to_numpy(layer.kernel)
    assert loss == pytest.approx(margin_loss(x, kernel.T[index], remapped), rel=RTOL)
    assert loss < margin_loss(x, kernel.T, y)  # fewer competitors in the denominator


def build_model():
    x_in, y_in = keras.Input((8,)), keras.Input((), dtype="int32")
    loss = kp.PartialFCLoss(16, 50, sample_rate=0.3, s=16.0, seed=0, name="partial_fc")(
        [keras.layers.Dense(16)(x_in), y_in]
    )
    model = keras.Model([x_in, y_in], loss)
    model.compile(optimizer=keras.optimizers.Adam(0.01))  # no loss=: the layer adds its own
    return model


def toy_data():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 50
    centers = rng.normal(size=(50, 8)) * 3
    return (centers[y] + rng.normal(size=(200, 8))).astype("float32"), y


def test_partial_fc_model_fit_lowers_the_loss():
    keras.utils.set_random_seed(0)
    model, (x, y) = build_model(), toy_data()
    history = model.fit([x, y], batch_size=40, epochs=5, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]


def test_partial_fc_model_save_and_load_give_the_same_full_softmax_loss(tmp_path):
    keras.utils.set_random_seed(0)
    model, (x, y) = build_model(), toy_data()
    model.fit([x, y], batch_size=40, epochs=1, verbose=0)
    model.save(tmp_path / "partial_fc.keras")
    loaded = keras.models.load_model(tmp_path / "partial_fc.keras")
    assert loaded.get_layer("partial_fc").get_config()["sample_rate"] == 0.3
    before = float(model([x, y], training=False))
    assert float(loaded([x, y], training=False)) == pytest.approx(before, rel=1e-6)


@pytest.mark.parametrize(
    "labels, num_classes, num_sample, message",
    [
        (np.array([1, 2, 3]), 10, 2, "smaller than the 3 distinct classes"),
        (np.array([1, 2]), 10, 11, "exceeds num_classes"),
        (np.array([1, 10]), 10, 5, r"\[0, 10\)"),
        (np.array([1.0, 2.0], "float32"), 10, 5, "integer"),
        (np.zeros(0, "int64"), 10, 5, "empty batch"),
        (np.array([[1, 2]]), 10, 5, "1-D"),
    ],
)
def test_sample_bad_inputs_raise_value_error(labels, num_classes, num_sample, message):
    with pytest.raises(ValueError, match=message):
        kp.sample_class_centers(labels, num_classes, num_sample)


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
        kp.PartialFCLoss(4, 10, **kwargs)


def test_partial_fc_batch_mismatch_raises_value_error():
    _, layer = make_pair()
    with pytest.raises(ValueError, match="match the batch"):
        layer([np.zeros((3, 8), "float32"), np.array([1, 2])])


if BACKEND != "torch":  # under torch, tests/test_snippet_scripts.py already runs every snippet as a script

    def test_partial_fc_runs_as_a_script_on_this_backend():
        result = run_keras_snippet("partial_fc.py")
        assert result.returncode == 0, result.stderr[-2000:]
        assert "index[remapped] == labels: True" in result.stdout and "training loss per epoch" in result.stdout
