//! The files written beside the traces: SWE-bench predictions and mini-swe-agent-style
//! trajectories.

use std::path::Path;

use anyhow::Context;
use schemas::Trace;
use serde_json::json;
use stage_io::output::{Output, write_atomic};

/// SWE-bench predictions: one JSON object a line.
pub fn write_predictions(path: &Path, traces: &[Trace]) -> anyhow::Result<()> {
    let mut out = Output::create(Some(path))?;
    for trace in traces {
        out.write_line(
            &json!({
                "instance_id": trace.instance_id,
                "model_patch": trace.patch,
                "model_name_or_path": trace.solver.name,
            })
            .to_string(),
        )?;
    }
    out.finish()
}

/// One `<instance_id>.traj.json` per trace in the shape of mini-swe-agent's trajectories:
/// the actions as assistant messages, the observations as user messages.
pub fn write_trajectories(dir: &Path, traces: &[Trace]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for trace in traces {
        let system = if trace.solver.name.starts_with("openai:") {
            crate::solvers::chat::SYSTEM
        } else {
            "Repair the bug that the failing tests show by choosing among candidate edits."
        };
        let mut messages = vec![json!({"role": "system", "content": system})];
        for step in &trace.steps {
            messages.push(json!({"role": "assistant", "content": step.action}));
            messages.push(json!({"role": "user", "content": step.observation}));
        }
        let submitted = trace.steps.iter().any(|s| s.action == "submit");
        let exit_status = match (&trace.error, trace.patch.is_empty(), submitted) {
            (Some(_), _, _) => "Error",
            (None, true, _) => "NoPatch",
            (None, false, true) => "Submitted",
            (None, false, false) => "Stopped",
        };
        let document = json!({
            "trajectory_format": "mini-swe-agent-1",
            "instance_id": trace.instance_id,
            "info": {
                "exit_status": exit_status,
                "submission": trace.patch,
                "error": trace.error,
                "model_stats": {"steps": trace.steps.len(), "tokens": trace.cost.tokens},
                "resolved": trace.outcome.resolved,
            },
            "messages": messages,
        });
        let name = format!("{}.traj.json", trace.instance_id.replace('/', "_"));
        write_atomic(
            &dir.join(name),
            serde_json::to_string_pretty(&document)?.as_bytes(),
        )?;
    }
    Ok(())
}
