//! Hostile code under every executor: each attempt is refused with a named reason
//! (a violation, or a run that ends as a named crash), the host is untouched, and
//! the run after a hostile one gets the verdict a fresh interpreter gives.
//! Needs `just setup` and, for the native executor, bubblewrap.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use sandbox::{Executor, RunEnd, TestOutcome, TestRun};

/// Runs `test_hostile.py` (the `body` of one test) in a fresh repository.
fn run_hostile(executor: &dyn Executor, body: &str) -> TestRun {
    let test = format!("import os, sys\n\ndef test_hostile():\n{body}\n");
    let repo = mini_repo(&[("test_hostile.py", &test)]);
    run_tests(executor, repo.path(), "pytest test_hostile.py")
}

/// Why the run is no verdict: the sandbox's refusals, or how the run ended when
/// it did not end as pytest does.
fn named_reason(run: &TestRun) -> Option<String> {
    if !run.violations.is_empty() {
        return Some(run.violations.join("; "));
    }
    match &run.end {
        RunEnd::Exited(0..=5) => None,
        end => Some(end.to_string()),
    }
}

/// A marker path on the host, outside anything a guest may see.
fn host_marker() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir_in(host_home()).unwrap();
    let marker = dir.path().join("marker").display().to_string();
    (dir, marker)
}

fn assert_refused(executor: &dyn Executor, case: &str, run: &TestRun, expect: &str) {
    let reason = named_reason(run)
        .unwrap_or_else(|| panic!("{}: {case} was not named:\n{}", executor.name(), run.output));
    assert!(
        reason.contains(expect),
        "{}: {case}: {reason:?} does not say {expect:?}",
        executor.name()
    );
}

#[test]
fn process_starts_through_native_code_are_stopped_and_named() {
    let (_dir, marker) = host_marker();
    let cases = [
        (
            "ctypes system",
            format!("    import ctypes\n    ctypes.CDLL(None).system(b'touch {marker}')"),
        ),
        (
            "ctypes fork",
            format!(
                "    import ctypes\n    if ctypes.CDLL(None).fork() == 0:\n        \
                 open({marker:?}, 'w').close()\n        os._exit(0)"
            ),
        ),
        (
            "a setsid daemon",
            format!(
                "    import ctypes\n    libc = ctypes.CDLL(None)\n    if libc.fork() == 0:\n        \
                 libc.setsid()\n        import time\n        time.sleep(3)\n        \
                 open({marker:?}, 'w').close()\n        os._exit(0)"
            ),
        ),
        (
            "os.fork",
            format!(
                "    if os.fork() == 0:\n        open({marker:?}, 'w').close()\n        os._exit(0)"
            ),
        ),
    ];
    for executor in executors() {
        for (case, body) in &cases {
            let run = run_hostile(executor.as_ref(), body);
            let reason = named_reason(&run).unwrap_or_else(|| {
                panic!("{}: {case} was not named:\n{}", executor.name(), run.output)
            });
            assert!(
                reason.contains("start a process") || reason.contains("load native code"),
                "{}: {case}: {reason}",
                executor.name()
            );
        }
    }
    std::thread::sleep(Duration::from_secs(4)); // the daemon's delay
    assert!(
        !Path::new(&marker).exists(),
        "a hostile run touched the host"
    );
}

#[test]
fn writes_outside_the_working_copy_are_refused_and_named() {
    let work = workdir();
    let site = work.join("site-packages");
    for executor in executors() {
        // The guest's own path of the test dependencies.
        let site_path = if executor.name().starts_with("wasm") {
            "/site".to_string()
        } else {
            site.display().to_string()
        };
        let body = format!(
            "    import os, pytest\n    \
             for folder in (os.path.dirname(os.__file__), {site_path:?}, os.path.dirname(pytest.__file__)):\n        \
             try:\n            open(os.path.join(folder, 'planted.py'), 'w').write('x = 1')\n        \
             except OSError:\n            pass"
        );
        let run = run_hostile(executor.as_ref(), &body);
        assert_refused(
            executor.as_ref(),
            "a write into the interpreter",
            &run,
            "write",
        );
    }
    assert!(!site.join("planted.py").exists());
    assert!(!site.join("_pytest/planted.py").exists());
}

#[test]
fn editing_the_guard_is_named_and_does_not_open_the_host() {
    let secret_dir = tempfile::tempdir_in(host_home()).unwrap();
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "host secret").unwrap();
    let (_dir, marker) = host_marker();
    let body = format!(
        "    main = sys.modules['__main__']\n    main.ALLOWED_ROOTS.append('/')\n    \
         main.WRITABLE_ROOTS.append('/')\n    try:\n        \
         print('LEAK', open({secret:?}).read())\n    except OSError:\n        pass\n    \
         try:\n        open({marker:?}, 'w').close()\n    except OSError:\n        pass",
        secret = secret.display().to_string()
    );
    for executor in executors() {
        let run = run_hostile(executor.as_ref(), &body);
        assert_refused(executor.as_ref(), "editing the guard", &run, "");
        assert!(
            !run.output.contains("host secret"),
            "{}: the secret leaked",
            executor.name()
        );
    }
    assert!(
        !Path::new(&marker).exists(),
        "a hostile run touched the host"
    );
}

/// A candidate that rewires pytest so that every test passes, then an honest
/// failing test: in a warm executor the second run must fail as in a fresh
/// interpreter.
#[test]
fn a_hostile_run_does_not_change_the_next_runs_verdict() {
    let hostile = "    import _pytest.runner, _pytest.python\n    \
                   _pytest.python.pytest_pyfunc_call.__code__ = (lambda pyfuncitem: True).__code__\n    \
                   _pytest.runner.call_and_report = lambda item, when, log=True, **kw: \
                   _pytest.runner.TestReport(item.nodeid, item.location, {}, 'passed', None, when, [])\n    \
                   import builtins\n    builtins.AssertionError = type('Nothing', (Exception,), {})";
    let honest = "    assert 1 + 1 == 3";
    for executor in warm_executors() {
        let _ = run_hostile(executor.as_ref(), hostile);
        for round in 0..2 {
            let run = run_hostile(executor.as_ref(), honest);
            assert_eq!(
                run.outcomes.get("test_hostile.py::test_hostile"),
                Some(&TestOutcome::Failed),
                "{}: run {round} after the hostile one: {:?}\n{}",
                executor.name(),
                run.end,
                run.output
            );
        }
    }
}

/// For each (case, hostile body, honest body): the honest test, which passes in a
/// fresh interpreter, passes in every warm executor right after the hostile one.
fn assert_the_next_run_is_fresh(cases: &[(&str, &str, &str)]) {
    for executor in warm_executors() {
        for (case, hostile, honest) in cases {
            let _ = run_hostile(executor.as_ref(), hostile);
            let run = run_hostile(executor.as_ref(), honest);
            assert_eq!(
                run.outcomes.get("test_hostile.py::test_hostile"),
                Some(&TestOutcome::Passed),
                "{}: {case}: the run after the hostile one: {:?}\n{}",
                executor.name(),
                run.end,
                run.output
            );
        }
    }
}

/// State a run leaves in the interpreter without rebinding a function: a number,
/// a module in `sys.modules`, an entry of a table, an attribute of an object, a
/// keyword default, a list. The honest test after each hostile one passes in a
/// fresh interpreter and must pass in a warm one too.
#[test]
fn a_run_that_changes_the_interpreter_in_place_does_not_reach_the_next() {
    let cases = [
        (
            "a number",
            "    os.SEEK_END = 0",
            "    assert os.SEEK_END == 2",
        ),
        (
            "a module",
            "    import types\n    sys.modules['json'] = types.SimpleNamespace(dumps=lambda *a, **k: 'x')",
            "    import json\n    assert json.dumps(1) == '1'",
        ),
        (
            "a table entry",
            "    import logging\n    logging._levelToName[logging.ERROR] = 'OOPS'",
            "    import logging\n    assert logging.getLevelName(logging.ERROR) == 'ERROR'",
        ),
        (
            "an attribute",
            "    import logging\n    logging.root.name = 'evil'",
            "    import logging\n    assert logging.getLogger().name == 'root'",
        ),
        (
            "a keyword default",
            "    import json\n    json.dumps.__kwdefaults__['indent'] = 4",
            "    import json\n    assert json.dumps([1]) == '[1]'",
        ),
        (
            "a list",
            "    sys.argv.append('--evil')",
            "    assert '--evil' not in sys.argv",
        ),
    ];
    assert_the_next_run_is_fresh(&cases);
}

/// State a module global does not show: held in C (a decimal context, a seeded
/// random generator, an `lru_cache` entry computed with a function the run had
/// rebound, the collector's thresholds, a codec search function) or two levels below a module (a logger of
/// the manager's dict). The honest test after each hostile one passes in a fresh
/// interpreter and must pass in a warm one too.
#[test]
fn a_run_that_changes_state_in_c_or_deeper_does_not_reach_the_next() {
    let cases = [
        (
            "a decimal precision",
            "    import decimal\n    decimal.getcontext().prec = 3",
            "    import decimal\n    assert str(decimal.Decimal(2) / 3) == '0.6666666666666666666666666667'",
        ),
        (
            "the default decimal context",
            "    import decimal\n    decimal.DefaultContext.prec = 3",
            "    import decimal\n    assert decimal.DefaultContext.prec == 28",
        ),
        (
            "a poisoned cache",
            "    import fnmatch, re\n    real = re.compile\n    \
             re.compile = lambda *a, **k: real('.*')\n    \
             fnmatch.fnmatchcase('abc', 'zzz*')\n    re.compile = real",
            "    import fnmatch\n    assert not fnmatch.fnmatchcase('abc', 'zzz*')",
        ),
        (
            "a seeded random generator",
            "    import random\n    random.seed(7)",
            "    import random\n    assert random.random() != random.Random(7).random()",
        ),
        (
            "the collector's thresholds",
            "    import gc\n    gc.set_threshold(1)",
            "    import gc\n    assert gc.get_threshold()[0] == 700",
        ),
        (
            "a logger two levels down",
            "    import logging\n    for logger in list(logging.root.manager.loggerDict.values()):\n        \
             if isinstance(logger, logging.Logger):\n            \
             logger.disabled = True\n            logger.setLevel(logging.CRITICAL)",
            "    import logging\n    \
             for name, logger in logging.root.manager.loggerDict.items():\n        \
             if isinstance(logger, logging.Logger):\n            \
             assert not logger.disabled and logger.level == logging.NOTSET, name",
        ),
        (
            "a codec search function",
            "    import codecs\n    \
             codecs.register(lambda name: codecs.lookup('utf-8') if name == 'evil' else None)",
            "    import codecs, pytest\n    with pytest.raises(LookupError):\n        \
             codecs.lookup('evil')",
        ),
        (
            "a codec search function registered past codecs.register",
            "    import _imp, codecs, importlib.util\n    \
             codecs_again = _imp.create_builtin(importlib.util.find_spec('_codecs'))\n    \
             codecs_again.register(lambda name: codecs.lookup('utf-8'))",
            "    import codecs, pytest\n    with pytest.raises(LookupError):\n        \
             codecs.lookup('evil')",
        ),
    ];
    assert_the_next_run_is_fresh(&cases);
}

#[test]
fn a_run_that_fills_the_disk_is_stopped_and_named() {
    let cases = [
        (
            "one big file",
            "    with open('big.bin', 'wb') as f:\n        for _ in range(200):\n            \
             f.write(b'x' * (1 << 20))",
        ),
        (
            "many files in /tmp",
            "    import tempfile\n    for i in range(200):\n        \
             with open(os.path.join(tempfile.gettempdir(), f'f{i}'), 'wb') as f:\n            \
             f.write(b'x' * (1 << 20))",
        ),
        (
            // Stopped mid-run by the watcher, never by a file-size limit.
            "files without end",
            "    import itertools, time\n    for i in itertools.count():\n        \
             with open(f'f{i}', 'wb') as f:\n            f.write(b'x' * (1 << 20))\n        \
             time.sleep(0.01)",
        ),
    ];
    for executor in executors() {
        for (case, body) in cases {
            let test = format!("import os, sys\n\ndef test_hostile():\n{body}\n");
            assert_stopped_at_a_limit(executor.as_ref(), case, &test, RunEnd::DiskLimit, |l| {
                l.disk_bytes = 20 << 20
            });
        }
    }
}

/// `test` (the whole of `test_hostile.py`) under limits set by `limit` ends with `end`, and
/// the next run, in whatever worker serves it, is an ordinary one.
fn assert_stopped_at_a_limit(
    executor: &dyn Executor,
    case: &str,
    test: &str,
    end: RunEnd,
    limit: impl FnOnce(&mut sandbox::Limits),
) {
    let repo = mini_repo(&[("test_hostile.py", test)]);
    let mut request = request(
        repo.path(),
        "pytest test_hostile.py",
        Duration::from_secs(120),
    );
    limit(&mut request.limits);
    let run = executor.run(&request).unwrap();
    assert_eq!(
        run.end,
        end,
        "{} ({}): {case}, after {:?}: {}",
        executor.name(),
        executor.fingerprint(),
        run.duration,
        run.output
    );
    let honest = "def test_hostile():\n    assert True\n";
    let repo = mini_repo(&[("test_hostile.py", honest)]);
    let next = run_tests(executor, repo.path(), "pytest test_hostile.py");
    assert_eq!(
        next.outcomes.get("test_hostile.py::test_hostile"),
        Some(&TestOutcome::Passed),
        "{} ({}): the run after {case}: {:?}\n{}",
        executor.name(),
        executor.fingerprint(),
        next.end,
        next.output
    );
}

/// Exhaustion of memory ends the run as a memory limit under every executor, in a test
/// or at a module's import: natively the address-space limit is a MemoryError that pytest
/// would report and go on from, each later test filling memory again until the time limit.
#[test]
fn memory_exhaustion_ends_the_run_as_a_memory_limit() {
    let hog = "_hog = [bytearray(1 << 26) for _ in range(160)]";
    let in_tests = format!(
        "def test_a():\n    {hog}\n\ndef test_b():\n    {hog}\n\ndef test_c():\n    {hog}\n"
    );
    let at_import = format!("{hog}\n\ndef test_a():\n    assert True\n");
    for executor in executors() {
        for (case, test) in [("in tests", &in_tests), ("at import", &at_import)] {
            assert_stopped_at_a_limit(executor.as_ref(), case, test, RunEnd::MemoryLimit, |l| {
                l.memory_bytes = 1 << 30
            });
        }
    }
}

/// Exhaustion, one rule: a recursion inside a test is a failing test, whether it
/// recurses in Python or through C (`__getattr__` calling itself). Under wasm the
/// second one overflows python.wasm's C stack before CPython's limit; the session is
/// run again without that test, which is failed, and the tests beside it keep their
/// verdicts, as natively.
#[test]
fn recursion_is_a_failing_test_under_every_executor() {
    let python = "    def down(n):\n        return down(n + 1)\n    down(0)";
    let through_c = "    class A:\n        def __getattr__(self, n):\n            return getattr(self, n)\n    A().x";
    for executor in executors() {
        for (case, body) in [("in Python", python), ("through C", through_c)] {
            let test = format!(
                "def test_before():\n    assert True\n\ndef test_hostile():\n{body}\n\n\
                 def test_after():\n    assert 1 + 1 == 3\n"
            );
            let repo = mini_repo(&[("test_hostile.py", &test)]);
            let run = run_tests(executor.as_ref(), repo.path(), "pytest test_hostile.py");
            let name = executor.name();
            assert_eq!(run.end, RunEnd::Exited(1), "{name}: {case}: {}", run.output);
            let outcome = |test: &str| run.outcomes.get(&format!("test_hostile.py::{test}"));
            assert_eq!(
                outcome("test_before"),
                Some(&TestOutcome::Passed),
                "{name}: {case}"
            );
            assert_eq!(
                outcome("test_hostile"),
                Some(&TestOutcome::Failed),
                "{name}: {case}"
            );
            assert_eq!(
                outcome("test_after"),
                Some(&TestOutcome::Failed),
                "{name}: {case}"
            );
            let message = &run.messages["test_hostile.py::test_hostile"];
            assert!(
                message.starts_with("RecursionError"),
                "{name}: {case}: {message}"
            );
        }
    }
}
