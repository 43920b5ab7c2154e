"""The original post's Keras ArcFace code (snippets/keras/original_post.py): each defect shown with a number.

Run with `-s` to see the numbers the ArcFace page quotes (lines starting with "DEFECT"). The oracles are float64
formulas written here and the guide's arcface_logits (itself checked against the PyTorch twin and worked values).
"""

import math

import keras
import numpy as np
import pytest
from keras import ops
from keras_parity import BACKEND, keras_ce, keras_value_and_grad, snippet_main_output
from snippet_loader import load_snippet

post = load_snippet("keras/original_post.py")
km = load_snippet("keras/margins.py")

S, M = post.s, post.m  # 30.0 and 0.5, as in the post


@pytest.fixture
def old_logits(monkeypatch):
    """Run the post's arcface_loss and return the logits it hands to its cross-entropy (a spy, nothing changed)."""
    seen = []
    cross_entropy = ops.sparse_categorical_crossentropy

    def spy(target, output, from_logits=False, axis=-1):
        seen.append(ops.convert_to_numpy(output))
        return cross_entropy(target, output, from_logits=from_logits, axis=axis)

    monkeypatch.setattr(post.ops, "sparse_categorical_crossentropy", spy)

    def run(cosine, labels):
        post.arcface_loss(ops.convert_to_tensor(labels), ops.convert_to_tensor(np.asarray(cosine, dtype="float32")))
        return seen[-1]

    return run


def mean_ce(logits, labels):
    return float(ops.convert_to_numpy(keras_ce(logits, labels)))


# --- defect 1: labels cast to float before a sparse cross-entropy ------------------------------------------------


def test_defect_1_float_labels_fail_in_the_backends_own_sparse_cross_entropy():
    """The post's last line was tf.nn.sparse_softmax_cross_entropy_with_logits(labels=<float labels>, ...): it fails
    on TensorFlow. Each backend's own integer-label cross-entropy rejects the float labels the same way."""
    labels = ops.cast(np.array([0, 2]), "float32")  # what the post's y_true = tf.cast(y_true, tf.float32) makes
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], dtype="float32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError)) as error:
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        expected = "int32, int64"
    elif BACKEND == "torch":
        import torch

        with pytest.raises(RuntimeError) as error:
            torch.nn.functional.cross_entropy(torch.from_numpy(logits), labels)
        expected = "Long"
    else:
        import jax

        with pytest.raises(TypeError) as error:  # the gather a sparse cross-entropy needs
            jax.numpy.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=-1)
        expected = "integer"
    message = str(error.value).splitlines()[0]
    print(f"DEFECT 1 ({BACKEND}): {type(error.value).__name__}: {message}")
    assert expected in str(error.value)


def test_defect_1_keras_casts_float_labels_back_without_a_word():
    """Keras 3 hides the mistake: its sparse cross-entropy truncates float labels, and float32 cannot even hold
    every class id (2**24 + 1 becomes 2**24)."""
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], dtype="float32")
    as_ints = mean_ce(logits, np.array([1, 2]))
    as_floats = mean_ce(logits, np.array([1.7, 2.2], dtype="float32"))
    assert as_floats == as_ints  # 1.7 is taken as class 1, silently
    big = int(ops.convert_to_numpy(ops.cast(ops.cast(np.array([2**24 + 1]), "float32"), "int64"))[0])
    print(f"DEFECT 1: labels 1.7, 2.2 give the loss of classes 1, 2 ({as_floats:.6f}); class {2**24 + 1} -> {big}")
    assert big == 2**24


# --- defect 2: the output is a softmax probability, not a cosine --------------------------------------------------


def test_defect_2_model_output_is_a_probability_not_a_cosine():
    keras.utils.set_random_seed(0)
    model = post.create_model((128,), 10)
    x = np.random.default_rng(0).random((256, 128), dtype=np.float32)
    y_pred = ops.convert_to_numpy(model(x))
    kernel = ops.convert_to_numpy(model.layers[-2].kernel)  # the Dense(num_classes) before the softmax
    column_norms = np.linalg.norm(kernel, axis=0)
    row_sums = y_pred.sum(axis=1)
    # what a cosine layer on the same normalized embeddings would give: values of both signs
    embeddings = ops.convert_to_numpy(keras.Model(model.input, model.layers[-3].output)(x))
    cosines = embeddings @ (kernel / column_norms)
    print(
        f"DEFECT 2: y_pred in [{y_pred.min():.4f}, {y_pred.max():.4f}], rows sum to 1 within "
        f"{np.abs(row_sums - 1).max():.1e}, class-weight norms {column_norms.min():.3f}..{column_norms.max():.3f} "
        f"(not 1), bias present: {len(model.layers[-2].weights) == 2}; true cosines span "
        f"[{cosines.min():.3f}, {cosines.max():.3f}], {np.mean(cosines < 0):.0%} negative"
    )
    assert y_pred.min() > 0 and y_pred.max() < 1  # never negative: θ would never exceed 90°
    np.testing.assert_allclose(row_sums, 1.0, atol=1e-5)
    assert np.all(np.abs(column_norms - 1) > 0.05)
    assert np.mean(cosines < 0) > 0.2  # real cosines are negative about half the time


# --- defect 3: the margin goes to every class -------------------------------------------------------------------


def test_defect_3_margin_is_applied_to_every_class_not_only_the_target(old_logits):
    """E2's cosines (worked_examples.md), s = 30, m = 0.5: the post's logits vs arcface_logits.
    Only the target columns agree."""
    cosine = np.array([[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]], dtype="float32")
    labels = np.array([0, 1])
    old = old_logits(cosine, labels)
    new = ops.convert_to_numpy(km.arcface_logits(cosine, labels, s=S, m=M))
    target = np.zeros_like(cosine, dtype=bool)
    target[[0, 1], labels] = True
    np.testing.assert_allclose(old[target], new[target], rtol=1e-6)
    # float64 oracle: the post turns every non-target c into s·cos(acos c + m) instead of leaving s·c
    c = cosine[~target].astype("float64")
    np.testing.assert_allclose(old[~target], S * np.cos(np.arccos(c) + M), rtol=1e-5)
    difference = np.abs(old - new).max()
    old_loss, new_loss = mean_ce(old, labels), mean_ce(new, labels)
    print(
        f"DEFECT 3: max |post - arcface_logits| = {difference:.4f} (s = 30, non-target columns only); "
        f"loss {old_loss:.6f} instead of {new_loss:.6f}"
    )
    assert difference == pytest.approx(S * (0.2 - math.cos(math.acos(0.2) + M)), rel=1e-5)  # c = 0.2: 14.83
    assert new_loss == pytest.approx(1.0221400992766618, rel=1e-5)  # the guide's E2 at s = 30
    assert old_loss < 1e-5 < new_loss  # penalizing every class cancels the margin's effect


# --- defect 4: the fallback jumps up -------------------------------------------------------------------------------


def test_defect_4_fallback_makes_the_target_logit_jump_up_at_pi_minus_m(old_logits):
    threshold = math.cos(math.pi - M)  # θ = π - m
    delta = 1e-6  # well above float32 resolution near 0.88 (6e-8), small enough for the limit
    before, after = np.float32(threshold + delta), np.float32(threshold - delta)  # θ just below / just above π - m
    cosine = np.array([[before, 0.0], [after, 0.0]], dtype="float32")
    labels = np.array([0, 0])
    old = old_logits(cosine, labels)[:, 0]
    new = ops.convert_to_numpy(km.arcface_logits(cosine, labels, s=S, m=M))[:, 0]
    old_jump, new_jump = old[1] - old[0], new[1] - new[0]
    print(
        f"DEFECT 4: at θ = π - m the post's target logit jumps by {old_jump:+.4f} (up: a larger angle is "
        f"rewarded); the standard fallback moves it by {new_jump:+.4f} (down)"
    )
    assert old_jump == pytest.approx(S * (1 - math.cos(M)), abs=1e-3)  # s·(1 - cos m) = +3.6725
    assert new_jump == pytest.approx(-S * (math.cos(M) + M * math.sin(M) - 1), abs=1e-3)  # -3.5189


# --- defect 5: NaN gradient at cos θ = ±1 ---------------------------------------------------------------------


def test_defect_5_unguarded_sqrt_gives_non_finite_gradient_at_cos_plus_minus_one():
    """Not saturated (the loss is not ~0), so the gradient reaching sqrt is not 0: at cos = 1 it becomes ±inf on
    every backend; at cos = -1 (the other where() branch) torch and jax give NaN (0 · inf), TensorFlow 0."""
    cosine = np.array([[1.0, 0.99, 0.95], [0.1, -1.0, 0.5]], dtype="float32")
    labels = np.array([0, 2])
    loss, grad = keras_value_and_grad(lambda c: ops.mean(post.arcface_loss(labels, c)), cosine)
    _, fixed = keras_value_and_grad(lambda c: keras_ce(km.arcface_logits(c, labels, s=S, m=M), labels), cosine)
    # a softmax output can be exactly 1.0 in float32: the post's own y_pred reaches cos_t = 1 once training saturates
    saturated = float(ops.convert_to_numpy(ops.softmax(np.array([[20.0, 0.0]], dtype="float32")))[0, 0])
    print(
        f"DEFECT 5 ({BACKEND}): loss {float(loss):.4f} is finite, but the gradient at cos = 1 is {grad[0, 0]} "
        f"and at cos = -1 is {grad[1, 1]} ({np.sum(~np.isfinite(grad))} of {grad.size} entries not finite); "
        f"with the guarded sqrt all are finite. softmax([20, 0])[0] = {saturated!r}"
    )
    assert np.isfinite(loss) and float(loss) > 0.01
    assert not np.isfinite(grad[0, 0])
    assert np.all(np.isfinite(fixed))
    assert saturated == 1.0


# --- the correction, trained the same way ----------------------------------------------------------------------


def test_corrected_model_trained_the_same_way_runs_as_a_script(capsys):
    """The file's __main__ block (run in this process with runpy, to spare a second Keras start-up): the post's
    random data and training call (Adam, batch 32, 10 epochs) for the post's model and for the corrected one.
    Held-out accuracy on real data is tests/keras/test_fit_digits.py's job."""
    out = snippet_main_output("original_post.py", capsys)
    print(out)
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if "loss per epoch" in line}
    for name in ("post's code", "corrected"):
        losses = [float(v) for v in lines[name].split("loss per epoch ")[1].split(";")[0].split(", ")]
        assert len(losses) == 10 and np.all(np.isfinite(losses)) and losses[-1] < losses[0]
