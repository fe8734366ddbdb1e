use super::*;
use tch::{Device, Kind};

/// Output, input gradient and weight gradient of `f(x, w)` against a fixed output gradient.
fn conv_and_grads(f: impl Fn(&Tensor, &Tensor) -> Tensor, x: &Tensor, w: &Tensor) -> [Tensor; 3] {
    let (x, w) = (x.detach().set_requires_grad(true), w.detach().set_requires_grad(true));
    let y = f(&x, &w);
    // A fixed output gradient without the global generator, which parallel tests share.
    let g = Tensor::arange(y.numel() as i64, (Kind::Float, Device::Cpu))
        .sin()
        .view(y.size().as_slice());
    (&y * g).sum(Kind::Float).backward();
    [y.detach(), x.grad(), w.grad()]
}

/// Asserts that `f(x, w)` equals the convolution `conv2d(x, w, stride, padding)` with its
/// gradients, for `x` of shape `x_shape` and `w` of `w_shape` in both memory orders, and
/// keeps the memory order of `x`. The reference runs in NCHW order (see [`Conv`] on
/// channels-last 1x1 weight gradients).
fn assert_equals_conv2d(
    f: impl Fn(&Tensor, &Tensor) -> Tensor,
    x_shape: [i64; 4],
    w_shape: [i64; 4],
    stride: i64,
    padding: i64,
) {
    for channels_last in [false, true] {
        let order = |t: Tensor| crate::model::in_memory_order(t, channels_last);
        let x = order(Tensor::randn(x_shape, (Kind::Float, Device::Cpu)));
        let w = order(Tensor::randn(w_shape, (Kind::Float, Device::Cpu)));
        let reference = |x: &Tensor, w: &Tensor| {
            x.contiguous()
                .conv2d(&w.contiguous(), None::<Tensor>, [stride; 2], [padding; 2], [1, 1], 1)
        };
        let want = conv_and_grads(reference, &x, &w);
        let got = conv_and_grads(&f, &x, &w);
        for (name, a, b) in [
            ("output", &want[0], &got[0]),
            ("input grad", &want[1], &got[1]),
            ("weight grad", &want[2], &got[2]),
        ] {
            assert_eq!(a.size(), b.size(), "{name} of {x_shape:?}");
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(
                diff < 1e-5,
                "{name} of {x_shape:?}, channels_last {channels_last}: {diff}"
            );
        }
        let kept = if channels_last {
            got[0].stride()[1] == 1
        } else {
            got[0].is_contiguous()
        };
        assert!(
            kept,
            "{x_shape:?}, channels_last {channels_last}: output strides {:?}",
            got[0].stride()
        );
    }
}

#[test]
fn small_map_conv_equals_conv2d_with_its_gradients_in_both_memory_orders() {
    for (h, w) in [(2, 2), (1, 1), (1, 2), (2, 1)] {
        assert_equals_conv2d(small_map_conv3x3, [5, 6, h, w], [7, 6, 3, 3], 1, 1);
    }
}

#[test]
fn pointwise_conv_equals_conv2d_with_its_gradients_in_both_memory_orders() {
    for (c_in, size, stride) in [(6, 4, 1), (4, 8, 2), (3, 5, 2), (16, 3, 3)] {
        let f = |x: &Tensor, w: &Tensor| pointwise_conv(x, w, stride);
        assert_equals_conv2d(f, [5, c_in, size, size], [7, c_in, 1, 1], stride, 0);
    }
}

#[test]
fn conv_module_equals_the_convolution_on_every_map_size() {
    let vs = nn::VarStore::new(Device::Cpu);
    for (i, (c_in, k, stride, groups)) in [
        (4, 3, 1, 1),
        (4, 3, 2, 1),
        (4, 3, 1, 4),
        (4, 1, 1, 1),
        (4, 1, 2, 1),
        (8, 1, 2, 1),
    ]
    .into_iter()
    .enumerate()
    {
        let c = grouped_conv(vs.root() / i.to_string(), c_in, 8, k, stride, groups, KAIMING_FAN_OUT);
        for size in [1, 2, 3, 5, 9] {
            let x = Tensor::randn([2, c_in, size, size], (Kind::Float, Device::Cpu));
            let want = x.conv2d(&c.inner.ws, None::<Tensor>, [stride; 2], [k / 2; 2], [1, 1], groups);
            let diff = (x.apply(&c) - want).abs().max().double_value(&[]);
            assert!(
                diff < 1e-5,
                "k {k} stride {stride} groups {groups} on {size}x{size}: {diff}"
            );
        }
    }
}

#[test]
fn blur_pool_is_a_reflect_padded_binomial_filter_at_stride_2() {
    let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]);
    let y = blur_pool(&x);
    assert_eq!(y.size(), vec![1, 1, 2, 2]);
    // Output (0, 0) centres on x[0, 0]; reflect padding mirrors row 1 and column 1 around it.
    let v = |r: i64, c: i64| x.double_value(&[0, 0, r.abs(), c.abs()]);
    let w = [1.0, 2.0, 1.0];
    let mut want = 0.0;
    for (i, wr) in w.iter().enumerate() {
        for (j, wc) in w.iter().enumerate() {
            want += wr * wc * v(i as i64 - 1, j as i64 - 1) / 16.0;
        }
    }
    assert!((y.double_value(&[0, 0, 0, 0]) - want).abs() < 1e-5, "{y:?} vs {want}");
    // A constant image stays constant.
    let c = blur_pool(&Tensor::ones([2, 3, 5, 5], (Kind::Float, Device::Cpu)));
    assert!((c - 1.0).abs().max().double_value(&[]) < 1e-6);
}

#[test]
fn make_divisible_matches_timm() {
    // timm: make_divisible(v, 8) for v = C/16.
    assert_eq!(make_divisible(64.0 / 16.0, 8), 8);
    assert_eq!(make_divisible(256.0 / 16.0, 8), 16);
    assert_eq!(make_divisible(1000.0 / 16.0, 8), 64);
    assert_eq!(make_divisible(36.0, 8), 40);
    assert_eq!(make_divisible(28.0, 8), 32);
}

#[test]
fn activations_match_their_definitions() {
    let x = Tensor::from_slice(&[-2.0f32, -0.5, 0.0, 1.5]);
    let v = |a: Act| Vec::<f32>::try_from(a.apply(&x)).unwrap();
    assert_eq!(v(Act::Relu), vec![0.0, 0.0, 0.0, 1.5]);
    assert_eq!(v(Act::LeakyRelu(0.01)), vec![-0.02, -0.005, 0.0, 1.5]);
    assert_eq!(v(Act::LeakyRelu(0.2)), vec![-0.4, -0.1, 0.0, 1.5]);
    let swish: Vec<f32> = [-2.0f32, -0.5, 0.0, 1.5]
        .iter()
        .map(|x| x / (1.0 + (-x).exp()))
        .collect();
    let elu: Vec<f32> = [-2.0f32, -0.5, 0.0, 1.5]
        .iter()
        .map(|&x| if x > 0.0 { x } else { x.exp() - 1.0 })
        .collect();
    // hard-swish: x * relu6(x + 3) / 6.
    let hard_swish = vec![-2.0 / 6.0, -0.5 * 2.5 / 6.0, 0.0, 1.5 * 4.5 / 6.0];
    for (a, e) in [
        (v(Act::Swish), swish),
        (v(Act::Elu), elu),
        (v(Act::HardSwish), hard_swish),
    ] {
        assert!(a.iter().zip(&e).all(|(a, e)| (a - e).abs() < 1e-6), "{a:?} vs {e:?}");
    }
}

#[test]
fn drop_path_keeps_the_expected_fraction_scaled_by_one_over_keep() {
    tch::manual_seed(3);
    let x = Tensor::ones([20_000, 2, 1, 1], (tch::Kind::Float, tch::Device::Cpu));
    let y = drop_path(&x, 0.3);
    let rows: Vec<f32> = Vec::try_from(y.select(1, 0).flatten(0, -1)).unwrap();
    let kept = rows.iter().filter(|&&v| v != 0.0).count() as f64 / rows.len() as f64;
    assert!((kept - 0.7).abs() < 0.01, "kept {kept}");
    assert!(rows.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    // Whole samples are dropped: both channels of a row agree.
    assert!(y.select(1, 0).equal(&y.select(1, 1)));
    assert!(drop_path(&x, 0.0).equal(&x));
}

#[test]
fn attention_pool_starts_as_average_pooling_and_can_focus() {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let pool = AttentionPool::new(vs.root() / "pool", 3);
    let x = Tensor::randn([2, 3, 4, 5], (tch::Kind::Float, tch::Device::Cpu));
    let avg = x.mean_dim([2i64, 3].as_slice(), false, None::<tch::Kind>);
    assert!(pool.forward(&x).allclose(&avg, 1e-5, 1e-6, false));
    // A score that is large where channel 0 is large picks that position.
    let x = Tensor::zeros([1, 3, 2, 2], (tch::Kind::Float, tch::Device::Cpu));
    let _ = x.get(0).get(0).get(1).get(1).fill_(1.0);
    let _ = x.get(0).get(2).get(1).get(1).fill_(5.0);
    tch::no_grad(|| {
        let _ = pool.score.ws.get(0).get(0).fill_(50.0);
    });
    let out: Vec<f32> = Vec::try_from(pool.forward(&x).flatten(0, -1)).unwrap();
    assert!((out[0] - 1.0).abs() < 1e-4 && (out[2] - 5.0).abs() < 1e-3, "{out:?}");
}

#[test]
fn se_equals_timm_se_module_with_convolutions() {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let se = SqueezeExcite::new(vs.root() / "se", 24, 8, SE_TIMM_RESNET);
    let x = Tensor::randn([3, 24, 5, 4], (tch::Kind::Float, tch::Device::Cpu));
    // timm's SEModule.forward: x * fc2(relu(fc1(x.mean((2, 3), keepdim=True)))).sigmoid().
    let s = x.mean_dim([2i64, 3].as_slice(), true, None::<tch::Kind>);
    let want = &x * s.apply(&se.fc1).relu().apply(&se.fc2).sigmoid();
    let diff = (se.forward(&x) - want).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "{diff}");
}

#[test]
fn torchvision_se_gates_with_a_hard_sigmoid() {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let se = SqueezeExcite::new(vs.root() / "se", 16, 8, SE_TORCHVISION_MOBILENET);
    let x = Tensor::randn([2, 16, 3, 3], (tch::Kind::Float, tch::Device::Cpu));
    // torchvision's SqueezeExcitation: hardsigmoid(fc2(relu(fc1(avgpool(x))))) * x, with
    // hardsigmoid(z) = relu6(z + 3) / 6.
    let s = x.mean_dim([2i64, 3].as_slice(), true, None::<tch::Kind>);
    let z = s.apply(&se.fc1).relu().apply(&se.fc2);
    let want = &x * ((z + 3.0).clamp(0.0, 6.0) / 6.0);
    let diff = (se.forward(&x) - want).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "{diff}");
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let _ = SqueezeExcite::new(path(&vs.root(), "blocks.0.0.se"), 16, 4, SE_TIMM_EFFICIENTNET);
    assert_eq!(
        vs.variables()["blocks.0.0.se.conv_reduce.weight"].size(),
        vec![4, 16, 1, 1]
    );
}

#[test]
fn se_output_is_input_scaled_per_channel_by_a_sigmoid() {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let se = SqueezeExcite::new(vs.root() / "se", 16, 8, SE_TIMM_RESNET);
    let x = Tensor::randn([2, 16, 3, 3], (tch::Kind::Float, tch::Device::Cpu)).abs() + 0.1;
    let scale = se.forward(&x) / &x;
    // The scale is constant over each channel's spatial positions, and inside (0, 1).
    let spread = (scale.amax([2i64, 3].as_slice(), false) - scale.amin([2i64, 3].as_slice(), false)).max();
    assert!(spread.double_value(&[]) < 1e-5);
    assert!(scale.min().double_value(&[]) > 0.0 && scale.max().double_value(&[]) < 1.0);
    let vars = vs.variables();
    assert_eq!(vars["se.fc1.weight"].size(), vec![8, 16, 1, 1]);
    assert_eq!(vars["se.fc2.bias"].size(), vec![16]);
}
