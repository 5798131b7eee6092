"""`evolve.py --build-only` is how the study scripts build the loop's tools: it must not read
the loop's own variables, which those scripts set in formats of their own (SEEDS="1 2 3")."""
from __future__ import annotations

import os
import subprocess
import sys
import unittest
from pathlib import Path

EVOLVE = Path(__file__).resolve().parents[1] / "evolve.py"


def build_only(**env: str) -> subprocess.CompletedProcess:
    # BIN names a build the loop does not rebuild: what is left is reading the variables.
    return subprocess.run([sys.executable, str(EVOLVE), "--build-only"],
                          env={**os.environ, "BIN": "/nonexistent", **env},
                          capture_output=True, text=True)


class BuildOnly(unittest.TestCase):
    def test_a_study_scripts_seed_list_does_not_stop_the_build(self):
        done = build_only(SEEDS="1 2 3", STRATEGY="not-a-strategy", EXECUTOR="native")
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_an_unknown_executor_is_bad_input(self):
        done = build_only(EXECUTOR="bogus")
        self.assertEqual(done.returncode, 2)
        self.assertIn("EXECUTOR=bogus", done.stderr)


if __name__ == "__main__":
    unittest.main()
