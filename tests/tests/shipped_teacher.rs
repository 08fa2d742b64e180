//! The shipped teacher of the paraphrase world (trainer/teachers/paraphrase): its weights are the
//! bytes its SOURCE.md records (which `scripts/rebuild_teacher.sh` rebuilds and compares), it
//! reads the world `adam teaching-set --world paraphrase` writes today (the same word pieces,
//! byte for byte), and it reranks that world's test queries far above BM25.

use adam_tests::{TempDir, adam, stderr, stdout, workspace_root};
use sha2::{Digest, Sha256};

#[test]
fn shipped_teacher_is_the_recorded_file_and_reads_todays_world() {
    let shipped = workspace_root().join("trainer/teachers/paraphrase");
    let weights = std::fs::read(shipped.join("model.safetensors")).unwrap();
    let hash: String = Sha256::digest(&weights).iter().map(|b| format!("{b:02x}")).collect();
    let source = std::fs::read_to_string(shipped.join("SOURCE.md")).unwrap();
    let recorded = source
        .lines()
        .find_map(|l| l.trim().strip_prefix("sha256(model.safetensors) = "))
        .expect("SOURCE.md records the weights' hash");
    assert_eq!(hash, recorded.trim(), "model.safetensors is not the file SOURCE.md records");

    let tmp = TempDir::new("shipped-teacher");
    let data = tmp.path("data");
    let o = adam(&["teaching-set", "--world", "paraphrase", "--output", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read(data.join("tokenizer.json")).unwrap() == std::fs::read(shipped.join("tokenizer.json")).unwrap(),
        "the paraphrase world's word pieces changed: retrain the teacher (scripts/rebuild_teacher.sh)"
    );

    // BM25's top 100 of the test queries, and the teacher's reordering of them.
    let bm25 = tmp.path("bm25.run");
    let o = adam(&[
        "negatives",
        "--data",
        data.to_str().unwrap(),
        "--split",
        "test",
        "--output",
        tmp.path("neg.jsonl").to_str().unwrap(),
        "--top-k",
        "1",
        "--depth",
        "100",
        "--run",
        bm25.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reranked = tmp.path("teacher.run");
    let o = adam(&[
        "teacher",
        "rerank",
        "--model",
        shipped.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--run",
        bm25.to_str().unwrap(),
        "--depth",
        "100",
        "--max-length",
        "96",
        "--output",
        reranked.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let eval = |run: &std::path::Path| {
        let o = adam(&["eval", "--data", data.to_str().unwrap(), "--run", run.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["ndcg@10"].as_f64().unwrap()
    };
    let (bm25, teacher) = (eval(&bm25), eval(&reranked));
    // SOURCE.md: 0.866 against BM25's 0.356 (other processors round in the fourth decimal).
    assert!((bm25 - 0.356).abs() < 0.001, "BM25 {bm25:.4}: the world or BM25 changed");
    assert!((teacher - 0.866).abs() < 0.005, "teacher {teacher:.4}, BM25 {bm25:.4}");
}
