"""Every number the margin explorer's "Things to try" list states (docs/{en,ko}/explorer.md#things-to-try), computed
again here without the browser.

Oracles: float64 formulas written in this file, and for AdaFace's gradient and CurricularFace's p_y the snippets the
pages show (snippets/pytorch/adaface.py, curricularface.py) with autograd. The explorer's own margins.js is held to
those snippets by tests/browser/test_explorer.py; this file holds the page's sentences to the same formulas. Each test
quotes the English sentence it guards; the Korean page states the same numbers.
"""

import math
from pathlib import Path

import pytest
import torch
from snippet_loader import load_snippet

adaface = load_snippet("pytorch/adaface.py")
curricularface = load_snippet("pytorch/curricularface.py")
DOCS = Path(__file__).resolve().parent.parent / "docs"
EN = (DOCS / "en" / "explorer.md").read_text(encoding="utf-8")
KO = (DOCS / "ko" / "explorer.md").read_text(encoding="utf-8")
ADAFACE = {"mu": 20.0, "sigma": 5.0, "h": 0.333, "eps": 1e-3}  # the explorer's fixed statistics (margins.js)


def p_y(target_logit, other_logit, classes):
    """Softmax probability of the target when the other classes - 1 all have the same logit."""
    return 1.0 / (1.0 + (classes - 1) * math.exp(other_logit - target_logit))


@pytest.mark.parametrize("text", [EN, KO], ids=["en", "ko"])
def test_the_page_still_states_these_numbers(text):
    # if a sentence changes, the test below that guards it must change with it
    for number in ("16.3", "151°", "162.8°", "81.4°", "171.4°", "0.67", "0.27", "0.13", "75°", "105°", "15.3°"):
        assert number in text, number


def test_a_scale_for_the_number_of_classes():
    # "`#method=normface&s=4&C=100000&cos=0`: in panel 2, p_y stays below 0.001 even at θ_y = 0. Raise s to 16, near
    # the AdaCos value √2 ln(C − 1) ≈ 16.3, and p_y climbs to almost 0.99."
    classes = 100_000
    assert p_y(4 * 1.0, 0.0, classes) < 0.001
    assert 0.98 < p_y(16 * 1.0, 0.0, classes) < 0.99
    assert round(math.sqrt(2) * math.log(classes - 1), 1) == 16.3


def test_arcface_fallback_angle():
    # "the curve of panel 1 steps down at θ_y = π − m ≈ 151°"
    assert round(math.degrees(math.pi - 0.5)) == 151


def test_sphereface_gradient_zeros_and_the_blend():
    # "the gradient of panel 4 drops to 0 at 45°, 90° and 135° ... with the authors' final λ = 5 blended in, the slope
    # of the target logit ÷ s would be −(5/6) sin θ_y even at the boundaries"
    m, lam = 4, 5.0
    for angle in (45, 90, 135):
        theta = math.radians(angle)
        k = math.floor(m * theta / math.pi + 1e-12)
        psi_slope = -((-1) ** k) * m * math.sin(m * theta)  # d/dθ of (-1)^k cos(mθ) - 2k
        assert abs(psi_slope) < 1e-12
        blended = (lam * -math.sin(theta) + psi_slope) / (1 + lam)
        assert blended == pytest.approx(-5 / 6 * math.sin(theta), abs=1e-12)


def test_combined_margin_continuation_angles():
    # "φ passes π at θ_y = π − 0.3 ≈ 162.8° ... Raise m₁ to 2 and φ passes π as early as θ_y ≈ 81.4°, and the dotted
    # curve climbs all the way back to 1 − m₃ = 0.8 at θ_y ≈ 171.4°"
    assert round(math.degrees(math.pi - 0.3), 1) == 162.8
    assert round(math.degrees((math.pi - 0.3) / 2), 1) == 81.4
    assert round(math.degrees((2 * math.pi - 0.3) / 2), 1) == 171.4  # cos φ = 1 again at φ = 2π
    assert math.cos(2 * ((2 * math.pi - 0.3) / 2) + 0.3) - 0.2 == pytest.approx(0.8)


def scaler(norm):
    return max(-1.0, min(1.0, ADAFACE["h"] * (norm - ADAFACE["mu"]) / (ADAFACE["sigma"] + ADAFACE["eps"])))


def adaface_gradient_peak(norm):
    """The angle (degrees, 0.1° grid) where |dL/dθ_y| is largest: s = 64, m = 0.4, C = 10, every other cosine 0."""
    theta = torch.arange(1, 1800, dtype=torch.float64).div(10).deg2rad().requires_grad_()
    cosine = torch.zeros(len(theta), 10, dtype=torch.float64)
    cosine = cosine.index_put((torch.arange(len(theta)), torch.zeros(len(theta), dtype=torch.long)), torch.cos(theta))
    labels = torch.zeros(len(theta), dtype=torch.long)
    norms = torch.full((len(theta),), float(norm), dtype=torch.float64)
    logits = adaface.adaface_logits(cosine, labels, norms, ADAFACE["mu"], ADAFACE["sigma"], s=64.0, m=0.4)
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")  # rows are independent
    (gradient,) = torch.autograd.grad(losses, theta)
    return float(theta.detach()[gradient.abs().argmax()].rad2deg())


def test_adaface_norm_moves_the_margin_and_the_gradient_peak():
    # "the margin scaler ẑ goes from about −0.67 to +0.67. At a norm of 10 the margin adds 0.27 rad to the angle and
    # subtracts 0.13 from the cosine, close to ArcFace; at 30 it subtracts 0.27 rad from the angle and 0.67 from the
    # cosine, and the peak of panel 4's gradient moves from about 75° to about 105°. ... At a norm of 30 the angle is
    # clipped to ε for θ_y < 15.3°"
    m = 0.4
    low, high = scaler(10), scaler(30)
    assert (round(low, 2), round(high, 2)) == (-0.67, 0.67)
    assert round(-m * low, 2) == 0.27 and round(m * (1 + low), 2) == 0.13
    assert round(m * high, 2) == 0.27 and round(m * (1 + high), 2) == 0.67
    assert round(adaface_gradient_peak(10)) == 75
    assert round(adaface_gradient_peak(30)) == 105
    assert round(math.degrees(m * high), 1) == 15.3  # θ_y − m·ẑ < ε below this angle


def test_adaface_cosine_clip_at_the_default_norm():
    # "apart from the cosine clip (the flat stretches below 2.6° and above 177.4°)"
    eps = ADAFACE["eps"]
    assert round(math.degrees(math.acos(1 - eps)), 1) == 2.6
    assert round(math.degrees(math.acos(-1 + eps)), 1) == 177.4


def test_curricularface_t_turns_hard_negatives_harder():
    # "`#method=curricularface&s=64&m=0.5&C=10&cos=0.5&t=0&theta=40`: the other classes' cosine 0.5 is above
    # cos(θ_y + m), so they are all hard negatives. Raise t from 0 to 1 and their logit cos θ_j (t + cos θ_j) grows
    # from 0.25 to 0.75, and p_y falls from almost 1 to almost 0."
    theta = math.radians(40)
    assert 0.5 > math.cos(theta + 0.5)
    cosine = torch.tensor([[math.cos(theta)] + [0.5] * 9], dtype=torch.float64)
    labels = torch.tensor([0])
    probabilities = {}
    for t in (0.0, 1.0):
        logits = curricularface.curricularface_logits(cosine, labels, t, s=64.0, m=0.5)
        assert float(logits[0, 1]) / 64 == pytest.approx(0.5 * (t + 0.5))
        probabilities[t] = float(torch.softmax(logits, dim=1)[0, 0])
    assert probabilities[0.0] > 0.99 and probabilities[1.0] < 0.01
