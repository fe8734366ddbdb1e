//! Image files for looking at augmentation: one op applied to a PNG/JPEG, and a grid of
//! augmented training samples.
use crate::augment::ops::{ALL, Op};
use crate::data::Images;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::recipe::AugmentConfig;
use std::path::Path;

/// The op called `name` (torchvision's names, case-insensitive).
pub fn op_by_name(name: &str) -> Result<Op> {
    ALL.into_iter()
        .find(|o| o.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|o| o.name()).collect();
            Error::flag(
                "--op",
                format!("unknown op `{name}`; expected one of {}", names.join(", ")),
            )
        })
}

/// Reads an image file as u8 HWC (gray stays gray, anything else becomes RGB).
/// Decoded as a data set's image file is, with the same checks and limits.
pub fn read_image(path: &Path) -> Result<Image> {
    let source = crate::data::source::Source::File(path.to_path_buf());
    let c = crate::data::folder::header_channels(std::slice::from_ref(&source))?;
    crate::data::folder::decode(&source, c)
}

/// Writes an image as a PNG or JPEG, as `path`'s extension says, whole (`files::write_atomic`:
/// nothing half-written is left, and only a regular file is replaced, never a FIFO, a device
/// or what a link names).
pub fn write_image(path: &Path, img: Image) -> Result<()> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
    let format = match ext.as_deref() {
        Some("png") => image::ImageFormat::Png,
        Some("jpg" | "jpeg") => image::ImageFormat::Jpeg,
        _ => return Err(Error::data(path, "expected a file name ending in .png, .jpg or .jpeg")),
    };
    let Image { px, h, w, c } = img;
    let (w32, h32) = (w as u32, h as u32);
    let mut bytes = std::io::Cursor::new(Vec::new());
    let encoded = if c == 1 {
        image::GrayImage::from_raw(w32, h32, px).map(|i| i.write_to(&mut bytes, format))
    } else {
        image::RgbImage::from_raw(w32, h32, px).map(|i| i.write_to(&mut bytes, format))
    };
    encoded
        .expect("buffer size matches the image")
        .map_err(|e| Error::data(path, format!("cannot encode the image: {e}")))?;
    crate::files::write_atomic(path, &bytes.into_inner())
}

/// Applies `op` at bin 0..=9 (negated if asked) to the image in `input` and writes `output`.
pub fn apply_op_file(op: Op, bin: usize, negate: bool, fill: u8, input: &Path, output: &Path) -> Result<()> {
    if bin > 9 {
        return Err(Error::flag("--bin", format!("got {bin}; expected 0..=9")));
    }
    if negate && !op.signed() {
        return Err(Error::flag(
            "--negate",
            format!("{} has no sign to negate; drop --negate", op.name()),
        ));
    }
    let Image { px, h, w, c } = read_image(input)?;
    let m = op.magnitude(bin, 10, h, w);
    let m = if negate { -m } else { m };
    let px = op.apply(&px, h, w, c, m, fill);
    write_image(output, Image { px, h, w, c })
}

/// A grid of `count` augmented training images (8 per row, each scaled up by an integer factor
/// to at least 64 px), as a run with `seed` would see them: the images in order in epoch 1,
/// then again in epoch 2 if `count` exceeds the number of images, and so on.
pub fn grid(images: &Images, cfg: &AugmentConfig, seed: u64, count: usize) -> Result<Image> {
    let (h, w, c) = (images.height, images.width, images.channels);
    let scale = 64usize.div_ceil(h.min(w)).max(1);
    let (th, tw) = (h * scale, w * scale);
    if count == 0 {
        return Err(Error::flag("--count", "got 0; expected at least 1 sample"));
    }
    let cols = count.min(8);
    let rows = count.div_ceil(cols);
    let (gh, gw) = (rows * (th + 2), cols * (tw + 2));
    let mut out = vec![255u8; gh * gw * c];
    for k in 0..count {
        let (epoch, i) = (1 + k / images.len(), k % images.len());
        let aug = images.with_image(i, |src| {
            let sample = crate::augment::Sample {
                seed,
                epoch: epoch as u64,
                index: i as u64,
            };
            crate::augment::apply(src, h, w, cfg, sample, &mut sample.rng())
        })?;
        let (oy, ox) = ((k / cols) * (th + 2) + 1, (k % cols) * (tw + 2) + 1);
        for y in 0..th {
            for x in 0..tw {
                let s = ((y / scale) * w + x / scale) * c;
                let d = ((oy + y) * gw + ox + x) * c;
                out[d..d + c].copy_from_slice(&aug[s..s + c]);
            }
        }
    }
    Ok(Image {
        px: out,
        h: gh,
        w: gw,
        c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Pixels;

    #[test]
    fn names_and_files() {
        assert_eq!(op_by_name("invert").unwrap(), Op::Invert);
        let e = op_by_name("Blur").unwrap_err().to_string();
        assert!(e.contains("Blur") && e.contains("ShearX"), "{e}");
        let dir = crate::testutil::tempdir("preview");
        let (a, b) = (dir.join("a.png"), dir.join("b.png"));
        let img = |px| Image { px, h: 2, w: 2, c: 1 };
        write_image(&a, img(vec![0, 100, 200, 255])).unwrap();
        apply_op_file(Op::Invert, 0, false, 0, &a, &b).unwrap();
        assert_eq!(read_image(&b).unwrap(), img(vec![255, 155, 55, 0]));
        assert!(
            apply_op_file(Op::Invert, 10, false, 0, &a, &b)
                .unwrap_err()
                .to_string()
                .contains("--bin")
        );
    }

    #[test]
    fn grid_tiles_scaled_images() {
        let images = Images {
            pixels: Pixels::Decoded(vec![7; 3 * 4 * 4]),
            labels: vec![0, 1, 2],
            height: 4,
            width: 4,
            channels: 1,
            names: Vec::new(),
        };
        let cfg = AugmentConfig {
            policy: crate::recipe::AugPolicy::None,
            ..AugmentConfig::default()
        };
        let Image { px, h, w, c } = grid(&images, &cfg, 0, 3).unwrap();
        assert_eq!((h, w, c), (66, 198, 1));
        assert_eq!(px.iter().filter(|&&v| v == 7).count(), 3 * 64 * 64);
        // More tiles than images: the images again, as the next epoch draws them.
        let Image { px, h, w, .. } = grid(&images, &cfg, 0, 5).unwrap();
        assert_eq!((h, w), (66, 330));
        assert_eq!(px.iter().filter(|&&v| v == 7).count(), 5 * 64 * 64);
    }
}
