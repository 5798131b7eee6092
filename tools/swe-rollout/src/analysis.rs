//! Judging attempts, and the facts hidden from the solver: how outcomes rank, the word for
//! an outcome, and the trace's [`Analysis`] (where the bug really is, and how the
//! localization and the candidate edits did on it), written after the attempt.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::path::Path;

use schemas::{Analysis, Outcome, OutcomeStatus, Task, Trace};
use solver::example::LineEdit;

/// Better outcomes sort higher: resolved, then more FAIL_TO_PASS passing, then fewer
/// PASS_TO_PASS broken.
pub fn rank_of(outcome: &Outcome) -> (bool, u32, Reverse<u32>) {
    (
        outcome.resolved,
        outcome.f2p_passed,
        Reverse(outcome.p2p_failed),
    )
}

/// `resolved`, `partial` or `failed`.
pub fn status_word(outcome: &Outcome) -> &'static str {
    match outcome.status() {
        OutcomeStatus::Resolved => "resolved",
        OutcomeStatus::Partial => "partial",
        OutcomeStatus::Failed => "failed",
    }
}

/// The facts hidden from the solver: where the bug really is (read from `task`'s bug patch
/// over its clean repository at `root`, `None` when the repository cannot be used) and how
/// `trace`'s localization did on it. `proposed` holds the candidate edits the solver chose
/// among, when it chooses among candidates and its attempt finished: the analysis then says
/// whether the gold edit was one of them.
pub fn analyse(
    task: &Task,
    root: Option<&Path>,
    trace: &Trace,
    proposed: Option<&[(String, LineEdit)]>,
) -> Analysis {
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
    let Some(root) = root else {
        return analysis;
    };
    let Ok(bug) = patches::apply_in_memory(root, &task.bug_patch) else {
        return analysis;
    };
    // The lines the gold repair touches, in the buggy files (every hunk of every file).
    let changed: Vec<(&String, BTreeSet<u32>)> = bug
        .iter()
        .map(|(path, (clean, buggy))| (path, patches::changed_lines(buggy, clean)))
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
    if trace.error.is_none()
        && let Some(proposed) = proposed
        && let [(path, _)] = changed.as_slice()
        && let Some((clean, buggy)) = bug.get(*path)
        && let Some(gold) = LineEdit::between(buggy, clean)
    {
        analysis.gold_proposed = Some(proposed.iter().any(|(p, edit)| p == *path && *edit == gold));
    }
    analysis
}
