//! Both executors on small synthetic suites and on a real corpus repository.
//! Needs `just setup` (python.wasm, site-packages, the corpus).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use sandbox::wasm::{WasmConfig, WasmExecutor};
use sandbox::{Executor, RunEnd, TestOutcome, copy_tree};

/// The mini repository's whole suite, untraced.
fn run_suite(executor: &dyn Executor, repo: &Path) -> sandbox::TestRun {
    run_tests(executor, repo, "pytest tests -o pythonpath=.")
}

#[test]
fn both_executors_report_each_test_by_node_id() {
    let repo = mini_repo(&[
        ("calc.py", "def add(a, b):\n    return a + b\n"),
        (
            "tests/test_calc.py",
            "import pytest\nfrom calc import add\n\n\
             def test_ok():\n    assert add(1, 2) == 3\n\n\
             def test_bad():\n    assert add(1, 2) == 4, 'wrong sum'\n\n\
             @pytest.mark.skip(reason='not today')\ndef test_skip():\n    pass\n\n\
             @pytest.fixture\ndef broken():\n    raise RuntimeError('fixture')\n\n\
             def test_err(broken):\n    pass\n\n\
             class TestGroup:\n    @pytest.mark.parametrize('n', [1, 2])\n    def test_param(self, n):\n        assert add(n, 0) == n\n",
        ),
    ]);
    let expected: BTreeMap<String, TestOutcome> = [
        (
            "tests/test_calc.py::TestGroup::test_param[1]",
            TestOutcome::Passed,
        ),
        (
            "tests/test_calc.py::TestGroup::test_param[2]",
            TestOutcome::Passed,
        ),
        ("tests/test_calc.py::test_bad", TestOutcome::Failed),
        ("tests/test_calc.py::test_err", TestOutcome::Error),
        ("tests/test_calc.py::test_ok", TestOutcome::Passed),
        ("tests/test_calc.py::test_skip", TestOutcome::Skipped),
    ]
    .into_iter()
    .map(|(id, outcome)| (id.to_string(), outcome))
    .collect();
    for executor in executors() {
        let run = run_suite(executor.as_ref(), repo.path());
        assert_eq!(
            run.outcomes,
            expected,
            "{}: {}",
            executor.name(),
            run.output
        );
        assert_eq!(run.end, RunEnd::Exited(1), "{}", executor.name());
        assert!(
            run.output.contains("wrong sum"),
            "{}: {}",
            executor.name(),
            run.output
        );
    }
}

#[test]
fn runs_carry_the_clean_bytecode_and_a_changed_file_runs_as_changed() {
    use patches::FileChanges;
    use sandbox::testbed::{RepoTree, ResultCache, RunOptions, TestBed};

    let clean = "def lt(a, b):\n    return a < b\n";
    let repo = mini_repo(&[
        ("calc.py", clean),
        (
            "tests/test_calc.py",
            "from calc import lt\n\ndef test_lt():\n    assert lt(1, 2)\n",
        ),
    ]);
    let tree = RepoTree::new(repo.path().to_path_buf()).unwrap();
    let args = sandbox::pytest_args("pytest tests -o pythonpath=.").unwrap();
    // The same size, so neither a size nor an mtime check could tell the pyc stale.
    let buggy: FileChanges = [(
        "calc.py".to_string(),
        (clean.to_string(), clean.replace('<', ">")),
    )]
    .into();
    for executor in executors() {
        let name = executor.name();
        let bed = TestBed::new(executor, ResultCache::new(None), Default::default());
        let run = bed
            .run(&tree, &FileChanges::new(), &args, &RunOptions::fresh())
            .unwrap();
        assert_eq!(
            run.outcomes.get("tests/test_calc.py::test_lt"),
            Some(&TestOutcome::Passed),
            "{name}: {}",
            run.output
        );
        let bytecode = bed
            .bytecode
            .for_tree(bed.executor.as_ref(), &tree, &bed.limits)
            .unwrap_or_else(|| panic!("{name}: no bytecode"));
        let names = |dir: &str| -> Vec<String> {
            std::fs::read_dir(bytecode.join(dir))
                .map(|entries| {
                    entries
                        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert!(
            names("__pycache__").iter().any(|n| n.starts_with("calc.")),
            "{name}: {:?}",
            names("__pycache__")
        );
        assert!(
            names("tests/__pycache__")
                .iter()
                .any(|n| n.starts_with("test_calc.") && n.contains("-pytest-")),
            "{name}: pytest's rewritten test module: {:?}",
            names("tests/__pycache__")
        );
        let run = bed.run(&tree, &buggy, &args, &RunOptions::fresh()).unwrap();
        assert_eq!(
            run.outcomes.get("tests/test_calc.py::test_lt"),
            Some(&TestOutcome::Failed),
            "{name}: the changed module ran from a stale pyc: {}",
            run.output
        );
    }
}

/// What the driver changes before pytest loads its plugins must not show in a suite that
/// turns every warning into an error (toolz does).
#[test]
fn a_suite_that_turns_warnings_into_errors_runs_clean() {
    let repo = mini_repo(&[
        ("pytest.ini", "[pytest]\nfilterwarnings =\n    error\n"),
        ("test_strict.py", "def test_ok():\n    assert True\n"),
    ]);
    for executor in executors() {
        for _ in 0..2 {
            let run = run_tests(executor.as_ref(), repo.path(), "pytest test_strict.py");
            assert_eq!(
                run.end,
                RunEnd::Exited(0),
                "{}: {}",
                executor.name(),
                run.output
            );
            assert_eq!(
                run.outcomes.get("test_strict.py::test_ok"),
                Some(&TestOutcome::Passed),
                "{}",
                executor.name()
            );
        }
    }
}

/// Time zones resolve the same way under every executor: from the tzdata package (WASI has
/// no system zone files, and natively the system's are outside what a test may read).
#[test]
fn time_zones_come_from_the_tzdata_package_everywhere() {
    let test = "from datetime import datetime\nfrom zoneinfo import ZoneInfo\n\n\
                def test_paris():\n    \
                    at = datetime(2026, 7, 1, 12, tzinfo=ZoneInfo('Europe/Paris'))\n    \
                    assert at.utcoffset().total_seconds() == 7200\n";
    let repo = mini_repo(&[("test_zone.py", test)]);
    for executor in executors() {
        let run = run_tests(executor.as_ref(), repo.path(), "pytest test_zone.py");
        assert_eq!(
            run.outcomes.get("test_zone.py::test_paris"),
            Some(&TestOutcome::Passed),
            "{}: {}",
            executor.name(),
            run.output
        );
    }
}

#[test]
fn natively_a_run_is_stopped_at_its_cpu_time_and_waiting_costs_none() {
    let repo = mini_repo(&[
        (
            "test_loop.py",
            "def test_forever():\n    while True:\n        pass\n",
        ),
        (
            "test_wait.py",
            "import time\n\ndef test_wait():\n    time.sleep(4)\n",
        ),
    ]);
    let within = |test_cmd: &str| {
        let mut request = request(repo.path(), test_cmd, Duration::from_secs(120));
        request.limits.cpu_time = Some(Duration::from_secs(3));
        request
    };
    let executors: [Box<dyn Executor>; 2] = [Box::new(native()), Box::new(native_executor(true))];
    for executor in executors {
        let name = executor.fingerprint();
        let spinning = executor.run(&within("pytest test_loop.py")).unwrap();
        assert_eq!(
            spinning.end,
            RunEnd::TimedOut,
            "{name}: {}",
            spinning.output
        );
        // Stopped by its CPU time, long before the wall limit.
        assert!(
            spinning.duration < Duration::from_secs(60),
            "{name}: {:?}",
            spinning.duration
        );
        let waiting = executor.run(&within("pytest test_wait.py")).unwrap();
        assert_eq!(waiting.end, RunEnd::Exited(0), "{name}: {}", waiting.output);
    }
}

#[test]
fn native_runs_measure_their_cpu_time_inside_the_sandbox() {
    // bubblewrap's pid namespace keeps a run's CPU time from this process's rusage: the
    // sandbox measures it inside and counts it as the stage's hidden CPU time.
    let repo = mini_repo(&[(
        "test_burn.py",
        "import time\n\ndef test_burn():\n    start = time.process_time()\n    \
         while time.process_time() - start < 0.6:\n        pass\n",
    )]);
    let executors: [Box<dyn Executor>; 2] = [Box::new(native()), Box::new(native_executor(true))];
    for executor in executors {
        let name = executor.fingerprint();
        let hidden_before = stage_io::usage::hidden_cpu();
        let run = run_tests(executor.as_ref(), repo.path(), "pytest test_burn.py");
        assert_eq!(run.end, RunEnd::Exited(0), "{name}: {}", run.output);
        let cpu = run
            .cpu_time
            .unwrap_or_else(|| panic!("{name}: no CPU time"));
        assert!(cpu >= Duration::from_millis(550), "{name}: {cpu:?}");
        assert!(
            stage_io::usage::hidden_cpu() >= hidden_before + Duration::from_millis(550),
            "{name}: not counted as hidden"
        );
    }
}

#[test]
fn a_runaway_test_is_stopped_at_the_time_limit() {
    let repo = mini_repo(&[(
        "test_loop.py",
        "def test_forever():\n    while True:\n        pass\n",
    )]);
    for executor in executors() {
        let run = executor
            .run(&request(
                repo.path(),
                "pytest test_loop.py",
                Duration::from_secs(3),
            ))
            .unwrap();
        assert_eq!(
            run.end,
            RunEnd::TimedOut,
            "{}: {}",
            executor.name(),
            run.output
        );
        assert!(
            run.duration < Duration::from_secs(30),
            "{}: {:?}",
            executor.name(),
            run.duration
        );
    }
}

/// Run as a child process by the next test, which kills it in the middle of this run.
#[test]
#[ignore = "started by a_killed_stage_takes_its_native_test_run_with_it"]
fn native_run_that_never_ends() {
    if let Some(repo) = std::env::var_os("SANDBOX_TEST_ENDLESS_REPO") {
        let request = request(Path::new(&repo), "pytest", Duration::from_secs(120));
        let _ = native().run(&request);
    }
}

#[test]
fn a_killed_stage_takes_its_native_test_run_with_it() {
    // A heartbeat, not a pid: inside the sandbox's pid namespace pytest's pid
    // means nothing on the host.
    let repo = mini_repo(&[(
        "test_wait.py",
        "import time\n\ndef test_wait():\n    for beat in range(2400):\n        \
         with open('beat.txt', 'w') as f:\n            f.write(str(beat))\n        \
         time.sleep(0.05)\n",
    )]);
    let mut stage = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "native_run_that_never_ends", "--ignored"])
        .env("SANDBOX_TEST_ENDLESS_REPO", repo.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let beat_file = repo.path().join("beat.txt");
    let beat = || std::fs::read_to_string(&beat_file).ok();
    let waited = std::time::Instant::now();
    while beat().is_none() {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the test never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stage.kill().unwrap();
    stage.wait().unwrap();
    let killed = std::time::Instant::now();
    let stopped = loop {
        let before = beat();
        std::thread::sleep(Duration::from_millis(500));
        if beat() == before {
            break true;
        }
        if killed.elapsed() > Duration::from_secs(10) {
            break false;
        }
    };
    assert!(
        stopped,
        "pytest outlived the killed stage (its heartbeat goes on)"
    );
}

#[test]
fn the_guest_sees_no_host_files_and_no_environment() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "host secret").unwrap();
    let test = format!(
        "import os\n\n\
         def test_no_host_file():\n    assert not os.path.exists({path:?})\n\n\
         def test_no_passwd():\n    assert not os.path.exists('/etc/passwd')\n\n\
         def test_no_env():\n    assert 'CARGO' not in os.environ and 'PATH' not in os.environ\n",
        path = secret.path().display().to_string()
    );
    let repo = mini_repo(&[("test_escape.py", &test)]);
    let run = run_tests(wasm(), repo.path(), "pytest test_escape.py");
    assert_eq!(run.end, RunEnd::Exited(0), "{}", run.output);
    assert_eq!(
        run.with_outcome(TestOutcome::Passed).count(),
        3,
        "{}",
        run.output
    );
}

/// A real bug in toolz: `second()` returns the third element. Both executors
/// see the same tests fail, and all pass again on the clean code.
#[test]
fn a_real_suite_gives_the_same_verdicts_under_both_executors() {
    let work = workdir();
    let source = work.join("repos/toolz-1.2.0");
    let cmd = "pytest toolz/tests/test_itertoolz.py -o pythonpath=.";
    let mut verdicts = Vec::new();
    for executor in executors() {
        // Clean, buggy, clean again: a warm worker must not carry the bug over.
        for buggy in [false, true, false] {
            let copy = tempfile::tempdir().unwrap();
            copy_tree(&source, copy.path()).unwrap();
            if buggy {
                let file = copy.path().join("toolz/itertoolz.py");
                let text = std::fs::read_to_string(&file).unwrap();
                let mutated = text.replacen(
                    "    seq = iter(seq)\n    next(seq)\n    return next(seq)",
                    "    seq = iter(seq)\n    next(seq)\n    next(seq)\n    return next(seq)",
                    1,
                );
                assert_ne!(text, mutated, "the bug no longer applies to toolz");
                std::fs::write(&file, mutated).unwrap();
            }
            let run = executor
                .run(&request(copy.path(), cmd, Duration::from_secs(300)))
                .unwrap();
            let failed: Vec<String> = run
                .with_outcome(TestOutcome::Failed)
                .map(str::to_string)
                .collect();
            assert!(
                run.outcomes.len() > 40,
                "{}: {}",
                executor.name(),
                run.output
            );
            if buggy {
                assert!(
                    failed.contains(&"toolz/tests/test_itertoolz.py::test_second".to_string()),
                    "{failed:?}"
                );
            } else {
                assert!(
                    failed.is_empty(),
                    "{}: clean code failed {failed:?}",
                    executor.name()
                );
            }
            verdicts.push((executor.name(), buggy, run.outcomes));
        }
    }
    for (name, buggy, outcomes) in &verdicts {
        let (reference, _, expected) = verdicts.iter().find(|(_, b, _)| b == buggy).unwrap();
        assert_eq!(
            outcomes,
            expected,
            "{} verdicts differ between {reference} and {name}",
            if *buggy { "buggy" } else { "clean" }
        );
    }
}

/// A warm worker that hit a limit is replaced: the next run gets a working one.
#[test]
fn a_warm_executor_runs_on_after_a_run_that_hit_a_limit() {
    let repo = mini_repo(&[
        (
            "test_loop.py",
            "def test_forever():\n    while True:\n        pass\n",
        ),
        ("test_ok.py", "def test_ok():\n    assert 1 + 1 == 2\n"),
    ]);
    let native = native_executor(true);
    let executors: [&dyn Executor; 2] = [warm(), &native];
    for executor in executors {
        let first = executor
            .run(&request(
                repo.path(),
                "pytest test_ok.py",
                Duration::from_secs(60),
            ))
            .unwrap();
        assert_eq!(first.end, RunEnd::Exited(0), "{}", first.output);
        let runaway = executor
            .run(&request(
                repo.path(),
                "pytest test_loop.py",
                Duration::from_secs(3),
            ))
            .unwrap();
        assert_eq!(runaway.end, RunEnd::TimedOut, "{}", runaway.output);
        let after = executor
            .run(&request(
                repo.path(),
                "pytest test_ok.py",
                Duration::from_secs(60),
            ))
            .unwrap();
        assert_eq!(after.end, RunEnd::Exited(0), "{}", after.output);
        assert_eq!(
            after.outcomes,
            BTreeMap::from([("test_ok.py::test_ok".to_string(), TestOutcome::Passed)])
        );
    }
}

/// The error of loading the interpreter from a directory holding `interpreter`
/// (nothing when `None`) as `python.wasm`.
fn load_error(interpreter: Option<&[u8]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    if let Some(bytes) = interpreter {
        std::fs::write(dir.path().join("python.wasm"), bytes).unwrap();
    }
    let err = WasmExecutor::new(&WasmConfig {
        python_wasm: dir.path().join("python.wasm"),
        site_packages: dir.path().to_path_buf(),
        cache_dir: dir.path().to_path_buf(),
        warm: true,
    })
    .err()
    .unwrap();
    format!("{err:#}")
}

#[test]
fn a_missing_interpreter_points_to_setup() {
    let err = load_error(None);
    assert!(err.contains("just setup"), "{err}");
}

#[test]
fn a_corrupt_interpreter_points_to_setup() {
    let err = load_error(Some(b"\0asm garbage"));
    assert!(err.contains("just setup"), "{err}");
}

#[test]
fn attempts_to_leave_the_sandbox_are_refused_and_named() {
    let outside = tempfile::tempdir_in(host_home()).unwrap();
    let sentinel = outside.path().join("sentinel.txt");
    std::fs::write(&sentinel, "untouched").unwrap();
    let test = format!(
        "import os, socket, subprocess\n\n\
         def test_read():\n    open('/etc/passwd').read()\n\n\
         def test_write():\n    open({sentinel:?}, 'w').write('changed')\n\n\
         def test_socket():\n    socket.socket().connect(('127.0.0.1', 9))\n\n\
         def test_process():\n    subprocess.run(['true'])\n\n\
         def test_inside_is_fine(tmp_path):\n    (tmp_path / 'x').write_text('ok')\n    open('local.txt', 'w').write('ok')\n",
        sentinel = sentinel.display().to_string()
    );
    for executor in executors() {
        let repo = mini_repo(&[("test_hostile.py", &test)]);
        let run = run_tests(executor.as_ref(), repo.path(), "pytest test_hostile.py");
        let violations = run.violations.join("\n");
        assert!(
            violations.contains("'/etc/passwd' outside the working copy"),
            "{}: {violations}",
            executor.name()
        );
        assert!(
            violations.contains("sentinel.txt' outside the working copy"),
            "{}: {violations}",
            executor.name()
        );
        assert!(
            violations.contains("socket"),
            "{}: {violations}",
            executor.name()
        );
        assert!(
            violations.contains("start a process"),
            "{}: {violations}",
            executor.name()
        );
        assert_eq!(
            run.outcomes.get("test_hostile.py::test_inside_is_fine"),
            Some(&TestOutcome::Passed),
            "{}: {}",
            executor.name(),
            run.output
        );
        assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "untouched");
    }
}

/// Every executor, and the stages' own native one (the venv's interpreter, whose line maps
/// `just setup` gives a C tracer where it has no sys.monitoring).
fn tracing_executors() -> Vec<Box<dyn Executor>> {
    let mut all = executors();
    all.push(Box::new(venv_executor()));
    all
}

#[test]
fn the_stages_native_line_maps_need_no_python_trace_function() {
    let repo = mini_repo(&[
        ("calc.py", "def add(a, b):\n    return a + b\n"),
        (
            "tests/test_calc.py",
            "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        ),
    ]);
    let (_, map) = traced_run(&venv_executor(), repo.path());
    assert!(
        ["sys.monitoring", "coverage"].contains(&map.tracer.as_str()),
        "the venv's line maps fall back to a Python trace function ({:?}): run `just setup`",
        map.tracer
    );
    // The code under test does not see the tracer's package.
    let repo = mini_repo(&[(
        "tests/test_import.py",
        "import pytest\n\ndef test_no_coverage():\n    \
         with pytest.raises(ImportError):\n        import coverage\n",
    )]);
    let executor = venv_executor();
    let (run, _) = traced_run(&executor, repo.path());
    assert_eq!(
        run.outcomes.get("tests/test_import.py::test_no_coverage"),
        Some(&TestOutcome::Passed),
        "{}",
        run.output
    );
    // Nor does an untraced run of the warm worker that keeps the package imported for
    // the traced ones.
    let run = run_tests(&executor, repo.path(), "pytest tests -o pythonpath=.");
    assert_eq!(
        run.outcomes.get("tests/test_import.py::test_no_coverage"),
        Some(&TestOutcome::Passed),
        "{}",
        run.output
    );
}

/// A warm worker keeps coverage.py imported for its traced runs: an untraced run does not
/// see what that import bound to packages that stay (`xml.dom` on `xml`), and a traced run
/// of a repository with a module named like one coverage imports gets the repository's.
#[test]
fn the_tracer_a_warm_worker_keeps_is_not_what_the_code_under_test_imports() {
    let executor = venv_executor();
    let repo = mini_repo(&[(
        "tests/test_xml.py",
        "import xml\n\ndef test_nothing_bound_dom():\n    assert not hasattr(xml, 'dom')\n",
    )]);
    let run = run_tests(&executor, repo.path(), "pytest tests -o pythonpath=.");
    assert_eq!(
        run.outcomes
            .get("tests/test_xml.py::test_nothing_bound_dom"),
        Some(&TestOutcome::Passed),
        "{}",
        run.output
    );
    let repo = mini_repo(&[
        ("tomllib.py", "OWN = True\n"),
        (
            "tests/test_own.py",
            "import tomllib\n\ndef test_own_module():\n    assert getattr(tomllib, 'OWN', False)\n",
        ),
    ]);
    let (run, _) = traced_run(&executor, repo.path());
    assert_eq!(
        run.outcomes.get("tests/test_own.py::test_own_module"),
        Some(&TestOutcome::Passed),
        "{}",
        run.output
    );
}

/// A test parametrized with paths under the repository (data files found by glob) gets a
/// node id with the folder it ran in: every executor names it with `<repo>` instead, the
/// same in the report, the line map and the running test, and runs it by that id.
#[test]
fn node_ids_do_not_name_the_folder_a_run_happened_in() {
    let repo = mini_repo(&[
        ("data/one.txt", "1\n"),
        ("data/two.txt", "2\n"),
        (
            "tests/test_files.py",
            "import glob, os, pytest\n\n\
             FILES = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(\
             os.path.abspath(__file__))), 'data', '*.txt')))\n\n\
             @pytest.mark.parametrize('path', FILES)\n\
             def test_file(path):\n    assert open(path).read().strip() in '12'\n",
        ),
    ]);
    let ids = [
        "tests/test_files.py::test_file[<repo>/data/one.txt]", // sandbox::REPO_TOKEN
        "tests/test_files.py::test_file[<repo>/data/two.txt]",
    ];
    for executor in tracing_executors() {
        let name = executor.name();
        let (run, map) = traced_run(executor.as_ref(), repo.path());
        assert_eq!(
            run.outcomes.keys().map(String::as_str).collect::<Vec<_>>(),
            ids,
            "{name}: {}",
            run.output
        );
        assert_eq!(map.tests, ids, "{name}");
        let one = run_tests(
            executor.as_ref(),
            repo.path(),
            &format!("pytest '{}' -o pythonpath=.", ids[1]),
        );
        assert_eq!(
            one.outcomes,
            BTreeMap::from([(ids[1].to_string(), TestOutcome::Passed)]),
            "{name}: {}",
            one.output
        );
    }
}

/// `pytest tests` on `repo` with its lines traced: the run and its line map.
fn traced_run(executor: &dyn Executor, repo: &Path) -> (sandbox::TestRun, sandbox::LineMap) {
    let mut traced = request(
        repo,
        "pytest tests -o pythonpath=.",
        Duration::from_secs(120),
    );
    traced.trace_lines = true;
    let mut run = executor.run(&traced).unwrap();
    let map = run
        .line_map
        .take()
        .unwrap_or_else(|| panic!("{}: no line map: {}", executor.name(), run.output));
    (run, map)
}

#[test]
fn the_line_map_names_the_tests_that_run_each_line() {
    let repo = mini_repo(&[
        (
            "calc.py",
            "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
        ),
        (
            "tests/test_calc.py",
            "from calc import add, sub\n\ndef test_add():\n    assert add(1, 2) == 3\n\ndef test_sub():\n    assert sub(3, 2) == 1\n",
        ),
    ]);
    for executor in tracing_executors() {
        let (run, map) = traced_run(executor.as_ref(), repo.path());
        let changed =
            |line: u32| std::collections::BTreeMap::from([("calc.py".to_string(), [line].into())]);
        let only = |id: &str| sandbox::Selection::Tests([id.to_string()].into());
        assert_eq!(
            map.select(&changed(2)),
            only("tests/test_calc.py::test_add"),
            "{}",
            executor.name()
        );
        assert_eq!(
            map.select(&changed(6)),
            only("tests/test_calc.py::test_sub"),
            "{}",
            executor.name()
        );
        assert_eq!(
            map.select(&changed(1)),
            sandbox::Selection::All,
            "{}: a def line runs at import",
            executor.name()
        );
        assert_eq!(run.outcomes.len(), 2, "{}", executor.name());
        // Only the repository's files: no "<frozen importlib._bootstrap>" or "<string>".
        for file in map.lines.keys().chain(map.import_lines.keys()) {
            assert!(
                repo.path().join(file).is_file(),
                "{}: {file} is not a file of the repository",
                executor.name()
            );
        }
    }
}

/// A test that recurses until RecursionError can end tracing (under `sys.settrace` the error
/// may be raised inside the trace function, which unsets it): the tests after it must still
/// have their lines, and the one it happened in is selected for every change.
#[test]
fn a_deep_recursion_does_not_blind_the_line_map_to_later_tests() {
    let repo = mini_repo(&[
        (
            "calc.py",
            "def down(n):\n    return down(n + 1)\n\n\ndef add(a, b):\n    return a + b\n",
        ),
        (
            "tests/test_calc.py",
            "import pytest\nfrom calc import add, down\n\ndef test_deep():\n    \
             with pytest.raises(RecursionError):\n        down(0)\n\n\
             def test_add():\n    assert add(1, 2) == 3\n",
        ),
    ]);
    for executor in tracing_executors() {
        let (_, map) = traced_run(executor.as_ref(), repo.path());
        let changed = std::collections::BTreeMap::from([("calc.py".to_string(), [6].into())]);
        let sandbox::Selection::Tests(selected) = map.select(&changed) else {
            panic!("{}: a function body selects tests", executor.name());
        };
        assert!(
            selected.contains("tests/test_calc.py::test_add"),
            "{}: {selected:?}",
            executor.name()
        );
    }
}

#[test]
fn every_failure_of_a_module_gets_its_own_traceback() {
    // pytest's report of a failure parses the module of each frame; the driver keeps
    // those trees across failures, and each report must still point at its own lines.
    let repo = mini_repo(&[
        (
            "calc.py",
            "def add(a, b):\n    return a - b\n\n\ndef div(a, b):\n    return a / b\n",
        ),
        (
            "tests/test_calc.py",
            "from calc import add, div\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\
             def test_div():\n    assert div(1, 0) == 0\n\ndef test_add_again():\n    \
             assert add(2, 2) == 4\n",
        ),
    ]);
    for executor in executors() {
        let run = run_suite(executor.as_ref(), repo.path());
        let name = executor.name();
        assert_eq!(run.outcomes.len(), 3, "{name}: {}", run.output);
        for frame in [
            "tests/test_calc.py:4: in test_add",
            "tests/test_calc.py:7: in test_div",
            "calc.py:6: in div",
            "tests/test_calc.py:10: in test_add_again",
        ] {
            assert!(
                run.output.contains(frame),
                "{name}: no `{frame}` in\n{}",
                run.output
            );
        }
        assert!(run.output.contains("ZeroDivisionError"), "{name}");
    }
}

/// A warm worker compiles a tree as a fresh interpreter does (the same pycs, the test
/// modules rewritten by pytest), skips a file that does not compile, and serves runs after.
#[test]
fn warm_workers_compile_the_bytecode_a_fresh_interpreter_does() {
    let repo = mini_repo(&[
        ("calc.py", "def add(a, b):\n    return a + b\n"),
        ("broken.py", "def add(a, b:\n"),
        ("pkg/__init__.py", ""),
        ("pkg/deep.py", "X = 1\n"),
        (
            "tests/test_calc.py",
            "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        ),
        ("tests/conftest.py", ""),
    ]);
    let pycs = |executor: &dyn Executor| -> Vec<String> {
        let copy = tempfile::tempdir().unwrap();
        copy_tree(repo.path(), copy.path()).unwrap();
        executor
            .compile(copy.path(), &sandbox::Limits::default())
            .unwrap_or_else(|err| panic!("{}: {err:#}", executor.name()));
        let mut names = Vec::new();
        for dir in ["__pycache__", "pkg/__pycache__", "tests/__pycache__"] {
            for entry in std::fs::read_dir(copy.path().join(dir)).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                names.push(format!("{dir}/{}", name.split('.').next().unwrap()) + pyc_kind(&name));
            }
        }
        names.sort();
        names
    };
    fn pyc_kind(name: &str) -> &'static str {
        if name.contains("-pytest-") {
            " (rewritten)"
        } else {
            ""
        }
    }
    let expected = [
        "__pycache__/calc",
        "pkg/__pycache__/__init__",
        "pkg/__pycache__/deep",
        "tests/__pycache__/conftest",
        "tests/__pycache__/conftest (rewritten)",
        "tests/__pycache__/test_calc",
        "tests/__pycache__/test_calc (rewritten)",
    ];
    let fresh_native = native_executor(false);
    let warm_native = native_executor(true);
    for (fresh, warm) in [
        (
            &WasmRef(wasm()) as &dyn Executor,
            &WasmRef(warm()) as &dyn Executor,
        ),
        (&fresh_native, &warm_native),
    ] {
        assert_eq!(pycs(fresh), expected, "{}", fresh.name());
        assert_eq!(pycs(warm), expected, "{} (warm)", warm.name());
        let run = run_suite(warm, repo.path());
        assert_eq!(
            run.outcomes.get("tests/test_calc.py::test_add"),
            Some(&TestOutcome::Passed),
            "{} (warm) after compiling: {}",
            warm.name(),
            run.output
        );
    }
}

/// A test module's code names the file that runs, though pytest rewrote it into a pyc in
/// another folder (a copy compiled once per tree, or a warm worker's own): a suite that finds
/// its data beside the code (`inspect`, a frame's file name) passes as it does in place.
#[test]
fn code_from_carried_bytecode_names_the_running_file() {
    use patches::FileChanges;
    use sandbox::testbed::{RepoTree, ResultCache, RunOptions, TestBed};

    let repo = mini_repo(&[
        ("tests/data.txt", "beside"),
        (
            "tests/test_data.py",
            "import inspect, os\n\ndef test_reads_beside_itself():\n    \
             here = os.path.dirname(inspect.currentframe().f_code.co_filename)\n    \
             with open(os.path.join(here, 'data.txt')) as f:\n        \
             assert f.read() == 'beside'\n",
        ),
    ]);
    let tree = RepoTree::new(repo.path().to_path_buf()).unwrap();
    let args = sandbox::pytest_args("pytest tests").unwrap();
    for executor in executors() {
        let name = executor.name();
        let bed = TestBed::new(executor, ResultCache::new(None), Default::default());
        assert!(
            bed.bytecode
                .for_tree(bed.executor.as_ref(), &tree, &bed.limits)
                .is_some(),
            "{name}: no bytecode"
        );
        for _ in 0..2 {
            let run = bed
                .run(&tree, &FileChanges::new(), &args, &RunOptions::fresh())
                .unwrap();
            assert_eq!(
                run.outcomes
                    .get("tests/test_data.py::test_reads_beside_itself"),
                Some(&TestOutcome::Passed),
                "{name}: {}",
                run.output
            );
        }
    }
}
