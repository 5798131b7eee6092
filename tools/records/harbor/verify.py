"""The verifier of a task exported by `records export --to harbor` (tests/verify.py).

    python3 verify.py CONFIG LOGS_DIR      (run from the repository's root, as tests/test.sh does)

CONFIG (tests/config.json) holds the pytest arguments that run exactly the task's tests, and
its FAIL_TO_PASS and PASS_TO_PASS node ids. The task's own test files and pytest
configuration (tests/files/) are copied over the working tree first and conftest.py files it
did not have are removed, so edits the agent made to the tests do not count. The reward is 1 when every FAIL_TO_PASS and PASS_TO_PASS
test passes, else 0: written to LOGS_DIR/reward.txt, with the failing tests in
LOGS_DIR/verdict.json. Standard library and pytest only.
"""
import json
import shutil
import sys
from pathlib import Path


class Outcomes:
    """pytest plugin: each test's outcome by node id (a failed setup or teardown fails it)."""

    def __init__(self):
        self.outcomes = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.failed or report.skipped:
            if self.outcomes.get(report.nodeid) != "failed":
                self.outcomes[report.nodeid] = report.outcome


def main() -> int:
    config = json.loads(Path(sys.argv[1]).read_text())
    logs = Path(sys.argv[2])
    logs.mkdir(parents=True, exist_ok=True)
    files = Path(sys.argv[1]).parent / "files"
    if files.is_dir():
        shutil.copytree(files, Path.cwd(), dirs_exist_ok=True)
    # A conftest.py the task did not have would run before every test: remove it.
    known = {Path(p) for p in config.get("conftests", [])}
    for conftest in Path.cwd().rglob("conftest.py"):
        if conftest.relative_to(Path.cwd()) not in known:
            conftest.unlink()
    import pytest

    plugin = Outcomes()
    pytest.main(config["pytest_args"], plugins=[plugin])
    wanted = config["fail_to_pass"] + config["pass_to_pass"]
    failing = [t for t in wanted if plugin.outcomes.get(t) != "passed"]
    verdict = {
        "reward": 0 if failing else 1,
        "fail_to_pass_failing": [t for t in config["fail_to_pass"] if t in failing],
        "pass_to_pass_failing": [t for t in config["pass_to_pass"] if t in failing],
    }
    (logs / "verdict.json").write_text(json.dumps(verdict, indent=1) + "\n")
    (logs / "reward.txt").write_text(f"{verdict['reward']}\n")
    print(f"reward {verdict['reward']}: {len(wanted) - len(failing)} of {len(wanted)} tests pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
