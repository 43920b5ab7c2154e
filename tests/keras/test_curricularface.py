"""Keras curricularface.py: parity with the PyTorch twin (logits, loss, input gradients, the t update), the E7
worked example (tests/worked_examples.md), model.fit, save/load and bad inputs. Runs under whatever KERAS_BACKEND
this process uses."""

import math

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

kc = load_snippet("keras/curricularface.py")
pc = load_snippet("pytorch/curricularface.py")


def random_batch(seed, batch=12, classes=5):
    rng = np.random.default_rng(seed)
    cosine = rng.uniform(-1, 1, size=(batch, classes)).astype("float32")
    return cosine, rng.integers(0, classes, size=batch).astype("int64")


def edge_batch(m=0.5):
    """Target cosines at +-1, just inside, past theta + m > pi and on both sides of cos(pi - m)."""
    threshold = np.float32(math.cos(math.pi - m))
    targets = np.array(
        [
            1.0,
            -1.0,
            np.nextafter(np.float32(1), np.float32(0)),
            -0.95,
            -0.87,
            threshold,
            np.nextafter(threshold, np.float32(1)),
            np.nextafter(threshold, np.float32(-1)),
            0.0,
            0.5,
        ],
        "float32",
    )
    cosine, _ = random_batch(9, batch=len(targets), classes=5)
    labels = np.arange(len(targets)) % 5
    cosine[np.arange(len(targets)), labels] = targets
    cosine[0, 1], cosine[1, 2] = -1.0, 1.0
    return cosine, labels.astype("int64")


BATCHES = {"random": random_batch(0), "edges": edge_batch()}


@pytest.mark.parametrize("t", [0.0, 0.35])
@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_curricularface_logits_loss_and_gradient_match_pytorch_twin(batch, t):
    cosine, labels = BATCHES[batch]
    tl = torch.from_numpy(labels)
    logits = ops.convert_to_numpy(kc.curricularface_logits(cosine, labels, t))
    assert logits.dtype == np.float32
    assert_parity(logits, pc.curricularface_logits(torch.from_numpy(cosine), tl, t).numpy(), "logits")

    loss, grad = keras_value_and_grad(lambda c: keras_ce(kc.curricularface_logits(c, labels, t), labels), cosine)
    ref_loss, ref_grad = torch_value_and_grad(lambda c: F.cross_entropy(pc.curricularface_logits(c, tl, t), tl), cosine)
    assert_parity(loss, ref_loss, "loss")
    assert np.all(np.isfinite(grad))
    assert_parity(grad, ref_grad, "d loss / d cosine")


def test_curricularface_worked_example_e7():
    cosine, labels = np.array([[0.8, 0.5, -0.2], [0.1, 0.6, 0.3]], "float32"), np.array([0, 1])
    logits = ops.convert_to_numpy(kc.curricularface_logits(cosine, labels, t=0.007))
    np.testing.assert_allclose(logits, [[26.522286486385696, 16.224, -12.8], [6.4, 9.152582800, 5.8944]], rtol=1e-6)
    assert float(keras_ce(logits, labels)) == pytest.approx(0.04868054530001764, rel=1e-5)


def make_pair(embedding_size=6, num_classes=4, **kwargs):
    return twin_heads(pc.CurricularFaceHead, kc.CurricularFaceHead, embedding_size, num_classes, **kwargs)


def test_curricularface_two_consecutive_training_calls_match_pytorch_and_the_update_rule():
    module, layer = make_pair(momentum=0.2)
    w = module.weight.detach().numpy().astype(np.float64)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    rng = np.random.default_rng(1)
    t = 0.0
    for batch in (5, 3):
        x, y = rng.normal(size=(batch, 6)).astype("float32"), rng.integers(0, 4, size=batch)
        logits = ops.convert_to_numpy(layer([x, y], training=True))
        ref = module(torch.from_numpy(x), torch.from_numpy(y)).detach().numpy()
        cos_y = ((x / np.linalg.norm(x, axis=1, keepdims=True)) @ w.T)[np.arange(batch), y]
        t = 0.2 * cos_y.mean() + 0.8 * t
        assert float(layer.t) == pytest.approx(t, rel=1e-5, abs=1e-7)
        assert float(layer.t) == pytest.approx(module.t.item(), rel=1e-5, abs=1e-7)
        assert_parity(logits, ref, "logits after update")


def test_curricularface_inference_leaves_t_alone():
    _, layer = make_pair()
    layer([np.random.default_rng(0).normal(size=(4, 6)).astype("float32"), np.array([0, 1, 2, 3])], training=False)
    assert float(layer.t) == 0.0


def test_curricularface_layer_gradient_wrt_embeddings_matches_pytorch():
    module, layer = make_pair()
    with torch.no_grad():
        module.t.fill_(0.4)
    layer.t.assign(0.4)
    module.eval()
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 6)).astype("float32")
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
    head = kc.CurricularFaceHead(
        embedding_size=16, num_classes=num_classes, s=16.0, momentum=0.1, name="curricularface"
    )
    model = keras.Model([x_in, y_in], head([keras.layers.Dense(16)(x_in), y_in]))
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


def toy_data():
    rng = np.random.default_rng(0)
    y = np.arange(128) % 4
    return (rng.normal(size=(128, 8)) + 3 * np.eye(8)[y]).astype("float32"), y


def test_curricularface_model_fit_moves_t_and_lowers_the_loss():
    keras.utils.set_random_seed(0)
    model, (x, y) = build_model(), toy_data()
    history = model.fit([x, y], y, batch_size=32, epochs=4, verbose=0)
    assert float(model.get_layer("curricularface").t) != 0.0
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_curricularface_model_save_and_load_give_same_predictions(tmp_path):
    keras.utils.set_random_seed(0)
    model, (x, y) = build_model(), toy_data()
    model.fit([x, y], y, batch_size=32, epochs=1, verbose=0)
    model.save(tmp_path / "curricularface.keras")
    loaded = keras.models.load_model(tmp_path / "curricularface.keras")
    assert float(loaded.get_layer("curricularface").t) == float(model.get_layer("curricularface").t)
    assert loaded.get_layer("curricularface").get_config()["momentum"] == 0.1
    np.testing.assert_allclose(
        loaded.predict([x, y], verbose=0), model.predict([x, y], verbose=0), rtol=1e-6, atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cosine=np.zeros(3, "float32")), "2-D"),
        (dict(cosine=np.zeros((0, 3), "float32"), labels=np.zeros(0, "int64")), "empty batch"),
        (dict(labels=np.array([0.0, 1.0], "float32")), "integer"),
        (dict(labels=np.array([0, 1, 1])), "shape"),
        (dict(labels=np.array([0, 3])), r"\[0, 3\)"),
        (dict(labels=np.array([-1, 0])), r"\[0, 3\)"),
        (dict(s=-1.0), "s must"),
        (dict(m=1.6), "m must"),
    ],
)
def test_curricularface_logits_bad_inputs_raise_value_error(kwargs, message):
    args = dict(cosine=np.zeros((2, 3), "float32"), labels=np.array([0, 1]), t=0.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        kc.curricularface_logits(**args)


def test_curricularface_bad_call_does_not_move_t():
    _, layer = make_pair()
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        layer([np.zeros((2, 6), "float32"), np.array([0, 4])], training=True)
    assert float(layer.t) == 0.0
    with pytest.raises(ValueError, match="momentum"):
        kc.CurricularFaceHead(4, 3, momentum=0.0)


if BACKEND != "torch":  # under torch, tests/test_snippet_scripts.py already runs every snippet as a script

    def test_curricularface_runs_as_a_script_on_this_backend():
        result = run_keras_snippet("curricularface.py")
        assert result.returncode == 0, result.stderr[-2000:]
        assert "loss: 0.04868" in result.stdout and "t = " in result.stdout
