//! `records` as a user runs it: exit codes, messages, atomic output, shards.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn records() -> Command {
    Command::new(env!("CARGO_BIN_EXE_records"))
}

fn task_line(id: &str) -> String {
    format!(
        r#"{{"schema":"task/1","instance_id":"{id}","repo":"r-1.0","bug_patch":"","gold_patch":"","test_cmd":"pytest","provenance":{{"strategy":"random"}},"extra_field":[1,{{"x":null}}]}}"#
    )
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Runs `records cat --kind task IN -o OUT` on `content` and checks that it fails
/// with exit 2, one message that starts with `expected_start`, and no output file.
fn assert_bad_input(content: &[u8], expected_start: &str, expected_fragment: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tasks.jsonl");
    let out = dir.path().join("out.jsonl");
    std::fs::write(&input, content).unwrap();
    let result = records()
        .current_dir(dir.path())
        .args(["cat", "--kind", "task", "tasks.jsonl", "-o", "out.jsonl"])
        .output()
        .unwrap();
    let lines = stderr_lines(&result);
    assert_eq!(result.status.code(), Some(2), "{lines:?}");
    assert_eq!(lines.len(), 1, "expected one message, got {lines:?}");
    let message = lines[0]
        .strip_prefix("records: error: ")
        .unwrap_or(&lines[0]);
    assert!(message.starts_with(expected_start), "{message}");
    assert!(message.contains(expected_fragment), "{message}");
    assert!(!out.exists(), "a failed run wrote {}", out.display());
    let litter: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "tasks.jsonl")
        .collect();
    assert!(litter.is_empty(), "left behind {litter:?}");
}

#[test]
fn truncated_line_is_bad_input() {
    let good = task_line("a");
    let content = format!("{good}\n{}\n", &good[..50]);
    assert_bad_input(
        content.as_bytes(),
        "tasks.jsonl:2: invalid JSON",
        "truncated",
    );
}

#[test]
fn wrong_field_type_is_bad_input() {
    let bad = task_line("b").replace(
        r#""repo":"r-1.0""#,
        r#""repo":"r-1.0","FAIL_TO_PASS":{"a":1}"#,
    );
    let content = format!("{}\n{bad}\n", task_line("a"));
    assert_bad_input(
        content.as_bytes(),
        "tasks.jsonl:2: field FAIL_TO_PASS:",
        "expected a list",
    );
}

#[test]
fn missing_required_field_is_bad_input() {
    let bad = task_line("b").replace(r#""test_cmd":"pytest","#, "");
    assert_bad_input(bad.as_bytes(), "tasks.jsonl:1: field test_cmd:", "missing");
}

#[test]
fn unknown_schema_version_is_bad_input() {
    let bad = task_line("b").replace("task/1", "task/3");
    assert_bad_input(bad.as_bytes(), "tasks.jsonl:1: field schema:", "newer");
}

#[test]
fn unknown_kind_and_wrong_kind_are_bad_input() {
    let unknown = task_line("b").replace("task/1", "tusk/1");
    assert_bad_input(
        unknown.as_bytes(),
        "tasks.jsonl:1: field schema:",
        "unknown record kind `tusk`",
    );
    let skill = std::fs::read(examples().join("skill.jsonl")).unwrap();
    assert_bad_input(
        &skill,
        "tasks.jsonl:1: field schema:",
        "expected a task record",
    );
}

#[test]
fn empty_input_is_bad_input() {
    assert_bad_input(b"", "tasks.jsonl: empty input", "no records");
}

#[test]
fn binary_garbage_is_bad_input() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_bad_input(&garbage, "tasks.jsonl:1: ", "");
}

#[test]
fn a_100_mb_line_is_bad_input() {
    let mut content = task_line("a").into_bytes();
    content.push(b'\n');
    content.extend(std::iter::repeat_n(b' ', 100 << 20));
    content.push(b'1');
    assert_bad_input(&content, "tasks.jsonl:2: line is longer than", "MiB");
}

#[test]
fn a_missing_input_file_is_bad_input() {
    let result = records()
        .args(["check", "/nonexistent/tasks.jsonl"])
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(2));
    assert!(stderr_lines(&result)[0].contains("/nonexistent/tasks.jsonl: cannot open"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["cat", "--shard", "4/4"][..],
        &["frobnicate"],
        &["schema", "patch"],
    ] {
        let result = records().args(args).output().unwrap();
        assert_eq!(result.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn check_accepts_the_examples() {
    let files: Vec<PathBuf> = schemas::KINDS
        .iter()
        .map(|kind| examples().join(format!("{kind}.jsonl")))
        .collect();
    let result = records().arg("check").args(&files).output().unwrap();
    assert!(result.status.success(), "{:?}", stderr_lines(&result));
}

#[test]
fn cat_keeps_unknown_fields() {
    let result = records()
        .args(["cat", "-q"])
        .arg(examples().join("task.jsonl"))
        .output()
        .unwrap();
    assert!(result.status.success());
    let original = std::fs::read_to_string(examples().join("task.jsonl")).unwrap();
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    assert_eq!(
        parse(&String::from_utf8(result.stdout).unwrap()),
        parse(&original)
    );
}

#[test]
fn shard_outputs_concatenate_to_the_unsharded_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tasks.jsonl");
    let text: String = (0..250)
        .map(|n| task_line(&format!("repo-{}.op.{n}", n % 9)) + "\n")
        .collect();
    std::fs::write(&input, text).unwrap();
    let run = |extra: &[&str]| -> Vec<String> {
        let result = records()
            .arg("cat")
            .arg(&input)
            .args(extra)
            .output()
            .unwrap();
        assert!(result.status.success(), "{:?}", stderr_lines(&result));
        String::from_utf8(result.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let mut whole = run(&[]);
    let mut union = Vec::new();
    for index in 0..3 {
        let part = run(&["--shard", &format!("{index}/3"), "--allow-empty"]);
        assert!(!part.is_empty(), "shard {index}/3 is empty");
        union.extend(part);
    }
    whole.sort();
    union.sort();
    assert_eq!(union, whole);
}

/// A writer killed mid-stream leaves the previous output intact and no partial file
/// under the output's name.
#[test]
fn a_killed_writer_leaves_no_partial_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    std::fs::write(&out, "previous complete output\n").unwrap();
    let mut child = records()
        .args(["cat", "-", "-o"])
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for n in 0..2000 {
        writeln!(stdin, "{}", task_line(&format!("t{n}"))).unwrap();
    }
    stdin.flush().unwrap();
    // Wait until the writer has put data into its temporary file, then kill it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let partial_size = || -> u64 {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".partial"))
            .map(|entry| entry.metadata().unwrap().len())
            .sum()
    };
    while partial_size() == 0 {
        assert!(
            Instant::now() < deadline,
            "the writer never started writing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "previous complete output\n"
    );
}
