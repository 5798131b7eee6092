//! `skill-distill`: the solver's traces become Skills. Every trace is analysed against its
//! task and the clean source ([`analysis`]): its failure mode (not localized / wrong edit /
//! broke passing tests / timeout / resolved) and its repair pattern (the bug operator that
//! reproduces the bug and the features of the site it edits). Failed traces are clustered by
//! (pattern × context × failure mode) with back-off to coarser patterns ([`cluster`]); each
//! cluster of at least `--min-support` traces becomes a Skill ([`render`]) whose conditions
//! task-gen can match against site features. Skills of the previous round (`--skills`) found
//! again keep their id and get the new evidence; the others are carried over unchanged.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Parser;
use schemas::{Skill, Task, Trace};
use stage_io::BadInput;
use stage_io::cli::{LogArgs, OutputArgs, RunArgs};
use stage_io::input::Inputs;
use stage_io::output::Output;

pub mod analysis;
pub mod cluster;
pub mod describe;
pub mod render;

use analysis::{Analysed, Analyser};

const EXAMPLES: &str = "\
Examples:
  skill-distill traces.jsonl --tasks valid.jsonl -o skills.jsonl --stats
  skill-distill round-2/traces.jsonl --tasks round-2/kept.jsonl --skills round-1/skills.jsonl \\
      --round 2 --min-support 5 --export-dir round-2/skills -o round-2/skills.jsonl
  # descriptions written by a served model from each skill's evidence
  OPENAI_API_KEY=... skill-distill traces.jsonl --tasks valid.jsonl \\
      --describe openai:http://localhost:8000/v1#Qwen2.5-Coder-7B -o skills.jsonl";

#[derive(Debug, Parser)]
#[command(
    name = "skill-distill",
    version,
    about = "Distill solver traces into skills: recurring failure modes and repair patterns, with conditions and evidence",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Trace files (`-` or none: stdin)
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Task files the traces ran on (each trace's instance_id must be in one of them)
    #[arg(long, required = true, value_name = "FILE")]
    pub tasks: Vec<PathBuf>,
    /// Skills of the previous round: one found again keeps its id and gets the new evidence,
    /// the others are carried over unchanged
    #[arg(long, value_name = "FILE")]
    pub skills: Option<PathBuf>,
    /// Round written into new and updated skills (default: one after the last round of
    /// --skills, or 1)
    #[arg(long)]
    pub round: Option<u32>,
    /// Drop a cluster of fewer failed traces than this
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub min_support: u32,
    /// A bug whose function ranks within this many suspects counts as localized (the
    /// --top-functions of swe-rollout)
    #[arg(long, default_value_t = 3)]
    pub localized_within: u32,
    /// Also write every skill as an Agent Skills folder, DIR/<name>/SKILL.md (DIR is replaced)
    #[arg(long, value_name = "DIR")]
    pub export_dir: Option<PathBuf>,
    /// Print the skills with their support, and the share of failed traces they cover
    #[arg(long)]
    pub stats: bool,
    /// A served model writes the new skills' descriptions from their evidence (without it:
    /// templates); the key is read from --api-key-env
    #[arg(long, value_name = "openai:BASE_URL#MODEL", value_parser = chat::Endpoint::parse_spec)]
    pub describe: Option<chat::Endpoint>,
    #[command(flatten)]
    pub chat: chat::ChatArgs,
    #[command(flatten)]
    pub corpus: stage_io::corpus::CorpusArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// What a distillation found, for `--stats` and the tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    pub traces: usize,
    pub resolved: usize,
    pub failed: usize,
    /// Traces that ended in an error saying nothing about the solver.
    pub skipped: usize,
    /// Failed traces that belong to one of the new skills.
    pub covered: usize,
}

pub fn run(cli: Cli) -> Result<()> {
    if cli.run.shard.is_some() {
        return Err(BadInput::new(
            "skill-distill clusters all traces together: --shard does not apply (concatenate \
             the traces of the shards instead)",
        )
        .into());
    }
    let tasks = read_tasks(&cli.tasks)?;
    let roots =
        stage_io::corpus::read_roots(&cli.corpus.path(), tasks.values().map(|t| t.repo.as_str()))?;
    let previous = match &cli.skills {
        Some(path) => pyast::condition::read_skills(path)?,
        None => Vec::new(),
    };
    let round = cli
        .round
        .unwrap_or_else(|| previous.iter().map(|s| s.round).max().unwrap_or(0) + 1);
    let analyser = Analyser {
        roots,
        localized_within: cli.localized_within,
    };
    let (analysed, skipped) = analyse_traces(&cli.inputs, &tasks, &analyser)?;
    let (skills, coverage) = distill(
        &analysed,
        &render::Context {
            analysed: &analysed,
            round,
            seed: cli.run.seed,
            localized_within: cli.localized_within,
        },
        cli.min_support as usize,
    );
    let coverage = Coverage {
        skipped,
        ..coverage
    };
    let mut skills = skills;
    if let Some(endpoint) = &cli.describe {
        let tokens = describe::describe(&mut skills, &cli.chat.client(endpoint), cli.run.seed)?;
        tracing::info!(
            "{} descriptions written by {endpoint} ({tokens} tokens)",
            skills.len()
        );
    }
    let fresh = skills.len();
    let all = update(previous, skills);

    let mut out = Output::create(cli.out.output.as_deref())?;
    for skill in &all {
        out.write(skill)?;
    }
    out.finish()?;
    if let Some(dir) = &cli.export_dir {
        export(dir, &all)?;
    }
    if cli.stats {
        eprint!("{}", stats(&all[..fresh], &coverage));
    }
    tracing::info!(
        "{} traces ({} failed, {} skipped): {fresh} skills cover {} failed traces ({:.0}%); {} skills written",
        coverage.traces,
        coverage.failed,
        coverage.skipped,
        coverage.covered,
        100.0 * coverage.covered as f64 / coverage.failed.max(1) as f64,
        all.len()
    );
    Ok(())
}

fn read_tasks(paths: &[PathBuf]) -> Result<HashMap<String, Task>> {
    let mut tasks = HashMap::new();
    for task in Inputs::open(paths)?.records::<Task>() {
        let task = task?;
        tasks.insert(task.instance_id.clone(), task);
    }
    Ok(tasks)
}

/// Every trace analysed, in input order, and the number skipped (errors not about the
/// solver). A trace of a task in none of the task files is bad input.
fn analyse_traces(
    inputs: &[PathBuf],
    tasks: &HashMap<String, Task>,
    analyser: &Analyser,
) -> Result<(Vec<Analysed>, usize)> {
    let mut analysed = Vec::new();
    let mut skipped = 0;
    let mut seen = 0;
    for line in Inputs::open(inputs)?.lines() {
        let line = line?;
        let trace: Trace = line.record()?;
        seen += 1;
        let task = tasks.get(&trace.instance_id).ok_or_else(|| {
            line.error(
                Some("instance_id".into()),
                format!(
                    "task `{}` is in none of the --tasks files: pass the tasks the traces ran on",
                    trace.instance_id
                ),
            )
        })?;
        match analyser.analyse(&trace, task) {
            Some(a) => analysed.push(a),
            None => skipped += 1,
        }
    }
    if seen == 0 {
        return Err(BadInput::new("empty input: no traces (did swe-rollout fail?)").into());
    }
    Ok((analysed, skipped))
}

/// The skills of this round's traces, most supported first, and how much they cover.
pub fn distill(
    analysed: &[Analysed],
    cx: &render::Context,
    min_support: usize,
) -> (Vec<Skill>, Coverage) {
    let clusters = cluster::cluster(analysed, min_support);
    let mut skills: Vec<Skill> = clusters.iter().map(|c| render::skill(c, cx)).collect();
    // Names are unique by construction; a clash (a truncated name) gets the id's suffix.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for skill in &mut skills {
        let n = seen.entry(skill.name.clone()).or_default();
        *n += 1;
        if *n > 1 {
            let suffix = format!("-{n}");
            skill.name.truncate(64 - suffix.len());
            skill.name = format!("{}{suffix}", skill.name.trim_end_matches('-'));
            skill.skill_id = render::skill_id(&skill.name);
        }
    }
    let failed = analysed.iter().filter(|a| a.mode.failed()).count();
    let coverage = Coverage {
        traces: analysed.len(),
        resolved: analysed.len() - failed,
        failed,
        skipped: 0,
        covered: clusters.iter().map(|c| c.members.len()).sum(),
    };
    (skills, coverage)
}

/// This round's skills, a previous skill of the same name giving its id, then the previous
/// skills not found again.
pub fn update(previous: Vec<Skill>, fresh: Vec<Skill>) -> Vec<Skill> {
    let mut by_name: HashMap<String, Skill> = previous
        .iter()
        .map(|s| (s.name.clone(), s.clone()))
        .collect();
    let mut out = Vec::new();
    for mut skill in fresh {
        if let Some(old) = by_name.remove(&skill.name) {
            skill.skill_id = old.skill_id;
        }
        out.push(skill);
    }
    out.extend(
        previous
            .into_iter()
            .filter(|s| by_name.contains_key(&s.name)),
    );
    out
}

/// Writes every skill as `DIR/<name>/SKILL.md`, replacing DIR whole (built beside it, then
/// renamed).
pub fn export(dir: &Path, skills: &[Skill]) -> Result<()> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile_dir(parent)?;
    for skill in skills {
        let folder = staging.join(&skill.name);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join("SKILL.md"), render::skill_md(skill))?;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    std::fs::rename(&staging, dir).with_context(|| format!("writing {}", dir.display()))?;
    Ok(())
}

fn tempfile_dir(parent: &Path) -> Result<PathBuf> {
    for n in 0..1000u32 {
        let path = parent.join(format!(".skills-export-{}-{n}", std::process::id()));
        if std::fs::create_dir(&path).is_ok() {
            return Ok(path);
        }
    }
    anyhow::bail!("cannot create a staging folder in {}", parent.display())
}

/// The skills as a table, and the coverage of the failed traces.
pub fn stats(skills: &[Skill], coverage: &Coverage) -> String {
    let mut out = format!(
        "{} traces: {} resolved, {} failed, {} skipped (errors not about the solver)\n\
         {} skills cover {} of {} failed traces ({:.1}%)\n",
        coverage.traces + coverage.skipped,
        coverage.resolved,
        coverage.failed,
        coverage.skipped,
        skills.len(),
        coverage.covered,
        coverage.failed,
        100.0 * coverage.covered as f64 / coverage.failed.max(1) as f64
    );
    out.push_str(&format!(
        "{:<56} {:>8} {:>8}\n",
        "skill", "support", "failed"
    ));
    for s in skills {
        out.push_str(&format!(
            "{:<56} {:>8} {:>7.0}%\n",
            s.name,
            s.evidence.support,
            100.0 * s.evidence.failure_rate
        ));
    }
    out
}
