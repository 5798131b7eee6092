//! How records read, fail and round-trip.

use schemas::{AnyRecord, Record, RecordError, Skill, Task};
use serde_json::{Value, json};

fn task_json() -> Value {
    json!({
        "schema": "task/1",
        "instance_id": "toolz-1.2.0.cmp-swap.0001",
        "repo": "toolz-1.2.0",
        "bug_patch": "--- a/toolz/itertoolz.py\n+++ b/toolz/itertoolz.py\n",
        "gold_patch": "--- a/toolz/itertoolz.py\n+++ b/toolz/itertoolz.py\n",
        "problem_statement": "",
        "FAIL_TO_PASS": ["toolz/tests/test_itertoolz.py::test_second"],
        "PASS_TO_PASS": [],
        "test_cmd": "pytest toolz/tests",
        "provenance": {
            "strategy": "random",
            "skill_ids": [],
            "operator": "cmp-swap",
            "site": {"path": "toolz/itertoolz.py", "line": 120, "future_site_feature": [1, 2]},
            "round": 1,
            "seed": 7,
            "generator_note": {"nested": true}
        },
        "created_by": "a newer task-gen",
        "big": 18446744073709551615u64
    })
}

fn read_task(value: Value) -> Result<Task, RecordError> {
    Task::from_value(value)
}

#[test]
fn unknown_fields_survive_a_round_trip_at_every_depth() {
    let original = task_json();
    let task = read_task(original.clone()).unwrap();
    let written: Value = serde_json::from_str(&task.to_json_line()).unwrap();
    assert_eq!(written, original);
}

#[test]
fn swe_bench_field_names_are_kept() {
    let line = read_task(task_json()).unwrap().to_json_line();
    assert!(line.contains("\"FAIL_TO_PASS\":[\"toolz/tests/test_itertoolz.py::test_second\"]"));
    assert!(line.contains("\"PASS_TO_PASS\":[]"));
    assert!(line.contains("\"instance_id\""));
}

#[test]
fn a_wrong_type_names_the_field() {
    let mut value = task_json();
    value["FAIL_TO_PASS"] = json!(5);
    let err = read_task(value).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("FAIL_TO_PASS"), "{err}");
    assert!(err.message.contains("expected a list"), "{err}");
}

#[test]
fn a_wrong_type_inside_a_list_names_the_element() {
    let mut value = task_json();
    value["FAIL_TO_PASS"] = json!(["ok", 3]);
    let err = read_task(value).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("FAIL_TO_PASS[1]"), "{err}");
    assert!(err.message.contains("expected a string"), "{err}");
}

#[test]
fn a_wrong_type_in_a_nested_record_names_the_path() {
    let mut value = task_json();
    value["provenance"]["site"]["line"] = json!("120");
    let err = read_task(value).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("provenance.site.line"), "{err}");
}

#[test]
fn a_missing_field_is_named() {
    let mut value = task_json();
    value.as_object_mut().unwrap().remove("instance_id");
    let err = read_task(value).unwrap_err();
    assert_eq!(err.to_string(), "field instance_id: missing (required)");

    let mut value = task_json();
    value["provenance"]
        .as_object_mut()
        .unwrap()
        .remove("strategy");
    let err = read_task(value).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("provenance.strategy"), "{err}");
}

#[test]
fn a_newer_major_version_is_refused_before_the_fields_are_read() {
    let mut value = task_json();
    value["schema"] = json!("task/2");
    value["FAIL_TO_PASS"] = json!(5);
    let err = read_task(value).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("schema"));
    assert!(err.message.contains("newer"), "{err}");
}

#[test]
fn a_newer_minor_version_is_read() {
    let mut value = task_json();
    value["schema"] = json!("task/1.4");
    let task = read_task(value).unwrap();
    assert_eq!(task.schema, "task/1.4");
}

#[test]
fn a_record_without_a_schema_tag_is_refused() {
    let mut value = task_json();
    value.as_object_mut().unwrap().remove("schema");
    let err = read_task(value).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("schema"));
}

#[test]
fn a_line_that_is_no_object_is_refused() {
    let err = read_task(json!([1, 2])).unwrap_err();
    assert_eq!(err.to_string(), "expected a JSON object, found a list");
}

#[test]
fn any_record_dispatches_on_the_tag() {
    let record = AnyRecord::from_value(task_json()).unwrap();
    assert_eq!(record.kind(), "task");
    assert_eq!(record.id(), "toolz-1.2.0.cmp-swap.0001");
    let err = AnyRecord::from_value(json!({"schema": "patch/1"})).unwrap_err();
    assert!(err.message.contains("unknown record kind `patch`"), "{err}");
}

#[test]
fn skill_names_must_be_kebab_case_and_short() {
    let skill = |name: &str| {
        json!({
            "schema": "skill/1", "skill_id": "s1", "name": name,
            "description": "Comparison at a loop bound is off by one.",
            "evidence": {"support": 3, "failure_rate": 0.5}, "round": 1
        })
    };
    assert!(Skill::from_value(skill("off-by-one-loop-bound")).is_ok());
    for bad in ["Off-By-One", "off_by_one", "-off", "off--by", ""] {
        let err = Skill::from_value(skill(bad)).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("name"), "{bad}: {err}");
    }
    let err = Skill::from_value(skill(&"a".repeat(65))).unwrap_err();
    assert!(err.message.contains("64"), "{err}");
}

#[test]
fn an_instance_id_that_cannot_name_a_file_is_refused() {
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "nul\u{0}byte",
        "tab\there",
        &"x".repeat(201),
    ] {
        let mut value = task_json();
        value["instance_id"] = json!(bad);
        let err = read_task(value).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("instance_id"), "{bad:?}: {err}");
        assert!(err.message.contains("names files"), "{err}");
    }
    let mut value = task_json();
    value["instance_id"] = json!("django__django-11099 (ünïcode, spaces) v1.2");
    assert!(read_task(value).is_ok());
}

#[test]
fn a_repo_pins_its_source_by_a_real_sha256() {
    let repo = json!({
        "schema": "repo/1.1",
        "id": "wordkit-dir-afb249f9e841",
        "name": "wordkit",
        "version": "dir-afb249f9e841",
        "split": "train",
        "source": {"path": "/src/wordkit", "sha256": "afb249f9e841170be28ec59daed13830c6e1f951d0b2c7902dd768d380824aaf"},
        "root": "repos/wordkit-dir-afb249f9e841",
        "src_dirs": ["wordkit"],
        "test_cmd": "pytest -p no:cacheprovider -o pythonpath=.",
    });
    assert!(schemas::Repo::from_value(repo.clone()).is_ok());
    for (field, value, why) in [
        ("sha256", json!("notahash"), "not 64 lowercase hex digits"),
        (
            "sha256",
            json!("AFB249F9E841170BE28EC59DAED13830C6E1F951D0B2C7902DD768D380824AAF"),
            "lowercase",
        ),
    ] {
        let mut bad = repo.clone();
        bad["source"][field] = value;
        let err = schemas::Repo::from_value(bad).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("source.sha256"), "{err}");
        assert!(err.message.contains(why), "{err}");
    }
    let mut bad = repo.clone();
    bad["test_cmd"] = json!(" ");
    assert_eq!(
        schemas::Repo::from_value(bad).unwrap_err().field.as_deref(),
        Some("test_cmd")
    );
    let mut bad = repo;
    bad["id"] = json!("a/b");
    assert_eq!(
        schemas::Repo::from_value(bad).unwrap_err().field.as_deref(),
        Some("id")
    );
}
