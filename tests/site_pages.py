"""Which pages the site has (from the sources, so tests can be parametrised before the build) and their URLs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def page_paths(lang: str):
    """URL paths of every page of one language, e.g. "", "arcface/", "tutorial/" (notebooks included)."""
    src = DOCS / lang
    out = []
    for path in sorted(list(src.rglob("*.md")) + list(src.rglob("*.ipynb"))):
        rel = path.relative_to(src).with_suffix("").as_posix()
        out.append("" if rel == "index" else rel.removesuffix("/index") + "/")
    return out


def url_of(lang: str, path: str) -> str:
    return ("" if lang == "ko" else "en/") + path


ALL_PAGES = [(lang, path) for lang in ("ko", "en") for path in page_paths(lang)]


# Per-page browser measurements (requests, bytes, formulas, axe counts), printed by tests/conftest.py at the end of
# the run and written to test-results/browser-summary.md.
SUMMARY: list[dict] = []
