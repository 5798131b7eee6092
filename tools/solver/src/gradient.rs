//! Per-example gradients for `grad-score`: the ranking loss's gradient with respect to a
//! chosen set of parameters, flattened in module order, optionally turned into the update
//! direction Adam would take from the checkpoint's optimizer state (as LESS does).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::Optimizer;
use burn::record::Recorder;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::batch::{candidate_scores, ranking_loss};
use crate::checkpoint::{RESUME, StateRecorder};
use crate::config::ModelConfig;
use crate::data::{EncodedExample, ranking_batch};
use crate::model::Solver;
use crate::train::{ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON, Adam, GRAD_CLIP_NORM};

/// Which parameters a gradient covers: comma-separated globs over dotted parameter paths
/// such as `layers.3.mlp.down_proj.weight` (`*` matches any run of characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSelection {
    globs: Vec<String>,
}

impl Default for ParamSelection {
    fn default() -> Self {
        ParamSelection {
            globs: vec!["*".into()],
        }
    }
}

impl ParamSelection {
    /// Parses `glob[,glob...]`; empty globs are an error.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let globs: Vec<String> = spec.split(',').map(|g| g.trim().to_string()).collect();
        if globs.iter().any(String::is_empty) {
            return Err(format!(
                "`{spec}`: expected comma-separated globs such as `layers.3.*,norm.*`"
            ));
        }
        Ok(ParamSelection { globs })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.globs.iter().any(|glob| glob_match(glob, path))
    }

    /// The selection as `--params` takes it.
    pub fn spec(&self) -> String {
        self.globs.join(",")
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A float parameter of the model: its dotted path, id and number of elements.
#[derive(Debug, Clone)]
pub struct ParamInfo {
    pub path: String,
    pub id: ParamId,
    pub len: usize,
}

/// A visitor of float parameters with their dotted path (`layers.3.mlp.up_proj.weight`).
trait PathVisitor<B: Backend> {
    fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<B, D>>);
}

/// Runs a [`PathVisitor`] over a module, keeping the path of the parameter it is at.
struct WithPath<V> {
    stack: Vec<String>,
    inner: V,
}

impl<B: Backend, V: PathVisitor<B>> ModuleVisitor<B> for WithPath<V> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.inner.visit(&self.stack.join("."), param);
    }
}

/// Visits every float parameter of `model` with `visitor`, then gives the visitor back.
fn visit_with_paths<B: Backend, V: PathVisitor<B>>(model: &Solver<B>, visitor: V) -> V {
    let mut walker = WithPath {
        stack: Vec::new(),
        inner: visitor,
    };
    model.visit(&mut walker);
    walker.inner
}

struct ListParams(Vec<ParamInfo>);

impl<B: Backend> PathVisitor<B> for ListParams {
    fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<B, D>>) {
        self.0.push(ParamInfo {
            path: path.to_string(),
            id: param.id,
            len: param.val().shape().num_elements(),
        });
    }
}

/// Every float parameter of `model`, in module order.
pub fn parameters<B: Backend>(model: &Solver<B>) -> Vec<ParamInfo> {
    visit_with_paths(model, ListParams(Vec::new())).0
}

/// The selected parameters, or an error naming the paths there are.
pub fn select_parameters<B: Backend>(
    model: &Solver<B>,
    selection: &ParamSelection,
) -> Result<Vec<ParamInfo>, String> {
    let all = parameters(model);
    let chosen: Vec<ParamInfo> = all
        .iter()
        .filter(|p| selection.matches(&p.path))
        .cloned()
        .collect();
    if chosen.is_empty() {
        let mut tops: Vec<String> = all
            .iter()
            .map(|p| match p.path.split_once('.') {
                Some(("layers", rest)) => {
                    let index = rest.split('.').next().unwrap_or("");
                    format!("layers.{index}.*")
                }
                Some((top, _)) => format!("{top}.*"),
                None => p.path.clone(),
            })
            .collect();
        tops.dedup();
        return Err(format!(
            "--params {}: no parameter matches; the model has {}",
            selection.spec(),
            tops.join(", ")
        ));
    }
    Ok(chosen)
}

/// Adam's moments of one parameter, flattened.
struct Moments {
    time: usize,
    first: Vec<f32>,
    second: Vec<f32>,
}

/// The checkpoint's Adam state, to turn a gradient into the update Adam would take from it:
/// m' = β₁m + (1−β₁)g, v' = β₂v + (1−β₂)g², update = m̂' / (√v̂' + ε) with bias correction
/// at step t + 1, after the per-parameter norm clipping that training applies. AdamW's
/// weight decay is left out: it does not depend on the task.
pub struct AdamPreconditioner {
    moments: HashMap<ParamId, Moments>,
}

struct CollectMoments<'r, B: AutodiffBackend> {
    record: &'r mut <Adam<B> as Optimizer<Solver<B>, B>>::Record,
    selection: &'r ParamSelection,
    moments: HashMap<ParamId, Moments>,
}

impl<B: AutodiffBackend> PathVisitor<B> for CollectMoments<'_, B> {
    fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<B, D>>) {
        if !self.selection.matches(path) {
            return;
        }
        let Some(record) = self.record.remove(&param.id) else {
            return;
        };
        let state = record.into_state::<D>().momentum;
        let flat = |t: Tensor<B::InnerBackend, D>| t.into_data().to_vec::<f32>().expect("f32");
        self.moments.insert(
            param.id,
            Moments {
                time: state.time,
                first: flat(state.moment_1),
                second: flat(state.moment_2),
            },
        );
    }
}

impl AdamPreconditioner {
    /// Loads the optimizer state that `solver-train` saved in `dir/resume/`, for the
    /// parameters of `selection`. `model` must carry the parameter ids of that state
    /// ([`crate::checkpoint::load_resume_model`]).
    pub fn load<B: AutodiffBackend>(
        dir: &Path,
        model: &Solver<B>,
        selection: &ParamSelection,
        device: &B::Device,
    ) -> Result<Self> {
        let path = dir.join(RESUME).join("optimizer");
        let mut record: <Adam<B> as Optimizer<Solver<B>, B>>::Record = StateRecorder::new()
            .load(path.clone(), device)
            .map_err(|e| {
                anyhow!(
                    "{}: no optimizer state to precondition with ({e}); train the checkpoint \
                     with solver-train, which saves it",
                    path.display()
                )
            })?;
        let collected = visit_with_paths(
            model,
            CollectMoments::<B> {
                record: &mut record,
                selection,
                moments: HashMap::new(),
            },
        );
        if collected.moments.is_empty() {
            bail!(
                "{}: the optimizer state covers none of the parameters of --params {}",
                path.display(),
                selection.spec()
            );
        }
        Ok(AdamPreconditioner {
            moments: collected.moments,
        })
    }

    /// How many selected parameters have a saved state (the others are preconditioned as at
    /// step 1).
    pub fn covered(&self) -> usize {
        self.moments.len()
    }

    /// Replaces `gradient`, the gradient of parameter `id`, with Adam's update direction.
    pub fn apply(&self, id: &ParamId, gradient: &mut [f32]) {
        let norm = gradient
            .iter()
            .map(|&g| f64::from(g) * f64::from(g))
            .sum::<f64>()
            .sqrt() as f32;
        let clip = (GRAD_CLIP_NORM / (norm + f32::MIN_POSITIVE)).min(1.0);
        let state = self.moments.get(id);
        let time = state.map_or(0, |s| s.time) as i32 + 1;
        let correction_1 = 1.0 - ADAM_BETA_1.powi(time);
        let correction_2 = 1.0 - ADAM_BETA_2.powi(time);
        for (i, g) in gradient.iter_mut().enumerate() {
            let clipped = *g * clip;
            let (m, v) = state.map_or((0.0, 0.0), |s| (s.first[i], s.second[i]));
            let m = ADAM_BETA_1 * m + (1.0 - ADAM_BETA_1) * clipped;
            let v = ADAM_BETA_2 * v + (1.0 - ADAM_BETA_2) * clipped * clipped;
            *g = (m / correction_1) / ((v / correction_2).sqrt() + ADAM_EPSILON);
        }
    }
}

/// What an example's gradient covers and how it is transformed.
#[derive(Default)]
pub struct GradientView<'a> {
    pub selection: ParamSelection,
    pub adam: Option<&'a AdamPreconditioner>,
}

struct FlatGradients<'g, B: AutodiffBackend> {
    grads: &'g <B as AutodiffBackend>::Gradients,
    view: &'g GradientView<'g>,
    out: Vec<f32>,
}

impl<B: AutodiffBackend> PathVisitor<B> for FlatGradients<'_, B> {
    fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<B, D>>) {
        if !self.view.selection.matches(path) {
            return;
        }
        let value = param.val();
        let start = self.out.len();
        match value.grad(self.grads) {
            Some(grad) => self
                .out
                .extend(grad.into_data().to_vec::<f32>().expect("f32 gradients")),
            None => self
                .out
                .extend(std::iter::repeat_n(0.0, value.shape().num_elements())),
        }
        if let Some(adam) = self.view.adam {
            adam.apply(&param.id, &mut self.out[start..]);
        }
    }
}

/// The gradient of the ranking loss of one example (gold against every other candidate, up
/// to `max_candidates`) with respect to the parameters of `view`, flattened in module order:
/// what `grad-score` projects and compares. `None` when the example has no gold repair.
pub fn example_gradient<B: AutodiffBackend>(
    model: &Solver<B>,
    example: &EncodedExample,
    config: &ModelConfig,
    pad: u32,
    max_candidates: usize,
    view: &GradientView,
) -> Option<Vec<f32>> {
    let gold = example.gold?;
    let mut chosen: Vec<usize> = (0..example.candidates.len())
        .filter(|&i| i != gold)
        .take(max_candidates.saturating_sub(1))
        .collect();
    chosen.insert(0, gold);
    let (batch, spans) = ranking_batch(&[(example, chosen.as_slice())], pad);
    let scores = candidate_scores(model, &batch, &spans, config);
    let (loss, _, _) = ranking_loss(scores, &[0], &[1.0], 0.0);
    let grads = loss.backward();
    let flat = visit_with_paths(
        model,
        FlatGradients::<B> {
            grads: &grads,
            view,
            out: Vec::new(),
        },
    );
    Some(flat.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_gradient_is_clipped_before_the_adam_step() {
        let id = ParamId::new();
        let state = Moments {
            time: 9,
            first: vec![0.02, -0.01],
            second: vec![0.5, 0.25],
        };
        let adam = AdamPreconditioner {
            moments: HashMap::from([(id, state)]),
        };
        // Norm 50: clipped to norm 1, i.e. (0.6, 0.8).
        let mut gradient = [30.0f32, 40.0];
        adam.apply(&id, &mut gradient);
        let step = |m: f32, v: f32, g: f32| {
            let m = 0.9 * m + 0.1 * g;
            let v = 0.999 * v + 0.001 * g * g;
            (m / (1.0 - 0.9f32.powi(10))) / ((v / (1.0 - 0.999f32.powi(10))).sqrt() + 1e-5)
        };
        let expected = [step(0.02, 0.5, 0.6), step(-0.01, 0.25, 0.8)];
        for (got, want) in gradient.iter().zip(expected) {
            assert!((got - want).abs() < 1e-5, "{gradient:?} vs {expected:?}");
        }
        // Without clipping the first coordinate's step would be over 20 times larger.
        assert!(step(0.02, 0.5, 30.0) > 20.0 * expected[0]);
    }

    #[test]
    fn globs_match_dotted_parameter_paths() {
        let last = ParamSelection::parse("layers.1.*,norm.*").unwrap();
        assert!(last.matches("layers.1.mlp.down_proj.weight"));
        assert!(last.matches("norm.gamma"));
        assert!(!last.matches("layers.11.mlp.down_proj.weight"));
        assert!(!last.matches("layers.0.self_attn.q_proj.weight"));
        let weights = ParamSelection::parse("*.weight").unwrap();
        assert!(weights.matches("lm_head.weight"));
        assert!(!weights.matches("lm_head.bias"));
        let middle = ParamSelection::parse("layers.*.mlp.*").unwrap();
        assert!(middle.matches("layers.0.mlp.up_proj.weight"));
        assert!(!middle.matches("layers.0.self_attn.q_proj.weight"));
        assert!(ParamSelection::default().matches("anything.at.all"));
        assert!(ParamSelection::parse("a,,b").is_err());
        assert_eq!(last.spec(), "layers.1.*,norm.*");
    }
}
