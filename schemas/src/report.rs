//! `round-report/1`: what one round of one strategy produced and cost.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::record::{Extra, Record};

/// Counts, times and solve rates of one round of one strategy and seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "RoundReport",
    description = "What one round of one strategy produced and cost"
)]
pub struct RoundReport {
    /// `round-report/1`.
    #[schemars(regex(pattern = r"^round-report/1(\.[0-9]+)?$"))]
    pub schema: String,
    pub round: u32,
    /// `socratic`, `random`, or an ablation name.
    pub strategy: String,
    pub seed: u64,
    /// One entry per stage, in pipeline order.
    #[serde(default)]
    pub stages: Vec<StageReport>,
    #[serde(default)]
    pub solve_rates: Vec<SolveRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<RewardStats>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageReport {
    pub stage: String,
    /// Records in.
    pub input: u64,
    /// Records out.
    pub output: u64,
    /// Rejected records by reason (gate stage, filter).
    #[serde(default)]
    pub rejected: BTreeMap<String, u64>,
    pub seconds: f64,
}

/// A resolve rate with its 95% interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SolveRate {
    /// `test` (held-out), `dev` or `train`.
    pub split: String,
    pub tasks: u32,
    pub resolved: u32,
    pub partial: u32,
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RewardStats {
    pub n: u64,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Record for RoundReport {
    const KIND: &'static str = "round-report";
    const MAJOR: u32 = 1;

    fn id(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "{}/round-{}/seed-{}",
            self.strategy, self.round, self.seed
        ))
    }
}
