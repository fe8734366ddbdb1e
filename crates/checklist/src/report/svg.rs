//! Small inline SVG charts for the report: a line chart and a bar chart with intervals.

/// A qualitative palette (Tableau 10), one colour per series.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

/// Escapes text for XML and HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// About five round tick values covering [lo, hi].
pub fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if hi <= lo || !hi.is_finite() || !lo.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Maps data coordinates to the plot area.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        self.left + (v - self.x0) / (self.x1 - self.x0).max(1e-12) * self.width
    }
    fn y(&self, v: f64) -> f64 {
        self.top + self.height - (v - self.y0) / (self.y1 - self.y0).max(1e-12) * self.height
    }
}

fn fmt_tick(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e4) {
        format!("{v:.0e}")
    } else {
        format!("{}", (v * 1e6).round() / 1e6)
    }
}

/// A line chart of named series, with axes, ticks and a legend.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    marked_line_chart(title, x_label, y_label, series, &[])
}

/// A line chart whose points are dots, with one point of a series ringed: `marks[i]` is the
/// index of series i's marked point (e.g. the chosen tuning candidate). Without marks, plain
/// lines.
pub fn marked_line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    marks: &[Option<usize>],
) -> String {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = (y1 - y0).max(1e-9) * 0.05;
    let f = Frame {
        x0,
        x1,
        y0: y0 - pad,
        y1: y1 + pad,
        left: 60.0,
        top: 30.0,
        width: 250.0,
        height: 220.0,
    };
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="480" height="300" viewBox="0 0 480 300" role="img"><title>{}</title><text x="60" y="18" class="t">{}</text>"#,
        esc(title),
        esc(title)
    );
    s.push_str(&axes(&f, x_label, y_label));
    for (i, (name, p)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let path: Vec<String> = p.iter().map(|&(x, y)| format!("{:.1},{:.1}", f.x(x), f.y(y))).collect();
        s.push_str(&format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"#,
            path.join(" ")
        ));
        if !marks.is_empty() {
            for (k, &(x, y)) in p.iter().enumerate() {
                let (cx, cy) = (f.x(x), f.y(y));
                s.push_str(&format!(r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3" fill="{color}"/>"#));
                if marks.get(i).copied().flatten() == Some(k) {
                    s.push_str(&format!(
                        r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="7" fill="none" stroke="{color}" stroke-width="2"><title>chosen</title></circle>"#
                    ));
                }
            }
        }
        let ly = 40.0 + 18.0 * i as f64;
        s.push_str(&format!(
            r#"<line x1="318" x2="334" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="338" y="{:.0}" class="l">{}</text>"#,
            ly + 4.0,
            esc(name)
        ));
    }
    s.push_str("</svg>");
    s
}

fn axes(f: &Frame, x_label: &str, y_label: &str) -> String {
    let mut s = format!(
        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        f.left, f.top, f.width, f.height
    );
    for t in ticks(f.x0, f.x1) {
        let x = f.x(t);
        s.push_str(&format!(
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#999"/><text x="{x:.1}" y="{}" class="k" text-anchor="middle">{}</text>"##,
            f.top + f.height,
            f.top + f.height + 4.0,
            f.top + f.height + 16.0,
            fmt_tick(t)
        ));
    }
    for t in ticks(f.y0, f.y1) {
        let y = f.y(t);
        s.push_str(&format!(
            r##"<line x1="{}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" class="k" text-anchor="end">{}</text>"##,
            f.left,
            f.left + f.width,
            f.left - 4.0,
            y + 4.0,
            fmt_tick(t)
        ));
    }
    s.push_str(&format!(
        r#"<text x="{:.0}" y="{:.0}" class="k" text-anchor="middle">{}</text><text x="14" y="{:.0}" class="k" text-anchor="middle" transform="rotate(-90 14 {:.0})">{}</text>"#,
        f.left + f.width / 2.0,
        f.top + f.height + 32.0,
        esc(x_label),
        f.top + f.height / 2.0,
        f.top + f.height / 2.0,
        esc(y_label)
    ));
    s
}

/// One bar of [`interval_chart`]: label, value, the helps/hurts and equivalence intervals,
/// colour.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub interval: Option<(f64, f64)>,
    pub eq_interval: Option<(f64, f64)>,
    pub color: &'static str,
}

/// What the x axis of [`interval_chart`] shows beside the bars: the equivalence margin as a
/// shaded band, and the values the metric allows (intervals are clipped to them; a clipped end
/// is drawn as an arrow head).
#[derive(Clone, Copy, Debug, Default)]
pub struct Axis {
    pub margin: Option<f64>,
    pub bounds: Option<(f64, f64)>,
}

impl Axis {
    fn clip(&self, x: f64) -> f64 {
        self.bounds.map_or(x, |(lo, hi)| x.clamp(lo, hi))
    }
}

/// Horizontal bars from 0 to each value, the helps/hurts interval as black whiskers and the
/// equivalence interval as a blue line below it, over the shaded margin band; a line marks 0.
pub fn interval_chart(title: &str, x_label: &str, bars: &[Bar], axis: Axis) -> String {
    let m = axis.margin.unwrap_or(0.0);
    let (mut lo, mut hi) = (-m, m);
    for b in bars {
        for (l, h) in [b.interval, b.eq_interval].into_iter().flatten() {
            (lo, hi) = (lo.min(axis.clip(l)), hi.max(axis.clip(h)));
        }
        (lo, hi) = (lo.min(b.value), hi.max(b.value));
    }
    let pad = (hi - lo).max(1e-6) * 0.05;
    let row = 26.0;
    let height = row * bars.len() as f64;
    let f = Frame {
        x0: lo - pad,
        x1: hi + pad,
        y0: 0.0,
        y1: 1.0,
        left: 230.0,
        top: 30.0,
        width: 400.0,
        height,
    };
    let total_h = height + 86.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="680" height="{total_h:.0}" viewBox="0 0 680 {total_h:.0}" role="img"><title>{}</title><text x="10" y="18" class="t">{}</text>"#,
        esc(title),
        esc(title)
    );
    if m > 0.0 {
        s.push_str(&format!(
            r##"<rect x="{:.1}" y="{}" width="{:.1}" height="{height}" fill="#dbe9f6"><title>equivalence margin ±{m}</title></rect>"##,
            f.x(-m),
            f.top,
            f.x(m) - f.x(-m)
        ));
    }
    for t in ticks(f.x0, f.x1) {
        let x = f.x(t);
        s.push_str(&format!(
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" class="k" text-anchor="middle">{}</text>"##,
            f.top,
            f.top + height,
            f.top + height + 16.0,
            fmt_tick(t)
        ));
    }
    for (i, b) in bars.iter().enumerate() {
        let yc = f.top + row * (i as f64 + 0.4);
        let (xa, xb) = (f.x(0.0).min(f.x(b.value)), f.x(0.0).max(f.x(b.value)));
        s.push_str(&format!(
            r#"<text x="{}" y="{:.1}" class="l" text-anchor="end">{}</text><rect x="{xa:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
            f.left - 6.0,
            yc + 4.0,
            esc(&b.label),
            yc - row * 0.3,
            (xb - xa).max(1.0),
            row * 0.55,
            b.color
        ));
        if let Some(iv) = b.interval {
            s.push_str(&whisker(&f, axis, iv, yc, "#222"));
        }
        if let Some(iv) = b.eq_interval {
            s.push_str(&whisker(&f, axis, iv, yc + row * 0.42, "#1f5fa8"));
        }
    }
    let z = f.x(0.0);
    s.push_str(&format!(
        r##"<line x1="{z:.1}" x2="{z:.1}" y1="{}" y2="{}" stroke="#333"/><text x="{:.0}" y="{:.0}" class="k" text-anchor="middle">{}</text><text x="10" y="{:.0}" class="k">black: helps/hurts interval, blue: equivalence interval, band: ±margin, arrow: clipped to the metric's range</text></svg>"##,
        f.top - 4.0,
        f.top + height + 4.0,
        f.left + f.width / 2.0,
        f.top + height + 34.0,
        esc(x_label),
        f.top + height + 52.0,
    ));
    s
}

/// One interval at height `y`: a line with end ticks, or an arrow head where `axis` clipped it.
fn whisker(f: &Frame, axis: Axis, (l, h): (f64, f64), y: f64, color: &str) -> String {
    let (cl, ch) = (axis.clip(l), axis.clip(h));
    let (xl, xh) = (f.x(cl), f.x(ch));
    let end = |x: f64, clipped: bool, dir: f64| {
        if clipped {
            format!(
                r#"<path d="M{x:.1} {y:.1} l{:.1} -4 v8 z" fill="{color}"/>"#,
                -6.0 * dir
            )
        } else {
            format!(
                r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}"/>"#,
                y - 4.0,
                y + 4.0
            )
        }
    };
    format!(
        r#"<line x1="{xl:.1}" x2="{xh:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{color}" stroke-width="1.5"/>{}{}"#,
        end(xl, cl != l, -1.0),
        end(xh, ch != h, 1.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(ticks(-3.0, 7.0), vec![-2.0, 0.0, 2.0, 4.0, 6.0]);
        assert_eq!(ticks(5.0, 5.0), vec![5.0]);
    }

    #[test]
    fn charts_escape_labels_and_draw_every_series() {
        let svg = line_chart(
            "a<b",
            "x",
            "y",
            &[
                ("s&1".into(), vec![(0.0, 1.0), (1.0, 2.0)]),
                ("s2".into(), vec![(0.0, 0.0)]),
            ],
        );
        assert!(svg.contains("a&lt;b") && svg.contains("s&amp;1"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        let bars = [Bar {
            label: "v".into(),
            value: -0.5,
            interval: Some((-1.0, 0.2)),
            eq_interval: Some((-0.8, -0.2)),
            color: "#000",
        }];
        let svg = interval_chart("t", "x", &bars, Axis::default());
        assert_eq!(svg.matches("<rect").count(), 1);
        assert!(svg.ends_with("</svg>"));
        // The margin band, and an interval clipped at the metric's bound drawn with an arrow.
        let bars = [Bar {
            interval: Some((-5.0, 0.2)),
            ..bars.into_iter().next().unwrap()
        }];
        let axis = Axis {
            margin: Some(0.5),
            bounds: Some((-2.0, 3.0)),
        };
        let svg = interval_chart("t", "x", &bars, axis);
        assert!(svg.contains("equivalence margin ±0.5"), "{svg}");
        assert_eq!(svg.matches("<path").count(), 1, "one clipped end: {svg}");
    }
}
