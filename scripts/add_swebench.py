#!/usr/bin/env python3
"""SWE-bench instances that run: each instance's repository, at its base commit with its fix,
joins the corpus, and the instances become Tasks the stages validate and roll out.

    just add-swebench instances.jsonl ~/src/astropy --test-cmd 'pytest -p no:cacheprovider' -o tasks.jsonl
    just add-swebench instances.jsonl ~/src/mylib --test-cmds test-cmds.json -o tasks.jsonl

For each instance (SWE-bench's fields; `records import --from swebench` reads the same),
`git archive` takes CHECKOUT (a local clone that holds the instance's `base_commit`) at
`base_commit`, the instance's `patch` (the fix) is applied with `git apply`, and that tree
(the clean code, as our stages need it: the bug is the fix reversed) is pinned into
WORKDIR/repos/<owner>__<name>-swe-<base commit>-<fix hash> with a repo/1.1 record in
WORKDIR/local-repos.jsonl. The instance's `test_patch` stays in the Task: task-validate and
swe-rollout lay it over the working copy before every test run (after the solver's edits),
as the SWE-bench harness does, so the solver never sees the tests that tell.

The test command comes from the instance (`test_cmd`), else from --test-cmds (a JSON object:
{"owner/name": "pytest …"} or {"owner/name": {"<instance version>": "pytest …"}}), else from
--test-cmd; the files the test patch touches are appended to it (the harness's test
directives) unless --whole-suite. The Tasks go to -o (atomically) or stdout; validate them with
`task-validate`, whose gate checks that the FAIL_TO_PASS tests fail with the bug and pass with
the fix, then roll them out with `swe-rollout`.

Exit status: 0 ok, 1 failure (a commit or a fix that does not apply, no test command), 2 bad
usage or a bad instance (file:line: field: why).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import add_repo  # noqa: E402
import setup  # noqa: E402

from setup import SetupError, log  # noqa: E402

setup.PROG = "add-swebench"
REQUIRED = ("instance_id", "repo", "base_commit", "patch", "test_patch")


class BadInstance(Exception):
    """Bad input: exit 2 with file:line: field: why."""


def read_instances(path: Path) -> list[tuple[int, dict]]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            instance = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInstance(f"{path}:{n}: not JSON ({e})") from e
        if not isinstance(instance, dict):
            raise BadInstance(f"{path}:{n}: expected a JSON object")
        for field in REQUIRED:
            if not isinstance(instance.get(field), str) or not instance[field].strip():
                raise BadInstance(f"{path}:{n}: field {field}: missing or empty")
        out.append((n, instance))
    if not out:
        raise BadInstance(f"{path}: no instances")
    return out


def test_files(test_patch: str) -> list[str]:
    """The Python files a patch touches, in order (the SWE-bench harness's test directives;
    fixtures such as .json or .txt files are data, not tests)."""
    files = []
    for line in test_patch.splitlines():
        m = re.match(r"^\+\+\+ b/(.+?\.py)\s*$", line)
        if m and m.group(1) not in files:
            files.append(m.group(1))
    return files


def test_command(instance: dict, commands: dict, default: str | None, whole_suite: bool) -> str:
    cmd = instance.get("test_cmd") or ""
    if not cmd:
        entry = commands.get(instance["repo"])
        if isinstance(entry, dict):
            entry = entry.get(str(instance.get("version", "")))
        cmd = entry or default or ""
    if not cmd:
        raise SetupError(f"{instance['instance_id']}: no test command (the instance has no "
                         f"test_cmd, --test-cmds has none for {instance['repo']}, no --test-cmd)")
    if not whole_suite:
        cmd = " ".join([cmd, *map(shlex.quote, test_files(instance["test_patch"]))])
    setup.pytest_args(cmd)
    return cmd


def resolve_commit(checkout: Path, instance: dict) -> str:
    """The full hash of the instance's `base_commit` in `checkout` (never read as an option)."""
    given = instance["base_commit"]
    proc = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--verify", "--quiet",
                           "--end-of-options", f"{given}^{{commit}}"], capture_output=True, text=True)
    commit = proc.stdout.strip()
    if proc.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", commit):
        raise SetupError(f"{instance['instance_id']}: {checkout} has no commit `{given}`")
    return commit


def snapshot(checkout: Path, instance: dict, commit: str, dest: Path) -> None:
    """`commit` of `checkout` with the instance's fix applied, into `dest`."""
    proc = subprocess.run(["git", "-C", str(checkout), "archive", "--format=tar", commit],
                          capture_output=True)
    if proc.returncode != 0:
        raise SetupError(f"{instance['instance_id']}: {checkout} has no commit {commit} "
                         f"({proc.stderr.decode(errors='replace').strip()})")
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, **kw)
    fix = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], cwd=dest,
                         input=instance["patch"], capture_output=True, text=True)
    if fix.returncode != 0:
        raise SetupError(f"{instance['instance_id']}: its patch does not apply to "
                         f"{commit}: {fix.stderr.strip()}")


def add_instance(args: argparse.Namespace, workdir: Path, instance: dict, commands: dict) -> tuple[dict, str]:
    """The instance's Repo record (its snapshot made once) and its test command."""
    name = add_repo.safe_name(instance["repo"].replace("/", "__"))
    commit = resolve_commit(args.checkout, instance)
    fix_hash = hashlib.sha256(instance["patch"].encode()).hexdigest()[:8]
    version = f"swe-{commit[:12]}-{fix_hash}"
    rid = f"{name}-{version}"
    test_cmd = test_command(instance, commands, args.test_cmd, args.whole_suite)
    dest = workdir / "repos" / rid
    tmp = Path(tempfile.mkdtemp(prefix=".add-swebench.", dir=workdir / "repos"))
    try:
        # Made afresh each time and compared: an existing snapshot edited by hand is
        # replaced, never pinned as it is.
        snapshot(args.checkout, instance, commit, tmp / "tree")
        if dest.exists() and add_repo.tree_sha256(dest) != add_repo.tree_sha256(tmp / "tree"):
            log(f"{dest} differs from {commit[:12]} with the fix: made again")
            shutil.rmtree(dest)
        if not dest.exists():
            (tmp / "tree").rename(dest)
            log(f"snapshot {dest}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    src_dirs = args.src_dir or add_repo.guess_src_dirs(dest)
    if not src_dirs:
        raise SetupError(f"{instance['instance_id']}: no package found: name it with --src-dir")
    record = {
        "schema": "repo/1.1", "id": rid, "name": name, "version": version, "split": args.split,
        "source": {"path": str(args.checkout), "rev": commit,
                   "sha256": add_repo.tree_sha256(dest)},
        "root": f"repos/{rid}", "src_dirs": src_dirs, "test_cmd": test_cmd,
        "python": add_repo.requires_python(dest), "executor": args.executor,
        "test_deps": [d["requirement"] for d in setup.load_lock(setup.DEFAULT_LOCK)["test_deps"]],
    }
    return record, test_cmd


def import_tasks(bin_dir: Path, instances: Path) -> list[dict]:
    tool = bin_dir / "records"
    if not tool.exists():
        raise SetupError(f"{tool} is not built: run `cargo build --release -p records`")
    proc = subprocess.run([str(tool), "-q", "import", "--from", "swebench", str(instances)],
                          capture_output=True, text=True)
    if proc.returncode == 2:
        raise BadInstance(proc.stderr.strip())
    if proc.returncode != 0:
        raise SetupError(f"records import failed: {proc.stderr.strip()}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="add_swebench.py", description=__doc__.split("\n\n")[0],
        epilog="Examples:\n" + "\n".join(__doc__.split("\n\n")[1].splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instances", type=Path, help="SWE-bench instances, one JSON object a line")
    ap.add_argument("checkout", type=Path, help="a local git clone holding their base commits")
    ap.add_argument("--test-cmd", metavar="CMD", help="the pytest command of every instance "
                    "that names none and is not in --test-cmds")
    ap.add_argument("--test-cmds", type=Path, metavar="FILE",
                    help='a JSON object: {"owner/name": CMD} or {"owner/name": {VERSION: CMD}}')
    ap.add_argument("--whole-suite", action="store_true",
                    help="run the test command as it is, without the test patch's files")
    ap.add_argument("--split", choices=add_repo.SPLITS, default="test",
                    help="the repositories' split (default: test, held out)")
    ap.add_argument("--src-dir", action="append", default=[], metavar="DIR",
                    help="where the package is (default: the packages found)")
    ap.add_argument("--executor", choices=("wasm", "native"), default="wasm",
                    help="`native` when the tests need what WASI lacks (the gate tells)")
    ap.add_argument("-o", "--output", type=Path, help="the Tasks (default: stdout)")
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("SOCRATIC_WORKDIR", ".socratic")))
    ap.add_argument("--bin", type=Path, default=Path("target/release"),
                    help="where `records` is built (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        workdir = args.workdir.resolve()
        if not args.checkout.is_dir():
            raise SetupError(f"{args.checkout}: no such directory")
        args.checkout = args.checkout.resolve()
        commands = {}
        if args.test_cmds:
            try:
                commands = json.loads(args.test_cmds.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise BadInstance(f"{args.test_cmds}: {e}") from e
            if not isinstance(commands, dict):
                raise BadInstance(f"{args.test_cmds}: expected a JSON object")
        instances = read_instances(args.instances)
        seen = set()
        for n, instance in instances:
            if instance["instance_id"] in seen:
                raise BadInstance(f"{args.instances}:{n}: field instance_id: "
                                  f"`{instance['instance_id']}` appears twice")
            seen.add(instance["instance_id"])
        tasks = {t["instance_id"]: t for t in import_tasks(args.bin, args.instances)}
        (workdir / "repos").mkdir(parents=True, exist_ok=True)
        records, out, skipped = {}, [], []
        for _, instance in instances:
            try:
                record, test_cmd = add_instance(args, workdir, instance, commands)
            except SetupError as e:  # one instance that cannot be made does not stop the rest
                log(f"skipped: {e}")
                skipped.append(instance["instance_id"])
                continue
            records[record["id"]] = record
            task = tasks[instance["instance_id"]]
            task["repo"], task["test_cmd"] = record["id"], test_cmd
            out.append(json.dumps(task, ensure_ascii=False, separators=(",", ":")) + "\n")
        local = workdir / setup.LOCAL_REPOS
        kept = [line.strip() + "\n" for line in (local.read_text().splitlines() if local.exists() else [])
                if line.strip() and json.loads(line)["id"] not in records]
        lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records.values()]
        setup.compose_corpus(workdir, local="".join(sorted(kept + lines)))
        if args.output:
            setup.write_atomic(args.output, "".join(out))
        else:
            sys.stdout.write("".join(out))
        log(f"{len(out)} instances over {len(records)} repository snapshots; validate them with "
            "task-validate")
        if skipped:
            raise SetupError(f"{len(skipped)} instances skipped (above): {', '.join(skipped)}")
    except BadInstance as e:
        print(f"add-swebench: error: {e}", file=sys.stderr)
        return 2
    except SetupError as e:
        print(f"add-swebench: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
