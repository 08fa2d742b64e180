//! `adam index`: a model's corpus vectors (with their ids) into an approximate-nearest-neighbour
//! index (USearch's HNSW), which `adam eval --model M --index FILE` then retrieves through.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::dataset::DatasetFiles;
use crate::embed_cache::Header;
use crate::io::AtomicFile;
use crate::models::{EncoderFlags, load_encoder};
use crate::retrieval::{CacheFlags, corpus_embeddings, load_corpus};
use crate::vector_index::{
    BuildParams, FORMAT, IndexMeta, Quantization, VectorIndex, engine_version, meta_path, thread_count,
};

#[derive(clap::Args, Debug)]
pub struct IndexArgs {
    /// Model folder whose embeddings of the corpus are indexed.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Dataset whose corpus is indexed: a BEIR or MS MARCO folder, or a Hub dataset `owner/name`.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The index file (USearch format); its description, with the document ids, goes to FILE.json.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub embedding_cache: CacheFlags,
    #[command(flatten)]
    pub encoder: EncoderFlags,
    /// Neighbours per node of the graph (HNSW's M): more gives higher recall, a larger index.
    #[arg(long, default_value_t = 16, value_name = "M")]
    pub connectivity: usize,
    /// Candidates kept while inserting (HNSW's efConstruction): more gives a better graph, slower.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub expansion_add: usize,
    /// How the index stores the vectors: f16 halves its memory, i8 quarters it.
    #[arg(long, value_enum, default_value_t = Quantization::F32)]
    pub quantization: Quantization,
    /// Threads inserting at once (0: one per core). One thread writes the same file every time;
    /// with more, the graph depends on their timing.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
}

pub fn run(args: IndexArgs) -> Result<()> {
    let threads = thread_count(args.threads);
    let params = BuildParams {
        connectivity: args.connectivity,
        expansion_add: args.expansion_add,
        quantization: args.quantization,
        threads,
    };
    if params.connectivity < 2 || params.expansion_add == 0 {
        bail!("--connectivity must be at least 2 and --expansion-add at least 1");
    }
    if args.out.is_dir() {
        bail!("--out {} is a folder: give the index file's path", args.out.display());
    }
    let files = DatasetFiles::resolve(&args.data, "test")?;
    let (corpus_path, corpus) = load_corpus(&files)?;
    let model_args = args.encoder.with_model(args.model.clone());
    let encoder = load_encoder(&model_args)?;
    let cache = args.embedding_cache.open();
    let header = Header::describe(&args.model, &encoder, &corpus_path, corpus.as_slice())?;
    let vectors = corpus_embeddings(&encoder, &model_args, cache.as_ref(), &corpus_path, &corpus)?;

    let start = Instant::now();
    let index = VectorIndex::build(&vectors, &params)?;
    let build_seconds = start.elapsed().as_secs_f64();
    let memory_bytes = index.memory_bytes();
    eprintln!(
        "indexed {} documents ({} dims, {:?}) in {build_seconds:.1} s with {threads} thread(s); {:.1} MiB in memory",
        index.len(),
        vectors.dim,
        params.quantization,
        memory_bytes as f64 / (1 << 20) as f64
    );
    index.save(&args.out)?;
    let meta = IndexMeta {
        format: FORMAT.to_string(),
        usearch: engine_version(),
        metric: "ip".to_string(),
        embeddings: header,
        params,
        build_seconds,
        memory_bytes,
        ids: corpus.into_iter().map(|d| d.id).collect(),
    };
    let meta_file = meta_path(&args.out);
    let mut out = AtomicFile::create(&meta_file)?;
    serde_json::to_writer(out.writer(), &meta).with_context(|| format!("writing {}", meta_file.display()))?;
    out.commit()?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({:.1} MiB) and {}; retrieve with `adam eval --model {} --data {} --index {}`",
        args.out.display(),
        size as f64 / (1 << 20) as f64,
        meta_file.display(),
        args.model.display(),
        args.data.display(),
        args.out.display()
    );
    Ok(())
}
