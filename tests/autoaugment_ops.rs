//! darkmagic's AutoAugment ops against torchvision 0.28 on PIL images (Pillow's `ImageOps` and
//! `ImageEnhance`): every op at every bin and sign on real photographs at sizes from 8x8 to
//! 256x256 (resized and cropped, odd and even, square and not, gray and RGB) and on Fashion-MNIST
//! images; and the look-up-table ops on 2000 random histograms. Every output must be identical.
//! Golden outputs come from `scripts/golden/autoaugment_ops.py`, run by this test; what they
//! cover is written in docs/augment/README.md.
mod common;
use std::collections::HashMap;

use darkmagic::augment::ops::{ALL, Op};
use tch::Tensor;

#[test]
fn every_op_matches_torchvision_on_photos_and_random_histograms() {
    let (out, golden) = common::golden_tensors("autoaugment_ops.py", "autoaugment-ops", "ops.safetensors");
    let mut failures = images_against_torchvision(&golden);
    failures.extend(histograms_against_pillow(&golden));
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Applies every op, bin and sign to every `input/<image>` and compares with torchvision's
/// output and magnitude; returns the mismatches.
fn images_against_torchvision(golden: &HashMap<String, Tensor>) -> Vec<String> {
    let images: Vec<&str> = golden.keys().filter_map(|k| k.strip_prefix("input/")).collect();
    let (mut checked, mut failures) = (0, Vec::new());
    for image in &images {
        let input = &golden[&format!("input/{image}")];
        let size: Vec<usize> = input.size().iter().map(|&d| d as usize).collect();
        let (h, w, c) = (size[0], size[1], size[2]);
        let px = common::bytes(input);
        for op in ALL {
            for key in golden
                .keys()
                .filter(|k| k.starts_with(&format!("{image}/{}/", op.name())))
            {
                let magnitude = golden[&format!("mag/{key}")].double_value(&[0]);
                let parts: Vec<&str> = key.rsplitn(3, '/').collect();
                let (sign, bin) = (parts[0], parts[1].parse::<usize>().unwrap());
                let ours = op.magnitude(bin, 10, h, w) * if sign == "neg" { -1.0 } else { 1.0 };
                // torch.linspace's float32 values differ by up to 1 ulp with the CPU's vector
                // width (ATEN_CPU_CAPABILITY=default gives darkmagic's, AVX2 may not).
                if (ours - magnitude).abs() > magnitude.abs() * f64::from(f32::EPSILON) {
                    failures.push(format!("{key}: magnitude {ours}, torchvision {magnitude}"));
                }
                let want = common::bytes(&golden[key]);
                let got = op.apply(&px, h, w, c, magnitude, 0);
                let off = want.iter().zip(&got).filter(|(a, b)| a != b).count();
                if got.len() != want.len() || off > 0 {
                    let worst = want.iter().zip(&got).map(|(&a, &b)| a.abs_diff(b)).max();
                    failures.push(format!(
                        "{key} ({h}x{w}x{c}, m = {magnitude}): {off} of {} values differ, by up to {worst:?}",
                        want.len()
                    ));
                }
                checked += 1;
            }
        }
    }
    eprintln!(
        "{} of {checked} outputs on {} images identical to torchvision's",
        checked - failures.len(),
        images.len()
    );
    assert!(images.len() >= 34, "{} input images", images.len());
    assert_eq!(checked, images.len() * (9 * 10 * 2 + 2 * 10 + 3));
    failures
}

/// Builds the 1xN gray image of each `hist/<k>`, applies each look-up-table op and compares the
/// value every used level maps to with Pillow's; returns the mismatches.
fn histograms_against_pillow(golden: &HashMap<String, Tensor>) -> Vec<String> {
    let mut failures = Vec::new();
    let mut k = 0;
    while let Some(hist) = golden.get(&format!("hist/{k}")) {
        let hist = Vec::<i64>::try_from(hist).unwrap();
        let img: Vec<u8> = (0..256)
            .flat_map(|v| std::iter::repeat_n(v as u8, hist[v] as usize))
            .collect();
        for op in [Op::Equalize, Op::AutoContrast, Op::Posterize, Op::Solarize] {
            let magnitude = golden[&format!("hmag/{}/{k}", op.name())].double_value(&[0]);
            let got = op.apply(&img, 1, img.len(), 1, magnitude, 0);
            let want = common::bytes(&golden[&format!("lut/{}/{k}", op.name())]);
            let mut start = 0;
            for (level, &count) in hist.iter().enumerate() {
                if count > 0 && got[start] != want[level] {
                    failures.push(format!(
                        "{} (m = {magnitude}) on histogram {k} ({} pixels): level {level} -> {}, Pillow {}",
                        op.name(),
                        img.len(),
                        got[start],
                        want[level]
                    ));
                }
                start += count as usize;
            }
        }
        k += 1;
    }
    eprintln!("{k} random histograms checked");
    assert_eq!(k, 2000);
    failures
}
