//! Training loops: next-token pretraining on code, and ranking fine-tuning on repair examples.
//!
//! Every step draws its batch from a generator seeded by (seed, step), and the learning rate
//! is a function of the step, so a run resumed from a checkpoint's exact state continues the
//! same loss curve as one that never stopped.

use std::time::Instant;

use anyhow::{Result, anyhow};
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::record::Recorder;
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::Serialize;

use crate::batch::{HostBatch, Row, candidate_scores, lm_loss, ranking_loss};
use crate::checkpoint::StateRecorder;
use crate::config::ModelConfig;
use crate::data::{EncodedExample, ranking_batch, sample_group};
use crate::model::Solver;

/// What a run learns from.
pub enum Objective {
    /// Next-token prediction on fixed-length chunks of code.
    Language { chunks: Vec<Vec<u32>> },
    /// Ranking the gold edit above the other candidates; one weight per example.
    Ranking {
        examples: Vec<EncodedExample>,
        weights: Vec<f32>,
        /// Candidates per example per step (the gold one and `group - 1` others).
        group: usize,
        nll_weight: f64,
    },
}

impl Objective {
    pub fn is_empty(&self) -> bool {
        match self {
            Objective::Language { chunks } => chunks.is_empty(),
            Objective::Ranking { examples, .. } => examples.is_empty(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Total optimizer steps of the run (a resumed run counts the steps already taken).
    pub steps: usize,
    /// Stop early after this many seconds of training (None: run all steps).
    pub max_seconds: Option<f64>,
    /// End this invocation after this step without changing the schedule of `steps` (to split
    /// a run across jobs; `--resume` continues it).
    pub stop_after: Option<usize>,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            steps: 300,
            max_seconds: None,
            stop_after: None,
            batch_size: 8,
            lr: 2e-3,
            warmup: 20,
            weight_decay: 0.01,
            seed: 0,
        }
    }
}

impl TrainOptions {
    /// Linear warm-up, then cosine decay to a tenth of the peak at `steps`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
        let progress = ((step - self.warmup) as f64 / span).min(1.0);
        self.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
    }
}

/// One line of a run's metrics file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepMetrics {
    pub step: usize,
    pub loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nll: Option<f64>,
    pub lr: f64,
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub elapsed_s: f64,
}

pub type Adam<B> = OptimizerAdaptor<AdamW, Solver<B>, B>;

/// A model and its optimizer at a step.
pub struct TrainState<B: AutodiffBackend> {
    pub model: Solver<B>,
    pub optimizer: Adam<B>,
    pub step: usize,
}

/// Adam's constants: `grad-score --precondition adam` replays a step with them.
pub const ADAM_BETA_1: f32 = 0.9;
pub const ADAM_BETA_2: f32 = 0.999;
pub const ADAM_EPSILON: f32 = 1e-5;
/// Each parameter's gradient is clipped to this L2 norm before the Adam step.
pub const GRAD_CLIP_NORM: f32 = 1.0;

pub fn optimizer<B: AutodiffBackend>(options: &TrainOptions) -> Adam<B> {
    AdamWConfig::new()
        .with_beta_1(ADAM_BETA_1)
        .with_beta_2(ADAM_BETA_2)
        .with_epsilon(ADAM_EPSILON)
        .with_weight_decay(options.weight_decay as f32)
        .with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(
            GRAD_CLIP_NORM,
        )))
        .init()
}

impl<B: AutodiffBackend> TrainState<B> {
    pub fn fresh(model: Solver<B>, options: &TrainOptions) -> Self {
        TrainState {
            model,
            optimizer: optimizer(options),
            step: 0,
        }
    }

    /// Saves the optimizer state and the step under `dir/resume/` (the model is saved by
    /// [`crate::checkpoint::save_resume_model`]).
    pub fn save_optimizer(&self, dir: &std::path::Path) -> Result<()> {
        let resume = dir.join(crate::checkpoint::RESUME);
        std::fs::create_dir_all(&resume)?;
        StateRecorder::new()
            .record(self.optimizer.to_record(), resume.join("optimizer"))
            .map_err(|e| anyhow!("writing the optimizer state: {e}"))?;
        std::fs::write(resume.join("step"), format!("{}\n", self.step))?;
        Ok(())
    }

    /// Restores what [`TrainState::save_optimizer`] wrote into a state whose model was
    /// loaded with its parameter ids.
    pub fn resume(
        model: Solver<B>,
        dir: &std::path::Path,
        options: &TrainOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let resume = dir.join(crate::checkpoint::RESUME);
        let record = StateRecorder::new()
            .load(resume.join("optimizer"), device)
            .map_err(|e| {
                anyhow!(
                    "{}: no optimizer state to resume from: {e}",
                    resume.display()
                )
            })?;
        let step_text = std::fs::read_to_string(resume.join("step"))
            .map_err(|e| anyhow!("{}: no step to resume from: {e}", resume.display()))?;
        let step = step_text
            .trim()
            .parse()
            .map_err(|_| anyhow!("{}/step: not a number", resume.display()))?;
        Ok(TrainState {
            model,
            optimizer: optimizer(options).load_record(record),
            step,
        })
    }
}

fn step_rng(seed: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step as u64)
}

/// Runs steps until `options.steps` (or the time budget); calls `on_step` after each.
pub fn train<B: AutodiffBackend>(
    state: &mut TrainState<B>,
    objective: &Objective,
    config: &ModelConfig,
    options: &TrainOptions,
    pad: u32,
    mut on_step: impl FnMut(&StepMetrics, &TrainState<B>) -> Result<()>,
) -> Result<()> {
    if objective.is_empty() {
        return Err(anyhow!("nothing to train on"));
    }
    let started = Instant::now();
    let mut tokens_total = 0usize;
    let last = options
        .stop_after
        .map_or(options.steps, |s| s.min(options.steps));
    while state.step < last {
        if options
            .max_seconds
            .is_some_and(|limit| started.elapsed().as_secs_f64() >= limit)
        {
            break;
        }
        let mut rng = step_rng(options.seed, state.step);
        let lr = options.lr_at(state.step);
        let model = state.model.clone();
        let (loss, ranking, nll, tokens) = match objective {
            Objective::Language { chunks } => {
                let rows = (0..options.batch_size)
                    .map(|_| {
                        Row::text(chunks[(rng.next_u64() % chunks.len() as u64) as usize].clone())
                    })
                    .collect();
                let batch = HostBatch::new(rows, pad);
                let tokens = batch.rows.len() * batch.len;
                let (loss, _) = lm_loss(&model, &batch, config);
                (loss, None, None, tokens)
            }
            Objective::Ranking {
                examples,
                weights,
                group,
                nll_weight,
            } => {
                let mut picks = Vec::with_capacity(options.batch_size);
                while picks.len() < options.batch_size {
                    let i = (rng.next_u64() % examples.len() as u64) as usize;
                    if let Some((chosen, gold)) = sample_group(&examples[i], *group, &mut rng) {
                        picks.push((i, chosen, gold));
                    }
                }
                let items: Vec<(&EncodedExample, &[usize])> = picks
                    .iter()
                    .map(|(i, chosen, _)| (&examples[*i], chosen.as_slice()))
                    .collect();
                let (batch, spans) = ranking_batch(&items, pad);
                let gold: Vec<usize> = picks.iter().map(|p| p.2).collect();

                let row_weights: Vec<f32> = picks.iter().map(|p| weights[p.0]).collect();
                let tokens = batch
                    .rows
                    .iter()
                    .map(|r| r.segments.iter().filter(|s| **s >= 0).count())
                    .sum();
                let scores = candidate_scores(&model, &batch, &spans, config);
                let (loss, ranking, nll) = ranking_loss(scores, &gold, &row_weights, *nll_weight);
                (loss, Some(ranking), Some(nll), tokens)
            }
        };
        let scalar = |t: burn::tensor::Tensor<B, 1>| t.into_scalar().elem::<f64>();
        let ranking = ranking.map(scalar);
        let nll = nll.map(scalar);
        let loss_value = scalar(loss.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let loss = loss_value;
        if !loss.is_finite() {
            return Err(anyhow!(
                "the loss is {loss} at step {}; lower --lr",
                state.step
            ));
        }
        state.model = state.optimizer.step(lr, model, grads);
        state.step += 1;
        tokens_total += tokens;
        let elapsed = started.elapsed().as_secs_f64();
        let metrics = StepMetrics {
            step: state.step,
            loss,
            ranking_loss: ranking,
            nll,
            lr,
            tokens,
            tokens_per_s: tokens_total as f64 / elapsed.max(1e-9),
            elapsed_s: elapsed,
        };
        on_step(&metrics, state)?;
    }
    Ok(())
}

/// Ranking quality on examples: each example's candidates are all scored (in chunks of
/// `chunk`); returns, per example, the rank of the gold candidate (0 = top) when it has one.
pub fn gold_ranks<B: burn::tensor::backend::Backend>(
    model: &Solver<B>,
    examples: &[EncodedExample],
    config: &ModelConfig,
    pad: u32,
    chunk: usize,
) -> Vec<Option<usize>> {
    examples
        .iter()
        .map(|example| {
            let gold = example.gold?;
            let scores = score_all(model, example, config, pad, chunk);
            let better = scores
                .iter()
                .enumerate()
                .filter(|(i, s)| {
                    *i != gold && (**s > scores[gold] || (**s == scores[gold] && *i < gold))
                })
                .count();
            Some(better)
        })
        .collect()
}

/// Every candidate's log-likelihood after the prompt.
pub fn score_all<B: burn::tensor::backend::Backend>(
    model: &Solver<B>,
    example: &EncodedExample,
    config: &ModelConfig,
    pad: u32,
    chunk: usize,
) -> Vec<f64> {
    let all: Vec<usize> = (0..example.candidates.len()).collect();
    let mut scores = Vec::with_capacity(all.len());
    for part in all.chunks(chunk.max(1)) {
        let (batch, spans) = ranking_batch(&[(example, part)], pad);
        let out = candidate_scores(model, &batch, &spans, config);
        let values: Vec<f32> = out.into_data().to_vec().expect("f32 scores");
        scores.extend(values.into_iter().take(part.len()).map(f64::from));
    }
    scores
}

/// The inference copy of a trained model (no autodiff graph).
pub fn inference_model<B: AutodiffBackend>(model: &Solver<B>) -> Solver<B::InnerBackend> {
    model.valid()
}
