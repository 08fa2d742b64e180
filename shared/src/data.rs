//! Retrieval data in the formats people already have: BEIR jsonl (corpus, queries), MS MARCO tsv
//! (`collection.tsv`, `queries.*.tsv`: `id<TAB>text`), qrels as BEIR tsv or TREC
//! `qid 0 docid rel`, TREC run files, and the mined-negatives JSONL that `adam negatives` writes.
//! Parsers take a reader and the path that names it in errors, so the browser can use them on
//! bytes too (decompression and file opening live in the trainer).

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A document of a BEIR corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub title: String,
    pub text: String,
}

impl Document {
    /// The text a retriever sees: the title, if any, then the body (as BEIR's evaluation does).
    pub fn full_text(&self) -> String {
        if self.title.is_empty() { self.text.clone() } else { format!("{} {}", self.title, self.text) }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub id: String,
    pub text: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Str(String),
    Int(i64),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Str(s) => s,
            Id::Int(i) => i.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct JsonRecord {
    #[serde(rename = "_id")]
    id: Option<Id>,
    #[serde(default)]
    title: Option<String>,
    text: Option<String>,
}

/// Calls `f` for each non-empty line with its 1-based number; read errors (including a corrupt
/// compressed stream underneath the reader) and UTF-8 errors name the line.
pub fn for_each_line(reader: impl BufRead, path: &Path, mut f: impl FnMut(usize, &str) -> Result<()>) -> Result<()> {
    for (i, line) in reader.split(b'\n').enumerate() {
        let n = i + 1;
        let bytes = line.map_err(|e| Error::format(path, Some(n), format!("cannot read: {e}")))?;
        let text =
            std::str::from_utf8(&bytes).map_err(|e| Error::format(path, Some(n), format!("not valid UTF-8: {e}")))?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.trim().is_empty() {
            continue;
        }
        f(n, text)?;
    }
    Ok(())
}

fn parse_record(line: &str, n: usize, path: &Path) -> Result<(String, Option<String>, String)> {
    let rec: JsonRecord = serde_json::from_str(line)
        .map_err(|e| Error::format(path, Some(n), format!("not a JSON object with `_id` and `text`: {e}")))?;
    let id = rec.id.ok_or_else(|| Error::field(path, n, "_id", "missing"))?.into_string();
    let text = rec.text.ok_or_else(|| Error::field(path, n, "text", "missing"))?;
    Ok((id, rec.title, text))
}

/// Reads a BEIR `corpus.jsonl` (`{"_id", "title", "text"}` per line).
pub fn read_corpus(reader: impl BufRead, path: &Path) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for_each_document(reader, path, |doc| {
        docs.push(doc);
        Ok(())
    })?;
    Ok(docs)
}

/// Calls `f` with each document of a BEIR `corpus.jsonl` in file order, holding one at a time.
pub fn for_each_document(reader: impl BufRead, path: &Path, mut f: impl FnMut(Document) -> Result<()>) -> Result<()> {
    for_each_line(reader, path, |n, line| {
        let (id, title, text) = parse_record(line, n, path)?;
        f(Document { id, title: title.unwrap_or_default(), text })
    })
}

/// Reads a BEIR `queries.jsonl` (`{"_id", "text"}` per line).
pub fn read_queries(reader: impl BufRead, path: &Path) -> Result<Vec<Query>> {
    let mut queries = Vec::new();
    for_each_line(reader, path, |n, line| {
        let (id, _, text) = parse_record(line, n, path)?;
        queries.push(Query { id, text });
        Ok(())
    })?;
    Ok(queries)
}

/// Splits an MS MARCO line `id<TAB>text`; the text may itself contain tabs (kept as they are).
fn split_tsv_line<'a>(line: &'a str, n: usize, path: &Path, id_field: &str) -> Result<(&'a str, &'a str)> {
    let Some((id, text)) = line.split_once('\t') else {
        return Err(Error::format(path, Some(n), format!("expected `{id_field}<TAB>text`, found no tab")));
    };
    let id = id.trim();
    if id.is_empty() || id.contains(char::is_whitespace) {
        return Err(Error::field(path, n, id_field, format!("`{id}` is not an id (empty or with spaces)")));
    }
    Ok((id, text))
}

/// Reads an MS MARCO `collection.tsv` (`pid<TAB>passage` per line). Passages have no title.
pub fn read_collection_tsv(reader: impl BufRead, path: &Path) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for_each_collection_document(reader, path, |doc| {
        docs.push(doc);
        Ok(())
    })?;
    Ok(docs)
}

/// Calls `f` with each passage of an MS MARCO `collection.tsv` in file order, one at a time.
pub fn for_each_collection_document(
    reader: impl BufRead,
    path: &Path,
    mut f: impl FnMut(Document) -> Result<()>,
) -> Result<()> {
    for_each_line(reader, path, |n, line| {
        let (id, text) = split_tsv_line(line, n, path, "pid")?;
        f(Document { id: id.to_string(), title: String::new(), text: text.to_string() })
    })
}

/// Reads MS MARCO queries (`queries.train.tsv`, ...: `qid<TAB>query` per line).
pub fn read_queries_tsv(reader: impl BufRead, path: &Path) -> Result<Vec<Query>> {
    let mut queries = Vec::new();
    for_each_line(reader, path, |n, line| {
        let (id, text) = split_tsv_line(line, n, path, "qid")?;
        queries.push(Query { id: id.to_string(), text: text.to_string() });
        Ok(())
    })?;
    Ok(queries)
}

/// Relevance judgements: query id → document id → grade.
pub type Qrels = BTreeMap<String, HashMap<String, i32>>;

/// Reads qrels in BEIR tsv (`query-id corpus-id score`, header optional) or TREC
/// (`qid iter docid rel`) form, tab- or space-separated.
pub fn read_qrels(reader: impl BufRead, path: &Path) -> Result<Qrels> {
    let mut qrels = Qrels::new();
    for_each_line(reader, path, |n, line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (q, d, rel) = match fields.as_slice() {
            [q, d, rel] => (*q, *d, *rel),
            [q, _, d, rel] => (*q, *d, *rel),
            _ => {
                return Err(Error::format(
                    path,
                    Some(n),
                    format!(
                        "expected 3 fields (query-id corpus-id score) or 4 (qid iter docid rel), found {}",
                        fields.len()
                    ),
                ));
            }
        };
        let grade = match rel.parse::<i32>() {
            Ok(g) => g,
            Err(_) if n == 1 => return Ok(()), // a header line such as `query-id corpus-id score`
            Err(_) => return Err(Error::field(path, n, "score", format!("`{rel}` is not an integer grade"))),
        };
        if qrels.entry(q.to_string()).or_default().insert(d.to_string(), grade).is_some() {
            return Err(Error::field(path, n, "corpus-id", format!("document `{d}` is judged twice for query `{q}`")));
        }
        Ok(())
    })?;
    Ok(qrels)
}

/// One line of a TREC run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    pub doc: String,
    pub score: f64,
}

/// A TREC run: query id → retrieved documents with scores (file order).
pub type Run = BTreeMap<String, Vec<RunEntry>>;

/// Reads a TREC run file: `qid Q0 docid rank score tag` per line. The rank column is checked
/// to be a number but, as in trec_eval, ordering comes from the scores.
pub fn read_run(reader: impl BufRead, path: &Path) -> Result<Run> {
    let mut run = Run::new();
    let mut seen: HashMap<String, HashMap<String, usize>> = HashMap::new();
    for_each_line(reader, path, |n, line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [q, _iter, d, rank, score, _tag] = fields.as_slice() else {
            return Err(Error::format(
                path,
                Some(n),
                format!("expected 6 fields (qid Q0 docid rank score tag), found {}", fields.len()),
            ));
        };
        if rank.parse::<i64>().is_err() {
            return Err(Error::field(path, n, "rank", format!("`{rank}` is not an integer")));
        }
        let score: f64 = score
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite())
            .ok_or_else(|| Error::field(path, n, "score", format!("`{score}` is not a finite number")))?;
        if let Some(first) = seen.entry(q.to_string()).or_default().insert(d.to_string(), n) {
            return Err(Error::field(
                path,
                n,
                "docid",
                format!("document `{d}` is listed twice for query `{q}` (first on line {first})"),
            ));
        }
        run.entry(q.to_string()).or_default().push(RunEntry { doc: d.to_string(), score });
        Ok(())
    })?;
    Ok(run)
}

/// Writes a run in TREC format, each query's documents by descending score.
pub fn write_run(out: &mut impl std::io::Write, run: &Run, tag: &str) -> std::io::Result<()> {
    for (q, entries) in run {
        let mut sorted: Vec<&RunEntry> = entries.iter().collect();
        sorted.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| b.doc.cmp(&a.doc)));
        for (rank, e) in sorted.iter().enumerate() {
            writeln!(out, "{q} Q0 {} {} {} {tag}", e.doc, rank + 1, e.score)?;
        }
    }
    Ok(())
}

/// A judged relevant document of a mined-negatives record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Positive {
    pub doc_id: String,
    pub grade: i32,
}

/// A negative: a document that is not a positive, with the retriever's score and its 1-based
/// rank in the retriever's full ranking (positives included). With `adam negatives
/// --judged-first` the rank is the place in the record's list instead (judged non-relevant
/// documents first), and a judged document the retriever did not return has no score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Negative {
    pub doc_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    pub rank: usize,
}

/// One line of the JSONL that `adam negatives` writes (the trainer's `instances::read_negatives`
/// reads it, checking ids against the dataset): a training query with its positives
/// (grade at or above the threshold, highest grade first) and mined negatives (best first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NegativesRecord {
    pub query_id: String,
    pub positives: Vec<Positive>,
    pub negatives: Vec<Negative>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msmarco_tsv_lines() {
        let path = Path::new("collection.tsv");
        let docs = read_collection_tsv("0\tThe presence of\tcommunication\n\n7\tsecond\r\n".as_bytes(), path).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].id.as_str(), docs[0].text.as_str()), ("0", "The presence of\tcommunication"));
        assert_eq!((docs[1].id.as_str(), docs[1].text.as_str()), ("7", "second"));
        let err = read_queries_tsv("1\tfine\n2 no tab here\n".as_bytes(), Path::new("queries.dev.tsv")).unwrap_err();
        assert_eq!(err.to_string(), "queries.dev.tsv:2: expected `qid<TAB>text`, found no tab");
        let err = read_collection_tsv("\tno id\n".as_bytes(), path).unwrap_err();
        assert!(err.to_string().starts_with("collection.tsv:1: field `pid`"), "{err}");
    }

    #[test]
    fn negatives_round_trip() {
        let rec = NegativesRecord {
            query_id: "q1".into(),
            positives: vec![Positive { doc_id: "d1".into(), grade: 2 }],
            negatives: vec![Negative { doc_id: "d9".into(), score: Some(12.5), rank: 2 }],
        };
        let line = serde_json::to_string(&rec).unwrap();
        assert_eq!(
            line,
            r#"{"query_id":"q1","positives":[{"doc_id":"d1","grade":2}],"negatives":[{"doc_id":"d9","score":12.5,"rank":2}]}"#
        );
        let back: NegativesRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
    }
}
