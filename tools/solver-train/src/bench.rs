//! `solver-train bench`: training throughput and the cost of one per-example gradient (what
//! `grad-score` pays per task), on synthetic token ids of realistic shapes.

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::tensor::backend::Backend as _;
use clap::Args;
use serde::Serialize;
use solver::config::ModelConfig;
use solver::data::EncodedExample;
use solver::gradient::{GradientView, example_gradient};
use solver::model::Solver;
use solver::train::{Objective, TrainOptions, TrainState, train};
use solver::{TrainBackend, device};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model size preset (micro, tiny, small)
    #[arg(long, default_value = "tiny")]
    pub size: String,
    #[arg(long, default_value_t = 4096)]
    pub vocab: usize,
    /// Tokens per language-model row
    #[arg(long, default_value_t = 256)]
    pub context: usize,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Timed training steps (after one untimed warm-up step)
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Parts each training step's batch is cut into, computed side by side
    #[arg(long, default_value_t = solver::train::DEFAULT_BATCH_PARTS)]
    pub batch_parts: usize,
    /// Timed per-example gradients
    #[arg(long, default_value_t = 5)]
    pub gradients: usize,
}

#[derive(Debug, Serialize)]
struct BenchResult {
    size: String,
    backend: &'static str,
    parameters: usize,
    threads: usize,
    context: usize,
    batch_size: usize,
    batch_parts: usize,
    lm_tokens_per_s: f64,
    lm_step_s: f64,
    gradient_ms: f64,
    gradient_floats: usize,
    peak_rss_mb: f64,
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Deterministic pseudo-random ids in `0..vocab`.
fn ids(n: usize, vocab: usize, salt: u64) -> Vec<u32> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ salt;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (8 + x % (vocab as u64 - 8)) as u32
        })
        .collect()
}

pub fn run(args: BenchArgs) -> Result<()> {
    let config = ModelConfig::preset(&args.size, args.vocab)?;
    let device = device();
    TrainBackend::seed(&device, 0);
    let model = Solver::<TrainBackend>::new(&config, &device);
    let parameters = model.num_params();
    let chunks: Vec<Vec<u32>> = (0..64).map(|i| ids(args.context, args.vocab, i)).collect();
    let options = TrainOptions {
        steps: args.steps + 1,
        batch_size: args.batch_size,
        batch_parts: args.batch_parts.max(1),
        ..TrainOptions::default()
    };
    let mut state = TrainState::fresh(model, &options);
    let mut timed = Vec::new();
    let mut last = Instant::now();
    train(
        &mut state,
        &Objective::Language { chunks },
        &config,
        &options,
        0,
        |m, _| {
            let now = Instant::now();
            if m.step > 1 {
                timed.push((now - last).as_secs_f64());
            }
            last = now;
            Ok(())
        },
    )?;
    let step_s = timed.iter().sum::<f64>() / timed.len().max(1) as f64;

    let example = EncodedExample {
        prompt: ids(320, args.vocab, 1000),
        candidates: (0..8).map(|c| ids(32, args.vocab, 2000 + c)).collect(),
        gold: Some(0),
        ..Default::default()
    };
    let view = GradientView::default();
    let _ = example_gradient(&state.model, &example, &config, 0, 8, &view);
    let started = Instant::now();
    let mut floats = 0;
    for _ in 0..args.gradients {
        floats =
            example_gradient(&state.model, &example, &config, 0, 8, &view).map_or(0, |g| g.len());
    }
    let gradient_ms = started.elapsed().as_secs_f64() * 1000.0 / args.gradients.max(1) as f64;

    let result = BenchResult {
        size: args.size,
        backend: if cfg!(feature = "cuda") {
            "cuda"
        } else {
            "flex (cpu)"
        },
        parameters,
        threads: stage_io::cli::cores(),
        context: args.context,
        batch_size: args.batch_size,
        batch_parts: args.batch_parts.max(1),
        lm_tokens_per_s: (args.batch_size * args.context) as f64 / step_s,
        lm_step_s: step_s,
        gradient_ms,
        gradient_floats: floats,
        peak_rss_mb: peak_rss_mb(),
    };
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
