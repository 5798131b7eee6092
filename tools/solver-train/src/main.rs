use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = solver_train::Cli::parse();
    let log = cli.log.clone();
    stage_io::cli::run("solver-train", &log, || solver_train::run(cli))
}
