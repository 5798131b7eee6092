//! Preparing a task's environment: reproduce the failure with line tracing, then localize it
//! (Ochiai over the lines each test ran, plus the failing tests' tracebacks).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Result, bail};
use sandbox::TestOutcome;
use sandbox::testbed::RunOptions;
use schemas::{Localization, Step, Task, Trace};

use super::{Environment, Harness, Problem};
use crate::localize;
use crate::steps::{describe_functions, note, test_step};

impl Harness {
    /// Reproduces `task`'s failure and localizes it, writing both as steps of `trace` (and
    /// the buggy code's outcome as its outcome); `None` when nothing in the repository's
    /// source is suspicious (the trace says so). A reproduction that hits a limit of the
    /// sandbox, or in which the tests already pass, is an error.
    pub fn prepare<'h, 't>(
        &'h self,
        task: &'t Task,
        trace: &mut Trace,
    ) -> Result<Option<Environment<'h, 't>>> {
        let (repo, sources) = self.repo(&task.repo)?;
        let problem = Problem::new(task, &repo.root)?;

        // Reproduce the failure, recording which lines each test runs.
        let reproduced = self.bed.run(
            repo,
            &patches::overlay(&problem.bug, &problem.tests),
            &problem.args,
            &RunOptions::cached().traced(),
        )?;
        let before = problem.outcome(&reproduced);
        trace
            .steps
            .push(test_step("run_tests", problem.test_ids(), &reproduced));
        trace.outcome = before.clone();
        if reproduced.end.hit_limit() {
            bail!(
                "the tests on the buggy code hit a limit of the sandbox: {}",
                reproduced.end
            );
        }
        if before.resolved {
            bail!("the tests already pass on the buggy code: the task is not valid");
        }

        // Localize.
        let failing: BTreeSet<String> = problem
            .test_ids()
            .filter(|id| {
                !matches!(
                    reproduced.outcomes.get(id.as_str()),
                    Some(TestOutcome::Passed | TestOutcome::Skipped)
                )
            })
            .cloned()
            .collect();
        let spectrum = reproduced
            .line_map
            .as_ref()
            .map(|map| localize::ochiai(map, &failing))
            .unwrap_or_default();
        let tracebacks = localize::traceback_frames(&reproduced.output);
        let lines = localize::rank_lines(&spectrum, &tracebacks, sources);
        let mut files: BTreeMap<String, Option<pyast::Module>> = BTreeMap::new();
        for line in &lines {
            if !files.contains_key(&line.path) {
                let text = problem.buggy_text(&repo.root, &line.path)?;
                files.insert(line.path.clone(), pyast::Module::parse(text).ok());
            }
        }
        let definitions: HashMap<String, Vec<pyast::Definition>> = files
            .iter()
            .filter_map(|(path, module)| Some((path.clone(), module.as_ref()?.definitions())))
            .collect();
        let functions = localize::rank_functions(&lines, &definitions);
        trace.steps.push(Step {
            action: "localize".into(),
            observation: describe_functions(&functions),
            tests: None,
            extra: Default::default(),
        });
        trace.localization = Some(Localization {
            method: if reproduced.line_map.is_some() {
                "ochiai+traceback".into()
            } else {
                "traceback".into()
            },
            lines: lines.iter().take(20).cloned().collect(),
            functions: functions.iter().take(10).cloned().collect(),
        });
        if functions.is_empty() {
            trace.steps.push(note(
                "submit",
                "no suspicious code in the repository's source",
            ));
            return Ok(None);
        }
        Ok(Some(Environment {
            bed: &self.bed,
            repo,
            problem,
            reproduced,
            before,
            lines,
            functions,
            files,
        }))
    }
}
