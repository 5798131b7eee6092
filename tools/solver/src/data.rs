//! Token-level data: repair examples encoded for ranking, and source code cut into chunks for
//! language-model pretraining.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

use crate::batch::{CandidateSpans, HostBatch, Row};
use crate::config::ModelConfig;
use crate::example::RepairExample;
use crate::features::{Feature, example_features};
use crate::tokenizer::SolverTokenizer;

/// Token budgets of a ranking row.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_problem_chars: usize,
    pub max_prompt_tokens: usize,
    pub max_candidate_tokens: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_problem_chars: 600,
            max_prompt_tokens: 320,
            max_candidate_tokens: 48,
        }
    }
}

/// A repair example as token ids and, per candidate, its features.
#[derive(Debug, Clone, Default)]
pub struct EncodedExample {
    /// Empty when the scorer does not use the language model.
    pub prompt: Vec<u32>,
    /// One per candidate; each empty when the scorer does not use the language model.
    pub candidates: Vec<Vec<u32>>,
    /// One per candidate (empty lists when the scorer does not use features).
    pub features: Vec<Vec<Feature>>,
    pub gold: Option<usize>,
}

/// Encodes `example` for the scorer `config` describes; the prompt keeps its head (problem
/// statement, path and the first lines of the window) when it runs over budget, candidates
/// keep their head too.
pub fn encode(
    example: &RepairExample,
    tokenizer: &SolverTokenizer,
    budget: &Budget,
    config: &ModelConfig,
) -> EncodedExample {
    let n = example.candidates.len();
    let terms = config.terms();
    let features = if terms.features {
        example_features(example, config.feature_norm, config.problem_buckets)
    } else {
        vec![Vec::new(); n]
    };
    if !terms.lm {
        return EncodedExample {
            prompt: Vec::new(),
            candidates: vec![Vec::new(); n],
            features,
            gold: example.gold,
        };
    }
    let mut prompt = tokenizer.encode(&example.prompt.render(budget.max_problem_chars));
    prompt.truncate(budget.max_prompt_tokens);
    let candidates = example
        .candidates
        .iter()
        .map(|c| {
            let mut ids = tokenizer.encode(&c.edit.render());
            ids.truncate(budget.max_candidate_tokens);
            ids
        })
        .collect();
    EncodedExample {
        prompt,
        candidates,
        features,
        gold: example.gold,
    }
}

/// What the language model can see of an example under `budget` (docs/learning.md), from
/// its encoding under the same budget.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Visibility {
    /// The target's first edited line is inside the truncated prompt.
    pub target_line_in_prompt: bool,
    /// Candidates whose truncated tokens equal another candidate's (indistinguishable).
    pub identical: usize,
    /// Candidates cut at `max_candidate_tokens`.
    pub cut: usize,
}

pub fn visibility(
    example: &RepairExample,
    encoded: &EncodedExample,
    tokenizer: &SolverTokenizer,
    budget: &Budget,
) -> Visibility {
    let mut out = Visibility::default();
    if let Some(gold) = example.gold {
        let line = example.candidates[gold].edit.start;
        let mut upto = example.prompt.clone();
        upto.lines.truncate(
            (line + 1)
                .saturating_sub(upto.first_line)
                .min(upto.lines.len()),
        );
        out.target_line_in_prompt = line >= example.prompt.first_line
            && tokenizer
                .encode(&upto.render(budget.max_problem_chars))
                .len()
                <= budget.max_prompt_tokens;
    }
    let mut seen = std::collections::HashMap::<&[u32], usize>::new();
    for ids in &encoded.candidates {
        // A rendered edit ends with `<|end|>`: without it, the budget cut it.
        out.cut += usize::from(ids.last() != Some(&tokenizer.end));
        *seen.entry(ids).or_default() += 1;
    }
    out.identical = seen.values().filter(|&&n| n > 1).sum();
    out
}

/// A training group: the gold candidate and up to `k - 1` others drawn at random, shuffled
/// so the gold one's place says nothing. Returns the chosen candidate indices and where gold is.
pub fn sample_group(
    example: &EncodedExample,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Option<(Vec<usize>, usize)> {
    let gold = example.gold?;
    let mut others: Vec<usize> = (0..example.candidates.len())
        .filter(|&i| i != gold)
        .collect();
    shuffle(&mut others, rng);
    others.truncate(k.saturating_sub(1));
    others.push(gold);
    shuffle(&mut others, rng);
    let at = others
        .iter()
        .position(|&i| i == gold)
        .expect("gold is in the group");
    Some((others, at))
}

pub fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Packs (example, chosen candidates) pairs into a batch for [`crate::batch::candidate_scores`].
pub fn ranking_batch(
    items: &[(&EncodedExample, &[usize])],
    pad: u32,
) -> (HostBatch, CandidateSpans) {
    let mut rows = Vec::with_capacity(items.len());
    let mut spans = Vec::with_capacity(items.len());
    let mut features = Vec::with_capacity(items.len());
    for (example, chosen) in items {
        let branches: Vec<Vec<u32>> = chosen
            .iter()
            .map(|&i| example.candidates[i].clone())
            .collect();
        let (row, row_spans) = Row::branched(&example.prompt, &branches);
        rows.push(row);
        spans.push(row_spans);
        features.push(
            chosen
                .iter()
                .map(|&i| example.features.get(i).cloned().unwrap_or_default())
                .collect(),
        );
    }
    (
        HostBatch::new(rows, pad),
        CandidateSpans { spans, features },
    )
}

/// Source texts joined by `eos` and cut into chunks of `len` tokens (the last partial chunk
/// is dropped).
pub fn code_chunks<'a>(
    texts: impl Iterator<Item = &'a str>,
    tokenizer: &SolverTokenizer,
    len: usize,
) -> Vec<Vec<u32>> {
    let mut stream = Vec::new();
    for text in texts {
        stream.extend(tokenizer.encode(text));
        stream.push(tokenizer.eos);
    }
    stream.chunks_exact(len).map(<[u32]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::rng_for;

    #[test]
    fn groups_hold_gold_once_and_at_varying_places() {
        let example = EncodedExample {
            prompt: vec![1, 2],
            candidates: (0..10).map(|i| vec![i]).collect(),
            gold: Some(7),
            ..Default::default()
        };
        let mut places = std::collections::BTreeSet::new();
        for seed in 0..30 {
            let (chosen, at) = sample_group(&example, 4, &mut rng_for("x", seed)).unwrap();
            assert_eq!(chosen.len(), 4);
            assert_eq!(chosen[at], 7);
            assert_eq!(chosen.iter().filter(|&&i| i == 7).count(), 1);
            places.insert(at);
        }
        assert!(places.len() > 1);
    }
}
