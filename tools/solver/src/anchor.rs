//! Fine-tuning held near where it started (L2-SP: Li, Grandvalet & Davoine 2018).
//!
//! After every optimizer step the scorer's own parameters (the edit head: the feature weights
//! and the language-model scale) move back toward their values at the start of the run by
//! `lr × strength` of their distance, decoupled from Adam's step as AdamW decouples weight
//! decay. A weight the new data keeps pushing settles about `1 / strength` from its start; one
//! the data stops pushing returns to it. A few hundred tasks then refine what pretraining
//! learned instead of overwriting it.

use burn::module::Param;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::model::Solver;

/// The edit head's parameters to pull toward.
#[derive(Debug, Clone)]
pub struct Anchor<B: Backend> {
    feature_weights: Tensor<B, 2>,
    lm_scale: Tensor<B, 1>,
    /// 1 for the feature weights held at the anchor (returned to it after every step), 0
    /// for the others.
    held: Option<Tensor<B, 2>>,
}

impl<B: Backend> Anchor<B> {
    /// The edit head of `model` as it is now.
    pub fn of<T: AutodiffBackend<InnerBackend = B>>(model: &Solver<T>) -> Self {
        Anchor {
            feature_weights: model.edit_head.feature_weights.weight.val().inner(),
            lm_scale: model.edit_head.lm_scale.val().inner(),
            held: None,
        }
    }

    /// Holds the feature weights of `buckets` at the anchor: training cannot move them.
    pub fn holding(mut self, buckets: &[u32]) -> Self {
        let [rows, columns] = self.feature_weights.dims();
        let mut mask = vec![0.0f32; rows * columns];
        for &bucket in buckets {
            let row = bucket as usize;
            if row < rows {
                mask[row * columns..(row + 1) * columns].fill(1.0);
            }
        }
        let device = self.feature_weights.device();
        self.held =
            Some(Tensor::<B, 1>::from_floats(mask.as_slice(), &device).reshape([rows, columns]));
        self
    }

    /// Moves the edit head of `model` a `rate` (clamped to 1) of the way back to the anchor.
    pub fn pull<T: AutodiffBackend<InnerBackend = B>>(
        &self,
        mut model: Solver<T>,
        rate: f64,
    ) -> Solver<T> {
        let rate = rate.clamp(0.0, 1.0);
        let head = &mut model.edit_head;
        head.feature_weights.weight = match &self.held {
            None => pull_toward(
                head.feature_weights.weight.clone(),
                &self.feature_weights,
                |distance| distance.mul_scalar(rate),
            ),
            // The held rows move all the way back, the others by `rate`.
            Some(held) => pull_toward(
                head.feature_weights.weight.clone(),
                &self.feature_weights,
                |distance| distance.mul(held.clone().mul_scalar(1.0 - rate).add_scalar(rate)),
            ),
        };
        head.lm_scale = pull_toward(head.lm_scale.clone(), &self.lm_scale, |distance| {
            distance.mul_scalar(rate)
        });
        model
    }
}

/// Moves `param` back toward `anchor` by `step` of its distance from it.
fn pull_toward<T: AutodiffBackend, const D: usize>(
    param: Param<Tensor<T, D>>,
    anchor: &Tensor<T::InnerBackend, D>,
    step: impl FnOnce(Tensor<T::InnerBackend, D>) -> Tensor<T::InnerBackend, D>,
) -> Param<Tensor<T, D>> {
    param.map(|value| {
        let tracked = value.is_require_grad();
        let current = value.inner();
        let pulled = current.clone() - step(current - anchor.clone());
        let pulled = Tensor::from_inner(pulled);
        if tracked {
            pulled.require_grad()
        } else {
            pulled
        }
    })
}
