//! How often the solver ranks the gold repair first (top-1) or among the first five (top-5)
//! among all candidate edits of a task, beside the edit-kind prior: ranking candidates by
//! how often the same textual change was the gold repair in training (DESIGN: report the
//! model's gain over the prior, and per family).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use schemas::Task;
use serde::Serialize;
use solver::config::ModelConfig;
use solver::data::{Budget, encode};
use solver::model::Solver;
use solver::prior::EditPrior;
use solver::tokenizer::SolverTokenizer;
use solver::train::score_all;
use stage_io::bad_input;

use crate::{EvalArgs, build_examples, load_tasks};

/// Expected hit@k when ties are broken at random: the gold candidate is beaten by `better`
/// candidates and tied with `ties` others.
fn hit_at(k: usize, better: usize, ties: usize) -> f64 {
    ((k as f64 - better as f64) / (ties as f64 + 1.0)).clamp(0.0, 1.0)
}

/// Expected reciprocal rank when ties are broken at random: the gold candidate is equally
/// likely at each rank from `better + 1` to `better + ties + 1`.
fn reciprocal_rank(better: usize, ties: usize) -> f64 {
    (better + 1..=better + ties + 1)
        .map(|r| 1.0 / r as f64)
        .sum::<f64>()
        / (ties + 1) as f64
}

fn standing(scores: &[f64], gold: usize) -> (usize, usize) {
    let g = scores[gold];
    let better = scores.iter().filter(|s| **s > g).count();
    let ties = scores.iter().filter(|s| **s == g).count() - 1;
    (better, ties)
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub n: usize,
    pub reachable: usize,
    pub model_top1: f64,
    pub model_top5: f64,
    pub model_mrr: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_top1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_top5: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_mrr: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EvalSummary {
    pub tasks: usize,
    pub skipped: usize,
    pub mean_candidates: f64,
    pub all: Counts,
    pub by_family: BTreeMap<String, Counts>,
    /// What the language model can see (when it scores): the share of reachable tasks whose
    /// gold line is inside the truncated prompt, and the shares of candidates cut at the
    /// candidate budget or identical to another after the cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lm_view: Option<LmView>,
    pub seconds: f64,
    /// One line per reachable task (`eval --per-task`).
    #[serde(skip)]
    pub per_task: Vec<TaskRank>,
}

/// Where the gold repair of one task ranked, and what ranked first.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRank {
    pub instance_id: String,
    pub family: String,
    pub candidates: usize,
    /// Candidates scored above the gold one, and tied with it.
    pub better: usize,
    pub ties: usize,
    pub gold: String,
    pub gold_line: usize,
    pub gold_template: String,
    pub top: String,
    pub top_line: usize,
    pub top_template: String,
    /// With `eval --explain K`: the K features that weigh most in the gold and the top
    /// candidate's scores, as `name=weight`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gold_why: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_why: Vec<String>,
}

/// The `k` features of `names` with the largest weights in absolute value.
fn weightiest(
    names: &[String],
    weights: &[f32],
    problem_buckets: Option<usize>,
    k: usize,
) -> Vec<String> {
    let mut named: Vec<(f32, &String)> = names
        .iter()
        .map(|n| {
            (
                weights[solver::features::feature_row(n, problem_buckets) as usize],
                n,
            )
        })
        .collect();
    named.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    named
        .into_iter()
        .take(k)
        .map(|(w, n)| format!("{n}={w:+.3}"))
        .collect()
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LmView {
    pub gold_line_in_prompt: f64,
    pub candidates_cut: f64,
    pub candidates_identical: f64,
}

impl EvalSummary {
    pub fn headline(&self) -> String {
        let a = &self.all;
        let prior = match (a.prior_top1, a.prior_top5) {
            (Some(p1), Some(p5)) => {
                format!("; prior top-1 {:.1}% top-5 {:.1}%", 100.0 * p1, 100.0 * p5)
            }
            _ => String::new(),
        };
        format!(
            "eval on {} tasks ({} reachable): top-1 {:.1}% top-5 {:.1}% MRR {:.3}{prior}",
            a.n,
            a.reachable,
            100.0 * a.model_top1,
            100.0 * a.model_top5,
            a.model_mrr
        )
    }

    /// The numbers that go into a checkpoint's metrics.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let a = &self.all;
        let mut out = vec![
            ("eval_top1".to_string(), a.model_top1),
            ("eval_top5".to_string(), a.model_top5),
            ("eval_mrr".to_string(), a.model_mrr),
            ("eval_tasks".to_string(), a.n as f64),
        ];
        if let (Some(p1), Some(p5)) = (a.prior_top1, a.prior_top5) {
            out.push(("eval_prior_top1".to_string(), p1));
            out.push(("eval_prior_top5".to_string(), p5));
        }
        if let Some(mrr) = a.prior_mrr {
            out.push(("eval_prior_mrr".to_string(), mrr));
        }
        out
    }
}

#[derive(Default)]
struct Tally {
    n: usize,
    reachable: usize,
    top1: f64,
    top5: f64,
    rr: f64,
    prior_top1: f64,
    prior_top5: f64,
    prior_rr: f64,
}

impl Tally {
    fn counts(&self, with_prior: bool) -> Counts {
        let n = self.n.max(1) as f64;
        Counts {
            n: self.n,
            reachable: self.reachable,
            model_top1: self.top1 / n,
            model_top5: self.top5 / n,
            model_mrr: self.rr / n,
            prior_top1: with_prior.then(|| self.prior_top1 / n),
            prior_top5: with_prior.then(|| self.prior_top5 / n),
            prior_mrr: with_prior.then(|| self.prior_rr / n),
        }
    }
}

/// Scores every candidate of every task. A task whose gold repair the templates cannot
/// propose counts as a miss (for the model and the prior alike).
pub fn evaluate<B: burn::tensor::backend::Backend>(
    model: &Solver<B>,
    config: &ModelConfig,
    tokenizer: &SolverTokenizer,
    tasks: &[Task],
    corpus: &Path,
    prior_tasks: Option<&[Task]>,
    explain: usize,
) -> Result<EvalSummary> {
    let started = Instant::now();
    let built = build_examples(tasks, corpus, &Default::default())?;
    let prior = match prior_tasks {
        Some(prior_tasks) => Some(EditPrior::from_examples(
            &build_examples(prior_tasks, corpus, &Default::default())?.examples,
        )),
        None => None,
    };
    let budget = Budget::default();
    let mut all = Tally::default();
    let mut families: BTreeMap<String, Tally> = BTreeMap::new();
    let mut candidates = 0usize;
    let mut per_task = Vec::new();
    let mut view = (0usize, 0usize, 0usize);
    let uses_lm = config.terms().lm;
    let weights: Vec<f32> = if explain > 0 {
        model
            .edit_head
            .feature_weights
            .weight
            .val()
            .into_data()
            .to_vec()
            .map_err(|e| anyhow::anyhow!("reading the feature weights: {e:?}"))?
    } else {
        Vec::new()
    };
    let bar = stage_io::progress::items(built.examples.len() as u64, "evaluating");
    for example in &built.examples {
        bar.inc(1);
        let family = families.entry(example.family.clone()).or_default();
        all.n += 1;
        family.n += 1;
        let Some(gold) = example.gold.filter(|_| example.gold_enumerated) else {
            continue;
        };
        candidates += example.candidates.len();
        let encoded = encode(example, tokenizer, &budget, config);
        if uses_lm {
            let seen = solver::data::visibility(example, &encoded, tokenizer, &budget);
            view.0 += usize::from(seen.target_line_in_prompt);
            view.1 += seen.cut;
            view.2 += seen.identical;
        }
        let scores = score_all(model, &encoded, config, tokenizer.pad, 32);
        let (better, ties) = standing(&scores, gold);
        let top = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
            .unwrap_or(gold);
        let (g, t) = (&example.candidates[gold], &example.candidates[top]);
        let (gold_why, top_why) = if explain > 0 {
            let names = solver::features::example_feature_names(example);
            (
                weightiest(&names[gold], &weights, config.problem_buckets, explain),
                weightiest(&names[top], &weights, config.problem_buckets, explain),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        per_task.push(TaskRank {
            instance_id: example.instance_id.clone(),
            family: example.family.clone(),
            candidates: scores.len(),
            better,
            ties,
            gold: solver::prior::edit_kind(&g.edit),
            gold_line: g.edit.start,
            gold_template: g.template.clone(),
            top: solver::prior::edit_kind(&t.edit),
            top_line: t.edit.start,
            top_template: t.template.clone(),
            gold_why,
            top_why,
        });
        let (p1, p5, prr) = match &prior {
            Some(prior) => {
                let prior_scores: Vec<f64> = example
                    .candidates
                    .iter()
                    .map(|c| prior.count(&c.edit) as f64)
                    .collect();
                let (b, t) = standing(&prior_scores, gold);
                (hit_at(1, b, t), hit_at(5, b, t), reciprocal_rank(b, t))
            }
            None => (0.0, 0.0, 0.0),
        };
        for tally in [&mut all, family] {
            tally.reachable += 1;
            tally.top1 += hit_at(1, better, ties);
            tally.top5 += hit_at(5, better, ties);
            tally.rr += reciprocal_rank(better, ties);
            tally.prior_top1 += p1;
            tally.prior_top5 += p5;
            tally.prior_rr += prr;
        }
    }
    bar.finish_and_clear();
    let with_prior = prior.is_some();
    Ok(EvalSummary {
        tasks: tasks.len(),
        skipped: built.skipped,
        mean_candidates: candidates as f64 / all.reachable.max(1) as f64,
        lm_view: uses_lm.then(|| LmView {
            gold_line_in_prompt: view.0 as f64 / all.reachable.max(1) as f64,
            candidates_cut: view.1 as f64 / candidates.max(1) as f64,
            candidates_identical: view.2 as f64 / candidates.max(1) as f64,
        }),
        all: all.counts(with_prior),
        by_family: families
            .into_iter()
            .map(|(k, v)| (k, v.counts(with_prior)))
            .collect(),
        seconds: started.elapsed().as_secs_f64(),
        per_task,
    })
}

pub fn run(args: EvalArgs) -> Result<()> {
    let mut loaded =
        solver::checkpoint::load::<solver::Backend>(&args.checkpoint, &solver::device())
            .map_err(bad_input)?;
    if let Some(terms) = args.scorer {
        loaded.config.ranker = Some(terms);
    }
    tracing::info!("scorer terms: {}", loaded.config.terms().name());
    let tasks = load_tasks(&args.tasks)?;
    let prior_tasks = match &args.prior_from {
        Some(path) => Some(load_tasks(std::slice::from_ref(path))?),
        None => None,
    };
    let summary = evaluate(
        &loaded.model,
        &loaded.config,
        &loaded.tokenizer,
        &tasks,
        &args.corpus.path(),
        prior_tasks.as_deref(),
        args.explain,
    )?;
    tracing::info!("{}", summary.headline());
    if let Some(path) = &args.per_task {
        let mut lines = String::new();
        for rank in &summary.per_task {
            lines.push_str(&serde_json::to_string(rank)?);
            lines.push('\n');
        }
        stage_io::output::write_atomic(path, lines.as_bytes())?;
    }
    let json = serde_json::to_string_pretty(&summary)? + "\n";
    match &args.output {
        Some(path) => stage_io::output::write_atomic(path, json.as_bytes())?,
        None => print!("{json}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_names_the_weightiest_features_first() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut weights = vec![0.0f32; solver::features::BUCKETS];
        weights[solver::features::feature_row("a", None) as usize] = 0.5;
        weights[solver::features::feature_row("b", None) as usize] = -2.0;
        assert_eq!(
            weightiest(&names, &weights, None, 2),
            ["b=-2.000", "a=+0.500"]
        );
    }

    #[test]
    fn ties_share_the_hit() {
        assert_eq!(hit_at(1, 0, 0), 1.0);
        assert_eq!(hit_at(1, 0, 1), 0.5);
        assert_eq!(hit_at(5, 4, 1), 0.5);
        assert_eq!(hit_at(5, 5, 0), 0.0);
        assert_eq!(reciprocal_rank(0, 0), 1.0);
        assert_eq!(reciprocal_rank(1, 0), 0.5);
        // Tied with one other at the top: rank 1 or 2, equally likely.
        assert_eq!(reciprocal_rank(0, 1), 0.75);
    }
}
