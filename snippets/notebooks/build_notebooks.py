"""Generate the tutorial notebooks (.ipynb) from their jupytext sources (percent-format .py).

The .py files are the truth: they diff well and review well. The .ipynb next to each one is generated, has no
outputs (CI executes it when it builds the site) and is committed only so that Colab and the download button have a
file to open. Run through `make notebooks`; `--check` exits 1 if a committed .ipynb is out of date.

Links from the text to the guide's other pages are relative in the source (`../arcface/#fallback`), which works on
the site but not in Colab or in a downloaded copy, where the notebook is no longer next to those pages. The .ipynb
therefore carries them as absolute addresses of the published edition (its `site_url` default in mkdocs.yml or
mkdocs.en.yml); docs/hooks/notebook_source.py turns them back into relative links when the site is built, so the
built site still links to itself (and works offline and under another SITE_URL).

    python snippets/notebooks/build_notebooks.py [--check]
"""

import argparse
import re
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(ROOT.glob("docs/*/tutorial*.py"))
CONFIGS = {"ko": ROOT / "mkdocs.yml", "en": ROOT / "mkdocs.en.yml"}
RELATIVE_LINK = re.compile(r"\]\(\.\./([^)\s]*)\)")


def published_url(config: Path) -> str:
    """The edition's address on GitHub Pages: the default of `site_url: !ENV [NAME, "…"]` in its MkDocs file."""
    match = re.search(r'^site_url: !ENV \[\w+, "([^"]+/)"\]', config.read_text(encoding="utf-8"), re.M)
    if match is None:
        raise SystemExit(f'{config.name}: no `site_url: !ENV [NAME, "https://…/"]` line to take the address from')
    return match.group(1)


def absolute_links(markdown: str, base: str) -> str:
    """`](../page/#id)` -> `](base + page/#id)`: links that still work when the notebook is opened in Colab."""
    return RELATIVE_LINK.sub(lambda m: f"]({base}{m.group(1)})", markdown)


def render(source: Path) -> str:
    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata.pop("jupytext", None)  # the .ipynb is not paired back: one direction only
    notebook.metadata["language_info"] = {"name": "python"}
    base = published_url(CONFIGS[source.parent.name])
    for number, cell in enumerate(notebook.cells):  # nbformat would give random ids: keep the file reproducible
        cell["id"] = f"cell-{number:02d}"
        if cell.cell_type == "markdown":
            cell.source = absolute_links(cell.source, base)
    return jupytext.writes(notebook, fmt="ipynb")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed .ipynb differs from its source")
    args = parser.parse_args()
    stale = []
    for source in SOURCES:
        target = source.with_suffix(".ipynb")
        text = render(source)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            print(f"notebooks: {target.relative_to(ROOT)} is up to date")
            continue
        stale.append(target)
        if not args.check:
            target.write_text(text, encoding="utf-8")
            print(f"notebooks: wrote {target.relative_to(ROOT)}")
    if args.check and stale:
        print("out of date (run `make notebooks`): " + ", ".join(str(t.relative_to(ROOT)) for t in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
