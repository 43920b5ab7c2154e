"""The Keras ArcFace runs: the same declared backbone, data, batches, optimizer and schedule as the PyTorch runs.

Keras fixes its backend once per process, so runner.py starts this file as a child process with
KERAS_BACKEND=torch. It reads a JSON list of {"config": ..., "out": path} from stdin, trains each run and writes
its results JSON (the same fields as train.train_run) to `out`. Weights start from Keras' own initialisers, so a
Keras run matches its PyTorch twin in distribution, not number for number.
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ["KERAS_BACKEND"] = "torch"  # one backend per process; the torch one shares the PyTorch runs' threads
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests")]

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from architectures import build_keras  # noqa: E402
from metrics import distance_histograms, pk_batches  # noqa: E402
from runner import load_data  # noqa: E402
from snippet_loader import load_snippet  # noqa: E402
from train import (  # noqa: E402
    digits_evaluation,
    eval_images,
    glyph_batches,
    glyph_evaluation,
    lr_at,
    margin_fraction,
    pool_images,
    training_pool,
)


def arcface_model(config, input_shape, num_classes):
    margins = load_snippet("keras/margins.py")
    arch = "mlp" if config["study"] == "digits" else "cnn"
    embedder = build_keras(arch, input_shape, config["embedding_size"])
    cosines = margins.CosineClassifier(config["embedding_size"], num_classes)(embedder.output)
    model = keras.Model(embedder.input, cosines)
    optimizer = keras.optimizers.Adam(config["lr"], epsilon=1e-7 if config["study"] == "digits" else 1e-8)
    model.compile(optimizer=optimizer, loss=warm_margin_loss(margins)("arcface", s=config["s"], m=config["hp"]["m"]))
    return model, embedder


def warm_margin_loss(margins):
    """The snippet's MarginLoss with the margin warm-up of heads.warm: (1 - f)·s·cos θ + f·(its logits)."""

    class WarmMarginLoss(margins.MarginLoss):
        fraction = 1.0  # set before each step (Keras runs the torch backend eagerly: read at every call)

        def call(self, y_true, y_pred):
            if self.fraction >= 1:
                return super().call(y_true, y_pred)
            labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
            logits = self.margin_logits(y_pred, labels, **self.margin_args)
            logits = self.fraction * logits + (1 - self.fraction) * self.margin_args["s"] * y_pred
            return keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    return WarmMarginLoss


def keras_digits_run(config: dict, data: dict) -> dict:
    rng = np.random.default_rng(config["seed"])
    x, y = data["x"], data["y"]
    train_idx, held_idx = data[config["split"]]
    classes = np.unique(y[train_idx])
    remap = np.full(10, -1)
    remap[classes] = np.arange(len(classes))
    model, embedder = arcface_model(config, (64,), len(classes))
    steps = len(train_idx) // (len(classes) * config["k"])

    def embed(idx):
        return keras.ops.convert_to_numpy(embedder(x[idx], training=False))

    groups = {"seen": held_idx, "unseen": data["unseen"]}
    before = {g: distance_histograms(embed(i), y[i]) for g, i in groups.items()} if config["split"] == "open" else None
    curves = {"train_loss": [], "held_out_accuracy": []}
    start = time.perf_counter()
    for epoch in range(config["epochs"]):
        losses = []
        for b, batch in enumerate(pk_batches(y[train_idx], steps, len(classes), config["k"], rng)):
            model.optimizer.learning_rate.assign(lr_at(epoch * steps + b, steps * config["epochs"], config["lr"]))
            idx = train_idx[batch]
            losses.append(float(model.train_on_batch(x[idx], remap[y[idx]])))
        cos = keras.ops.convert_to_numpy(model(x[held_idx], training=False))
        curves["train_loss"].append(float(np.mean(losses)))
        curves["held_out_accuracy"].append(float(np.mean(classes[cos.argmax(axis=1)] == y[held_idx])))
    return digits_evaluation(config, data, embed, curves, before, start)


def keras_glyph_run(config: dict, data: dict) -> dict:
    size = data["images"].shape[-1]
    model, embedder = arcface_model(config, (1, size, size), config["classes"])
    pool = training_pool(data)
    remap = np.full(len(data["syllables"]), -1)
    remap[data["train_syl"][: config["classes"]]] = np.arange(config["classes"])
    curves, losses, every = {"train_loss": []}, [], max(1, config["steps"] // 20)
    start = time.perf_counter()
    for step, (faces, syllables, variants) in enumerate(glyph_batches(data, config)):
        model.optimizer.learning_rate.assign(lr_at(step, config["steps"], config["lr"], warmup=0.1))
        x = pool_images(data, pool, faces, syllables, variants).numpy()
        model.loss.fraction = margin_fraction(step, config["steps"], config["margin_warmup"])
        losses.append(float(model.train_on_batch(x, remap[syllables])))
        if (step + 1) % every == 0:
            curves["train_loss"].append(float(np.mean(losses[-every:])))

    def embed(faces, syllables):
        x = eval_images(data, faces, syllables).numpy()
        return np.concatenate(
            [keras.ops.convert_to_numpy(embedder(x[i : i + 2000], training=False)) for i in range(0, len(x), 2000)]
        )

    return glyph_evaluation(config, data, embed, curves, start)


if __name__ == "__main__":
    jobs = json.load(sys.stdin)
    torch.set_num_threads(1)
    loaded = {}
    for job in jobs:
        config = job["config"]
        keras.utils.set_random_seed(config["seed"])
        study = config["study"]
        if study not in loaded:
            loaded[study] = load_data(study, config.get("data"), quiet=True)
        run = keras_digits_run if study == "digits" else keras_glyph_run
        results = run(config, loaded[study])
        tmp = Path(job["out"]).with_suffix(".tmp")
        tmp.write_text(json.dumps(results))
        tmp.replace(job["out"])
