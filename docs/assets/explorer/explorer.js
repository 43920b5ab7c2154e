// The margin explorer: controls, the URL hash and five SVG panels. Every number it draws comes from margins.js;
// this file only lays out and draws. It mounts every <div class="margin-explorer"> on the page:
//   data-method="arcface"        the method shown first (the URL hash wins on the explorer page)
//   data-controls="method,s,m"   which controls a compact embed shows (default: all)
//   data-panels="logit,prob"     which panels it draws (default: all five)
//   data-url="off"               an embed leaves the page's URL alone and updates a[data-explorer-link] instead
// Labels follow <html lang> (ko or en); axis text is language-neutral.

import * as M from "./margins.js";

const DEG = Math.PI / 180;

const TEXT = {
  en: {
    controls: "Margin explorer settings",
    method: "Method",
    s: "Scale s",
    m: "Margin m",
    mSphere: "Margin m (integer)",
    m1: "m1 (multiplies θ, SphereFace)",
    m2: "m2 (added to θ, ArcFace; radians)",
    m3: "m3 (subtracted from cos, CosFace)",
    C: "Number of classes C",
    cos: "Cosine of every other class, cos θ_j",
    norm: "Feature norm ‖x‖ (AdaFace; μ = 20, σ = 5)",
    t: "Curriculum t (CurricularFace)",
    theta: "Sample's target angle θ_y (°)",
    centers: "Class centers on the circle",
    combined: "combined (m1, m2, m3)",
    radians: "rad",
    logit: "Target logit ÷ s",
    prob: "Target probability p_y",
    regions: "Decision regions of two classes",
    grad: "Gradient of the loss, dL/dθ_y",
    circle: "Arcs each class keeps",
    raw: { arcface: "no fallback", curricularface: "no fallback", sphereface: "cos(mθ_y), no ψ",
      combined: "not continued" },
    reference: "NormFace",
    sample: "sample",
    rings: (n) => `outer: ${n} · inner: NormFace`,
    note: "From the URL:",
    unknownMethod: (v, d) => `method "${v}" is unknown; showing ${d}.`,
    notNumber: (k, v) => `${k} = "${v}" is not a number; kept the default.`,
    clamped: (k, v, lo, hi, to) => `${k} = ${v} is outside ${lo}–${hi}; using ${to}.`,
    rounded: (k, v, to) => `${k} = ${v} moved to the nearest allowed value, ${to}.`,
    unknownKey: (k) => `"${k}" is not a setting; ignored.`,
    readout: (r) =>
      `At θ_y = ${r.theta}°: target logit ${r.z}, other logit ${r.o}, p_y = ${r.p}, loss ${r.l}, dL/dθ_y = ${r.g}` +
      (r.ms === null ? "" : `, margin scaler ẑ = ${r.ms}`) + ".",
    describe: {
      logit: (n) => `Target logit divided by s against θ_y from 0° to 180° for ${n}, with NormFace's cos θ_y dashed.`,
      prob: (n) => `Probability of the target class against θ_y for ${n}, with NormFace dashed.`,
      regions: (n) => `Where class 1 and class 2 win with the margin of ${n} in the plane of θ₁ and θ₂ (0° to 180°).`,
      grad: (n) => `Derivative of the loss with respect to θ_y against θ_y for ${n}, with NormFace dashed.`,
      circle: (n) => `Unit circle with class centers; outer ring: the arcs each class wins with ${n}; inner ring: NormFace.`,
    },
  },
  ko: {
    controls: "마진 탐색기 설정",
    method: "방법",
    s: "스케일 s",
    m: "마진 m",
    mSphere: "마진 m (정수)",
    m1: "m1 (θ에 곱함, SphereFace)",
    m2: "m2 (θ에 더함, ArcFace, 라디안)",
    m3: "m3 (cos에서 뺌, CosFace)",
    C: "클래스 수 C",
    cos: "다른 클래스 모두의 코사인 cos θ_j",
    norm: "특징 노름 ‖x‖ (AdaFace, μ = 20, σ = 5)",
    t: "커리큘럼 변수 t (CurricularFace)",
    theta: "샘플의 정답 각도 θ_y (°)",
    centers: "원 위의 클래스 중심 수",
    combined: "결합 마진 (m1, m2, m3)",
    radians: "rad",
    logit: "정답 로짓 ÷ s",
    prob: "정답 확률 p_y",
    regions: "두 클래스의 결정 영역",
    grad: "손실의 기울기 dL/dθ_y",
    circle: "클래스마다 차지하는 호",
    raw: { arcface: "폴백 없이", curricularface: "폴백 없이", sphereface: "cos(mθ_y), ψ 없이",
      combined: "이어 붙이지 않고" },
    reference: "NormFace",
    sample: "샘플",
    rings: (n) => `바깥: ${n} · 안쪽: NormFace`,
    note: "주소에서 읽은 값:",
    unknownMethod: (v, d) => `방법 "${v}"는 없는 이름이라 ${d}를 보여 줍니다.`,
    notNumber: (k, v) => `${k} = "${v}"는 숫자가 아니라 기본값을 썼습니다.`,
    clamped: (k, v, lo, hi, to) => `${k} = ${v}는 범위(${lo}–${hi}) 밖이라 ${to}(으)로 맞췄습니다.`,
    rounded: (k, v, to) => `${k} = ${v}는 가장 가까운 허용값 ${to}(으)로 옮겼습니다.`,
    unknownKey: (k) => `"${k}"는 설정 이름이 아니라 무시했습니다.`,
    readout: (r) =>
      `θ_y = ${r.theta}°에서: 정답 로짓 ${r.z}, 다른 클래스 로짓 ${r.o}, p_y = ${r.p}, 손실 ${r.l}, dL/dθ_y = ${r.g}` +
      (r.ms === null ? "" : `, 마진 스케일러 ẑ = ${r.ms}`) + ".",
    describe: {
      logit: (n) => `${n}의 정답 로짓을 s로 나눈 값을 θ_y(0°–180°)에 대해 그린 곡선, 파선은 NormFace의 cos θ_y.`,
      prob: (n) => `${n}의 정답 클래스 확률을 θ_y에 대해 그린 곡선, 파선은 NormFace.`,
      regions: (n) => `θ₁, θ₂ 평면(0°–180°)에서 ${n}의 마진을 적용했을 때 클래스 1과 2가 각각 이기는 영역.`,
      grad: (n) => `${n}에서 손실을 θ_y로 미분한 값을 θ_y에 대해 그린 곡선, 파선은 NormFace.`,
      circle: (n) => `단위원 위의 클래스 중심. 바깥 고리는 ${n}에서 각 클래스가 이기는 호, 안쪽 고리는 NormFace.`,
    },
  },
};

const NAMES = {
  normface: "NormFace",
  sphereface: "SphereFace",
  cosface: "CosFace",
  arcface: "ArcFace",
  combined: null, // from TEXT
  adaface: "AdaFace",
  curricularface: "CurricularFace",
};

// Ranges of the controls; each lies inside what the snippet accepts (margins.py raises outside them).
const RANGE = {
  s: { min: 1, max: 128, step: 1, value: 64 },
  m: {
    sphereface: { min: 1, max: 8, step: 1, value: 4 },
    cosface: { min: 0, max: 1.5, step: 0.01, value: 0.35 },
    arcface: { min: 0, max: 1.5, step: 0.01, value: 0.5 },
    adaface: { min: 0, max: 1.5, step: 0.01, value: 0.4 },
    curricularface: { min: 0, max: 1.5, step: 0.01, value: 0.5 },
  },
  m1: { min: 0.5, max: 4, step: 0.05, value: 1 },
  m2: { min: 0, max: 1.5, step: 0.01, value: 0.3 },
  m3: { min: 0, max: 1, step: 0.01, value: 0.2 },
  C: { min: 2, max: 100000, step: 1, value: 10 },
  cos: { min: -1, max: 1, step: 0.01, value: 0 },
  norm: { min: 0, max: 60, step: 0.5, value: 20 },
  t: { min: 0, max: 1, step: 0.01, value: 0.3 },
  theta: { min: 0, max: 180, step: 1, value: 60 },
  centers: { min: 2, max: 3, step: 1, value: 2 },
};
const KEYS = ["method", "s", "m", "m1", "m2", "m3", "C", "cos", "norm", "t", "theta", "centers"];
const PANELS = ["logit", "prob", "regions", "grad", "circle"];

const CSS = `
.margin-explorer{margin:1em 0;--mx-method:#c2255c;--mx-c1:#1864ab;--mx-c2:#c35a00;--mx-c3:#2b8a3e;
 --mx-fg:var(--md-default-fg-color,#222);--mx-muted:var(--md-default-fg-color--light,#666);
 --mx-grid:var(--md-default-fg-color--lightest,#ddd)}
[data-md-color-scheme=slate] .margin-explorer{--mx-method:#ff8fb1;--mx-c1:#74c0fc;--mx-c2:#ffa94d;--mx-c3:#8ce99a}
.mx-controls{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.4rem 1.2rem;margin:0 0 .6rem}
.mx-control{display:flex;flex-direction:column;min-width:0}
.mx-control[hidden]{display:none}
.mx-control label{font-size:.72rem;font-weight:600}
.mx-row{display:flex;align-items:center;gap:.5rem;min-width:0}
.mx-row input[type=range]{flex:1 1 auto;min-width:0;width:100%;accent-color:var(--md-accent-fg-color,#526cfe)}
.mx-row output{font-variant-numeric:tabular-nums;font-size:.72rem;min-width:3.5em;text-align:right}
.mx-control select,.mx-control input[type=number]{font:inherit;font-size:.75rem;max-width:100%;padding:.15rem .3rem;
 color:var(--mx-fg);background:var(--md-default-bg-color,#fff);border:1px solid var(--mx-muted);border-radius:.2rem}
.mx-note{border-left:.2rem solid var(--md-warning-fg-color,#ff9100);padding:.2rem .6rem;font-size:.75rem}
.mx-readout{font-size:.72rem;font-variant-numeric:tabular-nums;margin:.3rem 0}
.mx-panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,16rem),1fr));gap:.6rem}
.md-typeset .margin-explorer .mx-panel{display:block;width:auto;margin:0;min-width:0}
.mx-panel svg{display:block;width:100%;height:auto;overflow:visible}
.mx-panel figcaption{font-size:.72rem;text-align:left;margin:.1rem 0 0;max-width:none}
.margin-explorer svg text{fill:var(--mx-fg);font-size:11px;font-family:var(--md-text-font-family,sans-serif)}
.mx-axis{stroke:var(--mx-muted);stroke-width:1;fill:none}
.mx-gridline{stroke:var(--mx-grid);stroke-width:1}
.mx-ref{stroke:var(--mx-muted);stroke-width:1.3;stroke-dasharray:5 3;fill:none}
.mx-curve{stroke:var(--mx-method);stroke-width:2;fill:none}
.mx-raw{stroke:var(--mx-method);stroke-width:1.2;stroke-dasharray:1.5 2.5;fill:none;opacity:.8}
.mx-mark{stroke:var(--mx-muted);stroke-width:1;stroke-dasharray:2 3}
.mx-dot{fill:var(--mx-method);stroke:var(--md-default-bg-color,#fff);stroke-width:1}
.mx-c1{fill:var(--mx-c1);stroke:var(--mx-c1)}.mx-c2{fill:var(--mx-c2);stroke:var(--mx-c2)}
.mx-c3{fill:var(--mx-c3);stroke:var(--mx-c3)}
.mx-region{opacity:.38;stroke:none}
.mx-arc{fill:none;stroke-width:9}.mx-arc-ref{fill:none;stroke-width:5;opacity:.55}
.mx-legend line{stroke-width:2}`;

// --- small helpers -----------------------------------------------------------------------------------------
const SVGNS = "http://www.w3.org/2000/svg";
function el(tag, attrs = {}, parent = null, text = null) {
  const isSvg = tag.startsWith("svg:");
  const node = isSvg ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
  if (text !== null) rich(node, text, isSvg);
  if (parent) parent.appendChild(node);
  return node;
}

// Text with subscripts written as x_y (θ_y, p_y, θ_1): <sub> in HTML, a lowered <tspan> in SVG (no font needs
// the Unicode subscript letters).
function rich(node, text, isSvg) {
  node.textContent = "";
  const parts = String(text).split(/_([a-z0-9])/);
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      if (part) node.appendChild(document.createTextNode(part));
    } else if (isSvg) {
      el("svg:tspan", { dy: 3, "font-size": "8" }, node).textContent = part;
      el("svg:tspan", { dy: -3 }, node).textContent = "\u200b";
    } else {
      el("sub", {}, node).textContent = part;
    }
  });
}
const svgEl = (tag, attrs, parent, text) => el("svg:" + tag, attrs, parent, text);
const r2 = (x) => Math.round(x * 100) / 100;

function num(x, digits = 4) {
  if (!Number.isFinite(x)) return String(x);
  if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(2).replace("e", "·10^");
  return String(Number(x.toPrecision(digits)));
}

function niceTicks(lo, hi, count = 5) {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => span / s <= count) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

let uid = 0;

// --- one explorer ----------------------------------------------------------------------------------------
class Explorer {
  constructor(root) {
    this.root = root;
    this.lang = (document.documentElement.lang || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
    this.T = TEXT[this.lang];
    this.id = `mx${uid++}`;
    const ds = root.dataset;
    this.writesUrl = ds.url !== "off";
    this.showControls = ds.controls ? ds.controls.split(",") : null;
    this.panelNames = ds.panels ? ds.panels.split(",").filter((p) => PANELS.includes(p)) : PANELS;
    this.marginByMethod = Object.fromEntries(Object.entries(RANGE.m).map(([k, r]) => [k, r.value]));
    const method = M.METHODS.includes(ds.method) ? ds.method : "arcface";
    this.build(method);
    const notes = this.writesUrl ? this.readHash() : [];
    this.showNotes(notes);
    this.update(false);
    if (this.writesUrl) {
      window.addEventListener("hashchange", () => {
        if (!location.hash.includes("=") || location.hash.slice(1) === this.hash()) return;
        this.showNotes(this.readHash());
        this.update(false);
      });
    }
  }

  name(method) {
    return NAMES[method] || this.T.combined;
  }

  // --- controls ---
  build(method) {
    this.root.textContent = "";
    const T = this.T;
    const form = el("form", { class: "mx-controls", "aria-label": T.controls }, this.root);
    form.addEventListener("submit", (e) => e.preventDefault());
    this.inputs = {};
    this.wrappers = {};
    const wrap = (key) => {
      const w = el("div", { class: "mx-control" }, form);
      this.wrappers[key] = w;
      const group = ["m1", "m2", "m3"].includes(key) ? "m" : key; // "m" stands for every margin control
      if (this.showControls && !this.showControls.includes(group)) w.dataset.off = "1";
      return w;
    };
    // method
    let w = wrap("method");
    el("label", { for: `${this.id}-method` }, w, T.method);
    const select = el("select", { id: `${this.id}-method` }, w);
    for (const m of M.METHODS) el("option", { value: m }, select, this.name(m));
    select.value = method;
    select.addEventListener("change", () => this.setMethod(select.value));
    this.inputs.method = select;
    // numbers
    for (const key of KEYS.slice(1)) {
      w = wrap(key);
      const r = key === "m" ? RANGE.m[method] || RANGE.m.arcface : RANGE[key];
      const id = `${this.id}-${key}`;
      const label = el("label", { for: id }, w, T[key]);
      const row = el("div", { class: "mx-row" }, w);
      const input = el(
        "input",
        { id, type: key === "C" ? "number" : "range", min: r.min, max: r.max, step: r.step, value: r.value },
        row,
      );
      if (key !== "C") el("output", { for: id, "aria-hidden": "true" }, row);
      input.addEventListener("input", () => this.update(true));
      if (key === "C") input.addEventListener("change", () => this.clampC());
      this.inputs[key] = input;
      if (key === "m") this.mLabel = label;
    }
    this.note = el("p", { class: "mx-note", role: "status", hidden: "" }, this.root);
    this.readout = el("p", { class: "mx-readout", "aria-live": "polite" }, this.root);
    const panels = el("div", { class: "mx-panels" }, this.root);
    this.svgs = {};
    for (const p of this.panelNames) {
      const fig = el("figure", { class: "mx-panel" }, panels);
      const square = p === "circle" || p === "regions";
      this.svgs[p] = svgEl("svg", { viewBox: square ? "0 0 300 270" : "0 0 360 248", role: "img" }, fig);
      el("figcaption", { id: `${this.id}-${p}-cap` }, fig, `(${PANELS.indexOf(p) + 1}) ${T[p]}`);
    }
    this.configureMargin(method);
  }

  configureMargin(method) {
    const input = this.inputs.m;
    const r = RANGE.m[method];
    if (r) {
      input.min = r.min;
      input.max = r.max;
      input.step = r.step;
      input.value = this.marginByMethod[method];
      this.mLabel.textContent = method === "sphereface" ? this.T.mSphere : this.T.m;
    }
    const visible = {
      m: !!r,
      m1: method === "combined",
      m2: method === "combined",
      m3: method === "combined",
      norm: method === "adaface",
      t: method === "curricularface",
    };
    for (const key of KEYS) {
      const w = this.wrappers[key];
      w.hidden = w.dataset.off === "1" || (key in visible && !visible[key]);
    }
  }

  setMethod(method) {
    this.configureMargin(method);
    this.update(true);
  }

  clampC() {
    const input = this.inputs.C;
    const v = Math.round(Number(input.value));
    const fixed = Number.isFinite(v) ? Math.min(Math.max(v, RANGE.C.min), RANGE.C.max) : RANGE.C.value;
    if (String(fixed) !== input.value) {
      input.value = fixed;
      this.update(true);
    }
  }

  params() {
    const v = (k) => Number(this.inputs[k].value);
    const method = this.inputs.method.value;
    let C = Math.round(v("C"));
    if (!Number.isFinite(C) || C < 2) C = 2; // while a reader is still typing into the box
    C = Math.min(C, RANGE.C.max);
    return {
      method,
      s: v("s"),
      m: RANGE.m[method] ? v("m") : 0,
      m1: v("m1"),
      m2: v("m2"),
      m3: v("m3"),
      C,
      cos: v("cos"),
      norm: v("norm"),
      t: v("t"),
      theta: v("theta"),
      centers: v("centers"),
    };
  }

  // --- the URL ---
  relevant(method) {
    const keys = ["method", "s"];
    if (RANGE.m[method]) keys.push("m");
    if (method === "combined") keys.push("m1", "m2", "m3");
    if (method === "adaface") keys.push("norm");
    if (method === "curricularface") keys.push("t");
    return keys.concat(["C", "cos", "theta", "centers"]);
  }

  hash() {
    const method = this.inputs.method.value;
    return this.relevant(method)
      .map((k) => `${k}=${k === "C" ? this.params().C : this.inputs[k].value}`)
      .join("&");
  }

  readHash() {
    const notes = [];
    const T = this.T;
    const query = new URLSearchParams(location.hash.slice(1));
    if (![...query.keys()].length || !location.hash.includes("=")) return notes;
    let method = this.inputs.method.value;
    if (query.has("method")) {
      const v = query.get("method");
      if (M.METHODS.includes(v)) method = v;
      else notes.push(T.unknownMethod(v, this.name(method)));
    }
    this.inputs.method.value = method;
    this.configureMargin(method);
    for (const [key, raw] of query) {
      if (key === "method") continue;
      if (!KEYS.includes(key)) {
        notes.push(T.unknownKey(key));
        continue;
      }
      const r = key === "m" ? RANGE.m[method] : RANGE[key];
      if (!r) continue; // m for NormFace or the combined margin: nothing to set
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v)) {
        notes.push(T.notNumber(key, raw));
        continue;
      }
      let to = Math.min(Math.max(v, r.min), r.max);
      if (to !== v) notes.push(T.clamped(key, raw, r.min, r.max, to));
      else if (r.step === 1 && !Number.isInteger(v)) {
        to = Math.round(v);
        notes.push(T.rounded(key, raw, to));
      }
      this.inputs[key].value = to;
      if (key === "m") this.marginByMethod[method] = Number(this.inputs.m.value);
    }
    return notes;
  }

  showNotes(notes) {
    this.note.hidden = notes.length === 0;
    this.note.textContent = notes.length ? `${this.T.note} ${notes.join(" ")}` : "";
  }

  // --- drawing ---
  update(fromReader) {
    const p = this.params();
    if (RANGE.m[p.method]) this.marginByMethod[p.method] = p.m;
    for (const key of KEYS.slice(1)) {
      const out = this.wrappers[key].querySelector("output");
      if (out) out.textContent = key === "theta" ? `${this.inputs[key].value}°` : this.inputs[key].value;
    }
    if (this.writesUrl && fromReader) {
      history.replaceState(null, "", `${location.pathname}${location.search}#${this.hash()}`);
    }
    for (const a of document.querySelectorAll("a[data-explorer-link]")) {
      if (this.writesUrl) continue;
      const url = new URL(a.href);
      url.hash = this.hash();
      a.href = url.href;
    }
    const label = this.describe(p);
    for (const name of this.panelNames) {
      const svg = this.svgs[name];
      svg.textContent = "";
      svg.setAttribute("aria-label", this.T.describe[name](label).replace(/_([a-z0-9])/g, "$1"));
      this[name](svg, p);
    }
    this.writeReadout(p);
  }

  describe(p) {
    const name = this.name(p.method);
    if (p.method === "normface") return `${name} (s = ${p.s})`;
    if (p.method === "combined") return `${name} = (${p.m1}, ${p.m2}, ${p.m3}), s = ${p.s}`;
    let extra = "";
    if (p.method === "adaface") extra = `, ‖x‖ = ${p.norm}`;
    if (p.method === "curricularface") extra = `, t = ${p.t}`;
    return `${name} (s = ${p.s}, m = ${p.m}${extra})`;
  }

  writeReadout(p) {
    const e = M.evaluate(p.theta * DEG, p);
    rich(this.readout, this.T.readout({
      theta: p.theta,
      z: num(p.s * e.target),
      o: num(p.s * e.other),
      p: num(e.py),
      l: num(e.loss),
      g: num(e.grad),
      ms: p.method === "adaface" ? num(M.marginScaler(p)) : null,
    }), false);
  }

  // A line chart of fn(θ) for θ in [0°, 180°], split at the method's jumps so that a step stays a step.
  curveChart(svg, p, fn, { yFixed = null, raw = null } = {}) {
    const ref = { ...p, method: "normface" };
    const { jumps, joins } = M.specialAngles(p);
    const pieces = [];
    let start = 0;
    for (const j of jumps.concat([Math.PI])) {
      const end = j === Math.PI ? Math.PI : j - 1e-9;
      const pts = [];
      for (let i = 0; i <= 240; i++) pts.push(start + ((end - start) * i) / 240);
      pieces.push(pts);
      start = j + 1e-9;
    }
    const thetas = pieces.flat();
    const main = pieces.map((pts) => pts.map((t) => [t / DEG, fn(t, p)]));
    const refLine = [thetas.map((t) => [t / DEG, fn(t, ref)])];
    let rawLine = null;
    if (raw && M.uncorrected(0, p) !== null && (jumps.length || joins.length)) {
      const from = jumps.length ? jumps[0] : joins[0];
      const pts = thetas.filter((t) => t >= from).map((t) => [t / DEG, raw(t)]);
      rawLine = pts.length > 1 ? [pts] : null;
    }
    const ys = [...main.flat(), ...refLine.flat(), ...(rawLine ? rawLine.flat() : [])].map((q) => q[1]);
    let [lo, hi] = yFixed || [Math.min(...ys), Math.max(...ys)];
    if (!yFixed) {
      const pad = (hi - lo || 1) * 0.06;
      lo -= pad;
      hi += pad;
    }
    const box = { x0: 46, x1: 350, y0: 10, y1: 194 };
    const sx = (x) => box.x0 + ((box.x1 - box.x0) * x) / 180;
    const sy = (y) => box.y1 - ((box.y1 - box.y0) * (y - lo)) / (hi - lo);
    this.axes(svg, box, { xs: [0, 45, 90, 135, 180], xl: "θ_y (°)", ys: niceTicks(lo, hi), sx, sy });
    for (const j of jumps.concat(joins)) {
      svgEl("line", { class: "mx-mark", x1: sx(j / DEG), x2: sx(j / DEG), y1: box.y0, y2: box.y1 }, svg);
    }
    const path = (lines, cls) => {
      const d = lines
        .map((pts) => "M" + pts.map(([x, y]) => `${r2(sx(x))},${r2(sy(Math.min(Math.max(y, lo), hi)))}`).join("L"))
        .join("");
      return svgEl("path", { class: cls, d }, svg);
    };
    path(refLine, "mx-ref");
    if (rawLine) path(rawLine, "mx-raw");
    path(main, "mx-curve").dataset.curve = "method";
    const here = p.theta * DEG;
    const yHere = fn(here, p);
    svgEl("circle", { class: "mx-dot", cx: r2(sx(p.theta)), cy: r2(sy(Math.min(Math.max(yHere, lo), hi))), r: 3.5 }, svg);
    const legend = [[this.name(p.method), "mx-curve"], [this.T.reference, "mx-ref"]];
    if (rawLine) legend.push([this.T.raw[p.method], "mx-raw"]);
    this.legend(svg, legend, box);
  }

  axes(svg, box, { xs, xl, ys, yl = null, sx, sy }) {
    const g = svgEl("g", {}, svg);
    for (const y of ys) {
      svgEl("line", { class: "mx-gridline", x1: box.x0, x2: box.x1, y1: r2(sy(y)), y2: r2(sy(y)) }, g);
      svgEl("text", { x: box.x0 - 4, y: r2(sy(y)) + 3.5, "text-anchor": "end" }, g, num(y, 3));
    }
    for (const x of xs) {
      svgEl("line", { class: "mx-gridline", x1: r2(sx(x)), x2: r2(sx(x)), y1: box.y0, y2: box.y1 }, g);
      svgEl("text", { x: r2(sx(x)), y: box.y1 + 13, "text-anchor": "middle" }, g, String(x));
    }
    svgEl("rect", { class: "mx-axis", x: box.x0, y: box.y0, width: box.x1 - box.x0, height: box.y1 - box.y0 }, g);
    svgEl("text", { x: (box.x0 + box.x1) / 2, y: box.y1 + 27, "text-anchor": "middle" }, g, xl);
    if (yl) {
      const cy = (box.y0 + box.y1) / 2;
      svgEl("text", { x: 11, y: cy, "text-anchor": "middle", transform: `rotate(-90 11 ${cy})` }, g, yl);
    }
  }

  legend(svg, items, box) {
    const g = svgEl("g", { class: "mx-legend" }, svg);
    const y = box.y1 + 44;
    let x = box.x0 - 30;
    for (const [label, cls] of items) {
      svgEl("line", { class: cls, x1: x, x2: x + 18, y1: y - 3.5, y2: y - 3.5 }, g);
      svgEl("text", { x: x + 22, y }, g, label);
      x += 30 + 6.2 * label.length;
    }
  }

  logit(svg, p) {
    this.curveChart(svg, p, (t, q) => M.target(t, q), { raw: (t) => M.uncorrected(t, p) });
  }

  prob(svg, p) {
    this.curveChart(svg, p, (t, q) => M.evaluate(t, q).py, { yFixed: [0, 1] });
  }

  grad(svg, p) {
    this.curveChart(svg, p, (t, q) => M.evaluate(t, q).grad);
  }

  regions(svg, p) {
    const n = 120;
    const box = { x0: 46, x1: 286, y0: 8, y1: 248 };
    const cell = (box.x1 - box.x0) / n;
    const sx = (x) => box.x0 + ((box.x1 - box.x0) * x) / 180;
    const sy = (y) => box.y1 - ((box.y1 - box.y0) * y) / 180;
    const g = svgEl("g", { class: "mx-region" }, svg); // one opacity for the group: overlapping cells stay even
    for (let row = 0; row < n; row++) {
      const t2 = ((row + 0.5) * Math.PI) / n;
      let runStart = 0;
      let runClass = null;
      for (let col = 0; col <= n; col++) {
        let cls = null;
        if (col < n) {
          const t1 = ((col + 0.5) * Math.PI) / n;
          if (M.winsWithMargin(t1, [Math.cos(t2)], p)) cls = "mx-c1";
          else if (M.winsWithMargin(t2, [Math.cos(t1)], p)) cls = "mx-c2";
        }
        if (col === n || cls !== runClass) {
          if (runClass) {
            const x = box.x0 + runStart * cell;
            svgEl("rect", { class: runClass, x: r2(x), y: r2(box.y1 - (row + 1) * cell),
              width: r2((col - runStart) * cell + 0.3), height: r2(cell + 0.3) }, g);
          }
          runStart = col;
          runClass = cls;
        }
      }
    }
    const ticks = [0, 45, 90, 135, 180];
    this.axes(svg, box, { xs: ticks, xl: "θ_1 (°)", ys: ticks, yl: "θ_2 (°)", sx, sy });
    svgEl("line", { class: "mx-ref", x1: sx(0), y1: sy(0), x2: sx(180), y2: sy(180) }, svg);
    svgEl("text", { x: sx(22), y: sy(160), "font-size": 14, "text-anchor": "middle" }, svg, "1");
    svgEl("text", { x: sx(160), y: sy(22), "font-size": 14, "text-anchor": "middle" }, svg, "2");
    const t2 = Math.acos(p.cos) / DEG;
    svgEl("circle", { class: "mx-dot", cx: r2(sx(p.theta)), cy: r2(sy(t2)), r: 4 }, svg);
  }

  circle(svg, p) {
    const k = p.centers;
    const centers = k === 3 ? [90, 210, 330] : [135, 45];
    const cx = 150;
    const cy = 128;
    const R = 100;
    const r = 82;
    const at = (deg, rad) => [r2(cx + rad * Math.cos(deg * DEG)), r2(cy - rad * Math.sin(deg * DEG))];
    const dist = (a, b) => {
      const d = Math.abs(((a - b) % 360) + 360) % 360;
      return Math.min(d, 360 - d) * DEG;
    };
    const winner = (phi, q) => {
      const th = centers.map((c) => dist(phi, c));
      for (let i = 0; i < k; i++) {
        if (M.winsWithMargin(th[i], th.filter((_, j) => j !== i).map(Math.cos), q)) return i;
      }
      return -1;
    };
    const ring = (q, rad, cls) => {
      const steps = 720;
      const owner = [];
      for (let i = 0; i < steps; i++) owner.push(winner((i + 0.5) * 0.5, q));
      // Start at a change of owner so that an arc across 0° is drawn as one piece.
      const first = owner.findIndex((o, i) => o !== owner[(i + steps - 1) % steps]);
      if (first < 0) {
        if (owner[0] >= 0) {
          const d = `M${at(0, rad)}A${rad},${rad} 0 1 0 ${at(180, rad)}A${rad},${rad} 0 1 0 ${at(0, rad)}`;
          svgEl("path", { class: `${cls} mx-c${owner[0] + 1}`, d }, svg);
        }
        return;
      }
      let i = first;
      while (i < first + steps) {
        let j = i;
        while (j + 1 < first + steps && owner[(j + 1) % steps] === owner[i % steps]) j++;
        const who = owner[i % steps];
        if (who >= 0) {
          const a0 = i * 0.5;
          const a1 = (j + 1) * 0.5;
          const [x0, y0] = at(a0, rad);
          const [x1, y1] = at(a1, rad);
          const d = `M${x0},${y0}A${rad},${rad} 0 ${a1 - a0 > 180 ? 1 : 0} 0 ${x1},${y1}`;
          svgEl("path", { class: `${cls} mx-c${who + 1}`, d }, svg);
        }
        i = j + 1;
      }
    };
    svgEl("circle", { class: "mx-gridline", cx, cy, r: R, fill: "none" }, svg);
    ring(p, R, "mx-arc");
    ring({ ...p, method: "normface" }, r, "mx-arc-ref");
    centers.forEach((c, i) => {
      const [x, y] = at(c, R + 14);
      svgEl("line", { class: `mx-c${i + 1}`, x1: cx, y1: cy, x2: at(c, R + 4)[0], y2: at(c, R + 4)[1], "stroke-width": 1.3 }, svg);
      svgEl("text", { x, y: y + 4, "text-anchor": "middle", "font-size": 13 }, svg, String(i + 1));
    });
    svgEl("text", { x: 6, y: 262 }, svg, this.T.rings(this.name(p.method)));
  }
}

function mountAll() {
  if (!document.getElementById("margin-explorer-style")) {
    el("style", { id: "margin-explorer-style" }, document.head, CSS);
  }
  for (const root of document.querySelectorAll(".margin-explorer:not([data-mounted])")) {
    root.dataset.mounted = "1";
    new Explorer(root);
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
else mountAll();
