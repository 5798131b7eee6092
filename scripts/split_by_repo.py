"""Moves the records of some repositories out of a JSONL file of tasks (or repair pairs) into
another, in place and atomically: `scripts/learning-curve.sh` uses it to count training
repositories as dev (DEV_REPOS).

    python3 scripts/split_by_repo.py FILE MOVED NAME...

A record's repository is its `repo` field without the version (`parsy-2.1` is `parsy`). A NAME
that no record has is bad input (exit 2): a typo would otherwise move nothing, silently.
"""
import argparse
import json
import os
import sys


def repository(line: str, path: str, number: int) -> str:
    try:
        return json.loads(line)["repo"].rsplit("-", 1)[0]
    except (ValueError, KeyError, AttributeError, TypeError) as err:
        sys.exit(f"{path}:{number}: no `repo` field to read ({err})")


def write(path: str, lines: list) -> None:
    with open(path + ".tmp", "w") as f:
        f.writelines(lines)
    os.replace(path + ".tmp", path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="JSONL records with a `repo` field; the others stay")
    parser.add_argument("moved", help="where the records of NAMEs go (replaced)")
    parser.add_argument("names", nargs="+", metavar="NAME", help="repository names")
    args = parser.parse_args()
    names = set(args.names)
    kept, moved, seen = [], [], set()
    with open(args.file) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            repo = repository(line, args.file, number)
            seen.add(repo)
            (moved if repo in names else kept).append(line)
    if names - seen:
        print(f"split_by_repo: no record of {' '.join(sorted(names - seen))} in {args.file}",
              file=sys.stderr)
        return 2
    write(args.moved, moved)
    write(args.file, kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
