//! `task-gen --strategy skills` and `task-gen update-policy` as commands: candidates come
//! only from sites where a skill's conditions hold, with its operators and its id in the
//! provenance; the output repeats for a seed; a policy steers the mix and an update moves
//! it toward rewarded skills; bad skills exit 2; line maps give sites `tests_reaching`, which
//! a condition can ask for. Needs `just setup`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

mod support;
use support::{corpus, records, task_gen};

fn skill(id: &str, failure_rate: f64, conditions: Value, operators: &[&str]) -> Value {
    json!({
        "schema": "skill/1", "skill_id": id, "name": id, "description": "test skill",
        "conditions": conditions,
        "operations": [{"phase": "arise", "text": "t", "operators": operators}],
        "evidence": {"support": 10, "failure_rate": failure_rate, "trace_ids": []},
        "round": 1
    })
}

/// Guards compared with the wrong strictness, and variable misuse in calls.
fn two_skills(dir: &Path) -> PathBuf {
    let path = dir.join("skills.jsonl");
    let lines = [
        skill(
            "guard",
            0.8,
            json!([{"feature": "construct", "op": "eq", "value": "condition"},
                   {"feature": "depth", "op": "le", "value": 2}]),
            &["cmp-swap"],
        ),
        skill(
            "misuse",
            0.4,
            json!([{"feature": "construct", "op": "eq", "value": "call"}]),
            &["var-misuse"],
        ),
    ];
    std::fs::write(&path, lines.map(|l| format!("{l}\n")).concat()).unwrap();
    path
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn candidates_come_from_sites_where_their_skill_applies_and_repeat_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let skills = two_skills(dir.path());
    let args = ["--strategy", "skills", "--skills", skills.to_str().unwrap()];
    let corpus = corpus();
    let run = |seed: &str| {
        let mut a = args.to_vec();
        a.extend(["--budget", "120", "--round", "2", "--seed", seed, &corpus]);
        task_gen(&a)
    };
    let (a, b) = (run("5"), run("5"));
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout, "not deterministic");
    let tasks = records(&a.stdout);
    assert_eq!(tasks.len(), 120);
    let mut per_skill: HashMap<String, usize> = HashMap::new();
    for task in &tasks {
        let prov = &task["provenance"];
        assert_eq!(prov["strategy"], "skills");
        assert_eq!(prov["round"], 2);
        let skill = prov["skill_ids"][0].as_str().unwrap();
        *per_skill.entry(skill.to_string()).or_default() += 1;
        let site = &prov["site"];
        match skill {
            "guard" => {
                assert_eq!(prov["operator"], "cmp-swap");
                assert_eq!(site["construct"], "condition");
                assert!(site["depth"].as_u64().unwrap() <= 2, "{site}");
            }
            "misuse" => {
                assert_eq!(prov["operator"], "var-misuse");
                assert_eq!(site["construct"], "call");
            }
            other => panic!("unknown skill {other}"),
        }
    }
    // The skill the solver fails more often gets more of the budget (0.85 : 0.45).
    assert!(per_skill["guard"] > per_skill["misuse"], "{per_skill:?}");
}

#[test]
fn a_policy_steers_the_mix_and_an_update_moves_it_toward_rewarded_skills() {
    let dir = tempfile::tempdir().unwrap();
    let skills = skills_arg(dir.path());
    let gen_with = |policy: Option<&Path>| {
        let mut a = vec![
            "--strategy",
            "skills",
            "--skills",
            &skills,
            "--budget",
            "100",
        ];
        if let Some(p) = policy {
            a.extend(["--policy", p.to_str().unwrap()]);
        }
        a.push(Box::leak(corpus().into_boxed_str()));
        let out = task_gen(&a);
        assert!(out.status.success(), "{}", stderr(&out));
        records(&out.stdout)
    };
    let share = |tasks: &[Value], skill: &str| {
        tasks
            .iter()
            .filter(|t| t["provenance"]["skill_ids"][0] == skill)
            .count() as f64
            / tasks.len() as f64
    };
    let fresh = gen_with(None);
    let candidates = dir.path().join("candidates.jsonl");
    std::fs::write(
        &candidates,
        fresh.iter().map(|t| format!("{t}\n")).collect::<String>(),
    )
    .unwrap();
    // Only misuse's candidates validate and align.
    let scores: String = fresh
        .iter()
        .filter(|t| t["provenance"]["skill_ids"][0] == "misuse")
        .map(|t| {
            let id = &t["instance_id"];
            format!(
                "{}\n",
                json!({"schema": "score/1", "instance_id": id, "valid": true, "alignment": 0.5,
                       "reward": 0.5, "grad_norm": 1.0, "target_id": "t"})
            )
        })
        .collect();
    let scores_path = dir.path().join("scores.jsonl");
    std::fs::write(&scores_path, scores).unwrap();
    let policy = dir.path().join("policy.json");
    let mut update = vec![
        "update-policy",
        "--skills",
        &skills,
        "--tasks",
        candidates.to_str().unwrap(),
        "--scores",
        scores_path.to_str().unwrap(),
        "--lr",
        "8",
        "-o",
        policy.to_str().unwrap(),
    ];
    let out = task_gen(&update);
    assert!(out.status.success(), "{}", stderr(&out));
    // A second step from the saved policy.
    update.extend(["--policy", policy.to_str().unwrap()]);
    let out = task_gen(&update);
    assert!(out.status.success(), "{}", stderr(&out));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap();
    assert_eq!(saved["updates"], 2);
    assert!(saved["skills"]["misuse"].as_f64() > saved["skills"]["guard"].as_f64());
    let steered = gen_with(Some(&policy));
    assert!(
        share(&steered, "misuse") > share(&fresh, "misuse") + 0.2,
        "{} -> {}",
        share(&fresh, "misuse"),
        share(&steered, "misuse")
    );
}

fn skills_arg(dir: &Path) -> String {
    two_skills(dir).to_str().unwrap().to_string()
}

#[test]
fn skills_with_unknown_features_or_operators_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    for (line, field) in [
        (
            skill(
                "a",
                0.5,
                json!([{"feature": "colour", "op": "eq", "value": "red"}]),
                &[],
            ),
            "conditions[0]",
        ),
        (
            skill("b", 0.5, json!([]), &["cmp-swap", "no-such-op"]),
            "operations[0].operators",
        ),
    ] {
        let path = dir.path().join("bad.jsonl");
        std::fs::write(&path, format!("{line}\n")).unwrap();
        let out = task_gen(&[
            "--strategy",
            "skills",
            "--skills",
            path.to_str().unwrap(),
            "--budget",
            "5",
            &corpus(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("bad.jsonl") && err.contains(field), "{err}");
    }
    // --strategy skills without --skills is a usage error.
    let out = task_gen(&["--strategy", "skills", "--budget", "5", &corpus()]);
    assert_eq!(out.status.code(), Some(2));
}

/// A corpus of munch alone (its root made absolute) and a line map in which two tests run
/// lines 1–200 of `munch/__init__.py` and nothing else runs.
fn munch_with_line_map(dir: &Path) -> (String, PathBuf) {
    let workdir = support::workdir();
    let line = std::fs::read_to_string(workdir.join("corpus.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|repo| repo["id"] == "munch-4.0.0")
        .expect("munch in the corpus");
    let mut repo = line;
    let root = workdir.join(repo["root"].as_str().unwrap());
    repo["root"] = json!(root.canonicalize().unwrap());
    let corpus = dir.join("corpus.jsonl");
    std::fs::write(&corpus, format!("{repo}\n")).unwrap();
    let maps = dir.join("maps");
    std::fs::create_dir(&maps).unwrap();
    let lines: serde_json::Map<String, Value> =
        (1..=200).map(|l| (l.to_string(), json!([0, 1]))).collect();
    let map = json!({"tests": ["t.py::a", "t.py::b"],
                     "lines": {"munch/__init__.py": lines}, "import_lines": {}});
    std::fs::write(maps.join("munch-4.0.0.json"), map.to_string()).unwrap();
    (corpus.to_str().unwrap().to_string(), maps)
}

#[test]
fn line_maps_tell_each_site_its_tests_and_skills_can_ask_for_reached_code() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, maps) = munch_with_line_map(dir.path());
    let maps_arg = maps.to_str().unwrap();
    let out = task_gen(&["--budget", "80", "--line-maps", maps_arg, &corpus]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tasks = records(&out.stdout);
    let reaching = |task: &Value| task["provenance"]["site"]["tests_reaching"].as_u64();
    for task in &tasks {
        let line = task["provenance"]["site"]["line"].as_u64().unwrap();
        let tests = reaching(task).expect("every munch site has a count");
        assert!(tests == 0 || tests == 2, "{tests}");
        if line <= 200 {
            assert_eq!(tests, 2, "line {line} runs in both tests");
        }
    }
    assert!(
        tasks.iter().any(|t| reaching(t) == Some(0)),
        "sites past line 200"
    );

    let skills = dir.path().join("reached.jsonl");
    let reached = skill(
        "reached",
        0.5,
        json!([{"feature": "tests_reaching", "op": "ge", "value": 1}]),
        &[
            "cmp-swap",
            "call-remove",
            "off-by-one",
            "var-misuse",
            "assign-remove",
        ],
    );
    std::fs::write(&skills, format!("{reached}\n")).unwrap();
    let skills_arg = skills.to_str().unwrap();
    let args = [
        "--strategy",
        "skills",
        "--skills",
        skills_arg,
        "--budget",
        "30",
    ];
    let out = task_gen(&[&args[..], &["--line-maps", maps_arg, &corpus]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let tasks = records(&out.stdout);
    assert!(!tasks.is_empty());
    assert!(
        tasks.iter().all(|t| reaching(t) == Some(2)),
        "only reached sites"
    );

    // Without the map, nothing speaks against a site: the skill applies past line 200 too.
    let out = task_gen(&[&args[..], &[&corpus[..]]].concat());
    let tasks = records(&out.stdout);
    assert!(tasks.iter().all(|t| reaching(t).is_none()));
    assert!(
        tasks
            .iter()
            .any(|t| t["provenance"]["site"]["line"].as_u64() > Some(200))
    );

    std::fs::write(maps.join("munch-4.0.0.json"), "{not json").unwrap();
    let out = task_gen(&["--budget", "5", "--line-maps", maps_arg, &corpus]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("munch-4.0.0.json"),
        "{}",
        stderr(&out)
    );
}
