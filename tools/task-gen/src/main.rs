use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = task_gen::Cli::parse();
    let log = cli.log.clone();
    stage_io::cli::run("task-gen", &log, || task_gen::run(cli))
}
