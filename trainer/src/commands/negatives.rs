//! `adam negatives`: mine hard negatives for the queries of a split with BM25 or a dense model.
//!
//! For each query that has judgements, the retriever's top `--depth` documents are ranked; the
//! positives (grade >= `--rel-threshold`) are left out and the best `--top-k` others are written
//! as negatives. Judged documents below the threshold can be negatives (TREC DL's grade 1 with
//! `--rel-threshold 2`, the teaching set's partial matches): they are moderately relevant, which
//! is what distillation should see.
//!
//! With `--judged-first` a query's judged non-relevant documents (grade below the threshold)
//! lead its list, in the retriever's order (those it did not return after them, by id), and the
//! mined ones fill the rest: answer-selection data (WikiQA, SelQA) judges each question's own
//! candidate sentences, harder negatives than any retriever finds, and a teacher should see
//! them before the mined ones (issue 17).

use std::io::Write;
use std::path::PathBuf;

use adam_core::data::{Negative, NegativesRecord, Positive, Query, Run, RunEntry, write_run};
use anyhow::{Context, Result, bail};

use crate::bm25::Bm25;
use crate::dataset::Dataset;
use crate::io::AtomicFile;
use crate::models::{EncoderFlags, load_encoder};
use crate::progress;
use crate::retrieval::{CacheFlags, dense_retrieve};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    Bm25,
    Dense,
}

#[derive(clap::Args, Debug)]
pub struct NegativesArgs {
    /// Dataset: a BEIR or MS MARCO folder, or a Hugging Face Hub dataset `owner/name`.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Split whose queries (those with qrels) get negatives.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Output JSONL: one {"query_id", "positives", "negatives"} object per query.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Retriever.
    #[arg(long, value_enum, default_value_t = Method::Bm25)]
    pub method: Method,
    /// Negatives kept per query.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub top_k: usize,
    /// Documents retrieved per query (negatives come from these).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub depth: usize,
    /// Lowest grade that makes a document a positive (never a negative).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub rel_threshold: i32,
    /// BM25 term-frequency saturation.
    #[arg(long, default_value_t = 0.9)]
    pub bm25_k1: f32,
    /// BM25 length normalisation.
    #[arg(long, default_value_t = 0.4)]
    pub bm25_b: f32,
    /// Put each query's judged non-relevant documents (grade below --rel-threshold) before the
    /// mined ones; --top-k counts both. `rank` is then the place in the list.
    #[arg(long)]
    pub judged_first: bool,
    /// Also write the ranking (top --depth) as a TREC run file, for `adam eval`.
    #[arg(long, value_name = "FILE")]
    pub run: Option<PathBuf>,
    /// Model folder for --method dense.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub encoder: EncoderFlags,
    #[command(flatten)]
    pub embedding_cache: CacheFlags,
}

pub fn run(args: NegativesArgs) -> Result<()> {
    if args.top_k == 0 || args.depth == 0 {
        bail!("--top-k and --depth must be at least 1");
    }
    if args.method == Method::Dense && args.model.is_none() {
        bail!("--method dense needs --model DIR (a sentence-transformers folder)");
    }
    if args.method == Method::Bm25 {
        let dense_only = [
            ("--model", args.model.is_some()),
            ("--cache", args.embedding_cache.cache.is_some()),
            ("--no-cache", args.embedding_cache.no_cache),
        ];
        if let Some(flag) = args.encoder.first_given(&dense_only) {
            bail!("{flag} applies to --method dense only; BM25 runs no model");
        }
    }
    let data = Dataset::load(&args.data, &args.split)?;
    let qrels_path = data.files.qrels_path()?.to_path_buf();
    let texts: std::collections::HashMap<&str, &str> =
        data.queries.iter().map(|q| (q.id.as_str(), q.text.as_str())).collect();

    // Queries with judgements, in id order; those without a positive or a text are counted.
    let mut work: Vec<(&str, &str, Vec<Positive>)> = Vec::new();
    let (mut no_positive, mut no_text) = (0, 0);
    for (qid, judged) in &data.qrels {
        let mut positives: Vec<Positive> = judged
            .iter()
            .filter(|(_, g)| **g >= args.rel_threshold)
            .map(|(d, g)| Positive { doc_id: d.clone(), grade: *g })
            .collect();
        positives.sort_by(|a, b| b.grade.cmp(&a.grade).then_with(|| a.doc_id.cmp(&b.doc_id)));
        match texts.get(qid.as_str()) {
            None => no_text += 1,
            Some(_) if positives.is_empty() => no_positive += 1,
            Some(text) => work.push((qid.as_str(), *text, positives)),
        }
    }
    if work.is_empty() {
        bail!(
            "no query of {} has a document with grade >= {} and a text: nothing to mine",
            qrels_path.display(),
            args.rel_threshold
        );
    }

    let index_bar = progress::bar(data.corpus.len() as u64, "indexing");
    let retriever = match args.method {
        Method::Bm25 => Retriever::Bm25(Bm25::index(&data.corpus, args.bm25_k1, args.bm25_b, &index_bar)),
        Method::Dense => {
            let model = args.encoder.with_model(args.model.clone().expect("checked above"));
            let encoder = load_encoder(&model)?;
            let queries: Vec<Query> =
                work.iter().map(|(id, text, _)| Query { id: id.to_string(), text: text.to_string() }).collect();
            let cache = args.embedding_cache.open();
            let corpus_path = data.files.corpus_path()?;
            let run = dense_retrieve(
                &encoder,
                &model,
                cache.as_ref(),
                corpus_path,
                data.corpus.as_slice(),
                &queries,
                args.depth,
            )?;
            let doc_index: std::collections::HashMap<&str, usize> =
                data.corpus.iter().enumerate().map(|(i, d)| (d.id.as_str(), i)).collect();
            let hits = queries
                .iter()
                .map(|q| {
                    run.get(&q.id)
                        .map(|entries| entries.iter().map(|e| (doc_index[e.doc.as_str()], e.score as f32)).collect())
                        .unwrap_or_default()
                })
                .collect();
            Retriever::Dense(hits)
        }
    };
    index_bar.finish_and_clear();

    let mut out = AtomicFile::create(&args.output)?;
    let mut run = Run::new();
    let search_bar = progress::bar(work.len() as u64, "retrieving");
    let (mut short, mut total_negatives) = (0usize, 0usize);
    for (i, (qid, text, positives)) in work.iter().enumerate() {
        let hits = match &retriever {
            Retriever::Bm25(bm) => bm.search(&data.corpus, text, args.depth),
            Retriever::Dense(hits) => hits[i].clone(),
        };
        let judged = &data.qrels[*qid];
        let negatives = if args.judged_first {
            judged_first(judged, &hits, &data.corpus, args.rel_threshold, args.top_k)
        } else {
            hits.iter()
                .enumerate()
                .filter(|(_, (d, _))| judged.get(&data.corpus[*d].id).is_none_or(|g| *g < args.rel_threshold))
                .take(args.top_k)
                .map(|(rank, (d, score))| Negative {
                    doc_id: data.corpus[*d].id.clone(),
                    score: Some(*score),
                    rank: rank + 1,
                })
                .collect()
        };
        if negatives.len() < args.top_k {
            short += 1;
        }
        total_negatives += negatives.len();
        let record = NegativesRecord { query_id: qid.to_string(), positives: positives.clone(), negatives };
        serde_json::to_writer(&mut *out.writer(), &record)?;
        out.writer().write_all(b"\n").with_context(|| format!("writing {}", args.output.display()))?;
        if args.run.is_some() {
            run.insert(
                qid.to_string(),
                hits.iter().map(|(d, s)| RunEntry { doc: data.corpus[*d].id.clone(), score: run_score(*s) }).collect(),
            );
        }
        search_bar.inc(1);
    }
    search_bar.finish_and_clear();
    out.commit()?;
    if let Some(path) = &args.run {
        let mut file = AtomicFile::create(path)?;
        let tag = match args.method {
            Method::Bm25 => "adam-bm25",
            Method::Dense => "adam-dense",
        };
        write_run(file.writer(), &run, tag).with_context(|| format!("writing {}", path.display()))?;
        file.commit()?;
        eprintln!("wrote the ranking (top {}) of {} queries to {}", args.depth, run.len(), path.display());
    }
    eprintln!(
        "wrote negatives for {} queries to {} ({:.1} per query; {short} with fewer than {})",
        work.len(),
        args.output.display(),
        total_negatives as f64 / work.len() as f64,
        args.top_k
    );
    if no_positive > 0 {
        eprintln!("skipped {no_positive} queries with no document of grade >= {}", args.rel_threshold);
    }
    if no_text > 0 {
        eprintln!("skipped {no_text} queries of {} that have no text in the queries file", qrels_path.display());
    }
    Ok(())
}

/// The query's judged non-relevant documents (retrieved ones in the retriever's order, then the
/// rest by id), then the retrieved documents it has no judgement for; at most `top_k`, ranked by
/// their place in this list.
fn judged_first(
    judged: &std::collections::HashMap<String, i32>,
    hits: &[(usize, f32)],
    corpus: &[adam_core::data::Document],
    rel_threshold: i32,
    top_k: usize,
) -> Vec<Negative> {
    let place: std::collections::HashMap<&str, (usize, f32)> =
        hits.iter().enumerate().map(|(i, (d, s))| (corpus[*d].id.as_str(), (i, *s))).collect();
    let mut labelled: Vec<(&str, Option<(usize, f32)>)> = judged
        .iter()
        .filter(|(_, g)| **g < rel_threshold)
        .map(|(d, _)| (d.as_str(), place.get(d.as_str()).copied()))
        .collect();
    // Retrieved ones in the retriever's order, then the others by id.
    labelled.sort_by(|a, b| {
        let place = |x: &(&str, Option<(usize, f32)>)| x.1.map_or(usize::MAX, |(i, _)| i);
        place(a).cmp(&place(b)).then_with(|| a.0.cmp(b.0))
    });
    let labelled = labelled.into_iter().map(|(id, p)| (id, p.map(|(_, s)| s)));
    let mined =
        hits.iter().map(|(d, s)| (corpus[*d].id.as_str(), Some(*s))).filter(|(id, _)| !judged.contains_key(*id));
    labelled
        .into_iter()
        .chain(mined)
        .take(top_k)
        .enumerate()
        .map(|(i, (id, score))| Negative { doc_id: id.to_string(), score, rank: i + 1 })
        .collect()
}

enum Retriever {
    Bm25(Bm25),
    /// Each query's hits (corpus index, score), best first, in `work` order.
    Dense(Vec<Vec<(usize, f32)>>),
}

/// An f32 score as the f64 written to the run: its shortest decimal form, which keeps the order
/// of distinct f32 scores and reads better than the exact binary value.
fn run_score(s: f32) -> f64 {
    s.to_string().parse().unwrap_or(s as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use adam_core::data::Document;

    #[test]
    fn judged_negatives_lead_in_the_retrievers_order_then_by_id() {
        let corpus: Vec<Document> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|id| Document { id: id.to_string(), title: String::new(), text: String::new() })
            .collect();
        // Judged: a relevant, c and f and e not; the retriever returns d, c, a, b (e, f unretrieved).
        let judged = [("a", 1), ("c", 0), ("f", 0), ("e", 0)].iter().map(|(d, g)| (d.to_string(), *g)).collect();
        let hits = [(3, 9.0), (2, 8.0), (0, 7.0), (1, 6.0)];
        let got = judged_first(&judged, &hits, &corpus, 1, 10);
        let ids: Vec<&str> = got.iter().map(|n| n.doc_id.as_str()).collect();
        assert_eq!(ids, ["c", "e", "f", "d", "b"]);
        assert_eq!(got.iter().map(|n| n.rank).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert_eq!(got.iter().map(|n| n.score).collect::<Vec<_>>(), [Some(8.0), None, None, Some(9.0), Some(6.0)]);
        // --top-k counts both kinds.
        let ids: Vec<String> = judged_first(&judged, &hits, &corpus, 1, 2).into_iter().map(|n| n.doc_id).collect();
        assert_eq!(ids, ["c", "e"]);
    }
}
