//! Reading JSONL: line numbers, bad lines, empty input, sharding.

use std::io::Write;

use schemas::{Record, Task};
use stage_io::input::{Inputs, MAX_LINE_BYTES};
use stage_io::shard::Shard;

fn task_line(id: &str) -> String {
    format!(
        r#"{{"schema":"task/1","instance_id":"{id}","repo":"r-1.0","bug_patch":"","gold_patch":"","test_cmd":"pytest","provenance":{{"strategy":"random"}}}}"#
    )
}

fn read_tasks(name: &str, text: impl Into<Vec<u8>>) -> Result<Vec<Task>, String> {
    Inputs::from_reader(name, std::io::Cursor::new(text.into()))
        .records::<Task>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| err.to_string())
}

#[test]
fn reads_records_and_skips_blank_lines() {
    let text = format!("{}\n\n{}\r\n   \n", task_line("a"), task_line("b"));
    let tasks = read_tasks("tasks.jsonl", text).unwrap();
    let ids: Vec<_> = tasks.iter().map(|t| t.id().into_owned()).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn a_last_line_without_newline_is_read() {
    let tasks = read_tasks("t.jsonl", task_line("only")).unwrap();
    assert_eq!(tasks.len(), 1);
}

#[test]
fn a_wrong_field_type_names_file_line_and_field() {
    let bad = task_line("b").replace(
        r#""test_cmd":"pytest""#,
        r#""test_cmd":"pytest","FAIL_TO_PASS":"t::x""#,
    );
    let text = format!("{}\n\n{bad}\n{}\n", task_line("a"), task_line("c"));
    let err = read_tasks("tasks.jsonl", text).unwrap_err();
    assert!(
        err.starts_with("tasks.jsonl:3: field FAIL_TO_PASS: "),
        "{err}"
    );
    assert!(err.contains("expected a list"), "{err}");
}

#[test]
fn a_truncated_line_is_reported_as_such() {
    let line = task_line("a");
    let text = format!("{line}\n{}", &line[..40]);
    let err = read_tasks("tasks.jsonl", text).unwrap_err();
    assert!(
        err.starts_with("tasks.jsonl:2: invalid JSON at column"),
        "{err}"
    );
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn binary_garbage_is_not_utf8_text() {
    let err = read_tasks("blob.jsonl", vec![0x7b, 0xff, 0xfe, 0x00, 0x81, b'\n']).unwrap_err();
    assert_eq!(
        err,
        "blob.jsonl:1: not UTF-8 text (invalid byte at column 2): is this a JSONL file?"
    );
}

#[test]
fn an_overlong_line_is_refused_without_reading_it_whole() {
    let mut text = task_line("a").into_bytes();
    text.push(b'\n');
    text.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
    let err = read_tasks("big.jsonl", text).unwrap_err();
    assert!(err.starts_with("big.jsonl:2: line is longer than"), "{err}");
}

#[test]
fn an_empty_input_is_bad_input_unless_allowed() {
    let err = read_tasks("empty.jsonl", "").unwrap_err();
    assert!(err.starts_with("empty.jsonl: empty input"), "{err}");
    let err = read_tasks("blank.jsonl", "\n \n").unwrap_err();
    assert!(err.contains("empty input"), "{err}");

    let empty = Inputs::from_reader("empty.jsonl", std::io::Cursor::new(Vec::new()))
        .records::<Task>()
        .allow_empty()
        .count();
    assert_eq!(empty, 0);
}

#[test]
fn a_missing_file_is_bad_input_naming_it() {
    let err = Inputs::open(&["no/such/tasks.jsonl".into()]).err().unwrap();
    assert!(
        err.to_string()
            .starts_with("no/such/tasks.jsonl: cannot open:"),
        "{err}"
    );
}

#[test]
fn line_numbers_restart_in_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    std::fs::write(&first, format!("{}\n{}\n", task_line("a"), task_line("b"))).unwrap();
    let mut file = std::fs::File::create(&second).unwrap();
    writeln!(file, "{}", task_line("c")).unwrap();
    writeln!(file, "{{\"schema\": \"task/9\"}}").unwrap();
    let inputs = Inputs::open(&[first, second.clone()]).unwrap();
    assert_eq!(
        inputs.total_bytes(),
        Some(
            std::fs::metadata(dir.path().join("first.jsonl"))
                .unwrap()
                .len()
                + std::fs::metadata(&second).unwrap().len()
        )
    );
    let err = inputs
        .records::<Task>()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    assert_eq!(
        err.source.as_deref(),
        Some(second.display().to_string().as_str())
    );
    assert_eq!(err.line, Some(2));
    assert_eq!(err.field.as_deref(), Some("schema"));
}

#[test]
fn shards_partition_the_records() {
    let ids: Vec<String> = (0..300)
        .map(|n| format!("repo-1.0.op{}.{n:04}", n % 17))
        .collect();
    let text: String = ids.iter().map(|id| task_line(id) + "\n").collect();
    let mut union = Vec::new();
    for index in 0..4 {
        let shard = Shard { index, count: 4 };
        let part: Vec<String> = Inputs::from_reader("t.jsonl", std::io::Cursor::new(text.clone()))
            .records::<Task>()
            .allow_empty()
            .shard(Some(shard))
            .map(|task| task.unwrap().instance_id)
            .collect();
        assert!(
            part.len() > 30,
            "shard {shard} got only {} of 300",
            part.len()
        );
        union.extend(part);
    }
    union.sort();
    let mut all = ids;
    all.sort();
    assert_eq!(union, all);
}
