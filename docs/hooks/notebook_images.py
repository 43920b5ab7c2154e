"""MkDocs hook: inline base64 images (notebook plots) become image files the page links lazily.

nbconvert writes every plot of a notebook into the page as `<img src="data:image/png;base64,...">`, which makes
the HTML heavy and the plots uncacheable. This hook, on every page (independent of the notebook's content),
decodes each inline raster image, re-encodes it as lossless WebP (smaller than the PNG, same pixels), writes it
to assets/images/inline/<sha256 of the pixels>.webp in the build and points the `<img>` there with its width and
height (no layout shift), `loading="lazy"` and `decoding="async"`. Identical plots share one file, across pages
and (through docs/hooks/shared_assets.py) across languages. Tiny images (under MIN_BYTES) stay inline.

nbconvert gives every plot the same alt text, "No description has been provided for this image", which a screen
reader reads aloud. The tutorial's markdown cell before each plotting cell ends with `<!-- alt: … -->`, in the
page's language; this hook moves that text into the next such image and drops the comment. A notebook plot
without one fails the build with the page named, so a new plot cannot ship with the placeholder (a build with
notebook execution off has no plots, and then the comments are simply dropped).

It also drops nbconvert's Mermaid loader from a page without a Mermaid diagram (a script the page does not need,
which would import Mermaid from a CDN if it ever ran).
"""

import base64
import binascii
import hashlib
import io
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.utils import get_relative_url
from PIL import Image

FOLDER = "assets/images/inline"
MIN_BYTES = 2048
MERMAID_LOADER = re.compile(r'<script type="module">(?:(?!</script>).)*?jp-Mermaid(?:(?!</script>).)*</script>', re.S)
IMG = re.compile(r"<img\b[^>]*>", re.I)
PLACEHOLDER_ALT = 'alt="No description has been provided for this image"'
ALT_OR_IMG = re.compile(r"<!--\s*alt:\s*(?P<alt>.*?)\s*-->|(?P<img><img\b[^>]*>)", re.I | re.S)
DATA_SRC = re.compile(r'\ssrc="data:image/(?:png|jpeg|gif|webp);base64,([A-Za-z0-9+/=\s]+)"', re.I)


def _convert(raw: bytes, where: str) -> tuple[bytes, tuple[int, int]]:
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            out = io.BytesIO()
            image.save(out, "WEBP", lossless=True, method=6)
            return out.getvalue(), image.size
    except (OSError, ValueError) as error:
        raise PluginError(f"{where}: an inline image could not be decoded: {error}") from error


def _alt_texts(html: str, where: str) -> str:
    """Give each placeholder-alt image the text of the `<!-- alt: … -->` comment before it; drop the comments."""
    pending = []

    def replace(match):
        if match.group("alt") is not None:
            pending.append(" ".join(match.group("alt").split()).replace('"', "&quot;"))
            return ""
        tag = match.group("img")
        if PLACEHOLDER_ALT not in tag:
            return tag
        if not pending:
            raise PluginError(
                f"{where}: a notebook plot has nbconvert's placeholder alt text; end the markdown cell before its "
                "code cell with <!-- alt: what the plot shows -->"
            )
        return tag.replace(PLACEHOLDER_ALT, f'alt="{pending.pop(0)}"')

    before = html.count(PLACEHOLDER_ALT)
    html = ALT_OR_IMG.sub(replace, html)
    if pending and before:  # a notebook built without its outputs (execute off) has no plots: nothing to match
        raise PluginError(f"{where}: <!-- alt: {pending[0][:40]}… --> is followed by no notebook plot")
    return html


def on_page_content(html, page, config, files):
    written = {}
    if PLACEHOLDER_ALT in html or "<!-- alt:" in html:
        html = _alt_texts(html, page.file.src_uri)

    def replace(match):
        tag = match.group(0)
        data = DATA_SRC.search(tag)
        if data is None:
            return tag
        try:
            raw = base64.b64decode(data.group(1), validate=False)
        except binascii.Error:
            return tag
        if len(raw) < MIN_BYTES:
            return tag
        webp, (width, height) = _convert(raw, page.file.src_uri)
        name = f"{FOLDER}/{hashlib.sha256(webp).hexdigest()[:20]}.webp"
        if name not in written:
            target = Path(config.site_dir) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_file() or target.read_bytes() != webp:
                target.write_bytes(webp)
            written[name] = True
        url = get_relative_url(name, page.url or ".")
        attrs = f' src="{url}"'
        for attr, value in (("width", width), ("height", height), ("loading", "lazy"), ("decoding", "async")):
            if not re.search(rf"\s{attr}=", tag):
                attrs += f' {attr}="{value}"'
        return tag[: data.start()] + attrs + tag[data.end() :]

    html = IMG.sub(replace, html)
    if 'class="jp-Mermaid' not in html:
        html = MERMAID_LOADER.sub("", html)
    return html
