//! The edit-kind prior: how often each textual change (`<=` → `<`, `a, b` → `b, a`) was the
//! gold repair of the training tasks. The solver's scores are compared with it (`solver-train
//! eval`), and rollouts add its log-probability to the model's (a checkpoint that `sft` wrote
//! carries the prior of all the tasks in its lineage as `edit-prior.json`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::example::{LineEdit, RepairExample, common_ends};

/// The prior's file in a checkpoint directory.
pub const FILE: &str = "edit-prior.json";

/// Rough Python tokens: identifier/number runs, whitespace runs, operator runs, and single
/// other characters (brackets, quotes, commas).
pub fn rough_tokens(text: &str) -> Vec<&str> {
    fn class(c: char) -> u8 {
        if crate::names::is_name_char(c) {
            0
        } else if c.is_whitespace() {
            1
        } else if "<>=!+-*/%&|^~@".contains(c) {
            2
        } else {
            3
        }
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<u8> = None;
    for (i, c) in text.char_indices() {
        let k = class(c);
        if prev.is_some_and(|p| p != k || k == 3) {
            out.push(&text[start..i]);
            start = i;
        }
        prev = Some(k);
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The change an edit makes, without its context, at token granularity: `<=` → `<` for a
/// comparison swap.
pub fn edit_kind(edit: &LineEdit) -> String {
    let old = edit.old.concat();
    let new = edit.new.concat();
    let (a, b) = (rough_tokens(&old), rough_tokens(&new));
    let (prefix, suffix) = common_ends(&a, &b);
    let mid = |v: &[&str]| v[prefix..v.len() - suffix].concat();
    format!("{}\u{2192}{}", mid(&a).trim(), mid(&b).trim())
}

/// Counts of each edit kind among the gold repairs of training examples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EditPrior {
    pub counts: BTreeMap<String, u64>,
    pub total: u64,
}

impl EditPrior {
    pub fn from_examples(examples: &[RepairExample]) -> EditPrior {
        let mut prior = EditPrior::default();
        for example in examples {
            if let Some(gold) = example.gold {
                *prior
                    .counts
                    .entry(edit_kind(&example.candidates[gold].edit))
                    .or_default() += 1;
                prior.total += 1;
            }
        }
        prior
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &EditPrior) {
        for (kind, n) in &other.counts {
            *self.counts.entry(kind.clone()).or_default() += n;
        }
        self.total += other.total;
    }

    /// How often `edit`'s kind was the gold repair.
    pub fn count(&self, edit: &LineEdit) -> u64 {
        self.counts.get(&edit_kind(edit)).copied().unwrap_or(0)
    }

    /// The smoothed log-probability that a gold repair is of `edit`'s kind (add-one over the
    /// kinds seen, plus one for every unseen kind).
    pub fn log_prob(&self, edit: &LineEdit) -> f64 {
        let kinds = self.counts.len() as f64 + 1.0;
        ((self.count(edit) as f64 + 1.0) / (self.total as f64 + kinds)).ln()
    }

    /// The prior saved in checkpoint directory `dir`, if it has one.
    pub fn load(dir: &Path) -> Result<Option<EditPrior>> {
        let path = dir.join(FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)?;
        Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!("{}: not an edit prior", path.display())
        })?))
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::write(dir.join(FILE), serde_json::to_string_pretty(self)? + "\n")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(old: &str, new: &str) -> LineEdit {
        LineEdit {
            start: 3,
            old: vec![old.into()],
            new: vec![new.into()],
        }
    }

    #[test]
    fn edit_kinds_keep_the_change_only() {
        assert_eq!(
            edit_kind(&edit("    if a <= b:\n", "    if a < b:\n")),
            "<=\u{2192}<"
        );
        assert_eq!(
            edit_kind(&edit("    x = f(a, b)\n", "    x = f(b, a)\n")),
            "a, b\u{2192}b, a"
        );
    }

    #[test]
    fn the_prior_favours_frequent_kinds_and_survives_a_round_trip() {
        let mut prior = EditPrior::default();
        prior.counts.insert("<=\u{2192}<".into(), 3);
        prior.counts.insert("+\u{2192}-".into(), 1);
        prior.total = 4;
        let frequent = edit("if a <= b:\n", "if a < b:\n");
        let rare = edit("x = a + b\n", "x = a - b\n");
        let unseen = edit("x = a * b\n", "x = a / b\n");
        assert!(prior.log_prob(&frequent) > prior.log_prob(&rare));
        assert!(prior.log_prob(&rare) > prior.log_prob(&unseen));
        assert!((prior.log_prob(&frequent) - (4.0f64 / 7.0).ln()).abs() < 1e-12);
        let mut twice = prior.clone();
        twice.merge(&prior);
        assert_eq!(twice.count(&frequent), 6);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(EditPrior::load(dir.path()).unwrap(), None);
        prior.save(dir.path()).unwrap();
        assert_eq!(EditPrior::load(dir.path()).unwrap(), Some(prior));
    }
}
