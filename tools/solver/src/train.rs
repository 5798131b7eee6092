//! Training loops: next-token pretraining on code, and ranking fine-tuning on repair examples.
//!
//! Every step draws its batch from a generator seeded by (seed, step), and the learning rate
//! is a function of the step, so a run resumed from a checkpoint's exact state continues the
//! same loss curve as one that never stopped.

use std::time::Instant;

use anyhow::{Result, anyhow};
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{
    AdaGrad, AdaGradConfig, AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer,
    Sgd, SgdConfig,
};
use burn::record::Recorder;
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::Serialize;

use crate::anchor::Anchor;
use crate::batch::{
    CandidateSpans, HostBatch, Row, candidate_scores, lm_loss_part, ranking_loss_part,
};
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
    /// Strength of the pull of the edit head back toward [`TrainState::anchor`] after each
    /// step (`crate::anchor`); 0: none.
    pub anchor: f64,
    pub seed: u64,
    /// Each step's batch is cut into this many parts whose gradients are computed side by
    /// side on their own threads (as many as there are cores) and summed: the CPU backend
    /// keeps about one core busy per graph. The result depends on the parts, not on the cores.
    pub batch_parts: usize,
    pub optimizer: OptimizerKind,
}

/// The update rule of a run's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptimizerKind {
    /// AdamW: every weight a batch touches moves about `lr`, however rarely it is seen.
    #[default]
    Adam,
    /// Plain gradient descent: a weight moves with its gradient, so with how many of the
    /// batch's examples it fires in.
    Sgd,
    /// AdaGrad: each weight's step shrinks with the squared gradients it has seen.
    AdaGrad,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 3] = [
        OptimizerKind::Adam,
        OptimizerKind::Sgd,
        OptimizerKind::AdaGrad,
    ];

    /// Its name on the command line (`--optimizer`).
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::AdaGrad => "adagrad",
        }
    }

    /// The file under `resume/` that holds this optimizer's state (Adam's keeps the name
    /// `grad-score --precondition adam` reads).
    pub fn state_file(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "optimizer",
            OptimizerKind::Sgd => "optimizer-sgd",
            OptimizerKind::AdaGrad => "optimizer-adagrad",
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        OptimizerKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = OptimizerKind::ALL.map(OptimizerKind::name).to_vec();
                format!("unknown optimizer {text:?} (one of: {})", names.join(", "))
            })
    }
}

/// How many parts a step's batch is cut into by default: two on the CPU, where one autodiff
/// graph keeps about one core busy (`just bench-train`); one on the GPU.
pub const DEFAULT_BATCH_PARTS: usize = if cfg!(feature = "cuda") { 1 } else { 2 };

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
            anchor: 0.0,
            seed: 0,
            batch_parts: DEFAULT_BATCH_PARTS,
            optimizer: OptimizerKind::Adam,
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
type PlainSgd<B> = OptimizerAdaptor<Sgd<<B as AutodiffBackend>::InnerBackend>, Solver<B>, B>;
type PerWeightAdaGrad<B> = OptimizerAdaptor<AdaGrad, Solver<B>, B>;

/// A run's optimizer and its state, of the kind [`TrainOptions::optimizer`] names.
pub enum SolverOptimizer<B: AutodiffBackend> {
    Adam(Adam<B>),
    Sgd(PlainSgd<B>),
    AdaGrad(PerWeightAdaGrad<B>),
}

impl<B: AutodiffBackend> SolverOptimizer<B> {
    pub fn kind(&self) -> OptimizerKind {
        match self {
            SolverOptimizer::Adam(_) => OptimizerKind::Adam,
            SolverOptimizer::Sgd(_) => OptimizerKind::Sgd,
            SolverOptimizer::AdaGrad(_) => OptimizerKind::AdaGrad,
        }
    }

    pub fn step(&mut self, lr: f64, model: Solver<B>, grads: GradientsParams) -> Solver<B> {
        match self {
            SolverOptimizer::Adam(o) => o.step(lr, model, grads),
            SolverOptimizer::Sgd(o) => o.step(lr, model, grads),
            SolverOptimizer::AdaGrad(o) => o.step(lr, model, grads),
        }
    }

    fn save(&self, path: std::path::PathBuf) -> Result<()> {
        match self {
            SolverOptimizer::Adam(o) => save_state(o, path),
            SolverOptimizer::Sgd(o) => save_state(o, path),
            SolverOptimizer::AdaGrad(o) => save_state(o, path),
        }
    }

    fn load(self, path: std::path::PathBuf, device: &B::Device) -> Result<Self> {
        Ok(match self {
            SolverOptimizer::Adam(o) => SolverOptimizer::Adam(load_state(o, path, device)?),
            SolverOptimizer::Sgd(o) => SolverOptimizer::Sgd(load_state(o, path, device)?),
            SolverOptimizer::AdaGrad(o) => SolverOptimizer::AdaGrad(load_state(o, path, device)?),
        })
    }
}

fn save_state<B: AutodiffBackend, O: Optimizer<Solver<B>, B>>(
    optimizer: &O,
    path: std::path::PathBuf,
) -> Result<()> {
    StateRecorder::new()
        .record(optimizer.to_record(), path)
        .map_err(|e| anyhow!("writing the optimizer state: {e}"))
}

fn load_state<B: AutodiffBackend, O: Optimizer<Solver<B>, B>>(
    optimizer: O,
    path: std::path::PathBuf,
    device: &B::Device,
) -> Result<O> {
    let record = StateRecorder::new()
        .load(path.clone(), device)
        .map_err(|e| anyhow!("{}: no optimizer state to resume from: {e}", path.display()))?;
    Ok(optimizer.load_record(record))
}

/// A model and its optimizer at a step.
pub struct TrainState<B: AutodiffBackend> {
    pub model: Solver<B>,
    pub optimizer: SolverOptimizer<B>,
    pub step: usize,
    /// Where `TrainOptions::anchor` pulls the edit head: the run's starting weights.
    pub anchor: Option<Anchor<B::InnerBackend>>,
}

/// Adam's constants: `grad-score --precondition adam` replays a step with them.
pub const ADAM_BETA_1: f32 = 0.9;
pub const ADAM_BETA_2: f32 = 0.999;
pub const ADAM_EPSILON: f32 = 1e-5;
/// Each parameter's gradient is clipped to this L2 norm before the optimizer's step.
pub const GRAD_CLIP_NORM: f32 = 1.0;

fn clipping() -> Option<burn::grad_clipping::GradientClippingConfig> {
    Some(burn::grad_clipping::GradientClippingConfig::Norm(
        GRAD_CLIP_NORM,
    ))
}

pub fn optimizer<B: AutodiffBackend>(options: &TrainOptions) -> SolverOptimizer<B> {
    // Weight decay is Adam's only (decoupled, AdamW): coupled into AdaGrad's gradient it
    // would give every weight a normalised step toward zero.
    match options.optimizer {
        OptimizerKind::Adam => SolverOptimizer::Adam(
            AdamWConfig::new()
                .with_beta_1(ADAM_BETA_1)
                .with_beta_2(ADAM_BETA_2)
                .with_epsilon(ADAM_EPSILON)
                .with_weight_decay(options.weight_decay as f32)
                .with_grad_clipping(clipping())
                .init(),
        ),
        OptimizerKind::Sgd => {
            SolverOptimizer::Sgd(SgdConfig::new().with_gradient_clipping(clipping()).init())
        }
        OptimizerKind::AdaGrad => {
            SolverOptimizer::AdaGrad(AdaGradConfig::new().with_grad_clipping(clipping()).init())
        }
    }
}

impl<B: AutodiffBackend> TrainState<B> {
    pub fn fresh(model: Solver<B>, options: &TrainOptions) -> Self {
        TrainState {
            model,
            optimizer: optimizer(options),
            step: 0,
            anchor: None,
        }
    }

    /// Pulls the edit head toward `anchor` after every step (with `TrainOptions::anchor`).
    pub fn anchored(mut self, anchor: Anchor<B::InnerBackend>) -> Self {
        self.anchor = Some(anchor);
        self
    }

    /// Saves the optimizer state and the step under `dir/resume/` (the model is saved by
    /// [`crate::checkpoint::save_resume_model`]).
    pub fn save_optimizer(&self, dir: &std::path::Path) -> Result<()> {
        let resume = dir.join(crate::checkpoint::RESUME);
        std::fs::create_dir_all(&resume)?;
        self.optimizer
            .save(resume.join(self.optimizer.kind().state_file()))?;
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
        let optimizer =
            optimizer(options).load(resume.join(options.optimizer.state_file()), device)?;
        let step_text = std::fs::read_to_string(resume.join("step"))
            .map_err(|e| anyhow!("{}: no step to resume from: {e}", resume.display()))?;
        let step = step_text
            .trim()
            .parse()
            .map_err(|_| anyhow!("{}/step: not a number", resume.display()))?;
        Ok(TrainState {
            model,
            optimizer,
            step,
            anchor: None,
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
    if options.anchor > 0.0 && state.anchor.is_none() {
        return Err(anyhow!("an anchored run needs the weights it started from"));
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
        // A replica has every parameter initialised: clones of a lazily initialised one
        // would each draw their own values.
        let model = state.model.replica();
        let (parts, tokens) = draw_batch(objective, options, &mut rng, pad);
        let (loss, ranking, nll, grads) = batch_gradients(&model, &parts, objective, config);
        if !loss.is_finite() {
            return Err(anyhow!(
                "the loss is {loss} at step {}; lower --lr",
                state.step
            ));
        }
        let stepped = state.optimizer.step(lr, model, grads);
        state.model = match &state.anchor {
            Some(anchor) if options.anchor > 0.0 => anchor.pull(stepped, lr * options.anchor),
            _ => stepped,
        };
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

/// A slice of a step's batch, on the host.
enum Part {
    Text(HostBatch),
    Ranking {
        batch: HostBatch,
        spans: CandidateSpans,
        gold: Vec<usize>,
        weights: Vec<f32>,
    },
}

impl Part {
    /// What this part adds to the denominator of the batch's mean loss: its predicted
    /// positions (text) or its rows' weights (ranking).
    fn weight(&self) -> f64 {
        match self {
            Part::Text(batch) => batch.predicted_positions() as f64,
            Part::Ranking { weights, .. } => weights.iter().map(|&w| f64::from(w)).sum(),
        }
    }
}

/// Draws a step's batch from `rng` and cuts it into `options.batch_parts` parts of consecutive
/// rows; returns the parts and the batch's token count.
fn draw_batch(
    objective: &Objective,
    options: &TrainOptions,
    rng: &mut ChaCha8Rng,
    pad: u32,
) -> (Vec<Part>, usize) {
    let part_size = options
        .batch_size
        .div_ceil(options.batch_parts.max(1))
        .max(1);
    match objective {
        Objective::Language { chunks } => {
            let rows: Vec<Row> = (0..options.batch_size)
                .map(|_| Row::text(chunks[(rng.next_u64() % chunks.len() as u64) as usize].clone()))
                .collect();
            let tokens = rows.iter().map(Row::len).max().unwrap_or(0) * rows.len();
            let parts = rows
                .chunks(part_size)
                .map(|rows| Part::Text(HostBatch::new(rows.to_vec(), pad)))
                .collect();
            (parts, tokens)
        }
        Objective::Ranking {
            examples,
            weights,
            group,
            ..
        } => {
            let mut picks = Vec::with_capacity(options.batch_size);
            while picks.len() < options.batch_size {
                let i = (rng.next_u64() % examples.len() as u64) as usize;
                if let Some((chosen, gold)) = sample_group(&examples[i], *group, rng) {
                    picks.push((i, chosen, gold));
                }
            }
            let mut tokens = 0;
            let parts = picks
                .chunks(part_size)
                .map(|picks| {
                    let items: Vec<(&EncodedExample, &[usize])> = picks
                        .iter()
                        .map(|(i, chosen, _)| (&examples[*i], chosen.as_slice()))
                        .collect();
                    let (batch, spans) = ranking_batch(&items, pad);
                    tokens += batch
                        .rows
                        .iter()
                        .map(|r| r.segments.iter().filter(|s| **s >= 0).count())
                        .sum::<usize>();
                    Part::Ranking {
                        batch,
                        spans,
                        gold: picks.iter().map(|p| p.2).collect(),
                        weights: picks.iter().map(|p| weights[p.0]).collect(),
                    }
                })
                .collect();
            (parts, tokens)
        }
    }
}

/// The loss of the whole batch (and its ranking and likelihood terms) and its gradient, the
/// sum of the parts' (each part's loss is its share of the batch's mean). With one part or
/// one core the parts run in turn on `model`; otherwise each runs on its own replica of it, on
/// its own thread, as many at a time as there are cores.
fn batch_gradients<B: AutodiffBackend>(
    model: &Solver<B>,
    parts: &[Part],
    objective: &Objective,
    config: &ModelConfig,
) -> (f64, Option<f64>, Option<f64>, GradientsParams) {
    let denominator: f64 = parts.iter().map(Part::weight).sum();
    let nll_weight = match objective {
        Objective::Ranking { nll_weight, .. } => *nll_weight,
        Objective::Language { .. } => 0.0,
    };
    let part_gradient = |model: Solver<B>, part: &Part| {
        let scalar = |t: burn::tensor::Tensor<B, 1>| t.into_scalar().elem::<f64>();
        let (loss, ranking, nll) = match part {
            Part::Text(batch) => (
                lm_loss_part(&model, batch, config, denominator.max(1.0) as usize),
                None,
                None,
            ),
            Part::Ranking {
                batch,
                spans,
                gold,
                weights,
            } => {
                let scores = candidate_scores(&model, batch, spans, config);
                let (loss, ranking, nll) =
                    ranking_loss_part(scores, gold, weights, nll_weight, denominator as f32);
                (loss, Some(scalar(ranking)), Some(scalar(nll)))
            }
        };
        let value = scalar(loss.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (value, ranking, nll, grads)
    };
    let threads = stage_io::cli::cores();
    let results: Vec<_> = if parts.len() == 1 || threads == 1 {
        parts
            .iter()
            .map(|part| part_gradient(model.clone(), part))
            .collect()
    } else {
        let mut results = Vec::with_capacity(parts.len());
        for wave in parts.chunks(threads) {
            std::thread::scope(|scope| {
                let handles: Vec<_> = wave
                    .iter()
                    .map(|part| {
                        let replica = model.replica();
                        let part_gradient = &part_gradient;
                        scope.spawn(move || part_gradient(replica, part))
                    })
                    .collect();
                for handle in handles {
                    results.push(handle.join().expect("a training thread panicked"));
                }
            });
        }
        results
    };
    let mut accumulator = GradientsAccumulator::<Solver<B>>::new();
    let (mut loss, mut ranking, mut nll) = (0.0, None::<f64>, None::<f64>);
    for (value, part_ranking, part_nll, grads) in results {
        loss += value;
        ranking = part_ranking.map(|r| ranking.unwrap_or(0.0) + r);
        nll = part_nll.map(|n| nll.unwrap_or(0.0) + n);
        accumulator.accumulate(model, grads);
    }
    (loss, ranking, nll, accumulator.grads())
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
        let out = candidate_scores(model, &batch, &spans, config).total;
        let values: Vec<f32> = out.into_data().to_vec().expect("f32 scores");
        scores.extend(values.into_iter().take(part.len()).map(f64::from));
    }
    scores
}

/// The inference copy of a trained model (no autodiff graph).
pub fn inference_model<B: AutodiffBackend>(model: &Solver<B>) -> Solver<B::InnerBackend> {
    model.valid()
}
