"""One term per concept, one symbol per quantity, American English: the prose of every page follows the glossary.

The source of truth is the glossary itself. Its first sections render two tables per language, and this test parses
them: `{ #notation }` (a symbol per quantity; the last column lists LaTeX forms that must not appear in math) and
`{ #terminology }` (the term to use; the last column lists variants that must not appear in prose). British
spellings come from codespell's own `en-GB_to_en-US` dictionary (codespell is pinned in requirements-dev.txt), so
no word list is kept by hand; they are checked in the English edition and in the English glosses of the Korean one.

Only prose is checked: not fenced or included code, inline code, math (except for the notation's LaTeX variants),
block quotations (the original post's words), link targets, HTML tags, heading ids or front matter other than the
`description`. Every `docs/{ko,en}/*.md` and the markdown cells of `docs/{ko,en}/tutorial.py` are covered, so a new
page is linted without being listed here. A failure names file, line, the variant found and the preferred term.
"""

import ast
import io
import re
import tokenize
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LANGS = ("ko", "en")
SOURCES = sorted(p for lang in LANGS for p in [*(DOCS / lang).glob("*.md"), DOCS / lang / "tutorial.py"])

FENCE = re.compile(r"^\s*(```|~~~)")
MATH_BLOCK = re.compile(r"^\s*\$\$")
# Inline things that are not prose, replaced by spaces (so that columns stay where they were).
NOT_PROSE = [
    re.compile(r"(`+).+?\1"),  # inline code
    re.compile(r"\$\$.+?\$\$|(?<!\\)\$(?!\$).+?(?<!\\)\$|\\\(.+?\\\)"),  # inline math (a particle may follow)
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"<!--.*?-->|<[^>\n]+>"),  # HTML comments and tags (the text between tags is prose)
    re.compile(r"\{[:\s][^}]*\}"),  # attribute lists: { #id }, { loading=lazy }
    re.compile(r"https?://\S+"),
]
MATH = re.compile(r"\$\$(.+?)\$\$|(?<!\\)\$(?!\$)(.+?)(?<!\\)\$")


def blank(text: str, pattern: re.Pattern) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def markdown_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every markdown line: all of a page, or the markdown cells of a jupytext notebook."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".md":
        return list(enumerate(lines, 1))
    out, in_markdown = [], False
    for number, line in enumerate(lines, 1):
        if line.startswith("# %%"):
            in_markdown = line.startswith("# %% [markdown]")
        elif in_markdown and line.startswith("#"):
            out.append((number, line[2:] if line.startswith("# ") else line[1:]))
    return out


def split_prose(path: Path) -> list[tuple[int, str, str]]:
    """(line number, prose with everything else blanked, the line's math) for each markdown line."""
    result, fence, math_block, front_matter = [], None, False, path.suffix == ".md"
    for index, (number, line) in enumerate(markdown_lines(path)):
        if front_matter:
            if index == 0 and line != "---":
                front_matter = False
            else:
                if line == "---" and index > 0:
                    front_matter = False
                elif line.startswith("description:"):
                    result.append((number, " " * 12 + line[12:], ""))
                continue
        if fence:
            if line.strip().startswith(fence):
                fence = None
            continue
        if match := FENCE.match(line):
            fence = match.group(1)
            continue
        if MATH_BLOCK.match(line):
            math_block = not math_block if line.strip().count("$$") == 1 else math_block
            result.append((number, "", line))
            continue
        if math_block:
            result.append((number, "", line))
            continue
        if re.match(r"^\s*>", line) or "--8<--" in line or re.match(r"^\s*\[[^\]]+\]:\s", line):
            continue
        math = " ".join(a or b for a, b in MATH.findall(line))
        prose = line
        for pattern in NOT_PROSE:
            prose = blank(prose, pattern)
        result.append((number, prose, math))
    return result


def table(lang: str, heading_id: str) -> list[list[str]]:
    """Rows (cells as text) of the first table under the glossary heading `{ #heading_id }`."""
    lines = (DOCS / lang / "glossary.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and f"{{ #{heading_id} }}" in line)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not re.match(r"^\|[\s|:-]+\|$", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header row


def variants(cell: str) -> list[str]:
    """The variants (separated by a comma and a space) of a cell, without their quotes or backticks."""
    return [v.strip().strip("\"'`") for v in cell.split(", ") if v.strip() and v.strip() != "—"]


def terminology(lang: str) -> list[tuple[str, str, re.Pattern]]:
    """(variant, preferred term, compiled matcher) for each variant in the language's terminology table."""
    rules = []
    for row in table(lang, "terminology"):
        preferred = row[-2]
        for variant in variants(row[-1]):
            ascii_word = variant.isascii()
            # A Korean variant starts a word: 머리 (for 헤드) is flagged in "분류 머리를", not at the end of 첫머리.
            pattern = (
                rf"(?<![\w-]){re.escape(variant)}(?:e?s)?(?![\w-])"
                if ascii_word
                else rf"(?<![가-힣]){re.escape(variant)}"
            )
            rules.append((variant, preferred, re.compile(pattern, re.I if lang == "en" else 0)))
    return rules


def notation(lang: str) -> list[tuple[str, str]]:
    """(LaTeX variant, preferred symbol) from the language's notation table."""
    return [(v, row[0]) for row in table(lang, "notation") for v in variants(row[-1])]


def british() -> dict[str, str]:
    text = resources.files("codespell_lib").joinpath("data/dictionary_en-GB_to_en-US.txt").read_text("utf-8")
    return {gb: us.split(",")[0].strip() for gb, us in (line.split("->", 1) for line in text.splitlines() if line)}


# British forms that codespell's dictionary (2.4.3) lacks but that these pages have used.
BRITISH = british() | {"mislabelled": "mislabeled", "unnormalised": "unnormalized", "prising": "prying"}


def glossary_table_lines(path: Path) -> set[int]:
    """The rows of the glossary's own tables, which name the variants on purpose."""
    if path.name != "glossary.md":
        return set()
    lines, skip, inside = path.read_text(encoding="utf-8").splitlines(), set(), False
    for number, line in enumerate(lines, 1):
        if line.startswith("#"):
            inside = "{ #notation }" in line or "{ #terminology }" in line
        elif inside:
            skip.add(number)
    return skip


def violations(path: Path) -> list[str]:
    lang = path.parent.name
    rel = path.relative_to(ROOT).as_posix()
    rules, symbols, skip, found = terminology(lang), notation(lang), glossary_table_lines(path), []
    previous = None  # (number, prose) of the line before, while the paragraph goes on
    for number, prose, math in split_prose(path):
        if number in skip:
            previous = None
            continue
        for variant, preferred, pattern in rules:
            if pattern.search(prose):
                found.append(f"{rel}:{number}: '{variant}' -> use '{preferred}'")
            elif previous and " " in variant:  # a two-word variant the source wraps onto two lines
                tail = previous[1].rstrip()
                joined = f"{tail} {prose.lstrip()}"
                if any(m.start() < len(tail) < m.end() for m in pattern.finditer(joined)):
                    found.append(
                        f"{rel}:{previous[0]}-{number}: '{variant}' (across a line break) -> use '{preferred}'"
                    )
        previous = (number, prose) if prose.strip() else None
        for variant, preferred in symbols:
            if variant in math:
                found.append(f"{rel}:{number}: math '{variant}' -> use {preferred}")
        for word in re.findall(r"[A-Za-z]+", prose):
            if (us := BRITISH.get(word.lower())) is not None:
                us = us.capitalize() if word[0].isupper() else us
                found.append(f"{rel}:{number}: British '{word}' -> use American '{us}'")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_prose_follows_the_glossary(path):
    found = violations(path)
    assert not found, "the glossary's notation and terminology tables say otherwise:\n" + "\n".join(found)


@pytest.mark.parametrize("lang", LANGS)
def test_tables_are_there_and_consistent(lang):
    rules, symbols = terminology(lang), notation(lang)
    assert len(rules) >= 10 and len(symbols) >= 3, f"docs/{lang}/glossary.md: notation/terminology tables not found"
    preferred = {p for _, p, _ in rules}
    for variant, _, pattern in rules:
        clash = [p for p in preferred if pattern.search(p)]
        assert not clash, f"docs/{lang}/glossary.md: variant '{variant}' would flag the preferred term(s) {clash}"


def test_both_glossaries_have_the_same_notation():
    assert [row[0] for row in table("ko", "notation")] == [row[0] for row in table("en", "notation")]


# Every Python file a reader may open from a page: the snippets (all folders) and the experiment code.
SNIPPET_SOURCES = sorted([*(ROOT / "snippets").rglob("*.py"), *(ROOT / "experiments").glob("*.py")])


def snippet_prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of a Python file's comments and string literals (docstrings, messages, printed text), the prose a
    reader of a snippet sees; identifiers are code (their names are the twin contract) and are not included."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    found = [(tok.start[0], tok.string) for tok in tokens if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [(node.lineno + i, text) for i, text in enumerate(node.value.splitlines())]
    return found


def british_words(source: str) -> list[str]:
    return [
        f"{line}: '{w}' -> '{BRITISH[w.lower()]}'"
        for line, text in snippet_prose(source)
        for w in re.findall(r"[A-Za-z]+", text)
        if w.lower() in BRITISH
    ]


@pytest.mark.parametrize("path", SNIPPET_SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_snippet_comments_and_docstrings_use_american_spelling(path):
    found = british_words(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: British spelling in a comment or string:\n" + "\n".join(found)


def test_snippet_spelling_check_reads_comments_and_strings_but_not_code():
    source = 'def normalise(x):  # the centre\n    """Colour."""\n    raise ValueError(f"bad {x} behaviour")\n'
    assert british_words(source) == [
        "1: 'centre' -> 'center'",
        "2: 'Colour' -> 'color'",
        "3: 'behaviour' -> 'behavior'",
    ]
    assert len(SNIPPET_SOURCES) >= 16


def test_british_dictionary_is_codespells():
    assert BRITISH["normalise"] == "normalize" and BRITISH["centre"] == "center" and "center" not in BRITISH


def test_a_korean_variant_is_flagged_where_a_word_starts_not_inside_a_longer_word():
    rule = next(pattern for variant, _, pattern in terminology("ko") if variant == "머리")
    assert rule.search("분류 머리를 떼어") and rule.search("(머리)")
    assert not rule.search("문단의 첫머리에서") and not rule.search("우두머리")


def test_non_prose_is_not_linted(tmp_path):
    page = tmp_path / "ko" / "page.md"
    page.parent.mkdir()
    page.write_text(
        "---\ndescription: 에폭 정리\nsource_hash: centre\n---\n"
        "본문 `에폭` $centre$ [링크](centre.md) { #centre }\n"
        "```python\n에폭 = 1  # centre\n```\n> 원래 글: 에폭\n$$\n\\text{centre}\n$$\n본문 에폭\n",
        encoding="utf-8",
    )
    prose = [(n, " ".join(p.split())) for n, p, _ in split_prose(page) if p.strip()]
    assert prose == [(2, "에폭 정리"), (5, "본문 [링크"), (13, "본문 에폭")]  # the link text is prose, its target not
    notebook = tmp_path / "tutorial.py"
    notebook.write_text('# %% [markdown]\n# 글 에폭\n\n# %%\n# 에폭 주석\nx = "에폭"\n', encoding="utf-8")
    assert [(n, p) for n, p, _ in split_prose(notebook)] == [(2, "글 에폭")]


def fix_spelling(path: Path) -> int:
    """Rewrite the British words of a page's prose in American spelling (case kept); returns how many changed."""
    lines = path.read_text(encoding="utf-8").split("\n")
    offset, changed = (2 if path.suffix == ".py" else 0), 0
    for number, prose, _ in split_prose(path):
        line = lines[number - 1]
        for match in reversed(list(re.finditer(r"[A-Za-z]+", prose))):
            if (us := BRITISH.get(match.group(0).lower())) is not None:
                us = us.capitalize() if match.group(0)[0].isupper() else us
                line = line[: match.start() + offset] + us + line[match.end() + offset :]
                changed += 1
        lines[number - 1] = line
    path.write_text("\n".join(lines), encoding="utf-8")
    return changed


if __name__ == "__main__":
    # `python tests/test_terminology.py docs/en/page.md ...`: fix British spellings in place, then list what is
    # left for a person (terminology variants and notation, which need a rewording, not a word swap).
    import sys

    for name in sys.argv[1:]:
        page = Path(name).resolve()
        print(f"{name}: {fix_spelling(page)} British spellings fixed")
        print("\n".join(violations(page)))
