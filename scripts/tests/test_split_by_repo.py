"""scripts/split_by_repo.py: a repository's records move, the others stay, a typo is bad input."""
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "split_by_repo.py"


class SplitByRepo(unittest.TestCase):
    def split(self, repos: list, names: list) -> tuple:
        with tempfile.TemporaryDirectory() as tmp:
            source, moved = Path(tmp) / "tasks.jsonl", Path(tmp) / "moved.jsonl"
            source.write_text("".join(json.dumps({"repo": r, "i": i}) + "\n"
                                      for i, r in enumerate(repos)))
            done = subprocess.run([sys.executable, str(SCRIPT), str(source), str(moved), *names],
                                  capture_output=True, text=True)
            read = lambda p: [json.loads(l)["i"] for l in p.read_text().splitlines()] \
                if p.exists() else None
            return done, read(source), read(moved)

    def test_the_named_repositories_move_in_order_and_the_rest_stays(self):
        done, kept, moved = self.split(["parsy-2.1", "toolz-1.2.0", "boolean.py-5.0", "parsy-2.1"],
                                       ["parsy", "boolean.py"])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(kept, [1])
        self.assertEqual(moved, [0, 2, 3])

    def test_a_name_no_record_has_is_bad_input_and_nothing_moves(self):
        done, kept, moved = self.split(["parsy-2.1", "toolz-1.2.0"], ["parsy", "pasry"])
        self.assertEqual(done.returncode, 2)
        self.assertIn("pasry", done.stderr)
        self.assertEqual(kept, [0, 1])
        self.assertIsNone(moved)


if __name__ == "__main__":
    unittest.main()
