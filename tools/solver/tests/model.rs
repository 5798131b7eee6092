//! The model's contract: it learns, it saves and loads exactly, it resumes exactly, and it
//! reads weights written in the Hugging Face layout by something other than itself.

use std::collections::HashMap;

use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use solver::batch::{HostBatch, Row};
use solver::checkpoint;
use solver::config::ModelConfig;
use solver::data::EncodedExample;
use solver::model::Solver;
use solver::train::{Objective, OptimizerKind, TrainOptions, TrainState, gold_ranks, train};
use solver::{Backend, TrainBackend, device};

fn tiny() -> ModelConfig {
    ModelConfig {
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        ..ModelConfig::tiny(48)
    }
}

fn logits(model: &Solver<Backend>, config: &ModelConfig) -> Vec<f32> {
    let batch = HostBatch::new(
        vec![Row::text(vec![3, 9, 4, 17, 5]), Row::text(vec![7, 8])],
        0,
    );
    let input = batch.to_input::<Backend>(config, &device());
    model.logits(&input).into_data().to_vec().unwrap()
}

/// Copy task: the prompt holds a token; the gold candidate repeats it, the others do not.
fn copy_examples(n: usize) -> Vec<EncodedExample> {
    (0..n)
        .map(|i| {
            let key = 10 + (i % 20) as u32;
            let candidates = (0..6)
                .map(|c| vec![4, 10 + ((i + c * 3) % 20) as u32, 7])
                .collect();
            EncodedExample {
                prompt: vec![2, 30, key, 31, 3],
                candidates,
                gold: Some(0),
                ..Default::default()
            }
        })
        .collect()
}

fn ranking(examples: Vec<EncodedExample>) -> Objective {
    let weights = vec![1.0; examples.len()];
    Objective::Ranking {
        examples,
        weights,
        group: 6,
        nll_weight: 0.1,
    }
}

fn run(
    state: &mut TrainState<TrainBackend>,
    objective: &Objective,
    config: &ModelConfig,
    options: &TrainOptions,
) -> Vec<f64> {
    let mut losses = Vec::new();
    train(state, objective, config, options, 0, |m, _| {
        losses.push(m.loss);
        Ok(())
    })
    .unwrap();
    losses
}

#[test]
fn ranking_loss_falls_and_the_gold_edit_rises_to_the_top() {
    let config = tiny();
    let examples = copy_examples(40);
    let options = TrainOptions {
        steps: 120,
        batch_size: 8,
        lr: 1e-2,
        warmup: 10,
        ..TrainOptions::default()
    };
    let mut state = TrainState::fresh(Solver::<TrainBackend>::new(&config, &device()), &options);
    let losses = run(&mut state, &ranking(examples.clone()), &config, &options);
    let head: f64 = losses[..10].iter().sum::<f64>() / 10.0;
    let tail: f64 = losses[losses.len() - 10..].iter().sum::<f64>() / 10.0;
    assert!(tail < head * 0.5, "loss {head:.3} -> {tail:.3}");
    let model = state.model.valid();
    let ranks = gold_ranks(&model, &examples, &config, 0, 64);
    let top1 = ranks.iter().filter(|r| **r == Some(0)).count();
    assert!(
        top1 * 10 >= examples.len() * 8,
        "top-1 {top1}/{}",
        examples.len()
    );
}

/// Features only: the gold candidate carries feature 5 (and noise), the others 6 or 7.
fn feature_examples() -> Vec<EncodedExample> {
    (0..40)
        .map(|i| EncodedExample {
            candidates: vec![Vec::new(); 5],
            features: (0..5)
                .map(|c| {
                    let kind = if c == i % 5 { 5 } else { 6 + (c as u32 % 2) };
                    vec![(kind, 1.0), (100 + (i * 7 + c) as u32 % 50, 1.0)]
                })
                .collect(),
            gold: Some(i % 5),
            ..Default::default()
        })
        .collect()
}

#[test]
fn a_feature_scorer_learns_without_the_language_model() {
    for (optimizer, lr) in [
        (OptimizerKind::Adam, 0.05),
        (OptimizerKind::AdaGrad, 0.05),
        (OptimizerKind::Sgd, 1.0),
    ] {
        feature_scorer_learns(optimizer, lr);
    }
}

fn feature_scorer_learns(optimizer: OptimizerKind, lr: f64) {
    let mut config = tiny();
    config.ranker = Some(solver::config::RankerTerms::FEATURES);
    let examples = feature_examples();
    let model = Solver::<TrainBackend>::new(&config, &device());
    let before = gold_ranks(&model.valid(), &examples, &config, 0, 8);
    assert!(
        before.iter().filter(|r| **r == Some(0)).count() < 40,
        "untrained features tie every candidate"
    );
    let options = TrainOptions {
        steps: 60,
        lr,
        optimizer,
        ..TrainOptions::default()
    };
    let mut state = TrainState::fresh(model, &options);
    let objective = Objective::Ranking {
        examples: examples.clone(),
        weights: vec![1.0; 40],
        group: 5,
        nll_weight: 0.1,
    };
    train(&mut state, &objective, &config, &options, 0, |_, _| Ok(())).unwrap();
    let after = gold_ranks(&state.model.valid(), &examples, &config, 0, 8);
    assert!(
        after.iter().all(|r| *r == Some(0)),
        "{optimizer:?}: {after:?}"
    );
    let scale: Vec<f32> = state
        .model
        .edit_head
        .lm_scale
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(
        scale,
        [1.0],
        "the unused language-model scale is not trained"
    );
}

/// A features-only scorer, its ranking objective over [`feature_examples`] and its start.
fn feature_training() -> (
    ModelConfig,
    Vec<EncodedExample>,
    Objective,
    Solver<TrainBackend>,
) {
    let mut config = tiny();
    config.ranker = Some(solver::config::RankerTerms::FEATURES);
    let examples = feature_examples();
    let objective = Objective::Ranking {
        examples: examples.clone(),
        weights: vec![1.0; examples.len()],
        group: 5,
        nll_weight: 0.1,
    };
    let start = Solver::<TrainBackend>::new(&config, &device()).replica();
    (config, examples, objective, start)
}

fn feature_weights(model: &Solver<TrainBackend>) -> Vec<f32> {
    let weight = &model.edit_head.feature_weights.weight;
    weight.val().into_data().to_vec().unwrap()
}

/// `anchor` holds the feature weights near where the run started: a pull keeps them nearer
/// than no pull while the gold candidate still rises to the top, and a pull of the whole
/// distance at every step leaves them where they were.
#[test]
fn an_anchored_run_stays_near_the_weights_it_started_from() {
    use solver::anchor::Anchor;
    let (config, examples, objective, start) = feature_training();
    let initial = feature_weights(&start);
    let run_with = |anchor: f64| {
        let options = TrainOptions {
            steps: 60,
            lr: 0.05,
            anchor,
            ..TrainOptions::default()
        };
        let mut state = TrainState::fresh(start.clone(), &options).anchored(Anchor::of(&start));
        train(&mut state, &objective, &config, &options, 0, |_, _| Ok(())).unwrap();
        let drift = feature_weights(&state.model)
            .iter()
            .zip(&initial)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt();
        let ranks = gold_ranks(&state.model.valid(), &examples, &config, 0, 8);
        (drift, ranks.iter().filter(|r| **r == Some(0)).count())
    };
    let (free, free_top1) = run_with(0.0);
    let (held, held_top1) = run_with(4.0);
    let (pinned, _) = run_with(1e6);
    assert!(free > 0.1 && free_top1 == 40, "{free} {free_top1}");
    assert!(held < free * 0.7, "anchored drift {held} against {free}");
    assert!(
        held_top1 >= 36,
        "the anchored run still learns: {held_top1} of 40"
    );
    assert!(
        pinned < 1e-4,
        "a whole pull every step leaves the weights: {pinned}"
    );
}

/// Held feature weights (`Anchor::holding`, sft's `--hold-edit-prior`) end the run where it
/// started, while the others train.
#[test]
fn held_feature_weights_do_not_move_while_the_others_train() {
    use solver::anchor::Anchor;
    let (config, _, objective, start) = feature_training();
    let initial = feature_weights(&start);
    let even: Vec<u32> = (0..initial.len() as u32).step_by(2).collect();
    let options = TrainOptions {
        steps: 30,
        lr: 0.05,
        anchor: 0.5,
        ..TrainOptions::default()
    };
    let anchor = Anchor::of(&start).holding(&even);
    let mut state = TrainState::fresh(start.clone(), &options).anchored(anchor);
    train(&mut state, &objective, &config, &options, 0, |_, _| Ok(())).unwrap();
    let trained = feature_weights(&state.model);
    let moved = |parity: usize| {
        trained
            .iter()
            .zip(&initial)
            .skip(parity)
            .step_by(2)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
    };
    assert!(moved(0) < 1e-6, "a held weight moved: {}", moved(0));
    assert!(moved(1) > 0.01, "the others train: {}", moved(1));
}

/// A problem table (`sft --problem-table`) added to a scorer starts at zero and trains while
/// the shared table is held (`--hold-shared-table`): the gold repair's problem feature alone
/// carries it to the top.
#[test]
fn a_new_problem_table_trains_while_the_shared_table_is_held() {
    use solver::anchor::Anchor;
    use solver::features::BUCKETS;
    let (mut config, _, _, start) = feature_training();
    let rows = 64;
    config.problem_buckets = Some(rows);
    let start = start.with_extra_feature_rows(rows);
    let initial = feature_weights(&start);
    assert_eq!(initial.len(), BUCKETS + rows);
    let problem = BUCKETS as u32;
    let examples: Vec<EncodedExample> = (0..40)
        .map(|i| EncodedExample {
            candidates: vec![Vec::new(); 5],
            features: (0..5)
                .map(|c| {
                    let said = if c == i % 5 { problem + 1 } else { problem + 2 };
                    vec![(5 + c as u32 % 2, 1.0), (said, 1.0)]
                })
                .collect(),
            gold: Some(i % 5),
            ..Default::default()
        })
        .collect();
    let objective = Objective::Ranking {
        examples: examples.clone(),
        weights: vec![1.0; examples.len()],
        group: 5,
        nll_weight: 0.1,
    };
    let options = TrainOptions {
        steps: 30,
        lr: 0.05,
        anchor: 0.5,
        ..TrainOptions::default()
    };
    let shared: Vec<u32> = (1..BUCKETS as u32).collect();
    let anchor = Anchor::of(&start).holding(&shared);
    let mut state = TrainState::fresh(start.clone(), &options).anchored(anchor);
    train(&mut state, &objective, &config, &options, 0, |_, _| Ok(())).unwrap();
    let trained = feature_weights(&state.model);
    let moved = trained[..BUCKETS]
        .iter()
        .zip(&initial)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(moved < 1e-6, "a shared weight moved: {moved}");
    assert!(
        trained[BUCKETS + 1] > trained[BUCKETS + 2] + 0.1,
        "the problem feature of the gold repair rises: {:?}",
        &trained[BUCKETS..BUCKETS + 3]
    );
    let ranks = gold_ranks(&state.model.valid(), &examples, &config, 0, 8);
    assert_eq!(ranks.iter().filter(|r| **r == Some(0)).count(), 40);
}

#[test]
fn language_model_loss_falls_on_repeated_code() {
    let config = tiny();
    let chunks: Vec<Vec<u32>> = (0..8)
        .map(|i| (0..24).map(|j| ((i + j) % 12 + 5) as u32).collect())
        .collect();
    let options = TrainOptions {
        steps: 60,
        batch_size: 4,
        lr: 1e-2,
        warmup: 5,
        ..TrainOptions::default()
    };
    let mut state = TrainState::fresh(Solver::<TrainBackend>::new(&config, &device()), &options);
    let losses = run(
        &mut state,
        &Objective::Language { chunks },
        &config,
        &options,
    );
    assert!(
        losses[losses.len() - 1] < losses[0] * 0.3,
        "{:?}",
        (losses[0], losses[losses.len() - 1])
    );
}

#[test]
fn a_batch_cut_into_parts_trains_like_the_whole_batch() {
    let config = tiny();
    let chunks: Vec<Vec<u32>> = (0..8)
        .map(|i| (0..24).map(|j| ((i * 3 + j) % 17 + 5) as u32).collect())
        .collect();
    let objectives = [ranking(copy_examples(12)), Objective::Language { chunks }];
    // Initialised once (a fresh model's parameters initialise lazily, per clone).
    let initial = Solver::<TrainBackend>::new(&config, &device()).replica();
    for objective in &objectives {
        let curve = |batch_parts| {
            let options = TrainOptions {
                steps: 6,
                batch_size: 5,
                lr: 1e-2,
                warmup: 2,
                batch_parts,
                ..TrainOptions::default()
            };
            let mut state = TrainState::fresh(initial.clone(), &options);
            let losses = run(&mut state, objective, &config, &options);
            let logits = logits(&state.model.valid(), &config);
            (losses, logits)
        };
        let (whole, whole_logits) = curve(1);
        let (parts, parts_logits) = curve(3);
        assert_eq!(whole.len(), 6);
        for (a, b) in whole.iter().zip(&parts) {
            assert!(
                (a - b).abs() < 1e-4 * a.abs().max(1.0),
                "{whole:?} vs {parts:?}"
            );
        }
        let drift = whole_logits
            .iter()
            .zip(&parts_logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(drift < 1e-3, "logits differ by {drift} after 6 steps");
    }
}

#[test]
fn saved_weights_load_back_to_identical_logits() {
    let config = tiny();
    let model = Solver::<Backend>::new(&config, &device());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    checkpoint::save_weights(&model, &path).unwrap();
    let loaded =
        checkpoint::load_weights(Solver::<Backend>::new(&config, &device()), &path).unwrap();
    assert_eq!(logits(&model, &config), logits(&loaded, &config));
    // The same weights give the same bytes (header keys in a fixed order), save after save.
    let first = std::fs::read(&path).unwrap();
    for _ in 0..4 {
        checkpoint::save_weights(&loaded, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first);
    }
}

#[test]
fn a_resumed_run_continues_the_same_loss_curve() {
    for kind in OptimizerKind::ALL {
        resumed_run_continues_the_same_loss_curve(kind);
    }
}

fn resumed_run_continues_the_same_loss_curve(optimizer: OptimizerKind) {
    let config = tiny();
    let objective = ranking(copy_examples(16));
    let options = TrainOptions {
        steps: 12,
        batch_size: 4,
        lr: 5e-3,
        warmup: 3,
        seed: 7,
        optimizer,
        ..TrainOptions::default()
    };
    let fresh = || Solver::<TrainBackend>::new(&config, &device());
    // Parameters initialise lazily, so clones of a fresh model would differ: start both
    // runs from the same saved state.
    let start = tempfile::tempdir().unwrap();
    checkpoint::save_resume_model(&fresh(), start.path()).unwrap();
    let init = || checkpoint::load_resume_model(fresh(), start.path(), &device()).unwrap();
    let mut whole = TrainState::fresh(init(), &options);
    let straight = run(&mut whole, &objective, &config, &options);

    let dir = tempfile::tempdir().unwrap();
    let mut first = TrainState::fresh(init(), &options);
    let halfway = TrainOptions {
        stop_after: Some(5),
        ..options.clone()
    };
    let mut losses = run(&mut first, &objective, &config, &halfway);
    checkpoint::save_resume_model(&first.model, dir.path()).unwrap();
    first.save_optimizer(dir.path()).unwrap();
    drop(first);

    let model = checkpoint::load_resume_model(fresh(), dir.path(), &device()).unwrap();
    let mut resumed = TrainState::resume(model, dir.path(), &options, &device()).unwrap();
    assert_eq!(resumed.step, 5);
    losses.extend(run(&mut resumed, &objective, &config, &options));
    assert_eq!(losses, straight, "{optimizer:?}");
    // Another rule's state is not this one's: resuming with it is refused, naming the file.
    let other = TrainOptions {
        optimizer: match optimizer {
            OptimizerKind::Adam => OptimizerKind::Sgd,
            _ => OptimizerKind::Adam,
        },
        ..options.clone()
    };
    let model = checkpoint::load_resume_model(fresh(), dir.path(), &device()).unwrap();
    let Err(refused) = TrainState::resume(model, dir.path(), &other, &device()) else {
        panic!("{optimizer:?} state resumed as {:?}", other.optimizer);
    };
    let message = refused.to_string();
    assert!(
        message.contains(&format!("{}:", other.optimizer.state_file())),
        "{optimizer:?} state resumed as {:?}: {message:?}",
        other.optimizer
    );
}

/// Writes `model` the way a PyTorch Llama's `save_pretrained` does, with the safetensors
/// crate directly (not through the solver's own writer).
fn write_hf_layout(model: &Solver<Backend>, path: &std::path::Path) {
    fn matrix(t: Tensor<Backend, 2>, transpose: bool) -> (Vec<usize>, Vec<f32>) {
        let t = if transpose { t.transpose() } else { t };
        (t.dims().to_vec(), t.into_data().to_vec().unwrap())
    }
    type Named = (String, (Vec<usize>, Vec<f32>));
    let mut tensors: Vec<Named> = Vec::new();
    tensors.push((
        "model.embed_tokens.weight".into(),
        matrix(model.embed_tokens.weight.val(), false),
    ));
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let a = &layer.self_attn;
        for (name, linear) in [
            ("q_proj", &a.q_proj),
            ("k_proj", &a.k_proj),
            ("v_proj", &a.v_proj),
            ("o_proj", &a.o_proj),
        ] {
            tensors.push((
                format!("{p}.self_attn.{name}.weight"),
                matrix(linear.weight.val(), true),
            ));
        }
        let m = &layer.mlp;
        for (name, linear) in [
            ("gate_proj", &m.gate_proj),
            ("up_proj", &m.up_proj),
            ("down_proj", &m.down_proj),
        ] {
            tensors.push((
                format!("{p}.mlp.{name}.weight"),
                matrix(linear.weight.val(), true),
            ));
        }
        for (name, norm) in [
            ("input_layernorm", &layer.input_layernorm),
            ("post_attention_layernorm", &layer.post_attention_layernorm),
        ] {
            let v = norm.gamma.val();
            tensors.push((
                format!("{p}.{name}.weight"),
                (v.dims().to_vec(), v.into_data().to_vec().unwrap()),
            ));
        }
    }
    let v = model.norm.gamma.val();
    tensors.push((
        "model.norm.weight".into(),
        (v.dims().to_vec(), v.into_data().to_vec().unwrap()),
    ));
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, (shape, values))| {
            (
                name,
                shape,
                values.iter().flat_map(|f| f.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: HashMap<String, safetensors::tensor::TensorView> = bytes
        .iter()
        .map(|(name, shape, data)| {
            (
                name.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn weights_in_the_hugging_face_layout_load_into_the_model() {
    let config = tiny();
    let model = Solver::<Backend>::new(&config, &device());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    write_hf_layout(&model, &path);
    let loaded =
        checkpoint::load_weights(Solver::<Backend>::new(&config, &device()), &path).unwrap();
    assert_eq!(logits(&model, &config), logits(&loaded, &config));
}

#[test]
fn weights_of_another_shape_are_refused_with_a_message() {
    let config = tiny();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    checkpoint::save_weights(&Solver::<Backend>::new(&config, &device()), &path).unwrap();
    let bigger = ModelConfig {
        hidden_size: 64,
        ..config
    };
    let error = checkpoint::load_weights(Solver::<Backend>::new(&bigger, &device()), &path)
        .err()
        .unwrap();
    assert!(error.to_string().contains("do not fit"), "{error:#}");
    std::fs::write(&path, b"not safetensors").unwrap();
    let error = checkpoint::load_weights(Solver::<Backend>::new(&tiny(), &device()), &path)
        .err()
        .unwrap();
    assert!(error.to_string().contains("model.safetensors"), "{error:#}");
}

#[test]
fn a_candidate_scores_the_same_packed_with_others_as_alone() {
    let config = tiny();
    let model = Solver::<Backend>::new(&config, &device());
    let example = EncodedExample {
        prompt: vec![2, 30, 11, 31, 3],
        candidates: vec![vec![4, 12, 13, 7], vec![4, 20, 7], vec![4, 11, 11, 11, 7]],
        gold: Some(0),
        ..Default::default()
    };
    let together = solver::train::score_all(&model, &example, &config, 0, 64);
    let alone = solver::train::score_all(&model, &example, &config, 0, 1);
    for (a, b) in together.iter().zip(&alone) {
        assert!((a - b).abs() < 1e-4, "{together:?} vs {alone:?}");
    }
}

#[test]
fn padding_to_a_shape_bucket_changes_no_score_and_no_loss() {
    use solver::batch::{CandidateSpans, candidate_scores, lm_loss};
    let config = tiny();
    let model = Solver::<Backend>::new(&config, &device());
    let (row, spans) = Row::branched(&[2, 30, 11, 31, 3], &[vec![4, 12, 13, 7], vec![4, 20, 7]]);
    let spans = CandidateSpans {
        spans: vec![spans],
        features: vec![vec![Vec::new(); 2]],
    };
    let scores = |bucket| -> Vec<f32> {
        let batch = HostBatch::bucketed(vec![row.clone()], 0, bucket);
        candidate_scores(&model, &batch, &spans, &config)
            .total
            .into_data()
            .to_vec()
            .unwrap()
    };
    let loss = |bucket| -> f32 {
        let text = vec![Row::text(vec![3, 9, 4, 17, 5]), Row::text(vec![7, 8])];
        let batch = HostBatch::bucketed(text, 0, bucket);
        assert_eq!(batch.len % bucket, 0);
        lm_loss(&model, &batch, &config).0.into_scalar()
    };
    let (plain, padded) = (scores(1), scores(16));
    assert_eq!(plain.len(), padded.len());
    for (a, b) in plain.iter().zip(&padded) {
        assert!((a - b).abs() < 1e-4, "{plain:?} vs {padded:?}");
    }
    assert!(
        (loss(1) - loss(16)).abs() < 1e-5,
        "{} vs {}",
        loss(1),
        loss(16)
    );
}

#[test]
fn a_per_example_gradient_covers_every_parameter() {
    use burn::module::Module;
    let config = tiny();
    let model = Solver::<TrainBackend>::new(&config, &device());
    let example = &copy_examples(1)[0];
    let gradient =
        solver::gradient::example_gradient(&model, example, &config, 0, 4, &Default::default())
            .unwrap();
    assert_eq!(gradient.len(), model.num_params());
    assert!(gradient.iter().all(|g| g.is_finite()));
    // Module order: the transformer, then the scorer's feature weights (none active in this
    // example, so zero) and its language-model scale.
    let head = solver::features::BUCKETS + 1;
    let transformer = &gradient[..gradient.len() - head];
    assert!(transformer.iter().filter(|g| **g != 0.0).count() > transformer.len() / 2);
    assert_ne!(gradient[gradient.len() - 1], 0.0, "lm_scale has a gradient");
}

/// Every float parameter's value, flattened in module order.
fn flat_parameters(model: &Solver<TrainBackend>) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor<TrainBackend> for Collect {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<Tensor<TrainBackend, D>>,
        ) {
            self.0
                .extend(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let mut collect = Collect(Vec::new());
    burn::module::Module::visit(model, &mut collect);
    collect.0
}

#[test]
fn a_parameter_subset_is_the_matching_slices_of_the_full_gradient() {
    use solver::gradient::{GradientView, ParamSelection, example_gradient, parameters};
    let config = tiny();
    let model = Solver::<TrainBackend>::new(&config, &device());
    let example = &copy_examples(1)[0];
    let full = example_gradient(&model, example, &config, 0, 4, &GradientView::default()).unwrap();
    let selection = ParamSelection::parse("layers.1.*,norm.*").unwrap();
    let mut expected = Vec::new();
    let mut offset = 0;
    let mut chosen = Vec::new();
    for param in parameters(&model) {
        if selection.matches(&param.path) {
            expected.extend_from_slice(&full[offset..offset + param.len]);
            chosen.push(param.path);
        }
        offset += param.len;
    }
    assert_eq!(offset, full.len());
    assert!(chosen.contains(&"layers.1.mlp.down_proj.weight".to_string()));
    assert!(chosen.iter().all(|p| !p.starts_with("layers.0.")));
    let view = GradientView {
        selection,
        adam: None,
    };
    let subset = example_gradient(&model, example, &config, 0, 4, &view).unwrap();
    assert_eq!(subset, expected);
    assert!(
        solver::gradient::select_parameters(&model, &ParamSelection::parse("nothing.*").unwrap())
            .unwrap_err()
            .contains("layers.1.*")
    );
}

/// LESS's premise: the preconditioned gradient is the direction of the Adam step that the
/// checkpoint's optimizer would take on this example.
#[test]
fn an_adam_preconditioned_gradient_is_the_step_the_saved_optimizer_takes() {
    use burn::optim::GradientsParams;
    use solver::gradient::{AdamPreconditioner, GradientView, example_gradient};
    let config = tiny();
    let examples = copy_examples(6);
    let options = TrainOptions {
        steps: 4,
        batch_size: 2,
        lr: 1e-2,
        warmup: 0,
        weight_decay: 0.0,
        seed: 3,
        ..TrainOptions::default()
    };
    let mut state = TrainState::fresh(Solver::<TrainBackend>::new(&config, &device()), &options);
    run(&mut state, &ranking(examples.clone()), &config, &options);
    let dir = tempfile::tempdir().unwrap();
    checkpoint::save_resume_model(&state.model, dir.path()).unwrap();
    state.save_optimizer(dir.path()).unwrap();

    let model = checkpoint::load_resume_model(
        Solver::<TrainBackend>::new(&config, &device()),
        dir.path(),
        &device(),
    )
    .unwrap();
    let adam =
        AdamPreconditioner::load(dir.path(), &model, &Default::default(), &device()).unwrap();
    assert!(adam.covered() > 0);
    let example = &examples[0];
    let view = GradientView {
        adam: Some(&adam),
        ..GradientView::default()
    };
    let preconditioned = example_gradient(&model, example, &config, 0, 4, &view).unwrap();
    let plain = example_gradient(&model, example, &config, 0, 4, &GradientView::default()).unwrap();

    let mut resumed = TrainState::resume(model.clone(), dir.path(), &options, &device()).unwrap();
    let chosen = [0, 1, 2, 3];
    let (batch, spans) = solver::data::ranking_batch(&[(example, chosen.as_slice())], 0);
    let scores = solver::batch::candidate_scores(&model, &batch, &spans, &config);
    let (loss, _, _) = solver::batch::ranking_loss(scores, &[0], &[1.0], 0.0);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let lr = 1e-2;
    let before = flat_parameters(&model);
    resumed.model = resumed.optimizer.step(lr, model, grads);
    let after = flat_parameters(&resumed.model);
    let step: Vec<f32> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (b - a) / lr as f32)
        .collect();
    assert_eq!(step.len(), preconditioned.len());
    let worst = step
        .iter()
        .zip(&preconditioned)
        .map(|(s, p)| (s - p).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 2e-2, "largest difference {worst}");
    let plain_worst = step
        .iter()
        .zip(&plain)
        .map(|(s, p)| (s - p).abs())
        .fold(0.0f32, f32::max);
    assert!(
        plain_worst > 0.1,
        "the plain gradient is not the Adam step ({plain_worst})"
    );
}
