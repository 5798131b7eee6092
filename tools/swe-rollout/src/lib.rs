//! `swe-rollout`: runs a solver on repair tasks in the sandbox and writes one Trace per
//! attempt. Each attempt ([`rollout::Rollout::attempt`]) prepares the task's environment
//! (reproduce the failure with line tracing, localize it: [`environment`]), lets a
//! [`solvers::Solver`] repair it (the repair templates' edits ranked by a model and tested in
//! turn, or a chat model using tools), and analyses the result ([`analysis`]).
//!
//! Imports run one way, from the attempt down: [`rollout`] uses [`solvers`], which use
//! [`environment`], which uses [`localize`] and [`steps`]; [`analysis`], [`steps`] and
//! [`localize`] use no other module of the crate.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use rayon::prelude::*;
use sandbox::testbed::TestBedArgs;
use schemas::{Sampling, SolverInfo, Task, Trace};
use stage_io::cli::{LogArgs, OutputArgs, RunArgs};
use stage_io::input::Inputs;
use stage_io::output::Output;
use stage_io::{BadInput, progress};

pub mod analysis;
pub mod environment;
pub mod export;
pub mod localize;
pub mod rollout;
pub mod solvers;
pub mod steps;
pub mod summary;

use environment::{Harness, load_repos};
use rollout::Rollout;
use solvers::chat::ChatSolver;
use solvers::scorer::ModelScorer;
use solvers::templates::{PoolSettings, Settings, TemplateSolver};
use solvers::{Solver, SolverSpec};

const EXAMPLES: &str = "\
Examples:
  swe-rollout --solver model:.socratic/run/round-1/checkpoint data/eval/eval-set.jsonl \\
      -o traces.jsonl --summary
  swe-rollout --solver model:ckpt/base -k 4 --max-steps 2 --temperature 0.7 valid.jsonl \\
      --predictions preds.jsonl --trajectories trajs/
  OPENAI_API_KEY=... swe-rollout --solver openai:http://localhost:8000/v1#Qwen2.5-Coder-7B \\
      valid.jsonl -o traces.jsonl
  swe-rollout summarize traces.jsonl            # the summary of traces written before";

#[derive(Debug, Parser)]
#[command(
    name = "swe-rollout",
    version,
    about = "Run the solver on repair tasks in the sandbox and write one Trace per attempt",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Task files (`-` or none: stdin)
    pub inputs: Vec<PathBuf>,
    /// Accept an input without records (write an empty output) instead of failing as bad input
    #[arg(long)]
    pub allow_empty: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    /// `model:CHECKPOINT_DIR` (a solver-train checkpoint) or `openai:BASE_URL#MODEL` (an
    /// OpenAI-compatible chat-completions server that supports tool calls)
    #[arg(long, value_name = "SPEC", required_unless_present = "summarize")]
    pub solver: Option<String>,
    /// Built-in model: candidate edits tested per step
    #[arg(short = 'k', long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
    /// Sampling temperature over the candidates' scores (0: greedy)
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f64,
    /// Nucleus: sample among the most likely candidates holding this much probability
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f64,
    /// Built-in model: rounds of sampling and testing before the best attempt is submitted
    #[arg(long, default_value_t = 3)]
    pub max_steps: usize,
    /// Built-in model: functions, most suspicious first, whose candidate edits are considered
    #[arg(long, default_value_t = 3)]
    pub top_functions: usize,
    /// Built-in model: weight of the localization's log-suspiciousness beside the model's score
    #[arg(long, default_value_t = 1.0)]
    pub loc_weight: f64,
    /// Built-in model: weight of the checkpoint's edit-kind prior (how often each kind of change was the
    /// gold repair in its training tasks) beside the model's score; 0 ignores it. Only a checkpoint
    /// scoring with the language model alone uses it: learned features hold their own prior
    #[arg(long, default_value_t = 1.0)]
    pub prior_weight: f64,
    /// Chat solver: most replies of the model per task
    #[arg(long, default_value_t = 30)]
    pub max_turns: usize,
    #[command(flatten)]
    pub chat: chat::ChatArgs,
    /// Print the summary (resolve rate with a 95% interval, per family and repo) on stderr
    #[arg(long)]
    pub summary: bool,
    /// Before `swe-rollout summarize`: the inputs are Trace files, their summary goes to stdout
    #[arg(long, hide = true, conflicts_with_all = ["solver", "predictions", "trajectories"])]
    pub summarize: bool,
    /// Also write SWE-bench predictions (instance_id, model_patch, model_name_or_path)
    #[arg(long, value_name = "FILE")]
    pub predictions: Option<PathBuf>,
    /// Also write one mini-swe-agent-style trajectory JSON per task into DIR
    #[arg(long, value_name = "DIR")]
    pub trajectories: Option<PathBuf>,
    #[command(flatten)]
    pub bed: TestBedArgs,
    /// Tasks attempted at once (default: number of cores)
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read Trace files and write their summary (resolve rate with a 95% interval, per
    /// family and repository) as Markdown; run nothing
    Summarize(SummarizeArgs),
}

#[derive(Debug, clap::Args)]
pub struct SummarizeArgs {
    /// Trace files (`-` or none: stdin)
    pub inputs: Vec<PathBuf>,
    /// Write the summary to FILE (atomically) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

impl Cli {
    /// The logging flags of whichever command runs.
    pub fn log(&self) -> &LogArgs {
        match &self.command {
            Some(Command::Summarize(args)) => &args.log,
            None => &self.log,
        }
    }
}

/// Runs the command `cli` describes.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Summarize(args)) = &cli.command {
        return summarize(&args.inputs, args.output.as_deref());
    }
    if cli.summarize {
        tracing::warn!("--summarize is now a subcommand: `swe-rollout summarize TRACES`");
        return summarize(&cli.inputs, None);
    }
    let spec_text = cli.solver.clone().expect("clap requires --solver");
    let spec: SolverSpec = spec_text.parse().map_err(BadInput::new)?;
    if !(cli.top_p > 0.0 && cli.top_p <= 1.0) {
        return Err(BadInput::new("--top-p must be in (0, 1]").into());
    }

    let opened = Inputs::open(&cli.inputs)?;
    let mut records = opened.records::<Task>().shard(cli.run.shard);
    if cli.allow_empty {
        records = records.allow_empty();
    }
    let mut tasks: Vec<Task> = records.collect::<Result<_, _>>()?;
    let sampling = Sampling {
        temperature: cli.temperature,
        top_p: cli.top_p,
        k: cli.k,
        seed: cli.run.seed,
    };
    let (solver, checkpoint) = solver_of(&cli, &spec, &sampling)?;

    let corpus_path = cli.bed.corpus_path();
    let wanted: BTreeSet<&str> = tasks.iter().map(|t| t.repo.as_str()).collect();
    let (repos, test_cmds) = load_repos(&corpus_path, &wanted, &cli.bed)?;
    // An imported task carries no test command: its repository's runs.
    for task in &mut tasks {
        if let Some(repo_test_cmd) = test_cmds.get(&task.repo) {
            task.test_cmd = task.test_cmd_or(repo_test_cmd).to_string();
        }
    }

    let rollout = Rollout {
        harness: Harness {
            repos,
            bed: cli.bed.test_bed()?,
        },
        solver,
        info: SolverInfo {
            name: spec.to_string(),
            checkpoint,
            sampling,
            extra: Default::default(),
        },
    };

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(stage_io::cli::jobs(cli.jobs))
        .build()?;
    let bar = progress::items(tasks.len() as u64, "solving");
    let traces: Vec<Trace> = pool.install(|| {
        // One task a piece, so that a thread done early takes the other's next task
        // (as in task-validate).
        tasks
            .par_iter()
            .with_max_len(1)
            .map(|task| {
                let trace = rollout.attempt(task);
                if let Some(err) = &trace.error {
                    tracing::warn!("{}: {err}", task.instance_id);
                }
                bar.inc(1);
                trace
            })
            .collect()
    });
    bar.finish_and_clear();

    let mut out = Output::create(cli.out.output.as_deref())?;
    for trace in &traces {
        out.write(trace)?;
    }
    if let Some(path) = &cli.predictions {
        export::write_predictions(path, &traces)?;
    }
    if let Some(dir) = &cli.trajectories {
        export::write_trajectories(dir, &traces)?;
    }
    out.finish()?;

    let resolved = traces
        .iter()
        .filter(|t| t.outcome.resolved && t.error.is_none())
        .count();
    let errors = traces.iter().filter(|t| t.error.is_some()).count();
    tracing::info!(
        "{resolved} of {} tasks resolved; {errors} could not be attempted; {}",
        traces.len(),
        rollout.harness.bed.runs_summary()
    );
    if cli.summary {
        eprint!("{}", summary::render(&traces));
    }
    Ok(())
}

fn summarize(inputs: &[PathBuf], output: Option<&Path>) -> anyhow::Result<()> {
    let opened = Inputs::open(inputs)?;
    let traces: Vec<Trace> = opened.records::<Trace>().collect::<Result<_, _>>()?;
    let table = summary::render(&traces);
    match output {
        Some(path) if path != Path::new("-") => {
            stage_io::output::write_atomic(path, table.as_bytes())
        }
        _ => {
            print!("{table}");
            Ok(())
        }
    }
}

/// The solver `spec` names, set up from the flags, and its checkpoint if it has one; a
/// checkpoint that does not load is bad input.
fn solver_of(
    cli: &Cli,
    spec: &SolverSpec,
    sampling: &Sampling,
) -> anyhow::Result<(Box<dyn Solver>, Option<String>)> {
    Ok(match spec {
        SolverSpec::Model(path) => {
            let scorer = ModelScorer::load(path).map_err(stage_io::bad_input)?;
            if scorer.has_prior() && cli.prior_weight != 0.0 {
                tracing::info!(
                    "scoring with the checkpoint's edit-kind prior (weight {})",
                    cli.prior_weight
                );
            }
            let settings = Settings {
                sampling: sampling.clone(),
                max_steps: cli.max_steps,
                pool: PoolSettings {
                    top_functions: cli.top_functions,
                    max_window_lines: solver::example::ExampleOptions::default().max_window_lines,
                    loc_weight: cli.loc_weight,
                    prior_weight: cli.prior_weight,
                },
            };
            (
                Box::new(TemplateSolver::new(scorer, settings)),
                Some(path.display().to_string()),
            )
        }
        SolverSpec::OpenAi(endpoint) => (
            Box::new(ChatSolver {
                client: cli.chat.client(endpoint),
                sampling: sampling.clone(),
                max_turns: cli.max_turns,
            }),
            None,
        ),
    })
}
