//! `repo/1`: one real repository of the corpus.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::record::{Extra, Record};

/// A pinned release of a real Python project with its own test suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "Repo",
    description = "A pinned release of a real Python project with its own test suite"
)]
pub struct Repo {
    /// `repo/1`.
    #[schemars(regex(pattern = r"^repo/1(\.[0-9]+)?$"))]
    pub schema: String,
    /// Unique id, `<name>-<version>`.
    pub id: String,
    /// Distribution name on PyPI.
    pub name: String,
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
    /// The pytest command line that runs the suite from `root`.
    pub test_cmd: String,
    /// The project's `requires-python`, empty when it states none.
    #[serde(default)]
    pub python: String,
    #[serde(default)]
    pub executor: Executor,
    /// Pinned test dependencies (`name==version`).
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
    /// A local archive or directory, for repositories that are not on PyPI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Hex sha256 of the archive.
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

    fn id(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.id)
    }
}
