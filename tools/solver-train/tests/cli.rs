//! `solver-train` as a command on the real corpus: init → sft → eval with the micro model,
//! exact resume, the tokenizer on repository code, and bad input. Needs `just setup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn workdir() -> PathBuf {
    let dir = std::env::var_os("SOCRATIC_WORKDIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.socratic"),
        PathBuf::from,
    );
    assert!(dir.join("corpus.jsonl").is_file(), "run `just setup` first");
    dir
}

fn corpus() -> String {
    workdir().join("corpus.jsonl").to_str().unwrap().to_string()
}

fn example(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(path)
        .to_str()
        .unwrap()
        .to_string()
}

fn solver_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_solver-train"))
        .args(args)
        .env("SOCRATIC_WORKDIR", workdir())
        .output()
        .unwrap()
}

fn ok(output: Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A micro base checkpoint, trained for a few steps.
fn base(dir: &Path) -> PathBuf {
    let out = dir.join("base");
    let args = [
        "init",
        &corpus(),
        "-o",
        out.to_str().unwrap(),
        "--size",
        "micro",
        "--vocab",
        "600",
        "--steps",
        "4",
        "--batch-size",
        "2",
        "--context",
        "64",
    ];
    let record = ok(solver_train(&args));
    assert_eq!(record["schema"], "checkpoint/1");
    assert_eq!(record["step"], 4);
    out
}

fn losses(dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["loss"]
                .as_f64()
                .unwrap()
        })
        .collect()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial") || n.contains(".old"))
        .collect()
}

#[test]
fn init_sft_and_eval_write_checkpoints_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "checkpoint.json",
        "metrics.jsonl",
    ] {
        assert!(base.join(file).is_file(), "{file}");
    }
    let tuned = dir.path().join("r1");
    let tasks = example("task.jsonl");
    let args = [
        "sft",
        "--from",
        base.to_str().unwrap(),
        &tasks,
        "-o",
        tuned.to_str().unwrap(),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--group",
        "4",
        "--eval",
        &tasks,
    ];
    let record = ok(solver_train(&args));
    assert_eq!(record["round"], 1);
    assert_eq!(record["step"], 6, "steps count from the base model");
    assert_eq!(record["parent"], base.to_str().unwrap());
    assert!(record["metrics"]["eval_top1"].as_f64().is_some());
    assert_eq!(record["data"][0]["sha256"].as_str().unwrap().len(), 64);
    // The edit-kind prior of the tuned tasks travels with the checkpoint; the base has none.
    assert!(!base.join("edit-prior.json").exists());
    let prior: Value =
        serde_json::from_str(&std::fs::read_to_string(tuned.join("edit-prior.json")).unwrap())
            .unwrap();
    let total = prior["total"].as_u64().unwrap();
    let counted: u64 = prior["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(total >= 1 && counted == total, "{prior}");
    // A new scorer scales its features; fine-tuning keeps the scaling it was trained with.
    let norm = |dir: &Path| -> Value {
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        config["feature_norm"].clone()
    };
    assert_eq!(norm(&base), solver::config::DEFAULT_FEATURE_NORM);
    assert_eq!(norm(&tuned), norm(&base));
    let before = dir.path().join("before-scaling");
    copy_dir(&base, &before);
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(before.join("config.json")).unwrap())
            .unwrap();
    config.as_object_mut().unwrap().remove("feature_norm");
    std::fs::write(before.join("config.json"), config.to_string()).unwrap();
    let tuned_before = dir.path().join("r1-before-scaling");
    let mut again = args.to_vec();
    again[2] = before.to_str().unwrap();
    again[5] = tuned_before.to_str().unwrap();
    ok(solver_train(&again));
    assert_eq!(
        norm(&tuned_before),
        Value::Null,
        "an older scorer keeps its meaning"
    );

    let summary = ok(solver_train(&[
        "eval",
        "--checkpoint",
        tuned.to_str().unwrap(),
        &tasks,
        "--prior-from",
        &tasks,
    ]));
    assert!(summary["all"]["n"].as_u64().unwrap() >= 1);
    let top1 = summary["all"]["model_top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&top1));
    assert!(summary["all"]["prior_top1"].as_f64().is_some());
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn resolved_traces_train_toward_their_own_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let out = dir.path().join("rft");
    // The imported task has no bug patch, so it gives no example of its own.
    let imported = dir.path().join("imported.jsonl");
    let line = std::fs::read_to_string(example("task.jsonl"))
        .unwrap()
        .lines()
        .find(|l| l.contains("swe-bench-import"))
        .unwrap()
        .to_string();
    std::fs::write(&imported, line + "\n").unwrap();
    // Two traces of the toolz task: one resolved it (with its gold edit), one did not.
    let tasks = example("task.jsonl");
    let toolz: Value = serde_json::from_str(
        std::fs::read_to_string(&tasks)
            .unwrap()
            .lines()
            .find(|l| l.contains("toolz-1.2.0.slice-bound.0001"))
            .unwrap(),
    )
    .unwrap();
    let mut resolved: Value = serde_json::from_str(
        std::fs::read_to_string(example("trace.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    resolved["instance_id"] = toolz["instance_id"].clone();
    resolved["trace_id"] = "resolved".into();
    resolved["patch"] = toolz["gold_patch"].clone();
    let mut failed = resolved.clone();
    failed["trace_id"] = "failed".into();
    failed["outcome"]["resolved"] = false.into();
    let traces_path = dir.path().join("traces.jsonl");
    std::fs::write(&traces_path, format!("{resolved}\n{failed}\n")).unwrap();
    let traces = traces_path.to_str().unwrap().to_string();
    let sft = |extra: &[&str]| {
        let mut args = vec![
            "sft",
            "--from",
            base.to_str().unwrap(),
            imported.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--group",
            "4",
        ];
        args.extend(extra);
        solver_train(&args)
    };

    let alone = sft(&[]);
    assert_eq!(alone.status.code(), Some(2), "{}", stderr(&alone));

    let record = ok(sft(&["--traces", &traces, "--trace-tasks", &tasks]));
    assert_eq!(record["metrics"]["trace_examples"], 1.0);
    let data: Vec<&str> = record["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(data, [imported.to_str().unwrap(), &traces, &tasks]);
    assert_eq!(losses(&out).len(), 2);

    let unknown = sft(&["--traces", &traces]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("toolz-1.2.0.slice-bound.0001")
            && stderr(&unknown).contains("--trace-tasks"),
        "{}",
        stderr(&unknown)
    );
    let negative = sft(&[
        "--traces",
        &traces,
        "--trace-tasks",
        &tasks,
        "--trace-weight=-1",
    ]);
    assert_eq!(negative.status.code(), Some(2), "{}", stderr(&negative));
}

#[test]
fn a_run_split_with_stop_after_and_resume_matches_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--size",
        "micro",
        "--vocab",
        "600",
        "--steps",
        "6",
        "--batch-size",
        "2",
        "--context",
        "64",
        "--seed",
        "3",
    ];
    let whole = dir.path().join("whole");
    let corpus = corpus();
    let mut args = vec!["init", corpus.as_str(), "-o", whole.to_str().unwrap()];
    args.extend(common);
    ok(solver_train(&args));

    let split = dir.path().join("split");
    let mut first = vec![
        "init",
        corpus.as_str(),
        "-o",
        split.to_str().unwrap(),
        "--stop-after",
        "3",
    ];
    first.extend(common);
    assert_eq!(ok(solver_train(&first))["step"], 3);
    let mut second = vec![
        "init",
        corpus.as_str(),
        "-o",
        split.to_str().unwrap(),
        "--resume",
        split.to_str().unwrap(),
    ];
    second.extend(common);
    assert_eq!(ok(solver_train(&second))["step"], 6);
    assert_eq!(losses(&split), losses(&whole));
}

/// A short `sft` of the feature scorer from `from` on `tasks` into `out`, with `extra` flags.
fn features_sft(from: &Path, tasks: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "sft",
        "--from",
        from.to_str().unwrap(),
        tasks,
        "-o",
        out.to_str().unwrap(),
        "--scorer",
        "features",
        "--steps",
        "6",
        "--batch-size",
        "2",
        "--group",
        "4",
        "--lr",
        "0.5",
        "--seed",
        "2",
    ];
    args.extend(extra);
    solver_train(&args)
}

/// `--anchor` pulls the scorer back toward the checkpoint the run started from, also when the
/// run is split: the second half pulls toward the first half's parent, not toward itself.
#[test]
fn an_anchored_sft_split_with_resume_matches_one_anchored_run() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let tasks = example("task.jsonl");
    let sft = |out: &Path, extra: &[&str]| features_sft(&base, &tasks, out, extra);
    let free = dir.path().join("free");
    ok(sft(&free, &[]));
    let whole = dir.path().join("whole");
    ok(sft(&whole, &["--anchor", "1.5"]));
    assert_ne!(losses(&whole), losses(&free), "the anchor changes the run");

    let split = dir.path().join("split");
    ok(sft(&split, &["--anchor", "1.5", "--stop-after", "3"]));
    let resumed = ok(sft(
        &split,
        &["--anchor", "1.5", "--resume", split.to_str().unwrap()],
    ));
    assert_eq!(resumed["parent"], base.to_str().unwrap());
    assert_eq!(losses(&split), losses(&whole));

    let negative = sft(&dir.path().join("bad"), &["--anchor=-1"]);
    assert_eq!(negative.status.code(), Some(2), "{}", stderr(&negative));
    assert!(
        stderr(&negative).contains("--anchor"),
        "{}",
        stderr(&negative)
    );

    // Holding the edit-kind prior changes the anchored run, and needs an anchor.
    let held = dir.path().join("held");
    ok(sft(&held, &["--anchor", "1.5", "--hold-edit-prior"]));
    assert_ne!(losses(&held), losses(&whole), "the hold changes the run");
    let unanchored = sft(&dir.path().join("unanchored"), &["--hold-edit-prior"]);
    assert_eq!(unanchored.status.code(), Some(2), "{}", stderr(&unanchored));
    assert!(
        stderr(&unanchored).contains("--anchor"),
        "{}",
        stderr(&unanchored)
    );
}

/// `--problem-table` gives the problem statement's features rows of their own: the checkpoint
/// records them, resumes and ranks with them, and `--hold-shared-table` needs them.
#[test]
fn a_problem_table_is_recorded_resumes_and_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let tasks = example("task.jsonl");
    let sft = |out: &Path, extra: &[&str]| {
        features_sft(&base, &tasks, out, &[&["--anchor", "1.5"], extra].concat())
    };
    let shared = dir.path().join("shared");
    ok(sft(&shared, &[]));
    let table = ["--problem-table", "64", "--hold-shared-table"];
    let whole = dir.path().join("whole");
    ok(sft(&whole, &table));
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["problem_buckets"], 64);
    assert_ne!(losses(&whole), losses(&shared), "the table changes the run");

    // Resumed, the second half anchors to the parent given the same (empty) table.
    let split = dir.path().join("split");
    ok(sft(&split, &[&table[..], &["--stop-after", "3"]].concat()));
    let resume = ["--resume", split.to_str().unwrap()];
    ok(sft(&split, &[&table[..], &resume].concat()));
    assert_eq!(losses(&split), losses(&whole));

    let summary = ok(solver_train(&[
        "eval",
        "--checkpoint",
        whole.to_str().unwrap(),
        &tasks,
    ]));
    assert!(summary["all"]["n"].as_u64().unwrap() >= 1);

    for (name, args, says) in [
        ("unheld", vec!["--hold-shared-table"], "--problem-table"),
        ("empty", vec!["--problem-table", "0"], "ROWS > 0"),
    ] {
        let out = sft(&dir.path().join(name), &args);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{name}: {}", stderr(&out));
    }
    let resized = features_sft(
        &whole,
        &tasks,
        &dir.path().join("resized"),
        &["--problem-table", "32"],
    );
    assert_eq!(resized.status.code(), Some(2), "{}", stderr(&resized));
    assert!(stderr(&resized).contains("64 rows"), "{}", stderr(&resized));

    // A run started without a table does not take one when resumed.
    let plain = dir.path().join("plain");
    ok(sft(&plain, &["--stop-after", "3"]));
    let resume = ["--resume", plain.to_str().unwrap(), "--problem-table", "64"];
    let added = sft(&plain, &resume);
    assert_eq!(added.status.code(), Some(2), "{}", stderr(&added));
    assert!(
        stderr(&added).contains("no problem table"),
        "{}",
        stderr(&added)
    );
}

#[test]
fn the_tokenizer_round_trips_repository_code() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let tokenizer = solver::tokenizer::SolverTokenizer::load(&base.join("tokenizer.json")).unwrap();
    let repos = workdir().join("repos");
    let mut checked = 0;
    for entry in walk(&repos)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .take(40)
    {
        let text = std::fs::read_to_string(&entry).unwrap();
        assert_eq!(
            tokenizer.decode(&tokenizer.encode(&text)),
            text,
            "{}",
            entry.display()
        );
        checked += 1;
    }
    assert!(checked >= 10);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn bad_checkpoints_and_task_files_exit_2_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let out = dir.path().join("out");
    let tasks = example("task.jsonl");
    let sft = |from: &Path, tasks: &str| {
        solver_train(&[
            "sft",
            "--from",
            from.to_str().unwrap(),
            tasks,
            "-o",
            out.to_str().unwrap(),
            "--steps",
            "1",
        ])
    };

    let missing = sft(&dir.path().join("nope"), &tasks);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no such checkpoint directory"),
        "{}",
        stderr(&missing)
    );

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let result = sft(&base, empty.to_str().unwrap());
    assert_eq!(result.status.code(), Some(2), "{}", stderr(&result));

    let mismatched = dir.path().join("mismatched");
    copy_dir(&base, &mismatched);
    let config = std::fs::read_to_string(mismatched.join("config.json")).unwrap();
    std::fs::write(
        mismatched.join("config.json"),
        config.replace("\"hidden_size\": 32", "\"hidden_size\": 48"),
    )
    .unwrap();
    let result = sft(&mismatched, &tasks);
    assert_eq!(result.status.code(), Some(2));
    assert!(
        stderr(&result).contains("do not fit the config"),
        "{}",
        stderr(&result)
    );

    let corrupt = dir.path().join("corrupt");
    copy_dir(&base, &corrupt);
    std::fs::write(
        corrupt.join("model.safetensors"),
        b"\x10\x00\x00\x00\x00\x00\x00\x00{not json",
    )
    .unwrap();
    let result = sft(&corrupt, &tasks);
    assert_eq!(result.status.code(), Some(2));
    assert!(
        stderr(&result).contains("model.safetensors"),
        "{}",
        stderr(&result)
    );

    assert!(!out.exists(), "no checkpoint directory after a failure");
    assert!(leftovers(dir.path()).is_empty());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}
