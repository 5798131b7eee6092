//! `records import` and `records export` as a user runs them: round trips through
//! the binary on the example files, and bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn records() -> Command {
    Command::new(env!("CARGO_BIN_EXE_records"))
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect()
}

fn read_lines(path: &Path) -> Vec<Value> {
    parse_lines(&std::fs::read_to_string(path).unwrap())
}

/// Runs `records ARGS` with `stdin` and returns stdout; panics unless it succeeds.
fn run(args: &[&str], stdin: &[u8]) -> String {
    let output = run_raw(args, stdin);
    assert!(
        output.status.success(),
        "records {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn run_raw(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = records()
        .args(["-q"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Imports `file` as `format` into a file, checks it with `records check --kind
/// task`, exports it back to `format` and returns (input, output) instances.
fn round_trip(file: &Path, format: &str) -> (Vec<Value>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let tasks = dir.path().join("tasks.jsonl");
    run(
        &[
            "import",
            "--from",
            format,
            path_str(file),
            "-o",
            path_str(&tasks),
        ],
        b"",
    );
    run(&["check", "--kind", "task", path_str(&tasks)], b"");
    let exported = run(&["export", "--to", format, path_str(&tasks)], b"");
    (read_lines(file), parse_lines(&exported))
}

fn assert_same_instances(original: &[Value], back: &[Value]) {
    assert_eq!(back.len(), original.len());
    for (original, back) in original.iter().zip(back) {
        let (original, back) = (original.as_object().unwrap(), back.as_object().unwrap());
        for (name, value) in original {
            assert_eq!(
                back.get(name),
                Some(value),
                "{}: field {name}",
                original["instance_id"]
            );
        }
        assert_eq!(
            back.len(),
            original.len(),
            "{}: extra fields",
            original["instance_id"]
        );
    }
}

#[test]
fn swebench_instances_come_back_field_by_field() {
    let (original, back) = round_trip(&examples().join("swebench/instances.jsonl"), "swebench");
    assert_same_instances(&original, &back);
    // The test lists stay strings, written the way the dataset wrote them.
    assert!(
        back.iter()
            .all(|instance| instance["FAIL_TO_PASS"].is_string())
    );
}

#[test]
fn swesmith_instances_come_back_field_by_field() {
    let (original, back) = round_trip(&examples().join("swebench/swesmith.jsonl"), "swesmith");
    assert_same_instances(&original, &back);
    assert!(
        back.iter()
            .all(|instance| instance["FAIL_TO_PASS"].is_array())
    );
}

#[test]
fn imports_map_the_patches_by_direction() {
    let swebench = read_lines(&examples().join("swebench/instances.jsonl"));
    let tasks = parse_lines(&run(
        &["import", "--from", "swebench"],
        std::fs::read(examples().join("swebench/instances.jsonl"))
            .unwrap()
            .as_slice(),
    ));
    for (instance, task) in swebench.iter().zip(&tasks) {
        assert_eq!(task["gold_patch"], instance["patch"]);
        assert_eq!(
            task["bug_patch"].as_str().unwrap(),
            records::unidiff::reverse(instance["patch"].as_str().unwrap()).unwrap()
        );
        assert_eq!(task["test_patch"], instance["test_patch"]);
        assert_eq!(task["provenance"]["imported_from"], "swebench");
        let listed: Vec<String> =
            serde_json::from_str(instance["FAIL_TO_PASS"].as_str().unwrap()).unwrap();
        assert_eq!(task["FAIL_TO_PASS"], Value::from(listed));
    }
    let swesmith = examples().join("swebench/swesmith.jsonl");
    let tasks = parse_lines(&run(
        &["import", "--from", "swesmith", path_str(&swesmith)],
        b"",
    ));
    for (instance, task) in read_lines(&swesmith).iter().zip(&tasks) {
        assert_eq!(task["bug_patch"], instance["patch"]);
        assert_eq!(task["image_name"], instance["image_name"]);
        assert_eq!(task["base_commit"], instance["base_commit"]);
    }
}

#[test]
fn example_tasks_survive_both_formats() {
    let original = std::fs::read(examples().join("task.jsonl")).unwrap();
    for format in ["swebench", "swesmith"] {
        let instances = run(&["export", "--to", format, "-"], &original);
        let back = run(&["import", "--from", format], instances.as_bytes());
        assert_eq!(
            parse_lines(&back),
            parse_lines(std::str::from_utf8(&original).unwrap()),
            "{format}"
        );
    }
}

#[test]
fn a_task_survives_a_change_of_format() {
    let swesmith = std::fs::read(examples().join("swebench/swesmith.jsonl")).unwrap();
    let tasks = run(&["import", "--from", "swesmith"], &swesmith);
    let swebench = run(&["export", "--to", "swebench"], tasks.as_bytes());
    let again = run(&["import", "--from", "swebench"], swebench.as_bytes());
    assert_eq!(parse_lines(&again), parse_lines(&tasks));
}

#[test]
fn export_takes_the_version_from_the_corpus() {
    let corpus = examples().join("repo.jsonl");
    let tasks = examples().join("task.jsonl");
    let out = run(
        &[
            "export",
            "--to",
            "swebench",
            "--corpus",
            path_str(&corpus),
            path_str(&tasks),
        ],
        b"",
    );
    let versions: Vec<Value> = parse_lines(&out)
        .iter()
        .map(|instance| instance["version"].clone())
        .collect();
    assert_eq!(versions, ["1.2.0", "8.0.2", "0.5.1"].map(Value::from));
}

/// Runs `records ARGS` on `content` written to `in.jsonl` and checks exit 2, one
/// message that starts with `start` and contains `fragment`, and no output file.
fn assert_bad_input(args: &[&str], content: &str, start: &str, fragment: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), content).unwrap();
    let result = records()
        .current_dir(dir.path())
        .args(args)
        .args(["in.jsonl", "-o", "out.jsonl"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(result.status.code(), Some(2), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let message = lines[0]
        .strip_prefix("records: error: ")
        .unwrap_or(lines[0]);
    assert!(message.starts_with(start), "{message}");
    assert!(message.contains(fragment), "{message}");
    assert!(!dir.path().join("out.jsonl").exists());
}

fn swebench_lines() -> Vec<Value> {
    read_lines(&examples().join("swebench/instances.jsonl"))
}

fn to_text(lines: &[Value]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

#[test]
fn a_missing_swebench_field_is_bad_input() {
    let mut lines = swebench_lines();
    lines[1].as_object_mut().unwrap().remove("base_commit");
    assert_bad_input(
        &["import", "--from", "swebench"],
        &to_text(&lines),
        "in.jsonl:2: field base_commit:",
        "missing",
    );
}

#[test]
fn a_test_list_string_that_is_not_a_json_list_is_bad_input() {
    let mut lines = swebench_lines();
    lines[2]["FAIL_TO_PASS"] = Value::from("toolz/tests/test_itertoolz.py::test_second");
    assert_bad_input(
        &["import", "--from", "swebench"],
        &to_text(&lines),
        "in.jsonl:3: field FAIL_TO_PASS:",
        "a string that holds one as JSON",
    );
}

#[test]
fn a_task_whose_repository_is_not_in_the_corpus_is_bad_input() {
    let corpus = examples().join("repo.jsonl");
    let mut tasks = read_lines(&examples().join("task.jsonl"));
    tasks[1]["repo"] = Value::from("nowhere-1.0");
    assert_bad_input(
        &["export", "--to", "swebench", "--corpus", path_str(&corpus)],
        &to_text(&tasks),
        "in.jsonl:2: field repo:",
        "no repository `nowhere-1.0`",
    );
}

#[test]
fn a_bad_task_and_an_empty_input_are_bad_input() {
    let mut tasks = read_lines(&examples().join("task.jsonl"));
    tasks[0]["FAIL_TO_PASS"] = Value::from("[]");
    assert_bad_input(
        &["export", "--to", "swesmith"],
        &to_text(&tasks),
        "in.jsonl:1: field FAIL_TO_PASS:",
        "expected a list",
    );
    assert_bad_input(
        &["import", "--from", "swesmith"],
        "\n",
        "in.jsonl: empty input",
        "no instances",
    );
}

#[test]
fn help_shows_an_example() {
    for command in ["import", "export"] {
        let out = run(&[command, "--help"], b"");
        assert!(out.contains("Examples:"), "{out}");
        assert!(out.contains(&format!("records {command} --")), "{out}");
    }
}

#[test]
fn a_validated_task_becomes_a_harbor_task_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repos/lib-1.0");
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::create_dir_all(root.join("tests/__pycache__")).unwrap();
    std::fs::write(root.join("lib/core.py"), "def inc(x):\n    return x + 1\n").unwrap();
    std::fs::write(root.join("tests/__pycache__/stale.pyc"), "").unwrap();
    let corpus = dir.path().join("corpus.jsonl");
    let repo = serde_json::json!({
        "schema": "repo/1", "id": "lib-1.0", "name": "lib", "version": "1.0", "split": "train",
        "source": {"filename": "lib-1.0.tar.gz", "sha256": "0".repeat(64)},
        "root": "repos/lib-1.0", "src_dirs": ["lib"],
        "test_cmd": "pytest tests -o pythonpath=.", "test_deps": ["pytest==9.2.0"],
    });
    std::fs::write(&corpus, format!("{repo}\n")).unwrap();
    let bug = "--- a/lib/core.py\n+++ b/lib/core.py\n@@ -1,2 +1,2 @@\n def inc(x):\n-    return x + 1\n+    return x - 1\n";
    let gold = "--- a/lib/core.py\n+++ b/lib/core.py\n@@ -1,2 +1,2 @@\n def inc(x):\n-    return x - 1\n+    return x + 1\n";
    let task = serde_json::json!({
        "schema": "task/1", "instance_id": "lib-1.0.arith-swap.0001", "repo": "lib-1.0",
        "bug_patch": bug, "gold_patch": gold, "problem_statement": "inc(1) gives 0",
        "FAIL_TO_PASS": ["tests/test_core.py::test_inc"], "PASS_TO_PASS": ["tests/test_core.py::test_other"],
        "test_cmd": "", "provenance": {"strategy": "random", "operator": "arith-swap"},
    });
    let tasks = dir.path().join("valid.jsonl");
    std::fs::write(&tasks, format!("{task}\n")).unwrap();
    let out = dir.path().join("harbor");
    let corpus_arg = format!("--corpus={}", path_str(&corpus));
    let args = [
        "export",
        "--to",
        "harbor",
        &corpus_arg,
        path_str(&tasks),
        "-o",
        path_str(&out),
    ];
    run(&args, b"");
    let task_dir = out.join("lib-1.0.arith-swap.0001");
    let read = |rel: &str| std::fs::read_to_string(task_dir.join(rel)).unwrap();
    assert_eq!(
        read("environment/repo/lib/core.py"),
        "def inc(x):\n    return x - 1\n"
    );
    assert!(!task_dir.join("environment/repo/tests/__pycache__").exists());
    assert_eq!(
        read("solution/files/lib/core.py"),
        "def inc(x):\n    return x + 1\n"
    );
    assert!(read("instruction.md").contains("inc(1) gives 0"));
    assert!(read("environment/Dockerfile").contains("\"pytest==9.2.0\""));
    assert!(read("task.toml").contains("operator = \"arith-swap\""));
    let config: Value = serde_json::from_str(&read("tests/config.json")).unwrap();
    // The Repo's test command (the task carries none), narrowed to the task's tests.
    assert_eq!(
        config["pytest_args"],
        serde_json::json!([
            "-o",
            "pythonpath=.",
            "tests/test_core.py::test_inc",
            "tests/test_core.py::test_other",
            "-p",
            "no:cacheprovider"
        ])
    );
    assert!(read("tests/test.sh").contains("reward"));
    // Exporting again replaces the directory whole; nothing else is left in the folder.
    run(&args, b"");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);

    let no_dir = run_raw(
        &["export", "--to", "harbor", &corpus_arg, path_str(&tasks)],
        b"",
    );
    assert_eq!(no_dir.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_dir.stderr).contains("-o DIR"));
    let unvalidated = dir.path().join("candidates.jsonl");
    let mut candidate = task.clone();
    candidate["FAIL_TO_PASS"] = serde_json::json!([]);
    std::fs::write(&unvalidated, format!("{candidate}\n")).unwrap();
    let refused = run_raw(
        &[
            "export",
            "--to",
            "harbor",
            &corpus_arg,
            path_str(&unvalidated),
            "-o",
            path_str(&out),
        ],
        b"",
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("FAIL_TO_PASS"));
}
