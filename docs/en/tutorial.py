# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# <h1 id="tutorial">ArcFace tutorial: handwritten digits, end to end</h1>
#
# This notebook puts together the pieces the guide explains one at a time. It trains a small embedding model with
# the ArcFace loss on the handwritten digits that ship with scikit-learn, then measures verification on digits the
# model **never saw** during training: a miniature of face recognition, where a system must decide whether two
# photos of a stranger show the same person.
#
# - Data: the 1,797 8×8 images of `load_digits`; no internet connection needed.
# - Running time: about a minute on a 2-core CPU.
# - The result, up front: with only six training classes, raw pixels verify unseen digits better than the trained
#   embeddings. The notebook measures this at the end; the [Experiments chapter](../experiments/#glyph-study) shows
#   when margins pay off.
# - Margin code: the guide's tested file `snippets/pytorch/margins.py`, used as is.
#
# The [ArcFace chapter](../arcface/) defines the loss and discusses numerical stability; here we get our hands dirty.

# %% [markdown]
# <h2 id="setup">Setup</h2>
#
# Inside the repository the notebook imports `snippets/pytorch/margins.py` directly; outside it (in Colab, say) it
# downloads the same file from GitHub once. We use two things from it: `CosineClassifier`, which returns the cosines
# between normalized embeddings and normalized class weights, and `arcface_logits`, which adds the margin to the
# target column only and returns scaled logits.

# %%
import pathlib
import sys
import urllib.request

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The margin code is the guide's tested file snippets/pytorch/margins.py. Inside the repository (from any folder
# of it) we import it from there; in Colab or a downloaded copy we fetch the same file from GitHub once.
here = pathlib.Path.cwd()
found = [p / "snippets/pytorch" for p in (here, *here.parents) if (p / "snippets/pytorch/margins.py").exists()]
if found:
    SNIPPETS = found[0]
else:
    SNIPPETS = here
    url = (
        "https://raw.githubusercontent.com/metric-learning-guide/metric-learning-guide/main/snippets/pytorch/margins.py"
    )
    urllib.request.urlretrieve(url, "margins.py")
sys.path.insert(0, str(SNIPPETS))
from margins import CosineClassifier, arcface_logits

torch.manual_seed(0)
torch.set_num_threads(2)
print("torch", torch.__version__)

# %% [markdown]
# <h2 id="data">Data: seen and unseen classes</h2>
#
# Digits 0–5 play the people we train on; digits 6–9 are strangers, used only for evaluation. Within 0–5 we keep a
# test split as well, so we can also report closed-set classification accuracy.

# %%
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)  # 1,797 images of 8×8 pixels, scaled to [0, 1]
y = torch.tensor(digits.target)

seen = y < 6  # digits 0–5: the "people" we train on
X_seen, y_seen = X[seen], y[seen]
X_unseen, y_unseen = X[~seen], y[~seen]  # digits 6–9: never shown during training

idx_train, idx_test = train_test_split(np.arange(len(y_seen)), test_size=0.25, stratify=y_seen, random_state=0)
X_train, y_train = X_seen[idx_train], y_seen[idx_train]
X_test, y_test = X_seen[idx_test], y_seen[idx_test]
print(f"train {tuple(X_train.shape)}, test {tuple(X_test.shape)}, unseen {tuple(X_unseen.shape)}")

# %% [markdown]
# <h2 id="model">Model: a backbone and a cosine classifier</h2>
#
# The backbone is a small MLP that maps the 64 pixels to a 32-dimensional embedding, the same network as the digits
# study in the [Experiments chapter](../experiments/) (64 → 128 → 128 → 32, ReLU, no batch normalization). On top of
# it, `CosineClassifier`
# computes $\cos\theta_j = \hat{\mathbf{W}}_j^\top \hat{\mathbf{x}}$ with no bias. The model outputs cosines, not
# probabilities; the loss applies the margin and the scale, during training only.
#
# With only six classes, face recognition's usual $s = 64$ is far too large: the softmax saturates almost at once and
# the training signal vanishes (the section on the scale in the [angular-margins chapter](../angular-margins/)
# explains why). So we use the experiments' $s = 16$, the paper's margin $m = 0.5$ radians (about 28.6°) and Adam at a
# learning rate of $10^{-3}$, all as in the experiments. Three things differ: the experiments use P×K batches and a
# learning rate that decays along a cosine to 0, while this notebook keeps its code short with shuffled batches of
# 60 and a constant rate. Closed-set accuracy here is also measured over the six classes 0–5, not over 10 classes
# as in the experiment.


# %%
def make_backbone(embedding_size):
    # The experiments' "mlp" (experiments/architectures.py): 64 -> 128 -> 128 -> embedding, ReLU, no BatchNorm.
    return nn.Sequential(
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Linear(128, 128),
        nn.ReLU(),
        nn.Linear(128, embedding_size),
    )


class ArcFaceModel(nn.Module):
    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.backbone = make_backbone(embedding_size)
        self.head = CosineClassifier(embedding_size, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))  # cosines [B, C]: the margin is applied by the loss, in training only

    def embed(self, x):
        return F.normalize(self.backbone(x), dim=1)


S, M = 16.0, 0.5  # the experiments' scale for 6 classes and the paper's margin (radians), see the text

# %% [markdown]
# <h2 id="train">Training</h2>
#
# A training step is an ordinary classification step except for the loss: the target cosine $\cos\theta_y$ becomes
# $\cos(\theta_y + m)$, everything is multiplied by $s$, and the result goes into cross-entropy.
#
# $$
# L = -\log \frac{e^{s\cos(\theta_y + m)}}{e^{s\cos(\theta_y + m)} + \sum_{j \ne y} e^{s\cos\theta_j}}
# $$


# %%
def train(model, loss_fn, epochs=20, batch_size=60, lr=1e-3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y_train), generator=generator)
        losses = []
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = loss_fn(model(X_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
    return history


def arcface_loss(cosine, labels):
    return F.cross_entropy(arcface_logits(cosine, labels, s=S, m=M), labels)


torch.manual_seed(0)
arcface = ArcFaceModel(embedding_size=32, num_classes=6)
arcface_history = train(arcface, arcface_loss)
arcface.eval()
with torch.no_grad():
    accuracy = (arcface(X_test).argmax(dim=1) == y_test).float().mean().item()
print(f"loss: first epoch {arcface_history[0]:.2f}, last epoch {arcface_history[-1]:.2f}")
print(f"closed-set test accuracy: {accuracy:.3f}")

# %% [markdown]
# The loss drops quickly in the first epochs. With only a little over 800 training images, it gets quite low by the
# last epoch. Run it and check the numbers.

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, len(arcface_history) + 1), arcface_history, marker=".")
ax.set_xlabel("epoch")
ax.set_ylabel("ArcFace loss")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# <h2 id="embeddings-on-the-circle">Embeddings on the unit circle</h2>
#
# Train the same model with a 2-dimensional embedding and the normalized features lie on the unit circle, so we can
# plot them directly. Look at how closely the points of each class gather on a short arc around their center
# $\mathbf{W}_j$ (the segment drawn from the origin). Do not expect clean gaps between the classes: six classes and
# a 0.5 rad margin are a tight fit
# on a circle (each class keeps at most about 31° between the margin bands), so neighboring arcs touch or overlap, as
# in the 2-D figure of the [ArcFace chapter](../arcface/#geometry). The room a margin creates becomes visible only in
# more dimensions.

# %%
torch.manual_seed(0)
tiny = ArcFaceModel(embedding_size=2, num_classes=6)
train(tiny, arcface_loss, epochs=25)
tiny.eval()
with torch.no_grad():
    points = tiny.embed(X_test).numpy()
    centers = F.normalize(tiny.head.weight, dim=1).numpy()

fig, ax = plt.subplots(figsize=(4.2, 4.2))
ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.7"))
for c in range(6):
    ax.scatter(*points[y_test.numpy() == c].T, s=12, label=str(c))
    ax.plot([0, centers[c, 0]], [0, centers[c, 1]], color="0.3", lw=1)
ax.set_aspect("equal")
ax.set_xlim(-1.2, 1.2)
ax.set_ylim(-1.2, 1.2)
ax.legend(title="digit", fontsize=8, loc="center")
plt.show()

# %% [markdown]
# <h2 id="verification">Verification on unseen digits</h2>
#
# Now take every pair of images of the unseen digits 6–9 and compute their cosine similarity. Genuine pairs (same
# digit) should score high and impostor pairs (different digits) low. A pair is accepted as "same" when its cosine
# reaches a threshold; the terms below are defined in full, with their pitfalls, in
# [Evaluation and deployment](../evaluation/).
#
# - **FAR** (false accept rate): the share of impostor pairs accepted. **TAR** (true accept rate): the share of genuine
#   pairs accepted.
# - **ROC curve**: (FAR, TAR) traced as the threshold sweeps ([the ROC curve](../evaluation/#roc)).
# - **TAR@FAR**: the TAR when the FAR is held at or below a target such as $10^{-2}$
#   ([TAR@FAR](../evaluation/#tar-at-far)).
# - **EER** (equal error rate): the error rate at the threshold where FAR equals the false reject rate
#   FRR = 1 − TAR; lower is better ([EER](../evaluation/#eer)).
#
# A deployed system picks its threshold this way, at a target FAR. Here the same pairs choose the threshold and
# measure it, which flatters the result; in practice the threshold comes from a separate validation set
# ([Evaluation and deployment](../evaluation/)).

# %%
from sklearn.metrics import roc_curve


def verification(model):
    """Cosine similarity of every pair of unseen images; returns (FAR, TAR, thresholds) and the pair labels."""
    model.eval()
    with torch.no_grad():
        e = model.embed(X_unseen)
    similarity = e @ e.T
    i, j = torch.triu_indices(len(e), len(e), offset=1)
    same = (y_unseen[i] == y_unseen[j]).numpy()
    far, tar, thresholds = roc_curve(same, similarity[i, j].numpy())
    return far, tar, thresholds, same


def tar_at(far, tar, thresholds, target_far):
    k = np.searchsorted(far, target_far, side="right") - 1  # last point with FAR <= target
    return tar[k], thresholds[k]


far, tar, thresholds, same = verification(arcface)
print(f"{same.sum():,} genuine and {(~same.astype(bool)).sum():,} impostor pairs of unseen digits")
for target in (1e-2, 1e-3):
    t, threshold = tar_at(far, tar, thresholds, target)
    print(f"TAR @ FAR={target:g}: {t:.3f}  (accept a pair when cosine >= {threshold:.3f})")


def eer_of(far, tar):
    return far[np.argmin(np.abs(far - (1 - tar)))]  # where FAR = FRR = 1 - TAR


print(f"EER: {eer_of(far, tar):.3f}")

# %% [markdown]
# <h2 id="compare-with-softmax">Compared with a plain softmax</h2>
#
# The same backbone, trained with a linear classifier and plain cross-entropy (no normalization, no margin), measured
# the same way, next to two baselines that learn nothing: the 64 raw pixels used as the embedding (pixels), and the
# ArcFace model at its initial weights, before its first step (untrained).
#
# The result first: on this data the raw pixels come out best, and the untrained network does as well as ArcFace or
# better. That is no accident. The digits study in the [Experiments chapter](../experiments/) runs every method over
# three seeds and finds the same: on the unseen digits, TAR@FAR=$10^{-2}$ is 0.40 for the pixels and 0.25 for the
# untrained MLP, while the best trained embedding, NormFace, reaches 0.22 and ArcFace 0.18. With six classes, a network
# learns just the features that tell those six apart and throws away what would tell unseen digits apart. Angular
# margins earn their keep when there are many training classes, as in face recognition: in the
# [Hangul syllable study](../experiments/#glyph-study), which verifies syllables never seen in training, the margin's
# gain shows from 50 training syllables on.


# %%
class SoftmaxModel(nn.Module):
    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.backbone = make_backbone(embedding_size)
        self.head = nn.Linear(embedding_size, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))

    def embed(self, x):
        return F.normalize(self.backbone(x), dim=1)


torch.manual_seed(0)
softmax = SoftmaxModel(embedding_size=32, num_classes=6)
train(softmax, F.cross_entropy)


class Pixels(nn.Module):
    """Baseline: the raw pixels are the embedding (no parameters, no training)."""

    def embed(self, x):
        return F.normalize(x, dim=1)


torch.manual_seed(0)
untrained = ArcFaceModel(embedding_size=32, num_classes=6)  # baseline: the ArcFace network before its first step

fig, ax = plt.subplots(figsize=(4.5, 3.5))
print("           TAR@FAR=1e-2  TAR@FAR=1e-3   EER")
for name, model in [("pixels", Pixels()), ("untrained", untrained), ("softmax", softmax), ("ArcFace", arcface)]:
    far, tar, thresholds, _ = verification(model)
    tar2, tar3 = (tar_at(far, tar, thresholds, target)[0] for target in (1e-2, 1e-3))
    print(f"{name:10s} {tar2:12.3f}  {tar3:12.3f}  {eer_of(far, tar):.3f}")
    ax.plot(far, tar, label=name, ls=":" if name in ("pixels", "untrained") else "-")
ax.set_xscale("log")
ax.set_xlim(1e-4, 1)
ax.set_xlabel("FAR")
ax.set_ylabel("TAR")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# <h2 id="next-steps">Things to try</h2>
#
# - Change `S` and `M`. As you increase $m$, watch how closed-set accuracy and verification on unseen digits each
#   move.
# - Import `cosface_logits` from `margins.py` and use it in place of `arcface_logits` to get CosFace.
# - Change the embedding size from 2 to 3 and plot in 3-D (`projection="3d"`) to see the distribution on the unit
#   sphere.
