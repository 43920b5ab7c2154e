"""Run every experiment of the guide and draw every figure: `make figures` runs this file.

    python experiments/make_figures.py                       # everything published (cached runs are skipped)
    python experiments/make_figures.py --only arcface --s 8 --m 0.3 --seeds 0
                                                              # explore the digits study: print a table, publish nothing

Three parts, in this order: the analytic figures (no training), the digits study (digits_study.py: 6 training
classes, the few-class regime) and the glyph study (glyph_study.py: 1,500 training syllables, the headline of the
Experiments page). Results go to docs/assets/results/, figures to docs/assets/figures/ (both git-ignored). Every
run is cached (runner.py), so a second run trains nothing. Torch runs single-threaded; up to EXPERIMENT_WORKERS
(default 2) runs train at once. Each finished run prints a progress line with an estimate of the time left.
"""

import argparse
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]  # the experiments, and the one snippet loader

import digits_study  # noqa: E402
import glyph_study  # noqa: E402
import loss_figures  # noqa: E402
import plots  # noqa: E402
from heads import METHODS  # noqa: E402

ASSETS = ROOT / "docs" / "assets"


def draw_analytic(figures: Path):
    plots.target_logits(figures / "target-logits.svg")
    plots.decision_boundaries(figures / "decision-boundaries.svg")
    loss_figures.draw_all(figures)  # the AdaFace, CurricularFace, ArcFace and Partial FC pages' figures


def peak_memory_mib() -> float:
    """Peak resident memory of this process and of its finished children (workers), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="explore the digits study with these methods: " + ", ".join(METHODS))
    parser.add_argument("--seeds", help="comma-separated seeds (explore mode)")
    parser.add_argument("--s", type=float, help="scale s of every margin head (explore mode)")
    parser.add_argument("--m", type=float, help="margin of the method(s) (combined: m2; triplet: its margin)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (explore mode)")
    parser.add_argument("--epochs", type=int, help="epochs (explore mode)")
    parser.add_argument("--embedding-size", type=int, help="embedding size (explore mode)")
    parser.add_argument("--no-glyphs", action="store_true", help="skip the glyph study (quicker while writing)")
    parser.add_argument("--fresh", action="store_true", help="retrain even if a cached result exists")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    overrides = {
        k: v
        for k, v in dict(s=args.s, m=args.m, lr=args.lr, epochs=args.epochs, embedding_size=args.embedding_size).items()
        if v is not None
    }
    if args.only or args.seeds or overrides:  # explore: print a table, publish nothing
        methods = args.only.split(",") if args.only else list(digits_study.DIGIT_METHODS)
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else list(digits_study.SEEDS)
        _, results = digits_study.run_digits(digits_study.plan(methods, seeds, **overrides), fresh=args.fresh)
        print(digits_study.markdown_table(digits_study.summarise(results, methods, seeds)))
        return

    draw_analytic(ASSETS / "figures")
    stage = time.perf_counter()
    data, results = digits_study.run_digits(digits_study.plan(), fresh=args.fresh)
    print(digits_study.markdown_table(digits_study.publish(results, data, ASSETS)))
    print(f"digits study: {time.perf_counter() - stage:.1f} s", flush=True)
    if not args.no_glyphs:
        stage = time.perf_counter()
        data, results = glyph_study.run_study(fresh=args.fresh)
        record = glyph_study.publish(data, results, ASSETS)
        print(glyph_study.markdown_table(record["summary"]))
        print(glyph_study.paired_table(record["paired"]))
        print(f"glyph study: {time.perf_counter() - stage:.1f} s", flush=True)
    print(f"figures: {len(list((ASSETS / 'figures').glob('*.svg')))} SVG files in docs/assets/figures")
    print(
        f"experiments: finished in {time.perf_counter() - start:.1f} s, peak memory {peak_memory_mib():.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
