#!/usr/bin/env python3
"""Add your own repository to the corpus: a local directory, or a git repository at a revision.

    just add-repo examples/own-repo/wordkit
    just add-repo ~/src/mylib --split dev --src-dir src/mylib --test-cmd 'pytest tests -p no:cacheprovider'
    just add-repo https://example.org/mylib.git --rev v1.2.0 --test-dep attrs==26.1.0

It snapshots the files (a directory as it is on disk, without .git, caches and virtual
environments; a git repository as `git checkout REV` gives it, without .git) into
WORKDIR/repos/<name>-<version>, hashes them (the record's `source.sha256`: every stage
that reads the corpus checks the snapshot still has those files), counts the tests its test
command collects, runs its clean suite natively and under wasm (`task-validate
--check-repos`), and writes its repo/1.1 record to WORKDIR/local-repos.jsonl, from which
WORKDIR/corpus.jsonl is composed beside the lock's repositories. Adding a repository of the
same name again replaces its record: tasks made from the old one no longer find their
repository (pass --name to keep both).

The version is `git-<commit>` or `dir-<tree hash>` (12 digits) unless --version names one.
The clean suite must pass natively; when it passes natively but not under wasm, the failing
tests are listed with their own messages and the record says `executor: native` (stages
running under wasm refuse its tasks). Test dependencies (--test-dep NAME==VERSION) must be
pure-Python wheels; one missing from WORKDIR/site-packages is downloaded (pip) and
installed there, and `just setup` keeps it (WORKDIR/local-deps.json).

Exit status: 0 added, 1 failure (the source is not there, the tests do not pass clean,
the test command collects nothing), 2 bad usage.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import setup  # noqa: E402  (the corpus lock, its test deps, collection, composing corpus.jsonl)

from setup import SetupError, log  # noqa: E402

setup.PROG = "add-repo"

SPLITS = ("train", "dev", "test")
# Never part of a snapshot: version control, caches, virtual environments, build output.
SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".mypy_cache",
                ".ruff_cache", ".tox", ".nox", ".venv", ".eggs"}
# ... and at the top only (deeper, a package may hold a folder of that name).
SKIPPED_TOP_DIRS = {"venv", "build", "dist", "node_modules"}
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd")
# Top-level names that are not the package: where bugs must not go.
NOT_SOURCE = {"tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks",
              "scripts", "tools", "setup.py", "conftest.py", "noxfile.py", "tasks.py",
              "fabfile.py", "manage.py"}


def tree_sha256(root: Path) -> str:
    """The tree hash that `stage_io::corpus::tree_sha256` computes: regular files only
    (links skipped), sorted by path component by component, each its relative path's
    bytes, a 0 byte and the raw sha256 of its content."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                files.append(path.relative_to(root))
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    files.sort(key=lambda rel: [part.encode() for part in rel.parts])
    h = hashlib.sha256()
    for rel in files:
        try:
            name = str(rel).encode()
        except UnicodeEncodeError:
            raise SetupError(f"{root / rel}: the file name is not UTF-8; rename it or leave "
                             "it out of the snapshot") from None
        h.update(name)
        h.update(b"\0")
        h.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return h.hexdigest()


def is_git_source(source: str, rev: str | None) -> bool:
    return rev is not None or source.endswith(".git") or "://" in source or source.startswith("git@")


def skipped(directory: Path, name: str, top: Path) -> bool:
    # `*.egg-info` stays, as `just setup` keeps it in an sdist: a package that reads its
    # own metadata (importlib.metadata) passes or fails alike in both.
    if name.endswith(SKIPPED_SUFFIXES):
        return True
    if not (directory / name).is_dir():
        return False
    return name in SKIPPED_DIRS or (directory == top and name in SKIPPED_TOP_DIRS)


def snapshot_dir(source: Path, dest: Path, workdir: Path) -> None:
    """Copy `source` into `dest` without what a snapshot never holds (links kept as links),
    nor the work directory, if it lies inside."""
    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names
                if skipped(Path(directory), n, source) or Path(directory, n) == workdir}
    shutil.copytree(source, dest, symlinks=True, ignore=ignore)


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SetupError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip()


def snapshot_git(source: str, rev: str, dest: Path) -> str:
    """Check `rev` of the git repository `source` out into `dest` (no .git); its commit."""
    if shutil.which("git") is None:
        raise SetupError("git is not installed: add the checkout as a directory instead")
    git("clone", "--quiet", "--no-checkout", source, str(dest))
    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=dest)
    except SetupError:
        commit = ""
    if not commit:
        raise SetupError(f"{source}: no revision `{rev}`")
    git("-c", "advice.detachedHead=false", "checkout", "--quiet", commit, cwd=dest)
    if (dest / ".gitmodules").exists():
        log("warning: the repository has submodules; they are not part of the snapshot")
    shutil.rmtree(dest / ".git")
    for path in sorted(dest.rglob("*"), reverse=True):
        if not path.is_symlink() and skipped(path.parent, path.name, dest):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return commit


def guess_src_dirs(root: Path) -> list[str]:
    """The packages (folders with __init__.py, at the top or under src/) and top-level
    modules that are not tests, set-up or docs."""
    found = []
    src = root / "src"
    # A src layout keeps the package under src/: top-level modules are then tooling
    # (versioneer.py, noxfile.py), not the package.
    src_layout = src.is_dir() and any((p / "__init__.py").is_file() for p in src.iterdir()
                                      if p.is_dir())
    for base in (src,) if src_layout else (root, src):
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir()):
            name = entry.name
            if name.startswith((".", "_")) or name in NOT_SOURCE:
                continue
            if entry.is_dir() and (entry / "__init__.py").is_file():
                found.append(str(entry.relative_to(root)))
            elif (base == root and entry.is_file() and name.endswith(".py")
                  and not name.startswith("test_") and not name.endswith("_test.py")):
                found.append(name)
    return found


def requires_python(root: Path) -> str:
    try:
        project = setup.tomllib.loads((root / "pyproject.toml").read_text()).get("project", {})
    except (OSError, setup.tomllib.TOMLDecodeError):
        return ""
    value = project.get("requires-python", "")
    return value if isinstance(value, str) else ""


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", name).strip("-.")
    if not cleaned:
        raise SetupError(f"`{name}` cannot name a repository: pass --name")
    return cleaned


def ensure_test_deps(workdir: Path, requirements: list[str]) -> list[dict]:
    """Each NAME==VERSION installed in WORKDIR/site-packages: a missing one is downloaded as a
    pure-Python wheel and the site-packages reinstalled with it (kept in local-deps.json)."""
    lock = setup.load_lock(setup.DEFAULT_LOCK)
    known = {d["requirement"] for d in lock["test_deps"]} | {
        d["requirement"] for d in setup.local_deps(workdir)}
    added = []
    for req in requirements:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9._+!-]+", req):
            raise SetupError(f"--test-dep `{req}`: pin it as NAME==VERSION")
        if req in known:
            continue
        downloads = workdir / "cache" / "downloads"
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            log(f"pip download {req}")
            setup.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                       ":all:", "--dest", tmp, req])
            wheels = list(Path(tmp).glob("*.whl"))
            if len(wheels) != 1 or not wheels[0].name.endswith(
                    ("py3-none-any.whl", "py2.py3-none-any.whl")):
                raise SetupError(f"{req}: not a pure-Python wheel ({[w.name for w in wheels]}): "
                                 "the sandbox runs pure Python only")
            downloads.mkdir(parents=True, exist_ok=True)
            wheel = downloads / wheels[0].name
            shutil.move(str(wheels[0]), wheel)
        added.append({"requirement": req, "filename": wheel.name,
                      "sha256": setup.sha256_of(wheel)})
    if added:
        deps = setup.local_deps(workdir) + added
        setup.install_test_deps(workdir, workdir / "cache" / "downloads",
                                lock["test_deps"] + deps)
        setup.write_atomic(workdir / setup.LOCAL_DEPS, json.dumps(deps, indent=1) + "\n")
        log(f"installed {', '.join(d['requirement'] for d in added)} into {workdir / 'site-packages'}")
    return lock["test_deps"]


def check_clean(workdir: Path, bin_dir: Path, record: dict, executor: str) -> tuple[bool, list[dict], str]:
    """`task-validate --check-repos` on the record alone: (passes, failing tests, why)."""
    tool = bin_dir / "task-validate"
    if not tool.exists():
        raise SetupError(f"{tool} is not built: run `cargo build --release -p task-validate` "
                         "(or `just add-repo`, which builds it)")
    with tempfile.TemporaryDirectory(dir=workdir / "cache") as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text(json.dumps({**record, "root": str(workdir / record["root"]),
                                      "executor": "wasm"}) + "\n")
        proc = subprocess.run(
            [str(tool), "--check-repos", "--corpus", str(corpus), "--workdir", str(workdir),
             "--executor", executor, "-q"], capture_output=True, text=True)
    try:
        report = json.loads(proc.stdout.splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SetupError(f"task-validate --check-repos under {executor} failed "
                         f"(exit {proc.returncode}): {proc.stderr.strip()[-2000:]}") from None
    return bool(report.get("ok")), report.get("failed", []), report.get("why", "")


def describe_failures(failed: list[dict], limit: int = 10) -> str:
    lines = [f"    {f['test']}: {f.get('message') or '(no message)'}" for f in failed[:limit]]
    if len(failed) > limit:
        lines.append(f"    … and {len(failed) - limit} more")
    return "\n".join(lines)


def add(args: argparse.Namespace) -> dict:
    workdir = args.workdir.resolve()
    if not (workdir / "venv" / "bin" / "python").exists():
        raise SetupError(f"{workdir} has no venv: run `just setup` first")
    git_source = is_git_source(args.source, args.rev)
    if not git_source:
        source_dir = Path(args.source).expanduser()
        if not source_dir.is_dir():
            raise SetupError(f"{args.source}: no such directory (a git repository needs --rev, "
                             "or a URL ending in .git)")
        source_dir = source_dir.resolve()
    repos = workdir / "repos"
    repos.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".add-repo.", dir=repos))
    try:
        tree = tmp / "tree"
        commit = None
        if git_source:
            commit = snapshot_git(args.source, args.rev or "HEAD", tree)
            default_name = re.sub(r"\.git$", "", args.source.rstrip("/").rsplit("/", 1)[-1])
        else:
            snapshot_dir(source_dir, tree, workdir)
            default_name = source_dir.name
        sha = tree_sha256(tree)
        name = safe_name(args.name or default_name)
        version = safe_name(args.version or (f"git-{commit[:12]}" if commit else f"dir-{sha[:12]}"))
        rid = f"{name}-{version}"
        src_dirs = args.src_dir or guess_src_dirs(tree)
        if not src_dirs:
            raise SetupError("no package found (a folder with __init__.py, at the top or under "
                             "src/, or a top-level module): name it with --src-dir")
        for d in src_dirs:
            if not (tree / d).exists():
                raise SetupError(f"--src-dir {d}: not in the repository")
        pythonpath = "src" if all(d.startswith("src/") for d in src_dirs) else "."
        test_cmd = args.test_cmd or f"pytest -p no:cacheprovider -o pythonpath={pythonpath}"
        try:
            setup.pytest_args(test_cmd)
        except (SetupError, ValueError) as e:
            raise SetupError(f"--test-cmd: {e}") from e
        lock_part = workdir / "cache" / "corpus-lock.jsonl"
        if lock_part.exists() and any(json.loads(line).get("id") == rid
                                      for line in lock_part.read_text().splitlines() if line.strip()):
            raise SetupError(f"the lock already has a repository `{rid}`: pass another --name "
                             "or --version")
        dest = repos / rid
        created = not dest.exists()
        if created:
            tree.rename(dest)
        elif tree_sha256(dest) != sha:
            raise SetupError(f"{dest} holds other files than {args.source} has now (edited "
                             "after it was added): pass another --version to add the new content")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"snapshot {dest} (sha256 {sha[:12]}, source dirs {', '.join(src_dirs)})")
    remote = git_source and ("://" in args.source or args.source.startswith("git@"))
    # A token in the URL (https://user:token@host/...) must not land in the corpus.
    url = re.sub(r"^([a-z+]+://)[^/@]*@", r"\1", args.source)
    source = {"url": url} if remote else {
        "path": str(Path(args.source).expanduser().resolve())}
    if commit:
        source["rev"] = commit
    source["sha256"] = sha
    try:
        record = check_and_record(args, workdir, dest, name, version, src_dirs, test_cmd, source)
    except BaseException:
        if created:  # nothing half-added: no record, no snapshot
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return record


def check_and_record(args: argparse.Namespace, workdir: Path, dest: Path, name: str,
                     version: str, src_dirs: list[str], test_cmd: str, source: dict) -> dict:
    """Install its test deps, collect, check the clean suite, write the record."""
    rid = dest.name

    lock_deps = ensure_test_deps(workdir, args.test_dep)
    deps = [d["requirement"] for d in lock_deps]
    deps += [d for d in args.test_dep if d not in deps]
    try:
        n_tests = setup.collect(workdir, {"name": name, "version": version, "test_cmd": test_cmd},
                                setup.native_python(workdir))
    except SetupError as e:
        raise SetupError(f"the test command `{test_cmd}` collects no tests (source dirs "
                         f"{', '.join(src_dirs)}; set them with --test-cmd and --src-dir): {e}") from e
    log(f"{rid}: {n_tests} tests collected")
    record = {
        "schema": "repo/1.1", "id": rid, "name": name, "version": version, "split": args.split,
        "source": source, "root": f"repos/{rid}", "src_dirs": src_dirs, "test_cmd": test_cmd,
        "python": requires_python(dest), "executor": "wasm", "test_deps": deps,
        "n_tests": n_tests,
    }
    if args.check != "none":
        ok, failed, why = check_clean(workdir, args.bin, record, "native")
        if not ok:
            raise SetupError(f"{rid}: the clean suite does not pass natively: {why}"
                             + (f"\n{describe_failures(failed)}" if failed else ""))
        log(f"{rid}: the clean suite passes natively")
        if args.check == "both":
            ok, failed, why = check_clean(workdir, args.bin, record, "wasm")
            if ok:
                log(f"{rid}: the clean suite passes under wasm")
            else:
                record["executor"] = "native"
                log(f"{rid}: the clean suite does not pass under wasm ({why}); the record says "
                    "`executor: native`, so stages under wasm refuse its tasks"
                    + (f":\n{describe_failures(failed)}" if failed else ""))
        else:
            record["executor"] = "native"
    local = workdir / setup.LOCAL_REPOS
    kept = []
    if local.exists():
        for line in local.read_text().splitlines():
            if not line.strip():
                continue
            old = json.loads(line)
            if old.get("name") != name:
                kept.append(line.strip() + "\n")
            elif old.get("id") != rid:
                log(f"warning: {rid} replaces {old.get('id')}: tasks made from {old.get('id')} "
                    "no longer find their repository")
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    setup.compose_corpus(workdir, local="".join(sorted(kept + [line])))
    log(f"added {rid} ({args.split}); its record is in {local}")
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="add_repo.py", description=__doc__.split("\n\n")[0],
        epilog="Examples:\n" + "\n".join(__doc__.split("\n\n")[1].splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="a directory, or a git repository (a URL or a path with --rev)")
    ap.add_argument("--rev", help="the git revision to check out (a commit, tag or branch); "
                    "makes SOURCE a git repository")
    ap.add_argument("--name", help="the repository's name (default: the folder's)")
    ap.add_argument("--version", help="its version (default: git-<commit> or dir-<tree hash>)")
    ap.add_argument("--split", choices=SPLITS, default="train",
                    help="train (default), dev (grad-score's target) or test (held out)")
    ap.add_argument("--src-dir", action="append", default=[], metavar="DIR",
                    help="a package folder or module where bugs may go (repeatable; default: "
                         "the packages found at the top or under src/)")
    ap.add_argument("--test-cmd", metavar="CMD",
                    help="the pytest command line, run from the repository's root (default: "
                         "`pytest -p no:cacheprovider -o pythonpath=.` or `=src`)")
    ap.add_argument("--test-dep", action="append", default=[], metavar="NAME==VERSION",
                    help="a pure-Python test dependency (repeatable)")
    ap.add_argument("--check", choices=("both", "native", "none"), default="both",
                    help="run the clean suite natively and under wasm (default), natively "
                         "only (the record says executor native), or not at all")
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("SOCRATIC_WORKDIR", ".socratic")))
    ap.add_argument("--bin", type=Path, default=Path("target/release"),
                    help="where task-validate is built (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        add(args)
    except SetupError as e:
        print(f"add-repo: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
