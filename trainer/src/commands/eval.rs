//! `adam eval`: trec_eval's measures over a BEIR folder, for a TREC run file or for a model
//! (encode the corpus and the split's queries, retrieve exactly, score).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use adam_core::data::{Qrels, Query, Run, read_run, write_run};
use adam_core::metrics::{Evaluation, Measures, evaluate};
use anyhow::{Context, Result, bail};

use crate::corpus_texts::SpilledCorpus;
use crate::dataset::DatasetFiles;
use crate::io::{AtomicFile, open};
use crate::models::{EncoderFlags, load_encoder};
use crate::retrieval::{CacheFlags, check_unique_ids, dense_retrieve, encode_corpus_shard, load_corpus};
use crate::shard::Shard;
use crate::vector_index::{DEFAULT_EXPANSION_SEARCH, IndexSearch};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["run", "model"])))]
pub struct EvalArgs {
    /// Dataset: a BEIR folder (qrels/<split>.tsv), an MS MARCO folder (qrels.<split>.tsv), or a
    /// Hugging Face Hub dataset `owner/name`.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Qrels split to score against.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// TREC run file to score: `qid Q0 docid rank score tag` per line.
    #[arg(long, value_name = "FILE")]
    pub run: Option<PathBuf>,
    /// Model folder: embed the corpus and the split's queries with it, retrieve, and score that.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Documents retrieved per query [default: 100].
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// Write the retrieved run here (TREC format).
    #[arg(long, value_name = "FILE")]
    pub run_out: Option<PathBuf>,
    #[command(flatten)]
    pub embedding_cache: CacheFlags,
    #[command(flatten)]
    pub encoder: EncoderFlags,
    /// Lowest grade that counts as relevant for MRR, recall and MAP (TREC DL uses 2).
    /// nDCG always uses the graded judgements.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub rel_threshold: i32,
    /// Print one JSON object with the keys ndcg@10, mrr@10, recall@10, recall@100, map.
    #[arg(long)]
    pub json: bool,
    /// Also print each query's measures (before the means).
    #[arg(long)]
    pub per_query: bool,
    /// Only encode shard I of N of the corpus (whole batches) into the cache, and stop; once
    /// every shard is there (from any machine, copied into one --cache folder), the same command
    /// without --shard joins them (the same vectors as one run) and evaluates.
    #[arg(long, value_name = "I/N", requires = "model", conflicts_with = "no_cache")]
    pub shard: Option<Shard>,
    /// Retrieve through this approximate-nearest-neighbour index (made by `adam index` with the
    /// same model and corpus) instead of the exact scan: the corpus is not encoded.
    #[arg(long, value_name = "FILE", requires = "model", conflicts_with = "shard")]
    pub index: Option<PathBuf>,
    /// Candidates the index search keeps per query (HNSW's ef; at least --depth): more is
    /// slower and finds more of the exact neighbours [default: 128].
    #[arg(long, value_name = "N", requires = "index")]
    pub expansion_search: Option<usize>,
    /// With --index: also run the exact search (corpus vectors from the cache, or encoded) and
    /// print the index's recall@depth against it and both searches' times.
    #[arg(long, requires = "index")]
    pub compare_exact: bool,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let files = DatasetFiles::resolve(&args.data, &args.split)?;
    let qrels_path = files.qrels_path()?.to_path_buf();
    if args.run.is_some() {
        // Checked here: clap's `requires = "model"` lets these through when the --model they
        // require conflicts with a --run that is present.
        let given = args.encoder.first_given(&[
            ("--depth", args.depth.is_some()),
            ("--run-out", args.run_out.is_some()),
            ("--cache", args.embedding_cache.cache.is_some()),
            ("--no-cache", args.embedding_cache.no_cache),
            ("--index", args.index.is_some()),
        ]);
        if let Some(flag) = given {
            bail!("{flag} applies to --model DIR only; --run FILE is scored as it is");
        }
    }
    if let Some(shard) = args.shard {
        return encode_shard(&args, &files, shard);
    }
    let qrels = files.read_qrels()?;
    let (run, what) = match (&args.run, &args.model) {
        (Some(run_path), _) => {
            let run = read_run(open(run_path)?, run_path)?;
            warn_unknown_ids(&files, &run)?;
            (run, run_path.display().to_string())
        }
        (None, Some(model)) => (dense_run(&args, &files, model, &qrels)?, format!("the run of {}", model.display())),
        (None, None) => bail!("give --run FILE or --model DIR"),
    };

    let eval = evaluate(&run, &qrels, args.rel_threshold);
    if eval.per_query.is_empty() {
        bail!("no query of {what} is in {}: is this run for this dataset and split?", qrels_path.display());
    }
    if args.json {
        if args.per_query {
            print!("{}", per_query_jsonl(&eval)?);
        }
        println!("{}", serde_json::to_string(&eval.mean)?);
    } else {
        if args.per_query {
            for (q, m) in &eval.per_query {
                print_measures(q, m);
            }
        }
        print_measures("all", &eval.mean);
        println!("{:<12}\t{:<8}\t{}", "queries", "all", eval.per_query.len());
    }
    Ok(())
}

/// Each query's measures, one JSON object per line with its `query` (the lines of `--json
/// --per-query`, which `scripts/seed_table.py` reads).
pub fn per_query_jsonl(eval: &Evaluation) -> Result<String> {
    let mut text = String::new();
    for (query, measures) in &eval.per_query {
        let mut obj = serde_json::to_value(measures)?;
        obj["query"] = query.clone().into();
        text.push_str(&obj.to_string());
        text.push('\n');
    }
    Ok(text)
}

fn print_measures(query: &str, m: &Measures) {
    for (name, value) in Measures::NAMES.iter().zip(m.values()) {
        println!("{name:<12}\t{query:<8}\t{value:.4}");
    }
}

/// Encodes the corpus (or reads it from the cache) and the split's queries with `model`, and
/// retrieves the top `--depth` documents of each query; without a cache this is exactly
/// [`crate::retrieval::retrieve`]. Progress and timings go to stderr.
fn dense_run(args: &EvalArgs, files: &DatasetFiles, model: &Path, qrels: &Qrels) -> Result<Run> {
    let depth = args.depth.unwrap_or(100);
    if depth == 0 {
        bail!("--depth must be at least 1");
    }
    let queries = split_queries(files, qrels)?;
    let model_args = args.encoder.with_model(model.to_path_buf());
    let cache = args.embedding_cache.open();
    let run = match &args.index {
        None => {
            // Read before the model loads, so a bad corpus fails at once.
            let corpus = SpilledCorpus::read(files)?;
            let encoder = load_encoder(&model_args)?;
            dense_retrieve(&encoder, &model_args, cache.as_ref(), &corpus.path, &corpus, &queries, depth)?
        }
        Some(index_path) => {
            let (corpus_path, corpus) = load_corpus(files)?;
            let encoder = load_encoder(&model_args)?;
            let ann = IndexSearch {
                path: index_path,
                expansion: args.expansion_search.unwrap_or(DEFAULT_EXPANSION_SEARCH),
                compare_exact: args.compare_exact,
            };
            ann.retrieve(&encoder, &model_args, cache.as_ref(), &corpus_path, &corpus, &queries, depth)?
        }
    };

    if let Some(path) = &args.run_out {
        let tag = model.file_name().map(|n| n.to_string_lossy().replace(char::is_whitespace, "_"));
        let mut out = AtomicFile::create(path)?;
        write_run(out.writer(), &run, &format!("adam-{}", tag.as_deref().unwrap_or("dense")))
            .with_context(|| format!("writing {}", path.display()))?;
        out.commit()?;
        eprintln!("wrote the run to {}", path.display());
    }
    Ok(run)
}

/// `--shard I/N`: encode one shard of the corpus into the cache.
fn encode_shard(args: &EvalArgs, files: &DatasetFiles, shard: Shard) -> Result<()> {
    let Some(model) = &args.model else { bail!("--shard needs --model DIR") };
    let corpus = SpilledCorpus::read(files)?;
    let model_args = args.encoder.with_model(model.to_path_buf());
    let encoder = load_encoder(&model_args)?;
    let Some(cache) = args.embedding_cache.open() else {
        bail!("--shard writes into the embedding cache: give --cache DIR (no default cache folder: HOME is not set)");
    };
    encode_corpus_shard(&encoder, &model_args, &cache, &corpus.path, &corpus, shard)?;
    eprintln!(
        "when every shard of {} is in {}, run this command without --shard to evaluate",
        shard.count,
        cache.dir.display()
    );
    Ok(())
}

/// The queries judged in the split, in qrels order; only these are encoded.
fn split_queries(files: &DatasetFiles, qrels: &Qrels) -> Result<Vec<Query>> {
    let queries_path = files.queries_path()?;
    let all = files.read_queries()?;
    check_unique_ids(all.iter().map(|q| q.id.as_str()), "query").with_context(|| queries_path.display().to_string())?;
    let mut by_id: std::collections::HashMap<String, Query> = all.into_iter().map(|q| (q.id.clone(), q)).collect();
    let queries: Vec<Query> = qrels.keys().filter_map(|id| by_id.remove(id)).collect();
    let missing = qrels.len() - queries.len();
    if queries.is_empty() {
        bail!("no query judged in the split is in {}", queries_path.display());
    }
    if missing > 0 {
        eprintln!("warning: {missing} judged query id(s) have no text in {} and are left out", queries_path.display());
    }
    Ok(queries)
}

/// A run that names documents or queries the folder does not have is probably for another
/// dataset: say so, but still score it (trec_eval would).
fn warn_unknown_ids(files: &DatasetFiles, run: &Run) -> Result<()> {
    if let Some(queries_path) = &files.queries {
        let known: HashSet<String> = files.read_queries()?.into_iter().map(|q| q.id).collect();
        let unknown = run.keys().filter(|q| !known.contains(*q)).count();
        if unknown > 0 {
            eprintln!("warning: {unknown} query id(s) of the run are not in {}", queries_path.display());
        }
    }
    if let Some(corpus_path) = &files.corpus {
        let known: HashSet<String> = files.read_corpus()?.into_iter().map(|d| d.id).collect();
        let unknown = run.values().flatten().filter(|e| !known.contains(&e.doc)).count();
        if unknown > 0 {
            eprintln!("warning: {unknown} run line(s) name documents not in {}", corpus_path.display());
        }
    }
    Ok(())
}
