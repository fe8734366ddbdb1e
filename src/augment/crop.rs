//! Crop-and-resize schemes: torchvision's `RandomResizedCrop` region draw for training and a
//! centre crop of a fraction of the image for evaluation, each resized back to the image's size.
use crate::rng::Rng;

/// A rectangle of an image: top row, left column, height, width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub y: usize,
    pub x: usize,
    pub h: usize,
    pub w: usize,
}

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

/// The centred region covering `fraction` of each side (the evaluation crop, e.g. 0.875).
pub fn center_region(h: usize, w: usize, fraction: f64) -> Region {
    let ch = ((h as f64 * fraction).round() as usize).clamp(1, h);
    let cw = ((w as f64 * fraction).round() as usize).clamp(1, w);
    Region {
        y: (h - ch) / 2,
        x: (w - cw) / 2,
        h: ch,
        w: cw,
    }
}

/// Resizes `region` of an HWC u8 image back to `h` x `w` with bilinear interpolation
/// (pixel centres at half-integers, edges clamped, no antialiasing).
pub fn resize_region(src: &[u8], h: usize, w: usize, c: usize, r: Region) -> Vec<u8> {
    let mut out = vec![0u8; h * w * c];
    let (sy, sx) = (r.h as f64 / h as f64, r.w as f64 / w as f64);
    for y in 0..h {
        let fy = ((y as f64 + 0.5) * sy - 0.5).clamp(0.0, (r.h - 1) as f64);
        let (y0, ty) = (fy.floor() as usize, fy - fy.floor());
        let y1 = (y0 + 1).min(r.h - 1);
        for x in 0..w {
            let fx = ((x as f64 + 0.5) * sx - 0.5).clamp(0.0, (r.w - 1) as f64);
            let (x0, tx) = (fx.floor() as usize, fx - fx.floor());
            let x1 = (x0 + 1).min(r.w - 1);
            let at = |yy: usize, xx: usize, ch: usize| src[((r.y + yy) * w + r.x + xx) * c + ch] as f64;
            for ch in 0..c {
                let top = at(y0, x0, ch) * (1.0 - tx) + at(y0, x1, ch) * tx;
                let bottom = at(y1, x0, ch) * (1.0 - tx) + at(y1, x1, ch) * tx;
                out[(y * w + x) * c + ch] = (top * (1.0 - ty) + bottom * ty).round() as u8;
            }
        }
    }
    out
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

    #[test]
    fn center_region_and_resize() {
        assert_eq!(
            center_region(32, 32, 0.875),
            Region {
                y: 2,
                x: 2,
                h: 28,
                w: 28
            }
        );
        // The whole image resized to itself is unchanged.
        let src: Vec<u8> = (0..48).collect();
        assert_eq!(resize_region(&src, 4, 4, 3, Region { y: 0, x: 0, h: 4, w: 4 }), src);
        // A 2x2 region doubled: bilinear with clamped edges.
        let img = [0u8, 100, 0, 0, 200, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let out = resize_region(&img, 4, 4, 1, Region { y: 0, x: 0, h: 2, w: 2 });
        assert_eq!(&out[..4], &[0, 25, 75, 100]);
        assert_eq!(&out[12..], &[200, 160, 80, 40]);
    }
}
