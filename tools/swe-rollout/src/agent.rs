//! The chat solver: a model behind an OpenAI-compatible endpoint repairs the bug with tools
//! (view, search, edit, run_tests, submit) executed against an in-memory working copy of the
//! buggy repository; tests run in the sandbox. The loop is mini-swe-agent's: send the
//! history, execute the tool calls, append their observations, until `submit` or the turn
//! budget.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use anyhow::{Context, Result, anyhow, bail};
use sandbox::patch;
use schemas::{Step, Trace};
use serde_json::{Value, json};

use crate::episode::{
    Harness, Work, buggy_text, describe_functions, note, outcome, status_word, test_step,
};
use chat::{ChatClient, ToolCall};

pub(crate) const SYSTEM: &str = "You repair a bug in a Python repository. Failing tests show it. \
Use the tools: `view` a file's lines, `search` the code, `edit` a source file (not a test) \
by replacing one exact occurrence of existing text, `run_tests` to run the failing and the passing tests, and \
`submit` when the tests pass. Change as little as possible.";

/// Most characters of one observation sent back to the model.
const MAX_OBSERVATION: usize = 6000;
/// Most lines one `view` shows.
const MAX_VIEW_LINES: usize = 200;
/// Most hits one `search` lists.
const MAX_HITS: usize = 50;
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

/// The working copy the tools act on: the buggy repository plus the edits so far.
struct WorkingCopy<'w, 'h, 't> {
    work: &'w Work<'h, 't>,
    /// Edited files: path → current text.
    edited: BTreeMap<String, String>,
}

impl WorkingCopy<'_, '_, '_> {
    /// The canonical repository-relative form (`a/b.py`) of a path to an existing regular
    /// file of the repository, or why not. `.` and doubled `/` are dropped, so the same file
    /// always has the same key; `..`, absolute paths and symbolic links are refused.
    fn checked_path(&self, path: &str) -> Result<String> {
        let mut parts = Vec::new();
        for component in Path::new(path).components() {
            match component {
                Component::Normal(part) => parts.push(part.to_string_lossy().to_string()),
                Component::CurDir => {}
                _ => bail!("`{path}` is not a path inside the repository"),
            }
        }
        if parts.is_empty() {
            bail!("`{path}` is not a file");
        }
        let mut on_disk = self.work.repo.root.clone();
        for part in &parts {
            on_disk.push(part);
            match std::fs::symlink_metadata(&on_disk) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    bail!("`{path}` goes through a symbolic link")
                }
                Ok(_) => {}
                Err(_) => bail!("no file `{}` in the repository", parts.join("/")),
            }
        }
        if !on_disk.is_file() {
            bail!("`{}` is not a file", parts.join("/"));
        }
        Ok(parts.join("/"))
    }

    fn text(&self, path: &str) -> Result<String> {
        match self.edited.get(path) {
            Some(text) => Ok(text.clone()),
            None => buggy_text(&self.work.repo.root, &self.work.problem.bug, path),
        }
    }

    fn view(&self, args: &Value) -> Result<String> {
        let path = self.checked_path(str_arg(args, "path")?)?;
        let text = self.text(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        let start = args
            .get("start")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .max(1) as usize;
        let end = args
            .get("end")
            .and_then(Value::as_u64)
            .map_or(lines.len(), |e| e as usize)
            .min(lines.len())
            .min(start.saturating_add(MAX_VIEW_LINES - 1));
        if start > lines.len() {
            bail!("{path} has {} lines", lines.len());
        }
        if end < start {
            bail!("`end` ({end}) comes before `start` ({start})");
        }
        Ok((start..=end)
            .map(|n| format!("{n:>5} {}", lines[n - 1]))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn search(&self, args: &Value) -> Result<String> {
        let needle = str_arg(args, "text")?;
        if needle.is_empty() {
            bail!("empty search text");
        }
        let scope = args.get("path").and_then(Value::as_str).unwrap_or("");
        let mut files = Vec::new();
        python_files(&self.work.repo.root, &self.work.repo.root, &mut files)?;
        files.sort();
        let mut hits = Vec::new();
        for path in files
            .iter()
            .filter(|p| p.starts_with(scope.trim_start_matches("./")))
        {
            for (n, line) in self.text(path)?.lines().enumerate() {
                if line.contains(needle) {
                    hits.push(format!("{path}:{}: {}", n + 1, line.trim()));
                }
            }
        }
        if hits.is_empty() {
            return Ok(format!("no line contains `{needle}`"));
        }
        let total = hits.len();
        hits.truncate(MAX_HITS);
        if total > MAX_HITS {
            hits.push(format!("… {} more", total - MAX_HITS));
        }
        Ok(hits.join("\n"))
    }

    fn edit(&mut self, args: &Value) -> Result<String> {
        let path = self.checked_path(str_arg(args, "path")?)?;
        if !editable(&path) {
            bail!(
                "{path} is not a source file of the project: tests and their configuration \
                 stay as they are"
            );
        }
        let search = str_arg(args, "search")?;
        let replace = str_arg(args, "replace")?;
        let text = self.text(&path)?;
        let found = if search.is_empty() {
            0
        } else {
            text.matches(search).count()
        };
        if found != 1 {
            bail!(
                "the search text occurs {found} times in {path}; it must occur exactly once \
                 (copy it exactly, with more lines around it if needed)"
            );
        }
        let new = text.replacen(search, replace, 1);
        if !pyast::parses(&new) && pyast::parses(&text) {
            bail!("after this edit {path} is no longer valid Python; nothing was changed");
        }
        self.edited.insert(path.clone(), new);
        Ok(format!("edited {path}"))
    }
}

/// Whether the model may edit `path`: a Python file of the project, not a test or a
/// `conftest.py` (the verdict must come from the task's own tests).
fn editable(path: &str) -> bool {
    path.ends_with(".py") && !pyast::files::is_test_path(path)
}

fn str_arg<'a>(args: &'a Value, name: &str) -> Result<&'a str> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("missing string argument `{name}`"))
}

fn python_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            python_files(root, &path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "py") {
            let relative = path.strip_prefix(root).expect("under root");
            out.push(relative.to_string_lossy().to_string());
        }
    }
    Ok(())
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_OBSERVATION {
        return text.to_string();
    }
    let kept: String = text.chars().take(MAX_OBSERVATION).collect();
    format!("{kept}\n… (cut)")
}

/// The first message: the problem statement, the failing tests and the localization.
fn task_message(work: &Work) -> String {
    let problem = &work.problem;
    format!(
        "{}\n\nTests that fail now and must pass:\n{}\n\nMost suspicious code, from the failing \
         tests' coverage and tracebacks:\n{}",
        problem.statement.trim(),
        problem.fail_to_pass.join("\n"),
        describe_functions(&work.functions)
    )
}

pub(crate) fn solve_with_chat(
    harness: &Harness,
    client: &ChatClient,
    work: &Work,
    trace: &mut Trace,
) -> Result<()> {
    let settings = &harness.settings;
    let sampling = &settings.sampling;
    let mut copy = WorkingCopy {
        work,
        edited: BTreeMap::new(),
    };
    let mut messages = vec![
        json!({"role": "system", "content": SYSTEM}),
        json!({"role": "user", "content": task_message(work)}),
    ];
    let tools = tools();
    let mut idle = 0;
    let mut submitted = false;
    for turn in 0..settings.max_turns {
        let reply = match client.complete(
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
                break;
            }
        };
        trace.cost.tokens += reply.tokens;
        messages.push(reply.message.clone());
        if reply.tool_calls.is_empty() {
            trace.steps.push(note("say", &reply.content));
            idle += 1;
            if idle >= MAX_IDLE_REPLIES {
                break;
            }
            messages.push(json!({"role": "user", "content":
                "Use the tools (view, search, edit, run_tests, submit) to repair the bug."}));
            continue;
        }
        idle = 0;
        for call in &reply.tool_calls {
            let (step, done) = execute(harness, &mut copy, call)?;
            messages.push(json!({
                "role": "tool",
                "tool_call_id": call.id,
                "content": cut(&step.observation),
            }));
            trace.steps.push(step);
            if done {
                submitted = true;
                break;
            }
        }
        if submitted {
            break;
        }
    }

    // Judge the final working copy, whatever the model last saw.
    if copy.edited.is_empty() {
        trace.steps.push(note("submit", "no edit was made"));
        return Ok(());
    }
    let (run, _) = harness.run_edits(work, &copy.edited)?;
    let final_outcome = outcome(&work.problem, &run);
    let mut diff = String::new();
    for (path, text) in &copy.edited {
        let buggy = buggy_text(&work.repo.root, &work.problem.bug, path)?;
        if &buggy != text {
            diff.push_str(&patch::unified_diff(path, &buggy, text));
        }
    }
    trace.patch = diff;
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
fn execute(harness: &Harness, copy: &mut WorkingCopy, call: &ToolCall) -> Result<(Step, bool)> {
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
            let (run, _) = harness.run_edits(copy.work, &copy.edited)?;
            let step = test_step("run_tests", &copy.work.problem, &run);
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
