//! Rows of token ids packed into model inputs, and the two losses the solver trains with.
//!
//! A row is a shared prefix (segment 0) followed by any number of branches (segments 1..):
//! each token sees the prefix and the earlier tokens of its own branch, and each branch's
//! positions continue from the end of the prefix. A plain text row is a prefix alone, which
//! is ordinary causal language modelling. A ranking row is a prompt followed by candidate
//! edits, so one forward pass scores every candidate as if it had been run after the prompt
//! on its own.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::config::ModelConfig;
use crate::features::Feature;
use crate::model::{ModelInput, Rope, Solver};

/// Added to the attention scores where a token may not look.
const BLOCKED: f32 = -1e9;
const PADDING: i32 = -1;

/// On the GPU, sequence lengths and counts of scored positions are padded up to a multiple
/// of this, so that tensor shapes repeat across tasks: every new shape compiles (and may
/// autotune) its kernels there, which cost minutes per run (docs/cuda.md). On the CPU
/// padding would only cost time.
pub const SHAPE_BUCKET: usize = if cfg!(feature = "cuda") { 64 } else { 1 };

/// One packed sequence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub ids: Vec<u32>,
    pub positions: Vec<usize>,
    /// 0 = shared prefix, k ≥ 1 = branch k.
    pub segments: Vec<i32>,
}

impl Row {
    /// A causal row (one segment).
    pub fn text(ids: Vec<u32>) -> Row {
        let n = ids.len();
        Row {
            ids,
            positions: (0..n).collect(),
            segments: vec![0; n],
        }
    }

    /// A prompt followed by branches; returns the row and, per branch, the range of its
    /// tokens in the row.
    pub fn branched(prefix: &[u32], branches: &[Vec<u32>]) -> (Row, Vec<std::ops::Range<usize>>) {
        let mut row = Row::text(prefix.to_vec());
        let mut spans = Vec::with_capacity(branches.len());
        for (k, branch) in branches.iter().enumerate() {
            let start = row.ids.len();
            row.ids.extend_from_slice(branch);
            row.positions
                .extend((0..branch.len()).map(|j| prefix.len() + j));
            row.segments
                .extend(std::iter::repeat_n(k as i32 + 1, branch.len()));
            spans.push(start..row.ids.len());
        }
        (row, spans)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// May token `i` attend to token `j`?
    fn sees(&self, i: usize, j: usize) -> bool {
        let (si, sj) = (self.segments[i], self.segments[j]);
        if si == PADDING || sj == PADDING {
            return i == j;
        }
        j <= i && (sj == 0 || sj == si)
    }

    /// The token that position `i` is trained to predict: the next token of its own
    /// segment, if any.
    pub fn next_in_segment(&self, i: usize) -> Option<u32> {
        let j = i + 1;
        (j < self.len() && self.segments[j] == self.segments[i] && self.segments[i] != PADDING)
            .then(|| self.ids[j])
    }
}

/// Rows padded to one length, on the host; [`HostBatch::to_input`] moves them to a device.
#[derive(Debug, Clone)]
pub struct HostBatch {
    pub rows: Vec<Row>,
    pub len: usize,
    /// Lengths are multiples of this (see [`SHAPE_BUCKET`]).
    pub bucket: usize,
}

impl HostBatch {
    /// Rows padded to the longest, rounded up to a multiple of [`SHAPE_BUCKET`].
    pub fn new(rows: Vec<Row>, pad: u32) -> HostBatch {
        HostBatch::bucketed(rows, pad, SHAPE_BUCKET)
    }

    /// Rows padded to the longest, rounded up to a multiple of `bucket`.
    pub fn bucketed(mut rows: Vec<Row>, pad: u32, bucket: usize) -> HostBatch {
        let bucket = bucket.max(1);
        let longest = rows.iter().map(Row::len).max().unwrap_or(0).max(1);
        let len = longest.div_ceil(bucket) * bucket;
        for row in &mut rows {
            let missing = len - row.len();
            row.ids.extend(std::iter::repeat_n(pad, missing));
            row.positions.extend(std::iter::repeat_n(0, missing));
            row.segments.extend(std::iter::repeat_n(PADDING, missing));
        }
        HostBatch { rows, len, bucket }
    }

    pub fn to_input<B: Backend>(&self, config: &ModelConfig, device: &B::Device) -> ModelInput<B> {
        let (batch, len) = (self.rows.len(), self.len);
        let ids: Vec<i64> = self
            .rows
            .iter()
            .flat_map(|r| r.ids.iter().map(|&id| id as i64))
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [batch, len]), device);

        let hd = config.head_dim();
        let half = hd / 2;
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| config.rope_theta.powf(-(2.0 * i as f64) / hd as f64))
            .collect();
        let mut cos = Vec::with_capacity(batch * len * hd);
        let mut sin = Vec::with_capacity(batch * len * hd);
        for row in &self.rows {
            for &pos in &row.positions {
                for _ in 0..2 {
                    for f in &inv_freq {
                        let angle = pos as f64 * f;
                        cos.push(angle.cos() as f32);
                        sin.push(angle.sin() as f32);
                    }
                }
            }
        }
        let table = |v: Vec<f32>| {
            Tensor::<B, 4>::from_data(TensorData::new(v, [batch, 1, len, hd]), device)
        };

        let mut bias = Vec::with_capacity(batch * len * len);
        for row in &self.rows {
            for i in 0..len {
                bias.extend((0..len).map(|j| if row.sees(i, j) { 0.0 } else { BLOCKED }));
            }
        }
        ModelInput {
            ids,
            rope: Rope {
                cos: table(cos),
                sin: table(sin),
            },
            attention_bias: Tensor::from_data(TensorData::new(bias, [batch, 1, len, len]), device),
        }
    }

    /// How many positions predict a token.
    pub fn predicted_positions(&self) -> usize {
        self.rows
            .iter()
            .map(|row| {
                (0..self.len)
                    .filter(|&i| row.next_in_segment(i).is_some())
                    .count()
            })
            .sum()
    }

    /// Per position, the id it predicts (0 where it predicts nothing) and a weight.
    fn targets(&self, weight: impl Fn(usize, usize) -> f32) -> (Vec<i64>, Vec<f32>) {
        let mut ids = Vec::with_capacity(self.rows.len() * self.len);
        let mut weights = Vec::with_capacity(self.rows.len() * self.len);
        for (b, row) in self.rows.iter().enumerate() {
            for i in 0..self.len {
                match row.next_in_segment(i) {
                    Some(next) => {
                        ids.push(next as i64);
                        weights.push(weight(b, i));
                    }
                    None => {
                        ids.push(0);
                        weights.push(0.0);
                    }
                }
            }
        }
        (ids, weights)
    }
}

/// Log-probability of each position's next token, `[batch, len]` (garbage where nothing is
/// predicted; callers weight those by zero).
fn next_token_log_probs<B: Backend>(
    model: &Solver<B>,
    batch: &HostBatch,
    input: &ModelInput<B>,
    targets: Vec<i64>,
) -> Tensor<B, 2> {
    let device = input.ids.device();
    let (rows, len) = (batch.rows.len(), batch.len);
    let log_probs = log_softmax(model.logits(input), 2);
    let index = Tensor::<B, 3, Int>::from_data(TensorData::new(targets, [rows, len, 1]), &device);
    log_probs.gather(2, index).reshape([rows, len])
}

/// Mean next-token cross-entropy over every predicted position of every row, and the
/// number of positions it averaged over.
pub fn lm_loss<B: Backend>(
    model: &Solver<B>,
    batch: &HostBatch,
    config: &ModelConfig,
) -> (Tensor<B, 1>, usize) {
    let count = batch.predicted_positions().max(1);
    (lm_loss_part(model, batch, config, count), count)
}

/// The summed next-token cross-entropy of `batch` divided by `count`: the share of a larger
/// batch's mean loss (`count` = that batch's predicted positions) that these rows make up.
pub fn lm_loss_part<B: Backend>(
    model: &Solver<B>,
    batch: &HostBatch,
    config: &ModelConfig,
    count: usize,
) -> Tensor<B, 1> {
    let device = model.embed_tokens.weight.device();
    let input = batch.to_input::<B>(config, &device);
    let (targets, weights) = batch.targets(|_, _| 1.0);
    let weights = Tensor::<B, 2>::from_data(
        TensorData::new(weights, [batch.rows.len(), batch.len]),
        &device,
    );
    let lp = next_token_log_probs(model, batch, &input, targets);
    (lp * weights).sum().neg().div_scalar(count.max(1) as f64)
}

/// Where each candidate of each row lies, for [`candidate_scores`], and its features.
#[derive(Debug, Clone)]
pub struct CandidateSpans {
    /// Per row, the token ranges of its candidates in the row (empty ranges when the scorer
    /// does not use the language model).
    pub spans: Vec<Vec<std::ops::Range<usize>>>,
    /// Per row, per candidate, its active features (see [`crate::features`]).
    pub features: Vec<Vec<Vec<Feature>>>,
}

impl CandidateSpans {
    pub fn max_candidates(&self) -> usize {
        self.spans.iter().map(Vec::len).max().unwrap_or(0).max(1)
    }
}

/// How candidate scores are made from token log-probabilities: the mean over the candidate's
/// scored tokens times this scale (length-normalised, so a long removal is not penalised for
/// its length alone; the scale keeps the softmax over candidates from being flat).
pub const SCORE_SCALE: f32 = 10.0;

/// The candidates' scores, `[batch, max_candidates]` (missing candidates score a large
/// negative number), and the language model's share of them when it scores.
pub struct Scores<B: Backend> {
    pub total: Tensor<B, 2>,
    /// [`SCORE_SCALE`] × each candidate's mean token log-probability, before `lm_scale`.
    pub lm: Option<Tensor<B, 2>>,
}

/// Each candidate's score under the terms `config` names: `lm_scale` × the language model's
/// score ([`lm_scores`]) plus the weights of its features.
pub fn candidate_scores<B: Backend>(
    model: &Solver<B>,
    batch: &HostBatch,
    spans: &CandidateSpans,
    config: &ModelConfig,
) -> Scores<B> {
    let device = model.embed_tokens.weight.device();
    let terms = config.terms();
    let (rows, k) = (spans.spans.len(), spans.max_candidates());
    let mut missing = vec![BLOCKED; rows * k];
    for (b, row_spans) in spans.spans.iter().enumerate() {
        for c in 0..row_spans.len() {
            missing[b * k + c] = 0.0;
        }
    }
    let mut total = Tensor::<B, 2>::from_data(TensorData::new(missing, [rows, k]), &device);
    let lm = terms.lm.then(|| lm_scores(model, batch, spans, config));
    if let Some(lm) = &lm {
        let scale = model.edit_head.lm_scale.val().reshape([1, 1]);
        total = total + lm.clone() * scale;
    }
    if terms.features {
        let width = spans
            .features
            .iter()
            .flatten()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(1)
            .div_ceil(batch.bucket)
            * batch.bucket;
        let mut ids = vec![0i64; rows * k * width];
        let mut values = vec![0f32; rows * k * width];
        for (b, row) in spans.features.iter().enumerate() {
            for (c, features) in row.iter().enumerate() {
                let at = (b * k + c) * width;
                for (j, (id, value)) in features.iter().enumerate() {
                    ids[at + j] = i64::from(*id);
                    values[at + j] = *value;
                }
            }
        }
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows * k, width]), &device);
        let values = Tensor::<B, 2>::from_data(TensorData::new(values, [rows * k, width]), &device);
        total = total
            + model
                .edit_head
                .feature_scores(ids, values)
                .reshape([rows, k]);
    }
    Scores { total, lm }
}

/// Each candidate's language-model score after the prompt, `[batch, max_candidates]`:
/// [`SCORE_SCALE`] × the mean log-probability of its tokens, the first token (always
/// `<|edit|>`, the same for all) left out; missing candidates score 0 here. Logits are
/// computed at the scored positions only, not over the prompt.
pub fn lm_scores<B: Backend>(
    model: &Solver<B>,
    batch: &HostBatch,
    spans: &CandidateSpans,
    config: &ModelConfig,
) -> Tensor<B, 2> {
    let device = model.embed_tokens.weight.device();
    let input = batch.to_input::<B>(config, &device);
    let (rows, len, k) = (batch.rows.len(), batch.len, spans.max_candidates());

    // Scored positions, flattened over the batch, with the token each predicts.
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    let mut membership_entries = Vec::new();
    for (b, row_spans) in spans.spans.iter().enumerate() {
        let row = &batch.rows[b];
        for (c, span) in row_spans.iter().enumerate() {
            let scored = span.end.saturating_sub(1).saturating_sub(span.start).max(1);
            for i in span.start..span.end.saturating_sub(1) {
                membership_entries.push((b * k + c, positions.len(), SCORE_SCALE / scored as f32));
                positions.push((b * len + i) as i64);
                targets.push(row.next_in_segment(i).unwrap_or(0) as i64);
            }
        }
    }
    // Padded positions repeat position 0 and belong to no candidate.
    let n = positions.len().max(1).div_ceil(batch.bucket) * batch.bucket;
    positions.resize(n, 0);
    targets.resize(n, 0);
    let hidden = model.hidden(&input);
    let d = hidden.dims()[2];
    let picked = hidden.reshape([rows * len, d]).select(
        0,
        Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [n]), &device),
    );
    let log_probs = log_softmax(model.head(picked), 1);
    let lp = log_probs.gather(
        1,
        Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, 1]), &device),
    );
    let mut membership = vec![0f32; rows * k * n];
    for (slot, position, weight) in membership_entries {
        membership[slot * n + position] = weight;
    }
    let membership = Tensor::<B, 2>::from_data(TensorData::new(membership, [rows * k, n]), &device);
    membership.matmul(lp).reshape([rows, k])
}

/// The ranking loss: cross-entropy of the gold candidate against the others under the
/// softmax of the candidate scores, plus `nll_weight` × the gold candidate's mean per-token
/// negative log-likelihood; each row weighted by `weights` (1 for a task, the
/// reward for an edit from a trace). Returns (total, ranking part, nll part).
pub fn ranking_loss<B: Backend>(
    scores: Scores<B>,
    gold: &[usize],
    weights: &[f32],
    nll_weight: f64,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let total_weight = weights.iter().sum::<f32>();
    ranking_loss_part(scores, gold, weights, nll_weight, total_weight)
}

/// [`ranking_loss`] of some rows of a larger batch whose weights sum to `total_weight`: the
/// parts of a batch add up to the loss of the whole.
pub fn ranking_loss_part<B: Backend>(
    scores: Scores<B>,
    gold: &[usize],
    weights: &[f32],
    nll_weight: f64,
    total_weight: f32,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let Scores { total: scores, lm } = scores;
    let device = scores.device();
    let rows = gold.len();
    let column =
        |values: Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(values, [rows, 1]), &device);
    let index = Tensor::<B, 2, Int>::from_data(
        TensorData::new(gold.iter().map(|&g| g as i64).collect(), [rows, 1]),
        &device,
    );
    let total_weight = total_weight.max(f32::MIN_POSITIVE) as f64;
    let weight = column(weights.to_vec());
    let ranking = (log_softmax(scores, 1).gather(1, index.clone()) * weight.clone())
        .sum()
        .neg()
        .div_scalar(total_weight);
    // The gold edit's per-token likelihood under the language model (nothing without it).
    let nll = match lm {
        Some(lm) => (lm.gather(1, index) * weight)
            .sum()
            .neg()
            .div_scalar(total_weight * SCORE_SCALE as f64),
        None => Tensor::<B, 1>::zeros([1], &device),
    };
    let total = ranking.clone() + nll.clone().mul_scalar(nll_weight);
    (total, ranking, nll)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_see_the_prefix_and_themselves_only() {
        let (row, spans) = Row::branched(&[1, 2, 3], &[vec![4, 5], vec![6, 7, 8]]);
        assert_eq!(spans, vec![3..5, 5..8]);
        assert_eq!(row.positions, vec![0, 1, 2, 3, 4, 3, 4, 5]);
        assert!(row.sees(4, 0) && row.sees(4, 3) && !row.sees(4, 5));
        assert!(row.sees(6, 2) && row.sees(6, 5) && !row.sees(6, 3) && !row.sees(6, 7));
        assert_eq!(
            row.next_in_segment(4),
            None,
            "a branch's last token predicts nothing"
        );
        assert_eq!(row.next_in_segment(5), Some(7));
        assert_eq!(
            row.next_in_segment(2),
            None,
            "the prompt's end predicts no branch"
        );
    }

    #[test]
    fn padding_sees_only_itself() {
        let batch = HostBatch::new(vec![Row::text(vec![1, 2, 3]), Row::text(vec![1])], 0);
        let short = &batch.rows[1];
        assert!(short.sees(2, 2) && !short.sees(2, 0) && !short.sees(1, 0));
        assert_eq!(short.next_in_segment(0), None);
    }
}
