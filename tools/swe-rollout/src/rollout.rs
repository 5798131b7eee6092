//! One attempt at one task: prepare its environment (reproduce the failure, localize it),
//! let the solver repair it, and analyse the result with what the solver was not shown.

use std::time::Instant;

use schemas::{Cost, Outcome, Record, SolverInfo, Task, Trace};

use crate::analysis::analyse;
use crate::environment::Harness;
use crate::solvers::Solver;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

/// Everything an attempt needs besides the task.
pub struct Rollout {
    pub harness: Harness,
    pub solver: Box<dyn Solver>,
    /// The solver as the traces name it, with its sampling (whose seed names the traces).
    pub info: SolverInfo,
}

impl Rollout {
    /// Attempts `task`; a failure of the harness (a missing repository, a sandbox error) is
    /// recorded in the trace's `error`, not raised.
    pub fn attempt(&self, task: &Task) -> Trace {
        let started = Instant::now();
        let mut trace = self.blank_trace(task);
        let solved = self
            .harness
            .prepare(task, &mut trace)
            .and_then(|env| match env {
                Some(env) => self.solver.solve(&env, &mut trace),
                None => Ok(Vec::new()),
            });
        let proposed = match solved {
            Ok(proposed) => self.solver.chooses_among_candidates().then_some(proposed),
            Err(err) => {
                trace.error = Some(format!("{err:#}"));
                None
            }
        };
        let root = self
            .harness
            .repo(&task.repo)
            .ok()
            .map(|(tree, _)| &*tree.root);
        trace.analysis = Some(analyse(task, root, &trace, proposed.as_deref()));
        trace.cost.seconds = started.elapsed().as_secs_f64();
        trace
    }

    /// The trace of an attempt not made yet: no step, nothing passing.
    fn blank_trace(&self, task: &Task) -> Trace {
        Trace {
            schema: Trace::tag(),
            trace_id: format!("{}-s{}", task.instance_id, self.info.sampling.seed),
            instance_id: task.instance_id.clone(),
            solver: self.info.clone(),
            steps: Vec::new(),
            patch: String::new(),
            outcome: Outcome {
                resolved: false,
                f2p_passed: 0,
                f2p_total: task.fail_to_pass.len() as u32,
                p2p_failed: 0,
                p2p_total: task.pass_to_pass.len() as u32,
            },
            cost: Cost::default(),
            error: None,
            localization: None,
            analysis: None,
            extra: Default::default(),
        }
    }
}
