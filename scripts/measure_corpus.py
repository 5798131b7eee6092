#!/usr/bin/env python3
"""Run every corpus repository's full test suite natively and print a Markdown table.

    python3 scripts/measure_corpus.py --workdir .socratic [--out scripts/CORPUS.md]

Reads WORKDIR/corpus.jsonl (written by scripts/setup.py). Each suite runs in a fresh process,
`WORKDIR/venv/bin/python -m pytest <test_cmd args>` with cwd = the repo root and
PYTHONPATH = WORKDIR/site-packages, one at a time so the timings do not disturb each other.
Exit status: 0 when every suite passes, 1 when one fails (or on a setup problem), 2 on bad
usage.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from setup import native_env, pytest_args  # noqa: E402  (scripts/setup.py)


def counts(output: str) -> dict[str, int]:
    """Outcome counts from pytest's closing line, e.g. '3 failed, 10 passed, 1 skipped'."""
    lines = [l for l in output.strip().splitlines() if re.search(r"\d+ (passed|failed|error)", l)]
    found = dict.fromkeys(("passed", "failed", "errors", "skipped"), 0)
    for n, kind in re.findall(r"(\d+) (passed|failed|errors?|skipped)", lines[-1] if lines else ""):
        found["errors" if kind.startswith("error") else kind] = int(n)
    return found


def measure(workdir: Path, repo: dict) -> dict:
    """Run one suite natively; return its counts, exit status and wall seconds."""
    cmd = [str(workdir / "venv" / "bin" / "python"), "-m", "pytest", *pytest_args(repo["test_cmd"])]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=workdir / repo["root"], env=native_env(workdir),
                          capture_output=True, text=True)
    seconds = time.monotonic() - start
    return {"rc": proc.returncode, "seconds": seconds, "tail": proc.stdout[-2000:] + proc.stderr[-2000:],
            **counts(proc.stdout)}


def table(rows: list[tuple[dict, dict]]) -> str:
    out = ["| repo | version | split | tests | passed | failed | skipped | native s |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for repo, r in rows:
        out.append(f"| {repo['name']} | {repo['version']} | {repo['split']} | {repo['n_tests']} "
                   f"| {r['passed']} | {r['failed'] + r['errors']} | {r['skipped']} | {r['seconds']:.1f} |")
    total = sum(r["seconds"] for _, r in rows)
    out.append(f"| **all {len(rows)}** | | | {sum(p['n_tests'] for p, _ in rows)} "
               f"| {sum(r['passed'] for _, r in rows)} "
               f"| {sum(r['failed'] + r['errors'] for _, r in rows)} "
               f"| {sum(r['skipped'] for _, r in rows)} | {total:.1f} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True, type=Path, help="work directory set up by setup.py")
    ap.add_argument("--out", type=Path, help="also write the table, dated, to this Markdown file")
    ap.add_argument("--only", action="append", metavar="NAME", help="measure only this repo (repeatable)")
    args = ap.parse_args(argv)
    workdir = args.workdir.resolve()
    try:
        repos = [json.loads(l) for l in (workdir / "corpus.jsonl").read_text().splitlines() if l.strip()]
    except (OSError, json.JSONDecodeError) as e:
        print(f"measure: error: cannot read corpus (run scripts/setup.py first): {e}", file=sys.stderr)
        return 1
    repos = [r for r in repos if not args.only or r["name"] in args.only]
    rows, bad = [], []
    for repo in repos:
        r = measure(workdir, repo)
        print(f"measure: {repo['id']:<18} {r['passed']:>4} passed {r['failed'] + r['errors']:>3} failed "
              f"{r['seconds']:5.1f} s", file=sys.stderr, flush=True)
        if r["rc"] != 0 or r["failed"] or r["errors"] or not r["passed"]:
            bad.append(repo["id"])
            print(r["tail"], file=sys.stderr)
        rows.append((repo, r))
    text = table(rows)
    print(text, end="")
    if args.out:
        py = platform.python_version()
        args.out.write_text(
            "# Corpus: native test-suite measurements\n\n"
            f"Measured {datetime.date.today().isoformat()} by `python3 scripts/measure_corpus.py "
            f"--workdir .socratic --out scripts/CORPUS.md` on a 2-core machine (CPython {py}, "
            "each suite a fresh `python -m pytest` process with its lock `test_cmd`, one at a "
            "time). `tests` is the number the test_cmd selects (corpus.jsonl `n_tests`); "
            "`native s` is wall time including interpreter and pytest start-up.\n\n" + text)
    if bad:
        print(f"measure: error: failing suites: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
