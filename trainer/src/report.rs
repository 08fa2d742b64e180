//! Reports over training runs: a Markdown table and a JSON file with the mean and standard
//! deviation of the final measures per method, and an SVG plot of dev nDCG@10 against training
//! steps (mean over seeds, with a ±1 s.d. band). Everything is written atomically, and the same
//! runs always give byte-identical files. `adam report` and `adam demo` write them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use adam_core::data::for_each_line;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::io::{AtomicFile, open};
use crate::svg::{self, xml_escape};

/// The measures a report tabulates, in column order (`adam eval --json` names).
pub const REPORTED: [&str; 3] = ["ndcg@10", "mrr@10", "recall@100"];
/// The dev measure plotted against steps.
pub const DEV_MEASURE: &str = "ndcg@10";

pub const TABLE_FILE: &str = "report.md";
pub const JSON_FILE: &str = "report.json";
pub const PLOT_FILE: &str = "dev_ndcg10.svg";

/// One finished training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The method's name; runs with the same name are seeds of one method.
    pub method: String,
    /// `None` for a reference row that was not trained (BM25, a teacher's reranking): JSON `null`.
    pub seed: Option<u64>,
    /// Final measures by name, as `adam eval --json` prints them (`Measures::to_map`); must
    /// include [`REPORTED`].
    pub metrics: BTreeMap<String, f64>,
    /// The run's training log, JSON lines. Lines with a `dev` object (and an integer `step`) are
    /// dev evaluations, e.g. `{"step":100,"dev":{"ndcg@10":0.41}}`; other lines are skipped.
    pub log: PathBuf,
}

/// Mean and sample standard deviation (n − 1) of one measure; `std` is `None` for one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub std: Option<f64>,
}

impl Summary {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std =
            (values.len() > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Self { mean, std }
    }
}

/// The dev measure at one step, over the seeds that evaluated at that step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DevPoint {
    pub step: u64,
    pub mean: f64,
    pub std: Option<f64>,
    pub runs: usize,
}

/// A method's summary, as written to `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodReport {
    pub method: String,
    pub runs: usize,
    /// The seeds of its trained runs; empty for a reference row.
    pub seeds: Vec<u64>,
    pub metrics: BTreeMap<String, Summary>,
    #[serde(rename = "dev_ndcg@10")]
    pub dev: Vec<DevPoint>,
}

#[derive(Serialize)]
struct ReportFile<'a> {
    std: &'static str,
    methods: &'a [MethodReport],
}

/// Writes `report.md`, `report.json` and `dev_ndcg10.svg` into `out_dir` (created if needed).
pub fn write_report(out_dir: &Path, runs: &[RunResult]) -> Result<()> {
    let methods = summarize(runs)?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    write_file(&out_dir.join(TABLE_FILE), &markdown(&methods))?;
    let json = serde_json::to_string_pretty(&ReportFile {
        std: "sample standard deviation (n - 1) over seeds; null for a method with one run",
        methods: &methods,
    })?;
    write_file(&out_dir.join(JSON_FILE), &(json + "\n"))?;
    write_file(&out_dir.join(PLOT_FILE), &svg_plot(&methods))?;
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.writer().write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    file.commit()
}

/// Groups runs by method (in order of first appearance) and summarises them.
pub fn summarize(runs: &[RunResult]) -> Result<Vec<MethodReport>> {
    if runs.is_empty() {
        bail!("no runs to report");
    }
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<&RunResult>> = HashMap::new();
    for run in runs {
        if run.method.trim().is_empty() {
            bail!("a run ({}) has an empty method name", seed_label(run.seed));
        }
        let group = groups.entry(run.method.as_str()).or_insert_with(|| {
            order.push(run.method.as_str());
            Vec::new()
        });
        if group.iter().any(|r| r.seed == run.seed) {
            bail!("method `{}` has two runs with {}", run.method, seed_label(run.seed));
        }
        for name in REPORTED {
            match run.metrics.get(name) {
                Some(v) if v.is_finite() => {}
                Some(v) => bail!("run `{}` {}: {name} is {v}", run.method, seed_label(run.seed)),
                None => bail!("run `{}` {}: no `{name}` in its metrics", run.method, seed_label(run.seed)),
            }
        }
        group.push(run);
    }
    order
        .into_iter()
        .map(|method| {
            let mut group = groups.remove(method).expect("grouped above");
            group.sort_by_key(|r| r.seed);
            let metrics = REPORTED
                .iter()
                .map(|&name| {
                    let values: Vec<f64> = group.iter().map(|r| r.metrics[name]).collect();
                    (name.to_string(), Summary::of(&values))
                })
                .collect();
            let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for run in &group {
                for (step, value) in read_dev_log(&run.log)? {
                    by_step.entry(step).or_default().push(value);
                }
            }
            let dev = by_step
                .into_iter()
                .map(|(step, values)| {
                    let s = Summary::of(&values);
                    DevPoint { step, mean: s.mean, std: s.std, runs: values.len() }
                })
                .collect();
            Ok(MethodReport {
                method: method.to_string(),
                runs: group.len(),
                seeds: group.iter().filter_map(|r| r.seed).collect(),
                metrics,
                dev,
            })
        })
        .collect()
}

/// How errors name a run's seed: "seed 3", or "no seed" for a reference row.
fn seed_label(seed: Option<u64>) -> String {
    seed.map_or_else(|| "no seed".to_string(), |s| format!("seed {s}"))
}

/// The (step, dev nDCG@10) pairs of a training log, in step order. Every non-blank line must be a
/// JSON object; errors name the file, the line and the field.
pub fn read_dev_log(path: &Path) -> Result<Vec<(u64, f64)>> {
    let mut points: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    for_each_line(open(path)?, path, |n, line| {
        let err = |field: &str, message: String| adam_core::Error::field(path, n, field, message);
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| adam_core::Error::format(path, Some(n), format!("not valid JSON: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(adam_core::Error::format(path, Some(n), "not a JSON object"));
        };
        let Some(dev) = object.get("dev") else { return Ok(()) };
        let step = object
            .get("step")
            .ok_or_else(|| err("step", "missing on a line with `dev`".into()))?
            .as_u64()
            .ok_or_else(|| err("step", format!("`{}` is not a non-negative integer", object["step"])))?;
        let dev = dev.as_object().ok_or_else(|| err("dev", "not an object of measures".into()))?;
        let field = format!("dev.{DEV_MEASURE}");
        let score = dev
            .get(DEV_MEASURE)
            .ok_or_else(|| err(&field, "missing".into()))?
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| err(&field, format!("`{}` is not a finite number", dev[DEV_MEASURE])))?;
        if let Some((_, first)) = points.insert(step, (score, n)) {
            return Err(err("step", format!("step {step} was already evaluated on line {first}")));
        }
        Ok(())
    })?;
    Ok(points.into_iter().map(|(step, (score, _))| (step, score)).collect())
}

fn markdown(methods: &[MethodReport]) -> String {
    let mut s = String::from("| method | runs |");
    for name in REPORTED {
        let _ = write!(s, " {name} |");
    }
    s.push_str("\n| --- | ---: |");
    s.push_str(&" ---: |".repeat(REPORTED.len()));
    s.push('\n');
    for m in methods {
        let _ = write!(s, "| {} | {} |", m.method.replace('|', "\\|"), m.runs);
        for name in REPORTED {
            let summary = m.metrics[name];
            match summary.std {
                Some(std) => {
                    let _ = write!(s, " {:.4} ± {std:.4} |", summary.mean);
                }
                None => {
                    let _ = write!(s, " {:.4} |", summary.mean);
                }
            }
        }
        s.push('\n');
    }
    s.push_str("\nMean ± sample standard deviation (n − 1) over seeds (a method with one run has no ± part).\n");
    for m in methods {
        let method = m.method.replace('|', "\\|");
        if m.seeds.is_empty() {
            let _ = writeln!(s, "- {method}: not trained");
        } else {
            let seeds: Vec<String> = m.seeds.iter().map(u64::to_string).collect();
            let _ = writeln!(s, "- {method}: seeds {}", seeds.join(", "));
        }
    }
    let _ = writeln!(s, "\n![dev nDCG@10 against training steps]({PLOT_FILE})");
    s
}

/// Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), yellow left
/// out as it is unreadable on white. Beyond seven methods colours repeat with a dash pattern.
const PALETTE: [&str; 7] = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000"];
const DASHES: [&str; 3] = ["", "6 3", "2 2"];
/// Rows that were not trained (BM25, the teacher) are dashed grey lines, apart from the methods.
const REFERENCE_GREYS: [&str; 3] = ["#000000", "#777777", "#BBBBBB"];

/// Method `i`'s place among the methods of its kind (trained, or not trained).
fn place_of(methods: &[MethodReport], i: usize) -> usize {
    methods[..i].iter().filter(|m| m.seeds.is_empty() == methods[i].seeds.is_empty()).count()
}

/// A method's colour in the plot: the palette in order for trained methods, greys for the rest.
fn colour_of(methods: &[MethodReport], i: usize) -> &'static str {
    if methods[i].seeds.is_empty() {
        REFERENCE_GREYS[place_of(methods, i) % REFERENCE_GREYS.len()]
    } else {
        PALETTE[place_of(methods, i) % PALETTE.len()]
    }
}

/// A method's dash pattern: solid for the first seven trained methods, then dashed, dotted;
/// rows that were not trained are dashed.
fn dash_of(methods: &[MethodReport], i: usize) -> &'static str {
    if methods[i].seeds.is_empty() { "8 4" } else { DASHES[(place_of(methods, i) / PALETTE.len()) % DASHES.len()] }
}

const WIDTH: f64 = 760.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 40.0;
const PLOT_HEIGHT: f64 = 345.0;
/// Below the plot: tick labels and the axis title, then the legend, one row per method (a
/// legend on the right cut long names such as the demo's reference rows off).
const BOTTOM: f64 = 55.0;
const LEGEND_ROW: f64 = 20.0;

/// Ticks at 1, 2 or 5 × 10^k covering `[lo, hi]`: (first, step, count, decimals).
fn nice_ticks(lo: f64, hi: f64, target: usize) -> (f64, f64, usize, usize) {
    let raw = (hi - lo) / target as f64;
    let exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let mult = [1.0, 2.0, 5.0, 10.0].into_iter().find(|m| m * base >= raw * (1.0 - 1e-9)).unwrap_or(10.0);
    let step = mult * base;
    // The epsilon keeps a bound that is a multiple of the step up to rounding (0.3 / 0.05 =
    // 5.9999…) on that tick instead of one step further out.
    let first = (lo / step + 1e-9).floor() * step;
    let last = (hi / step - 1e-9).ceil() * step;
    let count = ((last - first) / step).round() as usize + 1;
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    (first, step, count, decimals)
}

fn svg_plot(methods: &[MethodReport]) -> String {
    let height = TOP + PLOT_HEIGHT + BOTTOM + LEGEND_ROW * methods.len() as f64 + 8.0;
    let mut s = svg::start(WIDTH, height, 12);
    let title = "Dev nDCG@10 during training (mean over seeds, band ±1 s.d.)";
    svg::title(&mut s, LEFT + (WIDTH - LEFT - RIGHT) / 2.0, 22.0, 14, title);
    let plotted: Vec<&MethodReport> = methods.iter().filter(|m| !m.dev.is_empty()).collect();
    if plotted.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no dev evaluations in the training logs</text>"#,
            WIDTH / 2.0,
            height / 2.0
        );
        s.push_str("</svg>\n");
        return s;
    }

    let max_step = plotted.iter().flat_map(|m| &m.dev).map(|p| p.step).max().unwrap_or(0).max(1) as f64;
    let (mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in plotted.iter().flat_map(|m| &m.dev) {
        let sd = p.std.unwrap_or(0.0);
        y_lo = y_lo.min(p.mean - sd);
        y_hi = y_hi.max(p.mean + sd);
    }
    // Reference rows (BM25, the teacher's reranking: not trained) are horizontal lines at their
    // final nDCG@10, inside the scale, so the curves can be read against them.
    let references: Vec<(usize, f64)> = methods
        .iter()
        .enumerate()
        .filter(|(_, m)| m.seeds.is_empty())
        .filter_map(|(i, m)| m.metrics.get(DEV_MEASURE).map(|v| (i, v.mean)))
        .collect();
    for &(_, v) in &references {
        y_lo = y_lo.min(v);
        y_hi = y_hi.max(v);
    }
    if y_hi - y_lo < 1e-3 {
        y_lo -= 0.005;
        y_hi += 0.005;
    }
    let (x_first, x_step, x_count, _) = nice_ticks(0.0, max_step, 6);
    let (y_first, y_step, y_count, y_decimals) = nice_ticks(y_lo, y_hi, 5);
    let x_max = x_first + x_step * (x_count - 1) as f64;
    let y_max = y_first + y_step * (y_count - 1) as f64;
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, PLOT_HEIGHT);
    let px = |step: f64| LEFT + (step - x_first) / (x_max - x_first) * plot_w;
    let py = |v: f64| TOP + plot_h - (v - y_first) / (y_max - y_first) * plot_h;

    // Grid, ticks and tick labels.
    s.push_str("<g stroke=\"#dddddd\" stroke-width=\"1\">\n");
    for i in 0..x_count {
        let x = px(x_first + x_step * i as f64);
        let _ = writeln!(s, r#"<line x1="{x:.2}" y1="{TOP:.2}" x2="{x:.2}" y2="{:.2}"/>"#, TOP + plot_h);
    }
    for i in 0..y_count {
        let y = py(y_first + y_step * i as f64);
        let _ = writeln!(s, r#"<line x1="{LEFT:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}"/>"#, LEFT + plot_w);
    }
    s.push_str("</g>\n<g fill=\"#222222\">\n");
    for i in 0..x_count {
        let step = x_first + x_step * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}" text-anchor="middle">{}</text>"#,
            px(step),
            TOP + plot_h + 18.0,
            step.round() as u64
        );
    }
    for i in 0..y_count {
        let v = y_first + y_step * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.2}" y="{:.2}" text-anchor="end">{v:.y_decimals$}</text>"#,
            LEFT - 8.0,
            py(v) + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.2}" y="{:.2}" text-anchor="middle">training step</text>"#,
        LEFT + plot_w / 2.0,
        TOP + plot_h + 40.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.2}) rotate(-90)" text-anchor="middle">dev nDCG@10</text>"#,
        TOP + plot_h / 2.0
    );
    s.push_str("</g>\n");
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT:.2}" y="{TOP:.2}" width="{plot_w:.2}" height="{plot_h:.2}" fill="none" stroke="#444444"/>"##
    );

    for &(i, v) in &references {
        let colour = colour_of(methods, i);
        let name = xml_escape(&methods[i].method);
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="8 4" data-reference="{name}"/>"#,
            LEFT + plot_w,
            y = py(v)
        );
    }

    // One series per method: band (polygon), mean line (the method's only <path>), markers.
    for (i, m) in methods.iter().enumerate() {
        if m.dev.is_empty() {
            continue;
        }
        let colour = colour_of(methods, i);
        let dash = dash_of(methods, i);
        let name = xml_escape(&m.method);
        let _ = writeln!(s, r#"<g data-method="{name}">"#);
        let _ = writeln!(s, "<title>{name}</title>");
        let band: Vec<&DevPoint> = m.dev.iter().filter(|p| p.std.is_some()).collect();
        if band.len() >= 2 {
            let mut points: Vec<String> = band
                .iter()
                .map(|p| format!("{:.2},{:.2}", px(p.step as f64), py(p.mean + p.std.unwrap_or(0.0))))
                .collect();
            points.extend(
                band.iter().rev().map(|p| format!("{:.2},{:.2}", px(p.step as f64), py(p.mean - p.std.unwrap_or(0.0)))),
            );
            let _ = writeln!(
                s,
                r#"<polygon points="{}" fill="{colour}" fill-opacity="0.18" stroke="none"/>"#,
                points.join(" ")
            );
        }
        let d: Vec<String> = m
            .dev
            .iter()
            .enumerate()
            .map(|(k, p)| format!("{}{:.2} {:.2}", if k == 0 { "M" } else { "L" }, px(p.step as f64), py(p.mean)))
            .collect();
        let dash_attr = if dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{dash}""#) };
        let _ = writeln!(
            s,
            r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr} data-method="{name}"/>"#,
            d.join(" ")
        );
        for p in &m.dev {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.2}" cy="{:.2}" r="2.5" fill="{colour}"/>"#,
                px(p.step as f64),
                py(p.mean)
            );
        }
        s.push_str("</g>\n");
    }

    // Legend, below the plot.
    let legend_x = LEFT;
    for (i, m) in methods.iter().enumerate() {
        let colour = colour_of(methods, i);
        let dash = dash_of(methods, i);
        let y = TOP + plot_h + BOTTOM + 6.0 + LEGEND_ROW * i as f64;
        let dash_attr = if dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{dash}""#) };
        let _ = writeln!(
            s,
            r#"<line x1="{legend_x:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="{colour}" stroke-width="2"{dash_attr}/>"#,
            legend_x + 24.0
        );
        let label = match m.seeds.len() {
            0 => match m.metrics.get(DEV_MEASURE) {
                Some(v) => format!("{} (not trained; {DEV_MEASURE} in the table: {:.3})", m.method, v.mean),
                None => format!("{} (not trained)", m.method),
            },
            n => {
                let seeds = if n == 1 { "1 seed".to_string() } else { format!("{n} seeds") };
                let note = if m.dev.is_empty() { ", no dev" } else { "" };
                format!("{} ({seeds}{note})", m.method)
            }
        };
        let _ = writeln!(s, r#"<text x="{:.2}" y="{:.2}">{}</text>"#, legend_x + 30.0, y + 4.0, xml_escape(&label));
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use adam_core::metrics::Measures;

    struct Tmp(PathBuf);
    impl Tmp {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("adam-report-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Tmp(dir)
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn run(tmp: &Tmp, method: &str, seed: u64, final_: [f64; 3], dev: &[(u64, f64)]) -> RunResult {
        let log = tmp.0.join(format!("{method}-{seed}.jsonl"));
        let mut text = String::from("{\"event\":\"start\",\"seed\":1}\n");
        for (step, v) in dev {
            text.push_str(&format!("{{\"step\":{step},\"loss\":0.5}}\n"));
            text.push_str(&format!("{{\"step\":{step},\"dev\":{{\"ndcg@10\":{v},\"mrr@10\":0.1}}}}\n"));
        }
        std::fs::write(&log, text).unwrap();
        let metrics = REPORTED.iter().map(|n| n.to_string()).zip(final_).collect();
        RunResult { method: method.into(), seed: Some(seed), metrics, log }
    }

    fn runs(tmp: &Tmp) -> Vec<RunResult> {
        vec![
            run(tmp, "adam", 1, [0.40, 0.30, 0.80], &[(100, 0.30), (200, 0.36)]),
            run(tmp, "baseline", 7, [0.35, 0.25, 0.70], &[(100, 0.28), (200, 0.31)]),
            run(tmp, "adam", 2, [0.42, 0.34, 0.81], &[(100, 0.32), (200, 0.38)]),
            run(tmp, "adam", 3, [0.44, 0.35, 0.85], &[(100, 0.34), (200, 0.37), (300, 0.39)]),
        ]
    }

    #[test]
    fn table_and_json_hold_hand_computed_mean_and_std() {
        let tmp = Tmp::new("table");
        let out = tmp.0.join("out");
        write_report(&out, &runs(&tmp)).unwrap();
        let md = std::fs::read_to_string(out.join(TABLE_FILE)).unwrap();
        // adam ndcg@10: 0.40, 0.42, 0.44 → mean 0.42, sample s.d. sqrt((0.02² + 0 + 0.02²)/2) = 0.02.
        // mrr@10: 0.30, 0.34, 0.35 → mean 0.33, s.d. sqrt((0.03² + 0.01² + 0.02²)/2) = 0.026458.
        // recall@100: 0.80, 0.81, 0.85 → mean 0.82, s.d. sqrt((0.02² + 0.01² + 0.03²)/2) = 0.026458.
        assert!(md.contains("| adam | 3 | 0.4200 ± 0.0200 | 0.3300 ± 0.0265 | 0.8200 ± 0.0265 |"), "{md}");
        assert!(md.contains("| baseline | 1 | 0.3500 | 0.2500 | 0.7000 |"), "{md}");
        assert!(md.find("| adam").unwrap() < md.find("| baseline").unwrap(), "first-appearance order");
        assert!(md.contains("- adam: seeds 1, 2, 3"), "{md}");

        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(JSON_FILE)).unwrap()).unwrap();
        let adam = &json["methods"][0];
        assert_eq!(adam["method"], "adam");
        assert_eq!(adam["seeds"], serde_json::json!([1, 2, 3]));
        let close = |v: &serde_json::Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-12;
        assert!(close(&adam["metrics"]["ndcg@10"]["mean"], 0.42));
        assert!(close(&adam["metrics"]["ndcg@10"]["std"], 0.02));
        assert!(close(&adam["metrics"]["mrr@10"]["std"], (0.0014f64 / 2.0).sqrt()));
        assert!(close(&adam["metrics"]["recall@100"]["std"], (0.0014f64 / 2.0).sqrt()));
        assert!(json["methods"][1]["metrics"]["ndcg@10"]["std"].is_null(), "one run: no s.d.");
        // Dev curve: step 100 over three seeds (0.30, 0.32, 0.34), step 300 from seed 3 only.
        let dev = adam["dev_ndcg@10"].as_array().unwrap();
        assert_eq!(dev.len(), 3);
        assert!(close(&dev[0]["mean"], 0.32) && close(&dev[0]["std"], 0.02) && dev[0]["runs"] == 3);
        assert!(close(&dev[2]["mean"], 0.39) && dev[2]["std"].is_null() && dev[2]["runs"] == 1);
    }

    #[test]
    fn reference_rows_are_listed_as_not_trained() {
        let tmp = Tmp::new("reference");
        let mut all = runs(&tmp);
        let mut bm25 = run(&tmp, "BM25 (reference)", 0, [0.5, 0.45, 0.9], &[]);
        bm25.seed = None;
        all.push(bm25.clone());
        let out = tmp.0.join("out");
        write_report(&out, &all).unwrap();
        let md = std::fs::read_to_string(out.join(TABLE_FILE)).unwrap();
        assert!(md.contains("| BM25 (reference) | 1 | 0.5000 | 0.4500 | 0.9000 |"), "{md}");
        assert!(md.contains("- BM25 (reference): not trained\n"), "{md}");
        assert!(!md.contains("seeds 0"), "{md}");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(JSON_FILE)).unwrap()).unwrap();
        assert_eq!(json["methods"][2]["seeds"], serde_json::json!([]));
        let svg = std::fs::read_to_string(out.join(PLOT_FILE)).unwrap();
        assert!(svg.contains("BM25 (reference) (not trained; ndcg@10 in the table: 0.500)"), "{svg}");
        // Its line is inside the scale: the y axis reaches 0.5 (the curves end at 0.39).
        assert!(svg.contains(r#"data-reference="BM25 (reference)""#), "{svg}");
        assert!(svg.contains(">0.50</text>"), "{svg}");
        let err = summarize(&[bm25.clone(), bm25]).unwrap_err().to_string();
        assert!(err.contains("two runs with no seed"), "{err}");
    }

    #[test]
    fn svg_is_xml_with_one_path_per_method_and_is_deterministic() {
        let tmp = Tmp::new("svg");
        let mut all = runs(&tmp);
        all.push(run(&tmp, "a<b & \"c\"", 1, [0.1, 0.1, 0.1], &[(50, 0.2)]));
        let out = tmp.0.join("out");
        write_report(&out, &all).unwrap();
        let svg = std::fs::read(out.join(PLOT_FILE)).unwrap();

        let mut path_methods = Vec::new();
        let mut texts = String::new();
        let mut depth = 0i32;
        for event in xml::reader::EventReader::new(svg.as_slice()) {
            match event.expect("the SVG is well-formed XML") {
                xml::reader::XmlEvent::StartElement { name, attributes, .. } => {
                    depth += 1;
                    if depth == 1 {
                        assert_eq!(name.local_name, "svg");
                    }
                    if name.local_name == "path" {
                        let method = attributes.iter().find(|a| a.name.local_name == "data-method").unwrap();
                        let d = attributes.iter().find(|a| a.name.local_name == "d").unwrap();
                        path_methods.push((method.value.clone(), d.value.matches(['M', 'L']).count()));
                    }
                }
                xml::reader::XmlEvent::EndElement { .. } => depth -= 1,
                xml::reader::XmlEvent::Characters(t) => texts.push_str(&t),
                _ => {}
            }
        }
        assert_eq!(
            path_methods,
            [("adam".to_string(), 3), ("baseline".to_string(), 2), ("a<b & \"c\"".to_string(), 1)],
            "one path per method, one vertex per dev step"
        );
        assert!(texts.contains("training step") && texts.contains("dev nDCG@10"), "axis labels");
        assert!(texts.contains("adam (3 seeds)") && texts.contains("baseline (1 seed)"), "legend: {texts}");

        write_report(&out, &all).unwrap();
        assert_eq!(std::fs::read(out.join(PLOT_FILE)).unwrap(), svg, "same runs, same bytes");
    }

    #[test]
    fn bad_log_lines_name_file_line_and_field() {
        let tmp = Tmp::new("badlog");
        let log = tmp.0.join("train.jsonl");
        let check = |text: &str, wants: &[&str]| {
            std::fs::write(&log, text).unwrap();
            let err = format!("{:#}", read_dev_log(&log).unwrap_err());
            for want in wants {
                assert!(err.contains(want), "`{want}` not in: {err}");
            }
        };
        check("{\"step\":1,\"loss\":2}\n\n{\"step\":2,\"dev\":\n", &["train.jsonl:3", "not valid JSON"]);
        check(
            "{\"step\":1,\"dev\":{\"ndcg@10\":0.3}}\n{\"dev\":{\"ndcg@10\":0.3}}\n",
            &["train.jsonl:2", "`step`", "missing"],
        );
        check("{\"step\":-5,\"dev\":{\"ndcg@10\":0.3}}\n", &["train.jsonl:1", "`step`", "non-negative integer"]);
        check("{\"step\":5,\"dev\":{\"mrr@10\":0.3}}\n", &["train.jsonl:1", "`dev.ndcg@10`", "missing"]);
        check("{\"step\":5,\"dev\":{\"ndcg@10\":\"high\"}}\n", &["train.jsonl:1", "`dev.ndcg@10`", "finite number"]);
        check("[1, 2]\n", &["train.jsonl:1", "not a JSON object"]);
        check(
            "{\"step\":5,\"dev\":{\"ndcg@10\":0.3}}\n{\"step\":5,\"dev\":{\"ndcg@10\":0.4}}\n",
            &["train.jsonl:2", "already evaluated on line 1"],
        );

        // write_report passes the error on, naming the file.
        let r =
            RunResult { method: "m".into(), seed: Some(1), metrics: runs(&tmp)[0].metrics.clone(), log: log.clone() };
        let err = format!("{:#}", write_report(&tmp.0.join("out"), &[r]).unwrap_err());
        assert!(err.contains("train.jsonl:2"), "{err}");
    }

    #[test]
    fn invalid_run_sets_are_rejected() {
        let tmp = Tmp::new("invalid");
        let a = run(&tmp, "adam", 1, [0.4, 0.3, 0.8], &[]);
        let err = summarize(&[a.clone(), a.clone()]).unwrap_err().to_string();
        assert!(err.contains("two runs with seed 1"), "{err}");
        let mut b = a.clone();
        b.metrics.remove("mrr@10");
        let err = summarize(&[b]).unwrap_err().to_string();
        assert!(err.contains("no `mrr@10`"), "{err}");
        assert!(summarize(&[]).is_err());
        let from_eval = Measures { ndcg_10: 0.5, mrr_10: 0.25, recall_100: 0.75, ..Default::default() }.to_map();
        let m = summarize(&[RunResult { metrics: from_eval, ..a }]).unwrap();
        assert_eq!(m[0].metrics["mrr@10"].mean, 0.25, "adam eval's measures fit a run as they are");
    }

    #[test]
    fn ticks_are_round_numbers_covering_the_range() {
        let (first, step, count, decimals) = nice_ticks(0.3137, 0.4488, 5);
        assert_eq!((step, count, decimals), (0.05, 4, 2)); // 0.30, 0.35, 0.40, 0.45
        assert!((first - 0.3).abs() < 1e-12);
        let (first, step, count, _) = nice_ticks(0.3, 0.45, 3); // bounds already on ticks
        assert_eq!((step, count), (0.05, 4));
        assert!((first - 0.3).abs() < 1e-12);
        let (first, step, count, decimals) = nice_ticks(0.0, 2300.0, 6);
        assert_eq!((first, step, count, decimals), (0.0, 500.0, 6, 0));
    }
}
