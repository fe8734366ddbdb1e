//! A bounded mutation fuzzer on stable Rust, part of `cargo test`: the recipe parser and `--set`
//! overrides, the IDX, CIFAR, WebDataset and parquet readers and image decoding get thousands of mutated inputs
//! (bit flips, interesting integers in headers, insertions, deletions, truncations, gzip) and
//! must answer each with a value or an error: no panic, and no single allocation above what the
//! documented limits allow (`data::MAX_IMAGE_PIXELS`, `data::MAX_FILE_BYTES`). So do the files
//! darkmagic reads back from run dirs and checklists (`trial.json`, `result.json`,
//! `metrics.jsonl`, `model.json`), read directly and through the analysis and report of a
//! checklist (`tests/fixtures/records`: six trials of a real one).
//!
//! `DARKMAGIC_FUZZ_ITERS=N` sets the inputs per target (default 5000) for a longer run;
//! `DARKMAGIC_FUZZ_SEED` the first seed.
mod common;
use darkmagic::checklist::analysis;
use darkmagic::data::{self, cifar, folder, idx};
use darkmagic::recipe::Recipe;
use darkmagic::rng::Rng;
use darkmagic::rundir::RunDir;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, recording the largest single request.
struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwards the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// The largest allocation an input may cause: an image at the pixel limit decoded as RGBA (the
/// decoder's buffer, which the `image` crate also caps at 512 MiB) plus its RGB conversion.
const ALLOCATION_BOUND: usize = data::MAX_IMAGE_PIXELS as usize * 7;

fn iterations() -> u64 {
    std::env::var("DARKMAGIC_FUZZ_ITERS").map_or(5000, |v| v.parse().expect("DARKMAGIC_FUZZ_ITERS: a number"))
}

fn first_seed() -> u64 {
    std::env::var("DARKMAGIC_FUZZ_SEED").map_or(0, |v| v.parse().expect("DARKMAGIC_FUZZ_SEED: a number"))
}

/// Values that break parsers and size computations.
const INTERESTING: [u32; 8] = [0, 1, 0x7f, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, u32::MAX];

/// Applies 1 to 4 random mutations to `input`.
fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = |rng: &mut Rng, b: &[u8]| rng.below(b.len().max(1));
        match rng.below(7) {
            0 if !b.is_empty() => {
                let i = at(rng, &b);
                b[i] ^= 1 << rng.below(8);
            }
            1 if b.len() >= 4 => {
                let i = rng.below(b.len() - 3);
                let v = INTERESTING[rng.below(INTERESTING.len())];
                b[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            2 => {
                let i = at(rng, &b).min(b.len());
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                b.splice(i..i, bytes);
            }
            3 if !b.is_empty() => {
                let i = at(rng, &b);
                let n = (1 + rng.below(32)).min(b.len() - i);
                b.drain(i..i + n);
            }
            4 => {
                let keep = rng.below(b.len() + 1);
                b.truncate(keep);
            }
            5 if !b.is_empty() => {
                let i = at(rng, &b);
                let n = (1 + rng.below(64)).min(b.len() - i);
                let copy = b[i..i + n].to_vec();
                let j = at(rng, &b);
                b.splice(j..j, copy);
            }
            _ if !b.is_empty() => {
                let i = at(rng, &b);
                b[i] = INTERESTING[rng.below(INTERESTING.len())] as u8;
            }
            _ => {}
        }
    }
    b
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Runs `target` on `n` mutations of the `seeds`; returns the inputs that panicked.
fn fuzz(name: &str, seeds: &[Vec<u8>], n: u64, mut target: impl FnMut(&[u8])) -> Vec<String> {
    let mut panics = Vec::new();
    for k in 0..n {
        let mut rng = Rng::keyed(first_seed(), name.len() as u64, k);
        let input = mutate(&seeds[rng.below(seeds.len())], &mut rng);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input)));
        if caught.is_err() {
            panics.push(format!("{name} input {k}: {:?}", &input[..input.len().min(64)]));
        }
    }
    eprintln!("{name}: {n} inputs, {} panics", panics.len());
    panics
}

fn recipe_seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let mut seeds = vec![Recipe::default().to_toml().into_bytes()];
    for e in std::fs::read_dir(root).unwrap().flatten() {
        seeds.push(std::fs::read(e.path()).unwrap());
    }
    seeds
}

/// `--set` overrides from the recipe's own keys and values that test every check.
fn random_overrides(rng: &mut Rng, keys: &[String]) -> Vec<String> {
    const VALUES: [&str; 16] = [
        "nan",
        "inf",
        "-inf",
        "-1",
        "0",
        "1e308",
        "18446744073709551616",
        "[]",
        "[1, 2, 3, 4]",
        "[0.5, nan]",
        "\"x\"",
        "true",
        "{ a = 1 }",
        "",
        "=",
        "a.b",
    ];
    (0..1 + rng.below(3))
        .map(|_| {
            let key = &keys[rng.below(keys.len())];
            format!("{key}={}", VALUES[rng.below(VALUES.len())])
        })
        .collect()
}

/// Every dotted key of the default recipe.
fn recipe_keys() -> Vec<String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(sub) => walk(&key, sub, out),
                _ => out.push(key),
            }
        }
    }
    let table: toml::Table = Recipe::default().to_toml().parse().unwrap();
    let mut keys = Vec::new();
    walk("", &table, &mut keys);
    keys.extend(
        [
            "data.image_size",
            "data.mean",
            "data.std",
            "model.aux_stage",
            "x.y",
            "optim",
        ]
        .map(String::from),
    );
    keys
}

fn idx_seeds() -> Vec<Vec<u8>> {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4];
    images.extend((0..48).map(|i| i as u8));
    vec![images.clone(), gzip(&images)]
}

fn cifar_seeds() -> Vec<Vec<u8>> {
    let record: Vec<u8> = std::iter::once(3).chain((0..3072).map(|i| i as u8)).collect();
    vec![[record.clone(), record].concat()]
}

fn image_seeds() -> Vec<Vec<u8>> {
    let rgb = image::RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 90]));
    let mut png = Vec::new();
    rgb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut gray = Vec::new();
    image::GrayImage::from_pixel(4, 6, image::Luma([77]))
        .write_to(&mut std::io::Cursor::new(&mut gray), image::ImageFormat::Png)
        .unwrap();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .encode(rgb.as_raw(), 7, 5, image::ExtendedColorType::Rgb8)
        .unwrap();
    vec![png, gray, jpeg]
}

#[test]
fn parsers_and_decoders_survive_mutated_input() {
    // libtorch's and this test's own panics would print; only the count matters here.
    std::panic::set_hook(Box::new(|_| {}));
    let dir = common::tempdir("fuzz");
    let keys = recipe_keys();
    let mut rng = Rng::keyed(first_seed(), 99, 0);
    let mut panics = fuzz("recipe", &recipe_seeds(), iterations(), |input| {
        if let Ok(text) = std::str::from_utf8(input)
            && let Ok(table) = text.parse::<toml::Table>()
        {
            let _ = Recipe::from_table(table);
        }
        let _ = Recipe::load(None, &random_overrides(&mut rng, &keys));
    });
    let labels = [0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2];
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
    panics.extend(fuzz("idx", &idx_seeds(), iterations(), |input| {
        std::fs::write(dir.join("train-images-idx3-ubyte"), input).unwrap();
        let _ = idx::load(&dir);
    }));
    panics.extend(fuzz("cifar", &cifar_seeds(), iterations(), |input| {
        std::fs::write(dir.join("data_batch_1.bin"), input).unwrap();
        let _ = cifar::load(&dir, cifar::Variant::Cifar10);
    }));
    // A WebDataset shard and a Hugging Face parquet file as their libraries write them.
    let formats = dir.join("formats");
    let o = std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dataset_formats.py"))
        .args([formats.to_str().unwrap(), "--count", "6", "--size", "5"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reading = folder::Reading {
        image_size: None,
        decode: darkmagic::recipe::Decode::AtLoad,
        interp: darkmagic::recipe::Interpolation::Bilinear,
    };
    let shard = vec![std::fs::read(formats.join("webdataset/train-000000.tar")).unwrap()];
    panics.extend(fuzz("webdataset", &shard, iterations(), |input| {
        std::fs::write(dir.join("shard.tar"), input).unwrap();
        let _ = data::webdataset::load(&dir.join("shard.tar"), reading);
    }));
    let parquet = vec![std::fs::read(formats.join("parquet/data/train-00000-of-00001.parquet")).unwrap()];
    panics.extend(fuzz("parquet", &parquet, iterations(), |input| {
        std::fs::write(dir.join("train.parquet"), input).unwrap();
        let _ = data::parquet::load(&dir.join("train.parquet"), reading);
    }));
    let image = dir.join("image");
    panics.extend(fuzz("image", &image_seeds(), iterations(), |input| {
        std::fs::write(&image, input).unwrap();
        let _ = folder::decode(&image.clone().into(), 1);
        let _ = folder::decode(&image.clone().into(), 3);
    }));
    let _ = std::panic::take_hook();
    let largest = LARGEST.load(Ordering::Relaxed);
    eprintln!("largest single allocation: {largest} bytes");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(panics.is_empty(), "{} panics:\n{}", panics.len(), panics.join("\n"));
    assert!(largest <= ALLOCATION_BOUND, "an allocation of {largest} bytes");
}

/// Copies the folder `from` into `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Mutated records are read back soundly: each read is a value that satisfies the record's own
/// checks or an error that names the file, never a panic; the analysis and report of the
/// checklist answer each with a summary or an error naming a record.
#[test]
fn records_read_back_survive_mutated_input() {
    use darkmagic::checklist::design_record;
    std::panic::set_hook(Box::new(|_| {}));
    let root = common::tempdir("fuzz-records");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records"),
        &root,
    );
    // The design record of the fixture's plan, as the checklist's first look writes it.
    let summary = analysis::analyze(&root).unwrap();
    // From the fixture's own settings and plan (six trials of a checklist of 14 variants): the
    // analysis holds the record to them.
    let baseline = Recipe::load(Some(&root.join("baseline.toml")), &[]).unwrap();
    let labels: Vec<String> = darkmagic::checklist::plan::variants(&baseline)
        .unwrap()
        .iter()
        .map(darkmagic::checklist::plan::Variant::label)
        .collect();
    let settings = baseline.checklist;
    let design = darkmagic::checklist::sequential::Design {
        margin: summary.design.margin,
        ..darkmagic::checklist::sequential::Design::new(&settings, 0, labels.len())
    };
    let record = design_record::Record {
        design,
        margin: None,
        variants: labels,
        replaced: Vec::new(),
        retired: false,
        digest: None,
    };
    design_record::write(&root, &record).unwrap();
    let trial = RunDir::open(&root.join("trials/se=off/seed-0"));
    let mut panics = Vec::new();
    let mut unsound = Vec::new();
    let files = [
        trial.file("trial.json"),
        trial.file("result.json"),
        trial.file("metrics.jsonl"),
        trial.file("model.json"),
        root.join(design_record::FILE),
        root.join("baseline.toml"),
    ];
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let original = std::fs::read(&path).unwrap();
        // A sixth of the inputs: each one rewrites the checklist's report.
        panics.extend(fuzz(
            &name,
            std::slice::from_ref(&original),
            iterations() / 6,
            |input| {
                std::fs::write(&path, input).unwrap();
                let named = |e: &darkmagic::Error| e.to_string().contains(&name);
                match trial.read_result() {
                    Ok(Some(r)) if r.problem().is_some() => unsound.push(format!("result.json accepted: {r:?}")),
                    Err(e) if name == "result.json" && !named(&e) => unsound.push(format!("result.json: {e}")),
                    _ => {}
                }
                match trial.read_metrics() {
                    Ok(m)
                        if m.windows(2).any(|w| w[0].epoch >= w[1].epoch)
                            || m.first().is_some_and(|m| m.epoch == 0) =>
                    {
                        unsound.push("metrics.jsonl accepted with epochs out of order".into())
                    }
                    Err(e) if name == "metrics.jsonl" && !named(&e) => unsound.push(format!("metrics.jsonl: {e}")),
                    _ => {}
                }
                if let Ok(Some(spec)) = trial.read_spec() {
                    let _ = darkmagic::loader::Normalizer::of(&spec);
                }
                match design_record::read(&root) {
                    Ok(Some(r)) if design_record::validate(&r).is_err() => {
                        unsound.push(format!("design.json accepted: {r:?}"))
                    }
                    Err(e) if name == "design.json" && !named(&e) => unsound.push(format!("design.json: {e}")),
                    _ => {}
                }
                match analysis::analyze(&root) {
                    Ok(summary) => {
                        let _ = darkmagic::report::write(&root, &summary);
                    }
                    Err(e) if !named(&e) && name != "model.json" => unsound.push(format!("analysis after {name}: {e}")),
                    Err(_) => {}
                }
            },
        ));
        std::fs::write(&path, original).unwrap();
    }
    let _ = std::panic::take_hook();
    let _ = std::fs::remove_dir_all(&root);
    assert!(panics.is_empty(), "{} panics:\n{}", panics.len(), panics.join("\n"));
    unsound.sort();
    unsound.dedup();
    assert!(
        unsound.is_empty(),
        "{} unsound reads:\n{}",
        unsound.len(),
        unsound[..unsound.len().min(20)].join("\n")
    );
}
