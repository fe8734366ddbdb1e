//! Losses. Label smoothing follows PyTorch and timm (TRICKS.md section 4): the target is
//! `eps/C` for every class plus `1 - eps` for the true class, i.e.
//! `torch.nn.CrossEntropyLoss(label_smoothing=eps)`, not the article's `eps/(C-1)` reading.
use tch::{Reduction, Tensor};

/// Mean cross-entropy of `logits` (N, C) against integer `labels` (N) with label smoothing `eps`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor, eps: f64) -> Tensor {
    logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, eps)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            plain < got,
            "smoothing raises the loss of a confident correct prediction"
        );
    }
}
