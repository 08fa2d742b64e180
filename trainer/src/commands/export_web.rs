//! `adam export-web`: the browser demo's assets. Copies the student (and teacher) folders with
//! the weights in f16 (half the download; the loader widens them to f32), picks training
//! instances with BM25 hard negatives and the teacher's scores, embeds a search corpus with the
//! student, copies a training report, and writes `manifest.json` with every file's size.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use adam_core::config::BertConfig;
use adam_core::dark::NoisyMode;
use adam_core::data::Document;
use adam_core::demo::{
    CorpusInfo, CorpusPassage, DatasetInfo, Example, ExampleScores, ExampleSet, FORMAT_VERSION, FileInfo, Manifest,
    ModelInfo, Passage, ReportInfo, f32_to_half,
};
use adam_core::encoder::{CrossEncoder, SentenceEncoder};
use adam_core::loader::{CrossEncoderOptions, LoadOptions, ModelSource};
use adam_core::softlabels::LabSettings;
use anyhow::{Context, Result, bail};

use crate::backend::Backend;
use crate::bm25::Bm25;
use crate::distill_config::parse_noisy_mode;
use crate::instances::permutation;
use crate::io::AtomicFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    /// Half precision: half the download, scores within ~1e-3 of f32.
    F16,
    /// The weights as they are (f32 stays f32).
    F32,
}

#[derive(clap::Args, Debug)]
pub struct ExportWebArgs {
    /// Student: a sentence-transformers / Hugging Face BERT folder.
    #[arg(long, value_name = "DIR")]
    pub student: PathBuf,
    /// Teacher: a cross-encoder folder (BertForSequenceClassification). Without it the page has
    /// search and the report only.
    #[arg(long, value_name = "DIR")]
    pub teacher: Option<PathBuf>,
    /// BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Qrels split the examples come from.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Asset folder to write (the page serves it as `assets/`).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Training instances to export (lab examples, self-paced histogram).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub examples: usize,
    /// BM25 hard negatives per example.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub negatives: usize,
    /// Passages in the search corpus (the examples' passages first, then a seeded sample).
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub corpus: usize,
    /// Float type of the exported weights.
    #[arg(long, value_enum, default_value_t = Dtype::F16)]
    pub dtype: Dtype,
    /// Training report folder (report.json and plots) to show on the page.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Tokens per text and per (query, passage) pair, here and in the page.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_length: usize,
    /// Seed of the example and corpus sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The lab's noisy positives: `mask` their pieces (a pretrained teacher knows `[MASK]`) or
    /// `delete` them (a teacher trained from scratch does not).
    #[arg(long, default_value = "mask", value_parser = parse_noisy_mode)]
    pub noisy_mode: NoisyMode,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

pub fn run(args: ExportWebArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.max_length < 8 {
        bail!("--max-length {} is too small for a query and a passage", args.max_length);
    }
    let start = Instant::now();
    let out = &args.output;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if args.teacher.is_some() && args.examples == 0 {
        bail!("--examples 0 with --teacher: the lab needs at least one example");
    }

    // Models: copy, convert, then load what was written, so every number below comes from the
    // very weights the page will download.
    let student_info = copy_model(&args.student, out, "student", args.dtype, false)?;
    let teacher_info = match &args.teacher {
        Some(dir) => Some(copy_model(dir, out, "teacher", args.dtype, true)?),
        None => None,
    };
    let device = args.backend.device()?;
    let student = SentenceEncoder::load(
        &ModelSource::Dir(out.join("student")),
        &device,
        &LoadOptions { max_length: Some(args.max_length), layers: None },
    )
    .context("loading the exported student")?;
    let teacher = match &args.teacher {
        Some(_) => Some(
            CrossEncoder::load(
                &ModelSource::Dir(out.join("teacher")),
                &device,
                &CrossEncoderOptions { max_length: Some(args.max_length), new_head: false },
            )
            .context("loading the exported teacher (a cross-encoder folder with its classifier head)")?,
        ),
        None => None,
    };

    // Data.
    let data = Data::read(&args.data, &args.split)?;
    let dataset_name = args
        .data
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| args.data.display().to_string());
    eprintln!("indexing {} passages with BM25", data.docs.len());
    let bm25 = Bm25::index(&data.docs, 0.9, 0.4, &indicatif::ProgressBar::hidden());
    let mut examples = pick_examples(&data, &bm25, args.examples, args.negatives, args.seed);
    if examples.is_empty() && args.teacher.is_some() {
        bail!(
            "no query of qrels/{}.tsv in {} has a relevant passage in the corpus and {} BM25 negatives",
            args.split,
            args.data.display(),
            args.negatives
        );
    }
    if let Some(teacher) = &teacher {
        eprintln!("scoring {} examples with the teacher", examples.len());
        score_examples(teacher, &mut examples, args.batch_size)?;
    }

    let mut manifest = Manifest {
        format: FORMAT_VERSION,
        generator: format!("adam {}", env!("CARGO_PKG_VERSION")),
        dataset: DatasetInfo { name: dataset_name.clone(), split: args.split.clone(), negatives: "bm25".into() },
        student: student_info,
        teacher: teacher_info,
        settings: LabSettings { noisy_mode: args.noisy_mode, ..LabSettings::default() },
        max_length: args.max_length,
        examples: None,
        corpus: None,
        report: None,
        files: Vec::new(),
    };
    if teacher.is_some() {
        let set = ExampleSet { dataset: dataset_name, split: args.split.clone(), examples: examples.clone() };
        write_json(&out.join("examples.json"), &set)?;
        manifest.examples = Some("examples.json".into());
    }

    // Search corpus with the student's vectors.
    if args.corpus > 0 {
        let picked = pick_corpus(&data, &examples, args.corpus, args.seed);
        eprintln!("embedding {} corpus passages with the student", picked.len());
        let passages: Vec<CorpusPassage> = picked
            .iter()
            .map(|&d| CorpusPassage { id: data.docs[d].id.clone(), text: data.texts[d].clone() })
            .collect();
        let vectors = embed_all(&student, &passages, args.batch_size)?;
        write_json(&out.join("corpus.json"), &passages)?;
        let mut file = AtomicFile::create(&out.join("corpus.f16"))?;
        for v in &vectors {
            for &x in v {
                file.writer().write_all(&f32_to_half(x).to_le_bytes())?;
            }
        }
        file.commit()?;
        manifest.corpus = Some(CorpusInfo {
            passages: "corpus.json".into(),
            vectors: "corpus.f16".into(),
            count: passages.len(),
            dim: student.dim(),
        });
    }

    if let Some(report) = &args.report {
        manifest.report = Some(copy_report(report, out)?);
    }

    // Every file with its sizes; the manifest itself is listed without sizes of its own.
    let mut files = Vec::new();
    let mut listed: Vec<String> = Vec::new();
    for model in std::iter::once(&manifest.student).chain(manifest.teacher.as_ref()) {
        listed.extend(model.files.iter().map(|f| format!("{}/{f}", model.dir)));
    }
    listed.extend(manifest.examples.iter().cloned());
    if let Some(c) = &manifest.corpus {
        listed.push(c.passages.clone());
        listed.push(c.vectors.clone());
    }
    if let Some(r) = &manifest.report {
        listed.extend(r.json.iter().cloned());
        listed.extend(r.images.iter().cloned());
    }
    for rel in listed {
        files.push(file_info(out, &rel)?);
    }
    manifest.files = files;
    write_json(&out.join("manifest.json"), &manifest)?;
    print_sizes(&manifest, out)?;
    eprintln!("wrote {} in {:.1} s", out.display(), start.elapsed().as_secs_f64());
    Ok(())
}

/// Copies what the loader reads from a model folder into `out/role`, converting the weights.
fn copy_model(src: &Path, out: &Path, role: &str, dtype: Dtype, cross_encoder: bool) -> Result<ModelInfo> {
    let config_path = src.join("config.json");
    let config_bytes =
        std::fs::read(&config_path).with_context(|| format!("{role} {}: no config.json", src.display()))?;
    BertConfig::from_json(&config_bytes, &config_path)?;
    let dst = out.join(role);
    if dst.exists() {
        std::fs::remove_dir_all(&dst).with_context(|| format!("cannot clear {}", dst.display()))?;
    }
    std::fs::create_dir_all(&dst)?;
    let mut files = vec!["config.json".to_string(), "tokenizer.json".to_string()];
    if !src.join("tokenizer.json").is_file() {
        bail!("{role} {}: tokenizer.json is missing (the Hugging Face fast tokenizer file)", src.display());
    }
    if !cross_encoder {
        for optional in ["modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"] {
            if src.join(optional).is_file() {
                files.push(optional.into());
            }
        }
        if src.join("modules.json").is_file() {
            #[derive(serde::Deserialize)]
            struct Module {
                #[serde(default)]
                path: String,
            }
            let modules: Vec<Module> = serde_json::from_slice(&std::fs::read(src.join("modules.json"))?)
                .with_context(|| format!("{}: not a modules.json list", src.join("modules.json").display()))?;
            for m in modules {
                let rel = format!("{}/config.json", m.path.trim_end_matches('/'));
                if !m.path.is_empty() && src.join(&rel).is_file() {
                    files.push(rel);
                }
            }
        }
    }
    for rel in &files {
        let to = dst.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(src.join(rel), &to)
            .with_context(|| format!("copying {} to {}", src.join(rel).display(), to.display()))?;
    }
    let weights = src.join("model.safetensors");
    if !weights.is_file() {
        bail!("{role} {}: model.safetensors is missing", src.display());
    }
    let bytes = std::fs::read(&weights).with_context(|| format!("reading {}", weights.display()))?;
    let converted = match dtype {
        Dtype::F16 => to_f16_safetensors(&bytes).with_context(|| format!("converting {}", weights.display()))?,
        Dtype::F32 => bytes,
    };
    std::fs::write(dst.join("model.safetensors"), converted)?;
    files.push("model.safetensors".into());
    Ok(ModelInfo {
        dir: role.into(),
        files,
        dtype: match dtype {
            Dtype::F16 => "f16".into(),
            Dtype::F32 => "f32".into(),
        },
        source: src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    })
}

/// The same safetensors file with every f32 tensor stored as f16 (round to nearest even);
/// other tensors and the metadata are kept. A weight beyond f16's range (|x| > 65504) is an
/// error rather than a silent infinity.
pub fn to_f16_safetensors(bytes: &[u8]) -> Result<Vec<u8>> {
    use safetensors::tensor::{Dtype as St, SafeTensors, TensorView};
    let (_, metadata) =
        SafeTensors::read_metadata(bytes).map_err(|e| anyhow::anyhow!("not a safetensors file: {e:?}"))?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("not a safetensors file: {e:?}"))?;
    let mut owned: Vec<(String, St, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in tensors.tensors() {
        let (dtype, data) = if view.dtype() == St::F32 {
            let mut half = Vec::with_capacity(view.data().len() / 2);
            for b in view.data().chunks_exact(4) {
                let x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let h = f32_to_half(x);
                if x.is_finite() && h & 0x7fff == 0x7c00 {
                    bail!("tensor `{name}` holds {x}, beyond f16's range: export with --dtype f32");
                }
                half.extend_from_slice(&h.to_le_bytes());
            }
            (St::F16, half)
        } else {
            (view.dtype(), view.data().to_vec())
        };
        owned.push((name, dtype, view.shape().to_vec(), data));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<std::result::Result<_, safetensors::SafeTensorError>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    safetensors::serialize(views, metadata.metadata().clone()).map_err(|e| anyhow::anyhow!("{e:?}"))
}

struct Data {
    docs: Vec<Document>,
    /// `Document::full_text` of each document.
    texts: Vec<String>,
    index: HashMap<String, usize>,
    queries: Vec<(String, String)>,
    qrels: adam_core::data::Qrels,
}

impl Data {
    fn read(data: &Path, split: &str) -> Result<Self> {
        let dataset = crate::dataset::Dataset::load(data, split)?;
        if dataset.corpus.is_empty() {
            bail!("{} has no passages", dataset.files.corpus_path()?.display());
        }
        let docs = dataset.corpus;
        let texts = docs.iter().map(Document::full_text).collect();
        let index = docs.iter().enumerate().map(|(i, d)| (d.id.clone(), i)).collect();
        let queries = dataset.queries.into_iter().map(|q| (q.id, q.text)).collect();
        Ok(Self { docs, texts, index, queries, qrels: dataset.qrels })
    }
}

/// A seeded shuffle (the trainer's permutation, so data order is seeded the same way everywhere).
fn shuffle<T: Copy>(items: &mut Vec<T>, seed: u64) {
    *items = permutation(items.len(), seed).into_iter().map(|i| items[i]).collect();
}

/// Up to `n` queries of the split (seeded order) with their best-graded passage and the top
/// BM25 passages that are not judged relevant and differ from the positive.
fn pick_examples(data: &Data, bm25: &Bm25, n: usize, negatives: usize, seed: u64) -> Vec<Example> {
    let query_text: HashMap<&str, &str> = data.queries.iter().map(|(i, t)| (i.as_str(), t.as_str())).collect();
    let mut ids: Vec<&String> = data.qrels.keys().filter(|q| query_text.contains_key(q.as_str())).collect();
    shuffle(&mut ids, seed);
    let mut out = Vec::new();
    for qid in ids {
        if out.len() == n {
            break;
        }
        let judged = &data.qrels[qid];
        let mut relevant: Vec<(&String, i32)> =
            judged.iter().filter(|(d, g)| **g > 0 && data.index.contains_key(*d)).map(|(d, g)| (d, *g)).collect();
        relevant.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let Some(&(pos_id, _)) = relevant.first() else { continue };
        let pos = data.index[pos_id];
        let query = query_text[qid.as_str()];
        let mut negs = Vec::new();
        for (d, _) in bm25.search(&data.docs, query, negatives + judged.len() + 20) {
            if negs.len() == negatives {
                break;
            }
            let doc = &data.docs[d];
            if judged.get(&doc.id).is_some_and(|g| *g > 0) || data.texts[d] == data.texts[pos] {
                continue;
            }
            negs.push(Passage { id: doc.id.clone(), text: data.texts[d].clone() });
        }
        if negs.len() < negatives {
            continue;
        }
        out.push(Example {
            query_id: qid.clone(),
            query: query.to_string(),
            positive: Passage { id: pos_id.clone(), text: data.texts[pos].clone() },
            negatives: negs,
            teacher: None,
        });
    }
    out
}

/// The teacher's scores of every example's positive and negatives, batched across examples.
fn score_examples(teacher: &CrossEncoder, examples: &mut [Example], batch_size: usize) -> Result<()> {
    let tok = &teacher.model.tokenizer;
    let mut pairs: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
    for e in examples.iter() {
        let q = tok.word_pieces(&e.query)?;
        for p in std::iter::once(&e.positive).chain(&e.negatives) {
            pairs.push((q.clone(), tok.word_pieces(&p.text)?));
        }
    }
    let mut scores = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(batch_size) {
        let refs: Vec<(&[u32], &[u32])> = chunk.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        let batch = tok.encode_piece_pairs(&refs);
        let got: Vec<f32> = teacher
            .score_batch(&batch)
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading teacher scores: {e:?}"))?;
        scores.extend(got);
    }
    let mut it = scores.into_iter();
    for e in examples.iter_mut() {
        let positive = it.next().expect("one score per pair");
        let negatives = e.negatives.iter().map(|_| it.next().expect("one score per pair")).collect();
        e.teacher = Some(ExampleScores { positive, negatives });
    }
    Ok(())
}

/// The examples' passages, then a seeded sample of the rest, `n` in all, no duplicate ids.
fn pick_corpus(data: &Data, examples: &[Example], n: usize, seed: u64) -> Vec<usize> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for e in examples {
        for p in std::iter::once(&e.positive).chain(&e.negatives) {
            if out.len() < n && seen.insert(p.id.clone()) {
                out.push(data.index[&p.id]);
            }
        }
    }
    let mut rest: Vec<usize> = (0..data.docs.len()).collect();
    shuffle(&mut rest, seed ^ 0xC0_4B05);
    for d in rest {
        if out.len() >= n {
            break;
        }
        if seen.insert(data.docs[d].id.clone()) {
            out.push(d);
        }
    }
    out
}

/// Student vectors of the passages, batches of similar length.
fn embed_all(student: &SentenceEncoder, passages: &[CorpusPassage], batch_size: usize) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..passages.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(passages[i].text.len()));
    let mut vectors = vec![Vec::new(); passages.len()];
    for batch in order.chunks(batch_size) {
        let texts: Vec<&str> = batch.iter().map(|&i| passages[i].text.as_str()).collect();
        for (&i, v) in batch.iter().zip(student.embed(&texts)?) {
            vectors[i] = v;
        }
    }
    Ok(vectors)
}

/// Copies `report.json` and the plots (svg, png) of a report folder into `out/report`.
fn copy_report(src: &Path, out: &Path) -> Result<ReportInfo> {
    if !src.is_dir() {
        bail!("--report {}: not a folder", src.display());
    }
    let dst = out.join("report");
    if dst.exists() {
        std::fs::remove_dir_all(&dst)?;
    }
    std::fs::create_dir_all(&dst)?;
    let mut names: Vec<String> = std::fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut json = None;
    let mut images = Vec::new();
    for name in names {
        let lower = name.to_lowercase();
        let keep = if name == "report.json" {
            let bytes = std::fs::read(src.join(&name))?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .with_context(|| format!("{}: not valid JSON", src.join(&name).display()))?;
            json = Some(format!("report/{name}"));
            true
        } else if lower.ends_with(".svg") || lower.ends_with(".png") {
            images.push(format!("report/{name}"));
            true
        } else {
            false
        };
        if keep {
            std::fs::copy(src.join(&name), dst.join(&name))?;
        }
    }
    if json.is_none() && images.is_empty() {
        bail!("--report {}: no report.json and no .svg/.png plot in it", src.display());
    }
    Ok(ReportInfo { dir: "report".into(), json, images })
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    serde_json::to_writer(file.writer(), value)?;
    file.commit()
}

fn file_info(dir: &Path, rel: &str) -> Result<FileInfo> {
    let path = dir.join(rel);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(FileInfo { path: rel.into(), bytes: bytes.len() as u64, gzip_bytes: gzip_len(&bytes) })
}

/// Length of `bytes` gzipped at level 6 (what a compressing web server sends), measured with
/// the system's `gzip` (a compression crate here would rebuild burn's dependency tree with other
/// features); `None` where there is no gzip.
pub fn gzip_len(bytes: &[u8]) -> Option<u64> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("gzip")
        .args(["-6", "-c", "-n"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let mut out = child.stdout.take()?;
    let len = std::io::copy(&mut out, &mut std::io::sink()).ok()?;
    let wrote = writer.join().ok()?.is_ok();
    (child.wait().ok()?.success() && wrote).then_some(len)
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Prints each group's raw and gzipped size, and the totals of the two kinds of page.
fn print_sizes(manifest: &Manifest, out: &Path) -> Result<()> {
    let manifest_info = file_info(out, "manifest.json")?;
    let mut groups: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let gzip_ok = manifest.files.iter().all(|f| f.gzip_bytes.is_some());
    for f in manifest.files.iter().chain([&manifest_info]) {
        let group = match f.path.split('/').next().unwrap_or("") {
            "student" => "student model",
            "teacher" => "teacher model",
            "report" => "report",
            _ if f.path.starts_with("corpus") => "search corpus",
            _ => "examples + manifest",
        };
        let e = groups.entry(group).or_default();
        e.0 += f.bytes;
        e.1 += f.gzip_bytes.unwrap_or(0);
    }
    let gz = |b: u64| if gzip_ok { mib(b) } else { "n/a".into() };
    println!("{:<22} {:>12} {:>12}", "assets", "raw", "gzip");
    let (mut total, mut total_gz) = (0, 0);
    for (name, (raw, gz_bytes)) in &groups {
        println!("{name:<22} {:>12} {:>12}", mib(*raw), gz(*gz_bytes));
        total += raw;
        total_gz += gz_bytes;
    }
    let teacher = groups.get("teacher model").copied().unwrap_or_default();
    println!("{:<22} {:>12} {:>12}", "total", mib(total), gz(total_gz));
    if manifest.teacher.is_some() {
        println!("{:<22} {:>12} {:>12}", "without the teacher", mib(total - teacher.0), gz(total_gz - teacher.1));
    }
    if !gzip_ok {
        println!("(gzip sizes need the gzip program)");
    }
    println!("wrote {} (manifest.json lists every file with its sizes)", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_keeps_names_shapes_and_other_dtypes() {
        use safetensors::tensor::{Dtype as St, SafeTensors, TensorView};
        let w: Vec<u8> = [1.0f32, -0.5, 0.1, -60000.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let ids: Vec<u8> = [3i64, 4].iter().flat_map(|x| x.to_le_bytes()).collect();
        let views = vec![
            ("w".to_string(), TensorView::new(St::F32, vec![2, 2], &w).unwrap()),
            ("ids".to_string(), TensorView::new(St::I64, vec![2], &ids).unwrap()),
        ];
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        let bytes = safetensors::serialize(views, Some(meta)).unwrap();
        let half = to_f16_safetensors(&bytes).unwrap();
        let st = SafeTensors::deserialize(&half).unwrap();
        let w16 = st.tensor("w").unwrap();
        assert_eq!((w16.dtype(), w16.shape()), (St::F16, &[2usize, 2][..]));
        let back = adam_core::demo::f16_to_f32(w16.data()).unwrap();
        assert_eq!(back[..2], [1.0, -0.5]);
        assert!((back[2] - 0.1).abs() < 1e-4);
        assert_eq!(back[3], -60000.0);
        assert_eq!(st.tensor("ids").unwrap().data(), &ids[..]);
        let (_, m) = SafeTensors::read_metadata(&half).unwrap();
        assert_eq!(m.metadata().as_ref().unwrap()["format"], "pt");
        assert!(to_f16_safetensors(b"not safetensors").is_err());
        let big: Vec<u8> = 70000.0f32.to_le_bytes().to_vec();
        let views = vec![("big".to_string(), TensorView::new(St::F32, vec![1], &big).unwrap())];
        let bytes = safetensors::serialize(views, None).unwrap();
        let err = to_f16_safetensors(&bytes).unwrap_err().to_string();
        assert!(err.contains("big") && err.contains("--dtype f32"), "{err}");
    }
}
