//! The evaluation fit of timm and torchvision: `Resize` (the shorter side) + `CenterCrop`, with
//! timm's crop fraction, resampled as PIL resamples (`resample`).
use super::{Region, View, resample};
use darkmagic_base::recipe::Interpolation;
use std::borrow::Cow;

/// torchvision's `Resize(size)` with one int: the shorter side becomes `short`, the longer one
/// `int(short * long / short_side)` (truncated). Returns (height, width).
pub fn resized_shorter(h: usize, w: usize, short: usize) -> (usize, usize) {
    let long = |l: usize, s: usize| (short as f64 * l as f64 / s as f64) as usize;
    if w <= h {
        (long(h, w), short)
    } else {
        (short, long(w, h))
    }
}

/// torchvision's `CenterCrop`: the `ch` x `cw` region at offsets `int(round((h - ch) / 2))`,
/// rounding halves to even as Python's `round` does.
pub fn center_region(h: usize, w: usize, ch: usize, cw: usize) -> Region {
    let offset = |d: usize| {
        if d % 2 == 1 && (d / 2) % 2 == 1 {
            d / 2 + 1
        } else {
            d / 2
        }
    };
    Region {
        y: offset(h - ch),
        x: offset(w - cw),
        h: ch,
        w: cw,
    }
}

/// The evaluation transform of timm and torchvision's reference scripts on an image of any
/// size: resize the shorter side to `floor(min(h, w) / fraction)`, then centre-crop `h` x `w`.
/// With `fraction` 1 and an image already `h` x `w`, the image is returned as it is, uncopied.
/// Only the crop of the resized image is computed (`resample::resize_window`), so an extreme
/// aspect ratio costs no more memory than the crop.
pub fn center_fit<'a>(src: View<'a>, h: usize, w: usize, fraction: f64, interp: Interpolation) -> Cow<'a, [u8]> {
    let short = (h.min(w) as f64 / fraction).floor() as usize;
    let (rh, rw) = resized_shorter(src.h, src.w, short);
    if (rh, rw) == (src.h, src.w) && (h, w) == (rh, rw) {
        return Cow::Borrowed(src.px);
    }
    let crop = center_region(rh, rw, h.min(rh), w.min(rw));
    if (rh, rw) == (src.h, src.w) {
        return Cow::Owned(resample::resize(src.px, src.w, src.c, crop, h, w, interp));
    }
    let from = resample::Source {
        w: src.w,
        r: src.whole(),
    };
    let cropped = resample::resize_window(src.px, src.c, from, (rh, rw), crop, interp);
    if (crop.h, crop.w) == (h, w) {
        return Cow::Owned(cropped);
    }
    let whole = Region::whole(crop.h, crop.w);
    Cow::Owned(resample::resize(&cropped, crop.w, src.c, whole, h, w, interp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_and_center_crop_follow_torchvision() {
        assert_eq!(resized_shorter(375, 500, 256), (256, 341));
        assert_eq!(resized_shorter(500, 375, 256), (341, 256));
        let r = |y, x, h, w| Region { y, x, h, w };
        assert_eq!(center_region(32, 32, 28, 28), r(2, 2, 28, 28));
        // Python's round: 1.5 -> 2, 2.5 -> 2.
        assert_eq!(center_region(7, 9, 4, 4), r(2, 2, 4, 4));
        // An image of the output size with fraction 1 is unchanged.
        let src: Vec<u8> = (0..48).collect();
        let view = View::new(&src, 4, 4, 3);
        let same = center_fit(view, 4, 4, 1.0, Interpolation::Bilinear);
        assert!(matches!(same, Cow::Borrowed(_)), "not copied");
        assert_eq!(same, src);
        // Fraction 0.5 of a 2x2 output: shorter side to 4 (unchanged), centre 2x2 crop.
        let gray: Vec<u8> = (0..16).collect();
        let view = View::new(&gray, 4, 4, 1);
        assert_eq!(center_fit(view, 2, 2, 0.5, Interpolation::Bilinear), vec![5, 6, 9, 10]);
    }
}
