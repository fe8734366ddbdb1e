//! Image folders, as torchvision's `ImageFolder` reads them: one subfolder per class (sorted by
//! name), PNG or JPEG files inside. If the folder has a `train/` subfolder, that is the training
//! split and `val/` or `test/` beside it the test split.
//!
//! Gray and RGB files may be mixed: the dataset is gray only if every image is. Images of
//! different sizes need `data.image_size`: decoded at load, the shorter side is resized to it
//! (PIL's filter, `augment.interpolation`) and the centre square cropped; decoded per batch
//! (`data.decode = "per_batch"`), the training crop or the evaluation resize brings them to it.
use super::{Dataset, Images, Pixels};
use crate::augment::ops::grayscale;
use crate::image::fit::center_fit;
use crate::image::{Image, View};
use crate::source::Source;
use darkmagic_base::error::{Error, Result};
use darkmagic_base::recipe::{Decode, Interpolation};
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Image formats torchvision's `ImageFolder` reads and darkmagic does not: refused by name.
const UNREAD_IMAGES: [&str; 7] = ["bmp", "webp", "gif", "tif", "tiff", "ppm", "pgm"];

/// Loads an image folder dataset. With `Decode::AtLoad` every file is decoded now (and resized
/// with `interp` when `image_size` is set); with `Decode::PerBatch` only the headers are read
/// now and the batches decode the files.
pub fn load(dir: &Path, image_size: Option<usize>, decode: Decode, interp: Interpolation) -> Result<Dataset> {
    let train_dir = dir.join("train");
    let (train_root, test_root) = if train_dir.is_dir() {
        let test = ["val", "test"].iter().map(|s| dir.join(s)).find(|p| p.is_dir());
        if dir.join("val").is_dir() && dir.join("test").is_dir() {
            // Said, not left silent: every test figure then comes from val/.
            eprintln!(
                "warning: {} holds both val/ and test/: val/ is read as the held-out split, test/ is not read",
                dir.display()
            );
        }
        (train_dir, test)
    } else {
        (dir.to_path_buf(), None)
    };
    let classes = class_dirs(&train_root)?;
    let train = list_files(&train_root, &classes)?;
    let test = test_root.map(|root| list_files(&root, &classes)).transpose()?;
    each_file_once(train.iter().chain(test.iter().flatten()).map(|(p, _)| p))?;
    let (train_files, test_files) = (sources(train), test.map(sources));
    let reading = Reading {
        image_size,
        decode,
        interp,
    };
    from_files("image folder", classes, train_files, test_files, reading)
}

/// How image files become a dataset's pixels: the side they are brought to, when they are
/// decoded, and the resampling filter.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub image_size: Option<usize>,
    pub decode: Decode,
    pub interp: Interpolation,
}

/// Labelled image files as sources.
pub fn sources(files: Vec<(PathBuf, i64)>) -> Vec<(Source, i64)> {
    files.into_iter().map(|(p, l)| (Source::File(p), l)).collect()
}

/// The dataset of labelled encoded images (`(source, class index)`, a training list and
/// optionally a test list), decoded as `reading` says; `format` names it in messages.
pub fn from_files(
    format: &str,
    classes: Vec<String>,
    train_files: Vec<(Source, i64)>,
    test_files: Option<Vec<(Source, i64)>>,
    reading: Reading,
) -> Result<Dataset> {
    let Reading {
        image_size,
        decode,
        interp,
    } = reading;
    let paths: Vec<Source> = train_files
        .iter()
        .chain(test_files.iter().flatten())
        .map(|(p, _)| p.clone())
        .collect();
    let (mut pixels, height, width, channels) = match (decode, image_size) {
        (Decode::PerBatch, Some(s)) => {
            let channels = header_channels(&paths)?;
            (Pixels::Encoded(paths), s, s, channels)
        }
        _ => {
            let channels = header_channels(&paths)?;
            decode_all(&paths, image_size, channels, interp)?
        }
    };
    let n_train = train_files.len();
    let test_pixels = match &mut pixels {
        Pixels::Decoded(px) => Pixels::Decoded(px.split_off(n_train * height * width * channels)),
        Pixels::Encoded(files) => Pixels::Encoded(files.split_off(n_train)),
    };
    let images = |files: &[(Source, i64)], pixels| Images {
        names: match pixels {
            Pixels::Decoded(_) => files.iter().map(|f| f.0.clone()).collect(),
            Pixels::Encoded(_) => Vec::new(),
        },
        pixels,
        labels: files.iter().map(|f| f.1).collect(),
        height,
        width,
        channels,
    };
    Ok(Dataset {
        format: format.into(),
        classes,
        train: images(&train_files, pixels),
        test: test_files.map(|f| images(&f, test_pixels)),
    })
}

/// Decodes one encoded image to u8 HWC with `channels` channels (gray replicated to RGB, alpha
/// dropped, as PIL's `convert("RGB")`; colour to gray as PIL's `convert("L")`).
///
/// JPEG files go through libjpeg-turbo, the decoder PIL uses, with its defaults (integer IDCT,
/// smooth chroma upsampling), so the pixels are PIL's; other formats through the `image` crate.
/// The size in the header is checked against `MAX_IMAGE_PIXELS` before any pixel is decoded.
pub fn decode(source: &Source, channels: usize) -> Result<Image> {
    let bytes = source.read()?;
    let name = source.name();
    let path = name.as_path();
    let bad = |e: &dyn std::fmt::Display| Error::data(path, format!("cannot decode image: {e}"));
    if bytes.starts_with(&[0xff, 0xd8]) {
        return decode_jpeg(path, &bytes, channels);
    }
    let decoder = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| bad(&e))?
        .into_decoder()
        .map_err(|e| bad(&e))?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    let (w, h) = (w as usize, h as usize);
    check_size(path, w, h)?;
    // The decoder's buffer and the conversion's must fit: probe for them, so that a machine
    // short of memory gives an error here rather than an abort inside the decoder.
    let total = image::ImageDecoder::total_bytes(&decoder) as usize + w * h * channels;
    super::reserve(&mut Vec::<u8>::new(), total, path)?;
    let im = image::DynamicImage::from_decoder(decoder).map_err(|e| bad(&e))?;
    let px = match (channels, im.color().has_color()) {
        (1, false) => im.into_luma8().into_raw(),
        // The image crate's own luma weighs sRGB's (0.2126, 0.7152, 0.0722); PIL's ITU-R 601.
        (1, true) => grayscale(&im.into_rgb8().into_raw(), 3),
        _ => im.into_rgb8().into_raw(),
    };
    Ok(Image { px, h, w, c: channels })
}

/// Decodes a JPEG into a buffer allocated here (an error, not an abort, when memory is short).
fn decode_jpeg(path: &Path, bytes: &[u8], channels: usize) -> Result<Image> {
    let bad = |e: turbojpeg::Error| Error::data(path, format!("cannot decode image: {e}"));
    let mut decompressor = turbojpeg::Decompressor::new().map_err(bad)?;
    let header = decompressor.read_header(bytes).map_err(bad)?;
    let (w, h) = (header.width, header.height);
    check_size(path, w, h)?;
    // A colour JPEG for a gray model is decoded to RGB and converted as PIL converts it, rather
    // than taken from libjpeg's luma plane.
    let gray_source = header.colorspace == turbojpeg::Colorspace::Gray;
    let (format, c) = if channels == 1 && gray_source {
        (turbojpeg::PixelFormat::GRAY, 1)
    } else {
        (turbojpeg::PixelFormat::RGB, 3)
    };
    let mut px = Vec::new();
    super::reserve(&mut px, w * h * c, path)?;
    px.resize(w * h * c, 0);
    let image = turbojpeg::Image {
        pixels: px.as_mut_slice(),
        width: w,
        pitch: w * c,
        height: h,
        format,
    };
    decompressor.decompress(bytes, image).map_err(bad)?;
    if c != channels {
        px = grayscale(&px, 3);
    }
    Ok(Image { px, h, w, c: channels })
}

/// A reader the image crate can guess a format from: a file or bytes in memory.
trait BufReadSeek: std::io::BufRead + std::io::Seek {}
impl<T: std::io::BufRead + std::io::Seek> BufReadSeek for T {}

/// Refuses an image whose header claims no pixels or more than `MAX_IMAGE_PIXELS`.
fn check_size(path: &Path, w: usize, h: usize) -> Result<()> {
    let pixels = (w as u64).saturating_mul(h as u64);
    if pixels == 0 || pixels > super::MAX_IMAGE_PIXELS {
        return Err(Error::data(
            path,
            format!(
                "header says {w}x{h} pixels; expected 1 to {} pixels (Pillow's decompression-bomb limit)",
                super::MAX_IMAGE_PIXELS
            ),
        ));
    }
    Ok(())
}

/// 1 if every image is gray, else 3, from the images' headers.
pub fn header_channels(sources: &[Source]) -> Result<usize> {
    for source in sources {
        let p = &source.name();
        let bad = |e: &dyn std::fmt::Display| Error::data(p, format!("cannot decode image header: {e}"));
        let reader: image::ImageReader<Box<dyn BufReadSeek>> = match source {
            Source::File(f) => {
                darkmagic_base::files::check_regular(f, crate::MAX_FILE_BYTES)?;
                let file = std::fs::File::open(f).map_err(|e| Error::io(f, e))?;
                image::ImageReader::new(Box::new(std::io::BufReader::new(file)))
            }
            _ => image::ImageReader::new(Box::new(std::io::Cursor::new(source.read()?))),
        };
        let decoder = reader
            .with_guessed_format()
            .map_err(|e| bad(&e))?
            .into_decoder()
            .map_err(|e| bad(&e))?;
        if image::ImageDecoder::color_type(&decoder).has_color() {
            return Ok(3);
        }
    }
    Ok(1)
}

/// Decodes every file with `channels` channels, each brought to the dataset's size. Returns the
/// concatenated pixels, height, width and channels.
fn decode_all(
    paths: &[Source],
    image_size: Option<usize>,
    channels: usize,
    interp: Interpolation,
) -> Result<(Pixels, usize, usize, usize)> {
    let mut size = image_size.map(|s| (s, s));
    let mut pixels = Vec::new();
    for source in paths {
        let Image { px, h, w, .. } = decode(source, channels)?;
        let name = source.name();
        let path = name.as_path();
        let (height, width) = *size.get_or_insert((h, w));
        super::reserve(&mut pixels, height * width * channels, path)?;
        match image_size {
            None if (h, w) != (height, width) => {
                return Err(Error::data(
                    path,
                    format!("image is {w}x{h} but the first image is {width}x{height}; set data.image_size to resize"),
                ));
            }
            None => pixels.extend(px),
            Some(s) => pixels.extend_from_slice(&center_fit(View::new(&px, h, w, channels), s, s, 1.0, interp)),
        }
    }
    let (height, width) = size.expect("list_files found at least one file");
    Ok((Pixels::Decoded(pixels), height, width, channels))
}

/// Unlabelled images for a model that takes `channels` x `size`: the files `paths`, brought to
/// that size as training brought its images. With `fit_at_load` (a folder data set decoded at
/// load with `data.image_size`) each file is decoded now, its shorter side resized with that
/// filter and the centre square cropped; otherwise the files are decoded per batch and the
/// evaluation transform alone fits them. Gray files become RGB for a 3-channel model.
pub fn unlabelled(
    paths: Vec<PathBuf>,
    channels: usize,
    size: (usize, usize),
    fit_at_load: Option<Interpolation>,
) -> Result<Images> {
    let labels = vec![0; paths.len()];
    let paths: Vec<Source> = paths.into_iter().map(Source::File).collect();
    let (pixels, height, width, names) = match fit_at_load {
        Some(interp) if size.0 == size.1 => {
            let (px, h, w, _) = decode_all(&paths, Some(size.0), channels, interp)?;
            (px, h, w, paths)
        }
        _ => (Pixels::Encoded(paths), size.0, size.1, Vec::new()),
    };
    Ok(Images {
        pixels,
        labels,
        height,
        width,
        channels,
        names,
    })
}

/// The image files (PNG, JPEG) that `inputs` name: a file as it is, a folder's image files
/// found recursively and sorted by path.
pub fn image_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_file() {
            files.push(input.clone());
            continue;
        }
        if !input.is_dir() {
            let what = match input.exists() {
                true => "not a regular file (a FIFO, device or socket); expected an image file or a folder",
                false => "no such file or folder",
            };
            return Err(Error::data(input, what));
        }
        let mut found = Vec::new();
        walk(input, &mut found)?;
        if found.is_empty() {
            return Err(Error::data(
                input,
                "holds no PNG or JPEG file (.png, .jpg, .jpeg), in it or below",
            ));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Appends the image files under `dir`, at any depth, to `out`; each once, whatever links
/// the folders hold (`files::walk_files`). A name with an image extension that is not a
/// regular file (a FIFO, a device, a link to one) is an error naming it, never left out unsaid.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    darkmagic_base::files::walk_files(dir, |p, meta| {
        // Any case: .PNG, .Jpeg.
        let ext = p.extension().map(|x| x.to_string_lossy().to_lowercase());
        if ext.as_deref().is_some_and(|x| UNREAD_IMAGES.contains(&x)) {
            // torchvision's ImageFolder reads these: left out, the class would lose them unsaid.
            return Err(Error::data(
                p,
                "is an image in a format darkmagic does not read (it reads PNG and JPEG); convert it, or move it out",
            ));
        }
        if !ext.is_some_and(|x| EXTENSIONS.contains(&x.as_str())) {
            return Ok(());
        }
        if !meta.is_file() {
            return Err(Error::data(
                p,
                "has an image's extension but is not a regular file (a FIFO, device or socket); remove it",
            ));
        }
        out.push(p.to_path_buf());
        Ok(())
    })
}

/// The class subfolders of `root`, sorted by name; hidden ones (`.git`, `.ipynb_checkpoints`)
/// are not classes. Their names must be UTF-8: they are the class names of reports and JSON
/// files. Folders that share images through links are refused ([`check_distinct`]): the same
/// image could land in training under one class and in validation under another.
fn class_dirs(root: &Path) -> Result<Vec<String>> {
    let mut classes = Vec::new();
    let mut folders: Vec<(PathBuf, String)> = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        if !entry.path().is_dir() || entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let name = entry.file_name().into_string().map_err(|name| {
            Error::data(
                root.join(&name),
                "class folder name is not valid UTF-8; rename the folder",
            )
        })?;
        let real = entry.path().canonicalize().map_err(|e| Error::io(entry.path(), e))?;
        folders.push((real, name.clone()));
        classes.push(name);
    }
    check_distinct(root, &folders)?;
    classes.sort();
    if classes.is_empty() {
        return Err(Error::data(
            root,
            "no class subfolders found (expected one folder of images per class)",
        ));
    }
    Ok(classes)
}

/// Refuses class folders (canonical path, name) that share images through links: one that is
/// the data set's folder or above it, or that lies in (or is) another class's folder. Images
/// are found at any depth, so either would make the same images two classes at once.
fn check_distinct(root: &Path, folders: &[(PathBuf, String)]) -> Result<()> {
    let root_real = root.canonicalize().map_err(|e| Error::io(root, e))?;
    if let Some((_, name)) = folders.iter().find(|(real, _)| root_real.starts_with(real)) {
        return Err(Error::data(
            root.join(name),
            "is a link to the data set's folder or one above it: its images would be every class's at once",
        ));
    }
    for (real, name) in folders {
        if let Some((_, other)) = folders.iter().find(|(r, n)| n != name && real.starts_with(r)) {
            return Err(Error::data(
                root.join(name),
                format!(
                    "is (or lies in) the folder of class `{other}`, through a link: the same images would be two classes \
                     at once; remove one of them"
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses an image file reached twice (through a link: a file linked beside itself, a class
/// or split folder linked to another, an image of one class linked into another): it would be
/// two samples, two classes, or trained on and scored as held out at once. An image linked in
/// once from a folder that is no class (a pool of files) is the user's to make.
fn each_file_once<'a>(files: impl Iterator<Item = &'a PathBuf>) -> Result<()> {
    let mut seen: std::collections::HashMap<PathBuf, &PathBuf> = std::collections::HashMap::new();
    for p in files {
        let real = p.canonicalize().map_err(|e| Error::io(p, e))?;
        if let Some(first) = seen.insert(real, p) {
            return Err(Error::data(
                p,
                format!(
                    "is the same image file as {} (through a link): it would count twice, as two classes, or in \
                     training and in the held-out split at once; remove the link",
                    first.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Every image file of every class folder under `root` (at any depth), with its class index,
/// sorted by path.
/// Every class folder under `root` must be one of `classes` (the training split's) and hold at
/// least one image, as torchvision's `ImageFolder` requires; a test split may lack a class.
fn list_files(root: &Path, classes: &[String]) -> Result<Vec<(PathBuf, i64)>> {
    if let Some(extra) = class_dirs(root)?.into_iter().find(|c| !classes.contains(c)) {
        return Err(Error::data(
            root.join(extra),
            format!("class folder not in the training split (its classes: {classes:?})"),
        ));
    }
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        if !dir.is_dir() {
            continue;
        }
        // At any depth, as torchvision's ImageFolder finds them.
        let mut found = Vec::new();
        walk(&dir, &mut found)?;
        if found.is_empty() {
            return Err(Error::data(
                dir,
                "class folder holds no PNG or JPEG file (.png, .jpg, .jpeg)",
            ));
        }
        found.sort();
        files.extend(found.into_iter().map(|p| (p, label as i64)));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, RgbImage};

    #[test]
    fn mixed_gray_rgb_and_sizes_resize_to_rgb() {
        let dir = darkmagic_base::testutil::tempdir("folder");
        for c in ["cat", "dog"] {
            std::fs::create_dir_all(dir.join("train").join(c)).unwrap();
        }
        // The test split may lack a class (val/cat), as long as its classes are the training split's.
        std::fs::create_dir_all(dir.join("val/dog")).unwrap();
        GrayImage::from_pixel(4, 4, image::Luma([200]))
            .save(dir.join("train/cat/a.png"))
            .unwrap();
        RgbImage::from_pixel(8, 6, image::Rgb([10, 20, 30]))
            .save(dir.join("train/dog/b.png"))
            .unwrap();
        RgbImage::from_pixel(6, 6, image::Rgb([0, 0, 255]))
            .save(dir.join("val/dog/c.jpg"))
            .unwrap();
        let e = load(&dir, None, Decode::AtLoad, Interpolation::Bilinear)
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.png") && e.contains("data.image_size"), "{e}");
        let d = load(&dir, Some(3), Decode::AtLoad, Interpolation::Bilinear).unwrap();
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
    fn colour_files_for_a_gray_model_convert_as_pil_does() {
        let dir = darkmagic_base::testutil::tempdir("folder-luma");
        // PIL's convert("L") of (200, 30, 90): (200*19595 + 30*38470 + 90*7471 + 0x8000) >> 16
        // = 88 (the image crate's sRGB luma gives 70).
        let rgb = RgbImage::from_fn(4, 2, |x, _| image::Rgb([200, 30 + x as u8, 90]));
        let want: Vec<u8> = rgb.pixels().map(|p| grayscale(&p.0, 3)[0]).collect();
        assert_eq!(want[0], 88);
        rgb.save(dir.join("c.png")).unwrap();
        let gray = |px: Vec<u8>, h, w| Image { px, h, w, c: 1 };
        assert_eq!(decode(&dir.join("c.png").into(), 1).unwrap(), gray(want, 2, 4));
        // A colour JPEG: its RGB decoding, converted by the same formula.
        rgb.save(dir.join("c.jpg")).unwrap();
        let Image { px, h, w, .. } = decode(&dir.join("c.jpg").into(), 3).unwrap();
        assert_eq!(
            decode(&dir.join("c.jpg").into(), 1).unwrap(),
            gray(grayscale(&px, 3), h, w)
        );
        // Gray files stay as they are.
        GrayImage::from_pixel(2, 2, image::Luma([77]))
            .save(dir.join("g.jpg"))
            .unwrap();
        assert!(
            decode(&dir.join("g.jpg").into(), 1)
                .unwrap()
                .px
                .iter()
                .all(|&v| v.abs_diff(77) <= 1)
        );
    }

    #[test]
    fn corrupt_image_is_named() {
        let dir = darkmagic_base::testutil::tempdir("folder-bad");
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/broken.png"), b"\x89PNG not really").unwrap();
        let e = load(&dir, None, Decode::AtLoad, Interpolation::Bilinear)
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken.png") && e.contains("cannot decode"), "{e}");
    }
}
