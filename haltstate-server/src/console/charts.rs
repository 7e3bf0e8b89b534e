//! Pictures for the overview, drawn on the server as inline SVG (no script, no other origin: the page's CSP holds).
//! Each picture carries a title and a text description of its figures for screen readers; the figures are also on
//! the page as text.

use maud::{Markup, html};

/// One series of a stacked chart: its name and colour.
pub(crate) struct Series {
    pub(crate) name: &'static str,
    pub(crate) colour: &'static str,
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 200;
const LEFT: u32 = 44;
const BOTTOM: u32 = 24;
const TOP: u32 = 8;

/// Height in pixels of `value` on a scale whose top is `max`.
fn scaled(value: u64, max: u64, pixels: u32) -> f64 {
    if max == 0 {
        return 0.0;
    }
    value as f64 * f64::from(pixels) / max as f64
}

/// Stacked columns, one per bucket (`buckets[i][s]`: series `s` in bucket `i`), `labels` under some columns.
pub(crate) fn stacked_columns(
    id: &str,
    title: &str,
    series: &[Series],
    buckets: &[Vec<u64>],
    labels: &[(usize, String)],
) -> Markup {
    let max = buckets
        .iter()
        .map(|bucket| bucket.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let plot = HEIGHT - BOTTOM - TOP;
    let slot = f64::from(WIDTH - LEFT) / buckets.len().max(1) as f64;
    let totals: Vec<String> = series
        .iter()
        .enumerate()
        .map(|(s, one)| {
            let total: u64 = buckets.iter().map(|b| b.get(s).copied().unwrap_or(0)).sum();
            format!("{} {total}", one.name)
        })
        .collect();
    html! {
        figure {
            svg id=(id) role="img" aria-labelledby=(format!("{id}-title {id}-desc")) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) {
                title id=(format!("{id}-title")) { (title) }
                desc id=(format!("{id}-desc")) { (totals.join(", ")) "; the highest column holds " (max) "." }
                line x1=(LEFT) y1=(TOP + plot) x2=(WIDTH) y2=(TOP + plot) stroke="#57606a" {}
                text x=(LEFT - 6) y=(TOP + 10) text-anchor="end" font-size="12" fill="#1d1d1f" { (max) }
                text x=(LEFT - 6) y=(TOP + plot) text-anchor="end" font-size="12" fill="#1d1d1f" { "0" }
                @for (i, bucket) in buckets.iter().enumerate() {
                    @let x = f64::from(LEFT) + slot * i as f64 + 1.0;
                    @let mut base = f64::from(TOP + plot);
                    @for (s, value) in bucket.iter().enumerate() {
                        @if *value > 0 {
                            @let h = scaled(*value, max, plot);
                            @let y = { base -= h; base };
                            rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{:.1}", (slot - 2.0).max(1.0))) height=(format!("{h:.1}"))
                                fill=(series.get(s).map_or("#57606a", |one| one.colour)) {
                                title { (series.get(s).map_or("", |one| one.name)) " " (value) }
                            }
                        }
                    }
                }
                @for (i, label) in labels {
                    text x=(format!("{:.1}", f64::from(LEFT) + slot * (*i as f64 + 0.5))) y=(HEIGHT - 6) text-anchor="middle" font-size="12" fill="#1d1d1f" { (label) }
                }
            }
            figcaption.legend {
                @for (s, one) in series.iter().enumerate() {
                    span { span.swatch style=(format!("background:{}", one.colour)) {} (one.name) " " strong { (buckets.iter().map(|b| b.get(s).copied().unwrap_or(0)).sum::<u64>()) } }
                }
            }
        }
    }
}

/// Horizontal bars, one per item, longest first as given.
pub(crate) fn bars(id: &str, title: &str, items: &[(String, u64)], colour: &str) -> Markup {
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let row = 26u32;
    let label = 200u32;
    let height = row * u32::try_from(items.len().max(1)).unwrap_or(1) + 4;
    let described: Vec<String> = items
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    html! {
        @if items.is_empty() { p.muted { "None." } } @else {
            svg id=(id) role="img" aria-labelledby=(format!("{id}-title {id}-desc")) viewBox=(format!("0 0 {WIDTH} {height}")) width=(WIDTH) height=(height) {
                title id=(format!("{id}-title")) { (title) }
                desc id=(format!("{id}-desc")) { (described.join(", ")) }
                @for (i, (name, n)) in items.iter().enumerate() {
                    @let y = row * u32::try_from(i).unwrap_or(0) + 2;
                    text x=(label - 8) y=(y + 17) text-anchor="end" font-size="13" fill="#1d1d1f" { (shorten(name)) }
                    rect x=(label) y=(y + 3) height=(row - 8) width=(format!("{:.1}", scaled(*n, max, WIDTH - label - 60).max(1.0))) fill=(colour) {}
                    text x=(format!("{:.1}", f64::from(label) + scaled(*n, max, WIDTH - label - 60) + 6.0)) y=(y + 17) font-size="13" fill="#1d1d1f" { (n) }
                }
            }
        }
    }
}

/// A name cut to fit the bars' label column.
fn shorten(name: &str) -> String {
    match name.char_indices().nth(28) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}
