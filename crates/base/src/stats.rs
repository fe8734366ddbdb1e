//! Student's t distribution for the checklist's intervals: its CDF through the regularized
//! incomplete beta function and its quantiles at any level (the corrected intervals need levels
//! such as 1 - 0.05 / 28, beyond any table). Formulas: Numerical Recipes (3rd ed.), sections 6.1
//! (Lanczos log-gamma), 6.4 (incomplete beta by Lentz's continued fraction) and 6.14 (t CDF).

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; relative error below 1e-14).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |s, (i, g)| s + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized incomplete beta function I_x(a, b), for a, b > 0 and x in [0, 1].
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz's method).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = if d.abs() < TINY { TINY } else { d };
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            d = if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// P(T <= t) for Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * beta_inc(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The quantile `q` with P(T <= q) = p, for p in (0.5, 1).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    assert!(p > 0.5 && p < 1.0, "t_quantile({p}, {df})");
    t_upper_quantile(1.0 - p, df)
}

/// The quantile `q` with P(T > q) = `tail`, for `tail` in (0, 0.5): bisection on the upper
/// tail itself to a relative 1e-12, so that levels such as 1e-6 / 28 keep their precision
/// (`1 - tail` would round them).
pub fn t_upper_quantile(tail: f64, df: f64) -> f64 {
    assert!(tail > 0.0 && tail < 0.5 && df > 0.0, "t_upper_quantile({tail}, {df})");
    let upper = |t: f64| 0.5 * beta_inc(df / 2.0, 0.5, df / (df + t * t));
    bisect_decreasing(upper, tail)
}

/// The x >= 0 at which the decreasing `f` (with f(0) >= `target`) equals `target`.
fn bisect_decreasing(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    while f(hi) > target {
        hi *= 2.0;
    }
    while hi - lo > 1e-12 * hi.max(1.0) {
        let mid = 0.5 * (lo + hi);
        if f(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The complementary error function, erfc(x) = 1 - erf(x), with a fractional error below
/// 1.2e-7 everywhere (Numerical Recipes in C, 2nd ed., section 6.2, `erfcc`: a Chebyshev fit).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = [
        -1.265_512_23,
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ]
    .iter()
    .rev()
    .fold(0.0, |acc, c| c + t * acc);
    let ans = t * (-z * z + poly).exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

/// P(Z > z) for a standard normal Z.
pub fn normal_upper(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The z with P(Z > z) = `tail`, for `tail` in (0, 0.5).
pub fn normal_upper_quantile(tail: f64) -> f64 {
    assert!(tail > 0.0 && tail < 0.5, "normal_upper_quantile({tail})");
    bisect_decreasing(normal_upper, tail)
}

pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The two-sided Student-t interval at `level` for the mean of `xs` (n - 1 degrees of
/// freedom): mean -/+ t_{(1 - level)/2, n-1} s / sqrt(n), the sample sd `s` floored at
/// `floor` (an accuracy's resolution: differences that tie on a grid have s = 0, and an
/// interval of width 0 would hold nothing). None for fewer than 2 values.
pub fn t_interval(xs: &[f64], level: f64, floor: f64) -> Option<(f64, f64)> {
    if xs.len() < 2 {
        return None;
    }
    let n = xs.len() as f64;
    let half = t_upper_quantile((1.0 - level) / 2.0, n - 1.0) * sample_std(xs).max(floor) / n.sqrt();
    let m = mean(xs);
    Some((m - half, m + half))
}

/// Sample standard deviation (n - 1 in the denominator); 0 for fewer than 2 values.
pub fn sample_std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_of_three_values() {
        // Mean 2, s = 1, and t_{0.025, 2} = 4.302653 (Student's t table): 2 -/+ 4.302653 / sqrt 3.
        let (lo, hi) = t_interval(&[1.0, 2.0, 3.0], 0.95, 0.0).unwrap();
        let half = 4.302_653 / 3f64.sqrt();
        assert!(
            (lo - (2.0 - half)).abs() < 1e-6 && (hi - (2.0 + half)).abs() < 1e-6,
            "{lo} {hi}"
        );
        // Tied values: the floor stands in for s.
        let (lo, hi) = t_interval(&[1.0, 1.0, 1.0], 0.95, 1.0).unwrap();
        assert!(
            (lo - (1.0 - half)).abs() < 1e-6 && (hi - (1.0 + half)).abs() < 1e-6,
            "{lo} {hi}"
        );
        assert_eq!(t_interval(&[1.0], 0.95, 0.0), None);
    }

    #[test]
    fn ln_gamma_of_known_values() {
        for (x, want) in [
            (1.0, 0.0),
            (2.0, 0.0),
            (5.0, 24f64.ln()),
            (0.5, std::f64::consts::PI.sqrt().ln()),
        ] {
            assert!((ln_gamma(x) - want).abs() < 1e-12, "lnΓ({x})");
        }
    }

    #[test]
    fn t_quantiles_equal_the_published_tables() {
        // Two-sided 95% (the old table), 99% and 99.9% quantiles (standard t tables, 4 decimals).
        for (p, df, want) in [
            (0.975, 1.0, 12.7062),
            (0.975, 2.0, 4.3027),
            (0.975, 9.0, 2.2622),
            (0.975, 30.0, 2.0423),
            (0.995, 9.0, 3.2498),
            (0.995, 4.0, 4.6041),
            (0.9995, 4.0, 8.6103),
            (0.9995, 20.0, 3.8495),
            (0.95, 9.0, 1.8331),
            (0.95, 1000.0, 1.6464),
        ] {
            let q = t_quantile(p, df);
            assert!((q - want).abs() < 6e-5, "t({p}, {df}) = {q}, table {want}");
        }
        // The CDF inverts the quantile and is symmetric.
        assert!((t_cdf(t_quantile(0.99, 7.0), 7.0) - 0.99).abs() < 1e-10);
        assert!((t_cdf(-1.3, 5.0) + t_cdf(1.3, 5.0) - 1.0).abs() < 1e-12);
        // Tails beyond 1 - p's float resolution keep their precision: with 1 df (Cauchy) the
        // upper tail is 1/2 - atan(q)/pi, so q = cot(pi tail).
        for tail in [1e-3, 1e-9, 1e-20] {
            let want = 1.0 / (std::f64::consts::PI * tail).tan();
            let q = t_upper_quantile(tail, 1.0);
            assert!(
                (q / want - 1.0).abs() < 1e-9,
                "t_upper({tail}, 1) = {q}, closed form {want}"
            );
        }
        assert!((t_upper_quantile(0.0005, 3.0) - 12.9240).abs() < 6e-4);
    }

    #[test]
    fn normal_tails_equal_the_published_tables() {
        // Standard normal table: P(Z > 1.96) = 0.0249979, P(Z > 3) = 0.0013499,
        // P(Z > 2.5758) = 0.005; quantiles 1.959964 (0.025) and 3.290527 (0.0005).
        for (z, tail) in [(1.96, 0.024_997_9), (3.0, 0.001_349_9), (2.575_829, 0.005)] {
            assert!(
                (normal_upper(z) / tail - 1.0).abs() < 1e-5,
                "P(Z > {z}) = {}",
                normal_upper(z)
            );
        }
        assert!((normal_upper_quantile(0.025) - 1.959_964).abs() < 2e-6);
        assert!((normal_upper_quantile(0.0005) - 3.290_527).abs() < 2e-6);
        assert!((normal_upper(-1.0) + normal_upper(1.0) - 1.0).abs() < 1e-7);
    }
}
