//! The long run of the checklist's simulation matrix (BENCHMARKS.md, docs/checklist-statistics.md):
//! every hard case at max_seeds 4 and 10, over a sweep of noise levels around the margin, each
//! rate with its Monte Carlo standard error, decided by the product's own sequential design.
//!
//! `cargo run --release --example verdict_simulation -- [CHECKLISTS]` (default 20000 per cell).
use darkmagic::checklist::sequential::Design;
use darkmagic::checklist::simulation::{Rates, Scenario, matrix, run};
use darkmagic::recipe::ChecklistConfig;

fn main() {
    let checklists: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("CHECKLISTS: a count of simulated checklists per cell"))
        .unwrap_or(20_000);
    println!(
        "| max seeds | noise (pp) | cell | any false helps/hurts | +1 pp called helps | null called equivalent | +-margin called equivalent | mean seeds |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let cell = |r: Option<f64>, n: usize| r.map_or("-".into(), |p| format!("{p:.4} ± {:.4}", Rates::se(p, n)));
    for max in [4, 10] {
        for sd in [0.25, 0.5, 1.0, 2.0] {
            let cells = matrix(sd);
            let cells: Vec<&Scenario> = if sd == 0.5 {
                cells.iter().collect()
            } else {
                cells
                    .iter()
                    .filter(|c| c.name == "all null" || c.name == "at the margin")
                    .collect()
            };
            for sc in cells {
                let cfg = ChecklistConfig {
                    seeds: 3,
                    max_seeds: max,
                    round_seeds: 3,
                    ..Default::default()
                };
                let design = Design::new(&cfg, sc.val_images.unwrap_or(0), sc.effects.len());
                let r = run(&design, sc, checklists, 2026);
                let per_variant = |k: usize| checklists * k;
                let count = |f: &dyn Fn(f64) -> bool| sc.effects.iter().filter(|&&e| f(e)).count();
                let margin = 100.0 * design.margin;
                println!(
                    "| {max} | {sd} | {} | {} | {} | {} | {} | {:.2} |",
                    sc.name,
                    cell(Some(r.any_false), checklists),
                    cell(r.power, per_variant(count(&|e| e >= 1.0))),
                    cell(r.null_equivalent, per_variant(count(&|e| e == 0.0))),
                    cell(
                        r.margin_equivalent,
                        per_variant(count(&|e| (e.abs() - margin).abs() < 1e-9))
                    ),
                    r.mean_seeds
                );
            }
        }
    }
}
