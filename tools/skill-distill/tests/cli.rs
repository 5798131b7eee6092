//! `skill-distill` as a command on traces of real tasks of the evaluation set (outcomes and
//! localizations written by the test, so every failure mode is known): the bug operator is
//! recovered from the patches, the same traces give the same skills, the skills cover the
//! failed traces, previous skills are updated rather than duplicated, SKILL.md follows the
//! Agent Skills rules, and bad input exits 2. Needs `just setup` (the corpus sources).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use schemas::{Record, Skill, Task};
use serde_json::{Value, json};

fn workdir() -> PathBuf {
    let dir = std::env::var_os("SOCRATIC_WORKDIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.socratic"),
        PathBuf::from,
    );
    assert!(dir.join("corpus.jsonl").is_file(), "run `just setup` first");
    dir
}

fn eval_tasks() -> Vec<Task> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/eval/eval-set.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| Task::from_value(serde_json::from_str(line).unwrap()).unwrap())
        .collect()
}

fn distill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skill-distill"))
        .args(args)
        .arg("--workdir")
        .arg(workdir())
        .output()
        .unwrap()
}

fn write_lines(path: &Path, values: impl IntoIterator<Item = Value>) {
    let text: String = values.into_iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The path and first changed line (buggy side) of a task's bug, from its gold patch header.
fn bug_line(task: &Task) -> (String, u32) {
    let path = task
        .gold_patch
        .lines()
        .find_map(|l| l.strip_prefix("--- a/"))
        .unwrap()
        .to_string();
    let hunk = task
        .gold_patch
        .lines()
        .find(|l| l.starts_with("@@"))
        .unwrap();
    let start: u32 = hunk[4..].split([',', ' ']).next().unwrap().parse().unwrap();
    (path, start)
}

/// A trace of `task`: `resolved`, or failed with the bug's function ranked first
/// (`localized`) or not ranked at all.
fn trace(task: &Task, resolved: bool, localized: bool) -> Value {
    let (path, line) = bug_line(task);
    let function = if localized {
        json!({"path": path, "name": "f", "start_line": line, "end_line": line + 8, "score": 1.0})
    } else {
        json!({"path": "elsewhere.py", "name": "g", "start_line": 1, "end_line": 9, "score": 1.0})
    };
    json!({
        "schema": "trace/1.1",
        "trace_id": format!("{}-s0", task.instance_id),
        "instance_id": task.instance_id,
        "solver": {"name": "test"},
        "steps": [],
        "patch": "",
        "outcome": {"resolved": resolved, "f2p_passed": 0, "f2p_total": 1, "p2p_failed": 0, "p2p_total": 1},
        "cost": {"tokens": 0, "seconds": 0.0},
        "localization": {"method": "test", "lines": [], "functions": [function]}
    })
}

/// The first 60 tasks of the evaluation set with traces: every third resolved, the others
/// failed, localized or not by the parity of their index.
fn fixture(dir: &Path) -> (PathBuf, PathBuf, Vec<Task>) {
    let tasks: Vec<Task> = eval_tasks().into_iter().take(60).collect();
    let tasks_path = dir.join("tasks.jsonl");
    write_lines(
        &tasks_path,
        tasks.iter().map(|t| serde_json::to_value(t).unwrap()),
    );
    let traces_path = dir.join("traces.jsonl");
    write_lines(
        &traces_path,
        tasks
            .iter()
            .enumerate()
            .map(|(i, t)| trace(t, i % 3 == 0, i % 2 == 0)),
    );
    (tasks_path, traces_path, tasks)
}

fn skills(path: &Path) -> Vec<Skill> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| Skill::from_value(serde_json::from_str(l).unwrap()).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn skills_cover_the_failed_traces_repeat_for_a_seed_and_export_as_agent_skills() {
    let dir = tempfile::tempdir().unwrap();
    let (tasks, traces, fixture_tasks) = fixture(dir.path());
    let (tasks, traces) = (tasks.to_str().unwrap(), traces.to_str().unwrap());
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = |o: &str, extra: &[&str]| {
        let mut args = vec![
            traces,
            "--tasks",
            tasks,
            "--min-support",
            "2",
            "--seed",
            "3",
        ];
        args.extend_from_slice(&["-o", o, "--stats"]);
        args.extend_from_slice(extra);
        let output = distill(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        output
    };
    let first = run(&out("a.jsonl"), &["--export-dir", &out("exported")]);
    run(&out("b.jsonl"), &[]);
    let a = std::fs::read(out("a.jsonl")).unwrap();
    assert_eq!(
        a,
        std::fs::read(out("b.jsonl")).unwrap(),
        "not deterministic"
    );
    let skills = skills(Path::new(&out("a.jsonl")));
    assert!(!skills.is_empty());

    // Coverage: every skill's example traces are failed traces of the fixture with the
    // failure mode its name says; with back-off down to families, most failures are covered.
    let failed: BTreeMap<String, bool> = fixture_tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(i, t)| (format!("{}-s0", t.instance_id), i % 2 == 0))
        .collect();
    for skill in &skills {
        assert!(skill.evidence.support as usize >= skill.evidence.trace_ids.len());
        assert!(skill.evidence.failure_rate > 0.0);
        for id in &skill.evidence.trace_ids {
            let localized = failed[id];
            let mode = if localized {
                "wrong-edit"
            } else {
                "not-localized"
            };
            assert!(skill.name.ends_with(mode), "{} holds {id}", skill.name);
        }
    }
    let report = stderr(&first);
    let line = report
        .lines()
        .find(|l| l.contains("failed traces ("))
        .unwrap();
    let covered: usize = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(covered * 10 >= failed.len() * 8, "{report}");

    // The operator of each cmp-swap task is recovered from its patches, at a comparison.
    let cmp: Vec<&Skill> = skills
        .iter()
        .filter(|s| s.operations[0].operators == ["cmp-swap"])
        .collect();
    for skill in cmp {
        let kind = skill
            .conditions
            .iter()
            .find(|c| c.feature == "node_kind")
            .unwrap();
        assert_eq!(kind.value, json!("comparison_operator"), "{}", skill.name);
    }

    // Agent Skills: DIR/<name>/SKILL.md, front matter with the same name and a description.
    for skill in &skills {
        let md = std::fs::read_to_string(
            Path::new(&out("exported"))
                .join(&skill.name)
                .join("SKILL.md"),
        )
        .unwrap();
        let front = md
            .strip_prefix("---\n")
            .unwrap()
            .split("\n---\n")
            .next()
            .unwrap();
        let field = |key: &str| {
            front
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}: ")))
                .unwrap()
                .to_string()
        };
        let name = field("name");
        assert_eq!(name, skill.name);
        assert!(name.len() <= 64 && !name.starts_with('-') && !name.ends_with('-'));
        assert!(!name.contains("--"));
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        let description: String = serde_json::from_str(&field("description")).unwrap();
        assert_eq!(description, skill.description);
        assert!(!description.is_empty() && description.chars().count() <= 1024);
    }
}

#[test]
fn previous_skills_are_updated_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let (tasks, traces, _) = fixture(dir.path());
    let first = dir.path().join("r1.jsonl");
    let args = |o: &Path, extra: &[&str]| {
        let mut v: Vec<String> = [traces.to_str().unwrap(), "--tasks", tasks.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(["--min-support", "2", "-o", o.to_str().unwrap()].map(String::from));
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |v: Vec<String>| {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        let output = distill(&refs);
        assert!(output.status.success(), "{}", stderr(&output));
    };
    run(args(&first, &["--round", "1"]));
    let mut previous = skills(&first);
    // A hand-written skill of another id under a distilled name, and one never seen again.
    previous[0].skill_id = "skill-handwritten".into();
    let mut unseen = previous[0].clone();
    unseen.name = "an-old-weakness".into();
    unseen.skill_id = "skill-old".into();
    previous.push(unseen);
    let prev_path = dir.path().join("prev.jsonl");
    write_lines(
        &prev_path,
        previous.iter().map(|s| serde_json::to_value(s).unwrap()),
    );

    let second = dir.path().join("r2.jsonl");
    run(args(&second, &["--skills", prev_path.to_str().unwrap()]));
    let updated = skills(&second);
    assert_eq!(
        updated.len(),
        previous.len(),
        "skills were duplicated or lost"
    );
    let by_name: BTreeMap<&str, &Skill> = updated.iter().map(|s| (s.name.as_str(), s)).collect();
    let renewed = by_name[previous[0].name.as_str()];
    assert_eq!(renewed.skill_id, "skill-handwritten");
    assert_eq!(
        renewed.round, 2,
        "the round after the previous skills' last"
    );
    let carried = by_name["an-old-weakness"];
    assert_eq!((carried.skill_id.as_str(), carried.round), ("skill-old", 1));
}

#[test]
fn unknown_tasks_and_unknown_features_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (tasks, traces, fixture_tasks) = fixture(dir.path());
    let mut stray = trace(&fixture_tasks[0], false, true);
    stray["instance_id"] = json!("nowhere.task.0001");
    let stray_path = dir.path().join("stray.jsonl");
    write_lines(&stray_path, [trace(&fixture_tasks[1], false, true), stray]);
    let output = distill(&[
        stray_path.to_str().unwrap(),
        "--tasks",
        tasks.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("stray.jsonl") && err.contains(":2") && err.contains("nowhere.task.0001"),
        "{err}"
    );

    let skill = json!({
        "schema": "skill/1", "skill_id": "skill-x", "name": "odd-skill",
        "description": "d", "round": 1,
        "conditions": [{"feature": "node_kind", "op": "eq", "value": "call"},
                       {"feature": "colour", "op": "eq", "value": "red"}],
        "operations": [], "evidence": {"support": 1, "failure_rate": 1.0, "trace_ids": []}
    });
    let skills_path = dir.path().join("skills.jsonl");
    write_lines(&skills_path, [skill]);
    let output = distill(&[
        traces.to_str().unwrap(),
        "--tasks",
        tasks.to_str().unwrap(),
        "--skills",
        skills_path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("skills.jsonl") && err.contains("conditions[1]") && err.contains("colour"),
        "{err}"
    );
}

/// A chat-completions reply whose message says `text`.
fn text_reply(text: &str) -> String {
    json!({
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 300, "completion_tokens": 40},
    })
    .to_string()
}

#[test]
fn a_served_model_writes_the_descriptions_from_the_evidence_alone() {
    use chat::testing::{Answer, serve};
    let dir = tempfile::tempdir().unwrap();
    let (tasks, traces, fixture_tasks) = fixture(dir.path());
    let (tasks, traces) = (tasks.to_str().unwrap(), traces.to_str().unwrap());
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let args = |o: &str| {
        vec![
            traces.to_string(),
            "--tasks".into(),
            tasks.into(),
            "--min-support".into(),
            "2".into(),
            "-o".into(),
            o.to_string(),
        ]
    };
    let templated = distill(
        &args(&out("templates.jsonl"))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(templated.status.success(), "{}", stderr(&templated));
    let templated = skills(Path::new(&out("templates.jsonl")));
    assert!(!templated.is_empty());

    // One server error (retried), then a description per skill, fenced and quoted as models do.
    let mut script = vec![Answer {
        status: 503,
        ..Answer::ok("{}".into())
    }];
    for i in 0..templated.len() {
        script.push(Answer::ok(text_reply(&format!(
            "```\n\"Described {i}: the comparison is off by one.\n   Repair: restore it.\"\n```"
        ))));
    }
    let (url, requests) = serve(script);
    let mut described_args = args(&out("described.jsonl"));
    described_args.extend([
        "--describe".into(),
        format!("openai:{url}#tiny"),
        "--api-key-env".into(),
        "SKILL_DISTILL_TEST_KEY".into(),
    ]);
    let output = Command::new(env!("CARGO_BIN_EXE_skill-distill"))
        .args(&described_args)
        .arg("--workdir")
        .arg(workdir())
        .env("SKILL_DISTILL_TEST_KEY", "secret")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let described = skills(Path::new(&out("described.jsonl")));
    assert_eq!(described.len(), templated.len());
    for (i, (d, t)) in described.iter().zip(&templated).enumerate() {
        assert_eq!(
            d.description,
            format!("Described {i}: the comparison is off by one. Repair: restore it.")
        );
        assert_eq!(
            Skill {
                description: t.description.clone(),
                ..d.clone()
            },
            *t,
            "only the description changes"
        );
    }
    let requests = requests.lock().unwrap();
    assert_eq!(requests.len(), templated.len() + 1);
    for body in requests.iter() {
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["model"], "tiny");
        assert!(body.get("tools").is_none());
        let text = body["messages"].to_string();
        assert!(text.contains("draft_description"));
        for task in &fixture_tasks {
            assert!(!text.contains(&task.gold_patch), "the gold patch was sent");
        }
    }

    // An endpoint that refuses: the stage fails and names the skill; nothing is written.
    let (url, _) = serve(vec![Answer {
        status: 401,
        ..Answer::ok("{\"error\": \"bad key\"}".into())
    }]);
    let mut refused = args(&out("refused.jsonl"));
    refused.extend(["--describe".into(), format!("openai:{url}#tiny")]);
    let output = distill(&refused.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("describing skill"),
        "{}",
        stderr(&output)
    );
    assert!(!Path::new(&out("refused.jsonl")).exists());
    let output = distill(&[traces, "--tasks", tasks, "--describe", "openai:localhost#m"]);
    assert_eq!(output.status.code(), Some(2));
}
