//! The sampling policy over candidate edits: a softmax over their logits with a temperature
//! and a nucleus (top-p), from which k distinct candidates are drawn without replacement.

use std::collections::BTreeSet;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

/// A uniform number in the open interval (0, 1).
fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// Draws up to `k` distinct indices of `logits`, skipping `tried`. With `temperature` ≤ 0 it
/// takes the `k` best (ties: lower index first). Otherwise it samples without replacement
/// from the softmax of `logits / temperature` restricted to the smallest set of candidates
/// whose probability reaches `top_p` (the Gumbel-top-k trick, seeded by `rng`); when that set
/// holds fewer than `k` candidates the rest are the best ones outside it.
pub fn sample_distinct(
    logits: &[f64],
    temperature: f64,
    top_p: f64,
    k: usize,
    tried: &BTreeSet<usize>,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let mut open: Vec<usize> = (0..logits.len()).filter(|i| !tried.contains(i)).collect();
    open.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if temperature <= 0.0 || open.len() <= k {
        open.truncate(k);
        return open;
    }
    let max = logits[open[0]];
    let weights: Vec<f64> = open
        .iter()
        .map(|&i| ((logits[i] - max) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut nucleus = 0;
    let mut mass = 0.0;
    while nucleus < open.len() && (nucleus == 0 || mass < top_p * total) {
        mass += weights[nucleus];
        nucleus += 1;
    }
    let mut keyed: Vec<(f64, usize)> = open[..nucleus]
        .iter()
        .map(|&i| {
            let gumbel = -(-uniform(rng).ln()).ln();
            (logits[i] / temperature + gumbel, i)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut picked: Vec<usize> = keyed.into_iter().take(k).map(|(_, i)| i).collect();
    picked.extend(open[nucleus..].iter().take(k - picked.len()));
    picked
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;

    use super::*;

    #[test]
    fn greedy_takes_the_best_untried() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let tried = BTreeSet::from([1]);
        let picked = sample_distinct(&[0.0, 5.0, 3.0, 3.0], 0.0, 1.0, 2, &tried, &mut rng);
        assert_eq!(picked, [2, 3]);
    }

    #[test]
    fn sampling_is_seeded_distinct_and_follows_the_softmax() {
        let logits = [2.0, 1.0, 0.0, -1.0];
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            sample_distinct(&logits, 1.0, 1.0, 2, &BTreeSet::new(), &mut rng)
        };
        assert_eq!(draw(7), draw(7));
        let mut first = [0usize; 4];
        for seed in 0..4000 {
            let picked = draw(seed);
            assert_eq!(picked.len(), 2);
            assert_ne!(picked[0], picked[1]);
            first[picked[0]] += 1;
        }
        // P(first = 0) = e^2 / (e^2 + e + 1 + e^-1) ≈ 0.644.
        let p0 = first[0] as f64 / 4000.0;
        assert!((p0 - 0.644).abs() < 0.03, "{p0}");
        assert!(first[0] > first[1] && first[1] > first[2] && first[2] > first[3]);
    }

    #[test]
    fn the_nucleus_cuts_the_tail_and_the_rest_fills_by_rank() {
        let logits = [10.0, 0.0, -1.0];
        for seed in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // The top candidate holds > 99.9% of the mass: it is the nucleus.
            let picked = sample_distinct(&logits, 1.0, 0.9, 2, &BTreeSet::new(), &mut rng);
            assert_eq!(picked, [0, 1]);
        }
    }
}
