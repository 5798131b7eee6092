//! The attempt end to end on the fake repository of [`super::fake`]: both solvers, the test
//! bed's selection and confirmation of runs, the budgets, and errors kept in the trace.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::bail;
use chat::testing::{Answer, serve};
use chat::{ChatClient, ClientOptions};
use schemas::{Sampling, SolverInfo, Trace};
use serde_json::{Value, json};
use solver::example::LineEdit;

use super::Rollout;
use super::fake::{self, FixScore, TEST_ADD, TEST_SUB};
use crate::environment::Environment;
use crate::solvers::Solver;
use crate::solvers::chat::ChatSolver;
use crate::solvers::templates::{PoolSettings, Settings, TemplateSolver};

fn sampling(k: u32) -> Sampling {
    Sampling {
        temperature: 0.0,
        top_p: 1.0,
        k,
        seed: 1,
    }
}

/// The templates solver, greedy, with the edit that repairs the bug scored `fix` and every
/// other edit 0.
fn templates(fix: f64, k: u32, max_steps: usize) -> Box<dyn Solver> {
    Box::new(TemplateSolver::new(
        FixScore(fix),
        Settings {
            sampling: sampling(k),
            max_steps,
            pool: PoolSettings {
                top_functions: 3,
                max_window_lines: 40,
                loc_weight: 1.0,
                prior_weight: 1.0,
            },
        },
    ))
}

/// A chat solver talking to a server that answers with `script`.
fn chat_solver(
    script: Vec<Answer>,
    max_turns: usize,
) -> (Box<dyn Solver>, Arc<std::sync::Mutex<Vec<String>>>) {
    let (url, requests) = serve(script);
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        retries: 0,
        backoff: Duration::ZERO,
    };
    let solver = ChatSolver {
        client: ChatClient::new(&url, "scripted", None, options),
        sampling: sampling(1),
        max_turns,
    };
    (Box::new(solver), requests)
}

/// Attempts the fake task with `solver`; the trace and how many test runs the bed made.
fn attempt(solver: Box<dyn Solver>, task: &schemas::Task) -> (Trace, usize) {
    let dir = tempfile::tempdir().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let rollout = Rollout {
        harness: fake::harness(dir.path(), runs.clone()),
        solver,
        info: SolverInfo {
            name: "model:fake".into(),
            checkpoint: None,
            sampling: sampling(1),
            extra: Default::default(),
        },
    };
    let trace = rollout.attempt(task);
    (trace, runs.load(Ordering::Relaxed))
}

fn actions(trace: &Trace) -> Vec<&str> {
    trace.steps.iter().map(|s| s.action.as_str()).collect()
}

fn edits_tried(trace: &Trace) -> usize {
    trace
        .steps
        .iter()
        .filter(|s| s.action.starts_with("edit "))
        .count()
}

#[test]
fn an_edit_that_makes_the_failing_test_pass_is_submitted_as_resolved() {
    let task = fake::task();
    let (trace, runs) = attempt(templates(5.0, 1, 3), &task);
    assert_eq!(trace.error, None, "{:#?}", trace.steps);
    assert!(trace.outcome.resolved, "{:#?}", trace.steps);
    assert_eq!((trace.outcome.f2p_passed, trace.outcome.p2p_failed), (1, 0));
    assert_eq!(trace.patch, task.gold_patch);
    // The reproduction, then the one edit: the search stops at the first resolution.
    let reproduced = trace.steps[0].tests.as_ref().unwrap();
    assert_eq!(reproduced.failing, [TEST_ADD]);
    assert_eq!(edits_tried(&trace), 1, "{:?}", actions(&trace));
    let submit = trace.steps.last().unwrap();
    assert_eq!(submit.action, "submit");
    assert!(
        submit.observation.starts_with("resolved at pkg/calc.py:2"),
        "{}",
        submit.observation
    );
    // The traced reproduction, the edit with only the test that runs its line, and the
    // confirming run of every test.
    assert_eq!(runs, 3);
    let analysis = trace.analysis.unwrap();
    assert_eq!(analysis.family.as_deref(), Some("operator"));
    assert_eq!(
        (analysis.line_rank, analysis.function_rank),
        (Some(1), Some(1))
    );
    assert_eq!(analysis.gold_proposed, Some(true));
}

#[test]
fn edits_that_leave_the_failing_test_failing_are_not_submitted() {
    let task = fake::task();
    let (trace, _) = attempt(templates(-100.0, 1, 2), &task);
    assert_eq!(trace.error, None, "{:#?}", trace.steps);
    assert!(!trace.outcome.resolved);
    assert_eq!(trace.outcome.f2p_passed, 0);
    assert_eq!(trace.patch, "");
    assert_eq!(
        trace.steps.last().unwrap().observation,
        "no edit improved on the buggy code"
    );
    // The repair was in the pool, ranked too low to be drawn.
    assert_eq!(trace.analysis.unwrap().gold_proposed, Some(true));
}

#[test]
fn the_templates_solver_tests_at_most_k_edits_per_step_for_max_steps_steps() {
    // The pool holds four edits of `add`; the repair is drawn last.
    let task = fake::task();
    for (k, max_steps) in [(1, 1), (1, 3), (3, 1)] {
        let (trace, _) = attempt(templates(-100.0, k, max_steps), &task);
        assert_eq!(
            edits_tried(&trace),
            k as usize * max_steps,
            "k {k}, {max_steps} steps: {:?}",
            actions(&trace)
        );
        assert!(!trace.outcome.resolved, "{:#?}", trace.steps);
    }
    // A budget beyond the pool tries each edit once, the repair among them.
    let (trace, _) = attempt(templates(-100.0, 2, 5), &task);
    assert_eq!(edits_tried(&trace), 4, "{:?}", actions(&trace));
    assert!(trace.outcome.resolved, "{:#?}", trace.steps);
}

/// A reply that calls `calls` (tool name, arguments), with 110 tokens of usage.
fn tool_reply(calls: &[(&str, Value)]) -> Answer {
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| {
            json!({"id": format!("call_{i}"), "type": "function",
                "function": {"name": name, "arguments": arguments.to_string()}})
        })
        .collect();
    Answer::ok(
        json!({
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null, "tool_calls": calls}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
        })
        .to_string(),
    )
}

/// An `edit` of `pkg/calc.py` that makes `function` add.
fn make_add(function: &str) -> (&'static str, Value) {
    let head = format!("def {function}(a, b):\n");
    (
        "edit",
        json!({"path": "pkg/calc.py", "search": format!("{head}    return a - b"),
            "replace": format!("{head}    return a + b")}),
    )
}

#[test]
fn a_chat_model_whose_edit_makes_the_failing_test_pass_resolves_the_task() {
    let task = fake::task();
    let (solver, requests) = chat_solver(
        vec![
            tool_reply(&[make_add("add")]),
            tool_reply(&[("run_tests", json!({})), ("submit", json!({}))]),
        ],
        30,
    );
    let (trace, _) = attempt(solver, &task);
    assert_eq!(trace.error, None, "{:#?}", trace.steps);
    assert!(trace.outcome.resolved, "{:#?}", trace.steps);
    assert_eq!(trace.patch, task.gold_patch);
    assert_eq!(trace.cost.tokens, 2 * 110);
    assert_eq!(
        trace.steps.last().unwrap().observation,
        "resolved: 1 of 1 FAIL_TO_PASS pass, 0 PASS_TO_PASS fail"
    );
    assert_eq!(requests.lock().unwrap().len(), 2);
    // A chat model writes its own edits: there are no candidates to find the gold one in.
    assert_eq!(trace.analysis.unwrap().gold_proposed, None);
}

#[test]
fn a_chat_model_whose_edit_breaks_a_passing_test_is_judged_unresolved() {
    let task = fake::task();
    let (solver, _) = chat_solver(
        vec![tool_reply(&[make_add("sub"), ("submit", json!({}))])],
        30,
    );
    let (trace, _) = attempt(solver, &task);
    assert_eq!(trace.error, None, "{:#?}", trace.steps);
    assert!(!trace.outcome.resolved);
    assert_eq!((trace.outcome.f2p_passed, trace.outcome.p2p_failed), (0, 1));
    assert!(trace.patch.contains("def sub"), "{}", trace.patch);
    assert_eq!(
        trace.steps.last().unwrap().observation,
        "failed: 0 of 1 FAIL_TO_PASS pass, 1 PASS_TO_PASS fail"
    );
}

#[test]
fn the_chat_model_is_asked_at_most_max_turns_times() {
    let task = fake::task();
    let view = ("view", json!({"path": "pkg/calc.py"}));
    let script = (0..10)
        .map(|_| tool_reply(std::slice::from_ref(&view)))
        .collect();
    let (solver, requests) = chat_solver(script, 3);
    let (trace, _) = attempt(solver, &task);
    assert_eq!(requests.lock().unwrap().len(), 3);
    let views = trace
        .steps
        .iter()
        .filter(|s| s.action == "view pkg/calc.py");
    assert_eq!(views.count(), 3, "{:?}", actions(&trace));
    assert_eq!(trace.steps.last().unwrap().observation, "no edit was made");
    assert!(!trace.outcome.resolved);
}

/// A solver whose every attempt fails as the sandbox might.
struct Broken;

impl Solver for Broken {
    fn solve(&self, _: &Environment, _: &mut Trace) -> anyhow::Result<Vec<(String, LineEdit)>> {
        bail!("the sandbox broke")
    }
}

#[test]
fn failures_of_the_harness_are_kept_in_the_trace_not_raised() {
    let task = fake::task();
    let (trace, _) = attempt(Box::new(Broken), &task);
    assert_eq!(trace.error.as_deref(), Some("the sandbox broke"));
    assert_eq!(actions(&trace), ["run_tests", "localize"]);
    assert!(trace.analysis.is_some());

    let mut elsewhere = fake::task();
    elsewhere.repo = "missing-1.0".into();
    let (trace, runs) = attempt(templates(5.0, 1, 1), &elsewhere);
    let error = trace.error.unwrap();
    assert!(
        error.contains("`missing-1.0` is not in the corpus"),
        "{error}"
    );
    assert!(trace.steps.is_empty() && runs == 0);

    let mut valid_already = fake::task();
    valid_already.fail_to_pass = vec![TEST_SUB.into()];
    valid_already.pass_to_pass = Vec::new();
    let (trace, _) = attempt(templates(5.0, 1, 1), &valid_already);
    let error = trace.error.as_deref().unwrap();
    assert!(error.contains("already pass on the buggy code"), "{error}");
    assert_eq!(actions(&trace), ["run_tests"]);
}
