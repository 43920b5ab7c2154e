"""Draw the model-parallel margin head as an SVG: three ranks, their shards and the three collectives of one step.

Written by hand as SVG elements (no plotting library, no timestamps), so the file is byte-for-byte the same on
every run. `make figures` calls it; the output goes to docs/assets/figures/model-parallel.svg (never committed).

    python snippets/benchmarks/model_parallel_figure.py [output.svg]
"""

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "docs" / "assets" / "figures" / "model-parallel.svg"
INK, MUTED, LINE = "#333333", "#666666", "#999999"
RANK_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c"]
COLLECTIVE = "#7b3294"
WIDTH, HEIGHT = 760, 500
COLUMN_X = [150, 380, 610]  # center of each rank's column


def text(x, y, content, size=13, color=INK, anchor="middle", weight="normal", style="normal"):
    return (
        f'<text x="{x}" y="{y}" font-size="{size}" fill="{color}" text-anchor="{anchor}" '
        f'font-weight="{weight}" font-style="{style}">{content}</text>'
    )


def box(x, y, w, h, color, fill_opacity=0.12, dash=None):
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{color}" fill-opacity="{fill_opacity}" '
        f'stroke="{color}" stroke-width="1.5"{dashed}/>'
    )


def arrow(x1, y1, x2, y2, color=LINE):
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" stroke-width="1.5" marker-end="url(#head)"/>'
    )


def band(y, label, detail):
    """A horizontal band across all ranks: one collective."""
    return [
        box(40, y, WIDTH - 80, 34, COLLECTIVE, fill_opacity=0.08, dash="5 3"),
        text(WIDTH / 2, y + 15, label, size=13, color=COLLECTIVE, weight="bold"),
        text(WIDTH / 2, y + 29, detail, size=11, color=COLLECTIVE),
    ]


def draw():
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif">',
        "<defs>",
        '<marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">',
        f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{LINE}"/>',
        "</marker>",
        "</defs>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    for g, (x, color) in enumerate(zip(COLUMN_X, RANK_COLORS, strict=True)):
        parts += [
            text(x, 24, f"rank {g}", size=14, color=color, weight="bold"),
            box(x - 95, 36, 190, 40, color),
            text(x, 53, f"embeddings x_{g} [b_{g}, D]", size=12),
            text(x, 69, f"labels y_{g} [b_{g}]", size=12, color=MUTED),
            arrow(x, 78, x, 104),
        ]
    parts += band(
        106, "1. all-gather", "every rank gets X [B, D] and y [B]; backward: all-reduce (sum) of dL/dX, own rows kept"
    )
    for g, (x, color) in enumerate(zip(COLUMN_X, RANK_COLORS, strict=True)):
        parts += [
            arrow(x, 142, x, 166),
            box(x - 95, 168, 190, 40, color, fill_opacity=0.25),
            text(x, 185, f"class centers W_{g} [C_{g}, D]", size=12),
            text(x, 201, f"classes of shard {g} only", size=11, color=MUTED),
            arrow(x, 210, x, 232),
            box(x - 95, 234, 190, 52, color),
            text(x, 252, f"cos θ = X̂ Ŵ_{g}ᵀ [B, C_{g}]", size=12),
            text(x, 268, "margin on rows whose", size=11, color=MUTED),
            text(x, 281, f"target is in shard {g}", size=11, color=MUTED),
            arrow(x, 288, x, 312),
        ]
    parts += band(314, "2. all-reduce (max)", "M_i = max over all shards of z_ij: one number per sample")
    parts += [arrow(x, 350, x, 370) for x in COLUMN_X]
    parts += band(372, "3. all-reduce (sum)", "Σ_g Σ_j exp(z_ij − M_i) and the target logit z_i,y_i (one owner)")
    for x, color in zip(COLUMN_X, RANK_COLORS, strict=True):
        parts += [
            arrow(x, 408, x, 430),
            box(x - 95, 432, 190, 40, color),
            text(x, 449, "the same loss L", size=12),
            text(x, 465, "dL/dz local: softmax − one-hot", size=11, color=MUTED),
        ]
    parts.append(
        text(
            WIDTH / 2,
            492,
            "traffic per step O(B·D + B), independent of the number of classes C",
            size=11,
            color=MUTED,
            style="italic",
        )
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(draw(), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
