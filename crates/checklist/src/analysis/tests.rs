use super::*;
use crate::tuning::{Candidate, tuning_warnings};
use darkmagic_base::rundir::RunDir;

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() < tol, "{a} vs {b}");
}

#[test]
fn std_and_bootstrap() {
    close(sample_std(&[1.0, 2.0, 3.0, 4.0]), (5.0f64 / 3.0).sqrt(), 1e-12);
    assert_eq!(bootstrap_interval(&[0.1, 0.2]), None);
    let d = [0.01, 0.02, 0.015, 0.03, 0.025, 0.02];
    let (lo, hi) = bootstrap_interval(&d).unwrap();
    assert!(lo > 0.01 && lo < mean(&d) && hi > mean(&d) && hi < 0.03, "{lo} {hi}");
    assert_eq!(bootstrap_interval(&d), Some((lo, hi)), "deterministic");
}

fn seed(seed: u64, acc: Option<f64>, status: Status) -> SeedOutcome {
    SeedOutcome {
        seed,
        status: Some(status),
        val_acc: acc,
        test_acc: None,
        epochs: 1,
        val_images: 0,
        test_images: None,
        error: None,
        per_class: None,
    }
}

#[test]
fn tuning_warns_of_a_best_candidate_at_the_edge_and_of_divergence() {
    let cand = |lr: f64, mean: Option<f64>, diverged: usize| Candidate {
        values: [("optim.lr".to_string(), toml::Value::Float(lr))].into_iter().collect(),
        scores: vec![mean],
        mean,
        diverged,
    };
    let mut a = ArmTuning {
        label: "optimizer=adam".into(),
        candidates: vec![cand(0.01, Some(0.9), 0), cand(0.1, Some(0.8), 0), cand(1.0, None, 1)],
        chosen: Some(0),
        complete: true,
        warnings: Vec::new(),
        failed: Vec::new(),
    };
    assert_eq!(
        tuning_warnings(&a),
        ["optimizer=adam: best optim.lr = 0.01 is at the edge of the candidates (0.01 .. 1); widen the range"]
    );
    a.chosen = Some(1);
    assert!(
        tuning_warnings(&a).is_empty(),
        "1 of 3 diverged is not more than a third"
    );
    a.candidates[0] = cand(0.01, None, 1);
    a.candidates.push(cand(0.001, Some(0.5), 0));
    assert_eq!(tuning_warnings(&a), ["optimizer=adam: 2 of 4 candidates diverged"]);
}

#[test]
fn a_trial_is_scored_by_its_tta_then_ema_then_plain_accuracy() {
    let root = darkmagic_base::testutil::tempdir("outcome-ema");
    let trial = Trial::new(Arm::Baseline, 0, 0);
    let dir = RunDir::create(&root.join(&trial.dir)).unwrap();
    // One epoch whose metrics record the accuracies its result.json summarises.
    let write = |ema: Option<f64>, tta: Option<f64>| {
        let m = darkmagic_base::rundir::EpochMetrics {
            epoch: 1,
            step: 1,
            lr: 0.1,
            weight_decay: None,
            train_loss: 1.0,
            train_acc: 0.5,
            val_loss: 1.0,
            val_acc: 0.8,
            val_top5: None,
            val_acc_ema: ema,
            val_acc_tta: tta,
            images_per_sec: 1.0,
            seconds: 1.0,
        };
        dir.write_metrics(std::slice::from_ref(&m)).unwrap();
        let mut r = darkmagic_base::rundir::RunResult::from_metrics(Status::Completed, &[m], 1.0, "cpu".into(), 100);
        (r.final_val_acc_ema, r.final_val_acc_tta) = (ema, tta);
        dir.write_result(&r).unwrap();
    };
    write(None, None);
    assert_eq!(outcome(&root, &trial).unwrap().val_acc, Some(0.8));
    write(Some(0.85), None);
    assert_eq!(outcome(&root, &trial).unwrap().val_acc, Some(0.85));
    write(Some(0.85), Some(0.9));
    assert_eq!(outcome(&root, &trial).unwrap().val_acc, Some(0.9));
}

#[test]
fn unknown_resolution_is_the_smallest_gap_between_values() {
    let gap = smallest_gap([0.64, 0.634, 0.636, 0.634, 0.6359999963].into_iter());
    assert!((gap - 0.002).abs() < 1e-8, "{gap}");
    assert_eq!(smallest_gap([0.5, 0.5].into_iter()), 0.0);
    assert_eq!(smallest_gap(std::iter::empty()), 0.0);
}

#[test]
fn arm_statistics_are_paired_by_seed() {
    let base = vec![
        seed(0, Some(0.90), Status::Completed),
        seed(1, Some(0.80), Status::Completed),
        seed(2, Some(0.85), Status::Completed),
    ];
    let var = vec![
        seed(2, Some(0.87), Status::Completed),
        seed(0, Some(0.91), Status::Completed),
        seed(1, Some(0.83), Status::Completed),
    ];
    let v = Variant {
        factor: "f".into(),
        name: "x".into(),
        overrides: toml::Table::new(),
    };
    let mut sorted = var.clone();
    sorted.sort_by_key(|s| s.seed);
    let prefix = paired_prefix(&sorted, &base);
    assert_eq!(prefix.len(), 3);
    close(prefix[0], 0.01, 1e-12);
    close(prefix[1], 0.03, 1e-12);
    let s = summarize_arm(&Arm::Variant(v.clone()), var, Some(&base), None);
    close(s.diff.unwrap(), 0.02, 1e-12); // diffs 0.01, 0.03, 0.02
    close(s.mean.unwrap(), (0.87 + 0.91 + 0.83) / 3.0, 1e-12);
    // The prefix stops at the first seed either arm lacks.
    let gap = vec![seed(0, Some(0.9), Status::Completed), seed(1, None, Status::Completed)];
    assert_eq!(paired_prefix(&gap, &base).len(), 1);
    let diverged = vec![seed(0, None, Status::Diverged), seed(1, Some(0.8), Status::Completed)];
    assert_eq!(
        summarize_arm(&Arm::Variant(v), diverged, Some(&base), None).verdict,
        Verdict::Diverged
    );
}

#[test]
fn winners_take_the_best_helping_variant_per_factor() {
    let mk = |factor: &str, name: &str, diff: f64, verdict: Verdict| ArmSummary {
        label: format!("{factor}={name}"),
        factor: Some(factor.into()),
        variant: Some(name.into()),
        overrides: toml::Table::new(),
        seeds: vec![],
        mean: None,
        std: None,
        diff: Some(diff),
        ci: None,
        ci_level: None,
        bootstrap_ci: None,
        verdict,
        decision: None,
        worst_seed: None,
    };
    let trials = vec![
        mk("a", "1", 0.01, Verdict::Helps),
        mk("a", "2", 0.03, Verdict::Helps),
        mk("b", "1", 0.05, Verdict::Equivalent),
        mk("c", "1", 0.02, Verdict::Helps),
    ];
    let variants: Vec<Variant> = trials
        .iter()
        .map(|t| Variant {
            factor: t.factor.clone().unwrap(),
            name: t.variant.clone().unwrap(),
            overrides: toml::Table::new(),
        })
        .collect();
    let w: Vec<String> = winners(&trials, &variants).iter().map(Variant::label).collect();
    assert_eq!(w, vec!["a=2", "c=1"]);
}

#[test]
fn an_arms_worst_seed_far_below_its_others_is_flagged_unstable() {
    // Five seeds within 0.1 pp and one that lost 2 pp, pooled sd 0.27 pp: 4 sds are 1.08 pp.
    let pairs = [
        (0, 0.001),
        (1, 0.0),
        (2, -0.001),
        (3, -0.019),
        (4, 0.0005),
        (5, -0.0005),
    ];
    let w = worst_seed(&pairs, Some(0.0027)).unwrap();
    assert_eq!(w.seed, 3);
    assert!((w.below_others - 0.019).abs() < 1e-12, "{w:?}");
    assert!(w.unstable);
    // The same seeds scattering by 0.5 pp (pooled sd 0.5 pp): 1.9 pp is under 4 sds.
    assert!(!worst_seed(&pairs, Some(0.005)).unwrap().unstable);
    assert_eq!(worst_seed(&pairs[..1], Some(0.0027)), None);
}
