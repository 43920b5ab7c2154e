"""Numbers of the glyph study written into the prose at build time, from the results the same build published.

The Experiments page discusses the glyph study with numbers ("ArcFace 25.4% ± 1.0"). Typed by hand they would go
stale whenever the study is rerun, and a rerun on another CPU type moves the last digit of some of them (the
kernels that torch picks differ between processors); so the page writes a token instead and this hook replaces it
with the value in docs/assets/results/glyphs/summary.json, which `make figures` wrote for this build. The tables
the page includes come from the same file, so the prose and the tables always agree.

A token is `[[glyphs:KIND:ARGUMENTS]]`, the value in percent (percentage points for differences) with one decimal:
  [[glyphs:mean:arcface]]                 mean TAR@FAR=1e-3 over the seeds, held-out typefaces
  [[glyphs:std:arcface]]                  its sample standard deviation over the seeds
  [[glyphs:mean:arcface:training_faces]]  the same on the training typefaces
  [[glyphs:paired:arcface - normface:mean]]   the paired difference (mean, std, min or max over the seeds)
  [[glyphs:study:margin:cosface:0.2]]     a study point (seed 0): study, method, value on its axis
  [[glyphs:ratio:arcface:pixels]]         mean over mean, no decimals ("about 13 times")
An unknown token, or a page with tokens when the results are missing, fails the build with the page named.
"""

import json
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

SUMMARY = Path(__file__).resolve().parents[1] / "assets" / "results" / "glyphs" / "summary.json"
TOKEN = re.compile(r"\[\[glyphs:([^\]]+)\]\]")
HEADLINE = "tar_at_far_1e-3"


def value(record: dict, spec: str) -> str:
    """The text that replaces [[glyphs:spec]]; KeyError or ValueError when spec names nothing in the record."""
    kind, *args = spec.split(":")
    if kind in ("mean", "std"):
        method, where = args[0], (args[1] if len(args) > 1 else "held_out_faces")
        return f"{100 * record['summary'][method][where][HEADLINE][kind]:.1f}"
    if kind == "paired":
        pair, field = args
        entry = record["paired"][pair]
        if field in ("min", "max"):
            return f"{(min if field == 'min' else max)(entry['per_seed']):+.1f}"
        return f"{entry[field]:.1f}"
    if kind == "study":
        study, method, x = args
        # A point is named by its value as the page prints it: "10.3" names the AdaCos scale 10.3415...
        matches = [y for p, y in record["studies"][study][method] if abs(float(p) - float(x)) <= 0.05]
        if len(matches) != 1:
            raise KeyError(f"{study}:{method} has no single point at {x}")
        return f"{100 * matches[0]:.1f}"
    if kind == "ratio":
        a, b = args
        means = [record["summary"][m]["held_out_faces"][HEADLINE]["mean"] for m in (a, b)]
        return f"{means[0] / means[1]:.0f}"
    raise ValueError(f"unknown kind {kind!r}")


def fill(markdown: str, record: dict | None, where: str) -> str:
    def replace(match):
        if record is None:
            raise PluginError(f"{where}: {SUMMARY} is missing; run `make figures` before building")
        try:
            return value(record, match.group(1))
        except (KeyError, ValueError, IndexError) as error:
            raise PluginError(f"{where}: [[glyphs:{match.group(1)}]] names no published result ({error})") from None

    return TOKEN.sub(replace, markdown)


def on_page_markdown(markdown, page, config, files):
    if "[[glyphs:" not in markdown:
        return markdown
    record = json.loads(SUMMARY.read_text(encoding="utf-8")) if SUMMARY.is_file() else None
    return fill(markdown, record, page.file.src_uri)
