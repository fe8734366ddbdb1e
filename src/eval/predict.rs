//! Prediction on image files, as timm's `inference.py`: for each image its `k` most probable
//! classes with their softmax probabilities (and, on request, the raw logits), as CSV or JSON.
use super::classifier::Classifier;
use super::csv_field;
use crate::data::folder;
use crate::error::Result;
use crate::recipe::Decode;
use serde::Serialize;
use std::path::PathBuf;
use tch::{Device, Kind};

/// What the model says about one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub image: PathBuf,
    /// (class index, probability), most probable first.
    pub top: Vec<(usize, f64)>,
    /// The logits, one per class, when asked for.
    pub logits: Option<Vec<f32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

impl Classifier {
    /// Predicts the `top_k` classes of each file of `paths` (at most the class count), in
    /// batches of `train.eval_batch_size` decoded on the loader's threads; with `logits`, keeps
    /// every logit too. Each image is brought to the model's input as training brought its own
    /// (see [`folder::unlabelled`]).
    pub fn predict(&self, paths: Vec<PathBuf>, top_k: usize, logits: bool) -> Result<Vec<Prediction>> {
        let data = &self.recipe.data;
        let at_load = data.dataset.is_image_files() && data.image_size.is_some() && data.decode == Decode::AtLoad;
        let s = &self.spec;
        let images = folder::unlabelled(
            paths.clone(),
            s.channels,
            (s.height, s.width),
            at_load.then_some(self.recipe.augment.interpolation),
        )?;
        let (k, classes) = (top_k.min(s.classes.len()), s.classes.len());
        let mut out = Vec::with_capacity(paths.len());
        let mut names = paths.into_iter();
        self.evaluator().for_each_batch(&images, |batch, tta, _| {
            let batch = batch.to_device(Device::Cpu);
            // With test-time augmentation, the probabilities are the mean over the mirror pair.
            let scores = tta.map_or_else(|| batch.shallow_clone(), |t| t.to_device(Device::Cpu));
            let (p, idx) = scores.softmax(-1, Kind::Float).topk(k as i64, -1, true, true);
            let p = Vec::<f64>::try_from(p.to_kind(Kind::Double).flatten(0, -1)).expect("probabilities");
            let idx = Vec::<i64>::try_from(idx.flatten(0, -1)).expect("class indices");
            let all = logits.then(|| Vec::<f32>::try_from(batch.flatten(0, -1)).expect("logits"));
            for (r, (idx, p)) in idx.chunks(k).zip(p.chunks(k)).enumerate() {
                out.push(Prediction {
                    image: names.next().expect("one name per image"),
                    top: idx.iter().map(|&i| i as usize).zip(p.iter().copied()).collect(),
                    logits: all.as_ref().map(|l| l[r * classes..(r + 1) * classes].to_vec()),
                });
            }
        })?;
        Ok(out)
    }
}

/// The predictions as text: CSV with columns `image`, then `class_i,probability_i` for each rank
/// i (1-based), then `logit_<class index>` when kept; or a JSON array of objects.
pub fn render(predictions: &[Prediction], classes: &[String], format: Format) -> String {
    match format {
        Format::Csv => csv(predictions, classes),
        Format::Json => json(predictions, classes),
    }
}

fn csv(predictions: &[Prediction], classes: &[String]) -> String {
    let Some(first) = predictions.first() else {
        return String::new();
    };
    let mut header = vec!["image".to_string()];
    for i in 1..=first.top.len() {
        header.push(format!("class_{i},probability_{i}"));
    }
    if first.logits.is_some() {
        header.extend((0..classes.len()).map(|c| format!("logit_{c}")));
    }
    let mut s = header.join(",") + "\n";
    for p in predictions {
        let mut row = vec![csv_field(&crate::error::exact(&p.image))];
        row.extend(
            p.top
                .iter()
                .map(|&(c, prob)| format!("{},{prob:.6}", csv_field(&classes[c]))),
        );
        row.extend(p.logits.iter().flatten().map(f32::to_string));
        s.push_str(&(row.join(",") + "\n"));
    }
    s
}

fn json(predictions: &[Prediction], classes: &[String]) -> String {
    #[derive(Serialize)]
    struct Ranked<'a> {
        class: &'a str,
        index: usize,
        probability: f64,
    }
    #[derive(Serialize)]
    struct Row<'a> {
        image: String,
        top: Vec<Ranked<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        logits: Option<&'a [f32]>,
    }
    let rows: Vec<Row> = predictions
        .iter()
        .map(|p| Row {
            image: crate::error::exact(&p.image),
            top: p
                .top
                .iter()
                .map(|&(index, probability)| Ranked {
                    class: &classes[index],
                    index,
                    probability,
                })
                .collect(),
            logits: p.logits.as_deref(),
        })
        .collect();
    serde_json::to_string_pretty(&rows).expect("predictions serialize") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_name_classes_in_rank_order() {
        let classes: Vec<String> = ["cat", "dog", "a,b"].map(String::from).to_vec();
        let preds = vec![Prediction {
            image: "x/1.png".into(),
            top: vec![(2, 0.75), (0, 0.25)],
            logits: Some(vec![1.0, -1.0, 2.5]),
        }];
        assert_eq!(
            render(&preds, &classes, Format::Csv),
            "image,class_1,probability_1,class_2,probability_2,logit_0,logit_1,logit_2\n\
             x/1.png,\"a,b\",0.750000,cat,0.250000,1,-1,2.5\n"
        );
        let v: serde_json::Value = serde_json::from_str(&render(&preds, &classes, Format::Json)).unwrap();
        assert_eq!(v[0]["top"][0]["class"], "a,b");
        assert_eq!(v[0]["top"][1]["index"], 0);
        assert_eq!(v[0]["logits"][2], 2.5);
    }
}
