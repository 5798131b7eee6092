#!/usr/bin/env python3
"""How much two grad-score variants agree on the same tasks: Spearman rank correlation of the
alignments and the overlap of their top K by alignment (for valid tasks the reward is the
alignment, so these are the tasks `--keep-top K` would keep).

    python3 scripts/compare_scores.py BASE.jsonl OTHER.jsonl [OTHER2.jsonl ...] [--top K]

K defaults to half the tasks. Ties rank by instance_id, as grad-score's selection does.
"""
import argparse
import json
import sys


def alignments(path):
    out = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    score = json.loads(line)
                    out[score["instance_id"]] = float(score["alignment"])
                except (ValueError, KeyError) as err:
                    sys.exit(f"{path}:{number}: not a score record ({err})")
    return out


def order(scores, ids):
    """ids from the highest alignment down, ties by id."""
    return sorted(ids, key=lambda i: (-scores[i], i))


def spearman(a, b, ids):
    rank_a = {i: r for r, i in enumerate(order(a, ids))}
    rank_b = {i: r for r, i in enumerate(order(b, ids))}
    n = len(ids)
    if n < 2:
        return float("nan")
    return 1 - 6 * sum((rank_a[i] - rank_b[i]) ** 2 for i in ids) / (n * (n * n - 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("others", nargs="+")
    parser.add_argument("--top", type=int)
    args = parser.parse_args()
    base = alignments(args.base)
    print("variant\ttasks\tspearman\ttop-K overlap")
    for path in args.others:
        other = alignments(path)
        ids = sorted(set(base) & set(other))
        if not ids:
            sys.exit(f"{path}: no task in common with {args.base}")
        k = args.top or len(ids) // 2
        overlap = len(set(order(base, ids)[:k]) & set(order(other, ids)[:k]))
        print(f"{path}\t{len(ids)}\t{spearman(base, other, ids):.3f}\t{overlap}/{k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
