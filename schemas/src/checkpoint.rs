//! `checkpoint/1`: a trained solver on disk and where it came from.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::record::{Extra, Record};

/// A solver checkpoint directory (safetensors + config + tokenizer.json) with its lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "Checkpoint",
    description = "A trained solver on disk and where it came from"
)]
pub struct Checkpoint {
    /// `checkpoint/1`.
    #[schemars(regex(pattern = r"^checkpoint/1(\.[0-9]+)?$"))]
    pub schema: String,
    /// The checkpoint directory; also its id.
    pub path: String,
    pub round: u32,
    /// Optimizer steps taken since the base model.
    pub step: u64,
    /// The model configuration as the solver crate writes it.
    #[serde(default)]
    pub model: serde_json::Map<String, serde_json::Value>,
    /// Path of the HF `tokenizer.json`.
    pub tokenizer: String,
    /// Named final metrics of the run that wrote it (`loss`, `tokens_per_s`, …).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Path of the checkpoint it was trained from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The input files it was trained on, by content hash.
    #[serde(default)]
    pub data: Vec<DataRef>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DataRef {
    pub path: String,
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
}

impl Record for Checkpoint {
    const KIND: &'static str = "checkpoint";
    const MAJOR: u32 = 1;

    fn id(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.path)
    }
}
