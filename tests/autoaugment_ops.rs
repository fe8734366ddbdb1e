//! darkmagic's AutoAugment ops against torchvision 0.28 on PIL images, at every bin and sign,
//! on real Fashion-MNIST images (gray and RGB). Golden outputs come from
//! `scripts/golden/autoaugment_ops.py`, run by this test.
mod common;
use darkmagic::augment::ops::{ALL, Op};

#[test]
fn every_op_bin_and_sign_matches_torchvision() {
    let (out, golden) = common::golden_tensors("autoaugment_ops.py", "autoaugment-ops", "ops.safetensors");
    let (mut checked, mut identical) = (0, 0);
    let mut failures = Vec::new();
    for (image, c) in [("gray", 1), ("rgb", 3)] {
        let input = common::bytes(&golden[&format!("input/{image}")]);
        for op in ALL {
            for key in golden
                .keys()
                .filter(|k| k.starts_with(&format!("{image}/{}/", op.name())))
            {
                let want = common::bytes(&golden[key]);
                let magnitude = golden[&format!("mag/{key}")].double_value(&[0]);
                let got = op.apply(&input, 28, 28, c, magnitude, 0);
                let off: Vec<usize> = (0..want.len())
                    .filter(|&i| (want[i] as i32 - got[i] as i32).abs() > 1)
                    .collect();
                let geometric = matches!(
                    op,
                    Op::ShearX | Op::ShearY | Op::TranslateX | Op::TranslateY | Op::Rotate
                );
                let allowed = if geometric { want.len() / 100 } else { 0 };
                if off.len() > allowed {
                    failures.push(format!(
                        "{key} (m = {magnitude}): {} of {} values off by more than 1",
                        off.len(),
                        want.len()
                    ));
                }
                checked += 1;
                identical += usize::from(got == want);
            }
        }
    }
    eprintln!("{identical} of {checked} outputs identical to torchvision's");
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(checked, 2 * (9 * 10 * 2 + 2 * 10 + 3));
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
