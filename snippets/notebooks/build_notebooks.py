"""Generate the tutorial notebooks (.ipynb) from their jupytext sources (percent-format .py).

The .py files are the truth: they diff well and review well. The .ipynb next to each one is generated, has no
outputs (CI executes it when it builds the site) and is committed only so that Colab and the download button have a
file to open. Run through `make notebooks`; `--check` exits 1 if a committed .ipynb is out of date.

    python snippets/notebooks/build_notebooks.py [--check]
"""

import argparse
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(ROOT.glob("docs/*/tutorial*.py"))


def render(source: Path) -> str:
    notebook = jupytext.read(source, fmt="py:percent")
    notebook.metadata.pop("jupytext", None)  # the .ipynb is not paired back: one direction only
    notebook.metadata["language_info"] = {"name": "python"}
    for number, cell in enumerate(notebook.cells):  # nbformat would give random ids: keep the file reproducible
        cell["id"] = f"cell-{number:02d}"
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
