"""How every run of the Experiments page is fed and scored: P×K batches, and verification over every pair.

- `pk_batches`: class-balanced batches, P classes × K images each, as triplet mining and the margin heads need.
- `verification_metrics`: the face-verification protocol on a set of embeddings whose identities were never seen
  in training. Every unordered pair of images is scored by the cosine of their embeddings; a pair is accepted
  when its score is at least the threshold τ. Genuine pairs share a label, impostor pairs do not.
  TAR@FAR=f  the largest fraction of genuine pairs accepted at any τ that accepts at most a fraction f of the
             impostor pairs (ties: a threshold accepts every pair of its score, so equal scores go together);
  EER        (FAR + FRR) / 2 at the threshold where FAR = false accepts and FRR = false rejects are closest
             (the lower threshold when two are equally close);
  Recall@1   the fraction of images whose best-scoring other image is genuine, strictly: a tie between a genuine
             and an impostor neighbor counts as a miss.
These are the verification measures of face recognition benchmarks such as LFW (Huang et al., 2007) and IJB-C
(Maze et al., 2018), with the tie rules spelled out. Only numpy.
"""

import numpy as np

# --8<-- [start:verification_metrics]
FAR_GRID = np.logspace(-5, 0, 51)  # where every run samples its ROC, so that seeds can be averaged


def unit(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def pair_scores(embeddings: np.ndarray, labels: np.ndarray, block: int = 512):
    """Cosine scores of every unordered pair, split into genuine and impostor pairs, plus each image's best
    genuine and best impostor neighbor score (for Recall@1). Images are sorted by label first, so an image's
    genuine partners are one contiguous run of columns; rows go in blocks so memory stays O(block · N).
    Scores are rounded to 9 decimals, so that pairs at equal angles tie however the dot product was summed."""
    order = np.argsort(labels, kind="stable")
    e = unit(np.asarray(embeddings, dtype=np.float64)[order])
    labels = np.asarray(labels)[order]
    n = len(labels)
    lo = np.searchsorted(labels, labels, side="left")  # the run of an image's label: columns lo..hi-1
    hi = np.searchsorted(labels, labels, side="right")
    genuine, impostor = [], []
    best_genuine, best_impostor = np.full(n, -np.inf), np.full(n, -np.inf)
    for start in range(0, n, block):
        sim = np.round(e[start : start + block] @ e.T, 9)  # [block, n]
        for r, row in enumerate(sim, start):
            genuine.append(row[r + 1 : hi[r]])  # each unordered pair once, never an image with itself
            impostor.append(row[hi[r] :])
            row[r] = -np.inf  # an image may not retrieve itself
            best_genuine[r] = row[lo[r] : hi[r]].max()
            best_impostor[r] = max(row[: lo[r]].max(initial=-np.inf), row[hi[r] :].max(initial=-np.inf))
    return np.concatenate(genuine), np.concatenate(impostor), best_genuine, best_impostor


def tar_at_far(genuine_sorted: np.ndarray, impostor_sorted: np.ndarray, fars) -> np.ndarray:
    """TAR at each FAR: allow n = floor(f · #impostors) false accepts; the threshold must lie above the (n+1)-th
    largest impostor score v, so the genuine pairs accepted are those scoring strictly above v."""
    n_false = np.floor(np.asarray(fars) * len(impostor_sorted) + 1e-9).astype(np.int64)
    inside = n_false < len(impostor_sorted)  # f = 1 accepts everything
    v = impostor_sorted[len(impostor_sorted) - 1 - n_false[inside]]  # the (n+1)-th largest impostor score
    tar = np.ones(len(n_false))
    tar[inside] = 1.0 - np.searchsorted(genuine_sorted, v, side="right") / len(genuine_sorted)
    return tar


def equal_error_rate(genuine_sorted: np.ndarray, impostor_sorted: np.ndarray) -> float:
    """EER over every candidate threshold (every score, and +inf). D(t) = FAR(t) - FRR(t) never increases with
    t, so the best threshold is one of the two candidates around the sign change of D."""
    n_g, n_i = len(genuine_sorted), len(impostor_sorted)

    def rates(t):  # accept score >= t
        far = (n_i - np.searchsorted(impostor_sorted, t, side="left")) / n_i
        frr = np.searchsorted(genuine_sorted, t, side="left") / n_g
        return far, frr

    candidates = []
    for scores in (genuine_sorted, impostor_sorted):
        lo, hi = 0, len(scores)  # first index whose threshold gives D < 0
        while lo < hi:
            mid = (lo + hi) // 2
            far, frr = rates(scores[mid])
            lo, hi = (mid + 1, hi) if far - frr >= 0 else (lo, mid)
        candidates += [scores[i] for i in (lo - 1, lo) if 0 <= i < len(scores)]
    candidates.append(np.inf)
    best = min(sorted(candidates), key=lambda t: abs(np.subtract(*rates(t))))  # ties: the lower threshold
    return float(np.mean(rates(best)))


def verification_metrics(embeddings: np.ndarray, labels: np.ndarray) -> dict:
    """TAR@FAR, EER, Recall@1 and the ROC on FAR_GRID, over every pair of `embeddings` (cosine score)."""
    labels = np.asarray(labels)
    if len(embeddings) != len(labels) or len(np.unique(labels)) < 2:
        raise ValueError("need one label per embedding and at least two identities")
    genuine, impostor, best_genuine, best_impostor = pair_scores(embeddings, labels)
    if len(genuine) == 0:
        raise ValueError("no genuine pairs: every identity needs at least two images")
    genuine.sort()
    impostor.sort()
    roc = tar_at_far(genuine, impostor, FAR_GRID)
    return {
        "tar_at_far_1e-2": float(tar_at_far(genuine, impostor, [1e-2])[0]),
        "tar_at_far_1e-3": float(tar_at_far(genuine, impostor, [1e-3])[0]),
        "eer": equal_error_rate(genuine, impostor),
        "recall_at_1": float(np.mean(best_genuine > best_impostor)),
        "roc_tar": [round(float(t), 6) for t in roc],
        "pairs": {"genuine": len(genuine), "impostor": len(impostor)},
    }


# --8<-- [end:verification_metrics]


# --8<-- [start:pk_batches]
def pk_batches(labels: np.ndarray, steps: int, p: int, k: int, rng: np.random.Generator) -> list:
    """`steps` batches of P random classes × K random images of each (indices into `labels`)."""
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    if p > len(by_class) or min(len(i) for i in by_class) < k:
        raise ValueError(f"need at least {p} classes with at least {k} images each")
    batches = []
    for _ in range(steps):
        chosen = rng.choice(len(by_class), size=p, replace=False)
        batches.append(np.concatenate([rng.choice(by_class[c], size=k, replace=False) for c in chosen]))
    return batches


# --8<-- [end:pk_batches]


if __name__ == "__main__":
    # Four images of two identities on a circle: scores are cosines of the angles between them.
    angles = np.array([0.0, 0.3, 1.0, 1.2])
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.array([0, 0, 1, 1])
    metrics = verification_metrics(embeddings, labels)
    print({k: metrics[k] for k in ("tar_at_far_1e-2", "eer", "recall_at_1", "pairs")})
    # genuine cosines cos 0.3, cos 0.2; impostors cos 1.0, cos 1.2, cos 0.7, cos 0.9: every genuine pair
    # scores above every impostor, so TAR = 1 at any FAR, EER = 0 and Recall@1 = 1.
    print([len(b) for b in pk_batches(labels, steps=2, p=2, k=2, rng=np.random.default_rng(0))])
