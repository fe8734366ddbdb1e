//! Counter-based random numbers: every draw derives from `(seed, stream, index)` only.
//!
//! This gives *common random numbers* across trials (a variance-reduction device of simulation studies): the baseline and a variant run
//! with the same seed see the same data order and the same augmentation draws, whatever the
//! number of threads, so their accuracies can be compared pair by pair.

/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast generator with good statistical quality.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

/// One SplitMix64 output step, also used to mix keys into a seed.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rng {
    /// A generator for one `(seed, stream, index)` triple, e.g. (run seed, epoch, sample index).
    pub fn keyed(seed: u64, stream: u64, index: u64) -> Self {
        let key = mix(mix(mix(seed ^ GOLDEN) ^ stream.wrapping_mul(GOLDEN)) ^ index);
        Rng { state: key }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (n > 0), by Lemire's multiply-shift (bias < 2^-64 * n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal, by the Box-Muller transform.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Gamma(shape, 1), by Marsaglia & Tsang (2000); shapes below 1 use the boost
    /// `Gamma(a) = Gamma(a + 1) * U^(1/a)`.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = 1.0 - self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Beta(a, b) as `X / (X + Y)` with `X ~ Gamma(a)`, `Y ~ Gamma(b)`.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }

    /// Fisher-Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_stream_and_different_keys_differ() {
        let a: Vec<u64> = (0..4).map(|_| Rng::keyed(1, 2, 3).next_u64()).collect();
        assert!(a.iter().all(|&x| x == a[0]));
        assert_ne!(Rng::keyed(1, 2, 3).next_u64(), Rng::keyed(1, 2, 4).next_u64());
        assert_ne!(Rng::keyed(1, 2, 3).next_u64(), Rng::keyed(1, 3, 3).next_u64());
        assert_ne!(Rng::keyed(1, 2, 3).next_u64(), Rng::keyed(2, 2, 3).next_u64());
    }

    #[test]
    fn uniform_mean_and_below_range() {
        let mut r = Rng::keyed(7, 0, 0);
        let n = 100_000;
        let mean = (0..n).map(|_| r.uniform()).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[r.below(5)] += 1;
        }
        for c in counts {
            assert!((c as f64 / n as f64 - 0.2).abs() < 0.01, "{counts:?}");
        }
    }

    #[test]
    fn beta_moments_match_the_distribution() {
        // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
        for a in [0.2, 1.0, 2.0] {
            let mut r = Rng::keyed(11, 0, 0);
            let n = 100_000;
            let xs: Vec<f64> = (0..n).map(|_| r.beta(a, a)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let expected = 1.0 / (4.0 * (2.0 * a + 1.0));
            assert!((mean - 0.5).abs() < 0.005, "a {a}: mean {mean}");
            assert!(
                (var - expected).abs() < 0.03 * expected,
                "a {a}: var {var} vs {expected}"
            );
            assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..50).collect();
        Rng::keyed(3, 1, 0).shuffle(&mut v);
        assert_ne!(v, (0..50).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
    }
}
