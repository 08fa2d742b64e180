//! `adam teacher train | score | rerank`: fine-tune a cross-encoder teacher with listwise
//! cross-entropy, cache its scores (and the dark examples it selects) for distillation, and
//! rerank a run with it.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use adam_core::config::Architecture;
use adam_core::dark::{DarkConfig, DarkInstance, TeacherScores, generate_adaptive, mix_seed};
use adam_core::data::{Run, RunEntry, read_run, write_run};
use adam_core::loader::LoadedCrossEncoder;
use adam_core::loss::contrastive_loss;
use adam_core::tokenize::TextTokenizer;
use anyhow::{Context, Result, bail};
use burn::tensor::{Bool, Device, Tensor, TensorData};
use serde::Deserialize;

use crate::backend::Backend;
use crate::instances::{Collection, Instance, InstanceArgs, PieceCache, key_of, permutation, sample_negatives};
use crate::io::{AtomicFile, open, round_sig};
use crate::models::{load_teacher, save_cross_encoder, scratch_teacher};
use crate::progress;
use crate::optim::{Accumulator, OptimConfig, Optimizer, initialize_params, non_finite};
use crate::score_cache::{self, CacheHeader, CacheRecord, ScoredDoc};
use crate::teacher_model::{PieceTranslator, TeacherModel, TeacherModelArgs};

#[derive(clap::Subcommand)]
pub enum TeacherCommand {
    /// Fine-tune a cross-encoder with listwise cross-entropy over (positive, negatives) groups.
    Train(TrainArgs),
    /// Score positives, hard negatives and adaptive dark examples (a cross-encoder or a dual
    /// encoder as the teacher); cache them for `adam distill`.
    Score(ScoreArgs),
    /// Rerank the top of a TREC run with the teacher.
    Rerank(RerankArgs),
    /// What a score cache teaches: the teacher's soft labels on positives, mined negatives and
    /// each kind of dark example (table, JSON and histograms as SVG).
    Inspect(crate::teacher_inspect::InspectArgs),
}

pub fn run(command: TeacherCommand) -> Result<()> {
    match command {
        TeacherCommand::Train(args) => train(args),
        TeacherCommand::Score(args) => score(args),
        TeacherCommand::Rerank(args) => rerank(args),
        TeacherCommand::Inspect(args) => crate::teacher_inspect::run(args),
    }
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("start").required(true).args(["model", "config"])))]
pub struct TrainArgs {
    /// Model folder to start from: a cross-encoder, or with --new-head a bare BERT /
    /// sentence-transformers checkpoint.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Train from scratch instead: a BERT `config.json` (sizes), with --tokenizer.
    #[arg(long, value_name = "FILE", requires = "tokenizer", conflicts_with = "model")]
    pub config: Option<PathBuf>,
    /// The `tokenizer.json` of a teacher trained from scratch (--config).
    #[arg(long, value_name = "FILE", requires = "config")]
    pub tokenizer: Option<PathBuf>,
    /// Start a new (random, seeded) classification head when the folder has none.
    #[arg(long)]
    pub new_head: bool,
    #[command(flatten)]
    pub instances: InstanceArgs,
    /// Output model folder (BertForSequenceClassification layout), written at the end.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Passes over the training queries (ignored with --steps).
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Optimiser steps (overrides --epochs).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Queries (groups) per micro-batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Passages per group: one positive and group-size − 1 negatives.
    #[arg(long, default_value_t = 8)]
    pub group_size: usize,
    /// Negatives are sampled from each query's N hardest.
    #[arg(long, default_value_t = 30)]
    pub negatives_depth: usize,
    /// Tokens per (query, passage) pair.
    #[arg(long, default_value_t = 256)]
    pub max_length: usize,
    #[arg(long, default_value_t = 2e-5)]
    pub lr: f64,
    /// Learning rate of the new head (default: --lr).
    #[arg(long)]
    pub head_lr: Option<f64>,
    #[arg(long, default_value_t = 0.1)]
    pub warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Clip the global gradient norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = 1)]
    pub grad_accumulation: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// JSONL log: one line per step with the loss and the learning rate.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Save the weights as f16.
    #[arg(long)]
    pub half: bool,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

/// A `[rows, cols]` mask, true where `present[r]` is less than or equal to the column.
pub fn padding_mask(present: &[usize], cols: usize, device: &Device) -> Tensor<2, Bool> {
    let data: Vec<bool> =
        present.iter().flat_map(|&n| (0..cols).map(move |c| c >= n)).collect();
    Tensor::from_data(TensorData::new(data, [present.len(), cols]), device)
}

fn train(args: TrainArgs) -> Result<()> {
    let optim_config = OptimConfig {
        lr: args.lr,
        head_lr: args.head_lr,
        warmup_steps: None,
        warmup_ratio: args.warmup_ratio,
        weight_decay: args.weight_decay,
        max_grad_norm: (args.max_grad_norm > 0.0).then_some(args.max_grad_norm),
        grad_accumulation: args.grad_accumulation,
        ..OptimConfig::default()
    };
    optim_config.validate().map_err(|e| anyhow::anyhow!("--{}", e.replace('_', "-")))?;
    if args.batch_size == 0 || args.group_size < 2 {
        bail!("--batch-size must be at least 1 and --group-size at least 2 (a positive and a negative)");
    }
    let (beir, instances) = args.instances.load()?;
    let device = args.backend.device()?;
    let ad = device.autodiff();
    ad.seed(args.seed); // the new head's initialisation
    let LoadedCrossEncoder { mut model, config, tokenizer } = match (&args.model, &args.config, &args.tokenizer) {
        (Some(dir), _, _) => load_teacher(dir, &ad, args.max_length, args.new_head)?,
        (None, Some(config), Some(tokenizer)) => scratch_teacher(config, tokenizer, &ad, args.max_length)?,
        _ => bail!("give --model DIR, or --config FILE and --tokenizer FILE"),
    };
    initialize_params(&model);
    let n = instances.len();
    let per_epoch = n.div_ceil(args.batch_size);
    let accum = args.grad_accumulation;
    let total_micro = match args.steps {
        Some(s) => s * accum,
        None => args.epochs * per_epoch,
    };
    let total_steps = total_micro.div_ceil(accum);
    if total_steps == 0 {
        bail!("nothing to train: --epochs or --steps is 0");
    }
    // A new head: BERT's classifier (its pooler is pre-trained); MPNet's whole head, whose dense
    // layer (`pooler` here) transformers also starts afresh.
    let head: &[&str] = match (args.new_head, model.architecture()) {
        (false, _) => &[],
        (true, Architecture::Bert) => &["classifier"],
        (true, Architecture::MPNet) => &["classifier", "pooler"],
    };
    let mut optimizer = Optimizer::new(&optim_config, total_steps, head);
    // Written as training goes (one flushed line per step), so a long run can be followed.
    let mut log = match &args.log {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    let mut pieces = PieceCache::new(&tokenizer);
    let bar = progress::bar(total_steps as u64, "training steps");
    let start = Instant::now();
    let mut order_epoch = usize::MAX;
    let mut order = Vec::new();
    for step in 0..total_steps {
        let mut acc = Accumulator::default();
        let micro_here = accum.min(total_micro - step * accum);
        let mut loss_sum = 0.0f64;
        let mut step_queries: Vec<String> = Vec::new();
        for a in 0..micro_here {
            let micro = step * accum + a;
            let (epoch, b) = (micro / per_epoch, micro % per_epoch);
            if epoch != order_epoch {
                order = permutation(n, mix_seed(args.seed, epoch as u64));
                order_epoch = epoch;
            }
            let batch = &order[b * args.batch_size..((b + 1) * args.batch_size).min(n)];
            let k = args.group_size - 1;
            let mut pairs: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
            let mut present = Vec::new();
            for &i in batch {
                let inst = &instances[i];
                let key = key_of(&beir.queries[inst.query].id);
                let positive = inst.positives[(epoch + key as usize % 997) % inst.positives.len()];
                let negatives = sample_negatives(
                    inst,
                    k,
                    args.negatives_depth,
                    beir.corpus.len(),
                    mix_seed(mix_seed(args.seed, epoch as u64), key),
                );
                let q = pieces.query(&beir, inst.query)?.to_vec();
                present.push(1 + negatives.len());
                for d in std::iter::once(positive).chain(negatives.iter().copied()) {
                    pairs.push((q.clone(), pieces.doc(&beir, d)?.to_vec()));
                }
                // Absent negatives (a tiny corpus) are padded and masked out of the softmax.
                for _ in negatives.len()..k {
                    pairs.push((q.clone(), Vec::new()));
                }
            }
            let refs: Vec<(&[u32], &[u32])> = pairs.iter().map(|(a, b)| (&a[..], &b[..])).collect();
            let tokens = tokenizer.encode_piece_pairs(&refs);
            let (ids, types, pad) = tokens.to_tensors(&ad);
            ad.seed(mix_seed(args.seed ^ 0xd50f, micro as u64)); // dropout masks of this micro-batch
            let scores = model.score(ids, types, pad).reshape([batch.len(), args.group_size]);
            let mask = padding_mask(&present, args.group_size, &ad);
            let targets = vec![0; batch.len()];
            let loss = contrastive_loss(scores, &targets, Some(&mask), 1.0).mean().div_scalar(micro_here as f32);
            step_queries.extend(batch.iter().map(|&i| beir.queries[instances[i].query].id.clone()));
            let here = loss.clone().into_scalar::<f32>() as f64;
            if !here.is_finite() {
                return Err(non_finite(step, &step_queries, None, format!("the loss is {here}")));
            }
            loss_sum += here;
            acc.backward(&model, loss);
        }
        let lr = optimizer.lr(step);
        let (updated, grad_norm) =
            optimizer.step(model, acc.take(), step).map_err(|e| non_finite(step, &step_queries, None, e))?;
        model = updated;
        if let Some(log) = log.as_mut() {
            let line = serde_json::json!({"step": step + 1, "loss": round_sig(loss_sum), "lr": round_sig(lr), "grad_norm": round_sig(grad_norm)});
            writeln!(log, "{line}")?;
            log.flush()?;
        }
        bar.set_message(format!("loss {loss_sum:.4}"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    save_cross_encoder(&args.output, &model, &config, &tokenizer, args.model.as_deref(), args.half)?;
    eprintln!(
        "trained {total_steps} steps on {n} queries in {:.1} s; teacher saved to {}",
        start.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub teacher: TeacherModelArgs,
    /// The student's tokenizer.json, when its vocabulary is not the teacher's (e.g. an MPNet
    /// teacher for a BERT student): dark examples are then made in the student's word pieces,
    /// which `adam distill` reads, and carried into the teacher's to be scored.
    #[arg(long, value_name = "FILE")]
    pub student_tokenizer: Option<PathBuf>,
    #[command(flatten)]
    pub instances: InstanceArgs,
    /// Cache file (JSONL) to write; an existing one from the same settings is resumed.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Distillation config (TOML) whose [adam.dark] section sets the dark examples
    /// (default: METHOD.md's defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Hard negatives scored per query (the hardest; topped up with random documents).
    #[arg(long, default_value_t = 7)]
    pub negatives_per_query: usize,
    /// Pairs per teacher forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Queries whose dark-example searches run together.
    #[arg(long, default_value_t = 16)]
    pub query_batch: usize,
    /// Tokens per (query, passage) pair (a dual encoder: per text).
    #[arg(long, default_value_t = 256)]
    pub max_length: usize,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

/// Only the `[adam.dark]` table of a distillation config matters to `teacher score`.
#[derive(Deserialize, Default)]
struct DarkOnly {
    #[serde(default)]
    adam: AdamDarkOnly,
}

#[derive(Deserialize, Default)]
struct AdamDarkOnly {
    #[serde(default)]
    dark: DarkConfig,
}

fn score(args: ScoreArgs) -> Result<()> {
    let dark = match &args.config {
        Some(path) => {
            // The full config is validated by `adam distill`; here only the dark section is read.
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let value: toml::Table = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let only: DarkOnly = toml::Value::Table(value)
                .try_into()
                .map_err(|e| anyhow::anyhow!("{}: [adam.dark]: {e}", path.display()))?;
            only.adam.dark
        }
        None => DarkConfig::default(),
    };
    dark.validate().map_err(|e| anyhow::anyhow!("adam.dark.{e}"))?;
    if args.batch_size == 0 || args.query_batch == 0 {
        bail!("--batch-size and --query-batch must be at least 1");
    }
    let (beir, instances) = args.instances.load()?;
    let device = args.backend.device()?;
    let teacher = TeacherModel::load(&args.teacher, &device, args.max_length)?;
    let student_tokenizer = match &args.student_tokenizer {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(TextTokenizer::from_bytes(&bytes, path, 512)?)
        }
        None => None,
    };
    // Dark examples are word pieces of `tokenizer`: the student's when given, else the teacher's.
    let translator = student_tokenizer
        .as_ref()
        .filter(|s| !s.same_vocab(teacher.tokenizer()))
        .map(|from| PieceTranslator { from, to: teacher.tokenizer() });
    let tokenizer = student_tokenizer.as_ref().unwrap_or(teacher.tokenizer());
    let header = CacheHeader {
        adam_teacher_scores: 1,
        teacher: args.teacher.model.display().to_string(),
        teacher_kind: teacher.dual_scale().map(|_| "dual-encoder".to_string()),
        dual_scale: teacher.dual_scale(),
        max_length: teacher.tokenizer().max_length(),
        negatives_per_query: args.negatives_per_query,
        vocab_size: tokenizer.vocab_size(),
        vocab_hash: Some(score_cache::vocab_hash(tokenizer)),
        dark_tokenizer: translator.as_ref().and(args.student_tokenizer.as_ref()).map(|p| p.display().to_string()),
        dark: dark.clone(),
    };
    let existing = score_cache::read(&args.output)?;
    if let Some(cache) = &existing
        && let Some(diff) = score_cache::header_difference(&cache.header, &header)
    {
        bail!(
            "{} was written with other settings ({diff}); use another --output or the same settings",
            args.output.display()
        );
    }
    let done: HashSet<String> =
        existing.as_ref().map(|c| c.records.iter().map(|r| r.query_id.clone()).collect()).unwrap_or_default();
    let todo: Vec<&Instance> =
        instances.iter().filter(|i| !done.contains(&beir.queries[i.query].id)).collect();
    let mut writer = score_cache::Writer::open(&args.output, &header, existing.as_ref())?;
    if !done.is_empty() {
        eprintln!("resuming {}: {} queries done, {} to go", args.output.display(), done.len(), todo.len());
    }
    let special = tokenizer.special();
    let mut pieces = PieceCache::new(tokenizer);
    // The teacher's own pieces of the same texts, when they differ from the dark examples'.
    let mut teacher_pieces = PieceCache::new(teacher.tokenizer());
    let to_teacher = |ids: &[u32]| -> Result<Vec<u32>> {
        match &translator {
            Some(t) => t.translate(ids),
            None => Ok(ids.to_vec()),
        }
    };
    let bar = progress::bar(todo.len() as u64, "scoring queries");
    let start = Instant::now();
    for chunk in todo.chunks(args.query_batch) {
        // Original candidates: positives, then the hardest negatives (random top-up if short).
        let mut candidates: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
        for inst in chunk {
            let key = key_of(&beir.queries[inst.query].id);
            let mut negatives: Vec<usize> = inst.negatives.iter().copied().take(args.negatives_per_query).collect();
            if negatives.len() < args.negatives_per_query {
                let short = Instance { negatives: Vec::new(), ..(*inst).clone() };
                for d in sample_negatives(&short, args.negatives_per_query, 0, beir.corpus.len(), mix_seed(dark.seed, key)) {
                    if negatives.len() < args.negatives_per_query && !negatives.contains(&d) {
                        negatives.push(d);
                    }
                }
            }
            candidates.push((inst.positives.clone(), negatives));
        }
        let mut owned: Vec<(usize, usize)> = Vec::new(); // (query, doc) in scoring order
        for (inst, (pos, neg)) in chunk.iter().zip(&candidates) {
            owned.extend(pos.iter().chain(neg).map(|&d| (inst.query, d)));
        }
        for &(q, d) in &owned {
            pieces.query(&beir, q)?;
            pieces.doc(&beir, d)?;
        }
        let scoring = if translator.is_some() { &mut teacher_pieces } else { &mut pieces };
        for &(q, d) in &owned {
            scoring.query(&beir, q)?;
            scoring.doc(&beir, d)?;
        }
        let scoring = if translator.is_some() { &teacher_pieces } else { &pieces };
        let pairs: Vec<(&[u32], &[u32])> =
            owned.iter().map(|&(q, d)| (&scoring.queries[&q][..], &scoring.docs[&d][..])).collect();
        let flat = teacher.score_piece_pairs(&device, &pairs, args.batch_size)?;
        let mut flat = flat.into_iter();
        let mut scored: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
        for (pos, neg) in &candidates {
            let p: Vec<f32> = flat.by_ref().take(pos.len()).collect();
            let n: Vec<f32> = flat.by_ref().take(neg.len()).collect();
            scored.push((p, n));
        }
        // Dark examples are made from each query's best-scored positive.
        let best: Vec<usize> = scored
            .iter()
            .map(|(p, _)| (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a))).unwrap_or(0))
            .collect();
        let negative_pieces: Vec<Vec<Vec<u32>>> = candidates
            .iter()
            .map(|(_, neg)| neg.iter().map(|d| pieces.docs[d].clone()).collect())
            .collect();
        let dark_instances: Vec<DarkInstance<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(i, inst)| DarkInstance {
                query: &pieces.queries[&inst.query],
                positive: &pieces.docs[&candidates[i].0[best[i]]],
                negatives: &negative_pieces[i],
                key: key_of(&beir.queries[inst.query].id),
            })
            .collect();
        let teacher_scores: Vec<TeacherScores> = scored
            .iter()
            .zip(&best)
            .map(|((p, n), &b)| TeacherScores { positive: p[b], negatives: n.clone() })
            .collect();
        let mut failure = None;
        let teacher_queries: Vec<&[u32]> = chunk
            .iter()
            .zip(&dark_instances)
            .map(|(inst, d)| if translator.is_some() { &teacher_pieces.queries[&inst.query][..] } else { d.query })
            .collect();
        let dark_examples = generate_adaptive(&dark_instances, &teacher_scores, &special, &dark, |requests| {
            let scored = requests
                .iter()
                .map(|(_, ex)| to_teacher(&ex.ids))
                .collect::<Result<Vec<Vec<u32>>>>()
                .and_then(|translated| {
                    let pairs: Vec<(&[u32], &[u32])> =
                        requests.iter().zip(&translated).map(|((i, _), ex)| (teacher_queries[*i], &ex[..])).collect();
                    teacher.score_piece_pairs(&device, &pairs, args.batch_size)
                });
            match scored {
                Ok(s) => s,
                Err(e) => {
                    failure = Some(e);
                    vec![f32::NAN; requests.len()]
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        for (i, inst) in chunk.iter().enumerate() {
            let (pos, neg) = &candidates[i];
            let doc = |d: usize, s: f32| ScoredDoc { doc_id: beir.corpus[d].id.clone(), score: s };
            writer.append(&CacheRecord {
                query_id: beir.queries[inst.query].id.clone(),
                positives: pos.iter().zip(&scored[i].0).map(|(&d, &s)| doc(d, s)).collect(),
                negatives: neg.iter().zip(&scored[i].1).map(|(&d, &s)| doc(d, s)).collect(),
                dark_positive: beir.corpus[pos[best[i]]].id.clone(),
                dark: dark_examples[i].clone(),
            })?;
        }
        writer.sync()?;
        teacher.forget();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    eprintln!(
        "scored {} queries in {:.1} s; cache {} has {}",
        todo.len(),
        start.elapsed().as_secs_f64(),
        args.output.display(),
        done.len() + todo.len()
    );
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct RerankArgs {
    #[command(flatten)]
    pub teacher: TeacherModelArgs,
    /// BEIR folder with the texts of the run's queries and documents.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Split of the run's queries (MS MARCO keeps one queries file per split).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// TREC run to rerank.
    #[arg(long, value_name = "FILE")]
    pub run: PathBuf,
    /// Reranked TREC run to write.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Documents reranked per query (the run's best); the rest are dropped.
    #[arg(long, default_value_t = 100)]
    pub depth: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 256)]
    pub max_length: usize,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

fn rerank(args: RerankArgs) -> Result<()> {
    let beir = Collection::load(&args.data, &[&args.split])?;
    let input = read_run(open(&args.run)?, &args.run)?;
    let device = args.backend.device()?;
    let teacher = TeacherModel::load(&args.teacher, &device, args.max_length)?;
    let mut pieces = PieceCache::new(teacher.tokenizer());
    let bar = progress::bar(input.len() as u64, "reranking queries");
    let mut out = Run::new();
    for (qid, entries) in &input {
        let q = *beir.query_index.get(qid).ok_or_else(|| {
            anyhow::anyhow!("{}: query `{qid}` is not a query of {}", args.run.display(), args.data.display())
        })?;
        let top: Vec<&RunEntry> = adam_core::metrics::trec_order(entries).into_iter().take(args.depth).collect();
        let mut docs = Vec::new();
        for e in &top {
            let d = *beir.doc_index.get(&e.doc).ok_or_else(|| {
                anyhow::anyhow!("{}: document `{}` is not in the corpus of {}", args.run.display(), e.doc, args.data.display())
            })?;
            pieces.doc(&beir, d)?;
            docs.push(d);
        }
        let query = pieces.query(&beir, q)?.to_vec();
        let pairs: Vec<(&[u32], &[u32])> = docs.iter().map(|d| (&query[..], &pieces.docs[d][..])).collect();
        let scores = teacher.score_piece_pairs(&device, &pairs, args.batch_size)?;
        out.insert(
            qid.clone(),
            top.iter().zip(scores).map(|(e, s)| RunEntry { doc: e.doc.clone(), score: s as f64 }).collect(),
        );
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut file = AtomicFile::create(&args.output)?;
    write_run(file.writer(), &out, "adam-teacher")
        .with_context(|| format!("writing {}", args.output.display()))?;
    file.commit()?;
    eprintln!("reranked {} queries into {}", out.len(), args.output.display());
    Ok(())
}
