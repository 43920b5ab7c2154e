"""Keras adaface.py: parity with the PyTorch twin (logits, loss, input gradients, running statistics), the E6
worked example (tests/worked_examples.md), model.fit, save/load and bad inputs. Runs under whatever KERAS_BACKEND
this process uses."""

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from keras import ops
from keras_parity import (
    BACKEND,
    assert_parity,
    keras_ce,
    keras_value_and_grad,
    run_keras_snippet,
    torch_value_and_grad,
    twin_heads,
)
from snippet_loader import load_snippet

ka = load_snippet("keras/adaface.py")
pa = load_snippet("pytorch/adaface.py")


def random_batch(seed, batch=12, classes=5):
    rng = np.random.default_rng(seed)
    cosine = rng.uniform(-1, 1, size=(batch, classes)).astype("float32")
    norms = rng.uniform(1, 45, size=batch).astype("float32")
    return cosine, norms, rng.integers(0, classes, size=batch).astype("int64")


def edge_batch():
    """Target cosines at +-1, just inside, and at the clip boundaries; norms that saturate ms at -1 and +1."""
    cosine, norms, labels = random_batch(5, batch=6, classes=4)
    labels = np.arange(6) % 4
    cosine[np.arange(6), labels] = [1.0, -1.0, 0.9995, -0.9995, 0.0, 0.3]
    cosine[0, 1], cosine[1, 2] = -1.0, 1.0
    norms[:] = [0.001, 100.0, 20.0, 5.0, 60.0, 20.0]
    return cosine, norms, labels.astype("int64")


BATCHES = {"random": random_batch(0), "edges": edge_batch()}
STATS = dict(batch_mean=21.0, batch_std=9.0)


@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_adaface_logits_loss_and_gradient_match_pytorch_twin(batch):
    cosine, norms, labels = BATCHES[batch]
    tl = torch.from_numpy(labels)
    logits = ops.convert_to_numpy(ka.adaface_logits(cosine, labels, norms, **STATS))
    assert logits.dtype == np.float32
    assert_parity(
        logits, pa.adaface_logits(torch.from_numpy(cosine), tl, torch.from_numpy(norms), **STATS).numpy(), "logits"
    )

    loss, grad = keras_value_and_grad(lambda c: keras_ce(ka.adaface_logits(c, labels, norms, **STATS), labels), cosine)
    ref_loss, ref_grad = torch_value_and_grad(
        lambda c: F.cross_entropy(pa.adaface_logits(c, tl, torch.from_numpy(norms), **STATS), tl), cosine
    )
    assert_parity(loss, ref_loss, "loss")
    assert np.all(np.isfinite(grad))
    assert_parity(grad, ref_grad, "d loss / d cosine")


def test_adaface_worked_example_e6():
    cosine = np.array([[0.8, 0.3, -0.2], [0.1, 0.6, -0.4], [0.2, -0.1, 0.5]], "float32")
    labels = np.array([0, 1, 2])
    logits = ops.convert_to_numpy(
        ka.adaface_logits(cosine, labels, np.array([10.0, 20.0, 30.0], "float32"), 20.0, 10.0)
    )
    np.testing.assert_allclose(logits[np.arange(3), labels], [28.57124636824269, 12.8, 4.952802765348373], rtol=1e-6)
    assert float(keras_ce(logits, labels)) == pytest.approx(2.616444440253509, rel=1e-5)


def make_pair(embedding_size=6, num_classes=4, **kwargs):
    return twin_heads(pa.AdaFaceHead, ka.AdaFaceHead, embedding_size, num_classes, **kwargs)


def test_adaface_two_consecutive_training_calls_match_pytorch_and_the_update_rule():
    module, layer = make_pair(t_alpha=0.3)
    rng = np.random.default_rng(1)
    mu, sigma = 20.0, 100.0
    for batch in (5, 3):
        x = (rng.normal(size=(batch, 6)) * rng.uniform(5, 40, size=(batch, 1))).astype("float32")
        y = rng.integers(0, 4, size=batch)
        logits = ops.convert_to_numpy(layer([x, y], training=True))
        ref = module(torch.from_numpy(x), torch.from_numpy(y)).detach().numpy()
        norms = np.clip(np.linalg.norm(x.astype(np.float64), axis=1), 1e-3, 100)  # the layer clips norms as head.py
        mu, sigma = 0.3 * norms.mean() + 0.7 * mu, 0.3 * norms.std(ddof=1) + 0.7 * sigma
        assert float(layer.batch_mean) == pytest.approx(mu, rel=1e-5)
        assert float(layer.batch_std) == pytest.approx(sigma, rel=1e-5)
        assert float(layer.batch_std) == pytest.approx(module.batch_std.item(), rel=1e-6)
        assert_parity(logits, ref, "logits after update")


def test_adaface_batch_of_one_keeps_std():
    _, layer = make_pair(t_alpha=0.5)
    logits = ops.convert_to_numpy(layer([np.array([[3.0, 4.0, 0, 0, 0, 0]], "float32"), np.array([1])], training=True))
    assert float(layer.batch_std) == 100.0
    assert float(layer.batch_mean) == pytest.approx(0.5 * 5 + 0.5 * 20)
    assert np.all(np.isfinite(logits))


def test_adaface_inference_leaves_statistics_alone():
    _, layer = make_pair()
    layer([np.random.default_rng(0).normal(size=(4, 6)).astype("float32") * 50, np.array([0, 1, 2, 3])], training=False)
    assert (float(layer.batch_mean), float(layer.batch_std)) == (20.0, 100.0)


def test_adaface_layer_gradient_wrt_embeddings_matches_pytorch():
    module, layer = make_pair()
    module.eval()
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(5, 6)) * 15).astype("float32")
    x[4] = 0.0  # an all-zero embedding: finite gradient
    y = np.array([0, 1, 2, 3, 1])
    loss, grad = keras_value_and_grad(lambda e: keras_ce(layer([e, y], training=False), y), x)
    ref_loss, ref_grad = torch_value_and_grad(
        lambda e: F.cross_entropy(module(e, torch.from_numpy(y)), torch.from_numpy(y)), x
    )
    assert np.all(np.isfinite(grad))
    assert_parity(loss, ref_loss, "loss")
    assert_parity(grad, ref_grad, "d loss / d embeddings")


def build_model(num_classes=4):
    x_in, y_in = keras.Input((8,)), keras.Input((), dtype="int32")
    logits = ka.AdaFaceHead(embedding_size=16, num_classes=num_classes, name="adaface")(
        [keras.layers.Dense(16)(x_in), y_in]
    )
    model = keras.Model([x_in, y_in], logits)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def toy_data():
    rng = np.random.default_rng(0)
    y = np.arange(128) % 4
    x = (rng.normal(size=(128, 8)) + 3 * np.eye(8)[y]).astype("float32")
    return x, y


def test_adaface_model_fit_moves_statistics_and_lowers_the_loss():
    keras.utils.set_random_seed(0)
    model, (x, y) = build_model(), toy_data()
    history = model.fit([x, y], y, batch_size=32, epochs=4, verbose=0)
    head = model.get_layer("adaface")
    assert float(head.batch_mean) != 20.0 and float(head.batch_std) < 100.0
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_adaface_model_save_and_load_give_same_predictions(tmp_path):
    keras.utils.set_random_seed(0)
    model, (x, y) = build_model(), toy_data()
    model.fit([x, y], y, batch_size=32, epochs=1, verbose=0)
    model.save(tmp_path / "adaface.keras")
    loaded = keras.models.load_model(tmp_path / "adaface.keras")
    head, loaded_head = model.get_layer("adaface"), loaded.get_layer("adaface")
    assert float(loaded_head.batch_std) == float(head.batch_std) and float(loaded_head.batch_mean) == float(
        head.batch_mean
    )
    assert loaded_head.get_config()["t_alpha"] == 0.01
    np.testing.assert_allclose(
        loaded.predict([x, y], verbose=0), model.predict([x, y], verbose=0), rtol=1e-6, atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cosine=np.zeros(3, "float32")), "2-D"),
        (
            dict(cosine=np.zeros((0, 3), "float32"), labels=np.zeros(0, "int64"), norms=np.zeros(0, "float32")),
            "empty batch",
        ),
        (dict(labels=np.array([0.0, 1.0], "float32")), "integer"),
        (dict(labels=np.array([0, 1, 1])), "shape"),
        (dict(labels=np.array([0, 3])), r"\[0, 3\)"),
        (dict(labels=np.array([-1, 0])), r"\[0, 3\)"),
        (dict(norms=np.ones(3, "float32")), "norms"),
        (dict(s=0.0), "s must"),
        (dict(m=2.0), "m must"),
    ],
)
def test_adaface_logits_bad_inputs_raise_value_error(kwargs, message):
    args = dict(
        cosine=np.zeros((2, 3), "float32"),
        norms=np.ones(2, "float32"),
        labels=np.array([0, 1]),
        batch_mean=20.0,
        batch_std=100.0,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ka.adaface_logits(**args)


def test_adaface_bad_layer_settings_raise_value_error():
    with pytest.raises(ValueError, match="t_alpha"):
        ka.AdaFaceHead(4, 3, t_alpha=0.0)
    _, layer = make_pair()
    with pytest.raises(ValueError, match="embeddings must have shape"):
        layer([np.zeros((2, 5), "float32"), np.array([0, 1])])


if BACKEND != "torch":  # under torch, tests/test_snippet_scripts.py already runs every snippet as a script

    def test_adaface_runs_as_a_script_on_this_backend():
        result = run_keras_snippet("adaface.py")
        assert result.returncode == 0, result.stderr[-2000:]
        assert "loss: 2.61644" in result.stdout and "batch_std" in result.stdout
