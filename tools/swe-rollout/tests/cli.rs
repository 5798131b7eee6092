//! `swe-rollout` as a command on real tasks of the evaluation set, with a micro checkpoint:
//! a resolved trace's patch resolves when rerun independently, traces are deterministic for
//! a seed, neither `gold_patch` nor provenance reaches what the solver sees, and bad input
//! is reported. Needs `just setup`.

use chat::testing::{Answer, serve};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sandbox::testbed::{ExecutorKind, RepoTree, ResultCache, RunOptions, TestBed, make_executor};
use sandbox::{Limits, TestOutcome, pytest_args, select_tests};
use schemas::{Record, Repo, Task, Trace};
use serde_json::Value;
use solver::config::ModelConfig;
use solver::example::{ExampleOptions, RepairExample};
use solver::model::Solver;
use solver::tokenizer::SolverTokenizer;

fn workdir() -> PathBuf {
    let dir = std::env::var_os("SOCRATIC_WORKDIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.socratic"),
        PathBuf::from,
    );
    assert!(dir.join("corpus.jsonl").is_file(), "run `just setup` first");
    dir
}

fn repos() -> BTreeMap<String, PathBuf> {
    let corpus = workdir().join("corpus.jsonl");
    std::fs::read_to_string(&corpus)
        .unwrap()
        .lines()
        .map(|line| {
            let repo = Repo::from_value(serde_json::from_str(line).unwrap()).unwrap();
            let root = corpus.parent().unwrap().join(&repo.root);
            (repo.id, root)
        })
        .collect()
}

fn eval_tasks() -> Vec<Task> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/eval/eval-set.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| Task::from_value(serde_json::from_str(line).unwrap()).unwrap())
        .collect()
}

/// A task whose repair the templates propose among few candidates: cheap to solve by
/// trying every candidate of its function.
fn small_task() -> Task {
    let repos = repos();
    eval_tasks()
        .into_iter()
        .find(|t| {
            RepairExample::from_task(t, &repos[&t.repo], &ExampleOptions::default())
                .is_ok_and(|e| e.gold_enumerated && e.candidates.len() <= 6)
        })
        .expect("the evaluation set has a small reachable task")
}

/// A micro checkpoint with random weights (seeded): enough to run the loop.
fn micro_checkpoint(dir: &Path) -> PathBuf {
    use burn::tensor::backend::Backend;
    // The backend's generator is global: one checkpoint at a time.
    static SEEDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SEEDING.lock().unwrap();
    let out = dir.join("micro");
    std::fs::create_dir_all(&out).unwrap();
    let texts = [
        "def add(a, b):\n    return a + b\n",
        "for i in range(10):\n    if i < 5:\n        print(i)\n",
    ];
    let tokenizer = SolverTokenizer::train(texts.iter().cycle().take(200), 300).unwrap();
    let config = ModelConfig::micro(tokenizer.vocab_size());
    std::fs::write(out.join("config.json"), config.to_json()).unwrap();
    tokenizer.save(&out.join("tokenizer.json")).unwrap();
    solver::Backend::seed(&solver::device(), 7);
    let model = Solver::<solver::Backend>::new(&config, &solver::device());
    solver::checkpoint::save_weights(&model, &out.join("model.safetensors")).unwrap();
    out
}

fn write_tasks(dir: &Path, name: &str, tasks: &[Task]) -> PathBuf {
    let path = dir.join(name);
    let text: String = tasks
        .iter()
        .map(|t| format!("{}\n", t.to_json_line()))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn rollout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swe-rollout"))
        .args(args)
        .env("SOCRATIC_WORKDIR", workdir())
        .output()
        .unwrap()
}

fn traces(output: &Output) -> Vec<Trace> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| Trace::from_value(serde_json::from_str(line).unwrap()).unwrap())
        .collect()
}

/// What depends on the solver: everything but the timing and the hidden analysis.
fn solver_view(trace: &Trace) -> Value {
    let mut value = serde_json::to_value(trace).unwrap();
    value["cost"]["seconds"] = Value::Null;
    value.as_object_mut().unwrap().remove("analysis");
    value
}

/// Runs the task's tests on a fresh copy with the bug and then `patch` applied.
fn rerun_with(task: &Task, model_patch: &str) -> BTreeMap<String, TestOutcome> {
    let root = repos()[&task.repo].clone();
    let mut changes = patches::apply_in_memory(&root, &task.bug_patch).unwrap();
    let repaired = patches::apply_to(model_patch, |path| {
        changes
            .get(path)
            .map(|(_, buggy)| buggy.clone())
            .ok_or_else(|| patches::PatchError::MissingFile(path.to_string()))
    })
    .unwrap();
    for (path, (_, new)) in repaired {
        changes.get_mut(&path).unwrap().1 = new;
    }
    let bed = TestBed::new(
        make_executor(
            ExecutorKind::Wasm,
            &workdir(),
            &workdir().join("cache"),
            false,
            false,
        )
        .unwrap(),
        ResultCache::new(None),
        Limits::default(),
    );
    let tests: Vec<String> = task
        .fail_to_pass
        .iter()
        .chain(&task.pass_to_pass)
        .cloned()
        .collect();
    let args = select_tests(&pytest_args(&task.test_cmd).unwrap(), &tests);
    let run = bed
        .run(
            &RepoTree::new(root).unwrap(),
            &changes,
            &args,
            &RunOptions::fresh(),
        )
        .unwrap();
    run.outcomes
}

#[test]
fn a_resolved_patch_resolves_on_its_own_and_traces_repeat_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = micro_checkpoint(dir.path());
    let task = small_task();
    let tasks = write_tasks(dir.path(), "tasks.jsonl", std::slice::from_ref(&task));
    let solver = format!("model:{}", checkpoint.display());
    let preds = dir.path().join("preds.jsonl");
    let args = [
        "--solver",
        &solver,
        "-k",
        "64",
        "--max-steps",
        "1",
        "--top-functions",
        "2",
        "--seed",
        "3",
        tasks.to_str().unwrap(),
    ];
    let mut with_predictions = args.to_vec();
    with_predictions.extend(["--predictions", preds.to_str().unwrap()]);
    let first = traces(&rollout(&with_predictions));
    assert_eq!(first.len(), 1);
    let trace = &first[0];
    assert_eq!(trace.error, None);
    assert!(
        trace.outcome.resolved,
        "{} not resolved: {:#?}",
        task.instance_id, trace.steps
    );
    let analysis = trace.analysis.as_ref().unwrap();
    assert_eq!(analysis.gold_proposed, Some(true));
    assert!(analysis.function_rank.is_some_and(|r| r <= 2));

    let outcomes = rerun_with(&task, &trace.patch);
    for id in task.fail_to_pass.iter().chain(&task.pass_to_pass) {
        assert_eq!(outcomes.get(id), Some(&TestOutcome::Passed), "{id}");
    }
    let prediction: Value =
        serde_json::from_str(std::fs::read_to_string(&preds).unwrap().trim()).unwrap();
    assert_eq!(prediction["instance_id"], task.instance_id.as_str());
    assert_eq!(prediction["model_patch"], trace.patch.as_str());

    let again = traces(&rollout(&args));
    assert_eq!(solver_view(&again[0]), solver_view(trace));

    // The solver never reads gold_patch or provenance: changing them changes nothing it
    // does (only the hidden analysis, which reads provenance).
    let mut disguised = task.clone();
    disguised.gold_patch = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n".into();
    disguised.provenance.operator = Some("arith-swap".into());
    disguised.provenance.site = None;
    let tasks = write_tasks(dir.path(), "disguised.jsonl", &[disguised]);
    let mut disguised_args = args.to_vec();
    *disguised_args.last_mut().unwrap() = tasks.to_str().unwrap();
    let disguised = traces(&rollout(&disguised_args));
    assert_eq!(solver_view(&disguised[0]), solver_view(trace));
    let text = serde_json::to_string(&trace.steps).unwrap();
    assert!(
        !text.contains(&task.gold_patch),
        "the gold patch leaked into the steps"
    );
}

#[test]
fn bad_input_is_reported_and_a_missing_repository_fails_only_its_task() {
    let dir = tempfile::tempdir().unwrap();
    let task = small_task();
    let tasks = write_tasks(dir.path(), "one.jsonl", std::slice::from_ref(&task));

    let out = rollout(&["--solver", "gpt-4", tasks.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown solver `gpt-4`"), "{stderr}");

    let out = rollout(&[
        "--solver",
        "model:/nonexistent/ckpt",
        tasks.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ckpt"));

    let checkpoint = micro_checkpoint(dir.path());
    let mut orphan = task.clone();
    orphan.instance_id = "orphan.0001".into();
    orphan.repo = "no-such-repo-1.0".into();
    let tasks = write_tasks(dir.path(), "two.jsonl", &[orphan, task.clone()]);
    let solver = format!("model:{}", checkpoint.display());
    let out = rollout(&[
        "--solver",
        &solver,
        "-k",
        "1",
        "--max-steps",
        "1",
        tasks.to_str().unwrap(),
    ]);
    let written = traces(&out);
    assert_eq!(written.len(), 2);
    let error = written[0].error.as_deref().unwrap();
    assert!(error.contains("no-such-repo-1.0"), "{error}");
    assert!(!written[0].outcome.resolved);
    assert_eq!(written[1].error, None);
    assert!(
        written[1]
            .steps
            .iter()
            .any(|s| s.action.starts_with("edit "))
    );
}

#[test]
fn summarize_reads_traces_written_before() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/trace.jsonl");
    let out = rollout(&["summarize", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let all = table.lines().find(|l| l.starts_with("| all |")).unwrap();
    assert!(all.starts_with("| all | 2 |"), "{table}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.md");
    let written = rollout(&[
        "summarize",
        path.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(written.status.success());
    assert!(written.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), table);

    // The flag it replaced still works, for scripts written before.
    let old = rollout(&["--summarize", path.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&old.stdout), table);
}

/// A reply that calls `calls` (tool name, arguments as JSON text), with 110 tokens of usage.
fn tool_reply(calls: &[(&str, String)]) -> String {
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| {
            serde_json::json!({"id": format!("call_{i}"), "type": "function",
                "function": {"name": name, "arguments": arguments}})
        })
        .collect();
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": calls}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
    })
    .to_string()
}

#[test]
fn the_chat_solver_repairs_through_retries_and_tools_without_seeing_the_gold_patch() {
    let dir = tempfile::tempdir().unwrap();
    let task = small_task();
    let (path, clean, buggy) = solver::example::task_files(&task, &repos()[&task.repo]).unwrap();
    let gold = solver::example::LineEdit::between(&buggy, &clean).unwrap();
    assert!(gold.start > 1 && !gold.old.is_empty());
    let before = buggy.lines().nth(gold.start - 2).unwrap();
    let search = format!("{before}\n{}", gold.old.concat());
    let replace = format!("{before}\n{}", gold.new.concat());
    let edit = serde_json::json!({"path": path, "search": search, "replace": replace}).to_string();
    let view = serde_json::json!({"path": path, "start": gold.start - 3, "end": gold.start + 3});
    // The same file through `.`: the tools must see the buggy text, never the clean one on disk.
    let odd_path = path.replacen('/', "/./", 1);
    let odd_view =
        serde_json::json!({"path": odd_path, "start": gold.start, "end": gold.start}).to_string();
    let test_file = task.fail_to_pass[0].split("::").next().unwrap().to_string();
    let test_edit =
        serde_json::json!({"path": test_file, "search": "assert", "replace": "pass"}).to_string();

    let (url, requests) = serve(vec![
        Answer {
            status: 429,
            body: "{\"error\": \"rate limited\"}".into(),
            delay_ms: 0,
            headers: "Retry-After: 0\r\n",
        },
        Answer {
            delay_ms: 2500, // past --request-timeout 1
            ..Answer::ok(tool_reply(&[("submit", "{}".into())]))
        },
        Answer::ok("<html>502 bad gateway</html>".into()),
        Answer::ok(tool_reply(&[
            ("view", view.to_string()),
            ("view", odd_view),
        ])),
        Answer::ok(tool_reply(&[("edit", "{oops".into()), ("edit", test_edit)])),
        Answer::ok(tool_reply(&[("edit", edit)])),
        Answer::ok(tool_reply(&[
            ("run_tests", "{}".into()),
            ("submit", "{}".into()),
        ])),
    ]);
    let tasks = write_tasks(dir.path(), "one.jsonl", std::slice::from_ref(&task));
    let solver = format!("openai:{url}#scripted-coder");
    let out = rollout(&[
        "--solver",
        &solver,
        "--request-timeout",
        "1",
        "--retries",
        "3",
        tasks.to_str().unwrap(),
    ]);
    let written = traces(&out);
    let trace = &written[0];
    assert_eq!(trace.error, None, "{:#?}", trace.steps);
    assert!(trace.outcome.resolved, "{:#?}", trace.steps);
    assert_eq!(trace.cost.tokens, 4 * 110);
    let actions: Vec<&str> = trace.steps.iter().map(|s| s.action.as_str()).collect();
    let view_action = format!("view {path}");
    assert!(actions.contains(&view_action.as_str()), "{actions:?}");
    assert!(actions.contains(&"run_tests") && actions.contains(&"submit"));
    let edits: Vec<&schemas::Step> = trace
        .steps
        .iter()
        .filter(|s| s.action.starts_with("edit"))
        .collect();
    assert_eq!(edits.len(), 3, "{actions:?}");
    assert!(
        edits[0].observation.starts_with("error:"),
        "{}",
        edits[0].observation
    );
    assert!(
        edits[1].observation.contains("not a source file"),
        "{}",
        edits[1].observation
    );
    assert_eq!(edits[2].observation, format!("edited {path}"));
    let odd = trace
        .steps
        .iter()
        .find(|s| s.action == format!("view {odd_path}"))
        .unwrap();
    assert!(
        odd.observation.contains(gold.old[0].trim()),
        "{}",
        odd.observation
    );
    let outcomes = rerun_with(&task, &trace.patch);
    assert!(
        task.fail_to_pass
            .iter()
            .all(|id| outcomes.get(id) == Some(&TestOutcome::Passed))
    );

    let requests = requests.lock().unwrap();
    assert_eq!(
        requests.len(),
        7,
        "three failed requests retried, four answered"
    );
    for body in requests.iter() {
        assert!(!body.contains(&task.gold_patch), "the gold patch leaked");
        assert!(!body.contains("provenance"), "the provenance leaked");
        let request: Value = serde_json::from_str(body).unwrap();
        assert_eq!(request["model"], "scripted-coder");
    }
}

#[test]
fn an_unreachable_endpoint_is_an_error_of_each_task_not_a_solver_failure() {
    let dir = tempfile::tempdir().unwrap();
    let task = small_task();
    let tasks = write_tasks(dir.path(), "one.jsonl", std::slice::from_ref(&task));
    // Port 9 (discard) on localhost: nothing listens there.
    let out = rollout(&[
        "--solver",
        "openai:http://127.0.0.1:9/v1#m",
        "--retries",
        "0",
        tasks.to_str().unwrap(),
    ]);
    let written = traces(&out);
    let error = written[0].error.as_deref().unwrap();
    assert!(
        error.contains("127.0.0.1:9") && error.contains("cannot reach"),
        "{error}"
    );
}

#[test]
fn the_checkpoints_edit_prior_steers_which_edit_is_tried() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = micro_checkpoint(dir.path());
    // The counted prior steers a checkpoint that scores with its language model alone (a
    // feature scorer holds its own).
    let config_path = checkpoint.join(solver::checkpoint::CONFIG);
    let mut config = solver::config::ModelConfig::load(&config_path).unwrap();
    config.ranker = Some(solver::config::RankerTerms::LM);
    std::fs::write(&config_path, config.to_json()).unwrap();
    let task = small_task();
    let (_, clean, buggy) = solver::example::task_files(&task, &repos()[&task.repo]).unwrap();
    let gold = solver::example::LineEdit::between(&buggy, &clean).unwrap();
    let kind = solver::prior::edit_kind(&gold);
    let prior = solver::prior::EditPrior {
        counts: [(kind.clone(), 1000)].into(),
        total: 1000,
    };
    prior.save(&checkpoint).unwrap();
    let tasks = write_tasks(dir.path(), "one.jsonl", std::slice::from_ref(&task));
    let solver = format!("model:{}", checkpoint.display());
    let out = rollout(&[
        "--solver",
        &solver,
        "-k",
        "1",
        "--max-steps",
        "1",
        "--temperature",
        "0",
        "--loc-weight",
        "0",
        "--prior-weight",
        "100",
        tasks.to_str().unwrap(),
    ]);
    let trace = &traces(&out)[0];
    let edit = trace
        .steps
        .iter()
        .find(|s| s.action.starts_with("edit "))
        .expect("one edit tried");
    let lines: Vec<&str> = edit.observation.lines().collect();
    let old: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix('-'))
        .map(|l| format!("{l}\n"))
        .collect();
    let new: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix('+'))
        .map(|l| format!("{l}\n"))
        .collect();
    let tried = solver::example::LineEdit { start: 1, old, new };
    assert_eq!(
        solver::prior::edit_kind(&tried),
        kind,
        "{}",
        edit.observation
    );
}

#[test]
fn bad_tasks_are_refused_before_any_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let mut unnameable = small_task();
    unnameable.instance_id = format!("{}\u{0}{}", "x".repeat(150), "y".repeat(150));
    let bad_id = write_tasks(dir.path(), "bad-id.jsonl", &[small_task(), unnameable]);
    for (input, says) in [(&empty, "empty input"), (&bad_id, "instance_id")] {
        let out_path = dir.path().join("traces.jsonl");
        let predictions = dir.path().join("predictions.jsonl");
        let out = rollout(&[
            "--solver",
            "model:/nonexistent",
            input.to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
            "--predictions",
            predictions.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(says));
        assert!(!out_path.exists() && !predictions.exists());
    }
}
