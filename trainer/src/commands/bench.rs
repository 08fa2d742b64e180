//! `adam bench`: encoding throughput of each backend on real passages.

use std::path::PathBuf;
use std::time::Instant;

use adam_core::data::read_corpus;
use anyhow::{Result, bail};

use crate::backend::Backend;
use crate::io::open;
use crate::memory::peak_rss_mib;
use crate::models::{ModelArgs, load_encoder};
use crate::retrieval::embed_texts_with_workers;
use crate::workers::worker_count;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Model folder.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// BEIR corpus.jsonl whose first passages are encoded.
    #[arg(long, value_name = "FILE")]
    pub corpus: PathBuf,
    /// How many passages to encode per backend.
    #[arg(long, default_value_t = 1000)]
    pub passages: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 128)]
    pub max_length: usize,
    /// Backends to measure, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Flex, Backend::Ndarray])]
    pub backends: Vec<Backend>,
    /// Batches encoded at once, one per core (flex only; the vectors do not change). Default:
    /// one per core (at most 8).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let docs = read_corpus(open(&args.corpus)?, &args.corpus)?;
    let mut texts: Vec<&str> = docs.iter().take(args.passages).map(|d| d.text.as_str()).collect();
    // Longest first, as sentence-transformers' `encode` (and `adam embed`) order their input:
    // batches of similar length waste little on padding, and the comparison is like for like.
    texts.sort_by_key(|t| std::cmp::Reverse(t.chars().count()));
    if texts.len() <= args.batch_size {
        bail!(
            "{} has {} passages: need more than one batch of {}",
            args.corpus.display(),
            texts.len(),
            args.batch_size
        );
    }
    println!(
        "{} passages from {}, batch {}, max {} tokens, {} threads",
        texts.len(),
        args.corpus.display(),
        args.batch_size,
        args.max_length,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for backend in &args.backends {
        let model_args = ModelArgs {
            model: args.model.clone(),
            batch_size: args.batch_size,
            max_length: Some(args.max_length),
            layers: None,
            backend: *backend,
        };
        let encoder = load_encoder(&model_args)?;
        let (first, rest) = texts.split_at(args.batch_size);
        encoder.embed(first)?; // warm-up: first-call allocation and kernel compilation
        let workers = worker_count(args.workers, &encoder.device, rest.len().div_ceil(args.batch_size));
        let start = Instant::now();
        let n = embed_texts_with_workers(&encoder, rest, args.batch_size, "passages", Some(workers))?.len();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{{\"engine\":\"adam-{backend}\",\"workers\":{workers},\"passages\":{n},\"seconds\":{secs:.2},\"passages_per_s\":{:.1}}}",
            n as f64 / secs
        );
    }
    if let Some(peak) = peak_rss_mib() {
        println!("peak resident memory: {peak:.0} MiB");
    }
    Ok(())
}
