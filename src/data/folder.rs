//! Image folders, as torchvision's `ImageFolder` reads them: one subfolder per class (sorted by
//! name), PNG or JPEG files inside. If the folder has a `train/` subfolder, that is the training
//! split and `val/` or `test/` beside it the test split.
//!
//! Gray and RGB files may be mixed: the dataset is gray only if every image is. Images of
//! different sizes need `data.image_size`: the shorter side is resized to it (bilinear), then
//! the centre square is cropped.
use super::{Dataset, Images};
use crate::error::{Error, Result};
use image::{DynamicImage, imageops::FilterType};
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Loads an image folder dataset.
pub fn load(dir: &Path, image_size: Option<usize>) -> Result<Dataset> {
    let train_dir = dir.join("train");
    let (train_root, test_root) = if train_dir.is_dir() {
        let test = ["val", "test"].iter().map(|s| dir.join(s)).find(|p| p.is_dir());
        (train_dir, test)
    } else {
        (dir.to_path_buf(), None)
    };
    let classes = class_dirs(&train_root)?;
    let train_files = list_files(&train_root, &classes)?;
    let test_files = match &test_root {
        Some(root) => Some(list_files(root, &classes)?),
        None => None,
    };
    let all = train_files.iter().chain(test_files.iter().flatten());
    let decoded: Vec<(DynamicImage, PathBuf)> = all
        .map(|(p, _)| {
            Ok((
                image::open(p).map_err(|e| Error::data(p, format!("cannot decode image: {e}")))?,
                p.clone(),
            ))
        })
        .collect::<Result<_>>()?;
    let channels = if decoded.iter().all(|(im, _)| !im.color().has_color()) {
        1
    } else {
        3
    };
    let (height, width) = match image_size {
        Some(s) => (s, s),
        None => (decoded[0].0.height() as usize, decoded[0].0.width() as usize),
    };
    let mut images = decoded.into_iter();
    let mut take = |files: &[(PathBuf, i64)]| -> Result<Images> {
        let mut out = Images {
            pixels: Vec::new(),
            labels: Vec::new(),
            height,
            width,
            channels,
        };
        for (label, (im, path)) in files.iter().map(|f| f.1).zip(images.by_ref()) {
            let im = fit(im, image_size, &path, (height, width))?;
            out.pixels.extend(if channels == 1 {
                im.into_luma8().into_raw()
            } else {
                im.into_rgb8().into_raw()
            });
            out.labels.push(label);
        }
        Ok(out)
    };
    let train = take(&train_files)?;
    let test = test_files.as_deref().map(&mut take).transpose()?;
    Ok(Dataset {
        format: "image folder".into(),
        classes,
        train,
        test,
    })
}

/// Brings an image to `size`: resize-and-centre-crop when `image_size` is set, else it must
/// already have the dataset's size.
fn fit(im: DynamicImage, image_size: Option<usize>, path: &Path, size: (usize, usize)) -> Result<DynamicImage> {
    let (h, w) = (im.height() as usize, im.width() as usize);
    match image_size {
        None if (h, w) == size => Ok(im),
        None => Err(Error::data(
            path,
            format!(
                "image is {w}x{h} but the first image is {}x{}; set data.image_size to resize",
                size.1, size.0
            ),
        )),
        Some(s) => {
            let scale = s as f64 / h.min(w) as f64;
            let (nw, nh) = (
                ((w as f64 * scale).round() as u32).max(s as u32),
                ((h as f64 * scale).round() as u32).max(s as u32),
            );
            let resized = im.resize_exact(nw, nh, FilterType::Triangle);
            let (x, y) = ((nw - s as u32) / 2, (nh - s as u32) / 2);
            Ok(resized.crop_imm(x, y, s as u32, s as u32))
        }
    }
}

/// The class subfolders of `root`, sorted by name.
fn class_dirs(root: &Path) -> Result<Vec<String>> {
    let mut classes: Vec<String> = std::fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(Error::data(
            root,
            "no class subfolders found (expected one folder of images per class)",
        ));
    }
    Ok(classes)
}

/// Every image file of every class folder under `root`, with its class index, sorted by path.
fn list_files(root: &Path, classes: &[String]) -> Result<Vec<(PathBuf, i64)>> {
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        if !dir.is_dir() {
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str()))
            })
            .collect();
        found.sort();
        files.extend(found.into_iter().map(|p| (p, label as i64)));
    }
    if files.is_empty() {
        return Err(Error::data(root, "no PNG or JPEG files in the class folders"));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, RgbImage};

    #[test]
    fn mixed_gray_rgb_and_sizes_resize_to_rgb() {
        let dir = crate::testutil::tempdir("folder");
        for c in ["cat", "dog"] {
            std::fs::create_dir_all(dir.join("train").join(c)).unwrap();
            std::fs::create_dir_all(dir.join("val").join(c)).unwrap();
        }
        GrayImage::from_pixel(4, 4, image::Luma([200]))
            .save(dir.join("train/cat/a.png"))
            .unwrap();
        RgbImage::from_pixel(8, 6, image::Rgb([10, 20, 30]))
            .save(dir.join("train/dog/b.png"))
            .unwrap();
        RgbImage::from_pixel(6, 6, image::Rgb([0, 0, 255]))
            .save(dir.join("val/dog/c.jpg"))
            .unwrap();
        let e = load(&dir, None).unwrap_err().to_string();
        assert!(e.contains("b.png") && e.contains("data.image_size"), "{e}");
        let d = load(&dir, Some(3)).unwrap();
        assert_eq!(d.classes, vec!["cat", "dog"]);
        assert_eq!((d.train.height, d.train.width, d.train.channels), (3, 3, 3));
        assert_eq!(d.train.labels, vec![0, 1]);
        assert_eq!(d.train.image(0)[..3], [200, 200, 200]);
        assert_eq!(d.train.image(1)[..3], [10, 20, 30]);
        let t = d.test.unwrap();
        assert_eq!(t.labels, vec![1]);
        assert!(
            t.image(0)[2] > 240 && t.image(0)[0] < 15,
            "JPEG blue: {:?}",
            &t.image(0)[..3]
        );
    }

    #[test]
    fn corrupt_image_is_named() {
        let dir = crate::testutil::tempdir("folder-bad");
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/broken.png"), b"\x89PNG not really").unwrap();
        let e = load(&dir, None).unwrap_err().to_string();
        assert!(e.contains("broken.png") && e.contains("cannot decode"), "{e}");
    }
}
