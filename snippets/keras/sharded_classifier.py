"""The class centers of a Keras CosineClassifier split over devices by class, with keras.distribution (JAX backend).

keras.distribution places each variable on a DeviceMesh according to a LayoutMap. Giving the classifier's kernel
W [D, C] the layout (None, "model") splits its columns, the classes, over the G devices of the "model" axis:
device g holds W[:, g·C/G : (g+1)·C/G]. Under jax.jit, XLA's partitioner (GSPMD) then computes cos θ [B, C/G] on
each device and turns the softmax's row maximum and row sum into collectives across the devices, the same three
steps that model_parallel.py writes by hand for torch.distributed (there: insightface's Partial FC, An et al., ICCV
Workshops 2021, arXiv 2010.05222).

Limits, checked by running it: keras.distribution exists only on the JAX backend; C must be a multiple of the
number of devices (JAX raises IndivisibleError otherwise: pad the classes and mask their logits); the whole kernel
stays in the model, so there is no per-shard Partial FC sampling here.

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 python snippets/keras/sharded_classifier.py
"""

import os
import subprocess
import sys

import keras
import numpy as np


# --8<-- [start:class_sharded_distribution]
def class_sharded_distribution(num_classes, layer_name="cosine_classifier", axis="model"):
    """A keras.distribution.ModelParallel that splits layer_name's kernel [D, C] by class over all devices."""
    if keras.backend.backend() != "jax":
        raise ValueError(f"keras.distribution needs the jax backend, got {keras.backend.backend()!r}")
    devices = keras.distribution.list_devices()
    if num_classes % len(devices):
        raise ValueError(f"num_classes={num_classes} must be a multiple of the {len(devices)} devices")
    mesh = keras.distribution.DeviceMesh(shape=(len(devices),), axis_names=[axis], devices=devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map[f"{layer_name}/.*"] = (None, axis)  # kernel [D, C]: keep D whole, split the classes
    return keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name=None)  # batch on every device


# --8<-- [end:class_sharded_distribution]


def _example(distribution=None):
    """One SGD step of CosineClassifier + ArcFace on a fixed batch; returns (cosines, loss, kernel after the step)."""
    from margins import CosineClassifier, arcface_logits  # the classifier and margin, from the file next to this one

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 8)).astype("float32"), rng.integers(0, 100, 16)
    kernel = (0.1 * rng.standard_normal((8, 100))).astype("float32")
    if distribution is not None:
        keras.distribution.set_distribution(distribution)
    inputs = keras.Input((8,))
    classifier = CosineClassifier(8, 100, name="cosine_classifier")
    model = keras.Model(inputs, classifier(inputs))
    classifier.kernel.assign(kernel)

    def arcface_loss(labels, cosine):
        labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
        logits = arcface_logits(cosine, labels, s=64.0, m=0.5)
        return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=arcface_loss)
    cosine = np.asarray(model.predict(x, batch_size=16, verbose=0))
    loss = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history["loss"][0]
    return cosine, loss, classifier.kernel.value


if __name__ == "__main__":
    if keras.backend.backend() != "jax" or len(keras.distribution.list_devices()) < 2:
        # keras.distribution is JAX-only: rerun this example on the jax backend with two simulated CPU devices.
        try:
            import jax  # noqa: F401
        except ImportError:
            print("keras.distribution needs the jax backend (pip install jax); this example has nothing to shard.")
            sys.exit(0)
        env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
        sys.exit(subprocess.run([sys.executable, __file__], env=env).returncode)

    cos_one, loss_one, kernel_one = _example()
    cos_two, loss_two, kernel_two = _example(class_sharded_distribution(100))
    print("devices:", keras.distribution.list_devices())
    print("kernel layout:", kernel_two.sharding.spec, " per-device shard:", kernel_two.addressable_shards[0].data.shape)
    print(f"loss: one device {loss_one:.6f}, classes split over two {loss_two:.6f}")
    kernel_gap = np.abs(np.asarray(kernel_one) - np.asarray(kernel_two)).max()
    print(f"max |cosine difference| {np.abs(cos_one - cos_two).max():.1e}, after one SGD step kernel {kernel_gap:.1e}")
