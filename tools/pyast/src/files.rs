//! Which files of a repository are its source: Python files under the package
//! directories, tests excluded.

use std::path::{Path, PathBuf};

pub use stage_io::corpus::is_test_path;

/// The Python source files under the package directories (or single files)
/// `src_dirs` of `root`, tests excluded, as sorted `/`-separated relative paths.
pub fn source_files(root: &Path, src_dirs: &[String]) -> std::io::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = src_dirs.iter().map(|d| root.join(d)).collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            let entries = std::fs::read_dir(&path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("listing {}: {e}", path.display()))
            })?;
            for entry in entries {
                stack.push(entry?.path());
            }
        } else if path.extension().is_some_and(|e| e == "py") {
            let rel = path
                .strip_prefix(root)
                .expect("walked from under the root")
                .to_string_lossy()
                .replace('\\', "/");
            if !is_test_path(&rel) {
                files.push(rel);
            }
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}
