"""Runs pytest inside the sandbox: `python run_pytest.py REPO_DIR PYTEST_ARGS...`.

The same driver runs under CPython for WASI and natively, so both executors
give pytest the same flags and the same guard:

- an audit hook records, and refuses, what a test suite has no business doing:
  touching files outside the working copy, the test dependencies, the private
  temporary directory and the interpreter's own library; opening sockets;
  starting processes. Each refusal is written as one line to the file named by
  SANDBOX_VIOLATIONS, so the gate can reject the candidate and say why. Under
  WASI these operations fail anyway (nothing else is mounted, there is no
  network or process API); the hook names them. Natively it is a second wall
  behind rlimits and bwrap.
- under WASI, the few POSIX calls that pytest expects but WASI lacks.
"""

import os
import sys

ALLOWED_ROOTS = [p for p in os.environ.get("SANDBOX_ALLOWED", "").split(os.pathsep) if p]
VIOLATIONS = os.environ.get("SANDBOX_VIOLATIONS")

_PROCESS_EVENTS = {
    "subprocess.Popen": "start a process",
    "os.system": "start a process",
    "os.exec": "start a process",
    "os.posix_spawn": "start a process",
    "os.spawn": "start a process",
    "os.fork": "start a process",
    "os.forkpty": "start a process",
    "pty.spawn": "start a process",
    "os.startfile": "start a process",
}
_NETWORK_EVENTS = {
    "socket.__new__": "open a socket",
    "socket.connect": "connect a socket",
    "socket.bind": "bind a socket",
    "socket.getaddrinfo": "resolve a host name",
    "socket.gethostbyname": "resolve a host name",
    "urllib.Request": "open a URL",
}
_PATH_EVENTS = {
    "open": "open",
    "os.remove": "delete",
    "os.rmdir": "delete",
    "shutil.rmtree": "delete",
    "os.rename": "rename",
    "os.mkdir": "create a directory",
    "os.chmod": "change the mode of",
    "os.chown": "change the owner of",
    "os.symlink": "link",
    "os.link": "link",
    "os.truncate": "truncate",
    "os.utime": "touch",
}


# Device files that are harmless to open natively (WASI has none).
_HARMLESS = {"/dev/null", "/dev/urandom", "/dev/random"}


def _inside(path):
    if isinstance(path, int):
        return True  # an already open file descriptor
    try:
        path = os.fsdecode(path)
    except TypeError:
        return True
    full = os.path.realpath(os.path.join(os.getcwd(), path))
    if full in _HARMLESS:
        return True
    return any(full == root or full.startswith(root.rstrip("/") + "/") for root in ALLOWED_ROOTS)


def _install_guard():
    roots = ALLOWED_ROOTS + [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.__file__)]
    ALLOWED_ROOTS[:] = sorted({os.path.realpath(root) for root in roots if root})
    log = open(VIOLATIONS, "a", buffering=1) if VIOLATIONS else None
    seen = set()

    def refuse(what):
        if what not in seen and len(seen) < 20:
            seen.add(what)
            if log is not None:
                log.write(what.replace("\n", " ") + "\n")
        raise PermissionError(f"sandbox: refused to {what}")

    def hook(event, args):
        if event in _PROCESS_EVENTS:
            refuse(f"{_PROCESS_EVENTS[event]} ({event})")
        elif event in _NETWORK_EVENTS:
            refuse(f"{_NETWORK_EVENTS[event]} ({event})")
        elif event in _PATH_EVENTS and args and not _inside(args[0]):
            refuse(f"{_PATH_EVENTS[event]} {os.fsdecode(args[0])!r} outside the working copy")
        elif event in ("os.rename", "os.link", "os.symlink") and len(args) > 1 and not _inside(args[1]):
            refuse(f"{_PATH_EVENTS[event]} to {os.fsdecode(args[1])!r} outside the working copy")

    sys.addaudithook(hook)

    if sys.platform == "wasi":
        _name_wasi_refusals()


def _name_wasi_refusals():
    """WASI lacks processes and name resolution, so subprocess and socket fail
    there before they raise their audit events; raise the events first, so an
    attempt is named rather than passed off as an ordinary test failure."""
    try:
        import subprocess

        def no_popen(self, args, *rest, **kwargs):
            sys.audit("subprocess.Popen", args, args, None, None)
            raise OSError("no processes under WASI")

        subprocess.Popen.__init__ = no_popen
    except ImportError:
        pass
    try:
        import socket

        def no_lookup(host, port=None, *rest, **kwargs):
            sys.audit("socket.getaddrinfo", host, port, 0, 0, 0)
            raise OSError("no name resolution under WASI")

        socket.getaddrinfo = no_lookup
        socket.gethostbyname = no_lookup
    except ImportError:
        pass


def _shim_wasi():
    if sys.platform != "wasi":
        return
    # Files in a WASI mount belong to uid 0; pytest's tmp_path compares owners.
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


class LineMap:
    """A pytest plugin that records which lines of the repository each test
    executes, for test selection: `{"tests": [...], "lines": {file: {line:
    [test index...]}}, "import_lines": {file: [line...]}}`, where import lines
    ran outside any test (collection, module bodies) and so may affect all.

    Uses sys.monitoring (3.12) where it exists: each line fires once per test
    and is then disabled until the next test. Falls back to sys.settrace."""

    def __init__(self, repo, out):
        self.repo = os.path.realpath(repo).rstrip("/") + "/"
        self.out = out
        self.tests = []
        self.current = None
        self.lines = {}
        self.import_lines = {}
        self.files = {}

    def _relative(self, filename):
        cached = self.files.get(filename)
        if cached is None:
            full = os.path.realpath(filename)
            cached = full[len(self.repo):] if full.startswith(self.repo) else ""
            self.files[filename] = cached
        return cached

    def _record(self, filename, line):
        path = self._relative(filename)
        if not path:
            return
        if self.current is None:
            self.import_lines.setdefault(path, set()).add(line)
        else:
            self.lines.setdefault(path, {}).setdefault(line, set()).add(self.current)

    def start(self):
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None:
            tool = monitoring.COVERAGE_ID
            monitoring.use_tool_id(tool, "socratic-linemap")
            disable = monitoring.DISABLE

            def on_line(code, line):
                self._record(code.co_filename, line)
                return disable

            monitoring.register_callback(tool, monitoring.events.LINE, on_line)
            monitoring.set_events(tool, monitoring.events.LINE)
            self._restart = monitoring.restart_events
        else:
            def tracer(frame, event, arg):
                if event == "line":
                    self._record(frame.f_code.co_filename, frame.f_lineno)
                return tracer

            sys.settrace(tracer)
            self._restart = lambda: None

    def pytest_runtest_logstart(self, nodeid, location):
        self.current = len(self.tests)
        self.tests.append(nodeid)
        self._restart()

    def pytest_runtest_logfinish(self, nodeid, location):
        self.current = None
        self._restart()

    def pytest_sessionfinish(self, session):
        data = {
            "tests": self.tests,
            "lines": {
                path: {str(line): sorted(tests) for line, tests in sorted(lines.items())}
                for path, lines in sorted(self.lines.items())
            },
            "import_lines": {path: sorted(lines) for path, lines in sorted(self.import_lines.items())},
        }
        import json

        with open(self.out, "w") as f:
            json.dump(data, f)


def main():
    repo, args = sys.argv[1], sys.argv[2:]
    _shim_wasi()
    os.chdir(repo)
    sys.path.insert(0, repo)
    import pytest

    plugins = []
    line_map = os.environ.get("SANDBOX_LINEMAP")
    if line_map:
        plugin = LineMap(repo, line_map)
        plugin.start()
        plugins.append(plugin)
    # After pytest and its plugins are imported, so their own start-up is not
    # judged; before any test module is.
    _install_guard()
    code = pytest.main(args, plugins=plugins)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(int(code))


if __name__ == "__main__":
    main()
