use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = task_validate::Cli::parse();
    let log = cli.log.clone();
    stage_io::cli::run("task-validate", &log, || task_validate::run(cli))
}
