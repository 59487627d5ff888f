//! The run as one self-contained HTML page: verdicts, the report's figures
//! and charts over time. Everything is inline (CSS, SVG drawn here, no
//! scripts or fonts from elsewhere) so the file can be attached to a CI run
//! and opened anywhere, offline. Every string from the report or the
//! timeline is escaped: report keys and phase names are data, not markup.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::timeline::{Timeline, TimelineSample};

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1f2328}\
main{max-width:1200px;margin:0 auto;padding:16px 20px 32px}\
h1{font-size:20px;margin:0 0 2px}\
h2{font-size:15px;margin:20px 0 8px}\
.meta{color:#59636e;margin:0}\
.verdict-summary{font-weight:600;margin:0 0 6px}\
.verdict-summary.fail{color:#cf222e}.verdict-summary.pass{color:#1a7f37}\
.verdicts{list-style:none;padding:0;margin:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:4px 12px}\
.verdicts li{background:#fff;border-left:4px solid #9a6700;border-radius:3px;padding:3px 8px;font-size:13px}\
.verdicts li.pass{border-color:#1a7f37}.verdicts li.fail{border-color:#cf222e;background:#fff0ee}\
.badge{display:inline-block;width:40px;font-weight:700;font-size:11px;color:#9a6700}\
.pass .badge{color:#1a7f37}.fail .badge{color:#cf222e}\
.limit{color:#59636e}\
.summary{columns:3 300px;column-gap:28px;background:#fff;border-radius:6px;padding:8px 12px}\
.kv{display:flex;justify-content:space-between;gap:10px;break-inside:avoid;border-bottom:1px solid #eef0f2;padding:1px 4px;font-size:12.5px}\
.kv .k{color:#59636e;overflow-wrap:anywhere}\
.kv .v{text-align:right;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}\
.kv.pass{background:#dafbe1}.kv.fail{background:#ffe3e0}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}\
figure{margin:0;background:#fff;border-radius:6px;padding:2px}\
svg{display:block;width:100%;height:auto}\
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:11px;fill:#59636e}\
svg .title{font-size:13px;font-weight:600;fill:#1f2328}\
svg .unit{font-weight:400;fill:#59636e}\
svg .phase{font-size:10px;fill:#8c959f}\
svg .empty{font-size:12px;fill:#8c959f}\
";

/// The page for a run. `report` is the JSON report (any shape; nested
/// objects are flattened to dotted keys). If it holds a `verdicts` array of
/// `{"name", "ok", "value", "limit"}` objects, they are listed first and
/// the summary rows whose key equals a verdict's name are highlighted.
pub fn render_html(title: &str, report: &Value, timeline: &Timeline) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = escape(title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main>\n<header><h1>{title}</h1>"
    );
    let _ = writeln!(out, "<p class=\"meta\">{}</p></header>", escape(&meta_line(report, timeline)));

    let verdicts = verdicts(report);
    if !verdicts.is_empty() {
        render_verdicts(&mut out, &verdicts);
    }

    let outcome: HashMap<&str, Option<bool>> = verdicts.iter().map(|v| (v.name.as_str(), v.ok)).collect();
    let mut rows = Vec::new();
    match report {
        Value::Object(map) => {
            for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "verdicts") {
                flatten(k, v, &mut rows);
            }
        }
        other => flatten("report", other, &mut rows),
    }
    if !rows.is_empty() {
        out.push_str("<h2>Summary</h2>\n<div class=\"summary\">\n");
        for (k, v) in &rows {
            let class = match outcome.get(k.as_str()) {
                Some(Some(true)) => " pass",
                Some(Some(false)) => " fail",
                _ => "",
            };
            let _ = writeln!(
                out,
                "<div class=\"kv{class}\"><span class=\"k\">{}</span><span class=\"v\">{}</span></div>",
                escape(k),
                escape(v)
            );
        }
        out.push_str("</div>\n");
    }

    out.push_str("<h2>Over time</h2>\n<div class=\"charts\">\n");
    let t: Vec<f64> = timeline.samples.iter().map(|s| s.t_s).collect();
    let phases = timeline.phase_starts();
    for chart in charts(&timeline.samples) {
        out.push_str("<figure>");
        render_chart(&mut out, &chart, &t, &phases);
        out.push_str("</figure>\n");
    }
    out.push_str("</div>\n</main></body></html>\n");
    out
}

/// `&`, `<`, `>` and both quotes, so the result is safe in text and in
/// attribute values alike.
pub fn escape(s: &str) -> String {
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

fn meta_line(report: &Value, timeline: &Timeline) -> String {
    let span = match (timeline.samples.first(), timeline.samples.last()) {
        (Some(a), Some(b)) => Some(b.t_s - a.t_s),
        _ => None,
    };
    let duration = report.get("duration_s").and_then(Value::as_f64).or(span).filter(|d| d.is_finite());
    let mut parts = vec![format!("Run time {}", duration.map_or_else(|| "unknown".to_owned(), fmt_duration))];
    parts.push(format!("{} samples", timeline.samples.len()));
    let phases = timeline.phase_starts();
    if !phases.is_empty() {
        let list: Vec<String> = phases.iter().map(|(t, p)| format!("{p} at {}", fmt_time(*t))).collect();
        parts.push(format!("phases: {}", list.join(", ")));
    }
    parts.join(" · ")
}

fn fmt_duration(secs: f64) -> String {
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let s = secs.round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 { format!("{h} h {m:02} min {s:02} s") } else { format!("{m} min {s:02} s") }
}

struct Verdict {
    name: String,
    ok: Option<bool>,
    value: String,
    limit: String,
}

fn verdicts(report: &Value) -> Vec<Verdict> {
    let Some(list) = report.get("verdicts").and_then(Value::as_array) else { return Vec::new() };
    list.iter()
        .map(|v| Verdict {
            name: v.get("name").map_or_else(|| "?".to_owned(), scalar),
            ok: v.get("ok").and_then(Value::as_bool),
            value: v.get("value").map_or_else(|| "-".to_owned(), scalar),
            limit: v.get("limit").map_or_else(|| "-".to_owned(), scalar),
        })
        .collect()
}

fn render_verdicts(out: &mut String, verdicts: &[Verdict]) {
    let failed = verdicts.iter().filter(|v| v.ok == Some(false)).count();
    let unknown = verdicts.iter().filter(|v| v.ok.is_none()).count();
    let (class, text) = match (failed, unknown) {
        (0, 0) => ("pass", format!("All {} checks passed", verdicts.len())),
        (0, u) => ("", format!("No check failed; {u} of {} undecided", verdicts.len())),
        (f, _) => ("fail", format!("{f} of {} checks failed", verdicts.len())),
    };
    let _ =
        writeln!(out, "<h2>Verdicts</h2>\n<p class=\"verdict-summary {class}\">{text}</p>\n<ul class=\"verdicts\">");
    for v in verdicts {
        let (class, badge) = match v.ok {
            Some(true) => ("pass", "PASS"),
            Some(false) => ("fail", "FAIL"),
            None => ("unknown", "?"),
        };
        let _ = writeln!(
            out,
            "<li class=\"{class}\"><span class=\"badge\">{badge}</span><b>{}</b> {} <span class=\"limit\">(limit {})</span></li>",
            escape(&v.name),
            escape(&v.value),
            escape(&v.limit)
        );
    }
    out.push_str("</ul>\n");
}

/// Nested objects as `a.b.c`, arrays as `a[0]`, each leaf as display text.
fn flatten(key: &str, v: &Value, rows: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&format!("{key}.{k}"), v, rows);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{key}[{i}]"), v, rows);
            }
        }
        Value::Object(_) => rows.push((key.to_owned(), "none".to_owned())),
        Value::Array(_) => rows.push((key.to_owned(), "[]".to_owned())),
        leaf => rows.push((key.to_owned(), scalar(leaf))),
    }
}

/// Display text for a JSON value: numbers to at most 3 decimals, strings
/// unquoted, `null` as a dash, anything nested as compact JSON.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "–".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => fmt_float(f),
            _ => group_digits(&n.to_string()),
        },
        other => other.to_string(),
    }
}

fn fmt_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-3..1e15).contains(&a) {
        return format!("{f:e}");
    }
    let s = format!("{f:.3}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
    if s == "-0" { "0".to_owned() } else { group_digits(s) }
}

/// `1200000.5` as `1 200 000.5` (narrow no-break spaces) from five integer
/// digits up, so counts of inputs and bytes read at a glance; shorter
/// numbers stay as they are.
fn group_digits(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = rest.split_once('.').map_or((rest, None), |(i, f)| (i, Some(f)));
    if int.len() < 5 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_owned();
    }
    let mut out = String::from(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

// ---- charts ----

struct Series {
    name: &'static str,
    color: &'static str,
    values: Vec<Option<f64>>,
}

struct Chart {
    title: &'static str,
    unit: &'static str,
    series: Vec<Series>,
}

const BLUE: &str = "#2563eb";
const ORANGE: &str = "#e8590c";

fn charts(samples: &[TimelineSample]) -> Vec<Chart> {
    let col = |f: fn(&TimelineSample) -> Option<f64>| samples.iter().map(f).collect::<Vec<_>>();
    let s = |name, color, values| Series { name, color, values };
    vec![
        Chart {
            title: "Players",
            unit: "",
            series: vec![
                s("bots playing", BLUE, col(|x| Some(x.players as f64))),
                s("node players", ORANGE, col(|x| x.node_players)),
            ],
        },
        Chart {
            title: "Join latency",
            unit: "ms",
            series: vec![s("p50", BLUE, col(|x| x.join_p50_ms)), s("p99", ORANGE, col(|x| x.join_p99_ms))],
        },
        Chart {
            title: "Round trip",
            unit: "ms",
            series: vec![s("p50", BLUE, col(|x| x.rtt_p50_ms)), s("p99", ORANGE, col(|x| x.rtt_p99_ms))],
        },
        Chart {
            title: "Snapshots per bot",
            unit: "per s",
            series: vec![s("snapshots", BLUE, col(|x| x.snapshots_per_bot_s))],
        },
        Chart {
            title: "CPU",
            unit: "cores",
            series: vec![
                s("node", BLUE, col(|x| x.node_cpu_cores)),
                s("loadgen", ORANGE, col(|x| x.loadgen_cpu_cores)),
            ],
        },
        Chart {
            title: "Node memory (RSS)",
            unit: "MiB",
            series: vec![s("node", BLUE, col(|x| x.node_rss_bytes.map(|b| b / (1024.0 * 1024.0))))],
        },
        Chart {
            title: "Bandwidth per bot",
            unit: "kB/s",
            series: vec![
                s("up", BLUE, col(|x| x.bytes_up_per_bot_s.map(|b| b / 1000.0))),
                s("down", ORANGE, col(|x| x.bytes_down_per_bot_s.map(|b| b / 1000.0))),
            ],
        },
    ]
}

const W: f64 = 560.0;
const H: f64 = 200.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 22.0;
/// Above this many points a series is thinned to each bucket's minimum and
/// maximum: a day at one sample a second would otherwise be megabytes of
/// path per chart, and min/max keeps the spikes visible.
const MAX_BUCKETS: usize = 500;

fn render_chart(out: &mut String, chart: &Chart, t: &[f64], phases: &[(f64, &str)]) {
    let (px0, px1, py0, py1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let finite_t = t.iter().copied().filter(|v| v.is_finite());
    let (mut x0, mut x1) = finite_t.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 - x0 <= 0.0 {
        x1 = x0 + 1.0;
    }
    let lines: Vec<Vec<Option<(f64, f64)>>> =
        chart.series.iter().map(|s| decimate(t, &s.values, MAX_BUCKETS)).collect();
    let (lo, hi) = lines
        .iter()
        .flatten()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| (lo.min(v), hi.max(v)));
    let has_data = lo <= hi;
    // Quantities here are rates, sizes and counts: anchor at zero so the
    // eye reads proportions right.
    let (y0, y1, ystep) = if has_data { axis(lo.min(0.0), hi) } else { (0.0, 1.0, 0.25) };
    let sx = |x: f64| px0 + (x - x0) / (x1 - x0) * (px1 - px0);
    let sy = |y: f64| py1 - (y - y0) / (y1 - y0) * (py1 - py0);

    let label =
        if chart.unit.is_empty() { String::new() } else { format!(" <tspan class=\"unit\">({})</tspan>", chart.unit) };
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\">\
         <text class=\"title\" x=\"{LEFT}\" y=\"16\">{}{label}</text>",
        escape(chart.title),
        escape(chart.title)
    );

    // Legend, right-aligned on the title line.
    let mut x = px1;
    for s in chart.series.iter().rev() {
        x -= s.name.chars().count() as f64 * 6.2 + 6.0;
        let _ = write!(out, "<text x=\"{x:.1}\" y=\"16\">{}</text>", escape(s.name));
        x -= 20.0;
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"12\" x2=\"{:.1}\" y2=\"12\" stroke=\"{}\" stroke-width=\"2.5\"/>",
            x + 14.0,
            s.color
        );
        x -= 12.0;
    }

    // Horizontal grid and y labels.
    let n = (((y1 - y0) / ystep).round() as usize).min(20);
    for i in 0..=n {
        let v = y0 + i as f64 * ystep;
        let y = sy(v);
        let _ = write!(
            out,
            "<line x1=\"{px0}\" y1=\"{y:.1}\" x2=\"{px1}\" y2=\"{y:.1}\" stroke=\"#eaecef\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            px0 - 5.0,
            y + 3.5,
            fmt_tick(v, ystep)
        );
    }
    // Time axis.
    let tstep = time_step(x1 - x0);
    let mut tick = (x0 / tstep).ceil() * tstep;
    let mut count = 0;
    while tick <= x1 + 1e-9 && count < 20 {
        let x = sx(tick);
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{py1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#8c959f\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            py1 + 4.0,
            py1 + 15.0,
            fmt_time(tick)
        );
        tick += tstep;
        count += 1;
    }
    let _ = write!(out, "<path d=\"M{px0} {py0}V{py1}H{px1}\" fill=\"none\" stroke=\"#8c959f\"/>");

    // Phase boundaries, each name clipped to the room before the next one.
    let inside: Vec<(f64, &str)> = phases.iter().copied().filter(|(t, _)| t.is_finite()).collect();
    for (i, &(t, name)) in inside.iter().enumerate() {
        let x = sx(t);
        let next = inside.get(i + 1).map_or(px1, |(t, _)| sx(*t));
        if x > px0 + 0.5 {
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{py0}\" x2=\"{x:.1}\" y2=\"{py1}\" stroke=\"#8c959f\" stroke-dasharray=\"4 3\"/>"
            );
        }
        let room = ((next - x - 6.0) / 5.6).floor().max(0.0) as usize;
        let shown: String = if name.chars().count() <= room {
            name.to_owned()
        } else if room >= 2 {
            name.chars().take(room - 1).chain(std::iter::once('…')).collect()
        } else {
            String::new()
        };
        if !shown.is_empty() {
            let _ = write!(
                out,
                "<text class=\"phase\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 3.0,
                py0 + 10.0,
                escape(&shown)
            );
        }
    }

    if !has_data {
        let _ = write!(
            out,
            "<text class=\"empty\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no data</text>",
            (px0 + px1) / 2.0,
            (py0 + py1) / 2.0
        );
    }
    for (i, (s, points)) in chart.series.iter().zip(&lines).enumerate() {
        // The first series is drawn wider, so a second one with the same
        // values (bots playing and node players) leaves it visible.
        let width = if i == 0 { 2.6 } else { 1.4 };
        for run in points.split(Option::is_none) {
            let run: Vec<(f64, f64)> = run.iter().flatten().map(|&(t, v)| (sx(t), sy(v))).collect();
            match run.as_slice() {
                [] => {}
                // A lone reading between gaps would be invisible as a path.
                [(x, y)] => {
                    let _ = write!(out, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\" fill=\"{}\"/>", s.color);
                }
                [(x, y), rest @ ..] => {
                    let _ = write!(out, "<path d=\"M{x:.1} {y:.1}");
                    for (x, y) in rest {
                        let _ = write!(out, "L{x:.1} {y:.1}");
                    }
                    let _ = write!(
                        out,
                        "\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\" stroke-linejoin=\"round\"/>",
                        s.color
                    );
                }
            }
        }
    }
    out.push_str("</svg>");
}

/// The points to draw, `None` marking a gap. Non-finite readings are gaps.
/// Beyond `2 * buckets` points, each bucket keeps its minimum and maximum
/// in time order; a bucket with no reading is a gap.
fn decimate(t: &[f64], v: &[Option<f64>], buckets: usize) -> Vec<Option<(f64, f64)>> {
    let point = |i: usize| match (t.get(i), v.get(i)) {
        (Some(&t), Some(&Some(v))) if t.is_finite() && v.is_finite() => Some((t, v)),
        _ => None,
    };
    let n = t.len().min(v.len());
    if n <= 2 * buckets.max(1) {
        return (0..n).map(point).collect();
    }
    let size = n.div_ceil(buckets);
    let mut out = Vec::with_capacity(2 * buckets);
    for start in (0..n).step_by(size) {
        let readings: Vec<(f64, f64)> = (start..(start + size).min(n)).filter_map(point).collect();
        let min = readings.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1));
        let max = readings.iter().enumerate().max_by(|a, b| a.1.1.total_cmp(&b.1.1));
        match (min, max) {
            (Some((i, &a)), Some((j, &b))) if i != j => {
                let (first, second) = if i < j { (a, b) } else { (b, a) };
                out.push(Some(first));
                out.push(Some(second));
            }
            (Some((_, &a)), _) => out.push(Some(a)),
            _ => out.push(None),
        }
    }
    out
}

/// A 1, 2, 2.5 or 5 times a power of ten step giving about four intervals,
/// and the axis bounds rounded out to it.
fn axis(lo: f64, hi: f64) -> (f64, f64, f64) {
    // A flat series still gets a few intervals above it.
    let hi = if hi > lo { hi } else { lo + lo.abs().max(1.0) };
    let span = hi - lo;
    let raw = span / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = match raw / mag {
        r if r <= 1.0 => 1.0,
        r if r <= 2.0 => 2.0,
        r if r <= 2.5 => 2.5,
        r if r <= 5.0 => 5.0,
        _ => 10.0,
    } * mag;
    if !(step.is_finite() && step > 0.0) {
        return (0.0, 1.0, 0.25);
    }
    let y0 = (lo / step).floor() * step;
    let mut y1 = (hi / step).ceil() * step;
    if y1 <= y0 {
        y1 = y0 + step;
    }
    (y0, y1, step)
}

/// Tick label with as few decimals as the step needs, large values scaled
/// with k/M/G.
fn fmt_tick(v: f64, step: f64) -> String {
    let (scale, suffix) = match step {
        s if s >= 1e9 => (1e9, "G"),
        s if s >= 1e6 => (1e6, "M"),
        s if s >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let s = step / scale;
    let decimals = (0..6).find(|&d| {
        let scaled = s * 10f64.powi(d);
        (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
    });
    let d = decimals.unwrap_or(6) as usize;
    // Adding 0.0 turns -0.0 into 0.0.
    format!("{:.d$}{suffix}", v / scale + 0.0)
}

/// A step for the time axis at round seconds, minutes or hours, giving at
/// most about seven ticks.
fn time_step(span: f64) -> f64 {
    const STEPS: [f64; 17] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
        43200.0,
    ];
    STEPS.iter().copied().find(|s| span / s <= 7.0).unwrap_or_else(|| (span / 7.0 / 86400.0).ceil().max(1.0) * 86400.0)
}

fn fmt_time(t: f64) -> String {
    if !t.is_finite() {
        return "?".to_owned();
    }
    let s = t.round() as i64;
    let (sign, s) = if s < 0 { ("-", -s) } else { ("", s) };
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m, sec) {
        (0, 0, s) => format!("{sign}{s}s"),
        (0, m, 0) => format!("{sign}{m}m"),
        (0, m, s) => format!("{sign}{m}:{s:02}"),
        (h, 0, 0) => format!("{sign}{h}h"),
        (h, m, 0) => format!("{sign}{h}h{m:02}"),
        (h, m, s) => format!("{sign}{h}:{m:02}:{s:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(t_s: f64, phase: &str) -> TimelineSample {
        TimelineSample {
            t_s,
            players: t_s as u64,
            joined_total: t_s as u64,
            rtt_p50_ms: Some(10.0 + t_s),
            rtt_p99_ms: if t_s as u64 % 10 == 5 { None } else { Some(20.0 + t_s) },
            node_rss_bytes: Some(64.0 * 1024.0 * 1024.0),
            phase: phase.into(),
            ..TimelineSample::default()
        }
    }

    fn timeline(n: usize) -> Timeline {
        let phase = |i| if i < n / 3 { "ramp" } else { "sustain" };
        Timeline { samples: (0..n).map(|i| sample(i as f64, phase(i))).collect() }
    }

    #[test]
    fn one_svg_per_chart_and_no_scripts() {
        let html = render_html("run", &json!({"bots_joined": 3}), &timeline(30));
        assert_eq!(html.matches("<svg").count(), 7);
        assert_eq!(html.matches("</svg>").count(), 7);
        for banned in ["<script", "https://", "@import", "url(", "<link"] {
            assert!(!html.contains(banned), "{banned}");
        }
        assert_eq!(html.matches("http://").count(), html.matches("http://www.w3.org/2000/svg").count());
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
        for title in ["Players", "Join latency", "Round trip", "Snapshots per bot", "CPU", "Node memory", "Bandwidth"] {
            assert!(html.contains(title), "{title}");
        }
    }

    #[test]
    fn hostile_text_is_escaped() {
        let evil = "<script>alert(\"x\")</script>&'";
        let report = json!({
            evil: evil,
            "nested": {"<b>": [evil]},
            "verdicts": [{"name": evil, "ok": false, "value": evil, "limit": 1}],
        });
        let mut tl = timeline(10);
        tl.samples[5].phase = evil.into();
        let html = render_html(evil, &report, &tl);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
        assert!(html.contains("<title>&lt;script&gt;"));
        assert!(html.contains("nested.&lt;b&gt;[0]"));
    }

    #[test]
    fn an_empty_timeline_renders() {
        let html = render_html("empty", &json!({}), &Timeline::default());
        assert_eq!(html.matches("<svg").count(), 7);
        assert_eq!(html.matches("no data").count(), 7);
        assert!(!html.contains("NaN") && !html.contains("inf"));
        let html = render_html("null", &Value::Null, &Timeline::default());
        assert!(html.contains("report"));
    }

    #[test]
    fn verdicts_are_listed_and_their_rows_highlighted() {
        let report = json!({
            "rtt_ms": {"p99": 12.5},
            "join_ms": {"p99": 900.0},
            "verdicts": [
                {"name": "rtt_ms.p99", "ok": true, "value": 12.5, "limit": 50},
                {"name": "join_ms.p99", "ok": false, "value": 900.0, "limit": 500},
            ],
        });
        let html = render_html("v", &report, &timeline(3));
        assert!(html.contains("1 of 2 checks failed"));
        assert!(html.contains("<li class=\"pass\"><span class=\"badge\">PASS</span><b>rtt_ms.p99</b> 12.5"));
        assert!(html.contains("<li class=\"fail\"><span class=\"badge\">FAIL</span><b>join_ms.p99</b> 900"));
        assert!(html.contains("<div class=\"kv pass\"><span class=\"k\">rtt_ms.p99</span>"));
        assert!(html.contains("<div class=\"kv fail\"><span class=\"k\">join_ms.p99</span>"));
        assert!(!html.contains("verdicts[0]"), "verdicts are not repeated in the summary");
        let all_ok = json!({"verdicts": [{"name": "a", "ok": true}]});
        assert!(render_html("v", &all_ok, &timeline(3)).contains("All 1 checks passed"));
    }

    #[test]
    fn flatten_makes_dotted_keys() {
        let mut rows = Vec::new();
        let v = json!({"a": {"b": 1, "c": [true, null]}, "d": {}, "e": 0.1234567, "f": "x", "g": []});
        for (k, v) in v.as_object().unwrap() {
            flatten(k, v, &mut rows);
        }
        let rows: Vec<(&str, &str)> = rows.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            rows,
            vec![
                ("a.b", "1"),
                ("a.c[0]", "true"),
                ("a.c[1]", "–"),
                ("d", "none"),
                ("e", "0.123"),
                ("f", "x"),
                ("g", "[]")
            ]
        );
        assert_eq!(fmt_float(2.0), "2");
        assert_eq!(fmt_float(-0.0001), "-1e-4");
        assert_eq!(fmt_float(1500.25), "1500.25");
        assert_eq!(fmt_float(-1234567.5), "-1\u{202f}234\u{202f}567.5");
        assert_eq!(scalar(&json!(1200000)), "1\u{202f}200\u{202f}000");
        assert_eq!(scalar(&json!(12000)), "12\u{202f}000");
        assert_eq!(scalar(&json!(9999)), "9999");
    }

    #[test]
    fn gaps_split_the_line() {
        // rtt p99 is missing every tenth second: 30 s give 4 runs.
        let html = render_html("gaps", &json!({}), &timeline(30));
        let rtt = html.split("<svg").nth(3).unwrap();
        assert!(rtt.contains("Round trip"));
        assert_eq!(rtt.matches("stroke=\"#e8590c\" stroke-width=\"1.4\"").count(), 4, "{rtt}");
        // A lone reading still shows, as a dot.
        let mut tl = Timeline { samples: (0..5).map(|i| sample(i as f64, "x")).collect() };
        for s in &mut tl.samples {
            s.join_p50_ms = None;
        }
        tl.samples[2].join_p50_ms = Some(42.0);
        let html = render_html("dot", &json!({}), &tl);
        assert_eq!(html.split("<svg").nth(2).unwrap().matches("<circle").count(), 1);
    }

    #[test]
    fn phase_boundaries_are_dashed_lines() {
        let html = render_html("p", &json!({}), &timeline(30));
        let chart = html.split("<svg").nth(1).unwrap();
        // The first phase starts at the axis, so only "sustain" gets a line.
        assert_eq!(chart.matches("stroke-dasharray").count(), 1);
        assert!(chart.contains(">ramp</text>") && chart.contains(">sustain</text>"));
    }

    #[test]
    fn decimation_bounds_the_points_and_keeps_spikes() {
        let n = 100_000;
        let t: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut v: Vec<Option<f64>> = (0..n).map(|_| Some(1.0)).collect();
        v[54_321] = Some(99.0);
        for x in &mut v[10_000..20_000] {
            *x = None;
        }
        let d = decimate(&t, &v, 500);
        assert!(d.len() <= 1000, "{}", d.len());
        assert!(d.iter().flatten().any(|&(_, v)| v == 99.0));
        assert!(d.iter().any(Option::is_none));
        assert_eq!(decimate(&[0.0, 1.0], &[Some(f64::NAN), Some(1.0)], 500), vec![None, Some((1.0, 1.0))]);
    }

    #[test]
    fn axes_are_round() {
        assert_eq!(axis(0.0, 87.0), (0.0, 100.0, 25.0));
        assert_eq!(axis(0.0, 3.2), (0.0, 4.0, 1.0));
        assert_eq!(axis(0.0, 0.0), (0.0, 1.0, 0.25));
        assert_eq!(axis(-3.0, 7.0), (-5.0, 7.5, 2.5));
        assert_eq!(fmt_tick(2500.0, 500.0), "2500");
        assert_eq!(fmt_tick(25_000.0, 2500.0), "25.0k");
        assert_eq!(fmt_tick(0.5, 0.25), "0.50");
        assert_eq!(fmt_tick(75e6, 25e6), "75M");
        assert_eq!(time_step(30.0), 5.0);
        assert_eq!(time_step(3600.0), 600.0);
        assert_eq!(fmt_time(90.0), "1:30");
        assert_eq!(fmt_time(600.0), "10m");
        assert_eq!(fmt_time(5400.0), "1h30");
        assert_eq!(fmt_duration(3725.0), "1 h 02 min 05 s");
    }

    #[test]
    fn odd_numbers_do_not_break_the_page() {
        let mut tl = timeline(5);
        tl.samples[1].rtt_p50_ms = Some(f64::INFINITY);
        tl.samples[2].t_s = f64::NAN;
        tl.samples[3].node_cpu_cores = Some(1e300);
        tl.samples[4].node_cpu_cores = Some(-1e300);
        let html = render_html("odd", &json!({"duration_s": 1e308}), &tl);
        assert_eq!(html.matches("<svg").count(), 7);
        assert!(!html.contains("NaN"));
    }
}
