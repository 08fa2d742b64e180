//! `adam eval` equals trec_eval (pytrec_eval, golden values from `scripts/golden_eval.py`) on
//! TREC DL 2019, including a run with tied scores, and rejects malformed files by file and line.

use std::collections::BTreeMap;

use adam_tests::{TempDir, adam, fixture, golden, stderr, stdout};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    runs: BTreeMap<String, GoldenRun>,
}

#[derive(Deserialize)]
struct GoldenRun {
    run_file: String,
    num_queries_evaluated: usize,
    mean: BTreeMap<String, f64>,
    per_query: BTreeMap<String, BTreeMap<String, f64>>,
}

/// adam's JSON keys → trec_eval's measure names in the golden file.
const KEYS: [(&str, &str); 5] = [
    ("ndcg@10", "ndcg_cut_10"),
    ("mrr@10", "mrr_10"),
    ("recall@10", "recall_10"),
    ("recall@100", "recall_100"),
    ("map", "map"),
];

fn check(got: &serde_json::Value, want: &BTreeMap<String, f64>, what: &str) {
    for (ours, theirs) in KEYS {
        let g = got[ours].as_f64().unwrap_or_else(|| panic!("{what}: no {ours} in {got}"));
        let w = want[theirs];
        assert!((g - w).abs() < 1e-9, "{what} {ours}: adam {g}, trec_eval {w}");
    }
}

#[test]
fn matches_trec_eval_on_dl19_runs() {
    let Some(data) = fixture("data/trec-dl19") else { return };
    let g: Golden = serde_json::from_slice(&std::fs::read(golden("trec_dl19_eval.json")).unwrap()).unwrap();
    assert!(g.runs.contains_key("ties"), "the golden file has the tied-scores run");
    for (name, run) in &g.runs {
        let run_path = adam_tests::workspace_root().join(&run.run_file);
        let args = [
            "eval",
            "--data",
            data.to_str().unwrap(),
            "--split",
            "test",
            "--run",
            run_path.to_str().unwrap(),
            "--rel-threshold",
            "2",
            "--json",
            "--per-query",
        ];
        let out = adam(&args);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let lines: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let (mean, per_query) = lines.split_last().unwrap();
        assert_eq!(mean.as_object().unwrap().len(), 5, "exactly the five measures: {mean}");
        check(mean, &run.mean, name);
        assert_eq!(per_query.len(), run.num_queries_evaluated, "{name}: queries averaged");
        for q in per_query {
            let id = q["query"].as_str().unwrap();
            check(q, &run.per_query[id], &format!("{name} query {id}"));
        }
    }
}

#[test]
fn plain_output_lists_the_measures() {
    let Some(data) = fixture("data/trec-dl19") else { return };
    let run = golden("trec_dl19_bm25.run");
    let out = adam(&["eval", "--data", data.to_str().unwrap(), "--run", run.to_str().unwrap(), "--rel-threshold", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for name in ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map"] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing in:\n{text}");
    }
    assert!(text.contains("queries") && text.contains("43"), "{text}");
}

#[test]
fn malformed_run_line_names_file_line_and_field() {
    let Some(data) = fixture("data/trec-dl19") else { return };
    let tmp = TempDir::new("eval-bad-run");
    let run = tmp.path("bad.run");
    std::fs::write(&run, "19335 Q0 1017759 1 12.5 bm25\n19335 Q0 1082489 2 high bm25\n").unwrap();
    let out = adam(&["eval", "--data", data.to_str().unwrap(), "--run", run.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("bad.run:2") && err.contains("score"), "{err}");

    std::fs::write(&run, "19335 Q0 1017759 1 12.5\n").unwrap();
    let err = stderr(&adam(&["eval", "--data", data.to_str().unwrap(), "--run", run.to_str().unwrap()]));
    assert!(err.contains("bad.run:1") && err.contains("6 fields"), "{err}");

    std::fs::write(&run, "19335 Q0 1017759 1 12.5 x\n19335 Q0 1017759 2 11 x\n").unwrap();
    let err = stderr(&adam(&["eval", "--data", data.to_str().unwrap(), "--run", run.to_str().unwrap()]));
    assert!(err.contains("bad.run:2") && err.contains("twice"), "{err}");
}

#[test]
fn malformed_qrels_line_names_file_and_line() {
    let tmp = TempDir::new("eval-bad-qrels");
    std::fs::create_dir_all(tmp.path("data/qrels")).unwrap();
    std::fs::write(tmp.path("data/qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\tvery\n").unwrap();
    std::fs::write(tmp.path("run"), "q1 Q0 d1 1 3.0 t\n").unwrap();
    let out = adam(&["eval", "--data", tmp.path("data").to_str().unwrap(), "--run", tmp.path("run").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("test.tsv:3") && err.contains("score"), "{err}");
}
