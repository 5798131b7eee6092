//! What the solver may see of a task: the buggy repository, the problem statement and the
//! names of the tests to run. It is built without `gold_patch` and provenance; those are read
//! only afterwards, for the trace's analysis.

use std::path::Path;

use anyhow::{Context, Result, bail};
use patches::FileChanges;
use sandbox::{TestOutcome, TestRun, pytest_args, select_tests};
use schemas::{Outcome, Task};

/// What the solver may see of a task.
pub struct Problem<'t> {
    pub instance_id: &'t str,
    pub statement: &'t str,
    pub fail_to_pass: &'t [String],
    pub pass_to_pass: &'t [String],
    /// The buggy files, as changes to the clean repository.
    pub bug: FileChanges,
    /// A SWE-bench instance's test patch applied over the buggy files: laid over every
    /// test run's files (after the solver's edits, as the SWE-bench harness does), never
    /// shown to the solver. Empty for our own tasks, whose tests are in the repository.
    pub tests: FileChanges,
    /// pytest arguments that run exactly FAIL_TO_PASS and PASS_TO_PASS.
    pub args: Vec<String>,
    /// The test command's own pytest arguments, to select tests from.
    pub base_args: Vec<String>,
}

impl<'t> Problem<'t> {
    /// The problem of `task` over its clean repository at `root`; refused when the task
    /// names no FAIL_TO_PASS test or its patches do not apply.
    pub fn new(task: &'t Task, root: &Path) -> Result<Problem<'t>> {
        if task.fail_to_pass.is_empty() {
            bail!("the task has no FAIL_TO_PASS tests; run task-validate on it first");
        }
        let bug = patches::apply_in_memory(root, &task.bug_patch).context("bug_patch")?;
        let mut tests: Vec<String> = task
            .fail_to_pass
            .iter()
            .chain(&task.pass_to_pass)
            .cloned()
            .collect();
        tests.sort();
        tests.dedup();
        let base_args = pytest_args(&task.test_cmd)?;
        let args = select_tests(&base_args, &tests);
        let tests = match task.test_patch() {
            Some(test_patch) => {
                patches::apply_over(root, &bug, test_patch).context("test_patch")?
            }
            None => FileChanges::new(),
        };
        Ok(Problem {
            instance_id: &task.instance_id,
            statement: &task.problem_statement,
            fail_to_pass: &task.fail_to_pass,
            pass_to_pass: &task.pass_to_pass,
            bug,
            tests,
            args,
            base_args,
        })
    }

    /// The node ids of the task's tests: FAIL_TO_PASS, then PASS_TO_PASS.
    pub fn test_ids(&self) -> impl Iterator<Item = &'t String> + use<'t> {
        self.fail_to_pass.iter().chain(self.pass_to_pass)
    }

    /// How a run fared on the task's tests; a test missing from the report counts as failing.
    pub fn outcome(&self, run: &TestRun) -> Outcome {
        let passed = |id: &String| run.outcomes.get(id.as_str()) == Some(&TestOutcome::Passed);
        let f2p_passed = self.fail_to_pass.iter().filter(|id| passed(id)).count() as u32;
        let p2p_failed = self.pass_to_pass.iter().filter(|id| !passed(id)).count() as u32;
        let f2p_total = self.fail_to_pass.len() as u32;
        Outcome {
            resolved: f2p_passed == f2p_total && p2p_failed == 0,
            f2p_passed,
            f2p_total,
            p2p_failed,
            p2p_total: self.pass_to_pass.len() as u32,
        }
    }

    /// The text of `path` with the bug applied, in the repository at `root`.
    pub fn buggy_text(&self, root: &Path, path: &str) -> Result<String> {
        match self.bug.get(path) {
            Some((_, buggy)) => Ok(buggy.clone()),
            None => std::fs::read_to_string(root.join(path))
                .with_context(|| format!("cannot read {path}")),
        }
    }
}
