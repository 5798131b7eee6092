//! Where solvers act: the corpus's repositories and the test bed ([`Harness`]), and one
//! task's [`Environment`], reproduced and localized, in which edits are tested. The solver
//! sees the task as a [`Problem`]; a [`working_copy::WorkingCopy`] is the repository as a
//! chat model's tools see and change it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use sandbox::testbed::{RepoTree, RunOptions, TestBed, TestBedArgs};
use sandbox::{Selection, TestRun, select_tests};
use schemas::{Outcome, SuspiciousFunction, SuspiciousLine};

mod prepare;
mod problem;
pub mod working_copy;

pub use problem::Problem;

/// A repository of the corpus, or why it cannot be used.
pub enum RepoEntry {
    Ready {
        tree: RepoTree,
        /// Its non-test Python files, repository-relative.
        sources: BTreeSet<String>,
    },
    /// Missing on disk, changed since it was pinned, or refused by the test bed.
    Unusable(String),
}

/// The repositories tasks are attempted in and the test bed that runs their tests: what
/// every task's [`Environment`] is made of.
pub struct Harness {
    pub repos: HashMap<String, RepoEntry>,
    pub bed: TestBed,
}

impl Harness {
    /// The repository `id` and its source files, or why it cannot be used.
    pub fn repo(&self, id: &str) -> Result<(&RepoTree, &BTreeSet<String>)> {
        match self.repos.get(id) {
            Some(RepoEntry::Ready { tree, sources }) => Ok((tree, sources)),
            Some(RepoEntry::Unusable(why)) => bail!("{why}"),
            None => bail!("repository `{id}` is not in the corpus"),
        }
    }
}

/// The corpus's repositories that `wanted` names, and their test commands; one whose
/// source is missing on disk, changed since it was pinned, or that the test bed refuses
/// (see `TestBedArgs::refusal`) is kept as [`RepoEntry::Unusable`], so only its tasks fail.
#[allow(clippy::type_complexity)]
pub fn load_repos(
    path: &Path,
    wanted: &BTreeSet<&str>,
    bed: &TestBedArgs,
) -> anyhow::Result<(HashMap<String, RepoEntry>, HashMap<String, String>)> {
    let mut repos = HashMap::new();
    let mut test_cmds = HashMap::new();
    for entry in stage_io::corpus::read_corpus_entries(path)? {
        let (repo, root) = (entry.repo, entry.root);
        if !wanted.contains(repo.id.as_str()) {
            continue;
        }
        test_cmds.insert(repo.id.clone(), repo.test_cmd.clone());
        let unusable = entry
            .unusable
            .or_else(|| {
                stage_io::corpus::check_pinned(&repo, &root)
                    .err()
                    .map(|err| format!("{err:#}"))
            })
            .or_else(|| bed.refusal(&repo));
        let entry = match unusable {
            Some(why) => {
                tracing::warn!("{why}");
                RepoEntry::Unusable(why)
            }
            None => {
                let sources = pyast::files::source_files(&root, &repo.src_dirs)
                    .with_context(|| format!("cannot list the sources of {}", root.display()))?
                    .into_iter()
                    .collect();
                RepoEntry::Ready {
                    tree: RepoTree::new(root)?,
                    sources,
                }
            }
        };
        repos.insert(repo.id.clone(), entry);
    }
    Ok((repos, test_cmds))
}

/// One task, reproduced and localized: what a solver sees of it, and where it tests edits
/// ([`Environment::run_edits`]).
pub struct Environment<'h, 't> {
    bed: &'h TestBed,
    pub repo: &'h RepoTree,
    pub problem: Problem<'t>,
    /// The tests on the buggy code, with the lines each executed.
    pub reproduced: TestRun,
    /// How the buggy code fares on the task's tests.
    pub before: Outcome,
    /// Suspicious lines and functions, most suspicious first.
    pub lines: Vec<SuspiciousLine>,
    pub functions: Vec<SuspiciousFunction>,
    /// The parsed buggy files of the suspicious lines (`None`: not valid Python).
    pub files: BTreeMap<String, Option<pyast::Module>>,
}

impl Environment<'_, '_> {
    /// The text of `path` with the bug applied.
    pub fn buggy_text(&self, path: &str) -> Result<String> {
        self.problem.buggy_text(&self.repo.root, path)
    }

    /// How a run fared on the task's tests.
    pub fn outcome(&self, run: &TestRun) -> Outcome {
        self.problem.outcome(run)
    }

    /// Runs the task's tests on the buggy code with `edits` (path → the file's new text)
    /// applied. Only the tests that can see the edits run: those that execute an edited line
    /// in the reproduction run; the others run as before, so they keep their outcome from
    /// that run. A run that resolves the task this way is confirmed by running every test of
    /// the task. Returns the merged run and how many tests ran.
    pub fn run_edits(&self, edits: &BTreeMap<String, String>) -> Result<(TestRun, usize)> {
        let problem = &self.problem;
        let mut changes = problem.bug.clone();
        let mut changed = BTreeMap::new();
        for (path, text) in edits {
            let buggy = self.buggy_text(path)?;
            if &buggy == text {
                continue;
            }
            changed.insert(path.clone(), patches::changed_lines(&buggy, text));
            let original = match problem.bug.get(path) {
                Some((clean, _)) => clean.clone(),
                None => buggy,
            };
            changes.insert(path.clone(), (original, text.clone()));
        }
        let changes = patches::overlay(&changes, &problem.tests);
        let all: Vec<String> = problem.test_ids().cloned().collect();
        let selected: Vec<String> = match self
            .reproduced
            .line_map
            .as_ref()
            .map(|m| m.select(&changed))
        {
            _ if changed.is_empty() => Vec::new(),
            Some(Selection::Tests(ids)) => all.into_iter().filter(|id| ids.contains(id)).collect(),
            Some(Selection::All) | None => all,
        };
        let mut merged = self.reproduced.clone();
        merged.line_map = None;
        if selected.is_empty() {
            return Ok((merged, 0));
        }
        let limit = self.bed.limit_after(&self.reproduced);
        let run = self.bed.run(
            self.repo,
            &changes,
            &select_tests(&problem.base_args, &selected),
            &RunOptions::cached().within(limit),
        )?;
        for id in &selected {
            merged.outcomes.remove(id);
            merged.messages.remove(id);
        }
        merged.outcomes.extend(run.outcomes);
        merged.messages.extend(run.messages);
        merged.end = run.end;
        merged.output = run.output;
        merged.duration = run.duration;
        let ran = selected.len();
        let everything = problem.fail_to_pass.len() + problem.pass_to_pass.len();
        if ran < everything && problem.outcome(&merged).resolved {
            let full = self.bed.run(
                self.repo,
                &changes,
                &problem.args,
                &RunOptions::cached().within(limit),
            )?;
            return Ok((full, everything));
        }
        Ok((merged, ran))
    }
}
