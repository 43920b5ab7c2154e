"""Every method's head, built from the reader-facing snippets (snippets/pytorch/*.py), behind one interface.

A head maps (embeddings, labels) to the training loss (`loss`), scores embeddings against its classes
(`scores`, for the per-epoch held-out accuracy) and exposes its class directions (`directions`, [C, D]).
The batch-hard triplet loss has no classes: its `scores` and `directions` are None.
"""

import math

import torch.nn.functional as F
from snippet_loader import load_snippet
from torch import nn

METHODS = (
    "softmax",
    "normface",
    "sphereface",
    "cosface",
    "arcface",
    "combined",
    "adaface",
    "curricularface",
    "subcenter",
    "triplet",
    "keras-arcface",
)
# The paper-default margin of each method (no method is tuned; see the Experiments page).
DEFAULT_MARGINS = {
    "sphereface": {"m": 4},
    "cosface": {"m": 0.35},
    "arcface": {"m": 0.5},
    "keras-arcface": {"m": 0.5},
    "combined": {"m1": 1.0, "m2": 0.3, "m3": 0.2},
    "adaface": {"m": 0.4, "h": 0.333, "t_alpha": 0.01},
    "curricularface": {"m": 0.5, "momentum": 0.01},
    "subcenter": {"m": 0.5, "k": 3},
    "triplet": {"margin": 0.2},
}
MARGIN_KEY = {"combined": "m2", "triplet": "margin"}  # which hyperparameter --m / the margin sweep sets
SNIPPET_FILES = {
    "softmax": [],
    "normface": ["pytorch/margins.py"],
    "sphereface": ["pytorch/margins.py"],
    "cosface": ["pytorch/margins.py"],
    "arcface": ["pytorch/margins.py"],
    "combined": ["pytorch/margins.py"],
    "adaface": ["pytorch/adaface.py"],
    "curricularface": ["pytorch/curricularface.py"],
    "subcenter": ["pytorch/subcenter.py"],
    "triplet": ["pytorch/triplet.py"],
    "keras-arcface": ["keras/margins.py"],
}


def adacos_scale(num_classes: int) -> float:
    """The fixed AdaCos scale s = √2 · ln(C − 1) (Zhang et al., 2019, eq. 15)."""
    if num_classes < 3:
        raise ValueError(f"the AdaCos scale needs at least 3 classes, got {num_classes}")
    return math.sqrt(2.0) * math.log(num_classes - 1)


def _normalized(embeddings, weight):
    return F.normalize(embeddings, eps=1e-12) @ F.normalize(weight, eps=1e-12).T


class SoftmaxHead(nn.Module):
    """Plain softmax: a linear layer with bias on the raw embedding."""

    def __init__(self, embedding_size, num_classes):
        super().__init__()
        self.linear = nn.Linear(embedding_size, num_classes)

    def loss(self, embeddings, labels, fraction=1.0):  # no margin: nothing to warm up
        return F.cross_entropy(self.linear(embeddings), labels)

    def scores(self, embeddings):
        return self.linear(embeddings)

    def directions(self):
        return self.linear.weight


def warm(logits, cosine, s, fraction):
    """The margin warm-up: (1 - f)·s·cos θ + f·(the method's logits), f rising from 0 to 1 (train.py). This is
    SphereFace's annealing, (λ·cos θ + ψ(θ)) / (1 + λ) with f = 1 / (1 + λ), applied to every margin head."""
    return logits if fraction >= 1 else fraction * logits + (1 - fraction) * s * cosine


class MarginHead(nn.Module):
    """Cosine classifier (margins.py) + one of its margin functions + cross-entropy."""

    def __init__(self, embedding_size, num_classes, logits_fn, s):
        super().__init__()
        self.classifier = load_snippet("pytorch/margins.py").CosineClassifier(embedding_size, num_classes)
        self.logits_fn, self.s = logits_fn, s

    def loss(self, embeddings, labels, fraction=1.0):
        cosine = self.classifier(embeddings)
        return F.cross_entropy(warm(self.logits_fn(cosine, labels), cosine, self.s, fraction), labels)

    def scores(self, embeddings):
        return self.classifier(embeddings)

    def directions(self):
        return self.classifier.weight


class LogitsModuleHead(nn.Module):
    """A snippet module that holds its own class centers and returns logits: AdaFace, CurricularFace."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def loss(self, embeddings, labels, fraction=1.0):
        logits = self.module(embeddings, labels)  # first: the module updates its running state
        if fraction < 1:
            logits = warm(logits, _normalized(embeddings, self.module.weight), self.module.s, fraction)
        return F.cross_entropy(logits, labels)

    def scores(self, embeddings):
        return _normalized(embeddings, self.module.weight)

    def directions(self):
        return self.module.weight


class SubCenterHead(nn.Module):
    """Sub-center ArcFace (subcenter.py): SubCenterCosineClassifier + SubCenterArcFaceLoss; a class scores by its
    nearest sub-center."""

    def __init__(self, embedding_size, num_classes, num_subcenters, s, m):
        super().__init__()
        subcenter = load_snippet("pytorch/subcenter.py")
        self.classifier = subcenter.SubCenterCosineClassifier(embedding_size, num_classes, num_subcenters)
        self.criterion = subcenter.SubCenterArcFaceLoss(num_subcenters, s=s, m=m)
        self.logits_fn = subcenter.subcenter_arcface_logits
        self.k, self.s, self.m = num_subcenters, s, m

    def loss(self, embeddings, labels, fraction=1.0):
        cos = self.classifier(embeddings)
        if fraction >= 1:
            return self.criterion(cos, labels)
        logits = self.logits_fn(cos, labels, self.k, self.s, self.m)
        nearest = cos.view(len(cos), -1, self.k).amax(dim=2)  # a class's cosine: its nearest sub-center
        return F.cross_entropy(warm(logits, nearest, self.s, fraction), labels)

    def scores(self, embeddings):
        cos = self.classifier(embeddings)
        return cos.view(len(cos), -1, self.k).amax(dim=2)

    def directions(self):
        w = self.classifier.weight
        return w.view(-1, self.k, w.shape[1])[:, 0]


class TripletHead(nn.Module):
    """Batch-hard triplet loss (triplet.py) on the unit sphere; the margin is then a chord length in [0, 2]."""

    def __init__(self, margin):
        super().__init__()
        self.margin = margin
        self.triplet = load_snippet("pytorch/triplet.py")

    def loss(self, embeddings, labels, fraction=1.0):  # its margin is a distance: kept from the start
        return self.triplet.batch_hard_triplet_loss(F.normalize(embeddings), labels, self.margin)

    scores = directions = None


def make_head(method: str, embedding_size: int, num_classes: int, s: float, hp: dict) -> nn.Module:
    """The head of one method, its hyperparameters from `hp` (see DEFAULT_MARGINS)."""
    if method == "softmax":
        return SoftmaxHead(embedding_size, num_classes)
    if method == "triplet":
        return TripletHead(hp["margin"])
    if method == "adaface":
        module = load_snippet("pytorch/adaface.py").AdaFaceHead
        return LogitsModuleHead(module(embedding_size, num_classes, s=s, m=hp["m"], h=hp["h"], t_alpha=hp["t_alpha"]))
    if method == "curricularface":
        module = load_snippet("pytorch/curricularface.py").CurricularFaceHead
        return LogitsModuleHead(module(embedding_size, num_classes, s=s, m=hp["m"], momentum=hp["momentum"]))
    if method == "subcenter":
        return SubCenterHead(embedding_size, num_classes, hp["k"], s, hp["m"])
    margins = load_snippet("pytorch/margins.py")
    logits_fn = {
        "normface": lambda c, y: margins.normface_logits(c, y, s),
        "sphereface": lambda c, y: margins.sphereface_logits(c, y, s, m=hp["m"]),
        "cosface": lambda c, y: margins.cosface_logits(c, y, s, m=hp["m"]),
        "arcface": lambda c, y: margins.arcface_logits(c, y, s, m=hp["m"]),
        "combined": lambda c, y: margins.combined_margin_logits(c, y, s, hp["m1"], hp["m2"], hp["m3"]),
    }.get(method)
    if logits_fn is None:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    return MarginHead(embedding_size, num_classes, logits_fn, s)
