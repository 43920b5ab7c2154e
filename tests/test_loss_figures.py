"""The loss pages' analytic figures (experiments/loss_figures.py): what each one draws agrees with a float64 formula
written here from the paper, the published SVG is what a redraw gives, and both languages show every figure.

Oracles: AdaFace (Kim et al., CVPR 2022, Eq. 10-12 with the authors' clamps of θ to [eps, π - eps]); CurricularFace
(Huang et al., CVPR 2020, Eq. 6-7); ArcFace (Deng et al., CVPR 2019: class j wins when cos(θ_j + m) > cos θ_other,
continued by cos θ - m·sin m past θ + m > π as the guide's snippet does); sub-center ArcFace (Deng et al., ECCV 2020:
the same condition on the nearest sub-center of each class, outliers farther than 75° from the dominant one); Partial
FC (An et al., ICCVW 2021, with the guide's rule min(C, max(⌊rC⌋, B)) centers per step) and plain float32 byte counts.
"""

import math
import re
import sys

import numpy as np
import pytest
from snippet_loader import ROOT

sys.path.insert(0, str(ROOT / "experiments"))
import loss_figures  # noqa: E402

FIGURES = ROOT / "docs" / "assets" / "figures"


# --- float64 oracles --------------------------------------------------------------------------------------------
def reference_adaface_target(theta, norm, mu, sigma, m, h, eps):
    z = np.clip(h * (norm - mu) / (sigma + eps), -1.0, 1.0)
    theta = np.arccos(np.clip(np.cos(theta), -1 + eps, 1 - eps))
    return np.cos(np.clip(theta - m * z, eps, math.pi - eps)) - m * (1.0 + z)


def reference_curricularface_negative(cos_j, cos_y, t, m):
    hard = cos_j > math.cos(math.acos(cos_y) + m)
    return np.where(hard, cos_j * (t + cos_j), cos_j)


def reference_arcface_target(theta, m):
    return np.where(theta + m <= math.pi, np.cos(theta + m), np.cos(theta) - m * math.sin(m))


# --- AdaFace ------------------------------------------------------------------------------------------------------
def test_adaface_curves_are_the_papers_margin_at_three_image_qualities():
    d, p = loss_figures.adaface_data(), loss_figures.ADAFACE
    theta = np.radians(d["thetas_deg"])
    assert sorted(d["curves"]) == [-1.0, 0.0, 1.0]
    for z, norm in d["quality_norms"].items():
        assert np.isclose(p["h"] * (norm - p["batch_mean"]) / (p["batch_std"] + p["eps"]), z)
        expected = reference_adaface_target(theta, norm, p["batch_mean"], p["batch_std"], p["m"], p["h"], p["eps"])
        np.testing.assert_allclose(d["curves"][z], expected, atol=1e-9, err_msg=f"z = {z}")
    # ẑ = -1 is ArcFace's margin, ẑ = 0 CosFace's (the page's reading of the figure).
    middle = (theta > 0.1) & (theta < math.pi - 0.5)
    np.testing.assert_allclose(d["curves"][-1.0][middle], np.cos(theta[middle] + p["m"]), atol=1e-9)
    np.testing.assert_allclose(d["curves"][0.0][middle], np.cos(theta[middle]) - p["m"], atol=1e-9)


def test_adaface_margin_parts_against_the_feature_norm():
    d, p = loss_figures.adaface_data(), loss_figures.ADAFACE
    z = np.clip(p["h"] * (d["norms"] - p["batch_mean"]) / (p["batch_std"] + p["eps"]), -1, 1)
    np.testing.assert_allclose(d["g_angle"], -p["m"] * z, atol=1e-12)
    np.testing.assert_allclose(d["g_add"], p["m"] * (1 + z), atol=1e-12)
    assert d["g_angle"].max() == pytest.approx(p["m"]) and d["g_add"].max() == pytest.approx(2 * p["m"])


# --- CurricularFace ---------------------------------------------------------------------------------------------
def test_curricularface_negative_logits_follow_c_times_t_plus_c():
    d, p = loss_figures.curricularface_data(), loss_figures.CURRICULAR
    assert d["threshold"] == pytest.approx(math.cos(math.acos(p["cos_y"]) + p["m"]))
    for t, curve in d["curves"].items():
        expected = reference_curricularface_negative(d["cos_j"], p["cos_y"], t, p["m"])
        np.testing.assert_allclose(curve, expected, atol=1e-12, err_msg=f"t = {t}")
    # Early (t = 0) a hard negative is damped, cos² < cos; late (t = 1) it is emphasized, cos·(1 + cos) > cos.
    hard = (d["cos_j"] > max(d["threshold"], 0) + 0.01) & (d["cos_j"] < 0.99)
    assert np.all(d["curves"][0.0][hard] < d["cos_j"][hard]) and np.all(d["curves"][1.0][hard] > d["cos_j"][hard])


# --- ArcFace ----------------------------------------------------------------------------------------------------
def test_arcface_regions_on_the_circle_match_the_margin_condition():
    d, p = loss_figures.arcface_data(), loss_figures.ARCFACE
    phi, centers = np.radians(d["phis_deg"]), np.radians(p["centers_deg"])
    theta = np.abs(np.angle(np.exp(1j * (phi[:, None] - centers[None, :]))))  # angle to each center, in [0, π]
    for j in (0, 1):
        margin_logit = reference_arcface_target(theta[:, j], p["m"])
        other = np.cos(theta[:, 1 - j])
        decided = np.abs(margin_logit - other) > 1e-9  # leave the grid points exactly on a boundary out
        np.testing.assert_array_equal(d["wins"][j][decided], (margin_logit > other)[decided], err_msg=f"class {j}")


def test_arcface_band_between_the_centers_is_m_wide():
    d, p = loss_figures.arcface_data(), loss_figures.ARCFACE
    phi = d["phis_deg"]
    between = (phi > min(p["centers_deg"])) & (phi < max(p["centers_deg"]))
    band = between & ~(d["wins"][0] | d["wins"][1])
    step = phi[1] - phi[0]
    width = phi[band].max() - phi[band].min() + step
    assert width == pytest.approx(math.degrees(p["m"]), abs=step)


# --- Sub-center ArcFace ------------------------------------------------------------------------------------------
def test_subcenter_regions_on_the_circle_match_the_margin_on_the_nearest_subcenter():
    # Deng et al., ECCV 2020: a class's angle is the angle to its nearest sub-center; ArcFace's margin is added to it.
    d, p = loss_figures.subcenter_data(), loss_figures.SUBCENTER
    phi = np.radians(d["phis_deg"])
    theta = [
        np.min([np.abs(np.angle(np.exp(1j * (phi - math.radians(c))))) for c in p["centers_deg"][j]], axis=0)
        for j in (0, 1)
    ]
    for j in (0, 1):
        margin_logit = reference_arcface_target(theta[j], p["m"])
        other = np.cos(theta[1 - j])
        decided = np.abs(margin_logit - other) > 1e-9
        np.testing.assert_array_equal(d["wins"][j][decided], (margin_logit > other)[decided], err_msg=f"class {j}")


def test_subcenter_bands_are_m_wide_and_the_mislabeled_sample_is_the_only_outlier():
    d, p = loss_figures.subcenter_data(), loss_figures.SUBCENTER
    band = ~(d["wins"][0] | d["wins"][1])
    step = d["phis_deg"][1] - d["phis_deg"][0]
    edges = np.flatnonzero(np.diff(band.astype(int)))  # where a band starts or ends
    widths = np.diff(d["phis_deg"][edges + 1])[::2] if band[0] == 0 else np.diff(d["phis_deg"][edges + 1])[1::2]
    assert len(widths) >= 3  # four bands on the circle, one of them may wrap around ±180°
    np.testing.assert_allclose(widths, math.degrees(p["m"]), atol=step)
    # Dominant sub-center: the one most samples are nearest to; outliers: farther than 75° from it.
    samples = np.radians(p["samples_deg"])
    to_each = [np.abs(np.angle(np.exp(1j * (samples - math.radians(c))))) for c in p["centers_deg"][0]]
    dominant = np.bincount(np.argmin(to_each, axis=0)).argmax()
    assert d["dominant"] == dominant == 0
    np.testing.assert_array_equal(d["outliers"], np.degrees(to_each[dominant]) > p["max_angle_deg"])
    assert d["outliers"].tolist() == [False, False, False, False, True]


# --- Partial FC -------------------------------------------------------------------------------------------------
def test_partial_fc_sampled_centers_keep_every_positive_and_fill_to_r_c():
    d, p = loss_figures.partial_fc_data(), loss_figures.PARTIAL_FC
    sampled = d["demo_sampled"]
    n = min(d["demo_classes"], max(math.floor(p["demo_r"] * d["demo_classes"]), 0))
    assert len(sampled) == n == len(set(sampled.tolist())) and list(sampled) == sorted(sampled)
    assert set(d["demo_labels"]) <= set(sampled.tolist()) and sampled.max() < d["demo_classes"]


def test_partial_fc_memory_curves_are_float32_byte_counts():
    d, p = loss_figures.partial_fc_data(), loss_figures.PARTIAL_FC
    for c, w, dense, partial in zip(
        d["classes"], d["memory"]["W_g"], d["memory"]["dense"], d["memory"]["partial"], strict=True
    ):
        shard = c / p["G"]
        assert w == pytest.approx(shard * p["D"] * 4 / 1e6, rel=1e-12)
        assert dense == pytest.approx(p["B"] * shard * 4 / 1e6, rel=1e-12)
        assert partial == pytest.approx(p["B"] * min(shard, max(math.floor(p["r"] * shard), p["B"])) * 4 / 1e6)
    # The Partial FC page's table: C = 10⁶ on 8 devices, W_g 256 MB, one dense logit matrix 512 MB, r = 0.1: 51 MB.
    at = int(np.argmin(np.abs(d["classes"] - 1e6)))
    assert d["classes"][at] == pytest.approx(1e6)
    assert [round(d["memory"][k][at]) for k in ("W_g", "dense", "partial")] == [256, 512, 51]


# --- Triplet loss and the chord -----------------------------------------------------------------------------------
def test_triplet_losses_are_the_hinge_on_plain_distances_and_each_negative_is_of_its_kind():
    # Schroff et al., CVPR 2015 (the hinge) with Hermans et al. 2017's plain distances: max(0, d(a,p) - d(a,n) + m).
    d, p = loss_figures.triplet_data(), loss_figures.TRIPLET
    m, d_ap = p["margin"], d["d_ap"]
    want = np.maximum(0.0, d_ap - d["distances"] + m)
    np.testing.assert_allclose(d["losses"], want, atol=2e-6)  # the snippet clamps the distance at 0 (its sqrt)
    for (x, y), distance, loss in d["negatives"]:
        assert math.hypot(x, y) == pytest.approx(distance)
        assert loss == pytest.approx(max(0.0, d_ap - distance + m), abs=1e-12)
    kinds = [(dist < d_ap, d_ap <= dist < d_ap + m, dist >= d_ap + m) for _, dist, _ in d["negatives"]]
    assert kinds == [(True, False, False), (False, True, False), (False, False, True)]  # hard, semi-hard, easy


def test_chord_is_two_sine_half_theta_and_the_pages_threshold_is_73_degrees():
    d, p = loss_figures.chord_data(), loss_figures.CHORD
    theta = np.radians(d["angles_deg"])
    np.testing.assert_allclose(d["distances"], 2 * np.sin(theta / 2), atol=2e-6)  # the snippet's sqrt clamp at 0
    assert math.degrees(math.acos(1 - p["squared_threshold"] / 2)) == pytest.approx(73.1, abs=0.05)


# --- the published files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(loss_figures.FIGURES))
def test_published_figure_is_a_byte_identical_redraw(name, tmp_path):
    shipped = FIGURES / name
    assert shipped.exists(), f"{name} is missing: run `make figures` (python experiments/make_figures.py)"
    loss_figures.FIGURES[name](tmp_path / name)
    assert (tmp_path / name).read_bytes() == shipped.read_bytes(), f"{name}: a redraw gives different bytes"
    assert b"<dc:date>" not in shipped.read_bytes()


@pytest.mark.parametrize("name", sorted(loss_figures.FIGURES))
def test_figure_is_on_its_page_in_both_languages_with_alt_text_and_caption(name):
    page = {
        "adaface": "adaface",
        "curricularface": "curricularface",
        "arcface": "arcface",
        "partial": "partial-fc",
        "subcenter": "subcenter",
        "triplet": "triplet-loss",
        "metric": "metric-learning",
    }
    page = page[name.split("-")[0]]
    for lang in ("ko", "en"):
        text = (ROOT / "docs" / lang / f"{page}.md").read_text(encoding="utf-8")
        block = re.search(
            rf"<figure markdown>\n!\[([^\]]{{40,}})\]\(assets/figures/{re.escape(name)}\)[^\n]*\n"
            rf"<figcaption>(.{{20,}}?)</figcaption>\n</figure>",
            text,
        )
        assert block, f"docs/{lang}/{page}.md: no <figure> with alt text and a caption for {name}"
        assert "$" not in block.group(2), f"docs/{lang}/{page}.md: math in a figcaption is not rendered ({name})"
