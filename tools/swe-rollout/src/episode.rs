//! One attempt of the built-in solver at one task: reproduce the failure, localize, propose
//! candidate edits at the most suspicious functions, test sampled edits in the sandbox, feed
//! the outcome back into the next draw, and submit the best patch.
//!
//! What the solver sees is a [`Problem`]: the buggy repository, the problem statement and
//! the names of the tests to run. It is built without `gold_patch` and provenance; those are
//! read only afterwards, for the trace's [`Analysis`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rand_chacha::ChaCha8Rng;
use sandbox::patch::{self, FileChanges};
use sandbox::testbed::{RepoTree, TestBed};
use sandbox::{Selection, TestOutcome, TestRun, pytest_args, select_tests};
use schemas::{
    Analysis, Cost, Localization, Outcome, Record, Sampling, SolverInfo, Step, Task, TestCounts,
    Trace,
};
use solver::example::{Candidate, CodeSpan, LineEdit, Prompt, RepairExample, enumerate_candidates};

use crate::localize;
use crate::policy::sample_distinct;
use crate::proposer::ModelScorer;

/// How the loop searches.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sampling: Sampling,
    /// Rounds of sampling and testing before the best attempt is submitted.
    pub max_steps: usize,
    /// Functions, most suspicious first, whose candidate edits enter the pool.
    pub top_functions: usize,
    /// Weight of the localization's log-suspiciousness beside the model's score.
    pub loc_weight: f64,
    /// Weight of the checkpoint's edit-kind prior (log-probability) beside the model's score.
    pub prior_weight: f64,
    /// Most lines of a code window shown to the model.
    pub max_window_lines: usize,
    /// Chat solver: most replies of the model in one attempt.
    pub max_turns: usize,
}

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

/// Everything an attempt needs besides the task.
pub struct Harness {
    pub repos: HashMap<String, RepoEntry>,
    pub bed: TestBed,
    pub solver_impl: SolverImpl,
    pub solver: SolverInfo,
    pub settings: Settings,
}

/// Who proposes the edits.
pub enum SolverImpl {
    /// The built-in model ranks the repair templates' edits.
    Model(Box<Mutex<ModelScorer>>),
    /// A chat model behind an OpenAI-compatible endpoint uses tools.
    Chat(chat::ChatClient),
}

/// What the solver may see of a task.
pub(crate) struct Problem<'t> {
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

/// A reproduced and localized task, ready for a solver.
pub(crate) struct Work<'h, 't> {
    pub repo: &'h RepoTree,
    pub problem: Problem<'t>,
    /// The tests on the buggy code, with the lines each executed.
    pub reproduced: TestRun,
    pub before: Outcome,
    pub lines: Vec<schemas::SuspiciousLine>,
    pub functions: Vec<schemas::SuspiciousFunction>,
    pub files: BTreeMap<String, Option<pyast::Module>>,
}

/// One tested edit.
struct Attempt {
    path: String,
    candidate: Candidate,
    edited: String,
    outcome: Outcome,
    function: usize,
}

impl Attempt {
    /// Better attempts sort first: resolved, then more FAIL_TO_PASS passing, then fewer
    /// PASS_TO_PASS broken.
    fn rank_key(&self) -> (bool, u32, std::cmp::Reverse<u32>) {
        rank_of(&self.outcome)
    }
}

/// A candidate edit in the pool, with where it came from.
struct Proposal {
    path: String,
    candidate: Candidate,
    /// Index of its function in the localization.
    function: usize,
    logit: f64,
}

impl Harness {
    /// Attempts `task`; a failure of the harness (a missing repository, a sandbox error) is
    /// recorded in the trace's `error`, not raised.
    pub fn attempt(&self, task: &Task) -> Trace {
        let started = Instant::now();
        let seed = self.settings.sampling.seed;
        let mut trace = Trace {
            schema: Trace::tag(),
            trace_id: format!("{}-s{seed}", task.instance_id),
            instance_id: task.instance_id.clone(),
            solver: self.solver.clone(),
            steps: Vec::new(),
            patch: String::new(),
            outcome: Outcome {
                resolved: false,
                f2p_passed: 0,
                f2p_total: task.fail_to_pass.len() as u32,
                p2p_failed: 0,
                p2p_total: task.pass_to_pass.len() as u32,
            },
            cost: Cost::default(),
            error: None,
            localization: None,
            analysis: None,
            extra: Default::default(),
        };
        let mut candidates_seen = Vec::new();
        let result = self.solve(task, &mut trace, &mut candidates_seen);
        if let Err(err) = result {
            trace.error = Some(format!("{err:#}"));
        }
        trace.analysis = Some(self.analyse(task, &trace, &candidates_seen));
        trace.cost.seconds = started.elapsed().as_secs_f64();
        trace
    }

    fn repo(&self, id: &str) -> Result<(&RepoTree, &BTreeSet<String>)> {
        match self.repos.get(id) {
            Some(RepoEntry::Ready { tree, sources }) => Ok((tree, sources)),
            Some(RepoEntry::Unusable(why)) => bail!("{why}"),
            None => bail!("repository `{id}` is not in the corpus"),
        }
    }

    fn problem<'t>(&self, task: &'t Task, root: &Path) -> Result<Problem<'t>> {
        if task.fail_to_pass.is_empty() {
            bail!("the task has no FAIL_TO_PASS tests; run task-validate on it first");
        }
        let bug = patch::apply_in_memory(root, &task.bug_patch).context("bug_patch")?;
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
            Some(test_patch) => patch::apply_over(root, &bug, test_patch).context("test_patch")?,
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

    fn solve(
        &self,
        task: &Task,
        trace: &mut Trace,
        proposed: &mut Vec<(String, LineEdit)>,
    ) -> Result<()> {
        let Some(work) = self.prepare(task, trace)? else {
            return Ok(());
        };
        match &self.solver_impl {
            SolverImpl::Model(scorer) => self.solve_with_model(&work, scorer, trace, proposed),
            SolverImpl::Chat(client) => crate::agent::solve_with_chat(self, client, &work, trace),
        }
    }

    /// Reproduces the failure and localizes it; `None` when nothing in the repository's
    /// source is suspicious (the trace says so).
    fn prepare<'h, 't>(
        &'h self,
        task: &'t Task,
        trace: &mut Trace,
    ) -> Result<Option<Work<'h, 't>>> {
        let (repo, sources) = self.repo(&task.repo)?;
        let problem = self.problem(task, &repo.root)?;

        // Reproduce the failure, recording which lines each test runs.
        let reproduced = self.bed.run_traced(
            repo,
            &patch::overlay(&problem.bug, &problem.tests),
            &problem.args,
        )?;
        let before = outcome(&problem, &reproduced);
        trace
            .steps
            .push(test_step("run_tests", &problem, &reproduced));
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
            .fail_to_pass
            .iter()
            .chain(problem.pass_to_pass)
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
                let text = buggy_text(&repo.root, &problem.bug, &line.path)?;
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
        Ok(Some(Work {
            repo,
            problem,
            reproduced,
            before,
            lines,
            functions,
            files,
        }))
    }

    /// The built-in model: choose among the repair templates' edits.
    fn solve_with_model(
        &self,
        work: &Work,
        scorer: &Mutex<ModelScorer>,
        trace: &mut Trace,
        proposed: &mut Vec<(String, LineEdit)>,
    ) -> Result<()> {
        let Work {
            repo,
            problem,
            before,
            lines,
            functions,
            files,
            ..
        } = work;
        let settings = &self.settings;

        // Propose: every template edit in the windows of the top functions, scored by the
        // model and weighted by how suspicious its lines are.
        let top_score = functions[0].score.max(f64::MIN_POSITIVE);
        let line_scores: HashMap<(&str, u32), f64> = lines
            .iter()
            .map(|l| ((l.path.as_str(), l.line), l.score))
            .collect();
        let mut pool: Vec<Proposal> = Vec::new();
        let mut seen: BTreeSet<(String, LineEdit)> = BTreeSet::new();
        for (index, function) in functions.iter().take(settings.top_functions).enumerate() {
            let Some(Some(module)) = files.get(&function.path) else {
                continue;
            };
            let (first, last) = window_of(function, lines, settings.max_window_lines);
            let candidates: Vec<Candidate> = enumerate_candidates(module, first, last)
                .into_iter()
                .filter(|c| seen.insert((function.path.clone(), c.edit.clone())))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let example = RepairExample {
                instance_id: problem.instance_id.to_string(),
                prompt: Prompt {
                    problem: problem.statement.to_string(),
                    path: function.path.clone(),
                    first_line: first,
                    lines: module
                        .source()
                        .split_inclusive('\n')
                        .skip(first - 1)
                        .take(last + 1 - first)
                        .map(str::to_string)
                        .collect(),
                },
                candidates,
                gold: None,
                gold_enumerated: false,
                family: String::new(),
                scope: CodeSpan::scope_of(module, first, last),
                signatures: solver::names::signatures(module.source()),
            };
            let (scores, priors, tokens) = {
                let scorer = scorer.lock().expect("scorer lock");
                let (scores, tokens) = scorer.score(&example);
                (scores, scorer.prior_log_probs(&example), tokens)
            };
            trace.cost.tokens += tokens;
            let scored = scores.into_iter().zip(priors);
            for (candidate, (score, prior)) in example.candidates.into_iter().zip(scored) {
                let edit = &candidate.edit;
                let span = edit.start as u32..=(edit.end().max(edit.start) as u32);
                let suspicious = span
                    .clone()
                    .chain([span.start().saturating_sub(1), span.end() + 1])
                    .filter_map(|line| line_scores.get(&(function.path.as_str(), line)))
                    .fold(0.1 * function.score, |a, &b| a.max(b));
                pool.push(Proposal {
                    path: function.path.clone(),
                    candidate,
                    function: index,
                    logit: score
                        + settings.prior_weight * prior
                        + settings.loc_weight * (suspicious / top_score).ln(),
                });
            }
        }
        let enumerated = pool.len();
        let pool = on_failing_path(work, pool)?;
        proposed.extend(
            pool.iter()
                .map(|p| (p.path.clone(), p.candidate.edit.clone())),
        );
        trace.steps.push(note(
            "propose",
            &format!(
                "{enumerated} candidate edits in {} functions, {} on the path of every failing test",
                functions.len().min(settings.top_functions),
                pool.len()
            ),
        ));

        // Sample, test, feed back.
        let mut rng: ChaCha8Rng =
            solver::example::rng_for(problem.instance_id, settings.sampling.seed);
        let mut tried = BTreeSet::new();
        let mut best: Option<Attempt> = None;
        let mut logits: Vec<f64> = pool.iter().map(|p| p.logit).collect();
        for _ in 0..settings.max_steps {
            let picks = sample_distinct(
                &logits,
                settings.sampling.temperature,
                settings.sampling.top_p,
                settings.sampling.k.max(1) as usize,
                &tried,
                &mut rng,
            );
            if picks.is_empty() {
                break;
            }
            for pick in picks {
                tried.insert(pick);
                let proposal = &pool[pick];
                let buggy = buggy_text(&repo.root, &problem.bug, &proposal.path)?;
                let edit = &proposal.candidate.edit;
                trace.steps.push(note(
                    &format!(
                        "edit {}:{} {}",
                        proposal.path, edit.start, proposal.candidate.template
                    ),
                    &show_edit(edit),
                ));
                let Some(edited) = edit.apply(&buggy) else {
                    trace
                        .steps
                        .push(note("run_tests", "the edit did not apply"));
                    continue;
                };
                let edits = BTreeMap::from([(proposal.path.clone(), edited.clone())]);
                let (run, seen) = match self.run_edits(work, &edits) {
                    Ok(ran) => ran,
                    Err(err) => {
                        // One broken run must not throw away the attempts before it.
                        let why = format!("the sandbox failed: {err:#}");
                        trace.steps.push(note("run_tests", &why));
                        continue;
                    }
                };
                trace.steps.push(match seen {
                    0 => note(
                        "run_tests",
                        "no test executes the edited lines: nothing changes",
                    ),
                    _ => test_step("run_tests", problem, &run),
                });
                let attempt = Attempt {
                    path: proposal.path.clone(),
                    candidate: proposal.candidate.clone(),
                    edited,
                    outcome: outcome(problem, &run),
                    function: proposal.function,
                };
                if best
                    .as_ref()
                    .is_none_or(|b| attempt.rank_key() > b.rank_key())
                {
                    best = Some(attempt);
                }
                if best.as_ref().is_some_and(|b| b.outcome.resolved) {
                    break;
                }
            }
            match &best {
                Some(b) if b.outcome.resolved => break,
                // Feedback: an edit that made some FAIL_TO_PASS test pass found the place;
                // the next draws favour its function.
                Some(b) if b.outcome.f2p_passed > before.f2p_passed => {
                    let focus = b.function;
                    for (logit, proposal) in logits.iter_mut().zip(&pool) {
                        if proposal.function == focus {
                            *logit += settings.loc_weight * 2f64.ln();
                        }
                    }
                    trace.steps.push(note(
                        "feedback",
                        &format!(
                            "{} of {} FAIL_TO_PASS pass after the best edit so far; focusing on {}",
                            b.outcome.f2p_passed, b.outcome.f2p_total, functions[focus].name
                        ),
                    ));
                }
                _ => {}
            }
        }

        // Submit the best attempt when it improved on the buggy code.
        match best {
            Some(b) if b.rank_key() > rank_of(before) => {
                let buggy = buggy_text(&repo.root, &problem.bug, &b.path)?;
                trace.patch = patch::unified_diff(&b.path, &buggy, &b.edited);
                trace.outcome = b.outcome.clone();
                trace.steps.push(note(
                    "submit",
                    &format!(
                        "{} at {}:{} ({})",
                        status_word(&b.outcome),
                        b.path,
                        b.candidate.edit.start,
                        b.candidate.template
                    ),
                ));
            }
            _ => trace
                .steps
                .push(note("submit", "no edit improved on the buggy code")),
        }
        Ok(())
    }

    /// Runs the task's tests on the buggy code with `edits` (path → the file's new text)
    /// applied. Only the tests that can see the edits run: those that execute an edited line
    /// in the reproduction run; the others run as before, so they keep their outcome from
    /// that run. A run that resolves the task this way is confirmed by running every test of
    /// the task. Returns the merged run and how many tests ran.
    pub(crate) fn run_edits(
        &self,
        work: &Work,
        edits: &BTreeMap<String, String>,
    ) -> Result<(TestRun, usize)> {
        let problem = &work.problem;
        let mut changes = problem.bug.clone();
        let mut changed = BTreeMap::new();
        for (path, text) in edits {
            let buggy = buggy_text(&work.repo.root, &problem.bug, path)?;
            if &buggy == text {
                continue;
            }
            changed.insert(path.clone(), patch::changed_lines(&buggy, text));
            let original = match problem.bug.get(path) {
                Some((clean, _)) => clean.clone(),
                None => buggy,
            };
            changes.insert(path.clone(), (original, text.clone()));
        }
        let changes = patch::overlay(&changes, &problem.tests);
        let all: Vec<String> = problem
            .fail_to_pass
            .iter()
            .chain(problem.pass_to_pass)
            .cloned()
            .collect();
        let selected: Vec<String> = match work
            .reproduced
            .line_map
            .as_ref()
            .map(|m| m.select(&changed))
        {
            _ if changed.is_empty() => Vec::new(),
            Some(Selection::Tests(ids)) => all.into_iter().filter(|id| ids.contains(id)).collect(),
            Some(Selection::All) | None => all,
        };
        let mut merged = work.reproduced.clone();
        merged.line_map = None;
        if selected.is_empty() {
            return Ok((merged, 0));
        }
        let limit = self.bed.limit_after(&work.reproduced);
        let run = self.bed.run_cached_within(
            work.repo,
            &changes,
            &select_tests(&problem.base_args, &selected),
            "",
            limit,
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
        if ran < everything && outcome(problem, &merged).resolved {
            let full = self
                .bed
                .run_cached_within(work.repo, &changes, &problem.args, "", limit)?;
            return Ok((full, everything));
        }
        Ok((merged, ran))
    }

    /// The facts hidden from the solver: where the bug really is and how the localization
    /// and the templates did on it.
    fn analyse(&self, task: &Task, trace: &Trace, proposed: &[(String, LineEdit)]) -> Analysis {
        let mut analysis = Analysis {
            repo: task.repo.clone(),
            operator: task.provenance.operator.clone(),
            family: task
                .provenance
                .operator
                .as_deref()
                .and_then(pyast::operators::by_id)
                .map(|op| op.family.to_string()),
            ..Analysis::default()
        };
        let Ok((repo, _)) = self.repo(&task.repo) else {
            return analysis;
        };
        let Ok(bug) = patch::apply_in_memory(&repo.root, &task.bug_patch) else {
            return analysis;
        };
        // The lines the gold repair touches, in the buggy files (every hunk of every file).
        let changed: Vec<(&String, BTreeSet<u32>)> = bug
            .iter()
            .map(|(path, (clean, buggy))| (path, patch::changed_lines(buggy, clean)))
            .filter(|(_, lines)| !lines.is_empty())
            .collect();
        let Some((first_path, first_lines)) = changed.first() else {
            return analysis;
        };
        analysis.bug_path = Some(first_path.to_string());
        analysis.bug_line = first_lines.first().copied();
        let is_bug_line = |path: &str, line: u32| {
            changed
                .iter()
                .any(|(p, l)| p.as_str() == path && l.contains(&line))
        };
        if let Some(loc) = &trace.localization {
            analysis.line_rank = loc
                .lines
                .iter()
                .position(|l| is_bug_line(&l.path, l.line))
                .map(|i| i as u32 + 1);
            analysis.function_rank = loc
                .functions
                .iter()
                .position(|f| {
                    changed.iter().any(|(p, lines)| {
                        p.as_str() == f.path
                            && lines
                                .iter()
                                .any(|l| (f.start_line..=f.end_line.max(f.start_line)).contains(l))
                    })
                })
                .map(|i| i as u32 + 1);
        }
        // Which candidates the built-in model chose from (the chat solver has none).
        if trace.error.is_none()
            && matches!(self.solver_impl, SolverImpl::Model(_))
            && let [(path, _)] = changed.as_slice()
            && let Some((clean, buggy)) = bug.get(*path)
            && let Some(gold) = LineEdit::between(buggy, clean)
        {
            analysis.gold_proposed =
                Some(proposed.iter().any(|(p, edit)| p == *path && *edit == gold));
        }
        analysis
    }
}

/// The proposals whose edited lines every failing test executes (in the reproduction run):
/// an edit off a failing test's path leaves that test failing, so it cannot resolve the
/// task. Without a line map, or when no proposal qualifies, all are kept.
fn on_failing_path(work: &Work, pool: Vec<Proposal>) -> Result<Vec<Proposal>> {
    let Some(map) = work.reproduced.line_map.as_ref() else {
        return Ok(pool);
    };
    let failing: Vec<&String> = work
        .problem
        .fail_to_pass
        .iter()
        .filter(|id| {
            !matches!(
                work.reproduced.outcomes.get(id.as_str()),
                Some(TestOutcome::Passed | TestOutcome::Skipped)
            )
        })
        .collect();
    let mut texts: HashMap<String, String> = HashMap::new();
    let mut feasible = Vec::with_capacity(pool.len());
    for (index, proposal) in pool.iter().enumerate() {
        if !texts.contains_key(&proposal.path) {
            let text = buggy_text(&work.repo.root, &work.problem.bug, &proposal.path)?;
            texts.insert(proposal.path.clone(), text);
        }
        let buggy = &texts[&proposal.path];
        let Some(edited) = proposal.candidate.edit.apply(buggy) else {
            continue;
        };
        let changed =
            BTreeMap::from([(proposal.path.clone(), patch::changed_lines(buggy, &edited))]);
        let reaches_all = match map.select(&changed) {
            Selection::All => true,
            Selection::Tests(ids) => failing.iter().all(|id| ids.contains(*id)),
        };
        if reaches_all {
            feasible.push(index);
        }
    }
    if feasible.is_empty() {
        return Ok(pool);
    }
    let mut pool: Vec<Option<Proposal>> = pool.into_iter().map(Some).collect();
    Ok(feasible
        .into_iter()
        .filter_map(|i| pool[i].take())
        .collect())
}

/// The text of `path` with the bug applied.
pub(crate) fn buggy_text(root: &Path, bug: &FileChanges, path: &str) -> Result<String> {
    match bug.get(path) {
        Some((_, buggy)) => Ok(buggy.clone()),
        None => {
            std::fs::read_to_string(root.join(path)).with_context(|| format!("cannot read {path}"))
        }
    }
}

/// Lines shown for a function: all of it when it fits, else `max` lines around its most
/// suspicious line.
fn window_of(
    function: &schemas::SuspiciousFunction,
    lines: &[schemas::SuspiciousLine],
    max: usize,
) -> (usize, usize) {
    let (start, end) = (function.start_line as usize, function.end_line as usize);
    let hot = lines
        .iter()
        .find(|l| l.path == function.path && (start..=end).contains(&(l.line as usize)))
        .map_or(start, |l| l.line as usize);
    if function.name == "<module>" {
        let first = hot.saturating_sub(10).max(1);
        return (first, hot + 10);
    }
    if end + 1 - start <= max {
        return (start, end);
    }
    let first = hot.saturating_sub(max / 2).max(start).min(end + 1 - max);
    (first, first + max - 1)
}

/// How a run fared on the task's tests; a test missing from the report counts as failing.
pub(crate) fn outcome(problem: &Problem, run: &TestRun) -> Outcome {
    let passed = |id: &String| run.outcomes.get(id.as_str()) == Some(&TestOutcome::Passed);
    let f2p_passed = problem.fail_to_pass.iter().filter(|id| passed(id)).count() as u32;
    let p2p_failed = problem.pass_to_pass.iter().filter(|id| !passed(id)).count() as u32;
    let f2p_total = problem.fail_to_pass.len() as u32;
    Outcome {
        resolved: f2p_passed == f2p_total && p2p_failed == 0,
        f2p_passed,
        f2p_total,
        p2p_failed,
        p2p_total: problem.pass_to_pass.len() as u32,
    }
}

pub(crate) fn rank_of(outcome: &Outcome) -> (bool, u32, std::cmp::Reverse<u32>) {
    (
        outcome.resolved,
        outcome.f2p_passed,
        std::cmp::Reverse(outcome.p2p_failed),
    )
}

pub(crate) fn status_word(outcome: &Outcome) -> &'static str {
    match outcome.status() {
        schemas::OutcomeStatus::Resolved => "resolved",
        schemas::OutcomeStatus::Partial => "partial",
        schemas::OutcomeStatus::Failed => "failed",
    }
}

/// An edit as `-`/`+` lines.
fn show_edit(edit: &LineEdit) -> String {
    let old = edit
        .old
        .iter()
        .map(|l| format!("-{}", l.trim_end_matches('\n')));
    let new = edit
        .new
        .iter()
        .map(|l| format!("+{}", l.trim_end_matches('\n')));
    old.chain(new).collect::<Vec<_>>().join("\n")
}

pub(crate) fn note(action: &str, observation: &str) -> Step {
    Step {
        action: action.to_string(),
        observation: observation.to_string(),
        tests: None,
        extra: Default::default(),
    }
}

/// A `run_tests` step: counts over the task's tests and the first failure messages.
pub(crate) fn test_step(action: &str, problem: &Problem, run: &TestRun) -> Step {
    let mut counts = TestCounts::default();
    for id in problem.fail_to_pass.iter().chain(problem.pass_to_pass) {
        match run.outcomes.get(id.as_str()) {
            Some(TestOutcome::Passed) => counts.passed += 1,
            Some(TestOutcome::Skipped) => counts.skipped += 1,
            Some(TestOutcome::Failed) => {
                counts.failed += 1;
                counts.failing.push(id.clone());
            }
            Some(TestOutcome::Error) | None => {
                counts.error += 1;
                counts.failing.push(id.clone());
            }
        }
    }
    counts.failing.sort();
    counts.failing.dedup();
    let mut observation = format!(
        "{} passed, {} failed, {} errors ({})",
        counts.passed, counts.failed, counts.error, run.end
    );
    for id in counts.failing.iter().take(3) {
        let message = run.messages.get(id).map_or("", String::as_str);
        observation.push_str(&format!("\n{id}: {message}"));
    }
    Step {
        action: action.to_string(),
        observation,
        tests: Some(counts),
        extra: Default::default(),
    }
}

pub(crate) fn describe_functions(functions: &[schemas::SuspiciousFunction]) -> String {
    if functions.is_empty() {
        return "no executed source line is suspicious".into();
    }
    functions
        .iter()
        .take(5)
        .enumerate()
        .map(|(i, f)| {
            format!(
                "{}. {}:{}-{} {} ({:.2})",
                i + 1,
                f.path,
                f.start_line,
                f.end_line,
                f.name,
                f.score
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
