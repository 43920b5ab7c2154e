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
# This notebook puts together the pieces the guide explains one at a time. It trains a small embedding model with the
# ArcFace loss on the handwritten digits bundled with scikit-learn, then measures verification (deciding whether two
# images show the same digit) on digits the model **never saw** during training: a miniature version of face
# recognition, where a system must decide whether two photos of people it has never seen show the same person.
#
# - Data: the 1,797 8×8 images of `load_digits`, bundled with scikit-learn, so nothing is downloaded for them. An
#   internet connection is needed only outside the repository (in Colab, say), to fetch `margins.py` the first time.
# - Running time: about a minute on a 2-core CPU.
# - The result, up front: with only six training classes, raw pixels verify unseen digits better than the trained
#   embeddings. The notebook measures this at the end; the Hangul syllable study in the
#   [Experiments chapter](../experiments/#glyph-study) shows when margins pay off.
# - Margin code: the guide's tested file `snippets/pytorch/margins.py`, used as is.
#
# The [ArcFace chapter](../arcface/) defines the loss and discusses numerical stability; here we get our hands dirty.

# %% [markdown]
# <h2 id="setup">Setup</h2>
#
# Inside the repository the notebook imports `snippets/pytorch/margins.py` directly; outside it (in Colab, say) it
# downloads the same file from GitHub, and skips the download if the file is already there (delete it to fetch the
# current version). We use two things from it:
# `CosineClassifier`, which returns the cosines between normalized embeddings and normalized class centers, and
# `arcface_logits`, which puts the margin into the target column only and multiplies every column by the scale $s$.
# The running time and the numbers in the text were measured with 2 threads, so the cell fixes the thread count at 2.
# It prints only the torch version.

# %%
import pathlib
import sys
import urllib.request

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

here = pathlib.Path.cwd()
found = [p / "snippets/pytorch" for p in (here, *here.parents) if (p / "snippets/pytorch/margins.py").exists()]
if found:
    SNIPPETS = found[0]
else:  # outside the repository (Colab): fetch the one file once, next to the notebook
    SNIPPETS = here
    if not pathlib.Path("margins.py").exists():
        REPO = "https://raw.githubusercontent.com/metric-learning-guide/metric-learning-guide/main"
        urllib.request.urlretrieve(f"{REPO}/snippets/pytorch/margins.py", "margins.py")
sys.path.insert(0, str(SNIPPETS))
from margins import CosineClassifier, arcface_logits

torch.manual_seed(0)
torch.set_num_threads(2)  # the running time and the values quoted in the text were measured with 2 threads
print("torch", torch.__version__)

# %% [markdown]
# <h2 id="data">Data: seen and unseen classes</h2>
#
# Digits 0–5 stand in for the people we train on; digits 6–9 are strangers, used only for evaluation. Digits 0–5 are
# split again into training and test images (25% for test), so that we can also report closed-set classification
# accuracy.
#
# The cell prints the size of each set: 812 training images, 271 test images and 714 images of unseen digits, each
# image 64 pixels.

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
# The backbone is a small MLP that maps the 64 pixels to a 32-dimensional embedding (64 → 128 → 128 → 32, ReLU, no
# batch normalization), the same network as the
# [digits study in the Experiments chapter](../experiments/#model-and-training). On top of it, `CosineClassifier`
# computes only the cosine $\cos\theta_j = \hat{\mathbf{W}}_j^\top \hat{\mathbf{x}}$ between the normalized class
# center $\hat{\mathbf{W}}_j$ and the normalized embedding $\hat{\mathbf{x}}$, with no bias. The model therefore
# outputs cosines, not probabilities; the loss applies the margin and the scale, during training only.
#
# The hyperparameters are the digits study's too, so that the notebook's numbers can be compared with the tables of
# the Experiments chapter: the scale $s = 16$, the paper's margin $m = 0.5$ radians (about 28.6°), Adam at a
# learning rate of $10^{-3}$, and 20 epochs. Face recognition's usual $s = 64$ is very likely far too large for six
# classes: once the target starts to win, the softmax saturates at once and the training signal vanishes
# ([why the scale s is needed](../angular-margins/#scale), [why the experiments use s = 16](../experiments/#scale)).
# This notebook's setting was not tried with $s = 64$, but even with 1,500 classes, in the Hangul syllable study's
# [scale comparison](../experiments/#glyph-studies) (one seed), $s = 64$ fell far behind the AdaCos value $\tilde{s}$.
#
# Three things differ from the digits study, all to keep the code short:
#
# - Batches: the study uses P×K batches with the same number of images per class; this notebook uses shuffled batches
#   of 60 (with 812 images, the last batch of each epoch holds 32).
# - Optimizer: the study decays the learning rate to 0 on a cosine schedule and sets Adam's `eps` to Keras's default,
#   $10^{-7}$; this notebook keeps the rate constant and uses PyTorch's default, $10^{-8}$.
# - Split and closed-set accuracy: the study first splits all ten classes into training and test images, trains on
#   the digits 0–5 of the training side alone (811 images), and measures closed-set accuracy with a separate ten-class
#   model on 450 test images. This notebook splits the digits 0–5 alone (812 and 271 images) and measures closed-set
#   accuracy on the same six-class model that it later uses for verification.
#
# The [Hangul syllable study](../experiments/#glyph-protocol) uses a convolutional backbone with batch normalization,
# a learning rate of $4\cdot10^{-3}$, $s = 10.3$ and a margin warm-up, so the study to compare this notebook with is
# the digits study.


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
# A training step is an ordinary classification step except for the loss: $\cos(\theta_y + m)$ takes the place of the
# target cosine $\cos\theta_y$ (once $\theta_y + m > \pi$, the [fallback](../arcface/#fallback) takes it instead), every
# logit is multiplied by $s$, and the result goes into cross-entropy.
#
# $$
# L = -\ln \frac{e^{s\cos(\theta_y + m)}}{e^{s\cos(\theta_y + m)} + \sum_{j \ne y} e^{s\cos\theta_j}}
# $$
#
# `train` takes the model, the loss function and the training images and labels, and returns the mean loss of each
# epoch. The cell below trains the ArcFace model and prints the mean loss of the first and the last epoch and the
# closed-set accuracy on the test images. The accuracy is the argmax of the plain cosines: logits with the margin in
# them can be computed only from the true label, so they are not a prediction
# ([label leakage](../glossary/#label-leakage)).


# %%
def train(model, loss_fn, X, y, epochs=20, batch_size=60, lr=1e-3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        losses = []
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = loss_fn(model(X[batch]), y[batch])
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
arcface_history = train(arcface, arcface_loss, X_train, y_train)
arcface.eval()
with torch.no_grad():
    accuracy = (arcface(X_test).argmax(dim=1) == y_test).float().mean().item()
print(f"loss: first epoch {arcface_history[0]:.3g}, last epoch {arcface_history[-1]:.3g}")
print(f"closed-set test accuracy: {accuracy:.3f}")

# %% [markdown]
# The mean loss of the first epoch is around 6; it falls to about 1 in the second epoch and to around 0.001 by the last.
# With only 812 training images, 20 epochs are enough to get nearly all of them right even with the margin. The
# closed-set accuracy is about 0.99.
#
# Separating the six training digits this well does not mean the model separates unseen digits well; that is measured
# [further down](#verification). The next cell plots the loss per epoch on a log scale.
#
# <!-- alt: Line plot of the mean ArcFace loss per epoch on a logarithmic axis: about 6 in the first epoch, about 1 in
# the second, and around 0.001 by the twentieth. -->

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(range(1, len(arcface_history) + 1), arcface_history, marker=".")
ax.set_xlabel("epoch")
ax.set_ylabel("ArcFace loss")
ax.set_yscale("log")  # from about 6 down to about 0.001: a linear axis would show only the first two epochs
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# <h2 id="embeddings-on-the-circle">Embeddings on the unit circle</h2>
#
# Train the same way with a 2-dimensional embedding and the normalized embeddings lie on the unit circle, so we can
# plot them directly. A 2-dimensional embedding converges more slowly, so apart from the embedding size the one change
# is more epochs: 25 instead of 20 (its loss is still creeping down after epoch 25). The figure below shows the
# embeddings of the 271 test images. What to look for is how closely the points of each digit gather on a short arc
# around their normalized class center $\hat{\mathbf{W}}_j$ (the gray segment drawn from the origin).
#
# Six classes are a tight fit on a circle. If the six centers split the circle evenly, neighboring centers are 60°
# apart. A sample at an angle $\varphi$ from its own center, toward a neighbor, is $60° - \varphi$ from the
# neighbor's center, and it clears the margin only if $\varphi + 28.6° < 60° - \varphi$ (the margin $m = 0.5$
# radians is 28.6°), that is $\varphi < (60° - 28.6°)/2 \approx 15.7°$. So each class keeps 15.7° on either side
# of its center, about 31° in all, and the 28.6° between neighbors is a margin band. With arcs that narrow, a model
# that fits every training image inside its arc still lets some test images fall into the band or past it: in the
# figure, most points gather on their own arc, but a few cross the band into a neighbor's, as in the 2-D figure of
# the [ArcFace chapter](../arcface/#geometry).
#
# In the 32 dimensions of the model above, the six centers can all be 90° or more apart (mutually orthogonal ones
# already are), which leaves every class ample room beside its margin bands.
#
# <!-- alt: Scatter plot of the 271 test images' 2-D embeddings on the unit circle, one color per digit 0–5; each
# digit's points gather on a short arc around its normalized class center, drawn as a gray segment from the origin. -->

# %%
torch.manual_seed(0)
tiny = ArcFaceModel(embedding_size=2, num_classes=6)
train(tiny, arcface_loss, X_train, y_train, epochs=25)
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
# Now take every possible pair of the 714 images of the unseen digits 6–9 and compute their cosine similarity. Genuine
# pairs (same digit) should score high and impostor pairs (different digits) low. A pair is accepted as "same" when
# its cosine reaches a threshold; the terms below are defined in full, with their pitfalls, in
# [Evaluation and deployment](../evaluation/).
#
# - **FAR** (false accept rate): the share of impostor pairs accepted. **TAR** (true accept rate): the share of
#   genuine pairs accepted.
# - **ROC curve**: the points (FAR, TAR) traced as the threshold sweeps ([the ROC curve](../evaluation/#roc)).
# - **TAR@FAR**: the TAR when the FAR is held at or below a target such as $10^{-2}$
#   ([TAR@FAR](../evaluation/#tar-at-far)).
# - **EER** (equal error rate): the error rate at the threshold where FAR equals the false reject rate FRR = 1 − TAR;
#   lower is better ([EER](../evaluation/#eer)).
#
# The cell prints the number of pairs (63,382 genuine and 191,159 impostor pairs, the same pairs as in the digits
# study), the TAR at FAR $10^{-2}$ and $10^{-3}$ with the threshold that gives it, and the EER.
#
# A deployed system picks its threshold this way too, at a target FAR. Here the same pairs give both the threshold and
# the TAR at it, which is simply how a point of the ROC curve is read. What they cannot tell is the FAR that threshold
# will give on new data, so in practice one set of data, the [validation set](../glossary/#validation-set), picks the
# threshold and another checks its FAR ([Choosing a threshold](../evaluation/#threshold)).
#
# The cell's `tar_at` and `eer_of` apply the rules of the experiments' code,
# [`verification_metrics`](../evaluation/#tar-at-far), to the points that scikit-learn's `roc_curve` returns: `tar_at`
# reads the last point whose FAR is within the target (the one with the highest TAR), and `eer_of` returns
# $(\text{FAR} + \text{FRR})/2$ at the point where the two are closest. On the four embeddings of this notebook, these
# two functions and `verification_metrics` agree to the three decimals printed.

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
print(f"{same.sum():,} genuine and {(~same).sum():,} impostor pairs of unseen digits")
for target in (1e-2, 1e-3):
    t, threshold = tar_at(far, tar, thresholds, target)
    print(f"TAR @ FAR={target:g}: {t:.3f}  (accept a pair when cosine >= {threshold:.3f})")


def eer_of(far, tar):
    k = np.argmin(np.abs(far - (1 - tar)))  # the point where FAR and FRR = 1 - TAR are closest
    return (far[k] + 1 - tar[k]) / 2


print(f"EER: {eer_of(far, tar):.3f}")

# %% [markdown]
# The closed-set accuracy was about 0.99, but unseen digits are another story. The TAR at FAR $10^{-2}$ comes out
# around 0.2: even at a threshold that lets in 1% of the impostor pairs (a cosine of about 0.7), only about one genuine
# pair in five gets through. The EER is around 0.3. The next section shows how bad that is by setting it beside two
# baselines.

# %% [markdown]
# <h2 id="compare-with-softmax">Against plain softmax and two baselines</h2>
#
# The same backbone is trained with a linear classifier (with bias, no normalization, no margin) and cross-entropy,
# that is, a plain softmax (labeled "softmax" in the table and the figure), and is measured the same way. Next to it are
# two baselines that learn nothing: the 64 raw pixels used as the embedding (pixels), and the ArcFace model at its
# initial weights, before its first step (untrained). The cell prints the TAR@FAR and the EER of all four as a table and
# draws their ROC curves in one figure (the baselines dotted).
#
# The result first: of the two trained models, ArcFace is far better than softmax. But the raw pixels come out best,
# and even the untrained network beats ArcFace on all three metrics (narrowly on the TAR at FAR $10^{-3}$).
#
# The [digits study](../experiments/#digits-results), which runs every method over three seeds, finds the same order in
# its means: on the unseen digits, the TAR at FAR $10^{-2}$ is 0.40 for the pixels and 0.25 for the untrained MLP,
# while among the trained embeddings the best, NormFace, reaches 0.22, ArcFace 0.18 and softmax 0.07. With six
# classes, a network seems to learn just the directions that tell those six apart and to throw away what would tell
# unseen digits apart.
#
# Angular margins earn their keep with many training classes, as in face recognition. In the
# [Hangul syllable study](../experiments/#glyph-study), which verifies syllables never seen in training, ArcFace beat
# NormFace on all three seeds of the main study (1,500 training syllables) and, in the
# [sweep over the number of training syllables](../experiments/#glyph-studies) (one seed), was slightly ahead from 50
# syllables up.
#
# <!-- alt: ROC curves of ArcFace, softmax, the raw pixels and the untrained network on the unseen digits 6–9: true
# accept rate against false accept rate on a logarithmic axis, the two baselines dotted. Until the curves meet at the
# right edge, where the false accept rate nears 1, they run from top to bottom: raw pixels, untrained network, ArcFace,
# softmax. -->


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
train(softmax, F.cross_entropy, X_train, y_train)


class Pixels(nn.Module):
    """Baseline: the raw pixels are the embedding (no parameters, no training)."""

    def embed(self, x):
        return F.normalize(x, dim=1)


torch.manual_seed(0)
untrained = ArcFaceModel(embedding_size=32, num_classes=6)  # baseline: the ArcFace network before its first step

fig, ax = plt.subplots(figsize=(4.5, 3.5))
print("           TAR @ FAR=0.01  TAR @ FAR=0.001   EER")  # the labels of the cell above
for name, model in [("pixels", Pixels()), ("untrained", untrained), ("softmax", softmax), ("ArcFace", arcface)]:
    far, tar, thresholds, _ = verification(model)
    tar2, tar3 = (tar_at(far, tar, thresholds, target)[0] for target in (1e-2, 1e-3))
    print(f"{name:10s} {tar2:14.3f}  {tar3:15.3f}  {eer_of(far, tar):.3f}")
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
#   move. `M = 0` gives NormFace, with no margin. This guide's `arcface_logits` restricts $m$ to $[0, \pi/2)$ and
#   raises a `ValueError` outside it: not a limit from the paper, but a range on which the switch to the
#   [fallback](../arcface/#fallback) provably never makes the target logit jump up, because $\cos m + m\sin m \ge 1$
#   there (the inequality itself holds up to $m \approx 2.33$).
# - Import `cosface_logits` from `margins.py` and use it in `arcface_loss` in place of `arcface_logits` to get
#   CosFace; set `M` to the CosFace paper's value, 0.35.
# - Change the embedding size of the 2-D model `tiny` from 2 to 3 to see the distribution on the unit sphere. In the
#   plotting cell, make the axes with `ax = plt.figure(figsize=(5, 5)).add_subplot(projection="3d")`, delete the
#   `ax.add_patch(...)` line that draws the circle, and give the center segments a third coordinate,
#   `[0, centers[c, 2]]`; the scatter call already passes all three coordinates and needs no change.
