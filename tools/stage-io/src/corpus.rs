//! The corpus file (`repo/1` records) that every stage reads its repositories from.

use std::path::{Path, PathBuf};

use schemas::Repo;

use crate::input::Inputs;

/// The Repo records of the corpus at `path`, each with its source root resolved
/// against the file's directory. A root missing on disk is an error that names
/// `just setup`, which unpacks it.
pub fn read_corpus(path: &Path) -> anyhow::Result<Vec<(Repo, PathBuf)>> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut repos = Vec::new();
    for repo in Inputs::open(&[path.to_path_buf()])?.records::<Repo>() {
        let repo = repo?;
        let root = base.join(&repo.root);
        if !root.is_dir() {
            anyhow::bail!(
                "{}: the source of repository `{}` is missing at {}; run `just setup` to unpack the corpus",
                path.display(),
                repo.id,
                root.display()
            );
        }
        repos.push((repo, root));
    }
    Ok(repos)
}
