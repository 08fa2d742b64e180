//! `adam distill --config FILE.toml [--resume]`: trains a dual-encoder student on the cached
//! teacher scores (and dark examples) of `adam teacher score`, with one of the methods of
//! METHOD.md, dev evaluation, a JSONL log, and resumable checkpoints.
//!
//! Determinism: the data order of epoch `e` is a permutation seeded by `(seed, e)`, a query's
//! positive and the dropout masks of micro-batch `j` are seeded by `(seed, j)`, the learning rate
//! and `lambda(t)` are functions of the step. A checkpoint therefore needs only the weights, the
//! optimizer moments and the step to continue exactly as an uninterrupted run would.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use adam_core::config::{BertConfig, SentenceConfig};
use adam_core::dark::mix_seed;
use adam_core::data::{Document, Qrels, Query};
use adam_core::encoder::SentenceEncoder;
use adam_core::loader::{LoadOptions, LoadedModel, ModelSource, load_model};
use adam_core::loss::{adam_objective, in_batch_scores, listwise_kl, margin_mse};
use adam_core::metrics::{Measures, evaluate};
use adam_core::model::{BertModel, Transformer, l2_normalize, pool};
use adam_core::save::{ModelFile, SaveOptions, read_side_files, student_files, write_folder};
use adam_core::selfpaced::SelfPacedConfig;
use adam_core::tokenize::TextTokenizer;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::checkpoint;
use crate::instances::{Collection, key_of, permutation};
use crate::distill_config::{DistillConfig, EvalConfig, Method, StudentConfig, first_difference};
use crate::optim::{Accumulator, Optimizer, initialize_params, non_finite};
use crate::io::round_sig as round;
use crate::models::read_scratch_model;
use crate::progress;
use crate::retrieval::retrieve;
use crate::score_cache::{self, Cache};

#[derive(clap::Args, Debug)]
pub struct DistillArgs {
    /// Config file (TOML); see README.md for the keys.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Continue from the run folder's checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Stop after this step as if the process were killed (for testing --resume).
    #[arg(long, hide = true)]
    pub halt_after_step: Option<usize>,
    /// Do not print the final dev measures (they are in log.jsonl either way).
    #[arg(long)]
    pub quiet: bool,
}

/// A student being trained: its network and what is needed to save or evaluate it.
pub struct Student {
    pub bert: BertModel,
    pub config: BertConfig,
    pub sentence: SentenceConfig,
    pub tokenizer: TextTokenizer,
    pub side_files: Vec<ModelFile>,
}

/// Builds the initial student on `device` (random parts seeded by `seed`).
pub fn build_student(cfg: &StudentConfig, device: &Device, seed: u64) -> Result<Student> {
    device.seed(seed);
    let max_length = cfg.max_query_length.max(cfg.max_passage_length);
    if let Some(dir) = &cfg.model {
        let options = LoadOptions { max_length: Some(max_length), layers: cfg.layers };
        let loaded = load_model(&ModelSource::Dir(dir.clone()), device, &options);
        let LoadedModel { transformer, config, sentence, tokenizer } = match cfg.layers {
            Some(k) => loaded.with_context(|| format!("student.layers = {k}"))?,
            None => loaded?,
        };
        let Some(bert) = transformer.into_bert() else {
            bail!(
                "student.model = {}: the student must be a BERT model (its config.json says model_type `{}`); \
                 other encoders can teach (adam teacher score) but are not trained as students yet",
                dir.display(),
                config.model_type
            );
        };
        return Ok(Student { bert, config, sentence, tokenizer, side_files: read_side_files(dir)? });
    }
    let (Some(config_path), Some(tokenizer_path)) = (&cfg.config, &cfg.tokenizer) else {
        bail!("student: give `model`, or `config` and `tokenizer`");
    };
    let (config, tokenizer) = read_scratch_model(config_path, tokenizer_path, max_length)?;
    let max_length = max_length.min(config.max_tokens());
    let sentence = SentenceConfig { pooling: cfg.pooling, normalize: cfg.normalize, max_seq_length: max_length };
    let bert = BertModel::new(&config, device);
    initialize_params(&bert);
    Ok(Student { bert, config, sentence, tokenizer, side_files: Vec::new() })
}

impl Student {
    /// Text vectors `[n, dim]` of already tokenized sequences (pieces without specials).
    fn embed(&self, sequences: &[&[u32]], max_length: usize, device: &Device) -> Tensor<2> {
        let batch = self.tokenizer.encode_pieces(sequences, max_length);
        let (ids, types, padding) = batch.to_tensors(device);
        let tokens = self.bert.forward(ids, types, padding.clone());
        let pooled = pool(tokens, padding, self.sentence.pooling);
        if self.sentence.normalize { l2_normalize(pooled) } else { pooled }
    }

    /// A frozen copy (no autodiff, dropout off) as a `SentenceEncoder` on `device`.
    fn encoder(&self, device: &Device) -> SentenceEncoder {
        SentenceEncoder {
            model: LoadedModel {
                transformer: Transformer::Bert(self.bert.valid()),
                config: self.config.clone(),
                sentence: self.sentence.clone(),
                tokenizer: self.tokenizer.clone(),
            },
            device: device.clone(),
        }
    }

    fn files(&self, half: bool) -> Result<Vec<ModelFile>> {
        Ok(student_files(
            &self.bert.valid(),
            &self.config,
            &self.sentence,
            &self.tokenizer,
            &self.side_files,
            SaveOptions { half },
        )?)
    }
}

/// One cached query, tokenized for the student.
struct Example {
    query: Vec<u32>,
    /// (pieces, teacher score)
    positives: Vec<(Vec<u32>, f32)>,
    negatives: Vec<(Vec<u32>, f32)>,
    dark: Vec<(Vec<u32>, f32)>,
    /// Dark examples of the cache left out for missing the band (`train.drop_outside_band`).
    dark_dropped: usize,
    key: u64,
    /// The query's id, for messages.
    id: String,
}

fn examples(
    cache: &Cache,
    beir: &Collection,
    tokenizer: &TextTokenizer,
    method: Method,
    drop_outside_band: bool,
    path: &Path,
) -> Result<Vec<Example>> {
    let mut doc_pieces: HashMap<String, Vec<u32>> = HashMap::new();
    let mut out = Vec::with_capacity(cache.records.len());
    for (i, r) in cache.records.iter().enumerate() {
        let line = i + 2;
        let q = *beir.query_index.get(&r.query_id).ok_or_else(|| {
            anyhow::anyhow!("{}:{line}: query `{}` is not a query of {}", path.display(), r.query_id, beir.dir.display())
        })?;
        let mut docs = |list: &[score_cache::ScoredDoc], field: &str| -> Result<Vec<(Vec<u32>, f32)>> {
            let mut v = Vec::with_capacity(list.len());
            for d in list {
                if !doc_pieces.contains_key(d.doc_id.as_str()) {
                    let idx = *beir.doc_index.get(&d.doc_id).ok_or_else(|| {
                        anyhow::anyhow!(
                            "{}:{line}: field `{field}`: document `{}` is not in the corpus of {}",
                            path.display(),
                            d.doc_id,
                            beir.dir.display()
                        )
                    })?;
                    doc_pieces.insert(d.doc_id.clone(), tokenizer.word_pieces(&beir.corpus[idx].full_text())?);
                }
                v.push((doc_pieces[d.doc_id.as_str()].clone(), d.score));
            }
            Ok(v)
        };
        let positives = docs(&r.positives, "positives")?;
        let negatives = docs(&r.negatives, "negatives")?;
        if positives.is_empty() {
            bail!("{}:{line}: query `{}` has no positive", path.display(), r.query_id);
        }
        if negatives.is_empty() && matches!(method, Method::Kd | Method::MarginMse) {
            bail!("{}:{line}: query `{}` has no negative, which {method:?} needs", path.display(), r.query_id);
        }
        let outside = |d: &&adam_core::dark::DarkExample| drop_outside_band && d.band_reached == Some(false);
        let dark: Vec<(Vec<u32>, f32)> = r
            .dark
            .iter()
            .filter(|d| !outside(d))
            .filter_map(|d| d.teacher_score.filter(|s| s.is_finite()).map(|s| (d.ids.clone(), s)))
            .collect();
        let dark_dropped = r.dark.iter().filter(outside).count();
        out.push(Example {
            query: tokenizer.word_pieces(&beir.queries[q].text)?,
            positives,
            negatives,
            dark,
            dark_dropped,
            key: key_of(&r.query_id),
            id: r.query_id.clone(),
        });
    }
    Ok(out)
}

/// Losses of one micro-batch, as one-element tensors, and what self-paced selection kept.
struct BatchLoss {
    total: Tensor<1>,
    contrastive: Option<Tensor<1>>,
    kd: Option<Tensor<1>>,
    lambda: Option<f32>,
    kept: Option<usize>,
    /// Dark examples the batch fed to the loss, and those of its queries left out for missing
    /// the band (methods with dark examples).
    dark: Option<(usize, usize)>,
}

struct Trainer<'a> {
    config: &'a DistillConfig,
    examples: &'a [Example],
    device: Device,
}

impl Trainer<'_> {
    /// Forward pass and losses of the instances `batch` at optimiser step `step` of `total`.
    fn batch_loss(&self, student: &Student, batch: &[usize], epoch: usize, step: usize, total: usize) -> BatchLoss {
        let cfg = self.config;
        let method = cfg.method;
        let b = batch.len();
        let chosen: Vec<&Example> = batch.iter().map(|&i| &self.examples[i]).collect();
        let n_neg = chosen.iter().map(|e| e.negatives.len().min(cfg.train.negatives)).max().unwrap_or(0);
        let dark_cap = if method.uses_dark() { cfg.train.dark_per_query.unwrap_or(usize::MAX) } else { 0 };
        let n_dark = chosen.iter().map(|e| e.dark.len().min(dark_cap)).max().unwrap_or(0);
        let orig = 1 + n_neg;
        let cols = orig + n_dark;
        let empty: Vec<u32> = Vec::new();
        let mut sequences: Vec<&[u32]> = Vec::with_capacity(b * cols);
        let mut teacher = vec![0.0f32; b * cols];
        let mut padding = vec![true; b * cols];
        let mut original_scores: Vec<Vec<f32>> = Vec::with_capacity(b);
        for (r, e) in chosen.iter().enumerate() {
            let positive = &e.positives[(epoch + (e.key % 997) as usize) % e.positives.len()];
            let mut row: Vec<Option<&(Vec<u32>, f32)>> = vec![None; cols];
            row[0] = Some(positive);
            for (j, n) in e.negatives.iter().take(n_neg).enumerate() {
                row[1 + j] = Some(n);
            }
            for (j, d) in e.dark.iter().take(n_dark).enumerate() {
                row[orig + j] = Some(d);
            }
            original_scores.push(row[..orig].iter().flatten().map(|(_, s)| *s).collect());
            for (c, slot) in row.iter().enumerate() {
                match slot {
                    Some((pieces, score)) => {
                        sequences.push(pieces);
                        teacher[r * cols + c] = *score;
                        padding[r * cols + c] = false;
                    }
                    None => sequences.push(&empty),
                }
            }
        }
        let device = &self.device;
        let queries: Vec<&[u32]> = chosen.iter().map(|e| &e.query[..]).collect();
        let q = student.embed(&queries, cfg.student.max_query_length, device);
        let passages = student.embed(&sequences, cfg.student.max_passage_length, device);
        let dim = student.config.hidden_size;
        let passages = passages.reshape([b, cols, dim]);
        let scores = (passages.clone() * q.clone().unsqueeze_dim::<3>(1)).sum_dim(2).reshape([b, cols]);
        let teacher = Tensor::<2>::from_data(TensorData::new(teacher, [b, cols]), device);
        let pad_all = Tensor::<2, burn::tensor::Bool>::from_data(TensorData::new(padding, [b, cols]), device);
        let pad_orig = pad_all.clone().narrow(1, 0, orig);
        let loss = &cfg.adam.loss;
        let contrastive = || {
            if loss.in_batch_negatives {
                let ib = in_batch_scores(q.clone(), passages.clone().narrow(1, 0, orig), Some(&pad_orig));
                loss.contrastive(ib.scores, &ib.targets, ib.padding.as_ref())
            } else {
                loss.contrastive(scores.clone().narrow(1, 0, orig), &vec![0; b], Some(&pad_orig))
            }
        };
        let orig_scores = || scores.clone().narrow(1, 0, orig);
        let orig_teacher = || teacher.clone().narrow(1, 0, orig);
        match method {
            Method::Ce => {
                let c = contrastive().mean();
                BatchLoss { total: c.clone(), contrastive: Some(c), kd: None, lambda: None, kept: None, dark: None }
            }
            Method::Kd => {
                let kd = listwise_kl(
                    orig_scores(),
                    orig_teacher(),
                    Some(&pad_orig),
                    loss.kd_student_temperature,
                    loss.kd_teacher_temperature,
                )
                .mean();
                BatchLoss { total: kd.clone(), contrastive: None, kd: Some(kd), lambda: None, kept: None, dark: None }
            }
            Method::MarginMse => {
                let kd = margin_mse(orig_scores(), orig_teacher(), Some(&pad_orig)).mean();
                BatchLoss { total: kd.clone(), contrastive: None, kd: Some(kd), lambda: None, kept: None, dark: None }
            }
            Method::Adam | Method::AdamNoSelfPaced | Method::AdamNoDark => {
                let self_paced = if method.self_paced() {
                    cfg.adam.self_paced.clone()
                } else {
                    SelfPacedConfig { enabled: false, ..cfg.adam.self_paced.clone() }
                };
                let confidences = self_paced.confidences(&original_scores);
                let selection = self_paced.select(step, total, &confidences);
                let kd = if method.uses_dark() {
                    loss.kd(scores.clone(), teacher.clone(), Some(&pad_all))
                } else {
                    loss.kd(orig_scores(), orig_teacher(), Some(&pad_orig))
                };
                let parts = adam_objective(contrastive(), kd, selection.weight_tensor(device), loss.alpha);
                BatchLoss {
                    total: parts.total,
                    contrastive: Some(parts.contrastive),
                    kd: Some(parts.kd),
                    lambda: Some(selection.lambda),
                    kept: Some(selection.kept.len()),
                    dark: method.uses_dark().then(|| {
                        let fed = chosen.iter().map(|e| e.dark.len().min(n_dark)).sum();
                        (fed, chosen.iter().map(|e| e.dark_dropped).sum())
                    }),
                }
            }
        }
    }
}

/// Dev queries, their qrels and the corpus they are searched in.
struct DevSet {
    corpus: Vec<Document>,
    queries: Vec<Query>,
    qrels: Qrels,
}

fn dev_set(beir: &Collection, eval: &EvalConfig) -> Result<DevSet> {
    let all = beir.qrels(&eval.split).context("eval.split")?;
    let mut qrels = Qrels::new();
    let mut queries = Vec::new();
    for (q, judged) in &all {
        if eval.max_queries.is_some_and(|m| queries.len() >= m) {
            break;
        }
        if let Some(&i) = beir.query_index.get(q)
            && judged.values().any(|&g| g > 0)
        {
            queries.push(beir.queries[i].clone());
            qrels.insert(q.clone(), judged.clone());
        }
    }
    if queries.is_empty() {
        bail!("eval.split = `{}`: no judged query of {} is among the queries of {}", eval.split, beir.qrels_path(&eval.split)?.display(), beir.dir.display());
    }
    let corpus = match eval.corpus_limit {
        None => beir.corpus.clone(),
        Some(limit) => {
            let mut keep = vec![false; beir.corpus.len()];
            keep.iter_mut().take(limit).for_each(|k| *k = true);
            for judged in qrels.values() {
                for d in judged.keys() {
                    if let Some(&i) = beir.doc_index.get(d) {
                        keep[i] = true;
                    }
                }
            }
            beir.corpus.iter().zip(keep).filter(|(_, k)| *k).map(|(d, _)| d.clone()).collect()
        }
    };
    Ok(DevSet { corpus, queries, qrels })
}

fn dev_measures(student: &Student, dev: &DevSet, eval: &EvalConfig, device: &Device) -> Result<Measures> {
    let encoder = student.encoder(device);
    let run = retrieve(&encoder, &dev.corpus, &dev.queries, eval.depth, eval.batch_size)?;
    Ok(evaluate(&run, &dev.qrels, eval.rel_threshold).mean)
}

/// What a checkpoint records besides the weights and optimizer moments.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// Optimiser steps done.
    step: usize,
    /// Micro-batches done (step × grad_accumulation), i.e. the position in the data order.
    micro_batches: usize,
    epoch: usize,
    /// Next micro-batch within the epoch.
    batch_in_epoch: usize,
    /// The randomness of the run: everything is seeded from `seed` and the step / micro-batch.
    seed: u64,
    config: serde_json::Value,
}

/// The run's log: one JSON object per line, flushed as written. On resume, lines past the
/// checkpoint's step are dropped so the finished log equals an uninterrupted run's.
struct Log {
    file: std::fs::File,
    path: PathBuf,
}

impl Log {
    fn open(path: &Path, keep_through_step: usize) -> Result<Self> {
        let mut kept = Vec::new();
        if keep_through_step > 0
            && let Ok(file) = std::fs::File::open(path)
        {
            for line in BufReader::new(file).lines() {
                let line = line?;
                let step = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("step")?.as_u64());
                if step.is_some_and(|s| s as usize <= keep_through_step) {
                    kept.push(line);
                }
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        for line in kept {
            writeln!(file, "{line}")?;
        }
        file.flush()?;
        Ok(Self { file, path: path.to_path_buf() })
    }

    fn write(&mut self, value: &serde_json::Value) -> Result<()> {
        writeln!(self.file, "{value}").with_context(|| format!("writing {}", self.path.display()))?;
        self.file.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}

fn measures_json(m: &Measures) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (name, value) in Measures::NAMES.iter().zip(m.values()) {
        map.insert(name.to_string(), round(value).into());
    }
    serde_json::Value::Object(map)
}

pub fn run(args: DistillArgs) -> Result<()> {
    let config = DistillConfig::load(&args.config)?;
    let config_json = serde_json::to_value(&config)?;
    let out = &config.output;
    let checkpoint_dir = out.join("checkpoint");
    let state: Option<State> = checkpoint::load_state(&checkpoint_dir)?;
    if state.is_some() && !args.resume {
        bail!(
            "{} holds a checkpoint: pass --resume to continue that run, or choose another `output`",
            checkpoint_dir.display()
        );
    }
    if let Some(s) = &state
        && let Some(diff) = first_difference(&s.config, &config_json, "")
    {
        bail!("{}: the config changed since the checkpoint ({diff}); resume with the same config", args.config.display());
    }
    if args.resume && state.is_none() {
        eprintln!("no checkpoint in {}: starting from the beginning", checkpoint_dir.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

    // MS MARCO keeps queries per split: the cache's (train) and the dev split's.
    let mut splits = vec!["train"];
    if let Some(eval) = &config.eval {
        splits.push(eval.split.as_str());
    }
    let beir = Collection::load(&config.data.dir, &splits)?;
    let cache = score_cache::read_complete(&config.data.teacher_scores)?;
    let device = args.backend.device()?;
    let ad = device.clone().autodiff();
    let mut student = build_student(&config.student, &ad, config.seed)?;
    // Dark examples are word pieces: the student must read them in the vocabulary they were made in.
    if config.method.uses_dark() {
        let scores = config.data.teacher_scores.display();
        if cache.header.vocab_size != student.tokenizer.vocab_size() {
            bail!(
                "{scores}: dark examples are word pieces of a {}-token vocabulary, but the student's tokenizer has {} tokens (make them in the student's pieces with `adam teacher score --student-tokenizer`, or use a method without dark examples)",
                cache.header.vocab_size,
                student.tokenizer.vocab_size()
            );
        }
        match &cache.header.vocab_hash {
            Some(hash) if *hash != score_cache::vocab_hash(&student.tokenizer) => bail!(
                "{scores}: dark examples were made in another vocabulary of the same size (vocab_hash {hash}, the student's {}); make them in the student's pieces with `adam teacher score --student-tokenizer`, or use a method without dark examples",
                score_cache::vocab_hash(&student.tokenizer)
            ),
            Some(_) => {}
            None => eprintln!(
                "{scores}: written before vocab_hash existed; only the vocabulary sizes were compared (rerun `adam teacher score` to check the vocabulary itself)"
            ),
        }
    }
    if config.method.uses_dark() && cache.header.dark != config.adam.dark {
        let diff = first_difference(
            &serde_json::to_value(&cache.header.dark)?,
            &serde_json::to_value(&config.adam.dark)?,
            "adam.dark",
        )
        .unwrap_or_default();
        bail!(
            "{}: the dark examples of {} were made with other [adam.dark] settings ({diff}, cache vs config); rerun `adam teacher score --config` with this config",
            args.config.display(),
            config.data.teacher_scores.display()
        );
    }
    let drop = config.train.drop_outside_band;
    let examples = examples(&cache, &beir, &student.tokenizer, config.method, drop, &config.data.teacher_scores)?;
    if config.method.uses_dark() {
        let kept: usize = examples.iter().map(|e| e.dark.len()).sum();
        let dropped: usize = examples.iter().map(|e| e.dark_dropped).sum();
        eprintln!("dark examples: {kept} kept, {dropped} dropped for missing the band (train.drop_outside_band = {drop})");
    }
    let dev = config.eval.as_ref().map(|e| dev_set(&beir, e)).transpose()?;

    let n = examples.len();
    let per_epoch = n.div_ceil(config.train.batch_size);
    let accum = config.optimizer.grad_accumulation;
    let total_micro = match config.train.steps {
        Some(s) => s * accum,
        None => config.train.epochs * per_epoch,
    };
    let total_steps = total_micro.div_ceil(accum);
    let mut optimizer = Optimizer::new(&config.optimizer, total_steps, &[]);
    let mut first_step = 0;
    if let Some(s) = &state {
        student.bert = checkpoint::load_model(&checkpoint_dir, student.bert)?;
        optimizer = checkpoint::load_optimizer(&checkpoint_dir, optimizer)?;
        first_step = s.step;
        eprintln!("resuming at step {} of {total_steps}", s.step);
    }
    let mut log = Log::open(&out.join("log.jsonl"), first_step)?;
    let trainer = Trainer { config: &config, examples: &examples, device: ad.clone() };
    let bar = progress::bar(total_steps as u64, "distilling steps");
    bar.set_position(first_step as u64);
    let start = Instant::now();
    let mut orders: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut last_dev: Option<Measures> = None;
    let mut last_checkpoint = state.as_ref().map(|s| s.step);
    for step in first_step..total_steps {
        let mut step_queries: Vec<String> = Vec::new();
        let micro_here = accum.min(total_micro - step * accum);
        let mut acc = Accumulator::default();
        let (mut total, mut contrastive, mut kd, mut kept, mut seen) = (0.0f64, None, None, None, 0usize);
        let mut dark: Option<(usize, usize)> = None;
        let mut lambda = None;
        let mut epoch = 0;
        for a in 0..micro_here {
            let micro = step * accum + a;
            epoch = micro / per_epoch;
            let b = micro % per_epoch;
            let order = orders.entry(epoch).or_insert_with(|| permutation(n, mix_seed(config.seed, epoch as u64)));
            let batch: Vec<usize> =
                order[b * config.train.batch_size..((b + 1) * config.train.batch_size).min(n)].to_vec();
            orders.retain(|&e, _| e >= epoch);
            ad.seed(mix_seed(config.seed ^ 0xd50f, micro as u64)); // dropout masks
            let loss = trainer.batch_loss(&student, &batch, epoch, step, total_steps);
            let scale = 1.0 / micro_here as f32;
            let value = |t: Tensor<1>| t.into_scalar::<f32>() as f64 * scale as f64;
            step_queries.extend(batch.iter().map(|&i| examples[i].id.clone()));
            let here = value(loss.total.clone());
            if !here.is_finite() {
                let at = last_checkpoint.map(|s| (checkpoint_dir.as_path(), s));
                return Err(non_finite(step, &step_queries, at, format!("the loss is {here}")));
            }
            total += here;
            if let Some(c) = loss.contrastive {
                *contrastive.get_or_insert(0.0) += value(c);
            }
            if let Some(k) = loss.kd {
                *kd.get_or_insert(0.0) += value(k);
            }
            if let Some(k) = loss.kept {
                *kept.get_or_insert(0) += k;
            }
            if let Some((fed, dropped)) = loss.dark {
                let d: &mut (usize, usize) = dark.get_or_insert((0, 0));
                *d = (d.0 + fed, d.1 + dropped);
            }
            lambda = loss.lambda.or(lambda);
            seen += batch.len();
            acc.backward(&student.bert, loss.total.mul_scalar(scale));
        }
        let lr = optimizer.lr(step);
        let (bert, grad_norm) = optimizer
            .step(student.bert, acc.take(), step)
            .map_err(|e| non_finite(step, &step_queries, last_checkpoint.map(|s| (checkpoint_dir.as_path(), s)), e))?;
        student.bert = bert;
        let done = step + 1;
        let mut line = serde_json::json!({
            "step": done, "epoch": epoch, "loss": round(total), "lr": round(lr),
            "grad_norm": round(grad_norm), "queries": seen,
        });
        if let Some(c) = contrastive {
            line["contrastive"] = round(c).into();
        }
        if let Some(k) = kd {
            line["kd"] = round(k).into();
        }
        if let Some(l) = lambda {
            line["lambda"] = round(l as f64).into();
        }
        if let Some(k) = kept {
            line["kept"] = k.into();
        }
        if let Some((fed, dropped)) = dark {
            line["dark"] = fed.into();
            line["dark_dropped"] = dropped.into();
        }
        if let (Some(eval), Some(dev)) = (&config.eval, &dev)
            && ((eval.every > 0 && done % eval.every == 0) || done == total_steps)
        {
            let m = dev_measures(&student, dev, eval, &device)?;
            line["dev"] = measures_json(&m);
            last_dev = Some(m);
        }
        log.write(&line)?;
        bar.set_message(format!("loss {total:.4}"));
        bar.inc(1);
        let every = config.checkpoint.every;
        if every > 0 && done % every == 0 && done < total_steps {
            let micro_batches = done * accum;
            let state = State {
                step: done,
                micro_batches,
                epoch: micro_batches / per_epoch,
                batch_in_epoch: micro_batches % per_epoch,
                seed: config.seed,
                config: config_json.clone(),
            };
            checkpoint::save(&checkpoint_dir, &student.bert, &optimizer, &state)?;
            last_checkpoint = Some(done);
        }
        if args.halt_after_step == Some(done) {
            bar.finish_and_clear();
            eprintln!("halted after step {done} (--halt-after-step)");
            return Ok(());
        }
    }
    bar.finish_and_clear();
    let student_dir = out.join("student");
    write_folder(&student_dir, &student.files(config.student.save_half)?)?;
    // The run is complete: its checkpoint is no longer needed (and would block a rerun).
    if checkpoint_dir.exists() {
        std::fs::remove_dir_all(&checkpoint_dir)
            .with_context(|| format!("removing {}", checkpoint_dir.display()))?;
    }
    eprintln!(
        "distilled {} ({:?}) for {} steps in {:.1} s; student saved to {}",
        n,
        config.method,
        total_steps - first_step,
        start.elapsed().as_secs_f64(),
        student_dir.display()
    );
    if let Some(m) = last_dev.filter(|_| !args.quiet) {
        println!("{}", serde_json::json!({"dev": measures_json(&m)}));
    }
    Ok(())
}
