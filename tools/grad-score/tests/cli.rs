//! `grad-score` as a command on real tasks with a micro checkpoint: a task identical to the
//! target scores at the top, scores repeat for a seed, a saved target is reused, a target of
//! the tasks ranked wrong, a target per bug family and a keep in its mix, and bad input is
//! refused. Needs `just setup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use schemas::{Record, Score, Task};
use solver::config::ModelConfig;
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

fn eval_tasks(n: usize) -> Vec<Task> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/eval/eval-set.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .take(n)
        .map(|line| Task::from_value(serde_json::from_str(line).unwrap()).unwrap())
        .collect()
}

/// A micro checkpoint with seeded random weights, its tokenizer trained on `text`.
fn micro_checkpoint(dir: &Path, name: &str, text: &str) -> PathBuf {
    use burn::tensor::backend::Backend;
    static SEEDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SEEDING.lock().unwrap();
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    let tokenizer = SolverTokenizer::train(std::iter::repeat_n(text, 100), 300).unwrap();
    let config = ModelConfig::micro(tokenizer.vocab_size());
    std::fs::write(out.join("config.json"), config.to_json()).unwrap();
    tokenizer.save(&out.join("tokenizer.json")).unwrap();
    solver::Backend::seed(&solver::device(), 5);
    let model = Solver::<solver::Backend>::new(&config, &solver::device());
    solver::checkpoint::save_weights(&model, &out.join("model.safetensors")).unwrap();
    out
}

fn write_tasks(dir: &Path, name: &str, tasks: &[Task]) -> PathBuf {
    let path = dir.join(name);
    let text: String = tasks.iter().map(|t| t.to_json_line() + "\n").collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn grad_score(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grad-score"))
        .args(args)
        .env("SOCRATIC_WORKDIR", workdir())
        .output()
        .unwrap()
}

fn scores(output: &Output) -> Vec<Score> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| Score::from_value(serde_json::from_str(line).unwrap()).unwrap())
        .collect()
}

#[test]
fn a_task_like_the_target_scores_first_and_scores_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = micro_checkpoint(dir.path(), "micro", "def f(a, b):\n    return a < b\n");
    let tasks = eval_tasks(6);
    let target = write_tasks(dir.path(), "target.jsonl", &tasks[2..3]);
    let valid = write_tasks(dir.path(), "valid.jsonl", &tasks);
    let kept = dir.path().join("kept.jsonl");
    let saved = dir.path().join("target.json");
    let ckpt = checkpoint.to_str().unwrap();
    let first = scores(&grad_score(&[
        "--checkpoint",
        ckpt,
        "--target",
        target.to_str().unwrap(),
        "--target-out",
        saved.to_str().unwrap(),
        "--dim",
        "1024",
        "--keep-top",
        "1",
        "--kept",
        kept.to_str().unwrap(),
        valid.to_str().unwrap(),
    ]));
    assert_eq!(first.len(), 6);
    assert!(first.iter().all(|s| s.valid && s.grad_norm > 0.0));
    assert!(
        (first[2].alignment - 1.0).abs() < 1e-9,
        "{}",
        first[2].alignment
    );
    assert!(
        first
            .iter()
            .enumerate()
            .all(|(i, s)| i == 2 || s.alignment < 0.999)
    );
    let kept_tasks = std::fs::read_to_string(&kept).unwrap();
    assert_eq!(kept_tasks.lines().count(), 1);
    assert!(kept_tasks.contains(&tasks[2].instance_id));

    // The saved target, and one task at a time instead of one per core: the same scores.
    let again = scores(&grad_score(&[
        "--checkpoint",
        ckpt,
        "--target-in",
        saved.to_str().unwrap(),
        "--dim",
        "1024",
        "--jobs",
        "1",
        valid.to_str().unwrap(),
    ]));
    assert_eq!(again, first);

    // Two shards scored apart, merged, then kept by `keep`: the unsharded run's scores and
    // kept tasks.
    let mut merged = Vec::new();
    for shard in ["0/2", "1/2"] {
        merged.extend(scores(&grad_score(&[
            "--checkpoint",
            ckpt,
            "--target-in",
            saved.to_str().unwrap(),
            "--dim",
            "1024",
            "--shard",
            shard,
            valid.to_str().unwrap(),
        ])));
    }
    merged.sort_by_key(|s| first.iter().position(|f| f.instance_id == s.instance_id));
    assert_eq!(merged, first);
    let merged_path = dir.path().join("merged.jsonl");
    let text: String = merged.iter().map(|s| s.to_json_line() + "\n").collect();
    std::fs::write(&merged_path, text).unwrap();
    let kept_again = dir.path().join("kept-again.jsonl");
    let out = grad_score(&[
        "keep",
        "--scores",
        merged_path.to_str().unwrap(),
        "--keep-top",
        "1",
        "-o",
        kept_again.to_str().unwrap(),
        valid.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&kept_again).unwrap(), kept_tasks);

    // A target saved with another tokenizer does not compare.
    let other = micro_checkpoint(dir.path(), "other", "x = [i * 2 for i in range(9)]\n");
    let out = grad_score(&[
        "--checkpoint",
        other.to_str().unwrap(),
        "--target-in",
        saved.to_str().unwrap(),
        "--dim",
        "1024",
        valid.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another tokenizer"));
}

#[test]
fn a_target_the_solver_never_fails_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = micro_checkpoint(dir.path(), "micro", "def f(a, b):\n    return a < b\n");
    let tasks = eval_tasks(2);
    let target = write_tasks(dir.path(), "target.jsonl", &tasks);
    let traces: String = tasks
        .iter()
        .map(|t| {
            format!(
                "{{\"schema\":\"trace/1.1\",\"trace_id\":\"{id}-s0\",\"instance_id\":\"{id}\",\
                 \"solver\":{{\"name\":\"model:x\"}},\"outcome\":{{\"resolved\":true,\
                 \"f2p_passed\":1,\"f2p_total\":1,\"p2p_failed\":0,\"p2p_total\":0}}}}\n",
                id = t.instance_id
            )
        })
        .collect();
    let traces_path = dir.path().join("traces.jsonl");
    std::fs::write(&traces_path, traces).unwrap();
    let out = grad_score(&[
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        "--target-traces",
        traces_path.to_str().unwrap(),
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fails none of the 2 target tasks"),
        "{stderr}"
    );
}

#[test]
fn ranks_make_the_target_of_the_tasks_whose_gold_repair_is_not_first() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = micro_checkpoint(dir.path(), "micro", "def f(a, b):\n    return a < b\n");
    let tasks = eval_tasks(3);
    let target = write_tasks(dir.path(), "target.jsonl", &tasks);
    let rank = |id: &str, better: usize, ties: usize| {
        format!(
            "{{\"instance_id\":\"{id}\",\"family\":\"operator\",\"better\":{better},\"ties\":{ties}}}\n"
        )
    };
    let ranks_path = dir.path().join("ranks.jsonl");
    let score_with = |ranks: &str| {
        std::fs::write(&ranks_path, ranks).unwrap();
        grad_score(&[
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
            "--target-ranks",
            ranks_path.to_str().unwrap(),
            target.to_str().unwrap(),
        ])
    };
    // First alone, tied for first, and left out (unreachable): the last two are the target.
    let ranks = rank(&tasks[0].instance_id, 0, 0) + &rank(&tasks[1].instance_id, 0, 1);
    let out = score_with(&ranks);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(scores(&out).iter().all(|s| s.target_id.ends_with("-n2")));

    let all_first: String = tasks.iter().map(|t| rank(&t.instance_id, 0, 0)).collect();
    let out = score_with(&all_first);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ranks the gold repair first for all 3"),
        "{stderr}"
    );

    let out = score_with("{\"instance_id\": 3}\n");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ranks.jsonl:1:"), "{stderr}");
}

#[test]
fn by_family_each_task_meets_its_own_familys_failures_and_keep_follows_their_mix() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = micro_checkpoint(dir.path(), "micro", "def f(a, b):\n    return a < b\n");
    // Tasks 0, 1 and 2 are data-flow bugs, 5 an operator bug, 7 a constant bug.
    let all = eval_tasks(8);
    let target: Vec<Task> = [0, 5, 7].iter().map(|&i| all[i].clone()).collect();
    let target_path = write_tasks(dir.path(), "target.jsonl", &target);
    let saved = dir.path().join("target.json");
    let scored = |extra: &[&str]| {
        let mut args = vec![
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--target",
            target_path.to_str().unwrap(),
            "--target-out",
            saved.to_str().unwrap(),
            target_path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        scores(&grad_score(&args))
    };
    // Each target task is its family's only failure: by family, it meets its own gradient.
    for score in scored(&["--by-family"]) {
        assert!((score.alignment - 1.0).abs() < 1e-6, "{score:?}");
    }
    assert!(scored(&[]).iter().any(|s| s.alignment < 0.99));
    let target_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let families = target_json["families"].as_object().unwrap();
    assert_eq!(families.len(), 3, "{families:?}");

    // Keep 3 of 5 (three data-flow tasks, one operator, one constant) in the target's mix of
    // one failure per family: one task of each family, though data-flow ones score higher.
    let pool: Vec<Task> = [0, 1, 2, 5, 7].iter().map(|&i| all[i].clone()).collect();
    let pool_path = write_tasks(dir.path(), "pool.jsonl", &pool);
    let score_path = dir.path().join("scores.jsonl");
    let lines: String = pool
        .iter()
        .zip([0.9, 0.8, 0.7, 0.1, 0.0])
        .map(|(t, r)| {
            format!(
                "{{\"schema\":\"score/1\",\"instance_id\":\"{}\",\"valid\":true,\
                 \"alignment\":{r},\"reward\":{r},\"grad_norm\":1,\"target_id\":\"t\"}}\n",
                t.instance_id
            )
        })
        .collect();
    std::fs::write(&score_path, lines).unwrap();
    let kept = grad_score(&[
        "keep",
        "--scores",
        score_path.to_str().unwrap(),
        "--mix-of",
        saved.to_str().unwrap(),
        "--keep-top",
        "3",
        pool_path.to_str().unwrap(),
    ]);
    assert!(
        kept.status.success(),
        "{}",
        String::from_utf8_lossy(&kept.stderr)
    );
    let ids: Vec<String> = String::from_utf8_lossy(&kept.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["instance_id"].to_string())
        .collect();
    let want: Vec<String> = [0, 5, 7]
        .iter()
        .map(|&i| format!("\"{}\"", all[i].instance_id))
        .collect();
    assert_eq!(ids, want);
}

/// Overwrites the first float tensor of a safetensors file with NaN, in place.
fn poison_first_tensor(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let (_, tensor) = header
        .as_object()
        .unwrap()
        .iter()
        .find(|(name, t)| *name != "__metadata__" && t["dtype"] == "F32")
        .expect("a float tensor");
    let start = 8 + header_len + tensor["data_offsets"][0].as_u64().unwrap() as usize;
    let end = 8 + header_len + tensor["data_offsets"][1].as_u64().unwrap() as usize;
    for value in bytes[start..end].chunks_exact_mut(4) {
        value.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_checkpoint_with_nan_weights_is_refused_naming_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = micro_checkpoint(dir.path(), "micro", "def f(a, b):\n    return a < b\n");
    poison_first_tensor(&checkpoint.join("model.safetensors"));
    let tasks = eval_tasks(2);
    let target = write_tasks(dir.path(), "target.jsonl", &tasks);
    let output = dir.path().join("scores.jsonl");
    let out = grad_score(&[
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
        target.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not finite") && stderr.contains(&tasks[0].instance_id),
        "{stderr}"
    );
    assert!(!output.exists(), "no scores are written");
}

#[test]
fn projected_cosines_of_real_gradients_match_the_exact_ones_within_0_03() {
    use grad_score::project::{Projector, cosine};
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = micro_checkpoint(dir.path(), "micro", "def f(a, b):\n    return a < b\n");
    let loaded =
        solver::checkpoint::load::<solver::TrainBackend>(&checkpoint, &solver::device()).unwrap();
    let tasks = eval_tasks(4);
    let corpus = workdir().join("corpus.jsonl");
    let built = solver::tasks::build_examples(&tasks, &corpus, &Default::default()).unwrap();
    let budget = solver::data::Budget::default();
    let gradients: Vec<Vec<f32>> = built
        .examples
        .iter()
        .map(|e| {
            let encoded = solver::data::encode(e, &loaded.tokenizer, &budget, &loaded.config);
            solver::gradient::example_gradient(
                &loaded.model,
                &encoded,
                &loaded.config,
                loaded.tokenizer.pad,
                16,
                &Default::default(),
            )
            .unwrap()
        })
        .collect();
    assert!(gradients.len() >= 3);
    let projector = Projector {
        dim: 8192,
        nonzeros: 4,
        seed: 0,
    };
    let wide = |g: &[f32]| g.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    for i in 0..gradients.len() {
        for j in i + 1..gradients.len() {
            let exact = cosine(&wide(&gradients[i]), &wide(&gradients[j]));
            let projected = cosine(
                &projector.project(&gradients[i]),
                &projector.project(&gradients[j]),
            );
            assert!(
                (exact - projected).abs() < 0.03,
                "tasks {i}, {j}: exact {exact:.4}, projected {projected:.4}"
            );
        }
    }
}

/// `micro_checkpoint` trained for a few next-token steps, with the optimizer state that
/// solver-train saves in `resume/`.
fn trained_micro_checkpoint(dir: &Path, name: &str, text: &str) -> PathBuf {
    use solver::train::{Objective, TrainOptions, TrainState, train};
    let out = micro_checkpoint(dir, name, text);
    let loaded = solver::checkpoint::load::<solver::TrainBackend>(&out, &solver::device()).unwrap();
    let tokens = loaded.tokenizer.encode(&text.repeat(8));
    let chunks: Vec<Vec<u32>> = tokens.chunks(16).map(<[u32]>::to_vec).collect();
    let options = TrainOptions {
        steps: 3,
        batch_size: 2,
        warmup: 0,
        ..TrainOptions::default()
    };
    let mut state = TrainState::fresh(loaded.model, &options);
    train(
        &mut state,
        &Objective::Language { chunks },
        &loaded.config,
        &options,
        loaded.tokenizer.pad,
        |_, _| Ok(()),
    )
    .unwrap();
    solver::checkpoint::save_weights(&state.model, &out.join("model.safetensors")).unwrap();
    solver::checkpoint::save_resume_model(&state.model, &out).unwrap();
    state.save_optimizer(&out).unwrap();
    out
}

#[test]
fn adam_preconditioning_and_parameter_subsets_change_what_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let text = "def f(a, b):\n    return a < b\n";
    let tasks = eval_tasks(4);
    let target = write_tasks(dir.path(), "target.jsonl", &tasks[1..2]);
    let valid = write_tasks(dir.path(), "valid.jsonl", &tasks);
    let run = |checkpoint: &Path, extra: &[&str]| {
        let mut args = vec![
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--dim",
            "1024",
            valid.to_str().unwrap(),
        ];
        if !extra.contains(&"--target-in") {
            args.extend(["--target", target.to_str().unwrap()]);
        }
        args.extend_from_slice(extra);
        grad_score(&args)
    };

    let untrained = micro_checkpoint(dir.path(), "untrained", text);
    let out = run(&untrained, &["--precondition", "adam"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resume"));

    let trained = trained_micro_checkpoint(dir.path(), "trained", text);
    let plain = scores(&run(&trained, &[]));
    let adam = scores(&run(&trained, &["--precondition", "adam"]));
    assert_eq!(adam, scores(&run(&trained, &["--precondition", "adam"])));
    assert!((plain[1].alignment - 1.0).abs() < 1e-9);
    assert!(
        plain
            .iter()
            .zip(&adam)
            .all(|(p, a)| (p.alignment - a.alignment).abs() > 1e-6),
        "{plain:?}\n{adam:?}"
    );

    assert!(adam.iter().all(|s| s.extra["precondition"] == "adam"));
    assert!(plain.iter().all(|s| s.extra.is_empty()));
    // Scores made with and without preconditioning do not rank together.
    let mixed = dir.path().join("mixed.jsonl");
    let text: String = plain[..2]
        .iter()
        .chain(&adam[2..])
        .map(|s| s.to_json_line() + "\n")
        .collect();
    std::fs::write(&mixed, text).unwrap();
    let out = grad_score(&[
        "keep",
        "--scores",
        mixed.to_str().unwrap(),
        "--keep-top",
        "1",
        valid.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("precondition adam"));
    let out = grad_score(&[
        "keep",
        "--random",
        "--keep-frac",
        "1.5",
        valid.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a fraction in [0, 1]"));

    let saved = dir.path().join("target.json");
    let last = scores(&run(
        &trained,
        &[
            "--params",
            "layers.*.mlp.*",
            "--target-out",
            saved.to_str().unwrap(),
        ],
    ));
    assert!((last[1].alignment - 1.0).abs() < 1e-9);
    assert!(
        last.iter()
            .zip(&plain)
            .all(|(l, p)| l.grad_norm < p.grad_norm)
    );
    let out = run(&trained, &["--target-in", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--params 'layers.*.mlp.*'"));
    let out = run(&trained, &["--params", "decoder.*"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("layers.0.*"));
}
