//! `adam teacher rerank`: the top of a TREC run, reranked by the teacher.

use std::path::PathBuf;

use adam_core::data::{Run, RunEntry, read_run, write_run};
use anyhow::{Context, Result};

use crate::backend::Backend;
use crate::instances::{Collection, PieceCache};
use crate::io::{AtomicFile, open};
use crate::progress;
use crate::teacher_model::{TeacherModel, TeacherModelArgs};

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
    /// Use only a dual encoder's first K transformer layers, as a student with `layers = K`
    /// starts (to measure that student untrained on the same candidates).
    #[arg(long, value_name = "K")]
    pub layers: Option<usize>,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

pub fn run(args: RerankArgs) -> Result<()> {
    let beir = Collection::load(&args.data, &[&args.split])?;
    let input = read_run(open(&args.run)?, &args.run)?;
    let device = args.backend.device()?;
    let teacher = TeacherModel::load(&args.teacher, &device, args.max_length, args.layers)?;
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
                anyhow::anyhow!(
                    "{}: document `{}` is not in the corpus of {}",
                    args.run.display(),
                    e.doc,
                    args.data.display()
                )
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
    write_run(file.writer(), &out, "adam-teacher").with_context(|| format!("writing {}", args.output.display()))?;
    file.commit()?;
    eprintln!("reranked {} queries into {}", out.len(), args.output.display());
    Ok(())
}
