"""Link check of the built site, both languages: every internal link and #anchor resolves; external links are
listed (never fetched: there is no network) and must be well-formed https URLs."""

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

pytestmark = pytest.mark.site

SKIP_SCHEMES = ("mailto:", "javascript:", "data:")
ROOT = Path(__file__).resolve().parent.parent
# 404.html is served at any path, so MkDocs writes its links as absolute paths under site_url's path.
SITE_PATH = urlparse(re.search(r'site_url: .*"(https?://[^"]+)"', (ROOT / "mkdocs.yml").read_text()).group(1)).path
LOCAL_HOSTS = ("127.0.0.1", "localhost")


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])


def parse(path: Path) -> Links:
    p = Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="session")
def link_report(built_site):
    pages = {p: parse(p) for p in built_site.rglob("*.html")}
    broken, external = [], set()
    for page, parsed in pages.items():
        base = "http://site/" + page.relative_to(built_site).as_posix()
        for href in parsed.links:
            if href.startswith(SKIP_SCHEMES):
                continue
            if re.match(r"^(https?:)?//", href):
                external.add(href)
                continue
            if page.name == "404.html":
                lang_root = "en/" if page.parent != built_site else ""
                prefix = SITE_PATH + lang_root
                if href.startswith(prefix):
                    href = urljoin("http://site/" + lang_root, href[len(prefix) :].lstrip("/"))
                elif href.startswith(SITE_PATH):  # a file both languages share (docs/hooks/shared_assets.py)
                    href = urljoin("http://site/", href[len(SITE_PATH) :].lstrip("/"))
            url = urlparse(urljoin(base, href))
            target = built_site / unquote(url.path).lstrip("/")
            if target.is_dir() or url.path.endswith("/"):
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(built_site)}: {href} (no file)")
            elif url.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if unquote(url.fragment) not in ids:
                    broken.append(f"{page.relative_to(built_site)}: {href} (no anchor)")
    return broken, sorted(external)


def test_every_internal_link_and_anchor_resolves(link_report):
    broken, _ = link_report
    assert broken == []


def test_external_links_are_well_formed(link_report, capsys):
    _, external = link_report

    def well_formed(url):
        u = urlparse(url)
        if u.hostname in LOCAL_HOSTS:  # the address `make serve` prints
            return u.scheme == "http"
        return u.scheme == "https" and "." in u.netloc and " " not in url

    malformed = [u for u in external if not well_formed(u)]
    with capsys.disabled():
        print(f"\n{len(external)} distinct external links (listed, not fetched)")
    assert malformed == []
