//! Augmentation policies built from the ops: AutoAugment's published ImageNet, CIFAR-10 and SVHN
//! policies (Cubuk et al. 2019, as torchvision lists them), RandAugment
//! (Cubuk et al. 2020, torchvision's op set and 31 magnitude bins, with optional magnitude
//! noise as timm's `mstd`) and the "standard color augmentation" (brightness, contrast and
//! saturation jitter in random order, as torchvision's `ColorJitter`).
use super::ops::Op;
use darkmagic_base::recipe::{AugmentConfig, RAND_BINS};
use darkmagic_base::rng::Rng;

/// One AutoAugment sub-policy: two ops, each `(op, probability, magnitude bin)`.
pub type SubPolicy = [(Op, f64, Option<usize>); 2];

const IMAGENET: [SubPolicy; 25] = [
    [(Op::Posterize, 0.4, Some(8)), (Op::Rotate, 0.6, Some(9))],
    [(Op::Solarize, 0.6, Some(5)), (Op::AutoContrast, 0.6, None)],
    [(Op::Equalize, 0.8, None), (Op::Equalize, 0.6, None)],
    [(Op::Posterize, 0.6, Some(7)), (Op::Posterize, 0.6, Some(6))],
    [(Op::Equalize, 0.4, None), (Op::Solarize, 0.2, Some(4))],
    [(Op::Equalize, 0.4, None), (Op::Rotate, 0.8, Some(8))],
    [(Op::Solarize, 0.6, Some(3)), (Op::Equalize, 0.6, None)],
    [(Op::Posterize, 0.8, Some(5)), (Op::Equalize, 1.0, None)],
    [(Op::Rotate, 0.2, Some(3)), (Op::Solarize, 0.6, Some(8))],
    [(Op::Equalize, 0.6, None), (Op::Posterize, 0.4, Some(6))],
    [(Op::Rotate, 0.8, Some(8)), (Op::Color, 0.4, Some(0))],
    [(Op::Rotate, 0.4, Some(9)), (Op::Equalize, 0.6, None)],
    [(Op::Equalize, 0.0, None), (Op::Equalize, 0.8, None)],
    [(Op::Invert, 0.6, None), (Op::Equalize, 1.0, None)],
    [(Op::Color, 0.6, Some(4)), (Op::Contrast, 1.0, Some(8))],
    [(Op::Rotate, 0.8, Some(8)), (Op::Color, 1.0, Some(2))],
    [(Op::Color, 0.8, Some(8)), (Op::Solarize, 0.8, Some(7))],
    [(Op::Sharpness, 0.4, Some(7)), (Op::Invert, 0.6, None)],
    [(Op::ShearX, 0.6, Some(5)), (Op::Equalize, 1.0, None)],
    [(Op::Color, 0.4, Some(0)), (Op::Equalize, 0.6, None)],
    [(Op::Equalize, 0.4, None), (Op::Solarize, 0.2, Some(4))],
    [(Op::Solarize, 0.6, Some(5)), (Op::AutoContrast, 0.6, None)],
    [(Op::Invert, 0.6, None), (Op::Equalize, 1.0, None)],
    [(Op::Color, 0.6, Some(4)), (Op::Contrast, 1.0, Some(8))],
    [(Op::Equalize, 0.8, None), (Op::Equalize, 0.6, None)],
];
const CIFAR10: [SubPolicy; 25] = [
    [(Op::Invert, 0.1, None), (Op::Contrast, 0.2, Some(6))],
    [(Op::Rotate, 0.7, Some(2)), (Op::TranslateX, 0.3, Some(9))],
    [(Op::Sharpness, 0.8, Some(1)), (Op::Sharpness, 0.9, Some(3))],
    [(Op::ShearY, 0.5, Some(8)), (Op::TranslateY, 0.7, Some(9))],
    [(Op::AutoContrast, 0.5, None), (Op::Equalize, 0.9, None)],
    [(Op::ShearY, 0.2, Some(7)), (Op::Posterize, 0.3, Some(7))],
    [(Op::Color, 0.4, Some(3)), (Op::Brightness, 0.6, Some(7))],
    [(Op::Sharpness, 0.3, Some(9)), (Op::Brightness, 0.7, Some(9))],
    [(Op::Equalize, 0.6, None), (Op::Equalize, 0.5, None)],
    [(Op::Contrast, 0.6, Some(7)), (Op::Sharpness, 0.6, Some(5))],
    [(Op::Color, 0.7, Some(7)), (Op::TranslateX, 0.5, Some(8))],
    [(Op::Equalize, 0.3, None), (Op::AutoContrast, 0.4, None)],
    [(Op::TranslateY, 0.4, Some(3)), (Op::Sharpness, 0.2, Some(6))],
    [(Op::Brightness, 0.9, Some(6)), (Op::Color, 0.2, Some(8))],
    [(Op::Solarize, 0.5, Some(2)), (Op::Invert, 0.0, None)],
    [(Op::Equalize, 0.2, None), (Op::AutoContrast, 0.6, None)],
    [(Op::Equalize, 0.2, None), (Op::Equalize, 0.6, None)],
    [(Op::Color, 0.9, Some(9)), (Op::Equalize, 0.6, None)],
    [(Op::AutoContrast, 0.8, None), (Op::Solarize, 0.2, Some(8))],
    [(Op::Brightness, 0.1, Some(3)), (Op::Color, 0.7, Some(0))],
    [(Op::Solarize, 0.4, Some(5)), (Op::AutoContrast, 0.9, None)],
    [(Op::TranslateY, 0.9, Some(9)), (Op::TranslateY, 0.7, Some(9))],
    [(Op::AutoContrast, 0.9, None), (Op::Solarize, 0.8, Some(3))],
    [(Op::Equalize, 0.8, None), (Op::Invert, 0.1, None)],
    [(Op::TranslateY, 0.7, Some(9)), (Op::AutoContrast, 0.9, None)],
];
const SVHN: [SubPolicy; 25] = [
    [(Op::ShearX, 0.9, Some(4)), (Op::Invert, 0.2, None)],
    [(Op::ShearY, 0.9, Some(8)), (Op::Invert, 0.7, None)],
    [(Op::Equalize, 0.6, None), (Op::Solarize, 0.6, Some(6))],
    [(Op::Invert, 0.9, None), (Op::Equalize, 0.6, None)],
    [(Op::Equalize, 0.6, None), (Op::Rotate, 0.9, Some(3))],
    [(Op::ShearX, 0.9, Some(4)), (Op::AutoContrast, 0.8, None)],
    [(Op::ShearY, 0.9, Some(8)), (Op::Invert, 0.4, None)],
    [(Op::ShearY, 0.9, Some(5)), (Op::Solarize, 0.2, Some(6))],
    [(Op::Invert, 0.9, None), (Op::AutoContrast, 0.8, None)],
    [(Op::Equalize, 0.6, None), (Op::Rotate, 0.9, Some(3))],
    [(Op::ShearX, 0.9, Some(4)), (Op::Solarize, 0.3, Some(3))],
    [(Op::ShearY, 0.8, Some(8)), (Op::Invert, 0.7, None)],
    [(Op::Equalize, 0.9, None), (Op::TranslateY, 0.6, Some(6))],
    [(Op::Invert, 0.9, None), (Op::Equalize, 0.6, None)],
    [(Op::Contrast, 0.3, Some(3)), (Op::Rotate, 0.8, Some(4))],
    [(Op::Invert, 0.8, None), (Op::TranslateY, 0.0, Some(2))],
    [(Op::ShearY, 0.7, Some(6)), (Op::Solarize, 0.4, Some(8))],
    [(Op::Invert, 0.6, None), (Op::Rotate, 0.8, Some(4))],
    [(Op::ShearY, 0.3, Some(7)), (Op::TranslateX, 0.9, Some(3))],
    [(Op::ShearX, 0.1, Some(6)), (Op::Invert, 0.6, None)],
    [(Op::Solarize, 0.7, Some(2)), (Op::TranslateY, 0.6, Some(7))],
    [(Op::ShearY, 0.8, Some(4)), (Op::Invert, 0.8, None)],
    [(Op::ShearX, 0.7, Some(9)), (Op::TranslateY, 0.8, Some(3))],
    [(Op::ShearY, 0.8, Some(5)), (Op::AutoContrast, 0.7, None)],
    [(Op::ShearX, 0.7, Some(2)), (Op::Invert, 0.1, None)],
];

/// The 25 sub-policies of a published AutoAugment policy.
pub fn autoaugment_table(name: &str) -> Option<&'static [SubPolicy; 25]> {
    match name {
        "imagenet" => Some(&IMAGENET),
        "cifar10" => Some(&CIFAR10),
        "svhn" => Some(&SVHN),
        _ => None,
    }
}

/// torchvision's `AutoAugment.forward`: one sub-policy drawn uniformly; each op applied if
/// `uniform <= p`, its magnitude negated with probability 1/2 for signed ops.
pub fn autoaugment(
    table: &[SubPolicy; 25],
    img: Vec<u8>,
    h: usize,
    w: usize,
    c: usize,
    fill: u8,
    rng: &mut Rng,
) -> Vec<u8> {
    let (sub, magnitudes) = autoaugment_draw(table, h, w, rng);
    let mut img = img;
    for (&(op, _, _), m) in table[sub].iter().zip(magnitudes) {
        if let Some(m) = m {
            img = op.apply(&img, h, w, c, m, fill);
        }
    }
    img
}

/// The random part of `autoaugment`: the drawn sub-policy and, for each of its two ops, the
/// signed magnitude it is applied with, or None when it is skipped.
pub fn autoaugment_draw(table: &[SubPolicy; 25], h: usize, w: usize, rng: &mut Rng) -> (usize, [Option<f64>; 2]) {
    let sub = rng.below(25);
    let magnitudes = table[sub].map(|(op, p, bin)| {
        let (apply, negate) = (rng.uniform() <= p, rng.below(2) == 0);
        let m = bin.map_or(0.0, |b| op.magnitude(b, 10, h, w));
        apply.then_some(if op.signed() && negate { -m } else { m })
    });
    (sub, magnitudes)
}

/// RandAugment's ops: torchvision's space (identity plus every op but Invert).
const RAND_OPS: [Option<Op>; 14] = [
    None,
    Some(Op::ShearX),
    Some(Op::ShearY),
    Some(Op::TranslateX),
    Some(Op::TranslateY),
    Some(Op::Rotate),
    Some(Op::Brightness),
    Some(Op::Color),
    Some(Op::Contrast),
    Some(Op::Sharpness),
    Some(Op::Posterize),
    Some(Op::Solarize),
    Some(Op::AutoContrast),
    Some(Op::Equalize),
];

/// RandAugment: `augment.randaugment_n` ops drawn uniformly with replacement, each at magnitude
/// bin `randaugment_m` of 31 (plus Gaussian noise of std `randaugment_mstd` bins, rounded and
/// clipped, when above 0), filling with `augment.fill`.
pub fn randaugment(img: Vec<u8>, h: usize, w: usize, c: usize, cfg: &AugmentConfig, rng: &mut Rng) -> Vec<u8> {
    let (n, m, mstd, fill) = (cfg.randaugment_n, cfg.randaugment_m, cfg.randaugment_mstd, cfg.fill);
    let mut img = img;
    for _ in 0..n {
        let Some(op) = RAND_OPS[rng.below(RAND_OPS.len())] else {
            continue;
        };
        let bin = if mstd > 0.0 {
            (m as f64 + mstd * rng.normal())
                .round()
                .clamp(0.0, (RAND_BINS - 1) as f64) as usize
        } else {
            m
        };
        let mag = op.magnitude(bin, RAND_BINS, h, w);
        let negate = rng.below(2) == 0;
        img = op.apply(&img, h, w, c, if op.signed() && negate { -mag } else { mag }, fill);
    }
    img
}

/// Color jitter: brightness, contrast and saturation factors uniform in `[1 - s, 1 + s]`,
/// applied in a random order (torchvision's `ColorJitter(s, s, s)` on PIL images).
pub fn color_jitter(img: Vec<u8>, h: usize, w: usize, c: usize, strength: f64, rng: &mut Rng) -> Vec<u8> {
    let mut order = [Op::Brightness, Op::Contrast, Op::Color];
    rng.shuffle(&mut order);
    let mut img = img;
    for op in order {
        let factor = 1.0 - strength + 2.0 * strength * rng.uniform();
        img = op.apply(&img, h, w, c, factor - 1.0, 0);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subpolicy_choice_op_rates_and_signs_match_their_probabilities() {
        // 100k draws of the ImageNet policy: each sub-policy about 1/25 of the time (chi-square),
        // each op of a sub-policy applied at its probability, and signed ops negated half the
        // time (tolerances of about 4 standard errors).
        let table = autoaugment_table("imagenet").unwrap();
        let n = 100_000;
        let mut chosen = [0usize; 25];
        let mut applied = [[0usize; 2]; 25];
        let (mut signed, mut negative) = (0usize, 0usize);
        for i in 0..n {
            let (s, magnitudes) = autoaugment_draw(table, 224, 224, &mut Rng::keyed(1, 0, i as u64));
            chosen[s] += 1;
            for (k, m) in magnitudes.iter().enumerate() {
                let (op, _, bin) = table[s][k];
                let Some(m) = *m else { continue };
                applied[s][k] += 1;
                let expected = bin.map_or(0.0, |b| op.magnitude(b, 10, 224, 224));
                assert_eq!(m.abs(), expected.abs(), "{op:?} at bin {bin:?}");
                if op.signed() && expected != 0.0 {
                    signed += 1;
                    negative += usize::from(m < 0.0);
                } else {
                    assert!(m >= 0.0, "{op:?} is unsigned");
                }
            }
        }
        let expected = n as f64 / 25.0;
        let chi2: f64 = chosen.iter().map(|&o| (o as f64 - expected).powi(2) / expected).sum();
        assert!(
            chi2 < 42.98,
            "chi-square {chi2} over the 99.9% quantile of 24 degrees of freedom"
        );
        for s in 0..25 {
            for k in 0..2 {
                let p = table[s][k].1;
                let rate = applied[s][k] as f64 / chosen[s] as f64;
                assert!((rate - p).abs() < 0.04, "sub-policy {s} op {k}: rate {rate} vs p {p}");
            }
        }
        let neg = negative as f64 / signed as f64;
        assert!(
            signed > 10_000 && (neg - 0.5).abs() < 0.02,
            "{negative} of {signed} negated"
        );
    }

    #[test]
    fn autoaugment_applies_the_drawn_subpolicy() {
        // A sub-policy with probability 1 for Invert and 0 for the other op always inverts.
        let table: [SubPolicy; 25] = [[(Op::Invert, 1.0, None), (Op::Equalize, 0.0, None)]; 25];
        let img = vec![10u8, 20, 30, 40];
        let out = autoaugment(&table, img, 2, 2, 1, 0, &mut Rng::keyed(0, 0, 0));
        assert_eq!(out, vec![245, 235, 225, 215]);
    }

    #[test]
    fn color_jitter_keeps_gray_images_gray_and_stays_in_range() {
        let img: Vec<u8> = (0..48).map(|i| (i * 5) as u8).collect();
        let out = color_jitter(img.clone(), 4, 4, 3, 0.4, &mut Rng::keyed(2, 0, 0));
        assert_eq!(out.len(), img.len());
        assert_ne!(out, img);
        let gray = vec![100u8; 16];
        let out = color_jitter(gray, 4, 4, 1, 0.4, &mut Rng::keyed(2, 0, 1));
        assert!(out.iter().all(|&v| v == out[0]), "a flat image stays flat");
    }
}
