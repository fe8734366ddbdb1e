//! Resizing exactly as PIL's `Image.resize` does it (Pillow's `libImaging/Resample.c`), which is
//! what torchvision's `Resize`, `RandomResizedCrop` and `CenterCrop` run on PIL images.
//!
//! PIL resamples in two separable passes (horizontal, then vertical), each a convolution whose
//! filter is stretched by the downscaling factor (so downscaling is antialiased). The weights of
//! each output pixel are normalised to sum to 1, then rounded to 22-bit fixed point; each pass
//! rounds and clips its result to u8.
use super::Region;
use darkmagic_base::recipe::Interpolation;

/// Fractional bits of PIL's fixed-point weights: 32 - 8 (pixel) - 2 (overflow headroom).
const PRECISION_BITS: u32 = 22;

/// The resampling filter and its support (half-width in source pixels at scale 1).
fn filter(interp: Interpolation) -> (fn(f64) -> f64, f64) {
    match interp {
        Interpolation::Bilinear => (bilinear, 1.0),
        Interpolation::Bicubic => (bicubic, 2.0),
    }
}

/// The triangle filter.
fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Keys' cubic convolution with a = -0.5, written as PIL writes it.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// The fixed-point weights of one pass: output pixel `i` reads `len[i]` source pixels from
/// `start[i]`, with weights `k[i * ksize..]`.
struct Weights {
    start: Vec<usize>,
    len: Vec<usize>,
    ksize: usize,
    k: Vec<i32>,
}

/// PIL's `precompute_coeffs` and `normalize_coeffs_8bpc` for `in_size` -> `out_size`, for the
/// output pixels in `outputs` only (each output's weights depend on its index alone).
fn weights(in_size: usize, out_size: usize, interp: Interpolation, outputs: std::ops::Range<usize>) -> Weights {
    let (f, support) = filter(interp);
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let ss = 1.0 / filterscale;
    let mut w = Weights {
        start: Vec::with_capacity(outputs.len()),
        len: Vec::with_capacity(outputs.len()),
        ksize,
        k: vec![0; outputs.len() * ksize],
    };
    let mut row = vec![0f64; ksize];
    for (o, i) in outputs.enumerate() {
        let center = (i as f64 + 0.5) * scale;
        // C's (int) cast truncates toward zero, as Rust's `as` does.
        let lo = ((center - support + 0.5) as i64).max(0) as usize;
        let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = hi - lo;
        for (x, r) in row[..n].iter_mut().enumerate() {
            *r = f(((x + lo) as f64 - center + 0.5) * ss);
        }
        let total: f64 = row[..n].iter().sum();
        for (x, &r) in row[..n].iter().enumerate() {
            let v = if total != 0.0 { r / total } else { r };
            let fixed = v * (1u32 << PRECISION_BITS) as f64;
            w.k[o * ksize + x] = if v < 0.0 {
                (fixed - 0.5) as i32
            } else {
                (fixed + 0.5) as i32
            };
        }
        w.start.push(lo);
        w.len.push(n);
    }
    w
}

/// PIL's `clip8`: the fixed-point sum back to a pixel, clamped to 0..=255.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

impl Weights {
    /// The source pixels the whole pass reads: from the first output's start to the last's end.
    fn span(&self) -> std::ops::Range<usize> {
        let last = self.start.len() - 1;
        self.start[0]..self.start[last] + self.len[last]
    }
}

/// A window of an HWC u8 image: rows of `stride` pixels, `c` channels, origin at (`y`, `x`).
#[derive(Clone, Copy)]
struct Window<'a> {
    px: &'a [u8],
    stride: usize,
    c: usize,
    y: usize,
    x: usize,
}

impl Window<'_> {
    /// Index of the first channel of pixel (`y`, `x`) of the window.
    fn at(&self, y: usize, x: usize) -> usize {
        ((self.y + y) * self.stride + self.x + x) * self.c
    }
}

/// Resizes `r` of an HWC u8 image (`src_w` pixels wide, `c` channels) to `out_h` x `out_w`, as
/// PIL's `img.crop(r).resize((out_w, out_h), interp)`: a pass is skipped when its size is kept.
/// Pillow 13 runs the vertical pass first when the height shrinks and loses more than twice as
/// many pixels as the width (`out_h < r.h` and `r.h - out_h > 2 (r.w - out_w)`; found by
/// comparing both orders with Pillow 13.0 on 600 random sizes, no exception). Each pass reads only the rows
/// or columns the other needs.
pub fn resize(
    src: &[u8],
    src_w: usize,
    c: usize,
    r: Region,
    out_h: usize,
    out_w: usize,
    interp: Interpolation,
) -> Vec<u8> {
    let whole = Region::whole(out_h, out_w);
    resize_window(src, c, Source { w: src_w, r }, (out_h, out_w), whole, interp)
}

/// The region `r` of an image `w` pixels wide that a resize reads.
#[derive(Clone, Copy)]
pub struct Source {
    pub w: usize,
    pub r: Region,
}

/// The `window` of [`resize`]'s `out_h` x `out_w` output, pixel for pixel, computing no other
/// output pixel: the resize-then-centre-crop of evaluation costs the crop, not the resized
/// image, which for a 178956970x1 image brought to a shorter side of 64 would be 11 G pixels.
pub fn resize_window(
    src: &[u8],
    c: usize,
    from: Source,
    (out_h, out_w): (usize, usize),
    window: Region,
    interp: Interpolation,
) -> Vec<u8> {
    let (r, src_w) = (from.r, from.w);
    let hor = (out_w != r.w).then(|| weights(r.w, out_w, interp, window.x..window.x + window.w));
    let ver = (out_h != r.h).then(|| weights(r.h, out_h, interp, window.y..window.y + window.h));
    let win = |px, stride, y, x| Window { px, stride, c, y, x };
    let lost = |from: usize, to: usize| from as i64 - to as i64;
    match (hor, ver) {
        (None, None) => {
            let region = win(src, src_w, r.y + window.y, r.x + window.x);
            (0..window.h)
                .flat_map(|y| &src[region.at(y, 0)..region.at(y, window.w)])
                .copied()
                .collect()
        }
        (Some(h), None) => horizontal(win(src, src_w, r.y + window.y, r.x), window.h, &h, 0),
        (None, Some(v)) => vertical(win(src, src_w, r.y, r.x + window.x), window.w, &v, 0),
        (Some(h), Some(v)) if out_h < r.h && lost(r.h, out_h) > 2 * lost(r.w, out_w) => {
            let cols = h.span();
            let tmp = vertical(win(src, src_w, r.y, r.x + cols.start), cols.len(), &v, 0);
            horizontal(win(&tmp, cols.len(), 0, 0), window.h, &h, cols.start)
        }
        (Some(h), Some(v)) => {
            let rows = v.span();
            let tmp = horizontal(win(src, src_w, r.y + rows.start, r.x), rows.len(), &h, 0);
            vertical(win(&tmp, window.w, 0, 0), window.w, &v, rows.start)
        }
    }
}

/// The horizontal pass: `rows` rows of `win`, each resampled to `wt`'s output width; the
/// window's column 0 is source column `first_col` of the weights.
fn horizontal(win: Window, rows: usize, wt: &Weights, first_col: usize) -> Vec<u8> {
    match win.c {
        1 => horizontal_c::<1>(win, rows, wt, first_col),
        3 => horizontal_c::<3>(win, rows, wt, first_col),
        c => unreachable!("images have 1 or 3 channels, not {c}"),
    }
}

/// `horizontal` for `C` channels, so the per-pixel loop over channels unrolls.
fn horizontal_c<const C: usize>(win: Window, rows: usize, wt: &Weights, first_col: usize) -> Vec<u8> {
    let out_w = wt.start.len();
    let mut out = vec![0u8; rows * out_w * C];
    for (y, dst) in out.chunks_exact_mut(out_w * C).enumerate() {
        let line = &win.px[win.at(y, 0)..];
        for (x, d) in dst.chunks_exact_mut(C).enumerate() {
            let k = &wt.k[x * wt.ksize..x * wt.ksize + wt.len[x]];
            let s = (wt.start[x] - first_col) * C;
            let mut acc = [1i32 << (PRECISION_BITS - 1); C];
            for (px, &kj) in line[s..s + k.len() * C].chunks_exact(C).zip(k) {
                for ch in 0..C {
                    acc[ch] += px[ch] as i32 * kj;
                }
            }
            for ch in 0..C {
                d[ch] = clip8(acc[ch]);
            }
        }
    }
    out
}

/// The vertical pass: `cols` columns of `win` resampled to `wt`'s output height; the window's
/// row 0 is source row `first_row` of the weights.
fn vertical(win: Window, cols: usize, wt: &Weights, first_row: usize) -> Vec<u8> {
    let stride = cols * win.c;
    let mut out = vec![0u8; wt.start.len() * stride];
    let mut acc = vec![0i32; stride];
    for (y, dst) in out.chunks_exact_mut(stride).enumerate() {
        acc.fill(1 << (PRECISION_BITS - 1));
        let k = &wt.k[y * wt.ksize..y * wt.ksize + wt.len[y]];
        for (j, &kj) in k.iter().enumerate() {
            let s = win.at(wt.start[y] - first_row + j, 0);
            for (a, &v) in acc.iter_mut().zip(&win.px[s..s + stride]) {
                *a += v as i32 * kj;
            }
        }
        for (d, &a) in dst.iter_mut().zip(&acc) {
            *d = clip8(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(px: &[u8], out_w: usize, interp: Interpolation) -> Vec<u8> {
        let r = Region {
            y: 0,
            x: 0,
            h: 1,
            w: px.len(),
        };
        resize(px, px.len(), 1, r, 1, out_w, interp)
    }

    #[test]
    fn bilinear_by_hand() {
        // Upscaling 2 -> 4: centres at 0.25, 0.75, 1.25, 1.75 in source pixels, edges clamped.
        assert_eq!(row(&[0, 100], 4, Interpolation::Bilinear), vec![0, 25, 75, 100]);
        // Downscaling 4 -> 2 stretches the triangle to support 2: weights 3/7, 3/7, 1/7 for
        // output 0 and 1/7, 3/7, 3/7 for output 1.
        assert_eq!(row(&[0, 70, 140, 210], 2, Interpolation::Bilinear), vec![50, 160]);
    }

    #[test]
    fn bicubic_overshoots_and_clips() {
        // Keys' kernel rings at a step edge: values beyond the input range are clipped to u8.
        let out = row(&[0, 0, 255, 255], 8, Interpolation::Bicubic);
        assert_eq!((out[0], out[7]), (0, 255));
        assert!(out.windows(2).all(|w| w[0] <= w[1]), "{out:?}");
        assert_eq!(bicubic(0.0), 1.0);
        assert_eq!(bicubic(1.0), 0.0);
        assert_eq!(bicubic(1.5), -0.0625);
    }

    #[test]
    fn a_window_of_the_output_is_that_part_of_the_whole_output() {
        let mut rng = darkmagic_base::rng::Rng::keyed(7, 0, 0);
        let (sh, sw) = (23, 31);
        let src: Vec<u8> = (0..sh * sw * 3).map(|_| rng.below(256) as u8).collect();
        let r = Region {
            y: 2,
            x: 3,
            h: 19,
            w: 25,
        };
        // Both pass orders (height shrinking most, width shrinking most), upscaling, one side kept.
        for (oh, ow) in [(5, 24), (18, 6), (40, 50), (19, 9), (7, 25), (19, 25)] {
            for interp in [Interpolation::Bilinear, Interpolation::Bicubic] {
                let full = resize(&src, sw, 3, r, oh, ow, interp);
                for _ in 0..20 {
                    let (y, x) = (rng.below(oh), rng.below(ow));
                    let win = Region {
                        y,
                        x,
                        h: 1 + rng.below(oh - y),
                        w: 1 + rng.below(ow - x),
                    };
                    let part = resize_window(&src, 3, Source { w: sw, r }, (oh, ow), win, interp);
                    let want: Vec<u8> = (win.y..win.y + win.h)
                        .flat_map(|yy| &full[(yy * ow + win.x) * 3..(yy * ow + win.x + win.w) * 3])
                        .copied()
                        .collect();
                    assert_eq!(part, want, "{oh}x{ow} window {win:?} {interp:?}");
                }
            }
        }
    }

    #[test]
    fn same_size_is_a_copy_of_the_region() {
        let src: Vec<u8> = (0..36).collect(); // 6x6 gray
        let r = Region { y: 1, x: 2, h: 2, w: 3 };
        assert_eq!(
            resize(&src, 6, 1, r, 2, 3, Interpolation::Bilinear),
            vec![8, 9, 10, 14, 15, 16]
        );
    }
}
