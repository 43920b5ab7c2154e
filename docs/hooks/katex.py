"""MkDocs hook: render every formula at build time with the KaTeX pinned in package.json.

The built pages contain KaTeX's HTML (and MathML for screen readers); a reader's browser loads only KaTeX's CSS
and fonts and runs no math JavaScript. One Node process per build (docs/hooks/katex_server.cjs) renders each
page's formulas in one batch over stdin/stdout.

What is rendered, in the <body> of every page (Markdown pages and mkdocs-jupyter's notebook pages alike, the
table of contents included):
- pymdownx.arithmatex's output (generic mode): `\\( \\)` inline and `\\[ \\]` display, inside `.arithmatex`;
- `$ $` and `$$ $$` left in text that Markdown did not process: notebook Markdown cells and raw HTML such as
  `<figcaption>`. A `$` opens only if no space follows it and closes only if no space precedes it and no digit
  follows it (arithmatex's "smart dollar" rule), so prices such as "$5 and $10" stay text.
Text inside `<code>`, `<pre>`, `<script>`, `<style>` and `<textarea>` is never touched.

A formula KaTeX cannot parse fails the build with the page and the formula named. nbconvert's MathJax loader
(mkdocs-jupyter's custom_mathjax_url) is removed from notebook pages: their math is rendered here too.
"""

import html
import json
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.katex")

SERVER = Path(__file__).with_name("katex_server.cjs")
SKIP = {"code", "pre", "script", "style", "textarea"}
TAG = re.compile(r"(<!--.*?-->|<[^>]*>)", re.S)
TAG_NAME = re.compile(r"<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9-]*)")
MATH = re.compile(
    r"\$\$(?P<dd>.+?)\$\$"  # $$ display $$
    r"|\\\[(?P<bd>.+?)\\\]"  # \[ display \]
    r"|\\\((?P<bi>.+?)\\\)"  # \( inline \)
    r"|(?<![\\$])\$(?![\s$])(?P<di>(?:\\\$|[^$])+?)(?<![\s\\])\$(?![\d$])",  # $inline$, smart-dollar rule
    re.S,
)
MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


class Renderer:
    """One `node katex_server.cjs` process; renders batches of (tex, display) and caches the results."""

    def __init__(self, root: Path):
        node = shutil.which("node")
        if node is None:
            raise PluginError("KaTeX: Node.js (`node`) is not on PATH; it renders the math at build time")
        if not (root / "node_modules/katex/package.json").is_file():
            raise PluginError("KaTeX: node_modules/katex is missing; run `make setup` (npm ci) first")
        self.proc = subprocess.Popen(
            [node, str(SERVER), str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.cache: dict[tuple[str, bool], str] = {}
        self.formulas = 0
        self.seconds = 0.0

    def render(self, items: list[tuple[str, bool]]) -> list[str | Exception]:
        start = time.perf_counter()
        todo = sorted({item for item in items if item not in self.cache})
        errors = {}
        if todo:
            self.proc.stdin.write(json.dumps({"items": [{"tex": t, "display": d} for t, d in todo]}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                raise PluginError("KaTeX: the Node renderer exited unexpectedly")
            for item, result in zip(todo, json.loads(line)["results"], strict=True):
                if "html" in result:
                    self.cache[item] = result["html"]
                else:
                    errors[item] = result["error"]
        self.formulas += len(items)
        self.seconds += time.perf_counter() - start
        return [self.cache.get(item) or ValueError(errors[item]) for item in items]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_renderer: Renderer | None = None


def find_math(content: str) -> tuple[list[str], list[tuple[int, re.Match]]]:
    """Split `content` into parts and list every formula as (part index, match) outside code and scripts."""
    parts = TAG.split(content)
    found = []
    depth = dict.fromkeys(SKIP, 0)
    for i, part in enumerate(parts):
        if i % 2:
            m = TAG_NAME.match(part)
            if m and m.group(2).lower() in SKIP and not part.rstrip().endswith("/>"):
                name = m.group(2).lower()
                depth[name] = max(0, depth[name] + (-1 if m.group(1) else 1))
            continue
        if part and not any(depth.values()):
            found += [(i, m) for m in MATH.finditer(part)]
    return parts, found


def render_page(content: str, where: str, renderer: Renderer) -> str:
    content = MATHJAX.sub("", content)
    parts, found = find_math(content)
    if not found:
        return content
    items = []
    for _, m in found:
        display = m.group("dd") is not None or m.group("bd") is not None
        tex = next(g for g in (m.group("dd"), m.group("bd"), m.group("bi"), m.group("di")) if g is not None)
        items.append((html.unescape(tex).strip(), display))
    results = renderer.render(items)
    failed = [(tex, r) for (tex, _), r in zip(items, results, strict=True) if isinstance(r, Exception)]
    if failed:
        listed = "\n".join(f"  {tex!r}: {err}" for tex, err in failed)
        raise PluginError(f"KaTeX cannot render {len(failed)} formula(s) on {where}:\n{listed}")
    # Replace from the end of each text part so earlier match offsets stay valid.
    for (i, m), rendered in reversed(list(zip(found, results, strict=True))):
        parts[i] = parts[i][: m.start()] + rendered + parts[i][m.end() :]
    return "".join(parts)


def on_pre_build(config):
    global _renderer
    _close()
    _renderer = Renderer(Path(config.config_file_path).resolve().parent)


KATEX_CSS = re.compile(r'<link rel="stylesheet" href="(?P<base>[^"]*)katex\.min\.css[^"]*">')
# The fonts of ordinary text and variables, and of the first two sizes of big delimiters, each preloaded when a
# page uses it: discovered only once the CSS has been applied to rendered math, they would arrive after the first
# paint, and with KaTeX's font-display: block the formulas would then change width and move the text around them
# (layout shift 0.09 on /en/faq/, 0.0008 with the preloads).
PRELOAD_FONTS = {  # font -> the classes of KaTeX's HTML that use it (katex.min.css)
    "Main-Regular": re.compile(r'class="katex"'),
    "Math-Italic": re.compile(r'class="[^"]*\bmathnormal\b'),
    "Size1-Regular": re.compile(r'class="[^"]*\b(delimsizing size1|small-op)\b'),
    "Size2-Regular": re.compile(r'class="[^"]*\b(delimsizing size2|large-op)\b'),
}


def preload_fonts(page_html: str) -> str:
    """Insert <link rel=preload> for the KaTeX fonts the page uses, before KaTeX's stylesheet."""
    css = KATEX_CSS.search(page_html)
    if css is None or 'class="katex"' not in page_html:
        return page_html
    links = "".join(
        f'<link rel="preload" href="{css["base"]}fonts/KaTeX_{name}.woff2" as="font" type="font/woff2" crossorigin>'
        for name, used in PRELOAD_FONTS.items()
        if used.search(page_html)
    )
    return page_html[: css.start()] + links + page_html[css.start() :]


def on_post_page(output, page, config):
    """Render the whole <body> (the article and the table of contents, whose heading titles carry math too)."""
    if _renderer is None:
        on_pre_build(config)
    head, sep, body = output.partition("<body")
    if not sep:
        return preload_fonts(render_page(output, page.file.src_uri, _renderer))
    return preload_fonts(head + sep + render_page(body, page.file.src_uri, _renderer))


def _close():
    global _renderer
    if _renderer is not None:
        _renderer.close()
        _renderer = None


def on_post_build(config):
    if _renderer is not None:
        log.info(
            "KaTeX: %d formulas (%d distinct) rendered at build time in %.2f s",
            _renderer.formulas,
            len(_renderer.cache),
            _renderer.seconds,
        )
    _close()


def on_build_error(error):
    _close()


def on_shutdown():
    _close()
