//! `adam report` as a user runs it on runs trained separately: a runs file with relative log
//! paths in, the three report files out; a malformed runs file or log line is named.

use adam_tests::{TempDir, adam, stderr};

fn write_runs(tmp: &TempDir) {
    std::fs::create_dir_all(tmp.path("logs")).unwrap();
    for (name, dev) in [("adam-1", [0.30, 0.35]), ("adam-2", [0.32, 0.39]), ("base-1", [0.25, 0.27])] {
        let log = format!(
            "{{\"step\":0,\"loss\":1.2}}\n{{\"step\":500,\"dev\":{{\"ndcg@10\":{}}}}}\n{{\"step\":1000,\"dev\":{{\"ndcg@10\":{}}}}}\n",
            dev[0], dev[1]
        );
        std::fs::write(tmp.path(&format!("logs/{name}.jsonl")), log).unwrap();
    }
    let runs = r#"[
 {"method": "adam", "seed": 1, "metrics": {"ndcg@10": 0.40, "mrr@10": 0.30, "recall@100": 0.80, "map": 0.2}, "log": "logs/adam-1.jsonl"},
 {"method": "adam", "seed": 2, "metrics": {"ndcg@10": 0.44, "mrr@10": 0.36, "recall@100": 0.84}, "log": "logs/adam-2.jsonl"},
 {"method": "margin-mse", "seed": 1, "metrics": {"ndcg@10": 0.38, "mrr@10": 0.29, "recall@100": 0.79}, "log": "logs/base-1.jsonl"},
 {"method": "BM25", "seed": null, "metrics": {"ndcg@10": 0.5, "mrr@10": 0.45, "recall@100": 0.9}, "log": "logs/none.jsonl"}
]"#;
    std::fs::write(tmp.path("logs/none.jsonl"), "").unwrap();
    std::fs::write(tmp.path("runs.json"), runs).unwrap();
}

#[test]
fn report_writes_table_json_and_plot() {
    let tmp = TempDir::new("report");
    write_runs(&tmp);
    let out_dir = tmp.path("report");
    let out =
        adam(&["report", "--runs", tmp.path("runs.json").to_str().unwrap(), "--output", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    // adam: ndcg 0.40, 0.44 → 0.42 ± 0.028284 (sample s.d. = |a − b| / √2); mrr 0.30, 0.36 → 0.33 ± 0.042426.
    assert!(md.contains("| adam | 2 | 0.4200 ± 0.0283 | 0.3300 ± 0.0424 | 0.8200 ± 0.0283 |"), "{md}");
    assert!(md.contains("| margin-mse | 1 | 0.3800 | 0.2900 | 0.7900 |"), "{md}");
    assert!(md.contains("| BM25 | 1 | 0.5000 | 0.4500 | 0.9000 |") && md.contains("- BM25: not trained"), "{md}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let dev = &json["methods"][0]["dev_ndcg@10"];
    assert_eq!(dev[1]["step"], 1000);
    assert!((dev[1]["mean"].as_f64().unwrap() - 0.37).abs() < 1e-12, "{dev}");
    let svg = std::fs::read_to_string(out_dir.join("dev_ndcg10.svg")).unwrap();
    assert_eq!(svg.matches("<path ").count(), 2, "one line per method");
}

#[test]
fn report_names_the_bad_file_and_line() {
    let tmp = TempDir::new("report-bad");
    write_runs(&tmp);
    let runs = tmp.path("runs.json");
    let out_dir = tmp.path("report");
    let report = || adam(&["report", "--runs", runs.to_str().unwrap(), "--output", out_dir.to_str().unwrap()]);

    std::fs::write(tmp.path("logs/adam-2.jsonl"), "{\"step\":1,\"dev\":{\"ndcg@10\":0.3}}\n{\"step\":2,\"dev\":{}}\n")
        .unwrap();
    let out = report();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("adam-2.jsonl:2") && err.contains("dev.ndcg@10"), "{err}");
    assert!(!out_dir.join("report.md").exists(), "nothing written on error");

    std::fs::write(&runs, "[{\"method\": \"adam\", \"seed\": \"one\"}]").unwrap();
    let err = stderr(&report());
    assert!(err.contains("runs.json: run 1 (of 1): field `seed`"), "{err}");

    std::fs::write(&runs, "[{\"method\": \"adam\",\n  \"seed\": 1,,}]").unwrap();
    let err = stderr(&report());
    assert!(err.contains("runs.json:2:"), "{err}");
}
