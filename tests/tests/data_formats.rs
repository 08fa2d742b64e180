//! Dataset layouts through the CLI: MS MARCO tsv, gzip files, and the errors for malformed or
//! missing inputs (file, line, field) and for an unreachable Hugging Face Hub dataset.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use adam_tests::{TempDir, adam, adam_bin, stderr};

fn gzip(path: &Path, text: &str) {
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
}

fn negatives(data: &Path, split: &str, out: &Path) -> std::process::Output {
    adam(&[
        "negatives",
        "--data",
        data.to_str().unwrap(),
        "--split",
        split,
        "--output",
        out.to_str().unwrap(),
        "--top-k",
        "2",
    ])
}

const COLLECTION: &str = "d1\tfleas live up to a year on a host\nd2\tthe life cycle of a flea has four stages\n\
d3\tconcrete flooring costs by the square foot\nd4\tflea collars and flea shampoo\n";

#[test]
fn msmarco_layout_with_gzip_collection_and_trec_qrels() {
    let tmp = TempDir::new("msmarco-gz");
    let dir = tmp.path("msmarco");
    std::fs::create_dir_all(&dir).unwrap();
    gzip(&dir.join("collection.tsv.gz"), COLLECTION);
    std::fs::write(dir.join("queries.train.tsv"), "q1\tflea life cycle\nq2\tcost of concrete flooring\n").unwrap();
    std::fs::write(dir.join("qrels.train.tsv"), "q1\t0\td2\t1\nq2\t0\td3\t1\n").unwrap();
    let out = tmp.path("neg.jsonl");
    let o = negatives(&dir, "train", &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["query_id"], "q1");
    assert_eq!(lines[0]["positives"][0]["doc_id"], "d2");
    let negs: Vec<&str> =
        lines[0]["negatives"].as_array().unwrap().iter().map(|n| n["doc_id"].as_str().unwrap()).collect();
    assert!(!negs.contains(&"d2") && negs.contains(&"d4"), "{negs:?}");
}

#[test]
fn msmarco_line_without_tab_names_file_and_line() {
    let tmp = TempDir::new("msmarco-bad");
    let dir = tmp.path("msmarco");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("collection.tsv"), "d1\tfine passage\nd2 this line has no tab\n").unwrap();
    std::fs::write(dir.join("queries.train.tsv"), "q1\tflea\n").unwrap();
    std::fs::write(dir.join("qrels.train.tsv"), "q1\t0\td1\t1\n").unwrap();
    let out = tmp.path("neg.jsonl");
    let o = negatives(&dir, "train", &out);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("collection.tsv:2") && err.contains("no tab"), "{err}");
    assert!(!out.exists(), "no output on error");

    std::fs::write(dir.join("collection.tsv"), COLLECTION).unwrap();
    std::fs::write(dir.join("queries.train.tsv"), "q1\tflea\n\tno id\n").unwrap();
    let err = stderr(&negatives(&dir, "train", &out));
    assert!(err.contains("queries.train.tsv:2") && err.contains("qid"), "{err}");
}

#[test]
fn corrupt_gzip_names_file_and_line() {
    let tmp = TempDir::new("bad-gz");
    let dir = tmp.path("beir");
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    std::fs::write(dir.join("corpus.jsonl.gz"), b"this is not gzip data\n").unwrap();
    std::fs::write(dir.join("queries.jsonl"), "{\"_id\": \"q1\", \"text\": \"flea\"}\n").unwrap();
    std::fs::write(dir.join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\n").unwrap();
    let err = stderr(&negatives(&dir, "test", &tmp.path("neg.jsonl")));
    assert!(err.contains("corpus.jsonl.gz:1") && err.contains("cannot read"), "{err}");

    // A stream cut short after valid lines fails on the line where it breaks.
    let mut full = Vec::new();
    {
        let mut enc = flate2::write::GzEncoder::new(&mut full, flate2::Compression::default());
        for i in 0..2000 {
            writeln!(
                enc,
                "{{\"_id\": \"d{i}\", \"text\": \"passage number {i} about fleas and {}\"}}",
                i * 7919 % 1000
            )
            .unwrap();
        }
        enc.finish().unwrap();
    }
    std::fs::write(dir.join("corpus.jsonl.gz"), &full[..full.len() * 2 / 3]).unwrap();
    let err = stderr(&negatives(&dir, "test", &tmp.path("neg.jsonl")));
    let line: usize = err
        .split("corpus.jsonl.gz:")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line number in: {err}"));
    assert!(line > 1, "{err}");
}

#[test]
fn missing_files_are_listed() {
    let tmp = TempDir::new("missing");
    let dir = tmp.path("beir");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("corpus.jsonl"), "{\"_id\": \"d1\", \"text\": \"x\"}\n").unwrap();
    let err = stderr(&negatives(&dir, "dev", &tmp.path("neg.jsonl")));
    assert!(err.contains("queries.jsonl"), "{err}");
    std::fs::write(dir.join("queries.jsonl"), "{\"_id\": \"q1\", \"text\": \"x\"}\n").unwrap();
    let err = stderr(&negatives(&dir, "dev", &tmp.path("neg.jsonl")));
    assert!(err.contains("qrels/dev.tsv"), "{err}");
    let err = stderr(&negatives(&tmp.path("nowhere"), "dev", &tmp.path("neg.jsonl")));
    assert!(err.contains("no such folder"), "{err}");
}

#[test]
fn unreachable_hub_dataset_asks_for_a_local_folder() {
    let tmp = TempDir::new("hub");
    let o = Command::new(adam_bin())
        .args([
            "negatives",
            "--data",
            "adam-test-nobody/no-such-dataset",
            "--output",
            tmp.path("n.jsonl").to_str().unwrap(),
        ])
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", tmp.path("hf"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("adam-test-nobody/no-such-dataset") && err.contains("local folder"), "{err}");
}
