"""Triplet losses for Keras 3: plain, batch-hard and batch-all, on Euclidean distances between embeddings.

Idea: an anchor a should be closer to a positive p (same class) than to a negative n (other class) by at least
a margin m (the code's `margin`). Only the relative distances matter, so the loss is zero once every triplet
respects the margin:

    ℓ(a, p, n) = max(0, d(a, p) - d(a, n) + m),     d(x, y) = ‖x - y‖₂  (not squared)

Which triplets to use decides whether training works. With a P×K batch (P classes, K samples each):
- batch-hard: for every anchor, its farthest positive and its nearest negative in the batch; mean over the
  anchors that have at least one positive and one negative.
- batch-all: every valid (a, p, n) in the batch; mean over the triplets whose loss is > 0 (0 when none), so
  the many already-satisfied triplets do not dilute the gradient.

Papers: Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face Recognition and Clustering",
CVPR 2015, arXiv:1503.03832 (triplet loss, α = 0.2 on unit-length embeddings, squared distance);
Hermans, Beyer, Leibe, "In Defense of the Triplet Loss for Person Re-Identification", arXiv preprint 2017,
arXiv:1703.07737 (batch-hard, batch-all, P×K batches, plain Euclidean distance).

Conventions (the same as the PyTorch twin, snippets/pytorch/triplet.py, name for name): distances are Euclidean
on the embeddings AS GIVEN (normalize them first if you want the unit sphere; the margin is then in the units of
a chord, between 0 and 2). Distances are computed in float32 even for bfloat16/float16 inputs. The square root
is taken of a value clamped away from 0, so the gradient stays finite when two embeddings coincide.

Keras idiom: `BatchTripletLoss("hard")` is a keras.losses.Loss for model.fit on a model that outputs embeddings,
with integer class ids as y_true; feed it P×K batches (`pk_batches`), or batch-hard finds few valid anchors.
Only keras.ops is used, so one file runs on the torch, jax and tensorflow backends.

Run `KERAS_BACKEND=torch python snippets/keras/triplet.py` (or jax, tensorflow) for a worked example.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`pairwise_distances(embeddings)` returns [B, B] distances; every `*_triplet_loss` function and
`BatchTripletLoss(mining, margin)` return a scalar mean loss; `pk_batches(labels, p, k, seed)` returns lists of
indices.
"""

import keras
import numpy as np
from keras import ops


# --8<-- [start:helpers]
def _check_inputs(embeddings, labels, margin):
    """Raise a short ValueError that names the problem; return the inputs as tensors."""
    shape = tuple(getattr(embeddings, "shape", ()))
    embeddings = ops.convert_to_tensor(embeddings)
    dtype = keras.backend.standardize_dtype(embeddings.dtype)
    if len(shape) != 2 or "float" not in dtype:
        raise ValueError(f"embeddings must be a 2-D float tensor [batch, dim], got {dtype} of shape {shape}")
    if shape[0] == 0:
        raise ValueError("embeddings is an empty batch: need at least one row")
    if labels is not None:
        labels = ops.convert_to_tensor(labels)
        if "int" not in keras.backend.standardize_dtype(labels.dtype):
            raise ValueError(f"labels must be an integer tensor, got {keras.backend.standardize_dtype(labels.dtype)}")
        if len(labels.shape) != 1 or labels.shape[0] != shape[0]:
            raise ValueError(f"labels must have shape [{shape[0]}] to match embeddings, got {tuple(labels.shape)}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    return embeddings, labels


def _float32(x):
    """bfloat16/float16 -> float32; float32 and float64 unchanged."""
    return x if keras.backend.standardize_dtype(x.dtype) == "float64" else ops.cast(x, "float32")


def _clamp_min(x, low):
    # with where, not maximum: jax splits maximum's gradient in half on a tie
    return ops.where(x >= low, x, low)


def _safe_sqrt(squared):
    # sqrt'(0) is infinite: clamp so that coinciding embeddings give distance ~1e-6 and a zero gradient.
    return ops.sqrt(_clamp_min(squared, 1e-12))


def _masks(labels):
    """same[a, b]: same class; positive[a, p]: same class and p != a."""
    same = ops.equal(labels[:, None], labels[None, :])
    positive = ops.logical_and(same, ops.logical_not(ops.eye(labels.shape[0], dtype="bool")))  # not itself
    return same, positive


# --8<-- [end:helpers]


# --8<-- [start:pairwise_distances]


def pairwise_distances(embeddings):
    """[B, B] Euclidean distances, from ‖a‖² + ‖b‖² - 2a·b (one matrix product, no [B, B, D] tensor)."""
    x = _float32(ops.convert_to_tensor(embeddings))  # in bf16 the expansion would cancel catastrophically
    squared_norms = ops.sum(x * x, axis=1)
    squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * ops.einsum("id,jd->ij", x, x)
    return _safe_sqrt(_clamp_min(squared, 0.0))  # rounding can make the expansion slightly negative


# --8<-- [end:pairwise_distances]


# --8<-- [start:triplet_loss]
def triplet_loss(anchor, positive, negative, margin=0.2):
    """Mean over rows of max(0, d(a, p) - d(a, n) + margin) for given [B, D] triplets."""
    anchor, _ = _check_inputs(anchor, None, margin)
    positive, negative = ops.convert_to_tensor(positive), ops.convert_to_tensor(negative)
    if positive.shape != anchor.shape or negative.shape != anchor.shape:
        raise ValueError(
            f"anchor, positive and negative must have the same shape, got {tuple(anchor.shape)}, "
            f"{tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    anchor, positive, negative = (_float32(x) for x in (anchor, positive, negative))  # float32 for bf16/fp16
    d_ap = _safe_sqrt(ops.sum(ops.square(anchor - positive), axis=1))
    d_an = _safe_sqrt(ops.sum(ops.square(anchor - negative), axis=1))
    # sum / count, not ops.mean: on torch and jax, ops.mean of float64 is computed in float32
    return ops.sum(ops.relu(d_ap - d_an + margin)) / ops.cast(ops.shape(d_ap)[0], d_ap.dtype)


# --8<-- [end:triplet_loss]


# --8<-- [start:batch_hard_triplet_loss]
def batch_hard_triplet_loss(embeddings, labels, margin=0.2):
    """Per anchor: farthest positive, nearest negative; mean over anchors having both (0 if there are none)."""
    embeddings, labels = _check_inputs(embeddings, labels, margin)
    distances = pairwise_distances(embeddings)
    same, positive = _masks(labels)
    # argmax/argmin then gather: on ties the gradient goes to one pair (the first), as in the PyTorch twin
    farthest = ops.argmax(ops.where(positive, distances, -np.inf), axis=1)
    nearest = ops.argmin(ops.where(same, np.inf, distances), axis=1)
    hardest_positive = ops.take_along_axis(distances, farthest[:, None], axis=1)[:, 0]
    hardest_negative = ops.take_along_axis(distances, nearest[:, None], axis=1)[:, 0]
    valid = ops.logical_and(ops.any(positive, axis=1), ops.any(ops.logical_not(same), axis=1))
    losses = ops.relu(hardest_positive - hardest_negative + margin)  # anchors without a pair: masked out below
    count = ops.sum(ops.cast(valid, distances.dtype))
    return ops.sum(ops.where(valid, losses, 0.0)) / ops.maximum(count, 1.0)


# --8<-- [end:batch_hard_triplet_loss]


# --8<-- [start:batch_all_triplet_loss]
def batch_all_triplet_loss(embeddings, labels, margin=0.2):
    """All valid (a, p, n); mean over the triplets with loss > 0 (0 when none)."""
    embeddings, labels = _check_inputs(embeddings, labels, margin)
    distances = pairwise_distances(embeddings)
    same, positive = _masks(labels)
    valid = ops.logical_and(positive[:, :, None], ops.logical_not(same)[:, None, :])  # [a, p, n]
    losses = ops.relu(distances[:, :, None] - distances[:, None, :] + margin)  # d(a,p) - d(a,n) + m
    losses = ops.where(valid, losses, 0.0)
    count = ops.sum(ops.cast(losses > 0, losses.dtype))
    return ops.sum(losses) / ops.maximum(count, 1.0)


# --8<-- [end:batch_all_triplet_loss]


# --8<-- [start:batch_triplet_loss]
MINING = {"hard": batch_hard_triplet_loss, "all": batch_all_triplet_loss}


@keras.saving.register_keras_serializable(package="triplet")
class BatchTripletLoss(keras.losses.Loss):
    """Batch-hard or batch-all triplet loss for model.fit: y_true integer class ids [B], y_pred embeddings [B, D].

    model.compile(loss=BatchTripletLoss("hard", margin=0.2)); the loss is already a mean over the batch.
    """

    def __init__(
        self, mining="hard", margin=0.2, name="batch_triplet_loss", reduction="sum_over_batch_size", dtype=None
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if mining not in MINING:
            raise ValueError(f"unknown mining {mining!r}; choose one of {sorted(MINING)}")
        if not margin >= 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.mining, self.margin = mining, margin

    def call(self, y_true, y_pred):
        # Keras casts y_true to float32 before call(): turn it back into class ids (exact for ids below 2**24)
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        return MINING[self.mining](y_pred, labels, self.margin)

    def get_config(self):
        return {**super().get_config(), "mining": self.mining, "margin": self.margin}


# --8<-- [end:batch_triplet_loss]


# --8<-- [start:pk_batches]
def pk_batches(labels, p, k, seed=None):
    """Index batches of p classes × k samples each (Hermans et al.'s P×K batches), one pass over the classes.

    Classes with fewer than k samples are drawn with replacement. Call it once per epoch; feed
    x[batch], y[batch] for each batch (e.g. from a keras.utils.PyDataset).
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if not (p >= 1 and k >= 1 and p <= len(classes)):
        raise ValueError(f"need 1 <= p <= number of classes ({len(classes)}) and k >= 1, got p={p}, k={k}")
    rng = np.random.default_rng(seed)
    order = classes[rng.permutation(len(classes))]
    batches = []
    for start in range(0, len(order) - p + 1, p):  # drop the last incomplete group of classes
        batch = []
        for c in order[start : start + p]:
            members = np.flatnonzero(labels == c)
            pick = rng.permutation(len(members))[:k] if len(members) >= k else rng.integers(len(members), size=k)
            batch += members[pick].tolist()
        batches.append(batch)
    return batches


# --8<-- [end:pk_batches]


if __name__ == "__main__":
    # Four 2-D unit embeddings, two classes (tests/worked_examples.md, E9):
    #   0: (1, 0)  1: (0.6, 0.8)  -> class 0        2: (0.8, 0.6)  3: (0, 1)  -> class 1
    embeddings = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]], dtype="float32")
    labels = np.array([0, 0, 1, 1])
    print("backend:", keras.backend.backend())
    print("distances:\n", ops.convert_to_numpy(pairwise_distances(embeddings)).round(4))
    # By hand: d(0,1) = sqrt(0.16 + 0.64) = 0.8944, d(0,2) = sqrt(0.04 + 0.36) = 0.6325, d(1,2) = 0.2828.
    # Anchor 0: positive 1 (0.8944) is farther than negative 2 (0.6325): loss 0.8944 - 0.6325 + 0.05 = 0.3120.
    a, p, n = embeddings[[0]], embeddings[[1]], embeddings[[2]]
    value = lambda x: round(float(ops.convert_to_numpy(x)), 6)  # noqa: E731
    print("triplet_loss(a=0, p=1, n=2, margin=0.05):", value(triplet_loss(a, p, n, margin=0.05)))
    print("batch_hard_triplet_loss(margin=0.05):", value(batch_hard_triplet_loss(embeddings, labels, 0.05)))
    print("batch_all_triplet_loss(margin=0.05): ", value(batch_all_triplet_loss(embeddings, labels, 0.05)))
    print(
        "batch_hard / batch_all at margin=0.2 (the page's worked example):",
        value(batch_hard_triplet_loss(embeddings, labels, 0.2)),
        value(batch_all_triplet_loss(embeddings, labels, 0.2)),
    )
    # batch-hard: anchors 0..3 each pick hardest pairs -> (0.3120 + 0.6616 + 0.6616 + 0.3120) / 4 = 0.4868
    # batch-all: 8 triplets, 6 with loss > 0, mean of those = 0.4285
    print("P x K batches (p=2, k=2):", pk_batches(labels, p=2, k=2, seed=0))
