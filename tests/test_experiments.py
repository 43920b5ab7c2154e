"""Tests of the experiments pipeline (snippets/experiments/) and of what `make figures` published.

`make test` runs `make figures` first, so these tests read the published results instead of retraining; the
only training here is one tiny run (twice) and one full-size run that must reproduce its published numbers.
Missing results FAIL with the command to run: a skipped experiments test would hide a broken pipeline.
"""

import json
import re

import pytest
from snippet_loader import ROOT, load_snippet

make_figures = load_snippet("experiments/make_figures.py")
training = make_figures.training
plots = make_figures.plots

FIGURES = ROOT / "docs" / "assets" / "figures"
RESULTS = ROOT / "docs" / "assets" / "results"
PLANNED_FIGURES = {
    "target-logits.svg",
    "decision-boundaries.svg",
    "embeddings-2d.svg",
    "embeddings-unseen.svg",
    "loss-curves.svg",
    "roc-unseen.svg",
    "triplet-distances.svg",
}


def published(path):
    if not path.is_file():
        pytest.fail(
            f"{path.relative_to(ROOT)} is missing: run `make figures` "
            "(python snippets/experiments/make_figures.py) before these tests"
        )
    return path


@pytest.fixture(scope="module")
def summary():
    return json.loads(published(RESULTS / "summary.json").read_text())["summary"]


@pytest.fixture(scope="module")
def runs():
    published(RESULTS / "summary.json")
    return {p.stem: json.loads(p.read_text()) for p in sorted((RESULTS / "runs").glob("*.json"))}


@pytest.fixture(scope="module")
def data():
    return training.load_splits()


def figure_references(language):
    refs = set()
    for page in (ROOT / "docs" / language).rglob("*.md"):
        refs |= set(re.findall(r"assets/figures/([\w.-]+\.svg)", page.read_text(encoding="utf-8")))
    return refs


def without_timing(run):
    return {k: v for k, v in run.items() if k != "train_seconds"}


# --- figures and pages ---------------------------------------------------------------------------------
def test_every_planned_figure_is_generated_and_not_empty():
    for name in sorted(PLANNED_FIGURES):
        path = published(FIGURES / name)
        assert path.stat().st_size > 2000, f"{name} is suspiciously small ({path.stat().st_size} bytes)"
        assert path.read_text().lstrip().startswith("<?xml"), f"{name} is not an SVG file"


def test_every_figure_named_by_a_page_exists_and_is_referenced_from_both_languages():
    ko, en = figure_references("ko"), figure_references("en")
    for name in sorted(ko | en):
        assert published(FIGURES / name).stat().st_size > 0, f"{name} is empty"
    assert ko == en, f"figures only in ko: {sorted(ko - en)}; only in en: {sorted(en - ko)}"
    assert PLANNED_FIGURES <= ko, f"figures no page shows: {sorted(PLANNED_FIGURES - ko)}"


def test_figures_carry_no_date_and_redraw_byte_identically(tmp_path, runs):
    """Rerunning the drawing code on the published results gives the published bytes."""
    plots.target_logits(tmp_path / "target-logits.svg")
    plots.loss_curves(
        {m: [runs[f"{m}-closed-seed{s}"] for s in make_figures.SEEDS] for m in training.METHODS},
        tmp_path / "loss-curves.svg",
    )
    for name in ("target-logits.svg", "loss-curves.svg"):
        drawn, shipped = (tmp_path / name).read_bytes(), published(FIGURES / name).read_bytes()
        assert b"<dc:date>" not in shipped
        assert drawn == shipped, f"{name}: redrawing the published results gives different bytes"


# --- determinism and the cache -------------------------------------------------------------------------
def test_same_seed_gives_identical_results_and_identical_figure_bytes(tmp_path, data):
    config = make_figures.make_config("arcface", "closed", seed=0, epochs=2)  # tiny: two epochs, ~1 s
    first, second = training.train_run(config, data), training.train_run(config, data)
    assert without_timing(first) == without_timing(second)
    for name, results in (("a", first), ("b", second)):
        plots.loss_curves({"arcface": [results]}, tmp_path / name / "loss-curves.svg")
    assert (tmp_path / "a" / "loss-curves.svg").read_bytes() == (tmp_path / "b" / "loss-curves.svg").read_bytes()


def test_retraining_a_published_run_reproduces_its_metrics(runs, data):
    """Retraining arcface-closed-seed0 here, in another process than `make figures`, gives its exact numbers."""
    shipped = runs["arcface-closed-seed0"]
    again = training.train_run(shipped["config"], data)
    assert again["metrics"] == shipped["metrics"]
    assert again["curves"] == shipped["curves"]


def test_every_published_run_is_in_the_cache_so_a_second_make_figures_trains_nothing(runs, data):
    fingerprint = make_figures.split_fingerprint(data)
    for name, run in runs.items():
        key = make_figures.cache_key(run["config"], fingerprint)
        assert (make_figures.CACHE / f"{name}-{key}.json").is_file(), f"{name} would be retrained"


def test_cache_key_changes_with_hyperparameters_and_seed(data):
    fingerprint = make_figures.split_fingerprint(data)
    base = make_figures.make_config("arcface", "open", seed=0)
    keys = {
        make_figures.cache_key(c, fingerprint)
        for c in (
            base,
            make_figures.make_config("arcface", "open", seed=1),
            make_figures.make_config("arcface", "open", seed=0, m=0.3),
            make_figures.make_config("arcface", "open", seed=0, s=30),
        )
    }
    assert len(keys) == 4


def test_the_documented_rerun_command_trains_and_prints_a_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(make_figures, "CACHE", tmp_path)
    make_figures.main(["--only", "arcface", "--s", "16", "--m", "0.3", "--seeds", "0", "--epochs", "1"])
    out = capsys.readouterr().out
    assert "2 to train" in out and "| ArcFace |" in out
    assert len(list(tmp_path.glob("arcface-*-seed0-*.json"))) == 2  # cached for next time, nothing published


def test_bad_method_and_margin_are_rejected():
    with pytest.raises(ValueError, match="unknown method"):
        make_figures.make_config("arcfce", "open", seed=0)
    with pytest.raises(ValueError, match="no margin"):
        make_figures.make_config("normface", "open", seed=0, m=0.3)
    with pytest.raises(ValueError, match="integer"):
        make_figures.make_config("sphereface", "open", seed=0, m=3.5)


# --- quality floors (set from measured values, with margin) -------------------------------------------
def test_every_method_has_every_seed_in_the_summary(summary):
    for method in training.METHODS:
        for column in make_figures.COLUMNS:
            assert summary[method][column]["n"] == len(make_figures.SEEDS), (method, column)


def test_arcface_closed_set_accuracy_floor(runs):
    # Measured: 0.982 ± 0.004 over 3 seeds (450 test digits); 0.95 leaves ~8 standard deviations of room
    # while a broken margin, label remap or schedule drops it well below (an untrained MLP scores ~0.80).
    for seed in make_figures.SEEDS:
        assert runs[f"arcface-closed-seed{seed}"]["metrics"]["closed_set_accuracy"] >= 0.95


def test_every_method_classifies_the_closed_set(summary):
    # Lowest measured mean: SphereFace 0.93 (m = 4 without its softmax annealing); 0.85 catches a head that
    # does not learn while allowing for that known-hard method.
    for method in training.METHODS:
        assert summary[method]["closed_set_accuracy"]["mean"] >= 0.85, method


def test_unseen_verification_beats_a_random_embedding(summary, data):
    # Random Gaussian embeddings give TAR@FAR=1e-2 ≈ 0.01 (chance: TAR = FAR). Measured trained means are
    # 0.07 (softmax) to 0.22 (NormFace), ArcFace 0.19 ± 0.05; requiring 3× the random baseline for every method
    # and 8× for ArcFace flags an embedding that carries no information about unseen digits.
    random_tar = training.baseline_metrics(data, "random", seed=0)["tar_at_far_1e-2"]
    assert random_tar < 0.03
    for method in training.METHODS:
        assert summary[method]["tar_at_far_1e-2"]["mean"] >= 3 * max(random_tar, 0.01), method
    assert summary["arcface"]["tar_at_far_1e-2"]["mean"] >= 8 * max(random_tar, 0.01)


def test_every_training_loss_curve_decreases(runs):
    for name, run in runs.items():
        loss = run["curves"]["train_loss"]
        assert loss[-1] < loss[0], f"{name}: loss {loss[0]:.4f} -> {loss[-1]:.4f}"


def test_keras_and_pytorch_arcface_learn_the_same_thing(summary):
    # Same backbone, batches, optimiser and schedule; only the initialisation differs (Keras glorot vs torch
    # kaiming). Measured accuracy gap 0.001, TAR@1e-2 gap 0.035 with seed std ≈ 0.05.
    torch_row, keras_row = summary["arcface"], summary["keras-arcface"]
    assert abs(torch_row["closed_set_accuracy"]["mean"] - keras_row["closed_set_accuracy"]["mean"]) <= 0.02
    assert abs(torch_row["tar_at_far_1e-2"]["mean"] - keras_row["tar_at_far_1e-2"]["mean"]) <= 0.12


def test_summary_table_lists_every_method_and_both_pages_include_it():
    table = published(RESULTS / "summary.txt").read_text(encoding="utf-8")
    for method in training.METHODS:
        assert f"| {plots.LABELS[method]} |" in table, method
    for language in ("ko", "en"):
        page = (ROOT / "docs" / language / "experiments.md").read_text(encoding="utf-8")
        assert '--8<-- "docs/assets/results/summary.txt"' in page, language


# --- the claims the Experiments page makes in its discussion ---------------------------------------------
NORMALISED = ("normface", "cosface", "arcface", "combined", "adaface", "curricularface", "keras-arcface")


def mean(summary, method, column):
    return summary[method][column]["mean"]


def test_page_claim_closed_set_normalised_heads_beat_softmax_and_sphereface_is_lowest(summary):
    for method in NORMALISED + ("triplet",):
        assert mean(summary, method, "closed_set_accuracy") >= 0.97, method
        assert mean(summary, method, "closed_set_accuracy") > mean(summary, "softmax", "closed_set_accuracy")
    lowest = min(training.METHODS, key=lambda m: mean(summary, m, "closed_set_accuracy"))
    assert lowest == "sphereface"


def test_page_claim_no_learned_embedding_beats_the_untrained_baselines_on_unseen_digits(summary):
    for method in training.METHODS:
        for baseline in ("pixels", "untrained"):
            assert mean(summary, method, "tar_at_far_1e-2") < mean(summary, baseline, "tar_at_far_1e-2"), (
                method,
                baseline,
            )


def test_page_claim_normalisation_helps_on_unseen_digits_and_arcface_does_not_win(summary):
    column = "tar_at_far_1e-2"
    for method in NORMALISED:
        assert mean(summary, method, column) >= 2 * mean(summary, "softmax", column), method
    best = max(training.METHODS, key=lambda m: mean(summary, m, column))
    assert best != "arcface"
    # "the best mean belongs to NormFace, or to methods within one standard deviation of it"
    normface = summary["normface"][column]
    assert mean(summary, best, column) - normface["mean"] <= normface["std"]
