//! `task-validate`: the execution gate of socratic-swe.
//!
//! Reads candidate Tasks and keeps those whose repository tests pass on the clean
//! code, fail with the bug (FAIL_TO_PASS), pass again with the gold patch, and
//! do so reproducibly. Writes the valid tasks with `FAIL_TO_PASS`,
//! `PASS_TO_PASS` and a `problem_statement`; writes every rejected candidate to
//! `--rejects` with the gate stage that refused it and why.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use rayon::prelude::*;
pub use sandbox::testbed::ExecutorKind;
use sandbox::testbed::{RepoTree, TestBedArgs};
use schemas::Task;
use stage_io::cli::{LogArgs, OutputArgs, RunArgs};
use stage_io::input::Inputs;
use stage_io::output::Output;
use stage_io::{BadInput, progress};

pub mod gate;
pub mod statement;

use gate::{Validator, Verdict};

const EXAMPLES: &str = "\
Examples:
  task-validate candidates.jsonl -o valid.jsonl --rejects rejects.jsonl
  task-gen --budget 100 .socratic/corpus.jsonl | task-validate --jobs 2 > valid.jsonl
  task-validate --executor native --shard 0/4 candidates.jsonl -o valid-0.jsonl
  task-validate candidates.jsonl -o valid.jsonl --line-maps maps/   # then task-gen --line-maps maps/";

#[derive(Debug, Parser)]
#[command(
    name = "task-validate",
    version,
    about = "Keep candidate repair tasks whose tests fail with the bug and pass without it",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Candidate Task files (`-` or none: stdin)
    pub inputs: Vec<PathBuf>,
    /// Accept an input without records (write an empty output) instead of failing as bad input
    #[arg(long)]
    pub allow_empty: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Write rejected candidates here, each with `rejection: {stage, reason}`
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    #[command(flatten)]
    pub bed: TestBedArgs,
    /// Candidates validated at once (default: number of cores)
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Run the whole suite for every candidate instead of only the tests that
    /// execute a changed line
    #[arg(long)]
    pub full: bool,
    /// Also write the line map of each candidate repository's clean suite (which
    /// tests execute which lines) as DIR/<repo>.json, for `task-gen --line-maps`
    #[arg(long, value_name = "DIR")]
    pub line_maps: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let corpus_path = cli.bed.corpus_path();
    let repos = read_corpus(&corpus_path)?;

    let opened = Inputs::open(&cli.inputs)?;
    let mut records = opened.records::<Task>().shard(cli.run.shard);
    if cli.allow_empty {
        records = records.allow_empty();
    }
    let candidates: Vec<Task> = records.collect::<Result<_, _>>()?;
    for task in &candidates {
        if !repos.contains_key(&task.repo) {
            return Err(BadInput::new(format!(
                "repository `{}` of {} is not in the corpus {}",
                task.repo,
                task.instance_id,
                corpus_path.display()
            ))
            .in_field(Some("repo".into()))
            .into());
        }
    }

    let mut trees = HashMap::new();
    let mut test_cmds = BTreeMap::new();
    for task in &candidates {
        if !trees.contains_key(&task.repo) {
            trees.insert(task.repo.clone(), RepoTree::new(repos[&task.repo].clone())?);
            test_cmds.insert(task.repo.clone(), task.test_cmd.clone());
        }
    }
    let validator = Validator {
        repos: trees,
        bed: cli.bed.test_bed()?,
        select: !cli.full,
    };

    let jobs = cli
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()?;
    let bar = progress::items(candidates.len() as u64, "validating");
    let verdicts: Vec<Verdict> = pool.install(|| {
        candidates
            .into_par_iter()
            .map(|task| {
                let id = task.instance_id.clone();
                let verdict = validator
                    .validate(task)
                    .with_context(|| format!("validating {id}"));
                bar.inc(1);
                verdict
            })
            .collect::<anyhow::Result<_>>()
    })?;
    bar.finish_and_clear();

    let mut valid = Output::create(cli.out.output.as_deref())?;
    let mut rejects = cli
        .rejects
        .as_deref()
        .map(|path| Output::create(Some(path)))
        .transpose()?;
    let mut rejected = Vec::new();
    for verdict in &verdicts {
        match verdict {
            Verdict::Valid(task) => valid.write(task)?,
            Verdict::Rejected(task) => {
                if let Some(out) = rejects.as_mut() {
                    out.write(task)?;
                }
                rejected.push(task);
            }
        }
    }
    if let Some(dir) = &cli.line_maps {
        write_line_maps(&validator, &test_cmds, dir)?;
    }
    let kept = valid.written();
    valid.finish()?;
    if let Some(out) = rejects {
        out.finish()?;
    }
    let by_stage: Vec<String> = gate::rejection_counts(rejected.iter().copied())
        .into_iter()
        .map(|(stage, n)| format!("{stage} {n}"))
        .collect();
    tracing::info!(
        "{kept} of {} candidates valid; rejected: {}; {}",
        verdicts.len(),
        if by_stage.is_empty() {
            "none".to_string()
        } else {
            by_stage.join(", ")
        },
        validator.bed.runs_summary(),
    );
    Ok(())
}

/// Writes `dir/<repo>.json`, the clean suite's line map of each repository, run with the
/// test command of its first candidate (a cached traced run: the gate made it already
/// unless `--full`). A repository without a line map (a test command that is not
/// pytest) gets no file.
fn write_line_maps(
    validator: &Validator,
    test_cmds: &BTreeMap<String, String>,
    dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the line-map folder {}", dir.display()))?;
    for (repo, test_cmd) in test_cmds {
        let Ok(args) = sandbox::pytest_args(test_cmd) else {
            continue;
        };
        let Some(map) = validator
            .bed
            .clean_line_map(&validator.repos[repo], &args)?
        else {
            tracing::warn!("no line map for {repo}");
            continue;
        };
        stage_io::output::write_atomic(
            &dir.join(format!("{repo}.json")),
            &serde_json::to_vec(&map)?,
        )?;
    }
    Ok(())
}

/// Repo id → source root, from the corpus file.
fn read_corpus(path: &Path) -> anyhow::Result<HashMap<String, PathBuf>> {
    let repos = stage_io::corpus::read_corpus(path)?;
    Ok(repos
        .into_iter()
        .map(|(repo, root)| (repo.id, root))
        .collect())
}
