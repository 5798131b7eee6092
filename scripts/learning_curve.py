#!/usr/bin/env python3
"""The learning curve's table and plot from the `solver-train eval` summaries of
scripts/learning-curve.sh: one row per (N, seed), the scorer's and the edit-kind prior's
top-1 / top-5 / MRR on the evaluation set, overall and per bug family.

    python3 scripts/learning_curve.py OUT [--svg FILE]

OUT holds eval-pretrained.json and eval-n<N>-s<SEED>.json (what the script writes).
"""
import argparse
import json
import re
import sys
from pathlib import Path

NAME = re.compile(r"^eval-n(\d+)-s(\d+)\.json$")


def points(out: Path) -> list:
    """(N, seed, summary) for every evaluated point, by N then seed."""
    found = []
    for path in out.glob("eval-n*-s*.json"):
        m = NAME.match(path.name)
        if m:
            found.append((int(m[1]), int(m[2]), json.loads(path.read_text())))
    return sorted(found, key=lambda p: (p[0], p[1]))


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def table(out: Path) -> str:
    rows = points(out)
    if not rows:
        return f"no evaluations under {out}\n"
    lines = ["| N | seed | top-1 | top-5 | MRR | prior top-1 | prior top-5 | prior MRR | tasks (reachable) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for n, seed, s in rows:
        a = s["all"]
        lines.append(f"| {n} | {seed} | {pct(a['model_top1'])} | {pct(a['model_top5'])} | "
                     f"{a['model_mrr']:.3f} | {pct(a.get('prior_top1'))} | {pct(a.get('prior_top5'))} | "
                     f"{'–' if a.get('prior_mrr') is None else format(a['prior_mrr'], '.3f')} | "
                     f"{a['n']} ({a['reachable']}) |")
    families = sorted({f for _, _, s in rows for f in s["by_family"]})
    lines += ["", "Per family, top-1 (scorer / prior) and MRR:", "",
              "| N | seed | " + " | ".join(f"{f} (n)" for f in families) + " |",
              "|---:|---:|" + "---|" * len(families)]
    for n, seed, s in rows:
        cells = []
        for f in families:
            c = s["by_family"].get(f)
            if c is None:
                cells.append("–")
                continue
            cells.append(f"{pct(c['model_top1'])} / {pct(c.get('prior_top1'))}, "
                         f"{c['model_mrr']:.3f} ({c['n']})")
        lines.append(f"| {n} | {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def svg(out: Path) -> str:
    """MRR (scorer, and the prior where it exists) against N on a log(1 + N) axis."""
    import math
    rows = points(out)
    w, h, left, right, top, bottom = 560, 320, 56, 120, 20, 44
    ns = sorted({n for n, _, _ in rows}) or [0]
    x_max = math.log1p(max(ns)) or 1.0

    def x(n):
        return left + (w - left - right) * math.log1p(n) / x_max

    def y(v):
        return top + (h - top - bottom) * (1 - v)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{w}" height="{h}" fill="white"/>']
    for n in ns:
        parts.append(f'<text x="{x(n) - 8:.1f}" y="{h - bottom + 16}">{n}</text>')
    parts.append(f'<text x="{(w - right) / 2:.0f}" y="{h - 8}">validated training tasks N</text>')
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="8" y="{y(v) + 4:.1f}">{v:.2f}</text>')
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
    series = [("scorer MRR", "model_mrr", "#1f77b4"), ("prior MRR", "prior_mrr", "#999999")]
    for i, (label, key, colour) in enumerate(series):
        by_n = {}
        for n, _, s in rows:
            v = s["all"].get(key)
            if v is not None:
                by_n.setdefault(n, []).append(v)
        if not by_n:
            continue
        mean = [(n, sum(v) / len(v)) for n, v in sorted(by_n.items())]
        pts = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in mean)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for n, vs in by_n.items():
            for v in vs:
                parts.append(f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
        ly = top + 16 * i
        parts.append(f'<rect x="{w - right + 12}" y="{ly}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{w - right + 28}" y="{ly + 9}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--svg", type=Path)
    args = parser.parse_args()
    if not args.out.is_dir():
        print(f"learning_curve: {args.out}: not a directory", file=sys.stderr)
        return 2
    sys.stdout.write(table(args.out))
    if args.svg:
        args.svg.write_text(svg(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
