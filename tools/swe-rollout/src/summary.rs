//! `--summary`: resolve rate with a Wilson 95% interval, partial rate, mean attempts and
//! localization accuracy, overall and split by operator family and by repository.

use std::collections::BTreeMap;
use std::fmt::Write;

use schemas::{OutcomeStatus, Trace};

/// The Wilson score interval of `successes` out of `n` at 95% (z = 1.96).
pub fn wilson(successes: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z: f64 = 1.959_963_984_540_054;
    let (n, p) = (n as f64, successes as f64 / n as f64);
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    let lo = if successes == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if p == 1.0 {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    (lo, hi)
}

/// Counts over a group of traces (those with a harness error are counted apart).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub attempted: usize,
    pub resolved: usize,
    pub partial: usize,
    pub errors: usize,
    pub edits: usize,
    /// Traces whose bug location is known, and how many had it among the top 1/3/5
    /// functions.
    pub located: usize,
    pub top: [usize; 3],
}

impl Tally {
    pub fn add(&mut self, trace: &Trace) {
        if trace.error.is_some() {
            self.errors += 1;
            return;
        }
        self.attempted += 1;
        match trace.outcome.status() {
            OutcomeStatus::Resolved => self.resolved += 1,
            OutcomeStatus::Partial => self.partial += 1,
            OutcomeStatus::Failed => {}
        }
        self.edits += trace
            .steps
            .iter()
            .filter(|s| s.action.starts_with("edit "))
            .count();
        if let Some(analysis) = &trace.analysis
            && analysis.bug_line.is_some()
        {
            self.located += 1;
            let rank = analysis.function_rank.unwrap_or(u32::MAX);
            for (slot, k) in self.top.iter_mut().zip([1, 3, 5]) {
                *slot += usize::from(rank <= k);
            }
        }
    }

    fn rate(part: usize, whole: usize) -> f64 {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    }

    fn row(&self, name: &str) -> String {
        let (lo, hi) = wilson(self.resolved, self.attempted);
        let pct = |x: f64| format!("{:.1}", 100.0 * x);
        let top = |i: usize| match self.located {
            0 => "–".to_string(),
            n => pct(Self::rate(self.top[i], n)),
        };
        format!(
            "| {name} | {} | {} [{}, {}] | {} | {:.2} | {} / {} / {} | {} |",
            self.attempted,
            pct(Self::rate(self.resolved, self.attempted)),
            pct(lo),
            pct(hi),
            pct(Self::rate(self.partial, self.attempted)),
            Self::rate(self.edits, self.attempted),
            top(0),
            top(1),
            top(2),
            self.errors,
        )
    }
}

/// The summary as a Markdown table: all traces, then per family, then per repository.
pub fn render(traces: &[Trace]) -> String {
    let mut all = Tally::default();
    let mut by_family: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_repo: BTreeMap<String, Tally> = BTreeMap::new();
    for trace in traces {
        all.add(trace);
        let analysis = trace.analysis.clone().unwrap_or_default();
        let family = analysis.family.unwrap_or_else(|| "unknown".into());
        let repo = if analysis.repo.is_empty() {
            "unknown".to_string()
        } else {
            analysis.repo
        };
        by_family.entry(family).or_default().add(trace);
        by_repo.entry(repo).or_default().add(trace);
    }
    let mut out = String::new();
    let header = "| group | tasks | resolved % [95% CI] | partial % | edits/task | \
                  bug fn in top-1 / 3 / 5 % | errors |\n|---|---|---|---|---|---|---|";
    writeln!(out, "{header}").expect("write to string");
    writeln!(out, "{}", all.row("all")).expect("write to string");
    for (family, tally) in &by_family {
        writeln!(out, "{}", tally.row(&format!("family {family}"))).expect("write to string");
    }
    for (repo, tally) in &by_repo {
        writeln!(out, "{}", tally.row(&format!("repo {repo}"))).expect("write to string");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 8 of 10: the textbook interval [0.490, 0.943].
        let (lo, hi) = wilson(8, 10);
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 50);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.0714).abs() < 1e-3, "{hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
