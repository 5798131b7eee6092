//! `solver-train`: the solver's tokenizer, base model, ranking fine-tuning and evaluation.
//!
//! - `init`: trains the byte-level BPE on the training repositories' source and pretrains the
//!   model on the same code (next token);
//! - `sft`: fine-tunes a checkpoint to rank each task's gold repair above the other candidate
//!   edits at the buggy function (loss on the candidates only; the prompt is context);
//! - `eval`: top-1/top-5 of the gold repair among the candidates, beside the edit-kind prior.
//!
//! Every command writes a checkpoint directory atomically (see `solver::checkpoint`) and
//! prints its Checkpoint record on stdout.

mod bench;
mod eval;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use burn::tensor::backend::Backend as _;
use clap::{Args, Parser, Subcommand};
use sha2::{Digest, Sha256};
use solver::anchor::Anchor;
use solver::checkpoint::{self, Staging};
use solver::config::{ModelConfig, RankerTerms};
use solver::data::{Budget, code_chunks, encode};
use solver::model::Solver;
use solver::prior::EditPrior;
use solver::tokenizer::SolverTokenizer;
use solver::train::{Objective, OptimizerKind, StepMetrics, TrainOptions, TrainState, train};
use solver::{TrainBackend, device};
use stage_io::cli::LogArgs;
use stage_io::{BadInput, bad_input};

pub use eval::{EvalSummary, evaluate};
pub use solver::tasks::{build_examples, build_trace_examples, load_tasks, load_traces};
pub use stage_io::corpus::CorpusArgs;

const EXAMPLES: &str = "Examples:
  solver-train init .socratic/corpus.jsonl -o .socratic/run/base
  solver-train sft --from .socratic/run/base valid.jsonl -o .socratic/run/round-1/solver
  solver-train eval --checkpoint .socratic/run/round-1/solver eval-set.jsonl --prior-from valid.jsonl
  solver-train sft --from .socratic/run/round-1/solver kept.jsonl --traces traces.jsonl --trace-tasks pool.jsonl -o r2
  solver-train sft --resume .socratic/run/round-1/solver valid.jsonl -o .socratic/run/round-1/solver";

#[derive(Debug, Parser)]
#[command(name = "solver-train", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train the tokenizer and pretrain the base model on the training repositories' code
    Init(InitArgs),
    /// Fine-tune a checkpoint to rank the gold repair of each task first
    Sft(SftArgs),
    /// Rank every candidate of each task and report top-1/top-5 beside the edit-kind prior
    Eval(EvalArgs),
    /// Time training steps and per-example gradients on synthetic data (prints one JSON line)
    Bench(bench::BenchArgs),
    /// Print the next-token logits of a model directory for given token ids (JSON), to
    /// compare with another implementation (scripts/verify_hf.py)
    Forward(ForwardArgs),
}

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// A directory with config.json and model.safetensors (a checkpoint or an HF model)
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Comma-separated token ids
    #[arg(long, value_delimiter = ',', required = true)]
    pub ids: Vec<u32>,
}

fn forward(args: ForwardArgs) -> Result<()> {
    let config = ModelConfig::load(&args.model.join(checkpoint::CONFIG)).map_err(bad_input)?;
    if let Some(id) = args
        .ids
        .iter()
        .find(|&&id| id as usize >= config.vocab_size)
    {
        return Err(BadInput::new(format!(
            "token id {id} is outside the vocabulary ({})",
            config.vocab_size
        ))
        .into());
    }
    let device = solver::device();
    let model = checkpoint::load_weights(
        Solver::<solver::Backend>::new(&config, &device),
        &args.model.join(checkpoint::WEIGHTS),
    )
    .map_err(bad_input)?;
    let batch = solver::batch::HostBatch::new(vec![solver::batch::Row::text(args.ids.clone())], 0);
    let logits = model.logits(&batch.to_input::<solver::Backend>(&config, &device));
    let [_, len, vocab] = logits.dims();
    let values: Vec<f32> = logits.into_data().to_vec().map_err(|e| anyhow!("{e:?}"))?;
    let rows: Vec<&[f32]> = values.chunks(vocab).take(len).collect();
    println!("{}", serde_json::json!({ "logits": rows }));
    Ok(())
}

/// How long and how a run trains.
#[derive(Debug, Clone, Args)]
pub struct Schedule {
    /// Optimizer steps of the whole run (the learning-rate schedule spans them)
    #[arg(long)]
    pub steps: Option<usize>,
    /// Stop after this many minutes even if steps remain
    #[arg(long)]
    pub minutes: Option<f64>,
    /// End this invocation after step N (the schedule still spans --steps); continue with --resume
    #[arg(long, value_name = "N")]
    pub stop_after: Option<usize>,
    /// Examples (or code chunks) per step
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate
    #[arg(long)]
    pub lr: Option<f64>,
    /// Write the checkpoint every N steps as well as at the end
    #[arg(long, value_name = "N")]
    pub save_every: Option<usize>,
    /// Seed of initialisation and batch order
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Cut each step's batch into N parts whose gradients are computed side by side, a
    /// thread each while cores are free (the run's numbers depend on N, not on the cores)
    #[arg(long, value_name = "N", default_value_t = solver::train::DEFAULT_BATCH_PARTS)]
    pub batch_parts: usize,
    /// The update rule: adam (AdamW; every weight a batch touches moves about the learning
    /// rate), sgd (a weight moves with its gradient: features of few examples move little) or
    /// adagrad (a weight's step shrinks with the gradients it has seen). Give it again with
    /// --resume
    #[arg(long, value_name = "RULE", default_value = "adam")]
    pub optimizer: OptimizerKind,
}

impl Schedule {
    fn options(&self, steps: usize, batch_size: usize, lr: f64) -> TrainOptions {
        TrainOptions {
            steps: self.steps.unwrap_or(steps),
            max_seconds: self.minutes.map(|m| m * 60.0),
            stop_after: self.stop_after,
            batch_size: self.batch_size.unwrap_or(batch_size),
            lr: self.lr.unwrap_or(lr),
            warmup: (self.steps.unwrap_or(steps) / 20).clamp(1, 100),
            weight_decay: 0.01,
            anchor: 0.0,
            seed: self.seed,
            batch_parts: self.batch_parts.max(1),
            optimizer: self.optimizer,
        }
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The corpus (Repo records); its training repositories are read
    #[arg(default_value = ".socratic/corpus.jsonl")]
    pub corpus: PathBuf,
    /// The checkpoint directory to write
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Tokenizer vocabulary size
    #[arg(long, default_value_t = 4096)]
    pub vocab: usize,
    /// Model size preset: micro (smoke tests), tiny (~2.4M parameters) or small (~19M)
    #[arg(long, default_value = "tiny")]
    pub size: String,
    /// Tokens per training chunk
    #[arg(long, default_value_t = 256)]
    pub context: usize,
    /// The scorer's feature scaling: a candidate with more than N distinct features gives
    /// each the value sqrt(N/n) instead of 1; 0 turns it off (config.json's `feature_norm`)
    #[arg(long, value_name = "N", default_value_t = solver::config::DEFAULT_FEATURE_NORM)]
    pub feature_norm: usize,
    /// Continue the run saved in this checkpoint directory exactly
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub schedule: Schedule,
}

#[derive(Debug, Args)]
pub struct SftArgs {
    /// The checkpoint to start from (an `init` output or an HF Llama/Qwen2 directory)
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub from: Option<PathBuf>,
    /// Validated Task files (`-` or none: stdin)
    pub tasks: Vec<PathBuf>,
    /// The checkpoint directory to write
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Candidates per task in each step (the gold repair and N-1 others)
    #[arg(long, default_value_t = 8)]
    pub group: usize,
    /// Weight of the gold repair's per-token likelihood beside the ranking loss
    #[arg(long, default_value_t = 0.1)]
    pub nll_weight: f64,
    /// The scorer's terms, trained and saved with the checkpoint: `lm` (the language model's
    /// likelihood), `features` (learned feature weights; no transformer pass, fast) or
    /// `both` (default: the parent's terms, `both` for a model without them)
    #[arg(long, value_name = "TERMS", value_parser = RankerTerms::parse)]
    pub scorer: Option<RankerTerms>,
    /// Traces of the solver (`swe-rollout`): every resolved one adds an example whose target
    /// is its own submitted patch (rejection-sampling fine-tuning); repeatable
    #[arg(long, value_name = "FILE")]
    pub traces: Vec<PathBuf>,
    /// The tasks the traces ran on, where they are not among the training tasks; repeatable
    #[arg(long, value_name = "FILE", requires = "traces")]
    pub trace_tasks: Vec<PathBuf>,
    /// Loss weight of an example from a trace (its reward, 1 for a resolved trace, times W)
    /// beside a task's weight of 1
    #[arg(long, value_name = "W", default_value_t = 1.0)]
    pub trace_weight: f32,
    /// Tasks to evaluate the result on (their summary goes into the checkpoint's metrics)
    #[arg(long, value_name = "FILE")]
    pub eval: Option<PathBuf>,
    /// Round number recorded in the checkpoint (default: the parent's round + 1)
    #[arg(long)]
    pub round: Option<u32>,
    /// Hold the scorer near the --from checkpoint as if its weights were worth A training
    /// examples: after every step the scorer's own weights (the edit head) move back toward
    /// the checkpoint's by lr × A / n of their distance, n the run's examples (L2-SP with the
    /// prior's weight of a posterior: strong for a few tasks, fading as tasks grow; 0: off).
    /// Give it again with --resume
    #[arg(long, value_name = "A", default_value_t = 0.0)]
    pub anchor: f64,
    /// With --anchor: hold the scorer's context-free feature weights (what an edit is: its
    /// kind, template, literal change and shape, without where it is) at the checkpoint's, so
    /// training moves only what depends on the edit's context and the problem statement
    #[arg(long)]
    pub hold_edit_prior: bool,
    /// Give the features that read the problem statement (its errors, complaints, failing
    /// tests, the names and places it mentions) a table of ROWS weights of their own, new and
    /// untrained, instead of sharing the --from checkpoint's table with the code's features
    /// (config.json's `problem_buckets`; a checkpoint that has one keeps it)
    #[arg(long, value_name = "ROWS")]
    pub problem_table: Option<usize>,
    /// With --anchor and a problem table: hold the whole shared feature table at the
    /// checkpoint's, so the features train only what the problem statement adds (with
    /// --scorer lm or both the language model still trains)
    #[arg(long)]
    pub hold_shared_table: bool,
    /// Continue the run saved in this checkpoint directory exactly
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub schedule: Schedule,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The checkpoint to evaluate
    #[arg(long, value_name = "DIR")]
    pub checkpoint: PathBuf,
    /// Task files (`-` or none: stdin)
    pub tasks: Vec<PathBuf>,
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Training tasks whose gold edits define the edit-kind prior to compare against
    #[arg(long, value_name = "FILE")]
    pub prior_from: Option<PathBuf>,
    /// Score with these of the checkpoint's terms only (`lm`, `features`, `both`): the
    /// language model alone, the features alone, or the full scorer (default: the
    /// checkpoint's own)
    #[arg(long, value_name = "TERMS", value_parser = RankerTerms::parse)]
    pub scorer: Option<RankerTerms>,
    /// Write the summary (JSON) here instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write one JSON line per reachable task here: where its gold repair ranked and
    /// which edit ranked first
    #[arg(long, value_name = "FILE")]
    pub per_task: Option<PathBuf>,
    /// With --per-task: also list, for the gold and the top candidate of each task, the K
    /// features that weigh most in their scores
    #[arg(long, value_name = "K", default_value_t = 0, requires = "per_task")]
    pub explain: usize,
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(args) => init(args),
        Command::Sft(args) => sft(args),
        Command::Eval(args) => eval::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Forward(args) => forward(args),
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The training repositories' source texts, in a fixed order.
fn training_sources(corpus: &Path) -> Result<Vec<String>> {
    let mut texts = Vec::new();
    let mut repos = stage_io::corpus::read_corpus(corpus).map_err(bad_input)?;
    repos.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    for (repo, root) in repos {
        if repo.split != schemas::Split::Train {
            continue;
        }
        stage_io::corpus::check_pinned(&repo, &root).map_err(bad_input)?;
        for rel in pyast::files::source_files(&root, &repo.src_dirs)? {
            if let Ok(text) = std::fs::read_to_string(root.join(&rel)) {
                texts.push(text);
            }
        }
    }
    if texts.is_empty() {
        return Err(BadInput::new(format!(
            "{}: no source files in the training repositories",
            corpus.display()
        ))
        .into());
    }
    Ok(texts)
}

/// Loads a checkpoint, turning a missing or broken one into bad input (exit 2).
fn load_checkpoint(dir: &Path) -> Result<checkpoint::Loaded<TrainBackend>> {
    checkpoint::load::<TrainBackend>(dir, &device()).map_err(bad_input)
}

/// What a finished (or periodically saved) run writes.
struct RunRecord<'a> {
    output: &'a Path,
    config: &'a ModelConfig,
    tokenizer: &'a SolverTokenizer,
    round: u32,
    base_step: u64,
    parent: Option<String>,
    data: Vec<schemas::DataRef>,
    /// The edit-kind prior of every task in the checkpoint's lineage.
    prior: Option<EditPrior>,
}

impl RunRecord<'_> {
    fn checkpoint_record(
        &self,
        step: usize,
        steps: &[StepMetrics],
        extra_metrics: &[(String, f64)],
    ) -> schemas::Checkpoint {
        let mut metrics = std::collections::BTreeMap::new();
        let tail: Vec<&StepMetrics> = steps.iter().rev().take(20).collect();
        if !tail.is_empty() {
            metrics.insert(
                "loss".into(),
                tail.iter().map(|m| m.loss).sum::<f64>() / tail.len() as f64,
            );
        }
        if let Some(last) = steps.last() {
            metrics.insert("tokens_per_s".into(), last.tokens_per_s);
            metrics.insert("train_seconds".into(), last.elapsed_s);
        }
        for (name, value) in extra_metrics {
            metrics.insert(name.clone(), *value);
        }
        let model = match serde_json::to_value(self.config) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        schemas::Checkpoint {
            schema: "checkpoint/1".into(),
            path: self.output.display().to_string(),
            round: self.round,
            step: self.base_step + step as u64,
            model,
            tokenizer: self
                .output
                .join(checkpoint::TOKENIZER)
                .display()
                .to_string(),
            metrics,
            parent: self.parent.clone(),
            data: self.data.clone(),
            extra: Default::default(),
        }
    }

    /// Writes the whole checkpoint directory and returns its record.
    fn save(
        &self,
        state: &TrainState<TrainBackend>,
        steps: &[StepMetrics],
        extra_metrics: &[(String, f64)],
    ) -> Result<schemas::Checkpoint> {
        let staging = Staging::new(self.output)?;
        let dir = &staging.dir;
        std::fs::write(dir.join(checkpoint::CONFIG), self.config.to_json())?;
        self.tokenizer.save(&dir.join(checkpoint::TOKENIZER))?;
        if let Some(prior) = &self.prior {
            prior.save(dir)?;
        }
        checkpoint::save_weights(&state.model, &dir.join(checkpoint::WEIGHTS))?;
        checkpoint::save_resume_model(&state.model, dir)?;
        state.save_optimizer(dir)?;
        let mut lines = String::new();
        for m in steps {
            lines.push_str(&serde_json::to_string(m)?);
            lines.push('\n');
        }
        std::fs::write(dir.join("metrics.jsonl"), lines)?;
        let record = self.checkpoint_record(state.step, steps, extra_metrics);
        std::fs::write(
            dir.join(checkpoint::RECORD),
            schemas::Record::to_json_line(&record) + "\n",
        )?;
        staging.commit()?;
        Ok(record)
    }
}

/// The exact training state saved in `dir` (model with its parameter ids, optimizer, step)
/// and the metrics of the steps already taken.
fn resume_state(
    model: Solver<TrainBackend>,
    dir: &Path,
    options: &TrainOptions,
) -> Result<(TrainState<TrainBackend>, Vec<StepMetrics>)> {
    let device = device();
    let model = checkpoint::load_resume_model(model, dir, &device).map_err(bad_input)?;
    let state = TrainState::resume(model, dir, options, &device).map_err(bad_input)?;
    let metrics = earlier_metrics(dir, state.step);
    Ok((state, metrics))
}

/// Earlier metrics of a resumed run, up to the step it resumes from.
fn earlier_metrics(dir: &Path, step: usize) -> Vec<StepMetrics> {
    #[derive(serde::Deserialize)]
    struct Line {
        step: usize,
        loss: f64,
        ranking_loss: Option<f64>,
        nll: Option<f64>,
        lr: f64,
        tokens: usize,
        tokens_per_s: f64,
        elapsed_s: f64,
    }
    let Ok(text) = std::fs::read_to_string(dir.join("metrics.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .filter(|l| l.step <= step)
        .map(|l| StepMetrics {
            step: l.step,
            loss: l.loss,
            ranking_loss: l.ranking_loss,
            nll: l.nll,
            lr: l.lr,
            tokens: l.tokens,
            tokens_per_s: l.tokens_per_s,
            elapsed_s: l.elapsed_s,
        })
        .collect()
}

/// Trains with a progress bar, writing `run`'s checkpoint of the run in progress every
/// `save_every` steps; returns the metrics.
fn run_training(
    run: &RunRecord,
    state: &mut TrainState<TrainBackend>,
    objective: &Objective,
    options: &TrainOptions,
    mut metrics: Vec<StepMetrics>,
    save_every: Option<usize>,
) -> Result<Vec<StepMetrics>> {
    let total = options
        .stop_after
        .unwrap_or(options.steps)
        .min(options.steps);
    let bar = stage_io::progress::items(total as u64, "training");
    bar.set_position(state.step as u64);
    let started = Instant::now();
    let (config, pad) = (run.config, run.tokenizer.pad);
    train(state, objective, config, options, pad, |m, state| {
        metrics.push(m.clone());
        bar.set_position(m.step as u64);
        bar.set_message(format!("loss {:.3}  {:.0} tok/s", m.loss, m.tokens_per_s));
        if m.step.is_multiple_of(25) || m.step == total {
            tracing::info!(
                "step {}/{total}: loss {:.4}, lr {:.2e}, {:.0} tokens/s, {:.0} s",
                m.step,
                m.loss,
                m.lr,
                m.tokens_per_s,
                m.elapsed_s
            );
        }
        if let Some(every) = save_every
            && every > 0
            && m.step.is_multiple_of(every)
        {
            run.save(state, &metrics, &[])?;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    if let Some(last) = metrics.last() {
        tracing::info!(
            "{} steps in {:.0} s: loss {:.3}, {:.0} tokens/s",
            state.step,
            started.elapsed().as_secs_f64(),
            last.loss,
            last.tokens_per_s
        );
    }
    Ok(metrics)
}

fn print_record(record: &schemas::Checkpoint) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", schemas::Record::to_json_line(record))?;
    Ok(())
}

fn init(args: InitArgs) -> Result<()> {
    let texts = training_sources(&args.corpus)?;
    tracing::info!(
        "{} source files from the training repositories",
        texts.len()
    );
    let device = device();
    let (config, tokenizer, mut state, metrics, options) = if let Some(dir) = &args.resume {
        let loaded = load_checkpoint(dir)?;
        let options = args.schedule.options(250, 8, 2e-3);
        let (state, metrics) = resume_state(loaded.model, dir, &options)?;
        (loaded.config, loaded.tokenizer, state, metrics, options)
    } else {
        let tokenizer = SolverTokenizer::train(texts.iter(), args.vocab)?;
        let mut config =
            ModelConfig::preset(&args.size, tokenizer.vocab_size()).map_err(bad_input)?;
        config.feature_norm = (args.feature_norm > 0).then_some(args.feature_norm);
        TrainBackend::seed(&device, args.schedule.seed);
        let options = args.schedule.options(250, 8, 2e-3);
        let state = TrainState::fresh(Solver::new(&config, &device), &options);
        (config, tokenizer, state, Vec::new(), options)
    };
    let chunks = code_chunks(texts.iter().map(String::as_str), &tokenizer, args.context);
    tracing::info!(
        "{} chunks of {} tokens; vocabulary {}",
        chunks.len(),
        args.context,
        tokenizer.vocab_size()
    );
    let objective = Objective::Language { chunks };
    let data = vec![schemas::DataRef {
        path: args.corpus.display().to_string(),
        sha256: sha256_file(&args.corpus)?,
    }];
    let run = RunRecord {
        output: &args.output,
        config: &config,
        tokenizer: &tokenizer,
        round: 0,
        base_step: 0,
        parent: None,
        data,
        prior: None,
    };
    let metrics = run_training(
        &run,
        &mut state,
        &objective,
        &options,
        metrics,
        args.schedule.save_every,
    )?;
    let record = run.save(&state, &metrics, &[])?;
    print_record(&record)
}

fn sft(args: SftArgs) -> Result<()> {
    let device = device();
    let start = args
        .resume
        .as_ref()
        .or(args.from.as_ref())
        .expect("clap requires --from or --resume");
    let mut loaded = load_checkpoint(start)?;
    let mut options = args.schedule.options(150, 8, 1e-3);
    if !(args.anchor.is_finite() && args.anchor >= 0.0) {
        return Err(BadInput::new(format!(
            "--anchor must be a number >= 0, not {}",
            args.anchor
        ))
        .into());
    }
    if args.hold_edit_prior && args.anchor <= 0.0 {
        return Err(BadInput::new("--hold-edit-prior needs --anchor A with A > 0").into());
    }
    let (parent, base_step, round) = match (&args.resume, &loaded.record) {
        (Some(_), Some(record)) => (
            record.parent.clone(),
            record.step.saturating_sub(record_run_steps(start)),
            record.round,
        ),
        (_, Some(record)) => (
            Some(start.display().to_string()),
            record.step,
            record.round + 1,
        ),
        (_, None) => (Some(start.display().to_string()), 0, 1),
    };
    let round = args.round.unwrap_or(round);
    if !(args.trace_weight.is_finite() && args.trace_weight >= 0.0) {
        return Err(BadInput::new(format!(
            "--trace-weight must be a number >= 0, not {}",
            args.trace_weight
        ))
        .into());
    }
    let tasks = load_tasks(&args.tasks)?;
    let corpus = args.corpus.path();
    let built = build_examples(&tasks, &corpus, &Default::default())?;
    let reachable = built.examples.iter().filter(|e| e.gold_enumerated).count();
    tracing::info!(
        "{} examples ({} with the gold repair among the templates' candidates, {} tasks skipped)",
        built.examples.len(),
        reachable,
        built.skipped
    );
    let from_traces = trace_examples(&args, &tasks, &corpus)?;
    if built.examples.is_empty() && from_traces.is_empty() {
        return Err(BadInput::new(format!(
            "none of the {} tasks gives a training example ({} skipped)",
            tasks.len(),
            built.skipped
        ))
        .into());
    }
    let mut config = loaded.config.clone();
    match (args.problem_table, loaded.config.problem_buckets) {
        (None, _) => {}
        (Some(0), _) => return Err(BadInput::new("--problem-table needs ROWS > 0").into()),
        (Some(rows), Some(has)) if rows != has => {
            return Err(BadInput::new(format!(
                "{}: the scorer has a problem table of {has} rows already, not {rows}",
                start.display()
            ))
            .into());
        }
        (Some(_), Some(_)) => {}
        (Some(_), None) if args.resume.is_some() => {
            return Err(BadInput::new(format!(
                "{}: the run has no problem table; resume it with the flags it started with",
                start.display()
            ))
            .into());
        }
        (Some(rows), None) => {
            loaded.model = loaded.model.with_extra_feature_rows(rows);
            config.problem_buckets = Some(rows);
        }
    }
    if args.hold_shared_table && (args.anchor <= 0.0 || config.problem_buckets.is_none()) {
        return Err(BadInput::new(
            "--hold-shared-table needs --anchor A with A > 0 and a problem table (--problem-table)",
        )
        .into());
    }
    config.ranker = Some(args.scorer.or(config.ranker).unwrap_or(RankerTerms::BOTH));
    if config.terms().features && !loaded.config.terms().features {
        // The features start training here (from an HF model or a language model alone):
        // they take today's scaling; a trained feature head keeps the one it learned with.
        config.feature_norm = Some(solver::config::DEFAULT_FEATURE_NORM);
    }
    tracing::info!("scorer terms: {}", config.terms().name());
    let budget = Budget::default();
    let encoded: Vec<_> = built
        .examples
        .iter()
        .chain(&from_traces)
        .map(|e| encode(e, &loaded.tokenizer, &budget, &config))
        .collect();
    options.anchor = args.anchor / encoded.len().max(1) as f64;
    let mut weights = vec![1.0; built.examples.len()];
    weights.resize(encoded.len(), args.trace_weight);
    let objective = Objective::Ranking {
        examples: encoded,
        weights,
        group: args.group.max(2),
        nll_weight: args.nll_weight,
    };
    // The anchor is the weights the run started from: the parent of a resumed run.
    let anchor = match (&parent, args.anchor > 0.0) {
        (_, false) => None,
        (Some(parent), true) if args.resume.is_some() => {
            let parent_dir = parent;
            let parent = load_checkpoint(Path::new(parent_dir))?;
            // A run that gave its scorer a problem table anchors the table at zero.
            let extra = match parent.config.problem_buckets {
                None => config.problem_buckets.unwrap_or(0),
                same if same == config.problem_buckets => 0,
                Some(rows) => {
                    return Err(BadInput::new(format!(
                        "{parent_dir}: its problem table ({rows} rows) is not the run's"
                    ))
                    .into());
                }
            };
            Some(Anchor::of(&parent.model.with_extra_feature_rows(extra)))
        }
        (None, true) if args.resume.is_some() => {
            return Err(BadInput::new(format!(
                "{}: the run names no parent checkpoint to anchor to",
                start.display()
            ))
            .into());
        }
        _ => Some(Anchor::of(&loaded.model)),
    };
    let (mut state, metrics) = if let Some(dir) = &args.resume {
        resume_state(loaded.model, dir, &options)?
    } else {
        TrainBackend::seed(&device, args.schedule.seed);
        (TrainState::fresh(loaded.model, &options), Vec::new())
    };
    if let Some(mut anchor) = anchor {
        // One mask for every hold asked for: the shared table holds the context-free rows too.
        let held: Vec<u32> = if args.hold_shared_table {
            tracing::info!("holding the shared feature table");
            (1..solver::features::BUCKETS as u32).collect()
        } else if args.hold_edit_prior {
            let held = solver::features::context_free_buckets(&built.examples);
            tracing::info!("holding {} context-free feature weights", held.len());
            held
        } else {
            Vec::new()
        };
        if !held.is_empty() {
            anchor = anchor.holding(&held);
        }
        state = state.anchored(anchor);
    }
    let mut data = Vec::new();
    for path in args
        .tasks
        .iter()
        .chain(&args.traces)
        .chain(&args.trace_tasks)
    {
        if path.as_os_str() != "-" {
            data.push(schemas::DataRef {
                path: path.display().to_string(),
                sha256: sha256_file(path)?,
            });
        }
    }
    // A resumed run saved its lineage's prior already; a new one adds its tasks to its parent's.
    let prior = match EditPrior::load(start).map_err(bad_input)? {
        Some(saved) if args.resume.is_some() => saved,
        inherited => {
            let mut prior = inherited.unwrap_or_default();
            prior.merge(&EditPrior::from_examples(&built.examples));
            prior
        }
    };
    let tokenizer = loaded.tokenizer.clone();
    let run = RunRecord {
        output: &args.output,
        config: &config,
        tokenizer: &tokenizer,
        round,
        base_step,
        parent,
        data,
        prior: Some(prior),
    };
    let metrics = run_training(
        &run,
        &mut state,
        &objective,
        &options,
        metrics,
        args.schedule.save_every,
    )?;
    let mut extra = vec![("trace_examples".to_string(), from_traces.len() as f64)];
    if !built.examples.is_empty() {
        extra.push((
            "train_reachable".to_string(),
            reachable as f64 / built.examples.len() as f64,
        ));
    }
    if let Some(eval_path) = &args.eval {
        let eval_tasks = load_tasks(std::slice::from_ref(eval_path))?;
        let model = solver::train::inference_model(&state.model);
        let summary = evaluate(
            &model,
            &config,
            &tokenizer,
            &eval_tasks,
            &corpus,
            Some(&tasks),
            0,
        )?;
        tracing::info!("{}", summary.headline());
        extra.extend(summary.metrics());
    }
    let record = run.save(&state, &metrics, &extra)?;
    print_record(&record)
}

/// The examples of `sft --traces`: the resolved traces' own repairs of tasks from the
/// training tasks or `--trace-tasks`.
fn trace_examples(
    args: &SftArgs,
    tasks: &[schemas::Task],
    corpus: &Path,
) -> Result<Vec<solver::example::RepairExample>> {
    if args.traces.is_empty() {
        return Ok(Vec::new());
    }
    let traces = load_traces(&args.traces)?;
    let trace_tasks = if args.trace_tasks.is_empty() {
        Vec::new()
    } else {
        load_tasks(&args.trace_tasks)?
    };
    let known: Vec<&schemas::Task> = tasks.iter().chain(&trace_tasks).collect();
    let built = build_trace_examples(&traces, &known, corpus, &Default::default())?;
    let resolved = traces
        .iter()
        .filter(|t| t.outcome.resolved && t.error.is_none())
        .count();
    tracing::info!(
        "{} of {} traces resolved their task: {} examples toward their own repairs",
        resolved,
        traces.len(),
        built.examples.len()
    );
    if built.examples.is_empty() {
        tracing::warn!("no trace gives an example: the tasks alone train the solver");
    }
    Ok(built.examples)
}

/// Steps that the run saved in `dir` took (its own metrics count them).
fn record_run_steps(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join(checkpoint::RESUME).join("step"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
