//! Augmentations that erase rectangles of a normalised CHW image, after the per-image policy:
//! CutOut (DeVries & Taylor 2017) and random erasing (Zhong et al. 2020, as timm's
//! `RandomErasing`). Erased pixels get 0, the dataset mean after normalisation, or noise.
use darkmagic_base::recipe::{AugmentConfig, EraseMode};
use darkmagic_base::rng::Rng;

/// Applies the recipe's CutOut, then its random erasing, each if enabled.
pub fn apply(img: &mut [f32], c: usize, h: usize, w: usize, cfg: &AugmentConfig, rng: &mut Rng) {
    for patch in draw(c, h, w, cfg, rng) {
        patch.paint(c, h, w, |i, v| img[i] = v);
    }
}

/// The rectangles the recipe's CutOut, then its random erasing, erase in one image, in order
/// (a later one paints over an earlier one), drawn from `rng` as [`apply`] draws them: the host
/// path paints them into the image, the device path (`darkmagic::loader::resident`) into a mask.
pub fn draw(c: usize, h: usize, w: usize, cfg: &AugmentConfig, rng: &mut Rng) -> Vec<Patch> {
    let mut patches = Vec::new();
    let side = (cfg.cutout_fraction * h.min(w) as f64).round() as usize;
    if side > 0 {
        cutout(&mut patches, h, w, side, cfg.cutout_count, rng);
    }
    if cfg.erase_prob > 0.0 {
        random_erase(&mut patches, c, h, w, cfg, rng);
    }
    patches
}

/// A rectangle of an image: top row, left column, height, width.
#[derive(Clone, Debug, PartialEq)]
pub struct Rect {
    pub y: usize,
    pub x: usize,
    pub h: usize,
    pub w: usize,
}

/// What an erased rectangle holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Fill {
    /// 0, the mean after normalisation.
    Zero,
    /// One value per channel.
    Channels(Vec<f32>),
    /// One value per pixel of the rectangle, channel by channel, row by row.
    Pixels(Vec<f32>),
}

/// One erased rectangle and its fill.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    pub rect: Rect,
    pub fill: Fill,
}

impl Patch {
    /// Calls `set(i, value)` for every element `i` of a CHW image of `c` x `h` x `w` the patch
    /// covers, in channel, row, column order.
    pub fn paint(&self, c: usize, h: usize, w: usize, mut set: impl FnMut(usize, f32)) {
        let r = &self.rect;
        let mut k = 0;
        for ch in 0..c {
            for y in r.y..r.y + r.h {
                for x in r.x..r.x + r.w {
                    let v = match &self.fill {
                        Fill::Zero => 0.0,
                        Fill::Channels(v) => v[ch],
                        Fill::Pixels(v) => v[k],
                    };
                    set(ch * h * w + y * w + x, v);
                    k += 1;
                }
            }
        }
    }
}

/// CutOut: `count` squares of side `size` set to 0 (the mean), each centred uniformly at random
/// and clipped by the border.
fn cutout(out: &mut Vec<Patch>, h: usize, w: usize, size: usize, count: usize, rng: &mut Rng) {
    for _ in 0..count {
        let (cy, cx) = (rng.below(h), rng.below(w));
        let (y0, y1) = (cy.saturating_sub(size / 2), (cy + size.div_ceil(2)).min(h));
        let (x0, x1) = (cx.saturating_sub(size / 2), (cx + size.div_ceil(2)).min(w));
        let rect = Rect {
            y: y0,
            x: x0,
            h: y1 - y0,
            w: x1 - x0,
        };
        out.push(Patch { rect, fill: Fill::Zero });
    }
}

/// timm's `RandomErasing._erase`: with probability `erase_prob`, `erase_count` rectangles, each
/// of up to 10 tries drawing an area fraction uniform in `erase_area` (split across the count)
/// and an aspect ratio h/w log-uniform in `erase_ratio`; a rectangle that fits strictly inside
/// the image is placed uniformly and filled as `erase_mode` says.
fn random_erase(out: &mut Vec<Patch>, c: usize, h: usize, w: usize, cfg: &AugmentConfig, rng: &mut Rng) {
    if rng.uniform() > cfg.erase_prob {
        return;
    }
    let area = (h * w) as f64;
    let [lr0, lr1] = cfg.erase_ratio.map(f64::ln);
    for _ in 0..cfg.erase_count {
        for _ in 0..10 {
            let [a0, a1] = cfg.erase_area;
            let target = (a0 + (a1 - a0) * rng.uniform()) * area / cfg.erase_count as f64;
            let aspect = (lr0 + (lr1 - lr0) * rng.uniform()).exp();
            let eh = (target * aspect).sqrt().round() as usize;
            let ew = (target / aspect).sqrt().round() as usize;
            if ew < w && eh < h {
                let rect = Rect {
                    y: rng.below(h - eh + 1),
                    x: rng.below(w - ew + 1),
                    h: eh,
                    w: ew,
                };
                let fill = match cfg.erase_mode {
                    EraseMode::Const => Fill::Zero,
                    EraseMode::Rand => Fill::Channels((0..c).map(|_| rng.normal() as f32).collect()),
                    EraseMode::Pixel => Fill::Pixels((0..c * eh * ew).map(|_| rng.normal() as f32).collect()),
                };
                out.push(Patch { rect, fill });
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutout_zeroes_a_clipped_square() {
        let mut rng = Rng::keyed(4, 0, 0);
        let mut seen_clipped = false;
        for _ in 0..200 {
            let mut img = vec![1.0f32; 2 * 8 * 8];
            let cfg = AugmentConfig {
                cutout_fraction: 0.5,
                cutout_count: 1,
                ..AugmentConfig::default()
            };
            apply(&mut img, 2, 8, 8, &cfg, &mut rng);
            let zeros = img[..64].iter().filter(|&&v| v == 0.0).count();
            assert!(zeros > 0 && zeros <= 16, "{zeros}");
            assert_eq!(img[..64], img[64..], "every channel gets the same square");
            seen_clipped |= zeros < 16;
        }
        assert!(seen_clipped, "squares at the border are clipped");
    }

    fn erasing(prob: f64, mode: EraseMode) -> AugmentConfig {
        AugmentConfig {
            erase_prob: prob,
            erase_mode: mode,
            ..AugmentConfig::default()
        }
    }

    /// The bounding box (rows, cols) of the pixels of channel 0 that are not 1.0.
    fn erased_box(img: &[f32], h: usize, w: usize) -> Option<(usize, usize, usize)> {
        let idx: Vec<usize> = (0..h * w).filter(|&i| img[i] != 1.0).collect();
        let (ys, xs): (Vec<usize>, Vec<usize>) = idx.iter().map(|&i| (i / w, i % w)).unzip();
        let rows = ys.iter().max()? - ys.iter().min()? + 1;
        let cols = xs.iter().max()? - xs.iter().min()? + 1;
        Some((rows, cols, idx.len()))
    }

    #[test]
    fn random_erasing_rate_area_and_aspect_follow_timm() {
        let (h, w, n) = (64, 64, 4000);
        let cfg = erasing(0.5, EraseMode::Const);
        let (mut erased, mut area_sum) = (0, 0.0);
        for i in 0..n {
            let mut img = vec![1.0f32; 3 * h * w];
            apply(&mut img, 3, h, w, &cfg, &mut Rng::keyed(0, 0, i));
            let Some((rows, cols, count)) = erased_box(&img, h, w) else {
                continue;
            };
            erased += 1;
            assert_eq!(rows * cols, count, "a filled rectangle");
            assert!(
                img[h * w..].iter().zip(&img[..h * w]).all(|(a, b)| a == b),
                "same in every channel"
            );
            let frac = count as f64 / (h * w) as f64;
            assert!((0.015..=0.35).contains(&frac), "area {frac}");
            let aspect = rows as f64 / cols as f64;
            assert!((0.25..=4.0).contains(&aspect), "aspect {aspect}");
            area_sum += frac;
        }
        let rate = erased as f64 / n as f64;
        assert!((rate - 0.5).abs() < 0.03, "rate {rate}");
        // Area fractions are uniform in [0.02, 1/3], less the draws that do not fit (rare here).
        let mean = area_sum / erased as f64;
        assert!((mean - (0.02 + 1.0 / 3.0) / 2.0).abs() < 0.01, "mean area {mean}");
    }

    #[test]
    fn pixel_mode_fills_standard_normal_noise() {
        let (h, w) = (64, 64);
        let mut values = Vec::new();
        for i in 0..200 {
            let mut img = vec![1.0f32; h * w];
            apply(
                &mut img,
                1,
                h,
                w,
                &erasing(1.0, EraseMode::Pixel),
                &mut Rng::keyed(1, 0, i),
            );
            values.extend(img.iter().filter(|&&v| v != 1.0).map(|&v| v as f64));
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(
            n > 100_000.0 && mean.abs() < 0.02 && (var - 1.0).abs() < 0.02,
            "{n} {mean} {var}"
        );
    }
}
