use super::*;

fn ext(args: &str) -> (Recipe, ExternalConfig) {
    let r = Recipe::load(None, &[]).unwrap();
    let e: ExternalConfig = toml::from_str(&format!(
        "command = [\"python\", \"train.py\", \"{{data}}\"]\n{args}\n[metric]\ncsv = \"out/summary.csv\"\nkey = \"eval_top1\"\nscale = 0.01\n"
    ))
    .unwrap();
    (r, e)
}

#[test]
fn flags_render_in_name_order_with_placeholders() {
    let (mut r, e) = ext(
        "[args]\n\"--seed\" = \"{seed}\"\n\"--lr\" = 0.1\n\"--amp\" = true\n\"--aa\" = false\n\"--input-size\" = [3, 32, 32]\n\"--output\" = \"{run_dir}/out\"",
    );
    r.seed = 7;
    r.data.path = Some("/data/set".into());
    let argv = command_line(&r, &e, Path::new("/runs/t"));
    assert_eq!(
        argv,
        [
            "python",
            "train.py",
            "/data/set",
            "--amp",
            "--input-size",
            "3",
            "32",
            "32",
            "--lr",
            "0.1",
            "--output",
            "/runs/t/out",
            "--seed",
            "7"
        ]
    );
}

#[test]
fn csv_metric_last_or_best_row_scaled() {
    let dir = darkmagic_base::testutil::tempdir("external-csv");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(
        dir.join("out/summary.csv"),
        "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n0,1.5,1.2,50.0,90.0,0.1\n1,1.0,0.9,75.0,95.0,0.05\n2,0.8,1.1,62.5,96.0,0.01\n",
    )
    .unwrap();
    let (r, mut e) = ext("");
    let (v, rows) = read_metric(&e.metric, &r, &dir, &None).unwrap();
    assert_eq!(v, 62.5 * 0.01);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[1],
        Row {
            metric: 75.0 * 0.01,
            train_loss: 1.0,
            val_loss: 0.9,
            lr: 0.05
        }
    );
    e.metric.row = MetricRow::Best;
    assert_eq!(read_metric(&e.metric, &r, &dir, &None).unwrap().0, 75.0 * 0.01);
    e.metric.key = Some("top1".into());
    let err = read_metric(&e.metric, &r, &dir, &None).unwrap_err().to_string();
    assert!(
        err.contains("metric column `top1` is not in") && err.contains("eval_top1, eval_top5"),
        "{err}"
    );
    // A capture that is not a number is quoted in the error only as far as its bound.
    let (r2, mut e2) = ext("");
    e2.metric = MetricSource {
        csv: None,
        json: None,
        regex: Some("acc=(.*)".into()),
        ..e2.metric.clone()
    };
    let long = Some(format!("{}{}", "9".repeat(30), "x".repeat(100_000)));
    let err = read_metric(&e2.metric, &r2, &dir, &long).unwrap_err().to_string();
    assert!(
        err.contains("not a number") && err.len() < 400,
        "{}",
        &err[..err.len().min(400)]
    );
    // A quoted field with commas is one field.
    std::fs::write(dir.join("out/summary.csv"), "note,eval_top1\n\"run, 99, ok\",10.0\n").unwrap();
    e.metric.key = Some("eval_top1".into());
    assert_eq!(read_metric(&e.metric, &r, &dir, &None).unwrap().0, 10.0 * 0.01);
    std::fs::write(dir.join("out/summary.csv"), "epoch,eval_top1\n0,nan\n").unwrap();
    e.metric.key = Some("eval_top1".into());
    let err = read_metric(&e.metric, &r, &dir, &None).unwrap_err().to_string();
    assert!(err.contains("summary.csv line 2: column `eval_top1` is NaN"), "{err}");
    std::fs::remove_file(dir.join("out/summary.csv")).unwrap();
    let err = read_metric(&e.metric, &r, &dir, &None).unwrap_err().to_string();
    assert!(
        err.contains("out/summary.csv cannot be read") && err.contains("did the trainer write it?"),
        "{err}"
    );
}

#[test]
fn only_a_metric_file_inside_the_run_dir_is_cleared_before_a_rerun() {
    let root = darkmagic_base::testutil::tempdir("external-stale");
    let (run, outside) = (root.join("t"), root.join("outside"));
    std::fs::create_dir_all(run.join("out")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let (r, mut e) = ext("");
    assert_eq!(
        stale_metric_file(&e.metric, &r, &run),
        Some(run.join("out/summary.csv"))
    );
    e.metric.csv = Some("{run_dir}/out/s.csv".into());
    assert_eq!(stale_metric_file(&e.metric, &r, &run), Some(run.join("out/s.csv")));
    for elsewhere in ["/data/results.csv", "../other/summary.csv"] {
        e.metric.csv = Some(elsewhere.into());
        assert_eq!(stale_metric_file(&e.metric, &r, &run), None, "{elsewhere}");
    }
    // A folder inside the run dir that links out of it: the check follows the link.
    std::os::unix::fs::symlink(&outside, run.join("linked")).unwrap();
    std::fs::write(outside.join("s.csv"), "epoch,acc\n1,0.5\n").unwrap();
    e.metric.csv = Some("linked/s.csv".into());
    assert_eq!(stale_metric_file(&e.metric, &r, &run), None);
    // Nor is it read.
    e.metric.key = Some("acc".into());
    let err = read_metric(&e.metric, &r, &run, &None).unwrap_err().to_string();
    assert!(err.contains("resolves outside the run dir"), "{err}");
}

#[test]
fn json_and_regex_metrics() {
    let dir = darkmagic_base::testutil::tempdir("external-json");
    std::fs::write(dir.join("r.json"), r#"{"eval": {"top1": 0.8125}}"#).unwrap();
    let (r, mut e) = ext("");
    e.metric = MetricSource {
        csv: None,
        json: Some("r.json".into()),
        key: Some("eval.top1".into()),
        regex: None,
        row: MetricRow::Last,
        scale: 1.0,
    };
    assert_eq!(read_metric(&e.metric, &r, &dir, &None).unwrap().0, 0.8125);
    // With a byte-order mark in front, as some Windows tools write JSON.
    std::fs::write(dir.join("r.json"), "\u{feff}{\"eval\": {\"top1\": 0.8125}}").unwrap();
    assert_eq!(read_metric(&e.metric, &r, &dir, &None).unwrap().0, 0.8125);
    e.metric.key = Some("eval.top5".into());
    let err = read_metric(&e.metric, &r, &dir, &None).unwrap_err().to_string();
    assert!(err.contains("r.json has no number at `eval.top5`"), "{err}");
    e.metric.json = None;
    e.metric.regex = Some("acc=([0-9.]+)".into());
    assert_eq!(read_metric(&e.metric, &r, &dir, &Some("0.5".into())).unwrap().0, 0.5);
    let err = read_metric(&e.metric, &r, &dir, &None).unwrap_err().to_string();
    assert!(err.contains("no line of its output matched"), "{err}");
}

/// Placeholders are filled once, left to right: a data path or run dir holding placeholder text
/// is passed as it is, and other braces stay.
#[test]
fn placeholders_are_expanded_exactly_once() {
    let (mut r, e) = ext("[args]\n\"--out\" = \"{run_dir}/{seed}\"\n\"--fmt\" = \"{epoch:03d}-{threads}\"");
    r.seed = 3;
    r.train.threads = 2;
    r.data.path = Some("/data/{seed}/{threads}".into());
    let argv = command_line(&r, &e, Path::new("/runs/{epochs}"));
    assert_eq!(
        argv,
        [
            "python",
            "train.py",
            "/data/{seed}/{threads}",
            "--fmt",
            "{epoch:03d}-2",
            "--out",
            "/runs/{epochs}/3"
        ]
    );
}

/// Strings handed to the trainer are checked when the recipe is (NUL bytes, environment names a
/// process cannot hold) or before any trial starts (a metric file that is one of darkmagic's own
/// records).
#[test]
fn strings_for_the_trainer_are_validated_with_the_field_named() {
    let bad = |section: &str, metric: &str| {
        let e: ExternalConfig = toml::from_str(&format!(
            "command = [\"python\", \"train.py\"]\n{section}\n[metric]\n{metric}\nkey = \"acc\"\n"
        ))
        .unwrap();
        e.validate().unwrap_err().to_string()
    };
    let csv = "csv = \"out.csv\"";
    let e = bad("[args]\n\"--name\" = \"a\\u0000b\"", csv);
    assert!(e.contains("external.args.--name") && e.contains("NUL"), "{e}");
    let e = bad("[env]\n\"A=B\" = \"1\"", csv);
    assert!(
        e.contains("external.env.A=B") && e.contains("not a variable name"),
        "{e}"
    );
    let e = bad("[env]\n\"1X\" = \"1\"", csv);
    assert!(e.contains("external.env.1X"), "{e}");
    let e = bad("[env]\nX = \"a\\u0000\"", csv);
    assert!(e.contains("external.env.X") && e.contains("NUL"), "{e}");
    for own in [
        "result.json",
        "{run_dir}/metrics.jsonl",
        "eval/val.json",
        "events.out.tfevents.1.x",
        "recipe.toml.tmp7",
    ] {
        let e: ExternalConfig = toml::from_str(&format!(
            "command = [\"/bin/true\"]\n[metric]\njson = \"{own}\"\nkey = \"acc\"\n"
        ))
        .unwrap();
        let e = check_command(&e).unwrap_err().to_string();
        assert!(
            e.contains("external.metric.json") && e.contains("darkmagic's own record"),
            "{own}: {e}"
        );
    }
    for nothing in ["", ".", "{run_dir}/"] {
        let e = bad("", &format!("csv = \"{nothing}\""));
        assert!(
            e.contains("external.metric.csv") && e.contains("expected the name of a file"),
            "{nothing:?}: {e}"
        );
    }
    let good: ExternalConfig = toml::from_str(
        "command = [\"python\"]\n[env]\nMY_VAR_2 = \"{seed}\"\n[metric]\ncsv = \"logs/summary.csv\"\nkey = \"acc\"\n",
    )
    .unwrap();
    good.validate().unwrap();
}
