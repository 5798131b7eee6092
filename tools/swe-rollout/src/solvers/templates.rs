//! The templates solver: propose the repair templates' edits in the most suspicious
//! functions, scored by a model; sample k distinct edits (temperature, top-p, seeded), test
//! each, let a partial success steer the next draw, and submit the best.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use schemas::{Outcome, Sampling, Trace};
use solver::example::{Candidate, LineEdit};

use super::Solver;
use super::policy::sample_distinct;
use super::proposals::{self, Proposal};
use super::scorer::EditScorer;
use crate::analysis::{rank_of, status_word};
use crate::environment::Environment;
use crate::steps::{note, show_edit, test_step};

pub use super::proposals::PoolSettings;

/// How the templates solver searches.
#[derive(Debug, Clone)]
pub struct Settings {
    pub sampling: Sampling,
    /// Rounds of sampling and testing before the best attempt is submitted.
    pub max_steps: usize,
    /// Which candidate edits enter the pool and how they are weighed.
    pub pool: PoolSettings,
}

/// The repair templates' edits, ranked by `S` (the built-in model: [`super::scorer::ModelScorer`]).
pub struct TemplateSolver<S> {
    /// One scorer for every task attempted at once; scoring takes turns.
    scorer: Mutex<S>,
    settings: Settings,
}

impl<S: EditScorer> TemplateSolver<S> {
    pub fn new(scorer: S, settings: Settings) -> Self {
        TemplateSolver {
            scorer: Mutex::new(scorer),
            settings,
        }
    }
}

/// One tested edit.
struct Attempt {
    path: String,
    candidate: Candidate,
    edited: String,
    outcome: Outcome,
    function: usize,
}

impl<S: EditScorer> Solver for TemplateSolver<S> {
    /// Propose, search, submit.
    fn solve(&self, env: &Environment, trace: &mut Trace) -> Result<Vec<(String, LineEdit)>> {
        let pool = proposals::propose(env, &self.scorer, &self.settings.pool, trace)?;
        let proposed = pool
            .iter()
            .map(|p| (p.path.clone(), p.candidate.edit.clone()))
            .collect();
        let best = self.search(env, &pool, trace)?;
        submit(env, best, trace)?;
        Ok(proposed)
    }

    fn chooses_among_candidates(&self) -> bool {
        true
    }
}

impl<S> TemplateSolver<S> {
    /// Up to `max_steps` rounds: draw k untried edits of `pool`, test each, stop at the
    /// first that resolves the task; an edit that made some FAIL_TO_PASS test pass found the
    /// place, so the next draws favour its function. Returns the best attempt.
    fn search(
        &self,
        env: &Environment,
        pool: &[Proposal],
        trace: &mut Trace,
    ) -> Result<Option<Attempt>> {
        let settings = &self.settings;
        let mut rng: ChaCha8Rng =
            solver::example::rng_for(env.problem.instance_id, settings.sampling.seed);
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
                let Some(attempt) = try_edit(env, &pool[pick], trace)? else {
                    continue;
                };
                if best
                    .as_ref()
                    .is_none_or(|b| rank_of(&attempt.outcome) > rank_of(&b.outcome))
                {
                    best = Some(attempt);
                }
                if best.as_ref().is_some_and(|b| b.outcome.resolved) {
                    break;
                }
            }
            match &best {
                Some(b) if b.outcome.resolved => break,
                Some(b) if b.outcome.f2p_passed > env.before.f2p_passed => {
                    let focus = b.function;
                    for (logit, proposal) in logits.iter_mut().zip(pool) {
                        if proposal.function == focus {
                            *logit += settings.pool.loc_weight * 2f64.ln();
                        }
                    }
                    trace.steps.push(note(
                        "feedback",
                        &format!(
                            "{} of {} FAIL_TO_PASS pass after the best edit so far; focusing on {}",
                            b.outcome.f2p_passed, b.outcome.f2p_total, env.functions[focus].name
                        ),
                    ));
                }
                _ => {}
            }
        }
        Ok(best)
    }
}

/// Applies `proposal` to the buggy file and tests it, writing both as steps; `None` when the
/// edit does not apply or the sandbox failed (one broken run must not throw away the
/// attempts before it).
fn try_edit(env: &Environment, proposal: &Proposal, trace: &mut Trace) -> Result<Option<Attempt>> {
    let buggy = env.buggy_text(&proposal.path)?;
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
        return Ok(None);
    };
    let edits = BTreeMap::from([(proposal.path.clone(), edited.clone())]);
    let (run, seen) = match env.run_edits(&edits) {
        Ok(ran) => ran,
        Err(err) => {
            let why = format!("the sandbox failed: {err:#}");
            trace.steps.push(note("run_tests", &why));
            return Ok(None);
        }
    };
    trace.steps.push(match seen {
        0 => note(
            "run_tests",
            "no test executes the edited lines: nothing changes",
        ),
        _ => test_step("run_tests", env.problem.test_ids(), &run),
    });
    Ok(Some(Attempt {
        path: proposal.path.clone(),
        candidate: proposal.candidate.clone(),
        edited,
        outcome: env.outcome(&run),
        function: proposal.function,
    }))
}

/// Submits the best attempt when it improved on the buggy code: its patch and outcome
/// become the trace's.
fn submit(env: &Environment, best: Option<Attempt>, trace: &mut Trace) -> Result<()> {
    match best {
        Some(b) if rank_of(&b.outcome) > rank_of(&env.before) => {
            let buggy = env.buggy_text(&b.path)?;
            trace.patch = patches::unified_diff(&b.path, &buggy, &b.edited);
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
