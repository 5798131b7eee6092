//! A Llama-style decoder: token embedding, pre-norm blocks of grouped-query attention with
//! rotary positions and a SwiGLU MLP, a final RMSNorm and a (possibly tied) LM head.
//!
//! Field names follow Hugging Face's Llama so that weights map one to one
//! (`layers.0.self_attn.q_proj` ↔ `model.layers.0.self_attn.q_proj`).
//!
//! The forward pass takes explicit positions and an attention mask instead of assuming one
//! causal sequence: the ranker packs a prompt and many candidate edits into one row, each
//! candidate seeing the prompt and itself only (see [`crate::batch`]).

use burn::module::{Module, Param};
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, RmsNorm, RmsNormConfig,
};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use crate::config::ModelConfig;

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    kv_heads: usize,
    #[module(skip)]
    head_dim: usize,
}

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
}

#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: Attention<B>,
    pub mlp: Mlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
}

/// The scorer's terms beside the language model: a candidate's score is `lm_scale` × its
/// length-normalised log-likelihood plus the sum of its hashed features' weights
/// ([`crate::features`]). Both are trained by the ranking loss, so what used to be added at
/// rollout time from outside (the edit-kind prior) is learned here with everything else.
#[derive(Module, Debug)]
pub struct EditHead<B: Backend> {
    /// One weight per feature bucket, `[rows, 1]` (`ModelConfig::feature_rows`); zero until
    /// trained (bucket 0 is padding and never active).
    pub feature_weights: Embedding<B>,
    /// Scale of the language-model score, `[1]`; 1 until trained.
    pub lm_scale: Param<Tensor<B, 1>>,
}

impl<B: Backend> EditHead<B> {
    pub fn new(rows: usize, device: &B::Device) -> Self {
        EditHead {
            feature_weights: EmbeddingConfig::new(rows, 1)
                .with_initializer(Initializer::Zeros)
                .init(device),
            lm_scale: Param::from_tensor(Tensor::ones([1], device)),
        }
    }

    /// The same head with `extra` zero rows after its feature weights: a new, untrained
    /// problem table beside the trained shared one.
    pub fn with_extra_rows(mut self, extra: usize) -> Self {
        self.feature_weights.weight = self.feature_weights.weight.map(|weights| {
            let device = weights.device();
            let [rows, columns] = weights.dims();
            let mut values = weights
                .into_data()
                .to_vec::<f32>()
                .expect("f32 feature weights");
            values.resize((rows + extra) * columns, 0.0);
            Tensor::<B, 1>::from_floats(values.as_slice(), &device)
                .reshape([rows + extra, columns])
                .require_grad()
        });
        self
    }

    /// Sum of the active features' weights: `ids` and `values` are `[n, width]` (padding:
    /// bucket 0, value 0); returns `[n]`.
    pub fn feature_scores(&self, ids: Tensor<B, 2, Int>, values: Tensor<B, 2>) -> Tensor<B, 1> {
        let [n, width] = ids.dims();
        let weights = self.feature_weights.forward(ids).reshape([n, width]);
        (weights * values).sum_dim(1).reshape([n])
    }
}

#[derive(Module, Debug)]
pub struct Solver<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// `None` when the head is tied to the embedding.
    pub lm_head: Option<Linear<B>>,
    /// The ranking scorer's own parameters (absent from HF model directories: loaded as new).
    pub edit_head: EditHead<B>,
}

/// Rotary position tables for one batch, `[batch, 1, len, head_dim]`, HF layout (the two
/// halves of each head rotate together).
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    pub cos: Tensor<B, 4>,
    pub sin: Tensor<B, 4>,
}

/// One batch ready for the model: token ids, rotary tables and an additive attention bias
/// (`0` where a token may attend, a large negative number where it may not).
#[derive(Debug, Clone)]
pub struct ModelInput<B: Backend> {
    pub ids: Tensor<B, 2, Int>,
    pub rope: Rope<B>,
    pub attention_bias: Tensor<B, 4>,
}

fn linear<B: Backend>(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Linear<B> {
    LinearConfig::new(d_in, d_out).with_bias(bias).init(device)
}

fn rms_norm<B: Backend>(config: &ModelConfig, device: &B::Device) -> RmsNorm<B> {
    RmsNormConfig::new(config.hidden_size)
        .with_epsilon(config.rms_norm_eps)
        .init(device)
}

impl<B: Backend> Attention<B> {
    fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let d = config.hidden_size;
        let hd = config.head_dim();
        let kv = config.num_key_value_heads * hd;
        let bias = config.qkv_bias();
        Attention {
            q_proj: linear(d, config.num_attention_heads * hd, bias, device),
            k_proj: linear(d, kv, bias, device),
            v_proj: linear(d, kv, bias, device),
            o_proj: linear(config.num_attention_heads * hd, d, false, device),
            heads: config.num_attention_heads,
            kv_heads: config.num_key_value_heads,
            head_dim: hd,
        }
    }

    fn forward(&self, x: Tensor<B, 3>, rope: &Rope<B>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let [batch, len, _] = x.dims();
        let (h, kv, hd) = (self.heads, self.kv_heads, self.head_dim);
        let split =
            |t: Tensor<B, 3>, heads: usize| t.reshape([batch, len, heads, hd]).swap_dims(1, 2);
        let q = apply_rope(split(self.q_proj.forward(x.clone()), h), rope);
        let k = apply_rope(split(self.k_proj.forward(x.clone()), kv), rope);
        let v = split(self.v_proj.forward(x), kv);
        let (k, v) = if h == kv {
            (k, v)
        } else {
            let repeat = |t: Tensor<B, 4>| {
                t.unsqueeze_dim::<5>(2)
                    .expand([batch, kv, h / kv, len, hd])
                    .reshape([batch, h, len, hd])
            };
            (repeat(k), repeat(v))
        };
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((hd as f64).sqrt()) + bias;
        let out = softmax(scores, 3).matmul(v);
        self.o_proj
            .forward(out.swap_dims(1, 2).reshape([batch, len, h * hd]))
    }
}

/// `x * cos + rotate_half(x) * sin`, with `rotate_half([a, b]) = [-b, a]` over the head halves.
fn apply_rope<B: Backend>(x: Tensor<B, 4>, rope: &Rope<B>) -> Tensor<B, 4> {
    let [batch, heads, len, hd] = x.dims();
    let half = hd / 2;
    let first = x.clone().slice([0..batch, 0..heads, 0..len, 0..half]);
    let second = x.clone().slice([0..batch, 0..heads, 0..len, half..hd]);
    let rotated = Tensor::cat(vec![second.neg(), first], 3);
    x * rope.cos.clone() + rotated * rope.sin.clone()
}

impl<B: Backend> Mlp<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}

impl<B: Backend> DecoderLayer<B> {
    fn forward(&self, x: Tensor<B, 3>, rope: &Rope<B>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let x = x.clone()
            + self
                .self_attn
                .forward(self.input_layernorm.forward(x), rope, bias);
        x.clone() + self.mlp.forward(self.post_attention_layernorm.forward(x))
    }
}

impl<B: Backend> Solver<B> {
    /// The same parameters (and parameter ids) as new autodiff leaves: a copy whose graph
    /// is its own, so it can compute gradients on another thread beside this one.
    pub fn replica(&self) -> Self {
        let device = self.embed_tokens.weight.device();
        self.clone().fork(&device)
    }

    /// The same model with `extra` zero rows after its feature weights (see
    /// [`EditHead::with_extra_rows`]).
    pub fn with_extra_feature_rows(mut self, extra: usize) -> Self {
        if extra > 0 {
            self.edit_head = self.edit_head.with_extra_rows(extra);
        }
        self
    }

    /// A freshly initialised model (embeddings N(0, 0.02) as in HF's Llama).
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let embed_tokens = EmbeddingConfig::new(config.vocab_size, config.hidden_size)
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            })
            .init(device);
        let mlp = |device: &B::Device| Mlp {
            gate_proj: linear(config.hidden_size, config.intermediate_size, false, device),
            up_proj: linear(config.hidden_size, config.intermediate_size, false, device),
            down_proj: linear(config.intermediate_size, config.hidden_size, false, device),
        };
        let layers = (0..config.num_hidden_layers)
            .map(|_| DecoderLayer {
                self_attn: Attention::new(config, device),
                mlp: mlp(device),
                input_layernorm: rms_norm(config, device),
                post_attention_layernorm: rms_norm(config, device),
            })
            .collect();
        Solver {
            embed_tokens,
            layers,
            norm: rms_norm(config, device),
            lm_head: (!config.tie_word_embeddings)
                .then(|| linear(config.hidden_size, config.vocab_size, false, device)),
            edit_head: EditHead::new(config.feature_rows(), device),
        }
    }

    /// Final hidden states, `[batch, len, hidden]`.
    pub fn hidden(&self, input: &ModelInput<B>) -> Tensor<B, 3> {
        let mut x = self.embed_tokens.forward(input.ids.clone());
        for layer in &self.layers {
            x = layer.forward(x, &input.rope, input.attention_bias.clone());
        }
        self.norm.forward(x)
    }

    /// Next-token logits, `[batch, len, vocab]`.
    pub fn logits(&self, input: &ModelInput<B>) -> Tensor<B, 3> {
        let hidden = self.hidden(input);
        let [batch, len, d] = hidden.dims();
        let logits = self.head(hidden.reshape([batch * len, d]));
        let vocab = logits.dims()[1];
        logits.reshape([batch, len, vocab])
    }

    /// The LM head on hidden states `[n, hidden]` → logits `[n, vocab]`.
    pub fn head(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => hidden.matmul(self.embed_tokens.weight.val().transpose()),
        }
    }
}
