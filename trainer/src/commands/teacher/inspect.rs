//! `adam teacher inspect`: what a teacher-score cache teaches. ADAM's premise (METHOD.md §1) is
//! that a teacher's soft labels over a positive and mined negatives are nearly one-hot, and that
//! dark examples land between them. This reads a cache of `adam teacher score` and shows both:
//! the teacher's probability `P_T = softmax(t / T_t)` of each kind of candidate (positive, mined
//! negatives, each kind of dark example) over the query's full candidate list, the entropy of
//! `P_T` without and with the dark examples, and where each candidate's score falls between the
//! best negative (0) and the positive (1), the scale of the target band.

use std::fmt::Write as _;
use std::path::PathBuf;

use adam_core::dark::DarkKind;
use adam_core::softlabels::{entropy, softmax};
use anyhow::{Result, bail};
use serde::Serialize;

use crate::io::AtomicFile;
use crate::score_cache;
use crate::svg::{self, xml_escape};

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Cache of `adam teacher score` (JSONL).
    #[arg(long, value_name = "FILE")]
    pub scores: PathBuf,
    /// Output folder: soft_labels.json and soft_labels.svg (the histograms).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Teacher temperature `T_t` of the soft labels (the distillation config's
    /// `kd_teacher_temperature`).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
}

/// Candidate kinds, in the order of the table and the figure.
const KINDS: [&str; 6] =
    ["positive", "mined negative", "masked positive", "deleted positive", "mixed negative", "query-mixed negative"];

fn kind_index(kind: &DarkKind) -> usize {
    match kind {
        DarkKind::MaskedPositive => 2,
        DarkKind::DeletedPositive => 3,
        DarkKind::MixedNegative { with_query: false, .. } => 4,
        DarkKind::MixedNegative { with_query: true, .. } => 5,
    }
}

/// `P_T` bins: below 1e-6, then one per decade up to 1.
const P_EDGES: [f64; 7] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0];
const P_LABELS: [&str; 7] = ["<1e-6", "1e-6", "1e-5", "1e-4", "1e-3", "0.01", "0.1–1"];
/// Relative-score bins: below the best negative, tenths of the way to the positive, above it.
const R_LABELS: [&str; 12] = ["<0", "0", ".1", ".2", ".3", ".4", ".5", ".6", ".7", ".8", ".9", ">1"];

#[derive(Serialize, Default, Clone)]
pub struct KindProfile {
    pub kind: String,
    pub count: usize,
    /// Mean `P_T` over the query's candidates, dark examples included.
    pub mean_probability: f64,
    /// Counts per `P_T` decade (`P_LABELS`).
    pub probability_histogram: Vec<usize>,
    /// Counts per position between the best negative (0) and the positive (1) (`R_LABELS`).
    pub relative_histogram: Vec<usize>,
    /// Share of the candidates placed (queries with the positive above the best negative) whose
    /// score lies in the cache's target band.
    pub in_band: f64,
    /// Share of dark examples whose adaptive search reached the band.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_reached: Option<f64>,
}

#[derive(Serialize)]
pub struct Profile {
    pub scores: String,
    pub teacher: String,
    pub temperature: f32,
    pub queries: usize,
    /// Queries whose teacher scores the positive above every mined negative.
    pub positive_on_top: usize,
    /// Mean entropy (nats) of `P_T` over the positive and mined negatives alone ...
    pub entropy_plain: f64,
    /// ... and with the dark examples added.
    pub entropy_with_dark: f64,
    /// Mean `P_T` of the positive over its own candidates alone (how one-hot the plain labels are).
    pub positive_probability_plain: f64,
    pub probability_bins: Vec<String>,
    pub relative_bins: Vec<String>,
    pub kinds: Vec<KindProfile>,
}

fn probability_bin(p: f64) -> usize {
    P_EDGES.iter().position(|&e| p < e).unwrap_or(P_EDGES.len() - 1)
}

fn relative_bin(r: f64) -> usize {
    if r < 0.0 {
        0
    } else if r > 1.0 {
        R_LABELS.len() - 1
    } else {
        1 + ((r * 10.0).floor() as usize).min(9)
    }
}

pub fn profile(args: &InspectArgs) -> Result<Profile> {
    if !(args.temperature.is_finite() && args.temperature > 0.0) {
        bail!("--temperature {} must be a positive number", args.temperature);
    }
    let cache = score_cache::read_complete(&args.scores)?;
    let mut kinds: Vec<KindProfile> = KINDS
        .iter()
        .map(|k| KindProfile {
            kind: k.to_string(),
            probability_histogram: vec![0; P_LABELS.len()],
            relative_histogram: vec![0; R_LABELS.len()],
            ..Default::default()
        })
        .collect();
    let mut reached = [0usize; KINDS.len()];
    let (mut placed, mut in_band) = ([0usize; KINDS.len()], [0usize; KINDS.len()]);
    let (band_low, band_high) = (cache.header.dark.band_low, cache.header.dark.band_high);
    let (mut entropy_plain, mut entropy_dark, mut positive_plain, mut on_top, mut n) = (0.0, 0.0, 0.0, 0, 0);
    for record in &cache.records {
        let Some(positive) = record.positives.iter().find(|p| p.doc_id == record.dark_positive) else {
            bail!(
                "{}: query {}: dark_positive {} is not among its positives",
                args.scores.display(),
                record.query_id,
                record.dark_positive
            );
        };
        if record.negatives.is_empty() {
            continue;
        }
        n += 1;
        let plain: Vec<f32> = std::iter::once(positive.score).chain(record.negatives.iter().map(|d| d.score)).collect();
        let best_negative = record.negatives.iter().map(|d| d.score).fold(f32::NEG_INFINITY, f32::max);
        on_top += usize::from(positive.score > best_negative);
        let p_plain = softmax(&plain, args.temperature);
        entropy_plain += entropy(&p_plain);
        positive_plain += p_plain[0];
        // Every candidate with its kind; dark examples without a teacher score are left out.
        let mut all: Vec<(usize, f32)> = plain.iter().enumerate().map(|(i, &s)| (usize::from(i > 0), s)).collect();
        for ex in &record.dark {
            if let Some(s) = ex.teacher_score {
                let k = kind_index(&ex.kind);
                all.push((k, s));
                reached[k] += usize::from(ex.band_reached == Some(true));
            }
        }
        let scores: Vec<f32> = all.iter().map(|&(_, s)| s).collect();
        let p = softmax(&scores, args.temperature);
        entropy_dark += entropy(&p);
        let span = positive.score - best_negative;
        for (&(k, s), &pk) in all.iter().zip(&p) {
            let kp = &mut kinds[k];
            kp.count += 1;
            kp.mean_probability += pk;
            kp.probability_histogram[probability_bin(pk)] += 1;
            if span > 0.0 {
                let r = f64::from((s - best_negative) / span);
                kp.relative_histogram[relative_bin(r)] += 1;
                placed[k] += 1;
                in_band[k] += usize::from((f64::from(band_low)..=f64::from(band_high)).contains(&r));
            }
        }
    }
    if n == 0 {
        bail!("{}: no query has mined negatives", args.scores.display());
    }
    for (k, kp) in kinds.iter_mut().enumerate() {
        if kp.count > 0 {
            kp.mean_probability /= kp.count as f64;
        }
        kp.in_band = in_band[k] as f64 / placed[k].max(1) as f64;
        if k >= 2 && kp.count > 0 {
            kp.band_reached = Some(reached[k] as f64 / kp.count as f64);
        }
    }
    Ok(Profile {
        scores: args.scores.display().to_string(),
        teacher: cache.header.teacher.clone(),
        temperature: args.temperature,
        queries: n,
        positive_on_top: on_top,
        entropy_plain: entropy_plain / n as f64,
        entropy_with_dark: entropy_dark / n as f64,
        positive_probability_plain: positive_plain / n as f64,
        probability_bins: P_LABELS.iter().map(|s| s.to_string()).collect(),
        relative_bins: R_LABELS.iter().map(|s| s.to_string()).collect(),
        kinds,
    })
}

pub fn run(args: InspectArgs) -> Result<()> {
    let profile = profile(&args)?;
    std::fs::create_dir_all(&args.output)?;
    let mut json = AtomicFile::create(&args.output.join("soft_labels.json"))?;
    serde_json::to_writer_pretty(json.writer(), &profile)?;
    json.commit()?;
    let mut svg = AtomicFile::create(&args.output.join("soft_labels.svg"))?;
    std::io::Write::write_all(svg.writer(), svg_histograms(&profile).as_bytes())?;
    svg.commit()?;
    println!(
        "{} queries, teacher {} (T_t = {}): positive above every mined negative for {}",
        profile.queries, profile.teacher, profile.temperature, profile.positive_on_top
    );
    println!(
        "P_T(positive) over its own candidates {:.3}; entropy {:.3} nats plain, {:.3} with dark examples",
        profile.positive_probability_plain, profile.entropy_plain, profile.entropy_with_dark
    );
    println!("{:<22} {:>6} {:>10} {:>9} {:>9}", "candidate", "count", "mean P_T", "in band", "band hit");
    for k in profile.kinds.iter().filter(|k| k.count > 0) {
        let band = k.band_reached.map_or(String::new(), |b| format!("{:.0} %", 100.0 * b));
        let share = format!("{:.0} %", 100.0 * k.in_band);
        println!("{:<22} {:>6} {:>10.4} {:>9} {:>9}", k.kind, k.count, k.mean_probability, share, band);
    }
    println!("wrote {}", args.output.join("soft_labels.svg").display());
    Ok(())
}

/// Two histograms per kind, as small multiples: `P_T` by decade (left) and the score's place
/// between the best negative and the positive (right); bars are shares of the kind's count.
fn svg_histograms(p: &Profile) -> String {
    const ROW: f64 = 64.0;
    const LABEL: f64 = 150.0;
    const PANEL: f64 = 300.0;
    const GAP: f64 = 40.0;
    let shown: Vec<&KindProfile> = p.kinds.iter().filter(|k| k.count > 0).collect();
    let width = LABEL + 2.0 * PANEL + GAP + 20.0;
    let height = 70.0 + ROW * shown.len() as f64 + 30.0;
    let mut s = svg::start(width, height, 11);
    let title = format!("Teacher soft labels over {} queries (T_t = {})", p.queries, p.temperature);
    svg::title(&mut s, width / 2.0, 18.0, 13, &title);
    let left = LABEL;
    let right = LABEL + PANEL + GAP;
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="40" text-anchor="middle">P_T among all candidates (decades)</text>"#,
        left + PANEL / 2.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="40" text-anchor="middle">score: best negative = 0, positive = 1</text>"#,
        right + PANEL / 2.0
    );
    for (row, k) in shown.iter().enumerate() {
        let top = 52.0 + ROW * row as f64;
        let base = top + ROW - 14.0;
        let _ = writeln!(s, r#"<text x="8" y="{:.1}">{} ({})</text>"#, base - 18.0, xml_escape(&k.kind), k.count);
        for (x0, counts, labels) in
            [(left, &k.probability_histogram, &P_LABELS[..]), (right, &k.relative_histogram, &R_LABELS[..])]
        {
            let total: usize = counts.iter().sum::<usize>().max(1);
            let bar = PANEL / counts.len() as f64;
            let _ = writeln!(
                s,
                r##"<line x1="{x0:.1}" y1="{base:.1}" x2="{:.1}" y2="{base:.1}" stroke="#888"/>"##,
                x0 + PANEL
            );
            for (i, &c) in counts.iter().enumerate() {
                let h = (ROW - 22.0) * c as f64 / total as f64;
                let x = x0 + bar * i as f64;
                let fill = if k.kind == "positive" {
                    "#2b6cb0"
                } else if k.kind == "mined negative" {
                    "#999999"
                } else {
                    "#c05621"
                };
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{fill}"><title>{}: {c}</title></rect>"#,
                    x + 1.0,
                    base - h,
                    bar - 2.0,
                    xml_escape(labels[i])
                );
                if row + 1 == shown.len() {
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                        x + bar / 2.0,
                        base + 12.0,
                        xml_escape(labels[i])
                    );
                }
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_put_edges_where_the_labels_say() {
        assert_eq!(probability_bin(0.0), 0);
        assert_eq!(probability_bin(1e-6), 1);
        assert_eq!(probability_bin(0.05), 5);
        assert_eq!(probability_bin(0.1), 6);
        assert_eq!(probability_bin(1.0), 6);
        assert_eq!(relative_bin(-0.01), 0);
        assert_eq!(relative_bin(0.0), 1);
        assert_eq!(relative_bin(0.25), 3);
        assert_eq!(relative_bin(1.0), 10);
        assert_eq!(relative_bin(1.01), 11);
    }

    /// The histograms are well-formed XML (the bins' labels hold `<`), one bar per bin and kind.
    #[test]
    fn histograms_are_well_formed_svg() {
        let kind = |name: &str, count: usize| KindProfile {
            kind: name.to_string(),
            count,
            probability_histogram: vec![count; P_LABELS.len()],
            relative_histogram: vec![1; R_LABELS.len()],
            ..Default::default()
        };
        let profile = Profile {
            scores: "s.jsonl".into(),
            teacher: "t".into(),
            temperature: 1.0,
            queries: 2,
            positive_on_top: 1,
            entropy_plain: 0.5,
            entropy_with_dark: 1.0,
            positive_probability_plain: 0.6,
            probability_bins: vec![],
            relative_bins: vec![],
            kinds: vec![
                kind("positive", 2),
                kind("mined negative", 4),
                kind("deleted positive", 0),
                kind("mixed negative", 2),
            ],
        };
        let svg = svg_histograms(&profile);
        let (mut rects, mut depth) = (0, 0);
        for event in xml::reader::EventReader::new(svg.as_bytes()) {
            match event.expect("well-formed XML") {
                xml::reader::XmlEvent::StartElement { name, .. } => {
                    depth += 1;
                    rects += usize::from(name.local_name == "rect");
                }
                xml::reader::XmlEvent::EndElement { .. } => depth -= 1,
                _ => {}
            }
        }
        assert_eq!(depth, 0);
        // The background, then both histograms of the three kinds with a count.
        assert_eq!(rects, 1 + 3 * (P_LABELS.len() + R_LABELS.len()));
    }
}
