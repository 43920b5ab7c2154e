"""CurricularFace for Keras 3: ArcFace for the target, plus hard negatives re-weighted by a moving curriculum.

Huang, Wang, Tai, Liu, Shen, Li, Li, Huang, "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020, arXiv 2004.00288.

For sample i with target angle theta_y:

    target     T = cos(theta_y + m)                 (ArcFace; past theta_y + m > pi: cos(theta_y) - m * sin(m))
    negative j c_j            if c_j <= cos(theta_y + m)   (easy: already below the margined target)
               c_j * (t + c_j) otherwise                 (hard negative)

and every logit is multiplied by s. t is a running average of the mean target cosine,

    t <- momentum * mean_i cos(theta_y_i) + (1 - momentum) * t,     t starts at 0, momentum = 0.01,

updated from each training batch before it is used and never differentiated. Early in training t is near 0, so a
hard negative c_j * (t + c_j) < c_j is damped (easy samples dominate); once t + c_j > 1 it is amplified.

Conventions (the same as the PyTorch twin, snippets/pytorch/curricularface.py, name for name): angles and m in
radians; `curricularface_logits` returns scaled logits [B, C]; margin math in float32 (float64 stays float64);
sqrt(1 - cos^2) is guarded so gradients stay finite at cos(theta) = +-1. `CurricularFaceHead` is a layer called on
[embeddings, labels] (the labels are a second model input) with t as a non-trainable weight; it returns the
scaled logits: compile with SparseCategoricalCrossentropy(from_logits=True). Only keras.ops is used, so the file
runs on the torch, jax and tensorflow backends; the labels-in-[0, C) check runs only on concrete (eager) values.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`curricularface_logits(cosine, labels, t, ...)` returns the scaled logits [B, C];
`CurricularFaceHead(embedding_size, num_classes, ...)` holds the class centers and the running t and returns the
scaled logits [B, C] for (embeddings, labels) - a head, not a loss: take the cross-entropy yourself.
"""

import math

import keras
import numpy as np
from keras import ops


# --8<-- [start:helpers]
def _concrete(x):
    """x's values as a numpy array, or None while a graph is traced (jax.jit, tf.function, symbolic Keras tensors)."""
    if keras.backend.is_keras_tensor(x):
        return None
    try:
        return ops.convert_to_numpy(x)
    except (TypeError, NotImplementedError, RuntimeError):  # jax tracer, symbolic tf.Tensor, torch meta tensor
        return None


def _check_inputs(cosine, labels, s, m):
    """Short ValueErrors for the mistakes that would otherwise give a silently wrong loss."""
    if len(getattr(cosine, "shape", ())) != 2:
        raise ValueError(f"cosine must be 2-D [batch, classes], got shape {tuple(getattr(cosine, 'shape', ()))}")
    cosine, labels = ops.convert_to_tensor(cosine), ops.convert_to_tensor(labels)
    if "float" not in keras.backend.standardize_dtype(cosine.dtype):
        raise ValueError(f"cosine must be a floating-point tensor, got {keras.backend.standardize_dtype(cosine.dtype)}")
    if cosine.shape[0] == 0:
        raise ValueError("empty batch: cosine has 0 rows")
    if "int" not in keras.backend.standardize_dtype(labels.dtype):
        raise ValueError(f"labels must be an integer tensor, got {keras.backend.standardize_dtype(labels.dtype)}")
    if len(labels.shape) != 1 or labels.shape[0] != cosine.shape[0]:
        raise ValueError(f"labels must have shape [{cosine.shape[0]}] to match the batch, got {list(labels.shape)}")
    values = _concrete(labels)
    if values is not None and values.size and (values.min() < 0 or values.max() >= cosine.shape[1]):
        raise ValueError(f"labels must lie in [0, {cosine.shape[1]}), got values from {values.min()} to {values.max()}")
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"s must be a positive finite scale, got {s}")
    if not (0 <= m < math.pi / 2):
        raise ValueError(f"m must be an angle in radians in [0, pi/2), got {m}")
    return cosine, labels


def _l2_normalize(x, axis, eps=1e-12):
    """x / max(||x||, eps), like torch's F.normalize; finite (zero) gradient for an all-zero x."""
    squared = ops.sum(x * x, axis=axis, keepdims=True)
    return x * ops.rsqrt(
        ops.where(squared > eps * eps, squared, eps * eps)
    )  # not ops.maximum: float32 for float64 on torch


# --8<-- [end:helpers]


# --8<-- [start:curricularface_logits]
def curricularface_logits(cosine, labels, t, s=64.0, m=0.5):
    """Scaled CurricularFace logits [B, C] for the curriculum parameter t (a number or 0-d tensor, not trained)."""
    cosine, labels = _check_inputs(cosine, labels, s, m)
    dtype = "float64" if keras.backend.standardize_dtype(cosine.dtype) == "float64" else "float32"
    cosine = ops.cast(cosine, dtype)  # margin math never in bfloat16/float16
    t = ops.stop_gradient(ops.convert_to_tensor(t, dtype))  # a Python t: no float32 detour (tensorflow)

    labels = ops.cast(labels, "int32")
    cos_y = ops.take_along_axis(cosine, ops.expand_dims(labels, 1), axis=1)  # [B, 1]
    squared_sin = 1.0 - cos_y * cos_y
    sin_y = ops.sqrt(ops.where(squared_sin > 1e-20, squared_sin, 1e-20))  # guarded: finite gradient at cos = +-1
    cos_y_m = cos_y * math.cos(m) - sin_y * math.sin(m)  # cos(theta_y + m)
    # ArcFace target; past theta_y + m > pi, i.e. cos(theta_y) < cos(pi - m), fall back to cos(theta_y) - m sin(m)
    target = ops.where(cos_y < math.cos(math.pi - m), cos_y - m * math.sin(m), cos_y_m)

    hard = cosine > ops.stop_gradient(cos_y_m)  # compared with cos(theta_y + m), as in the authors' code
    logits = ops.where(hard, cosine * (t + cosine), cosine)
    is_target = ops.one_hot(labels, cosine.shape[1], dtype="bool")
    return ops.where(is_target, target * s, logits * s)


# --8<-- [end:curricularface_logits]


# --8<-- [start:curricularface]
@keras.saving.register_keras_serializable(package="curricularface")
class CurricularFaceHead(keras.layers.Layer):
    """Class centers [D, C] plus the curriculum parameter t; call([embeddings, labels]) returns scaled logits [B, C].

    With training=True (model.fit) each call first updates t from the batch's target cosines, then uses it;
    otherwise t is left alone.
    """

    def __init__(self, embedding_size, num_classes, s=64.0, m=0.5, momentum=0.01, **kwargs):
        super().__init__(**kwargs)
        if not (0 < momentum <= 1):
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        self.embedding_size, self.num_classes, self.s, self.m, self.momentum = (
            embedding_size,
            num_classes,
            s,
            m,
            momentum,
        )

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(self.embedding_size, self.num_classes),
            name="kernel",
            initializer=keras.initializers.RandomNormal(stddev=0.01),
        )
        self.t = self.add_weight(shape=(), name="t", trainable=False, initializer="zeros")

    def call(self, inputs, training=None):
        embeddings, labels = inputs
        if len(embeddings.shape) != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(f"embeddings must have shape [batch, {self.embedding_size}], got {list(embeddings.shape)}")
        dtype = "float64" if keras.backend.standardize_dtype(embeddings.dtype) == "float64" else "float32"
        w = _l2_normalize(ops.cast(self.kernel, dtype), axis=0)
        cosine = ops.einsum("bd,dc->bc", _l2_normalize(ops.cast(embeddings, dtype), axis=1), w)
        cosine = ops.where(cosine > 1.0, 1.0, ops.where(cosine < -1.0, -1.0, cosine))
        t = ops.cast(self.t, dtype)
        if training:  # update before use, from the un-margined target cosines
            cosine, labels = _check_inputs(cosine, labels, self.s, self.m)  # a bad call must not move t
            index = ops.expand_dims(ops.cast(labels, "int32"), 1)
            cos_y = ops.stop_gradient(ops.take_along_axis(cosine, index, axis=1))
            t = self.momentum * ops.mean(cos_y) + (1 - self.momentum) * t
            self.t.assign(ops.cast(t, self.t.dtype))
        return curricularface_logits(cosine, labels, t, self.s, self.m)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "embedding_size": self.embedding_size,
            "num_classes": self.num_classes,
            "s": self.s,
            "m": self.m,
            "momentum": self.momentum,
        }


# --8<-- [end:curricularface]


if __name__ == "__main__":
    # Worked example (the same numbers as the PyTorch twin): t = 0.01 * mean(0.8, 0.6) = 0.007 after one batch.
    cosine = np.array([[0.8, 0.5, -0.2], [0.1, 0.6, 0.3]], dtype="float32")
    labels = np.array([0, 1])
    logits = curricularface_logits(cosine, labels, t=0.007)
    print("logits:\n", np.round(ops.convert_to_numpy(logits), 4))  # 16.224 and 5.8944 are the hard negatives
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    print("loss:", float(loss))  # 0.048681

    keras.utils.set_random_seed(0)
    features, y = np.random.default_rng(0).normal(size=(64, 8)).astype("float32"), np.arange(64) % 4
    x_in, y_in = keras.Input((8,)), keras.Input((), dtype="int32")
    logits = CurricularFaceHead(embedding_size=16, num_classes=4)([keras.layers.Dense(16)(x_in), y_in])
    model = keras.Model([x_in, y_in], logits)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit([features, y], y, batch_size=16, epochs=1, verbose=0)
    print(f"after 4 batches: t = {float(model.layers[-1].t):.6f}")
