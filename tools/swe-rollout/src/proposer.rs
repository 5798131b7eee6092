//! Which solver proposes edits: the `--solver` spec and the built-in model's scorer.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result};
use solver::config::ModelConfig;
use solver::data::{Budget, encode};
use solver::example::RepairExample;
use solver::model::Solver;
use solver::prior::EditPrior;
use solver::tokenizer::SolverTokenizer;
use solver::train::score_all;

/// `--solver`: `model:PATH` (a `solver-train` checkpoint directory) or
/// `openai:BASE_URL#MODEL` (an OpenAI-compatible chat-completions server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SolverSpec {
    Model(PathBuf),
    OpenAi(chat::Endpoint),
}

impl FromStr for SolverSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<SolverSpec, String> {
        let expected = "expected `model:PATH` or `openai:BASE_URL#MODEL`";
        match spec.split_once(':') {
            Some(("model", path)) if !path.is_empty() => Ok(SolverSpec::Model(path.into())),
            Some(("openai", rest)) => chat::Endpoint::parse(rest)
                .map(SolverSpec::OpenAi)
                .map_err(|err| format!("bad solver `{spec}`: {expected} ({err})")),
            _ => Err(format!("unknown solver `{spec}`: {expected}")),
        }
    }
}

impl std::fmt::Display for SolverSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SolverSpec::Model(path) => write!(f, "model:{}", path.display()),
            SolverSpec::OpenAi(endpoint) => write!(f, "{endpoint}"),
        }
    }
}

/// The built-in model: scores candidate edits by their log-likelihood after the prompt.
pub struct ModelScorer {
    model: Solver<solver::Backend>,
    config: ModelConfig,
    tokenizer: SolverTokenizer,
    budget: Budget,
    /// The edit-kind prior the checkpoint carries (`sft` writes it; a base model has none),
    /// for a checkpoint whose scorer has no features of its own.
    prior: Option<EditPrior>,
}

/// Candidates scored in one forward pass.
const SCORE_CHUNK: usize = 32;

impl ModelScorer {
    pub fn load(dir: &Path) -> Result<ModelScorer> {
        let loaded = solver::checkpoint::load::<solver::Backend>(dir, &solver::device())
            .with_context(|| format!("cannot load the solver checkpoint {}", dir.display()))?;
        // A scorer with learned features holds its own edit-kind prior (the `kind` features,
        // trained with the rest); the counted one is added only to a language model alone.
        let prior = if loaded.config.terms().features {
            None
        } else {
            EditPrior::load(dir)?
        };
        Ok(ModelScorer {
            model: loaded.model,
            config: loaded.config,
            tokenizer: loaded.tokenizer,
            budget: Budget::default(),
            prior,
        })
    }

    /// Whether the checkpoint carries an edit-kind prior.
    pub fn has_prior(&self) -> bool {
        self.prior.is_some()
    }

    /// The prior's log-probability of each candidate's edit kind (0 without a prior).
    pub fn prior_log_probs(&self, example: &RepairExample) -> Vec<f64> {
        example
            .candidates
            .iter()
            .map(|c| self.prior.as_ref().map_or(0.0, |p| p.log_prob(&c.edit)))
            .collect()
    }

    /// The score of every candidate of `example` and the number of tokens read.
    pub fn score(&self, example: &RepairExample) -> (Vec<f64>, u64) {
        if example.candidates.is_empty() {
            return (Vec::new(), 0);
        }
        let encoded = encode(example, &self.tokenizer, &self.budget, self.config.terms());
        let tokens = encoded.prompt.len() as u64
            + encoded
                .candidates
                .iter()
                .map(|c| c.len() as u64)
                .sum::<u64>();
        let scores = score_all(
            &self.model,
            &encoded,
            &self.config,
            self.tokenizer.pad,
            SCORE_CHUNK,
        );
        (scores, tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solver_specs_parse_or_say_what_is_expected() {
        assert_eq!(
            "model:ckpt/r1".parse::<SolverSpec>().unwrap(),
            SolverSpec::Model("ckpt/r1".into())
        );
        assert_eq!(
            "openai:http://localhost:8000/v1/#qwen2.5-coder"
                .parse::<SolverSpec>()
                .unwrap(),
            SolverSpec::OpenAi(chat::Endpoint {
                base_url: "http://localhost:8000/v1".into(),
                model: "qwen2.5-coder".into()
            })
        );
        for bad in [
            "gpt4",
            "model:",
            "openai:localhost#m",
            "openai:http://x",
            "hf:foo",
        ] {
            let err = bad.parse::<SolverSpec>().unwrap_err();
            assert!(err.contains("expected `model:PATH`"), "{bad}: {err}");
        }
    }
}
