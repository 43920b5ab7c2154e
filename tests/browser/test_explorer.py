"""The margin explorer (docs/assets/explorer/): its formulas against the Python snippets, its controls and its URL.

Oracles: the snippets themselves (snippets/pytorch/margins.py, adaface.py, curricularface.py) in float64, with the
loss and its gradient from torch's cross-entropy and autograd; for the controls, the values put in the URL and
numbers worked out in the test. margins.js is evaluated in Chromium, on the built site, exactly as a reader gets it.
"""

import gzip
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from site_pages import DOCS
from snippet_loader import load_snippet

pytestmark = [pytest.mark.site, pytest.mark.browser]

margins = load_snippet("pytorch/margins.py")
adaface = load_snippet("pytorch/adaface.py")
curricularface = load_snippet("pytorch/curricularface.py")

EXPLORER = DOCS / "assets" / "explorer"
ADAFACE_STATS = {"mu": 20.0, "sigma": 5.0, "h": 0.333, "eps": 1e-3}  # what the page says the explorer fixes
TOLERANCE = 1e-6

LABELS = {  # the label of each control the behaviour tests use, per language
    "ko": {"m": "마진 m", "s": "스케일 s", "method": "방법"},
    "en": {"m": "Margin m", "s": "Scale s", "method": "Method"},
}


# --- the formulas: margins.js against the snippets -----------------------------------------------------------
def snippet_logits(cosine, labels, q):
    """Scaled logits [N, C] from the snippet the page names for q["method"]."""
    method, s = q["method"], q["s"]
    if method == "normface":
        return margins.normface_logits(cosine, labels, s=s)
    if method == "sphereface":
        return margins.sphereface_logits(cosine, labels, s=s, m=int(q["m"]))
    if method == "cosface":
        return margins.cosface_logits(cosine, labels, s=s, m=q["m"])
    if method == "arcface":
        return margins.arcface_logits(cosine, labels, s=s, m=q["m"])
    if method == "combined":
        return margins.combined_margin_logits(cosine, labels, s=s, m1=q["m1"], m2=q["m2"], m3=q["m3"])
    if method == "adaface":
        norms = torch.full((cosine.shape[0],), q["norm"], dtype=torch.float64)
        return adaface.adaface_logits(
            cosine,
            labels,
            norms,
            batch_mean=ADAFACE_STATS["mu"],
            batch_std=ADAFACE_STATS["sigma"],
            s=s,
            m=q["m"],
            h=ADAFACE_STATS["h"],
            eps=ADAFACE_STATS["eps"],
        )
    if method == "curricularface":
        return curricularface.curricularface_logits(cosine, labels, t=q["t"], s=s, m=q["m"])
    raise AssertionError(method)


def from_snippets(q, thetas):
    """One sample per θ: target cosine cos θ, the C - 1 others q["cos"]. Returns what margins.js's evaluate() does."""
    theta = torch.tensor(thetas, dtype=torch.float64)
    cosine = torch.full((len(thetas), q["C"]), q["cos"], dtype=torch.float64)
    cosine[:, 0] = torch.cos(theta)
    cosine.requires_grad_(True)
    labels = torch.zeros(len(thetas), dtype=torch.long)
    logits = snippet_logits(cosine, labels, q)
    loss = F.cross_entropy(logits, labels, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), cosine)
    with torch.no_grad():
        return {
            "target": (logits[:, 0] / q["s"]).numpy(),
            "other": (logits[:, 1] / q["s"]).numpy(),
            "py": torch.softmax(logits, dim=1)[:, 0].numpy(),
            "loss": loss.numpy(),
            # dL/dθ_y = dL/dcos θ_y · dcos θ_y/dθ_y
            "grad": (grad[:, 0] * -torch.sin(theta)).numpy(),
        }


METHOD_CASES = (
    [{"method": "normface"}]
    + [{"method": "sphereface", "m": m} for m in (1, 2, 3, 4, 6)]
    + [{"method": "cosface", "m": m} for m in (0.0, 0.35, 1.2)]
    + [{"method": "arcface", "m": m} for m in (0.1, 0.5, 1.0, 1.5)]
    + [
        {"method": "combined", "m1": a, "m2": b, "m3": c}
        for a, b, c in ((1.0, 0.5, 0.0), (1.0, 0.3, 0.2), (1.35, 0.0, 0.0), (2.5, 0.4, 0.1), (0.7, 1.2, 0.3))
    ]
    + [{"method": "adaface", "m": m, "norm": n} for m in (0.4, 1.0) for n in (0.0, 12.0, 20.0, 27.0, 60.0)]
    + [{"method": "curricularface", "m": m, "t": t} for m in (0.2, 0.5) for t in (0.0, 0.3, 0.9)]
)
SOFTMAX_CASES = [(1.0, 2, -0.3), (30.0, 10, 0.0), (64.0, 1000, 0.5), (64.0, 10, 0.9), (64.0, 10, -0.95)]  # (s, C, cos)


def switch_points(q):
    """Where a formula changes: ArcFace's π - m, SphereFace's kπ/m, the combined margin's (kπ - m2)/m1, AdaFace's
    clips (the angle clip at θ = eps + m·ms and π - eps + m·ms, the cosine clip at acos(1 - eps))."""
    method = q["method"]
    if method in ("arcface", "curricularface"):
        return [math.pi - q["m"]]
    if method == "sphereface":
        return [k * math.pi / q["m"] for k in range(1, int(q["m"]))]
    if method == "combined":
        return [(k * math.pi - q["m2"]) / q["m1"] for k in range(1, 12)]
    if method == "adaface":
        st = ADAFACE_STATS
        ms = min(max(st["h"] * (q["norm"] - st["mu"]) / (st["sigma"] + st["eps"]), -1.0), 1.0)
        return [st["eps"] + q["m"] * ms, math.pi - st["eps"] + q["m"] * ms, math.acos(1 - st["eps"])]
    return []


def theta_grid(q):
    """61 angles across (0, π), and each switch point approached from both sides (1e-6 and 1e-3 away). The ends 0
    and π themselves are left out: there dcos θ/dθ = 0 while the snippets' d/dcos θ of sin θ is infinite (clamped),
    so the gradient with respect to θ is not defined by the snippets."""
    points = list(np.linspace(0.01, math.pi - 0.01, 61))
    for x in switch_points(q):
        points += [x + d for d in (-1e-3, -1e-6, 1e-6, 1e-3)]
    return sorted(float(x) for x in points if 1e-3 <= x <= math.pi - 1e-3)


def all_cases():
    cases = []
    for q in METHOD_CASES:
        for s, C, cos in SOFTMAX_CASES:
            case = {"s": s, "C": C, "cos": cos, "m": 0.0, "m1": 1.0, "m2": 0.0, "m3": 0.0, "norm": 20.0, "t": 0.0}
            case.update(q)
            cases.append((case, theta_grid(case)))
    return cases


# margins.js as the page loads it: next to the explorer.js the page links.
IMPORT_MARGINS = """async () => {
        const href = document.querySelector("a[data-explorer-module]").href;
        window.M = await import(new URL("margins.js", href).href);
    }"""


def test_margins_js_matches_the_snippets_on_a_grid(page, base_url):
    open_page(page, f"{base_url}/en/explorer/")
    page.evaluate(IMPORT_MARGINS)
    assert page.evaluate("({...window.M.ADAFACE})") == ADAFACE_STATS, "the AdaFace statistics the page states"
    cases = all_cases()
    js = page.evaluate(
        """cases => cases.map(([q, thetas]) => {
            const out = {target: [], other: [], py: [], loss: [], grad: []};
            for (const t of thetas) { const e = window.M.evaluate(t, q); for (const k in out) out[k].push(e[k]); }
            return out;
        })""",
        cases,
    )
    worst = {}
    points = 0
    for (q, thetas), got in zip(cases, js, strict=True):
        want = from_snippets(q, thetas)
        points += len(thetas)
        for key, expected in want.items():
            diff = np.abs(np.asarray(got[key], dtype=np.float64) - expected)
            i = int(np.argmax(diff))
            if diff[i] > worst.get(key, (-1.0,))[0]:
                worst[key] = (float(diff[i]), q, thetas[i])
    print(f"\nmargins.js vs the snippets: {points} points in {len(cases)} cases; largest |difference|:")
    for key, (d, q, t) in worst.items():
        print(f"  {key:6s} {d:.3e}  ({q['method']}, θ = {t:.6f})")
    bad = {k: v for k, v in worst.items() if not v[0] <= TOLERANCE}
    assert bad == {}, f"margins.js differs from the snippets by more than {TOLERANCE}: {bad}"


def test_the_grid_visits_both_sides_of_every_switch(page, base_url):
    """The grid is only a proof where the branches differ: ArcFace jumps at π - m, SphereFace's ψ and the combined
    margin change their segment k. Checked in margins.js's own terms: both branches are taken."""
    open_page(page, f"{base_url}/en/explorer/")
    page.evaluate(IMPORT_MARGINS)
    q = {"method": "arcface", "m": 0.5, "s": 64.0, "C": 10, "cos": 0.0}
    below, above = math.pi - 0.5 - 1e-6, math.pi - 0.5 + 1e-6
    assert below in theta_grid(q) and above in theta_grid(q)
    step = page.evaluate("([q, a, b]) => M.target(a, q) - M.target(b, q)", [q, below, above])
    assert step == pytest.approx(math.cos(0.5) + 0.5 * math.sin(0.5) - 1, abs=1e-5)  # the fallback's jump
    q = {"method": "sphereface", "m": 4, "s": 30.0, "C": 10, "cos": 0.0}
    values = page.evaluate("([q, ts]) => ts.map(t => M.target(t, q))", [q, theta_grid(q)])
    assert min(values) < -6.9, "ψ reaches -2m + 1 = -7 at θ = π: all four segments are on the grid"


# --- the controls and the URL --------------------------------------------------------------------------------
def explorer_url(base_url, lang, hash_=""):
    return f"{base_url}/{'' if lang == 'ko' else 'en/'}explorer/{hash_}"


def open_page(page, url):
    """Load a page and wait until its explorer has drawn (the module loads after the page's own scripts)."""
    page.goto(url, wait_until="networkidle")
    page.locator(".mx-panel svg path[data-curve=method]").first.wait_for(timeout=15000)


def curve(page, panel):
    """The `d` of the method's curve in panel 1 (logit), 2 (prob) or 4 (grad)."""
    index = {"logit": 0, "prob": 1, "grad": 3}[panel]
    return page.locator(".mx-panel svg").nth(index).locator("path[data-curve=method]").get_attribute("d")


def hash_params(page):
    return dict(p.split("=", 1) for p in page.evaluate("location.hash.slice(1)").split("&") if "=" in p)


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_keyboard_on_a_slider_redraws_the_curve_and_updates_the_url(page, base_url, lang):
    open_page(page, explorer_url(base_url, lang, "#method=arcface&s=64&m=0.5"))
    logit, prob = curve(page, "logit"), curve(page, "prob")
    margin = page.get_by_label(LABELS[lang]["m"], exact=True)
    margin.focus()
    page.keyboard.press("ArrowRight")
    assert hash_params(page)["m"] == "0.51"
    assert curve(page, "logit") != logit, "panel 1 did not change with m"
    # the numbers follow the new m: ArcFace's target logit at θ_y = 60°, s = 64, m = 0.51
    assert f"{64 * math.cos(math.radians(60) + 0.51):.4g}" in page.locator(".mx-readout").inner_text()
    page.get_by_label(LABELS[lang]["s"], exact=True).focus()
    page.keyboard.press("ArrowLeft")
    assert hash_params(page)["s"] == "63"
    assert curve(page, "prob") != prob, "panel 2 did not change with s"
    assert page.record.console_errors == []


def test_loading_a_url_restores_the_controls(page, base_url):
    open_page(page, explorer_url(base_url, "en", "#method=cosface&s=30&m=0.2&C=100&cos=0.1&theta=45"))
    assert page.get_by_label("Method", exact=True).input_value() == "cosface"
    assert page.get_by_label("Scale s", exact=True).input_value() == "30"
    assert page.get_by_label("Margin m", exact=True).input_value() == "0.2"
    assert page.get_by_label("Number of classes C", exact=True).input_value() == "100"
    assert page.locator(".mx-note").is_hidden()
    # the numbers under the controls, worked out here: CosFace at θ = 45°, s = 30, m = 0.2, 99 others at 0.1
    z, o = 30 * (math.cos(math.radians(45)) - 0.2), 30 * 0.1
    py = 1 / (1 + 99 * math.exp(o - z))
    text = page.locator(".mx-readout").inner_text()
    assert f"target logit {z:.4g}" in text and f"p_y = {py:.4g}".replace("_", "") in text.replace("_", ""), text


def test_loading_a_url_restores_the_combined_margin_in_korean(page, base_url):
    open_page(page, explorer_url(base_url, "ko", "#method=combined&m1=1.5&m2=0.6&m3=0.1&s=32"))
    assert page.get_by_label("방법", exact=True).input_value() == "combined"
    values = {k: page.locator(f"input[id$='-{k}']").first.input_value() for k in ("m1", "m2", "m3", "s")}
    assert values == {"m1": "1.5", "m2": "0.6", "m3": "0.1", "s": "32"}
    assert page.get_by_label("마진 m", exact=True).is_hidden(), "the single-margin control belongs to other methods"


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_every_method_draws_every_panel_without_an_error(page, base_url, lang):
    open_page(page, explorer_url(base_url, lang, "#theta=40&norm=5&t=0.5"))
    select = page.get_by_label(LABELS[lang]["method"], exact=True)
    for method in ("normface", "sphereface", "cosface", "arcface", "combined", "adaface", "curricularface"):
        select.select_option(method)
        assert hash_params(page)["method"] == method
        for panel in ("logit", "prob", "grad"):
            d = curve(page, panel)
            assert d and "NaN" not in d and d.count("L") > 100, f"{method}: panel {panel} is blank or broken"
        assert page.locator(".mx-panel svg rect.mx-c1").count() > 0, f"{method}: no decision region"
        assert page.locator(".mx-panel svg path.mx-arc").count() >= 2, f"{method}: no arcs on the circle"
    assert page.record.console_errors == []


def test_an_out_of_range_url_value_is_clamped_with_a_note(page, base_url):
    open_page(page, explorer_url(base_url, "en", "#method=arcface&s=1000&m=3&C=1&cos=abc&foo=1"))
    assert page.get_by_label("Scale s", exact=True).input_value() == "128"
    assert page.get_by_label("Margin m", exact=True).input_value() == "1.5"
    assert page.get_by_label("Number of classes C", exact=True).input_value() == "2"
    note = page.locator(".mx-note")
    assert note.is_visible()
    text = note.inner_text()
    for expected in ("s = 1000", "128", "m = 3", "1.5", "C = 1", '"abc"', '"foo"'):
        assert expected in text, f"{expected!r} missing from the note: {text}"
    for panel in ("logit", "prob", "grad"):
        d = curve(page, panel)
        assert d and "NaN" not in d and d.count("L") > 100, f"panel {panel} is blank or broken"
    assert page.locator(".mx-panel svg rect.mx-c1").count() > 0, "the decision regions are blank"
    assert page.record.console_errors == []


def test_an_unknown_method_in_the_url_falls_back_with_a_note(page, base_url):
    open_page(page, explorer_url(base_url, "ko", "#method=bogus&s=64"))
    assert page.get_by_label("방법", exact=True).input_value() == "arcface"
    assert "bogus" in page.locator(".mx-note").inner_text()
    assert page.record.console_errors == []


def test_the_arcface_embed_updates_its_link_to_the_explorer_not_the_page_url(page, base_url):
    open_page(page, f"{base_url}/en/arcface/")
    embed = page.locator("#margin-explorer ~ .margin-explorer").first
    assert embed.locator(".mx-panel").count() == 2
    embed.get_by_label("Margin m", exact=True).focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("location.hash") == ""
    link = page.locator("a[data-explorer-link]").first
    assert "m=0.51" in link.get_attribute("href")
    link.click()
    page.wait_for_url(re.compile(r"/en/explorer/#"))
    page.locator(".mx-panel svg path[data-curve=method]").first.wait_for(timeout=15000)
    assert page.get_by_label("Margin m", exact=True).input_value() == "0.51"


# --- quality -------------------------------------------------------------------------------------------------
def luminance(rgb):
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(float(x)) for x in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("scheme", ["default", "slate"])
def test_panels_are_readable_in_both_color_schemes(page, base_url, scheme):
    """Axis text 4.5:1 and every drawn line 3:1 against the page background (WCAG 1.4.3 and 1.4.11)."""
    open_page(page, explorer_url(base_url, "en", "#method=curricularface&centers=3"))
    for _ in range(3):  # the palette toggle cycles system -> light -> dark
        if page.locator("body").get_attribute("data-md-color-scheme") == scheme:
            break
        page.locator("form[data-md-component='palette'] label:visible").first.click()
    assert page.locator("body").get_attribute("data-md-color-scheme") == scheme
    colors = page.evaluate(
        """() => {
            const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
            const bg = rgb(getComputedStyle(document.querySelector(".md-main")).backgroundColor === "rgba(0, 0, 0, 0)"
                ? getComputedStyle(document.body).backgroundColor
                : getComputedStyle(document.querySelector(".md-main")).backgroundColor);
            const svg = document.querySelector(".mx-panel svg");
            const text = rgb(getComputedStyle(svg.querySelector("text")).fill);
            const lines = {};
            for (const sel of ["path.mx-curve", "path.mx-ref", ".mx-arc.mx-c1", ".mx-arc.mx-c2", ".mx-arc.mx-c3"])
                lines[sel] = rgb(getComputedStyle(document.querySelector(sel)).stroke);
            return {bg, text, lines};
        }"""
    )
    assert contrast(colors["text"], colors["bg"]) >= 4.5, colors
    low = {k: round(contrast(v, colors["bg"]), 2) for k, v in colors["lines"].items() if contrast(v, colors["bg"]) < 3}
    assert low == {}, f"lines below 3:1 on the {scheme} background {colors['bg']}: {low}"


def test_the_explorer_scripts_stay_small(root):
    """The issue's budget: the explorer's JavaScript at most 60 KB with gzip."""
    files = sorted(EXPLORER.glob("*.js"))
    assert [f.name for f in files] == ["explorer.js", "margins.js"]
    size = len(gzip.compress(b"".join(f.read_bytes() for f in files), compresslevel=9))
    assert size <= 60_000, f"explorer JavaScript is {size} bytes gzipped"


def test_only_the_pages_with_an_explorer_load_its_script(built_site):
    loading = set()
    for path in built_site.rglob("*.html"):
        html = path.read_text(encoding="utf-8")
        if "data-explorer-module" in html:
            loading.add(path.parent.relative_to(built_site).as_posix())
        has_explorer, has_loader = 'class="margin-explorer"' in html, "data-explorer-module" in html
        assert has_explorer == has_loader, f"{path}: explorer {has_explorer}, link to explorer.js {has_loader}"
    assert loading == {"explorer", "arcface", "angular-margins", "en/explorer", "en/arcface", "en/angular-margins"}


LAYOUT_SHIFT = """() => new Promise(resolve => {
  let total = 0;
  new PerformanceObserver(list => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
  }).observe({ type: "layout-shift", buffered: true });
  setTimeout(() => resolve(total), 500);
})"""


@pytest.mark.parametrize("viewport", [(412, 823), (1280, 900)], ids=["phone", "desktop"])
@pytest.mark.parametrize("lang", ["ko", "en"])
def test_mounting_the_explorer_does_not_shift_the_page(browser, base_url, lang, viewport):
    # Cumulative layout shift (the browser's own score, as Lighthouse reads it) while the explorer mounts. Measured
    # 0.26-0.34 before its box reserved a screen's height, about 0.001 after; 0.05 is half of "good" (0.1).
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    try:
        open_page(page, explorer_url(base_url, lang))
        assert page.evaluate(LAYOUT_SHIFT) < 0.05
    finally:
        context.close()
