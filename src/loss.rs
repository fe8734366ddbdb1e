//! Losses. Label smoothing follows PyTorch and timm (Szegedy et al. 2016; docs/tricks.md section 4): the target is
//! `eps/C` for every class plus `1 - eps` for the true class, i.e.
//! `torch.nn.CrossEntropyLoss(label_smoothing=eps)`, not the article's `eps/(C-1)` reading.
use tch::{Reduction, Tensor};

/// Mean cross-entropy of `logits` (N, C) against integer `labels` (N) with label smoothing `eps`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor, eps: f64) -> Tensor {
    logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, eps)
}

/// Mean cross-entropy of `logits` (N, C) against soft `targets` (N, C), each row a distribution:
/// `-sum_c targets[n, c] * log_softmax(logits)[n, c]`, averaged over the batch.
pub fn soft_cross_entropy(logits: &Tensor, targets: &Tensor) -> Tensor {
    -(targets * logits.log_softmax(-1, None))
        .sum_dim_intlist(-1, false, None)
        .mean(None)
}

/// timm's `BinaryCrossEntropy`: one sigmoid per class against `targets` (N, C) — soft targets
/// of a mixed batch, or labels (N) made one-hot with smoothing `eps` (`eps / C` off, `1 - eps +
/// eps / C` on) — thresholded to 0/1 above `threshold` when given; the mean over every element.
pub fn binary_cross_entropy(logits: &Tensor, targets: BceTargets, threshold: Option<f64>) -> Tensor {
    let targets = match targets {
        BceTargets::Soft(t) => t.shallow_clone(),
        BceTargets::Labels(y, eps) => {
            let c = logits.size()[1];
            let off = eps / c as f64;
            logits
                .full_like(off)
                .scatter_value(1, &y.view([-1, 1]), 1.0 - eps + off)
        }
    };
    let targets = match threshold {
        Some(t) => targets.gt(t).to_kind(logits.kind()),
        None => targets,
    };
    logits.binary_cross_entropy_with_logits::<Tensor>(&targets, None, None, Reduction::Mean)
}

/// What [`binary_cross_entropy`] compares with.
pub enum BceTargets<'a> {
    /// Soft targets (N, C), e.g. of a mixed batch.
    Soft(&'a Tensor),
    /// Integer labels (N) and the label smoothing.
    Labels(&'a Tensor, f64),
}

/// Hinton et al.'s distillation term: `T^2 * KL(softmax(teacher / T) || softmax(student / T))`,
/// summed over classes and averaged over the batch (PyTorch's `kl_div(..., "batchmean")`). The
/// `T^2` keeps its gradients on the scale of the task loss's.
pub fn distillation(student: &Tensor, teacher: &Tensor, temperature: f64) -> Tensor {
    let t = temperature;
    let p_teacher = (teacher / t).softmax(-1, None);
    let kl = (&p_teacher * ((teacher / t).log_softmax(-1, None) - (student / t).log_softmax(-1, None)))
        .sum_dim_intlist(-1, false, None)
        .mean(None);
    kl * (t * t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distillation_matches_hintons_formula() {
        let s = [[2.0f64, 0.5, -1.0], [0.1, 0.2, 0.3]];
        let te = [[1.0f64, 1.5, -0.5], [0.3, -0.2, 0.9]];
        let t = 3.0;
        let softmax = |row: &[f64; 3]| -> Vec<f64> {
            let z: f64 = row.iter().map(|v| (v / t).exp()).sum();
            row.iter().map(|v| (v / t).exp() / z).collect()
        };
        let mut expected = 0.0;
        for (rs, rt) in s.iter().zip(&te) {
            let (ps, pt) = (softmax(rs), softmax(rt));
            expected += pt.iter().zip(&ps).map(|(a, b)| a * (a / b).ln()).sum::<f64>();
        }
        expected *= t * t / 2.0;
        let tensor = |v: &[[f64; 3]; 2]| Tensor::from_slice(&v.concat()).view([2, 3]);
        let got = distillation(&tensor(&s), &tensor(&te), t).double_value(&[]);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        assert!(distillation(&tensor(&te), &tensor(&te), t).double_value(&[]).abs() < 1e-15);
    }

    #[test]
    fn label_smoothing_matches_its_formula() {
        let logits = [[2.0f64, 0.5, -1.0], [0.1, 0.2, 0.3]];
        let labels = [0i64, 2];
        let eps = 0.2;
        let c = 3.0;
        let mut expected = 0.0;
        for (row, &y) in logits.iter().zip(&labels) {
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            for (k, v) in row.iter().enumerate() {
                let q = eps / c + if k as i64 == y { 1.0 - eps } else { 0.0 };
                expected -= q * (v - lse);
            }
        }
        expected /= 2.0;
        let t = Tensor::from_slice(&logits.concat()).view([2, 3]);
        let got = cross_entropy(&t, &Tensor::from_slice(&labels), eps).double_value(&[]);
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
        let plain = cross_entropy(&t, &Tensor::from_slice(&labels), 0.0).double_value(&[]);
        // The same smoothed targets given explicitly give the same loss.
        let q: Vec<f64> = labels
            .iter()
            .flat_map(|&y| (0..3).map(move |k| eps / c + if k == y { 1.0 - eps } else { 0.0 }))
            .collect();
        let soft = soft_cross_entropy(&t, &Tensor::from_slice(&q).view([2, 3])).double_value(&[]);
        assert!((soft - expected).abs() < 1e-6, "{soft} vs {expected}");
        assert!(
            plain < got,
            "smoothing raises the loss of a confident correct prediction"
        );
    }
}
