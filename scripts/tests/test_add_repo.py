"""Bring your own repository (`just add-repo`), as a user does it: the example project the repo
ships is added as a directory and as a git checkout at a tag that the test makes, and
task-gen → task-validate → swe-rollout run on it; a suite that passes natively but not under
wasm is added for the native executor only, with the failing tests' own messages; a source
that is not there, a test command that collects nothing and a snapshot changed after it was
added are errors that say so. A hand-made SWE-bench instance over a git history the test
writes (a bug, its fix, a test patch that edits one test file and adds another) imports with
`just add-swebench`, validates and rolls out. Needs `just setup` and the debug build of the
tools; `just test` runs it.

    python3 -m unittest scripts.tests.test_add_repo -v
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SOCRATIC_WORKDIR", ROOT / ".socratic")).resolve()
BIN = ROOT / "target" / "debug"
EXAMPLE = ROOT / "examples" / "own-repo" / "wordkit"
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]

sys.path.insert(0, str(ROOT / "scripts"))
import add_repo  # noqa: E402


def run(*cmd, workdir: Path, check=True, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "SOCRATIC_WORKDIR": str(workdir)}
    proc = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class AddRepo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (SHARED / "venv" / "bin" / "python").exists():
            raise unittest.SkipTest("run `just setup` first")
        cls.tmp = Path(tempfile.mkdtemp(prefix="add-repo-test-"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def workdir(self, name: str) -> Path:
        """A work directory of its own (the corpus starts empty) sharing the interpreters
        and test dependencies that `just setup` installed."""
        workdir = self.tmp / name
        (workdir / "cache").mkdir(parents=True)
        for shared in ("venv", "site-packages", "python"):
            (workdir / shared).symlink_to(SHARED / shared)
        return workdir

    def add(self, workdir: Path, *args, check=True) -> subprocess.CompletedProcess:
        return run(sys.executable, ROOT / "scripts/add_repo.py", "--workdir", workdir,
                   "--bin", BIN, *args, workdir=workdir, check=check)

    def pipeline(self, workdir: Path, repo: dict) -> None:
        """task-gen → task-validate → swe-rollout on the work directory's corpus, natively."""
        corpus = workdir / "corpus.jsonl"
        candidates, valid = workdir / "candidates.jsonl", workdir / "valid.jsonl"
        run(BIN / "task-gen", "--strategy", "random", "--budget", "8", "--seed", "1",
            "--split", repo["split"], corpus, "-o", candidates, workdir=workdir)
        # An imported task carries no test command: the repository's runs.
        tasks = records(candidates)
        for task in tasks:
            task["test_cmd"] = ""
        candidates.write_text("".join(json.dumps(t) + "\n" for t in tasks))
        run(BIN / "task-validate", "--executor", "native", candidates, "-o", valid, workdir=workdir)
        kept = records(valid)
        self.assertGreater(len(kept), 0)
        self.assertTrue(all(t["test_cmd"] == repo["test_cmd"] for t in kept))

        checkpoint = workdir / "solver"
        train = workdir / "train-corpus.jsonl"
        train.write_text(json.dumps({**repo, "split": "train"}) + "\n")
        run(BIN / "solver-train", "init", "--size", "micro", "--steps", "1", "--vocab", "300",
            "-o", checkpoint, train, "-q", workdir=workdir)
        traces = workdir / "traces.jsonl"
        run(BIN / "swe-rollout", "--solver", f"model:{checkpoint}", "--executor", "native",
            "--max-steps", "1", "-k", "2", "--jobs", "1", valid, "-o", traces, workdir=workdir)
        attempted = records(traces)
        self.assertEqual(len(attempted), len(kept))
        self.assertEqual([t.get("error") for t in attempted], [None] * len(kept))

    def test_a_directory_runs_through_generation_validation_and_rollouts(self):
        workdir = self.workdir("dir")
        self.add(workdir, EXAMPLE, "--test-dep", "pytest==9.2.0")
        (repo,) = records(workdir / "corpus.jsonl")
        self.assertEqual(repo["name"], "wordkit")
        self.assertEqual(repo["id"], f"wordkit-dir-{repo['source']['sha256'][:12]}")
        self.assertEqual(repo["source"]["path"], str(EXAMPLE))
        self.assertEqual(repo["source"]["sha256"], add_repo.tree_sha256(workdir / repo["root"]))
        self.assertEqual((repo["split"], repo["src_dirs"], repo["executor"], repo["n_tests"]),
                         ("train", ["wordkit"], "wasm", 12))
        self.assertEqual(repo["python"], ">=3.9")
        run(BIN / "records", "check", "--kind", "repo", workdir / "corpus.jsonl", workdir=workdir)

        corpus, candidates = workdir / "corpus.jsonl", workdir / "candidates.jsonl"
        self.pipeline(workdir, repo)
        # A repository whose requires-python the executor's interpreter does not meet is
        # refused by name, without a run.
        newer = workdir / "needs-newer-python.jsonl"
        newer.write_text(json.dumps({**repo, "python": ">=3.99"}) + "\n")
        rejects = workdir / "rejects-python.jsonl"
        run(BIN / "task-validate", "--executor", "native", "--corpus", newer, candidates,
            "-o", workdir / "none.jsonl", "--rejects", rejects, workdir=workdir)
        self.assertIn("requires Python >=3.99", records(rejects)[0]["rejection"]["reason"])

        # The snapshot is pinned: a file changed under it stops every stage that reads it.
        with open(workdir / repo["root"] / "wordkit" / "text.py", "a") as f:
            f.write("# edited by hand\n")
        proc = run(BIN / "task-gen", "--budget", "2", corpus, workdir=workdir, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("changed since it was pinned", proc.stderr)
        self.assertIn("just add-repo", proc.stderr)

    def test_a_git_checkout_is_the_revision_asked_for(self):
        source = self.tmp / "wordkit-git"
        shutil.copytree(EXAMPLE, source)
        subprocess.run(["git", "init", "-q", str(source)], check=True)
        subprocess.run([*GIT, "-C", str(source), "add", "-A"], check=True)
        subprocess.run([*GIT, "-C", str(source), "commit", "-qm", "first"], check=True)
        subprocess.run([*GIT, "-C", str(source), "tag", "v1"], check=True)
        tagged = subprocess.run(["git", "-C", str(source), "rev-parse", "v1"], check=True,
                                capture_output=True, text=True).stdout.strip()
        with open(source / "wordkit" / "text.py", "a") as f:
            f.write("\nLATER = True\n")
        subprocess.run([*GIT, "-C", str(source), "commit", "-qam", "later"], check=True)

        workdir = self.workdir("git")
        self.add(workdir, source, "--rev", "v1", "--split", "dev", "--check", "native")
        (repo,) = records(workdir / "corpus.jsonl")
        self.assertEqual(repo["id"], f"wordkit-git-git-{tagged[:12]}")
        self.assertEqual((repo["source"]["rev"], repo["split"]), (tagged, "dev"))
        root = workdir / repo["root"]
        self.assertFalse((root / ".git").exists())
        self.assertNotIn("LATER", (root / "wordkit" / "text.py").read_text())
        # --check native: the suite was not tried under wasm, so only native stages use it.
        self.assertEqual(repo["executor"], "native")
        self.pipeline(workdir, repo)

        proc = self.add(workdir, source, "--rev", "no-such-tag", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no revision `no-such-tag`", proc.stderr)

    def test_a_suite_that_needs_what_wasm_lacks_is_added_for_native_runs_only(self):
        source = self.tmp / "alarms-src"
        shutil.copytree(EXAMPLE, source)
        (source / "tests" / "conftest.py").write_text(
            "import signal\n\nimport pytest\n\n\n@pytest.fixture(autouse=True)\n"
            "def deadline():\n    signal.alarm(10)\n    yield\n    signal.alarm(0)\n")
        workdir = self.workdir("alarms")
        proc = self.add(workdir, source)
        self.assertIn("module 'signal' has no attribute 'alarm'", proc.stderr)
        (repo,) = records(workdir / "corpus.jsonl")
        self.assertEqual(repo["executor"], "native")

        candidates, rejects = workdir / "candidates.jsonl", workdir / "rejects.jsonl"
        run(BIN / "task-gen", "--budget", "2", "--seed", "1", workdir / "corpus.jsonl",
            "-o", candidates, workdir=workdir)
        run(BIN / "task-validate", "--executor", "wasm", candidates, "-o", workdir / "valid.jsonl",
            "--rejects", rejects, workdir=workdir)
        reasons = {t["rejection"]["reason"] for t in records(rejects)}
        self.assertEqual(len(reasons), 1, reasons)
        self.assertIn("runs its tests only natively", reasons.pop())

    def test_a_swebench_instance_imports_validates_and_rolls_out(self):
        repo = self.tmp / "swe-history"
        shutil.copytree(EXAMPLE, repo)
        text, tests = repo / "wordkit" / "text.py", repo / "tests" / "test_text.py"
        fixed = text.read_text()
        text.write_text(fixed.replace("    if value < low:\n        return low\n",
                                      "    if value < low:\n        return high\n"))
        tests.write_text(tests.read_text().replace(
            "    assert clamp(-1, 0, 10) == 0\n    assert clamp(11, 0, 10) == 10\n", ""))

        def git(*args: str) -> str:
            return subprocess.run([*GIT, "-C", str(repo), *args], check=True,
                                  capture_output=True, text=True).stdout

        git("init", "-q")
        git("add", "-A")
        git("commit", "-qm", "clamp with a bug")
        base = git("rev-parse", "HEAD").strip()
        text.write_text(fixed)
        git("commit", "-qam", "fix clamp below the range")
        fix = git("rev-parse", "HEAD").strip()
        with open(tests, "a") as f:
            f.write("\n\ndef test_clamp_above():\n    assert clamp(11, 0, 10) == 10\n")
        (repo / "tests" / "more").mkdir()
        (repo / "tests" / "more" / "test_clamp.py").write_text(
            "from wordkit import clamp\n\n\ndef test_clamp_below():\n    assert clamp(-1, 0, 10) == 0\n")
        git("add", "-A")
        git("commit", "-qm", "tests")
        with_tests = git("rev-parse", "HEAD").strip()
        instance = {
            "instance_id": "wordkit__wordkit-1", "repo": "wordkit/wordkit", "base_commit": base,
            "patch": git("diff", base, fix), "test_patch": git("diff", fix, with_tests),
            "problem_statement": "clamp(-1, 0, 10) gives 10; below the range it should give 0.",
            "FAIL_TO_PASS": json.dumps(["tests/more/test_clamp.py::test_clamp_below"]),
            "PASS_TO_PASS": json.dumps(["tests/test_text.py::test_clamp_above"]),
            "version": "0.1", "hints_text": "", "created_at": "2026-12-05T00:00:00Z",
            "environment_setup_commit": base,
        }
        # A fixture the test patch adds is data, not a test directive; an instance whose
        # base_commit reads as an option is refused, not passed to git.
        instance["test_patch"] += (
            "diff --git a/tests/data.json b/tests/data.json\nnew file mode 100644\n"
            "--- /dev/null\n+++ b/tests/data.json\n@@ -0,0 +1 @@\n+[1, 2]\n")
        hostile = {**instance, "instance_id": "wordkit__wordkit-2",
                   "base_commit": f"--output={self.tmp / 'truncated'}"}
        instances = self.tmp / "instances.jsonl"
        instances.write_text(json.dumps(instance) + "\n" + json.dumps(hostile) + "\n")
        workdir = self.workdir("swebench")
        tasks = workdir / "tasks.jsonl"
        proc = run(sys.executable, ROOT / "scripts/add_swebench.py", "--workdir", workdir,
                   "--bin", BIN, instances, repo, "--test-cmd",
                   "pytest -p no:cacheprovider -o pythonpath=.", "-o", tasks, workdir=workdir,
                   check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("has no commit `--output=", proc.stderr)
        self.assertFalse((self.tmp / "truncated").exists())
        (task,) = records(tasks)
        (record,) = records(workdir / "corpus.jsonl")
        self.assertEqual(task["repo"], record["id"])
        self.assertEqual(task["test_cmd"], "pytest -p no:cacheprovider -o pythonpath=. "
                                           "tests/more/test_clamp.py tests/test_text.py")
        root = workdir / record["root"]
        # The snapshot is the base commit with the fix, without the tests that tell.
        self.assertEqual((root / "wordkit" / "text.py").read_text(), fixed)
        self.assertFalse((root / "tests" / "more").exists())

        valid = workdir / "valid.jsonl"
        run(BIN / "task-validate", "--executor", "native", tasks, "-o", valid, workdir=workdir)
        (checked,) = records(valid)
        self.assertEqual(checked["FAIL_TO_PASS"], ["tests/more/test_clamp.py::test_clamp_below"])
        self.assertIn("tests/test_text.py::test_clamp_above", checked["PASS_TO_PASS"])
        self.assertEqual(checked["problem_statement"], instance["problem_statement"])

        train = workdir / "train-corpus.jsonl"
        train.write_text(json.dumps({**record, "split": "train"}) + "\n")
        checkpoint = workdir / "solver"
        run(BIN / "solver-train", "init", "--size", "micro", "--steps", "1", "--vocab", "300",
            "-o", checkpoint, train, "-q", workdir=workdir)
        traces = workdir / "traces.jsonl"
        run(BIN / "swe-rollout", "--solver", f"model:{checkpoint}", "--executor", "native",
            "--max-steps", "3", "-k", "8", valid, "-o", traces, workdir=workdir)
        (trace,) = records(traces)
        self.assertIsNone(trace.get("error"))
        # The bug is reproduced through the test patch's tests; the repair never edits them.
        self.assertEqual(trace["steps"][0]["tests"]["failing"],
                         ["tests/more/test_clamp.py::test_clamp_below"])
        self.assertNotIn("tests/", trace["patch"])

        # Exported as a Harbor task and checked as Harbor would: the verifier gives 0 on the
        # environment as it is and 1 after the reference solution.
        harbor = workdir / "harbor"
        run(BIN / "records", "export", "--to", "harbor", "--corpus", workdir / "corpus.jsonl",
            valid, "-o", harbor, workdir=workdir)
        task_dir = harbor / instance["instance_id"]
        for name in ("instruction.md", "task.toml", "environment/Dockerfile",
                     "solution/solve.sh", "tests/test.sh"):
            self.assertTrue((task_dir / name).is_file(), name)
        self.assertIn(instance["problem_statement"], (task_dir / "instruction.md").read_text())
        self.assertFalse((task_dir / "environment/repo/tests/more").exists())
        env = {**os.environ, "PYTHON": str(SHARED / "venv/bin/python"),
               "PYTHONPATH": str(SHARED / "site-packages")}
        for solved in (False, True):
            app = self.tmp / f"harbor-app-{solved}"
            shutil.copytree(task_dir / "environment/repo", app)
            if solved:
                subprocess.run(["bash", str(task_dir / "solution/solve.sh")], cwd=app, check=True)
            else:
                # An agent that writes the failing test away, or adds a conftest.py that
                # passes everything, earns nothing: the verifier restores the task's tests.
                (app / "tests" / "more").mkdir(parents=True)
                (app / "tests" / "more" / "test_clamp.py").write_text(
                    "def test_clamp_below():\n    pass\n")
                (app / "tests" / "test_text.py").write_text("")
                (app / "conftest.py").write_text(
                    "import pytest\n\n\n@pytest.hookimpl(tryfirst=True)\n"
                    "def pytest_runtest_call(item):\n    item.runtest = lambda: None\n")
            logs = self.tmp / f"harbor-logs-{solved}"
            subprocess.run(["bash", str(task_dir / "tests/test.sh")], cwd=app, check=True,
                           env={**env, "LOGS_DIR": str(logs)}, capture_output=True)
            self.assertEqual((logs / "reward.txt").read_text().strip(), str(int(solved)))

    def test_what_cannot_be_added_is_named(self):
        workdir = self.workdir("errors")
        # A work directory inside the source is not part of the snapshot.
        inside = self.tmp / "holds-its-workdir"
        shutil.copytree(EXAMPLE, inside)
        (inside / ".socratic" / "cache").mkdir(parents=True)
        for shared in ("venv", "site-packages", "python"):
            (inside / ".socratic" / shared).symlink_to(SHARED / shared)
        self.add(inside / ".socratic", inside, "--check", "native")
        (repo,) = records(inside / ".socratic" / "corpus.jsonl")
        self.assertFalse((inside / ".socratic" / repo["root"] / ".socratic").exists())

        proc = self.add(workdir, self.tmp / "not-there", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("not-there: no such directory", proc.stderr)

        proc = self.add(workdir, EXAMPLE, "--test-cmd", "pytest tests -x", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("`-x` stops or skips tests", proc.stderr)

        proc = self.add(workdir, EXAMPLE, "--test-cmd", "pytest no_such_tests", check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("collects no tests", proc.stderr)
        self.assertIn("no_such_tests", proc.stderr)

        failing = self.tmp / "failing"
        shutil.copytree(EXAMPLE, failing)
        text = failing / "wordkit" / "text.py"
        text.write_text(text.read_text().replace("return low\n", "return high\n"))
        proc = self.add(workdir, failing, check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("does not pass natively", proc.stderr)
        self.assertIn("test_clamp_inside_and_outside", proc.stderr)
        # Nothing half-added: no record, no snapshot.
        self.assertFalse((workdir / "corpus.jsonl").exists())
        self.assertEqual(list((workdir / "repos").iterdir()), [])



class Snapshot(unittest.TestCase):
    """What a directory snapshot keeps: the code, its tests and its package metadata (as
    `just setup` keeps an sdist's), not version control, caches, compiled files or the work
    directory inside it."""

    def test_a_snapshot_keeps_code_and_metadata_only(self):
        tmp = Path(tempfile.mkdtemp())
        source = tmp / "proj"
        for rel, text in {
            "pkg/__init__.py": "X = 1\n",
            "pkg/__pycache__/__init__.cpython-312.pyc": "",
            "pkg.egg-info/PKG-INFO": "Name: pkg\nVersion: 1.0\n",
            "tests/test_x.py": "def test(): pass\n",
            ".git/HEAD": "ref: refs/heads/main\n",
            ".pytest_cache/v/cache": "",
            "build/lib/pkg.py": "",
            "work/corpus.jsonl": "",
        }.items():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            (source / rel).write_text(text)
        dest = tmp / "snap"
        add_repo.snapshot_dir(source, dest, source / "work")
        kept = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
        self.assertEqual(kept, ["pkg.egg-info/PKG-INFO", "pkg/__init__.py", "tests/test_x.py"])
        shutil.rmtree(tmp)

if __name__ == "__main__":
    unittest.main()
