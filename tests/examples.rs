//! `examples/<kind>.jsonl` are valid for both the Rust types and the checked-in
//! JSON Schemas, and pass through the types without changing.

use e2e::{example_file, schema_file};
use schemas::{AnyRecord, KINDS};
use serde_json::Value;

fn example_lines(kind: &str) -> Vec<(usize, Value)> {
    let path = example_file(kind);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let lines: Vec<_> = text
        .lines()
        .enumerate()
        .map(|(n, line)| {
            let value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("{}:{}: {err}", path.display(), n + 1));
            (n + 1, value)
        })
        .collect();
    assert!(lines.len() >= 2, "{} needs a few records", path.display());
    lines
}

#[test]
fn every_kind_has_valid_examples_for_the_types_and_round_trips_exactly() {
    for kind in KINDS {
        for (line, value) in example_lines(kind) {
            let record = AnyRecord::from_value(value.clone())
                .unwrap_or_else(|err| panic!("examples/{kind}.jsonl:{line}: {err}"));
            assert_eq!(record.kind(), *kind, "examples/{kind}.jsonl:{line}");
            let written: Value = serde_json::from_str(&record.to_json_line()).unwrap();
            assert_eq!(
                written, value,
                "examples/{kind}.jsonl:{line} changed on a round trip"
            );
        }
    }
}

#[test]
fn every_example_satisfies_the_checked_in_json_schema() {
    for kind in KINDS {
        let path = schema_file(kind);
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        for (line, value) in example_lines(kind) {
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|err| format!("{} at {}", err, err.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "examples/{kind}.jsonl:{line}: {errors:?}"
            );
        }
    }
}

#[test]
fn json_schemas_reject_what_the_types_reject() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_file("task")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let (_, mut task) = example_lines("task").remove(0);
    task["FAIL_TO_PASS"] = Value::from(5);
    assert!(!validator.is_valid(&task));
    task["FAIL_TO_PASS"] = Value::Array(vec![]);
    task["schema"] = Value::from("task/2");
    assert!(
        !validator.is_valid(&task),
        "a newer major passed the JSON Schema"
    );
    assert!(AnyRecord::from_value(task).is_err());
}
