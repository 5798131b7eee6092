//! The [`Record`] trait: what every record kind shares.

use std::borrow::Cow;
use std::fmt;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::tag::SchemaTag;

/// Fields of a record that this build does not know; written back unchanged.
pub type Extra = serde_json::Map<String, Value>;

/// Why one JSON value is not a valid record; `field` is a path such as
/// `provenance.site.line` or `FAIL_TO_PASS[2]` when the fault has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub field: Option<String>,
    pub message: String,
}

impl RecordError {
    pub fn new(field: Option<String>, message: impl Into<String>) -> Self {
        RecordError {
            field,
            message: message.into(),
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        RecordError::new(Some(field.into()), message)
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field {field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for RecordError {}

/// A record kind of the pipeline.
pub trait Record: Serialize + DeserializeOwned + JsonSchema + Sized {
    /// The kind in the schema tag, e.g. `task`.
    const KIND: &'static str;
    /// The major version this build reads and writes.
    const MAJOR: u32;
    /// The minor version this build writes: it only adds optional fields, so any
    /// minor of [`Record::MAJOR`] is read.
    const MINOR: u32 = 0;

    /// The stable id used for sharding and joins (`instance_id` for a task).
    fn id(&self) -> Cow<'_, str>;

    /// Checks that the types cannot express (lengths, ranges, name shapes).
    fn validate(&self) -> Result<(), RecordError> {
        Ok(())
    }

    /// The tag that new records of this kind carry, e.g. `task/1` or `trace/1.1`.
    fn tag() -> String {
        match Self::MINOR {
            0 => format!("{}/{}", Self::KIND, Self::MAJOR),
            minor => format!("{}/{}.{minor}", Self::KIND, Self::MAJOR),
        }
    }

    /// Reads a record from a parsed JSON value: checks the schema tag first (so a
    /// record of another kind or a newer major gets that message, not a field error),
    /// then the fields, then [`Record::validate`].
    fn from_value(value: Value) -> Result<Self, RecordError> {
        check_tag(&value, Self::KIND, Self::MAJOR)?;
        let record: Self = serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            describe_serde_error(&path, &err.into_inner().to_string())
        })?;
        record.validate()?;
        Ok(record)
    }

    /// Writes the record as one JSON line (without the newline).
    fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("records serialize to JSON")
    }
}

/// Reads the `schema` field of `value` and checks it against `kind`/`major`.
pub(crate) fn check_tag(value: &Value, kind: &str, major: u32) -> Result<SchemaTag, RecordError> {
    SchemaTag::check(schema_field(value)?, kind, major)
        .map_err(|err| RecordError::field("schema", err.to_string()))
}

/// The `schema` string of a record, or why there is none.
pub(crate) fn schema_field(value: &Value) -> Result<&str, RecordError> {
    let object = value.as_object().ok_or_else(|| {
        RecordError::new(
            None,
            format!("expected a JSON object, found {}", json_kind(value)),
        )
    })?;
    match object.get("schema") {
        Some(Value::String(tag)) => Ok(tag),
        Some(other) => Err(RecordError::field(
            "schema",
            format!(
                "expected a string such as \"task/1\", found {}",
                json_kind(other)
            ),
        )),
        None => Err(RecordError::field(
            "schema",
            "missing (every record carries one)",
        )),
    }
}

/// Turns serde's wording into the JSON terms a user of the files knows, and moves
/// the name of a missing field into the field position.
fn describe_serde_error(path: &str, message: &str) -> RecordError {
    let message = message
        .replace("a sequence", "a list")
        .replace("a map", "an object")
        .replace("a boolean", "true or false");
    let message = translate_rust_types(&message);
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        let field = if path == "." {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        return RecordError::field(field, "missing (required)");
    }
    let field = (path != ".").then(|| path.to_string());
    RecordError::new(field, message)
}

fn translate_rust_types(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, json) in [
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
        ("expected i64", "expected an integer"),
    ] {
        out = out.replace(rust, json);
    }
    if let Some(idx) = out.find("expected struct ") {
        out.replace_range(idx.., "expected an object");
    }
    out
}

/// `an object`, `a string`, … for messages about a JSON value.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
