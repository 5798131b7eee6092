//! The pool of candidate edits the templates solver samples from: every repair template's
//! edit in the windows of the most suspicious functions, scored by the model, weighted by how
//! suspicious its lines are, and kept to those on the path of every failing test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use anyhow::Result;
use sandbox::{Selection, TestOutcome};
use schemas::{SuspiciousFunction, SuspiciousLine, Trace};
use solver::example::{Candidate, CodeSpan, LineEdit, Prompt, RepairExample, enumerate_candidates};

use super::scorer::EditScorer;
use crate::environment::Environment;
use crate::steps::note;

/// Where candidate edits are looked for and how their scores are weighed.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Functions, most suspicious first, whose candidate edits enter the pool.
    pub top_functions: usize,
    /// Most lines of a code window shown to the model.
    pub max_window_lines: usize,
    /// Weight of the localization's log-suspiciousness beside the model's score.
    pub loc_weight: f64,
    /// Weight of the checkpoint's edit-kind prior (log-probability) beside the model's score.
    pub prior_weight: f64,
}

/// A candidate edit in the pool, with where it came from.
pub(super) struct Proposal {
    pub path: String,
    pub candidate: Candidate,
    /// Index of its function in the localization.
    pub function: usize,
    pub logit: f64,
}

/// The pool of `env`'s candidate edits, scored by `scorer` (its tokens added to `trace`'s
/// cost); a `propose` step says how many were enumerated and how many were kept.
pub(super) fn propose(
    env: &Environment,
    scorer: &Mutex<impl EditScorer>,
    settings: &PoolSettings,
    trace: &mut Trace,
) -> Result<Vec<Proposal>> {
    let Environment {
        problem,
        lines,
        functions,
        files,
        ..
    } = env;
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
    let pool = on_failing_path(env, pool)?;
    trace.steps.push(note(
        "propose",
        &format!(
            "{enumerated} candidate edits in {} functions, {} on the path of every failing test",
            functions.len().min(settings.top_functions),
            pool.len()
        ),
    ));
    Ok(pool)
}

/// The proposals whose edited lines every failing test executes (in the reproduction run):
/// an edit off a failing test's path leaves that test failing, so it cannot resolve the
/// task. Without a line map, or when no proposal qualifies, all are kept.
fn on_failing_path(env: &Environment, pool: Vec<Proposal>) -> Result<Vec<Proposal>> {
    let Some(map) = env.reproduced.line_map.as_ref() else {
        return Ok(pool);
    };
    let failing: Vec<&String> = env
        .problem
        .fail_to_pass
        .iter()
        .filter(|id| {
            !matches!(
                env.reproduced.outcomes.get(id.as_str()),
                Some(TestOutcome::Passed | TestOutcome::Skipped)
            )
        })
        .collect();
    let mut texts: HashMap<String, String> = HashMap::new();
    let mut feasible = Vec::with_capacity(pool.len());
    for (index, proposal) in pool.iter().enumerate() {
        if !texts.contains_key(&proposal.path) {
            let text = env.buggy_text(&proposal.path)?;
            texts.insert(proposal.path.clone(), text);
        }
        let buggy = &texts[&proposal.path];
        let Some(edited) = proposal.candidate.edit.apply(buggy) else {
            continue;
        };
        let changed = BTreeMap::from([(
            proposal.path.clone(),
            patches::changed_lines(buggy, &edited),
        )]);
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

/// Lines shown for a function: all of it when it fits, else `max` lines around its most
/// suspicious line.
fn window_of(
    function: &SuspiciousFunction,
    lines: &[SuspiciousLine],
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
