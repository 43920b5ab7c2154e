"""CosineClassifier with its class centers split over two devices (snippets/keras/sharded_classifier.py, JAX only).

Oracle: the same model, batch and initial kernel on one device. Two simulated CPU devices need XLA_FLAGS before jax
starts, and jax has started in this process already, so the comparison runs in a fresh subprocess.

keras.distribution exists only on the JAX backend. The tests are therefore defined only when this process runs
Keras on jax (`make test-backends` does; under torch and tensorflow this module collects no tests, nothing skipped).
"""

import json
import os
import subprocess
import sys

import keras
from snippet_loader import ROOT

CHECK = r"""
import json, sys
import numpy as np
sys.path.insert(0, "snippets/keras")
import keras
import sharded_classifier as sc

cos_one, loss_one, kernel_one = sc._example()
cos_two, loss_two, kernel_two = sc._example(sc.class_sharded_distribution(100))
try:
    sc.class_sharded_distribution(101)
    uneven = "no error"
except ValueError as error:
    uneven = str(error)
print(json.dumps({
    "devices": len(keras.distribution.list_devices()),
    "spec": list(kernel_two.sharding.spec),
    "shard_shapes": [list(s.data.shape) for s in kernel_two.addressable_shards],
    "cosine": float(np.abs(cos_one - cos_two).max()),
    "loss_one": float(loss_one), "loss_two": float(loss_two),
    "kernel": float(np.abs(np.asarray(kernel_one) - np.asarray(kernel_two)).max()
                    / np.abs(np.asarray(kernel_one)).max()),
    "uneven": uneven,
}))
"""


def run_check():
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env.pop("PYTHONPATH", None)
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


if keras.backend.backend() == "jax":

    def test_class_sharded_kernel_matches_one_device():
        result = run_check()
        assert result["devices"] == 2
        assert result["spec"] == [None, "model"]
        assert result["shard_shapes"] == [[8, 50], [8, 50]]  # each device holds half of the classes
        assert result["cosine"] <= 1e-6
        assert abs(result["loss_two"] - result["loss_one"]) <= 1e-5 * abs(result["loss_one"])
        assert result["kernel"] <= 1e-5  # after one SGD step: the gradients agree too
        assert result["uneven"] == "num_classes=101 must be a multiple of the 2 devices"
