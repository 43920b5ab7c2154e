"""MkDocs hook: serve the language-neutral files under docs/assets/ in both language builds.

Each language is its own MkDocs build (docs/ko -> site/, docs/en -> site/en/). Figures, KaTeX and our own
scripts live once in docs/assets/ (figures and vendor/ are generated, never committed) and are added to the
file collection of every build here, so pages link them as `assets/...` and MkDocs validates those links.
"""

from pathlib import Path

from mkdocs.structure.files import File

ASSETS = "assets"


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
