//! `skill/1`: a recurring failure mode of the solver and how to repair it.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::{Extra, Record, RecordError};

pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// A skill distilled from traces: where it applies, how the bug arises and is
/// repaired, and the evidence behind it. Exports as an Agent Skill (`SKILL.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "Skill",
    description = "A recurring failure mode of the solver, where it applies and how to repair it"
)]
pub struct Skill {
    /// `skill/1`.
    #[schemars(regex(pattern = r"^skill/1(\.[0-9]+)?$"))]
    pub schema: String,
    pub skill_id: String,
    /// kebab-case, at most 64 characters.
    #[schemars(regex(pattern = r"^[a-z0-9]+(-[a-z0-9]+)*$"), length(max = 64))]
    pub name: String,
    /// What goes wrong and how to repair it, at most 1024 characters.
    #[schemars(length(max = 1024))]
    pub description: String,
    /// All must hold at a site for the skill to apply there.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Ordered steps: how the bug arises, how to localize it, how to repair it.
    #[serde(default)]
    pub operations: Vec<Operation>,
    pub evidence: Evidence,
    /// The round that last updated the skill.
    pub round: u32,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A test on one site feature, e.g. `{"feature": "node_kind", "op": "in", "value": ["comparison_operator"]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Condition {
    pub feature: String,
    pub op: ConditionOp,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOp {
    Eq,
    Ne,
    In,
    NotIn,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Operation {
    pub phase: Phase,
    pub text: String,
    /// Bug operator ids that produce this kind of bug.
    #[serde(default)]
    pub operators: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// How the bug arises.
    Arise,
    /// How to find it.
    Localize,
    /// How to repair it.
    Repair,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Evidence {
    /// Number of traces the skill covers.
    pub support: u32,
    /// Share of those traces the solver failed, in [0, 1].
    #[schemars(range(min = 0.0, max = 1.0))]
    pub failure_rate: f64,
    #[serde(default)]
    pub trace_ids: Vec<String>,
}

impl Record for Skill {
    const KIND: &'static str = "skill";
    const MAJOR: u32 = 1;

    fn id(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.skill_id)
    }

    fn validate(&self) -> Result<(), RecordError> {
        let kebab = !self.name.is_empty()
            && self.name.split('-').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !kebab {
            return Err(RecordError::field(
                "name",
                format!("`{}` is not kebab-case", self.name),
            ));
        }
        if self.name.chars().count() > MAX_NAME_CHARS {
            return Err(RecordError::field(
                "name",
                format!("longer than {MAX_NAME_CHARS} characters"),
            ));
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(RecordError::field(
                "description",
                format!("longer than {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        if !(0.0..=1.0).contains(&self.evidence.failure_rate) {
            return Err(RecordError::field(
                "evidence.failure_rate",
                "must lie in [0, 1]",
            ));
        }
        Ok(())
    }
}
