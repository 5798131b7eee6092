"""Runs pytest inside the sandbox: `python run_pytest.py REPO_DIR PYTEST_ARGS...`.

The same driver runs under CPython for WASI and natively, so both executors
give pytest the same flags. Under WASI it first supplies the few POSIX calls
that pytest and common test suites expect but WASI lacks.
"""

import os
import sys


def _shim_wasi():
    if sys.platform != "wasi":
        return
    for name in ("getuid", "getgid", "geteuid", "getegid"):
        if not hasattr(os, name):
            setattr(os, name, lambda: 0)
    if not hasattr(os, "getpid"):
        os.getpid = lambda: 1
    if not hasattr(os, "umask"):
        os.umask = lambda mask: 0o022
    # WASI has no "/" directory, so os.makedirs("/tmp", exist_ok=True) walks up
    # to "/" and fails; stop at a directory that exists.
    makedirs = os.makedirs

    def makedirs_existing(name, mode=0o777, exist_ok=False):
        if exist_ok and os.path.isdir(name):
            return
        makedirs(name, mode, exist_ok)

    os.makedirs = makedirs_existing
    try:
        import socket

        if not hasattr(socket, "gethostname"):
            socket.gethostname = lambda: "sandbox"
    except ImportError:
        pass


def main():
    repo, args = sys.argv[1], sys.argv[2:]
    _shim_wasi()
    os.chdir(repo)
    sys.path.insert(0, repo)
    import pytest

    code = pytest.main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(int(code))


if __name__ == "__main__":
    main()
