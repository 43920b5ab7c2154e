"""Every snippet runs on its own as a script, the way a reader who copied one file would run it.

The file list is globbed when pytest collects, so snippets added later are covered without editing this file.
"""

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
