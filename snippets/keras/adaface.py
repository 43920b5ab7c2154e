"""AdaFace for Keras 3: a margin whose *shape* follows the feature norm, used as a proxy for image quality.

Kim, Jain, Liu, "AdaFace: Quality Adaptive Margin for Face Recognition", CVPR 2022, arXiv 2204.00964.

The norm ||x|| of the embedding before normalization is standardized with running batch statistics and clipped:

    ms = clip(h * (||x|| - mu) / (sigma + eps), -1, 1)          (norms detached: no gradient through the margin)

and the target logit of sample i becomes

    s * (cos(clip(theta_y - m * ms, eps, pi - eps)) - m * (1 + ms))

so ms = -1 (small norm, probably a poor image) gives ArcFace's cos(theta + m), ms = 0 gives CosFace's cos(theta) - m
and ms = +1 (large norm) gives cos(theta - m) - 2m. Every other logit stays s * cos(theta_j).

Conventions (the same as the PyTorch twin, snippets/pytorch/adaface.py, name for name): angles and m in radians;
`adaface_logits` returns the *scaled* logits [B, C] for a from-logits sparse cross-entropy and changes only the
target column; margin math in float32 (float64 stays float64); the target cosine is clamped to [-1 + eps, 1 - eps]
before arccos so gradients stay finite at cos(theta) = +-1
(the authors' head.py clamps every cosine of the [B, C] matrix to that range, so its non-target logits can
differ from ours by at most s * eps).

`AdaFaceHead` is a layer called on [embeddings, labels]: the labels are a second model input, because the margin needs
them. It keeps mu and sigma as non-trainable weights (starting at 20 and 100, as the authors' code), updated from
each training batch *before* use: mu <- t_alpha * mean + (1 - t_alpha) * mu, sigma likewise with the unbiased
(ddof = 1) standard deviation of the batch norms; a batch of one keeps the old sigma instead of turning it into
NaN. It returns the scaled logits: compile with SparseCategoricalCrossentropy(from_logits=True). Only keras.ops is
used, so the file runs on the torch, jax and tensorflow backends. The check that labels lie in [0, C) needs their
values, so it runs only when they are concrete (eager); inside a jax.jit / tf.function trace it is skipped.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`adaface_logits(cosine, labels, norms, batch_mean, batch_std, ...)` returns the scaled logits [B, C];
`AdaFaceHead(embedding_size, num_classes, ...)` holds the class centers and the running norm statistics and
returns the scaled logits [B, C] for (embeddings, labels) - a head, not a loss: take the cross-entropy yourself.
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


def _clamp(x, low, high):
    """clip with torch.clamp's gradient (1 on the closed interval, 0 outside); jax's clip halves it at the ends."""
    # a Python bound would be rounded to float32 on the way; convert_to_tensor makes it in x.dtype directly
    low, high = ops.convert_to_tensor(low, x.dtype), ops.convert_to_tensor(high, x.dtype)
    return ops.where(x > high, high, ops.where(x < low, low, x))


def _l2_normalize(x, axis, eps=1e-12):
    """x / max(||x||, eps), like torch's F.normalize; finite (zero) gradient for an all-zero x."""
    squared = ops.sum(x * x, axis=axis, keepdims=True)
    return x * ops.rsqrt(
        ops.where(squared > eps * eps, squared, eps * eps)
    )  # not ops.maximum: float32 for float64 on torch


def _atan2(y, x):
    """atan2(y, x) in the precision of x. For float64, Keras computes ops.arctan2 and ops.cos in float32 on the torch
    and jax backends (keras.backend.result_type maps float64 to float32 there); then the angle of x + iy, from the
    complex log, keeps float64. Other dtypes (and tensorflow) take ops.arctan2 as it is."""
    angle = ops.arctan2(y, x)
    if keras.backend.standardize_dtype(angle.dtype) == keras.backend.standardize_dtype(x.dtype):
        return angle
    return ops.imag(ops.log(ops.add(ops.cast(x, "complex128"), ops.multiply(ops.cast(y, "complex128"), 1j))))


def _cos(x):
    """cos(x) in the precision of x (see _atan2): the real part of exp(ix) where ops.cos would drop to float32."""
    result = ops.cos(x)
    if keras.backend.standardize_dtype(result.dtype) == keras.backend.standardize_dtype(x.dtype):
        return result
    return ops.real(ops.exp(ops.multiply(ops.cast(x, "complex128"), 1j)))


# --8<-- [end:helpers]


# --8<-- [start:adaface_logits]
def adaface_logits(cosine, labels, norms, batch_mean, batch_std, s=64.0, m=0.4, h=0.333, eps=1e-3):
    """Scaled AdaFace logits [B, C]: only the target column gets the norm-adaptive margin.

    cosine: [B, C] cosines; labels: [B] integer targets; norms: [B] (or [B, 1]) norms of the un-normalized embeddings;
    batch_mean, batch_std: the running statistics mu, sigma of the norms (numbers or 0-d tensors).
    """
    cosine, labels = _check_inputs(cosine, labels, s, m)
    if not (0 < eps < 0.1):
        raise ValueError(f"eps must be in (0, 0.1), got {eps}")
    norms = ops.reshape(ops.convert_to_tensor(norms), (-1,))
    if norms.shape[0] != cosine.shape[0]:
        raise ValueError(f"norms must have one value per row of cosine ({cosine.shape[0]}), got {norms.shape[0]}")
    dtype = "float64" if keras.backend.standardize_dtype(cosine.dtype) == "float64" else "float32"
    cosine = ops.cast(cosine, dtype)  # margin math never in bfloat16/float16
    norms = ops.stop_gradient(ops.cast(norms, dtype))
    mu = ops.stop_gradient(ops.convert_to_tensor(batch_mean, dtype))  # a Python number: no float32 detour
    sigma = ops.stop_gradient(ops.convert_to_tensor(batch_std, dtype))

    ms = _clamp(h * (norms - mu) / (sigma + eps), -1.0, 1.0)  # margin scaler in [-1, 1]
    labels = ops.cast(labels, "int32")
    cos_y = ops.take_along_axis(cosine, ops.expand_dims(labels, 1), axis=1)[:, 0]
    cos_y = _clamp(cos_y, -1 + eps, 1 - eps)
    theta = _atan2(ops.sqrt(1.0 - cos_y * cos_y), cos_y)  # arccos, in float64 for float64 input (see _atan2)
    theta_m = _clamp(theta - m * ms, eps, math.pi - eps)  # angular margin g_angle = -m * ms
    target = _cos(theta_m) - m * (1 + ms)  # additive margin g_add = m * (1 + ms)
    is_target = ops.one_hot(labels, cosine.shape[1], dtype="bool")
    return ops.where(is_target, ops.expand_dims(target, 1) * s, cosine * s)


# --8<-- [end:adaface_logits]


# --8<-- [start:adaface]
@keras.saving.register_keras_serializable(package="adaface")
class AdaFaceHead(keras.layers.Layer):
    """Class centers [D, C] plus the running norm statistics; call([embeddings, labels]) returns scaled logits [B, C].

    With training=True (model.fit) each call first updates mu and sigma from the batch, then uses them;
    otherwise the statistics are left alone.
    """

    def __init__(self, embedding_size, num_classes, s=64.0, m=0.4, h=0.333, t_alpha=0.01, **kwargs):
        super().__init__(**kwargs)
        if not (0 < t_alpha <= 1):
            raise ValueError(f"t_alpha must be in (0, 1], got {t_alpha}")
        self.embedding_size, self.num_classes = embedding_size, num_classes
        self.s, self.m, self.h, self.t_alpha, self.eps = s, m, h, t_alpha, 1e-3

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(self.embedding_size, self.num_classes),
            name="kernel",
            initializer=keras.initializers.RandomNormal(stddev=0.01),
        )
        self.batch_mean = self.add_weight(
            shape=(), name="batch_mean", trainable=False, initializer=keras.initializers.Constant(20.0)
        )
        self.batch_std = self.add_weight(
            shape=(), name="batch_std", trainable=False, initializer=keras.initializers.Constant(100.0)
        )

    def call(self, inputs, training=None):
        embeddings, labels = inputs
        if len(embeddings.shape) != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(f"embeddings must have shape [batch, {self.embedding_size}], got {list(embeddings.shape)}")
        dtype = "float64" if keras.backend.standardize_dtype(embeddings.dtype) == "float64" else "float32"
        x = ops.cast(embeddings, dtype)
        norms = _clamp(ops.sqrt(ops.sum(ops.square(ops.stop_gradient(x)), axis=1)), 1e-3, 100.0)  # as head.py
        w = _l2_normalize(ops.cast(self.kernel, dtype), axis=0)
        cosine = _clamp(ops.einsum("bd,dc->bc", _l2_normalize(x, axis=1), w), -1.0, 1.0)
        mu, sigma = ops.cast(self.batch_mean, dtype), ops.cast(self.batch_std, dtype)
        if training:  # update before use
            _check_inputs(cosine, labels, self.s, self.m)  # a bad call must not move the statistics
            count = ops.sum(ops.ones_like(norms))
            mean = ops.mean(norms)
            std = ops.sqrt(ops.sum(ops.square(norms - mean)) / ops.maximum(count - 1, 1))  # unbiased
            std = ops.where(count > 1, std, sigma)  # one sample has no std: keep the old sigma
            mu = self.t_alpha * mean + (1 - self.t_alpha) * mu
            sigma = self.t_alpha * std + (1 - self.t_alpha) * sigma
            self.batch_mean.assign(ops.cast(mu, self.batch_mean.dtype))
            self.batch_std.assign(ops.cast(sigma, self.batch_std.dtype))
        return adaface_logits(cosine, labels, norms, mu, sigma, self.s, self.m, self.h, self.eps)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "embedding_size": self.embedding_size,
            "num_classes": self.num_classes,
            "s": self.s,
            "m": self.m,
            "h": self.h,
            "t_alpha": self.t_alpha,
        }


# --8<-- [end:adaface]


if __name__ == "__main__":
    # Worked example (the same numbers as the PyTorch twin): norms below, at and above mu = 20, sigma = 10.
    cosine = np.array([[0.8, 0.3, -0.2], [0.1, 0.6, -0.4], [0.2, -0.1, 0.5]], dtype="float32")
    labels = np.array([0, 1, 2])
    logits = adaface_logits(cosine, labels, np.array([10.0, 20.0, 30.0], "float32"), batch_mean=20.0, batch_std=10.0)
    print("logits:\n", np.round(ops.convert_to_numpy(logits), 4))  # targets 28.5712, 12.8, 4.9528
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    print("loss:", float(loss))  # 2.616444

    # A model with the labels as a second input, trained with model.fit.
    keras.utils.set_random_seed(0)
    features, y = np.random.default_rng(0).normal(size=(64, 8)).astype("float32"), np.arange(64) % 4
    x_in, y_in = keras.Input((8,)), keras.Input((), dtype="int32")
    logits = AdaFaceHead(embedding_size=16, num_classes=4)([keras.layers.Dense(16)(x_in), y_in])
    model = keras.Model([x_in, y_in], logits)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit([features, y], y, batch_size=16, epochs=1, verbose=0)
    head = model.layers[-1]
    print(f"after 4 batches: batch_mean {float(head.batch_mean):.4f}, batch_std {float(head.batch_std):.4f}")
