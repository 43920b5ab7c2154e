"""Partial FC for Keras 3: a margin softmax whose denominator uses only a sample of the class centers at each step.

An et al., "Partial FC: Training 10 Million Identities on a Single Machine",
ICCV Workshops 2021, arXiv 2010.05222; An, Deng, Guo, Feng, Zhu, Yang, Liu, "Killing Two Birds with One Stone:
Efficient and Robust Training of Face Recognition CNNs by Partial FC", CVPR 2022, arXiv 2203.15565.

With C classes the last layer costs O(B * C * D) time and holds a [B, C] logit matrix. Partial FC keeps every
class center, but at each training step it scores the batch against only num_sample = min(C, max(r * C, B)) of
them (at least one per sample, so every present class fits): every class that occurs in the batch (the positives,
whose target logit the loss needs) plus uniformly random other classes to fill up. The margin softmax then runs on
[B, num_sample] logits with the labels re-indexed into the sample, and only the sampled centers receive a gradient
in that step. r = 1 is the ordinary full softmax. Across GPUs, insightface shards the centers (each GPU samples
from its own slice and the softmax sums are all-reduced); this file is the single-device version.

Conventions (the same as the PyTorch twin, snippets/pytorch/partial_fc.py, name for name): angles and m in
radians; ArcFace target s * cos(theta + m), falling back to s * (cos(theta) - m * sin(m)) once
cos(theta) < cos(pi - m); CosFace target s * (cos(theta) - m); only the target column changes.

Because the sampled labels exist only inside the layer, `PartialFCLoss` computes its own loss: it is called on
[embeddings, labels], returns the mean cross-entropy (a scalar, as the PyTorch twin) and registers it with
add_loss, so a model ending in it trains with model.compile(optimizer) and no `loss=` argument. Random draws use
keras.random with a SeedGenerator; only keras.ops is used, so the file runs on the torch, jax and tensorflow
backends. Checks that need label values (range, number of distinct classes) run only when they are concrete.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`sample_class_centers(labels, num_classes, num_sample, generator)` returns (index, remapped labels);
`PartialFCLoss(embedding_size, num_classes, sample_rate, margin, s, m, seed)` holds the class centers (it samples
them) and returns the scalar mean loss for (embeddings, labels).
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


def _check_labels(labels, num_classes):
    labels = ops.convert_to_tensor(labels)
    if "int" not in keras.backend.standardize_dtype(labels.dtype):
        raise ValueError(f"labels must be an integer tensor, got {keras.backend.standardize_dtype(labels.dtype)}")
    if len(labels.shape) != 1:
        raise ValueError(f"labels must be 1-D [batch], got shape {list(labels.shape)}")
    if labels.shape[0] == 0:
        raise ValueError("empty batch: labels has 0 entries")
    values = _concrete(labels)
    if values is not None and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values from {values.min()} to {values.max()}")
    return labels, values


def _margin_logits(cosine, labels, margin, s, m):
    """ArcFace or CosFace scaled logits, target column only (the few lines of margins.py this file needs)."""
    cos_y = ops.take_along_axis(cosine, ops.expand_dims(labels, 1), axis=1)
    if margin == "arcface":
        squared_sin = 1.0 - cos_y * cos_y
        sin_y = ops.sqrt(ops.where(squared_sin > 1e-20, squared_sin, 1e-20))  # finite gradient at cos = +-1
        target = ops.where(
            cos_y < math.cos(math.pi - m), cos_y - m * math.sin(m), cos_y * math.cos(m) - sin_y * math.sin(m)
        )
    else:  # cosface
        target = cos_y - m
    is_target = ops.one_hot(labels, ops.shape(cosine)[1], dtype="bool")
    return ops.where(is_target, target * s, cosine * s)


def _l2_normalize(x, axis, eps=1e-12):
    """x / max(||x||, eps), like torch's F.normalize; finite (zero) gradient for an all-zero x."""
    squared = ops.sum(x * x, axis=axis, keepdims=True)
    return x * ops.rsqrt(
        ops.where(squared > eps * eps, squared, eps * eps)
    )  # not ops.maximum: float32 for float64 on torch


# --8<-- [end:helpers]


# --8<-- [start:sample_class_centers]
def sample_class_centers(labels, num_classes, num_sample, generator=None):
    """Pick num_sample class centers: all classes present in labels, then random others. Returns (index, remapped).

    index: sorted int32 [num_sample] class ids; remapped: labels re-indexed so that index[remapped] == labels.
    generator: a keras.random.SeedGenerator (or an int seed, or None).
    """
    labels, values = _check_labels(labels, num_classes)
    if isinstance(num_sample, int) and num_sample > num_classes:
        raise ValueError(f"num_sample={num_sample} exceeds num_classes={num_classes}")
    if isinstance(num_sample, int) and values is not None and num_sample < len(np.unique(values)):
        raise ValueError(
            f"num_sample={num_sample} is smaller than the {len(np.unique(values))} distinct classes in labels"
        )
    labels = ops.cast(labels, "int32")
    hits = ops.scatter(ops.expand_dims(labels, 1), ops.ones_like(labels, dtype="float32"), (num_classes,))
    score = keras.random.uniform((num_classes,), seed=generator)
    score = ops.where(hits > 0, 2.0, score)  # above any uniform draw: present classes are always kept
    index = ops.sort(ops.cast(ops.top_k(score, num_sample, sorted=False)[1], "int32"))
    return index, ops.cast(ops.searchsorted(index, labels), "int32")


# --8<-- [end:sample_class_centers]


# --8<-- [start:partial_fc]
@keras.saving.register_keras_serializable(package="partial_fc")
class PartialFCLoss(keras.layers.Layer):
    """Class centers [D, C] and a margin softmax on a per-step sample of them; call([embeddings, labels]) returns
    the mean cross-entropy and adds it to the model's losses.

    With training=True and sample_rate < 1 each call samples min(C, max(int(sample_rate * C), batch size)) centers;
    otherwise all centers are used (the full-softmax loss).
    """

    def __init__(
        self, embedding_size, num_classes, sample_rate=0.1, margin="arcface", s=64.0, m=0.5, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        if not (0 <= sample_rate <= 1):
            raise ValueError(f"sample_rate must be in [0, 1], got {sample_rate}")
        if margin not in ("arcface", "cosface"):
            raise ValueError(f"margin must be 'arcface' or 'cosface', got {margin!r}")
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"s must be a positive finite scale, got {s}")
        if not (0 <= m < math.pi / 2):
            raise ValueError(f"m must be in [0, pi/2) (radians for ArcFace), got {m}")
        self.embedding_size, self.num_classes, self.sample_rate = embedding_size, num_classes, sample_rate
        self.margin, self.s, self.m, self.seed = margin, s, m, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(self.embedding_size, self.num_classes),
            name="kernel",
            initializer=keras.initializers.RandomNormal(stddev=0.01),
        )

    def call(self, inputs, training=None):
        embeddings, labels = inputs
        if len(embeddings.shape) != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(f"embeddings must have shape [batch, {self.embedding_size}], got {list(embeddings.shape)}")
        labels, _ = _check_labels(labels, self.num_classes)
        if embeddings.shape[0] is not None and labels.shape[0] != embeddings.shape[0]:
            raise ValueError(
                f"labels must have shape [{embeddings.shape[0]}] to match the batch, got {list(labels.shape)}"
            )
        kernel, target = self.kernel, ops.cast(labels, "int32")
        if training and self.sample_rate < 1:
            wanted, batch = int(self.sample_rate * self.num_classes), embeddings.shape[0]
            if batch is not None:  # static batch (eager, jax.jit): a plain int
                num_sample = min(self.num_classes, max(wanted, batch))
            else:  # tf.function with an unknown batch dimension: a scalar tensor
                num_sample = ops.minimum(self.num_classes, ops.maximum(wanted, ops.shape(embeddings)[0]))
            index, target = sample_class_centers(labels, self.num_classes, num_sample, self.seed_generator)
            kernel = ops.take(kernel, index, axis=1)  # only these columns get a gradient this step
        x = _l2_normalize(ops.cast(embeddings, "float32"), axis=1)
        cosine = ops.matmul(x, _l2_normalize(ops.cast(kernel, "float32"), axis=0))
        cosine = ops.where(cosine > 1.0, 1.0, ops.where(cosine < -1.0, -1.0, cosine))
        logits = _margin_logits(cosine, target, self.margin, self.s, self.m)
        loss = ops.mean(ops.sparse_categorical_crossentropy(target, logits, from_logits=True))
        self.add_loss(loss)
        return loss

    def compute_output_shape(self, input_shape):
        return ()

    def get_config(self):
        return {
            **super().get_config(),
            "embedding_size": self.embedding_size,
            "num_classes": self.num_classes,
            "sample_rate": self.sample_rate,
            "margin": self.margin,
            "s": self.s,
            "m": self.m,
            "seed": self.seed,
        }


# --8<-- [end:partial_fc]


if __name__ == "__main__":
    # Worked example: 10 classes, 5 sampled; classes 2 and 7 occur in the batch and are always kept.
    labels = np.array([7, 2, 7])
    index, remapped = sample_class_centers(
        labels, num_classes=10, num_sample=5, generator=keras.random.SeedGenerator(0)
    )
    index, remapped = ops.convert_to_numpy(index), ops.convert_to_numpy(remapped)
    print("sampled centers:", index.tolist(), " remapped labels:", remapped.tolist())
    print("index[remapped] == labels:", bool(np.all(index[remapped] == labels)))

    # A model ending in PartialFCLoss trains with model.fit and no loss= (the layer adds its own loss).
    keras.utils.set_random_seed(0)
    features, y = np.random.default_rng(0).normal(size=(64, 8)).astype("float32"), np.arange(64) % 50
    x_in, y_in = keras.Input((8,)), keras.Input((), dtype="int32")
    loss = PartialFCLoss(embedding_size=16, num_classes=50, sample_rate=0.2, seed=0)(
        [keras.layers.Dense(16)(x_in), y_in]
    )
    model = keras.Model([x_in, y_in], loss)
    model.compile(optimizer="adam")
    history = model.fit([features, y], batch_size=16, epochs=2, verbose=0)
    print("training loss per epoch:", [round(v, 4) for v in history.history["loss"]])
