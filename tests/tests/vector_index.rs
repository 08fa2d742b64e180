//! The approximate-nearest-neighbour index (issue 21, point 3): `adam index` builds a USearch
//! index of a model's corpus vectors, `adam eval --index` retrieves through it and scores what
//! the exact search scores when the search keeps every candidate; an index is refused for
//! another corpus or other embeddings, naming which.

use std::path::Path;

use adam_tests::{TempDir, adam, fixture, stderr, stdout};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A BEIR folder of the first `docs` WikiQA sentences with eight queries judged on them.
fn small_folder(data: &Path, dir: &Path, docs: usize) {
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    let corpus: Vec<String> =
        std::fs::read_to_string(data.join("corpus.jsonl")).unwrap().lines().take(docs).map(String::from).collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus.join("\n") + "\n").unwrap();
    let queries: Vec<String> =
        std::fs::read_to_string(data.join("queries.jsonl")).unwrap().lines().take(8).map(String::from).collect();
    std::fs::write(dir.join("queries.jsonl"), queries.join("\n") + "\n").unwrap();
    let id = |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap()["_id"].as_str().unwrap().to_string();
    let mut qrels = String::from("query-id\tcorpus-id\tscore\n");
    for (i, q) in queries.iter().enumerate() {
        qrels.push_str(&format!("{}\t{}\t1\n", id(q), id(&corpus[i * 11])));
    }
    std::fs::write(dir.join("qrels/test.tsv"), qrels).unwrap();
}

#[test]
fn eval_through_the_index_scores_what_the_exact_search_scores() {
    let (Some(model), Some(data)) = (fixture("models/all-MiniLM-L6-v2"), fixture("data/wikiqa")) else { return };
    let tmp = TempDir::new("vector-index");
    let folder = tmp.path("data");
    small_folder(&data, &folder, 200);
    let cache = tmp.path("cache");
    let base = ["--model", s(&model), "--data", s(&folder), "--batch-size", "16", "--cache", s(&cache)];

    let exact = adam(&[&["eval"], &base[..], &["--json", "--depth", "20"]].concat());
    assert!(exact.status.success(), "{}", stderr(&exact));

    let index = tmp.path("wikiqa.usearch");
    let out = adam(&[&["index"], &base[..], &["--out", s(&index)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("reusing cached embeddings"), "the index reuses eval's vectors: {}", stderr(&out));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path("wikiqa.usearch.json")).unwrap()).unwrap();
    assert_eq!(meta["ids"].as_array().unwrap().len(), 200);
    assert_eq!(meta["params"]["connectivity"], 16);

    // Keeping every candidate (expansion ≥ corpus), the graph search finds the exact top 20.
    let ann = adam(
        &[
            &["eval"],
            &base[..],
            &["--json", "--depth", "20", "--index", s(&index), "--expansion-search", "256", "--compare-exact"],
        ]
        .concat(),
    );
    assert!(ann.status.success(), "{}", stderr(&ann));
    assert_eq!(stdout(&ann), stdout(&exact), "measures through the index differ from the exact search");
    assert!(stderr(&ann).contains("against the exact search: 1.0000"), "{}", stderr(&ann));
    // Without --compare-exact the corpus is neither encoded nor read from the cache.
    let empty_cache = tmp.path("empty-cache");
    let out = adam(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&folder),
        "--cache",
        s(&empty_cache),
        "--json",
        "--depth",
        "20",
        "--index",
        s(&index),
        "--expansion-search",
        "256",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), stdout(&exact));
    assert!(
        !stderr(&out).contains("documents in") && !empty_cache.exists(),
        "the corpus was encoded: {}",
        stderr(&out)
    );

    // Other embeddings of the same corpus: refused, naming the model.
    let err = adam(&[&["eval"], &base[..], &["--index", s(&index), "--layers", "3"]].concat());
    assert!(!err.status.success());
    assert!(stderr(&err).contains("built with other embeddings"), "{}", stderr(&err));
    // Another corpus: refused, naming it.
    let other = tmp.path("other");
    small_folder(&data, &other, 190);
    let other_args = ["--model", s(&model), "--data", s(&other), "--cache", s(&cache), "--index", s(&index)];
    let err = adam(&[&["eval"], &other_args[..]].concat());
    assert!(!err.status.success());
    assert!(stderr(&err).contains("built over another corpus"), "{}", stderr(&err));
    // An index without its description says how to make one.
    std::fs::remove_file(tmp.path("wikiqa.usearch.json")).unwrap();
    let err = adam(&[&["eval"], &base[..], &["--index", s(&index)]].concat());
    assert!(!err.status.success());
    assert!(stderr(&err).contains("adam index --model"), "{}", stderr(&err));
}
