//! Every parser of user files, fed arbitrary bytes and near-valid lines (valid records with
//! fragments spliced in): it returns `Ok` or an error, never panics. Bounded: a fixed number of
//! cases per parser (proptest's seeded runner), a few seconds in all.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use adam_core::data::{
    Document, Query, read_collection_tsv, read_corpus, read_qrels, read_queries, read_queries_tsv, read_run,
};
use adam_trainer::commands::report::read_runs;
use adam_trainer::distill_config::DistillConfig;
use adam_trainer::instances::{Collection, read_negatives};
use adam_trainer::report::read_dev_log;
use adam_trainer::score_cache;
use proptest::prelude::*;

/// Pieces of every format: JSON syntax and keys, TSV and TREC fields, TOML, numbers at the
/// edges, odd text. Concatenations of these reach deeper than random bytes.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\n",
    "\r\n",
    "\t",
    " ",
    "=",
    "#",
    "\\",
    "\\u0000",
    "\"_id\"",
    "\"text\"",
    "\"title\"",
    "\"query_id\"",
    "\"positives\"",
    "\"negatives\"",
    "\"doc_id\"",
    "\"grade\"",
    "\"score\"",
    "\"rank\"",
    "\"step\"",
    "\"dev_ndcg@10\"",
    "\"q1\"",
    "\"d1\"",
    "\"d2\"",
    "q1",
    "d1",
    "d2",
    "Q0",
    "0",
    "1",
    "2",
    "-1",
    "1e309",
    "-0",
    "NaN",
    "inf",
    "18446744073709551616",
    "3.5",
    "null",
    "true",
    "[]",
    "{}",
    "query-id\tcorpus-id\tscore",
    "method",
    "seed",
    "[train]",
    "[data]",
    "[student]",
    "steps",
    "batch_size",
    "\u{feff}",
    "é",
    "\u{10ffff}",
    "\0",
    "{\"_id\":\"d1\",\"text\":\"a\"}",
    "q1\t0\td1\t1",
    "q1 Q0 d1 1 2.5 run",
    "{\"query_id\":\"q1\",\"positives\":[{\"doc_id\":\"d1\",\"grade\":1}],\"negatives\":[{\"doc_id\":\"d2\",\"score\":1,\"rank\":1}]}",
];

fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|parts| parts.concat().into_bytes())
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..300), near_valid()]
}

/// One temporary file per test thread, rewritten for each case (parsers that take a path).
fn file_with(bytes: &[u8], name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adam-fuzz-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn collection() -> Collection {
    let doc = |id: &str| Document { id: id.into(), title: String::new(), text: "a".into() };
    Collection {
        dir: PathBuf::from("fuzz"),
        corpus: vec![doc("d1"), doc("d2")],
        doc_index: HashMap::from([("d1".into(), 0), ("d2".into(), 1)]),
        queries: vec![Query { id: "q1".into(), text: "q".into() }],
        query_index: HashMap::from([("q1".into(), 0)]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn line_formats_error_but_never_panic(bytes in input()) {
        let path = Path::new("fuzz.txt");
        let _ = read_corpus(Cursor::new(&bytes), path);
        let _ = read_queries(Cursor::new(&bytes), path);
        let _ = read_collection_tsv(Cursor::new(&bytes), path);
        let _ = read_queries_tsv(Cursor::new(&bytes), path);
        let _ = read_qrels(Cursor::new(&bytes), path);
        let _ = read_run(Cursor::new(&bytes), path);
    }

    #[test]
    fn trainer_files_error_but_never_panic(bytes in input()) {
        let _ = read_negatives(&file_with(&bytes, "negatives.jsonl"), &collection());
        let _ = score_cache::read(&file_with(&bytes, "scores.jsonl"));
        let _ = score_cache::read_complete(&file_with(&bytes, "scores.jsonl"));
        let _ = DistillConfig::load(&file_with(&bytes, "distill.toml"));
        let _ = read_dev_log(&file_with(&bytes, "log.jsonl"));
        let _ = read_runs(&file_with(&bytes, "runs.json"));
    }
}

/// The near-valid strategy does reach the parsers' success paths (so the fuzzing is not only
/// of the first syntax check).
#[test]
fn near_valid_inputs_are_sometimes_accepted() {
    let path = Path::new("fuzz.txt");
    assert!(read_run(Cursor::new(b"q1 Q0 d1 1 2.5 run\n"), path).is_ok());
    assert!(read_corpus(Cursor::new(br#"{"_id":"d1","text":"a"}"#), path).is_ok());
    let line = FRAGMENTS.iter().find(|f| f.starts_with("{\"query_id\"")).unwrap();
    assert_eq!(read_negatives(&file_with(line.as_bytes(), "ok.jsonl"), &collection()).unwrap().len(), 1);
}
