"""Shared test set-up.

- The Keras backend is fixed per process: set KERAS_BACKEND before pytest (default here: torch).
- `built_site`: both language builds, made once per test session with `mkdocs build --strict` into a temp folder
  laid out like the published site (Korean at /, English at /en/). Tests that use it are marked `site`.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"ko": "mkdocs.yml", "en": "mkdocs.en.yml"}


def mkdocs_build(config: str, site_dir: Path, cwd: Path = ROOT, execute_notebooks: bool = True):
    """Run `mkdocs build --strict`; returns the CompletedProcess (never raises)."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", NB_EXECUTE="true" if execute_notebooks else "false")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", config, "-d", str(site_dir)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    prebuilt = os.environ.get("PREBUILT_SITE")  # while iterating on tests only: reuse a site built earlier
    if prebuilt:
        return Path(prebuilt).resolve()
    site = tmp_path_factory.mktemp("site")
    for lang, config in CONFIGS.items():
        result = mkdocs_build(config, site if lang == "ko" else site / lang)
        assert result.returncode == 0, f"strict {lang} build failed:\n{result.stderr[-4000:]}"
    return site


def pytest_terminal_summary(terminalreporter):
    """Print the browser measurements of every page and save them for the CI artifact."""
    from site_pages import SUMMARY

    if not SUMMARY:
        return
    columns = [
        "page",
        "requests",
        "bytes",
        "bytes_with_figures",
        "formulas",
        "critical",
        "serious",
        "moderate",
        "minor",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in sorted(SUMMARY, key=lambda r: r["page"]):
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    worst = max(SUMMARY, key=lambda r: r["bytes"])
    lines.append(f"\nHeaviest first load: {worst['page']} — {worst['bytes']:,} bytes in {worst['requests']} requests")
    terminalreporter.section("browser summary (first load, per page)")
    for line in lines:
        terminalreporter.write_line(line)
    out = ROOT / "test-results"
    out.mkdir(exist_ok=True)
    (out / "browser-summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
