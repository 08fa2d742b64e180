//! `adam eval`: trec_eval's measures for a TREC run over a BEIR folder.

use std::collections::HashSet;
use std::path::PathBuf;

use adam_core::data::read_run;
use adam_core::metrics::{Measures, evaluate};
use anyhow::{Result, bail};

use crate::dataset::DatasetFiles;
use crate::io::open;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Dataset: a BEIR folder (qrels/<split>.tsv), an MS MARCO folder (qrels.<split>.tsv), or a
    /// Hugging Face Hub dataset `owner/name`.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Qrels split to score against.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// TREC run file: `qid Q0 docid rank score tag` per line.
    #[arg(long, value_name = "FILE")]
    pub run: PathBuf,
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
}

pub fn run(args: EvalArgs) -> Result<()> {
    let files = DatasetFiles::resolve(&args.data, &args.split)?;
    let qrels_path = files.qrels_path()?.to_path_buf();
    let qrels = files.read_qrels()?;
    let run = read_run(open(&args.run)?, &args.run)?;
    warn_unknown_ids(&files, &run)?;

    let eval = evaluate(&run, &qrels, args.rel_threshold);
    if eval.per_query.is_empty() {
        bail!(
            "no query of {} is in {}: is this run for this dataset and split?",
            args.run.display(),
            qrels_path.display()
        );
    }
    if args.json {
        if args.per_query {
            for (q, m) in &eval.per_query {
                let mut obj = serde_json::to_value(m)?;
                obj["query"] = q.clone().into();
                println!("{obj}");
            }
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

fn print_measures(query: &str, m: &Measures) {
    for (name, value) in Measures::NAMES.iter().zip(m.values()) {
        println!("{name:<12}\t{query:<8}\t{value:.4}");
    }
}

/// A run that names documents or queries the folder does not have is probably for another
/// dataset: say so, but still score it (trec_eval would).
fn warn_unknown_ids(files: &DatasetFiles, run: &adam_core::data::Run) -> Result<()> {
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
