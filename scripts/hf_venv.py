"""The venv with torch and transformers that the PyTorch-side scripts run in (several GB,
installed the first time); a script calls `in_venv(path)` first and is re-executed inside it."""
import os
import subprocess
import sys
from pathlib import Path


def in_venv(venv: Path) -> None:
    python = venv / "bin" / "python"
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch", "transformers", "safetensors"], check=True)
    os.execv(str(python), [str(python), os.path.abspath(sys.argv[0]), *sys.argv[1:]])
