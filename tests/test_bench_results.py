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
