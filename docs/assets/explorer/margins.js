// Angular-margin formulas for the margin explorer: numbers only, no DOM. explorer.js draws what these return.
//
// One function per quantity, written from the same formulas as the snippets the pages show, and checked against
// them to 1e-6 on a grid of θ, s and margins by tests/browser/test_explorer.py:
//   normface, sphereface, cosface, arcface, combined   snippets/pytorch/margins.py
//   adaface                                            snippets/pytorch/adaface.py
//   curricularface                                     snippets/pytorch/curricularface.py
//
// Conventions (as in the snippets): θ and every angular margin in RADIANS; `target` is the target logit divided
// by s (the snippets return s times it); one sample, its target angle θ_y, and C - 1 other classes that all have
// the same cosine `cos` (p.cos). A parameter object p holds
//   {method, s, m, m1, m2, m3, C, cos, norm, mu, sigma, h, eps, t}; unused fields are ignored.

export const METHODS = ["normface", "sphereface", "cosface", "arcface", "combined", "adaface", "curricularface"];

// AdaFace's running norm statistics are fixed here (the explorer moves the feature norm, not the batch).
export const ADAFACE = { mu: 20, sigma: 5, h: 0.333, eps: 1e-3 };

const PI = Math.PI;
const clip = (x, lo, hi) => Math.min(Math.max(x, lo), hi);
const sign = (k) => (k % 2 === 0 ? 1 : -1); // (-1)^k

// AdaFace's margin scaler ms = clip(h·(‖x‖ - μ)/(σ + eps), -1, 1) (adaface.py).
export function marginScaler(p) {
  const a = { ...ADAFACE, ...p };
  return clip((a.h * (a.norm - a.mu)) / (a.sigma + a.eps), -1, 1);
}

// SphereFace's segment k = ⌊mθ/π⌋, at most m - 1 (so θ = π stays in the last segment), margins.py.
const sphereK = (theta, m) => Math.min(Math.floor((m * theta) / PI), m - 1);

// The ArcFace switch: cos θ ≥ cos(π - m) keeps cos(θ + m), otherwise the fallback cos θ - m·sin m.
const arcInside = (theta, m) => Math.cos(theta) >= Math.cos(PI - m);

// cos(θ + m) the way the snippets compute it: cos θ·cos m - sin θ·sin m (no acos, no fallback).
const cosPlus = (theta, m) => Math.cos(theta) * Math.cos(m) - Math.sin(theta) * Math.sin(m);

// AdaFace's angle: θ from the clipped cosine, then θ - m·ms clipped into [eps, π - eps] (adaface.py).
function adaAngles(theta, p) {
  const { eps } = ADAFACE;
  const c = Math.cos(theta);
  const cc = clip(c, -1 + eps, 1 - eps);
  const t0 = Math.acos(cc);
  const raw = t0 - p.m * marginScaler(p);
  return { t0, tm: clip(raw, eps, PI - eps), cosClipped: cc !== c, angleClipped: raw < eps || raw > PI - eps };
}

/** Target logit ÷ s as a function of the target angle θ (radians). */
export function target(theta, p) {
  switch (p.method) {
    case "normface":
      return Math.cos(theta);
    case "sphereface": {
      const k = sphereK(theta, p.m);
      return sign(k) * Math.cos(p.m * theta) - 2 * k; // ψ(θ) = (-1)^k cos(mθ) - 2k
    }
    case "cosface":
      return Math.cos(theta) - p.m;
    case "arcface":
    case "curricularface":
      return arcInside(theta, p.m) ? cosPlus(theta, p.m) : Math.cos(theta) - p.m * Math.sin(p.m);
    case "combined": {
      const phi = p.m1 * theta + p.m2;
      const k = Math.floor(phi / PI); // 0 inside the monotone range; past π the curve continues like ψ
      return sign(k) * Math.cos(phi) - 2 * k - p.m3;
    }
    case "adaface":
      return Math.cos(adaAngles(theta, p).tm) - p.m * (1 + marginScaler(p));
    default:
      throw new Error(`unknown method ${p.method}`);
  }
}

/** d(target)/dθ: the slope of target(θ) (0 where a clip holds the angle still). */
export function targetSlope(theta, p) {
  switch (p.method) {
    case "normface":
    case "cosface":
      return -Math.sin(theta);
    case "sphereface":
      return -sign(sphereK(theta, p.m)) * p.m * Math.sin(p.m * theta);
    case "arcface":
    case "curricularface":
      return arcInside(theta, p.m) ? -Math.sin(theta + p.m) : -Math.sin(theta);
    case "combined": {
      const phi = p.m1 * theta + p.m2;
      return -sign(Math.floor(phi / PI)) * p.m1 * Math.sin(phi);
    }
    case "adaface": {
      const a = adaAngles(theta, p);
      return a.cosClipped || a.angleClipped ? 0 : -Math.sin(a.tm);
    }
    default:
      throw new Error(`unknown method ${p.method}`);
  }
}

/** Logit ÷ s of a non-target class with cosine c, for a sample whose target angle is θ. Only CurricularFace
 * changes it: a hard negative (c > cos(θ + m)) becomes c·(t + c). */
export function otherLogit(c, theta, p) {
  if (p.method === "curricularface" && c > cosPlus(theta, p.m)) return c * (p.t + c);
  return c;
}

/** Everything the panels need at one θ: target ÷ s, other ÷ s, p_y, the loss -log p_y and dL/dθ_y.
 * The softmax has the target and C - 1 classes with cosine p.cos: p_y = 1 / (1 + (C - 1)·e^{s·(other - target)}). */
export function evaluate(theta, p) {
  const f = target(theta, p);
  const g = otherLogit(p.cos, theta, p);
  const d = p.s * (g - f) + Math.log(p.C - 1); // log of the odds against the target
  const py = d > 0 ? Math.exp(-d) / (1 + Math.exp(-d)) : 1 / (1 + Math.exp(d));
  const loss = d > 0 ? d + Math.log1p(Math.exp(-d)) : Math.log1p(Math.exp(d));
  // L = log(e^{s f} + (C-1) e^{s g}) - s f, g has no gradient (CurricularFace's mask is a constant):
  // dL/dθ = -s·(1 - p_y)·f'(θ).
  const grad = -p.s * (1 - py) * targetSlope(theta, p);
  return { target: f, other: g, py, loss, grad };
}

/** Does a sample at angle θ_y to its own center, and cosine c_j to each other center, win with its margin? */
export function winsWithMargin(theta, otherCosines, p) {
  const f = target(theta, p);
  return otherCosines.every((c) => f > otherLogit(c, theta, p));
}

/** Angles (radians, inside (0, π)) where a method's curve changes formula: jumps (ArcFace's fallback) break the
 * drawn line, joins (SphereFace's ψ segments, the combined margin's continuation, AdaFace's clip) are marked. */
export function specialAngles(p) {
  const jumps = [];
  const joins = [];
  if (p.method === "arcface" || p.method === "curricularface") {
    if (p.m > 0) jumps.push(PI - p.m);
  } else if (p.method === "sphereface") {
    for (let k = 1; k < p.m; k++) joins.push((k * PI) / p.m);
  } else if (p.method === "combined") {
    for (let k = 1; (k * PI - p.m2) / p.m1 < PI; k++) joins.push((k * PI - p.m2) / p.m1);
  } else if (p.method === "adaface") {
    const shift = p.m * marginScaler(p);
    for (const x of [ADAFACE.eps + shift, PI - ADAFACE.eps + shift]) if (x > 0 && x < PI) joins.push(x);
  }
  return { jumps, joins: joins.filter((x) => x > 0 && x < PI) };
}

/** What the margin would give past the switch without the fallback/continuation (drawn dotted), or null. */
export function uncorrected(theta, p) {
  if (p.method === "arcface" || p.method === "curricularface") return Math.cos(theta + p.m);
  if (p.method === "sphereface") return Math.cos(p.m * theta);
  if (p.method === "combined") return Math.cos(p.m1 * theta + p.m2) - p.m3;
  return null;
}
