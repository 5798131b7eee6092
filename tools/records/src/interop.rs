//! Task records to and from SWE-bench and SWE-smith task instances.
//!
//! A Task already uses SWE-bench's names (`instance_id`, `problem_statement`,
//! `FAIL_TO_PASS`, `PASS_TO_PASS`), so most fields move as they are:
//!
//! | instance | Task |
//! |---|---|
//! | `instance_id`, `repo`, `problem_statement` | the same fields |
//! | `FAIL_TO_PASS`, `PASS_TO_PASS` (a list, or a string holding one as JSON) | lists |
//! | SWE-bench `patch` (the fix) | `gold_patch`; `bug_patch` is its reverse |
//! | SWE-smith `patch` (the bug) | `bug_patch`; `gold_patch` is its reverse |
//! | every other field (`base_commit`, `test_patch`, `image_name`, …) | `extra`, same name |
//! | `socratic` {`schema`, `test_cmd`, `provenance`, `rejection`, a patch} | those Task fields |
//!
//! An instance has no test command or provenance: an import sets `test_cmd` to ""
//! and `provenance` to `{"strategy": "import", "imported_from": "<format>"}`. An
//! export writes the Task fields that an import would not rebuild under
//! `socratic`, so no round trip loses anything (see [`export`]).

use std::fmt;

use schemas::{Extra, Provenance, Record, RecordError, Repo, Task};
use serde_json::{Map, Value};

use crate::unidiff;

/// The instance field that carries the Task fields an instance has no place for.
pub const CARRIED: &str = "socratic";

/// The task-instance formats `records import` and `records export` speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// SWE-bench: `patch` fixes the bug in `base_commit`; `FAIL_TO_PASS` and
    /// `PASS_TO_PASS` are strings that hold a JSON list.
    Swebench,
    /// SWE-smith: `patch` introduces the bug; the test lists are lists.
    Swesmith,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Swebench => "swebench",
            Format::Swesmith => "swesmith",
        }
    }

    /// The Task patch that this format's `patch` does not hold, derived by reversal.
    fn derived_patch(self) -> &'static str {
        match self {
            Format::Swebench => "bug_patch",
            Format::Swesmith => "gold_patch",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The SWE-bench instance fields besides those a Task has under the same name, in
/// the order of the dataset. An export writes all of them ("" when the Task does
/// not know one); an import keeps the non-empty ones in `extra`.
const SWEBENCH_ONLY: &[&str] = &[
    "base_commit",
    "test_patch",
    "hints_text",
    "created_at",
    "version",
    "environment_setup_commit",
];

/// Fields of an instance that are written from Task fields and so cannot also come
/// from a Task's `extra`.
const WRITTEN_FROM_TASK: &[&str] = &[
    "instance_id",
    "repo",
    "patch",
    "problem_statement",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
    CARRIED,
];

/// Task fields that no instance field maps to; in an instance they travel under
/// [`CARRIED`] only.
const TASK_ONLY: &[&str] = &[
    "schema",
    "bug_patch",
    "gold_patch",
    "test_cmd",
    "provenance",
    "rejection",
];

/// The provenance of an imported task.
pub fn import_provenance(format: Format) -> Provenance {
    let mut extra = Extra::new();
    extra.insert("imported_from".into(), Value::from(format.name()));
    Provenance {
        strategy: "import".into(),
        operator: None,
        site: None,
        skill_ids: Vec::new(),
        round: 0,
        seed: 0,
        extra,
    }
}

/// Reads one task instance of `format` into a Task. Errors name the instance field
/// (`FAIL_TO_PASS`, `socratic.provenance.round`, …).
///
/// ```
/// use records::interop::{import, Format};
/// let instance = serde_json::json!({
///     "instance_id": "o__r-1", "repo": "o/r", "base_commit": "abc", "test_patch": "",
///     "problem_statement": "f(0) is wrong", "FAIL_TO_PASS": "[\"t.py::test_f\"]",
///     "PASS_TO_PASS": "[]", "patch": "",
/// });
/// let task = import(instance, Format::Swebench).unwrap();
/// assert_eq!(task.fail_to_pass, ["t.py::test_f"]);
/// assert_eq!(task.extra["base_commit"], "abc");
/// ```
pub fn import(value: Value, format: Format) -> Result<Task, RecordError> {
    let Value::Object(mut fields) = value else {
        return Err(RecordError::new(
            None,
            format!(
                "expected a JSON object (one {format} instance a line), found {}",
                json_kind(&value)
            ),
        ));
    };
    let mut carried = match fields.remove(CARRIED) {
        None => Map::new(),
        Some(Value::Object(carried)) => carried,
        Some(other) => {
            return Err(RecordError::field(
                CARRIED,
                format!("expected an object, found {}", json_kind(&other)),
            ));
        }
    };
    for key in carried.keys() {
        let allowed = [
            "schema",
            "test_cmd",
            "provenance",
            "rejection",
            format.derived_patch(),
        ];
        if !allowed.contains(&key.as_str()) {
            return Err(RecordError::field(
                format!("{CARRIED}.{key}"),
                format!(
                    "not a Task field a {format} instance carries (expected one of {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let from_carried: Vec<String> = carried.keys().cloned().collect();

    let instance_id = take_string(&mut fields, "instance_id")?;
    let repo = take_string(&mut fields, "repo")?;
    let patch = take_string(&mut fields, "patch")?;
    let problem_statement = match format {
        Format::Swebench => take_string(&mut fields, "problem_statement")?,
        Format::Swesmith if fields.contains_key("problem_statement") => {
            take_string(&mut fields, "problem_statement")?
        }
        Format::Swesmith => String::new(),
    };
    let fail_to_pass = take_tests(&mut fields, "FAIL_TO_PASS")?;
    let pass_to_pass = take_tests(&mut fields, "PASS_TO_PASS")?;
    if format == Format::Swebench {
        for name in ["base_commit", "test_patch"] {
            match fields.get(name) {
                Some(Value::String(_)) => {}
                Some(other) => {
                    return Err(RecordError::field(
                        name,
                        format!("expected a string, found {}", json_kind(other)),
                    ));
                }
                None => return Err(RecordError::field(name, "missing (required)")),
            }
        }
        // Empty ones come back as "" on export: keep the Task free of them.
        fields.retain(|name, value| !(SWEBENCH_ONLY.contains(&name.as_str()) && value == ""));
    }
    if let Some(name) = fields
        .keys()
        .find(|name| TASK_ONLY.contains(&name.as_str()))
    {
        return Err(RecordError::field(
            name.clone(),
            format!("a {format} instance has no such field; Task fields travel under `{CARRIED}`"),
        ));
    }

    let derived = match carried.remove(format.derived_patch()) {
        Some(carried) => carried,
        None => Value::from(unidiff::reverse(&patch).map_err(|err| {
            RecordError::field(
                "patch",
                format!(
                    "cannot reverse it into the {}: {err}",
                    format.derived_patch()
                ),
            )
        })?),
    };
    let (bug_patch, gold_patch) = match format {
        Format::Swebench => (derived, Value::from(patch)),
        Format::Swesmith => (Value::from(patch), derived),
    };
    let provenance =
        serde_json::to_value(import_provenance(format)).expect("provenance serializes");
    let mut task = Map::new();
    task.insert("schema".into(), Value::from(Task::tag()));
    task.insert("instance_id".into(), Value::from(instance_id));
    task.insert("repo".into(), Value::from(repo));
    task.insert("bug_patch".into(), bug_patch);
    task.insert("gold_patch".into(), gold_patch);
    task.insert("problem_statement".into(), Value::from(problem_statement));
    task.insert("FAIL_TO_PASS".into(), Value::from(fail_to_pass));
    task.insert("PASS_TO_PASS".into(), Value::from(pass_to_pass));
    task.insert("test_cmd".into(), Value::from(""));
    task.insert("provenance".into(), provenance);
    task.extend(carried);
    task.extend(fields);
    Task::from_value(Value::Object(task)).map_err(|mut err| {
        if let Some(field) = &err.field
            && from_carried.iter().any(|name| is_under(field, name))
        {
            err.field = Some(format!("{CARRIED}.{field}"));
        }
        err
    })
}

/// Writes a Task as a task instance of `format`; `repo` is the task's Repo record,
/// when known (it gives a SWE-bench export its `version`).
///
/// SWE-bench gets all twelve fields of its instances, with the test lists as JSON
/// strings the way Python's `json.dumps` writes them and "" for what the Task does
/// not know; SWE-smith gets its fields with lists. Fields in `extra` are written
/// back as they are. The Task fields that [`import`] would not rebuild (a test
/// command, a provenance other than the import's, a minor schema version, a
/// rejection, a bug patch that is not the reverse of the gold patch) go under
/// `socratic`, which is left out when there are none.
pub fn export(
    task: &Task,
    format: Format,
    repo: Option<&Repo>,
) -> Result<Map<String, Value>, RecordError> {
    let mut out = Map::new();
    match format {
        Format::Swebench => {
            out.insert("repo".into(), Value::from(task.repo.as_str()));
            out.insert("instance_id".into(), Value::from(task.instance_id.as_str()));
            out.insert("base_commit".into(), Value::from(""));
            out.insert("patch".into(), Value::from(task.gold_patch.as_str()));
            out.insert("test_patch".into(), Value::from(""));
            out.insert(
                "problem_statement".into(),
                Value::from(task.problem_statement.as_str()),
            );
            out.insert("hints_text".into(), Value::from(""));
            out.insert("created_at".into(), Value::from(""));
            let version = repo.map_or("", |repo| repo.version.as_str());
            out.insert("version".into(), Value::from(version));
            out.insert(
                "FAIL_TO_PASS".into(),
                Value::from(encode_tests(&task.fail_to_pass)),
            );
            out.insert(
                "PASS_TO_PASS".into(),
                Value::from(encode_tests(&task.pass_to_pass)),
            );
            out.insert("environment_setup_commit".into(), Value::from(""));
        }
        Format::Swesmith => {
            out.insert("instance_id".into(), Value::from(task.instance_id.as_str()));
            out.insert("repo".into(), Value::from(task.repo.as_str()));
            out.insert("patch".into(), Value::from(task.bug_patch.as_str()));
            out.insert(
                "FAIL_TO_PASS".into(),
                Value::from(task.fail_to_pass.clone()),
            );
            out.insert(
                "PASS_TO_PASS".into(),
                Value::from(task.pass_to_pass.clone()),
            );
            out.insert(
                "problem_statement".into(),
                Value::from(task.problem_statement.as_str()),
            );
        }
    }
    for (name, value) in &task.extra {
        if WRITTEN_FROM_TASK.contains(&name.as_str()) {
            return Err(RecordError::field(
                name.clone(),
                format!(
                    "an unknown Task field that clashes with the {format} field written from the Task"
                ),
            ));
        }
        out.insert(name.clone(), value.clone());
    }

    let mut carried = Map::new();
    if task.schema != Task::tag() {
        carried.insert("schema".into(), Value::from(task.schema.as_str()));
    }
    if !task.test_cmd.is_empty() {
        carried.insert("test_cmd".into(), Value::from(task.test_cmd.as_str()));
    }
    if task.provenance != import_provenance(format) {
        let provenance = serde_json::to_value(&task.provenance).expect("provenance serializes");
        carried.insert("provenance".into(), provenance);
    }
    if let Some(rejection) = &task.rejection {
        let rejection = serde_json::to_value(rejection).expect("rejection serializes");
        carried.insert("rejection".into(), rejection);
    }
    let (patch, derived) = match format {
        Format::Swebench => (&task.gold_patch, &task.bug_patch),
        Format::Swesmith => (&task.bug_patch, &task.gold_patch),
    };
    if unidiff::reverse(patch).ok().as_ref() != Some(derived) {
        carried.insert(format.derived_patch().into(), Value::from(derived.as_str()));
    }
    if !carried.is_empty() {
        out.insert(CARRIED.into(), Value::Object(carried));
    }
    Ok(out)
}

/// A test list as SWE-bench stores it: a string that Python's `json.dumps` wrote
/// (`", "` between items, non-ASCII characters as `\uXXXX`).
///
/// ```
/// let tests = ["t.py::test_a".to_string(), "t.py::test_b[ü]".to_string()];
/// assert_eq!(records::interop::encode_tests(&tests), r#"["t.py::test_a", "t.py::test_b[\u00fc]"]"#);
/// ```
pub fn encode_tests(tests: &[String]) -> String {
    let mut out = String::from("[");
    for (n, test) in tests.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        let json = serde_json::to_string(test).expect("strings serialize");
        for ch in json.chars() {
            if ch.is_ascii() && ch != '\x7f' {
                out.push(ch);
            } else {
                for unit in ch.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push(']');
    out
}

/// Removes the test list `name` from `fields`: a list of strings, or a string that
/// holds one as JSON.
fn take_tests(fields: &mut Map<String, Value>, name: &str) -> Result<Vec<String>, RecordError> {
    let expected = "expected a list of test ids, or a string that holds one as JSON";
    let items = match fields.remove(name) {
        None => return Err(RecordError::field(name, "missing (required)")),
        Some(Value::Array(items)) => items,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items,
            _ => {
                return Err(RecordError::field(
                    name,
                    format!("{expected}; found the string {}", quote_start(&text)),
                ));
            }
        },
        Some(other) => {
            return Err(RecordError::field(
                name,
                format!("{expected}; found {}", json_kind(&other)),
            ));
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(n, item)| match item {
            Value::String(test) => Ok(test),
            other => Err(RecordError::field(
                format!("{name}[{n}]"),
                format!("expected a string (a test id), found {}", json_kind(&other)),
            )),
        })
        .collect()
}

/// Removes the required string field `name` from `fields`.
fn take_string(fields: &mut Map<String, Value>, name: &str) -> Result<String, RecordError> {
    match fields.remove(name) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(RecordError::field(
            name,
            format!("expected a string, found {}", json_kind(&other)),
        )),
        None => Err(RecordError::field(name, "missing (required)")),
    }
}

/// Whether the field path `path` is `name` or lies under it.
fn is_under(path: &str, name: &str) -> bool {
    path.strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// The start of `text`, quoted, for a message.
fn quote_start(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn example_tasks() -> Vec<Task> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/task.jsonl");
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|line| Task::from_value(serde_json::from_str(line).unwrap()).unwrap())
            .collect()
    }

    fn swebench_instance() -> Value {
        json!({
            "repo": "pytoolz/toolz",
            "instance_id": "pytoolz__toolz-7",
            "base_commit": "4f1ad5e2cb6b32c7e5ec8cfa6e1b8d0c8f8a2f10",
            "patch": "--- a/toolz/itertoolz.py\n+++ b/toolz/itertoolz.py\n@@ -1 +1 @@\n-    seq = iter(seq[1:])\n+    seq = iter(seq)\n",
            "test_patch": "",
            "problem_statement": "second() skips an item",
            "hints_text": "",
            "created_at": "2023-05-02T18:21:04Z",
            "version": "0.12",
            "FAIL_TO_PASS": "[\"toolz/tests/test_itertoolz.py::test_second\"]",
            "PASS_TO_PASS": "[]",
            "environment_setup_commit": "4f1ad5e2cb6b32c7e5ec8cfa6e1b8d0c8f8a2f10",
        })
    }

    #[test]
    fn swebench_import_reverses_the_fix_into_the_bug_and_keeps_the_rest() {
        let task = import(swebench_instance(), Format::Swebench).unwrap();
        assert_eq!(task.gold_patch, swebench_instance()["patch"]);
        assert_eq!(task.bug_patch, unidiff::reverse(&task.gold_patch).unwrap());
        assert_eq!(
            task.fail_to_pass,
            ["toolz/tests/test_itertoolz.py::test_second"]
        );
        assert_eq!(task.provenance, import_provenance(Format::Swebench));
        assert_eq!(task.test_cmd, "");
        let kept: Vec<&str> = task.extra.keys().map(String::as_str).collect();
        assert_eq!(kept.len(), 4, "{kept:?}");
        for name in [
            "base_commit",
            "created_at",
            "version",
            "environment_setup_commit",
        ] {
            assert!(kept.contains(&name), "{name} missing from {kept:?}");
        }
        task.validate().unwrap();
    }

    #[test]
    fn swesmith_import_takes_the_patch_as_the_bug() {
        let instance = json!({
            "instance_id": "pytoolz__toolz.4a2b8c1d.func_pm_op_swap__k2m",
            "repo": "swesmith/pytoolz__toolz.4a2b8c1d",
            "patch": "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-a\n+b\n",
            "FAIL_TO_PASS": ["t.py::test_a"],
            "PASS_TO_PASS": ["t.py::test_b"],
            "image_name": "jyangballin/swesmith.x86_64.pytoolz_1776_toolz.4a2b8c1d",
        });
        let task = import(instance.clone(), Format::Swesmith).unwrap();
        assert_eq!(task.bug_patch, instance["patch"]);
        assert_eq!(
            task.gold_patch,
            "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-b\n+a\n"
        );
        assert_eq!(task.problem_statement, "");
        assert_eq!(task.extra["image_name"], instance["image_name"]);
        let back = export(&task, Format::Swesmith, None).unwrap();
        let mut expected = instance.as_object().unwrap().clone();
        expected.insert("problem_statement".into(), Value::from(""));
        assert_eq!(back, expected);
    }

    #[test]
    fn every_example_task_survives_both_formats() {
        for format in [Format::Swebench, Format::Swesmith] {
            for task in example_tasks() {
                let instance = export(&task, format, None).unwrap();
                let back = import(Value::Object(instance.clone()), format)
                    .unwrap_or_else(|err| panic!("{format} {}: {err}", task.instance_id));
                assert_eq!(back, task, "{format}: {instance:?}");
            }
        }
    }

    #[test]
    fn an_imported_task_exports_without_carried_fields() {
        let task = import(swebench_instance(), Format::Swebench).unwrap();
        let instance = export(&task, Format::Swebench, None).unwrap();
        assert_eq!(Value::Object(instance), swebench_instance());
    }

    #[test]
    fn swebench_export_fills_every_field_and_takes_the_version_from_the_repo() {
        let task = &example_tasks()[1];
        let line = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/repo.jsonl"
        ))
        .unwrap();
        let repo =
            Repo::from_value(serde_json::from_str(line.lines().next().unwrap()).unwrap()).unwrap();
        assert_eq!(repo.id, task.repo);
        let instance = export(task, Format::Swebench, Some(&repo)).unwrap();
        for name in SWEBENCH_ONLY {
            assert!(instance.contains_key(*name), "{name}");
        }
        assert_eq!(instance["version"], "8.0.2");
        assert_eq!(instance["patch"], task.gold_patch.as_str());
        assert_eq!(
            instance["FAIL_TO_PASS"],
            "[\"tests/test_cache.py::CacheTest::test_cache_maxsize\", \"tests/test_lru.py::LRUCacheTest::test_lru_getsizeof\"]"
        );
        let carried = instance[CARRIED].as_object().unwrap();
        let names: Vec<&str> = carried.keys().map(String::as_str).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names.contains(&"test_cmd") && names.contains(&"provenance"),
            "{names:?}"
        );
    }

    #[test]
    fn a_bug_patch_that_is_not_the_reverse_travels_along() {
        let mut task = example_tasks().remove(0);
        task.bug_patch = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-1\n+2\n".into();
        let instance = export(&task, Format::Swebench, None).unwrap();
        assert_eq!(instance[CARRIED]["bug_patch"], task.bug_patch.as_str());
        assert_eq!(
            import(Value::Object(instance), Format::Swebench).unwrap(),
            task
        );
    }

    #[test]
    fn test_lists_are_encoded_like_python_json_dumps() {
        assert_eq!(encode_tests(&[]), "[]");
        let tests = ["a\"b\\c\td\u{7f}".to_string(), "😀".to_string()];
        assert_eq!(
            encode_tests(&tests),
            r#"["a\"b\\c\td\u007f", "\ud83d\ude00"]"#
        );
        let decoded: Vec<String> = serde_json::from_str(&encode_tests(&tests)).unwrap();
        assert_eq!(decoded, tests);
    }

    #[test]
    fn bad_instances_name_the_field() {
        let cases: Vec<(Value, Format, &str, &str)> = vec![
            (json!([1]), Format::Swebench, "", "expected a JSON object"),
            (
                remove(swebench_instance(), "test_patch"),
                Format::Swebench,
                "test_patch",
                "missing",
            ),
            (
                remove(swebench_instance(), "problem_statement"),
                Format::Swebench,
                "problem_statement",
                "missing",
            ),
            (
                set(
                    swebench_instance(),
                    "FAIL_TO_PASS",
                    json!("tests/test_x.py::test_a"),
                ),
                Format::Swebench,
                "FAIL_TO_PASS",
                "found the string",
            ),
            (
                set(swebench_instance(), "FAIL_TO_PASS", json!("{\"a\": 1}")),
                Format::Swebench,
                "FAIL_TO_PASS",
                "a list of test ids",
            ),
            (
                set(swebench_instance(), "PASS_TO_PASS", json!(["ok", 3])),
                Format::Swesmith,
                "PASS_TO_PASS[1]",
                "expected a string",
            ),
            (
                set(swebench_instance(), "PASS_TO_PASS", Value::Null),
                Format::Swebench,
                "PASS_TO_PASS",
                "found null",
            ),
            (
                set(swebench_instance(), "instance_id", json!(7)),
                Format::Swebench,
                "instance_id",
                "expected a string",
            ),
            (
                set(swebench_instance(), "test_cmd", json!("pytest")),
                Format::Swebench,
                "test_cmd",
                "socratic",
            ),
            (
                set(swebench_instance(), "patch", json!("GIT binary patch\n")),
                Format::Swebench,
                "patch",
                "binary",
            ),
            (
                set(
                    swebench_instance(),
                    CARRIED,
                    json!({"provenance": {"strategy": "x", "round": -1}}),
                ),
                Format::Swebench,
                "socratic.provenance.round",
                "",
            ),
            (
                set(swebench_instance(), CARRIED, json!({"gold_patch": ""})),
                Format::Swebench,
                "socratic.gold_patch",
                "expected one of",
            ),
            (
                set(swebench_instance(), CARRIED, json!({"schema": "task/2"})),
                Format::Swebench,
                "socratic.schema",
                "newer",
            ),
            (
                set(swebench_instance(), CARRIED, json!({"bug_patch": 1})),
                Format::Swebench,
                "socratic.bug_patch",
                "expected a string",
            ),
        ];
        for (value, format, field, fragment) in cases {
            let err = import(value.clone(), format).unwrap_err();
            assert_eq!(err.field.as_deref().unwrap_or(""), field, "{value}: {err}");
            assert!(err.message.contains(fragment), "{value}: {err}");
        }
    }

    fn set(mut value: Value, name: &str, to: Value) -> Value {
        value[name] = to;
        value
    }

    fn remove(mut value: Value, name: &str) -> Value {
        value.as_object_mut().unwrap().remove(name);
        value
    }
}
