//! `swe-rollout`: runs the solver on repair tasks in the sandbox and writes one Trace per
//! attempt. The loop (see [`episode`]): reproduce the failure with line tracing, localize
//! (Ochiai + tracebacks), propose the repair templates' edits in the most suspicious
//! functions, score them with the model, sample k distinct edits (temperature, top-p,
//! seeded), test each, let a partial success steer the next draw, and submit the best.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use clap::Parser;
use rayon::prelude::*;
use sandbox::testbed::{RepoTree, TestBedArgs};
use schemas::{Sampling, SolverInfo, Task, Trace};
use serde_json::json;
use stage_io::cli::{LogArgs, OutputArgs, RunArgs};
use stage_io::input::Inputs;
use stage_io::output::{Output, write_atomic};
use stage_io::{BadInput, progress};

mod agent;
pub mod episode;
pub mod localize;
pub mod policy;
pub mod proposer;
pub mod summary;

use episode::{Harness, RepoEntry, Settings, SolverImpl};
use proposer::{ModelScorer, SolverSpec};

const EXAMPLES: &str = "\
Examples:
  swe-rollout --solver model:.socratic/run/round-1/checkpoint data/eval/eval-set.jsonl \\
      -o traces.jsonl --summary
  swe-rollout --solver model:ckpt/base -k 4 --max-steps 2 --temperature 0.7 valid.jsonl \\
      --predictions preds.jsonl --trajectories trajs/
  OPENAI_API_KEY=... swe-rollout --solver openai:http://localhost:8000/v1#Qwen2.5-Coder-7B \\
      valid.jsonl -o traces.jsonl
  swe-rollout --summarize traces.jsonl          # the summary of traces written before";

#[derive(Debug, Parser)]
#[command(
    name = "swe-rollout",
    version,
    about = "Run the solver on repair tasks in the sandbox and write one Trace per attempt",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Task files (`-` or none: stdin); with --summarize, Trace files
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
    /// Read Trace files and print their summary on stdout; run nothing
    #[arg(long, conflicts_with_all = ["solver", "predictions", "trajectories"])]
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

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.summarize {
        return summarize(&cli);
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
    let (solver_impl, checkpoint) = match &spec {
        SolverSpec::Model(path) => {
            let scorer =
                ModelScorer::load(path).map_err(|err| BadInput::new(format!("{err:#}")))?;
            if scorer.has_prior() && cli.prior_weight != 0.0 {
                tracing::info!(
                    "scoring with the checkpoint's edit-kind prior (weight {})",
                    cli.prior_weight
                );
            }
            (
                SolverImpl::Model(Box::new(Mutex::new(scorer))),
                Some(path.display().to_string()),
            )
        }
        SolverSpec::OpenAi(endpoint) => {
            let client = cli.chat.client(endpoint);
            (SolverImpl::Chat(client), None)
        }
    };

    let corpus_path = cli.bed.corpus_path();
    let wanted: BTreeSet<&str> = tasks.iter().map(|t| t.repo.as_str()).collect();
    let (repos, test_cmds) = load_repos(&corpus_path, &wanted, &cli.bed)?;
    // An imported task carries no test command: its repository's runs.
    for task in &mut tasks {
        if let Some(repo_test_cmd) = test_cmds.get(&task.repo) {
            task.test_cmd = task.test_cmd_or(repo_test_cmd).to_string();
        }
    }

    let sampling = Sampling {
        temperature: cli.temperature,
        top_p: cli.top_p,
        k: cli.k,
        seed: cli.run.seed,
    };
    let harness = Harness {
        repos,
        bed: cli.bed.test_bed()?,
        solver_impl,
        solver: SolverInfo {
            name: spec.to_string(),
            checkpoint,
            sampling: sampling.clone(),
            extra: Default::default(),
        },
        settings: Settings {
            sampling,
            max_steps: cli.max_steps,
            top_functions: cli.top_functions,
            loc_weight: cli.loc_weight,
            prior_weight: cli.prior_weight,
            max_window_lines: solver::example::ExampleOptions::default().max_window_lines,
            max_turns: cli.max_turns,
        },
    };

    let jobs = cli
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()?;
    let bar = progress::items(tasks.len() as u64, "solving");
    let traces: Vec<Trace> = pool.install(|| {
        tasks
            .par_iter()
            .map(|task| {
                let trace = harness.attempt(task);
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
        write_predictions(path, &traces)?;
    }
    if let Some(dir) = &cli.trajectories {
        write_trajectories(dir, &traces)?;
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
        harness.bed.runs_summary()
    );
    if cli.summary {
        eprint!("{}", summary::render(&traces));
    }
    Ok(())
}

fn summarize(cli: &Cli) -> anyhow::Result<()> {
    let opened = Inputs::open(&cli.inputs)?;
    let traces: Vec<Trace> = opened.records::<Trace>().collect::<Result<_, _>>()?;
    print!("{}", summary::render(&traces));
    Ok(())
}

/// The corpus's repositories that `wanted` names, and their test commands; one whose
/// source is missing on disk, changed since it was pinned, or that the test bed refuses
/// (see `TestBedArgs::refusal`) is kept as [`RepoEntry::Unusable`], so only its tasks fail.
#[allow(clippy::type_complexity)]
fn load_repos(
    path: &Path,
    wanted: &BTreeSet<&str>,
    bed: &TestBedArgs,
) -> anyhow::Result<(HashMap<String, RepoEntry>, HashMap<String, String>)> {
    let mut repos = HashMap::new();
    let mut test_cmds = HashMap::new();
    for entry in stage_io::corpus::read_corpus_entries(path)? {
        let (repo, root) = (entry.repo, entry.root);
        if !wanted.contains(repo.id.as_str()) {
            continue;
        }
        test_cmds.insert(repo.id.clone(), repo.test_cmd.clone());
        let unusable = entry
            .unusable
            .or_else(|| {
                stage_io::corpus::check_pinned(&repo, &root)
                    .err()
                    .map(|err| format!("{err:#}"))
            })
            .or_else(|| bed.refusal(&repo));
        let entry = match unusable {
            Some(why) => {
                tracing::warn!("{why}");
                RepoEntry::Unusable(why)
            }
            None => {
                let sources = pyast::files::source_files(&root, &repo.src_dirs)
                    .with_context(|| format!("cannot list the sources of {}", root.display()))?
                    .into_iter()
                    .collect();
                RepoEntry::Ready {
                    tree: RepoTree::new(root)?,
                    sources,
                }
            }
        };
        repos.insert(repo.id.clone(), entry);
    }
    Ok((repos, test_cmds))
}

/// SWE-bench predictions: one JSON object a line.
fn write_predictions(path: &Path, traces: &[Trace]) -> anyhow::Result<()> {
    let mut out = Output::create(Some(path))?;
    for trace in traces {
        out.write_line(
            &json!({
                "instance_id": trace.instance_id,
                "model_patch": trace.patch,
                "model_name_or_path": trace.solver.name,
            })
            .to_string(),
        )?;
    }
    out.finish()
}

/// One `<instance_id>.traj.json` per trace in the shape of mini-swe-agent's trajectories:
/// the actions as assistant messages, the observations as user messages.
fn write_trajectories(dir: &Path, traces: &[Trace]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for trace in traces {
        let system = if trace.solver.name.starts_with("openai:") {
            agent::SYSTEM
        } else {
            "Repair the bug that the failing tests show by choosing among candidate edits."
        };
        let mut messages = vec![json!({"role": "system", "content": system})];
        for step in &trace.steps {
            messages.push(json!({"role": "assistant", "content": step.action}));
            messages.push(json!({"role": "user", "content": step.observation}));
        }
        let submitted = trace.steps.iter().any(|s| s.action == "submit");
        let exit_status = match (&trace.error, trace.patch.is_empty(), submitted) {
            (Some(_), _, _) => "Error",
            (None, true, _) => "NoPatch",
            (None, false, true) => "Submitted",
            (None, false, false) => "Stopped",
        };
        let document = json!({
            "trajectory_format": "mini-swe-agent-1",
            "instance_id": trace.instance_id,
            "info": {
                "exit_status": exit_status,
                "submission": trace.patch,
                "error": trace.error,
                "model_stats": {"steps": trace.steps.len(), "tokens": trace.cost.tokens},
                "resolved": trace.outcome.resolved,
            },
            "messages": messages,
        });
        let name = format!("{}.traj.json", trace.instance_id.replace('/', "_"));
        write_atomic(
            &dir.join(name),
            serde_json::to_string_pretty(&document)?.as_bytes(),
        )?;
    }
    Ok(())
}
