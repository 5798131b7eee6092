//! Helpers shared by the task-validate tests.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The work directory `just setup` filled (`$SOCRATIC_WORKDIR` or `.socratic`).
pub fn workdir() -> PathBuf {
    let dir = std::env::var_os("SOCRATIC_WORKDIR")
        .map_or_else(|| root().join(".socratic"), PathBuf::from);
    assert!(dir.join("corpus.jsonl").is_file(), "run `just setup` first");
    dir
}
