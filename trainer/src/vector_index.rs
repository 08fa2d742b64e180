//! Approximate nearest-neighbour retrieval through USearch
//! (<https://github.com/unum-cloud/usearch>, Apache-2.0): an HNSW graph in one file, the engine
//! embedded in ClickHouse, DuckDB and ScyllaDB for their vector indexes, used here through its
//! own maintained crate. The index holds the corpus vectors (f32, f16 or i8) and the graph;
//! `FILE.json` beside it holds the document ids (key `k` is the `k`-th id), the embedding
//! header (which model and corpus made the vectors) and the build parameters, so a user can open
//! the index from USearch's Python package as well. Searching memory-maps the file
//! (`Index::view`): the corpus vectors need not fit in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use adam_core::data::{Document, Query, Run, RunEntry};
use adam_core::encoder::SentenceEncoder;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::embed_cache::{EmbeddingCache, Header};
use crate::models::ModelArgs;
use crate::progress;
use crate::retrieval::{Embeddings, corpus_embeddings, embed_texts, search};

/// The sidecar's format name; bumped when its fields change meaning.
pub const FORMAT: &str = "adam-usearch-1";
/// Candidates kept while searching, per query, unless `--expansion-search` says otherwise
/// (raised to the depth asked for: HNSW cannot return more than it keeps).
pub const DEFAULT_EXPANSION_SEARCH: usize = 128;
/// Rows claimed at a time by one build thread.
const BUILD_CHUNK: usize = 256;

/// How the index stores the corpus vectors: f16 halves the memory and i8 quarters it, at some
/// cost in recall (the graph is searched with the stored, rounded vectors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    F32,
    F16,
    I8,
}

impl Quantization {
    fn scalar_kind(self) -> ScalarKind {
        match self {
            Quantization::F32 => ScalarKind::F32,
            Quantization::F16 => ScalarKind::F16,
            Quantization::I8 => ScalarKind::I8,
        }
    }
}

/// How the graph is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BuildParams {
    /// Neighbours per node (HNSW's M).
    pub connectivity: usize,
    /// Candidates kept while inserting (HNSW's efConstruction).
    pub expansion_add: usize,
    pub quantization: Quantization,
    /// Threads inserting at once. One thread gives the same graph (the same file) every time;
    /// with more, the graph depends on their timing.
    pub threads: usize,
}

impl Default for BuildParams {
    fn default() -> Self {
        Self { connectivity: 16, expansion_add: 128, quantization: Quantization::F32, threads: 1 }
    }
}

/// `FILE.json`: what the index at `FILE` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexMeta {
    pub format: String,
    /// The USearch version that wrote the index.
    pub usearch: String,
    /// Inner product (the dot product the exact search ranks by; cosine for normalised models).
    pub metric: String,
    /// The embedding entry the vectors are: the model's and the corpus's hashes.
    pub embeddings: Header,
    pub params: BuildParams,
    pub build_seconds: f64,
    /// USearch's own count of the bytes the built index held in memory.
    pub memory_bytes: usize,
    /// Document ids; the index's key `k` is `ids[k]`.
    pub ids: Vec<String>,
}

/// An HNSW index over rows `0..n` of an [`Embeddings`] (key = row).
pub struct VectorIndex {
    index: Index,
    dim: usize,
}

fn engine_error<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{what}: {e}")
}

/// Threads for `--threads N`: N, or one per core for 0.
pub fn thread_count(requested: usize) -> usize {
    match requested {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    }
}

/// `FILE.json` for the index at `path`.
pub fn meta_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

impl VectorIndex {
    fn options(dim: usize, params: &BuildParams, expansion_search: usize) -> IndexOptions {
        IndexOptions {
            dimensions: dim,
            metric: MetricKind::IP,
            quantization: params.quantization.scalar_kind(),
            connectivity: params.connectivity,
            expansion_add: params.expansion_add,
            expansion_search,
            multi: false,
        }
    }

    /// Builds the graph over every row of `vectors`, drawing a progress bar on stderr.
    pub fn build(vectors: &Embeddings, params: &BuildParams) -> Result<Self> {
        if vectors.is_empty() {
            bail!("no vectors to index");
        }
        if params.connectivity < 2 || params.expansion_add == 0 {
            bail!("connectivity must be at least 2 and expansion-add at least 1");
        }
        let dim = vectors.dim;
        let index = Index::new(&Self::options(dim, params, DEFAULT_EXPANSION_SEARCH))
            .map_err(engine_error("creating the USearch index"))?;
        let threads = params.threads.max(1);
        let n = vectors.len();
        index
            .reserve_capacity_and_threads(n, threads)
            .map_err(engine_error(&format!("reserving memory for {n} vectors in the index")))?;
        let bar = progress::bar(n as u64, "indexing documents");
        let next = AtomicUsize::new(0);
        let failed: std::sync::Mutex<Option<anyhow::Error>> = std::sync::Mutex::new(None);
        // Rows are claimed in order, chunk by chunk: with one thread the insertion order (and so
        // the graph) is always the same.
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let start = next.fetch_add(BUILD_CHUNK, Ordering::Relaxed);
                        if start >= n || failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                            break;
                        }
                        let end = (start + BUILD_CHUNK).min(n);
                        for row in start..end {
                            if let Err(e) = index.add(row as u64, &vectors.values[row * dim..(row + 1) * dim]) {
                                if let Ok(mut slot) = failed.lock() {
                                    slot.get_or_insert(anyhow::anyhow!(
                                        "adding document #{} to the index: {e}",
                                        row + 1
                                    ));
                                }
                                return;
                            }
                        }
                        bar.inc((end - start) as u64);
                    }
                });
            }
        });
        bar.finish_and_clear();
        if let Some(e) = failed.into_inner().ok().flatten() {
            return Err(e);
        }
        Ok(Self { index, dim })
    }

    /// Memory-maps the index at `path` as `meta` describes it; `threads` will search it at once.
    pub fn view(path: &Path, meta: &IndexMeta, expansion_search: usize, threads: usize) -> Result<Self> {
        let dim = meta.embeddings.dim;
        let index = Index::new(&Self::options(dim, &meta.params, expansion_search))
            .map_err(engine_error("creating the USearch index"))?;
        let text = path.to_str().with_context(|| format!("{} is not valid UTF-8", path.display()))?;
        index.view(text).map_err(engine_error(&format!("opening the index {}", path.display())))?;
        if index.size() != meta.ids.len() || index.dimensions() != dim {
            bail!(
                "{} holds {} vectors of {} dimensions but {} says {} of {}: the two files do not belong together; rebuild with `adam index`",
                path.display(),
                index.size(),
                index.dimensions(),
                meta_path(path).display(),
                meta.ids.len(),
                dim
            );
        }
        index
            .reserve_capacity_and_threads(index.size(), threads.max(1))
            .map_err(engine_error("reserving search threads"))?;
        Ok(Self { index, dim })
    }

    pub fn len(&self) -> usize {
        self.index.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// USearch's count of the bytes the index holds in memory.
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_usage()
    }

    pub fn set_expansion_search(&self, expansion: usize) {
        self.index.change_expansion_search(expansion);
    }

    /// Saves the index to `path` atomically (a temporary name in the same folder, then renamed).
    pub fn save(&self, path: &Path) -> Result<()> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
        let text = tmp.to_str().with_context(|| format!("{} is not valid UTF-8", tmp.display()))?;
        let saved =
            self.index.save(text).map_err(engine_error(&format!("writing the index to {}", tmp.display()))).and_then(
                |()| {
                    std::fs::rename(&tmp, path)
                        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
                },
            );
        if saved.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        saved
    }

    /// The `depth` nearest rows of each query (rows of `queries`), best first, as
    /// `(row, dot product)`, searched by `threads` threads.
    pub fn search(&self, queries: &Embeddings, depth: usize, threads: usize) -> Result<Vec<Vec<(usize, f32)>>> {
        if queries.dim != self.dim {
            bail!("the queries have {} dimensions, the index {}", queries.dim, self.dim);
        }
        if self.index.expansion_search() < depth {
            self.index.change_expansion_search(depth);
        }
        let n = queries.len();
        let threads = threads.max(1).min(n.max(1));
        let mut results: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
        let per_thread = n.div_ceil(threads).max(1);
        let outcomes: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = results
                .chunks_mut(per_thread)
                .enumerate()
                .map(|(t, out)| {
                    scope.spawn(move || -> Result<()> {
                        for (j, slot) in out.iter_mut().enumerate() {
                            let q = t * per_thread + j;
                            let found = self
                                .index
                                .search(&queries.values[q * self.dim..(q + 1) * self.dim], depth)
                                .map_err(|e| anyhow::anyhow!("searching the index for query #{}: {e}", q + 1))?;
                            // USearch's inner-product distance is 1 − dot.
                            *slot =
                                found.keys.iter().zip(&found.distances).map(|(&k, &d)| (k as usize, 1.0 - d)).collect();
                        }
                        Ok(())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| bail!("a search thread panicked"))).collect()
        });
        outcomes.into_iter().collect::<Result<()>>()?;
        Ok(results)
    }
}

/// The run of `queries` from an index's hits: document ids from `ids`, each query's documents by
/// score, ties broken by id (descending bytes) as the exact search and trec_eval do.
pub fn hits_to_run(queries: &[Query], hits: Vec<Vec<(usize, f32)>>, ids: &[String]) -> Result<Run> {
    let mut run = Run::new();
    for (query, mut found) in queries.iter().zip(hits) {
        if let Some(&(bad, _)) = found.iter().find(|(row, _)| *row >= ids.len()) {
            bail!("the index returned key {bad}, but it has only {} document ids", ids.len());
        }
        found.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| ids[b.0].as_bytes().cmp(ids[a.0].as_bytes())));
        let entries =
            found.into_iter().map(|(row, score)| RunEntry { doc: ids[row].clone(), score: score as f64 }).collect();
        run.insert(query.id.clone(), entries);
    }
    Ok(run)
}

/// Mean over queries of the share of the exact top `depth` that the approximate top `depth`
/// found (recall@depth against the exact search).
pub fn recall_against_exact(exact: &Run, approximate: &Run, depth: usize) -> f64 {
    let mut total = 0.0;
    let mut counted = 0usize;
    for (query, truth) in exact {
        let truth: Vec<&str> = truth.iter().take(depth).map(|e| e.doc.as_str()).collect();
        if truth.is_empty() {
            continue;
        }
        let found: std::collections::HashSet<&str> =
            approximate.get(query).map(|r| r.iter().take(depth).map(|e| e.doc.as_str()).collect()).unwrap_or_default();
        total += truth.iter().filter(|d| found.contains(*d)).count() as f64 / truth.len() as f64;
        counted += 1;
    }
    if counted == 0 { 0.0 } else { total / counted as f64 }
}

/// `adam eval --model M --index FILE`: retrieval through a built index, optionally compared
/// with the exact search.
pub struct IndexSearch<'a> {
    pub path: &'a Path,
    /// Candidates kept per query (raised to the depth).
    pub expansion: usize,
    /// Also run the exact search and print the index's recall against it.
    pub compare_exact: bool,
}

impl IndexSearch<'_> {
    /// The top `depth` documents of each query through the index; the corpus is read only to
    /// check that the index was built from these documents with this model.
    #[allow(clippy::too_many_arguments)]
    pub fn retrieve(
        &self,
        encoder: &SentenceEncoder,
        model_args: &ModelArgs,
        cache: Option<&EmbeddingCache>,
        corpus_path: &Path,
        corpus: &[Document],
        queries: &[Query],
        depth: usize,
    ) -> Result<Run> {
        let meta = read_meta(self.path)?;
        let header = Header::describe(&model_args.model, encoder, corpus_path, corpus)?;
        check_built_from(&meta, &header, corpus, self.path)?;
        let threads = thread_count(0);
        let expansion = self.expansion.max(depth);
        let index = VectorIndex::view(self.path, &meta, expansion, threads)?;
        let query_texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
        let start = Instant::now();
        let query_vectors = embed_texts(encoder, &query_texts, model_args.batch_size, "queries")?;
        let search_start = Instant::now();
        let run = hits_to_run(queries, index.search(&query_vectors, depth, threads)?, &meta.ids)?;
        let index_secs = search_start.elapsed().as_secs_f64();
        eprintln!(
            "embedded {} queries in {:.2} s; searched the index of {} documents (expansion {expansion}, {threads} threads) in {index_secs:.3} s ({:.0} queries/s)",
            queries.len(),
            (search_start - start).as_secs_f64(),
            index.len(),
            queries.len() as f64 / index_secs.max(1e-9)
        );
        if self.compare_exact {
            let docs = corpus_embeddings(encoder, model_args, cache, corpus_path, corpus)?;
            let exact_start = Instant::now();
            let exact = search(&encoder.device, corpus, &docs, queries, &query_vectors, depth)?;
            let exact_secs = exact_start.elapsed().as_secs_f64();
            eprintln!(
                "recall@{depth} of the index against the exact search: {:.4} (exact search {exact_secs:.3} s, index {index_secs:.3} s)",
                recall_against_exact(&exact, &run, depth)
            );
        }
        Ok(run)
    }
}

/// Refuses an index built from other vectors than `header` describes, saying whether the model
/// or the corpus differs.
fn check_built_from(meta: &IndexMeta, header: &Header, corpus: &[Document], path: &Path) -> Result<()> {
    let built = &meta.embeddings;
    if built.corpus_xxh3 != header.corpus_xxh3 || built.documents != header.documents {
        bail!(
            "{} was built over another corpus ({}, {} documents), not {} ({} documents): rebuild it with `adam index`",
            path.display(),
            built.corpus,
            built.documents,
            header.corpus,
            header.documents
        );
    }
    if built.key != header.key {
        bail!(
            "{} was built with other embeddings (model {}, {} layers, max length {}), not those of {} ({} layers, max length {}): rebuild it with `adam index`, or evaluate that model",
            path.display(),
            built.model,
            built.layers,
            built.max_seq_length,
            header.model,
            header.layers,
            header.max_seq_length
        );
    }
    if meta.ids.len() != corpus.len() || meta.ids.iter().zip(corpus).any(|(id, d)| *id != d.id) {
        bail!("{}: its ids are not the corpus's ids in order; rebuild the index", meta_path(path).display());
    }
    Ok(())
}

/// Reads `FILE.json` of the index at `path`.
pub fn read_meta(path: &Path) -> Result<IndexMeta> {
    let meta_file = meta_path(path);
    let text = match std::fs::read_to_string(&meta_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} has no {}: build the index with `adam index --model M --data D --out {}`",
            path.display(),
            meta_file.display(),
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", meta_file.display())),
    };
    let meta: IndexMeta =
        serde_json::from_str(&text).with_context(|| format!("{}: not an index description", meta_file.display()))?;
    if meta.format != FORMAT {
        bail!("{}: format `{}`, this adam reads `{FORMAT}`; rebuild the index", meta_file.display(), meta.format);
    }
    Ok(meta)
}

/// The USearch version this program was built with.
pub fn engine_version() -> String {
    usearch::version().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic vectors on the unit sphere (SplitMix64 → [-1, 1), normalised).
    fn unit_vectors(seed: u64, n: usize, dim: usize) -> Embeddings {
        let mut state = seed;
        let mut values = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let row: Vec<f32> = (0..dim)
                .map(|_| {
                    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    z ^= z >> 31;
                    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect();
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            values.extend(row.iter().map(|x| x / norm));
        }
        Embeddings { dim, values }
    }

    fn exact_top(docs: &Embeddings, q: &[f32], depth: usize) -> Vec<usize> {
        let mut scored: Vec<(usize, f32)> = (0..docs.len())
            .map(|d| (d, docs.values[d * docs.dim..(d + 1) * docs.dim].iter().zip(q).map(|(a, b)| a * b).sum()))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.into_iter().take(depth).map(|(d, _)| d).collect()
    }

    #[test]
    fn finds_each_vector_itself_first_and_most_exact_neighbours() {
        let docs = unit_vectors(7, 2_000, 32);
        let index = VectorIndex::build(&docs, &BuildParams::default()).unwrap();
        assert_eq!(index.len(), 2_000);
        let queries = Embeddings { dim: 32, values: docs.values[..50 * 32].to_vec() };
        let hits = index.search(&queries, 10, 2).unwrap();
        let mut overlap = 0;
        for (q, found) in hits.iter().enumerate() {
            assert_eq!(found[0].0, q, "query {q}: its own vector is not first");
            assert!((found[0].1 - 1.0).abs() < 1e-4, "self dot product {}", found[0].1);
            let truth = exact_top(&docs, &queries.values[q * 32..(q + 1) * 32], 10);
            overlap += found.iter().filter(|(d, _)| truth.contains(d)).count();
        }
        assert!(overlap >= 480, "recall@10 {overlap} of 500");
    }

    #[test]
    fn one_thread_builds_the_same_file_twice() {
        let docs = unit_vectors(3, 1_500, 16);
        let dir = std::env::temp_dir().join(format!("adam-index-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.usearch"), dir.join("b.usearch"));
        VectorIndex::build(&docs, &BuildParams::default()).unwrap().save(&a).unwrap();
        VectorIndex::build(&docs, &BuildParams::default()).unwrap().save(&b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ties_are_broken_by_id_and_recall_counts_the_exact_set() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let queries = vec![Query { id: "q".into(), text: String::new() }];
        let run = hits_to_run(&queries, vec![vec![(0, 0.5), (2, 0.9), (1, 0.5)]], &ids).unwrap();
        let docs: Vec<&str> = run["q"].iter().map(|e| e.doc.as_str()).collect();
        assert_eq!(docs, ["c", "b", "a"]);
        let mut exact = Run::new();
        exact.insert("q".into(), run["q"].clone());
        let mut approx = Run::new();
        approx.insert("q".into(), run["q"][..1].to_vec());
        assert!((recall_against_exact(&exact, &approx, 3) - 1.0 / 3.0).abs() < 1e-12);
        assert!(hits_to_run(&queries, vec![vec![(3, 1.0)]], &ids).is_err());
    }
}
