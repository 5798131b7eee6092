//! The solver: a small Llama-style decoder that repairs bugs by *choosing* among candidate
//! edits (see "The solver" in DESIGN.md). It scores each candidate search/replace block by
//! its log-likelihood after the prompt, and the policy is the softmax over the candidates.
//!
//! - [`config`]: the model's shape, as an HF `config.json`;
//! - [`model`]: the network, generic over the burn backend;
//! - [`tokenizer`]: byte-level BPE with the prompt and edit special tokens;
//! - [`batch`]: packing prompts and candidates into rows, and the losses.

pub mod anchor;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod example;
pub mod features;
pub mod gradient;
pub mod model;
pub mod names;
pub mod prior;
pub mod tasks;
pub mod tokenizer;
pub mod train;

/// The backend the tools run on: the CPU (`flex`, multithreaded) by default, an NVIDIA GPU
/// with the `cuda` feature.
#[cfg(not(feature = "cuda"))]
pub type Backend = burn::backend::Flex;
#[cfg(feature = "cuda")]
pub type Backend = burn_cuda::Cuda;

/// [`Backend`] with automatic differentiation, for training and per-task gradients.
pub type TrainBackend = burn::backend::Autodiff<Backend>;

/// The device the tools run on.
pub fn device() -> burn::tensor::Device<Backend> {
    Default::default()
}
