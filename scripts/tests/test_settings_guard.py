"""The measurement recipes skip every step whose output exists, so a rerun with other settings
must stop and say what changed (scripts/lib.sh `settings_guard`) instead of reporting the old
outputs under the new settings."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib.sh"


def guard(out: Path, *settings: str) -> subprocess.CompletedProcess:
    script = f'out="$1"; shift; source "{LIB}"; settings_guard "$@"; echo went on'
    return subprocess.run(["bash", "-c", script, "study-x.sh", str(out), *settings],
                          capture_output=True, text=True)


class SettingsGuard(unittest.TestCase):
    def setUp(self):
        self.out = Path(tempfile.mkdtemp(prefix="settings-guard-"))
        self.addCleanup(shutil.rmtree, self.out)

    def test_the_same_settings_go_on_and_other_ones_stop_naming_the_change(self):
        first = guard(self.out, "POOL=50", "K=10")
        self.assertEqual((first.returncode, first.stdout), (0, "went on\n"), first.stderr)
        self.assertEqual((self.out / "settings.txt").read_text(), "POOL=50\nK=10\n")
        again = guard(self.out, "POOL=50", "K=10")
        self.assertEqual((again.returncode, again.stdout), (0, "went on\n"), again.stderr)

        changed = guard(self.out, "POOL=50", "K=20")
        self.assertEqual(changed.returncode, 2)
        self.assertEqual(changed.stdout, "")
        self.assertIn("then: K=10", changed.stderr)
        self.assertIn("now:  K=20", changed.stderr)
        self.assertNotIn("POOL", changed.stderr)
        # The record still describes the outputs that exist.
        self.assertEqual((self.out / "settings.txt").read_text(), "POOL=50\nK=10\n")


if __name__ == "__main__":
    unittest.main()
