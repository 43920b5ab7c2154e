"""Every snippet runs on its own as a script, the way a reader who copied one file would run it.

The file list is globbed when pytest collects, so snippets added later are covered without editing this file.
"""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(
    path.relative_to(ROOT).as_posix()
    for folder in ("snippets/pytorch", "snippets/keras")
    for path in (ROOT / folder).glob("*.py")
)


def test_there_are_snippets_to_run():
    assert "snippets/pytorch/margins.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_snippet_runs_as_a_script(script):
    # Copy the environment but not PYTHONPATH: a copied file must not rely on the repository's layout.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["KERAS_BACKEND"] = os.environ.get("KERAS_BACKEND", "torch")
    result = subprocess.run([sys.executable, script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert result.stdout.strip(), f"{script} printed nothing: its worked example should show numbers"
    assert not re.search(r"\b(nan|inf)\b", result.stdout, flags=re.IGNORECASE), f"{script} printed nan/inf"
    if script.endswith("/margins.py"):
        check_quick_start(script, result.stdout)
        check_sphereface_lambda_blend(script, result.stdout)
    if script.endswith("/contrastive.py"):
        # which-loss#no-labels shows the `given_pairs` section: ½d² for the similar pair at 0.3, ½(1 - d)² for the
        # dissimilar one at 0.3, 0 for the dissimilar one at 1.2 (beyond the margin 1), and their mean.
        expected = [0.5 * 0.3**2, 0.5 * (1 - 0.3) ** 2, 0.0]
        found = re.search(r"^given pairs: \[([^\]]*)\] mean ([0-9.]+)$", result.stdout, flags=re.MULTILINE)
        assert found, f"{script}: the given-pairs line is missing:\n{result.stdout[-1500:]}"
        values = [float(v) for v in found.group(1).split(",")]
        assert values == pytest.approx(expected, abs=2e-6) and float(found.group(2)) == pytest.approx(
            sum(expected) / 3, abs=2e-6
        ), f"{script}: {found.group(0)}"
    if script.endswith("/subcenter.py"):
        # The `clean_one_class` section builds class 2 from six images near its sub-center 1 and two pointing the
        # opposite way: the cleaning call must pick sub-center 1 and drop exactly images 6 and 7.
        assert "class 2: dominant sub-center 1, images to drop [6, 7]" in result.stdout, result.stdout[-1500:]


def check_quick_start(script, stdout):
    """The home page's quick start (the `quick_start` section of margins.py) must visibly train: the loss falls to
    under a fifth of its first value, and same-class pairs end up far closer in cosine than different-class pairs."""
    losses = [float(x) for x in re.findall(r"^step +\d+: loss ([0-9.]+)$", stdout, flags=re.MULTILINE)]
    assert len(losses) == 3, f"{script}: expected the quick start's three loss lines, got:\n{stdout[-1500:]}"
    assert losses[0] > losses[1] > losses[2] and losses[2] < losses[0] / 5, f"{script}: loss did not fall: {losses}"
    same, different = map(
        float, re.search(r"mean cosine: same class (-?[0-9.]+), different classes (-?[0-9.]+)", stdout).groups()
    )
    assert same > 0.9 and abs(different) < 0.1, f"{script}: same-class {same}, different-class {different}"


def check_sphereface_lambda_blend(script, stdout):
    """SphereFace's page shows the `sphereface_lambda_blend` section of margins.py: its target logits / s must be the
    Caffe blend (λ cos θ + ψ(θ)) / (1 + λ), with λ = max(5, 1000 / (1 + 0.12·iteration)) and
    ψ(θ) = (-1)^k cos(4θ) - 2k, k = ⌊4θ/π⌋, computed here in float64 for the section's target cosines 0.5 and -0.95."""
    found = re.findall(
        r"^iteration +(\d+): lambda +([0-9.]+), target logits / s \['(-?[0-9.]+)', '(-?[0-9.]+)'\]$",
        stdout,
        flags=re.MULTILINE,
    )
    assert [int(row[0]) for row in found] == [0, 1000, 100000], f"{script}: blend lines missing:\n{stdout[-1500:]}"
    for iteration, lam, *targets in found:
        expected_lam = max(5.0, 1000.0 / (1 + 0.12 * int(iteration)))
        assert abs(float(lam) - expected_lam) < 1e-3, f"{script}: λ {lam} at iteration {iteration}"
        for cosine, shown in zip((0.5, -0.95), targets, strict=True):
            theta = math.acos(cosine)
            k = math.floor(4 * theta / math.pi)
            psi = (-1) ** k * math.cos(4 * theta) - 2 * k
            blend = (expected_lam * cosine + psi) / (1 + expected_lam)
            assert abs(float(shown) - blend) < 6e-5, (
                f"{script}: iteration {iteration}, cos {cosine}: {shown} vs {blend}"
            )
            for lang in ("ko", "en"):  # the #lambda-blend section quotes every printed value
                page = (ROOT / "docs" / lang / "sphereface.md").read_text(encoding="utf-8")
                assert shown.replace("-", "−") in page, f"docs/{lang}/sphereface.md does not state {shown}"
