"""Browser fixtures: the built site served on 127.0.0.1 and Debian's Chromium driven by Playwright.

Playwright's own browser download is never used (no network): we launch the system Chromium by path.
When CI=true a missing Chromium is a failure, never a skip.
"""

import functools
import gzip
import http.server
import io
import os
import shutil
import threading

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]


def chromium_path():
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    message = "Chromium not found: install Debian's package (sudo apt-get install chromium) or set CHROMIUM=/path"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the built site like GitHub Pages does: text compressed with gzip when the browser accepts it, so the
    page weights we measure are what a reader downloads."""

    COMPRESS = (".html", ".css", ".js", ".json", ".svg", ".xml", ".txt", ".map", ".ipynb")

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (accepts_gzip and path.endswith(self.COMPRESS) and os.path.isfile(path)):
            return super().send_head()
        if os.path.isdir(self.translate_path(self.path)) and not self.path.split("?")[0].endswith("/"):
            return super().send_head()  # let the base class redirect /dir to /dir/
        with open(path, "rb") as f:
            body = gzip.compress(f.read(), mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def base_url(built_site):
    handler = functools.partial(SiteHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageRecord:
    """What a page did while loading: console errors, failed requests, and every URL it asked for."""

    def __init__(self, page):
        self.console_errors, self.failed, self.requests = [], [], []
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        page.on("request", lambda r: self.requests.append(r.url))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.record = PageRecord(page)
    yield page
    context.close()
