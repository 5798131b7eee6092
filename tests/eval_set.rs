//! The checked-in evaluation set, `data/eval/eval-set.jsonl` (`just eval-set`): the file
//! is the one `data/eval/SHA256SUMS` pins, every line is a validated Task that satisfies
//! the checked-in JSON Schema and comes from a held-out (test-split) repository of
//! `scripts/corpus.lock.toml`, and there are at least 150 of them over at least 3
//! repositories. Needs no work directory: it reads checked-in files only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use e2e::{schema_file, workspace_root};
use schemas::AnyRecord;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn eval_dir() -> PathBuf {
    workspace_root().join("data").join("eval")
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Repo ids (`name-version`) of the held-out split.
fn held_out_repos() -> BTreeSet<String> {
    let lock: toml::Table = read(&workspace_root().join("scripts/corpus.lock.toml"))
        .parse()
        .unwrap();
    lock["repos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|repo| repo["split"].as_str() == Some("test"))
        .map(|repo| {
            format!(
                "{}-{}",
                repo["name"].as_str().unwrap(),
                repo["version"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn the_evaluation_set_is_the_file_its_hash_pins() {
    let sums = read(&eval_dir().join("SHA256SUMS"));
    let pinned: BTreeMap<&str, &str> = sums
        .lines()
        .map(|line| {
            let (hash, name) = line.split_once("  ").expect("`HASH  NAME` lines");
            (name, hash)
        })
        .collect();
    let want = pinned
        .get("eval-set.jsonl")
        .expect("SHA256SUMS pins eval-set.jsonl");
    let bytes = std::fs::read(eval_dir().join("eval-set.jsonl")).unwrap();
    let got: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        &got, want,
        "data/eval/eval-set.jsonl changed; rebuild it on purpose with `just eval-set`"
    );
}

#[test]
fn every_task_is_valid_held_out_and_there_are_enough() {
    let schema: Value = serde_json::from_str(&read(&schema_file("task"))).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let held_out = held_out_repos();
    let mut ids = BTreeSet::new();
    let mut repos = BTreeSet::new();
    let text = read(&eval_dir().join("eval-set.jsonl"));
    for (n, line) in text.lines().enumerate() {
        let at = format!("data/eval/eval-set.jsonl:{}", n + 1);
        let value: Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{at}: {err}"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{at}: {errors:?}");
        let record =
            AnyRecord::from_value(value.clone()).unwrap_or_else(|err| panic!("{at}: {err}"));
        assert_eq!(record.kind(), "task", "{at}");
        let repo = value["repo"].as_str().unwrap();
        assert!(
            held_out.contains(repo),
            "{at}: {repo} is not a held-out repository"
        );
        assert!(value["rejection"].is_null(), "{at}: a rejected candidate");
        assert!(
            !value["FAIL_TO_PASS"].as_array().unwrap().is_empty(),
            "{at}: no FAIL_TO_PASS"
        );
        assert!(
            ids.insert(value["instance_id"].to_string()),
            "{at}: duplicate id"
        );
        repos.insert(repo.to_string());
    }
    assert!(ids.len() >= 150, "{} tasks, want >= 150", ids.len());
    assert!(repos.len() >= 3, "{repos:?}, want >= 3 repositories");
}
