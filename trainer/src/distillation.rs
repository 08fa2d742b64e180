//! The distillation method assembled for training (METHOD.md): the student, the cached teacher
//! scores turned into tokenized examples, the loss of a batch for each method, and the dev
//! evaluation. `adam distill` trains with it.

use std::collections::HashMap;
use std::path::Path;

use adam_core::config::{BertConfig, SentenceConfig};
use adam_core::data::{Document, Qrels, Query};
use adam_core::encoder::SentenceEncoder;
use adam_core::loader::{LoadOptions, LoadedModel, ModelSource, load_model};
use adam_core::loss::{adam_objective, in_batch_scores, listwise_kl, margin_mse};
use adam_core::metrics::{Measures, evaluate};
use adam_core::model::{BertModel, Transformer, l2_normalize, pool};
use adam_core::save::{ModelFile, SaveOptions, read_side_files, student_files};
use adam_core::selfpaced::SelfPacedConfig;
use adam_core::tokenize::TextTokenizer;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::distill_config::{DistillConfig, EvalConfig, Method, StudentConfig, first_difference};
use crate::instances::{Collection, key_of};
use crate::io::round_sig as round;
use crate::models::read_scratch_model;
use crate::optim::initialize_params;
use crate::retrieval::retrieve;
use crate::score_cache::{self, Cache};
use crate::train_loop::Trainee;
use crate::workers::own_leaves;

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
    pub fn embed(&self, sequences: &[&[u32]], max_length: usize, device: &Device) -> Tensor<2> {
        // Sorted by length and embedded in chunks, each padded to its own longest, a batch spends
        // less on padding than padded whole to its longest (a paraphrase-demo step: 1.2x faster
        // for ce, 1.4x for adam, than one batch; 32 or 16 rows a chunk alike, 64 less); the rows
        // are put back in the callers' order.
        const CHUNK: usize = 32;
        if sequences.len() <= CHUNK {
            return self.embed_padded(sequences, max_length, device);
        }
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&i| sequences[i].len().min(max_length));
        let parts: Vec<Tensor<2>> = order
            .chunks(CHUNK)
            .map(|rows| {
                let part: Vec<&[u32]> = rows.iter().map(|&i| sequences[i]).collect();
                self.embed_padded(&part, max_length, device)
            })
            .collect();
        let mut position = vec![0i64; order.len()];
        for (sorted, &row) in order.iter().enumerate() {
            position[row] = sorted as i64;
        }
        let position = Tensor::<1, Int>::from_data(TensorData::new(position, [order.len()]), device);
        Tensor::cat(parts, 0).select(0, position)
    }

    /// Text vectors of sequences padded together to the longest of them.
    fn embed_padded(&self, sequences: &[&[u32]], max_length: usize, device: &Device) -> Tensor<2> {
        let batch = self.tokenizer.encode_pieces(sequences, max_length);
        let (ids, types, padding) = batch.to_tensors(device);
        let tokens = self.bert.forward(ids, types, padding.clone());
        let pooled = pool(tokens, padding, self.sentence.pooling);
        if self.sentence.normalize { l2_normalize(pooled) } else { pooled }
    }

    /// A frozen copy (no autodiff, dropout off) as a `SentenceEncoder` on `device`.
    pub fn encoder(&self, device: &Device) -> SentenceEncoder {
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

    pub fn files(&self, half: bool) -> Result<Vec<ModelFile>> {
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

impl Trainee for Student {
    type Module = BertModel;

    fn module(&self) -> &BertModel {
        &self.bert
    }

    fn map_module(self, f: impl FnOnce(BertModel) -> Result<BertModel>) -> Result<Self> {
        Ok(Student { bert: f(self.bert)?, ..self })
    }

    fn worker_copy(&self) -> Self {
        Student {
            bert: own_leaves(self.bert.clone()),
            config: self.config.clone(),
            sentence: self.sentence.clone(),
            tokenizer: self.tokenizer.clone(),
            side_files: self.side_files.clone(),
        }
    }
}

/// One cached query, tokenized for the student.
pub struct Example {
    pub query: Vec<u32>,
    /// (pieces, teacher score)
    pub positives: Vec<(Vec<u32>, f32)>,
    pub negatives: Vec<(Vec<u32>, f32)>,
    pub dark: Vec<(Vec<u32>, f32)>,
    /// Dark examples of the cache left out for missing the band (`train.drop_outside_band`).
    pub dark_dropped: usize,
    pub key: u64,
    /// The query's id, for messages.
    pub id: String,
}

pub fn examples(
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
            anyhow::anyhow!(
                "{}:{line}: query `{}` is not a query of {}",
                path.display(),
                r.query_id,
                beir.dir.display()
            )
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
pub struct BatchLoss {
    pub total: Tensor<1>,
    pub contrastive: Option<Tensor<1>>,
    pub kd: Option<Tensor<1>>,
    pub lambda: Option<f32>,
    pub kept: Option<usize>,
    /// Dark examples the batch fed to the loss, and those of its queries left out for missing
    /// the band (methods with dark examples).
    pub dark: Option<(usize, usize)>,
}

/// The method's objective over the cached examples.
pub struct Distillation<'a> {
    pub config: &'a DistillConfig,
    pub examples: &'a [Example],
    pub device: Device,
}

impl Distillation<'_> {
    /// Forward pass and losses of the instances `batch` at optimiser step `step` of `total`.
    pub fn batch_loss(&self, student: &Student, batch: &[usize], epoch: usize, step: usize, total: usize) -> BatchLoss {
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
            for (j, d) in dark_window(e.dark.len(), n_dark, epoch, e.key).enumerate() {
                row[orig + j] = Some(&e.dark[d]);
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

/// Which of a query's `cached` dark examples a step feeds when at most `cap` fit: all of them, or
/// a window that moves on by `cap` each epoch (from a place set by the query's `key`), so that
/// every one is learnt from over a run rather than only the first few.
fn dark_window(cached: usize, cap: usize, epoch: usize, key: u64) -> impl Iterator<Item = usize> {
    let fed = cached.min(cap);
    let start = if fed < cached { (epoch * fed + (key % 997) as usize) % cached } else { 0 };
    (0..fed).map(move |j| (start + j) % cached)
}

/// Refuses a cache whose dark examples the student cannot read as they were made: word pieces of
/// another vocabulary, or other `[adam.dark]` settings than the config's (`config_path`).
pub fn check_dark_examples(config: &DistillConfig, config_path: &Path, cache: &Cache, student: &Student) -> Result<()> {
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
            Some(hash) => {
                let student_hash = score_cache::vocab_hash(&student.tokenizer);
                if *hash != student_hash {
                    bail!(
                        "{scores}: dark examples were made in another vocabulary of the same size (vocab_hash {hash}, the student's {student_hash}); make them in the student's pieces with `adam teacher score --student-tokenizer`, or use a method without dark examples"
                    );
                }
            }
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
            config_path.display(),
            config.data.teacher_scores.display()
        );
    }
    Ok(())
}

/// Dev queries, their qrels and the corpus they are searched in.
pub struct DevSet {
    corpus: Vec<Document>,
    queries: Vec<Query>,
    qrels: Qrels,
}

pub fn dev_set(beir: &Collection, eval: &EvalConfig) -> Result<DevSet> {
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
        bail!(
            "eval.split = `{}`: no judged query of {} is among the queries of {}",
            eval.split,
            beir.qrels_path(&eval.split)?.display(),
            beir.dir.display()
        );
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

pub fn dev_measures(student: &Student, dev: &DevSet, eval: &EvalConfig, device: &Device) -> Result<Measures> {
    let encoder = student.encoder(device);
    let run = retrieve(&encoder, dev.corpus.as_slice(), &dev.queries, eval.depth, eval.batch_size)?;
    Ok(evaluate(&run, &dev.qrels, eval.rel_threshold).mean)
}

/// Measures as a log line writes them: by name, rounded.
pub fn measures_json(m: &Measures) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (name, value) in Measures::NAMES.iter().zip(m.values()) {
        map.insert(name.to_string(), round(value).into());
    }
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_dark_window_moves_over_every_example() {
        assert_eq!(dark_window(4, 8, 3, 11).collect::<Vec<_>>(), [0, 1, 2, 3]);
        let mut seen = [0usize; 5];
        for epoch in 0..5 {
            let fed: Vec<usize> = dark_window(5, 2, epoch, 7).collect();
            assert_eq!(fed.len(), 2);
            assert_ne!(fed[0], fed[1]);
            fed.iter().for_each(|&d| seen[d] += 1);
        }
        assert_eq!(seen, [2; 5], "five epochs of two feed each of five twice");
    }

    #[test]
    fn chunked_embedding_equals_one_padded_batch_in_the_callers_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("teachers/paraphrase");
        let cfg = StudentConfig {
            model: None,
            layers: None,
            config: Some(dir.join("config.json")),
            tokenizer: Some(dir.join("tokenizer.json")),
            pooling: adam_core::config::Pooling::Mean,
            normalize: true,
            max_query_length: 24,
            max_passage_length: 24,
            save_half: false,
        };
        let device = Device::flex();
        let student = build_student(&cfg, &device, 3).unwrap();
        // 70 sequences of lengths 0..=30 in a scrambled order: three chunks, some cut at 24.
        let sequences: Vec<Vec<u32>> =
            (0..70u32).map(|i| (0..(i * 37 % 31)).map(|t| 5 + (i * 13 + t * 7) % 1900).collect()).collect();
        let refs: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
        let chunked = student.embed(&refs, 24, &device).into_data().try_into_vec::<f32>().unwrap();
        let whole = student.embed_padded(&refs, 24, &device).into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(chunked.len(), 70 * student.config.hidden_size);
        let worst = chunked.iter().zip(&whole).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "chunked and whole embeddings differ by {worst}");
    }
}
