//! `records`: check, pass through, shard and describe the JSONL records that the
//! stages exchange. Useful to validate a custom stage's output, to merge or split
//! shards, to look up a record kind's JSON Schema, and to move tasks between our
//! Task records and SWE-bench / SWE-smith task instances ([`interop`]).

pub mod harbor;
pub mod interop;
pub mod unidiff;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use schemas::{KINDS, Record, Repo, Task};
use stage_io::cli::{LogArgs, OutputArgs};
use stage_io::input::Inputs;
use stage_io::output::Output;
use stage_io::shard::Shard;
use stage_io::{BadInput, progress};

const EXAMPLES: &str = "\
Examples:
  records check examples/*.jsonl
  task-gen corpus.jsonl | records cat --kind task --shard 0/4 -o shard-0.jsonl
  records schema task > task.schema.json
  records import --from swebench instances.jsonl | records export --to swesmith";

const IMPORT_EXAMPLES: &str = "\
Examples:
  records import --from swebench examples/swebench/instances.jsonl -o tasks.jsonl
  jq -c '.[]' task_insts.json | records import --from swesmith | records check --kind task

A JSON array (SWE-smith's gather writes one) becomes JSONL with `jq -c '.[]'`.";

const EXPORT_EXAMPLES: &str = "\
Examples:
  records export --to swebench --corpus .socratic/corpus.jsonl valid.jsonl -o instances.jsonl
  records export --to swesmith examples/task.jsonl
  records export --to harbor valid.jsonl -o harbor-tasks/   # one task directory per task";

use interop::Format;

#[derive(Debug, Parser)]
#[command(
    name = "records",
    version,
    about = "Check, pass through, shard, describe, import and export socratic-swe JSONL records",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that every line is a valid record of a known kind and version
    ///
    /// Exit 0 when all are, 2 at the first bad line of a file (file:line: field: why).
    Check {
        /// JSONL files (`-` or none: stdin)
        inputs: Vec<PathBuf>,
        /// Require records of this kind
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(KINDS))]
        kind: Option<String>,
    },
    /// Copy valid records to the output, unknown fields kept; optionally one shard
    Cat {
        /// JSONL files (`-` or none: stdin)
        inputs: Vec<PathBuf>,
        /// Require records of this kind
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(KINDS))]
        kind: Option<String>,
        /// Keep only shard I of N (0-based, by record id)
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Accept an input without records
        #[arg(long)]
        allow_empty: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Read SWE-bench or SWE-smith task instances, write Task records
    ///
    /// `instance_id`, `repo`, `problem_statement`, `FAIL_TO_PASS` and `PASS_TO_PASS`
    /// keep their names (the test lists may be lists or, as in SWE-bench, strings
    /// that hold a JSON list). SWE-bench's `patch` (the fix) becomes `gold_patch` and
    /// its reverse `bug_patch`; SWE-smith's `patch` (the bug) becomes `bug_patch` and
    /// its reverse `gold_patch`. Every other field is kept under its name (empty
    /// SWE-bench fields are left out). Exit 2 at the first bad instance
    /// (file:line: field: why).
    #[command(after_help = IMPORT_EXAMPLES)]
    Import {
        /// JSONL files of instances (`-` or none: stdin)
        inputs: Vec<PathBuf>,
        /// The format of the instances
        #[arg(long, value_enum, value_name = "FORMAT")]
        from: Format,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Read Task records, write SWE-bench or SWE-smith task instances, or Harbor task directories
    ///
    /// `--to harbor -o DIR` writes DIR/<instance_id>/ for each validated task: instruction.md
    /// (the problem statement), task.toml, environment/ (a Dockerfile and the buggy
    /// repository), solution/solve.sh (writes the repaired files) and tests/test.sh (runs
    /// exactly FAIL_TO_PASS and PASS_TO_PASS; reward 1 in /logs/verifier/reward.txt when all
    /// pass). It reads the repositories from --corpus (default WORKDIR/corpus.jsonl).
    ///
    /// SWE-bench's `patch` is the gold patch, SWE-smith's the bug patch. SWE-bench
    /// instances get all twelve fields, the test lists as JSON strings, and "" for
    /// what a Task does not know (our repositories are PyPI sdists: `repo` is the
    /// Repo id, `version` comes from --corpus, `base_commit` stays empty). Fields
    /// the Task kept from an import are written back; Task fields an instance has
    /// no place for (test_cmd, provenance, …) travel under `socratic`, so an
    /// import gives the Task back.
    #[command(after_help = EXPORT_EXAMPLES)]
    Export {
        /// JSONL files of Task records (`-` or none: stdin)
        inputs: Vec<PathBuf>,
        /// The format to write
        #[arg(long, value_enum, value_name = "FORMAT")]
        to: ExportFormat,
        /// The corpus (Repo records) the tasks come from, for SWE-bench's `version`;
        /// every task's repo must be in it
        #[arg(long, value_name = "FILE")]
        corpus: Option<PathBuf>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Print the JSON Schema of a record kind
    Schema {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(KINDS))]
        kind: String,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Check { inputs, kind } => check(&inputs, kind.as_deref()),
        Command::Cat {
            inputs,
            kind,
            shard,
            allow_empty,
            out,
        } => cat(&inputs, kind.as_deref(), shard, allow_empty, &out),
        Command::Import { inputs, from, out } => import(&inputs, from, &out),
        Command::Export {
            inputs,
            to,
            corpus,
            out,
        } => match to {
            ExportFormat::Swebench => export(&inputs, Format::Swebench, corpus.as_deref(), &out),
            ExportFormat::Swesmith => export(&inputs, Format::Swesmith, corpus.as_deref(), &out),
            ExportFormat::Harbor => export_harbor(&inputs, corpus, &out),
        },
        Command::Schema { kind } => {
            let (_, schema) = schemas::json_schema::all()
                .into_iter()
                .find(|(known, _)| *known == kind)
                .context("no such kind")?;
            print!("{}", schemas::json_schema::render(&schema));
            Ok(())
        }
    }
}

/// What `records export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// SWE-bench task instances (JSONL)
    Swebench,
    /// SWE-smith task instances (JSONL)
    Swesmith,
    /// Harbor task directories (-o names the folder that holds them)
    Harbor,
}

fn export_harbor(
    inputs: &[PathBuf],
    corpus: Option<PathBuf>,
    out: &OutputArgs,
) -> anyhow::Result<()> {
    let Some(dir) = out.output.as_deref() else {
        return Err(
            BadInput::new("--to harbor writes directories: name their folder with -o DIR").into(),
        );
    };
    let corpus = corpus.unwrap_or_else(|| {
        PathBuf::from(std::env::var("SOCRATIC_WORKDIR").unwrap_or_else(|_| ".socratic".into()))
            .join("corpus.jsonl")
    });
    let repos: HashMap<String, (Repo, PathBuf)> = stage_io::corpus::read_corpus(&corpus)?
        .into_iter()
        .map(|(repo, root)| (repo.id.clone(), (repo, root)))
        .collect();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let opened = Inputs::open(inputs)?;
    let bar = progress::bytes(opened.total_bytes(), "exporting");
    let mut lines = opened.lines();
    let mut written = 0;
    while let Some(mut line) = lines.next().transpose()? {
        bar.set_position(lines.bytes_read());
        let task = Task::from_value(line.value.take())
            .map_err(|err| line.error(err.field, err.message))?;
        let (repo, root) = repos.get(&task.repo).ok_or_else(|| {
            line.error(
                Some("repo".into()),
                format!("no repository `{}` in {}", task.repo, corpus.display()),
            )
        })?;
        if task.fail_to_pass.is_empty() {
            return Err(line
                .error(
                    Some("FAIL_TO_PASS".into()),
                    "is empty: export validated tasks (task-validate's output)",
                )
                .into());
        }
        harbor::export_task(&task, repo, root, dir)?;
        written += 1;
    }
    bar.finish_and_clear();
    if written == 0 {
        return Err(empty_input(inputs, "records").into());
    }
    tracing::info!(
        "wrote {written} Harbor task directories in {}",
        dir.display()
    );
    Ok(())
}

fn check(inputs: &[PathBuf], kind: Option<&str>) -> anyhow::Result<()> {
    let stdin = [PathBuf::from("-")];
    let inputs = if inputs.is_empty() {
        &stdin[..]
    } else {
        inputs
    };
    let mut failures = 0;
    for input in inputs {
        match check_one(input, kind) {
            Ok(count) => tracing::info!("{}: {count} valid records", input.display()),
            Err(err) => {
                eprintln!("records: {err:#}");
                failures += 1;
            }
        }
    }
    if failures > 0 {
        return Err(
            BadInput::new(format!("{failures} of {} inputs are invalid", inputs.len())).into(),
        );
    }
    Ok(())
}

fn check_one(input: &PathBuf, kind: Option<&str>) -> anyhow::Result<u64> {
    let mut count = 0;
    let opened = Inputs::open(std::slice::from_ref(input))?;
    let bar = progress::bytes(opened.total_bytes(), "checking");
    for record in opened.any_records(kind).progress(&bar) {
        record?;
        count += 1;
    }
    bar.finish_and_clear();
    Ok(count)
}

fn cat(
    inputs: &[PathBuf],
    kind: Option<&str>,
    shard: Option<Shard>,
    allow_empty: bool,
    out: &OutputArgs,
) -> anyhow::Result<()> {
    let opened = Inputs::open(inputs)?;
    let bar = progress::bytes(opened.total_bytes(), "copying");
    let mut records = opened.any_records(kind).shard(shard).progress(&bar);
    if allow_empty {
        records = records.allow_empty();
    }
    let mut output = Output::create(out.output.as_deref())?;
    for record in records.by_ref() {
        output.write_any(&record?)?;
    }
    bar.finish_and_clear();
    tracing::debug!("wrote {} of {} records", output.written(), records.seen());
    output.finish()
}

fn import(inputs: &[PathBuf], format: Format, out: &OutputArgs) -> anyhow::Result<()> {
    let opened = Inputs::open(inputs)?;
    let bar = progress::bytes(opened.total_bytes(), "importing");
    let mut lines = opened.lines();
    let mut output = Output::create(out.output.as_deref())?;
    while let Some(mut line) = lines.next().transpose()? {
        bar.set_position(lines.bytes_read());
        let task = interop::import(line.value.take(), format)
            .map_err(|err| line.error(err.field, err.message))?;
        output.write(&task)?;
    }
    bar.finish_and_clear();
    if output.written() == 0 {
        return Err(empty_input(inputs, "instances").into());
    }
    tracing::debug!("imported {} {format} instances", output.written());
    output.finish()
}

fn export(
    inputs: &[PathBuf],
    format: Format,
    corpus: Option<&Path>,
    out: &OutputArgs,
) -> anyhow::Result<()> {
    let repos = corpus.map(read_repos).transpose()?;
    let opened = Inputs::open(inputs)?;
    let bar = progress::bytes(opened.total_bytes(), "exporting");
    let mut lines = opened.lines();
    let mut output = Output::create(out.output.as_deref())?;
    while let Some(mut line) = lines.next().transpose()? {
        bar.set_position(lines.bytes_read());
        let task = Task::from_value(line.value.take())
            .map_err(|err| line.error(err.field, err.message))?;
        let repo = match (&repos, corpus) {
            (Some(repos), Some(path)) => Some(repos.get(&task.repo).ok_or_else(|| {
                line.error(
                    Some("repo".into()),
                    format!("no repository `{}` in {}", task.repo, path.display()),
                )
            })?),
            _ => None,
        };
        let instance = interop::export(&task, format, repo)
            .map_err(|err| line.error(err.field, err.message))?;
        output.write_line(&serde_json::Value::Object(instance).to_string())?;
    }
    bar.finish_and_clear();
    if output.written() == 0 {
        return Err(empty_input(inputs, "records").into());
    }
    tracing::debug!("exported {} tasks as {format} instances", output.written());
    output.finish()
}

/// The error for an input without a single line of JSON.
fn empty_input(inputs: &[PathBuf], what: &str) -> BadInput {
    let names = match inputs {
        [] => "<stdin>".to_string(),
        _ => inputs
            .iter()
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    BadInput::new(format!(
        "empty input: no {what} (did an earlier stage fail?)"
    ))
    .in_source(names)
}

/// The Repo records of a corpus file by id (their sources need not be unpacked).
fn read_repos(path: &Path) -> anyhow::Result<HashMap<String, Repo>> {
    let mut repos = HashMap::new();
    for repo in Inputs::open(&[path.to_path_buf()])?.records::<Repo>() {
        let repo = repo?;
        repos.insert(repo.id.clone(), repo);
    }
    Ok(repos)
}
