//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, no external links;
//! each seed's accuracy links its run's per-class CSV inside the checklist directory).
use super::svg::{self, Bar, esc};
use super::{Compute, TrialData, deciding_interval, pct, power, pp, verdict_label, verdict_text};
use crate::analysis::{ArmSummary, Summary, Verdict};
use crate::plan::Arm;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#222}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}.helps{color:#2e7d32;font-weight:600}.hurts{color:#c62828;font-weight:600}\
.t{font-size:14px;font-weight:600}.l{font-size:12px}.k{font-size:11px;fill:#444}pre{background:#f5f5f5;padding:8px}\
.grid{display:flex;flex-wrap:wrap;gap:8px}.iv{white-space:nowrap}";

fn color(v: Verdict) -> &'static str {
    match v {
        Verdict::Helps => "#59a14f",
        Verdict::Hurts => "#e15759",
        Verdict::Equivalent | Verdict::Undecided | Verdict::TooFewSeeds | Verdict::Baseline => "#9e9e9e",
        Verdict::Diverged | Verdict::Failed | Verdict::Stopped | Verdict::Incomplete => "#f28e2b",
    }
}

fn class(v: Verdict) -> &'static str {
    match v {
        Verdict::Helps => "helps",
        Verdict::Hurts => "hurts",
        _ => "",
    }
}

fn row(a: &ArmSummary, bounds: Option<(f64, f64)>) -> String {
    let seeds: Vec<String> = a
        .seeds
        .iter()
        .map(|s| {
            let text = esc(&s.val_acc.map_or_else(
                || s.status.map_or("running".into(), |x| format!("{x:?}").to_lowercase()),
                |v| format!("{:.2}", 100.0 * v),
            ));
            match &s.per_class {
                Some(p) => format!(
                    "<a href=\"{}\" title=\"per-class accuracy\">{text}</a>",
                    esc(&p.display().to_string())
                ),
                None => text,
            }
        })
        .collect();
    let [_, detectable, needed] = power(a);
    format!(
        "<tr><td>{}</td><td>{}</td><td class=\"iv\">{} ± {}</td><td>{}</td><td class=\"iv\">{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&a.label),
        seeds.join(", "),
        pct(a.mean),
        pct(a.std),
        a.diff.map_or("-".into(), pp),
        esc(&deciding_interval(a, bounds)).replacen("] ", "]<br>", 1),
        class(a.verdict),
        esc(&verdict_label(a)),
        esc(&detectable),
        esc(&needed),
        esc(&super::worst_seed_text(a))
    )
}

fn table(rows: &[&ArmSummary], bounds: Option<(f64, f64)>) -> String {
    let mut s = String::from(
        "<table><tr><th>trial</th><th>accuracy per seed (%)</th><th>mean ± std (%)</th><th>difference (pp)</th><th>deciding interval (pp), level</th><th>verdict</th><th>detectable at 80% power (pp)</th><th>seeds needed</th><th>worst paired seed (pp)</th></tr>",
    );
    for a in rows {
        s.push_str(&row(a, bounds));
    }
    s.push_str("</table>");
    s
}

/// Mean validation accuracy (%) per epoch over the seeds of one arm (not its tuning runs).
fn mean_curve(data: &[TrialData], label: &str) -> Vec<(f64, f64)> {
    let runs: Vec<&TrialData> = data
        .iter()
        .filter(|d| d.trial.arm.label() == label && d.trial.tune.is_none())
        .collect();
    let epochs = runs.iter().map(|d| d.metrics.len()).min().unwrap_or(0);
    (0..epochs)
        .map(|e| {
            (
                (e + 1) as f64,
                100.0 * runs.iter().map(|d| d.metrics[e].val_acc).sum::<f64>() / runs.len() as f64,
            )
        })
        .collect()
}

fn curves(summary: &Summary, data: &[TrialData]) -> String {
    let mut factors: Vec<&str> = summary.trials.iter().filter_map(|t| t.factor.as_deref()).collect();
    factors.sort();
    factors.dedup();
    let mut s = String::from("<div class=\"grid\">");
    for f in factors {
        let mut series = vec![("baseline".to_string(), mean_curve(data, "baseline"))];
        for t in summary.trials.iter().filter(|t| t.factor.as_deref() == Some(f)) {
            series.push((t.variant.clone().unwrap_or_default(), mean_curve(data, &t.label)));
        }
        s.push_str(&svg::line_chart(
            &format!("{f}: validation accuracy"),
            "epoch",
            "val acc (%, mean over seeds)",
            &series,
        ));
    }
    s.push_str("</div>");
    s
}

/// The LR and weight-decay schedules in use: the baseline's and each arm's that differs (seed 0).
fn schedules(data: &[TrialData]) -> String {
    let mut lr: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    let mut wd: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for d in data
        .iter()
        .filter(|d| d.trial.seed_index == 0 && d.trial.tune.is_none())
    {
        let Some((l, w)) = d.schedule_curves() else { continue };
        for (series, curve) in [(&mut lr, l), (&mut wd, w)] {
            if !series.iter().any(|(_, c)| *c == curve) {
                series.push((d.trial.arm.label(), curve));
            }
        }
    }
    format!(
        "<div class=\"grid\">{}{}</div>",
        svg::line_chart("learning rate per step", "epoch", "lr", &lr),
        svg::line_chart("weight decay per step", "epoch", "weight decay", &wd)
    )
}

/// Isolation plots (Deep Learning Tuning Playbook): per factor, the validation accuracy of each
/// tuning candidate of the baseline and of the factor's variants against the first tuned
/// field's value (log scale), the chosen candidate ringed; then the warnings. Empty without
/// tuning.
fn tuning(summary: &Summary) -> String {
    let Some(field) = summary
        .tuning
        .iter()
        .flat_map(|a| a.candidates.iter())
        .find_map(|c| c.values.keys().next().cloned())
    else {
        return String::new();
    };
    let mut factors: Vec<&str> = summary.trials.iter().filter_map(|t| t.factor.as_deref()).collect();
    factors.sort();
    factors.dedup();
    let mut s = String::from(
        "<h2 id=\"tuning\">Tuning</h2><p>Each arm trained once per candidate on its tuning seeds, and its seeds ran with the best candidate (ringed).</p><div class=\"grid\">",
    );
    for f in factors {
        let labels = std::iter::once("baseline".to_string()).chain(
            summary
                .trials
                .iter()
                .filter(|t| t.factor.as_deref() == Some(f))
                .map(|t| t.label.clone()),
        );
        let (series, marks): (Vec<_>, Vec<_>) = labels
            .filter_map(|l| tuning_curve(summary, &l, &field).map(|(p, c)| ((l, p), c)))
            .unzip();
        s.push_str(&svg::marked_line_chart(
            &format!("{f}: tuned {field}"),
            &format!("log10({field})"),
            "val acc (%) of the tuning runs",
            &series,
            &marks,
        ));
    }
    s.push_str("</div>");
    for w in summary.tuning.iter().flat_map(|a| &a.warnings) {
        s.push_str(&format!("<p class=\"hurts\">Warning: {}</p>", esc(w)));
    }
    s
}

/// The tuning runs of arm `label`: (log10 of `field`'s value, mean accuracy %) per candidate
/// with a mean, and the index of the chosen one among them.
fn tuning_curve(summary: &Summary, label: &str, field: &str) -> Option<(super::Curve, Option<usize>)> {
    let a = summary.tuning.iter().find(|a| a.label == label)?;
    let mut points = Vec::new();
    let mut chosen = None;
    for (k, c) in a.candidates.iter().enumerate() {
        let (Some(x), Some(m)) = (c.values.get(field).and_then(number), c.mean) else {
            continue;
        };
        if a.chosen == Some(k) {
            chosen = Some(points.len());
        }
        points.push((x.abs().max(1e-300).log10(), 100.0 * m));
    }
    Some((points, chosen))
}

fn number(v: &toml::Value) -> Option<f64> {
    v.as_float().or(v.as_integer().map(|i| i as f64))
}

fn combined(summary: &Summary) -> String {
    if summary.combined_variants.is_empty() {
        return "<p>No variant helped, so the combined recipe is the baseline.</p>".into();
    }
    let mut s = format!(
        "<p>Baseline plus every variant that helps, one per factor: <b>{}</b>.</p>",
        esc(&summary.combined_variants.join(", "))
    );
    if let Some(c) = &summary.combined {
        let changes: Vec<String> = c.overrides.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        s.push_str(&format!("<pre>{}</pre>", esc(&changes.join("\n"))));
        let baseline = summary.confirm_baseline.as_ref().unwrap_or(&summary.baseline);
        s.push_str(&table(&[baseline, c], super::bounds(summary)));
        s.push_str(&format!("<p>{}</p>", esc(&super::confirmation_text(summary))));
        if let Some(text) = super::test_split_text(summary) {
            s.push_str(&format!("<p>{}</p>", esc(&text)));
        }
        if let Some(text) = super::interaction_text(summary) {
            s.push_str(&format!("<p>{}</p>", esc(&text)));
        }
    }
    s
}

fn failures(data: &[TrialData]) -> String {
    let mut s = String::new();
    for d in data {
        if let Some(tail) = &d.log_tail {
            s.push_str(&format!(
                "<h3>{} (seed {})</h3><pre>{}</pre>",
                esc(&d.trial.arm.label()),
                d.trial.seed,
                esc(tail)
            ));
        }
    }
    if s.is_empty() {
        s
    } else {
        format!("<h2>Failed and diverged runs (end of train.log)</h2>{s}")
    }
}

/// The whole page.
pub fn render(summary: &Summary, data: &[TrialData], root: &std::path::Path) -> String {
    let c: Compute = super::compute(data);
    let bars: Vec<Bar> = summary
        .trials
        .iter()
        .filter_map(|t| {
            let d = t.decision.as_ref();
            let scaled = |ci: Option<(f64, f64)>| ci.map(|(l, h)| (100.0 * l, 100.0 * h));
            Some(Bar {
                label: t.label.clone(),
                value: 100.0 * t.diff?,
                interval: scaled(d.and_then(|d| d.ci)),
                eq_interval: scaled(d.and_then(|d| d.eq_ci)),
                color: color(t.verdict),
            })
        })
        .collect();
    let axis = svg::Axis {
        margin: Some(100.0 * summary.design.margin),
        bounds: super::bounds(summary).map(|(l, h)| (100.0 * l, 100.0 * h)),
    };
    let notes: String = summary
        .notes
        .iter()
        .map(|n| format!("<p class=\"hurts\">Note: {}</p>", esc(n)))
        .collect();
    let counts = [
        Verdict::Helps,
        Verdict::Hurts,
        Verdict::Equivalent,
        Verdict::Undecided,
        Verdict::TooFewSeeds,
    ]
    .map(|v| {
        format!(
            "{} {}",
            summary.trials.iter().filter(|t| t.verdict == v).count(),
            verdict_text(v)
        )
    })
    .join(", ");
    let seeds = summary.baseline.seeds.len();
    let max_seeds = summary.design.looks.last().copied().unwrap_or(seeds);
    let mut rows: Vec<&ArmSummary> = vec![&summary.baseline];
    rows.extend(&summary.trials);
    let base_label = Arm::Baseline.label();
    let decision: String = super::decision_lines(summary, root)
        .iter()
        .map(|(h, t)| format!("<li><b>{h}</b>: {}</li>", esc(t)))
        .collect();
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>darkmagic checklist</title><style>{STYLE}</style></head><body>\
<h1>darkmagic checklist</h1><h2>Decision</h2><ul>{decision}</ul><p>Helps and hurts are family-wise claims (at most alpha \
chance of any false one in the whole checklist); makes no difference is a claim about each variant on its own.</p>\
<p>{} variants around the {base_label} ({seeds} of at most {max_seeds} seeds): {counts}. Metric: {}; \
differences are paired by seed (same initialisation, data order and augmentation), in percentage points (pp). \
A variant <span class=\"helps\">helps</span> when its whole helps/hurts interval is above 0 and <span class=\"hurts\">hurts</span> when it is below.</p>\
<h2>Verdicts</h2>{}<p>{}</p>{notes}<h2>Effects</h2>{}{}<h2>Combined recipe</h2>{}<h2>Validation curves</h2>{}<h2>Schedules used</h2>{}{}\
<h2>Compute</h2><p>{} training runs, {} epochs, {:.1} minutes of training summed over runs.</p></body></html>\n",
        summary.trials.len(),
        esc(&super::metric_text(summary)),
        table(&rows, super::bounds(summary)),
        esc(&super::design_note(summary)),
        svg::interval_chart("difference to the baseline (pp) with both intervals", "pp", &bars, axis),
        tuning(summary),
        combined(summary),
        curves(summary, data),
        schedules(data),
        failures(data),
        c.trials,
        c.epochs,
        c.train_seconds / 60.0
    )
}
