"""The foundation's promises, checked in a real browser: math renders offline, the language selector keeps the
page, code blocks have a copy button, no console error, no request leaves 127.0.0.1."""

import re
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.site, pytest.mark.browser]


def first_page_with_code(site):
    for path in sorted(site.glob("*/index.html")):
        if 'class="language-python highlight"' in path.read_text(encoding="utf-8") and path.parent.name != "en":
            return path.parent.name
    pytest.fail("no page with a code block was built")


def assert_clean_load(page, navigated_away=False):
    assert page.record.console_errors == []
    # A request still in flight when the test clicks to the next page is cut short (ERR_ABORTED): the test's timing.
    failed = [f for f in page.record.failed if not (navigated_away and f.endswith("(net::ERR_ABORTED)"))]
    assert failed == []
    hosts = {urlparse(u).hostname for u in page.record.requests if not u.startswith(("data:", "blob:"))}
    assert hosts <= {"127.0.0.1"}, f"requests left the machine: {hosts}"


@pytest.mark.parametrize("prefix", ["", "en/"])
def test_math_renders_with_katex(page, base_url, prefix):
    page.goto(f"{base_url}/{prefix}", wait_until="networkidle")
    assert page.locator(".arithmatex .katex").count() >= 4
    text = page.locator("article").inner_text()
    assert "\\(" not in text and "\\[" not in text and "$$" not in text
    assert_clean_load(page)


def test_language_selector_leads_to_the_same_page(page, base_url):
    slug = "arcface"
    page.goto(f"{base_url}/{slug}/", wait_until="networkidle")
    page.locator('a[data-language-link][hreflang="en"]').first.dispatch_event("click")
    page.wait_for_url(f"{base_url}/en/{slug}/", wait_until="networkidle")
    assert page.locator("html").get_attribute("lang") == "en"
    page.locator('a[data-language-link][hreflang="ko"]').first.dispatch_event("click")
    page.wait_for_url(f"{base_url}/{slug}/", wait_until="networkidle")
    assert page.locator("html").get_attribute("lang") == "ko"
    assert_clean_load(page, navigated_away=True)


def test_language_selector_keeps_the_anchor(page, base_url):
    page.goto(f"{base_url}/#run-the-code", wait_until="networkidle")
    page.locator('a[data-language-link][hreflang="en"]').first.dispatch_event("click")
    page.wait_for_url(re.compile(r"/en/#run-the-code$"))


def test_code_blocks_have_a_copy_button(page, base_url, built_site):
    slug = first_page_with_code(built_site)
    page.goto(f"{base_url}/{slug}/", wait_until="networkidle")
    blocks = page.locator(".highlight").count()
    assert blocks > 0
    assert (
        page.locator(".highlight button.md-code__button[data-md-type=copy]").count()
        == page.locator(".highlight pre").count()
    )
    assert_clean_load(page)
