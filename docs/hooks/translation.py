"""Translation bookkeeping shared by the MkDocs hook, the tests and `make translation-status`.

A translated page names its source in its front matter:

    ---
    translated_from: ko           # the language folder of the source page (same file name)
    source_hash: 3f2a9c1b7d4e     # first 12 hex digits of sha256 of the source file when last synced
    translation_pending: false    # true = known to be behind the source; shows the notice, tests accept it
    ---

When the source changes, its hash no longer matches: the built page shows a notice and `make test` fails until
the translation is re-synced (`make sync-translation PAGE=arcface.md` after updating it) or marked pending.

Run as a script:
    python docs/hooks/translation.py status            # list every translated page and its state
    python docs/hooks/translation.py sync en/arcface.md  # record the current source hash (after translating)
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def source_hash(path: Path) -> str:
    data = path.read_bytes().replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()[:12]


def front_matter(text: str) -> dict[str, str]:
    match = FRONT_MATTER.match(text)
    if not match:
        return {}
    meta = {}
    for line in match.group(1).splitlines():
        if ":" in line and not line.startswith((" ", "#")):
            key, value = line.split(":", 1)
            meta[key.strip()] = value.split("#", 1)[0].strip().strip("\"'")
    return meta


def state(page: Path) -> tuple[str, Path | None]:
    """('original' | 'synced' | 'stale' | 'pending', source path) for a page under docs/<lang>/."""
    meta = front_matter(page.read_text(encoding="utf-8"))
    lang = meta.get("translated_from")
    if not lang:
        return "original", None
    rel = page.relative_to(DOCS).parts[1:]
    source = DOCS.joinpath(lang, *rel)
    if not source.exists():
        raise ValueError(f"{page}: translated_from={lang} but {source} does not exist")
    if meta.get("translation_pending", "false").lower() == "true":
        return "pending", source
    return ("synced" if meta.get("source_hash") == source_hash(source) else "stale"), source


def sync(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    status, source = state(page)
    if source is None:
        raise SystemExit(f"{page} has no 'translated_from' in its front matter")
    new_hash = source_hash(source)
    text = re.sub(r"(?m)^source_hash:.*$", f"source_hash: {new_hash}", text, count=1)
    text = re.sub(r"(?m)^translation_pending:.*$", "translation_pending: false", text, count=1)
    page.write_text(text, encoding="utf-8")
    print(f"{page.relative_to(DOCS)}: {status} -> synced ({new_hash})")


# --- MkDocs hook -------------------------------------------------------------------------------------------


def on_page_markdown(markdown, page, config, files):
    path = Path(page.file.abs_src_path)
    status, source = state(path)
    if status in ("stale", "pending"):
        notice = config.extra.get("translation_notice", "This translation may be out of date.")
        link = f"{config.repo_url}/blob/main/docs/{source.relative_to(DOCS).as_posix()}"
        markdown = f'!!! warning "{notice}"\n\n    [{source.relative_to(DOCS).as_posix()}]({link})\n\n' + markdown
    return markdown


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "status":
        for page in sorted(DOCS.glob("*/**/*.md")):
            if page.parts[len(DOCS.parts)] in ("ko", "en"):
                st, src = state(page)
                if src is not None:
                    print(f"{st:8s} {page.relative_to(DOCS)}  <-  {src.relative_to(DOCS)}")
    elif len(sys.argv) >= 3 and sys.argv[1] == "sync":
        for arg in sys.argv[2:]:
            p = Path(arg)
            sync(p if p.is_absolute() or p.exists() else DOCS / arg)
    else:
        raise SystemExit(__doc__)
