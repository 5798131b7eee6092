//! Bytecode of each repository's clean files, compiled once per tree and
//! executor and carried into every working copy.
//!
//! A run works on a fresh copy of its repository, so without this every run
//! compiles every module it imports and pytest rewrites every test module it
//! collects: most of a run on suites as small as the corpus's (toolz: 2.4 s to
//! collect without bytecode, 0.4 s with it, in a fresh process). The pycs are
//! checked-hash (PEP 552): the interpreter and pytest compare them with the
//! source's hash, so a changed file (a bug, a repair attempt) is compiled afresh
//! whatever its size and mtime, and a stale pyc is never run.
//!
//! The executor compiles them in its sandbox ([`Executor::compile`]), running
//! nothing from the repository; runs only ever read copies of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::testbed::RepoTree;
use crate::{Executor, Limits, copy_tree, hex};

/// Compiled trees by executor and repository tree, on disk.
pub struct BytecodeCache {
    /// Where the trees persist (`None`: a temporary folder for this process).
    dir: Option<PathBuf>,
    temp: OnceLock<Option<tempfile::TempDir>>,
    trees: Mutex<HashMap<String, Arc<OnceLock<Option<PathBuf>>>>>,
}

impl BytecodeCache {
    pub fn new(dir: Option<PathBuf>) -> BytecodeCache {
        BytecodeCache {
            dir,
            temp: OnceLock::new(),
            trees: Mutex::default(),
        }
    }

    /// The folder holding `repo`'s pycs at their paths in the repository
    /// (`__pycache__/…`), compiled the first time it is asked for; `None` when
    /// compiling failed (runs then compile what they import, as without it).
    pub fn for_tree(
        &self,
        executor: &dyn Executor,
        repo: &RepoTree,
        limits: &Limits,
    ) -> Option<PathBuf> {
        let key = {
            let mut hasher = Sha256::new();
            hasher.update(executor.fingerprint().as_bytes());
            hasher.update([0]);
            hasher.update(repo.tree_hash.as_bytes());
            hex(&hasher.finalize())
        };
        let slot = self
            .trees
            .lock()
            .expect("bytecode lock")
            .entry(key.clone())
            .or_default()
            .clone();
        slot.get_or_init(|| match self.compiled(executor, repo, limits, &key) {
            Ok(dir) => Some(dir),
            Err(err) => {
                tracing::warn!(
                    "no bytecode for {}; every run compiles what it imports: {err:#}",
                    repo.root.display()
                );
                None
            }
        })
        .clone()
    }

    fn compiled(
        &self,
        executor: &dyn Executor,
        repo: &RepoTree,
        limits: &Limits,
        key: &str,
    ) -> anyhow::Result<PathBuf> {
        let root = match &self.dir {
            Some(dir) => dir.clone(),
            None => self
                .temp
                .get_or_init(|| crate::temp_dir("bytecode").ok())
                .as_ref()
                .context("cannot create a temporary folder")?
                .path()
                .to_path_buf(),
        };
        let target = root.join(key);
        if target.is_dir() {
            return Ok(target);
        }
        let started = std::time::Instant::now();
        let copy = crate::temp_dir("copy").context("cannot create a working copy")?;
        copy_tree(&repo.root, copy.path()).context("cannot copy the repository")?;
        executor.compile(copy.path(), limits)?;
        // Written beside the target and renamed: a folder under the key is whole.
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{key}.partial-"))
            .tempdir_in(&root)
            .with_context(|| format!("cannot write in {}", root.display()))?;
        let count = keep_bytecode(copy.path(), copy.path(), staging.path())?;
        tracing::debug!(
            "{count} pycs compiled for {} in {:.2} s",
            repo.root.file_name().unwrap_or_default().to_string_lossy(),
            started.elapsed().as_secs_f64()
        );
        match std::fs::rename(staging.path(), &target) {
            Ok(()) => {
                let _ = staging.keep(); // now the target: nothing left to remove
                Ok(target)
            }
            // Another stage compiled the same tree meanwhile.
            Err(_) if target.is_dir() => Ok(target),
            Err(err) => Err(err).with_context(|| format!("cannot write {}", target.display())),
        }
    }
}

/// Copies the `.pyc` files of every `__pycache__` folder under `dir` to the same
/// paths under `to`; how many.
pub(crate) fn keep_bytecode(root: &Path, dir: &Path, to: &Path) -> anyhow::Result<usize> {
    let mut count = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        if entry.file_name() != "__pycache__" {
            count += keep_bytecode(root, &path, to)?;
            continue;
        }
        let target = to.join(path.strip_prefix(root).expect("under root"));
        std::fs::create_dir_all(&target)?;
        for pyc in std::fs::read_dir(&path)? {
            let pyc = pyc?;
            let name = pyc.file_name();
            if pyc.file_type()?.is_file() && Path::new(&name).extension() == Some("pyc".as_ref()) {
                std::fs::copy(pyc.path(), target.join(&name))?;
                count += 1;
            }
        }
    }
    Ok(count)
}
