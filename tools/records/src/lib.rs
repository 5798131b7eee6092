//! `records`: check, pass through, shard and describe the JSONL records that the
//! stages exchange. Useful to validate a custom stage's output, to merge or split
//! shards, and to look up a record kind's JSON Schema.

pub mod unidiff;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use schemas::KINDS;
use stage_io::cli::{LogArgs, OutputArgs};
use stage_io::input::Inputs;
use stage_io::output::Output;
use stage_io::shard::Shard;
use stage_io::{BadInput, progress};

const EXAMPLES: &str = "\
Examples:
  records check examples/*.jsonl
  task-gen corpus.jsonl | records cat --kind task --shard 0/4 -o shard-0.jsonl
  records schema task > task.schema.json";

#[derive(Debug, Parser)]
#[command(
    name = "records",
    version,
    about = "Check, pass through, shard and describe socratic-swe JSONL records",
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
