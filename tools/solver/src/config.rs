//! The model's shape, stored as a Hugging Face `config.json` (Llama / Qwen2 fields), so a
//! checkpoint directory is also a loadable HF model directory and the other way round.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Architectures whose weights load into [`crate::model::Solver`].
pub const SUPPORTED_ARCHITECTURES: [&str; 2] = ["llama", "qwen2"];

/// A decoder-only transformer: RMSNorm, rotary positions, SwiGLU MLP, grouped-query attention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `llama` or `qwen2` (Qwen2 adds biases on the q/k/v projections).
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Whether q/k/v projections carry a bias; absent means the architecture's default
    /// (Qwen2 has them, Llama does not). See [`ModelConfig::qkv_bias`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_bias: Option<bool>,
    /// Which terms the ranking scorer sums; absent (an HF model, or a checkpoint from before
    /// the feature head) means the language model's likelihood alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranker: Option<RankerTerms>,
    /// The feature count past which a candidate's features are scaled down: each of a
    /// candidate's n > `feature_norm` distinct features has the value sqrt(feature_norm / n)
    /// instead of 1, so that an edit with many features (a variable swap carries 100–200)
    /// does not outvote one with few (an off-by-one carries about 20) by their number alone
    /// (docs/learning.md). Absent (a checkpoint from before) means 1 for every feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_norm: Option<usize>,
    /// Rows of a feature table of their own for the features that read the problem
    /// statement (`solver-train sft --problem-table`), after the shared table's
    /// [`crate::features::BUCKETS`]: fine-tuning can then move what the problem statement adds
    /// without sharing a weight with a pretrained feature of the code. Absent means one table
    /// for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_buckets: Option<usize>,
    /// Anything else HF wrote (architectures, torch_dtype, token ids…), kept on save.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The [`ModelConfig::feature_norm`] of a new scorer (chosen on the dev split,
/// docs/learning.md).
pub const DEFAULT_FEATURE_NORM: usize = 6;

/// The terms of a candidate's score (see [`crate::model::EditHead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankerTerms {
    /// The language model's length-normalised log-likelihood of the edit after the prompt,
    /// times a learned scale.
    pub lm: bool,
    /// The learned weights of the edit's hashed features.
    pub features: bool,
}

impl RankerTerms {
    pub const LM: RankerTerms = RankerTerms {
        lm: true,
        features: false,
    };
    pub const FEATURES: RankerTerms = RankerTerms {
        lm: false,
        features: true,
    };
    pub const BOTH: RankerTerms = RankerTerms {
        lm: true,
        features: true,
    };

    /// `lm`, `features` or `both` (as `--scorer` takes it).
    pub fn parse(text: &str) -> Result<RankerTerms, String> {
        match text {
            "lm" => Ok(RankerTerms::LM),
            "features" => Ok(RankerTerms::FEATURES),
            "both" => Ok(RankerTerms::BOTH),
            other => Err(format!(
                "unknown scorer terms `{other}` (expected lm, features or both)"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match (self.lm, self.features) {
            (true, true) => "both",
            (false, true) => "features",
            _ => "lm",
        }
    }
}

fn default_rope_theta() -> f64 {
    10_000.0
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}

impl ModelConfig {
    /// The default solver: about 2.4M parameters, trainable in minutes on 2 CPU cores.
    pub fn tiny(vocab_size: usize) -> ModelConfig {
        ModelConfig {
            model_type: "llama".into(),
            vocab_size,
            hidden_size: 192,
            intermediate_size: 512,
            num_hidden_layers: 4,
            num_attention_heads: 6,
            num_key_value_heads: 2,
            max_position_embeddings: 2048,
            rope_theta: default_rope_theta(),
            rms_norm_eps: default_rms_norm_eps(),
            tie_word_embeddings: true,
            attention_bias: Some(false),
            ranker: Some(RankerTerms::BOTH),
            feature_norm: Some(DEFAULT_FEATURE_NORM),
            problem_buckets: None,
            extra: serde_json::Map::new(),
        }
        .with_architecture()
    }

    /// A larger size for benchmarks and GPU runs (about 19M parameters at vocab 4096).
    pub fn small(vocab_size: usize) -> ModelConfig {
        ModelConfig {
            hidden_size: 384,
            intermediate_size: 1024,
            num_hidden_layers: 8,
            num_attention_heads: 6,
            num_key_value_heads: 2,
            ..ModelConfig::tiny(vocab_size)
        }
    }

    /// A model for smoke tests: trains in seconds, learns little.
    pub fn micro(vocab_size: usize) -> ModelConfig {
        ModelConfig {
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            ..ModelConfig::tiny(vocab_size)
        }
    }

    /// Looks a preset up by name (`micro`, `tiny`, `small`).
    pub fn preset(name: &str, vocab_size: usize) -> Result<ModelConfig> {
        match name {
            "micro" => Ok(ModelConfig::micro(vocab_size)),
            "tiny" => Ok(ModelConfig::tiny(vocab_size)),
            "small" => Ok(ModelConfig::small(vocab_size)),
            other => bail!("unknown model size `{other}` (expected micro, tiny or small)"),
        }
    }

    /// Rows of the feature weights: the shared table, then the problem table if any.
    pub fn feature_rows(&self) -> usize {
        crate::features::BUCKETS + self.problem_buckets.unwrap_or(0)
    }

    fn with_architecture(mut self) -> ModelConfig {
        let arch = match self.model_type.as_str() {
            "qwen2" => "Qwen2ForCausalLM",
            _ => "LlamaForCausalLM",
        };
        self.extra
            .insert("architectures".into(), serde_json::json!([arch]));
        self
    }

    /// The scorer's terms (the language model alone when the config does not say).
    pub fn terms(&self) -> RankerTerms {
        self.ranker.unwrap_or(RankerTerms::LM)
    }

    pub fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(self.model_type == "qwen2")
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks the shape is one the model can be built with.
    pub fn validate(&self) -> Result<()> {
        if !SUPPORTED_ARCHITECTURES.contains(&self.model_type.as_str()) {
            bail!(
                "model_type `{}` is not supported (expected one of {})",
                self.model_type,
                SUPPORTED_ARCHITECTURES.join(", ")
            );
        }
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (field, value) in positive {
            if value == 0 {
                bail!("field {field}: must be positive");
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            bail!("field hidden_size: must be a multiple of num_attention_heads");
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            bail!("field num_key_value_heads: must divide num_attention_heads");
        }
        if let Some(head_dim) = self.extra.get("head_dim").and_then(|v| v.as_u64())
            && head_dim as usize != self.head_dim()
        {
            bail!(
                "field head_dim: {head_dim} differs from hidden_size / num_attention_heads, which this model assumes"
            );
        }
        if self.extra.get("rope_scaling").is_some_and(|v| !v.is_null()) {
            bail!("field rope_scaling: scaled rotary positions are not supported");
        }
        if !self.head_dim().is_multiple_of(2) {
            bail!("field hidden_size: the head dimension must be even for rotary positions");
        }
        Ok(())
    }

    /// Reads and checks `config.json`.
    pub fn load(path: &Path) -> Result<ModelConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: ModelConfig = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a model config", path.display()))?;
        config
            .validate()
            .with_context(|| format!("{}", path.display()))?;
        Ok(config)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config serializes") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_round_trip_through_json() {
        for name in ["micro", "tiny", "small"] {
            let config = ModelConfig::preset(name, 4096).unwrap();
            config.validate().unwrap();
            let back: ModelConfig = serde_json::from_str(&config.to_json()).unwrap();
            assert_eq!(back, config);
        }
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let mut config = ModelConfig::tiny(100);
        config.num_key_value_heads = 4;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("num_key_value_heads"), "{message}");
        config = ModelConfig::tiny(100);
        config.model_type = "gpt2".into();
        assert!(config.validate().unwrap_err().to_string().contains("gpt2"));
    }

    #[test]
    fn qwen2_configs_without_the_field_have_qkv_biases() {
        let qwen: ModelConfig = serde_json::from_str(
            r#"{"model_type":"qwen2","vocab_size":100,"hidden_size":32,"intermediate_size":64,
            "num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":2,
            "max_position_embeddings":128,"tie_word_embeddings":true,"torch_dtype":"float32"}"#,
        )
        .unwrap();
        assert!(qwen.qkv_bias());
        assert!(!ModelConfig::tiny(100).qkv_bias());
        assert_eq!(
            qwen.feature_norm, None,
            "a config from before scales no feature"
        );
        assert_eq!(
            qwen.extra["torch_dtype"], "float32",
            "unknown fields are kept"
        );
    }
}
