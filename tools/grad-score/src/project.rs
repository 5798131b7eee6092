//! A seeded sparse Rademacher projection of gradients to `dim` dimensions.
//!
//! A dense d × n sign matrix costs n·d operations per gradient (2.4M parameters × 8192 ≈
//! 2·10¹⁰ for the tiny model): too slow on a CPU. Each coordinate instead goes to `nonzeros`
//! output dimensions chosen by a seeded hash, with a hashed sign and weight 1/√nonzeros (the
//! sparse Johnson–Lindenstrauss transform): inner products are preserved in expectation, the
//! cost is n·nonzeros, and no matrix is ever stored, so memory is O(dim) beyond the gradient.

/// Projects gradients; the same seed, dimension and sparsity always project alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projector {
    pub dim: usize,
    pub nonzeros: usize,
    pub seed: u64,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Projector {
    /// Adds the projection of `block`, whose first coordinate is global coordinate `offset`
    /// of the flattened gradient, into `out` (length `dim`).
    pub fn add_block(&self, offset: usize, block: &[f32], out: &mut [f64]) {
        let weight = 1.0 / (self.nonzeros as f64).sqrt();
        let key = splitmix(self.seed);
        for (i, &value) in block.iter().enumerate() {
            if value == 0.0 {
                continue;
            }
            let coordinate = (offset + i) as u64;
            for j in 0..self.nonzeros as u64 {
                let h = splitmix(key ^ coordinate.wrapping_mul(0x100_0000_01b3).wrapping_add(j));
                let slot = (h % self.dim as u64) as usize;
                let sign = if h >> 63 == 0 { weight } else { -weight };
                out[slot] += sign * f64::from(value);
            }
        }
    }

    /// The projection of a whole flattened gradient.
    pub fn project(&self, gradient: &[f32]) -> Vec<f64> {
        let mut out = vec![0.0; self.dim];
        self.add_block(0, gradient, &mut out);
        out
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// The cosine of `a` and `b`, 0 when either is zero.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let denominator = norm(a) * norm(b);
    if denominator == 0.0 {
        0.0
    } else {
        (dot(a, b) / denominator).clamp(-1.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two gradient-like vectors with a chosen exact cosine.
    fn pair(n: usize, mix: f64) -> (Vec<f32>, Vec<f32>) {
        let noise = |seed: u64, i: usize| {
            let h = splitmix(seed ^ (i as u64).wrapping_mul(0x9e37_79b9));
            (h as f64 / u64::MAX as f64) * 2.0 - 1.0
        };
        let a: Vec<f32> = (0..n).map(|i| noise(1, i) as f32).collect();
        let b: Vec<f32> = (0..n)
            .map(|i| (mix * noise(1, i) + (1.0 - mix) * noise(2, i)) as f32)
            .collect();
        (a, b)
    }

    fn exact(a: &[f32], b: &[f32]) -> f64 {
        let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
        cosine(&to64(a), &to64(b))
    }

    #[test]
    fn the_projected_cosine_approximates_the_exact_one_at_8192_dimensions() {
        let projector = Projector {
            dim: 8192,
            nonzeros: 4,
            seed: 3,
        };
        for mix in [0.0, 0.3, 0.7, 0.95] {
            let (a, b) = pair(400_000, mix);
            let (pa, pb) = (projector.project(&a), projector.project(&b));
            let (want, got) = (exact(&a, &b), cosine(&pa, &pb));
            assert!(
                (want - got).abs() < 0.03,
                "mix {mix}: exact {want}, projected {got}"
            );
        }
    }

    #[test]
    fn blocks_add_up_to_the_whole_and_the_seed_fixes_the_result() {
        let projector = Projector {
            dim: 64,
            nonzeros: 2,
            seed: 9,
        };
        let (a, _) = pair(1000, 0.0);
        let whole = projector.project(&a);
        let mut parts = vec![0.0; 64];
        projector.add_block(0, &a[..300], &mut parts);
        projector.add_block(300, &a[300..], &mut parts);
        for (x, y) in whole.iter().zip(&parts) {
            assert!((x - y).abs() < 1e-9);
        }
        assert_eq!(projector.project(&a), whole);
        let other = Projector {
            seed: 10,
            ..projector
        };
        assert_ne!(other.project(&a), whole);
    }
}
