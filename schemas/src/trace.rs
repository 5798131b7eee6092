//! `trace/1`: one attempt of the solver at one task.
//!
//! 1.1 adds `error`, `localization` and `analysis` (all optional).

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::record::{Extra, Record};

/// Every action and observation of one solving attempt, the submitted patch and
/// how it fared on the task's tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Trace", description = "One attempt of the solver at one task")]
pub struct Trace {
    /// `trace/1` or `trace/1.1`.
    #[schemars(regex(pattern = r"^trace/1(\.[0-9]+)?$"))]
    pub schema: String,
    pub trace_id: String,
    pub instance_id: String,
    pub solver: SolverInfo,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The submitted patch (unified diff); empty when nothing was submitted.
    #[serde(default)]
    pub patch: String,
    pub outcome: Outcome,
    #[serde(default)]
    pub cost: Cost,
    /// Set when the attempt could not be made (a missing repository, a sandbox
    /// failure): an error of the harness, not a failure of the solver. (1.1)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the solver looked for the bug, most suspicious first. (1.1)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localization: Option<Localization>,
    /// Facts about the task for analysis (the bug's true place, its operator):
    /// written after the attempt, never shown to the solver. (1.1)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The ranking of suspicious code that the solver worked from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Localization {
    /// How the ranking was made, e.g. `ochiai+traceback`.
    pub method: String,
    /// The most suspicious lines.
    pub lines: Vec<SuspiciousLine>,
    /// The most suspicious functions (module-level code counts as `<module>`).
    pub functions: Vec<SuspiciousFunction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuspiciousLine {
    pub path: String,
    /// 1-based, in the buggy file.
    pub line: u32,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SuspiciousFunction {
    pub path: String,
    pub name: String,
    pub start_line: u32,
    pub end_line: u32,
    pub score: f64,
}

/// What is known about the task but hidden from the solver.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Analysis {
    pub repo: String,
    /// The bug operator and its family, from the task's provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// The file and first buggy line that the gold patch repairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bug_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bug_line: Option<u32>,
    /// 1-based rank of the bug's line and of its function in the localization;
    /// absent when it was not ranked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_rank: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_rank: Option<u32>,
    /// Whether the gold repair was among the candidate edits the solver chose from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold_proposed: Option<bool>,
}

/// Which solver made the attempt and how it sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SolverInfo {
    /// `model:<checkpoint path>` or `openai:<base url>#<model>`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    #[serde(default)]
    pub sampling: Sampling,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
    /// Candidate edits sampled per step.
    pub k: u32,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 1.0,
            top_p: 1.0,
            k: 1,
            seed: 0,
        }
    }
}

/// One action of the agent and what it observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// What the agent did, e.g. `localize`, `edit toolz/itertoolz.py:120`, `run_tests`.
    pub action: String,
    #[serde(default)]
    pub observation: String,
    /// Test results when the action ran tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCounts>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TestCounts {
    pub passed: u32,
    pub failed: u32,
    #[serde(default)]
    pub error: u32,
    #[serde(default)]
    pub skipped: u32,
    /// Node ids of the tests that failed or errored.
    #[serde(default)]
    pub failing: Vec<String>,
}

/// How the submitted patch fared on the task's FAIL_TO_PASS and PASS_TO_PASS tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// All FAIL_TO_PASS pass and no PASS_TO_PASS fails.
    pub resolved: bool,
    pub f2p_passed: u32,
    pub f2p_total: u32,
    pub p2p_failed: u32,
    pub p2p_total: u32,
}

/// The three outcomes that the reports count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeStatus {
    Resolved,
    /// Some FAIL_TO_PASS tests pass, but not all, or a PASS_TO_PASS test broke.
    Partial,
    Failed,
}

impl Outcome {
    pub fn status(&self) -> OutcomeStatus {
        if self.resolved {
            OutcomeStatus::Resolved
        } else if self.f2p_passed > 0 {
            OutcomeStatus::Partial
        } else {
            OutcomeStatus::Failed
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cost {
    pub tokens: u64,
    pub seconds: f64,
}

impl Record for Trace {
    const KIND: &'static str = "trace";
    const MAJOR: u32 = 1;
    const MINOR: u32 = 1;

    fn id(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.trace_id)
    }
}
