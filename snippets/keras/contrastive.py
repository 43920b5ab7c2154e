"""Contrastive loss for Keras 3: every pair of a batch, pulled together when both have the same label, pushed at
least a margin m apart when they do not.

    ℓ(i, j) = ½ d²                  if y_i = y_j     (similar pair)
    ℓ(i, j) = ½ max(0, m - d)²      if y_i ≠ y_j     (dissimilar pair),     d = ‖x_i - x_j‖₂

and the loss is the mean of ℓ over the B(B - 1)/2 pairs i < j of the batch. A dissimilar pair farther apart than
m costs nothing and gets no gradient; a similar pair always pays, so it is pulled toward distance 0.

Paper: Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant Mapping", CVPR 2006 (the margin
form; its label Y is 0 for a similar pair and 1 for a dissimilar one, the opposite of `same` here). Chopra,
Hadsell, LeCun, CVPR 2005, trained a face-verification network with an earlier pair loss.

Conventions (the same as the PyTorch twin, snippets/pytorch/contrastive.py, name for name): distances are
Euclidean on the embeddings AS GIVEN (normalize them first if you want the unit sphere: the margin is then a chord
between 0 and 2, and m = 1 pushes dissimilar pairs beyond 60°). Distances are computed in float32 even for
bfloat16/float16 inputs. The square root is taken of a value clamped away from 0, so the gradient stays finite
when two embeddings coincide. The pairs are averaged with equal weight: in a P×K batch most of them are
dissimilar.

Keras idiom: for model.fit on a model that outputs embeddings, with integer class ids as y_true, pass
`loss=lambda y_true, y_pred: contrastive_loss(y_pred, ops.reshape(y_true, (-1,)), margin)` (the batch size must
be known when the loss is traced). Only keras.ops is used, so one file runs on the torch, jax and tensorflow
backends.

Run `KERAS_BACKEND=torch python snippets/keras/contrastive.py` (or jax, tensorflow) for a worked example.

Contract (CONTRIBUTING.md, "The snippet contract", the same in both frameworks):
`contrastive_loss(embeddings, labels, margin)` returns a scalar mean loss.
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
    if shape[0] is not None and shape[0] < 2:
        raise ValueError(f"need at least two embeddings to make a pair, got {shape[0]}")
    labels = ops.convert_to_tensor(labels)
    if "int" not in keras.backend.standardize_dtype(labels.dtype):
        raise ValueError(f"labels must be an integer tensor, got {keras.backend.standardize_dtype(labels.dtype)}")
    if len(labels.shape) != 1 or labels.shape[0] != shape[0]:
        raise ValueError(f"labels must have shape [{shape[0]}] to match embeddings, got {tuple(labels.shape)}")
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    return embeddings, labels


def _clamp_min(x, low):
    # with where, not maximum: jax splits maximum's gradient in half on a tie
    return ops.where(x >= low, x, low)


# --8<-- [end:helpers]


# --8<-- [start:contrastive_loss]
def contrastive_loss(embeddings, labels, margin=1.0):
    """Mean over all pairs i < j of ½d² (same label) or ½max(0, margin - d)² (different labels)."""
    embeddings, labels = _check_inputs(embeddings, labels, margin)
    x = (
        embeddings
        if keras.backend.standardize_dtype(embeddings.dtype) == "float64"
        else ops.cast(embeddings, "float32")
    )
    squared_norms = ops.sum(x * x, axis=1)  # float32 for bf16/fp16: the expansion would cancel catastrophically
    squared = _clamp_min(squared_norms[:, None] + squared_norms[None, :] - 2.0 * ops.einsum("id,jd->ij", x, x), 0.0)
    distance = ops.sqrt(_clamp_min(squared, 1e-12))  # sqrt'(0) is infinite: coinciding points get a zero gradient
    same = ops.equal(labels[:, None], labels[None, :])
    losses = ops.where(same, 0.5 * squared, 0.5 * ops.relu(margin - distance) ** 2)
    pairs = ops.triu(ops.ones_like(losses), k=1)  # each pair once, no point with itself
    return ops.sum(losses * pairs) / ops.sum(pairs)


# --8<-- [end:contrastive_loss]


if __name__ == "__main__":
    # Worked example (the metric-learning page): margin 1, points on a line at 0, 0.3 and 1.2.
    x = np.array([[0.0, 0.0], [0.3, 0.0], [1.2, 0.0]])

    def show(text, embeddings, labels):
        loss = contrastive_loss(embeddings, np.array(labels))
        print(text, round(float(ops.convert_to_numpy(loss)), 6))

    print("backend:", keras.backend.backend())
    show("two points 0.3 apart, same label:     ", x[:2], [0, 0])
    show("two points 0.3 apart, different labels:", x[:2], [0, 1])
    show("two points 1.2 apart, different labels:", x[[0, 2]], [0, 1])
    # By hand: ½·0.3² = 0.045; ½·(1 - 0.3)² = 0.245; 1.2 > m, so 0.
    # All three, labels [0, 0, 1]: pairs (0, 1) similar at 0.3, (0, 2) dissimilar at 1.2, (1, 2) dissimilar at 0.9:
    # (0.045 + 0 + ½·0.1²) / 3 = (0.045 + 0.005) / 3 = 0.016667.
    show("all three, labels [0, 0, 1]:", x, [0, 0, 1])

    # --8<-- [start:given_pairs]
    # No class labels, only given pairs: row k of `first` and `second` is pair k, and same[k] says whether it is a
    # similar pair. The same formula, pair by pair, then the mean (normalize the embeddings first for the unit sphere).
    first = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], "float32")
    second = np.array([[0.3, 0.0], [0.3, 0.0], [1.2, 0.0]], "float32")
    same = np.array([True, False, False])
    margin = 1.0
    squared = ops.sum((first - second) ** 2, axis=1)  # [N] squared distances of the given pairs
    distance = ops.sqrt(ops.where(squared >= 1e-12, squared, 1e-12))  # clamped: a zero distance would give inf
    pair_losses = ops.where(same, 0.5 * squared, 0.5 * ops.relu(margin - distance) ** 2)
    values = ops.convert_to_numpy(pair_losses).tolist()
    print(
        "given pairs:",
        [round(v, 6) for v in values],
        "mean",
        round(float(ops.convert_to_numpy(ops.mean(pair_losses))), 6),
    )
    # By hand: 0.045, 0.245 and 0, the three numbers above; their mean is 0.096667.
    # --8<-- [end:given_pairs]
