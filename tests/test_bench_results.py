"""The committed benchmark tables (snippets/benchmarks/*.{ko,en}.md, included by the pages) agree with the committed
measurements (results.json, results_large_scale.json): each table is rendered again from its JSON with the
benchmark script's own renderer and must equal the committed file byte for byte. Nothing is measured here.
Also: the Korean and English tables carry the same numbers, and every table file has its JSON and its twin.
"""

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "snippets" / "benchmarks"
sys.path.insert(0, str(BENCH))


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


heads, large = load("bench_heads"), load("bench_large_scale")
TABLES = {  # committed table -> (its JSON, the function that renders it)
    "results.{lang}.md": ("results.json", lambda result, lang: heads.markdown(result, lang)),
    "results_chunked.{lang}.md": ("results_large_scale.json", lambda result, lang: large.chunked_table(result, lang)),
    "results_model_parallel.{lang}.md": (
        "results_large_scale.json",
        lambda result, lang: large.ranks_table(result, lang),
    ),
}
CASES = [(table.format(lang=lang), lang, *TABLES[table]) for table in TABLES for lang in ("ko", "en")]


def numbers(text):
    """Every number of a table, in order (the machine line's CPU model and date included)."""
    return re.findall(r"\d(?:[\d,.]*\d)?", text)


@pytest.mark.parametrize("table,lang,source,render", CASES, ids=[c[0] for c in CASES])
def test_committed_table_is_the_rendering_of_the_committed_json(table, lang, source, render):
    result = json.loads((BENCH / source).read_text(encoding="utf-8"))
    assert (BENCH / table).read_text(encoding="utf-8") == render(result, lang), (
        f"{table} does not match {source}: run `python snippets/benchmarks/"
        f"{'bench_heads' if source == 'results.json' else 'bench_large_scale'}.py --render`"
    )


@pytest.mark.parametrize("table", TABLES)
def test_korean_and_english_tables_have_the_same_numbers(table):
    ko, en = (BENCH / table.format(lang=lang) for lang in ("ko", "en"))
    assert numbers(ko.read_text(encoding="utf-8")) == numbers(en.read_text(encoding="utf-8"))


def test_every_table_file_is_known():
    known = {case[0] for case in CASES}
    assert {p.name for p in BENCH.glob("*.md")} == known


# --- the prose around the tables -------------------------------------------------------------------------------
DOCS = BENCH.parents[1] / "docs"
# page -> the section that discusses the large-scale tables (from its heading to the next heading of its level)
PROSE_SECTIONS = {"partial-fc.md": "large-scale-benchmark", "performance.md": "large-scale"}


def section(text: str, anchor: str) -> str:
    """The Markdown of the section whose heading carries `{ #anchor }`, up to the next heading of its level or
    higher; include lines, math and code spans removed (their digits are not cited measurements)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and f"{{ #{anchor} }}" in line)
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(rf"#{{1,{level}}} ", lines[i])),
        len(lines),
    )
    body = "\n".join(line for line in lines[start + 1 : end] if not line.startswith("--8<--"))
    body = re.sub(r"\$[^$]*\$", " ", body)  # math: sizes such as C = 10^6 and D = 512
    body = re.sub(r"`[^`]*`", " ", body)  # code: file names, arguments
    return re.sub(r"\]\([^)]*\)", "]", body)  # link targets


def computed_sizes(result: dict) -> set:
    """Sizes the prose may state that are computed, not measured: one B × C float32 tensor and one B × chunk
    block of the chunked benchmark, in MiB."""
    rows = result["chunked"]
    b, c = rows[0]["B"], rows[0]["C"]
    sizes = {b * c * 4 / 2**20} | {b * r["chunk_size"] * 4 / 2**20 for r in rows if r["chunk_size"]}
    return {f"{size:,.0f}" for size in sizes}


def cited_numbers(prose: str) -> list:
    return [n for n in numbers(prose) if not re.fullmatch(r"\d", n)]  # single digits: counts of things, ordinals


@pytest.mark.parametrize("lang", ("ko", "en"))
@pytest.mark.parametrize("page", PROSE_SECTIONS)
def test_every_number_the_benchmark_prose_cites_is_in_its_tables(page, lang):
    result = json.loads((BENCH / "results_large_scale.json").read_text(encoding="utf-8"))
    tables = large.chunked_table(result, lang) + large.ranks_table(result, lang)
    allowed = set(numbers(tables)) | computed_sizes(result)
    prose = section((DOCS / lang / page).read_text(encoding="utf-8"), PROSE_SECTIONS[page])
    missing = [n for n in cited_numbers(prose) if n not in allowed]
    assert not missing, f"docs/{lang}/{page}#{PROSE_SECTIONS[page]} cites numbers its tables do not hold: {missing}"


def test_the_prose_check_fails_on_a_number_the_tables_do_not_hold():
    result = json.loads((BENCH / "results_large_scale.json").read_text(encoding="utf-8"))
    allowed = set(numbers(large.chunked_table(result, "en"))) | computed_sizes(result)
    prose = section("## A { #a }\n\nThe dense head added 9,777 MiB, 0.228×.\n\n## B { #b }\n\n0.5", "a")
    assert [n for n in cited_numbers(prose) if n not in allowed] == ["9,777", "0.228"]
