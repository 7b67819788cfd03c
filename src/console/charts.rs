//! The console's charts, drawn as SVG on the server: no chart library to vendor, no script,
//! and a page that prints and works offline. Hand-written because the three charts are only
//! bars; a plotting crate would bring a rasteriser the console does not need.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Colours for series, in order (grade A first).
const PALETTE: [&str; 8] = [
    "#c0392b", "#d89b2b", "#3f6fd8", "#6b7487", "#7d3cb5", "#2c8c99", "#1b7f3b", "#b5651d",
];

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const PAD: f64 = 30.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Stacked bars: one bar per bucket (x), stacked by series; `rows` are (bucket, series, n).
/// Series named in `order` come first, in that order (grades hottest first), and take the
/// palette's colours in order.
pub fn stacked(title: &str, rows: &[(String, String, i64)], order: &[String]) -> String {
    let mut buckets: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut series: Vec<&str> = Vec::new();
    for (b, s, n) in rows {
        *buckets.entry(b).or_default().entry(s).or_default() += n;
        if !series.contains(&s.as_str()) {
            series.push(s);
        }
    }
    series.sort_by_key(|s| (order.iter().position(|o| o == s).unwrap_or(usize::MAX), *s));
    let top = buckets
        .values()
        .map(|m| m.values().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut svg = header(title);
    if buckets.is_empty() {
        empty(&mut svg);
    }
    let slot = (WIDTH - 2.0 * PAD) / buckets.len().max(1) as f64;
    for (i, (bucket, counts)) in buckets.iter().enumerate() {
        let x = PAD + i as f64 * slot + slot * 0.15;
        let mut y = HEIGHT - PAD;
        for (k, s) in series.iter().enumerate() {
            let n = counts.get(s).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let h = (n as f64 / top) * (HEIGHT - 2.0 * PAD);
            y -= h;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{} {}: {n}</title></rect>"#,
                slot * 0.7,
                PALETTE[k % PALETTE.len()],
                escape(bucket),
                escape(s)
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            x + slot * 0.35,
            HEIGHT - PAD + 12.0,
            escape(bucket.get(5..).unwrap_or(bucket))
        );
    }
    legend(&mut svg, &series);
    svg.push_str("</svg>");
    svg
}

/// One bar per label, heights as a share (0..=1), labelled with the percentage.
pub fn shares(title: &str, bars: &[(String, f64, String)]) -> String {
    let mut svg = header(title);
    if bars.is_empty() {
        empty(&mut svg);
    }
    let slot = (WIDTH - 2.0 * PAD) / bars.len().max(1) as f64;
    for (i, (label, share, note)) in bars.iter().enumerate() {
        let share = share.clamp(0.0, 1.0);
        let h = share * (HEIGHT - 2.0 * PAD);
        let x = PAD + i as f64 * slot + slot * 0.15;
        let y = HEIGHT - PAD - h;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{:.0}%</text><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            slot * 0.7,
            PALETTE[1],
            escape(label),
            escape(note),
            x + slot * 0.35,
            y - 3.0,
            share * 100.0,
            x + slot * 0.35,
            HEIGHT - PAD + 12.0,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn header(title: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{0}" class="chart"><text x="{PAD}" y="16" font-size="13" font-weight="bold">{0}</text><line x1="{PAD}" y1="{1}" x2="{2}" y2="{1}" stroke="#999"/>"##,
        escape(title),
        HEIGHT - PAD,
        WIDTH - PAD
    )
}

fn empty(svg: &mut String) {
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" font-size="12" fill="#6b7487" text-anchor="middle">nothing recorded in this period yet</text>"##,
        WIDTH / 2.0,
        HEIGHT / 2.0
    );
}

fn legend(svg: &mut String, series: &[&str]) {
    for (k, s) in series.iter().enumerate() {
        let x = WIDTH - PAD - 90.0;
        let y = 14.0 + k as f64 * 13.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{:.1}" width="9" height="9" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
            y - 8.0,
            PALETTE[k % PALETTE.len()],
            x + 13.0,
            y,
            escape(s)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_bars_draw_one_rect_per_nonzero_count_and_escape_labels() {
        let rows = vec![
            ("2026-12-01".to_string(), "A".to_string(), 3),
            ("2026-12-01".to_string(), "B".to_string(), 1),
            ("2026-12-02".to_string(), "<x>".to_string(), 2),
        ];
        let svg = stacked("Leads", &rows, &[]);
        assert_eq!(
            svg.matches("<rect x=").count(),
            3 + 3,
            "3 bars + 3 legend swatches"
        );
        assert!(svg.contains("&lt;x&gt;") && !svg.contains("<x>"));
    }
}
