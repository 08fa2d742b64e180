//! What dense retrieval needs of a corpus: its ids, the length of each text (which decides the
//! encoding order), the texts of a few documents at a time, and its hash (the embedding cache's
//! key). A parsed corpus in memory provides them; so does [`SpilledCorpus`], which reads the
//! corpus file once and keeps only ids and offsets in memory, the texts in an anonymous temporary
//! file: `adam eval --model` then holds about 80 bytes per document (measured) instead of every
//! text twice (BENCHMARKS.md, "Peak memory").

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use adam_core::data::Document;
use anyhow::{Context, Result, bail};

use crate::dataset::DatasetFiles;
use crate::embed_cache::CorpusHasher;

/// A corpus as dense retrieval reads it; documents are numbered `0..len()` in file order.
pub trait CorpusTexts {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn id(&self, doc: usize) -> &str;
    /// Characters of the document's [`Document::full_text`].
    fn chars(&self, doc: usize) -> usize;
    /// The full texts of `docs`, in that order.
    fn texts(&self, docs: &[usize]) -> Result<Vec<String>>;
    /// [`crate::embed_cache::hash_corpus`] of the corpus.
    fn xxh3(&self) -> String;
    /// Fails on an id that appears twice (a run naming a document twice is invalid).
    fn check_unique_ids(&self) -> Result<()>;
}

impl CorpusTexts for [Document] {
    fn len(&self) -> usize {
        <[Document]>::len(self)
    }
    fn id(&self, doc: usize) -> &str {
        &self[doc].id
    }
    fn chars(&self, doc: usize) -> usize {
        full_text_chars(&self[doc])
    }
    fn texts(&self, docs: &[usize]) -> Result<Vec<String>> {
        Ok(docs.iter().map(|&d| self[d].full_text()).collect())
    }
    fn xxh3(&self) -> String {
        crate::embed_cache::hash_corpus(self)
    }
    fn check_unique_ids(&self) -> Result<()> {
        crate::retrieval::check_unique_ids(self.iter().map(|d| d.id.as_str()), "document")
    }
}

fn full_text_chars(doc: &Document) -> usize {
    let text = doc.text.chars().count();
    if doc.title.is_empty() { text } else { doc.title.chars().count() + 1 + text }
}

/// The order in which a corpus is encoded: longest text first, equal lengths in corpus order, so
/// batches pad little ([`crate::retrieval::encoding_order`] for plain texts).
pub fn encoding_order<C: CorpusTexts + ?Sized>(corpus: &C) -> Vec<usize> {
    longest_first(corpus.len(), |i| corpus.chars(i))
}

/// `0..count` by `chars(i)` descending, equal lengths in index order (a stable sort, so batching
/// is deterministic).
pub fn longest_first(count: usize, chars: impl Fn(usize) -> usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(chars(i)));
    order
}

/// Document numbers sorted by id bytes (stable: equal ids in corpus order).
pub fn ids_in_byte_order<C: CorpusTexts + ?Sized>(corpus: &C) -> Vec<usize> {
    let mut order: Vec<usize> = (0..corpus.len()).collect();
    order.sort_by(|&a, &b| corpus.id(a).as_bytes().cmp(corpus.id(b).as_bytes()));
    order
}

/// A corpus file read once: ids, text lengths and offsets in memory, the full texts in an
/// anonymous temporary file (deleted by the system when it is closed, even after a crash).
pub struct SpilledCorpus {
    pub path: PathBuf,
    /// Every id, concatenated; document `i`'s is `ids[id_ends[i - 1]..id_ends[i]]`.
    ids: String,
    id_ends: Vec<usize>,
    chars: Vec<u32>,
    /// Document `i`'s text is bytes `text_ends[i - 1]..text_ends[i]` of `spill`.
    text_ends: Vec<u64>,
    spill: Mutex<File>,
    xxh3: String,
}

impl SpilledCorpus {
    /// Reads the corpus of `files`, refusing an empty one and one whose ids repeat.
    pub fn read(files: &DatasetFiles) -> Result<Self> {
        let path = files.corpus_path()?.to_path_buf();
        let file = tempfile::tempfile().context("creating a temporary file for the corpus texts")?;
        let mut writer = BufWriter::new(file);
        let mut hasher = CorpusHasher::default();
        let (mut ids, mut id_ends, mut chars, mut text_ends) = (String::new(), Vec::new(), Vec::new(), Vec::new());
        let mut written = 0u64;
        files.for_each_document(|doc| {
            hasher.add(&doc);
            ids.push_str(&doc.id);
            id_ends.push(ids.len());
            let count = full_text_chars(&doc);
            chars.push(u32::try_from(count).with_context(|| format!("document `{}` is over 4 G characters", doc.id))?);
            let text = doc.full_text();
            writer.write_all(text.as_bytes()).context("writing the corpus texts to a temporary file")?;
            written += text.len() as u64;
            text_ends.push(written);
            Ok(())
        })?;
        if id_ends.is_empty() {
            bail!("{} has no documents", path.display());
        }
        let spill = writer.into_inner().map_err(|e| e.into_error()).context("writing the corpus texts")?;
        let corpus = Self { path, ids, id_ends, chars, text_ends, spill: Mutex::new(spill), xxh3: hasher.finish() };
        corpus.refuse_repeated_ids()?;
        Ok(corpus)
    }

    /// Fails on an id that appears twice, naming the pair whose second entry comes first in the
    /// file (as [`crate::retrieval::check_unique_ids`] does), without a hash set of every id.
    fn refuse_repeated_ids(&self) -> Result<()> {
        let by_id = ids_in_byte_order(self);
        let duplicate = by_id
            .windows(2)
            .filter(|w| self.id(w[0]) == self.id(w[1]))
            .map(|w| (w[0].min(w[1]), w[0].max(w[1])))
            .min_by_key(|&(first, second)| (second, first));
        if let Some((first, second)) = duplicate {
            bail!(
                "{}: document id `{}` appears twice (entries {} and {})",
                self.path.display(),
                self.id(first),
                first + 1,
                second + 1
            );
        }
        Ok(())
    }
}

impl CorpusTexts for SpilledCorpus {
    fn len(&self) -> usize {
        self.id_ends.len()
    }
    fn id(&self, doc: usize) -> &str {
        let start = if doc == 0 { 0 } else { self.id_ends[doc - 1] };
        &self.ids[start..self.id_ends[doc]]
    }
    fn chars(&self, doc: usize) -> usize {
        self.chars[doc] as usize
    }
    fn texts(&self, docs: &[usize]) -> Result<Vec<String>> {
        let mut spill = self.spill.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        docs.iter()
            .map(|&d| {
                let start = if d == 0 { 0 } else { self.text_ends[d - 1] };
                let mut bytes = vec![0u8; (self.text_ends[d] - start) as usize];
                spill
                    .seek(SeekFrom::Start(start))
                    .and_then(|_| spill.read_exact(&mut bytes))
                    .context("reading the temporary copy of the corpus texts")?;
                // Written from a String: only a damaged disk could make this fail.
                String::from_utf8(bytes).context("the temporary copy of the corpus texts is damaged")
            })
            .collect()
    }
    fn xxh3(&self) -> String {
        self.xxh3.clone()
    }
    fn check_unique_ids(&self) -> Result<()> {
        Ok(()) // refused when read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, lines: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("adam-spilled-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("corpus.jsonl"), lines.join("\n") + "\n").unwrap();
        dir
    }

    #[test]
    fn spilled_corpus_gives_what_the_parsed_one_gives() {
        let dir = folder(
            "same",
            &[
                r#"{"_id": "b", "title": "Tïtle", "text": "the first text"}"#,
                r#"{"_id": "a", "title": "", "text": "é second, with accents"}"#,
                r#"{"_id": "c", "text": "third"}"#,
            ],
        );
        let files = DatasetFiles::locate(&dir, "test");
        let parsed = files.read_corpus().unwrap();
        let spilled = SpilledCorpus::read(&files).unwrap();
        assert_eq!(CorpusTexts::len(&spilled), 3);
        assert_eq!(spilled.xxh3(), parsed.as_slice().xxh3());
        for d in 0..3 {
            assert_eq!(spilled.id(d), parsed.as_slice().id(d));
            assert_eq!(spilled.chars(d), parsed[d].full_text().chars().count());
        }
        assert_eq!(spilled.texts(&[2, 0, 1, 0]).unwrap(), parsed.as_slice().texts(&[2, 0, 1, 0]).unwrap());
        assert_eq!(encoding_order(&spilled), encoding_order(parsed.as_slice()));
        assert_eq!(
            encoding_order(&spilled),
            crate::retrieval::encoding_order(&parsed.as_slice().texts(&[0, 1, 2]).unwrap())
        );
        assert_eq!(ids_in_byte_order(&spilled), vec![1, 0, 2]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn repeated_ids_and_empty_corpora_are_refused() {
        let dir = folder(
            "dup",
            &[
                r#"{"_id": "x", "text": "1"}"#, r#"{"_id": "y", "text": "2"}"#, r#"{"_id": "y", "text": "3"}"#,
                r#"{"_id": "x", "text": "4"}"#,
            ],
        );
        let err = SpilledCorpus::read(&DatasetFiles::locate(&dir, "test")).err().unwrap().to_string();
        assert!(err.contains("document id `y` appears twice (entries 2 and 3)"), "{err}");
        std::fs::write(dir.join("corpus.jsonl"), "\n").unwrap();
        let err = SpilledCorpus::read(&DatasetFiles::locate(&dir, "test")).err().unwrap().to_string();
        assert!(err.contains("has no documents"), "{err}");
        std::fs::write(dir.join("corpus.jsonl"), "{\"_id\": \"x\"}\n").unwrap();
        let err = format!("{:#}", SpilledCorpus::read(&DatasetFiles::locate(&dir, "test")).err().unwrap());
        assert!(err.contains("corpus.jsonl:1: field `text`"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
