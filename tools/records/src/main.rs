use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = records::Cli::parse();
    let log = cli.log.clone();
    stage_io::cli::run("records", &log, || records::run(cli))
}
