//! How the trace's steps read: a note, a test run as counts and its first failures, the
//! localization's ranking, an edit as `-`/`+` lines.

use sandbox::{TestOutcome, TestRun};
use schemas::{Step, SuspiciousFunction, TestCounts};
use solver::example::LineEdit;

/// A step whose observation is plain text.
pub fn note(action: &str, observation: &str) -> Step {
    Step {
        action: action.to_string(),
        observation: observation.to_string(),
        tests: None,
        extra: Default::default(),
    }
}

/// A test step: counts over the task's tests (`tests`, FAIL_TO_PASS then PASS_TO_PASS) and
/// the first failure messages of `run`.
pub fn test_step<'a>(
    action: &str,
    tests: impl IntoIterator<Item = &'a String>,
    run: &TestRun,
) -> Step {
    let mut counts = TestCounts::default();
    for id in tests {
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

/// The five most suspicious functions, one a line with their place and score.
pub fn describe_functions(functions: &[SuspiciousFunction]) -> String {
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

/// An edit as `-`/`+` lines.
pub fn show_edit(edit: &LineEdit) -> String {
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
