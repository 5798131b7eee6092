"""scripts/setup.py: sdists unpack from tar and zip archives, and an archive whose members
would land outside its folder is refused; the native interpreter's line-map tracer is
installed from the lock's matching wheel."""

import io
import sys
import tarfile
import tempfile
import unittest
import zipfile
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import setup  # noqa: E402


class ExtractSdist(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())

    def unpack(self, archive: Path) -> Path:
        dest = self.tmp / "out"
        dest.mkdir()
        setup.extract_sdist(archive, dest)
        return dest

    def test_tar_and_zip_sdists_unpack_alike(self):
        files = {"pkg-1.0/pkg/__init__.py": b"X = 1\n", "pkg-1.0/tests/test_x.py": b"def test(): pass\n"}
        tar_path = self.tmp / "pkg-1.0.tar.gz"
        with tarfile.open(tar_path, "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        zip_path = self.tmp / "pkg-1.0.zip"
        with zipfile.ZipFile(zip_path, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
        for archive in (tar_path, zip_path):
            dest = self.unpack(archive)
            got = {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
            self.assertEqual(got, files, archive.name)
            for p in sorted(dest.rglob("*"), reverse=True):
                p.unlink() if p.is_file() else p.rmdir()
            dest.rmdir()

    def test_a_zip_member_outside_its_folder_is_refused(self):
        for name in ("../evil.py", "/abs/evil.py", "pkg/../../evil.py"):
            zip_path = self.tmp / "bad.zip"
            with zipfile.ZipFile(zip_path, "w") as z:
                z.writestr("pkg-1.0/ok.py", b"")
                z.writestr(name, b"import os\n")
            dest = self.tmp / f"out-{abs(hash(name))}"
            dest.mkdir()
            with self.assertRaises(setup.SetupError, msg=name) as caught:
                setup.extract_sdist(zip_path, dest)
            self.assertIn("outside", str(caught.exception))
            self.assertEqual(list(dest.iterdir()), [], "nothing is unpacked from a refused archive")
            self.assertFalse((self.tmp / "evil.py").exists())


if __name__ == "__main__":
    unittest.main()


class NativeTracer(unittest.TestCase):
    """The coverage wheel for the native interpreter lands beside it once, from the lock's
    entry for its tag and machine; an interpreter the lock has no wheel for gets none."""

    def setUp(self):
        self.work = Path(tempfile.mkdtemp())
        self.downloads = self.work / "cache" / "downloads"
        self.downloads.mkdir(parents=True)
        self.tag, self.machine, monitoring = setup.interpreter_kind(setup.native_python(self.work))
        if monitoring:
            self.skipTest("this interpreter has sys.monitoring: no tracer to install")

    def wheel(self) -> dict:
        path = self.downloads / "coverage-0-fake.whl"
        with zipfile.ZipFile(path, "w") as whl:
            whl.writestr("coverage/__init__.py", "VERSION = 'fake'\n")
        return {"requirement": "coverage==0", "python": self.tag, "machine": self.machine,
                "platform": "fake", "filename": path.name, "sha256": setup.sha256_of(path)}

    def test_the_matching_wheel_is_unpacked_beside_the_interpreter_once(self):
        tracer = self.wheel()
        other = {**tracer, "machine": "other", "filename": "missing.whl", "sha256": "0" * 64}
        setup.install_native_tracer(self.work, self.downloads, [other, tracer])
        dest = self.work / "venv" / "socratic-tracer"
        self.assertEqual((dest / "coverage" / "__init__.py").read_text(), "VERSION = 'fake'\n")
        (dest / "coverage" / "__init__.py").write_text("changed\n")
        setup.install_native_tracer(self.work, self.downloads, [tracer])
        self.assertEqual((dest / "coverage" / "__init__.py").read_text(), "changed\n",
                         "a second setup keeps what it installed")

    def test_no_wheel_for_the_interpreter_leaves_no_tracer(self):
        tracer = self.wheel()
        setup.install_native_tracer(self.work, self.downloads, [tracer])
        setup.install_native_tracer(self.work, self.downloads, [{**tracer, "machine": "other"}])
        self.assertFalse((self.work / "venv" / "socratic-tracer").exists())
