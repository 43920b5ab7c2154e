"""Helpers shared by the Keras tests (tests/keras/): PyTorch<->Keras parity and gradients on the active backend.

The Keras backend is fixed per process (KERAS_BACKEND, default torch from tests/conftest.py), so BACKEND is read
once here. Import with `from keras_parity import ...` (tests/ is on pytest's pythonpath). Fixtures live in
tests/keras/conftest.py.
"""

import os
import runpy
import subprocess
import sys

import keras
import numpy as np
import torch
from keras import ops
from snippet_loader import ROOT

RTOL, ATOL = 1e-5, 1e-6
BACKEND = keras.backend.backend()


def keras_value_and_grad(fn, x):
    """fn(x) -> scalar with the active Keras backend's autodiff (torch autograd, jax.value_and_grad or
    tf.GradientTape); returns (value, d value / dx) as numpy. An unknown backend raises instead of guessing."""
    if BACKEND == "torch":
        xt = torch.tensor(x, requires_grad=True)
        out = fn(xt)
        (grad,) = torch.autograd.grad(out, xt)
        return out.detach().cpu().numpy(), grad.cpu().numpy()
    if BACKEND == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(jax.numpy.asarray(x))
        return np.asarray(value), np.asarray(grad)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = fn(xt)
        return out.numpy(), tape.gradient(out, xt).numpy()
    raise RuntimeError(f"no gradient helper for backend {BACKEND}")


def torch_value_and_grad(fn, x):
    """fn(x) -> scalar with PyTorch autograd on the PyTorch twin; returns (value, d value / dx) as numpy."""
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt)
    (grad,) = torch.autograd.grad(out, xt)
    return out.detach().numpy(), grad.numpy()


def keras_ce(logits, labels):
    """Mean sparse softmax cross-entropy of logits against integer labels, as a Keras tensor."""
    return ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def assert_parity(ours, theirs, what):
    """rtol 1e-5 and atol 1e-6 in units of the largest entry of `theirs`: float32 has ~7 digits, so an absolute 1e-6
    on logits and gradients of size s = 64 would ask for less than one ulp (cancellation near θ + m = π shows it).
    For a comparison that must hold to a bare atol 1e-6, call np.testing.assert_allclose with RTOL, ATOL instead."""
    theirs = np.asarray(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL * max(1.0, float(np.abs(theirs).max())), err_msg=what)


def run_keras_snippet(name):
    """Run snippets/keras/<name> as a script in a fresh process on this process's backend; returns the
    CompletedProcess (stdout, stderr as text) for the caller to check."""
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    return subprocess.run(
        [sys.executable, str(ROOT / "snippets/keras" / name)], capture_output=True, text=True, timeout=300, env=env
    )


def twin_heads(module_cls, layer_cls, embedding_size, num_classes, layer_kwargs=None, **kwargs):
    """A PyTorch head module_cls(embedding_size, num_classes, **kwargs), made after torch.manual_seed(0), and its
    built Keras twin layer_cls(..., **kwargs, **layer_kwargs) holding the same class centers (PyTorch keeps them as
    weight [C, D], Keras as kernel [D, C]); returns (module, layer)."""
    torch.manual_seed(0)
    module = module_cls(embedding_size, num_classes, **kwargs)
    layer = layer_cls(embedding_size, num_classes, **kwargs, **(layer_kwargs or {}))
    layer.build([(None, embedding_size), (None,)])
    layer.kernel.assign(module.weight.detach().numpy().T)
    return module, layer


def snippet_main_output(name, capsys):
    """Run the __main__ block of snippets/keras/<name> in this process (runpy, sparing a second Keras start-up) and
    return what it printed to stdout (read through pytest's capsys fixture)."""
    runpy.run_path(str(ROOT / "snippets/keras" / name), run_name="__main__")
    return capsys.readouterr().out
