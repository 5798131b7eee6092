//! `task-gen` as a command: determinism, splits, distinct edits, bad input.
//! Needs `just setup`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

mod support;
use support::{corpus, records, task_gen};

/// Repo id → split, from the corpus.
fn splits() -> HashMap<String, String> {
    std::fs::read_to_string(corpus())
        .unwrap()
        .lines()
        .map(|line| {
            let repo: Value = serde_json::from_str(line).unwrap();
            (
                repo["id"].as_str().unwrap().to_string(),
                repo["split"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_output_and_another_seed_differs() {
    let c = corpus();
    let run = |seed: &str| task_gen(&["--budget", "30", "--seed", seed, &c]);
    let (a, b, other) = (run("3"), run("3"), run("4"));
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(records(&a.stdout).len(), 30);
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, other.stdout);
}

#[test]
fn the_corpus_is_read_from_the_argument_or_the_shared_corpus_flags_alike() {
    let c = corpus();
    let workdir = support::workdir();
    let run = |args: &[&str]| task_gen(&[&["--budget", "10", "--seed", "2"], args].concat());
    let positional = run(&[&c]);
    let flag = run(&["--corpus", &c]);
    let from_workdir = run(&["--workdir", workdir.to_str().unwrap()]);
    assert!(
        positional.status.success(),
        "{}",
        String::from_utf8_lossy(&positional.stderr)
    );
    assert_eq!(records(&positional.stdout).len(), 10);
    assert_eq!(flag.stdout, positional.stdout);
    assert_eq!(from_workdir.stdout, positional.stdout);
    assert_eq!(run(&["--corpus", &c, &c]).status.code(), Some(2));
}

#[test]
fn candidates_are_distinct_edits_of_training_repositories_only() {
    let out = task_gen(&["--budget", "200", "--seed", "1", &corpus()]);
    assert!(out.status.success());
    let tasks = records(&out.stdout);
    assert_eq!(tasks.len(), 200);
    let splits = splits();
    let mut ids = HashSet::new();
    let mut edits = HashSet::new();
    for task in &tasks {
        assert_eq!(task["schema"], "task/1");
        assert_eq!(splits[task["repo"].as_str().unwrap()], "train");
        assert!(ids.insert(task["instance_id"].to_string()));
        let site = &task["provenance"]["site"];
        assert!(edits.insert((
            task["repo"].to_string(),
            site["path"].to_string(),
            site["edit"].to_string()
        )));
        assert_eq!(task["provenance"]["strategy"], "random");
        assert!(task["bug_patch"].as_str().unwrap().starts_with("--- a/"));
        assert!(task["FAIL_TO_PASS"].as_array().unwrap().is_empty());
        assert!(!task["test_cmd"].as_str().unwrap().is_empty());
    }
}

#[test]
fn split_test_draws_from_held_out_repositories_only() {
    let out = task_gen(&["--budget", "20", "--split", "test", &corpus()]);
    assert!(out.status.success());
    let splits = splits();
    for task in records(&out.stdout) {
        assert_eq!(splits[task["repo"].as_str().unwrap()], "test");
    }
}

#[test]
fn operators_restricts_the_set_and_stats_counts_them() {
    let out = task_gen(&[
        "--budget",
        "10",
        "--operators",
        "cmp-swap,return-remove",
        "--stats",
        &corpus(),
    ]);
    assert!(out.status.success());
    for task in records(&out.stdout) {
        let op = task["provenance"]["operator"].as_str().unwrap();
        assert!(op == "cmp-swap" || op == "return-remove", "{op}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("10 candidates"), "{stderr}");
    assert!(stderr.contains("per operator:") && stderr.contains("per repository:"));
}

#[test]
fn budget_zero_and_unknown_operators_are_usage_errors() {
    let out = task_gen(&["--budget", "0", &corpus()]);
    assert_eq!(out.status.code(), Some(2));
    let out = task_gen(&[
        "--budget",
        "5",
        "--operators",
        "cmp-swap,no-such-op",
        &corpus(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-op") && stderr.contains("var-misuse"),
        "{stderr}"
    );
}

/// A corpus of one training repository under `dir` whose root is `root`.
fn one_repo_corpus(dir: &Path, root: &str) -> PathBuf {
    let line = std::fs::read_to_string(corpus())
        .unwrap()
        .lines()
        .find(|l| l.contains("\"split\":\"train\""))
        .unwrap()
        .to_string();
    let mut repo: Value = serde_json::from_str(&line).unwrap();
    repo["root"] = root.into();
    repo["src_dirs"] = serde_json::json!(["pkg"]);
    let path = dir.join("corpus.jsonl");
    std::fs::write(&path, format!("{repo}\n")).unwrap();
    path
}

#[test]
fn a_missing_repository_names_just_setup() {
    let dir = tempfile::tempdir().unwrap();
    let path = one_repo_corpus(dir.path(), "repos/missing");
    let out = task_gen(&["--budget", "5", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("just setup"), "{stderr}");
}

#[test]
fn a_file_that_does_not_parse_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("repo/pkg");
    std::fs::create_dir_all(pkg.join("tests")).unwrap();
    std::fs::write(pkg.join("broken.py"), "def f(:\n    return 1\n").unwrap();
    std::fs::write(pkg.join("good.py"), "def f(a, b):\n    return a < b\n").unwrap();
    std::fs::write(
        pkg.join("tests/test_good.py"),
        "def test(a):\n    assert a < 1\n",
    )
    .unwrap();
    let path = one_repo_corpus(dir.path(), "repo");
    let out = task_gen(&["--budget", "10", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("broken.py"), "{stderr}");
    let tasks = records(&out.stdout);
    assert!(!tasks.is_empty());
    for task in &tasks {
        assert_eq!(task["provenance"]["site"]["path"], "pkg/good.py");
    }
}

fn operator_counts(tasks: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for task in tasks {
        let op = task["provenance"]["operator"].as_str().unwrap().to_string();
        *counts.entry(op).or_insert(0) += 1;
    }
    counts
}

#[test]
fn operator_weights_set_the_mix_and_keep_the_output_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let mix = dir.path().join("mix.toml");
    std::fs::write(
        &mix,
        "[operators]\nvar-misuse = 3\ncmp-swap = 1\nif-invert = 0\n",
    )
    .unwrap();
    let (c, m) = (corpus(), mix.to_str().unwrap().to_string());
    let run = |seed: &str| {
        task_gen(&[
            "--budget",
            "200",
            "--seed",
            seed,
            "--operator-weights",
            &m,
            &c,
        ])
    };
    let (a, b) = (run("5"), run("5"));
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(a.stdout, b.stdout);
    let counts = operator_counts(&records(&a.stdout));
    assert_eq!(counts.values().sum::<usize>(), 200);
    assert_eq!(counts.len(), 2, "{counts:?}");
    // 3:1 in expectation: 150 of 200, sd ~6.
    let misuse = counts["var-misuse"];
    assert!((125..=175).contains(&misuse), "{counts:?}");

    // --operators narrows the weighted set further.
    let out = task_gen(&[
        "--budget",
        "10",
        "--operators",
        "cmp-swap,if-invert",
        "--operator-weights",
        &m,
        &c,
    ]);
    assert!(out.status.success());
    assert_eq!(
        operator_counts(&records(&out.stdout))
            .keys()
            .collect::<Vec<_>>(),
        ["cmp-swap"]
    );
}

#[test]
fn a_bad_weights_file_is_a_usage_error_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let mix = dir.path().join("mix.toml");
    std::fs::write(&mix, "[operators]\ncmp-swap = 1\nvar-misuse = -2\n").unwrap();
    let m = mix.to_str().unwrap();
    let out = task_gen(&["--budget", "5", "--operator-weights", m, &corpus()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{m}:3: field operators.var-misuse:")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // Weights that leave none of --operators: also a usage error.
    std::fs::write(&mix, "[operators]\ncmp-swap = 1\n").unwrap();
    let out = task_gen(&[
        "--budget",
        "5",
        "--operators",
        "if-invert",
        "--operator-weights",
        m,
        &corpus(),
    ]);
    assert_eq!(out.status.code(), Some(2));

    let out = task_gen(&[
        "--budget",
        "5",
        "--operator-weights",
        "/no/such/mix.toml",
        &corpus(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/mix.toml"));
}
