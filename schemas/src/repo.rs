//! `repo/1`: one real repository of the corpus (`repo/1.1` adds `source.rev`).

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::record::{Extra, Record, RecordError};

/// A pinned release of a real Python project with its own test suite: an sdist of the
/// lock (`just setup`) or a snapshot of a directory or git checkout (`just add-repo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "Repo",
    description = "A pinned release of a real Python project with its own test suite"
)]
pub struct Repo {
    /// `repo/1`.
    #[schemars(regex(pattern = r"^repo/1(\.[0-9]+)?$"))]
    pub schema: String,
    /// Unique id, `<name>-<version>`; names files, so no `/`.
    pub id: String,
    /// Distribution name on PyPI, or the name a snapshot was added under.
    pub name: String,
    /// The release, or for a snapshot `git-<commit>` / `dir-<tree hash>` (12 digits).
    pub version: String,
    /// Which part of the experiment the repository feeds: training, the trusted dev
    /// target of grad-score, or held-out evaluation only.
    pub split: Split,
    pub source: Source,
    /// Unpacked source tree, relative to the directory of the corpus file (or absolute).
    pub root: String,
    /// Package source directories under `root`, tests excluded: where bugs may go.
    #[serde(default)]
    pub src_dirs: Vec<String>,
    /// The pytest command line that runs the suite from `root`; a task that carries no
    /// test command (an import) runs this one.
    pub test_cmd: String,
    /// The project's `requires-python`, empty when it states none.
    #[serde(default)]
    pub python: String,
    /// The executors whose run of the clean suite passes: `wasm` (both) or `native`
    /// (only natively: a stage running under wasm refuses the repository's tasks).
    #[serde(default)]
    pub executor: Executor,
    /// Pinned test dependencies (`name==version`): each must be installed in the work
    /// directory's site-packages, or the stages refuse the repository's tasks.
    #[serde(default)]
    pub test_deps: Vec<String>,
    /// Number of tests that `test_cmd` collects on the clean code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_tests: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where the source came from, with the hash it was checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Source {
    /// Pip requirement that fetched it, e.g. `toolz==1.2.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The directory or git repository a snapshot was taken from (provenance: the stages
    /// read the snapshot under `root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The git commit a snapshot was taken at (repo/1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    /// The archive, for an sdist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Hex sha256 of the archive; without `filename`, of the snapshot's files under
    /// `root` (checked by every stage that uses the repository: see
    /// `stage_io::corpus::tree_sha256`).
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Dev,
    Test,
}

/// Which sandbox runs the repository's tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    /// CPython for WASI under wasmtime: the default, for pure-Python projects.
    #[default]
    Wasm,
    /// A subprocess in a venv, for projects that need C extensions.
    Native,
}

impl Record for Repo {
    const KIND: &'static str = "repo";
    const MAJOR: u32 = 1;
    const MINOR: u32 = 1;

    fn id(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.id)
    }

    fn validate(&self) -> Result<(), RecordError> {
        crate::task::file_name_id(&self.id)
            .map_err(|why| RecordError::field("id", format!("{why}: it names files")))?;
        let hash = &self.source.sha256;
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(RecordError::field(
                "source.sha256",
                format!("`{hash}` is not 64 lowercase hex digits"),
            ));
        }
        if self.root.is_empty() {
            return Err(RecordError::field("root", "is empty"));
        }
        if self.test_cmd.trim().is_empty() {
            return Err(RecordError::field("test_cmd", "is empty"));
        }
        Ok(())
    }
}
