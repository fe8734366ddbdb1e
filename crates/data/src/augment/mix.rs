//! Batch-level mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) with soft targets.
//!
//! Each image `i` is mixed with image `n - 1 - i` of the same batch (timm's batch flip).
//! `lambda ~ Beta(alpha, alpha)`; mixup blends the pixels, CutMix pastes a box of area about
//! `1 - lambda` (timm's `rand_bbox`, centre uniform, box clipped at the border) and corrects
//! lambda to the kept area. Targets are `lambda * y_i + (1 - lambda) * y_j` with each `y` already
//! label-smoothed once (`1 - eps + eps/C` on the class, `eps/C` elsewhere): smoothing is applied
//! exactly once, explicitly, unlike timm's `Mixup` which smooths by default inside.
use darkmagic_base::recipe::AugmentConfig;
use darkmagic_base::rng::Rng;

/// What one batch gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mix {
    None,
    Mixup {
        lambda: f64,
    },
    /// Rows `y0..y1` and columns `x0..x1` come from the partner image; `lambda` is the kept area.
    CutMix {
        lambda: f64,
        y0: usize,
        y1: usize,
        x0: usize,
        x1: usize,
    },
}

impl Mix {
    /// Draws the mix of one batch of `h` x `w` images from the recipe's probabilities.
    pub fn draw(cfg: &AugmentConfig, h: usize, w: usize, rng: &mut Rng) -> Mix {
        let (mixup, cutmix) = (cfg.mixup_alpha > 0.0, cfg.cutmix_alpha > 0.0);
        if !(mixup || cutmix) || rng.uniform() >= cfg.mix_prob {
            return Mix::None;
        }
        let use_cutmix = cutmix && (!mixup || rng.uniform() < cfg.mix_switch_prob);
        if !use_cutmix {
            return Mix::Mixup {
                lambda: rng.beta(cfg.mixup_alpha, cfg.mixup_alpha),
            };
        }
        let lambda = rng.beta(cfg.cutmix_alpha, cfg.cutmix_alpha);
        let ratio = (1.0 - lambda).sqrt();
        let (ch, cw) = ((h as f64 * ratio) as usize, (w as f64 * ratio) as usize);
        let (cy, cx) = (rng.below(h), rng.below(w));
        let (y0, y1) = (cy.saturating_sub(ch / 2), (cy + ch / 2).min(h));
        let (x0, x1) = (cx.saturating_sub(cw / 2), (cx + cw / 2).min(w));
        let lambda = 1.0 - ((y1 - y0) * (x1 - x0)) as f64 / (h * w) as f64;
        Mix::CutMix { lambda, y0, y1, x0, x1 }
    }

    /// The weight of each image's own target.
    pub fn lambda(&self) -> f64 {
        match *self {
            Mix::None => 1.0,
            Mix::Mixup { lambda } | Mix::CutMix { lambda, .. } => lambda,
        }
    }

    /// Mixes a batch of `n` CHW float images in place.
    pub fn apply(&self, data: &mut [f32], n: usize, c: usize, h: usize, w: usize) {
        let len = c * h * w;
        let original = data.to_vec();
        for i in 0..n {
            let j = n - 1 - i;
            let (dst, src) = (&mut data[i * len..(i + 1) * len], &original[j * len..(j + 1) * len]);
            match *self {
                Mix::None => return,
                Mix::Mixup { lambda } => {
                    let (a, b) = (lambda as f32, (1.0 - lambda) as f32);
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = a * *d + b * s;
                    }
                }
                Mix::CutMix { y0, y1, x0, x1, .. } => {
                    for ch in 0..c {
                        for y in y0..y1 {
                            let row = ch * h * w + y * w;
                            dst[row + x0..row + x1].copy_from_slice(&src[row + x0..row + x1]);
                        }
                    }
                }
            }
        }
    }

    /// Soft targets (n x classes): smoothed one-hot labels, mixed with the partner's.
    pub fn targets(&self, labels: &[i64], classes: usize, smoothing: f64) -> Vec<f32> {
        let n = labels.len();
        let lambda = self.lambda();
        let mut t = vec![(smoothing / classes as f64) as f32; n * classes];
        let on = (1.0 - smoothing) as f32;
        for i in 0..n {
            let row = &mut t[i * classes..(i + 1) * classes];
            row[labels[i] as usize] += on * lambda as f32;
            row[labels[n - 1 - i] as usize] += on * (1.0 - lambda) as f32;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mixup: f64, cutmix: f64) -> AugmentConfig {
        AugmentConfig {
            mixup_alpha: mixup,
            cutmix_alpha: cutmix,
            ..AugmentConfig::default()
        }
    }

    #[test]
    fn soft_targets_sum_to_one_and_smooth_once() {
        let m = Mix::Mixup { lambda: 0.7 };
        let t = m.targets(&[0, 2, 1], 4, 0.1);
        for row in t.chunks(4) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
        }
        // Row 0 mixes label 0 (0.7) with the partner's label 1 (0.3): 0.025 + 0.9 * weight.
        let expected = [0.025 + 0.9 * 0.7, 0.025 + 0.9 * 0.3, 0.025, 0.025];
        assert!(
            t[..4].iter().zip(expected).all(|(a, e)| (*a as f64 - e).abs() < 1e-6),
            "{:?}",
            &t[..4]
        );
        // The middle image is its own partner: plain smoothed one-hot.
        assert!((t[4 + 2] as f64 - (0.9 + 0.025)).abs() < 1e-6);
        assert_eq!(Mix::None.targets(&[1], 2, 0.0), vec![0.0, 1.0]);
    }

    #[test]
    fn mixup_lambda_follows_beta_and_blends_pixels() {
        let mut rng = Rng::keyed(1, 2, 3);
        let n = 20_000;
        let ls: Vec<f64> = (0..n)
            .map(|_| Mix::draw(&cfg(0.4, 0.0), 4, 4, &mut rng).lambda())
            .collect();
        let mean = ls.iter().sum::<f64>() / n as f64;
        let var = ls.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            (mean - 0.5).abs() < 0.01 && (var - 1.0 / (4.0 * 1.8)).abs() < 0.005,
            "{mean} {var}"
        );
        let mut data = vec![1.0f32, 1.0, 0.0, 0.0]; // two 1x1x2 images
        Mix::Mixup { lambda: 0.25 }.apply(&mut data, 2, 1, 1, 2);
        assert_eq!(data, vec![0.25, 0.25, 0.75, 0.75]);
    }

    #[test]
    fn cutmix_lambda_equals_the_kept_area() {
        let mut rng = Rng::keyed(5, 0, 0);
        for _ in 0..200 {
            let Mix::CutMix { lambda, y0, y1, x0, x1 } = Mix::draw(&cfg(0.0, 1.0), 8, 6, &mut rng) else {
                panic!("cutmix expected")
            };
            assert!(y0 <= y1 && y1 <= 8 && x0 <= x1 && x1 <= 6);
            let mut data: Vec<f32> = [vec![0.0f32; 48], vec![1.0f32; 48]].concat();
            Mix::CutMix { lambda, y0, y1, x0, x1 }.apply(&mut data, 2, 1, 8, 6);
            let pasted = data[..48].iter().filter(|&&v| v == 1.0).count();
            assert!((lambda - (1.0 - pasted as f64 / 48.0)).abs() < 1e-12);
        }
    }

    #[test]
    fn probabilities_pick_none_mixup_or_cutmix() {
        let mut rng = Rng::keyed(9, 0, 0);
        let both = AugmentConfig {
            mix_prob: 0.8,
            mix_switch_prob: 0.25,
            ..cfg(1.0, 1.0)
        };
        let (mut none, mut cut) = (0, 0);
        let n = 20_000;
        for _ in 0..n {
            match Mix::draw(&both, 8, 8, &mut rng) {
                Mix::None => none += 1,
                Mix::CutMix { .. } => cut += 1,
                Mix::Mixup { .. } => {}
            }
        }
        assert!((none as f64 / n as f64 - 0.2).abs() < 0.01, "{none}");
        assert!((cut as f64 / n as f64 - 0.8 * 0.25).abs() < 0.01, "{cut}");
        assert_eq!(Mix::draw(&cfg(0.0, 0.0), 8, 8, &mut rng), Mix::None);
    }
}
