"""MkDocs hook: the language-neutral files are built once and served once, for both languages.

Each language is its own MkDocs build (docs/ko -> site/, docs/en -> site/en/, in that order: `make site`).

1. Figures, results, KaTeX and our own scripts live once in docs/assets/ (figures and vendor/ are generated, never
   committed) and are added to the file collection of every build (on_files), so pages link them as `assets/...`
   and MkDocs validates those links.
2. A build whose output folder is another language's folder plus its own prefix (site/en/ = site/ + "en/", from
   `extra.languages`) then points its pages at the other build's copy of every file that is byte-for-byte the
   same there (docs/assets/**, the theme's scripts, styles, fonts and icons, notebook plots) and deletes its own
   copy (on_post_page, on_post_build). What differs by language (pages, search index, sitemap, notebooks) stays.
   So site/ holds one copy of each shared file, and a reader who switches language downloads nothing twice.
   A build into any other folder (`mkdocs serve`, a build of one language alone) keeps its own complete copy.
"""

import filecmp
import logging
import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.shared_assets")

ASSETS = "assets"
# Quoted strings that look like a path to a file: attribute values and JSON values such as Material's
# __config "search" worker. Only those that resolve to a file identical in the other build are rewritten.
QUOTED = re.compile(r'(?P<q>["\'])(?P<url>[^"\'\s<>(){}]+\.[A-Za-z0-9]{1,8})(?P=q)')
NEVER_SHARED = (".html", ".xml", ".gz", ".ipynb")

_state: dict = {}


def on_files(files, config):
    shared_root = Path(config.config_file_path).parent / "docs"
    assets = shared_root / ASSETS
    if not assets.is_dir():
        return files
    for path in sorted(assets.rglob("*")):
        # Markdown under assets/ (generated result tables) is included into pages with --8<--, not built as pages.
        if not path.is_file() or path.name.startswith(".") or path.suffix == ".md":
            continue
        rel = path.relative_to(shared_root).as_posix()
        if files.get_file_from_path(rel) is None:
            files.append(File(rel, str(shared_root), config.site_dir, config.use_directory_urls))
    return files


def _root_build(config):
    """(folder of the build this one nests in, this build's prefix), or (None, "") when it does not nest."""
    this = config.extra.get("this_language")
    prefix = next((lang.get("prefix", "") for lang in config.extra.get("languages", []) if lang["lang"] == this), "")
    site = Path(config.site_dir).resolve()
    if not prefix or site.parts[-len(Path(prefix).parts) :] != Path(prefix).parts:
        return None, ""
    root = site.parents[len(Path(prefix).parts) - 1]
    return (root if (root / "index.html").is_file() else None), prefix.strip("/") + "/"


def on_pre_build(config):
    root, prefix = _root_build(config)
    site_path = urlsplit(config.site_url or "/").path
    _state.clear()
    _state.update(
        root=root,
        prefix=prefix,
        site=Path(config.site_dir).resolve(),
        site_path=site_path if site_path.endswith("/") else site_path + "/",
        same={},
    )
    if root is not None:
        log.info("shared_assets: files identical to %s/ are served from there, not copied into %s", root, prefix)


def _same(rel: str) -> bool:
    """Whether `rel` (a path inside this build) is a file identical to the root build's file at `rel`."""
    same = _state["same"]
    if rel not in same:
        mine, theirs = _state["site"] / rel, _state["root"] / rel
        same[rel] = (
            not rel.startswith("../")
            and not rel.endswith(NEVER_SHARED)
            and mine.is_file()
            and theirs.is_file()
            and filecmp.cmp(mine, theirs, shallow=False)
        )
    return same[rel]


def on_post_page(output, page, config):
    if _state.get("root") is None:
        return output
    prefix, site_path = _state["prefix"], _state["site_path"]
    page_dir = posixpath.dirname(page.file.dest_uri)  # e.g. "arcface" for arcface/index.html, "" for the root

    def rewrite(match):
        url = match.group("url")
        path, _, rest = url.partition("?")
        if re.match(r"^[a-z][a-z0-9+.-]*:|^//|^#", path, re.I):
            return match.group(0)
        if path.startswith("/"):  # absolute under site_url (the 404 page)
            if not path.startswith(site_path):
                return match.group(0)
            rel = path[len(site_path) :]
            new = None if not _same(rel) else site_path.removesuffix(prefix) + rel
        else:
            rel = posixpath.normpath(posixpath.join(page_dir, path))
            new = None if not _same(rel) else posixpath.relpath(rel, posixpath.join(prefix, page_dir) or ".")
        if new is None:
            return match.group(0)
        q = match.group("q")
        return f"{q}{new}{'?' + rest if rest else ''}{q}"

    return QUOTED.sub(rewrite, output)


def on_post_build(config):
    if _state.get("root") is None:
        return
    site, removed = _state["site"], 0
    for path in sorted(site.rglob("*"), reverse=True):
        rel = path.relative_to(site).as_posix()
        if path.is_file() and _same(rel):
            path.unlink()
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    log.info("shared_assets: %d files removed from %s (served from %s)", removed, site, _state["root"])
