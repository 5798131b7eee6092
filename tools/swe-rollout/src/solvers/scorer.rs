//! What the templates solver consults to rank candidate edits: the [`EditScorer`] interface
//! and the built-in model behind it ([`ModelScorer`], a `solver-train` checkpoint).

use std::path::Path;

use anyhow::{Context, Result};
use solver::config::ModelConfig;
use solver::data::{Budget, encode};
use solver::example::RepairExample;
use solver::model::Solver;
use solver::prior::EditPrior;
use solver::tokenizer::SolverTokenizer;
use solver::train::score_all;

/// Scores the candidate edits of a repair example.
pub trait EditScorer: Send {
    /// The score of every candidate of `example` and the number of tokens read.
    fn score(&self, example: &RepairExample) -> (Vec<f64>, u64);

    /// The log-probability of each candidate's edit kind under the scorer's prior (0
    /// without one).
    fn prior_log_probs(&self, example: &RepairExample) -> Vec<f64>;
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
    /// Loads the checkpoint in `dir`, with its edit-kind prior when its scorer has no
    /// learned features.
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
}

impl EditScorer for ModelScorer {
    fn prior_log_probs(&self, example: &RepairExample) -> Vec<f64> {
        example
            .candidates
            .iter()
            .map(|c| self.prior.as_ref().map_or(0.0, |p| p.log_prob(&c.edit)))
            .collect()
    }

    fn score(&self, example: &RepairExample) -> (Vec<f64>, u64) {
        if example.candidates.is_empty() {
            return (Vec::new(), 0);
        }
        let encoded = encode(example, &self.tokenizer, &self.budget, &self.config);
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
