"""The tutorial notebook: generated from its jupytext source, the same code in both editions, no committed outputs,
rendered (not downloaded) at the right URL in both languages with its outputs and a working Colab link."""

import json
import re
import subprocess
import sys

import pytest
from snippet_loader import ROOT

EDITIONS = {lang: ROOT / f"docs/{lang}/tutorial.ipynb" for lang in ("ko", "en")}


def cells(lang, kind):
    notebook = json.loads(EDITIONS[lang].read_text(encoding="utf-8"))
    return [("".join(c["source"]), c) for c in notebook["cells"] if c["cell_type"] == kind]


def test_committed_notebooks_match_their_jupytext_sources():
    result = subprocess.run(
        [sys.executable, "snippets/notebooks/build_notebooks.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_editions_have_identical_code_cells():
    assert [src for src, _ in cells("ko", "code")] == [src for src, _ in cells("en", "code")]


def test_both_editions_have_the_same_heading_ids_in_the_same_order():
    def ids(lang):
        return [i for src, _ in cells(lang, "markdown") for i in re.findall(r'<h[1-6] id="([^"]+)"', src)]

    assert ids("ko") == ids("en") and len(ids("ko")) >= 5


@pytest.mark.parametrize("lang", EDITIONS)
def test_committed_notebook_has_no_outputs(lang):
    for _, cell in cells(lang, "code"):
        assert cell.get("outputs") == [] and cell.get("execution_count") is None


@pytest.mark.site
@pytest.mark.parametrize("lang", EDITIONS)
def test_notebook_is_rendered_as_a_page_with_outputs(built_site, lang):
    page = (built_site if lang == "ko" else built_site / "en") / "tutorial/index.html"
    html = page.read_text(encoding="utf-8")
    assert f'<html lang="{lang}"' in html
    assert "jupyter-wrapper" in html and "jp-OutputArea" in html
    # The plots are image files written by docs/hooks/notebook_images.py (no inline base64; tests/test_site.py).
    assert html.count("assets/images/inline/") >= 3, "the notebook's plots are missing"
    assert "closed-set test accuracy" in html and "TAR @ FAR=0.01" in html
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert not [s for s in scripts if "mathjax" in s.lower()], "MathJax must not load: KaTeX renders the math"
    colab = re.search(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', html).group(1)
    assert colab.endswith(f"/blob/main/docs/{lang}/tutorial.ipynb") and EDITIONS[lang].exists()
    assert (page.parent / "tutorial.ipynb").exists(), "the download button's file is missing"
    edit = re.search(r'href="([^"]+)"[^>]*class="md-content__button md-icon"', html).group(1)
    assert edit.endswith(f"docs/{lang}/tutorial.py"), f"edit button should open the jupytext source, not {edit}"
