//! Exact dense retrieval: embed a corpus and queries with a [`SentenceEncoder`], then rank every
//! document for every query by dot product (cosine for models that normalise) and keep the top
//! `depth`. Scores are computed with burn's matmul on the encoder's device, in blocks of queries
//! × documents so memory stays bounded; selection runs on the CPU. [`dense_retrieve`] takes the
//! corpus vectors from an [`EmbeddingCache`] when it has them.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use adam_core::data::{Document, Query, Run, RunEntry};
use adam_core::encoder::SentenceEncoder;
use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::ProgressBar;

use crate::corpus_texts::{self, CorpusTexts};
use crate::dataset::DatasetFiles;
use crate::embed_cache::{EmbeddingCache, Header, ShardHeader, Streamed, default_dir};
use crate::models::ModelArgs;
use crate::progress;
use crate::shard::Shard;
use crate::workers::{Workers, worker_count};

/// Queries scored per matmul. With [`DOC_BLOCK`] this bounds one score block to 256 × 32,768
/// f32 (32 MiB), large enough for the GEMM to run at full speed.
const QUERY_BLOCK: usize = 256;
/// Documents per block uploaded to the device (32,768 × 384 f32 = 48 MiB for MiniLM).
const DOC_BLOCK: usize = 32_768;
/// Documents read from the embedding cache at a time (6 MiB for MiniLM): each block is held
/// three times over (bytes, floats, the device's copy) beside its scores.
const CACHE_BLOCK: usize = 4_096;
/// Batches encoded per block by [`encode_in_blocks`] before they are scored and let go.
const ENCODE_BATCHES: usize = 32;

/// Row-major text vectors `[len, dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub dim: usize,
    pub values: Vec<f32>,
}

impl Embeddings {
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The top `depth` documents of `corpus` for each query, by the dot product of their
/// embeddings. Ties (equal f32 scores) are broken by document id, descending byte order, which is
/// how trec_eval orders them, so the run's ranks are the ranks `adam eval` scores. The corpus is
/// encoded and scored a block at a time, so its vectors are never all in memory.
pub fn retrieve<C: CorpusTexts + ?Sized>(
    encoder: &SentenceEncoder,
    corpus: &C,
    queries: &[Query],
    depth: usize,
    batch_size: usize,
) -> Result<Run> {
    corpus.check_unique_ids()?;
    check_unique_ids(queries.iter().map(|q| q.id.as_str()), "query")?;
    let query_texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let query_vectors = embed_texts(encoder, &query_texts, batch_size, "queries")?;
    let mut best = TopK::new(&encoder.device, corpus, &query_vectors, depth)?;
    encode_in_blocks(encoder, corpus, batch_size, |docs, rows| best.add(docs, rows))?;
    best.into_run(corpus, queries)
}

/// Fails on the first id that appears twice: a run with a duplicate document is invalid for
/// trec_eval, and a duplicate query would silently merge two rankings.
pub fn check_unique_ids<'a>(ids: impl Iterator<Item = &'a str>, what: &str) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, id) in ids.enumerate() {
        if let Some(first) = seen.insert(id, i) {
            bail!("{what} id `{id}` appears twice (entries {} and {})", first + 1, i + 1);
        }
    }
    Ok(())
}

/// Embeds `texts` in batches of `batch_size`, longest first (as sentence-transformers does, so
/// batches pad little), and returns the vectors in input order. Draws a progress bar on stderr.
pub fn embed_texts<T: AsRef<str> + Sync>(
    encoder: &SentenceEncoder,
    texts: &[T],
    batch_size: usize,
    what: &str,
) -> Result<Embeddings> {
    embed_texts_with_workers(encoder, texts, batch_size, what, None)
}

/// [`embed_texts`] with `workers` batches at once ([`worker_count`]; the vectors do not change).
pub fn embed_texts_with_workers<T: AsRef<str> + Sync>(
    encoder: &SentenceEncoder,
    texts: &[T],
    batch_size: usize,
    what: &str,
    workers: Option<usize>,
) -> Result<Embeddings> {
    let progress = progress::bar(texts.len() as u64, &format!("embedding {what}"));
    let name = |i: usize| format!("{what} #{}", i + 1);
    let order = encoding_order(texts);
    let embeddings = embed_in_order(encoder, texts, &order, batch_size, workers, &progress, &name)?;
    progress.finish_and_clear();
    Ok(embeddings)
}

/// Embeds `texts` in batches of `batch_size` taken along `order`; the vectors come back in input
/// order. `name(i)` names text `i` in an error.
fn embed_in_order<T: AsRef<str> + Sync>(
    encoder: &SentenceEncoder,
    texts: &[T],
    order: &[usize],
    batch_size: usize,
    workers: Option<usize>,
    progress: &ProgressBar,
    name: &dyn Fn(usize) -> String,
) -> Result<Embeddings> {
    if batch_size == 0 {
        bail!("batch size must be at least 1");
    }
    let dim = encoder.dim();
    let mut values = vec![0.0f32; texts.len() * dim];
    let batches: Vec<&[usize]> = order.chunks(batch_size).collect();
    // A batch per worker at once, one per core: flex runs much of a pass on one thread.
    let workers = Workers::new(worker_count(workers, &encoder.device, batches.len()))?;
    for round in batches.chunks(workers.count()) {
        let vectors = workers.run(round.len(), |w| -> Result<Vec<f32>> {
            let refs: Vec<&str> = round[w].iter().map(|&i| texts[i].as_ref()).collect();
            let tokens = encoder.model.tokenizer.encode(&refs)?;
            encoder
                .embed_batch(&tokens)
                .try_into_data()
                .map_err(|e| anyhow::anyhow!("reading embeddings from the device: {e:?}"))?
                .try_into_vec_as::<f32>()
                .map_err(|e| anyhow::anyhow!("reading embeddings: {e:?}"))
        });
        for (batch, flat) in round.iter().zip(vectors) {
            for (&i, v) in batch.iter().zip(flat?.chunks_exact(dim)) {
                if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
                    bail!("the model gave a non-finite value ({bad}) in the embedding of {}", name(i));
                }
                values[i * dim..(i + 1) * dim].copy_from_slice(v);
            }
            progress.inc(batch.len() as u64);
        }
    }
    Ok(Embeddings { dim, values })
}

/// Encodes a corpus longest text first (the order and batches of [`embed_texts`] over all of
/// it, so the same vectors), [`ENCODE_BATCHES`] batches at a time, and hands each block to
/// `sink(documents, rows)`: the corpus's vectors are never all in memory.
pub fn encode_in_blocks<C: CorpusTexts + ?Sized>(
    encoder: &SentenceEncoder,
    corpus: &C,
    batch_size: usize,
    mut sink: impl FnMut(&[usize], &[f32]) -> Result<()>,
) -> Result<()> {
    if batch_size == 0 {
        bail!("batch size must be at least 1");
    }
    let order = corpus_texts::encoding_order(corpus);
    let progress = progress::bar(order.len() as u64, "embedding documents");
    for block in order.chunks(batch_size * ENCODE_BATCHES) {
        let texts = corpus.texts(block)?;
        // Already longest first: embedding them in this order keeps the batches of one pass.
        let identity: Vec<usize> = (0..block.len()).collect();
        let name = |i: usize| format!("document `{}`", corpus.id(block[i]));
        let vectors = embed_in_order(encoder, &texts, &identity, batch_size, None, &progress, &name)?;
        sink(block, &vectors.values)?;
    }
    progress.finish_and_clear();
    Ok(())
}

/// The order in which [`embed_texts`] encodes `texts`: longest first, equal lengths in input
/// order (a stable sort, so batching is deterministic).
pub fn encoding_order<T: AsRef<str>>(texts: &[T]) -> Vec<usize> {
    corpus_texts::longest_first(texts.len(), |i| texts[i].as_ref().chars().count())
}

/// Encodes shard `shard` of the corpus (whole batches of the unsharded encoding order) into
/// `cache`, unless it is there already; `adam eval --model` without `--shard` then joins the
/// shards. Returns the documents the shard holds.
pub fn encode_corpus_shard<C: CorpusTexts + ?Sized>(
    encoder: &SentenceEncoder,
    model_args: &ModelArgs,
    cache: &EmbeddingCache,
    corpus_path: &Path,
    corpus: &C,
    shard: Shard,
) -> Result<usize> {
    let header = Header::describe(&model_args.model, encoder, corpus_path, corpus)?;
    if cache.load_shard(&header, shard)?.is_some() {
        eprintln!("shard {shard} of these embeddings is cached already in {}", cache.dir.display());
        return Ok(0);
    }
    let order = corpus_texts::encoding_order(corpus);
    let range = corpus_shard(corpus, &order, model_args.batch_size, encoder.model.sentence.max_seq_length, shard);
    // Already longest first: embed_texts keeps this order, and the batches start where the
    // unsharded run's do, so the vectors are the same.
    let part = corpus.texts(&order[range.clone()])?;
    let start = Instant::now();
    let vectors = embed_texts(encoder, &part, model_args.batch_size, "documents")?;
    let shard_header = ShardHeader {
        entry: header,
        shard: shard.to_string(),
        batch_size: model_args.batch_size,
        start: range.start,
        end: range.end,
        payload_xxh3: String::new(),
    };
    cache.store_shard(&shard_header, shard, &vectors)?;
    eprintln!(
        "embedded shard {shard}: {} of {} documents in {:.1} s, cached in {}",
        part.len(),
        corpus.len(),
        start.elapsed().as_secs_f64(),
        cache.dir.display()
    );
    Ok(part.len())
}

/// The positions (in encoding order) of shard `shard` of a corpus: whole batches, split so that
/// each shard has a similar share of the work. A batch costs its texts times its longest text's
/// length (characters, at most four per token of the limit): the corpus is encoded longest first,
/// so equal counts would give the first shard the slowest batches (DL19 in three: 430, 134 and
/// 96 s).
fn corpus_shard<C: CorpusTexts + ?Sized>(
    corpus: &C,
    order: &[usize],
    batch_size: usize,
    max_tokens: usize,
    shard: Shard,
) -> Range<usize> {
    let batch_size = batch_size.max(1);
    let costs: Vec<u64> = order
        .chunks(batch_size)
        .map(|batch| {
            let longest = corpus.chars(batch[0]).min(4 * max_tokens.max(1)) as u64;
            batch.len() as u64 * (longest + 1)
        })
        .collect();
    let units = shard.weighted_units(&costs);
    (units.start * batch_size).min(order.len())..(units.end * batch_size).min(order.len())
}

/// Joins the shards of `header`'s entry in `cache`, when there are any, into the entry itself
/// (one shard in memory at a time) and says whether it did: every shard of one count must be
/// present and cover the corpus once.
fn join_shards<C: CorpusTexts + ?Sized>(cache: &EmbeddingCache, header: &Header, corpus: &C) -> Result<bool> {
    let counts = cache.shard_counts(header)?;
    let count = match counts.as_slice() {
        [] => return Ok(false),
        [n] => *n,
        _ => bail!(
            "{} holds shards of these embeddings for several counts ({:?}); delete the ones you do not mean",
            cache.dir.display(),
            counts
        ),
    };
    let missing: Vec<String> =
        Shard::all(count).filter(|&shard| !cache.has_shard(header, shard)).map(|shard| shard.to_string()).collect();
    if !missing.is_empty() {
        bail!(
            "the corpus embeddings are sharded in {} but shard(s) {} are missing: run `adam eval --model ... --shard I/{count}` for them (same model, data and --batch-size)",
            cache.dir.display(),
            missing.join(", ")
        );
    }
    let order = corpus_texts::encoding_order(corpus);
    let mut payload = cache.payload_writer(header)?;
    let mut first_batch_size = None;
    for shard in Shard::all(count) {
        let Some((found, vectors)) = cache.load_shard(header, shard)? else {
            bail!("shard {shard} of the corpus embeddings vanished from {} while joining", cache.dir.display());
        };
        let batch_size = *first_batch_size.get_or_insert(found.batch_size);
        let want = corpus_shard(corpus, &order, found.batch_size, header.max_seq_length, shard);
        if found.batch_size != batch_size || (found.start, found.end) != (want.start, want.end) {
            bail!(
                "shard {shard} in {} was made with --batch-size {} (documents {}..{}), shard 1/{count} with {batch_size}: rerun it with the same batch size",
                cache.dir.display(),
                found.batch_size,
                found.start,
                found.end,
            );
        }
        payload.write_rows(&order[want], &vectors.values)?;
    }
    payload.commit(cache)?;
    eprintln!("joined {count} shards of the corpus embeddings from {}", cache.dir.display());
    eprintln!("cached the joined embeddings in {}", cache.payload_path(header).display());
    Ok(true)
}

/// The corpus of a dataset folder and its path, refused when empty or when an id repeats.
pub fn load_corpus(files: &DatasetFiles) -> Result<(PathBuf, Vec<Document>)> {
    let corpus_path = files.corpus_path()?.to_path_buf();
    let corpus = files.read_corpus()?;
    if corpus.is_empty() {
        bail!("{} has no documents", corpus_path.display());
    }
    check_unique_ids(corpus.iter().map(|d| d.id.as_str()), "document")
        .with_context(|| corpus_path.display().to_string())?;
    Ok((corpus_path, corpus))
}

/// `--cache DIR` / `--no-cache`: the embedding cache of the commands that encode a corpus
/// (`eval --model`, `index`, `negatives --method dense`), which share its entries.
#[derive(clap::Args, Debug, Clone)]
pub struct CacheFlags {
    /// Folder of cached corpus embeddings, shared by `adam eval`, `adam index` and `adam
    /// negatives` [default: $XDG_CACHE_HOME/adam/embeddings or ~/.cache/adam/embeddings].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Always encode the corpus; neither read nor write the cache.
    #[arg(long, conflicts_with = "cache")]
    pub no_cache: bool,
}

impl CacheFlags {
    /// The cache these flags ask for: `--cache DIR`, else the user's cache folder; `None` with
    /// `--no-cache` (or when there is no home folder).
    pub fn open(&self) -> Option<EmbeddingCache> {
        if self.no_cache { None } else { self.cache.clone().or_else(default_dir).map(EmbeddingCache::new) }
    }
}

/// Exact dense retrieval of `queries` over `corpus` (read from `corpus_path`), the corpus
/// vectors taken from `cache` when it has them for this model and corpus, else encoded (and
/// stored there), a block at a time either way: memory does not grow with the corpus's vectors.
/// `adam eval --model` and `adam negatives --method dense` share it, so mining negatives after
/// evaluating the same model encodes nothing but the queries.
pub fn dense_retrieve<C: CorpusTexts + ?Sized>(
    encoder: &SentenceEncoder,
    model_args: &ModelArgs,
    cache: Option<&EmbeddingCache>,
    corpus_path: &Path,
    corpus: &C,
    queries: &[Query],
    depth: usize,
) -> Result<Run> {
    let start = Instant::now();
    let run = match cache {
        None => retrieve(encoder, corpus, queries, depth, model_args.batch_size)?,
        Some(cache) => {
            corpus.check_unique_ids()?;
            check_unique_ids(queries.iter().map(|q| q.id.as_str()), "query")?;
            let header = Header::describe(&model_args.model, encoder, corpus_path, corpus)?;
            let query_texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
            let embed_start = Instant::now();
            let query_vectors = embed_texts(encoder, &query_texts, model_args.batch_size, "queries")?;
            let search_start = Instant::now();
            let wanted = Wanted { encoder, corpus, queries, query_vectors: &query_vectors, depth };
            if let Some(run) = search_cached(&wanted, cache, &header)? {
                eprintln!(
                    "reusing cached embeddings of {} documents ({} dims) from {}",
                    corpus.len(),
                    header.dim,
                    cache.payload_path(&header).display()
                );
                eprintln!(
                    "embedded {} queries in {:.2} s, scored and ranked in {:.2} s",
                    queries.len(),
                    (search_start - embed_start).as_secs_f64(),
                    search_start.elapsed().as_secs_f64()
                );
                run
            } else {
                encode_search_and_cache(&wanted, model_args.batch_size, cache, &header)?
            }
        }
    };
    eprintln!(
        "retrieved the top {} of {} documents for {} queries in {:.1} s",
        depth.min(corpus.len()),
        corpus.len(),
        queries.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(run)
}

/// What a cached or encoding search retrieves: the best `depth` documents of `corpus` for
/// `queries`, whose vectors `encoder` made.
struct Wanted<'a, C: ?Sized> {
    encoder: &'a SentenceEncoder,
    corpus: &'a C,
    queries: &'a [Query],
    query_vectors: &'a Embeddings,
    depth: usize,
}

impl<C: CorpusTexts + ?Sized> Wanted<'_, C> {
    fn top_k(&self) -> Result<TopK> {
        TopK::new(&self.encoder.device, self.corpus, self.query_vectors, self.depth)
    }
}

/// The run from `header`'s cached vectors (joined from shards first when only those are there),
/// read a block at a time; `None` when the cache has neither, or its entry is damaged (said on
/// stderr; it is then encoded and written again).
fn search_cached<C: CorpusTexts + ?Sized>(
    wanted: &Wanted<C>,
    cache: &EmbeddingCache,
    header: &Header,
) -> Result<Option<Run>> {
    let mut joined = false;
    loop {
        let mut best = wanted.top_k()?;
        let streamed = cache.stream(header, CACHE_BLOCK, |first, rows| {
            let docs: Vec<usize> = (first..first + rows.len() / header.dim).collect();
            best.add(&docs, rows)
        })?;
        match streamed {
            Streamed::Complete => return best.into_run(wanted.corpus, wanted.queries).map(Some),
            Streamed::Damaged(e) => {
                eprintln!("warning: ignoring the cached embeddings: {e:#}");
                return Ok(None);
            }
            Streamed::Absent if !joined && join_shards(cache, header, wanted.corpus)? => joined = true,
            Streamed::Absent => return Ok(None),
        }
    }
}

/// Encodes the corpus a block at a time, scoring each block and writing it into `cache` as it
/// goes. The cache only saves time: failing to write it warns and does not lose the evaluation.
fn encode_search_and_cache<C: CorpusTexts + ?Sized>(
    wanted: &Wanted<C>,
    batch_size: usize,
    cache: &EmbeddingCache,
    header: &Header,
) -> Result<Run> {
    let (encoder, corpus) = (wanted.encoder, wanted.corpus);
    let start = Instant::now();
    let mut best = wanted.top_k()?;
    let mut payload = match cache.payload_writer(header) {
        Ok(writer) => Some(writer),
        Err(e) => {
            eprintln!("warning: could not cache the embeddings: {e:#}");
            None
        }
    };
    encode_in_blocks(encoder, corpus, batch_size, |docs, rows| {
        if let Some(writer) = &mut payload
            && let Err(e) = writer.write_rows(docs, rows)
        {
            eprintln!("warning: could not cache the embeddings: {e:#}");
            payload = None;
        }
        best.add(docs, rows)
    })?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!("embedded {} documents in {secs:.1} s ({:.0}/s)", corpus.len(), corpus.len() as f64 / secs);
    if let Some(writer) = payload {
        match writer.commit(cache) {
            Ok(()) => eprintln!("cached the embeddings in {}", cache.payload_path(header).display()),
            Err(e) => eprintln!("warning: could not cache the embeddings: {e:#}"),
        }
    }
    best.into_run(corpus, wanted.queries)
}

/// The corpus vectors, all in memory (an index is built from all of them), from the cache when
/// it has an entry for this model and corpus; otherwise encoded (and stored there when there is
/// a cache).
pub fn corpus_embeddings(
    encoder: &SentenceEncoder,
    model_args: &ModelArgs,
    cache: Option<&EmbeddingCache>,
    corpus_path: &Path,
    corpus: &[Document],
) -> Result<Embeddings> {
    let Some(cache) = cache else {
        let texts: Vec<String> = corpus.iter().map(Document::full_text).collect();
        return embed_texts(encoder, &texts, model_args.batch_size, "documents");
    };
    let header = Header::describe(&model_args.model, encoder, corpus_path, corpus)?;
    let mut found = cache.load(&header)?;
    if found.is_none() && join_shards(cache, &header, corpus)? {
        found = cache.load(&header)?;
    }
    if let Some(found) = found {
        eprintln!(
            "reusing cached embeddings of {} documents ({} dims) from {}",
            found.len(),
            found.dim,
            cache.payload_path(&header).display()
        );
        return Ok(found);
    }
    let start = Instant::now();
    let texts: Vec<String> = corpus.iter().map(Document::full_text).collect();
    let docs = embed_texts(encoder, &texts, model_args.batch_size, "documents")?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!("embedded {} documents in {secs:.1} s ({:.0}/s)", corpus.len(), corpus.len() as f64 / secs);
    // The cache only saves time: failing to write it must not lose the evaluation.
    match cache.store(&header, &docs) {
        Ok(()) => eprintln!("cached the embeddings in {}", cache.payload_path(&header).display()),
        Err(e) => eprintln!("warning: could not cache the embeddings: {e:#}"),
    }
    Ok(docs)
}

/// A scored document; `Ord` says which is better: higher score, then (equal f32 scores) the
/// document whose id is later in byte order.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    score: f32,
    /// Position of the document's id in byte order among all ids.
    id_rank: u32,
    doc: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then(self.id_rank.cmp(&other.id_rank))
    }
}

/// Exact top-`depth` search of `query_vectors` against `doc_vectors` (rows aligned with `queries`
/// and `corpus`). Scores are computed on `device`; the result lists each query's documents best
/// first.
pub fn search(
    device: &Device,
    corpus: &[Document],
    doc_vectors: &Embeddings,
    queries: &[Query],
    query_vectors: &Embeddings,
    depth: usize,
) -> Result<Run> {
    if doc_vectors.len() != corpus.len() || query_vectors.len() != queries.len() {
        bail!(
            "{} document vectors for {} documents, {} query vectors for {} queries",
            doc_vectors.len(),
            corpus.len(),
            query_vectors.len(),
            queries.len()
        );
    }
    if doc_vectors.dim != query_vectors.dim {
        bail!("documents have {} dimensions, queries {}", doc_vectors.dim, query_vectors.dim);
    }
    let mut best = TopK::new(device, corpus, query_vectors, depth)?;
    let dim = doc_vectors.dim;
    let progress = progress::bar(corpus.len().div_ceil(DOC_BLOCK) as u64, "scoring blocks");
    for doc_start in (0..corpus.len()).step_by(DOC_BLOCK) {
        let doc_end = (doc_start + DOC_BLOCK).min(corpus.len());
        let docs: Vec<usize> = (doc_start..doc_end).collect();
        best.add(&docs, &doc_vectors.values[doc_start * dim..doc_end * dim])?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    best.into_run(corpus, queries)
}

/// Each query's best `depth` documents so far, over blocks of documents scored as they come
/// (in any order: the result does not depend on it).
pub struct TopK {
    device: Device,
    /// The queries in blocks of [`QUERY_BLOCK`], uploaded once.
    query_blocks: Vec<(Range<usize>, Tensor<2>)>,
    dim: usize,
    id_rank: Vec<u32>,
    depth: usize,
    /// Min-heaps (worst on top) of each query's best documents so far.
    best: Vec<BinaryHeap<std::cmp::Reverse<Candidate>>>,
}

impl TopK {
    pub fn new<C: CorpusTexts + ?Sized>(
        device: &Device,
        corpus: &C,
        query_vectors: &Embeddings,
        depth: usize,
    ) -> Result<Self> {
        if depth == 0 {
            bail!("depth must be at least 1");
        }
        if corpus.is_empty() {
            bail!("the corpus is empty: nothing to retrieve");
        }
        if corpus.len() > u32::MAX as usize {
            bail!("corpus of {} documents is larger than this search supports (2^32)", corpus.len());
        }
        let dim = query_vectors.dim;
        let queries = query_vectors.len();
        let query_blocks = (0..queries)
            .step_by(QUERY_BLOCK)
            .map(|start| {
                let end = (start + QUERY_BLOCK).min(queries);
                let rows = query_vectors.values[start * dim..end * dim].to_vec();
                (start..end, Tensor::<2>::from_data(TensorData::new(rows, [end - start, dim]), device))
            })
            .collect();
        let depth = depth.min(corpus.len());
        Ok(Self {
            device: device.clone(),
            query_blocks,
            dim,
            id_rank: id_ranks(corpus),
            depth,
            best: (0..queries).map(|_| BinaryHeap::with_capacity(depth + 1)).collect(),
        })
    }

    /// Scores documents `docs` (their vectors are the rows of `rows`) for every query.
    pub fn add(&mut self, docs: &[usize], rows: &[f32]) -> Result<()> {
        if rows.len() != docs.len() * self.dim {
            bail!("{} values for {} documents of {} dimensions", rows.len(), docs.len(), self.dim);
        }
        if docs.is_empty() {
            return Ok(());
        }
        // [dim, docs]: a transposed view, which the GEMM reads without copying.
        let docs_t =
            Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [docs.len(), self.dim]), &self.device).transpose();
        for (range, q) in &self.query_blocks {
            let scores: Vec<f32> = q
                .clone()
                .matmul(docs_t.clone())
                .try_into_data()
                .map_err(|e| anyhow::anyhow!("reading scores from the device: {e:?}"))?
                .try_into_vec_as::<f32>()
                .map_err(|e| anyhow::anyhow!("reading scores: {e:?}"))?;
            for (row, heap) in scores.chunks_exact(docs.len()).zip(&mut self.best[range.clone()]) {
                keep_best(heap, row, docs, &self.id_rank, self.depth);
            }
        }
        Ok(())
    }

    /// Each query's documents, best first.
    pub fn into_run<C: CorpusTexts + ?Sized>(self, corpus: &C, queries: &[Query]) -> Result<Run> {
        if queries.len() != self.best.len() {
            bail!("{} queries for {} query vectors", queries.len(), self.best.len());
        }
        let mut run = Run::new();
        for (query, heap) in queries.iter().zip(self.best) {
            let ranked = heap.into_sorted_vec(); // ascending Reverse = best first
            let entries = ranked
                .into_iter()
                .map(|std::cmp::Reverse(c)| RunEntry {
                    doc: corpus.id(c.doc as usize).to_string(),
                    score: c.score as f64,
                })
                .collect();
            run.insert(query.id.clone(), entries);
        }
        Ok(run)
    }
}

/// Merges one query's scores for documents `docs` into its heap.
fn keep_best(
    heap: &mut BinaryHeap<std::cmp::Reverse<Candidate>>,
    scores: &[f32],
    docs: &[usize],
    id_rank: &[u32],
    depth: usize,
) {
    for (&doc, &score) in docs.iter().zip(scores) {
        let candidate = Candidate { score, id_rank: id_rank[doc], doc: doc as u32 };
        if heap.len() < depth {
            heap.push(std::cmp::Reverse(candidate));
        } else if let Some(mut worst) = heap.peek_mut()
            && candidate > worst.0
        {
            *worst = std::cmp::Reverse(candidate);
        }
    }
}

/// Each document's position when ids are sorted by bytes (ids are unique).
fn id_ranks<C: CorpusTexts + ?Sized>(corpus: &C) -> Vec<u32> {
    let order = corpus_texts::ids_in_byte_order(corpus);
    let mut rank = vec![0u32; corpus.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r as u32;
    }
    rank
}

/// Checks the blocked search against a plain sort on vectors shaped like real ones.
#[cfg(test)]
mod tests {
    use super::*;
    use adam_core::metrics::trec_order;

    fn doc(id: &str) -> Document {
        Document { id: id.into(), title: String::new(), text: String::new() }
    }

    fn query(id: &str) -> Query {
        Query { id: id.into(), text: String::new() }
    }

    /// Deterministic pseudo-random numbers in [-1, 1) (SplitMix64).
    fn noise(seed: u64, n: usize) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The reference: every score with f64 accumulation, sorted as trec_eval sorts.
    fn brute_force(docs: &Embeddings, ids: &[String], q: &[f32], depth: usize) -> Vec<(String, f32)> {
        let all: Vec<RunEntry> = (0..docs.len())
            .map(|i| {
                let s: f64 = docs.values[i * docs.dim..(i + 1) * docs.dim]
                    .iter()
                    .zip(q)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum();
                RunEntry { doc: ids[i].clone(), score: s }
            })
            .collect();
        trec_order(&all).into_iter().take(depth).map(|e| (e.doc.clone(), e.score as f32)).collect()
    }

    #[test]
    fn blocked_search_equals_brute_force_across_block_edges() {
        let dim = 24;
        // More documents than one block, so merging across blocks is exercised.
        let n_docs = DOC_BLOCK + 700;
        let n_queries = QUERY_BLOCK + 3;
        let corpus: Vec<Document> = (0..n_docs).map(|i| doc(&format!("d{i}"))).collect();
        let queries: Vec<Query> = (0..n_queries).map(|i| query(&format!("q{i}"))).collect();
        let docs = Embeddings { dim, values: noise(1, n_docs * dim) };
        let qv = Embeddings { dim, values: noise(2, n_queries * dim) };
        let run = search(&Device::flex(), &corpus, &docs, &queries, &qv, 20).unwrap();
        assert_eq!(run.len(), n_queries);
        let ids: Vec<String> = corpus.iter().map(|d| d.id.clone()).collect();
        for (i, q) in queries.iter().enumerate().step_by(37) {
            let want = brute_force(&docs, &ids, &qv.values[i * dim..(i + 1) * dim], 20);
            let got = &run[&q.id];
            assert_eq!(got.len(), 20);
            for (rank, (g, (wid, ws))) in got.iter().zip(&want).enumerate() {
                // GEMM and f64 sums round differently (~1e-6); random scores are far apart.
                assert!((g.score as f32 - ws).abs() < 1e-4, "query {i} rank {rank}: {} vs {ws}", g.score);
                assert_eq!(&g.doc, wid, "query {i} rank {rank}");
            }
        }
    }

    #[test]
    fn ties_are_broken_by_doc_id_descending_as_trec_eval_does() {
        // Five documents with the same vector: all scores tie exactly.
        let ids = ["9", "10", "a", "B", "999"];
        let corpus: Vec<Document> = ids.iter().map(|i| doc(i)).collect();
        let docs = Embeddings { dim: 2, values: [0.6f32, 0.8].repeat(ids.len()) };
        let qv = Embeddings { dim: 2, values: vec![1.0, 0.0] };
        let run = search(&Device::flex(), &corpus, &docs, &[query("q")], &qv, 3).unwrap();
        let got: Vec<&str> = run["q"].iter().map(|e| e.doc.as_str()).collect();
        // Byte order descending: "a" > "B" > "999" > "9" > "10".
        assert_eq!(got, ["a", "B", "999"]);
        let reordered = trec_order(&run["q"]);
        assert!(reordered.iter().map(|e| e.doc.as_str()).eq(got.iter().copied()), "run order is trec_eval order");
    }

    #[test]
    fn depth_larger_than_corpus_returns_every_document() {
        let corpus = vec![doc("x"), doc("y")];
        let docs = Embeddings { dim: 1, values: vec![1.0, 2.0] };
        let qv = Embeddings { dim: 1, values: vec![1.0] };
        let run = search(&Device::flex(), &corpus, &docs, &[query("q")], &qv, 100).unwrap();
        let got: Vec<(&str, f64)> = run["q"].iter().map(|e| (e.doc.as_str(), e.score)).collect();
        assert_eq!(got, [("y", 2.0), ("x", 1.0)]);
    }

    #[test]
    fn retrieve_with_minilm_finds_each_document_from_its_own_text() {
        use adam_core::loader::{LoadOptions, ModelSource};
        let (Some(model), Some(corpus_path)) =
            (adam_tests::fixture("models/all-MiniLM-L6-v2"), adam_tests::fixture("data/trec-dl19/corpus.jsonl"))
        else {
            return;
        };
        let file = std::io::BufReader::new(std::fs::File::open(&corpus_path).unwrap());
        let corpus: Vec<Document> =
            adam_core::data::read_corpus(file, &corpus_path).unwrap().into_iter().take(60).collect();
        let encoder =
            SentenceEncoder::load(&ModelSource::Dir(model), &Device::flex(), &LoadOptions::default()).unwrap();
        let queries: Vec<Query> =
            corpus.iter().step_by(7).map(|d| Query { id: format!("q-{}", d.id), text: d.full_text() }).collect();
        // An odd batch size, so the last batch is partial.
        let run = retrieve(&encoder, corpus.as_slice(), &queries, 5, 7).unwrap();
        assert_eq!(run.len(), queries.len());
        for (q, d) in queries.iter().zip(corpus.iter().step_by(7)) {
            let ranked = &run[&q.id];
            assert_eq!(ranked.len(), 5);
            assert_eq!(ranked[0].doc, d.id, "a text's nearest neighbour is itself");
            assert!((ranked[0].score - 1.0).abs() < 1e-5, "unit vectors: self-similarity {}", ranked[0].score);
            assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score), "best first");
            // The score of rank 2 is the cosine of the two texts embedded on their own.
            let other = corpus.iter().find(|c| c.id == ranked[1].doc).unwrap();
            let v = encoder.embed(&[q.text.as_str(), other.full_text().as_str()]).unwrap();
            let dot: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
            assert!((ranked[1].score - dot as f64).abs() < 1e-4, "{} vs {dot}", ranked[1].score);
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let corpus = vec![doc("x")];
        let docs = Embeddings { dim: 1, values: vec![1.0] };
        let qv = Embeddings { dim: 1, values: vec![1.0] };
        let err = search(&Device::flex(), &corpus, &docs, &[query("q")], &qv, 0).unwrap_err();
        assert!(err.to_string().contains("depth"), "{err}");
        let err =
            search(&Device::flex(), &[], &Embeddings { dim: 1, values: vec![] }, &[query("q")], &qv, 5).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let err = check_unique_ids(["a", "b", "a"].into_iter(), "document").unwrap_err();
        assert!(err.to_string().contains("`a` appears twice (entries 1 and 3)"), "{err}");
    }
}
