"""The translation rule: a translated page records the hash of its source; when the source changes, the page must
be re-synced (`make sync-translation PAGE=en/<page>.md`) or marked `translation_pending: true`."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("translation_hook", ROOT / "docs/hooks/translation.py")
translation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(translation)

PAGES = sorted((ROOT / "docs").glob("[a-z][a-z]/**/*.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT / "docs").as_posix())
def test_translation_is_synced_or_marked_pending(page):
    status, source = translation.state(page)
    assert status != "stale", (
        f"{source.relative_to(ROOT)} changed after {page.relative_to(ROOT)} was translated: update the translation "
        f"and run `make sync-translation PAGE={page.relative_to(ROOT / 'docs')}`, or set translation_pending: true"
    )


@pytest.mark.parametrize("page", sorted((ROOT / "docs/en").rglob("*.md")), ids=lambda p: p.name)
def test_every_english_page_is_tied_to_its_korean_twin(page):
    """Either the English page translates the Korean one, or (a page first written in English) the reverse."""
    korean = ROOT / "docs/ko" / page.relative_to(ROOT / "docs/en")
    assert translation.state(page)[0] != "original" or translation.state(korean)[0] != "original", (
        f"{page.relative_to(ROOT)}: add translated_from/source_hash front matter"
    )


def test_hash_is_independent_of_line_endings(tmp_path):
    unix, dos = tmp_path / "a.md", tmp_path / "b.md"
    unix.write_bytes(b"# t\n\nbody\n")
    dos.write_bytes(b"# t\r\n\r\nbody\r\n")
    assert translation.source_hash(unix) == translation.source_hash(dos)


def test_editing_the_source_makes_the_translation_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(translation, "DOCS", tmp_path)
    (tmp_path / "ko").mkdir(), (tmp_path / "en").mkdir()
    ko, en = tmp_path / "ko/page.md", tmp_path / "en/page.md"
    ko.write_text("# 제목\n", encoding="utf-8")
    en.write_text("---\ntranslated_from: ko\nsource_hash: 000000000000\ntranslation_pending: false\n---\n# Title\n")
    assert translation.state(en)[0] == "stale"
    translation.sync(en)
    assert translation.state(en)[0] == "synced"
    ko.write_text("# 제목\n\n새 문단\n", encoding="utf-8")
    assert translation.state(en)[0] == "stale"
