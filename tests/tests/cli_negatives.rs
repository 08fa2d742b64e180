//! `adam negatives` on real data (TREC DL 2019, BM25) and on a teaching set (dense, MiniLM):
//! positives never come back as negatives, negatives are best first, and the run file scores as
//! a BM25 run should.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use adam_tests::{TempDir, adam, fixture, stderr, stdout};

fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// query → doc → grade, from a BEIR qrels tsv.
fn read_qrels(path: &Path) -> HashMap<String, HashMap<String, i64>> {
    let mut out: HashMap<String, HashMap<String, i64>> = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        out.entry(f[0].into()).or_default().insert(f[1].into(), f[2].parse().unwrap());
    }
    out
}

/// Checks the JSONL against the qrels; returns the number of records.
fn check_records(
    records: &[serde_json::Value],
    qrels: &HashMap<String, HashMap<String, i64>>,
    threshold: i64,
    top_k: usize,
    depth: usize,
) {
    let mut seen = HashSet::new();
    for r in records {
        let q = r["query_id"].as_str().unwrap();
        assert!(seen.insert(q.to_string()), "query {q} written twice");
        let judged = &qrels[q];
        let positives = r["positives"].as_array().unwrap();
        assert!(!positives.is_empty(), "{q}: no positive");
        let want: HashSet<&str> = judged.iter().filter(|(_, g)| **g >= threshold).map(|(d, _)| d.as_str()).collect();
        let got: HashSet<&str> = positives.iter().map(|p| p["doc_id"].as_str().unwrap()).collect();
        assert_eq!(got, want, "{q}: positives are the judged documents at or above the threshold");
        let negatives = r["negatives"].as_array().unwrap();
        assert!(!negatives.is_empty() && negatives.len() <= top_k, "{q}: {} negatives", negatives.len());
        let mut last_score = f64::INFINITY;
        let mut last_rank = 0;
        for n in negatives {
            let d = n["doc_id"].as_str().unwrap();
            assert!(!want.contains(d), "{q}: positive {d} is listed as a negative");
            let (score, rank) = (n["score"].as_f64().unwrap(), n["rank"].as_u64().unwrap() as usize);
            assert!(score <= last_score, "{q}: negatives not sorted by score");
            assert!(rank > last_rank && rank <= depth, "{q}: rank {rank} after {last_rank}");
            last_score = score;
            last_rank = rank;
        }
    }
}

#[test]
fn bm25_negatives_on_trec_dl19_exclude_positives_and_the_run_scores_like_bm25() {
    let Some(data) = fixture("data/trec-dl19") else { return };
    let tmp = TempDir::new("negatives-dl19");
    let (out, run) = (tmp.path("neg.jsonl"), tmp.path("bm25.run"));
    let o = adam(&[
        "negatives",
        "--data",
        data.to_str().unwrap(),
        "--split",
        "test",
        "--output",
        out.to_str().unwrap(),
        "--rel-threshold",
        "2",
        "--top-k",
        "20",
        "--depth",
        "100",
        "--run",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let records = read_lines(&out);
    let qrels = read_qrels(&data.join("qrels/test.tsv"));
    let with_positive = qrels.values().filter(|j| j.values().any(|g| *g >= 2)).count();
    assert_eq!(records.len(), with_positive, "one line per query with a positive");
    check_records(&records, &qrels, 2, 20, 100);
    // Judged documents below the threshold may be negatives (grade 1 of TREC DL).
    let judged_negatives = records
        .iter()
        .flat_map(|r| {
            let q = r["query_id"].as_str().unwrap().to_string();
            r["negatives"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |n| (q.clone(), n["doc_id"].as_str().unwrap().to_string()))
        })
        .filter(|(q, d)| qrels[q].get(d).is_some_and(|g| *g == 1))
        .count();
    assert!(judged_negatives > 0, "grade-1 documents are mined as negatives with --rel-threshold 2");

    let e = adam(&[
        "eval",
        "--data",
        data.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--rel-threshold",
        "2",
        "--json",
    ]);
    assert!(e.status.success(), "{}", stderr(&e));
    let m: serde_json::Value = serde_json::from_str(stdout(&e).trim()).unwrap();
    let ndcg = m["ndcg@10"].as_f64().unwrap();
    // The committed Pyserini-style BM25 run scores 0.4329; tokenization differs a little.
    assert!((0.36..0.52).contains(&ndcg), "BM25 nDCG@10 {ndcg}");
}

#[test]
fn dense_negatives_on_a_teaching_set() {
    let Some(model) = fixture("models/all-MiniLM-L6-v2") else { return };
    let tmp = TempDir::new("negatives-dense");
    let set = tmp.path("set");
    let o = adam(&[
        "teaching-set",
        "--output",
        set.to_str().unwrap(),
        "--passages",
        "120",
        "--train-queries",
        "12",
        "--dev-queries",
        "4",
        "--test-queries",
        "4",
        "--vocab-size",
        "300",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path("neg.jsonl");
    let cache = tmp.path("cache");
    let mine = |output: &Path| {
        adam(&[
            "negatives",
            "--data",
            set.to_str().unwrap(),
            "--split",
            "train",
            "--output",
            output.to_str().unwrap(),
            "--method",
            "dense",
            "--model",
            model.to_str().unwrap(),
            "--top-k",
            "5",
            "--depth",
            "20",
            "--cache",
            cache.to_str().unwrap(),
        ])
    };
    let o = mine(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    let records = read_lines(&out);
    assert_eq!(records.len(), 12);
    check_records(&records, &read_qrels(&set.join("qrels/train.tsv")), 1, 5, 20);
    // Dense scores of a normalised model are cosines.
    assert!(
        records
            .iter()
            .flat_map(|r| r["negatives"].as_array().unwrap().clone())
            .all(|n| n["score"].as_f64().unwrap() <= 1.0001)
    );
    // Mining again reuses the corpus vectors that the first run cached (as `adam eval --model`
    // does), with the same negatives.
    let again = tmp.path("neg-again.jsonl");
    let o = mine(&again);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("reusing cached embeddings of 120 documents"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), std::fs::read_to_string(&out).unwrap());

    // The model's first 3 layers embed differently: the cache holds them apart, for mining and
    // for `adam eval --layers` (the untrained start of a 3-layer student).
    let shallow = tmp.path("neg-3.jsonl");
    let o = adam(&[
        "negatives",
        "--data",
        set.to_str().unwrap(),
        "--split",
        "train",
        "--output",
        shallow.to_str().unwrap(),
        "--method",
        "dense",
        "--model",
        model.to_str().unwrap(),
        "--layers",
        "3",
        "--top-k",
        "5",
        "--depth",
        "20",
        "--cache",
        cache.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("embedded 120 documents"), "{}", stderr(&o));
    assert_ne!(std::fs::read_to_string(&shallow).unwrap(), std::fs::read_to_string(&out).unwrap());
    let eval = |layers: &str| {
        adam(&[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--layers",
            layers,
            "--data",
            set.to_str().unwrap(),
            "--split",
            "train",
            "--json",
            "--cache",
            cache.to_str().unwrap(),
        ])
    };
    let o = eval("3");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("reusing cached embeddings of 120 documents"), "{}", stderr(&o));
    let o = eval("7");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot keep the first 7 layers") && stderr(&o).contains("give 1 to 6"),
        "{}",
        stderr(&o)
    );

    let o =
        adam(&["negatives", "--data", set.to_str().unwrap(), "--output", out.to_str().unwrap(), "--method", "dense"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--model"), "{}", stderr(&o));

    // BM25 runs no model: a model flag is a mistake to report, not to ignore.
    for extra in [&["--layers", "3"][..], &["--model", model.to_str().unwrap()], &["--no-cache"]] {
        let o = adam(
            &[&["negatives", "--data", set.to_str().unwrap(), "--output", out.to_str().unwrap()][..], extra].concat(),
        );
        assert!(!o.status.success(), "{extra:?} with BM25");
        assert!(stderr(&o).contains(&format!("{} applies to --method dense only", extra[0])), "{}", stderr(&o));
    }
}

/// `--judged-first` on WikiQA's `train-all` (every candidate sentence judged): each list starts
/// with exactly the question's judged non-answers, then mined sentences never judged for it; the
/// plain run's negatives are the same mined order with the judged ones where BM25 put them.
#[test]
fn judged_negatives_first_on_wikiqa_train_all() {
    let Some(data) = fixture("data/wikiqa") else { return };
    let tmp = TempDir::new("negatives-judged-first");
    let mine = |out: &Path, judged_first: bool| {
        let mut args = vec![
            "negatives",
            "--data",
            data.to_str().unwrap(),
            "--split",
            "train-all",
            "--output",
            out.to_str().unwrap(),
            "--top-k",
            "30",
        ];
        if judged_first {
            args.push("--judged-first");
        }
        let o = adam(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        read_lines(out)
    };
    let first = mine(&tmp.path("first.jsonl"), true);
    let plain = mine(&tmp.path("plain.jsonl"), false);
    let qrels = read_qrels(&data.join("qrels/train-all.tsv"));
    assert_eq!(first.len(), 873, "every train-all question with an answer");
    assert_eq!(first.len(), plain.len());
    let (mut unretrieved, mut mined_after) = (0, 0);
    for (r, p) in first.iter().zip(&plain) {
        let q = r["query_id"].as_str().unwrap();
        assert_eq!(q, p["query_id"].as_str().unwrap());
        let judged_neg: HashSet<&str> = qrels[q].iter().filter(|(_, g)| **g == 0).map(|(d, _)| d.as_str()).collect();
        let negatives = r["negatives"].as_array().unwrap();
        let ids: Vec<&str> = negatives.iter().map(|n| n["doc_id"].as_str().unwrap()).collect();
        let n = judged_neg.len().min(30);
        let lead: HashSet<&str> = ids[..n].iter().copied().collect();
        assert!(lead.iter().all(|d| judged_neg.contains(d)), "{q}: the list starts with its judged non-answers");
        assert!(ids[n..].iter().all(|d| !qrels[q].contains_key(*d)), "{q}: then sentences never judged for it");
        let ranks: Vec<u64> = negatives.iter().map(|n| n["rank"].as_u64().unwrap()).collect();
        assert_eq!(ranks, (1..=ids.len() as u64).collect::<Vec<_>>(), "{q}: rank is the place in the list");
        unretrieved += negatives[..n].iter().filter(|n| n.get("score").is_none()).count();
        mined_after += ids.len() - n;
        // The mined part keeps the plain run's order of the sentences it shares.
        let plain_mined: Vec<&str> = p["negatives"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["doc_id"].as_str().unwrap())
            .filter(|d| !qrels[q].contains_key(*d))
            .collect();
        let shared = plain_mined.len().min(ids.len() - n);
        assert_eq!(&ids[n..n + shared], &plain_mined[..shared], "{q}: mined order");
    }
    assert!(unretrieved > 0, "some judged non-answers are beyond BM25's top 100 and have no score");
    assert!(mined_after > 0);
}
