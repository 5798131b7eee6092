//! The flags every stage shares, and [`run`], which turns a stage's result into
//! its exit code.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args};
use tracing_subscriber::EnvFilter;

use crate::error::{ExitKind, exit_kind};
use crate::shard::Shard;

/// `-o FILE`.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Write the output records to FILE (atomically: whole or not at all) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The threads a stage's `-j N` asks for, or one per core without it; at least one.
pub fn jobs(requested: Option<usize>) -> usize {
    requested.unwrap_or_else(cores).max(1)
}

/// The cores this process may use (1 where that is unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `--seed` and `--shard`.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Seed of every random choice: the same inputs and seed give the same output
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Process only shard I of N (0-based, by record id); the N outputs concatenated
    /// hold exactly the records of an unsharded run
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
}

/// `-v`, `-q`, `--progress`.
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// More log output on stderr (-v debug, -vv trace)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr, no progress bars
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Draw progress bars even when stderr is not a terminal
    #[arg(long, global = true)]
    pub progress: bool,
}

impl LogArgs {
    fn level(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        }
    }
}

/// Runs a stage's body: sets up logging and progress from `log`, then maps the
/// result to an exit code (0 ok, 1 failed, 2 bad input) and prints the error as
/// `tool: error: …` on stderr. A closed stdout (`… | head`) ends the stage quietly.
/// Where [`crate::usage::USAGE_FILE_ENV`] names a file, the stage's hidden CPU time
/// is written there as it ends.
pub fn run(tool: &str, log: &LogArgs, body: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    let filter =
        EnvFilter::try_from_env("SOCRATIC_LOG").unwrap_or_else(|_| EnvFilter::new(log.level()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
    if log.quiet {
        crate::progress::disable();
    } else if log.progress {
        crate::progress::force();
    }
    let result = body();
    crate::usage::report_if_asked();
    match result {
        Ok(()) => ExitKind::Ok.into(),
        Err(err) if is_broken_pipe(&err) => ExitKind::Ok.into(),
        Err(err) => {
            eprintln!("{tool}: error: {err:#}");
            exit_kind(&err).into()
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
