//! Record types of the socratic-swe pipeline: the contract between stages.
//!
//! Every stage reads and writes JSON Lines; each line is one record that carries
//! `"schema": "<kind>/<major>[.<minor>]"`. The Rust types here are the single source
//! of truth; the JSON Schemas under `schemas/json/` are generated from them
//! ([`json_schema`]) and a test fails when the checked-in files drift.
//!
//! Records keep the fields they do not know in `extra`, so a stage that passes a
//! record through loses nothing that a newer stage (or a user's own tool) added.
//!
//! ```
//! use schemas::{Record, Task};
//! let line = r#"{"schema":"task/1","instance_id":"toolz-1.2.0.cmp.0001","repo":"toolz-1.2.0",
//!   "bug_patch":"","gold_patch":"","test_cmd":"pytest",
//!   "provenance":{"strategy":"random"},"note":"kept as is"}"#;
//! let value: serde_json::Value = serde_json::from_str(line).unwrap();
//! let task = Task::from_value(value).unwrap();
//! assert_eq!(task.id(), "toolz-1.2.0.cmp.0001");
//! assert_eq!(task.extra["note"], "kept as is");
//! ```

mod any;
mod checkpoint;
pub mod json_schema;
mod record;
mod repo;
mod report;
mod score;
mod skill;
mod tag;
mod task;
mod trace;

pub use any::AnyRecord;
pub use checkpoint::{Checkpoint, DataRef};
pub use record::{Extra, Record, RecordError};
pub use repo::{Executor, Repo, Source, Split};
pub use report::{RewardStats, RoundReport, SolveRate, StageReport};
pub use score::Score;
pub use skill::{Condition, ConditionOp, Evidence, Operation, Phase, Skill};
pub use tag::{KINDS, SchemaTag, TagError};
pub use task::{GateStage, Provenance, Rejection, Site, Task};
pub use trace::{
    Analysis, Cost, Localization, Outcome, OutcomeStatus, Sampling, SolverInfo, Step,
    SuspiciousFunction, SuspiciousLine, TestCounts, Trace,
};
