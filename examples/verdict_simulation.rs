//! The long run of the checklist's simulation matrix (BENCHMARKS.md, docs/checklist-statistics.md):
//! every hard case under the default design (first look at 4 seeds, +2 a round, up to 6) and
//! up to 10 seeds, at the Fashion-MNIST checklist's paired noise (0.27 pp) and around the margin,
//! each rate with its Monte Carlo standard error, decided by the product's own sequential design.
//!
//! `cargo run --release --example verdict_simulation -- [CHECKLISTS] [CELL]` (default 20000 per
//! cell; CELL keeps the cells whose name contains it).
use darkmagic::checklist::sequential::Design;
use darkmagic::checklist::simulation::{Rates, Scenario, matrix, run};
use darkmagic::recipe::ChecklistConfig;

fn main() {
    let checklists: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("CHECKLISTS: a count of simulated checklists per cell"))
        .unwrap_or(20_000);
    // An optional second argument keeps the cells whose name contains it.
    let only = std::env::args().nth(2).unwrap_or_default();
    println!(
        "| max seeds | noise (pp) | cell | any false helps/hurts | +1 pp called helps | +0.5 pp called helps | null called equivalent | +-margin called equivalent | mean seeds | combined recipe built | combined falsely confirmed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let cell = |r: Option<f64>, n: usize| r.map_or("-".into(), |p| format!("{p:.4} ± {:.4}", Rates::se(p, n)));
    let default_max = ChecklistConfig::default().max_seeds;
    for max in [default_max, 10] {
        for sd in [0.27, 0.5, 1.0] {
            let cells = matrix(sd);
            let cells: Vec<&Scenario> = if sd == 1.0 {
                cells
                    .iter()
                    .filter(|c| c.name == "all null" || c.name == "at the margin")
                    .collect()
            } else {
                cells.iter().collect()
            };
            for sc in cells.into_iter().filter(|c| c.name.contains(&only)) {
                let cfg = ChecklistConfig {
                    max_seeds: max,
                    ..Default::default()
                };
                let design = Design::new(&cfg, sc.val_images.unwrap_or(0), sc.effects.len());
                let r = run(&design, sc, checklists, 2026);
                let per_variant = |k: usize| checklists * k;
                let count = |f: &dyn Fn(f64) -> bool| sc.effects.iter().filter(|&&e| f(e)).count();
                let margin = 100.0 * design.margin;
                println!(
                    "| {max} | {sd} | {} | {} | {} | {} | {} | {} | {:.2} | {:.4} | {} |",
                    sc.name,
                    cell(Some(r.any_false), checklists),
                    cell(r.power, per_variant(count(&|e| e >= 1.0))),
                    cell(r.power_half, per_variant(count(&|e| (0.5..1.0).contains(&e)))),
                    cell(r.null_equivalent, per_variant(count(&|e| e == 0.0))),
                    cell(
                        r.margin_equivalent,
                        per_variant(count(&|e| (e.abs() - margin).abs() < 1e-9))
                    ),
                    r.mean_seeds,
                    r.combined,
                    cell(Some(r.combined_false), checklists)
                );
            }
        }
    }
}
