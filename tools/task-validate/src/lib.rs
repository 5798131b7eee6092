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
use sandbox::TestOutcome;
pub use sandbox::testbed::ExecutorKind;
use sandbox::testbed::{RepoTree, TestBedArgs};
use schemas::{Repo, Task};
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
  task-validate candidates.jsonl -o valid.jsonl --line-maps maps/   # then task-gen --line-maps maps/
  task-validate --check-repos --repo mylib-dir-0123456789ab --executor wasm   # its clean suite";

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
    /// Validate no candidates: run the clean suite of each repository of the corpus (or of
    /// each --repo) and write one JSON line per repository (tests, passed, the failing tests
    /// with their messages, seconds). Exit 1 when a suite does not pass or collects nothing
    #[arg(long, conflicts_with_all = ["inputs", "rejects", "line_maps"])]
    pub check_repos: bool,
    /// With --check-repos: only this repository (repeatable)
    #[arg(long, value_name = "ID", requires = "check_repos")]
    pub repo: Vec<String>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let corpus_path = cli.bed.corpus_path();
    let repos = read_corpus(&corpus_path)?;
    if cli.check_repos {
        return check_repos(&cli, &repos);
    }

    let opened = Inputs::open(&cli.inputs)?;
    let mut records = opened.records::<Task>().shard(cli.run.shard);
    if cli.allow_empty {
        records = records.allow_empty();
    }
    let mut candidates: Vec<Task> = records.collect::<Result<_, _>>()?;
    for task in &mut candidates {
        let Some((repo, _)) = repos.get(&task.repo) else {
            return Err(BadInput::new(format!(
                "repository `{}` of {} is not in the corpus {}",
                task.repo,
                task.instance_id,
                corpus_path.display()
            ))
            .in_field(Some("repo".into()))
            .into());
        };
        // An imported task carries no test command: its repository's runs.
        task.test_cmd = task.test_cmd_or(&repo.test_cmd).to_string();
    }

    let mut trees = HashMap::new();
    let mut test_cmds = BTreeMap::new();
    let mut refused = HashMap::new();
    for task in &candidates {
        if !trees.contains_key(&task.repo) {
            let (repo, root) = &repos[&task.repo];
            stage_io::corpus::check_pinned(repo, root)?;
            trees.insert(task.repo.clone(), RepoTree::new(root.clone())?);
            test_cmds.insert(task.repo.clone(), task.test_cmd.clone());
            if let Some(why) = cli.bed.refusal(repo) {
                tracing::warn!("{why}");
                refused.insert(task.repo.clone(), why);
            }
        }
    }
    let validator = Validator {
        repos: trees,
        bed: cli.bed.test_bed()?,
        select: !cli.full,
        refused,
    };

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(stage_io::cli::jobs(cli.jobs))
        .build()?;
    let bar = progress::items(candidates.len() as u64, "validating");
    let verdicts: Vec<Verdict> = pool.install(|| {
        // One candidate a piece: rayon otherwise hands each thread runs of candidates that
        // cannot be split once started, and a thread done early idles beside the other's
        // last run (a quarter of a 100-candidate stage on 2 threads).
        candidates
            .into_par_iter()
            .with_max_len(1)
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

/// `--check-repos`: the clean suite of each repository, as a user adding one needs to see
/// it (which tests fail, in their own words, under this executor).
fn check_repos(cli: &Cli, repos: &HashMap<String, (Repo, PathBuf)>) -> anyhow::Result<()> {
    let mut ids: Vec<&String> = repos.keys().collect();
    ids.sort();
    if !cli.repo.is_empty() {
        for id in &cli.repo {
            if !repos.contains_key(id) {
                return Err(BadInput::new(format!(
                    "no repository `{id}` in the corpus {}",
                    cli.bed.corpus_path().display()
                ))
                .into());
            }
        }
        ids.retain(|id| cli.repo.contains(id));
    }
    let bed = cli.bed.test_bed()?;
    let executor = bed.executor.name();
    let mut out = Output::create(cli.out.output.as_deref())?;
    let mut failing = 0;
    let bar = progress::items(ids.len() as u64, "running clean suites");
    for id in ids {
        let (repo, root) = &repos[id];
        let mut report = serde_json::json!({"repo": id, "executor": executor});
        let why = match cli.bed.refusal(repo) {
            Some(why) => Some(why),
            None => {
                stage_io::corpus::check_pinned(repo, root)?;
                let tree = RepoTree::new(root.clone())?;
                let args = sandbox::pytest_args(&repo.test_cmd)
                    .map_err(|err| BadInput::new(format!("{id}: test_cmd: {err}")))?;
                let run = bed.run(
                    &tree,
                    &patches::FileChanges::new(),
                    &args,
                    &sandbox::testbed::RunOptions::cached(),
                )?;
                let count = |outcome| run.with_outcome(outcome).count();
                let failed: Vec<serde_json::Value> = run
                    .outcomes
                    .iter()
                    .filter(|(_, o)| matches!(o, TestOutcome::Failed | TestOutcome::Error))
                    .map(|(test, _)| {
                        serde_json::json!({
                            "test": test,
                            "message": run.messages.get(test).map_or("", String::as_str),
                        })
                    })
                    .collect();
                report["tests"] = run.outcomes.len().into();
                report["passed"] = count(TestOutcome::Passed).into();
                report["skipped"] = count(TestOutcome::Skipped).into();
                report["failed"] = failed.into();
                report["seconds"] = run.duration.as_secs_f64().into();
                let why = gate::clean_suite_fails(&run);
                if why.is_none() {
                    tracing::info!(
                        "{id}: {} tests, {} pass under {executor} ({:.1} s)",
                        run.outcomes.len(),
                        count(TestOutcome::Passed),
                        run.duration.as_secs_f64()
                    );
                } else {
                    tracing::debug!("{id}: the clean run's output:\n{}", run.output);
                }
                why
            }
        };
        report["ok"] = why.is_none().into();
        if let Some(why) = &why {
            tracing::error!("{id}: under {executor}, {why}");
            report["why"] = why.as_str().into();
            failing += 1;
        }
        out.write_line(&report.to_string())?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.finish()?;
    anyhow::ensure!(
        failing == 0,
        "{failing} clean suites do not pass under {executor}"
    );
    Ok(())
}

/// Repo id → the record and its source root, from the corpus file.
fn read_corpus(path: &Path) -> anyhow::Result<HashMap<String, (Repo, PathBuf)>> {
    let repos = stage_io::corpus::read_corpus(path)?;
    Ok(repos
        .into_iter()
        .map(|(repo, root)| (repo.id.clone(), (repo, root)))
        .collect())
}
