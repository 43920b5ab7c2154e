"""The training loop: one run is a pure function of its config, `train_run(config, data) -> results`.

Two studies share it. The digits study (digits.py) trains an MLP on 6 or 10 digit classes; the glyph study
(glyphs.py) trains a small CNN on 1,500 Hangul syllables and verifies 400 others in typefaces never seen.
Every run is seeded and single-threaded (torch.set_num_threads(1): results differ in the last digits between
one and two threads), so a run gives the same numbers in any process. For one seed, every method of a study
starts from the same backbone weights and sees the same batches in the same order with the same distortions.
"""

import contextlib
import hashlib
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from architectures import build_torch
from heads import make_head
from metrics import (
    distance_histograms,
    nearest_centroid_accuracy,
    nearest_neighbors,
    pca_2d,
    pk_batches,
    verification_metrics,
)


@contextlib.contextmanager
def deterministic(seed: int):
    """Seeded and single-threaded torch inside, the caller's global torch state restored after. One thread makes
    a run a pure function of its config on CPU (tests/test_experiments.py runs one twice); with two threads the
    results differ in the last digits. (torch.use_deterministic_algorithms is not needed on CPU with one thread,
    and made a glyph step about 40 % slower.)"""
    threads = torch.get_num_threads()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def lr_at(step: int, total: int, lr: float, warmup: float = 0.0) -> float:
    """Linear warm-up over the first `warmup` fraction of the steps, then cosine decay from lr to 0."""
    w = int(warmup * total)
    if step < w:
        return lr * (step + 1) / w
    return lr * 0.5 * (1.0 + math.cos(math.pi * (step - w) / max(total - w, 1)))


def margin_fraction(step: int, total: int, warmup: float) -> float:
    """How much of its margin a head uses at `step`: rising linearly from 0 to 1 over the first `warmup`
    fraction of the steps (heads.warm). Without it, ArcFace at 1,500 classes and s ≈ 10 hardly learns in a
    short schedule (the Experiments page shows the run)."""
    w = warmup * total
    return 1.0 if step >= w else step / w


def run_results(*, config: dict, curves: dict, train_seconds: float, metrics: dict, **figures) -> dict:
    """The results record of one run, the same for every study and both frameworks."""
    return {"config": config, "curves": curves, "train_seconds": round(train_seconds, 2), "metrics": metrics, **figures}


def train_run(config: dict, data: dict, progress=None) -> dict:
    """Train one config: a digits run (config["study"] == "digits") or a glyph run."""
    with deterministic(config["seed"]):
        if config["study"] == "digits":
            return _digits_run(config, data, progress)
        return _glyph_run(config, data, progress)


# --- the digits study -------------------------------------------------------------------------------------
def digits_evaluation(config, data, embed, curves, before, start, head=None, classes=None) -> dict:
    """What a digits run reports (shared by the PyTorch runs and the Keras ArcFace run)."""
    y = data["y"]
    train_idx, held_idx = data[config["split"]]
    if config["split"] == "closed":
        metrics = {"closed_set_accuracy": curves["held_out_accuracy"][-1]}
        return run_results(config=config, curves=curves, train_seconds=time.perf_counter() - start, metrics=metrics)
    unseen = data["unseen"]
    unseen_emb = embed(unseen)
    groups = {"seen": held_idx, "unseen": unseen}
    figures = {
        "distances": {
            g: {"before": before[g], "after": distance_histograms(embed(idx), y[idx])} for g, idx in groups.items()
        },
        "unseen_pca": {"xy": np.round(pca_2d(unseen_emb), 4).tolist(), "labels": y[unseen].tolist()},
    }
    if config["embedding_size"] == 2 and head is not None:
        figures["toy2d"] = {
            "angles": np.round(np.arctan2(*embed(held_idx).T[::-1]), 5).tolist(),
            "labels": y[held_idx].tolist(),
            "class_angles": np.round(np.arctan2(*head.directions().detach().numpy().T[::-1]), 5).tolist(),
            "classes": classes.tolist(),
        }
    metrics = verification_metrics(unseen_emb, y[unseen])
    return run_results(
        config=config, curves=curves, train_seconds=time.perf_counter() - start, metrics=metrics, **figures
    )


def _digits_run(config, data, progress):
    rng = np.random.default_rng(config["seed"])
    x, y = data["x"], data["y"]
    train_idx, held_idx = data[config["split"]]
    classes = np.unique(y[train_idx])  # labels are remapped to 0..C-1 inside the run
    remap = np.full(10, -1)
    remap[classes] = np.arange(len(classes))
    xt, yt = torch.from_numpy(x), torch.from_numpy(remap[y].clip(0))

    backbone = build_torch("mlp", (64,), config["embedding_size"])
    head = make_head(config["method"], config["embedding_size"], len(classes), config["s"], config["hp"])
    optimizer = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=config["lr"], eps=1e-7)

    def embed(idx):
        backbone.eval()
        with torch.no_grad():
            return backbone(xt[idx]).numpy()

    def held_out_accuracy():
        if head.scores is None:
            return nearest_centroid_accuracy(embed(train_idx), y[train_idx], embed(held_idx), y[held_idx])
        with torch.no_grad():
            scores = head.scores(torch.from_numpy(embed(held_idx)))
        return float(np.mean(classes[scores.argmax(dim=1).numpy()] == y[held_idx]))

    groups = {"seen": held_idx, "unseen": data["unseen"]}
    before = {g: distance_histograms(embed(i), y[i]) for g, i in groups.items()} if config["split"] == "open" else None
    steps = len(train_idx) // (len(classes) * config["k"])
    total = steps * config["epochs"]
    curves = {"train_loss": [], "held_out_accuracy": []}
    start = time.perf_counter()
    for epoch in range(config["epochs"]):
        backbone.train()
        losses = []
        for b, batch in enumerate(pk_batches(y[train_idx], steps, len(classes), config["k"], rng)):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch * steps + b, total, config["lr"])
            idx = torch.from_numpy(train_idx[batch])
            loss = head.loss(backbone(xt[idx]), yt[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        curves["train_loss"].append(float(np.mean(losses)))
        curves["held_out_accuracy"].append(held_out_accuracy())
        if progress:
            progress(epoch + 1, config["epochs"])
    return digits_evaluation(config, data, embed, curves, before, start, head, classes)


# --- the glyph study --------------------------------------------------------------------------------------
def glyph_batches(data: dict, config: dict) -> list:
    """(face, syllable, variant) index arrays of every batch: P syllables × K training faces each, and which of
    the pool's distortions of each image, all from the run's seed."""
    rng = np.random.default_rng(config["seed"])
    syllables = data["train_syl"][: config["classes"]]
    faces = data["train_faces"]
    labels = np.repeat(syllables, len(faces))  # one entry per (syllable, face) image
    face_of = np.tile(faces, len(syllables))
    out = []
    for batch in pk_batches(labels, config["steps"], config["p"], config["k"], rng):
        out.append((face_of[batch], labels[batch], rng.integers(0, POOL_VARIANTS, len(batch))))
    return out


def distort(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random affine map (rotation ±8.6°, scale ±10 %, shear ±0.15, shift ±4 % of the image side) and stroke-weight
    jitter (a blend towards a 3×3 dilation or erosion) per image; the same `generator` state gives the same images."""
    b = len(x)
    u = torch.rand(b, 6, generator=generator) * 2 - 1
    angle, scale, shear, shift = u[:, 0] * 0.15, 1 + u[:, 1] * 0.1, u[:, 2] * 0.15, u[:, 3:5] * 0.08
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, align_corners=False)
    a = (u[:, 5] * 0.5).view(b, 1, 1, 1)
    thick = torch.nn.functional.max_pool2d(x, 3, 1, 1)
    thin = -torch.nn.functional.max_pool2d(-x, 3, 1, 1)
    return torch.where(a > 0, x + a * (thick - x), x + a * (x - thin))


def glyph_images(data, faces, syllables) -> torch.Tensor:
    return torch.from_numpy(data["images"][faces, syllables][:, None].astype(np.float32) / 255.0)


POOL_VARIANTS, POOL_SEED, POOL_CHUNK = 4, 2024, 4096
POOL_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "glyphs"


def pool_path(data: dict) -> Path:
    """Where the training pool of this data set is cached (keyed by the data and this file)."""
    key = hashlib.sha256((data["fingerprint"]["key"] + Path(__file__).read_text()).encode()).hexdigest()[:16]
    return POOL_CACHE / f"pool-{key}.npy"


def pool_variant(data: dict, variant: int) -> np.ndarray:
    """uint8 [training faces, training syllables, size, size]: every training image in one fixed random
    distortion, from its own seed (so the variants can be made in any order, by any process)."""
    faces, syllables = np.meshgrid(data["train_faces"], data["train_syl"], indexing="ij")
    faces, syllables = faces.ravel(), syllables.ravel()
    out = np.empty((len(faces), *data["images"].shape[2:]), np.uint8)
    with deterministic(POOL_SEED + variant), torch.no_grad():
        generator = torch.Generator().manual_seed(POOL_SEED + variant)
        for i in range(0, len(faces), POOL_CHUNK):
            x = distort(glyph_images(data, faces[i : i + POOL_CHUNK], syllables[i : i + POOL_CHUNK]), generator)
            out[i : i + POOL_CHUNK] = (x[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return out.reshape(len(data["train_faces"]), data["n_train"], *data["images"].shape[2:])


def save_pool(data: dict, variants: list) -> Path:
    path = pool_path(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, np.stack(variants))
    tmp.replace(path)  # whole or not at all
    return path


def training_pool(data: dict) -> np.ndarray:
    """uint8 [POOL_VARIANTS, training faces, training syllables, size, size]: every training image in
    POOL_VARIANTS fixed random distortions, made once per data set (distorting each batch anew cost a quarter of
    a training step); a run draws one of them for each image of each batch, from its seed. Memory-mapped from
    the cache, so worker processes share one copy; runner.py makes the variants in parallel before the runs."""
    pool = cached_pool(data)
    if pool is None:
        save_pool(data, [pool_variant(data, v) for v in range(POOL_VARIANTS)])
        pool = cached_pool(data)
    return pool


def cached_pool(data: dict):
    """The cached pool, memory-mapped, or None when it is missing or unreadable (then it is made again)."""
    shape = (POOL_VARIANTS, len(data["train_faces"]), data["n_train"], *data["images"].shape[2:])
    try:
        pool = np.load(pool_path(data), mmap_mode="r")
    except (OSError, ValueError):
        return None
    return pool if pool.shape == shape and pool.dtype == np.uint8 else None


def pool_images(data: dict, pool: np.ndarray, faces, syllables, variants) -> torch.Tensor:
    """float32 [B, 1, size, size] images of a batch from the pool."""
    position = np.empty(len(data["images"]), np.int64)
    position[data["train_faces"]] = np.arange(len(data["train_faces"]))
    return torch.from_numpy(pool[variants, position[faces], syllables][:, None].astype(np.float32) / 255.0)


EVAL_SEED = 12345  # the one fixed distortion of every evaluation image, the same for every run


EVAL_FACES_PER_FAMILY = 2  # held-out faces scored: the first two of each held-out family (11 faces)


def eval_sets(data: dict) -> dict:
    """Unseen syllables in up to EVAL_FACES_PER_FAMILY faces of every held-out family (the headline), and in
    5 of the training faces."""

    def grid(faces):
        f, s = np.meshgrid(faces, data["unseen_syl"], indexing="ij")
        return f.ravel(), s.ravel()

    held, taken = [], {}
    for face in data["held_faces"]:
        family = data["families"][face]
        if taken.get(family, 0) < EVAL_FACES_PER_FAMILY:
            held.append(face)
            taken[family] = taken.get(family, 0) + 1
    return {"held_out_faces": grid(np.array(held)), "training_faces": grid(data["train_faces"][::10][:5])}


def eval_images(data: dict, faces, syllables) -> torch.Tensor:
    """Evaluation images: each rendering with one fixed random distortion, like a photograph of the syllable."""
    with torch.no_grad():
        return distort(glyph_images(data, faces, syllables), torch.Generator().manual_seed(EVAL_SEED))


def glyph_evaluation(config, data, embed, curves, start) -> dict:
    """Verification on both evaluation sets, plus the gallery and the 2-D view of a few unseen syllables."""
    metrics, figures = {}, {}
    for name, (faces, syllables) in eval_sets(data).items():
        emb = embed(faces, syllables)
        metrics[name] = verification_metrics(emb, syllables)
        if name == "held_out_faces":
            queries = np.arange(0, len(faces), len(faces) // GALLERY_QUERIES)[:GALLERY_QUERIES]
            near = nearest_neighbors(emb, queries, GALLERY_NEIGHBORS)
            figures["gallery"] = {
                "queries": [[int(faces[q]), int(syllables[q])] for q in queries],
                "neighbors": [[[int(faces[j]), int(syllables[j])] for j in row] for row in near],
            }
            shown = np.isin(syllables, data["unseen_syl"][:PCA_SYLLABLES])
            figures["unseen_pca"] = {
                "xy": np.round(pca_2d(emb[shown]), 4).tolist(),
                "labels": syllables[shown].tolist(),
            }
    return run_results(
        config=config, curves=curves, train_seconds=time.perf_counter() - start, metrics=metrics, **figures
    )


GALLERY_QUERIES, GALLERY_NEIGHBORS, PCA_SYLLABLES = 6, 5, 8


def _glyph_run(config, data, progress):
    size = data["images"].shape[-1]
    backbone = build_torch("cnn", (1, size, size), config["embedding_size"])  # first: same weights per seed
    head = make_head(config["method"], config["embedding_size"], config["classes"], config["s"], config["hp"])
    optimizer = torch.optim.Adam(list(backbone.parameters()) + list(head.parameters()), lr=config["lr"])
    pool = training_pool(data)
    remap = np.full(len(data["syllables"]), -1)
    remap[data["train_syl"][: config["classes"]]] = np.arange(config["classes"])
    batches = glyph_batches(data, config)
    curves, losses, every = {"train_loss": []}, [], max(1, config["steps"] // 20)
    start = time.perf_counter()
    backbone.train()
    for step, (faces, syllables, variants) in enumerate(batches):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config["steps"], config["lr"], warmup=0.1)
        x = pool_images(data, pool, faces, syllables, variants)
        fraction = margin_fraction(step, config["steps"], config["margin_warmup"])
        loss = head.loss(backbone(x), torch.from_numpy(remap[syllables]), fraction)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % every == 0:
            curves["train_loss"].append(float(np.mean(losses[-every:])))
            if progress:
                progress(step + 1, config["steps"])

    def embed(faces, syllables):
        backbone.eval()
        with torch.no_grad():
            x = eval_images(data, faces, syllables)
            return torch.cat([backbone(x[i : i + 2000]) for i in range(0, len(x), 2000)]).numpy()

    return glyph_evaluation(config, data, embed, curves, start)


# --- baselines --------------------------------------------------------------------------------------------
def digits_baseline(data: dict, kind: str, seed: int = 0, embedding_size: int = 32) -> dict:
    """Scores without training: "pixels" (raw pixels as the embedding) or "untrained" (the MLP at its
    initialization). Closed-set accuracy by nearest class mean."""
    x, y = data["x"], data["y"]
    (train, test), unseen = data["closed"], data["unseen"]
    if kind == "pixels":
        features = x
    elif kind == "untrained":
        with deterministic(seed), torch.no_grad():
            features = build_torch("mlp", (64,), embedding_size).eval()(torch.from_numpy(x)).numpy()
    else:
        raise ValueError(f"unknown baseline {kind!r}: choose pixels or untrained")
    results = verification_metrics(features[unseen], y[unseen])
    results["closed_set_accuracy"] = nearest_centroid_accuracy(features[train], y[train], features[test], y[test])
    return results


def glyph_baseline(data: dict, kind: str, seed: int = 0, embedding_size: int = 128) -> dict:
    """Raw pixels or the untrained CNN (seeded like the trained runs) on both evaluation sets."""
    size = data["images"].shape[-1]
    if kind not in ("pixels", "untrained"):
        raise ValueError(f"unknown baseline {kind!r}: choose pixels or untrained")
    out = {}
    with deterministic(seed), torch.no_grad():
        backbone = build_torch("cnn", (1, size, size), embedding_size).eval()
        for name, (faces, syllables) in eval_sets(data).items():
            x = eval_images(data, faces, syllables)
            features = x.flatten(1).numpy() if kind == "pixels" else backbone(x).numpy()
            out[name] = verification_metrics(features, syllables)
    return out
