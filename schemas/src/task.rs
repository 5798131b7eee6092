//! `task/1`: a repair task, a superset of a SWE-bench / SWE-smith instance.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::record::{Extra, Record, RecordError};

/// A bug in a real repository, the patch that repairs it, and the tests that tell.
///
/// Field names and meanings follow SWE-bench: `instance_id`, `problem_statement`,
/// `FAIL_TO_PASS` (tests that fail with the bug and pass after the repair) and
/// `PASS_TO_PASS` (tests that pass either way). A candidate from `task-gen` has the
/// two lists empty until `task-validate` fills them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "Task",
    description = "A repair task: bug patch, gold patch and the tests that tell"
)]
pub struct Task {
    /// `task/1`.
    #[schemars(regex(pattern = r"^task/1(\.[0-9]+)?$"))]
    pub schema: String,
    /// Unique id; also a file name (trajectories, shards): 1 to 200 bytes, no `/`,
    /// no control characters, not `.` or `..`.
    #[schemars(regex(pattern = r"^[^/\x00-\x1f\x7f]{1,200}$"))]
    pub instance_id: String,
    /// Id of the Repo record the task lives in.
    pub repo: String,
    /// Unified diff (`a/`, `b/` prefixes) that turns the clean code into the buggy code.
    pub bug_patch: String,
    /// Unified diff that repairs the buggy code: the exact inverse of `bug_patch`.
    pub gold_patch: String,
    /// What a user would report: failing tests and their messages, never the fix.
    #[serde(default)]
    pub problem_statement: String,
    #[serde(rename = "FAIL_TO_PASS", default)]
    pub fail_to_pass: Vec<String>,
    #[serde(rename = "PASS_TO_PASS", default)]
    pub pass_to_pass: Vec<String>,
    /// The pytest command line run from the repository root; empty: the Repo's.
    pub test_cmd: String,
    pub provenance: Provenance,
    /// Set on the candidates that `task-validate` writes to its rejects file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Task {
    /// The test command this task runs: its own, or `repo_test_cmd` (its Repo's) when it
    /// carries none (an imported instance).
    pub fn test_cmd_or<'a>(&'a self, repo_test_cmd: &'a str) -> &'a str {
        if self.test_cmd.trim().is_empty() {
            repo_test_cmd
        } else {
            &self.test_cmd
        }
    }

    /// SWE-bench's `test_patch`, kept by an import among the unknown fields: the tests
    /// that tell, applied to the working copy before every test run (never shown to the
    /// solver), as the SWE-bench harness does. `None` when absent or empty.
    pub fn test_patch(&self) -> Option<&str> {
        self.extra
            .get("test_patch")
            .and_then(serde_json::Value::as_str)
            .filter(|patch| !patch.trim().is_empty())
    }
}

/// Which gate of `task-validate` refused a candidate, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rejection {
    pub stage: GateStage,
    pub reason: String,
}

/// The gates of `task-validate`, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GateStage {
    /// The patches parse and apply, touched files exist, the gold patch reverses the bug.
    Format,
    /// The selected tests pass on the clean code.
    Clean,
    /// With the bug, at least one test fails and no other breaks.
    Bug,
    /// With the gold patch, all tests pass again.
    Gold,
    /// The failing tests fail again on a rerun in another order.
    Reproducible,
}

impl GateStage {
    pub fn as_str(self) -> &'static str {
        match self {
            GateStage::Format => "format",
            GateStage::Clean => "clean",
            GateStage::Bug => "bug",
            GateStage::Gold => "gold",
            GateStage::Reproducible => "reproducible",
        }
    }
}

/// How a task was made: which strategy, operator, site and skills, in which round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Provenance {
    /// `random` (fixed mutation), `skill` (skill-guided), `import`, …
    pub strategy: String,
    /// Bug operator id, e.g. `cmp-swap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
    #[serde(default)]
    pub skill_ids: Vec<String>,
    #[serde(default)]
    pub round: u32,
    #[serde(default)]
    pub seed: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The place in the source where the bug was injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Site {
    /// File path relative to the repository root.
    pub path: String,
    /// 1-based first line of the edited node.
    pub line: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    /// Qualified name of the enclosing function, e.g. `Cache.pop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// tree-sitter node kind of the edited node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Record for Task {
    const KIND: &'static str = "task";
    const MAJOR: u32 = 1;

    fn id(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.instance_id)
    }

    fn validate(&self) -> Result<(), RecordError> {
        file_name_id(&self.instance_id)
            .map_err(|why| RecordError::field("instance_id", format!("{why}: it names files")))
    }
}

/// Why `id` cannot be a file name, if it cannot.
pub(crate) fn file_name_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is empty".into());
    }
    if id.len() > 200 {
        return Err(format!("is {} bytes long (at most 200)", id.len()));
    }
    if id == "." || id == ".." {
        return Err(format!("is `{id}`"));
    }
    if let Some(c) = id.chars().find(|c| *c == '/' || c.is_ascii_control()) {
        return Err(format!("holds {c:?}"));
    }
    Ok(())
}
