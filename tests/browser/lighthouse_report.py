"""Lighthouse report of the built site: `make lighthouse` (or `python tests/browser/lighthouse_report.py`).

Serves site/ on 127.0.0.1 with gzip exactly like the browser tests (tests/browser/conftest.py), runs the Lighthouse
pinned in package.json (node_modules/.bin/lighthouse) with Debian's Chromium and the mobile preset (Lighthouse's
default: Moto G Power, simulated slow 4G) on every page of both languages, prints each page's four category
scores, FCP, LCP, TBT and CLS, and writes the table to test-results/lighthouse.md (the JSON reports next to it).

Scores depend on the machine's load: the table records `os.getloadavg()` before and after. Timings are never
asserted in `make test`; the deterministic proxies (pre-rendered math, bytes and requests per page, one copy of
every asset) are in tests/test_site.py and tests/browser/test_every_page.py.

    python tests/browser/lighthouse_report.py [--site site] [--out test-results] [--runs N] [PATH ...]

PATH is a URL path such as / or /en/arcface/ (default: every page of both languages, from tests/site_pages.py).
With --runs N (`make lighthouse RUNS=3`) every page is measured N times and the table shows the run with the median
performance score (Lighthouse's own advice for variable machines); the TBT column then lists all N blocking times.
"""

import argparse
import functools
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent)]

from conftest import CHROMIUM_ARGS, SiteHandler, chromium_path  # noqa: E402
from site_pages import ALL_PAGES, url_of  # noqa: E402

CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
METRICS = {
    "FCP": "first-contentful-paint",
    "LCP": "largest-contentful-paint",
    "TBT": "total-blocking-time",
    "CLS": "cumulative-layout-shift",
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_lighthouse(url: str, report: Path, chromium: str) -> dict:
    flags = " ".join(["--headless=new", *CHROMIUM_ARGS])
    cmd = [
        str(ROOT / "node_modules/.bin/lighthouse"),
        url,
        "--output=json",
        f"--output-path={report}",
        f"--only-categories={','.join(CATEGORIES)}",
        f"--chrome-flags={flags}",
        "--quiet",
    ]
    subprocess.run(cmd, check=True, timeout=300, env=dict(os.environ, CHROME_PATH=chromium))
    return json.loads(report.read_text(encoding="utf-8"))


def row(path: str, lhr: dict) -> dict:
    out = {"page": path}
    for c in CATEGORIES:
        score = lhr["categories"][c]["score"]
        out[c] = "–" if score is None else round(score * 100)
    for name, audit in METRICS.items():
        value = lhr["audits"][audit].get("numericValue")
        if value is None:
            out[name] = "–"
        elif name == "CLS":
            out[name] = f"{value:.3f}"
        elif name == "TBT":
            out[name] = f"{value:,.0f} ms"
        else:
            out[name] = f"{value / 1000:.1f} s"
    # Lighthouse's CPU benchmark at the time of the run: lower means a busier (slower) machine, and blocking time
    # grows accordingly (an idle desktop scores about 1,000 to 2,000).
    out["CPU index"] = round(lhr["environment"]["benchmarkIndex"])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "test-results")
    parser.add_argument("--runs", type=int, default=1, help="runs per page; the median run is reported")
    parser.add_argument("paths", nargs="*", help="URL paths, e.g. / /en/arcface/ (default: every page)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        parser.error(f"{args.site}/index.html not found: build the site first (make site)")
    if not (ROOT / "node_modules/.bin/lighthouse").exists():
        parser.error("node_modules/.bin/lighthouse not found: run npm ci (make setup)")
    chromium = chromium_path()
    paths = args.paths or ["/" + url_of(lang, p) for lang, p in ALL_PAGES]
    reports = args.out / "lighthouse"
    reports.mkdir(parents=True, exist_ok=True)

    handler = functools.partial(SiteHandler, directory=str(args.site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows, before, start = [], load(), time.time()
    try:
        for path in paths:
            name = path.strip("/").replace("/", "_") or "index"
            runs = []
            for i in range(args.runs):
                suffix = f"-{i + 1}" if args.runs > 1 else ""
                for _attempt in range(3):  # a run whose trace Lighthouse could not read has no metrics: run it again
                    lhr = run_lighthouse(base + path, reports / f"{name}{suffix}.json", chromium)
                    if lhr["categories"]["performance"]["score"] is not None:
                        break
                runs.append(lhr)
            runs = [lhr for lhr in runs if lhr["categories"]["performance"]["score"] is not None] or runs
            tbts = [t for lhr in runs if (t := lhr["audits"]["total-blocking-time"].get("numericValue")) is not None]
            perf = [lhr["categories"]["performance"]["score"] or 0 for lhr in runs]
            lhr = runs[perf.index(statistics.median_low(perf))] if args.runs > 1 else runs[0]
            rows.append(row(path, lhr))
            if args.runs > 1 and tbts:
                rows[-1]["TBT"] = f"{statistics.median(tbts):,.0f} ms (" + ", ".join(f"{t:,.0f}" for t in tbts) + ")"
            print(" | ".join(str(v) for v in rows[-1].values()), flush=True)
    finally:
        server.shutdown()

    columns = ["page", *CATEGORIES, *METRICS, "CPU index"]
    lines = [
        f"Lighthouse {lhr['lighthouseVersion']}, {lhr['environment']['hostUserAgent'].split(') ')[-1]}, "
        f"mobile preset (simulated slow 4G), site served with gzip on 127.0.0.1. "
        f"Load average before: {before}; after: {load()}; {time.time() - start:.0f} s for {len(rows)} pages"
        + (
            f", {args.runs} runs each: scores from the median-performance run, TBT the median (all runs)."
            if args.runs > 1
            else "."
        ),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    (args.out / "lighthouse.md").write_text(text, encoding="utf-8")
    print("\n" + text + f"\nSaved {args.out / 'lighthouse.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
