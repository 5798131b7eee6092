//! The chat solver: a model behind an OpenAI-compatible endpoint repairs the bug with tools
//! (view, search, edit, run_tests, submit) executed against a [`WorkingCopy`] of the buggy
//! repository; tests run in the sandbox. The loop is mini-swe-agent's: send the history,
//! execute the tool calls, append their observations, until `submit` or the turn budget.

use anyhow::{Result, anyhow};
use chat::{ChatClient, ToolCall};
use schemas::{Sampling, Step, Trace};
use serde_json::{Value, json};
use solver::example::LineEdit;

use super::Solver;
use crate::analysis::status_word;
use crate::environment::Environment;
use crate::environment::working_copy::WorkingCopy;
use crate::steps::{describe_functions, note, test_step};

/// The system message of every conversation.
pub const SYSTEM: &str = "You repair a bug in a Python repository. Failing tests show it. \
Use the tools: `view` a file's lines, `search` the code, `edit` a source file (not a test) \
by replacing one exact occurrence of existing text, `run_tests` to run the failing and the passing tests, and \
`submit` when the tests pass. Change as little as possible.";

/// Most characters of one observation sent back to the model.
const MAX_OBSERVATION: usize = 6000;
/// Replies without a tool call tolerated before the attempt ends.
const MAX_IDLE_REPLIES: usize = 2;

fn tools() -> Value {
    let function = |name: &str, description: &str, properties: Value, required: &[&str]| {
        json!({"type": "function", "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        }})
    };
    json!([
        function(
            "view",
            "Show lines of a file with their numbers",
            json!({"path": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"}}),
            &["path"]
        ),
        function(
            "search",
            "Find the lines of Python files that contain a text",
            json!({"text": {"type": "string"}, "path": {"type": "string", "description": "a file or folder to search in"}}),
            &["text"]
        ),
        function(
            "edit",
            "Replace the one occurrence of `search` in a file with `replace`",
            json!({"path": {"type": "string"}, "search": {"type": "string"}, "replace": {"type": "string"}}),
            &["path", "search", "replace"]
        ),
        function(
            "run_tests",
            "Run the failing tests and the tests that passed before",
            json!({}),
            &[]
        ),
        function(
            "submit",
            "Submit the current edits as the repair",
            json!({}),
            &[]
        ),
    ])
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_OBSERVATION {
        return text.to_string();
    }
    let kept: String = text.chars().take(MAX_OBSERVATION).collect();
    format!("{kept}\n… (cut)")
}

/// The first message: the problem statement, the failing tests and the localization.
fn task_message(env: &Environment) -> String {
    let problem = &env.problem;
    format!(
        "{}\n\nTests that fail now and must pass:\n{}\n\nMost suspicious code, from the failing \
         tests' coverage and tracebacks:\n{}",
        problem.statement.trim(),
        problem.fail_to_pass.join("\n"),
        describe_functions(&env.functions)
    )
}

/// A chat model behind an OpenAI-compatible endpoint that repairs the bug with tools.
pub struct ChatSolver {
    pub client: ChatClient,
    /// Temperature and top-p of every request, and the seed of the first (each turn adds 1).
    pub sampling: Sampling,
    /// Most replies of the model in one attempt.
    pub max_turns: usize,
}

impl Solver for ChatSolver {
    /// Converses until the model submits or the turns run out, then judges the working
    /// copy as it is.
    fn solve(&self, env: &Environment, trace: &mut Trace) -> Result<Vec<(String, LineEdit)>> {
        let mut copy = WorkingCopy::new(env);
        self.converse(env, &mut copy, trace)?;
        judge(&copy, trace)?;
        Ok(Vec::new())
    }
}

impl ChatSolver {
    /// Sends the history, executes the reply's tool calls and appends their observations,
    /// until `submit`, the turn budget, or too many replies without a tool call.
    fn converse(&self, env: &Environment, copy: &mut WorkingCopy, trace: &mut Trace) -> Result<()> {
        let sampling = &self.sampling;
        let mut messages = vec![
            json!({"role": "system", "content": SYSTEM}),
            json!({"role": "user", "content": task_message(env)}),
        ];
        let tools = tools();
        let mut idle = 0;
        for turn in 0..self.max_turns {
            let reply = match self.client.complete(
                &messages,
                &tools,
                sampling.temperature,
                sampling.top_p,
                sampling.seed.wrapping_add(turn as u64),
            ) {
                Ok(reply) => reply,
                // Before the first reply the endpoint failed, not the solver.
                Err(err) if turn == 0 => return Err(err),
                // Later (a context overflow, an outage): judge what the model did so far.
                Err(err) => {
                    trace
                        .steps
                        .push(note("stop", &format!("the endpoint failed: {err:#}")));
                    return Ok(());
                }
            };
            trace.cost.tokens += reply.tokens;
            messages.push(reply.message.clone());
            if reply.tool_calls.is_empty() {
                trace.steps.push(note("say", &reply.content));
                idle += 1;
                if idle >= MAX_IDLE_REPLIES {
                    return Ok(());
                }
                messages.push(json!({"role": "user", "content":
                    "Use the tools (view, search, edit, run_tests, submit) to repair the bug."}));
                continue;
            }
            idle = 0;
            for call in &reply.tool_calls {
                let (step, done) = execute(copy, call)?;
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": cut(&step.observation),
                }));
                trace.steps.push(step);
                if done {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Judges the final working copy, whatever the model last saw: its diff becomes the patch
/// and its tests' outcome the trace's.
fn judge(copy: &WorkingCopy, trace: &mut Trace) -> Result<()> {
    if copy.is_unedited() {
        trace.steps.push(note("submit", "no edit was made"));
        return Ok(());
    }
    let run = copy.run_tests()?;
    let final_outcome = copy.env().outcome(&run);
    trace.patch = copy.diff()?;
    trace.outcome = final_outcome.clone();
    trace.steps.push(note(
        "evaluate",
        &format!(
            "{}: {} of {} FAIL_TO_PASS pass, {} PASS_TO_PASS fail",
            status_word(&final_outcome),
            final_outcome.f2p_passed,
            final_outcome.f2p_total,
            final_outcome.p2p_failed
        ),
    ));
    Ok(())
}

/// Runs one tool call; returns its step and whether it ended the attempt. A bad call (an
/// unknown tool, bad arguments, an edit that does not apply) is the model's mistake: its
/// observation says what went wrong. Only a failure of the sandbox is an error.
fn execute(copy: &mut WorkingCopy, call: &ToolCall) -> Result<(Step, bool)> {
    let args: Value = match serde_json::from_str(&call.arguments) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) | Err(_) => {
            let observation = format!(
                "error: the arguments of `{}` are not a JSON object",
                call.name
            );
            return Ok((note(&call.name, &observation), false));
        }
    };
    let describe = |key: &str| {
        args.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (action, result, done) = match call.name.as_str() {
        "view" => (
            format!("view {}", describe("path")),
            copy.view(&args),
            false,
        ),
        "search" => (
            format!("search {}", describe("text")),
            copy.search(&args),
            false,
        ),
        "edit" => (
            format!("edit {}", describe("path")),
            copy.edit(&args),
            false,
        ),
        "run_tests" => {
            let run = copy.run_tests()?;
            let step = test_step("run_tests", copy.env().problem.test_ids(), &run);
            return Ok((step, false));
        }
        "submit" => ("submit".to_string(), Ok("submitted".to_string()), true),
        other => (
            other.to_string(),
            Err(anyhow!(
                "unknown tool `{other}`: use view, search, edit, run_tests or submit"
            )),
            false,
        ),
    };
    let observation = match result {
        Ok(text) => text,
        Err(err) => format!("error: {err:#}"),
    };
    Ok((note(&action, &cut(&observation)), done))
}
