use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = swe_rollout::Cli::parse();
    let log = cli.log().clone();
    stage_io::cli::run("swe-rollout", &log, || swe_rollout::run(cli))
}
