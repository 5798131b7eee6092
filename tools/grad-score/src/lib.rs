//! `grad-score`: the solver-gradient alignment reward. For each valid task, the gradient of
//! the solver's ranking loss on the task's gold repair (the loss `solver-train sft`
//! minimises) is projected to `--dim` dimensions; its cosine with the target direction — the
//! mean projected gradient over trusted tasks the solver still fails — is the task's
//! alignment, and reward = validity × alignment. `--keep-top K` / `--keep-frac F` keep the
//! best tasks for training. `--params` restricts the gradient to some parameters;
//! `--precondition adam` compares Adam's step instead of the raw gradient.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use schemas::{Record, Score, Task, Trace};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use solver::checkpoint;
use solver::data::{Budget, encode};
use solver::example::ExampleOptions;
use solver::gradient::{
    AdamPreconditioner, GradientView, ParamSelection, example_gradient, select_parameters,
};
use solver::tasks::{build_examples, load_tasks};
use stage_io::cli::{LogArgs, OutputArgs, RunArgs};
use stage_io::corpus::CorpusArgs;
use stage_io::input::Inputs;
use stage_io::output::{Output, write_atomic};
use stage_io::{BadInput, progress};

pub mod project;

use project::{Projector, cosine, norm};

const EXAMPLES: &str = "\
Examples:
  grad-score --checkpoint ckpt/r1 --target dev.jsonl --target-traces dev-traces.jsonl \\
      --target-out target.json valid.jsonl -o scores.jsonl --keep-top 200 --kept kept.jsonl
  grad-score --checkpoint ckpt/r1 --target-in target.json valid.jsonl --keep-frac 0.5 --kept kept.jsonl
  # LESS-style: Adam steps of the last layers against the plain target gradient
  grad-score --checkpoint ckpt/r1 --target dev.jsonl --params 'layers.3.*,norm.*' \\
      --precondition adam valid.jsonl -o scores.jsonl
  # shards scored apart, then one selection over all their scores:
  cat scores-*.jsonl > scores.jsonl
  grad-score keep --scores scores.jsonl valid.jsonl --keep-frac 0.5 -o kept.jsonl
  # the control without the filter: the same number of tasks, drawn at random
  grad-score keep --random --seed 1 valid.jsonl --keep-frac 0.5 -o kept.jsonl";

#[derive(Debug, Parser)]
#[command(
    name = "grad-score",
    version,
    about = "Score valid tasks by how well the solver's gradient on them aligns with its gradient on the tasks it fails",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Valid Task files to score (`-` or none: stdin)
    pub inputs: Vec<PathBuf>,
    /// Accept an input without records (write an empty output) instead of failing as bad input
    #[arg(long)]
    pub allow_empty: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    /// The solver checkpoint whose gradients are compared
    #[arg(long, value_name = "DIR", required = true)]
    pub checkpoint: Option<PathBuf>,
    /// Trusted (dev) tasks that define the target direction
    #[arg(long, value_name = "FILE", required_unless_present = "target_in")]
    pub target: Option<PathBuf>,
    /// The solver's traces on the --target tasks: only the tasks it failed define the target
    #[arg(long, value_name = "FILE", requires = "target")]
    pub target_traces: Option<PathBuf>,
    /// `solver-train eval --per-task` output of this checkpoint on the --target tasks: only
    /// the tasks whose gold repair it does not rank first alone define the target (a task the
    /// file leaves out, its gold repair out of reach, counts as failed). No test runs, unlike
    /// --target-traces
    #[arg(
        long,
        value_name = "FILE",
        requires = "target",
        conflicts_with = "target_traces"
    )]
    pub target_ranks: Option<PathBuf>,
    /// Save the target direction here, to reuse for the round
    #[arg(long, value_name = "FILE")]
    pub target_out: Option<PathBuf>,
    /// A target direction saved by --target-out
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    pub target_in: Option<PathBuf>,
    /// Write the kept tasks here
    #[arg(long, value_name = "FILE")]
    pub kept: Option<PathBuf>,
    /// Keep the K tasks of highest reward (ties: smaller instance_id first)
    #[arg(
        long,
        value_name = "K",
        requires = "kept",
        conflicts_with = "keep_frac"
    )]
    pub keep_top: Option<usize>,
    /// Keep this fraction of the tasks, by reward
    #[arg(long, value_name = "F", requires = "kept", value_parser = fraction)]
    pub keep_frac: Option<f64>,
    /// Dimension of the projected gradients
    #[arg(long, default_value_t = 8192)]
    pub dim: usize,
    /// Output dimensions each gradient coordinate is hashed to
    #[arg(long, default_value_t = 4)]
    pub nonzeros: usize,
    /// Candidates in the ranking loss of one task (the gold repair and the first others)
    #[arg(long, default_value_t = 16)]
    pub max_candidates: usize,
    /// The parameters whose gradient is compared: comma-separated globs over the model's
    /// dotted module paths (`embed_tokens.weight`, `layers.N.self_attn.q_proj.weight`,
    /// `layers.N.mlp.down_proj.weight`, `layers.N.input_layernorm.gamma`, `norm.gamma`,
    /// `lm_head.weight`; `*` matches any run of characters), e.g. `layers.3.*,norm.*`
    #[arg(long, value_name = "GLOBS", default_value = "*", value_parser = ParamSelection::parse)]
    pub params: ParamSelection,
    /// Turn each scored task's gradient into the Adam step the checkpoint's optimizer state
    /// would take (as LESS does; the target stays the plain gradient). Needs the `resume/`
    /// state that solver-train saves
    #[arg(long, value_enum, default_value_t = Precondition::None)]
    pub precondition: Precondition,
    /// Tasks differentiated side by side, each on its own replica of the model (default: one
    /// per core); fewer bound the memory. The scores do not depend on it
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Score each task against the target tasks of its own bug family (their mean gradient),
    /// where the target has some; against the whole target otherwise. The whole target's mean
    /// leans to its largest family, so tasks of the others all score low
    #[arg(long)]
    pub by_family: bool,
    #[command(flatten)]
    pub corpus: CorpusArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precondition {
    None,
    Adam,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Keep the best tasks by the rewards of Score files (the merged shards of a run), or a
    /// seeded random draw of the same size (`--random`, the control without the filter)
    Keep(KeepArgs),
}

#[derive(Debug, clap::Args)]
pub struct KeepArgs {
    /// The Task files to choose from (`-` or none: stdin)
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Score records of these tasks (a task without one has reward 0)
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "random",
        conflicts_with = "random"
    )]
    pub scores: Vec<PathBuf>,
    /// Draw the tasks at random (seeded) instead of by reward
    #[arg(long)]
    pub random: bool,
    /// Keep K tasks
    #[arg(
        long,
        value_name = "K",
        conflicts_with = "keep_frac",
        required_unless_present = "keep_frac"
    )]
    pub keep_top: Option<usize>,
    /// Keep this fraction of the tasks (rounded to the nearest count)
    #[arg(long, value_name = "F", value_parser = fraction)]
    pub keep_frac: Option<f64>,
    /// A target saved by `--target-out`: keep the bug families in the proportions of its
    /// tasks (the failures), the best by reward inside each family; a family short of its
    /// share leaves its places to the best of the rest
    #[arg(long, value_name = "FILE", conflicts_with = "random")]
    pub mix_of: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// A saved target direction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub dim: usize,
    pub nonzeros: usize,
    pub seed: u64,
    /// sha256 of the checkpoint's tokenizer.json: gradients of another model do not compare.
    pub tokenizer_sha256: String,
    /// The `--params` globs the gradients cover.
    #[serde(default = "all_params")]
    pub params: String,
    pub tasks: Vec<String>,
    pub vector: Vec<f64>,
    /// The same mean over each bug family's target tasks alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub families: BTreeMap<String, FamilyTarget>,
}

/// The target direction of the target tasks of one bug family.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FamilyTarget {
    pub tasks: Vec<String>,
    pub vector: Vec<f64>,
}

/// A task's bug family, as task-gen records it (`?` for tasks that name none).
pub fn family_of(task: &Task) -> &str {
    task.provenance
        .extra
        .get("operator_family")
        .and_then(|v| v.as_str())
        .unwrap_or("?")
}

fn all_params() -> String {
    ParamSelection::default().spec()
}

/// One task's projected gradient and the norm of the compared one (the selected parameters'
/// gradient, or its Adam step).
struct Gradient {
    projected: Vec<f64>,
    norm: f64,
}

/// The solver and everything needed to take per-task gradients.
struct Scorer {
    model: solver::model::Solver<solver::TrainBackend>,
    config: solver::config::ModelConfig,
    tokenizer: solver::tokenizer::SolverTokenizer,
    projector: Projector,
    max_candidates: usize,
    selection: ParamSelection,
    adam: Option<AdamPreconditioner>,
    corpus: PathBuf,
    seed: u64,
    jobs: Option<usize>,
}

impl Scorer {
    /// The gradient of every task that gives a training example (in input order; `None` for
    /// the others: rejected, several files changed, no gold repair), Adam-preconditioned when
    /// `precondition` and the scorer has the optimizer state.
    fn gradients(
        &self,
        tasks: &[Task],
        what: &str,
        precondition: bool,
    ) -> Result<Vec<Option<Gradient>>> {
        let view = GradientView {
            selection: self.selection.clone(),
            adam: self.adam.as_ref().filter(|_| precondition),
        };
        let options = ExampleOptions {
            seed: self.seed,
            ..ExampleOptions::default()
        };
        let built = build_examples(tasks, &self.corpus, &options)?;
        let budget = Budget::default();
        let encoded: Vec<_> = built
            .examples
            .iter()
            .map(|example| encode(example, &self.tokenizer, &budget, &self.config))
            .collect();
        let bar = progress::items(encoded.len() as u64, what);
        // Tasks are independent: each thread takes every n-th one with a copy of the model
        // (its own autodiff graph), so the scores do not depend on the number of threads.
        let threads = stage_io::cli::jobs(self.jobs).min(encoded.len().max(1));
        let gradient = |model: &solver::model::Solver<solver::TrainBackend>, i: usize| {
            let flat = example_gradient(
                model,
                &encoded[i],
                &self.config,
                self.tokenizer.pad,
                self.max_candidates,
                &view,
            );
            bar.inc(1);
            flat.map(|flat| {
                let finite = flat.iter().all(|g| g.is_finite());
                let norm = flat
                    .iter()
                    .map(|&g| f64::from(g) * f64::from(g))
                    .sum::<f64>()
                    .sqrt();
                (finite, self.projector.project(&flat), norm)
            })
        };
        let mut results: Vec<_> = (0..encoded.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let replica = self.model.replica();
                    let gradient = &gradient;
                    let count = encoded.len();
                    scope.spawn(move || {
                        (t..count)
                            .step_by(threads)
                            .map(|i| (i, gradient(&replica, i)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                for (i, result) in handle.join().expect("a scoring thread panicked") {
                    results[i] = result;
                }
            }
        });
        let mut out: Vec<Option<Gradient>> = (0..tasks.len()).map(|_| None).collect();
        for (result, &index) in results.into_iter().zip(&built.task_index) {
            let Some((finite, projected, norm)) = result else {
                continue;
            };
            if !finite {
                return Err(BadInput::new(format!(
                    "the gradient of task {} is not finite (NaN or infinite): the checkpoint may \
                     have diverged; score with an earlier one",
                    tasks[index].instance_id
                ))
                .into());
            }
            out[index] = Some(Gradient { projected, norm });
        }
        bar.finish_and_clear();
        Ok(out)
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Tasks of `tasks` whose trace in `traces` did not resolve them (harness errors excluded).
fn failed_tasks(tasks: Vec<Task>, traces: &Path) -> Result<Vec<Task>> {
    let mut failed = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for trace in Inputs::open(&[traces.to_path_buf()])?.records::<Trace>() {
        let trace = trace?;
        if trace.error.is_some() {
            continue;
        }
        seen.insert(trace.instance_id.clone());
        if !trace.outcome.resolved {
            failed.insert(trace.instance_id);
        }
    }
    let total = tasks
        .iter()
        .filter(|t| seen.contains(&t.instance_id))
        .count();
    let kept: Vec<Task> = tasks
        .into_iter()
        .filter(|t| failed.contains(&t.instance_id))
        .collect();
    if kept.is_empty() {
        return Err(BadInput::new(format!(
            "the solver fails none of the {total} target tasks traced in {}: there is nothing \
             to align with; give a harder dev set, or --target alone to align with all of it",
            traces.display()
        ))
        .into());
    }
    Ok(kept)
}

/// Where `solver-train eval --per-task` put one task's gold repair.
#[derive(Deserialize)]
struct GoldRank {
    instance_id: String,
    better: usize,
    ties: usize,
}

/// Tasks of `tasks` whose gold repair the solver does not rank first alone in `ranks`, or
/// that `ranks` leaves out (the gold repair is not among the candidates).
fn misranked_tasks(tasks: Vec<Task>, ranks: &Path) -> Result<Vec<Task>> {
    let text = std::fs::read_to_string(ranks)
        .with_context(|| format!("cannot read {}", ranks.display()))?;
    let mut first = std::collections::BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rank: GoldRank = serde_json::from_str(line).map_err(|e| {
            BadInput::new(format!(
                "{}:{}: not a line of `solver-train eval --per-task`: {e}",
                ranks.display(),
                n + 1
            ))
        })?;
        if rank.better == 0 && rank.ties == 0 {
            first.insert(rank.instance_id);
        }
    }
    let total = tasks.len();
    let kept: Vec<Task> = tasks
        .into_iter()
        .filter(|t| !first.contains(&t.instance_id))
        .collect();
    if kept.is_empty() {
        return Err(BadInput::new(format!(
            "the solver ranks the gold repair first for all {total} target tasks in {}: there \
             is nothing to align with; give a harder dev set, or --target alone to align with \
             all of it",
            ranks.display()
        ))
        .into());
    }
    Ok(kept)
}

fn target_id(tasks: &[String], projector: &Projector, params: &ParamSelection) -> String {
    let mut hasher = Sha256::new();
    for id in tasks {
        hasher.update(id.as_bytes());
        hasher.update([0]);
    }
    hasher.update(format!(
        "{}/{}/{}",
        projector.dim, projector.nonzeros, projector.seed
    ));
    if *params != ParamSelection::default() {
        hasher.update(format!("/{}", params.spec()));
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("target-{digest}-n{}", tasks.len())
}

/// Indices of the tasks to keep: the `k` of highest reward, ties broken by instance id.
pub fn select_top(scores: &[Score], k: usize) -> Vec<usize> {
    let ranked: Vec<(f64, &str)> = scores
        .iter()
        .map(|s| (s.reward, s.instance_id.as_str()))
        .collect();
    top_by_reward(&ranked, k)
}

/// Indices of the `k` (reward, instance id) pairs of highest reward, ties broken by id, in
/// input order.
fn top_by_reward(ranked: &[(f64, &str)], k: usize) -> Vec<usize> {
    let mut order = best_first(ranked);
    order.truncate(k);
    order.sort_unstable();
    order
}

/// Indices of the (reward, instance id) pairs, highest reward first, ties by id.
fn best_first(ranked: &[(f64, &str)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ranked.len()).collect();
    order.sort_by(|&a, &b| {
        ranked[b]
            .0
            .total_cmp(&ranked[a].0)
            .then_with(|| ranked[a].1.cmp(ranked[b].1))
    });
    order
}

/// Indices of `k` tasks whose bug families follow `mix` (family → weight): each family gets
/// its share of `k` (largest remainders), filled by the family's tasks of highest reward; the
/// places a family cannot fill go to the best remaining tasks of any family. Input order.
pub fn top_in_mix(
    ranked: &[(f64, &str)],
    families: &[&str],
    mix: &BTreeMap<&str, usize>,
    k: usize,
) -> Vec<usize> {
    let k = k.min(ranked.len());
    let total: usize = mix.values().sum();
    let mut quota: BTreeMap<&str, usize> = BTreeMap::new();
    if total > 0 {
        let exact: Vec<(&str, f64)> = mix
            .iter()
            .map(|(f, &w)| (*f, k as f64 * w as f64 / total as f64))
            .collect();
        for (f, x) in &exact {
            quota.insert(f, x.floor() as usize);
        }
        let mut left = k - quota.values().sum::<usize>();
        let mut by_remainder = exact.clone();
        by_remainder.sort_by(|a, b| (b.1 - b.1.floor()).total_cmp(&(a.1 - a.1.floor())));
        for (f, _) in by_remainder {
            if left == 0 {
                break;
            }
            *quota.get_mut(f).expect("every family has a quota") += 1;
            left -= 1;
        }
    }
    let order = best_first(ranked);
    let mut chosen = vec![false; ranked.len()];
    let mut kept = 0;
    for &i in &order {
        if let Some(q) = quota.get_mut(families[i])
            && *q > 0
        {
            *q -= 1;
            chosen[i] = true;
            kept += 1;
        }
    }
    for &i in &order {
        if kept == k {
            break;
        }
        if !chosen[i] {
            chosen[i] = true;
            kept += 1;
        }
    }
    (0..ranked.len()).filter(|&i| chosen[i]).collect()
}

/// `--keep-frac`: a number in [0, 1].
fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{text}`: expected a fraction in [0, 1]")),
    }
}

/// How many of `n` tasks `--keep-top K` / `--keep-frac F` keep.
fn keep_count(keep_top: Option<usize>, keep_frac: Option<f64>, n: usize) -> usize {
    match (keep_top, keep_frac) {
        (Some(k), _) => k,
        (None, Some(f)) => (f * n as f64).round() as usize,
        (None, None) => n,
    }
}

/// Indices of `k` of the tasks drawn at random for `seed`: each task's rank is a hash of the
/// seed and its id, so the draw does not depend on the tasks' order or on sharding.
pub fn select_random(ids: &[String], k: usize, seed: u64) -> Vec<usize> {
    let rank = |id: &str| {
        let mut hasher = Sha256::new();
        hasher.update(seed.to_le_bytes());
        hasher.update(id.as_bytes());
        hasher.finalize()
    };
    let mut order: Vec<(_, usize)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (rank(id), i))
        .collect();
    order.sort();
    let mut kept: Vec<usize> = order.into_iter().take(k).map(|(_, i)| i).collect();
    kept.sort_unstable();
    kept
}

/// What a score's reward compares: its target and how the task's vector was made.
fn score_kind(score: &Score) -> String {
    let field = |key: &str| score.extra.get(key).and_then(|v| v.as_str()).unwrap_or("-");
    let by_family = score.extra.get("by_family").and_then(|v| v.as_bool()) == Some(true);
    format!(
        "target {}, params {}, precondition {}{}",
        score.target_id,
        field("params"),
        field("precondition"),
        if by_family { ", by family" } else { "" }
    )
}

fn keep(args: &KeepArgs) -> Result<()> {
    if args.run.shard.is_some() {
        return Err(BadInput::new(
            "keep chooses among all tasks: --shard does not apply (merge the shards' scores first)",
        )
        .into());
    }
    let tasks: Vec<Task> = Inputs::open(&args.inputs)?
        .records::<Task>()
        .allow_empty()
        .collect::<Result<_, _>>()?;
    let k = keep_count(args.keep_top, args.keep_frac, tasks.len());
    let chosen = if args.random {
        let ids: Vec<String> = tasks.iter().map(|t| t.instance_id.clone()).collect();
        select_random(&ids, k, args.run.seed)
    } else {
        let mut rewards = std::collections::HashMap::new();
        let mut kinds = std::collections::BTreeSet::new();
        for score in Inputs::open(&args.scores)?.records::<Score>().allow_empty() {
            let score = score?;
            kinds.insert(score_kind(&score));
            rewards.insert(score.instance_id, score.reward);
        }
        if kinds.len() > 1 {
            return Err(BadInput::new(format!(
                "the scores were made in different ways and do not rank together: {}",
                kinds.into_iter().collect::<Vec<_>>().join("; ")
            ))
            .into());
        }
        let mut missing = 0;
        let ranked: Vec<(f64, &str)> = tasks
            .iter()
            .map(|task| {
                let reward = rewards.get(&task.instance_id).copied().unwrap_or_else(|| {
                    missing += 1;
                    0.0
                });
                (reward, task.instance_id.as_str())
            })
            .collect();
        if missing > 0 {
            tracing::warn!("{missing} of {} tasks have no score: reward 0", tasks.len());
        }
        match &args.mix_of {
            None => top_by_reward(&ranked, k),
            Some(path) => {
                let target: Target = serde_json::from_slice(
                    &std::fs::read(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                )
                .map_err(|e| {
                    BadInput::new(format!("{}: not a saved target: {e}", path.display()))
                })?;
                if target.families.is_empty() {
                    return Err(BadInput::new(format!(
                        "{}: the target has no families (saved by an older grad-score): \
                         recompute it with --target",
                        path.display()
                    ))
                    .into());
                }
                let mix: BTreeMap<&str, usize> = target
                    .families
                    .iter()
                    .map(|(name, f)| (name.as_str(), f.tasks.len()))
                    .collect();
                let families: Vec<&str> = tasks.iter().map(family_of).collect();
                top_in_mix(&ranked, &families, &mix, k)
            }
        }
    };
    let mut out = Output::create(args.out.output.as_deref())?;
    for &index in &chosen {
        out.write(&tasks[index])?;
    }
    out.finish()?;
    tracing::info!(
        "kept {} of {} tasks ({})",
        chosen.len(),
        tasks.len(),
        if args.random {
            "at random"
        } else if args.mix_of.is_some() {
            "by reward, in the target's family mix"
        } else {
            "by reward"
        }
    );
    Ok(())
}

pub fn run(cli: Cli) -> Result<()> {
    if let Some(Command::Keep(args)) = &cli.command {
        return keep(args);
    }
    let checkpoint_dir = cli.checkpoint.clone().expect("clap requires --checkpoint");
    if cli.dim == 0 || cli.nonzeros == 0 {
        return Err(BadInput::new("--dim and --nonzeros must be at least 1").into());
    }
    let device = solver::device();
    let mut loaded = checkpoint::load::<solver::TrainBackend>(&checkpoint_dir, &device)
        .map_err(stage_io::bad_input)?;
    select_parameters(&loaded.model, &cli.params).map_err(BadInput::new)?;
    let adam = match cli.precondition {
        Precondition::None => None,
        Precondition::Adam => {
            // The optimizer state is keyed by the parameter ids of the resume copy.
            loaded.model = checkpoint::load_resume_model(loaded.model, &checkpoint_dir, &device)
                .map_err(|err| BadInput::new(format!("--precondition adam: {err:#}")))?;
            let adam =
                AdamPreconditioner::load(&checkpoint_dir, &loaded.model, &cli.params, &device)
                    .map_err(|err| BadInput::new(format!("--precondition adam: {err:#}")))?;
            tracing::info!(
                "Adam state of {} parameters from {}",
                adam.covered(),
                checkpoint_dir.display()
            );
            Some(adam)
        }
    };
    let tokenizer_sha256 = sha256_file(&checkpoint_dir.join(checkpoint::TOKENIZER))?;
    let projector = Projector {
        dim: cli.dim,
        nonzeros: cli.nonzeros,
        seed: cli.run.seed,
    };
    let scorer = Scorer {
        model: loaded.model,
        config: loaded.config,
        tokenizer: loaded.tokenizer,
        projector,
        max_candidates: cli.max_candidates.max(2),
        selection: cli.params.clone(),
        adam,
        corpus: cli.corpus.path(),
        seed: cli.run.seed,
        jobs: cli.jobs,
    };

    let target = match &cli.target_in {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let target: Target = serde_json::from_str(&text)
                .map_err(|err| BadInput::new(format!("{}: not a target: {err}", path.display())))?;
            if (target.dim, target.nonzeros, target.seed) != (cli.dim, cli.nonzeros, cli.run.seed) {
                return Err(BadInput::new(format!(
                    "{} was projected with --dim {} --nonzeros {} --seed {}; pass the same flags",
                    path.display(),
                    target.dim,
                    target.nonzeros,
                    target.seed
                ))
                .into());
            }
            if target.params != cli.params.spec() {
                return Err(BadInput::new(format!(
                    "{} covers the parameters `{}`; pass --params '{}'",
                    path.display(),
                    target.params,
                    target.params
                ))
                .into());
            }
            if target.tokenizer_sha256 != tokenizer_sha256 {
                return Err(BadInput::new(format!(
                    "{} was computed with another tokenizer than {}'s: recompute it with --target",
                    path.display(),
                    checkpoint_dir.display()
                ))
                .into());
            }
            target
        }
        None => {
            let path = cli
                .target
                .as_ref()
                .expect("clap requires --target or --target-in");
            let mut tasks = load_tasks(std::slice::from_ref(path))?;
            if let Some(traces) = &cli.target_traces {
                tasks = failed_tasks(tasks, traces)?;
            }
            if let Some(ranks) = &cli.target_ranks {
                tasks = misranked_tasks(tasks, ranks)?;
            }
            let gradients = scorer.gradients(&tasks, "target gradients", false)?;
            let mut vector = vec![0.0; cli.dim];
            let mut ids = Vec::new();
            let mut families: BTreeMap<String, FamilyTarget> = BTreeMap::new();
            for (task, gradient) in tasks.iter().zip(&gradients) {
                if let Some(gradient) = gradient {
                    let family = families
                        .entry(family_of(task).to_string())
                        .or_insert_with(|| FamilyTarget {
                            tasks: Vec::new(),
                            vector: vec![0.0; cli.dim],
                        });
                    for ((v, f), g) in vector
                        .iter_mut()
                        .zip(family.vector.iter_mut())
                        .zip(&gradient.projected)
                    {
                        *v += g;
                        *f += g;
                    }
                    ids.push(task.instance_id.clone());
                    family.tasks.push(task.instance_id.clone());
                }
            }
            for family in families.values_mut() {
                let n = family.tasks.len() as f64;
                family.vector.iter_mut().for_each(|v| *v /= n);
            }
            if ids.is_empty() {
                return Err(BadInput::new(format!(
                    "none of the {} target tasks in {} gives a training example",
                    tasks.len(),
                    path.display()
                ))
                .into());
            }
            for v in &mut vector {
                *v /= ids.len() as f64;
            }
            Target {
                id: target_id(&ids, &projector, &cli.params),
                dim: cli.dim,
                nonzeros: cli.nonzeros,
                seed: cli.run.seed,
                tokenizer_sha256,
                params: cli.params.spec(),
                tasks: ids,
                vector,
                families,
            }
        }
    };
    if cli.by_family && target.families.is_empty() {
        return Err(BadInput::new(
            "--by-family: the saved target has no families (saved by an older grad-score): \
             recompute it with --target",
        )
        .into());
    }
    if norm(&target.vector) == 0.0 {
        bail!("the target direction is zero: its tasks give no gradient");
    }
    if let Some(path) = &cli.target_out {
        write_atomic(path, serde_json::to_string(&target)?.as_bytes())?;
    }

    let mut records = Inputs::open(&cli.inputs)?
        .records::<Task>()
        .shard(cli.run.shard);
    if cli.allow_empty {
        records = records.allow_empty();
    }
    let tasks: Vec<Task> = records.collect::<Result<_, _>>()?;
    let gradients = scorer.gradients(&tasks, "scoring", true)?;
    let checkpoint = checkpoint_dir.display().to_string();
    // How the compared vectors were made, when it is not the default: scores made otherwise
    // do not rank together.
    let mut how = schemas::Extra::new();
    if cli.params != ParamSelection::default() {
        how.insert("params".into(), cli.params.spec().into());
    }
    if cli.precondition == Precondition::Adam {
        how.insert("precondition".into(), "adam".into());
    }
    if cli.by_family {
        how.insert("by_family".into(), true.into());
    }
    let scores: Vec<Score> = tasks
        .iter()
        .zip(&gradients)
        .map(|(task, gradient)| {
            let valid = task.rejection.is_none() && !task.fail_to_pass.is_empty();
            let direction = match target.families.get(family_of(task)) {
                Some(family) if cli.by_family => &family.vector,
                _ => &target.vector,
            };
            let (alignment, grad_norm) = gradient
                .as_ref()
                .map_or((0.0, 0.0), |g| (cosine(&g.projected, direction), g.norm));
            Score {
                schema: Score::tag(),
                instance_id: task.instance_id.clone(),
                valid,
                alignment,
                reward: if valid { alignment } else { 0.0 },
                grad_norm,
                target_id: target.id.clone(),
                checkpoint: Some(checkpoint.clone()),
                extra: how.clone(),
            }
        })
        .collect();

    let mut out = Output::create(cli.out.output.as_deref())?;
    for score in &scores {
        out.write(score)?;
    }
    if let Some(path) = &cli.kept {
        let k = keep_count(cli.keep_top, cli.keep_frac, scores.len());
        let mut kept = Output::create(Some(path))?;
        for index in select_top(&scores, k) {
            kept.write(&tasks[index])?;
        }
        kept.finish()?;
    }
    out.finish()?;
    let scored = gradients.iter().filter(|g| g.is_some()).count();
    let mean = scores.iter().map(|s| s.alignment).sum::<f64>() / scores.len().max(1) as f64;
    tracing::info!(
        "{scored} of {} tasks scored against {} ({} tasks); mean alignment {mean:.3}",
        tasks.len(),
        target.id,
        target.tasks.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(id: &str, reward: f64) -> Score {
        Score {
            schema: Score::tag(),
            instance_id: id.into(),
            valid: true,
            alignment: reward,
            reward,
            grad_norm: 1.0,
            target_id: "t".into(),
            checkpoint: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn the_top_k_by_reward_are_kept_with_ties_broken_by_id() {
        let scores = [
            score("d", 0.5),
            score("c", 0.9),
            score("b", 0.5),
            score("a", -0.2),
            score("e", 0.5),
        ];
        // 0.9 (c), then the 0.5 tie in id order: b, d, e.
        assert_eq!(select_top(&scores, 3), [0, 1, 2]);
        assert_eq!(select_top(&scores, 1), [1]);
        assert_eq!(select_top(&scores, 9).len(), 5);
        assert!(select_top(&scores, 0).is_empty());
    }

    #[test]
    fn a_mixed_keep_follows_the_family_shares_and_fills_short_families_with_the_best() {
        let ranked = [
            (0.9, "a1"),
            (0.8, "a2"),
            (0.7, "a3"),
            (0.6, "a4"),
            (-0.5, "b1"),
            (-0.6, "b2"),
            (-0.9, "c1"),
        ];
        let families = ["a", "a", "a", "a", "b", "b", "c"];
        // Shares a 2 : b 1 : d 1 of 4 places; d has no task, so its place goes to a3.
        let mix = BTreeMap::from([("a", 2), ("b", 1), ("d", 1)]);
        assert_eq!(top_in_mix(&ranked, &families, &mix, 4), [0, 1, 2, 4]);
        // Plain top-k would keep only family a.
        assert_eq!(top_by_reward(&ranked, 4), [0, 1, 2, 3]);
        // Never more than there are.
        assert_eq!(top_in_mix(&ranked, &families, &mix, 10).len(), 7);
    }

    #[test]
    fn keep_frac_is_a_fraction_and_rounds_to_the_nearest_count() {
        assert_eq!(fraction("0.5"), Ok(0.5));
        assert!(fraction("1.5").is_err());
        assert!(fraction("-0.1").is_err());
        assert!(fraction("half").is_err());
        assert_eq!(keep_count(None, Some(0.5), 5), 3);
        assert_eq!(keep_count(Some(2), None, 5), 2);
        assert_eq!(keep_count(None, None, 5), 5);
    }

    #[test]
    fn a_random_draw_depends_on_the_seed_and_ids_not_on_their_order() {
        let ids: Vec<String> = (0..20).map(|i| format!("task-{i}")).collect();
        let kept = select_random(&ids, 5, 7);
        assert_eq!(kept.len(), 5);
        let mut reversed = ids.clone();
        reversed.reverse();
        let kept_reversed: std::collections::BTreeSet<&String> = select_random(&reversed, 5, 7)
            .iter()
            .map(|&i| &reversed[i])
            .collect();
        let kept_ids: std::collections::BTreeSet<&String> = kept.iter().map(|&i| &ids[i]).collect();
        assert_eq!(kept_ids, kept_reversed);
        assert_ne!(
            select_random(&ids, 5, 8),
            kept,
            "another seed draws other tasks"
        );
        assert_eq!(select_random(&ids, 30, 7).len(), 20);
    }
}
