//! Training instances: a dataset's corpus and queries with id lookups, the negatives file of
//! `adam negatives`, and per-query instances (positives, hard negatives) built from either.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use adam_core::Error;
use adam_core::dark::{SplitMix64, mix_seed};
use adam_core::data::{Document, Qrels, Query, for_each_line};
use adam_core::tokenize::TextTokenizer;
use anyhow::{Result, bail};
use serde::Deserialize;

use crate::dataset::DatasetFiles;
use crate::io::open_text;

/// A dataset's corpus and queries in memory (any layout `dataset` reads), with id → index maps.
pub struct Collection {
    /// The dataset folder (a Hub dataset's snapshot in the cache), for messages and qrels.
    pub dir: PathBuf,
    pub corpus: Vec<Document>,
    pub doc_index: HashMap<String, usize>,
    pub queries: Vec<Query>,
    pub query_index: HashMap<String, usize>,
}

impl Collection {
    /// Loads the corpus and the queries of `splits` (one file in BEIR; one per split in MS MARCO,
    /// where a query id met twice keeps its first text).
    pub fn load(data: &Path, splits: &[&str]) -> Result<Self> {
        let first = DatasetFiles::resolve(data, splits.first().copied().unwrap_or("train"))?;
        let corpus = first.read_corpus()?;
        let mut queries: Vec<Query> = Vec::new();
        let mut query_index = HashMap::new();
        let mut read = Vec::new();
        for split in splits {
            let files = if *split == first.split { first.clone() } else { DatasetFiles::locate(&first.root, split) };
            let path = files.queries_path()?.to_path_buf();
            if read.contains(&path) {
                continue;
            }
            for q in files.read_queries()? {
                if !query_index.contains_key(&q.id) {
                    query_index.insert(q.id.clone(), queries.len());
                    queries.push(q);
                }
            }
            read.push(path);
        }
        let doc_index = corpus.iter().enumerate().map(|(i, d)| (d.id.clone(), i)).collect();
        Ok(Self { dir: first.root, corpus, doc_index, queries, query_index })
    }

    pub fn qrels_path(&self, split: &str) -> Result<PathBuf> {
        Ok(DatasetFiles::locate(&self.dir, split).qrels_path()?.to_path_buf())
    }

    pub fn qrels(&self, split: &str) -> Result<Qrels> {
        DatasetFiles::locate(&self.dir, split).read_qrels()
    }
}

/// One query with its judged positives and hard negatives (corpus indices, hardest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub query: usize,
    pub positives: Vec<usize>,
    pub negatives: Vec<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NegativesLine {
    query_id: String,
    positives: Vec<JudgedDoc>,
    negatives: Vec<RankedDoc>,
}

#[derive(Deserialize)]
struct JudgedDoc {
    doc_id: String,
    #[serde(default = "one")]
    grade: i32,
}

fn one() -> i32 {
    1
}

#[derive(Deserialize)]
struct RankedDoc {
    doc_id: String,
    #[serde(default)]
    rank: Option<usize>,
    #[allow(dead_code)]
    #[serde(default)]
    score: Option<f64>,
}

/// Reads a negatives file (one JSON object per line, as `adam negatives` writes:
/// `{"query_id", "positives": [{"doc_id", "grade"}], "negatives": [{"doc_id", "score", "rank"}]}`).
/// Negatives are ordered by `rank` when given (file order otherwise); positives with grade <= 0
/// and negatives that are also positives are dropped. Ids unknown to `beir` are errors naming
/// the line and field.
pub fn read_negatives(path: &Path, beir: &Collection) -> Result<Vec<Instance>> {
    let mut instances = Vec::new();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    for_each_line(open_text(path)?, path, |n, line| {
        let rec: NegativesLine = serde_json::from_str(line)
            .map_err(|e| Error::format(path, Some(n), format!("not a negatives record: {e}")))?;
        let query = *beir.query_index.get(&rec.query_id).ok_or_else(|| {
            Error::field(path, n, "query_id", format!("`{}` is not a query of {}", rec.query_id, beir.dir.display()))
        })?;
        if let Some(first) = seen.insert(query, n) {
            return Err(Error::field(path, n, "query_id", format!("`{}` is also on line {first}", rec.query_id)));
        }
        let doc = |id: &str, field: &str| {
            beir.doc_index.get(id).copied().ok_or_else(|| {
                Error::field(path, n, field, format!("`{id}` is not in the corpus of {}", beir.dir.display()))
            })
        };
        let mut positives = Vec::new();
        for p in &rec.positives {
            let d = doc(&p.doc_id, "positives.doc_id")?;
            if p.grade > 0 && !positives.contains(&d) {
                positives.push(d);
            }
        }
        let mut ranked = Vec::new();
        for (i, r) in rec.negatives.iter().enumerate() {
            ranked.push((r.rank.unwrap_or(usize::MAX), i, doc(&r.doc_id, "negatives.doc_id")?));
        }
        ranked.sort();
        let mut negatives = Vec::new();
        for (_, _, d) in ranked {
            if !positives.contains(&d) && !negatives.contains(&d) {
                negatives.push(d);
            }
        }
        if !positives.is_empty() {
            instances.push(Instance { query, positives, negatives });
        }
        Ok(())
    })?;
    if instances.is_empty() {
        bail!("{}: no query with a positive (grade > 0)", path.display());
    }
    Ok(instances)
}

/// Instances from qrels alone: judged-relevant documents as positives, judged non-relevant ones
/// (grade <= 0) as negatives, in document-id order. Queries missing from queries.jsonl or
/// documents missing from the corpus are skipped (BEIR qrels sometimes name them).
pub fn from_qrels(qrels: &Qrels, beir: &Collection) -> Vec<Instance> {
    let mut instances = Vec::new();
    for (q, judged) in qrels {
        let Some(&query) = beir.query_index.get(q) else { continue };
        let mut docs: Vec<(&String, &i32)> = judged.iter().collect();
        docs.sort();
        let pick = |relevant: bool| -> Vec<usize> {
            docs.iter()
                .filter(|(_, g)| (**g > 0) == relevant)
                .filter_map(|(d, _)| beir.doc_index.get(*d).copied())
                .collect()
        };
        let positives = pick(true);
        if !positives.is_empty() {
            instances.push(Instance { query, positives, negatives: pick(false) });
        }
    }
    instances
}

/// A seeded permutation of `0..n` (Fisher–Yates with SplitMix64).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// `k` negatives for one instance at one epoch: a seeded sample of the `depth` hardest, topped
/// up with random corpus documents (never a positive) when the instance has too few.
pub fn sample_negatives(instance: &Instance, k: usize, depth: usize, corpus_len: usize, seed: u64) -> Vec<usize> {
    let pool = &instance.negatives[..instance.negatives.len().min(depth.max(k))];
    let mut chosen: Vec<usize> = permutation(pool.len(), seed).into_iter().take(k).map(|i| pool[i]).collect();
    let mut rng = SplitMix64::new(mix_seed(seed, 0x7261_6e64));
    let mut tries = 0;
    while chosen.len() < k && tries < 100 * k && corpus_len > 0 {
        tries += 1;
        let d = rng.below(corpus_len);
        if !instance.positives.contains(&d) && !chosen.contains(&d) {
            chosen.push(d);
        }
    }
    chosen
}

/// A stable 64-bit key of a string (FNV-1a), so per-query randomness does not depend on order.
pub fn key_of(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Where the training queries come from.
#[derive(clap::Args, Debug, Clone)]
pub struct InstanceArgs {
    /// Dataset: a BEIR or MS MARCO folder, or a Hugging Face Hub dataset `owner/name`.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Negatives file of `adam negatives` (JSONL). Without it, the qrels of --split give the
    /// positives and their judged non-relevant documents the negatives.
    #[arg(long, value_name = "FILE")]
    pub negatives: Option<PathBuf>,
    /// Qrels split used without --negatives.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Use only the first N queries.
    #[arg(long, value_name = "N")]
    pub max_queries: Option<usize>,
}

impl InstanceArgs {
    pub fn load(&self) -> Result<(Collection, Vec<Instance>)> {
        let beir = Collection::load(&self.data, &[&self.split])?;
        let mut instances = match &self.negatives {
            Some(path) => read_negatives(path, &beir)?,
            None => {
                let instances = from_qrels(&beir.qrels(&self.split)?, &beir);
                if instances.is_empty() {
                    bail!("{}: no query with a relevant document", beir.qrels_path(&self.split)?.display());
                }
                instances
            }
        };
        if let Some(max) = self.max_queries {
            instances.truncate(max);
        }
        Ok((beir, instances))
    }
}

/// Word pieces of corpus documents and queries, computed once each.
pub struct PieceCache<'a> {
    tokenizer: &'a TextTokenizer,
    /// By corpus index, as [`PieceCache::doc`] fills them.
    pub docs: HashMap<usize, Vec<u32>>,
    /// By query index, as [`PieceCache::query`] fills them.
    pub queries: HashMap<usize, Vec<u32>>,
}

impl<'a> PieceCache<'a> {
    pub fn new(tokenizer: &'a TextTokenizer) -> Self {
        Self { tokenizer, docs: HashMap::new(), queries: HashMap::new() }
    }

    pub fn doc(&mut self, beir: &Collection, d: usize) -> Result<&[u32]> {
        if !self.docs.contains_key(&d) {
            let pieces = self.tokenizer.word_pieces(&beir.corpus[d].full_text())?;
            self.docs.insert(d, pieces);
        }
        Ok(&self.docs[&d])
    }

    pub fn query(&mut self, beir: &Collection, q: usize) -> Result<&[u32]> {
        if !self.queries.contains_key(&q) {
            let pieces = self.tokenizer.word_pieces(&beir.queries[q].text)?;
            self.queries.insert(q, pieces);
        }
        Ok(&self.queries[&q])
    }
}
