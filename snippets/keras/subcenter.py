"""Sub-center ArcFace for Keras 3: Q centers per class, a sample only has to be near one of them.

Idea: web-scale face data is noisy. Give every class Q sub-centers instead of one weight vector; a sample's
cosine to its class is the cosine to the NEAREST sub-center, and ArcFace's margin is applied to that. Clean
faces gather around one dominant sub-center, while mislabeled or hard faces settle on the others instead of
pulling the main center away. After training, samples far (> 75 degrees) from their class's dominant
sub-center can be dropped as noise and a plain ArcFace retrained on the cleaned data.

    cos θ_j = max_q cos(x, W_{j,q}),   q = 1..Q
    target logit  s·cos(θ_y + m)   while θ_y + m ≤ π,   else s·(cos θ_y - m·sin m)   (ArcFace, m in RADIANS)

Paper: Deng, Guo, Liu, Gong, Zafeiriou, "Sub-center ArcFace: Boosting Face Recognition by Large-scale Noisy Web
Faces", ECCV 2020; also in the TPAMI version of ArcFace (arXiv:1801.07698v4). Recommended Q = 3.

Conventions (the same as the PyTorch twin, snippets/pytorch/subcenter.py, name for name): the sub-center
cosines are one [B, C·Q] matrix; class j owns columns j·Q .. j·Q + Q - 1. Functions take that matrix and return
SCALED logits [B, C] for a sparse cross-entropy from logits. The ArcFace margin is the one of margins.py,
repeated here so that this file runs on its own (float32 margin math, guarded sqrt, the θ + m > π fallback).

Keras idiom: the model ends in `SubCenterCosineClassifier` (outputs the [B, C·Q] cosines, no softmax) and is
compiled with `SubCenterArcFaceLoss`; the predicted class is argmax(cosines) // Q. Only keras.ops is used, so
one file runs on the torch, jax and tensorflow backends. As in margins.py, the check that labels lie in [0, C)
needs concrete values and is skipped while jax.jit or tf.function traces.

Run `KERAS_BACKEND=torch python snippets/keras/subcenter.py` (or jax, tensorflow) for a worked example.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`subcenter_arcface_logits(cosine, labels, num_subcenters, s, m)` returns the scaled logits [B, C] for the
[B, C·Q] cosines; `SubCenterCosineClassifier(embedding_size, num_classes, num_subcenters)` returns those cosines;
`SubCenterArcFaceLoss(num_subcenters, s, m)` takes them and the labels and returns the scalar mean loss.
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


def _check_inputs(cosine, labels, num_subcenters):
    """Raise a short ValueError that names the problem; return cosine and labels as tensors."""
    if isinstance(num_subcenters, bool) or not isinstance(num_subcenters, numbers.Integral) or num_subcenters < 1:
        raise ValueError(f"num_subcenters must be a positive integer, got {num_subcenters!r}")
    shape = tuple(getattr(cosine, "shape", ()))
    cosine = ops.convert_to_tensor(cosine)
    dtype = keras.backend.standardize_dtype(cosine.dtype)
    if len(shape) != 2 or "float" not in dtype:
        raise ValueError(f"cosine must be a 2-D float tensor [batch, classes·Q], got {dtype} of shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"cosine is empty (shape {shape}): need at least one sample and one class")
    if shape[1] % num_subcenters:
        raise ValueError(f"cosine has {shape[1]} columns, not a multiple of num_subcenters={num_subcenters}")
    num_classes = shape[1] // num_subcenters
    labels = ops.convert_to_tensor(labels)
    if "int" not in keras.backend.standardize_dtype(labels.dtype):
        raise ValueError(f"labels must be an integer tensor, got {keras.backend.standardize_dtype(labels.dtype)}")
    if len(labels.shape) != 1 or labels.shape[0] != shape[0]:
        raise ValueError(f"labels must have shape [{shape[0]}] to match cosine, got {tuple(labels.shape)}")
    values = _concrete(labels)  # None under jit/graph tracing: then the range cannot be checked
    if values is not None and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values in [{values.min()}, {values.max()}]")
    return cosine, ops.cast(labels, "int32")


def _l2_normalize(x, axis, eps=1e-12):
    """x / max(‖x‖, eps), like torch's F.normalize; the gradient is finite (0) for an all-zero x."""
    squared = ops.sum(x * x, axis=axis, keepdims=True)
    return x * ops.rsqrt(
        ops.where(squared > eps * eps, squared, eps * eps)
    )  # not ops.maximum: float32 for float64 on torch


# --8<-- [end:helpers]


# --8<-- [start:subcenter_arcface_logits]
def subcenter_arcface_logits(cosine, labels, num_subcenters=3, s=64.0, m=0.5):
    """[B, C·Q] cosines to sub-centers -> ArcFace logits [B, C] on the nearest sub-center of each class."""
    cosine, labels = _check_inputs(cosine, labels, num_subcenters)
    if not (s > 0 and math.isfinite(s)):
        raise ValueError(f"scale s must be a finite number > 0, got {s}")
    if not 0 <= m < math.pi / 2:
        raise ValueError(f"ArcFace margin m must be in [0, π/2) radians, got {m}")
    if keras.backend.standardize_dtype(cosine.dtype) != "float64":
        cosine = ops.cast(cosine, "float32")  # margin in float32 under bf16/fp16
    num_classes = cosine.shape[1] // num_subcenters
    cosine = ops.max(ops.reshape(cosine, (-1, num_classes, num_subcenters)), axis=2)  # nearest sub-center per class
    cos_t = ops.take_along_axis(cosine, labels[:, None], axis=1)
    cos_t = ops.where(cos_t > 1.0, 1.0, ops.where(cos_t < -1.0, -1.0, cos_t))  # clamp (where: exact gradient at ±1)
    squared_sin = 1.0 - cos_t * cos_t
    sin_t = ops.sqrt(ops.where(squared_sin > 1e-20, squared_sin, 1e-20))  # clamp: finite gradient at cos θ = ±1
    cos_t_plus_m = cos_t * math.cos(m) - sin_t * math.sin(m)
    target = ops.where(cos_t >= math.cos(math.pi - m), cos_t_plus_m, cos_t - m * math.sin(m))
    return ops.where(ops.one_hot(labels, num_classes, dtype="bool"), target * s, cosine * s)


# --8<-- [end:subcenter_arcface_logits]


# --8<-- [start:subcenter_outliers]
def subcenter_outliers(cosine, labels, num_subcenters=3, max_angle=75 * math.pi / 180):
    """Dominant sub-center of each class (the one most of its samples are nearest to) and a [B] bool mask of
    samples more than `max_angle` radians away from their class's dominant sub-center (likely label noise)."""
    cosine, labels = _check_inputs(cosine, labels, num_subcenters)
    num_classes = cosine.shape[1] // num_subcenters
    cosine = ops.stop_gradient(ops.reshape(cosine, (-1, num_classes, num_subcenters)))
    own = ops.take_along_axis(cosine, labels[:, None, None], axis=1)[:, 0, :]  # [B, Q]: the sample's own class
    nearest = ops.one_hot(ops.argmax(own, axis=1), num_subcenters)  # [B, Q]
    votes = ops.matmul(ops.transpose(ops.one_hot(labels, num_classes)), nearest)  # [C, Q] sample counts
    dominant = ops.argmax(votes, axis=1)  # [C]; classes without samples get sub-center 0
    outliers = ops.take_along_axis(own, ops.take(dominant, labels)[:, None], axis=1)[:, 0] < math.cos(max_angle)
    return dominant, outliers


# --8<-- [end:subcenter_outliers]


# --8<-- [start:subcenter_arcface]
@keras.saving.register_keras_serializable(package="subcenter")
class SubCenterCosineClassifier(keras.layers.Layer):
    """num_classes·num_subcenters class centers W [D, C·Q]; returns the cosines [B, C·Q] (class j: columns
    j·Q .. j·Q + Q - 1) between normalized embeddings and normalized sub-centers. Predict with argmax // Q."""

    def __init__(self, embedding_size, num_classes, num_subcenters=3, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_subcenters, bool) or not isinstance(num_subcenters, numbers.Integral) or num_subcenters < 1:
            raise ValueError(f"num_subcenters must be a positive integer, got {num_subcenters!r}")
        self.embedding_size, self.num_classes, self.num_subcenters = embedding_size, num_classes, num_subcenters

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] != self.embedding_size:
            raise ValueError(f"embeddings must have shape [batch, {self.embedding_size}], got {tuple(input_shape)}")
        self.kernel = self.add_weight(  # the scale is irrelevant: columns are normalized in call
            shape=(self.embedding_size, self.num_classes * self.num_subcenters),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
        )

    def call(self, embeddings):
        x = _l2_normalize(embeddings, axis=1)  # eps: an all-zero embedding gives cosines 0, not NaN
        return ops.einsum(
            "bd,dc->bc", x, _l2_normalize(ops.cast(self.kernel, x.dtype), axis=0)
        )  # not matmul: float32 for float64 on torch

    def get_config(self):
        return {
            **super().get_config(),
            "embedding_size": self.embedding_size,
            "num_classes": self.num_classes,
            "num_subcenters": self.num_subcenters,
        }


@keras.saving.register_keras_serializable(package="subcenter")
class SubCenterArcFaceLoss(keras.losses.Loss):
    """ArcFace on the nearest sub-center + mean cross-entropy: y_true integer class ids [B] (or [B, 1]),
    y_pred the [B, C·Q] cosines of a SubCenterCosineClassifier with the same num_subcenters."""

    def __init__(
        self,
        num_subcenters=3,
        s=64.0,
        m=0.5,
        name="subcenter_arcface_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.num_subcenters, self.s, self.m = num_subcenters, s, m
        subcenter_arcface_logits(
            np.zeros((1, num_subcenters), "float32"), np.zeros(1, "int32"), num_subcenters, s, m
        )  # bad arguments fail now, not at the first batch

    def call(self, y_true, y_pred):
        # Keras casts y_true to float32 before call(): turn it back into class ids (exact for ids below 2**24)
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        logits = subcenter_arcface_logits(y_pred, labels, self.num_subcenters, self.s, self.m)
        return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "num_subcenters": self.num_subcenters, "s": self.s, "m": self.m}


# --8<-- [end:subcenter_arcface]


if __name__ == "__main__":
    # Two samples, three classes, Q = 2 sub-centers; columns are (class 0: q=0, q=1), (class 1: ...), ...
    # Sample 0 (class 0) is near class 0's SECOND sub-center: cosine 0.7 there, -0.7 at the first.
    cosine = np.array([[-0.7, 0.7, 0.3, -0.3, 0.1, -0.1], [0.2, -0.2, 0.75, -0.75, 0.35, -0.35]])
    labels = np.array([0, 1])
    logits = subcenter_arcface_logits(cosine, labels, num_subcenters=2, s=64.0, m=0.5)
    print("backend:", keras.backend.backend())
    print("nearest-sub-center cosines:", cosine.reshape(2, 3, 2).max(2).tolist())
    print("logits:", ops.convert_to_numpy(logits).astype("float64").round(4).tolist())
    loss = ops.mean(ops.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    print("loss:", round(float(ops.convert_to_numpy(loss)), 6))
    # By hand: the max over sub-centers gives [[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]], the ArcFace worked example,
    # so the logits are [[17.4035, 19.2, 6.4], [12.8, 21.8289, 22.4]] and the loss is 1.484475.
    dominant, outliers = subcenter_outliers(cosine, labels, num_subcenters=2)
    print(
        "dominant sub-center per class:",
        ops.convert_to_numpy(dominant).tolist(),
        " outliers (> 75 degrees):",
        ops.convert_to_numpy(outliers).tolist(),
    )

    keras.utils.set_random_seed(0)
    layer, loss_fn = SubCenterCosineClassifier(4, 3, num_subcenters=2), SubCenterArcFaceLoss(num_subcenters=2)
    loss = loss_fn(labels, layer(keras.random.normal((2, 4))))
    print("SubCenterArcFaceLoss(Q=2) on a random batch of two:", round(float(ops.convert_to_numpy(loss)), 4))

    # --8<-- [start:clean_one_class]
    # Cleaning one class j: the cosines between its n_j images and its own Q sub-centers only (columns
    # j·Q .. j·Q + Q - 1 of classifier.kernel, [D, C·Q]), with label 0 for every image. In a real run, classifier is
    # the trained SubCenterCosineClassifier and emb_j holds the embeddings of all of class j's images; here six images
    # lie near sub-center 1 of class 2 and two point the other way, as mislabeled images would.
    keras.utils.set_random_seed(0)
    Q, j = 3, 2
    classifier = SubCenterCosineClassifier(embedding_size=8, num_classes=5, num_subcenters=Q)
    classifier.build((None, 8))
    kernel_j = ops.convert_to_numpy(classifier.kernel)[:, j * Q : (j + 1) * Q]  # [D, Q]
    kernel_j = kernel_j / np.linalg.norm(kernel_j, axis=0, keepdims=True)
    rng = np.random.default_rng(0)
    emb_j = np.concatenate(
        [kernel_j[:, 1] + 0.3 * rng.normal(size=(6, 8)), -kernel_j[:, 1] + 0.3 * rng.normal(size=(2, 8))]
    )

    cos_j = (emb_j / np.linalg.norm(emb_j, axis=1, keepdims=True)) @ kernel_j  # [n_j, Q]
    dominant, outliers = subcenter_outliers(cos_j, np.zeros(len(emb_j), dtype="int64"), num_subcenters=Q)
    dropped = np.flatnonzero(ops.convert_to_numpy(outliers)).tolist()
    print(f"class {j}: dominant sub-center {int(ops.convert_to_numpy(dominant)[0])}, images to drop {dropped}")
    # --8<-- [end:clean_one_class]
