//! JSON Schemas of the record kinds, generated from the Rust types.
//!
//! The checked-in copies live in `schemas/json/<kind>.schema.json`; regenerate them
//! with `just schemas` after changing a type.

use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::Value;

use crate::{Checkpoint, Record, Repo, RoundReport, Score, Skill, Task, Trace};

/// The JSON Schema (draft 2020-12) of one record type.
pub fn of<R: Record + JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<R>();
    serde_json::to_value(schema).expect("schemas serialize")
}

/// `(kind, schema)` for every record kind, in pipeline order.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        (Repo::KIND, of::<Repo>()),
        (Task::KIND, of::<Task>()),
        (Trace::KIND, of::<Trace>()),
        (Skill::KIND, of::<Skill>()),
        (Score::KIND, of::<Score>()),
        (Checkpoint::KIND, of::<Checkpoint>()),
        (RoundReport::KIND, of::<RoundReport>()),
    ]
}

/// The file name of a kind's schema under `schemas/json/`.
pub fn file_name(kind: &str) -> String {
    format!("{kind}.schema.json")
}

/// The exact text of a checked-in schema file: pretty JSON and a final newline.
pub fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("schemas serialize");
    text.push('\n');
    text
}
