//! On-disk cache of corpus embeddings, so evaluating a model a second time skips encoding.
//!
//! An entry is two files named by its key: `<key>.f32`, the vectors as little-endian f32,
//! row-major `[documents, dim]` (readable with `numpy.fromfile`), and `<key>.json`, a header that
//! says what was embedded. The key hashes (xxh3-128) everything that changes the vectors: the
//! weights, `config.json` and `tokenizer.json` contents, the layers in use, the pooling, normalisation and token
//! limit in force, and the ids and texts of the corpus in order. Batch size and backend are not
//! part of it: they change vectors only by float rounding (~1e-7). Each file is written
//! atomically, the header last, so a crash leaves no entry that looks complete; on load the
//! payload's size and hash are checked against the header.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use adam_core::data::Document;
use adam_core::encoder::SentenceEncoder;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3Default;

use crate::corpus_texts::CorpusTexts;
use crate::io::AtomicFile;
use crate::retrieval::Embeddings;
use crate::shard::Shard;

/// Rows read at a time by [`EmbeddingCache::load`], which keeps only the floats.
const STREAM_BLOCK_ROWS: usize = 4_096;

/// Bumped whenever the layout or the meaning of a key changes.
const FORMAT: &str = "adam-corpus-embeddings/2";

/// What a cache entry holds; everything but the informational fields enters the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub key: String,
    /// The model folder and corpus file as given when the entry was made (information only).
    pub model: String,
    pub corpus: String,
    pub weights_xxh3: String,
    pub config_xxh3: String,
    /// Transformer layers in use: fewer than `config.json` says when loaded with `--layers K`.
    pub layers: usize,
    pub tokenizer_xxh3: String,
    pub pooling: String,
    pub normalize: bool,
    pub max_seq_length: usize,
    pub corpus_xxh3: String,
    pub documents: usize,
    pub dim: usize,
    /// Always `f32-le`.
    pub dtype: String,
    /// Filled in when the entry is stored.
    pub payload_xxh3: String,
}

impl Header {
    /// The header an entry for `corpus` embedded by `encoder` (loaded from `model_dir`) must
    /// have. Reads and hashes the model's files.
    pub fn describe<C: CorpusTexts + ?Sized>(
        model_dir: &Path,
        encoder: &SentenceEncoder,
        corpus_path: &Path,
        corpus: &C,
    ) -> Result<Self> {
        let sentence = &encoder.model.sentence;
        let mut header = Header {
            format: FORMAT.to_string(),
            key: String::new(),
            model: model_dir.display().to_string(),
            corpus: corpus_path.display().to_string(),
            weights_xxh3: hash_file(&model_dir.join("model.safetensors"))?,
            config_xxh3: hash_file(&model_dir.join("config.json"))?,
            layers: encoder.model.config.num_hidden_layers,
            tokenizer_xxh3: hash_file(&model_dir.join("tokenizer.json"))?,
            pooling: format!("{:?}", sentence.pooling).to_lowercase(),
            normalize: sentence.normalize,
            max_seq_length: sentence.max_seq_length,
            corpus_xxh3: corpus.xxh3(),
            documents: corpus.len(),
            dim: encoder.dim(),
            dtype: "f32-le".to_string(),
            payload_xxh3: String::new(),
        };
        header.key = header.compute_key();
        Ok(header)
    }

    fn compute_key(&self) -> String {
        let mut h = Xxh3Default::new();
        for part in [
            self.format.as_str(),
            &self.weights_xxh3,
            &self.config_xxh3,
            &self.layers.to_string(),
            &self.tokenizer_xxh3,
            &self.pooling,
            if self.normalize { "normalize" } else { "raw" },
            &self.max_seq_length.to_string(),
            &self.corpus_xxh3,
            &self.documents.to_string(),
            &self.dim.to_string(),
        ] {
            update_framed(&mut h, part.as_bytes());
        }
        hex(h.digest128())
    }

    /// Same vectors: every field that enters the key, and the key itself.
    fn same_content(&self, other: &Header) -> bool {
        self.key == other.key && self.compute_key() == other.compute_key() && self.dtype == other.dtype
    }
}

/// The cache folder and the two file paths of an entry.
pub struct EmbeddingCache {
    pub dir: PathBuf,
}

impl EmbeddingCache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn payload_path(&self, header: &Header) -> PathBuf {
        self.dir.join(format!("{}.f32", header.key))
    }

    pub fn header_path(&self, header: &Header) -> PathBuf {
        self.dir.join(format!("{}.json", header.key))
    }

    /// The cached vectors for `wanted`, or `None` when there is no entry. An entry that is
    /// unreadable, or whose payload does not match its header, is reported and treated as absent
    /// (it will be overwritten).
    pub fn load(&self, wanted: &Header) -> Result<Option<Embeddings>> {
        let mut values = Vec::with_capacity(wanted.documents * wanted.dim);
        let found = self.stream(wanted, STREAM_BLOCK_ROWS, |_, rows| {
            values.extend_from_slice(rows);
            Ok(())
        })?;
        match found {
            Streamed::Complete => Ok(Some(Embeddings { dim: wanted.dim, values })),
            Streamed::Absent => Ok(None),
            Streamed::Damaged(e) => {
                eprintln!("warning: ignoring the cached embeddings: {e:#}");
                Ok(None)
            }
        }
    }

    /// Stores `embeddings` under `header`'s key: payload first, then the header, each atomically.
    pub fn store(&self, header: &Header, embeddings: &Embeddings) -> Result<()> {
        if embeddings.dim != header.dim || embeddings.len() != header.documents {
            anyhow::bail!(
                "{} × {} vectors for a header of {} × {}",
                embeddings.len(),
                embeddings.dim,
                header.documents,
                header.dim
            );
        }
        let bytes = f32_bytes(&embeddings.values);
        let header = Header { payload_xxh3: hex(xxhash_rust::xxh3::xxh3_128(&bytes)), ..header.clone() };
        self.write_pair(&self.payload_path(&header), &bytes, &self.header_path(&header), &header)
    }

    /// Writes a payload, then its header as pretty JSON, each atomically: a crash leaves no
    /// header whose payload is missing.
    fn write_pair(&self, payload_path: &Path, bytes: &[u8], header_path: &Path, header: &impl Serialize) -> Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let mut payload = AtomicFile::create(payload_path)?;
        payload.writer().write_all(bytes).with_context(|| format!("writing {}", payload_path.display()))?;
        payload.commit()?;
        write_header(header_path, header)
    }
}

/// What [`EmbeddingCache::stream`] found.
pub enum Streamed {
    /// No entry for this model and corpus.
    Absent,
    /// Every row was handed over and the payload matches its header.
    Complete,
    /// The entry is unreadable or does not match its header (found before or after rows were
    /// handed over): whatever was made from them must be discarded.
    Damaged(anyhow::Error),
}

impl EmbeddingCache {
    /// Hands `wanted`'s cached vectors to `f` in blocks of at most `block_rows` rows, in corpus
    /// order (`f(first_row, values)`), so a corpus's vectors are never all in memory at once.
    /// The payload's hash is known only at the end: see [`Streamed::Damaged`].
    pub fn stream(
        &self,
        wanted: &Header,
        block_rows: usize,
        mut f: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<Streamed> {
        let header_path = self.header_path(wanted);
        let text = match std::fs::read_to_string(&header_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Streamed::Absent),
            Err(e) => return Err(e).with_context(|| format!("reading {}", header_path.display())),
        };
        // From here on a failure is the entry's, reported as damage, not this command's error.
        let payload_path = self.payload_path(wanted);
        let opened = (|| {
            let found: Header = serde_json::from_str(&text)
                .with_context(|| format!("{}: not an adam embedding header", header_path.display()))?;
            if !found.same_content(wanted) {
                anyhow::bail!("{}: header does not describe this model and corpus", header_path.display());
            }
            let file =
                std::fs::File::open(&payload_path).with_context(|| format!("reading {}", payload_path.display()))?;
            let expected = (found.documents * found.dim * 4) as u64;
            let size = file.metadata().with_context(|| format!("reading {}", payload_path.display()))?.len();
            if size != expected {
                anyhow::bail!(
                    "{}: {size} bytes, the header says {} × {} f32 = {expected}",
                    payload_path.display(),
                    found.documents,
                    found.dim
                );
            }
            Ok((found, file))
        })();
        let (found, mut file) = match opened {
            Ok(opened) => opened,
            Err(e) => return Ok(Streamed::Damaged(e)),
        };
        let mut hasher = Xxh3Default::new();
        let mut bytes = vec![0u8; block_rows.max(1) * found.dim * 4];
        for first in (0..found.documents).step_by(block_rows.max(1)) {
            let rows = block_rows.max(1).min(found.documents - first);
            let block = &mut bytes[..rows * found.dim * 4];
            if let Err(e) = file.read_exact(block) {
                let e = anyhow::Error::new(e).context(format!("reading {}", payload_path.display()));
                return Ok(Streamed::Damaged(e));
            }
            hasher.update(block);
            f(first, &f32_values(block))?;
        }
        if hex(hasher.digest128()) != found.payload_xxh3 {
            let e = anyhow::anyhow!("{}: content does not match the hash in its header", payload_path.display());
            return Ok(Streamed::Damaged(e));
        }
        Ok(Streamed::Complete)
    }

    /// A writer of `header`'s entry that takes its rows in any order.
    pub fn payload_writer(&self, header: &Header) -> Result<PayloadWriter> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.payload_path(header);
        let file = AtomicFile::create(&path)?;
        Ok(PayloadWriter { header: header.clone(), path, file, written: vec![false; header.documents], position: 0 })
    }
}

/// An entry's payload written row by row in any order (the vectors come longest text first, the
/// payload is in corpus order), then hashed and committed with its header: the same two files as
/// [`EmbeddingCache::store`], without the whole payload in memory.
pub struct PayloadWriter {
    header: Header,
    path: PathBuf,
    file: AtomicFile,
    written: Vec<bool>,
    /// Byte offset the file is at, so that consecutive rows need no seek.
    position: u64,
}

impl PayloadWriter {
    /// Writes the vectors of documents `docs` (rows of `values`, in that order).
    pub fn write_rows(&mut self, docs: &[usize], values: &[f32]) -> Result<()> {
        let dim = self.header.dim;
        if values.len() != docs.len() * dim {
            anyhow::bail!("{} values for {} rows of {dim}", values.len(), docs.len());
        }
        let context = || format!("writing {}", self.path.display());
        for (&doc, row) in docs.iter().zip(values.chunks_exact(dim)) {
            if doc >= self.header.documents || std::mem::replace(&mut self.written[doc], true) {
                anyhow::bail!("row {doc} written twice or out of range ({} documents)", self.header.documents);
            }
            let offset = (doc * dim * 4) as u64;
            let writer = self.file.writer();
            if offset != self.position {
                writer.seek(SeekFrom::Start(offset)).with_context(context)?;
            }
            writer.write_all(&f32_bytes(row)).with_context(context)?;
            self.position = offset + (dim * 4) as u64;
        }
        Ok(())
    }

    /// Hashes the payload, moves it into place, then writes the header (each atomically).
    pub fn commit(mut self, cache: &EmbeddingCache) -> Result<()> {
        let missing = self.written.iter().filter(|w| !**w).count();
        if missing > 0 {
            anyhow::bail!("{missing} of {} rows of {} were never written", self.header.documents, self.path.display());
        }
        let context = || format!("reading back {}", self.path.display());
        let writer = self.file.writer();
        writer.flush().with_context(context)?;
        let file = writer.get_mut();
        file.seek(SeekFrom::Start(0)).with_context(context)?;
        let payload_xxh3 = hash_reader(&*file, &self.path)?;
        self.file.commit()?;
        let header = Header { payload_xxh3, ..self.header };
        write_header(&cache.header_path(&header), &header)
    }
}

/// The header of one shard of an entry (`adam eval --model ... --shard I/N`): the entry it is
/// part of, and which documents it holds: positions `start..end` of the corpus in encoding order
/// (longest text first, batches of `batch_size`), which `retrieval` recomputes to put them back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardHeader {
    pub entry: Header,
    pub shard: String,
    pub batch_size: usize,
    pub start: usize,
    pub end: usize,
    pub payload_xxh3: String,
}

impl EmbeddingCache {
    fn shard_path(&self, header: &Header, shard: Shard, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{}.{ext}", header.key, shard.suffix()))
    }

    /// Stores the vectors of one shard of `header`'s entry, payload first, each file atomically.
    pub fn store_shard(&self, shard_header: &ShardHeader, shard: Shard, embeddings: &Embeddings) -> Result<()> {
        let header = &shard_header.entry;
        if embeddings.dim != header.dim || embeddings.len() != shard_header.end - shard_header.start {
            anyhow::bail!(
                "{} × {} vectors for a shard of {} documents",
                embeddings.len(),
                embeddings.dim,
                shard_header.end - shard_header.start
            );
        }
        let bytes = f32_bytes(&embeddings.values);
        let stored = ShardHeader { payload_xxh3: hex(xxhash_rust::xxh3::xxh3_128(&bytes)), ..shard_header.clone() };
        self.write_pair(
            &self.shard_path(header, shard, "f32"),
            &bytes,
            &self.shard_path(header, shard, "json"),
            &stored,
        )
    }

    /// Whether shard `shard` of `header`'s entry has a header in the folder.
    pub fn has_shard(&self, header: &Header, shard: Shard) -> bool {
        self.shard_path(header, shard, "json").is_file()
    }

    /// Shard `shard` of `header`'s entry: `None` when absent; an error when present but not
    /// this entry's or damaged (a merge must not take it silently).
    pub fn load_shard(&self, header: &Header, shard: Shard) -> Result<Option<(ShardHeader, Embeddings)>> {
        let header_path = self.shard_path(header, shard, "json");
        let text = match std::fs::read_to_string(&header_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", header_path.display())),
        };
        let found: ShardHeader = serde_json::from_str(&text)
            .with_context(|| format!("{}: not an adam embedding shard header", header_path.display()))?;
        if !found.entry.same_content(header) || found.shard != shard.to_string() {
            anyhow::bail!("{}: header does not describe shard {shard} of this model and corpus", header_path.display());
        }
        let payload_path = self.shard_path(header, shard, "f32");
        let bytes = std::fs::read(&payload_path).with_context(|| format!("reading {}", payload_path.display()))?;
        let rows = found.end.saturating_sub(found.start);
        if bytes.len() != rows * header.dim * 4 || hex(xxhash_rust::xxh3::xxh3_128(&bytes)) != found.payload_xxh3 {
            anyhow::bail!(
                "{}: size or content does not match its header; delete it and rerun that shard",
                payload_path.display()
            );
        }
        let values = f32_values(&bytes);
        Ok(Some((found, Embeddings { dim: header.dim, values })))
    }

    /// The shard counts N of the shards of `header`'s entry present in the folder.
    pub fn shard_counts(&self, header: &Header) -> Result<Vec<usize>> {
        let prefix = format!("{}.shard-", header.key);
        let mut counts = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(counts),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.dir.display())),
        };
        for entry in entries {
            let name = entry.with_context(|| format!("reading {}", self.dir.display()))?.file_name();
            let name = name.to_string_lossy();
            let Some(rest) = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".json")) else { continue };
            if let Some(n) = rest.split_once("-of-").and_then(|(_, n)| n.parse::<usize>().ok())
                && !counts.contains(&n)
            {
                counts.push(n);
            }
        }
        counts.sort_unstable();
        Ok(counts)
    }
}

/// A header as pretty JSON, atomically.
fn write_header(path: &Path, header: &impl Serialize) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    serde_json::to_writer_pretty(file.writer(), header).with_context(|| format!("writing {}", path.display()))?;
    file.writer().write_all(b"\n").with_context(|| format!("writing {}", path.display()))?;
    file.commit()
}

/// The default cache folder: `$XDG_CACHE_HOME/adam/embeddings`, else `~/.cache/adam/embeddings`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("adam").join("embeddings"))
}

/// Vectors as the payload stores them: little-endian f32.
fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Each part is preceded by its length so that ("ab", "c") and ("a", "bc") hash differently.
fn update_framed(h: &mut Xxh3Default, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn hex(v: u128) -> String {
    format!("{v:032x}")
}

fn hash_file(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    hash_reader(file, path)
}

/// xxh3-128 of everything `reader` (the file at `path`, for messages) has left.
fn hash_reader(mut reader: impl Read, path: &Path) -> Result<String> {
    let mut h = Xxh3Default::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(h.digest128()))
}

/// Hash of what is embedded, in order: each document's id, title and text.
pub fn hash_corpus(corpus: &[Document]) -> String {
    let mut h = CorpusHasher::default();
    for doc in corpus {
        h.add(doc);
    }
    h.finish()
}

/// [`hash_corpus`] fed one document at a time, for a corpus that is read as a stream.
pub struct CorpusHasher(Xxh3Default);

impl Default for CorpusHasher {
    fn default() -> Self {
        Self(Xxh3Default::new())
    }
}

impl CorpusHasher {
    pub fn add(&mut self, doc: &Document) {
        update_framed(&mut self.0, doc.id.as_bytes());
        update_framed(&mut self.0, doc.title.as_bytes());
        update_framed(&mut self.0, doc.text.as_bytes());
    }

    pub fn finish(&self) -> String {
        hex(self.0.digest128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(corpus_xxh3: &str) -> Header {
        let mut h = Header {
            format: FORMAT.into(),
            key: String::new(),
            model: "m".into(),
            corpus: "c".into(),
            weights_xxh3: "w".into(),
            config_xxh3: "c".into(),
            layers: 6,
            tokenizer_xxh3: "t".into(),
            pooling: "mean".into(),
            normalize: true,
            max_seq_length: 256,
            corpus_xxh3: corpus_xxh3.into(),
            documents: 3,
            dim: 2,
            dtype: "f32-le".into(),
            payload_xxh3: String::new(),
        };
        h.key = h.compute_key();
        h
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("adam-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn round_trip_and_corruption_is_detected() {
        let dir = temp_dir("roundtrip");
        let cache = EmbeddingCache::new(dir.clone());
        let h = header("abc");
        assert_eq!(cache.load(&h).unwrap(), None, "empty cache");
        let e = Embeddings { dim: 2, values: vec![1.0, -2.5, 3.25, 0.0, f32::MIN_POSITIVE, 7.0] };
        cache.store(&h, &e).unwrap();
        assert_eq!(cache.load(&h).unwrap(), Some(e.clone()));
        // Information-only fields do not change the key; content fields do.
        let moved = Header { model: "elsewhere".into(), ..h.clone() };
        assert_eq!(cache.load(&moved).unwrap(), Some(e));
        assert_ne!(header("abd").key, h.key);
        let longer = Header { max_seq_length: 128, ..h.clone() };
        assert_ne!(longer.compute_key(), h.key);
        let shallower = Header { layers: 3, ..h.clone() };
        assert_ne!(shallower.compute_key(), h.key, "the first 3 layers embed differently");

        // A truncated or altered payload is ignored, not trusted.
        let payload = cache.payload_path(&h);
        let mut bytes = std::fs::read(&payload).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&payload, &bytes).unwrap();
        assert_eq!(cache.load(&h).unwrap(), None);
        std::fs::write(&payload, &bytes[..8]).unwrap();
        assert_eq!(cache.load(&h).unwrap(), None);
        std::fs::write(cache.header_path(&h), "{not json").unwrap();
        assert_eq!(cache.load(&h).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Everything `stream` hands over, as one vector, or why it did not.
    fn streamed(cache: &EmbeddingCache, h: &Header, block_rows: usize) -> Result<Vec<f32>, String> {
        let mut rows = Vec::new();
        let mut next = 0;
        let found = cache
            .stream(h, block_rows, |first, values| {
                assert_eq!(first, next, "blocks in corpus order");
                next += values.len() / h.dim;
                rows.extend_from_slice(values);
                Ok(())
            })
            .unwrap();
        match found {
            Streamed::Complete => Ok(rows),
            Streamed::Absent => Err("absent".into()),
            Streamed::Damaged(e) => Err(format!("damaged: {e:#}")),
        }
    }

    #[test]
    fn rows_written_out_of_order_make_the_entry_store_makes() {
        let dir = temp_dir("writer");
        let cache = EmbeddingCache::new(dir.clone());
        let h = header("abc");
        let e = Embeddings { dim: 2, values: vec![1.0, -2.5, 3.25, 0.0, f32::MIN_POSITIVE, 7.0] };
        cache.store(&h, &e).unwrap();
        let stored = (std::fs::read(cache.payload_path(&h)).unwrap(), std::fs::read(cache.header_path(&h)).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(streamed(&cache, &h, 2), Err("absent".into()));
        let mut writer = cache.payload_writer(&h).unwrap();
        writer.write_rows(&[2, 0], &[f32::MIN_POSITIVE, 7.0, 1.0, -2.5]).unwrap();
        assert!(writer.write_rows(&[0], &[1.0, -2.5]).is_err(), "a row written twice");
        writer.write_rows(&[1], &[3.25, 0.0]).unwrap();
        writer.commit(&cache).unwrap();
        let written = (std::fs::read(cache.payload_path(&h)).unwrap(), std::fs::read(cache.header_path(&h)).unwrap());
        assert_eq!(written, stored, "the same two files, byte for byte");
        for block_rows in [1, 2, 3, 10] {
            assert_eq!(streamed(&cache, &h, block_rows), Ok(e.values.clone()), "blocks of {block_rows}");
        }

        let mut bytes = written.0.clone();
        bytes[20] ^= 1;
        std::fs::write(cache.payload_path(&h), &bytes).unwrap();
        let err = streamed(&cache, &h, 2).unwrap_err();
        assert!(err.contains("damaged") && err.contains("does not match the hash"), "{err}");
        std::fs::write(cache.payload_path(&h), &bytes[..12]).unwrap();
        let err = streamed(&cache, &h, 2).unwrap_err();
        assert!(err.contains("12 bytes"), "{err}");

        let mut short = cache.payload_writer(&h).unwrap();
        short.write_rows(&[0], &[1.0, -2.5]).unwrap();
        let err = short.commit(&cache).unwrap_err().to_string();
        assert!(err.contains("2 of 3 rows"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn corpus_hash_sees_every_field_and_the_order() {
        let d = |id: &str, title: &str, text: &str| Document { id: id.into(), title: title.into(), text: text.into() };
        let base = hash_corpus(&[d("1", "", "ab"), d("2", "", "c")]);
        assert_ne!(base, hash_corpus(&[d("1", "", "a"), d("2", "", "bc")]));
        assert_ne!(base, hash_corpus(&[d("2", "", "c"), d("1", "", "ab")]));
        assert_ne!(base, hash_corpus(&[d("1", "ab", ""), d("2", "", "c")]));
        assert_eq!(base, hash_corpus(&[d("1", "", "ab"), d("2", "", "c")]));
    }
}
