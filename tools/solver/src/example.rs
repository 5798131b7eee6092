//! From a Task to what the solver sees: a prompt (problem statement and a numbered code window
//! of the buggy file) and candidate edits at the lines of that window, one of which is the gold
//! repair when the repair templates can produce it.
//!
//! The prompt is built from the problem statement and the *buggy* file only. `gold_patch` is
//! read to know which candidate is gold (for training and evaluation), never to write the
//! prompt; provenance is not read at all.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use schemas::Task;
use sha2::{Digest, Sha256};

use crate::tokenizer::{CODE, EDIT, END, PROBLEM, REPLACE, SEARCH};

/// How many leading and trailing items `a` and `b` share, without overlap: `a[prefix..len -
/// suffix]` and `b[prefix..len - suffix]` are where they differ.
pub fn common_ends<T: PartialEq>(a: &[T], b: &[T]) -> (usize, usize) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let room = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    (prefix, suffix)
}

/// A replacement of whole lines: lines `start..start + old.len()` (1-based) become `new`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineEdit {
    pub start: usize,
    pub old: Vec<String>,
    pub new: Vec<String>,
}

impl LineEdit {
    /// The smallest line edit that turns `old` into `new` (None when they are equal).
    pub fn between(old: &str, new: &str) -> Option<LineEdit> {
        let a: Vec<&str> = old.split_inclusive('\n').collect();
        let b: Vec<&str> = new.split_inclusive('\n').collect();
        let (prefix, suffix) = common_ends(&a, &b);
        if prefix == a.len() && prefix == b.len() {
            return None;
        }
        let own = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect();
        Some(LineEdit {
            start: prefix + 1,
            old: own(&a[prefix..a.len() - suffix]),
            new: own(&b[prefix..b.len() - suffix]),
        })
    }

    /// The last line it touches (its start when it only inserts).
    pub fn end(&self) -> usize {
        self.start + self.old.len().saturating_sub(1)
    }

    /// `source` with this edit applied; None when its old lines are not there.
    pub fn apply(&self, source: &str) -> Option<String> {
        let lines: Vec<&str> = source.split_inclusive('\n').collect();
        let from = self.start.checked_sub(1)?;
        let to = from + self.old.len();
        if to > lines.len()
            || lines[from..to] != self.old.iter().map(String::as_str).collect::<Vec<_>>()[..]
        {
            return None;
        }
        let mut out = String::with_capacity(source.len());
        lines[..from].iter().for_each(|l| out.push_str(l));
        self.new.iter().for_each(|l| out.push_str(l));
        lines[to..].iter().for_each(|l| out.push_str(l));
        Some(out)
    }

    /// The search/replace block the model scores.
    pub fn render(&self) -> String {
        let mut out = format!("{EDIT}{}\n{SEARCH}\n", self.start);
        for line in &self.old {
            out.push_str(line.trim_end_matches('\n'));
            out.push('\n');
        }
        out.push_str(REPLACE);
        out.push('\n');
        for line in &self.new {
            out.push_str(line.trim_end_matches('\n'));
            out.push('\n');
        }
        out.push_str(END);
        out
    }
}

/// What the solver is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub problem: String,
    pub path: String,
    /// 1-based number of the first line of `lines`.
    pub first_line: usize,
    pub lines: Vec<String>,
}

impl Prompt {
    /// The prompt text, with the problem statement cut to `max_problem_chars`.
    pub fn render(&self, max_problem_chars: usize) -> String {
        let problem: String = self.problem.chars().take(max_problem_chars).collect();
        let mut out = format!("{PROBLEM}\n{}\n{CODE}{}\n", problem.trim_end(), self.path);
        for (i, line) in self.lines.iter().enumerate() {
            out.push_str(&format!(
                "{:>5} {}\n",
                self.first_line + i,
                line.trim_end_matches('\n')
            ));
        }
        out
    }

    pub fn last_line(&self) -> usize {
        self.first_line + self.lines.len().saturating_sub(1)
    }
}

/// A candidate repair: a line edit and the template (bug operator) that proposed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub edit: LineEdit,
    pub template: String,
}

/// A task as the solver trains and is evaluated on it.
#[derive(Debug, Clone)]
pub struct RepairExample {
    pub instance_id: String,
    pub prompt: Prompt,
    pub candidates: Vec<Candidate>,
    /// Index of the target repair in `candidates`: the gold one, or the solver's own for an
    /// example built from a trace (None when the task has no known repair).
    pub gold: Option<usize>,
    /// Whether the templates proposed the target repair themselves (it is appended otherwise,
    /// so training still sees it; evaluation counts such a task as out of reach).
    pub gold_enumerated: bool,
    /// Family of the bug operator, for reports (from provenance, never shown to the model).
    pub family: String,
    /// The code the features read to tell how names are used: the innermost function around
    /// the window, whole (the window itself at module level).
    pub scope: CodeSpan,
    /// The positional parameters of the functions its file defines, by name
    /// ([`crate::names::signatures`]): what a call's argument is meant to be.
    pub signatures: std::collections::BTreeMap<String, Vec<String>>,
}

/// Consecutive lines of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeSpan {
    /// 1-based number of the first line of `lines`.
    pub first_line: usize,
    pub lines: Vec<String>,
}

impl CodeSpan {
    /// Lines `first..=last` (1-based) of `source`.
    pub fn of(source: &str, first: usize, last: usize) -> CodeSpan {
        CodeSpan {
            first_line: first,
            lines: source
                .split_inclusive('\n')
                .skip(first.saturating_sub(1))
                .take((last + 1).saturating_sub(first))
                .map(str::to_string)
                .collect(),
        }
    }

    /// The innermost function of `module` that holds lines `first..=last`, whole, or those
    /// lines when no function does.
    pub fn scope_of(module: &pyast::Module, first: usize, last: usize) -> CodeSpan {
        let (a, b) = innermost_function(module, first, last).unwrap_or((first, last));
        CodeSpan::of(module.source(), a, b)
    }
}

/// The first and last line of the innermost function of `module` around `lo..=hi`.
fn innermost_function(module: &pyast::Module, lo: usize, hi: usize) -> Option<(usize, usize)> {
    module
        .definitions()
        .into_iter()
        .filter(|d| d.kind == "function" && d.start_line <= lo && hi <= d.end_line)
        .min_by_key(|d| d.end_line - d.start_line)
        .map(|d| (d.start_line, d.end_line))
}

/// How examples are cut.
#[derive(Debug, Clone, Copy)]
pub struct ExampleOptions {
    /// Most lines of code in the window.
    pub max_window_lines: usize,
    /// Most candidates kept (the gold one always among them).
    pub max_candidates: usize,
    /// Seeds the window's offset and the choice of candidates.
    pub seed: u64,
}

impl Default for ExampleOptions {
    fn default() -> Self {
        ExampleOptions {
            max_window_lines: 40,
            max_candidates: 256,
            seed: 0,
        }
    }
}

/// A generator seeded by the task and the run seed, so the same task is cut the same way.
pub fn rng_for(instance_id: &str, seed: u64) -> ChaCha8Rng {
    let digest = Sha256::digest(instance_id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    ChaCha8Rng::seed_from_u64(u64::from_le_bytes(bytes) ^ seed)
}

/// The lines `first..=last` (1-based) of the innermost function around `lines` in `module`,
/// or ±10 lines around them at module level; at most `max` lines, at a random offset that
/// still contains `lines` (so the bug's place in the window tells nothing).
pub fn window(
    module: &pyast::Module,
    lines: (usize, usize),
    max: usize,
    rng: &mut ChaCha8Rng,
) -> (usize, usize) {
    let total = module.source().split_inclusive('\n').count().max(1);
    let (lo, hi) = (
        lines.0.min(total),
        lines.1.min(total).max(lines.0.min(total)),
    );
    let (first, last) = innermost_function(module, lo, hi)
        .unwrap_or((lo.saturating_sub(10).max(1), (hi + 10).min(total)));
    if last - first < max {
        return (first, last);
    }
    // Starts s with s <= lo and s + max - 1 >= hi, inside [first, last - max + 1].
    let earliest = first.max((hi + 1).saturating_sub(max));
    let latest = lo.min(last + 1 - max).max(earliest);
    let start = earliest + (rng.next_u64() as usize) % (latest - earliest + 1);
    (start, start + max - 1)
}

/// Every edit the repair templates propose on lines `first..=last` of `module`, in source
/// order, without duplicates.
pub fn enumerate_candidates(module: &pyast::Module, first: usize, last: usize) -> Vec<Candidate> {
    let source = module.source();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(source.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |byte: usize| line_starts.partition_point(|&s| s <= byte);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let from_byte = line_starts.get(first - 1).copied().unwrap_or(source.len());
    let to_byte = line_starts.get(last).copied().unwrap_or(source.len());
    for site in module.sites_in(&pyast::operators::repair_templates(), from_byte..to_byte) {
        for edit in &site.edits {
            let (l0, l1) = (
                line_of(edit.start),
                line_of(edit.end.saturating_sub(1).max(edit.start)),
            );
            if l0 < first || l1 > last {
                continue;
            }
            let from = line_starts[l0 - 1];
            let to = line_starts.get(l1).copied().unwrap_or(source.len());
            let old = &source[from..to];
            let new = format!(
                "{}{}{}",
                &source[from..edit.start],
                edit.text,
                &source[edit.end..to]
            );
            let Some(mut line_edit) = LineEdit::between(old, &new) else {
                continue;
            };
            line_edit.start += l0 - 1;
            if seen.insert(line_edit.clone()) {
                out.push(Candidate {
                    edit: line_edit,
                    template: site.operator.id.to_string(),
                });
            }
        }
    }
    out
}

/// The clean and buggy text of the one file a task's bug patch changes.
pub fn task_files(task: &Task, repo_dir: &Path) -> Result<(String, String, String)> {
    let changes = patches::apply_in_memory(repo_dir, &task.bug_patch)
        .with_context(|| format!("task {}: bug_patch", task.instance_id))?;
    if changes.len() != 1 {
        bail!(
            "task {}: bug_patch changes {} files; the built-in solver repairs one",
            task.instance_id,
            changes.len()
        );
    }
    let (path, (clean, buggy)) = changes.into_iter().next().expect("one file");
    Ok((path, clean, buggy))
}

impl RepairExample {
    /// Builds the example of `task` whose repository source is at `repo_dir`, with the window
    /// around the bug (the oracle location until `swe-rollout` shares its localization).
    pub fn from_task(
        task: &Task,
        repo_dir: &Path,
        options: &ExampleOptions,
    ) -> Result<RepairExample> {
        let (path, clean, buggy) = task_files(task, repo_dir)?;
        let gold_edit = LineEdit::between(&buggy, &clean)
            .with_context(|| format!("task {}: bug_patch changes nothing", task.instance_id))?;
        Self::with_target(task, path, buggy, gold_edit, options)
    }

    /// Builds the example of `task` whose target is another repair of its bug: `patch`, a
    /// unified diff against the buggy code (a trace's submitted patch). The window and the
    /// candidates are cut around that repair as they are around the gold one.
    pub fn from_repair(
        task: &Task,
        repo_dir: &Path,
        patch: &str,
        options: &ExampleOptions,
    ) -> Result<RepairExample> {
        let (path, _, buggy) = task_files(task, repo_dir)?;
        let changes = patches::apply_to(patch, |p| {
            if p == path {
                Ok(buggy.clone())
            } else {
                Err(patches::PatchError::MissingFile(p.to_string()))
            }
        })
        .with_context(|| {
            format!(
                "task {}: the repair does not apply to the buggy {path}",
                task.instance_id
            )
        })?;
        let repaired = &changes[&path].1;
        let edit = LineEdit::between(&buggy, repaired)
            .with_context(|| format!("task {}: the repair changes nothing", task.instance_id))?;
        let span = edit.old.len().max(edit.new.len());
        if span > options.max_window_lines {
            bail!(
                "task {}: the repair spans {span} lines, more than a window ({})",
                task.instance_id,
                options.max_window_lines
            );
        }
        Self::with_target(task, path, buggy, edit, options)
    }

    /// The example of `task` at `path` (its buggy text `buggy`) whose target is `target`.
    fn with_target(
        task: &Task,
        path: String,
        buggy: String,
        target: LineEdit,
        options: &ExampleOptions,
    ) -> Result<RepairExample> {
        let module = pyast::Module::parse(buggy.clone()).map_err(|e| {
            anyhow::anyhow!(
                "task {}: the buggy {path} does not parse: {e}",
                task.instance_id
            )
        })?;
        let mut rng = rng_for(&task.instance_id, options.seed);
        let (first, last) = window(
            &module,
            (target.start, target.end()),
            options.max_window_lines,
            &mut rng,
        );
        let mut candidates = enumerate_candidates(&module, first, last);
        let found = candidates.iter().position(|c| c.edit == target);
        let gold_enumerated = found.is_some();
        let gold = match found {
            Some(i) => i,
            None => {
                candidates.push(Candidate {
                    edit: target,
                    template: "gold".into(),
                });
                candidates.len() - 1
            }
        };
        let gold = keep_at_most(&mut candidates, gold, options.max_candidates, &mut rng);
        let lines: Vec<String> = buggy
            .split_inclusive('\n')
            .skip(first - 1)
            .take(last + 1 - first)
            .map(str::to_string)
            .collect();
        let scope = CodeSpan::scope_of(&module, first, last);
        Ok(RepairExample {
            instance_id: task.instance_id.clone(),
            prompt: Prompt {
                problem: task.problem_statement.clone(),
                path,
                first_line: first,
                lines,
            },
            candidates,
            gold: Some(gold),
            gold_enumerated,
            family: task
                .provenance
                .operator
                .as_deref()
                .and_then(pyast::operators::by_id)
                .map_or("unknown", |op| op.family)
                .to_string(),
            scope,
            signatures: crate::names::signatures(module.source()),
        })
    }
}

/// Keeps `max` candidates, the gold one among them, in their original order; returns the
/// gold candidate's new index.
fn keep_at_most(
    candidates: &mut Vec<Candidate>,
    gold: usize,
    max: usize,
    rng: &mut ChaCha8Rng,
) -> usize {
    if candidates.len() <= max.max(1) {
        return gold;
    }
    let mut others: Vec<usize> = (0..candidates.len()).filter(|&i| i != gold).collect();
    for i in (1..others.len()).rev() {
        let j = (rng.next_u64() as usize) % (i + 1);
        others.swap(i, j);
    }
    let mut keep: Vec<usize> = others.into_iter().take(max.max(1) - 1).collect();
    keep.push(gold);
    keep.sort_unstable();
    let new_gold = keep.iter().position(|&i| i == gold).expect("gold kept");
    let mut index = 0;
    candidates.retain(|_| {
        let kept = keep.binary_search(&index).is_ok();
        index += 1;
        kept
    });
    new_gold
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "import os\n\n\ndef clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x\n";

    #[test]
    fn line_edits_are_minimal_and_invert() {
        let bugged = SOURCE.replace("x < lo", "x <= lo");
        let edit = LineEdit::between(SOURCE, &bugged).unwrap();
        assert_eq!(edit.start, 5);
        assert_eq!(edit.old, vec!["    if x < lo:\n"]);
        assert_eq!(edit.apply(SOURCE).unwrap(), bugged);
        assert_eq!(LineEdit::between(SOURCE, SOURCE), None);
        let removed = SOURCE.replace("    if x > hi:\n        return hi\n", "");
        let edit = LineEdit::between(&removed, SOURCE).unwrap();
        assert!(edit.old.is_empty() && edit.new.len() == 2);
        assert_eq!(edit.apply(&removed).unwrap(), SOURCE);
    }

    #[test]
    fn candidates_include_the_inverse_of_a_comparison_swap() {
        let bugged = SOURCE.replace("x < lo", "x <= lo");
        let module = pyast::Module::parse(bugged.clone()).unwrap();
        let candidates = enumerate_candidates(&module, 4, 9);
        let gold = LineEdit::between(&bugged, SOURCE).unwrap();
        assert!(candidates.iter().any(|c| c.edit == gold));
        assert!(
            candidates
                .iter()
                .all(|c| c.edit.start >= 4 && c.edit.end() <= 9)
        );
        for c in &candidates {
            assert!(c.edit.apply(&bugged).is_some(), "{c:?} applies");
        }
    }

    #[test]
    fn the_window_is_the_enclosing_function_or_a_slice_of_it_holding_the_bug() {
        let module = pyast::Module::parse(SOURCE).unwrap();
        let mut rng = rng_for("t", 0);
        assert_eq!(window(&module, (5, 5), 40, &mut rng), (4, 9));
        for seed in 0..20 {
            let mut rng = rng_for("t", seed);
            let (a, b) = window(&module, (7, 8), 3, &mut rng);
            assert_eq!(b - a, 2);
            assert!((4..=7).contains(&a) && (8..=9).contains(&b), "{a}..{b}");
        }
    }

    #[test]
    fn keeping_fewer_candidates_keeps_gold() {
        let module = pyast::Module::parse(SOURCE).unwrap();
        let mut candidates = enumerate_candidates(&module, 1, 9);
        let gold_edit = candidates[3].edit.clone();
        let total = candidates.len();
        assert!(total > 4);
        let mut rng = rng_for("t", 1);
        let gold = keep_at_most(&mut candidates, 3, 4, &mut rng);
        assert_eq!(candidates.len(), 4);
        assert_eq!(candidates[gold].edit, gold_edit);
    }
}
