//! `adam eval --model` equals sentence-transformers + exact search + pytrec_eval (golden values
//! from `scripts/golden_dense_eval.py`) on WikiQA test with all-MiniLM-L6-v2, reuses its
//! embedding cache on a second run, and rejects inconsistent options.
//!
//! The test encodes a subset of the corpus (the judged documents plus every 12th line, listed in
//! the golden file) to stay within a couple of minutes; the full corpus is the ignored test.
//!
//! Tolerance: our embeddings differ from sentence-transformers' by ~1e-6 (float rounding and
//! batch padding), so two documents whose scores are that close may swap ranks; one swap can move
//! a per-query measure by up to 0.5 (MRR from rank 1 to 2) and a mean by that over the number of
//! queries. The golden file counts the queries where such a near tie separates a relevant from a
//! non-relevant document (`near_ties_1e-5`: 0 on the full corpus, 1 on the subset, below rank 11);
//! the means must agree within 1e-3 and, away from near ties, the top 11 exactly.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use adam_tests::{TempDir, adam, fixture, golden, stderr, stdout};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    rel_threshold: i32,
    depth: usize,
    queries: usize,
    full: Part,
    subset: Subset,
}

#[derive(Deserialize)]
struct Part {
    documents: usize,
    mean: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct Subset {
    documents: usize,
    doc_ids: Vec<String>,
    mean: BTreeMap<String, f64>,
    /// Each query's top 11 as (doc id, score).
    top: BTreeMap<String, Vec<(String, f64)>>,
}

const MEASURES: [&str; 5] = ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map"];
const MEAN_TOLERANCE: f64 = 1e-3;
/// Scores are dot products of unit vectors equal to ~1e-6; 1e-4 leaves room for longer texts.
const SCORE_TOLERANCE: f64 = 1e-4;

fn golden_values() -> Golden {
    serde_json::from_slice(&std::fs::read(golden("wikiqa_minilm_dense.json")).unwrap()).unwrap()
}

/// A BEIR folder with the fixture's queries and qrels and only the corpus lines in `keep`.
fn subset_folder(src: &Path, dst: &Path, keep: &HashSet<&str>) -> usize {
    std::fs::create_dir_all(dst.join("qrels")).unwrap();
    std::fs::copy(src.join("queries.jsonl"), dst.join("queries.jsonl")).unwrap();
    std::fs::copy(src.join("qrels/test.tsv"), dst.join("qrels/test.tsv")).unwrap();
    let corpus = std::fs::read_to_string(src.join("corpus.jsonl")).unwrap();
    let kept: Vec<&str> = corpus
        .lines()
        .filter(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            keep.contains(v["_id"].as_str().unwrap())
        })
        .collect();
    std::fs::write(dst.join("corpus.jsonl"), kept.join("\n") + "\n").unwrap();
    kept.len()
}

fn eval_json(args: &[&str]) -> (BTreeMap<String, f64>, String) {
    let out = adam(args);
    assert!(out.status.success(), "adam {args:?}: {}", stderr(&out));
    let mean: BTreeMap<String, f64> = serde_json::from_str(stdout(&out).trim()).unwrap();
    (mean, stderr(&out))
}

fn assert_means(got: &BTreeMap<String, f64>, want: &BTreeMap<String, f64>, what: &str) {
    for m in MEASURES {
        let (g, w) = (got[m], want[m]);
        assert!((g - w).abs() <= MEAN_TOLERANCE, "{what} {m}: adam {g}, sentence-transformers + pytrec_eval {w}");
    }
}

/// Our run's top 11 against the golden one: scores rank by rank, ids wherever the golden scores
/// around that rank are not near ties.
fn assert_rankings(run_path: &Path, want: &BTreeMap<String, Vec<(String, f64)>>, depth: usize) {
    let mut run: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for line in std::fs::read_to_string(run_path).unwrap().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 6, "TREC run line: {line}");
        let entries = run.entry(f[0].to_string()).or_default();
        assert_eq!(f[3].parse::<usize>().unwrap(), entries.len() + 1, "ranks count from 1 in order: {line}");
        entries.push((f[2].to_string(), f[4].parse().unwrap()));
    }
    assert_eq!(run.len(), want.len(), "one ranking per judged query");
    let mut id_checks = 0;
    for (q, top) in want {
        let got = &run[q];
        assert_eq!(got.len(), depth, "query {q}: depth");
        for (i, (doc, score)) in top.iter().enumerate() {
            let (got_doc, got_score) = &got[i];
            assert!(
                (got_score - score).abs() <= SCORE_TOLERANCE,
                "query {q} rank {}: score {got_score} vs {score}",
                i + 1
            );
            let clear_above = i == 0 || top[i - 1].1 - score > SCORE_TOLERANCE;
            let clear_below = top.get(i + 1).is_none_or(|next| score - next.1 > SCORE_TOLERANCE);
            if clear_above && clear_below {
                assert_eq!(got_doc, doc, "query {q} rank {}", i + 1);
                id_checks += 1;
            }
        }
    }
    assert!(id_checks > want.len() * 5, "most ranks are unambiguous ({id_checks} checked)");
}

#[test]
fn dense_eval_matches_sentence_transformers_on_wikiqa_subset_and_reuses_its_cache() {
    let (Some(model), Some(data)) = (fixture("models/all-MiniLM-L6-v2"), fixture("data/wikiqa")) else { return };
    let g = golden_values();
    let tmp = TempDir::new("dense-wikiqa");
    let keep: HashSet<&str> = g.subset.doc_ids.iter().map(String::as_str).collect();
    assert_eq!(subset_folder(&data, &tmp.path("data"), &keep), g.subset.documents, "subset ids all in the corpus");

    let (run_path, cache, subset) = (tmp.path("minilm.run"), tmp.path("cache"), tmp.path("data"));
    let depth = g.depth.to_string();
    let threshold = g.rel_threshold.to_string();
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        subset.to_str().unwrap(),
        "--split",
        "test",
        "--rel-threshold",
        &threshold,
        "--depth",
        &depth,
        "--json",
        "--cache",
        cache.to_str().unwrap(),
        "--run-out",
        run_path.to_str().unwrap(),
    ];
    let (first, log) = eval_json(&args);
    assert!(log.contains(&format!("embedded {} documents", g.subset.documents)), "{log}");
    assert!(log.contains("cached the embeddings"), "{log}");
    assert_means(&first, &g.subset.mean, "subset");
    assert_rankings(&run_path, &g.subset.top, g.depth);
    assert_eq!(g.subset.top.len(), g.queries);
    let run_bytes = std::fs::read(&run_path).unwrap();

    // Second run: corpus vectors from the cache, same numbers and the same run, byte for byte.
    let (second, log) = eval_json(&args);
    assert!(log.contains(&format!("reusing cached embeddings of {} documents", g.subset.documents)), "{log}");
    assert!(!log.contains("documents in"), "no document re-encoded: {log}");
    assert_eq!(first, second);
    assert_eq!(std::fs::read(&run_path).unwrap(), run_bytes);
}

/// The cache on a small folder: a second run reuses it, a changed document is a new entry, and
/// without a cache (`retrieve` itself) the numbers are the same.
#[test]
fn cache_follows_the_corpus_and_matches_an_uncached_run() {
    let (Some(model), Some(data)) = (fixture("models/all-MiniLM-L6-v2"), fixture("data/wikiqa")) else { return };
    let tmp = TempDir::new("dense-cache");
    let dst = tmp.path("data");
    std::fs::create_dir_all(dst.join("qrels")).unwrap();
    std::fs::copy(data.join("queries.jsonl"), dst.join("queries.jsonl")).unwrap();
    // Five judged queries, their judged documents and 30 more.
    let qrels = std::fs::read_to_string(data.join("qrels/test.tsv")).unwrap();
    let lines: Vec<&str> = qrels.lines().take(6).collect();
    std::fs::write(dst.join("qrels/test.tsv"), lines.join("\n") + "\n").unwrap();
    let judged: HashSet<&str> = lines[1..].iter().map(|l| l.split('\t').nth(1).unwrap()).collect();
    let corpus = std::fs::read_to_string(data.join("corpus.jsonl")).unwrap();
    let kept: Vec<&str> = corpus
        .lines()
        .enumerate()
        .filter(|(i, line)| *i < 30 || judged.iter().any(|d| line.contains(&format!("\"_id\": \"{d}\""))))
        .map(|(_, line)| line)
        .collect();
    let n = kept.len();
    std::fs::write(dst.join("corpus.jsonl"), kept.join("\n") + "\n").unwrap();

    let cache = tmp.path("cache");
    let base = ["eval", "--model", model.to_str().unwrap(), "--data", dst.to_str().unwrap(), "--json"];
    let cached = [&base[..], &["--cache", cache.to_str().unwrap()]].concat();
    let (first, log) = eval_json(&cached);
    assert!(log.contains(&format!("embedded {n} documents")), "{log}");
    assert!(first["ndcg@10"] > 0.0, "the judged documents are there to be found: {first:?}");
    let (second, log) = eval_json(&cached);
    assert!(log.contains(&format!("reusing cached embeddings of {n} documents")), "{log}");
    assert_eq!(first, second);
    // A damaged entry is noticed (after its blocks were read), ignored and written again.
    let payload = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "f32"))
        .unwrap();
    let mut bytes = std::fs::read(&payload).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&payload, &bytes).unwrap();
    let (third, log) = eval_json(&cached);
    assert!(log.contains("ignoring the cached embeddings") && log.contains("does not match the hash"), "{log}");
    assert!(log.contains(&format!("embedded {n} documents")) && log.contains("cached the embeddings"), "{log}");
    assert_eq!(first, third);
    let (_, log) = eval_json(&cached);
    assert!(log.contains(&format!("reusing cached embeddings of {n} documents")), "rewritten: {log}");
    let (uncached, log) = eval_json(&[&base[..], &["--no-cache"]].concat());
    assert!(!log.contains("cache"), "{log}");
    assert_eq!(first, uncached, "retrieve() and the cached path agree");

    // One document's text changes: a new key, encoded again.
    let changed = kept[0].replacen("\"text\": \"", "\"text\": \"Changed: ", 1);
    assert_ne!(changed, kept[0]);
    let rest = kept[1..].join("\n");
    std::fs::write(dst.join("corpus.jsonl"), format!("{changed}\n{rest}\n")).unwrap();
    let (_, log) = eval_json(&cached);
    assert!(log.contains(&format!("embedded {n} documents")), "{log}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 4, "two entries of two files each");
}

#[test]
#[ignore = "encodes all 24,563 WikiQA sentences (minutes); run with -- --ignored"]
fn dense_eval_matches_sentence_transformers_on_full_wikiqa() {
    let (Some(model), Some(data)) = (fixture("models/all-MiniLM-L6-v2"), fixture("data/wikiqa")) else { return };
    let g = golden_values();
    let (mean, log) = eval_json(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--split",
        "test",
        "--json",
        "--no-cache",
    ]);
    assert!(log.contains(&format!("of {} documents", g.full.documents)), "{log}");
    assert_means(&mean, &g.full.mean, "full corpus");
}

#[test]
fn model_options_need_model_and_exclude_run() {
    let tmp = TempDir::new("dense-options");
    std::fs::create_dir_all(tmp.path("data/qrels")).unwrap();
    std::fs::write(tmp.path("data/qrels/test.tsv"), "q1\td1\t1\n").unwrap();
    std::fs::write(tmp.path("run"), "q1 Q0 d1 1 3.0 t\n").unwrap();
    let data = tmp.path("data");
    let (data, run) = (data.to_str().unwrap(), tmp.path("run"));
    let run = run.to_str().unwrap();

    for extra in [
        &["--depth", "10"][..],
        &["--cache", data],
        &["--no-cache"],
        &["--backend", "flex"],
        &["--batch-size", "8"],
        &["--layers", "3"],
    ] {
        let out = adam(&[&["eval", "--data", data, "--run", run][..], extra].concat());
        assert!(!out.status.success(), "{extra:?} with --run");
        assert!(stderr(&out).contains(&format!("{} applies to --model", extra[0])), "{}", stderr(&out));
    }

    let out = adam(&["eval", "--data", data, "--run", run, "--model", data]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot be used with"), "{}", stderr(&out));

    let out = adam(&["eval", "--data", data]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--run") && stderr(&out).contains("--model"), "{}", stderr(&out));
}

#[test]
fn dense_eval_names_what_is_missing() {
    let Some(model) = fixture("models/all-MiniLM-L6-v2") else { return };
    let tmp = TempDir::new("dense-missing");
    std::fs::create_dir_all(tmp.path("data/qrels")).unwrap();
    std::fs::write(tmp.path("data/qrels/test.tsv"), "q1\td1\t1\n").unwrap();
    std::fs::write(tmp.path("data/queries.jsonl"), "{\"_id\": \"q1\", \"text\": \"what is a flea\"}\n").unwrap();
    let data = tmp.path("data");
    let data = data.to_str().unwrap();

    // No corpus.jsonl.
    let out = adam(&["eval", "--data", data, "--model", model.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("corpus.jsonl"), "{}", stderr(&out));

    // A corpus line without text names file, line and field.
    std::fs::write(tmp.path("data/corpus.jsonl"), "{\"_id\": \"d1\", \"text\": \"fleas\"}\n{\"_id\": \"d2\"}\n")
        .unwrap();
    let out = adam(&["eval", "--data", data, "--model", model.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("corpus.jsonl:2") && stderr(&out).contains("text"), "{}", stderr(&out));

    // A duplicate document id.
    std::fs::write(
        tmp.path("data/corpus.jsonl"),
        "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d1\", \"text\": \"b\"}\n",
    )
    .unwrap();
    let out = adam(&["eval", "--data", data, "--model", model.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("`d1` appears twice"), "{}", stderr(&out));

    // A model folder that does not exist.
    std::fs::write(tmp.path("data/corpus.jsonl"), "{\"_id\": \"d1\", \"text\": \"fleas\"}\n").unwrap();
    let out = adam(&["eval", "--data", data, "--model", tmp.path("nope").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}
