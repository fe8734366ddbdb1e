//! darkmagic's resizing (PIL's `Image.resize`) against torchvision 0.28 on real photographs:
//! `resized_crop` of several regions and the evaluation `Resize(256)` + `CenterCrop(224)`, with
//! bilinear and bicubic filters, RGB and gray; and JPEG decoding (libjpeg-turbo, as PIL).
//! Golden outputs come from
//! `scripts/golden/resize.py`, run by this test on `data/photos` (scripts/photos.sh).
mod common;
use darkmagic::image::fit::center_fit;
use darkmagic::image::{Region, View, resample};
use darkmagic::recipe::Interpolation;

#[test]
fn decoding_resized_crops_and_eval_resize_match_torchvision_exactly() {
    let (out, golden) = common::golden_tensors("resize.py", "resize", "resize.safetensors");
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut check = |key: &str, got: Vec<u8>| {
        let want = common::bytes(&golden[key]);
        let off = want.iter().zip(&got).filter(|(a, b)| a != b).count();
        if got.len() != want.len() || off > 0 {
            failures.push(format!("{key}: {off} of {} values differ", want.len()));
        }
        checked += 1;
    };
    for name in ["astronaut", "chelsea", "coffee", "motorcycle", "chelsea_gray"] {
        let input = &golden[&format!("input/{name}")];
        let size = input.size();
        let (h, w, c) = (size[0] as usize, size[1] as usize, size[2] as usize);
        let px = common::bytes(input);
        let view = View::new(&px, h, w, c);
        for (interp, label) in [
            (Interpolation::Bilinear, "bilinear"),
            (Interpolation::Bicubic, "bicubic"),
        ] {
            for k in 0..5 {
                let r = Vec::<i64>::try_from(&golden[&format!("region/{name}/{k}")]).unwrap();
                let r: Vec<usize> = r.into_iter().map(|v| v as usize).collect();
                let region = Region {
                    y: r[0],
                    x: r[1],
                    h: r[2],
                    w: r[3],
                };
                let got = resample::resize(&px, w, c, region, r[4], r[5], interp);
                check(&format!("crop/{name}/{label}/{k}"), got);
            }
            // Resize(256) + CenterCrop(224) is the evaluation fit with fraction 224/256.
            check(
                &format!("eval/{name}/{label}"),
                center_fit(view, 224, 224, 0.875, interp).into_owned(),
            );
        }
    }
    let photos = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/photos");
    for name in [
        "space/rocket.jpg",
        "space/hubble_deep_field.jpg",
        "microscopy/retina.jpg",
    ] {
        let px = darkmagic::data::folder::decode(&photos.join(name).into(), 3)
            .unwrap()
            .px;
        check(&format!("decoded/{name}"), px);
    }
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(checked, 5 * 2 * 6 + 3);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
