//! `task-validate` on hand-written real bug patches in a real corpus repository
//! (examples/candidates/inflection.jsonl, one candidate per gate outcome).
//! Needs `just setup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::{root, workdir};

fn candidates() -> PathBuf {
    root().join("examples/candidates/inflection.jsonl")
}

fn validate(args: &[&str], workdir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_task-validate"))
        .args(args)
        .env("SOCRATIC_WORKDIR", workdir)
        .output()
        .unwrap()
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn each_candidate_meets_its_expected_gate_outcome() {
    for executor in ["wasm", "native"] {
        candidates_meet_their_expected_gate_outcomes(executor);
    }
}

fn candidates_meet_their_expected_gate_outcomes(executor: &str) {
    let out = tempfile::tempdir().unwrap();
    let valid = out.path().join("valid.jsonl");
    let rejects = out.path().join("rejects.jsonl");
    let cache_off = ["--no-cache", "--jobs", "2", "--executor", executor];
    let result = validate(
        &[
            &[
                candidates().to_str().unwrap(),
                "-o",
                valid.to_str().unwrap(),
                "--rejects",
                rejects.to_str().unwrap(),
            ][..],
            &cache_off,
        ]
        .concat(),
        &workdir(),
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );

    let mut seen = 0;
    for task in records(&valid).iter().chain(records(&rejects).iter()) {
        seen += 1;
        let expect = task["expect"].as_str().unwrap();
        let verdict = match &task["rejection"] {
            Value::Null => "valid".to_string(),
            rejection => format!(
                "{}: {}",
                rejection["stage"].as_str().unwrap(),
                rejection["reason"].as_str().unwrap()
            ),
        };
        let expected_stage = expect.split(':').next().unwrap();
        assert!(
            verdict.starts_with(expected_stage),
            "{}: expected {expect}, got {verdict} under {executor}",
            task["instance_id"]
        );
    }
    assert_eq!(
        seen,
        records(&candidates()).len(),
        "every candidate is written to one of the files"
    );

    let valid = records(&valid);
    assert_eq!(valid.len(), 2);
    let task = valid
        .iter()
        .find(|task| task["instance_id"] == "inflection-0.5.1.hand.valid")
        .unwrap();
    let f2p: Vec<&str> = task["FAIL_TO_PASS"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        f2p,
        [
            "test_inflection.py::test_ordinal[-113--113th]",
            "test_inflection.py::test_ordinal[-13--13th]",
            "test_inflection.py::test_ordinal[113-113th]",
            "test_inflection.py::test_ordinal[13-13th]",
            "test_inflection.py::test_ordinalize[-113--113th]",
            "test_inflection.py::test_ordinalize[-13--13th]",
            "test_inflection.py::test_ordinalize[113-113th]",
            "test_inflection.py::test_ordinalize[13-13th]",
        ]
    );
    let p2p = task["PASS_TO_PASS"].as_array().unwrap();
    assert!(p2p.len() > 400, "{}", p2p.len());
    assert!(p2p.iter().all(|id| !f2p.contains(&id.as_str().unwrap())));
    let statement = task["problem_statement"].as_str().unwrap();
    assert!(statement.starts_with("8 tests fail:"), "{statement}");
    assert!(statement.contains("assert '13th' == '13rd'"), "{statement}");
    assert!(
        !statement.contains("(11, 12, 13)"),
        "the statement leaks the fix: {statement}"
    );
    assert_eq!(task["expect"], "valid", "unknown fields pass through");
}

#[test]
fn a_second_run_is_served_from_the_cache_with_the_same_output() {
    let work = tempfile::tempdir().unwrap();
    // A private work directory that shares the corpus, so the cache starts empty.
    let shared = workdir();
    for entry in ["corpus.jsonl", "repos", "site-packages", "python", "venv"] {
        std::os::unix::fs::symlink(shared.join(entry), work.path().join(entry)).unwrap();
    }
    let one = candidates().to_str().unwrap().to_string();
    let first = validate(&[&one, "--jobs", "2"], work.path());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = validate(&[&one, "--jobs", "2"], work.path());
    assert!(second.status.success());
    assert_eq!(first.stdout, second.stdout, "output differs between runs");
    let log = String::from_utf8_lossy(&second.stderr);
    // Only the reproducibility reruns run again: one per valid task and per task the
    // rerun rejected.
    let valid = String::from_utf8_lossy(&second.stdout).lines().count();
    assert!(valid > 0);
    let not_reproducible: usize = log
        .split("reproducible ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .map_or(0, |n| n.parse().unwrap());
    let reruns = valid + not_reproducible;
    assert!(log.contains(&format!("test runs: {reruns} (")), "{log}");
}

/// `--executor auto`, the default, runs natively where bubblewrap can contain the runs and
/// under wasm where it cannot, natively again for code declared trusted; the summary line
/// names the executor.
#[test]
fn the_default_executor_is_native_where_runs_can_be_contained_and_wasm_elsewhere() {
    let out = tempfile::tempdir().unwrap();
    // One candidate the format gate rejects: the executor is chosen, no test runs.
    let input = out.path().join("one.jsonl");
    let text = std::fs::read_to_string(candidates()).unwrap();
    let line = text
        .lines()
        .find(|line| line.contains("bug_patch does not apply"))
        .unwrap();
    std::fs::write(&input, format!("{line}\n")).unwrap();
    let no_bwrap = out.path().join("empty-path");
    std::fs::create_dir(&no_bwrap).unwrap();
    let executor = |path: Option<&Path>, extra: &[&str]| -> String {
        let mut command = Command::new(env!("CARGO_BIN_EXE_task-validate"));
        command
            .arg(&input)
            .args(["--no-cache", "-o"])
            .arg(out.path().join("valid.jsonl"))
            .args(extra)
            .env("SOCRATIC_WORKDIR", workdir());
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let result = command.output().unwrap();
        let log = String::from_utf8_lossy(&result.stderr).to_string();
        assert!(result.status.success(), "{log}");
        log.rsplit("executor: ")
            .next()
            .and_then(|rest| rest.split([',', ' ', '\n']).next())
            .unwrap_or_else(|| panic!("no executor named: {log}"))
            .to_string()
    };
    let bwrap_works = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-all", "true"])
        .status()
        .is_ok_and(|status| status.success());
    if bwrap_works {
        assert_eq!(executor(None, &[]), "native");
    }
    assert_eq!(executor(Some(&no_bwrap), &[]), "wasm");
    assert_eq!(executor(Some(&no_bwrap), &["--trusted-code"]), "native");
    assert_eq!(executor(None, &["--executor", "wasm"]), "wasm");
}

#[test]
fn a_repo_that_is_not_in_the_corpus_is_bad_input_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let input = out.path().join("tasks.jsonl");
    let text = std::fs::read_to_string(candidates())
        .unwrap()
        .replace("\"repo\":\"inflection-0.5.1\"", "\"repo\":\"nosuch-1.0\"");
    std::fs::write(&input, text).unwrap();
    let valid = out.path().join("valid.jsonl");
    let result = validate(
        &[input.to_str().unwrap(), "-o", valid.to_str().unwrap()],
        &workdir(),
    );
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("`nosuch-1.0`") && stderr.contains("not in the corpus"),
        "{stderr}"
    );
    assert!(!valid.exists());
}

#[test]
fn an_empty_input_is_bad_input_unless_allowed() {
    let out = tempfile::tempdir().unwrap();
    let input = out.path().join("none.jsonl");
    std::fs::write(&input, "").unwrap();
    let valid = out.path().join("valid.jsonl");
    let args = [input.to_str().unwrap(), "-o", valid.to_str().unwrap()];
    let result = validate(&args, &workdir());
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("empty input"));
    assert!(!valid.exists());
    let result = validate(&[&args[..], &["--allow-empty"]].concat(), &workdir());
    assert_eq!(result.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&valid).unwrap(), "");
}

#[test]
fn a_missing_interpreter_fails_and_names_setup() {
    let work = tempfile::tempdir().unwrap();
    let shared = workdir();
    for entry in ["corpus.jsonl", "repos", "site-packages"] {
        std::os::unix::fs::symlink(shared.join(entry), work.path().join(entry)).unwrap();
    }
    let result = validate(&[candidates().to_str().unwrap()], work.path());
    assert_eq!(result.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&result.stderr).contains("just setup"));
}

/// Selection runs only the tests that execute a changed line; the verdicts,
/// FAIL_TO_PASS and PASS_TO_PASS must be those of running the whole suite.
#[test]
fn selection_gives_the_same_verdicts_as_the_full_suite() {
    let out = tempfile::tempdir().unwrap();
    let input = candidates();
    let run = |extra: &[&str], name: &str| -> (Vec<Value>, Vec<Value>) {
        let valid = out.path().join(format!("{name}-valid.jsonl"));
        let rejects = out.path().join(format!("{name}-rejects.jsonl"));
        let args = [
            &[
                input.to_str().unwrap(),
                "-o",
                valid.to_str().unwrap(),
                "--rejects",
                rejects.to_str().unwrap(),
                "--jobs",
                "2",
                // The tools' default runs natively where bubblewrap works; this pins
                // selection under wasm.
                "--executor",
                "wasm",
            ][..],
            extra,
        ]
        .concat();
        let result = validate(&args, &workdir());
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        (records(&valid), records(&rejects))
    };
    let maps = out.path().join("maps");
    let (selected_valid, selected_rejects) =
        run(&["--line-maps", maps.to_str().unwrap()], "selected");
    let (full_valid, full_rejects) = run(&["--full"], "full");
    assert_eq!(selected_valid, full_valid, "valid tasks differ");
    let stages = |rejects: &[Value]| -> Vec<(Value, Value)> {
        rejects
            .iter()
            .map(|task| {
                (
                    task["instance_id"].clone(),
                    task["rejection"]["stage"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(stages(&selected_rejects), stages(&full_rejects));
    assert_eq!(selected_valid.len(), 2);

    // `--line-maps` leaves the clean suite's line map for task-gen: every test that the
    // valid bugs make fail is in it, and the bugs' file has lines that tests run.
    let map: Value =
        serde_json::from_slice(&std::fs::read(maps.join("inflection-0.5.1.json")).unwrap())
            .unwrap();
    let tests: Vec<&str> = map["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for task in &selected_valid {
        for id in task["FAIL_TO_PASS"].as_array().unwrap() {
            assert!(tests.contains(&id.as_str().unwrap()), "{id} not in the map");
        }
    }
    let lines = &map["lines"]["inflection/__init__.py"];
    assert!(lines.as_object().is_some_and(|l| !l.is_empty()), "{lines}");
}

/// The clean run records the line map too; a suite that is not green when traced (a test
/// that sees the tracer) is judged by an untraced run, as every later run is untraced.
#[test]
fn a_test_that_fails_only_under_the_tracer_does_not_reject_the_clean_code() {
    let work = tempfile::tempdir().unwrap();
    let shared = workdir();
    for entry in ["site-packages", "python", "venv"] {
        std::os::unix::fs::symlink(shared.join(entry), work.path().join(entry)).unwrap();
    }
    let root = work.path().join("repos/lib-1.0");
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::create_dir_all(root.join("tests")).unwrap();
    std::fs::write(root.join("lib/__init__.py"), "").unwrap();
    std::fs::write(root.join("lib/core.py"), "def inc(x):\n    return x + 1\n").unwrap();
    std::fs::write(
        root.join("tests/test_core.py"),
        "import sys\n\nfrom lib.core import inc\n\n\
         def test_inc():\n    assert inc(1) == 2\n\n\
         def test_untraced():\n    assert sys.gettrace() is None\n",
    )
    .unwrap();
    let repo = serde_json::json!({
        "schema": "repo/1", "id": "lib-1.0", "name": "lib", "version": "1.0", "split": "train",
        "source": {"filename": "lib-1.0.tar.gz", "sha256": "0".repeat(64)},
        "root": "repos/lib-1.0", "src_dirs": ["lib"],
        "test_cmd": "pytest tests -p no:cacheprovider -o pythonpath=.",
        "test_deps": ["pytest==9.2.0"],
    });
    std::fs::write(work.path().join("corpus.jsonl"), format!("{repo}\n")).unwrap();
    let task = serde_json::json!({
        "schema": "task/1", "instance_id": "lib-1.0.arith-swap.0001", "repo": "lib-1.0",
        "bug_patch": patches::unified_diff("lib/core.py", "def inc(x):\n    return x + 1\n", "def inc(x):\n    return x - 1\n"),
        "gold_patch": patches::unified_diff("lib/core.py", "def inc(x):\n    return x - 1\n", "def inc(x):\n    return x + 1\n"),
        "test_cmd": "pytest tests -p no:cacheprovider -o pythonpath=.",
        "provenance": {"strategy": "random", "operator": "arith-swap"},
    });
    let input = work.path().join("candidates.jsonl");
    std::fs::write(&input, format!("{task}\n")).unwrap();
    let valid = work.path().join("valid.jsonl");
    let result = validate(
        &[
            input.to_str().unwrap(),
            "--executor",
            "native",
            "-o",
            valid.to_str().unwrap(),
        ],
        work.path(),
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let valid = records(&valid);
    assert_eq!(
        valid.len(),
        1,
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(
        valid[0]["FAIL_TO_PASS"],
        serde_json::json!(["tests/test_core.py::test_inc"])
    );
    assert_eq!(
        valid[0]["PASS_TO_PASS"],
        serde_json::json!(["tests/test_core.py::test_untraced"])
    );
}
