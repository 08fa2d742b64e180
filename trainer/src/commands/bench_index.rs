//! `adam bench-index`: the approximate-nearest-neighbour index on synthetic vectors at a size
//! chosen by the user (1 M by default): build time, memory, queries/s and recall@depth against
//! the exact search, per quantization and search expansion.

use std::time::Instant;

use adam_core::data::{Document, Query};
use anyhow::{Result, bail};

use crate::backend::Backend;
use crate::memory::peak_rss_mib;
use crate::retrieval::{Embeddings, search};
use crate::vector_index::{BuildParams, Quantization, VectorIndex, hits_to_run, recall_against_exact, thread_count};

#[derive(clap::Args, Debug)]
pub struct BenchIndexArgs {
    /// Vectors in the index.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub vectors: usize,
    /// Dimensions (all-MiniLM-L6-v2 has 384, all-mpnet-base-v2 768).
    #[arg(long, default_value_t = 384, value_name = "N")]
    pub dim: usize,
    /// Queries searched (drawn like the vectors, not among them).
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub queries: usize,
    /// Neighbours retrieved per query; recall is counted at this depth.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub depth: usize,
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Quantization::F32, Quantization::F16, Quantization::I8])]
    pub quantization: Vec<Quantization>,
    /// Search expansions (HNSW's ef) to measure; each is raised to --depth.
    #[arg(long, value_delimiter = ',', default_values_t = [128, 256, 512], value_name = "N,..")]
    pub expansion_search: Vec<usize>,
    #[arg(long, default_value_t = 16, value_name = "M")]
    pub connectivity: usize,
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub expansion_add: usize,
    /// Threads building and searching (0: one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// Seed of the synthetic vectors.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `n` random directions in `dim` dimensions (SplitMix64 → uniform in [-1, 1)^dim, normalised):
/// no clusters, the hardest case for a graph index; real corpora give higher recall at the same
/// expansion (BENCHMARKS.md measures DL19 and WikiQA).
fn random_unit_vectors(seed: u64, n: usize, dim: usize) -> Embeddings {
    let mut state = seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut values = Vec::with_capacity(n * dim);
    let mut row = vec![0f32; dim];
    for _ in 0..n {
        for x in row.iter_mut() {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            *x = (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
        }
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
        values.extend(row.iter().map(|x| x / norm));
    }
    Embeddings { dim, values }
}

pub fn run(args: BenchIndexArgs) -> Result<()> {
    if args.vectors == 0 || args.queries == 0 || args.depth == 0 || args.dim == 0 {
        bail!("--vectors, --queries, --depth and --dim must be at least 1");
    }
    if args.depth > args.vectors {
        bail!("--depth {} is more than --vectors {}", args.depth, args.vectors);
    }
    let threads = thread_count(args.threads);
    let docs = random_unit_vectors(args.seed, args.vectors, args.dim);
    let query_vectors = random_unit_vectors(args.seed ^ 0x5EED, args.queries, args.dim);
    let corpus: Vec<Document> = (0..args.vectors)
        .map(|i| Document { id: format!("d{i:09}"), title: String::new(), text: String::new() })
        .collect();
    let queries: Vec<Query> =
        (0..args.queries).map(|i| Query { id: format!("q{i:06}"), text: String::new() }).collect();
    let ids: Vec<String> = corpus.iter().map(|d| d.id.clone()).collect();
    println!(
        "{} random unit vectors of {} dims ({:.0} MiB as f32), {} queries, top {}, {threads} threads",
        args.vectors,
        args.dim,
        (args.vectors * args.dim * 4) as f64 / (1 << 20) as f64,
        args.queries,
        args.depth
    );

    let device = Backend::Flex.device()?;
    let start = Instant::now();
    let exact = search(&device, &corpus, &docs, &queries, &query_vectors, args.depth)?;
    let exact_secs = start.elapsed().as_secs_f64();
    println!("exact search (flex matmul): {exact_secs:.2} s, {:.0} queries/s", args.queries as f64 / exact_secs);

    println!(
        "\n| storage | build s | inserts/s | index MiB | expansion | queries/s | recall@{} |\n|---|---|---|---|---|---|---|",
        args.depth
    );
    for &quantization in &args.quantization {
        let params =
            BuildParams { connectivity: args.connectivity, expansion_add: args.expansion_add, quantization, threads };
        let start = Instant::now();
        let index = VectorIndex::build(&docs, &params)?;
        let build_secs = start.elapsed().as_secs_f64();
        let mib = index.memory_bytes() as f64 / (1 << 20) as f64;
        for &expansion in &args.expansion_search {
            let expansion = expansion.max(args.depth);
            index.set_expansion_search(expansion);
            let start = Instant::now();
            let hits = index.search(&query_vectors, args.depth, threads)?;
            let secs = start.elapsed().as_secs_f64();
            let run = hits_to_run(&queries, hits, &ids)?;
            println!(
                "| {quantization:?} | {build_secs:.1} | {:.0} | {mib:.0} | {expansion} | {:.0} | {:.4} |",
                args.vectors as f64 / build_secs,
                args.queries as f64 / secs,
                recall_against_exact(&exact, &run, args.depth)
            );
        }
    }
    if let Some(peak) = peak_rss_mib() {
        println!(
            "\npeak resident memory of the process: {peak:.0} MiB (the vectors as f32 are held once besides the indexes)"
        );
    }
    Ok(())
}
