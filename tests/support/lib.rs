//! Helpers for the end-to-end tests under `tests/`.

use std::path::{Path, PathBuf};

/// The workspace root (where `Cargo.toml`, `examples/` and `schemas/` live).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/<kind>.jsonl`.
pub fn example_file(kind: &str) -> PathBuf {
    workspace_root()
        .join("examples")
        .join(format!("{kind}.jsonl"))
}

/// `schemas/json/<kind>.schema.json`.
pub fn schema_file(kind: &str) -> PathBuf {
    workspace_root()
        .join("schemas")
        .join("json")
        .join(format!("{kind}.schema.json"))
}
