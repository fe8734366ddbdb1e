//! torchvision's `RandomResizedCrop` region draw for training (the evaluation fit is
//! `image::fit`; the resizing itself is PIL's, `image::resample`).
use crate::image::Region;
use darkmagic_base::rng::Rng;

/// torchvision's `RandomResizedCrop.get_params`: up to 10 tries of an area fraction uniform in
/// `scale` and an aspect ratio log-uniform in `ratio`; then a centre crop with the ratio clamped.
pub fn random_resized_region(h: usize, w: usize, scale: [f64; 2], ratio: [f64; 2], rng: &mut Rng) -> Region {
    let area = (h * w) as f64;
    let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * (scale[0] + (scale[1] - scale[0]) * rng.uniform());
        let aspect = (lr0 + (lr1 - lr0) * rng.uniform()).exp();
        let cw = (target * aspect).sqrt().round() as usize;
        let ch = (target / aspect).sqrt().round() as usize;
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            return Region {
                y: rng.below(h - ch + 1),
                x: rng.below(w - cw + 1),
                h: ch,
                w: cw,
            };
        }
    }
    let in_ratio = w as f64 / h as f64;
    let (ch, cw) = if in_ratio < ratio[0] {
        (((w as f64 / ratio[0]).round() as usize).min(h), w)
    } else if in_ratio > ratio[1] {
        (h, ((h as f64 * ratio[1]).round() as usize).min(w))
    } else {
        (h, w)
    };
    Region {
        y: (h - ch) / 2,
        x: (w - cw) / 2,
        h: ch,
        w: cw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_regions_respect_scale_and_ratio() {
        let mut rng = Rng::keyed(1, 0, 0);
        for _ in 0..2000 {
            let r = random_resized_region(64, 48, [0.25, 1.0], [0.75, 4.0 / 3.0], &mut rng);
            assert!(r.y + r.h <= 64 && r.x + r.w <= 48 && r.h > 0 && r.w > 0);
            let frac = (r.h * r.w) as f64 / (64.0 * 48.0);
            assert!(frac > 0.2 && frac <= 1.0, "{r:?}");
        }
        // Impossible requests fall back to the centre crop with the ratio clamped.
        let r = random_resized_region(10, 40, [2.0, 3.0], [1.0, 2.0], &mut rng);
        assert_eq!(
            r,
            Region {
                y: 0,
                x: 10,
                h: 10,
                w: 20
            }
        );
    }
}
