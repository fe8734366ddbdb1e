//! AutoAugment's image operations on u8 HWC images (1 or 3 channels), with the semantics
//! torchvision gives them on PIL images (`torchvision.transforms.AutoAugment`): geometric ops are PIL affine
//! transforms with nearest-neighbour sampling, the enhance ops are PIL's `ImageEnhance` (a blend
//! with a degenerate image, computed in single precision and truncated), and the rest are PIL's
//! `ImageOps` look-up tables.

/// One operation of the AutoAugment / RandAugment op set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
    Invert,
}

pub const ALL: [Op; 14] = [
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
    Op::Rotate,
    Op::Brightness,
    Op::Color,
    Op::Contrast,
    Op::Sharpness,
    Op::Posterize,
    Op::Solarize,
    Op::AutoContrast,
    Op::Equalize,
    Op::Invert,
];

/// torchvision's `torch.linspace(start, end, bins)[bin]` in single precision (the first half
/// counted from `start`, the second from `end`, as PyTorch's kernel does).
fn linspace(start: f64, end: f64, bin: usize, bins: usize) -> f64 {
    let step = (end as f32 - start as f32) / (bins - 1) as f32;
    if bin < bins / 2 {
        start as f32 + step * bin as f32
    } else {
        end as f32 - step * (bins - 1 - bin) as f32
    }
    .into()
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::ShearX => "ShearX",
            Op::ShearY => "ShearY",
            Op::TranslateX => "TranslateX",
            Op::TranslateY => "TranslateY",
            Op::Rotate => "Rotate",
            Op::Brightness => "Brightness",
            Op::Color => "Color",
            Op::Contrast => "Contrast",
            Op::Sharpness => "Sharpness",
            Op::Posterize => "Posterize",
            Op::Solarize => "Solarize",
            Op::AutoContrast => "AutoContrast",
            Op::Equalize => "Equalize",
            Op::Invert => "Invert",
        }
    }

    /// Whether the magnitude is negated with probability 1/2.
    pub fn signed(self) -> bool {
        matches!(
            self,
            Op::ShearX
                | Op::ShearY
                | Op::TranslateX
                | Op::TranslateY
                | Op::Rotate
                | Op::Brightness
                | Op::Color
                | Op::Contrast
                | Op::Sharpness
        )
    }

    /// The magnitude of bin `bin` of `bins` (AutoAugment: 10) for an `h` x `w` image
    /// (torchvision's `_augmentation_space`).
    pub fn magnitude(self, bin: usize, bins: usize, h: usize, w: usize) -> f64 {
        let lin = |start, end| linspace(start, end, bin, bins);
        match self {
            Op::ShearX | Op::ShearY => lin(0.0, 0.3),
            Op::TranslateX => lin(0.0, 150.0 / 331.0 * w as f64),
            Op::TranslateY => lin(0.0, 150.0 / 331.0 * h as f64),
            Op::Rotate => lin(0.0, 30.0),
            Op::Brightness | Op::Color | Op::Contrast | Op::Sharpness => lin(0.0, 0.9),
            Op::Posterize => 8.0 - (bin as f64 / ((bins - 1) as f64 / 4.0)).round_ties_even(),
            Op::Solarize => lin(255.0, 0.0),
            Op::AutoContrast | Op::Equalize | Op::Invert => 0.0,
        }
    }

    /// Applies the op with `magnitude` (already signed) to an `h` x `w` x `c` image; `fill` is
    /// the value of pixels that geometric ops bring in from outside the image.
    pub fn apply(self, img: &[u8], h: usize, w: usize, c: usize, magnitude: f64, fill: u8) -> Vec<u8> {
        let center = [w as f64 * 0.5, h as f64 * 0.5];
        let shear = |sx: f64, sy: f64| inverse_affine([0.0, 0.0], 0.0, [0.0, 0.0], [sx, sy]);
        match self {
            Op::ShearX => affine(img, h, w, c, shear(magnitude.atan().to_degrees(), 0.0), fill),
            Op::ShearY => affine(img, h, w, c, shear(0.0, magnitude.atan().to_degrees()), fill),
            Op::TranslateX => affine(
                img,
                h,
                w,
                c,
                inverse_affine(center, 0.0, [magnitude.trunc(), 0.0], [0.0, 0.0]),
                fill,
            ),
            Op::TranslateY => affine(
                img,
                h,
                w,
                c,
                inverse_affine(center, 0.0, [0.0, magnitude.trunc()], [0.0, 0.0]),
                fill,
            ),
            Op::Rotate => affine(img, h, w, c, pil_rotation(magnitude, center), fill),
            Op::Brightness => blend(&vec![0; img.len()], img, 1.0 + magnitude),
            Op::Color => blend(
                &grayscale(img, c)
                    .iter()
                    .flat_map(|&l| std::iter::repeat_n(l, c))
                    .collect::<Vec<_>>(),
                img,
                1.0 + magnitude,
            ),
            Op::Contrast => {
                let gray = grayscale(img, c);
                let mean = gray.iter().map(|&v| v as f64).sum::<f64>() / gray.len() as f64;
                blend(&vec![(mean + 0.5) as u8; img.len()], img, 1.0 + magnitude)
            }
            Op::Sharpness => blend(&smooth(img, h, w, c), img, 1.0 + magnitude),
            Op::Posterize => {
                let mask = !((1u16 << (8 - magnitude as u32)) - 1) as u8;
                img.iter().map(|&v| v & mask).collect()
            }
            Op::Solarize => img
                .iter()
                .map(|&v| if (v as f64) < magnitude { v } else { 255 - v })
                .collect(),
            Op::AutoContrast => per_channel_lut(img, c, autocontrast_lut),
            Op::Equalize => per_channel_lut(img, c, equalize_lut),
            Op::Invert => img.iter().map(|&v| 255 - v).collect(),
        }
    }
}

/// torchvision's `_get_inverse_affine_matrix` (output -> input coordinates), angle and shear in degrees.
fn inverse_affine(center: [f64; 2], angle: f64, translate: [f64; 2], shear: [f64; 2]) -> [f64; 6] {
    let (rot, sx, sy) = (angle.to_radians(), shear[0].to_radians(), shear[1].to_radians());
    let [cx, cy] = center;
    let [tx, ty] = translate;
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// PIL's `Image.rotate(angle)` matrix about `center` (angle in degrees, counter-clockwise).
fn pil_rotation(angle: f64, center: [f64; 2]) -> [f64; 6] {
    let a = -(angle % 360.0).to_radians();
    let r = |v: f64| (v * 1e15).round() / 1e15;
    let mut m = [r(a.cos()), r(a.sin()), 0.0, r(-a.sin()), r(a.cos()), 0.0];
    let [cx, cy] = center;
    m[2] = m[0] * -cx + m[1] * -cy + cx;
    m[5] = m[3] * -cx + m[4] * -cy + cy;
    m
}

/// PIL's affine transform with nearest-neighbour sampling (`ImagingTransformAffine`): output
/// pixel (x, y) takes the input pixel at `floor(matrix . (x + 0.5, y + 0.5, 1))`, or `fill`
/// outside the image. A pure scale/translation is computed in floating point
/// (`ImagingScaleAffine`), anything else in 16.16 fixed point (`affine_fixed`), as PIL does:
/// the rounding of the fixed-point coefficients decides pixels on exact boundaries.
fn affine(img: &[u8], h: usize, w: usize, c: usize, m: [f64; 6], fill: u8) -> Vec<u8> {
    let mut out = vec![fill; img.len()];
    let mut put = |x: usize, y: usize, xi: i64, yi: i64| {
        if (0..w as i64).contains(&xi) && (0..h as i64).contains(&yi) {
            let (o, s) = ((y * w + x) * c, (yi as usize * w + xi as usize) * c);
            out[o..o + c].copy_from_slice(&img[s..s + c]);
        }
    };
    let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
    if m[1] == 0.0 && m[3] == 0.0 {
        for y in 0..h {
            let yi = coord(m[4] * (y as f64 + 0.5) + m[5]);
            for x in 0..w {
                put(x, y, coord(m[0] * (x as f64 + 0.5) + m[2]), yi);
            }
        }
    } else {
        let fix = |v: f64| (v * 65536.0 + 0.5).floor() as i64;
        let (a0, a1, a3, a4) = (fix(m[0]), fix(m[1]), fix(m[3]), fix(m[4]));
        let a2 = fix(m[2] + m[0] * 0.5 + m[1] * 0.5);
        let a5 = fix(m[5] + m[3] * 0.5 + m[4] * 0.5);
        for y in 0..h {
            for x in 0..w {
                let (xx, yy) = (a2 + a1 * y as i64 + a0 * x as i64, a5 + a4 * y as i64 + a3 * x as i64);
                put(x, y, xx >> 16, yy >> 16);
            }
        }
    }
    out
}

/// PIL's `Image.blend(degenerate, img, factor)`: `deg + factor * (img - deg)` in single
/// precision, truncated, clipped to 0..=255 when extrapolating.
fn blend(degenerate: &[u8], img: &[u8], factor: f64) -> Vec<u8> {
    let alpha = factor as f32;
    degenerate
        .iter()
        .zip(img)
        .map(|(&a, &b)| {
            let t = a as f32 + alpha * (b as f32 - a as f32);
            if t <= 0.0 {
                0
            } else if t >= 255.0 {
                255
            } else {
                t as u8
            }
        })
        .collect()
}

/// PIL's `convert("L")`: `(19595 R + 38470 G + 7471 B + 0x8000) >> 16`; gray images as they are.
pub(crate) fn grayscale(img: &[u8], c: usize) -> Vec<u8> {
    if c == 1 {
        return img.to_vec();
    }
    img.chunks_exact(3)
        .map(|p| ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8)
        .collect()
}

/// PIL's `ImageFilter.SMOOTH` (3x3 kernel [[1,1,1],[1,5,1],[1,1,1]] / 13, rounded); the border
/// rows and columns are copied unchanged.
fn smooth(img: &[u8], h: usize, w: usize, c: usize) -> Vec<u8> {
    let mut out = img.to_vec();
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            for ch in 0..c {
                let mut sum = 0f32;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let k = if dy == 1 && dx == 1 { 5.0 } else { 1.0 };
                        sum += k / 13.0 * img[((y + dy - 1) * w + x + dx - 1) * c + ch] as f32;
                    }
                }
                out[(y * w + x) * c + ch] = if sum <= 0.0 {
                    0
                } else if sum >= 255.0 {
                    255
                } else {
                    (sum + 0.5) as u8
                };
            }
        }
    }
    out
}

/// Applies `lut_of(histogram)` to each channel.
fn per_channel_lut(img: &[u8], c: usize, lut_of: fn(&[usize; 256]) -> [u8; 256]) -> Vec<u8> {
    let luts: Vec<[u8; 256]> = (0..c)
        .map(|ch| {
            let mut hist = [0usize; 256];
            img.iter().skip(ch).step_by(c).for_each(|&v| hist[v as usize] += 1);
            lut_of(&hist)
        })
        .collect();
    img.iter().enumerate().map(|(i, &v)| luts[i % c][v as usize]).collect()
}

fn identity_lut() -> [u8; 256] {
    std::array::from_fn(|i| i as u8)
}

/// PIL's `ImageOps.autocontrast` (cutoff 0): stretch [lo, hi] of the histogram to [0, 255].
fn autocontrast_lut(hist: &[usize; 256]) -> [u8; 256] {
    let lo = hist.iter().position(|&n| n > 0);
    let hi = hist.iter().rposition(|&n| n > 0);
    match (lo, hi) {
        (Some(lo), Some(hi)) if hi > lo => {
            let scale = 255.0 / (hi - lo) as f64;
            let offset = -(lo as f64) * scale;
            std::array::from_fn(|i| (i as f64 * scale + offset).clamp(0.0, 255.0) as i64 as u8)
        }
        _ => identity_lut(),
    }
}

/// PIL's `ImageOps.equalize`: `step = (total - count of the last used level) // 255`, then
/// level i maps to `(step // 2 + cumulative count below i) // step`, clipped to 255 (Pillow's
/// `point` clips its table to u8); identity when one level is used or `step` is 0.
fn equalize_lut(hist: &[usize; 256]) -> [u8; 256] {
    let used: Vec<usize> = hist.iter().copied().filter(|&n| n > 0).collect();
    if used.len() <= 1 {
        return identity_lut();
    }
    let step = (used.iter().sum::<usize>() - used[used.len() - 1]) / 255;
    if step == 0 {
        return identity_lut();
    }
    let mut n = step / 2;
    std::array::from_fn(|i| {
        let v = (n / step).min(255) as u8;
        n += hist[i];
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitudes_follow_torchvision_bins() {
        assert_eq!(Op::Posterize.magnitude(0, 10, 32, 32), 8.0);
        let bits: Vec<f64> = (0..10).map(|b| Op::Posterize.magnitude(b, 10, 32, 32)).collect();
        assert_eq!(bits, vec![8.0, 8.0, 7.0, 7.0, 6.0, 6.0, 5.0, 5.0, 4.0, 4.0]);
        assert_eq!(Op::Solarize.magnitude(0, 10, 8, 8), 255.0);
        assert_eq!(Op::Solarize.magnitude(9, 10, 8, 8), 0.0);
        assert!((Op::Rotate.magnitude(9, 10, 8, 8) - 30.0).abs() < 1e-6);
        assert!((Op::TranslateX.magnitude(9, 10, 32, 331) - 150.0).abs() < 1e-4);
        assert!((Op::ShearX.magnitude(3, 10, 8, 8) - 0.1).abs() < 1e-6);
        // RandAugment's 31 bins: bin 9 of Rotate is 9/30 of 30 degrees.
        assert!((Op::Rotate.magnitude(9, 31, 8, 8) - 9.0).abs() < 1e-5);
    }

    #[test]
    fn lut_ops_by_hand() {
        let img = [0u8, 64, 128, 255];
        assert_eq!(Op::Invert.apply(&img, 2, 2, 1, 0.0, 0), vec![255, 191, 127, 0]);
        assert_eq!(Op::Posterize.apply(&img, 2, 2, 1, 6.0, 0), vec![0, 64, 128, 252]);
        assert_eq!(Op::Solarize.apply(&img, 2, 2, 1, 128.0, 0), vec![0, 64, 127, 0]);
        assert_eq!(
            Op::AutoContrast.apply(&[50, 100, 150, 150], 2, 2, 1, 0.0, 0),
            vec![0, 127, 255, 255]
        );
        assert_eq!(Op::Brightness.apply(&img, 2, 2, 1, 0.5, 0), vec![0, 96, 192, 255]);
    }

    /// Pillow's step is `(total - last) // 255`: 260 pixels at 0, 250 at 50 and one at 200 give
    /// step 510 // 255 = 2, so 50 maps to (1 + 260) // 2 = 130 and 200 to 511 // 2 clipped to
    /// 255 (a step of 510 // 256 = 1 would send 50 to 255); 255 pixels at 10 and one at 20 give
    /// step 1, 10 -> 0 and 20 -> 255 (with 255 // 256 = 0 the image would stay unchanged).
    #[test]
    fn equalize_step_divides_by_255_as_pillow() {
        let img = |levels: &[(u8, usize)]| -> Vec<u8> {
            levels.iter().flat_map(|&(v, n)| std::iter::repeat_n(v, n)).collect()
        };
        let a = img(&[(0, 260), (50, 250), (200, 1)]);
        assert_eq!(
            Op::Equalize.apply(&a, 1, a.len(), 1, 0.0, 0),
            img(&[(0, 260), (130, 250), (255, 1)])
        );
        let b = img(&[(10, 255), (20, 1)]);
        assert_eq!(
            Op::Equalize.apply(&b, 1, b.len(), 1, 0.0, 0),
            img(&[(0, 255), (255, 1)])
        );
    }
}
