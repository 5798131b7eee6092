//! The corpus file (`repo/1` records) that every stage reads its repositories from.

use std::path::{Path, PathBuf};

use schemas::Repo;
use sha2::{Digest, Sha256};

use crate::input::Inputs;

/// The flags that name the corpus, the same in every stage: the work directory `just setup`
/// filled and the Repo records in it (or elsewhere).
#[derive(Debug, Clone, clap::Args)]
pub struct CorpusArgs {
    /// The work directory that `just setup` filled
    #[arg(long, env = "SOCRATIC_WORKDIR", default_value = ".socratic")]
    pub workdir: PathBuf,
    /// Repo records (default: WORKDIR/corpus.jsonl); source roots are relative to its directory
    #[arg(long, value_name = "FILE")]
    pub corpus: Option<PathBuf>,
}

impl CorpusArgs {
    /// The corpus file: `--corpus`, or WORKDIR/corpus.jsonl.
    pub fn path(&self) -> PathBuf {
        self.corpus
            .clone()
            .unwrap_or_else(|| self.workdir.join("corpus.jsonl"))
    }
}

/// The Repo records of the corpus at `path`, each with its source root resolved
/// against the file's directory. A root missing on disk is an error that names
/// `just setup`, which unpacks it. Snapshots are not hashed here: a stage checks the ones it
/// uses with [`check_pinned`].
pub fn read_corpus(path: &Path) -> anyhow::Result<Vec<(Repo, PathBuf)>> {
    read_corpus_entries(path)?
        .into_iter()
        .map(|entry| match entry.unusable {
            Some(why) => Err(anyhow::anyhow!("{}: {why}", path.display())),
            None => Ok((entry.repo, entry.root)),
        })
        .collect()
}

/// A repository of the corpus, with why it cannot be used, if it cannot.
pub struct CorpusEntry {
    pub repo: Repo,
    /// The source root, resolved against the corpus file's directory.
    pub root: PathBuf,
    /// Missing on disk (`just setup` unpacks it).
    pub unusable: Option<String>,
}

/// Every Repo record of the corpus at `path`, the unusable ones kept with the reason, for a
/// stage where only their own tasks should fail (swe-rollout).
pub fn read_corpus_entries(path: &Path) -> anyhow::Result<Vec<CorpusEntry>> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut entries = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for repo in Inputs::open(&[path.to_path_buf()])?.records::<Repo>() {
        let repo = repo?;
        anyhow::ensure!(
            ids.insert(repo.id.clone()),
            "{}: repository id `{}` appears twice",
            path.display(),
            repo.id
        );
        let root = base.join(&repo.root);
        let unusable = if !root.is_dir() {
            Some(format!(
                "the source of repository `{}` is missing at {}; run `just setup` to unpack the corpus",
                repo.id,
                root.display()
            ))
        } else {
            None
        };
        entries.push(CorpusEntry {
            repo,
            root,
            unusable,
        });
    }
    Ok(entries)
}

/// Whether a path (relative to a repository's root, `/`-separated) is a test file or lies in
/// a test directory.
pub fn is_test_path(rel: &str) -> bool {
    let mut parts: Vec<&str> = rel.split('/').collect();
    let file = parts.pop().unwrap_or_default();
    parts.iter().any(|d| matches!(*d, "tests" | "test"))
        || file.starts_with("test_")
        || file.ends_with("_test.py")
        || file == "conftest.py"
}

/// Repo id → its source root, from the corpus at `path`; the snapshots among `used` are
/// checked with [`check_pinned`].
pub fn read_roots<'a>(
    path: &Path,
    used: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<std::collections::HashMap<String, PathBuf>> {
    let used: std::collections::HashSet<&str> = used.into_iter().collect();
    let mut roots = std::collections::HashMap::new();
    for (repo, root) in read_corpus(path)? {
        if used.contains(repo.id.as_str()) {
            check_pinned(&repo, &root)?;
        }
        roots.insert(repo.id, root);
    }
    Ok(roots)
}

/// For a snapshot (no archive `filename`: its `sha256` is the tree's), checks that the
/// files under `root` are still the ones the record pins.
pub fn check_pinned(repo: &Repo, root: &Path) -> anyhow::Result<()> {
    if repo.source.filename.is_some() {
        return Ok(()); // an sdist: `just setup` checked the archive's hash
    }
    let actual = tree_sha256_cached(root)
        .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", root.display()))?;
    let again = if repo.source.path.is_some() || repo.source.url.is_some() {
        "add it again (`just add-repo`, or `just add-swebench` for an instance's snapshot)"
    } else {
        "restore the files"
    };
    anyhow::ensure!(
        actual == repo.source.sha256,
        "the files of repository `{}` at {} changed since it was pinned (tree sha256 {actual}, \
         the record pins {}): {again}",
        repo.id,
        root.display(),
        repo.source.sha256
    );
    Ok(())
}

/// [`tree_sha256`], computed once per root in a process (a stage hashes each tree it uses
/// once, whoever asks).
pub fn tree_sha256_cached(root: &Path) -> std::io::Result<String> {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<PathBuf, String>>,
    > = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hash) = cache.lock().expect("tree hash cache").get(root) {
        return Ok(hash.clone());
    }
    let hash = tree_sha256(root)?;
    cache
        .lock()
        .expect("tree hash cache")
        .insert(root.to_path_buf(), hash.clone());
    Ok(hash)
}

/// The sha256 of every regular file under `root` (links and special files skipped): the
/// files sorted by relative path (component by component), each as its path's bytes, a 0
/// byte and the raw sha256 of its content. `scripts/add_repo.py` computes the same.
pub fn tree_sha256(root: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect_files(root, root, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for relative in files {
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(Sha256::digest(std::fs::read(root.join(&relative))?));
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

fn collect_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(root, &entry.path(), files)?;
        } else if kind.is_file() {
            files.push(
                entry
                    .path()
                    .strip_prefix(root)
                    .expect("under root")
                    .to_path_buf(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_hash_orders_paths_by_component_and_ignores_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/b"), "1").unwrap();
        std::fs::write(dir.path().join("a.txt"), "2").unwrap();
        // By component "a/b" comes before "a.txt"; by string it would come after.
        let mut hasher = Sha256::new();
        for (path, content) in [("a/b", "1"), ("a.txt", "2")] {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            hasher.update(Sha256::digest(content));
        }
        let expected: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(tree_sha256(dir.path()).unwrap(), expected);
        std::os::unix::fs::symlink("a.txt", dir.path().join("link")).unwrap();
        assert_eq!(tree_sha256(dir.path()).unwrap(), expected);
        std::fs::write(dir.path().join("a/b"), "3").unwrap();
        assert_ne!(tree_sha256(dir.path()).unwrap(), expected);
    }

    #[test]
    fn a_corpus_with_an_id_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("r")).unwrap();
        let line = r#"{"schema":"repo/1","id":"r-1","name":"r","version":"1","split":"train","source":{"filename":"r-1.tar.gz","sha256":"0000000000000000000000000000000000000000000000000000000000000000"},"root":"r","test_cmd":"pytest"}"#;
        let corpus = dir.path().join("corpus.jsonl");
        std::fs::write(&corpus, format!("{line}\n")).unwrap();
        assert_eq!(read_corpus(&corpus).unwrap().len(), 1);
        std::fs::write(&corpus, format!("{line}\n{line}\n")).unwrap();
        let err = read_corpus(&corpus).unwrap_err().to_string();
        assert!(err.contains("`r-1` appears twice"), "{err}");
    }
}
