//! The stem's first convolution initialised by patch whitening (`model.whiten_stem`), as the
//! CIFAR-10 speedruns do (Keller Jordan's airbench94, `init_whitening_conv`; after tysam-code's
//! hlb-CIFAR10): with `P` the training images' `c x k x k` patches (every position, stride 1)
//! as rows, `C = P^T P / n` and its eigenpairs `(l_i, v_i)` by decreasing `l_i`, the filters are
//! `v_i / sqrt(l_i + eps)` followed by their negatives. A filter bank of `2m` channels takes the
//! `m` leading eigenvectors; channels beyond `2 c k k` keep their random initialisation.
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// airbench94's `eps`, added to each eigenvalue before the square root.
pub const EPS: f64 = 5e-4;
/// The most patches the covariance is estimated from (airbench: the 5,000 first CIFAR-10
/// images, 4.8 million 2x2 patches): fewer images are taken when they are large.
pub const MAX_PATCHES: i64 = 5_000_000;

/// The names of the first convolution of each model family's stem, as the models name them.
const STEM_CONVS: [&str; 4] = [
    "conv1.weight",
    "conv1.0.weight",
    "conv_stem.weight",
    "features.0.0.weight",
];

/// How many of `images` (N, C, H, W) a covariance of at most [`MAX_PATCHES`] patches of
/// `k x k` takes (at least one).
pub fn images_for(images: &Tensor, k: i64) -> i64 {
    let s = images.size();
    let per_image = ((s[2] - k + 1) * (s[3] - k + 1)).max(1);
    (MAX_PATCHES / per_image).clamp(1, s[0])
}

/// The rows of every `k x k` patch of `images` (N, C, H, W), each of `C * k * k` values in
/// the filter's order (channel, row, column), as float64.
pub fn patches(images: &Tensor, k: i64) -> Tensor {
    let c = images.size()[1];
    images
        .to_kind(Kind::Double)
        .unfold(2, k, 1)
        .unfold(3, k, 1)
        .permute([0, 2, 3, 1, 4, 5])
        .reshape([-1, c * k * k])
}

/// `P^T P / n` over the `k x k` patches `P` of `images` (N, C, H, W), float64, accumulated 64
/// images at a time (the patches of 5,000 CIFAR images would take 1 GB at once); and `n`.
pub fn covariance(images: &Tensor, k: i64) -> (Tensor, i64) {
    let dim = images.size()[1] * k * k;
    let mut sum = Tensor::zeros([dim, dim], (Kind::Double, images.device()));
    let mut n = 0;
    for chunk in images.split(64, 0) {
        let p = patches(&chunk, k);
        sum += p.tr().matmul(&p);
        n += p.size()[0];
    }
    (sum / n as f64, n)
}

/// The whitening filters of a patch `covariance` (`c k k` square): `out` filters of shape
/// `(c, k, k)` when `out <= 2 c k k`, else the `2 c k k` there are; float64.
pub fn filters(covariance: &Tensor, out: i64, c: i64, k: i64) -> Tensor {
    let (values, vectors) = covariance.linalg_eigh("U");
    // Ascending from eigh: the leading pairs are the last columns.
    let dim = c * k * k;
    let m = (out / 2).min(dim);
    let lead = vectors.narrow(1, dim - m, m).flip([1]).tr();
    let scale = (values.narrow(0, dim - m, m).flip([0]) + EPS).sqrt().reciprocal();
    let scaled = lead * scale.unsqueeze(1);
    Tensor::cat(&[&scaled, &-&scaled], 0).reshape([2 * m, c, k, k])
}

/// Initialises the stem's first convolution of `vs` from the normalised training `images`
/// (N, C, H, W); returns what it did, for the log. An error when the model has no such
/// convolution, or its filters are not square.
pub fn whiten_stem(vs: &tch::nn::VarStore, images: &Tensor) -> Result<String> {
    let vars = vs.variables();
    let Some((name, weight)) = STEM_CONVS
        .iter()
        .find_map(|n| vars.get(*n).map(|w| (*n, w.shallow_clone())))
    else {
        return Err(Error::recipe(
            "model.whiten_stem",
            "this model has no stem convolution to whiten (conv1, conv_stem or features.0.0)",
        ));
    };
    let s = weight.size();
    let (out, c, k) = (s[0], s[1], s[2]);
    if s[3] != k || k > images.size()[2].min(images.size()[3]) {
        return Err(Error::recipe(
            "model.whiten_stem",
            format!(
                "the stem's filters are {}x{}, not a square that fits the images",
                s[2], s[3]
            ),
        ));
    }
    let used = images_for(images, k);
    let (cov, n) = covariance(&images.narrow(0, 0, used), k);
    let f = filters(&cov, out, c, k);
    let whitened = f.size()[0];
    tch::no_grad(|| {
        weight
            .narrow(0, 0, whitened)
            .copy_(&f.to_kind(weight.kind()).to_device(weight.device()));
    });
    Ok(format!(
        "whitened {whitened} of the {out} filters of {name} from {n} patches of {used} training images"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn patches_are_every_position_in_filter_order() {
        let image = Tensor::from_slice(&[1.0f32, 2., 3., 4., 5., 6., 7., 8., 9.]).view([1, 1, 3, 3]);
        let rows = Vec::<Vec<f64>>::try_from(patches(&image, 2)).unwrap();
        let want = [[1., 2., 4., 5.], [2., 3., 5., 6.], [4., 5., 7., 8.], [5., 6., 8., 9.]];
        assert_eq!(rows, want.map(|r| r.to_vec()));
        // Two channels: a patch lists the first channel's k x k values, then the second's.
        let two = Tensor::cat(&[&image, &(&image * 10.0)], 1);
        let first = Vec::<f64>::try_from(patches(&two, 2).get(0)).unwrap();
        assert_eq!(first, [1., 2., 4., 5., 10., 20., 40., 50.]);
    }

    /// The defining property: the filters map the patches to outputs whose second moments are
    /// `l_i / (l_i + eps)` for the leading eigenvalues `l_i`, uncorrelated; the second half of
    /// the bank is the negated first.
    #[test]
    fn filters_whiten_the_patches_along_the_leading_eigenvectors() {
        tch::manual_seed(11);
        // Correlated pixels: noise smoothed along rows, on two channels.
        let noise = Tensor::randn([40, 2, 9, 10], (Kind::Float, Device::Cpu));
        let images = &noise.narrow(3, 0, 9) + noise.narrow(3, 1, 9) * 0.7;
        let (cov, n) = covariance(&images, 3);
        assert_eq!(n, 40 * 7 * 7);
        let p = patches(&images, 3);
        assert!(cov.allclose(&(p.tr().matmul(&p) / n as f64), 1e-10, 1e-12, false));
        let f = filters(&cov, 10, 2, 3);
        assert_eq!(f.size(), [10, 2, 3, 3]);
        let w = f.reshape([10, 18]);
        assert!(w.narrow(0, 5, 5).equal(&-w.narrow(0, 0, 5)));
        let head = w.narrow(0, 0, 5);
        let moments = head.matmul(&cov).matmul(&head.tr());
        let mut eigen = Vec::<f64>::try_from(cov.linalg_eigvalsh("U")).unwrap();
        eigen.reverse();
        let want: Vec<f64> = eigen[..5].iter().map(|l| l / (l + EPS)).collect();
        let want = Tensor::from_slice(&want).diag(0);
        assert!(moments.allclose(&want, 1e-9, 1e-9, false), "{moments:?}");
    }

    #[test]
    fn the_stem_takes_the_filters_and_keeps_the_rest() {
        tch::manual_seed(2);
        let images = Tensor::rand([30, 1, 12, 12], (Kind::Float, Device::Cpu));
        for (width, whitened) in [(1.0, 16), (2.0, 18)] {
            let cfg = crate::recipe::ModelConfig {
                width,
                ..Default::default()
            };
            let vs = tch::nn::VarStore::new(Device::Cpu);
            let _net = crate::model::Net::new(&vs.root(), &cfg, 1, 10);
            let before = vs.variables()["conv1.weight"].copy();
            let log = whiten_stem(&vs, &images).unwrap();
            let out = before.size()[0];
            assert_eq!(
                log,
                format!(
                    "whitened {whitened} of the {out} filters of conv1.weight from 3000 patches of 30 training images"
                )
            );
            let after = vs.variables()["conv1.weight"].copy();
            let (cov, _) = covariance(&images, 3);
            let f = filters(&cov, out, 1, 3).to_kind(Kind::Float);
            assert!(after.narrow(0, 0, whitened).allclose(&f, 1e-6, 1e-6, false));
            if whitened < out {
                let rest = out - whitened;
                assert!(after.narrow(0, whitened, rest).equal(&before.narrow(0, whitened, rest)));
            }
        }
    }
}
