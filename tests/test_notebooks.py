"""The tutorial notebook: generated from its jupytext source, the same code in both editions, no committed outputs,
rendered (not downloaded) at the right URL in both languages with its outputs and a working Colab link."""

import ast
import json
import re
import subprocess
import sys

import pytest
from snippet_loader import ROOT

sys.path.insert(0, str(ROOT / "snippets" / "notebooks"))
import build_notebooks  # noqa: E402

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
def test_every_heading_opens_its_own_markdown_cell(lang):
    """A heading in the middle of a cell renders the code that follows the cell under it (issue 16: "Things to try"
    shared a cell with the softmax comparison, whose code and plot then appeared under "Things to try")."""
    for src, _ in cells(lang, "markdown"):
        headings = [m.start() for m in re.finditer(r"<h[1-6] id=", src)]
        assert headings in ([], [0]), f"docs/{lang}/tutorial.py: split this cell at its heading:\n{src[:300]}"


def literal(path, name):
    """The literal value of the module-level assignment `name = ...` in an experiments file (no import needed)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == name)


def test_tutorial_uses_the_experiments_hyperparameters():
    """s, m, the learning rate, the epochs and the backbone are the digits study's, so the notebook's numbers can be
    compared with the Experiments page (the tutorial says so; only its batches and schedule differ)."""
    code = "\n".join(src for src, _ in cells("en", "code"))
    shared, margins = (
        literal("experiments/digits_study.py", "SHARED"),
        literal("experiments/heads.py", "DEFAULT_MARGINS"),
    )
    s, m = (float(v) for v in re.search(r"^S, M = ([\d.]+), ([\d.]+)", code, re.M).groups())
    train_signature = re.search(r"def train\(model, loss_fn, X, y, epochs=(\d+), batch_size=\d+, lr=([\de.-]+)", code)
    assert (s, m) == (shared["s"], margins["arcface"]["m"])
    assert (int(train_signature[1]), float(train_signature[2])) == (shared["epochs"], shared["lr"])
    assert "ArcFaceModel(embedding_size=32," in code and shared["embedding_size"] == 32

    sys.path.insert(0, str(ROOT / "experiments"))
    import architectures
    from torch import nn

    namespace = {"nn": nn}
    exec(re.search(r"^def make_backbone\(.*?(?=^\S)", code, re.M | re.S).group(0), namespace)

    def shapes(net):
        return [(type(layer).__name__, tuple(layer.weight.shape) if hasattr(layer, "weight") else ()) for layer in net]

    assert shapes(namespace["make_backbone"](32)) == shapes(architectures.build_torch("mlp", (64,), 32))


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
    # The verification part measures both baselines next to softmax and ArcFace, and the prose says the pixels win
    # on these six classes (as the Experiments page's digits study measured): the executed numbers must agree.
    text = re.sub(r"<[^>]+>", "", html)  # the printed lines may come in several <pre> blocks
    rows = dict(re.findall(r"^(pixels|untrained|softmax|ArcFace) +([\d.]+) +[\d.]+ +[\d.]+$", text, re.M))
    assert set(rows) == {"pixels", "untrained", "softmax", "ArcFace"}, "the baseline table is missing"
    assert float(rows["pixels"]) > max(float(rows[name]) for name in ("untrained", "softmax", "ArcFace"))
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert not [s for s in scripts if "mathjax" in s.lower()], "MathJax must not load: KaTeX renders the math"
    colab = re.search(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', html).group(1)
    assert colab.endswith(f"/blob/main/docs/{lang}/tutorial.ipynb") and EDITIONS[lang].exists()
    assert (page.parent / "tutorial.ipynb").exists(), "the download button's file is missing"
    edit = re.search(r'href="([^"]+)"[^>]*class="md-content__button md-icon"', html).group(1)
    assert edit.endswith(f"docs/{lang}/tutorial.py"), f"edit button should open the jupytext source, not {edit}"


@pytest.mark.parametrize("lang", EDITIONS)
def test_the_notebooks_links_to_the_guide_work_in_colab_and_name_real_pages(lang):
    """Colab opens the .ipynb away from the site, where `../arcface/` leads nowhere (a review of issue 16 found every
    link dead there): the notebook carries absolute addresses of its published edition, each naming a page of that
    edition and, after #, a heading id the page has."""
    base = build_notebooks.published_url(build_notebooks.CONFIGS[lang])
    text = "\n".join(src for src, _ in cells(lang, "markdown"))
    assert "](../" not in text, f"docs/{lang}/tutorial.ipynb: a relative link is dead in Colab"
    links = re.findall(rf"\]\({re.escape(base)}([^)#]*)(?:#([^)]*))?\)", text)
    assert len(links) >= 10, "the guide links are missing from the notebook"
    for page, anchor in links:
        source = ROOT / "docs" / lang / (page.strip("/") or "index")
        source = source.with_suffix(".md")
        assert source.exists(), f"docs/{lang}/tutorial.py links to {page}, which is not a page"
        if anchor:
            assert re.search(rf"\{{[^}}]*#{re.escape(anchor)}\b", source.read_text(encoding="utf-8")), (
                f"docs/{lang}/tutorial.py links to {page}#{anchor}: no such heading id"
            )


@pytest.mark.site
@pytest.mark.parametrize("lang", EDITIONS)
def test_the_rendered_notebook_links_to_the_built_site_not_the_published_one(built_site, lang):
    """docs/hooks/notebook_source.py makes the notebook's absolute links relative again, so the built site (served
    offline, or under another SITE_URL) links to itself."""
    page = (built_site if lang == "ko" else built_site / "en") / "tutorial/index.html"
    html = page.read_text(encoding="utf-8")
    base = build_notebooks.published_url(build_notebooks.CONFIGS[lang])
    assert not re.search(rf'<a\b[^>]*\bhref="{re.escape(base)}', html), "a link still leads to the published site"
    assert re.search(r'href="\.\./arcface/"', html), "the link to the ArcFace chapter is missing or not relative"
