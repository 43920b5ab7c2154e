"""The Keras ArcFace run: the same backbone, split, batches, optimiser and schedule as the PyTorch runs.

Keras fixes its backend once per process, so make_figures.py starts this file as a subprocess with
KERAS_BACKEND=torch. It reads a JSON list of {"config": ..., "out": path} from stdin, trains each run and writes
its results JSON (the same fields as training.train_run) to `out`.
"""

import json
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "torch"  # one backend per process; the torch one shares the PyTorch runs' threads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from training import (  # noqa: E402
    distance_histograms,
    load_snippet,
    load_splits,
    pk_batches,
    run_results,
)


def train_keras_run(config: dict, data: dict) -> dict:
    margins = load_snippet("keras/margins.py")
    seed, split = config["seed"], config["split"]
    keras.utils.set_random_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(seed)
    x, y = data["x"], data["y"]
    train_idx, held_idx = data[split]
    classes = np.unique(y[train_idx])
    remap = np.full(10, -1)
    remap[classes] = np.arange(len(classes))

    inputs = keras.Input((64,))
    h = keras.layers.Dense(128, activation="relu")(inputs)
    h = keras.layers.Dense(128, activation="relu")(h)
    embeddings = keras.layers.Dense(config["embedding_size"])(h)
    cosines = margins.CosineClassifier(config["embedding_size"], len(classes))(embeddings)
    model, embedder = keras.Model(inputs, cosines), keras.Model(inputs, embeddings)
    steps = len(train_idx) // (len(classes) * config["k"])
    schedule = keras.optimizers.schedules.CosineDecay(config["lr"], decay_steps=steps * config["epochs"])
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, epsilon=1e-7),
        loss=margins.MarginLoss("arcface", s=config["s"], m=config["hp"]["m"]),
    )

    def embed(idx):
        return keras.ops.convert_to_numpy(embedder(x[idx], training=False))

    groups = {"seen": held_idx, "unseen": data["unseen"]}  # held-out images of the training digits; unseen digits
    before = {g: distance_histograms(embed(idx), y[idx]) for g, idx in groups.items()} if split == "open" else None
    curves = {"train_loss": [], "held_out_accuracy": []}
    start = time.perf_counter()
    for epoch in range(config["epochs"]):
        order = np.concatenate(pk_batches(y[train_idx], steps, config["k"], rng))
        history = model.fit(
            x[train_idx[order]],
            remap[y[train_idx[order]]],
            batch_size=len(classes) * config["k"],
            epochs=1,
            shuffle=False,
            verbose=0,
        )
        cos = keras.ops.convert_to_numpy(model(x[held_idx], training=False))
        curves["train_loss"].append(float(history.history["loss"][0]))
        curves["held_out_accuracy"].append(float(np.mean(classes[cos.argmax(axis=1)] == y[held_idx])))
        if sys.stdout.isatty() or epoch + 1 == config["epochs"]:
            print(
                f"\r[keras] {'keras-arcface-' + split + '-seed' + str(seed):28s} "
                f"epoch {epoch + 1:2d}/{config['epochs']}"
                f"  loss {curves['train_loss'][-1]:.4f}  held-out acc {curves['held_out_accuracy'][-1]:.3f}",
                end="\n" if epoch + 1 == config["epochs"] else "",
                flush=True,
            )

    return run_results(config, curves, start, data, y, embed, before, groups)


if __name__ == "__main__":
    jobs = json.load(sys.stdin)
    data = load_splits()
    for job in jobs:
        with open(job["out"], "w") as f:
            json.dump(train_keras_run(job["config"], data), f)
