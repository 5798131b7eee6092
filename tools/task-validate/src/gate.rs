//! The gate every candidate passes through, in order: format, clean, bug, gold,
//! reproducible.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::Context;
use patches::FileChanges;
use sandbox::testbed::{RepoTree, RunOptions, TestBed};
use sandbox::{REPO_TOKEN, RunEnd, Selection, TestOutcome, TestRun, pytest_args, select_tests};
use schemas::{GateStage, Rejection, Task};

use crate::statement::problem_statement;

/// What the gate decided about one candidate.
pub enum Verdict {
    Valid(Task),
    Rejected(Task),
}

/// Runs the gate with one executor and one result cache.
pub struct Validator {
    pub repos: HashMap<String, RepoTree>,
    pub bed: TestBed,
    /// Run only the tests that execute a changed line (`--full` turns it off).
    pub select: bool,
    /// Repositories this bed cannot run, with why (see `TestBedArgs::refusal`): their
    /// candidates are rejected at the clean stage without a run.
    pub refused: HashMap<String, String>,
}

type Gate<T> = Result<T, Rejection>;

fn reject(stage: GateStage, reason: impl Into<String>) -> Rejection {
    Rejection {
        stage,
        reason: reason.into(),
    }
}

impl Validator {
    /// Decides one candidate. `Err` means the sandbox itself failed; a bad
    /// candidate is a [`Verdict::Rejected`] that names the gate and the reason.
    pub fn validate(&self, mut task: Task) -> anyhow::Result<Verdict> {
        match self.gate(&task)? {
            Ok((fail_to_pass, pass_to_pass, statement)) => {
                task.fail_to_pass = fail_to_pass;
                task.pass_to_pass = pass_to_pass;
                // An imported instance's own statement (an issue's text) stays.
                if task.provenance.strategy != "import" || task.problem_statement.trim().is_empty()
                {
                    task.problem_statement = statement;
                }
                task.rejection = None;
                Ok(Verdict::Valid(task))
            }
            Err(rejection) => {
                task.rejection = Some(rejection);
                Ok(Verdict::Rejected(task))
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn gate(&self, task: &Task) -> anyhow::Result<Gate<(Vec<String>, Vec<String>, String)>> {
        let repo = self
            .repos
            .get(&task.repo)
            .with_context(|| format!("repository {} is not loaded", task.repo))?;

        if let Some(why) = self.refused.get(&task.repo) {
            return Ok(Err(reject(GateStage::Clean, why.clone())));
        }

        // (a) format
        let args = match pytest_args(&task.test_cmd) {
            Ok(args) => args,
            Err(err) => return Ok(Err(reject(GateStage::Format, format!("test_cmd: {err}")))),
        };
        let bug = match check_patches(&repo.root, task) {
            Ok(bug) => bug,
            Err(rejection) => return Ok(Err(rejection)),
        };
        // A SWE-bench instance's tests come in its test patch, applied before every run:
        // `clean_tree` is the clean code with it, `bug` the buggy code with it.
        let (clean_tree, bug) = match task.test_patch() {
            None => (FileChanges::new(), bug),
            Some(test_patch) => {
                let with_tests = patches::apply_over(&repo.root, &FileChanges::new(), test_patch)
                    .and_then(|clean| {
                        let buggy = patches::apply_over(&repo.root, &bug, test_patch)?;
                        Ok((clean, patches::overlay(&bug, &buggy)))
                    });
                let trees = match with_tests {
                    Ok(trees) => trees,
                    Err(err) => {
                        return Ok(Err(reject(GateStage::Format, format!("test_patch: {err}"))));
                    }
                };
                // Laid over every run after the repair, such a file would undo the repair.
                if let Some(path) = trees.0.keys().find(|path| bug.contains_key(*path)) {
                    return Ok(Err(reject(
                        GateStage::Format,
                        format!("test_patch changes {path}, which the fix changes too"),
                    )));
                }
                trees
            }
        };

        // (b) clean code: every selected test passes. Where tests are selected, the clean
        // run records the line map too: one run a repository instead of two. A suite that
        // is not green traced runs again untraced (tracing can change what a test sees: its
        // speed, `sys.gettrace()`), and that run decides.
        let traced = self.select && clean_tree.is_empty();
        let clean = match traced {
            true => RunOptions::cached().traced(),
            false => RunOptions::cached(),
        };
        let mut clean = self.bed.run(repo, &clean_tree, &args, &clean)?;
        if traced && all_green(&clean).is_err() {
            clean = self
                .bed
                .run(repo, &clean_tree, &args, &RunOptions::cached())?;
        }
        if let Err(why) = all_green(&clean) {
            return Ok(Err(reject(
                GateStage::Clean,
                format!("on the clean code, {why}"),
            )));
        }
        let passing: BTreeSet<&str> = clean.with_outcome(TestOutcome::Passed).collect();

        // (c) bug applied: some test fails, the others still pass. Only the
        // tests that execute a changed line can see the bug (see `selection`).
        // The line map is the clean suite's without a test patch: with one, every test runs.
        let selection = match clean_tree.is_empty() {
            true => self.selection(repo, &args, &bug, &clean)?,
            false => Selection::All,
        };
        let selected = match selection {
            Selection::All => None,
            Selection::Tests(ids) => Some(
                ids.into_iter()
                    .filter(|id| passing.contains(id.as_str()))
                    .collect::<Vec<_>>(),
            ),
        };
        if selected.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Err(reject(
                GateStage::Bug,
                "no test executes the changed lines",
            )));
        }
        let bug_args = match &selected {
            Some(ids) => select_tests(&args, ids),
            None => args.clone(),
        };
        let limit = self.bed.limit_after(&clean);
        let buggy = self
            .bed
            .run(repo, &bug, &bug_args, &RunOptions::cached().within(limit))?;
        if let Some(why) = violation(&buggy, &clean) {
            return Ok(Err(reject(
                GateStage::Bug,
                format!("with the bug, the code {why}"),
            )));
        }
        if !matches!(buggy.end, RunEnd::Exited(0 | 1)) {
            tracing::debug!(
                "{}: the buggy run ended with {:?}:\n{}",
                task.instance_id,
                buggy.end,
                buggy.output
            );
            let why = match buggy.end {
                RunEnd::TimedOut => format!(
                    "with the bug, {}: {limit} (the clean suite took {:.1} s; a slow \
                     suite wants a larger --time-factor or --timeout)",
                    buggy.end,
                    clean.duration.as_secs_f64()
                ),
                _ => format!("with the bug, {}", buggy.end),
            };
            return Ok(Err(reject(GateStage::Bug, why)));
        }
        // A test outside the selection cannot see the bug, so it passes as on
        // the clean code.
        let (fail_to_pass, pass_to_pass): (Vec<&str>, Vec<&str>) = passing.iter().partition(|id| {
            let seen = selected
                .as_ref()
                .is_none_or(|ids| ids.binary_search_by(|x| x.as_str().cmp(id)).is_ok());
            seen && buggy.outcomes.get(**id) != Some(&TestOutcome::Passed)
        });
        if fail_to_pass.is_empty() {
            return Ok(Err(reject(
                GateStage::Bug,
                "no selected test fails with the bug",
            )));
        }
        let exhausted = fail_to_pass.iter().find_map(|id| {
            let message = buggy.messages.get(*id)?;
            EXHAUSTION
                .iter()
                .any(|error| message.starts_with(error))
                .then_some((id, message))
        });
        if let Some((id, message)) = exhausted {
            return Ok(Err(reject(
                GateStage::Bug,
                format!("with the bug, {id} exhausts a resource: {message}"),
            )));
        }
        let new_failures: Vec<&str> = buggy
            .outcomes
            .iter()
            .filter(|(id, outcome)| {
                matches!(outcome, TestOutcome::Failed | TestOutcome::Error)
                    && !clean.outcomes.contains_key(*id)
            })
            .map(|(id, _)| id.as_str())
            .collect();

        // (d) gold patch applied: (a) checked that it restores the clean files
        // byte for byte, so its run is the clean run of (b), which was all green.

        // (e) reproducible: the whole suite again on the buggy tree, in reverse
        // order of node ids (so mostly reverse file order). A FAIL_TO_PASS test
        // that passes now is flaky or depends on the order: reject. The
        // rerun also catches tests that selection could not see: a test whose
        // outcome depends on state an earlier test computed with the changed
        // line (a module-scope fixture, a memo cache) never executes the line
        // itself, yet fails with the bug. A test that passed in (c) but fails
        // now depends on the order: it goes in neither list.
        let all_clean: Vec<String> = passing.iter().rev().map(|id| id.to_string()).collect();
        let mut reversed = all_clean.clone();
        reversed.extend(new_failures.iter().map(|id| id.to_string()));
        let fresh = RunOptions::fresh().within(limit);
        let mut rerun = self
            .bed
            .run(repo, &bug, &select_tests(&args, &reversed), &fresh)?;
        // The bug may remove tests from collection (a parametrization it breaks):
        // pytest then refuses the whole list (exit 4). Those tests cannot pass;
        // the others are run again without them.
        if rerun.end == RunEnd::Exited(4) {
            let missing = not_found(&rerun.output, &reversed);
            if !missing.is_empty() {
                reversed.retain(|id| !missing.contains(id));
                rerun = self
                    .bed
                    .run(repo, &bug, &select_tests(&args, &reversed), &fresh)?;
            }
        }
        if let Some(why) = violation(&rerun, &clean) {
            return Ok(Err(reject(
                GateStage::Reproducible,
                format!("on a rerun, the code {why}"),
            )));
        }
        // A verdict rests on completed runs only: a rerun that hit a limit or
        // crashed says nothing about which tests are flaky.
        if !matches!(rerun.end, RunEnd::Exited(0 | 1)) {
            return Ok(Err(reject(
                GateStage::Reproducible,
                format!("on a rerun with the bug, {}", rerun.end),
            )));
        }
        let passes_again = |id: &str| rerun.outcomes.get(id) == Some(&TestOutcome::Passed);
        let flaky: Vec<&str> = fail_to_pass
            .iter()
            .copied()
            .filter(|id| passes_again(id))
            .collect();
        if !flaky.is_empty() {
            return Ok(Err(reject(
                GateStage::Reproducible,
                format!("FAIL_TO_PASS tests passed on a rerun: {}", flaky.join(", ")),
            )));
        }
        let seen_failing = fail_to_pass.len();
        let passed_in_bug_run = |id: &str| buggy.outcomes.get(id) == Some(&TestOutcome::Passed);
        let fail_to_pass: Vec<String> = passing
            .iter()
            .filter(|id| !passes_again(id) && !passed_in_bug_run(id))
            .map(|id| id.to_string())
            .collect();
        let clean_again = self.bed.run(
            repo,
            &clean_tree,
            &select_tests(&args, &all_clean),
            &RunOptions::cached().salt("reversed"),
        )?;
        if !matches!(clean_again.end, RunEnd::Exited(0 | 1)) {
            return Ok(Err(reject(
                GateStage::Reproducible,
                format!("on a rerun of the clean code, {}", clean_again.end),
            )));
        }
        let stable_p2p: Vec<String> = pass_to_pass
            .iter()
            .filter(|id| {
                passes_again(id) && clean_again.outcomes.get(**id) == Some(&TestOutcome::Passed)
            })
            .map(|id| id.to_string())
            .collect();
        let unseen = fail_to_pass.len() - seen_failing;
        let dropped = pass_to_pass.len() - stable_p2p.len() - unseen;
        if unseen + dropped > 0 {
            tracing::debug!(
                "{}: the rerun found {unseen} more FAIL_TO_PASS tests and dropped {dropped} \
                 order-dependent or flaky PASS_TO_PASS tests",
                task.instance_id
            );
        }

        let mut messages = buggy.messages.clone();
        for (id, message) in &rerun.messages {
            messages
                .entry(id.clone())
                .or_insert_with(|| message.clone());
        }
        for id in &fail_to_pass {
            if !rerun.outcomes.contains_key(id) {
                messages.entry(id.clone()).or_insert_with(|| {
                    "the test was not collected (its module fails to import)".into()
                });
            }
        }
        let statement = problem_statement(&fail_to_pass, &messages);
        Ok(Ok((fail_to_pass, stable_p2p, statement)))
    }

    /// The tests that can see `bug`: those that execute one of the lines it
    /// changes, from a line map of the clean suite (one traced run per
    /// repository, cached): the `clean` run's own where it was traced. A line
    /// that runs at import time may affect every test; `--full` skips selection.
    fn selection(
        &self,
        repo: &RepoTree,
        args: &[String],
        bug: &FileChanges,
        clean: &TestRun,
    ) -> anyhow::Result<Selection> {
        if !self.select {
            return Ok(Selection::All);
        }
        let fetched;
        let map = match &clean.line_map {
            Some(map) => Some(map),
            None => {
                fetched = self.bed.clean_line_map(repo, args)?;
                fetched.as_ref()
            }
        };
        let Some(map) = map else {
            tracing::warn!(
                "no line map for {}; running every test",
                repo.root.display()
            );
            return Ok(Selection::All);
        };
        let changed = bug
            .iter()
            .map(|(path, (old, new))| (path.clone(), patches::changed_lines(old, new)))
            .collect();
        Ok(map.select(&changed))
    }
}

/// Gate (a): both patches apply, the bug changes something, and the gold patch
/// turns the buggy files back into the clean files exactly. Returns the bug's
/// changes.
fn check_patches(root: &Path, task: &Task) -> Result<FileChanges, Rejection> {
    let bug = patches::apply_in_memory(root, &task.bug_patch)
        .map_err(|err| reject(GateStage::Format, format!("bug_patch: {err}")))?;
    if bug.values().all(|(old, new)| old == new) {
        return Err(reject(GateStage::Format, "bug_patch changes nothing"));
    }
    let gold = patches::apply_to(&task.gold_patch, |path| match bug.get(path) {
        Some((_, buggy)) => Ok(buggy.clone()),
        None => Err(patches::PatchError::MissingFile(format!(
            "{path} (not touched by bug_patch)"
        ))),
    })
    .map_err(|err| reject(GateStage::Format, format!("gold_patch: {err}")))?;
    for (path, (clean, _)) in &bug {
        let restored = gold
            .get(path)
            .map_or_else(|| bug[path].1.as_str(), |(_, new)| new.as_str());
        if restored != clean {
            return Err(reject(
                GateStage::Format,
                format!("gold_patch does not restore {path} exactly"),
            ));
        }
    }
    Ok(bug)
}

/// The node ids of `requested` that pytest reported as not found: its line
/// `ERROR: not found: /path/to/copy/tests/test_x.py::test_y` names the id (or,
/// for a parametrized test, the function) after the working copy's path.
fn not_found(output: &str, requested: &[String]) -> Vec<String> {
    let reported: Vec<&str> = output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ERROR: not found: "))
        .map(str::trim)
        .collect();
    requested
        .iter()
        .filter(|id| {
            let function = id.split('[').next().unwrap_or(id);
            reported.iter().any(|path| {
                let path = portable(path, id);
                [id.as_str(), function]
                    .iter()
                    .any(|name| path == *name || path.ends_with(&format!("/{name}")))
            })
        })
        .cloned()
        .collect()
}

/// `path` as pytest printed it (the working copy's own folder in it), with that folder
/// as the driver's `<repo>` token wherever it appears, as in the node id `id` (a test
/// parametrized with paths under the repository).
fn portable(path: &str, id: &str) -> String {
    let file = id.split("::").next().unwrap_or(id);
    match path.find(&format!("/{file}::")) {
        Some(at) if at > 0 && id.contains(REPO_TOKEN) => {
            path.replace(&format!("{}/", &path[..at]), &format!("{REPO_TOKEN}/"))
        }
        _ => path.to_string(),
    }
}

/// How the sandbox names an import of native code under WASI (see the driver).
const NATIVE_CODE: &str = "load native code";

/// Errors that mean a test ran out of memory, not that it caught a bug: an
/// allocation beyond the memory limit (natively a MemoryError; python.wasm cannot
/// even express a size past 4 GiB). A RecursionError is a failing test: a missing
/// base case is a real bug.
const EXHAUSTION: &[&str] = &[
    "MemoryError",
    "OverflowError: cannot fit 'int' into an index-sized integer",
];

/// What the sandbox refused during the run, as the rest of a sentence. An import
/// of native code that the clean run made too is the repository's own (an
/// optional `import multiprocessing` in its tests, which only WASI lacks), not
/// the bug's.
fn violation(run: &TestRun, clean: &TestRun) -> Option<String> {
    let violations: Vec<&String> = run
        .violations
        .iter()
        .filter(|v| !(v.starts_with(NATIVE_CODE) && clean.violations.contains(v)))
        .collect();
    let first = violations.first()?;
    let more = violations.len() - 1;
    Some(if more == 0 {
        format!("tried to {first} (refused by the sandbox)")
    } else {
        format!("tried to {first} and {more} more things (refused by the sandbox)")
    })
}

/// `Ok` when pytest ended normally and no test failed or errored.
/// Why a clean suite's run does not let a gate use it, if it does not.
pub fn clean_suite_fails(run: &TestRun) -> Option<String> {
    all_green(run).err()
}

fn all_green(run: &TestRun) -> Result<(), String> {
    let bad: Vec<&str> = run
        .outcomes
        .iter()
        .filter(|(_, outcome)| matches!(outcome, TestOutcome::Failed | TestOutcome::Error))
        .map(|(id, _)| id.as_str())
        .collect();
    if !bad.is_empty() {
        // The tests' own messages say why (a conftest that needs what the sandbox lacks).
        let shown: Vec<String> = bad
            .iter()
            .take(5)
            .map(|id| match run.messages.get(*id) {
                Some(message) if !message.trim().is_empty() => {
                    format!("{id} ({})", clip(message.trim(), 160))
                }
                _ => id.to_string(),
            })
            .collect();
        return Err(format!("{} tests fail: {}", bad.len(), shown.join(", ")));
    }
    match run.end {
        RunEnd::Exited(0) if !run.outcomes.is_empty() => Ok(()),
        RunEnd::Exited(0) => Err("pytest reported no tests".into()),
        RunEnd::TimedOut => Err(format!(
            "{} after {:.0} s (raise --timeout for a slow suite)",
            run.end,
            run.duration.as_secs_f64()
        )),
        ref end => Err(match last_error_line(&run.output) {
            Some(line) => format!("{end}: {}", clip(line, 200)),
            None => end.to_string(),
        }),
    }
}

/// The last line of pytest's output that names an error (a collection error, a usage
/// error), for a run that wrote no report.
fn last_error_line(output: &str) -> Option<&str> {
    output
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with("E ") || line.contains("Error") || line.starts_with("ERROR"))
        .map(|line| line.trim_start_matches("E ").trim())
}

fn clip(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Counts of rejections by gate stage, for the summary line.
pub fn rejection_counts<'a>(
    rejected: impl Iterator<Item = &'a Task>,
) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for task in rejected {
        if let Some(rejection) = &task.rejection {
            *counts.entry(rejection.stage.as_str()).or_insert(0) += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn not_found_names_the_ids_pytest_could_not_collect() {
        let output = "\nno tests ran in 0.71s\nERROR: not found: /tmp/copy/tests/test_six.py::test_moves\n\
                      (no match in any of [<Module test_six.py>])\n\n\
                      ERROR: not found: /tmp/copy/tests/test_six.py::test_gone[x]\n";
        let requested: Vec<String> = [
            "tests/test_six.py::test_moves[configparser]",
            "tests/test_six.py::test_moves[queue]",
            "tests/test_six.py::test_gone[x]",
            "tests/test_six.py::test_gone[y]",
            "tests/test_six.py::test_moves_more",
            "other/test_six.py::test_moves[a]",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            not_found(output, &requested),
            &requested[..3],
            "a function reported missing takes all its parameters; other ids stay"
        );
    }

    #[test]
    fn not_found_knows_ids_that_name_the_working_copy() {
        let output = "ERROR: not found: /tmp/w/tests/test_files.py::test_file[/tmp/w/data/a.txt]\n";
        let requested: Vec<String> = [
            "tests/test_files.py::test_file[<repo>/data/a.txt]",
            "tests/test_files.py::test_file[<repo>/data/b.txt]",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(not_found(output, &requested), &requested[..1]);
    }

    fn run_with(outcomes: &[(&str, TestOutcome, &str)], end: RunEnd, output: &str) -> TestRun {
        TestRun {
            outcomes: outcomes
                .iter()
                .map(|(id, outcome, _)| (id.to_string(), *outcome))
                .collect(),
            messages: outcomes
                .iter()
                .filter(|(_, _, message)| !message.is_empty())
                .map(|(id, _, message)| (id.to_string(), message.to_string()))
                .collect(),
            violations: Vec::new(),
            line_map: None,
            running: None,
            end,
            duration: Duration::ZERO,
            test_time: Duration::ZERO,
            cpu_time: None,
            output: output.to_string(),
            output_truncated: false,
        }
    }

    #[test]
    fn a_clean_suite_that_fails_says_why_in_the_tests_own_words() {
        let run = run_with(
            &[
                ("t.py::a", TestOutcome::Passed, ""),
                (
                    "t.py::b",
                    TestOutcome::Error,
                    "AttributeError: module 'signal' has no attribute 'alarm'",
                ),
            ],
            RunEnd::Exited(1),
            "",
        );
        assert_eq!(
            all_green(&run).unwrap_err(),
            "1 tests fail: t.py::b (AttributeError: module 'signal' has no attribute 'alarm')"
        );
        let broken = run_with(
            &[],
            RunEnd::Exited(4),
            "ERROR: file or directory not found: tests/nothing\n\nno tests ran in 0.01s\n",
        );
        assert_eq!(
            all_green(&broken).unwrap_err(),
            "pytest usage error (exit 4): bad test command or path: ERROR: file or directory not \
             found: tests/nothing"
        );
    }
}
