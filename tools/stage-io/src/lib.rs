//! The plumbing that every socratic-swe stage shares, written once.
//!
//! A stage is a Unix filter over JSONL records:
//!
//! - [`input`]: read records from files or stdin (`-`) with errors that name the
//!   file, line and field ([`BadInput`]);
//! - [`output`]: write records to stdout or to `-o FILE` atomically (temp file +
//!   rename: a crash leaves the old file or the whole new one, never half);
//! - [`cli`]: the shared flags (`-o`, `--seed`, `--shard I/N`, `-v`/`-q`,
//!   `--progress`) and [`cli::run`], which maps errors to exit codes
//!   0 ok / 1 failed / 2 bad input or usage;
//! - [`shard`]: stable assignment of records to shards by id;
//! - [`progress`]: progress bars on stderr, hidden when stderr is not a terminal;
//! - [`usage`]: the CPU time of sandboxed processes that the stage's own resource
//!   usage cannot hold, reported to whoever runs the stage.
//!
//! ```no_run
//! use clap::Parser;
//! use schemas::Task;
//! use stage_io::{cli, input::Inputs, output::Output};
//!
//! #[derive(Parser)]
//! struct Args {
//!     inputs: Vec<std::path::PathBuf>,
//!     #[command(flatten)]
//!     out: cli::OutputArgs,
//!     #[command(flatten)]
//!     run: cli::RunArgs,
//!     #[command(flatten)]
//!     log: cli::LogArgs,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let args = Args::parse();
//!     cli::run("my-filter", &args.log, || {
//!         let mut out = Output::create(args.out.output.as_deref())?;
//!         for task in Inputs::open(&args.inputs)?.records::<Task>().shard(args.run.shard) {
//!             out.write(&task?)?;
//!         }
//!         out.finish()
//!     })
//! }
//! ```

pub mod cli;
pub mod corpus;
mod error;
pub mod input;
pub mod output;
pub mod progress;
pub mod shard;
pub mod usage;

pub use error::{BadInput, ExitKind, bad_input, exit_kind};
