"""Every page of both languages in headless Chromium: clean load, images, formulas, language selector,
accessibility (axe-core) and page weight. Each page's numbers go to the summary table printed at the end."""

import re
from urllib.parse import urlparse

import pytest
from site_pages import ALL_PAGES, ROOT, SUMMARY, url_of

pytestmark = [pytest.mark.site, pytest.mark.browser]

AXE = ROOT / "node_modules/axe-core/axe.min.js"
MAX_BYTES = 1_000_000  # with every lazy figure loaded
# Budgets for the first load (before scrolling), set from the measurements of issue 17 (browser summary, all 34
# pages: at most 389,899 bytes and 19 requests, /tutorial/) with about a quarter of headroom: math rendered at build
# time, no math JavaScript, plots as lazy files. A page over budget needs a reason, not a higher number.
FIRST_LOAD_BYTES = 500_000
FIRST_LOAD_REQUESTS = 25
# Pages allowed over FIRST_LOAD_BYTES, each with its reason (both languages).
OVER_BUDGET = {
    "arcface/": (
        600_000,
        "the longest chapter: its code sections show the helpers and the whole margins.py and original_post.py "
        "in collapsed blocks (issue 12) and it embeds the margin explorer; measured 524,969 bytes (ko)",
    ),
    "angular-margins/": (
        560_000,
        "when the Korean search index is fetched before the page goes idle, as in CI, its first load measured "
        "495,926 bytes in 21 requests (242,382 in 13 without the index), and the seventeenth review round's text "
        "tipped it over 500,000 in CI",
    ),
    "partial-fc/": (
        560_000,
        "the large-scale chapter: the model-parallel head, the chunked loss and Partial FC with their code and two "
        "benchmark tables; its HTML is the largest of the site (105 KB gzip, ko), and with the Korean search index "
        "(244 KB gzip), fetched before the page goes idle, the first load measured 500,005 bytes (ko)",
    ),
    "tutorial/": (
        540_000,
        "the executed notebook: its HTML carries every code cell and printed output (the plots are lazy image "
        "files), and with the Korean search index fetched before the page goes idle the first load measured "
        "501,313 bytes (ko) after issue 16's fourteenth review round lengthened the explanations",
    ),
}


def load(page, base_url, path):
    sizes = []
    page.on("requestfinished", lambda r: sizes.append(r.sizes()))
    page.goto(f"{base_url}/{path}", wait_until="networkidle")
    page.wait_for_timeout(100)
    return sizes


@pytest.mark.parametrize("lang, path", ALL_PAGES, ids=[f"{lang}:/{p}" for lang, p in ALL_PAGES])
def test_page(page, base_url, lang, path):
    url = url_of(lang, path)
    sizes = load(page, base_url, url)
    row = {
        "page": "/" + url,
        "requests": len(sizes),
        "bytes": sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes),
    }

    # Clean load, nothing from outside.
    assert page.record.console_errors == [], page.record.console_errors
    assert page.record.failed == [], page.record.failed
    hosts = {urlparse(u).hostname for u in page.record.requests if not u.startswith(("data:", "blob:"))}
    assert hosts <= {"127.0.0.1"}, f"requests left 127.0.0.1: {hosts}"
    assert page.locator("html").get_attribute("lang") == lang

    # Images load and have alt text (figures are lazy-loaded: scroll each into view, then wait for all).
    page.eval_on_selector_all("article img", "els => els.forEach(e => { e.loading = 'eager'; e.scrollIntoView(); })")
    page.wait_for_function("[...document.querySelectorAll('article img')].every(e => e.complete)", timeout=15000)
    images = page.eval_on_selector_all(
        "article img", "els => els.map(e => ({src: e.currentSrc || e.src, w: e.naturalWidth, alt: e.alt}))"
    )
    row["bytes_with_figures"] = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes)
    assert [i["src"] for i in images if i["w"] == 0] == [], "images that did not load"
    assert [i["src"] for i in images if not i["alt"].strip()] == [], "images without alt text"

    # Every formula rendered by KaTeX, none left as raw TeX.
    formulas = page.locator("article .arithmatex").count()
    rendered = page.locator("article .arithmatex:has(.katex)").count()
    assert rendered == formulas, f"{formulas - rendered} of {formulas} formulas not rendered"
    text = page.locator("article").inner_text()
    assert not re.search(r"\\\(|\\\[|\$\$", text), "raw TeX delimiters left in the text"
    row["formulas"] = formulas + page.locator("article .jp-RenderedMarkdown .katex").count()

    # Language selector: the same page in the other language.
    other = "en" if lang == "ko" else "ko"
    href = page.locator(f'a[data-language-link][hreflang="{other}"]').first.get_attribute("href")
    resolved = page.evaluate("h => new URL(h, location.href).pathname", href)
    assert resolved == "/" + url_of(other, path), f"selector leads to {resolved}"

    # Accessibility: axe-core, served from our own node_modules.
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => { const r = await axe.run(document); "
        "return r.violations.map(v => ({id: v.id, impact: v.impact, n: v.nodes.length})); }"
    )
    counts = {k: sum(1 for v in result if v["impact"] == k) for k in ("critical", "serious", "moderate", "minor")}
    row.update(counts)
    SUMMARY.append(row)
    serious = [v for v in result if v["impact"] in ("serious", "critical")]
    assert serious == [], f"axe serious/critical violations: {serious}"

    # Page weight: each URL fetched once, first load within its budget (bytes as transferred, gzip).
    twice = sorted({u for u in page.record.requests if page.record.requests.count(u) > 1})
    assert twice == [], f"fetched more than once: {twice}"
    assert row["requests"] <= FIRST_LOAD_REQUESTS, f"first load makes {row['requests']} requests"
    budget = OVER_BUDGET.get(path, (FIRST_LOAD_BYTES, ""))[0]
    assert row["bytes"] <= budget, f"first load transfers {row['bytes']} bytes (budget {budget})"
    assert row["bytes_with_figures"] <= MAX_BYTES, (
        f"with its lazy figures the page transfers {row['bytes_with_figures']}"
    )
