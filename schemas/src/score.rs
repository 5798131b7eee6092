//! `score/1`: the solver-gradient alignment reward of one task.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::record::{Extra, Record, RecordError};

/// How well learning from a task moves the solver toward fixing what it still fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "Score",
    description = "The solver-gradient alignment reward of one task"
)]
pub struct Score {
    /// `score/1`.
    #[schemars(regex(pattern = r"^score/1(\.[0-9]+)?$"))]
    pub schema: String,
    pub instance_id: String,
    /// Passed the execution gate.
    pub valid: bool,
    /// Cosine between the task's projected gradient and the target direction, in [-1, 1].
    #[schemars(range(min = -1.0, max = 1.0))]
    pub alignment: f64,
    /// validity × alignment.
    pub reward: f64,
    /// L2 norm of the compared (unprojected) gradient: of the `--params` subset, or its Adam
    /// step under `--precondition adam` (then named in `params` / `precondition`).
    #[schemars(range(min = 0.0))]
    pub grad_norm: f64,
    /// Id of the target direction the cosine was taken with.
    pub target_id: String,
    /// Checkpoint whose gradients were scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Record for Score {
    const KIND: &'static str = "score";
    const MAJOR: u32 = 1;

    fn id(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.instance_id)
    }

    fn validate(&self) -> Result<(), RecordError> {
        if !(-1.0..=1.0).contains(&self.alignment) {
            return Err(RecordError::field(
                "alignment",
                "a cosine must lie in [-1, 1]",
            ));
        }
        if self.grad_norm < 0.0 {
            return Err(RecordError::field("grad_norm", "a norm cannot be negative"));
        }
        Ok(())
    }
}
