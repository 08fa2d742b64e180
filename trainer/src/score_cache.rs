//! The teacher-score cache that `adam teacher score` writes and `adam distill` reads: a JSONL
//! file whose first line is a header (the teacher and the settings the scores depend on) and
//! whose other lines are one query each (teacher scores of its positives and hard negatives, and
//! its dark examples as word pieces with their edits and teacher scores). Lines are appended and
//! flushed one query at a time, so an interrupted run loses at most the line being written.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use adam_core::dark::{DarkConfig, DarkExample};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// First line of the cache. Everything here must match for a run to resume or be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheHeader {
    /// Format version (1).
    pub adam_teacher_scores: u32,
    /// The teacher's model folder, as given.
    pub teacher: String,
    /// `dual-encoder` when the teacher scores by similarity (absent: a cross-encoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_kind: Option<String>,
    /// A dual-encoder teacher's score scale (`--dual-scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_scale: Option<f32>,
    /// Pair length the teacher scored with.
    pub max_length: usize,
    /// Hard negatives scored per query (at most).
    pub negatives_per_query: usize,
    /// The vocabulary size of the dark examples' word pieces: the teacher's, or with
    /// `dark_tokenizer` the student's.
    pub vocab_size: usize,
    /// xxh3-128 of that vocabulary (tokens by id, then the special ids; `vocab_hash`): two
    /// vocabularies of one size can differ. Absent in caches written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_hash: Option<String>,
    /// The student tokenizer the dark examples were made in, when it is not the teacher's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dark_tokenizer: Option<String>,
    pub dark: DarkConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredDoc {
    pub doc_id: String,
    pub score: f32,
}

/// One query: teacher scores of its positives and hard negatives (hardest first), and the dark
/// examples made from `dark_positive` (their `negative` indexes `negatives`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheRecord {
    pub query_id: String,
    pub positives: Vec<ScoredDoc>,
    pub negatives: Vec<ScoredDoc>,
    pub dark_positive: String,
    pub dark: Vec<DarkExample>,
}

/// What a cache file holds: its header, its complete records, and the byte length of the
/// complete part (a torn last line, from an interrupted run, is not part of it).
pub struct Cache {
    pub header: CacheHeader,
    pub records: Vec<CacheRecord>,
    pub complete_len: u64,
    pub torn_tail: bool,
}

/// Reads a cache; `None` if the file does not exist or is empty.
pub fn read(path: &Path) -> Result<Option<Cache>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let mut reader = BufReader::new(file);
    let mut header: Option<CacheHeader> = None;
    let mut records = Vec::new();
    let mut complete_len = 0u64;
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        n += 1;
        if line.last() != Some(&b'\n') {
            // The last line was being written when the run stopped.
            return Ok(header.map(|header| Cache { header, records, complete_len, torn_tail: true }));
        }
        let text =
            std::str::from_utf8(&line).map_err(|e| anyhow::anyhow!("{}:{n}: not valid UTF-8: {e}", path.display()))?;
        if header.is_none() {
            header = Some(serde_json::from_str(text).map_err(|e| {
                anyhow::anyhow!(
                    "{}:{n}: not a teacher-score cache header (written by `adam teacher score`): {e}",
                    path.display()
                )
            })?);
        } else {
            records.push(
                serde_json::from_str(text)
                    .map_err(|e| anyhow::anyhow!("{}:{n}: not a teacher-score record: {e}", path.display()))?,
            );
        }
        complete_len += read as u64;
    }
    Ok(header.map(|header| Cache { header, records, complete_len, torn_tail: false }))
}

/// Appends records to a cache, one flushed line each.
pub struct Writer {
    path: PathBuf,
    file: File,
}

impl Writer {
    /// Opens `path` for appending after its first `complete_len` bytes (dropping a torn line);
    /// a new file starts with `header`.
    pub fn open(path: &Path, header: &CacheHeader, existing: Option<&Cache>) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open {} for writing", path.display()))?;
        let mut writer = match existing {
            Some(cache) => {
                file.set_len(cache.complete_len).with_context(|| format!("truncating {}", path.display()))?;
                file.seek(SeekFrom::End(0))?;
                Writer { path: path.to_path_buf(), file }
            }
            None => {
                file.set_len(0)?;
                let mut w = Writer { path: path.to_path_buf(), file };
                w.write_line(&serde_json::to_vec(header)?)?;
                w
            }
        };
        writer.file.flush()?;
        Ok(writer)
    }

    fn write_line(&mut self, bytes: &[u8]) -> Result<()> {
        let mut line = Vec::with_capacity(bytes.len() + 1);
        line.extend_from_slice(bytes);
        line.push(b'\n');
        // One write per line: a crash leaves at most one torn line, which `read` sets aside.
        self.file.write_all(&line).with_context(|| format!("writing {}", self.path.display()))?;
        self.file.flush().with_context(|| format!("writing {}", self.path.display()))
    }

    pub fn append(&mut self, record: &CacheRecord) -> Result<()> {
        self.write_line(&serde_json::to_vec(record)?)
    }

    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().with_context(|| format!("syncing {}", self.path.display()))
    }
}

/// A whole cache, header then records, in the bytes [`Writer`] gives them.
pub fn write_lines<'a>(
    out: &mut impl Write,
    header: &CacheHeader,
    records: impl Iterator<Item = &'a CacheRecord>,
) -> Result<()> {
    serde_json::to_writer(&mut *out, header)?;
    out.write_all(b"\n")?;
    for record in records {
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Explains how two headers differ (for a refused resume), naming the first differing key.
pub fn header_difference(old: &CacheHeader, new: &CacheHeader) -> Option<String> {
    let a = serde_json::to_value(old).ok()?;
    // A cache from before `vocab_hash` resumes on its other fields (`vocab_size` among them).
    let new = CacheHeader { vocab_hash: old.vocab_hash.as_ref().and(new.vocab_hash.clone()), ..new.clone() };
    let b = serde_json::to_value(&new).ok()?;
    crate::distill_config::first_difference(&a, &b, "")
}

/// The fingerprint of a tokenizer's vocabulary that the header keeps (`vocab_hash`).
pub fn vocab_hash(tokenizer: &adam_core::tokenize::TextTokenizer) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for token in tokenizer.vocab_by_id() {
        hasher.update(token.as_bytes());
        hasher.update(&[0]);
    }
    let s = tokenizer.special();
    for id in [s.pad, s.cls, s.sep, s.mask, s.unk] {
        hasher.update(&id.to_le_bytes());
    }
    format!("{:032x}", hasher.digest128())
}

/// Reads a complete cache for distillation, refusing a missing, empty or torn file.
pub fn read_complete(path: &Path) -> Result<Cache> {
    let Some(cache) = read(path)? else {
        bail!("{} not found or empty: run `adam teacher score` first", path.display());
    };
    if cache.torn_tail {
        bail!(
            "{}: the last line is incomplete (an interrupted `adam teacher score`); rerun it with the same arguments to finish the file",
            path.display()
        );
    }
    if cache.records.is_empty() {
        bail!("{}: no scored query", path.display());
    }
    Ok(cache)
}
