//! The generator policy of `--strategy skills`: a log-linear distribution over the choices
//! of one draw — a skill, then one of its operators, then the construct of the site — with
//! one learned logit per skill, per operator and per construct. A skill's probability also
//! grows with the solver's failure odds on it (its evidence), so a fresh policy already
//! spends the budget where the solver is weak. REINFORCE with a baseline moves the logits
//! toward the choices whose tasks earned reward (validity × alignment).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use schemas::Evidence;
use serde::{Deserialize, Serialize};
use stage_io::BadInput;

/// The prior logit of a skill from its evidence: the log-odds that the solver fails such a
/// task, with one pseudo-failure and one pseudo-success, `ln((failed + 1) / (resolved + 1))`.
///
/// Odds rather than the rate itself: a weak solver fails most skills (rates of 0.8 to 1.0 on
/// real traces), and a weight proportional to the rate spreads the budget evenly over the
/// skills, so the mix followed how many skills each family had, not how weak the solver was
/// on it (docs/skills.md). The pseudo-counts keep a skill of little support from claiming
/// certainty and a skill the solver always resolves above zero.
pub fn evidence_logit(evidence: &Evidence) -> f64 {
    let support = f64::from(evidence.support);
    let failed = (evidence.failure_rate.clamp(0.0, 1.0) * support).round();
    ((failed + 1.0) / (support - failed + 1.0)).ln()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// `policy/1`.
    pub schema: String,
    /// Logit per skill id.
    #[serde(default)]
    pub skills: BTreeMap<String, f64>,
    /// Logit per operator id.
    #[serde(default)]
    pub operators: BTreeMap<String, f64>,
    /// Logit per site construct.
    #[serde(default)]
    pub constructs: BTreeMap<String, f64>,
    /// Running mean of the rewards seen, the REINFORCE baseline.
    #[serde(default)]
    pub baseline: Option<f64>,
    /// Policy-gradient updates applied so far.
    #[serde(default)]
    pub updates: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            schema: "policy/1".into(),
            skills: BTreeMap::new(),
            operators: BTreeMap::new(),
            constructs: BTreeMap::new(),
            baseline: None,
            updates: 0,
        }
    }
}

/// One draw's choices and the reward its task earned.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub skill: String,
    pub operator: String,
    pub construct: String,
    pub reward: f64,
}

/// The alternatives each choice was made among: the skills with their prior logits
/// (`evidence_logit`), each skill's operators, and the constructs of the sites.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub skills: Vec<(String, f64)>,
    pub operators: HashMap<String, Vec<String>>,
    pub constructs: Vec<String>,
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

impl Policy {
    pub fn read(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the policy {}", path.display()))?;
        let policy: Policy = serde_json::from_str(&text).map_err(|err| {
            BadInput::new(format!("not a generator policy: {err}"))
                .in_source(path.display().to_string())
                .at_line(err.line() as u64)
        })?;
        if policy.schema.split('.').next() != Some("policy/1") {
            return Err(
                BadInput::new(format!("schema `{}` is not policy/1", policy.schema))
                    .in_source(path.display().to_string())
                    .in_field(Some("schema".into()))
                    .into(),
            );
        }
        Ok(policy)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        stage_io::output::write_atomic(path, text.as_bytes())
    }

    fn logit(table: &BTreeMap<String, f64>, key: &str) -> f64 {
        table.get(key).copied().unwrap_or(0.0)
    }

    /// The logit of a skill: learned value plus its prior (`evidence_logit`).
    pub fn skill_logit(&self, skill: &str, prior: f64) -> f64 {
        Self::logit(&self.skills, skill) + prior
    }

    pub fn operator_logit(&self, operator: &str) -> f64 {
        Self::logit(&self.operators, operator)
    }

    pub fn construct_logit(&self, construct: &str) -> f64 {
        Self::logit(&self.constructs, construct)
    }

    /// Probabilities of the skills of `choices`, in their order.
    pub fn skill_probs(&self, choices: &Choices) -> Vec<f64> {
        let logits: Vec<f64> = choices
            .skills
            .iter()
            .map(|(s, prior)| self.skill_logit(s, *prior))
            .collect();
        softmax(&logits)
    }

    /// One REINFORCE step with learning rate `lr` on a batch of outcomes: for each choice,
    /// logit += lr × mean over the batch of (reward − baseline) × (1[chosen] − probability).
    /// The baseline is the mean reward of the earlier batches (this batch's, the first time),
    /// then moves halfway to this batch's mean.
    pub fn update(&mut self, outcomes: &[Outcome], choices: &Choices, lr: f64) {
        if outcomes.is_empty() {
            return;
        }
        let mean = outcomes.iter().map(|o| o.reward).sum::<f64>() / outcomes.len() as f64;
        let baseline = self.baseline.unwrap_or(mean);
        let n = outcomes.len() as f64;
        let skill_probs = self.skill_probs(choices);
        let construct_logits: Vec<f64> = choices
            .constructs
            .iter()
            .map(|c| self.construct_logit(c))
            .collect();
        let construct_probs = softmax(&construct_logits);
        let mut skill_step: BTreeMap<String, f64> = BTreeMap::new();
        let mut operator_step: BTreeMap<String, f64> = BTreeMap::new();
        let mut construct_step: BTreeMap<String, f64> = BTreeMap::new();
        for outcome in outcomes {
            let advantage = (outcome.reward - baseline) / n;
            for ((skill, _), p) in choices.skills.iter().zip(&skill_probs) {
                let chosen = f64::from(u8::from(*skill == outcome.skill));
                *skill_step.entry(skill.clone()).or_default() += advantage * (chosen - p);
            }
            if let Some(ops) = choices.operators.get(&outcome.skill) {
                let logits: Vec<f64> = ops.iter().map(|o| self.operator_logit(o)).collect();
                for (op, p) in ops.iter().zip(softmax(&logits)) {
                    let chosen = f64::from(u8::from(*op == outcome.operator));
                    *operator_step.entry(op.clone()).or_default() += advantage * (chosen - p);
                }
            }
            for (construct, p) in choices.constructs.iter().zip(&construct_probs) {
                let chosen = f64::from(u8::from(*construct == outcome.construct));
                *construct_step.entry(construct.clone()).or_default() += advantage * (chosen - p);
            }
        }
        for (table, step) in [
            (&mut self.skills, skill_step),
            (&mut self.operators, operator_step),
            (&mut self.constructs, construct_step),
        ] {
            for (key, delta) in step {
                *table.entry(key).or_default() += lr * delta;
            }
        }
        self.baseline = Some(0.5 * baseline + 0.5 * mean);
        self.updates += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choices() -> Choices {
        Choices {
            skills: vec![("a".into(), 0.5), ("b".into(), 0.5)],
            operators: [
                (
                    "a".to_string(),
                    vec!["cmp-swap".to_string(), "off-by-one".to_string()],
                ),
                ("b".to_string(), vec!["var-misuse".to_string()]),
            ]
            .into(),
            constructs: vec!["loop".into(), "condition".into()],
        }
    }

    fn outcome(skill: &str, operator: &str, construct: &str, reward: f64) -> Outcome {
        Outcome {
            skill: skill.into(),
            operator: operator.into(),
            construct: construct.into(),
            reward,
        }
    }

    #[test]
    fn updates_move_probability_toward_the_arms_that_earn_reward() {
        // Skill a's tasks earn reward through cmp-swap in loops; b's earn nothing.
        let batch: Vec<Outcome> = (0..8)
            .flat_map(|_| {
                [
                    outcome("a", "cmp-swap", "loop", 0.6),
                    outcome("a", "off-by-one", "condition", 0.1),
                    outcome("b", "var-misuse", "condition", 0.0),
                ]
            })
            .collect();
        let mut policy = Policy::default();
        let before = policy.skill_probs(&choices());
        assert!((before[0] - 0.5).abs() < 1e-12);
        for _ in 0..20 {
            policy.update(&batch, &choices(), 1.0);
        }
        let after = policy.skill_probs(&choices());
        assert!(after[0] > 0.6, "{after:?}");
        assert!(policy.operator_logit("cmp-swap") > policy.operator_logit("off-by-one"));
        assert!(policy.construct_logit("loop") > policy.construct_logit("condition"));
        assert_eq!(policy.updates, 20);
        // Equal rewards everywhere teach nothing.
        let mut flat = Policy::default();
        let even: Vec<Outcome> = batch
            .iter()
            .map(|o| Outcome {
                reward: 0.3,
                ..o.clone()
            })
            .collect();
        flat.update(&even, &choices(), 1.0);
        assert!(
            flat.skills.values().all(|v| v.abs() < 1e-12),
            "{:?}",
            flat.skills
        );
    }

    #[test]
    fn failure_odds_raise_a_skills_probability_before_any_learning() {
        let policy = Policy::default();
        let mut c = choices();
        let prior = |failed: u32, support: u32| {
            evidence_logit(&Evidence {
                support,
                failure_rate: f64::from(failed) / f64::from(support),
                trace_ids: Vec::new(),
            })
        };
        c.skills = vec![
            ("always-fails".into(), prior(60, 60)),
            ("mostly-fails".into(), prior(48, 60)),
            ("rarely-fails".into(), prior(6, 60)),
        ];
        let p = policy.skill_probs(&c);
        // Odds 61/1, 49/13 and 7/55: among skills the solver mostly fails, the one it
        // always fails still gets most of the budget.
        assert!(
            (p[0] / p[1] - (61.0 / 1.0) / (49.0 / 13.0)).abs() < 1e-9,
            "{p:?}"
        );
        assert!(
            (p[1] / p[2] - (49.0 / 13.0) / (7.0 / 55.0)).abs() < 1e-9,
            "{p:?}"
        );
        // Little evidence counts for less than much evidence of the same rate.
        assert!(prior(3, 3) < prior(60, 60));
        assert!(prior(0, 10).is_finite());
    }
}
