//! What the command tests of task-gen share: the corpus of `just setup`, running the binary,
//! reading its JSONL output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn workdir() -> PathBuf {
    let dir = std::env::var_os("SOCRATIC_WORKDIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.socratic"),
        PathBuf::from,
    );
    assert!(dir.join("corpus.jsonl").is_file(), "run `just setup` first");
    dir
}

pub fn corpus() -> String {
    workdir().join("corpus.jsonl").to_str().unwrap().to_string()
}

pub fn task_gen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_task-gen"))
        .args(args)
        .output()
        .unwrap()
}

pub fn records(stdout: &[u8]) -> Vec<Value> {
    std::str::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
