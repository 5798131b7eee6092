use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = skill_distill::Cli::parse();
    let log = cli.log.clone();
    stage_io::cli::run("skill-distill", &log, || skill_distill::run(cli))
}
