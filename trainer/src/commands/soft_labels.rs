//! `adam soft-labels`: the dark-example lab of the browser demo on the command line. For one
//! query (an exported example or texts given here) it makes the dark examples, scores every
//! candidate with the teacher and the student, and prints both soft-label distributions, their
//! entropies and `KL(teacher ‖ student)` — the numbers the page shows for the same settings.

use std::path::PathBuf;

use adam_core::dark::NoisyMode;
use adam_core::demo::{ExampleSet, Manifest};
use adam_core::encoder::{CrossEncoder, SentenceEncoder};
use adam_core::loader::{CrossEncoderOptions, LoadOptions, ModelSource};
use adam_core::softlabels::{self, Candidate, LabSettings, SoftLabels, Walkthrough};
use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::backend::Backend;
use crate::distill_config::parse_noisy_mode;

#[derive(clap::Args, Debug)]
pub struct SoftLabelsArgs {
    /// An `adam export-web` folder: its student, teacher, examples and settings are the defaults.
    #[arg(long, value_name = "DIR")]
    pub assets: Option<PathBuf>,
    /// Student folder (default: ASSETS/student).
    #[arg(long, value_name = "DIR")]
    pub student: Option<PathBuf>,
    /// Teacher cross-encoder folder (default: ASSETS/teacher).
    #[arg(long, value_name = "DIR")]
    pub teacher: Option<PathBuf>,
    /// examples.json (default: ASSETS/examples.json).
    #[arg(long, value_name = "FILE")]
    pub examples: Option<PathBuf>,
    /// Which example (0-based); it also keys the dark examples' random draws, as on the page.
    #[arg(long, default_value_t = 0)]
    pub index: usize,
    /// A query of your own instead of an example (with --positive and --negative).
    #[arg(long, requires = "positive")]
    pub query: Option<String>,
    #[arg(long, requires = "query")]
    pub positive: Option<String>,
    /// Hard negative (repeat for more).
    #[arg(long = "negative", requires = "query")]
    pub negatives: Vec<String>,
    #[arg(long)]
    pub mask_ratio: Option<f32>,
    /// Noisy positives: `mask` or `delete` their pieces (default: the assets' setting, else mask).
    #[arg(long, value_parser = parse_noisy_mode)]
    pub noisy_mode: Option<NoisyMode>,
    #[arg(long)]
    pub mix_ratio: Option<f32>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub teacher_temperature: Option<f32>,
    #[arg(long)]
    pub student_temperature: Option<f32>,
    /// Tokens per text and pair (default: the assets' max_length, else 256).
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct CandidateOut {
    label: String,
    text: String,
    teacher_score: f32,
    student_score: f32,
    teacher_prob: f64,
    student_prob: f64,
}

#[derive(Serialize)]
struct Output {
    query: String,
    key: u64,
    settings: LabSettings,
    candidates: Vec<CandidateOut>,
    #[serde(flatten)]
    labels: SoftLabels,
    walkthrough: Walkthrough,
}

pub fn run(args: SoftLabelsArgs) -> Result<()> {
    let manifest = match &args.assets {
        Some(dir) => {
            let path = dir.join("manifest.json");
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Some(Manifest::from_json(&bytes, &path.display().to_string())?)
        }
        None => None,
    };
    let from_assets = |given: &Option<PathBuf>, rel: &str, what: &str| -> Result<PathBuf> {
        match (given, &args.assets) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(dir)) => Ok(dir.join(rel)),
            (None, None) => bail!("give --{what} or --assets"),
        }
    };
    let student_dir = from_assets(&args.student, "student", "student")?;
    let teacher_dir = from_assets(&args.teacher, "teacher", "teacher")?;
    let defaults = manifest.as_ref().map(|m| m.settings.clone()).unwrap_or_default();
    let settings = LabSettings {
        mask_ratio: args.mask_ratio.unwrap_or(defaults.mask_ratio),
        noisy_mode: args.noisy_mode.unwrap_or(defaults.noisy_mode),
        mix_ratio: args.mix_ratio.unwrap_or(defaults.mix_ratio),
        seed: args.seed.unwrap_or(defaults.seed),
        teacher_temperature: args.teacher_temperature.unwrap_or(defaults.teacher_temperature),
        student_temperature: args.student_temperature.unwrap_or(defaults.student_temperature),
    };
    settings.validate().map_err(anyhow::Error::msg)?;
    let max_length = args.max_length.or(manifest.as_ref().map(|m| m.max_length)).unwrap_or(256);

    let (query, positive, negatives, key) = match (&args.query, &args.positive) {
        (Some(q), Some(p)) => (q.clone(), p.clone(), args.negatives.clone(), 0u64),
        _ => {
            let path = from_assets(&args.examples, "examples.json", "examples")?;
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let set: ExampleSet =
                serde_json::from_slice(&bytes).with_context(|| format!("{}: not an examples.json", path.display()))?;
            let Some(e) = set.examples.get(args.index) else {
                bail!("--index {}: {} has {} examples", args.index, path.display(), set.examples.len());
            };
            (
                e.query.clone(),
                e.positive.text.clone(),
                e.negatives.iter().map(|n| n.text.clone()).collect(),
                args.index as u64,
            )
        }
    };

    let device = args.backend.device()?;
    let student = SentenceEncoder::load(
        &ModelSource::Dir(student_dir),
        &device,
        &LoadOptions { max_length: Some(max_length), layers: None },
    )?;
    let teacher = CrossEncoder::load(
        &ModelSource::Dir(teacher_dir),
        &device,
        &CrossEncoderOptions { max_length: Some(max_length), new_head: false },
    )?;
    let (candidates, teacher_scores, student_scores) =
        score(&student, &teacher, &query, &positive, &negatives, &settings, key)?;
    let labels = softlabels::soft_labels(
        &teacher_scores, &student_scores, settings.teacher_temperature, settings.student_temperature,
    );
    let tok = &teacher.model.tokenizer;
    let walkthrough = softlabels::walkthrough(&candidates, &teacher_scores, &labels, &settings);
    let out = Output {
        query,
        key,
        candidates: candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Ok(CandidateOut {
                    label: c.label.clone(),
                    text: tok.decode(&c.ids)?,
                    teacher_score: teacher_scores[i],
                    student_score: student_scores[i],
                    teacher_prob: labels.teacher[i],
                    student_prob: labels.student[i],
                })
            })
            .collect::<Result<_>>()?,
        settings,
        labels,
        walkthrough,
    };
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("query: {}", out.query);
        println!("{:<24} {:>9} {:>9} {:>8} {:>8}  text", "candidate", "teacher", "student", "P_T", "P_S");
        for c in &out.candidates {
            let text: String = c.text.chars().take(60).collect();
            println!(
                "{:<24} {:>9.4} {:>9.4} {:>8.4} {:>8.4}  {text}",
                c.label, c.teacher_score, c.student_score, c.teacher_prob, c.student_prob
            );
        }
        println!(
            "H(P_T) = {:.4}  H(P_S) = {:.4}  KL(P_T || P_S) = {:.4}  T_t^2 KL = {:.4}",
            out.labels.teacher_entropy, out.labels.student_entropy, out.labels.kl, out.labels.kd_loss
        );
        let w = &out.walkthrough;
        let band = w.in_band.map_or_else(
            || "no band (the positive is not above the best negative)".into(),
            |k| format!("{k} of {} in the band", w.dark),
        );
        println!(
            "plain candidates: P_T(positive) = {:.4}, entropy {:.4} of ln {} = {:.4}; dark examples: {band}; \
             self-paced confidence {:.4}",
            w.plain_positive,
            w.plain_entropy,
            w.plain,
            (w.plain as f64).ln(),
            w.confidence
        );
    }
    Ok(())
}

/// The lab's candidates with the teacher's and the student's scores, computed as the page does:
/// word pieces of the teacher's vocabulary, `[CLS] q [SEP] c [SEP]` for the teacher, `[CLS] c
/// [SEP]` and a dot product with the query's vector for the student.
pub fn score(
    student: &SentenceEncoder,
    teacher: &CrossEncoder,
    query: &str,
    positive: &str,
    negatives: &[String],
    settings: &LabSettings,
    key: u64,
) -> Result<(Vec<Candidate>, Vec<f32>, Vec<f32>)> {
    let ttok = &teacher.model.tokenizer;
    let stok = &student.model.tokenizer;
    let q = ttok.word_pieces(query)?;
    let p = ttok.word_pieces(positive)?;
    let n: Vec<Vec<u32>> = negatives.iter().map(|t| ttok.word_pieces(t)).collect::<adam_core::Result<_>>()?;
    let config = settings.dark_config(ttok.max_length().saturating_sub(2));
    let candidates = softlabels::candidates(&q, &p, &n, &ttok.special(), &config, key);

    let pairs: Vec<(&[u32], &[u32])> = candidates.iter().map(|c| (&q[..], &c.ids[..])).collect();
    let teacher_scores = teacher
        .score_batch(&ttok.encode_piece_pairs(&pairs))
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("reading teacher scores: {e:?}"))?;

    let same = ttok.same_vocab(stok);
    let mut seqs = vec![stok.word_pieces(query)?];
    for c in &candidates {
        seqs.push(softlabels::to_student_pieces(&c.ids, ttok, stok, same)?);
    }
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let flat = student
        .embed_batch(&stok.encode_pieces(&refs, usize::MAX))
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("reading student vectors: {e:?}"))?;
    let vectors: Vec<&[f32]> = flat.chunks(student.dim()).collect();
    let student_scores = vectors[1..].iter().map(|v| softlabels::dot(vectors[0], v)).collect();
    Ok((candidates, teacher_scores, student_scores))
}
