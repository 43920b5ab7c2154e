"""Site-wide behaviors a reader relies on: linked framework tabs, exact copy buttons, per-language search,
dark mode, and a phone-sized layout."""

import re
import textwrap

import pytest
from site_pages import ALL_PAGES, DOCS, ROOT, url_of

pytestmark = [pytest.mark.site, pytest.mark.browser]

INCLUDE = re.compile(r'--8<--\s+"(snippets/[^":]+):([a-z][-_0-9a-z]*)"')


def pages_with_tabs(lang="ko"):
    found = []
    for md in sorted((DOCS / lang).glob("*.md")):
        text = md.read_text(encoding="utf-8")
        if '=== "Keras"' in text and INCLUDE.search(text):
            found.append(md.stem)
    return found


def section_text(path, name):
    """The lines between `# --8<-- [start:name]` and `[end:name]`, dedented like pymdownx.snippets does."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.search(rf"--8<-- \[start:{name}\]", line))
    end = next(i for i, line in enumerate(lines) if re.search(rf"--8<-- \[end:{name}\]", line))
    return textwrap.dedent("\n".join(lines[start + 1 : end])).strip("\n")


def test_chosen_framework_tab_follows_the_reader_to_the_next_page(page, base_url):
    tabbed = pages_with_tabs()
    assert len(tabbed) >= 2, "the guide should have at least two pages with PyTorch/Keras tabs"
    page.goto(f"{base_url}/{tabbed[0]}/", wait_until="networkidle")
    page.locator(".tabbed-labels label", has_text="Keras").first.click()
    page.goto(f"{base_url}/{tabbed[1]}/", wait_until="networkidle")
    selected = page.locator(".tabbed-set").first.evaluate(
        "set => { const i = [...set.querySelectorAll(':scope > input')].findIndex(x => x.checked);"
        " return set.querySelectorAll(':scope > .tabbed-labels > label')[i].innerText.trim(); }"
    )
    assert selected == "Keras"


def test_copy_button_copies_exactly_the_snippet_section(browser, base_url):
    slug = pages_with_tabs()[0]
    source = (DOCS / "ko" / f"{slug}.md").read_text(encoding="utf-8")
    # The first section a reader sees: helper sections sit in collapsed blocks above it (issue 12).
    path, name = next(m.groups() for m in INCLUDE.finditer(source) if m.group(2) != "helpers")
    expected = section_text(path, name)
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{base_url}/{slug}/", wait_until="networkidle")
    index = page.evaluate(
        """p => [...document.querySelectorAll('.highlight')]
        .findIndex(b => b.querySelector('.filename') && b.querySelector('.filename').textContent.trim() === p
                        && !b.closest('details:not([open])'))""",
        path,
    )
    assert index >= 0, f"no code block titled {path}"
    block = page.locator(".highlight").nth(index)
    block.scroll_into_view_if_needed()
    block.hover()
    block.locator("button.md-code__button[data-md-type=copy]").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    context.close()
    assert copied.strip("\n") == expected


@pytest.mark.parametrize(
    "lang, summary",
    [("ko", "파일 전체: snippets/pytorch/margins.py"), ("en", "The whole file: snippets/pytorch/margins.py")],
)
def test_collapsed_whole_file_opens_with_its_code_and_a_copy_button_that_copies_the_file(
    browser, base_url, lang, summary
):
    # docs/hooks/lazy_code.py keeps the code of collapsed blocks in a <template>; site.js moves it in on opening.
    lines = (ROOT / "snippets/pytorch/margins.py").read_text(encoding="utf-8").splitlines()
    expected = "\n".join(line for line in lines if not re.match(r"\s*# --8<-- \[(start|end):", line))
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{base_url}{'' if lang == 'ko' else '/en'}/arcface/", wait_until="networkidle")
    block = page.locator("details", has=page.locator("summary", has_text=summary))
    assert block.count() == 1
    assert block.locator(".highlight").count() == 0, "the collapsed code is already in the document"
    block.locator("summary").click()
    code = block.locator(".highlight").first
    code.wait_for()
    assert code.locator(".filename a.source-link").count() == 1  # site.js links the title to the file
    code.hover()
    code.locator("button.md-code__button[data-md-type=copy]").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    block.locator("summary").click()
    block.locator("summary").click()  # closed and opened again: still one copy of the code
    assert block.locator(".highlight").count() == 1
    context.close()
    assert copied.strip("\n") == expected.strip("\n")


def test_link_to_a_line_of_a_collapsed_block_opens_the_block(page, base_url):
    page.goto(f"{base_url}/en/arcface/", wait_until="networkidle")
    line = page.evaluate(
        """() => [...document.querySelectorAll('details > template.lazy-code')].map(
            t => t.content.querySelector('[id^="__codelineno-"]')).find(Boolean).id"""
    )
    page.goto("about:blank")  # a fresh load with the hash, not a same-page jump (that path is hashchange)
    page.goto(f"{base_url}/en/arcface/#{line}", wait_until="networkidle")
    target = page.locator(f"[id='{line}']")
    assert target.count() == 1
    assert target.evaluate("el => el.closest('details').open")
    page.wait_for_function(
        "id => { const r = document.getElementById(id).getBoundingClientRect();"
        " return r.top >= 0 && r.top < innerHeight; }",
        arg=line,
    )


@pytest.mark.parametrize("lang, query", [("ko", "마진"), ("en", "margin")])
def test_search_finds_pages_of_its_own_language_only(page, base_url, lang, query):
    prefix = "" if lang == "ko" else "en/"
    page.goto(f"{base_url}/{prefix}", wait_until="networkidle")
    page.locator("input.md-search__input").click()
    page.locator("input.md-search__input").fill(query)
    page.keyboard.press("End")  # Material searches on key events; fill() alone sends none for Hangul
    results = page.locator(".md-search-result__item a")
    results.first.wait_for(timeout=15000)
    hrefs = results.evaluate_all("as => as.map(a => new URL(a.href).pathname)")
    assert hrefs, "no search results"
    if lang == "ko":
        assert not any(h.startswith("/en/") for h in hrefs), hrefs
    else:
        assert all(h.startswith("/en/") for h in hrefs), hrefs


def search_count(page, query):
    """Type a query into the search box and return how many pages Material reports as matching."""
    box, meta = page.locator("input.md-search__input"), page.locator(".md-search-result__meta")
    box.click()
    box.fill("")  # an empty box resets the meta line, so the count read below belongs to this query
    page.keyboard.press("End")
    page.wait_for_function("m => !/\\d/.test(m.textContent)", arg=meta.element_handle(), timeout=60000)
    box.fill(query)
    page.keyboard.press("End")  # Material searches on key events; fill() alone sends none for Hangul
    # The meta line reads "Initializing search" until the index is ready, then "N matching documents".
    page.wait_for_function("m => /\\d/.test(m.textContent)", arg=meta.element_handle(), timeout=60000)
    return int(re.search(r"\d+", meta.inner_text()).group())


# Korean attaches particles to the word: a reader types 코사인을 or 임베딩으로 as often as the bare noun. The search
# separator in mkdocs.yml splits them off (lunr.ko then drops them as stop words), so both must find as many pages.
@pytest.mark.parametrize("bare, with_particle", [("코사인", "코사인을"), ("임베딩", "임베딩으로"), ("마진", "마진을")])
def test_korean_search_with_a_particle_finds_what_the_bare_word_finds(page, base_url, bare, with_particle):
    page.set_default_timeout(60000)
    page.goto(f"{base_url}/", wait_until="load")
    bare_count = search_count(page, bare)
    assert bare_count >= 5, f"{bare!r} finds only {bare_count} pages"
    assert search_count(page, with_particle) == bare_count


def test_dark_mode_switches_palette_and_keeps_figures_readable(page, base_url):
    figure_pages = [p for p in pages_with_figures()]
    assert figure_pages, "no page shows a figure"
    page.goto(f"{base_url}/{figure_pages[0]}/", wait_until="networkidle")
    for _ in range(3):  # system -> light -> dark (the toggle cycles)
        if page.locator("body").get_attribute("data-md-color-scheme") == "slate":
            break
        page.locator("form[data-md-component='palette'] label:visible").first.click()
    assert page.locator("body").get_attribute("data-md-color-scheme") == "slate"
    image = page.locator("article img[src*='assets/figures/']").first
    background = image.evaluate("e => getComputedStyle(e).backgroundColor")
    channels = [int(c) for c in re.findall(r"\d+", background)[:3]]
    assert min(channels) >= 200, f"figures need a light card on the dark palette, got {background}"


def pages_with_figures(lang="ko"):
    return [md.stem for md in sorted((DOCS / lang).glob("*.md")) if "assets/figures/" in md.read_text(encoding="utf-8")]


@pytest.mark.parametrize("lang, path", ALL_PAGES, ids=[f"{lang}:/{p}" for lang, p in ALL_PAGES])
def test_phone_layout_has_no_horizontal_page_scroll(browser, base_url, lang, path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{base_url}/{url_of(lang, path)}", wait_until="networkidle")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    offenders = page.evaluate("""() => [...document.querySelectorAll('article *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .filter(e => !e.closest('pre, table, .arithmatex, .katex, .highlight, .md-typeset__scrollwrap, .jp-OutputArea'))
        .slice(0, 5).map(e => e.tagName + '.' + e.className)""")
    context.close()
    assert overflow <= 0 and offenders == [], f"page scrolls sideways by {overflow}px: {offenders}"
