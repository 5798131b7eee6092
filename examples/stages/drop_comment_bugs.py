#!/usr/bin/env python3
"""A custom stage in Python: drop candidate tasks whose bug touches only comments, docstrings
or blank lines (no test can see such a bug, and a solver learns nothing from repairing it).

It reads Task records (JSONL) and writes the tasks it keeps, unchanged, in the same order —
the contract of every stage — so it slots in anywhere a Task file flows:

    python3 examples/stages/drop_comment_bugs.py valid.jsonl -o filtered.jsonl
    task-gen --budget 50 | python3 examples/stages/drop_comment_bugs.py | task-validate
    TASK_FILTER="python3 examples/stages/drop_comment_bugs.py" just evolve

Exit 0 ok, 2 bad input (the message names the file, line and field); the output is written
whole or not at all. Standard library only.
"""
import argparse
import io
import json
import os
import sys
import tempfile
import tokenize

SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
           tokenize.ENDMARKER}


def changed_sides(patch: str) -> tuple[str, str]:
    """The removed and the added lines of a unified diff, each side as one text."""
    removed, added = [], []
    for line in patch.splitlines():
        if line.startswith(("---", "+++", "@@")):
            continue
        if line.startswith("-"):
            removed.append(line[1:])
        elif line.startswith("+"):
            added.append(line[1:])
    return "\n".join(removed) + "\n", "\n".join(added) + "\n"


def code_tokens(text: str) -> list[str] | None:
    """The code tokens of TEXT without comments and statement-level strings (docstrings);
    None when the lines do not tokenize on their own (a fragment of a larger construct)."""
    lines = [line.strip() for line in text.splitlines()]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    out, line_start = [], True
    for i, tok in enumerate(tokens):
        if tok.type in SKIPPED:
            line_start = tok.type in (tokenize.NEWLINE, tokenize.NL) or line_start
            continue
        following = tokens[i + 1].type if i + 1 < len(tokens) else tokenize.ENDMARKER
        if tok.type == tokenize.STRING and line_start and following in SKIPPED:
            continue  # a docstring or a bare string statement
        out.append(tok.string)
        line_start = False
    return out


def comment_only(patch: str) -> bool:
    removed, added = changed_sides(patch)
    before, after = code_tokens(removed), code_tokens(added)
    return before is not None and before == after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", default="-", help="Task JSONL (default: stdin)")
    parser.add_argument("-o", "--output", help="write here atomically (default: stdout)")
    args = parser.parse_args()
    source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    name = "<stdin>" if args.input == "-" else args.input
    kept, dropped = [], 0
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            task = json.loads(line)
            patch = task["bug_patch"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            print(f"drop_comment_bugs: {name}:{number}: not a Task with a bug_patch ({err})",
                  file=sys.stderr)
            return 2
        if comment_only(patch):
            dropped += 1
        else:
            kept.append(line if line.endswith("\n") else line + "\n")
    if args.output:
        folder = os.path.dirname(os.path.abspath(args.output))
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, encoding="utf-8") as tmp:
            tmp.writelines(kept)
        os.replace(tmp.name, args.output)
    else:
        sys.stdout.writelines(kept)
    print(f"drop_comment_bugs: kept {len(kept)}, dropped {dropped} (comments or docstrings only)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
