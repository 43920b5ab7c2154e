"""Every loss page follows one template, in both languages (house style: "Pages follow one template per loss").

Oracle: the template written out below, and the Markdown sources of both languages. A page passes when its second-level
headings carry the template's explicit ids, each exactly once and in the template's order; a page may add its own
sections and subsections around them (the ArcFace page's "Which ArcFace?", the triplet page's mining).
"""

import re

import pytest
from conftest import ROOT

DOCS = ROOT / "docs"
LANGS = ("ko", "en")

# intuition -> formula -> geometry -> code -> pitfalls -> where it sits among the others -> references
TEMPLATE = ("intuition", "formula", "geometry", "code", "pitfalls", "where-it-sits", "references")
LOSS_PAGES = (
    "triplet-loss.md",
    "sphereface.md",
    "cosface.md",
    "arcface.md",
    "adaface.md",
    "curricularface.md",
    "subcenter.md",
)

HEADING = re.compile(r"^(#{1,6})\s+.*?\{\s*#([A-Za-z0-9_-]+)\s*\}\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def headings(text: str):
    """(level, id) of every heading with an explicit id, skipping fenced code blocks."""
    out, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code and (m := HEADING.match(line)):
            out.append((len(m.group(1)), m.group(2)))
    return out


def template_problems(text: str) -> list[str]:
    """What keeps one page's headings from following TEMPLATE; empty when it does."""
    found = headings(text)
    problems = []
    for level, hid in found:
        if hid in TEMPLATE and level != 2:
            problems.append(f"#{hid} is a level-{level} heading, not a section (##)")
    sections = [hid for level, hid in found if level == 2 and hid in TEMPLATE]
    for hid in TEMPLATE:
        if sections.count(hid) != 1:
            problems.append(f"#{hid} appears {sections.count(hid)} times as a section")
    if not problems and sections != list(TEMPLATE):
        problems.append(f"sections in the order {sections}, not {list(TEMPLATE)}")
    return problems


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page", LOSS_PAGES)
def test_loss_page_follows_the_template(lang, page):
    assert template_problems((DOCS / lang / page).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", LOSS_PAGES)
def test_loss_page_has_the_same_heading_ids_in_both_languages(page):
    ko, en = (headings((DOCS / lang / page).read_text(encoding="utf-8")) for lang in LANGS)
    assert ko == en


def test_every_loss_page_is_in_both_navs():
    for config in ("mkdocs.yml", "mkdocs.en.yml"):
        nav = (ROOT / config).read_text(encoding="utf-8").split("\nnav:\n", 1)[1]
        listed = re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w.-]+\.md)\s*$", nav, flags=re.M)
        assert [p for p in LOSS_PAGES if p not in listed] == [], config


# The checker itself, on small pages whose verdict is known.
GOOD = "\n".join(f"## T {{ #{hid} }}\n\ntext\n" for hid in TEMPLATE)


def test_checker_accepts_the_template_with_extra_sections():
    extra = GOOD.replace("## T { #code }", "## Mining { #mining }\n\n### Sub { #sub }\n\n## T { #code }")
    assert template_problems(extra) == []


@pytest.mark.parametrize(
    "broken, expected",
    [
        (GOOD.replace("## T { #pitfalls }", "## T { #numerical-stability }"), "#pitfalls appears 0 times"),
        (GOOD.replace("## T { #geometry }", "### T { #geometry }"), "#geometry is a level-3 heading"),
        (GOOD + "\n## Again { #code }\n", "#code appears 2 times"),
        (
            GOOD.replace("{ #formula }", "{ #tmp }")
            .replace("{ #geometry }", "{ #formula }")
            .replace("{ #tmp }", "{ #geometry }"),
            "not ['intuition', 'formula'",
        ),
    ],
)
def test_checker_rejects(broken, expected):
    assert any(expected in p for p in template_problems(broken)), template_problems(broken)


def test_checker_ignores_headings_inside_code_blocks():
    fenced = GOOD.replace("## T { #code }", "```markdown\n## T { #code }\n```")
    assert template_problems(fenced) == ["#code appears 0 times as a section"]


LISTING = re.compile(r"^(?P<indent> *)```(?P<lang>[a-z]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


def untested_code_blocks(text: str):
    """Fenced blocks other than shell commands whose body is anything but `--8<--` includes (the home page's
    promise: every listing is included from a file CI runs; shell commands are the one exception)."""
    return [
        m.group("body").strip().splitlines()[0]
        for m in LISTING.finditer(text)
        if m.group("lang") not in ("bash", "sh", "console")
        and any(line.strip() and not line.strip().startswith("--8<--") for line in m.group("body").splitlines())
    ]


@pytest.mark.parametrize("lang", LANGS)
def test_every_code_listing_is_included_from_a_file(lang):
    found = {
        page.name: blocks
        for page in sorted((DOCS / lang).glob("*.md"))
        if (blocks := untested_code_blocks(page.read_text(encoding="utf-8")))
    }
    assert not found, f"code typed into the page, not included from snippets/ (move it into a tested section): {found}"


def test_the_listing_check_sees_a_typed_block():
    typed = 'Text.\n\n    ```python\n    x = f(1)\n    ```\n\n```python title="a.py"\n--8<-- "snippets/a.py:b"\n```\n'
    assert untested_code_blocks(typed) == ["x = f(1)"]
    assert untested_code_blocks("```bash\nmake test\n```\n") == []


@pytest.mark.parametrize("lang", LANGS)
def test_an_included_table_is_followed_by_a_blank_line(lang):
    """A paragraph right after an included .md table becomes one more (one-cell) row of that table."""
    glued = []
    for page in sorted((DOCS / lang).glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, (line, after) in enumerate(zip(lines, lines[1:], strict=False), 1):
            if re.match(r'^\s*--8<-- "[^"]+\.md"\s*$', line) and after.strip():
                glued.append(f"{page.name}:{number + 1}: {after[:60]}")
    assert not glued, f"put a blank line after the include: {glued}"
