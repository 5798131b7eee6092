//! What one trace says about the solver: its failure mode, and the bug's repair pattern — the
//! operator that reproduces the bug on the clean code and the features of the site it edits.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use pyast::operators::{self, Operator};
use pyast::{Features, Module};
use schemas::{Task, Trace};

/// How an attempt ended, from the solver's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureMode {
    /// The bug's function was not among the top suspects (or the edits were elsewhere).
    NotLocalized,
    /// The right function, but no edit made the failing tests pass.
    WrongEdit,
    /// The submitted edit broke tests that passed before.
    BrokePassing,
    /// The attempt ran out of time or turns.
    Timeout,
    Resolved,
}

impl FailureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::NotLocalized => "not-localized",
            FailureMode::WrongEdit => "wrong-edit",
            FailureMode::BrokePassing => "broke-p2p",
            FailureMode::Timeout => "timeout",
            FailureMode::Resolved => "resolved",
        }
    }

    pub fn failed(self) -> bool {
        self != FailureMode::Resolved
    }
}

/// One trace, analysed.
#[derive(Debug, Clone)]
pub struct Analysed {
    pub trace_id: String,
    pub instance_id: String,
    pub mode: FailureMode,
    /// The operator whose edit turns the clean code into the buggy code (or the task's
    /// recorded operator when none reproduces it exactly).
    pub operator: Option<&'static Operator>,
    /// Features of the bug site in the clean code (`None` when the source is unavailable).
    pub site: Option<Features>,
    /// 1-based rank of the bug's function in the trace's localization.
    pub function_rank: Option<u32>,
}

/// Where a task's bug is.
struct Bug {
    path: String,
    /// Changed lines of the buggy file (what the solver saw and localized).
    buggy_lines: BTreeSet<u32>,
    /// The buggy text of every file the bug touches.
    buggy_files: HashMap<String, String>,
    operator: Option<&'static Operator>,
    site: Option<Features>,
}

/// Analyses traces against the tasks they ran on and the clean sources of the corpus.
pub struct Analyser {
    /// Source root of every repository, by repo id.
    pub roots: HashMap<String, PathBuf>,
    /// A bug whose function ranks within this many suspects counts as localized.
    pub localized_within: u32,
}

/// Words of an error that mean the attempt ran out of budget rather than broke.
const LIMIT_WORDS: [&str; 5] = [
    "timed out",
    "timeout",
    "time limit",
    "turn limit",
    "out of turns",
];

impl Analyser {
    /// The analysis of `trace` on `task`; `None` when the trace ended in an error that says
    /// nothing about the solver (a broken task, a missing repository).
    pub fn analyse(&self, trace: &Trace, task: &Task) -> Option<Analysed> {
        if let Some(error) = &trace.error {
            let error = error.to_lowercase();
            if !LIMIT_WORDS.iter().any(|w| error.contains(w)) {
                return None;
            }
        }
        let bug = self
            .roots
            .get(&task.repo)
            .and_then(|root| locate(root, task));
        let function_rank = bug.as_ref().and_then(|bug| function_rank(trace, bug));
        let mode = if trace.outcome.resolved {
            FailureMode::Resolved
        } else if trace.error.is_some() {
            FailureMode::Timeout
        } else if !trace.patch.trim().is_empty() && trace.outcome.p2p_failed > 0 {
            FailureMode::BrokePassing
        } else if self.localized(trace, bug.as_ref(), function_rank) {
            FailureMode::WrongEdit
        } else {
            FailureMode::NotLocalized
        };
        let recorded = task
            .provenance
            .operator
            .as_deref()
            .and_then(operators::by_id);
        // How many tests reach the site is not in the code: task-gen recorded it from the
        // validate stage's line map, when it had one.
        let tests_reaching = task
            .provenance
            .site
            .as_ref()
            .and_then(|site| site.extra.get("tests_reaching"))
            .and_then(serde_json::Value::as_u64)
            .map(|tests| tests as usize);
        let operator = bug.as_ref().and_then(|b| b.operator).or(recorded);
        let mut site = bug.and_then(|b| b.site);
        if let Some(site) = site.as_mut() {
            site.tests_reaching = tests_reaching;
        }
        Some(Analysed {
            trace_id: trace.trace_id.clone(),
            instance_id: trace.instance_id.clone(),
            mode,
            operator,
            site,
            function_rank,
        })
    }

    /// With a localization, whether the bug's function ranks among the top suspects; without
    /// one (a chat solver localizes by itself), whether the submitted patch edits lines near
    /// the bug.
    fn localized(&self, trace: &Trace, bug: Option<&Bug>, rank: Option<u32>) -> bool {
        let ranked = trace
            .localization
            .as_ref()
            .is_some_and(|loc| !loc.functions.is_empty());
        if ranked {
            return rank.is_some_and(|r| r <= self.localized_within);
        }
        let Some(bug) = bug else {
            return false;
        };
        let read = |path: &str| {
            bug.buggy_files
                .get(path)
                .cloned()
                .ok_or_else(|| patches::PatchError::MissingFile(path.to_string()))
        };
        let Ok(changes) = patches::apply_to(&trace.patch, read) else {
            return false;
        };
        changes
            .get(&bug.path)
            .map(|(buggy, patched)| patches::changed_lines(buggy, patched))
            .is_some_and(|touched| {
                touched
                    .iter()
                    .any(|&t| bug.buggy_lines.iter().any(|&b| t.abs_diff(b) <= 3))
            })
    }
}

/// The rank of the first localized function that contains a changed line of the bug.
fn function_rank(trace: &Trace, bug: &Bug) -> Option<u32> {
    if let Some(rank) = trace.analysis.as_ref().and_then(|a| a.function_rank) {
        return Some(rank);
    }
    let loc = trace.localization.as_ref()?;
    loc.functions
        .iter()
        .position(|f| {
            f.path == bug.path
                && bug
                    .buggy_lines
                    .iter()
                    .any(|l| (f.start_line..=f.end_line.max(f.start_line)).contains(l))
        })
        .map(|i| i as u32 + 1)
}

/// The bug of `task` in the clean sources under `root`: the file it changes first, the lines
/// it changes, and the operator edit that reproduces it (the recorded operator is tried first;
/// a bug no operator reproduces keeps the features of the smallest node around the change).
fn locate(root: &Path, task: &Task) -> Option<Bug> {
    let changes = patches::apply_in_memory(root, &task.bug_patch).ok()?;
    let (path, (clean, buggy)) = changes.iter().find(|(_, (c, b))| c != b)?;
    let buggy_lines = patches::changed_lines(buggy, clean);
    let clean_lines = patches::changed_lines(clean, buggy);
    let buggy_files = changes
        .iter()
        .map(|(p, (_, b))| (p.clone(), b.clone()))
        .collect();
    let mut bug = Bug {
        path: path.clone(),
        buggy_lines,
        buggy_files,
        operator: None,
        site: None,
    };
    let Ok(module) = Module::parse(clean.as_str()) else {
        return Some(bug);
    };
    let bytes = line_bytes(clean, &clean_lines);
    let recorded = task
        .provenance
        .operator
        .as_deref()
        .and_then(operators::by_id);
    let order: Vec<&'static Operator> = recorded
        .into_iter()
        .chain(
            operators::all()
                .into_iter()
                .filter(|op| recorded.is_none_or(|r| r.id != op.id)),
        )
        .collect();
    for op in order {
        for site in module.sites_in(&[op], bytes.clone()) {
            if site.edits.iter().any(|edit| module.apply(edit) == *buggy) {
                bug.operator = Some(op);
                bug.site = Some(site.features(&module));
                return Some(bug);
            }
        }
    }
    let node = module
        .root()
        .named_descendant_for_byte_range(bytes.start, bytes.end.max(bytes.start))?;
    bug.site = Some(pyast::features(&module, node));
    Some(bug)
}

/// The byte range of the 1-based `lines` of `text` (their first to last, without the final
/// newline).
fn line_bytes(text: &str, lines: &BTreeSet<u32>) -> std::ops::Range<usize> {
    let (Some(&first), Some(&last)) = (lines.first(), lines.last()) else {
        return 0..0;
    };
    let mut start = text.len();
    let mut end = text.len();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let number = i as u32 + 1;
        if number == first {
            start = offset;
        }
        if number == last {
            end = offset + line.trim_end_matches('\n').len();
            break;
        }
        offset += line.len();
    }
    start.min(end)..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_bytes_cover_whole_lines() {
        let text = "a = 1\nif a < 2:\n    b = 3\n";
        let lines: BTreeSet<u32> = [2].into();
        assert_eq!(&text[line_bytes(text, &lines)], "if a < 2:");
        let lines: BTreeSet<u32> = [2, 3].into();
        assert_eq!(&text[line_bytes(text, &lines)], "if a < 2:\n    b = 3");
    }
}
