use std::process::ExitCode;

use clap::Parser;
use grad_score::Command;

fn main() -> ExitCode {
    let cli = grad_score::Cli::parse();
    let log = match &cli.command {
        Some(Command::Keep(args)) => args.log.clone(),
        None => cli.log.clone(),
    };
    stage_io::cli::run("grad-score", &log, || grad_score::run(cli))
}
