"""Angular-margin softmax heads for Keras 3: NormFace, SphereFace, CosFace, ArcFace and their combined form.

Idea: L2-normalize the embedding x and every class center W_j, so the classifier's logit is the cosine of the
angle between them, cos θ_j. Multiply by a scale s (the softmax needs logits of a few tens to become confident)
and make the target class y harder to win by pushing its logit down with a margin m. Only the target column
changes; every other column stays s·cos θ_j.

    NormFace   s·cos θ_y                      Wang et al., "NormFace: L2 Hypersphere Embedding for Face
                                              Verification", ACM MM 2017, arXiv:1704.06369
    SphereFace s·ψ(θ_y),  ψ(θ) = (-1)^k cos(mθ) - 2k,  k = ⌊mθ/π⌋  (integer m)
                                              Liu et al., "SphereFace: Deep Hypersphere Embedding for Face
                                              Recognition", CVPR 2017, arXiv:1704.08063
    CosFace    s·(cos θ_y - m)                Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face
                                              Recognition", CVPR 2018, arXiv:1801.09414
    ArcFace    s·cos(θ_y + m)                 Deng et al., "ArcFace: Additive Angular Margin Loss for Deep
                                              Face Recognition", CVPR 2019, arXiv:1801.07698
    combined   s·(cos(m1·θ_y + m2) - m3)      the same ArcFace paper (m1: SphereFace, m2: ArcFace, m3: CosFace)

Conventions (the same as the PyTorch twin, snippets/pytorch/margins.py, name for name):
- `cosine` is the [B, C] matrix of cosines, `labels` the [B] integer targets; every `*_logits` function returns
  the SCALED logits [B, C] for `keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)`.
- Angular margins (ArcFace m, combined m2) are in RADIANS: m = 0.5 rad is about 28.6 degrees.
- ArcFace past θ_y + m > π (that is cos θ_y < cos(π - m)) uses the usual fallback s·(cos θ_y - m·sin m), so the
  target logit keeps falling as θ_y grows. SphereFace and the combined margin continue their curve the SphereFace
  way, ψ = (-1)^k cos(φ) - 2k with k = ⌊φ/π⌋.
- Numerics: the margin is computed on the target column only (B values, not B·C), in float32 even when the
  cosines arrive in bfloat16/float16 (float64 stays float64); sin θ = sqrt(1 - cos²θ) is clamped away from 0 so
  the gradient stays finite at cos θ = ±1.

The Keras way to train with a margin: the model ends in a `CosineClassifier` layer that outputs cosines (no
softmax), and `MarginLoss` (a `keras.losses.Loss`) adds margin and scale and takes the cross-entropy with y_true.
Predict with the argmax of the cosines. Only keras.ops is used, so one file runs on torch, jax and tensorflow.

Bad input raises a short ValueError. Shapes and dtypes are always checked. The check that labels lie in [0, C)
needs their values, so it runs only when they are concrete (eager: a direct call, or model.fit on the torch
backend); while jax.jit or tf.function traces a graph (model.fit on jax or tensorflow) the values are symbolic
and that one check is skipped.

Run `KERAS_BACKEND=torch python snippets/keras/margins.py` (or jax, tensorflow) for a worked example.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
every `*_logits(cosine, labels, s, ...)` returns the scaled logits [B, C]; `CosineClassifier(embedding_size,
num_classes)` returns the cosines [B, C]; `MarginLoss(margin, **margin_args)` takes those cosines and the labels
and returns the scalar mean cross-entropy.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops


# --8<-- [start:helpers]
def _concrete(x):
    """x's values as a numpy array, or None while jax.jit / tf.function traces (the values are symbolic then)."""
    try:
        return ops.convert_to_numpy(x)
    except (TypeError, NotImplementedError):  # jax TracerArrayConversionError, symbolic tf.Tensor
        return None


def _check_inputs(cosine, labels, s):
    """Raise a short ValueError that names the problem; return cosine and labels as tensors."""
    if len(getattr(cosine, "shape", ())) != 2:
        raise ValueError(f"cosine must be 2-D [batch, classes], got shape {tuple(getattr(cosine, 'shape', ()))}")
    cosine, labels = ops.convert_to_tensor(cosine), ops.convert_to_tensor(labels)
    if cosine.shape[0] == 0 or cosine.shape[1] == 0:
        raise ValueError(f"cosine is empty (shape {tuple(cosine.shape)}): need at least one sample and one class")
    if "float" not in keras.backend.standardize_dtype(cosine.dtype):
        raise ValueError(f"cosine must be a floating-point tensor, got {keras.backend.standardize_dtype(cosine.dtype)}")
    if "int" not in keras.backend.standardize_dtype(labels.dtype):
        raise ValueError(f"labels must be an integer tensor, got {keras.backend.standardize_dtype(labels.dtype)}")
    if len(labels.shape) != 1 or labels.shape[0] != cosine.shape[0]:
        raise ValueError(f"labels must have shape [{cosine.shape[0]}] to match cosine, got {tuple(labels.shape)}")
    values = _concrete(labels)  # None under jit/graph tracing: then the range cannot be checked
    if values is not None and (values.min() < 0 or values.max() >= cosine.shape[1]):
        raise ValueError(f"labels must lie in [0, {cosine.shape[1]}), got values in [{values.min()}, {values.max()}]")
    if not s > 0:
        raise ValueError(f"scale s must be > 0, got {s}")
    return cosine, labels


def _float32(cosine):
    """bfloat16/float16 -> float32 for the margin math; float32 and float64 unchanged."""
    return cosine if keras.backend.standardize_dtype(cosine.dtype) == "float64" else ops.cast(cosine, "float32")


def _target(cosine, labels):
    """Target cosines [B, 1] in float32 (or float64), clamped into [-1, 1], and their sin θ."""
    cosine = _float32(cosine)
    cos_t = ops.take_along_axis(cosine, ops.expand_dims(ops.cast(labels, "int32"), 1), axis=1)
    # clamp with where, not clip: jax splits clip's gradient in half at exactly ±1
    cos_t = ops.where(cos_t > 1.0, 1.0, ops.where(cos_t < -1.0, -1.0, cos_t))
    # sin θ = sqrt(1 - cos²θ); the clamp keeps sqrt's gradient finite (it is 0 instead of inf at cos θ = ±1).
    squared_sin = 1.0 - cos_t * cos_t
    sin_t = ops.sqrt(ops.where(squared_sin > 1e-20, squared_sin, 1e-20))
    return cosine, cos_t, sin_t


def _with_target(cosine, labels, target, s):
    """s·cosine with the target column replaced by `target`: a one-hot mask picks it, where() writes it."""
    is_target = ops.one_hot(ops.cast(labels, "int32"), cosine.shape[1], dtype="bool")
    return ops.where(is_target, target * s, cosine * s)


def _l2_normalize(x, axis, eps=1e-12):
    """x / max(‖x‖, eps), like torch's F.normalize; the gradient is finite (0) for an all-zero x."""
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


# --8<-- [start:normface_logits]
def normface_logits(cosine, labels, s=30.0):
    """NormFace: s·cos θ for every class, no margin."""
    cosine, labels = _check_inputs(cosine, labels, s)
    return _float32(cosine) * s


# --8<-- [end:normface_logits]


# --8<-- [start:sphereface_logits]
def sphereface_logits(cosine, labels, s=30.0, m=4):
    """SphereFace: target s·ψ(θ), ψ(θ) = (-1)^k cos(mθ) - 2k, k = ⌊mθ/π⌋, integer m ≥ 1."""
    cosine, labels = _check_inputs(cosine, labels, s)
    if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1:
        raise ValueError(f"SphereFace margin m must be a positive integer, got {m!r}")
    cosine, cos_t, sin_t = _target(cosine, labels)
    # cos(mθ) as the Chebyshev polynomial T_m(cos θ): no acos, so the gradient is finite at cos θ = ±1.
    cos_m_theta, previous = cos_t, ops.ones_like(cos_t)
    for _ in range(m - 1):
        cos_m_theta, previous = 2 * cos_t * cos_m_theta - previous, cos_m_theta
    # k = ⌊mθ/π⌋ counts the j in 1..m-1 with θ ≥ jπ/m, i.e. cos θ ≤ cos(jπ/m): comparisons, no angle, no gradient
    k, sign = ops.zeros_like(cos_t), ops.ones_like(cos_t)  # sign = (-1)^k
    for j in range(1, m):
        step = ops.cast(cos_t <= math.cos(j * math.pi / m), cos_t.dtype)
        k, sign = k + step, sign * (1 - 2 * step)
    psi = sign * cos_m_theta - 2 * k
    return _with_target(cosine, labels, psi, s)


# --8<-- [end:sphereface_logits]


# --8<-- [start:cosface_logits]
def cosface_logits(cosine, labels, s=64.0, m=0.35):
    """CosFace: target s·(cos θ - m), additive cosine margin m in [0, 2)."""
    cosine, labels = _check_inputs(cosine, labels, s)
    if not 0 <= m < 2:
        raise ValueError(f"CosFace margin m must be in [0, 2) (cos θ - m ≥ -1 somewhere), got {m}")
    cosine, cos_t, _ = _target(cosine, labels)
    return _with_target(cosine, labels, cos_t - m, s)


# --8<-- [end:cosface_logits]


# --8<-- [start:arcface_logits]
def arcface_logits(cosine, labels, s=64.0, m=0.5):
    """ArcFace: target s·cos(θ + m) while θ + m ≤ π, else s·(cos θ - m·sin m); m in radians, in [0, π/2)."""
    cosine, labels = _check_inputs(cosine, labels, s)
    if not 0 <= m < math.pi / 2:
        raise ValueError(f"ArcFace margin m must be in [0, π/2) radians, got {m}")
    cosine, cos_t, sin_t = _target(cosine, labels)
    cos_t_plus_m = cos_t * math.cos(m) - sin_t * math.sin(m)  # cos(θ + m)
    fallback = cos_t - m * math.sin(m)  # past θ + m > π, cos(θ + m) would rise again
    target = ops.where(cos_t >= math.cos(math.pi - m), cos_t_plus_m, fallback)
    return _with_target(cosine, labels, target, s)


# --8<-- [end:arcface_logits]


# --8<-- [start:combined_margin_logits]
def combined_margin_logits(cosine, labels, s=64.0, m1=1.0, m2=0.5, m3=0.0):
    """Combined margin: target s·(cos(m1·θ + m2) - m3), continued monotonically past m1·θ + m2 > π."""
    cosine, labels = _check_inputs(cosine, labels, s)
    if not m1 > 0:
        raise ValueError(f"combined margin m1 must be > 0, got {m1}")
    if not 0 <= m2 < math.pi / 2:
        raise ValueError(f"combined margin m2 must be in [0, π/2) radians, got {m2}")
    if not 0 <= m3 < 2:
        raise ValueError(f"combined margin m3 must be in [0, 2), got {m3}")
    cosine, cos_t, sin_t = _target(cosine, labels)
    phi = m1 * _atan2(sin_t, cos_t) + m2  # atan2 instead of acos: finite gradient at cos θ = ±1
    # k = ⌊φ/π⌋ counts the j ≥ 1 with φ ≥ jπ (φ ≤ m1·π + m2: a few at most); k = 0 inside the monotone range
    k, sign = ops.zeros_like(phi), ops.ones_like(phi)  # sign = (-1)^k
    for j in range(1, int((m1 * math.pi + m2) // math.pi) + 1):
        step = ops.cast(ops.stop_gradient(phi) >= j * math.pi, phi.dtype)
        k, sign = k + step, sign * (1 - 2 * step)
    target = sign * _cos(phi) - 2 * k - m3
    return _with_target(cosine, labels, target, s)


# --8<-- [end:combined_margin_logits]


# --8<-- [start:cosine_classifier]
@keras.saving.register_keras_serializable(package="margins")
class CosineClassifier(keras.layers.Layer):
    """Class weights W [D, C] (Keras' Dense layout); returns cos θ [B, C] between normalized embeddings and
    normalized class weights. No bias and no softmax: a margin loss adds the margin and the scale."""

    def __init__(self, embedding_size, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.embedding_size, self.num_classes = embedding_size, num_classes

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] != self.embedding_size:
            raise ValueError(f"embeddings must have shape [batch, {self.embedding_size}], got {tuple(input_shape)}")
        self.kernel = self.add_weight(  # the scale is irrelevant: columns are normalized in call
            shape=(self.embedding_size, self.num_classes), initializer=keras.initializers.RandomNormal(stddev=0.01)
        )

    def call(self, embeddings):
        # eps: an all-zero embedding gives cosine 0 everywhere instead of NaN
        x = _l2_normalize(embeddings, axis=1)
        w = _l2_normalize(ops.cast(self.kernel, x.dtype), axis=0)
        return ops.einsum("bd,dc->bc", x, w)  # einsum: matmul gives float32 for float64 on torch

    def get_config(self):
        return {**super().get_config(), "embedding_size": self.embedding_size, "num_classes": self.num_classes}


# --8<-- [end:cosine_classifier]


# --8<-- [start:margin_loss]
MARGINS = {
    "normface": normface_logits,
    "sphereface": sphereface_logits,
    "cosface": cosface_logits,
    "arcface": arcface_logits,
    "combined": combined_margin_logits,
}


@keras.saving.register_keras_serializable(package="margins")
class MarginLoss(keras.losses.Loss):
    """A margin from MARGINS + mean cross-entropy, for a model whose output is cosines (a CosineClassifier).

    model.compile(loss=MarginLoss("arcface", s=30.0, m=0.5)); y_true holds integer class ids [B] (or [B, 1]).
    `margin_args` go to the margin function (s, m, or m1/m2/m3); unset ones keep its defaults. The class weights
    live in the model's CosineClassifier, not here: a Keras loss holds no trainable weights.
    """

    def __init__(
        self, margin="arcface", name="margin_loss", reduction="sum_over_batch_size", dtype=None, **margin_args
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if margin not in MARGINS:
            raise ValueError(f"unknown margin {margin!r}; choose one of {sorted(MARGINS)}")
        self.margin, self.margin_logits, self.margin_args = margin, MARGINS[margin], margin_args
        self.margin_logits(np.zeros((1, 1), "float32"), np.zeros(1, "int32"), **margin_args)  # fail now, not later

    def call(self, y_true, y_pred):
        # Keras casts y_true to float32 before call(): turn it back into class ids (exact for ids below 2**24)
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        logits = self.margin_logits(y_pred, labels, **self.margin_args)
        return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, **self.margin_args}


# --8<-- [end:margin_loss]


if __name__ == "__main__":
    # Worked example: two samples, three classes, targets 0 and 1 (tests/worked_examples.md, E2).
    cosine = np.array([[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]])
    labels = np.array([0, 1])
    print("cosine =", cosine.tolist(), " labels =", labels.tolist(), " backend =", keras.backend.backend())
    for name, logits in [
        ("normface  s=64        ", normface_logits(cosine, labels, s=64.0)),
        ("sphereface s=64, m=4  ", sphereface_logits(cosine, labels, s=64.0, m=4)),
        ("cosface   s=64, m=0.35", cosface_logits(cosine, labels, s=64.0, m=0.35)),
        ("arcface   s=64, m=0.5 ", arcface_logits(cosine, labels, s=64.0, m=0.5)),
        ("combined  (1, 0.3, 0.2)", combined_margin_logits(cosine, labels, s=64.0, m1=1.0, m2=0.3, m3=0.2)),
    ]:
        loss = ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        logits = ops.convert_to_numpy(logits).astype("float64").round(4).tolist()
        print(f"{name}: logits {logits}  loss {float(loss):.6f}")
    # ArcFace by hand, sample 0: θ = acos 0.7 = 0.7954 rad, cos(θ + 0.5) = 0.2719, 64·0.2719 = 17.4035;
    # loss = mean of log(e^17.4035 + e^19.2 + e^6.4) - 17.4035 and the same for sample 1 = 1.484475.

    keras.utils.set_random_seed(0)
    classifier, loss_fn = CosineClassifier(embedding_size=4, num_classes=3), MarginLoss("arcface", s=64.0, m=0.5)
    embeddings = keras.random.normal((2, 4))
    loss = ops.convert_to_numpy(loss_fn(labels, classifier(embeddings)))
    print("MarginLoss('arcface') on a random batch of two:", round(float(loss), 4))

    # --8<-- [start:quick_start]
    # Quick start: a backbone ending in a CosineClassifier, compiled with MarginLoss, on a toy problem of 100 classes
    # with four noisy 32-D points each. Pick s by the number of classes: ArcFace's default s = 64 is meant for 10^4
    # classes and more; from a few dozen to a few thousand, start from the AdaCos value sqrt(2)·ln(C - 1), here
    # 6.5 (around ten classes, several times it).
    keras.utils.set_random_seed(0)
    num_classes, embedding_size = 100, 16
    backbone = keras.Sequential(
        [keras.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(embedding_size)]
    )
    model = keras.Sequential([backbone, CosineClassifier(embedding_size, num_classes)])  # outputs cosines, no softmax
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=MarginLoss("arcface", s=math.sqrt(2) * math.log(num_classes - 1), m=0.5),
    )

    rng = np.random.default_rng(0)
    targets = np.tile(np.arange(num_classes), 4)  # labels 0..99, four times
    inputs = (rng.normal(size=(num_classes, 32))[targets] + 0.5 * rng.normal(size=(len(targets), 32))).astype("float32")
    history = model.fit(inputs, targets, batch_size=len(targets), epochs=201, verbose=0)
    for step in (0, 100, 200):
        print(f"step {step:3d}: loss {history.history['loss'][step]:.3f}")

    # For verification, drop the classifier and compare normalized embeddings by their cosine.
    embeddings = ops.convert_to_numpy(backbone(inputs))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = embeddings @ embeddings.T
    same = targets[:, None] == targets[None, :]
    same_pairs = similarity[same & ~np.eye(len(targets), dtype=bool)]  # not a point with itself
    print(f"mean cosine: same class {same_pairs.mean():.2f}, different classes {similarity[~same].mean():.2f}")
    # --8<-- [end:quick_start]

    # --8<-- [start:sphereface_lambda_blend]
    # SphereFace's λ blend belongs in the training loop: λ falls with the iteration count, so it is not part of the
    # loss function. Two samples whose target cosines are 0.5 and -0.95 (the worked-example table), s = 30, m = 4.
    cosine = np.array([[0.5, 0.1], [0.3, -0.95]], dtype="float32")
    labels = np.array([0, 1])
    s, m = 30.0, 4
    for iteration in (0, 1_000, 100_000):
        lam = max(5.0, 1000.0 / (1 + 0.12 * iteration))  # the official Caffe code's λ schedule (λ_min = 5)
        logits = (lam * normface_logits(cosine, labels, s) + sphereface_logits(cosine, labels, s, m)) / (1 + lam)
        target = ops.convert_to_numpy(logits)[np.arange(len(labels)), labels] / s
        print(f"iteration {iteration:6d}: lambda {lam:8.3f}, target logits / s", [f"{t:.4f}" for t in target.tolist()])
    # --8<-- [end:sphereface_lambda_blend]
