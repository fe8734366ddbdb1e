//! The checklist report, rebuilt from the run directories alone: `summary.json` (machine-readable,
//! deterministic: no wall-clock figures), `summary.csv`, `summary.md` and a self-contained
//! `report.html` (inline SVG plots, no scripts, no network).
pub mod html;
pub mod svg;

use crate::analysis::{ArmSummary, Summary, Verdict};
use crate::plan::Trial;
use crate::sequential::Size;
use darkmagic_base::error::Result;
use darkmagic_base::recipe::Recipe;
use darkmagic_base::rundir::{self, EpochMetrics, RunDir};
use darkmagic_base::schedule::LrSchedule;
use std::path::Path;

/// Compute spent, from the trials' `result.json` files.
#[derive(Clone, Copy, Debug, Default)]
pub struct Compute {
    pub trials: usize,
    pub epochs: usize,
    pub train_seconds: f64,
}

/// Points (x, y) of a plotted curve.
pub type Curve = Vec<(f64, f64)>;

/// One trial's recorded history, for the plots.
pub struct TrialData {
    pub trial: Trial,
    pub recipe: Option<Recipe>,
    pub metrics: Vec<EpochMetrics>,
    pub wall_seconds: f64,
    /// The last lines of `train.log` for a run that did not complete.
    pub log_tail: Option<String>,
}

impl TrialData {
    /// Reads every trial under `root`, tuning runs included.
    pub fn read_all(root: &Path) -> Result<Vec<TrialData>> {
        let trials = crate::analysis::read_trials(root)?;
        trials
            .into_iter()
            .map(|trial| {
                let dir = RunDir::open(&root.join(&trial.dir));
                let recipe = Recipe::load_record(&dir.file(rundir::RECIPE)).ok();
                let metrics = dir.read_metrics()?;
                let result = dir.read_result()?;
                let wall_seconds = result.as_ref().map_or(0.0, |r| r.wall_seconds);
                let log_tail = result.filter(|r| r.status != rundir::Status::Completed).map(|_| {
                    let log = dir.log_tail();
                    let lines: Vec<&str> = log.lines().collect();
                    lines[lines.len().saturating_sub(8)..].join("\n")
                });
                Ok(TrialData {
                    trial,
                    recipe,
                    metrics,
                    wall_seconds,
                    log_tail,
                })
            })
            .collect()
    }

    /// The learning rate and weight decay this trial's recipe gives at each step (at most about
    /// 400 points, x in epochs), or None without a recipe or metrics, or for an external trainer.
    pub fn schedule_curves(&self) -> Option<(Curve, Curve)> {
        let (r, m) = (self.recipe.as_ref()?, self.metrics.first().filter(|m| m.epoch > 0)?);
        if r.external.is_some() {
            // darkmagic's schedule fields say nothing of an external trainer's.
            return None;
        }
        let steps_per_epoch = (m.step / m.epoch).max(1);
        let s = LrSchedule::new(&r.schedule, r.peak_lr(), r.train.epochs, steps_per_epoch);
        let stride = (s.total_steps() / 400).max(1);
        let steps: Vec<usize> = (0..s.total_steps()).step_by(stride).collect();
        let x = |t: usize| t as f64 / steps_per_epoch as f64;
        let lr = steps.iter().map(|&t| (x(t), s.lr(t))).collect();
        let wd = steps
            .iter()
            .map(|&t| (x(t), s.weight_decay(t, r.optim.weight_decay)))
            .collect();
        Some((lr, wd))
    }
}

pub fn compute(data: &[TrialData]) -> Compute {
    Compute {
        trials: data.len(),
        epochs: data.iter().map(|d| d.metrics.len()).sum(),
        // A fold from +0.0: `sum` of no f64 is -0.0, which prints as "-0.0 minutes".
        train_seconds: data.iter().map(|d| d.wall_seconds).fold(0.0, |a, b| a + b),
    }
}

/// Writes every report file into `root`.
pub fn write(root: &Path, summary: &Summary) -> Result<()> {
    let data = TrialData::read_all(root)?;
    let json = serde_json::to_string_pretty(summary).expect("summary serializes");
    darkmagic_base::files::write_atomic(&root.join("summary.json"), format!("{json}\n").as_bytes())?;
    darkmagic_base::files::write_atomic(&root.join("summary.csv"), csv(summary).as_bytes())?;
    darkmagic_base::files::write_atomic(
        &root.join("summary.md"),
        markdown(summary, &compute(&data), root).as_bytes(),
    )?;
    darkmagic_base::files::write_atomic(&root.join("report.html"), html::render(summary, &data, root).as_bytes())?;
    Ok(())
}

/// The checklist's decision in plain words, a (heading, text) pair per kind that occurs: adopt
/// (helps), avoid (hurts), makes no difference (equivalent), still open (with the seeds it needs
/// and the command that runs them), unstable arms, and arms that failed to train.
pub fn decision_lines(s: &Summary, root: &Path) -> Vec<(&'static str, String)> {
    let with = |v: Verdict| -> Vec<&ArmSummary> { s.trials.iter().filter(|a| a.verdict == v).collect() };
    let effects = |arms: &[&ArmSummary]| -> String {
        let parts: Vec<String> = arms
            .iter()
            .map(|a| {
                format!(
                    "{} ({} pp, {})",
                    a.label,
                    a.diff.map_or("-".into(), pp),
                    verdict_label(a)
                )
            })
            .collect();
        parts.join("; ")
    };
    let mut out = Vec::new();
    let (helps, hurts, same) = (with(Verdict::Helps), with(Verdict::Hurts), with(Verdict::Equivalent));
    if !helps.is_empty() {
        out.push(("Adopt", effects(&helps)));
    }
    if let Some(text) = fidelity_line(s) {
        out.push(("Fidelity check", text));
    }
    if !hurts.is_empty() {
        out.push(("Avoid", effects(&hurts)));
    }
    if !same.is_empty() {
        let labels: Vec<&str> = same.iter().map(|a| a.label.as_str()).collect();
        let margin = 100.0 * s.design.margin;
        out.push((
            "Makes no difference",
            format!("{} (each within ±{margin:.2} pp)", labels.join(", ")),
        ));
    }
    if let Some(text) = still_open(s, root) {
        out.push(("Still open", text));
    }
    let unstable: Vec<String> = s
        .trials
        .iter()
        .filter_map(|a| a.worst_seed.as_ref().filter(|w| w.unstable).map(|w| (a, w)))
        .map(|(a, w)| {
            format!(
                "{}: seed {} lies {:.2} pp below its other seeds",
                a.label,
                w.seed,
                100.0 * w.below_others
            )
        })
        .collect();
    if !unstable.is_empty() {
        out.push((
            "Unstable",
            format!(
                "{} (more than {} pooled standard deviations): a run that fails now and then, which the mean and its interval do not show",
                unstable.join("; "),
                crate::analysis::UNSTABLE_SDS
            ),
        ));
    }
    let broken: Vec<String> = s
        .trials
        .iter()
        .filter(|a| matches!(a.verdict, Verdict::Diverged | Verdict::Failed | Verdict::Stopped))
        .map(|a| format!("{} ({})", a.label, verdict_text(a.verdict)))
        .collect();
    if !broken.is_empty() {
        out.push(("Did not finish", broken.join(", ")));
    }
    out
}

/// The open variants in words: those still running (and the command that continues them), and
/// the undecided ones with the seeds their noise needs and the follow-up checklist that
/// decides them on fresh seeds.
fn still_open(s: &Summary, root: &Path) -> Option<String> {
    // As the user typed it where it lies under the working directory (`runs/checklist`).
    let cwd = std::env::current_dir().unwrap_or_default();
    // Rebuilt from its components: `runs/cl/` (a trailing slash) would give `runs/cl/-open`.
    let dir: std::path::PathBuf = root.strip_prefix(&cwd).unwrap_or(root).components().collect();
    let dir = dir.display();
    let running: Vec<&str> = s
        .trials
        .iter()
        .filter(|a| a.verdict == Verdict::Incomplete)
        .map(|a| a.label.as_str())
        .collect();
    let undecided: Vec<&ArmSummary> = s
        .trials
        .iter()
        .filter(|a| matches!(a.verdict, Verdict::Undecided | Verdict::TooFewSeeds))
        .collect();
    let mut parts = Vec::new();
    if !running.is_empty() {
        parts.push(format!(
            "{} wait for the next look; `darkmagic checklist --out {dir}` continues them",
            running.join(", ")
        ));
    }
    if !undecided.is_empty() {
        let needs: Vec<Option<usize>> = undecided
            .iter()
            .map(|a| a.decision.as_ref().and_then(|d| d.seeds_needed))
            .collect();
        let each: Vec<String> = undecided
            .iter()
            .zip(&needs)
            .map(|(a, n)| match (a.verdict, n) {
                (Verdict::TooFewSeeds, _) => format!("{} (fewer than 3 paired seeds)", a.label),
                (_, Some(n)) => format!("{} (about {n} seeds)", a.label),
                (_, None) => format!("{} (over 1000 seeds)", a.label),
            })
            .collect();
        let most = needs.iter().flatten().max().copied().unwrap_or(0).max(4);
        let open_factors: Vec<&str> = undecided.iter().filter_map(|a| a.factor.as_deref()).collect();
        let mut skip: Vec<String> = s
            .trials
            .iter()
            .filter_map(|a| a.factor.as_deref())
            .filter(|f| !open_factors.contains(f))
            .map(|f| toml::Value::String(f.to_string()).to_string())
            .collect();
        skip.sort();
        skip.dedup();
        let fresh = s
            .baseline
            .seeds
            .iter()
            .map(|x| x.seed)
            .min()
            .unwrap_or(0)
            .saturating_add(10_000);
        // Paths and factor names are the user's: quoted for the shell (the names as TOML strings
        // first), so that the command pastes as printed whatever they hold.
        let quote = crate::executor::shell_quote;
        parts.push(format!(
            "{}: seeds needed for 80% power at the margin, from the noise seen. A follow-up checklist of these factors on fresh seeds decides them: \
             `darkmagic checklist --recipe {} --out {} --set seed={fresh} --set {} --max-seeds {most}`",
            each.join(", "),
            quote(&format!("{dir}/baseline.toml")),
            quote(&format!("{dir}-open")),
            quote(&format!("checklist.skip=[{}]", skip.join(", ")))
        ));
    }
    (!parts.is_empty()).then(|| parts.join(". "))
}

/// Percentage points with sign, e.g. `+1.23`.
pub fn pp(x: f64) -> String {
    format!("{:+.2}", 100.0 * x)
}

pub fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.2}", 100.0 * v))
}

pub fn interval(ci: Option<(f64, f64)>) -> String {
    ci.map_or("-".into(), |(lo, hi)| format!("[{}, {}]", pp(lo), pp(hi)))
}

/// The values a mean paired difference can take: with accuracies in [0, 1] and a baseline
/// mean `b`, [-b, 1 - b]. For an external trainer's metric only when it names an accuracy and
/// every value lies in [0, 1]; None otherwise (its range is unknown).
pub fn bounds(s: &Summary) -> Option<(f64, f64)> {
    let b = s.baseline.mean?;
    let named = ["acc", "top1", "top5"].iter().any(|w| s.metric.contains(w));
    let mut values = s.arms().flat_map(|a| a.seeds.iter().filter_map(|x| x.val_acc));
    let fraction = values.all(|v| (0.0..=1.0).contains(&v));
    (s.metric == "final_val_acc" || (named && fraction)).then_some((-b, 1.0 - b))
}

/// An arm's deciding interval with its confidence level, clipped to `bounds` ("clipped"), or
/// "uninformative" when it covers every value the metric allows.
pub fn deciding_interval(a: &ArmSummary, bounds: Option<(f64, f64)>) -> String {
    let (Some((lo, hi)), Some(level)) = (a.ci, a.ci_level) else {
        return interval(a.ci);
    };
    let level = level_text(level);
    match bounds {
        Some((bl, bh)) if lo <= bl && hi >= bh => format!("uninformative ({level})"),
        Some((bl, bh)) if lo < bl || hi > bh => {
            format!("{} {level}, clipped", interval(Some((lo.max(bl), hi.min(bh)))))
        }
        _ => format!("{} {level}", interval(Some((lo, hi)))),
    }
}

/// A confidence level as a percentage with the digits that tell it apart from 100%: 90%,
/// 99.82%, 99.9986%.
pub fn level_text(level: f64) -> String {
    // Rounded first: 1 - 0.9 is 0.0999...98 in floating point.
    let miss = (100.0 * (1.0 - level) * 1e9).round() / 1e9;
    let digits = if miss <= 0.0 {
        0
    } else {
        (1.0 - miss.log10().floor()).max(0.0) as usize
    };
    format!("{:.*}%", digits, 100.0 * level)
}

/// What the sequential design was, what it spent, and what its verdicts guarantee.
pub fn design_note(s: &Summary) -> String {
    let d = &s.design;
    let looks: Vec<String> = d.looks.iter().map(usize::to_string).collect();
    let spent: Vec<String> = d.spent.iter().map(|a| format!("{a:.4}")).collect();
    let pooled = d.pooled_sd.map_or(String::new(), |sd| {
        format!(
            " The power figures marked * use the paired differences' standard deviation pooled over the variants, \
             {:.2} pp (an arm with fewer than 6 seeds cannot carry its own); the others the arm's own.",
            100.0 * sd
        )
    });
    let replaced = match d.replaced.as_slice() {
        [] => String::new(),
        r => format!(
            " The design was replaced after results were seen (checklist --redesign): before it, {}; the verdicts \
             here are this design's, over the same trials.",
            r.join("; then ")
        ),
    };
    format!(
        "Sequential seeds: looks at {} seeds ({} of {} rounds run), error spent per look {} (the spending function \
         alpha t^{} of the fraction t of the seeds, nothing below {} seeds, adding up to {}){}. A variant helps or hurts \
         when its helps/hurts interval excludes 0 (group-sequential Holm over all {} planned variants: each look \
         tests the open variants at alpha over the number not yet called helps or hurts, with critical values \
         calibrated for t at each look): at most {:.0}% chance of any false helps or hurts in the whole checklist, \
         a family-wise claim, whatever the true effects, for seed noise that is roughly symmetric. It is equivalent when its equivalence interval \
         (two one-sided tests at the look's error) lies within ±{:.2} pp: for each variant, at most {:.0}% chance of \
         calling it equivalent when its true effect is the margin or more (a per-variant claim, not corrected over variants). Undecided: \
         the last look ended without either; too few seeds: fewer than 3 paired seeds. Each verdict is shown with the \
         interval that decided it and that interval's level.{pooled} {} training runs, {:.0}% of the {} that every arm \
         at {} seeds would take.{replaced} Method: docs/checklist-statistics.md.",
        looks.join(", "),
        d.rounds,
        d.looks.len(),
        spent.join(", "),
        crate::sequential::SPENDING_POWER,
        crate::sequential::DECIDE_SEEDS,
        d.alpha,
        if d.fixed {
            ", fixed at the first look in design.json"
        } else {
            ""
        },
        d.comparisons,
        100.0 * d.alpha,
        100.0 * d.margin,
        100.0 * d.alpha,
        d.runs,
        100.0 * d.runs as f64 / d.runs_at_max_seeds.max(1) as f64,
        d.runs_at_max_seeds,
        d.looks.last().copied().unwrap_or(0)
    )
}

/// The combined recipe's confirmation at `checklist.confirm_epochs`, in one line: whether what
/// the short trials chose still helps at that length.
fn fidelity_line(s: &Summary) -> Option<String> {
    let (e, c) = (s.confirm_epochs?, s.combined.as_ref()?);
    let held = if c.verdict == Verdict::Helps {
        "it holds at this length"
    } else {
        "what the short trials chose is not confirmed at this length"
    };
    Some(format!(
        "the combined recipe ({}) trained {e} epochs on fresh seeds: {} pp against the baseline at {e} epochs, {}; {held}",
        s.combined_variants.join(", "),
        c.diff.map_or("-".into(), pp),
        verdict_label(c)
    ))
}

/// How the combined recipe was confirmed: on which seeds and, with `checklist.confirm_epochs`,
/// at which length.
pub fn confirmation_text(s: &Summary) -> String {
    let fresh = s.design.looks.last().copied().unwrap_or(0);
    let mut text = format!(
        "It runs on fresh seeds (seed indices from {fresh} on, which no variant used), paired with the baseline on the same \
         seeds, and is confirmed as one comparison at the checklist's error."
    );
    if let Some(e) = s.confirm_epochs {
        let short = s.baseline.seeds.iter().map(|x| x.epochs).max().unwrap_or(0);
        text.push_str(&format!(
            " Both train {e} epochs (checklist.confirm_epochs) where the variants' trials trained {short}: the fidelity \
             check of short trials, whose effects need not hold at full length (docs/real-data.md has a trick whose \
             sign flips). No additivity figure: the parts and the whole trained at different lengths."
        ));
    }
    text
}

/// The combined recipe against the baseline on the test split, in words: whether its
/// interval shows the upgrade (the article's promise) or not.
pub fn test_split_text(s: &Summary) -> Option<String> {
    let t = s.combined_test.as_ref()?;
    let standing = match t.ci {
        None => " (one seed: no interval)".to_string(),
        Some((lo, hi)) => {
            let verdict = if lo > 0.0 {
                "the combined recipe beats the baseline"
            } else if hi < 0.0 {
                "the combined recipe falls behind the baseline"
            } else {
                "no difference shown"
            };
            let level = 100.0 * crate::analysis::TEST_LEVEL;
            format!(", {level:.0}% interval [{}, {}] (Student t): {verdict}", pp(lo), pp(hi))
        }
    };
    Some(format!(
        "On the test split, which no choice of the checklist saw, on the same {} fresh seeds: combined minus \
         baseline {} pp{standing}.",
        t.seeds,
        pp(t.diff)
    ))
}

/// The combined recipe against the sum of its parts, in words.
pub fn interaction_text(s: &Summary) -> Option<String> {
    let i = s.interaction.as_ref()?;
    Some(format!(
        "Additivity (the article assumes the tricks' effects add up): the combined recipe gained {} pp on {} fresh seeds, \
         its parts {} pp summed (on the {} seeds that selected them); combined minus sum {} pp. No interval: the parts \
         were chosen for being large on their own seeds, so their sum is biased upward and an interval on the \
         difference would call effects that add \"interfering\" far more often than its level says.",
        pp(i.combined),
        i.combined_seeds,
        pp(i.parts),
        i.parts_seeds,
        pp(i.estimate),
    ))
}

/// Seeds used, the smallest effect the arm's look finds with 80% power (±pp), and the seeds a
/// decision would need, for the tables; dashes for the baseline.
pub fn power(a: &ArmSummary) -> [String; 3] {
    let Some(d) = &a.decision else {
        return ["-".into(), "-".into(), "-".into()];
    };
    let needed = match (a.verdict, d.seeds_needed) {
        (Verdict::Undecided, Some(n)) => n.to_string(),
        (Verdict::Undecided, None) => "> 1000".into(),
        _ => "-".into(),
    };
    let star = if d.pooled_sd { "*" } else { "" };
    let detectable = d.detectable.map_or("-".into(), |h| format!("±{:.2}{star}", 100.0 * h));
    [d.seeds.to_string(), detectable, needed]
}

pub fn verdict_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Baseline => "baseline",
        Verdict::Helps => "helps",
        Verdict::Hurts => "hurts",
        Verdict::Equivalent => "equivalent",
        Verdict::Undecided => "undecided",
        Verdict::TooFewSeeds => "too few seeds",
        Verdict::Diverged => "diverged",
        Verdict::Failed => "failed",
        Verdict::Stopped => "stopped early",
        Verdict::Incomplete => "incomplete",
    }
}

/// An arm's verdict in words, with its size against the margin for helps and hurts: "helps by
/// at least the margin", "helps, by less than the margin", "helps, size unclear".
pub fn verdict_label(a: &ArmSummary) -> String {
    let v = verdict_text(a.verdict);
    match a.decision.as_ref().and_then(|d| d.size) {
        Some(Size::AtLeastMargin) => format!("{v} by at least the margin"),
        Some(Size::BelowMargin) => format!("{v}, by less than the margin"),
        Some(Size::Unclear) => format!("{v}, size unclear"),
        None => v.to_string(),
    }
}

/// The CSV spelling of a helps/hurts size (empty for other verdicts).
fn size_text(size: Option<Size>) -> &'static str {
    match size {
        Some(Size::AtLeastMargin) => "at_least_margin",
        Some(Size::BelowMargin) => "below_margin",
        Some(Size::Unclear) => "unclear",
        None => "",
    }
}

fn csv(s: &Summary) -> String {
    let mut out = String::from(
        "trial,factor,variant,seeds,accuracies,mean,std,diff,ci_low,ci_high,ci_level,seeds_used,look,detectable,seeds_needed,size,verdict\n",
    );
    for a in s.arms() {
        let accs: Vec<String> = a
            .seeds
            .iter()
            .map(|x| x.val_acc.map_or("".into(), |v| format!("{v:.6}")))
            .collect();
        let f = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.6}"));
        let verdict = serde_json::to_value(a.verdict).expect("verdict serializes");
        let d = a.decision.as_ref();
        let count = |x: Option<usize>| x.map_or(String::new(), |v| v.to_string());
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv_field(&a.label),
            csv_field(a.factor.as_deref().unwrap_or_default()),
            csv_field(a.variant.as_deref().unwrap_or_default()),
            a.seeds.len(),
            accs.join(";"),
            f(a.mean),
            f(a.std),
            f(a.diff),
            f(a.ci.map(|c| c.0)),
            f(a.ci.map(|c| c.1)),
            f(a.ci_level),
            count(d.map(|d| d.seeds)),
            count(d.map(|d| d.look)),
            f(d.and_then(|d| d.detectable)),
            count(d.and_then(|d| d.seeds_needed)),
            size_text(d.and_then(|d| d.size)),
            verdict.as_str().unwrap_or_default()
        ));
    }
    out
}

/// The columns of the summary tables (Markdown and HTML).
pub const COLUMNS: [&str; 9] = [
    "trial",
    "seeds",
    "accuracy (mean ± std)",
    "difference",
    "deciding interval (level)",
    "verdict",
    "detectable at 80% power (pp)",
    "seeds needed",
    "worst paired seed (pp)",
];

/// One arm's cells, in `COLUMNS` order; intervals clipped to `bounds`.
pub fn cells(a: &ArmSummary, bounds: Option<(f64, f64)>) -> [String; 9] {
    let [_, detectable, needed] = power(a);
    [
        a.label.clone(),
        a.seeds.len().to_string(),
        format!("{} ± {}", pct(a.mean), pct(a.std)),
        a.diff.map_or("-".into(), pp),
        deciding_interval(a, bounds),
        verdict_label(a),
        detectable,
        needed,
        worst_seed_text(a),
    ]
}

/// An arm's worst paired seed: its difference and seed, "unstable" when it lies far below the
/// others (`analysis::worst_seed`); a dash for the baseline and arms with fewer than 2 pairs.
pub fn worst_seed_text(a: &ArmSummary) -> String {
    a.worst_seed.as_ref().map_or("-".into(), |w| {
        let flag = if w.unstable { ", unstable" } else { "" };
        format!("{} (seed {}{flag})", pp(w.diff), w.seed)
    })
}

/// A CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or a line
/// break. Labels come from the recipe's factor and variant names, which may hold any of them.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A Markdown table cell that stays one cell and shows as text: pipes escaped, HTML's `<`, `>`
/// and `&` as entities, control characters (line breaks, terminal escape sequences: summary.md
/// is printed to the terminal) as spaces.
fn md_cell(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '|' => "\\|".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            c if c.is_control() => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn md_table(rows: &[&ArmSummary], bounds: Option<(f64, f64)>) -> String {
    let mut out = format!("| {} |\n|{}\n", COLUMNS.join(" | "), "---|".repeat(COLUMNS.len()));
    for a in rows {
        let cells = cells(a, bounds).map(|c| md_cell(&c));
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// What the summary compares, in words.
pub fn metric_text(s: &Summary) -> String {
    match s.metric.as_str() {
        "final_val_acc" => "final validation top-1 accuracy".into(),
        external => format!("the external trainer's metric, {external}"),
    }
}

/// The tuning table: per arm, each candidate's values and mean score (%), the chosen one in
/// bold, then the warnings. Empty without tuning.
fn tuning_markdown(s: &Summary) -> String {
    if s.tuning.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Tuning\n\nEach arm trained once per candidate on its tuning seeds; its seeds then ran with the best (**bold**).\n\n| arm | candidates: values -> mean validation accuracy (%) |\n|---|---|\n",
    );
    for a in &s.tuning {
        let cells: Vec<String> = a
            .candidates
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let text = format!(
                    "{} -> {}",
                    values_text(&c.values),
                    c.mean.map_or("-".into(), |m| format!("{:.2}", 100.0 * m))
                );
                if a.chosen == Some(k) {
                    format!("**{text}**")
                } else {
                    text
                }
            })
            .collect();
        out.push_str(&format!("| {} | {} |\n", md_cell(&a.label), md_cell(&cells.join("; "))));
    }
    for w in s.tuning.iter().flat_map(|a| &a.warnings) {
        out.push_str(&format!("\nWarning: {w}\n"));
    }
    for a in &s.tuning {
        for f in &a.failed {
            out.push_str(&format!("\nFailed (a rerun retries it): {} {f}\n", md_cell(&a.label)));
        }
    }
    out
}

/// `field = value` pairs of a candidate, for tables.
pub fn values_text(values: &toml::Table) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn markdown(s: &Summary, c: &Compute, root: &Path) -> String {
    let mut out = String::from("# darkmagic checklist\n\n## Decision\n\n");
    for (heading, text) in decision_lines(s, root) {
        out.push_str(&format!("- **{heading}**: {}\n", md_cell(&text)));
    }
    out.push_str(
        "\nHelps and hurts are family-wise claims (at most alpha chance of any false one in the whole checklist); \
                  makes no difference is a claim about each variant on its own.\n\n## Verdicts\n\n",
    );
    out.push_str(&format!(
        "Metric: {} (%); differences are paired by seed against the baseline, in percentage points.\n\n",
        metric_text(s)
    ));
    let rows: Vec<&ArmSummary> = std::iter::once(&s.baseline).chain(&s.trials).collect();
    out.push_str(&md_table(&rows, bounds(s)));
    out.push_str(&format!("\n{}\n", design_note(s)));
    for n in &s.notes {
        out.push_str(&format!("\nNote: {n}\n"));
    }
    out.push_str(&tuning_markdown(s));
    out.push_str("\n## Combined recipe\n\n");
    if s.combined_variants.is_empty() {
        out.push_str("No variant helped, so the combined recipe is the baseline.\n");
    } else {
        let confirmation = match &s.combined {
            Some(_) => confirmation_text(s),
            None => "Not run as a recipe of its own here: it runs on fresh seeds once no variant needs more seeds, \
                     unless checklist.combine = false."
                .into(),
        };
        out.push_str(&format!(
            "Baseline plus: {}. {confirmation}\n\n",
            md_cell(&s.combined_variants.join(", "))
        ));
        if let Some(c) = &s.combined {
            let rows: Vec<&ArmSummary> = s.confirm_baseline.iter().chain([c]).collect();
            out.push_str(&md_table(&rows, bounds(s)));
        }
        if let Some(text) = test_split_text(s) {
            out.push_str(&format!("\n{text}\n"));
        }
        if let Some(text) = interaction_text(s) {
            out.push_str(&format!("\n{text}\n"));
        }
    }
    out.push_str(&format!(
        "\n## Compute\n\n{} training runs, {} epochs, {:.1} minutes of training (summed over runs).\n",
        c.trials,
        c.epochs,
        c.train_seconds / 60.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequential::Decision;

    fn arm(ci: (f64, f64), level: f64, verdict: Verdict, size: Option<Size>) -> ArmSummary {
        ArmSummary {
            label: "f=v".into(),
            factor: None,
            variant: None,
            overrides: toml::Table::new(),
            seeds: vec![],
            mean: None,
            std: None,
            diff: Some(0.0),
            ci: Some(ci),
            ci_level: Some(level),
            bootstrap_ci: None,
            verdict,
            decision: Some(Decision {
                verdict,
                size,
                seeds: 3,
                look: 1,
                ci: Some(ci),
                ci_level: Some(level),
                eq_ci: None,
                eq_level: None,
                detectable: None,
                seeds_needed: None,
                pooled_sd: false,
                needs: 0,
            }),
            worst_seed: None,
        }
    }

    #[test]
    fn labels_stay_one_csv_field_and_one_markdown_cell_and_never_reach_the_terminal_raw() {
        assert_eq!(csv_field("lr=0.1"), "lr=0.1");
        assert_eq!(csv_field("a,b=\"x\"\ny"), "\"a,b=\"\"x\"\"\ny\"");
        assert_eq!(
            md_cell("f=<script>|x\n\u{1b}[31mred & more"),
            "f=&lt;script&gt;\\|x  [31mred &amp; more"
        );
    }

    #[test]
    fn levels_show_the_digits_that_tell_them_from_100_percent() {
        assert_eq!(level_text(0.9), "90%");
        assert_eq!(level_text(0.95), "95.0%");
        assert_eq!(level_text(1.0 - 0.05 / 14.0), "99.64%");
        assert_eq!(level_text(1.0 - 1.215e-4 / 14.0), "99.99913%");
    }

    #[test]
    fn intervals_are_clipped_to_what_the_metric_allows_or_called_uninformative() {
        // Baseline at 99%: a mean difference lies in [-99, +1] pp.
        let bounds = Some((-0.99, 0.01));
        let a = arm((-0.002, 0.004), 0.95, Verdict::Undecided, None);
        assert_eq!(deciding_interval(&a, bounds), "[-0.20, +0.40] 95.0%");
        let a = arm((-0.03, 0.05), 0.95, Verdict::Undecided, None);
        assert_eq!(deciding_interval(&a, bounds), "[-3.00, +1.00] 95.0%, clipped");
        let a = arm((-3.5, 3.6), 0.95, Verdict::Undecided, None);
        assert_eq!(deciding_interval(&a, bounds), "uninformative (95.0%)");
        assert_eq!(deciding_interval(&a, None), "[-350.00, +360.00] 95.0%");
    }

    /// The decision in plain words: one line per kind, the still-open variants with the seeds
    /// they need and a follow-up command that skips the factors already decided.
    #[test]
    fn the_decision_names_what_to_adopt_avoid_ignore_and_run_next() {
        let with = |label: &str, factor: &str, diff: f64, verdict: Verdict, size: Option<Size>| {
            let mut a = arm((diff - 0.001, diff + 0.001), 0.99, verdict, size);
            (a.label, a.factor, a.diff) = (label.into(), Some(factor.into()), Some(diff));
            a
        };
        let mut open = with("wd=10x", "wd", -0.004, Verdict::Undecided, None);
        open.decision.as_mut().unwrap().seeds_needed = Some(9);
        let baseline = ArmSummary {
            seeds: vec![crate::outcome::SeedOutcome {
                seed: 7,
                status: None,
                val_acc: None,
                test_acc: None,
                epochs: 0,
                val_images: 0,
                test_images: None,
                error: None,
                per_class: None,
            }],
            ..arm((0.0, 0.0), 0.0, Verdict::Baseline, None)
        };
        let s = Summary {
            metric: "final_val_acc".into(),
            tuning: vec![],
            baseline,
            trials: vec![
                with("ls=0.1", "ls", 0.012, Verdict::Helps, Some(Size::AtLeastMargin)),
                with("lr=step", "lr", -0.011, Verdict::Hurts, Some(Size::Unclear)),
                with("wd=0.1x", "wd", 0.0, Verdict::Equivalent, None),
                with("o'k=on", "o'k", 0.0, Verdict::Equivalent, None),
                open,
            ],
            combined_variants: vec![],
            combined: None,
            confirm_epochs: None,
            confirm_baseline: None,
            interaction: None,
            combined_test: None,
            design: crate::analysis::DesignSummary {
                alpha: 0.05,
                margin: 0.005,
                rounds: 2,
                runs: 30,
                runs_at_max_seeds: 30,
                looks: vec![4, 6],
                spent: vec![0.0148, 0.0352],
                comparisons: 5,
                replaced: vec![],
                fixed: true,
                pooled_sd: None,
            },
            notes: vec![],
        };
        let lines = decision_lines(&s, Path::new("/nowhere/cl"));
        let heads: Vec<&str> = lines.iter().map(|(h, _)| *h).collect();
        assert_eq!(heads, ["Adopt", "Avoid", "Makes no difference", "Still open"]);
        assert_eq!(lines[0].1, "ls=0.1 (+1.20 pp, helps by at least the margin)");
        assert_eq!(lines[1].1, "lr=step (-1.10 pp, hurts, size unclear)");
        assert_eq!(lines[2].1, "wd=0.1x, o'k=on (each within ±0.50 pp)");
        let open = &lines[3].1;
        assert!(open.starts_with("wd=10x (about 9 seeds)"), "{open}");
        assert!(
            open.contains(
                "--recipe '/nowhere/cl/baseline.toml' --out '/nowhere/cl-open' --set seed=10007 \
                 --set 'checklist.skip=[\"lr\", \"ls\", \"o'\\''k\"]' --max-seeds 9`"
            ),
            "{open}"
        );
        let slash = decision_lines(&s, Path::new("/nowhere/cl/"));
        assert_eq!(slash[3].1, *open, "a trailing slash changes nothing");
        // A combined recipe chosen but not run (yet, or with checklist.combine = false) is not
        // described as confirmed.
        let chosen = Summary {
            combined_variants: vec!["ls=0.1".into()],
            ..s
        };
        let md = markdown(&chosen, &Compute::default(), Path::new("/nowhere/cl"));
        assert!(
            md.contains("Baseline plus: ls=0.1. Not run as a recipe of its own here"),
            "{md}"
        );
        assert!(!md.contains("It runs on fresh seeds"), "{md}");
        // The test split's comparison says what its interval shows, and only that.
        let tested = |diff: f64, ci: Option<(f64, f64)>| {
            let s = Summary {
                combined_test: Some(crate::analysis::TestSplit { seeds: 4, diff, ci }),
                ..chosen.clone()
            };
            test_split_text(&s).unwrap()
        };
        assert_eq!(
            tested(0.0083, Some((0.0051, 0.0115))),
            "On the test split, which no choice of the checklist saw, on the same 4 fresh seeds: combined minus \
             baseline +0.83 pp, 95% interval [+0.51, +1.15] (Student t): the combined recipe beats the baseline."
        );
        assert!(tested(0.0007, Some((-0.0003, 0.0017))).ends_with("[-0.03, +0.17] (Student t): no difference shown."));
        assert!(tested(-0.01, Some((-0.02, -0.001))).ends_with("the combined recipe falls behind the baseline."));
        assert!(tested(0.01, None).ends_with("+1.00 pp (one seed: no interval)."));
    }

    #[test]
    fn helps_and_hurts_say_their_size_against_the_margin() {
        let a = arm((0.001, 0.003), 0.99, Verdict::Helps, Some(Size::BelowMargin));
        assert_eq!(verdict_label(&a), "helps, by less than the margin");
        let a = arm((0.001, 0.03), 0.99, Verdict::Helps, Some(Size::Unclear));
        assert_eq!(verdict_label(&a), "helps, size unclear");
        let a = arm((-0.03, -0.01), 0.99, Verdict::Hurts, Some(Size::AtLeastMargin));
        assert_eq!(verdict_label(&a), "hurts by at least the margin");
        assert_eq!(
            verdict_label(&arm((-0.01, 0.01), 0.9, Verdict::Equivalent, None)),
            "equivalent"
        );
    }
}
