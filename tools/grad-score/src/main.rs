use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = grad_score::Cli::parse();
    let log = cli.log.clone();
    stage_io::cli::run("grad-score", &log, || grad_score::run(cli))
}
