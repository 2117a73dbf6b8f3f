//! Inline SVG charts drawn in Rust: scales, ticks and the few chart shapes
//! the report needs. No script runs in the page, so the charts render with
//! JavaScript off, need no library and cost a few kilobytes each.
//!
//! Every chart is one `<svg data-chart="NAME">`; each drawn datum carries
//! `class="mark"`, which the browser test counts.

use std::fmt::Write as _;

/// Colour-blind-safe palette (Okabe–Ito), indexed by segment id.
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D1F", "#332288",
];

/// Grey for rule-based segments (not found by KMeans).
pub const RULE_GREY: &str = "#8a8a8a";

/// Colour of a segment: KMeans segments from the palette, rule-based grey.
pub fn segment_colour(segment: u32, k: u32) -> &'static str {
    if segment >= k {
        RULE_GREY
    } else {
        PALETTE[segment as usize % PALETTE.len()]
    }
}

/// Escape text for HTML and SVG content and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A short label for a number: 3 significant digits, k/M suffixes.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        return "–".to_owned();
    }
    if a >= 1e9 {
        format!("{:.1}B", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".to_owned()
    } else {
        format!("{v:.3}")
    }
}

/// Linear or log10 mapping from data to pixels.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
    log: bool,
}

impl Scale {
    pub fn linear(d0: f64, d1: f64, r0: f64, r1: f64) -> Scale {
        let d1 = if (d1 - d0).abs() < f64::EPSILON {
            d0 + 1.0
        } else {
            d1
        };
        Scale {
            d0,
            d1,
            r0,
            r1,
            log: false,
        }
    }

    /// Log10 scale; both domain ends must be positive.
    pub fn log(d0: f64, d1: f64, r0: f64, r1: f64) -> Scale {
        let mut s = Scale::linear(d0.max(1e-9).log10(), d1.max(1e-9).log10(), r0, r1);
        s.log = true;
        s
    }

    pub fn map(&self, v: f64) -> f64 {
        let v = if self.log { v.max(1e-9).log10() } else { v };
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }

    /// Round tick values across the domain (powers of ten for log scales).
    pub fn ticks(&self, n: usize) -> Vec<f64> {
        if self.log {
            let lo = self.d0.floor() as i32;
            let hi = self.d1.ceil() as i32;
            return (lo..=hi)
                .map(|e| 10f64.powi(e))
                .filter(|v| {
                    let l = v.log10();
                    l >= self.d0 - 1e-9 && l <= self.d1 + 1e-9
                })
                .collect();
        }
        nice_ticks(self.d0.min(self.d1), self.d0.max(self.d1), n)
    }
}

/// About `n` round ticks covering `lo..=hi`.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || n == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    let mut out = Vec::new();
    let mut v = first;
    while v <= hi + step * 1e-9 && out.len() < 50 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

/// The opening tag of a chart.
pub fn open(chart: &str, width: f64, height: f64, title: &str) -> String {
    format!(
        r#"<svg data-chart="{}" class="chart" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(chart),
        esc(title),
        esc(title)
    )
}

/// One horizontal bar of [`hbars`].
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub colour: String,
    /// Text printed at the bar's end.
    pub text: String,
}

/// Horizontal bars on a shared linear scale from 0 to `max` (or the
/// largest value).
pub fn hbars(
    chart: &str,
    title: &str,
    bars: &[Bar],
    label_w: f64,
    width: f64,
    max: Option<f64>,
) -> String {
    let row = 24.0;
    let top = 6.0;
    let height = top * 2.0 + row * bars.len().max(1) as f64;
    let text_w = 100.0;
    let x = Scale::linear(
        0.0,
        max.unwrap_or_else(|| bars.iter().map(|b| b.value).fold(0.0, f64::max)),
        label_w,
        width - text_w,
    );
    let mut s = open(chart, width, height, title);
    for (i, b) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let w = (x.map(b.value.max(0.0)) - label_w).max(if b.value > 0.0 { 1.5 } else { 0.0 });
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="lbl" text-anchor="end">{}</text><rect class="mark" x="{label_w:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" class="val">{}</text>"#,
            label_w - 8.0,
            y + row * 0.66,
            esc(&b.label),
            y + 3.0,
            row - 6.0,
            esc(&b.colour),
            esc(&b.label),
            esc(&b.text),
            label_w + w + 6.0,
            y + row * 0.66,
            esc(&b.text)
        );
    }
    s.push_str("</svg>");
    s
}

/// One small line panel of a criterion over k, the chosen k marked.
pub fn k_panel(
    chart: &str,
    title: &str,
    hint: &str,
    points: &[(f64, f64)],
    chosen: f64,
    dimmed: &[f64],
) -> String {
    let (w, h) = (250.0, 180.0);
    let (l, r, t, b) = (46.0, 12.0, 38.0, 26.0);
    let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .collect();
    let (x0, x1) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let (mut y0, mut y1) = (
        ys.iter().copied().fold(f64::INFINITY, f64::min),
        ys.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    if !y0.is_finite() || !y1.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.1).max(1e-6);
    let sx = Scale::linear(x0, x1, l + 8.0, w - r - 8.0);
    let sy = Scale::linear(y0 - pad, y1 + pad, h - b, t);
    let mut s = open(chart, w, h, title);
    let _ = write!(
        s,
        r#"<text x="8" y="14" class="ptitle">{}</text><text x="8" y="28" class="tick">{}</text>"#,
        esc(title),
        esc(hint)
    );
    for v in sy.ticks(3) {
        let y = sy.map(v);
        let _ = write!(
            s,
            r#"<line x1="{l:.0}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{:.0}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            w - r,
            l - 4.0,
            y + 3.5,
            short(v)
        );
    }
    for &x in &xs {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.0}" class="tick" text-anchor="middle">{}</text>"#,
            sx.map(x),
            h - 8.0,
            x
        );
    }
    let cx = sx.map(chosen);
    let _ = write!(
        s,
        r#"<rect x="{:.1}" y="{t:.0}" width="16" height="{:.0}" class="chosen"/>"#,
        cx - 8.0,
        h - b - t
    );
    let path: Vec<String> = points
        .iter()
        .filter(|p| p.1.is_finite())
        .map(|&(x, y)| format!("{:.1},{:.1}", sx.map(x), sy.map(y)))
        .collect();
    let _ = write!(s, r#"<polyline points="{}" class="line"/>"#, path.join(" "));
    for &(x, y) in points.iter().filter(|p| p.1.is_finite()) {
        let class = if x == chosen {
            "mark pick"
        } else if dimmed.contains(&x) {
            "mark dim"
        } else {
            "mark pt"
        };
        let _ = write!(
            s,
            r#"<circle class="{class}" cx="{:.1}" cy="{:.1}" r="{}"><title>k = {x}: {}</title></circle>"#,
            sx.map(x),
            sy.map(y),
            if x == chosen { 5.0 } else { 3.5 },
            short(y)
        );
    }
    s.push_str("</svg>");
    s
}

/// A scatter point.
pub struct Point {
    pub x: f64,
    /// `None` draws the point on the "no spend" strip below the log axis.
    pub y: Option<f64>,
    pub colour: &'static str,
}

/// Scatter with a linear x axis and a log10 y axis.
pub fn scatter(chart: &str, title: &str, pts: &[Point], x_label: &str, y_label: &str) -> String {
    let (w, h) = (720.0, 400.0);
    let (l, r, t, b) = (64.0, 16.0, 12.0, 60.0);
    let strip = 22.0;
    let xmax = pts.iter().map(|p| p.x).fold(1.0, f64::max);
    let ys = pts.iter().filter_map(|p| p.y).filter(|v| *v > 0.0);
    let (ymin, ymax) = ys.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (ymin, ymax) = if ymin.is_finite() {
        (
            10f64.powf(ymin.log10().floor()),
            10f64.powf(ymax.log10().ceil()),
        )
    } else {
        (1.0, 10.0)
    };
    let sx = Scale::linear(0.0, xmax * 1.02, l, w - r);
    let sy = Scale::log(ymin, ymax, h - b - strip, t);
    let mut s = open(chart, w, h, title);
    for v in sy.ticks(6) {
        let y = sy.map(v);
        let _ = write!(
            s,
            r#"<line x1="{l:.0}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{:.0}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            w - r,
            l - 5.0,
            y + 3.5,
            short(v)
        );
    }
    let strip_y = h - b - strip / 2.0 + 4.0;
    let _ = write!(
        s,
        r#"<text x="{:.0}" y="{:.1}" class="tick" text-anchor="end">no spend</text>"#,
        l - 5.0,
        strip_y + 3.5
    );
    for v in sx.ticks(8) {
        let x = sx.map(v);
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{t:.0}" y2="{:.0}" class="grid"/><text x="{x:.1}" y="{:.0}" class="tick" text-anchor="middle">{}</text>"#,
            h - b,
            h - b + 16.0,
            short(v)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.0}" y="{:.0}" class="axis" text-anchor="middle">{}</text><text transform="translate(14 {:.0}) rotate(-90)" class="axis" text-anchor="middle">{}</text>"#,
        (l + w - r) / 2.0,
        h - b + 40.0,
        esc(x_label),
        (t + h - b) / 2.0,
        esc(y_label)
    );
    for p in pts {
        let y = match p.y {
            Some(v) if v > 0.0 => sy.map(v),
            _ => strip_y,
        };
        let _ = write!(
            s,
            r#"<circle class="mark" cx="{:.1}" cy="{y:.1}" r="2.6" fill="{}"/>"#,
            sx.map(p.x),
            p.colour
        );
    }
    s.push_str("</svg>");
    s
}

/// A matrix of numbers as a heat map (e.g. segment transitions).
pub fn heatmap(
    chart: &str,
    title: &str,
    rows: &[String],
    cols: &[String],
    cells: &[Vec<f64>],
) -> String {
    let cell_w = 72.0;
    let cell_h = 28.0;
    let (l, t) = (150.0, 30.0);
    let w = l + cell_w * cols.len().max(1) as f64 + 10.0;
    let h = t + cell_h * rows.len().max(1) as f64 + 10.0;
    let max = cells
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut s = open(chart, w, h, title);
    for (j, c) in cols.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.0}" class="tick" text-anchor="middle">{}</text>"#,
            l + cell_w * (j as f64 + 0.5),
            t - 10.0,
            esc(c)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = t + cell_h * i as f64;
        let _ = write!(
            s,
            r#"<text x="{:.0}" y="{:.1}" class="lbl" text-anchor="end">{}</text>"#,
            l - 8.0,
            y + cell_h * 0.62,
            esc(r)
        );
        for (j, v) in cells
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let a = if max > 0.0 {
                (v / max).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let x = l + cell_w * j as f64;
            let _ = write!(
                s,
                r#"<rect class="mark" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="rgba(0,114,178,{:.3})" stroke="white"/><text x="{:.1}" y="{:.1}" class="cell" text-anchor="middle">{}</text>"#,
                cell_w - 2.0,
                cell_h - 2.0,
                0.08 + 0.85 * a,
                x + cell_w / 2.0,
                y + cell_h * 0.62,
                short(*v)
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_domain() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        let t = nice_ticks(0.53, 0.72, 3);
        assert!(t.iter().all(|v| (0.53..=0.72).contains(v)), "{t:?}");
        let log = Scale::log(1.0, 1000.0, 100.0, 0.0);
        assert_eq!(log.ticks(4), vec![1.0, 10.0, 100.0, 1000.0]);
        assert!((log.map(10.0) - 66.666).abs() < 0.01);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc(r#"<a & "b">"#), "&lt;a &amp; &quot;b&quot;&gt;");
    }

    #[test]
    fn every_bar_is_a_mark() {
        let bars: Vec<Bar> = (0..3)
            .map(|i| Bar {
                label: format!("b{i}"),
                value: f64::from(i),
                colour: "#000".to_owned(),
                text: i.to_string(),
            })
            .collect();
        let svg = hbars("t", "T", &bars, 100.0, 400.0, None);
        assert_eq!(svg.matches(r#"class="mark""#).count(), 3);
        assert!(svg.starts_with(r#"<svg data-chart="t""#));
    }
}
