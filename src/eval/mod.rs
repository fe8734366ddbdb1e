//! Evaluation: a model's loss, top-1/top-5 accuracy, per-class accuracy and confusion matrix on
//! labelled images, with the recipe's evaluation transform (as timm's `validate.py`). Training
//! measures its validation accuracy with the same [`Evaluator`], so `darkmagic eval` on a run's
//! checkpoint reproduces the run's own figures.
pub mod classifier;
pub mod predict;

use crate::data::{Images, Pixels};
use crate::error::{Error, Result};
use crate::loader::{self, Normalizer};
use crate::model::Net;
use crate::recipe::{AugmentConfig, Recipe};
use crate::runtime::amp;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

/// How a model is evaluated: the evaluation transform, batch size, device and numerics of a
/// recipe.
pub struct Evaluator<'a> {
    pub net: &'a Net,
    pub norm: &'a Normalizer,
    pub augment: &'a AugmentConfig,
    pub batch_size: usize,
    pub device: Device,
    /// Autocast type (`train.amp` resolved); None = float32.
    pub amp: Option<Kind>,
    /// Batches in channels-last memory order, as the weights.
    pub channels_last: bool,
    /// Test-time augmentation: also score each image's horizontal mirror (`augment.tta_flip`).
    pub tta_flip: bool,
    /// Test-time augmentation: also score each image shifted by a pixel up-left and down-right
    /// (`augment.tta_translate`).
    pub tta_translate: bool,
}

impl<'a> Evaluator<'a> {
    /// The evaluation `recipe` describes (`augment`'s evaluation transform, `train.eval_batch_size`,
    /// `train.channels_last`) of `net` with `norm`, on `device` with autocast `amp`.
    pub fn new(net: &'a Net, norm: &'a Normalizer, recipe: &'a Recipe, device: Device, amp: Option<Kind>) -> Self {
        Evaluator {
            net,
            norm,
            augment: &recipe.augment,
            batch_size: recipe.train.eval_batch_size,
            device,
            amp,
            channels_last: recipe.train.channels_last,
            tta_flip: recipe.augment.tta_flip,
            tta_translate: recipe.augment.tta_translate,
        }
    }

    /// The same evaluation without test-time augmentation (one forward pass a batch).
    pub fn without_tta(self) -> Self {
        Evaluator {
            tta_flip: false,
            tta_translate: false,
            ..self
        }
    }

    /// Whether evaluation also gives test-time-augmented scores.
    pub fn tta(&self) -> bool {
        self.tta_flip || self.tta_translate
    }

    /// The test-time-augmented scores of the batch `x` (log of the mean probability), from
    /// `forward`'s logits: the softmax of `x` (averaged with its mirror's with `tta_flip`) and,
    /// with `tta_translate`, weighing half, the mean of the same for `x` shifted one pixel
    /// down-right and up-left through reflect padding (airbench94's `infer_mirror_translate`).
    fn tta_scores(&self, x: &Tensor, logits: &Tensor, forward: impl Fn(&Tensor) -> Tensor) -> Tensor {
        let probabilities = |x: &Tensor, logits: Option<&Tensor>| {
            let p = logits
                .map_or_else(|| forward(x), Tensor::shallow_clone)
                .softmax(-1, Kind::Float);
            if self.tta_flip {
                (p + forward(&x.flip([3])).softmax(-1, Kind::Float)) / 2.0
            } else {
                p
            }
        };
        let mut p = probabilities(x, Some(logits));
        if self.tta_translate {
            let (h, w) = (x.size()[2], x.size()[3]);
            let padded = x.reflection_pad2d([1, 1, 1, 1]);
            let shifted = |at: i64| padded.narrow(2, at, h).narrow(3, at, w);
            p = p * 0.5 + (probabilities(&shifted(0), None) + probabilities(&shifted(2), None)) * 0.25;
        }
        p.log()
    }

    /// Calls `f` with the float32 logits (on the device) and the labels of each batch of
    /// `images`, in their order, without gradients; with test-time augmentation, also with the
    /// log of the mean softmax of its views ([`Evaluator::tta_scores`]; log-probabilities: as
    /// logits, they give the same argmax, and cross-entropy gives -log of the mean probability).
    /// A progress bar shows on a terminal.
    pub fn for_each_batch(&self, images: &Images, mut f: impl FnMut(&Tensor, Option<&Tensor>, &Tensor)) -> Result<()> {
        let bar = indicatif::ProgressBar::new(images.len().div_ceil(self.batch_size) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("evaluating [{bar:30}] {pos}/{len} batches ({per_sec}, eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        tch::no_grad(|| {
            for b in bar.wrap_iter(loader::eval_batches(images, self.norm, self.augment, self.batch_size)) {
                let b = b?;
                let x = crate::model::in_memory_order(b.images(self.device), self.channels_last);
                let forward = |x: &Tensor| {
                    amp::autocast(self.amp, self.device, || self.net.forward_t(x, false)).to_kind(Kind::Float)
                };
                let logits = forward(&x);
                let tta = self.tta().then(|| self.tta_scores(&x, &logits, forward));
                f(&logits, tta.as_ref(), &b.labels(self.device));
            }
            bar.finish_and_clear();
            Ok(())
        })
    }

    /// Loss, accuracies, confusion matrix and top-1 class of every image, for `classes` classes;
    /// with `tta`, the same for the test-time-augmented scores.
    pub fn evaluate(&self, images: &Images, classes: usize) -> Result<(Evaluation, Option<Evaluation>)> {
        let mut plain = Evaluation::empty(classes);
        let mut tta = self.tta().then(|| Evaluation::empty(classes));
        self.for_each_batch(images, |logits, mirrored, labels| {
            plain.add(logits, labels);
            if let (Some(e), Some(m)) = (tta.as_mut(), mirrored) {
                e.add(m, labels);
            }
        })?;
        Ok((plain, tta))
    }
}

/// The evaluation of a model on a set of labelled images.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Sum of the per-image cross-entropy (no label smoothing).
    loss_sum: f64,
    /// Images whose label is among the 5 highest logits.
    top5_hits: i64,
    /// `confusion[label][predicted]`: image counts.
    pub confusion: Vec<Vec<u64>>,
    /// The top-1 class of each image, in the order of the images.
    pub predicted: Vec<i64>,
    /// The label of each image.
    pub labels: Vec<i64>,
}

impl Evaluation {
    fn empty(classes: usize) -> Self {
        Evaluation {
            loss_sum: 0.0,
            top5_hits: 0,
            confusion: vec![vec![0; classes]; classes],
            predicted: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Adds one batch: its logits (N x classes) and labels (N).
    fn add(&mut self, logits: &Tensor, labels: &Tensor) {
        self.loss_sum += logits
            .cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::Sum, -100, 0.0)
            .double_value(&[]);
        if self.classes() > 5 {
            self.top5_hits += topk_correct(logits, labels, 5);
        }
        let predicted = Vec::<i64>::try_from(logits.argmax(-1, false).to_device(Device::Cpu)).expect("int64 indices");
        let labels = Vec::<i64>::try_from(labels.to_device(Device::Cpu)).expect("int64 labels");
        for (&l, &p) in labels.iter().zip(&predicted) {
            self.confusion[l as usize][p as usize] += 1;
        }
        self.predicted.extend(predicted);
        self.labels.extend(labels);
    }

    pub fn classes(&self) -> usize {
        self.confusion.len()
    }

    pub fn images(&self) -> usize {
        self.predicted.len()
    }

    /// Mean cross-entropy per image.
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.images().max(1) as f64
    }

    /// Fraction of images whose top-1 class is their label.
    pub fn top1(&self) -> f64 {
        let hits: u64 = (0..self.classes()).map(|c| self.confusion[c][c]).sum();
        hits as f64 / self.images().max(1) as f64
    }

    /// Fraction of images whose label is among the 5 highest logits; None with 5 classes or fewer.
    pub fn top5(&self) -> Option<f64> {
        (self.classes() > 5).then(|| self.top5_hits as f64 / self.images().max(1) as f64)
    }

    /// Images and top-1 accuracy of each class (accuracy None for a class without images).
    pub fn per_class(&self) -> Vec<(u64, Option<f64>)> {
        (0..self.classes())
            .map(|c| {
                let n: u64 = self.confusion[c].iter().sum();
                (n, (n > 0).then(|| self.confusion[c][c] as f64 / n as f64))
            })
            .collect()
    }

    /// The figures as a few lines of text for a terminal: images, top-1, top-5 and loss, then
    /// per class when there are at most 30.
    pub fn text(&self, split: &str, classes: &[String]) -> String {
        let top5 = self
            .top5()
            .map_or(String::new(), |t| format!(", top-5 {:.2}%", 100.0 * t));
        let mut s = format!(
            "{split}: {} images, top-1 {:.2}%{top5}, loss {:.4}\n",
            self.images(),
            100.0 * self.top1(),
            self.loss()
        );
        if classes.len() <= 30 {
            s.push_str(&format!(
                "{:>6}  {:<24} {:>8} {:>9}\n",
                "class", "name", "images", "top-1 %"
            ));
            for (c, (n, acc)) in self.per_class().into_iter().enumerate() {
                let acc = acc.map_or("-".into(), |a| format!("{:.2}", 100.0 * a));
                s.push_str(&format!("{c:>6}  {:<24} {n:>8} {acc:>9}\n", classes[c]));
            }
        }
        s
    }

    /// Writes `<split>.json` (figures, per-class accuracy, confusion matrix), `<split>-classes.csv`,
    /// `<split>-confusion.csv` and `<split>-predictions.csv` into `out`, each atomically; `names`
    /// are the class names, `images` the images evaluated (their files name the rows when they
    /// are files). Returns the paths written.
    pub fn write(&self, out: &Path, split: &str, names: &[String], images: &Images) -> Result<Vec<PathBuf>> {
        if std::fs::metadata(out).is_ok_and(|m| !m.is_dir()) {
            return Err(Error::flag(
                "--out",
                format!(
                    "{} exists and is not a folder; eval writes a folder of files",
                    out.display()
                ),
            ));
        }
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let files = [
            (format!("{split}.json"), self.json(names)),
            (format!("{split}-classes.csv"), self.classes_csv(names)),
            (format!("{split}-confusion.csv"), self.confusion_csv(names)),
            (format!("{split}-predictions.csv"), self.predictions_csv(names, images)),
        ];
        files
            .into_iter()
            .map(|(name, text)| {
                let path = out.join(name);
                crate::files::write_atomic(&path, text.as_bytes()).map(|()| path)
            })
            .collect()
    }

    fn json(&self, names: &[String]) -> String {
        #[derive(Serialize)]
        struct Class<'a> {
            index: usize,
            name: &'a str,
            images: u64,
            accuracy: Option<f64>,
        }
        #[derive(Serialize)]
        struct Summary<'a> {
            images: usize,
            top1: f64,
            top5: Option<f64>,
            loss: f64,
            per_class: Vec<Class<'a>>,
            /// Rows: label; columns: predicted class.
            confusion: &'a [Vec<u64>],
        }
        let per_class = self
            .per_class()
            .into_iter()
            .enumerate()
            .map(|(index, (images, accuracy))| Class {
                index,
                name: &names[index],
                images,
                accuracy,
            })
            .collect();
        let s = Summary {
            images: self.images(),
            top1: self.top1(),
            top5: self.top5(),
            loss: self.loss(),
            per_class,
            confusion: &self.confusion,
        };
        serde_json::to_string_pretty(&s).expect("evaluation serializes") + "\n"
    }

    fn classes_csv(&self, names: &[String]) -> String {
        let mut s = String::from("index,class,images,correct,accuracy\n");
        for (c, (n, acc)) in self.per_class().into_iter().enumerate() {
            let acc = acc.map_or(String::new(), |a| format!("{a:.6}"));
            s.push_str(&format!(
                "{c},{},{n},{},{acc}\n",
                csv_field(&names[c]),
                self.confusion[c][c]
            ));
        }
        s
    }

    fn confusion_csv(&self, names: &[String]) -> String {
        let header: Vec<String> = names.iter().map(|n| csv_field(n)).collect();
        let mut s = format!("label \\ predicted,{}\n", header.join(","));
        for (name, row) in header.iter().zip(&self.confusion) {
            let counts: Vec<String> = row.iter().map(u64::to_string).collect();
            s.push_str(&format!("{name},{}\n", counts.join(",")));
        }
        s
    }

    fn predictions_csv(&self, names: &[String], images: &Images) -> String {
        let mut s = String::from("index,image,label,predicted,correct\n");
        for (i, (&l, &p)) in self.labels.iter().zip(&self.predicted).enumerate() {
            let source = match &images.pixels {
                Pixels::Encoded(sources) => sources.get(i),
                Pixels::Decoded(_) => images.names.get(i),
            };
            let file = source.map_or(String::new(), |s| csv_field(&crate::error::exact(&s.name())));
            let (label, predicted) = (csv_field(&names[l as usize]), csv_field(&names[p as usize]));
            s.push_str(&format!("{i},{file},{label},{predicted},{}\n", l == p));
        }
        s
    }
}

/// Number of rows whose label is among the `k` highest logits.
pub fn topk_correct(logits: &Tensor, labels: &Tensor, k: i64) -> i64 {
    let (_, idx) = logits.topk(k, -1, true, true);
    idx.eq_tensor(&labels.unsqueeze(1))
        .any_dim(1, false)
        .sum(Kind::Int64)
        .int64_value(&[])
}

/// A CSV field: quoted (with quotes doubled) when it holds a comma, quote or line break (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topk_counts_rows_with_label_in_top_k() {
        let logits = Tensor::from_slice(&[0.1f32, 0.9, 0.0, 0.5, 0.2, 0.3]).view([2, 3]);
        let labels = Tensor::from_slice(&[1i64, 2]);
        assert_eq!(topk_correct(&logits, &labels, 1), 1);
        assert_eq!(topk_correct(&logits, &labels, 2), 2);
    }

    #[test]
    fn test_time_augmentation_averages_the_softmax_of_image_and_mirror() {
        let recipe = Recipe {
            augment: AugmentConfig {
                tta_flip: true,
                ..AugmentConfig::default()
            },
            ..Recipe::default()
        };
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let net = Net::new(&vs.root(), &recipe.model, 1, 10);
        let digits = crate::data::digits::load().unwrap().train.select(&[0, 1, 2, 3, 4]);
        let norm = Normalizer::new(&[0.3], &[0.4], 1);
        let ev = Evaluator::new(&net, &norm, &recipe, Device::Cpu, None);
        let (mut plain, mut tta) = (Vec::new(), Vec::new());
        ev.for_each_batch(&digits, |l, t, _| {
            plain.push(l.copy());
            tta.push(t.unwrap().copy());
        })
        .unwrap();
        let x = loader::make_batch(&digits, &[0, 1, 2, 3, 4], &norm, loader::Mode::Eval(&recipe.augment))
            .unwrap()
            .images(Device::Cpu);
        let p = |x: &Tensor| tch::no_grad(|| net.forward_t(x, false)).softmax(-1, Kind::Float);
        let expected = ((p(&x) + p(&x.flip([3]))) / 2.0).log();
        assert!(
            tta[0].allclose(&expected, 1e-5, 1e-6, false),
            "{:?} vs {expected:?}",
            tta[0]
        );
        assert!(plain[0].softmax(-1, Kind::Float).allclose(&p(&x), 1e-5, 1e-6, false));
        let (e, t) = ev.evaluate(&digits, 10).unwrap();
        assert_eq!(
            t.unwrap().predicted,
            Vec::<i64>::try_from(expected.argmax(-1, false)).unwrap()
        );
        assert_eq!(e.images(), 5);
    }

    /// airbench94's `infer_mirror_translate` with softmax outputs: half the mean of image and
    /// mirror, half the mean of the same for the image shifted one pixel down-right and up-left
    /// (reflect padding), written out here with explicit pixel indices.
    #[test]
    fn translate_test_time_augmentation_weighs_the_shifted_views_half() {
        let recipe = Recipe {
            augment: AugmentConfig {
                tta_flip: true,
                tta_translate: true,
                ..AugmentConfig::default()
            },
            ..Recipe::default()
        };
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let net = Net::new(&vs.root(), &recipe.model, 1, 10);
        let digits = crate::data::digits::load().unwrap().train.select(&[5, 6, 7]);
        let norm = Normalizer::new(&[0.3], &[0.4], 1);
        let ev = Evaluator::new(&net, &norm, &recipe, Device::Cpu, None);
        let mut tta = Vec::new();
        ev.for_each_batch(&digits, |_, t, _| tta.push(t.unwrap().copy()))
            .unwrap();
        let x = loader::make_batch(&digits, &[0, 1, 2], &norm, loader::Mode::Eval(&recipe.augment))
            .unwrap()
            .images(Device::Cpu);
        let (h, w) = (x.size()[2], x.size()[3]);
        // Reflect padding by one: row -1 is row 1, row h is row h - 2 (the same for columns).
        let reflect = |i: i64, n: i64| {
            if i < 0 {
                -i
            } else if i >= n {
                2 * n - 2 - i
            } else {
                i
            }
        };
        let shift = |d: i64| {
            let rows: Vec<i64> = (0..h).map(|i| reflect(i - d, h)).collect();
            let cols: Vec<i64> = (0..w).map(|j| reflect(j - d, w)).collect();
            x.index_select(2, &Tensor::from_slice(&rows))
                .index_select(3, &Tensor::from_slice(&cols))
        };
        let p = |x: &Tensor| tch::no_grad(|| net.forward_t(x, false)).softmax(-1, Kind::Float);
        let mirrored = |x: &Tensor| (p(x) + p(&x.flip([3]))) / 2.0;
        let expected = (mirrored(&x) * 0.5 + (mirrored(&shift(1)) + mirrored(&shift(-1))) * 0.25).log();
        assert!(
            tta[0].allclose(&expected, 1e-5, 1e-6, false),
            "{:?} vs {expected:?}",
            tta[0]
        );
        // Shifted by one, the content moves: the views differ from the image.
        assert!(!shift(1).equal(&x) && !shift(-1).equal(&x));
    }

    #[test]
    fn figures_and_files_of_a_known_batch() {
        // Three classes; rows predict 0, 1, 1, 2 for labels 0, 1, 2, 2.
        let logits = Tensor::from_slice(&[
            3.0f32, 1.0, 0.0, //
            0.0, 2.0, 1.0, //
            0.0, 2.0, 1.0, //
            0.0, 0.0, 5.0,
        ])
        .view([4, 3]);
        let labels = Tensor::from_slice(&[0i64, 1, 2, 2]);
        let mut e = Evaluation::empty(3);
        e.add(&logits, &labels);
        assert_eq!(e.confusion, vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 1, 1]]);
        assert_eq!(e.top1(), 0.75);
        assert_eq!(e.top5(), None);
        let ce = logits
            .log_softmax(-1, Kind::Float)
            .neg()
            .gather(1, &labels.unsqueeze(1), false);
        assert!((e.loss() - ce.mean(Kind::Float).double_value(&[])).abs() < 1e-6);
        assert_eq!(e.per_class(), vec![(1, Some(1.0)), (1, Some(1.0)), (2, Some(0.5))]);

        let dir = crate::testutil::tempdir("eval-write");
        let names: Vec<String> = ["cat", "dog", "a,b"].map(String::from).to_vec();
        let files: Vec<_> = ["x/1.png", "x/2.png", "y/3.png", "y/4.png"]
            .map(|p| PathBuf::from(p).into())
            .to_vec();
        let images = Images {
            pixels: Pixels::Encoded(files.clone()),
            labels: vec![0, 1, 2, 2],
            height: 1,
            width: 1,
            channels: 1,
            names: Vec::new(),
        };
        // The same images decoded at load name their rows by the files they came from.
        let decoded = Images {
            pixels: Pixels::Decoded(vec![0; 4]),
            names: files,
            ..images.clone()
        };
        e.write(&dir.join("decoded"), "val", &names, &decoded).unwrap();
        e.write(&dir, "val", &names, &images).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(
            read("val-classes.csv"),
            "index,class,images,correct,accuracy\n0,cat,1,1,1.000000\n1,dog,1,1,1.000000\n2,\"a,b\",2,1,0.500000\n"
        );
        assert_eq!(
            read("val-confusion.csv"),
            "label \\ predicted,cat,dog,\"a,b\"\ncat,1,0,0\ndog,0,1,0\n\"a,b\",0,1,1\n"
        );
        assert_eq!(
            read("val-predictions.csv").lines().nth(3),
            Some("2,y/3.png,\"a,b\",dog,false")
        );
        assert_eq!(read("val-predictions.csv"), read("decoded/val-predictions.csv"));
        let json: serde_json::Value = serde_json::from_str(&read("val.json")).unwrap();
        assert_eq!(json["top1"], 0.75);
        assert_eq!(json["per_class"][2]["accuracy"], 0.5);
        assert_eq!(json["confusion"][2], serde_json::json!([0, 1, 1]));
    }
}
