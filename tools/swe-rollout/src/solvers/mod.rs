//! Who proposes the edits: one [`Solver`] interface and its two implementations, the
//! repair templates ranked by a model ([`templates::TemplateSolver`]) and a chat model using
//! tools ([`chat::ChatSolver`]); `--solver` names one ([`SolverSpec`]).

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Result;
use schemas::Trace;
use solver::example::LineEdit;

use crate::environment::Environment;

pub mod chat;
pub mod policy;
mod proposals;
pub mod scorer;
pub mod templates;

/// Repairs a task in its environment.
pub trait Solver: Sync {
    /// Repairs the task of `env` (reproduced and localized): appends the steps taken to
    /// `trace`, adds the tokens read to its cost, and leaves there the submitted patch and
    /// that patch's outcome (the buggy code's when nothing is submitted). Returns the
    /// candidate edits it chose among (none for a solver that writes its own edits). `Err`
    /// is a failure of the harness (the sandbox, the endpoint), not of the solver.
    fn solve(&self, env: &Environment, trace: &mut Trace) -> Result<Vec<(String, LineEdit)>>;

    /// Whether it chooses among the repair templates' candidate edits: then the analysis of
    /// its traces says whether the gold edit was among them.
    fn chooses_among_candidates(&self) -> bool {
        false
    }
}

/// `--solver`: `model:PATH` (a `solver-train` checkpoint directory) or
/// `openai:BASE_URL#MODEL` (an OpenAI-compatible chat-completions server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SolverSpec {
    Model(PathBuf),
    OpenAi(::chat::Endpoint),
}

impl FromStr for SolverSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<SolverSpec, String> {
        let expected = "expected `model:PATH` or `openai:BASE_URL#MODEL`";
        match spec.split_once(':') {
            Some(("model", path)) if !path.is_empty() => Ok(SolverSpec::Model(path.into())),
            Some(("openai", rest)) => ::chat::Endpoint::parse(rest)
                .map(SolverSpec::OpenAi)
                .map_err(|err| format!("bad solver `{spec}`: {expected} ({err})")),
            _ => Err(format!("unknown solver `{spec}`: {expected}")),
        }
    }
}

impl std::fmt::Display for SolverSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SolverSpec::Model(path) => write!(f, "model:{}", path.display()),
            SolverSpec::OpenAi(endpoint) => write!(f, "{endpoint}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solver_specs_parse_or_say_what_is_expected() {
        assert_eq!(
            "model:ckpt/r1".parse::<SolverSpec>().unwrap(),
            SolverSpec::Model("ckpt/r1".into())
        );
        assert_eq!(
            "openai:http://localhost:8000/v1/#qwen2.5-coder"
                .parse::<SolverSpec>()
                .unwrap(),
            SolverSpec::OpenAi(::chat::Endpoint {
                base_url: "http://localhost:8000/v1".into(),
                model: "qwen2.5-coder".into()
            })
        );
        for bad in [
            "gpt4",
            "model:",
            "openai:localhost#m",
            "openai:http://x",
            "hf:foo",
        ] {
            let err = bad.parse::<SolverSpec>().unwrap_err();
            assert!(err.contains("expected `model:PATH`"), "{bad}: {err}");
        }
    }
}
