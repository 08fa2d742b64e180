//! `adam demo` end to end on a small teaching set: every stage's output, the comparison table
//! with each method and the references, the web assets, and a rerun that skips finished work.

use adam_tests::{TempDir, adam, stderr, stdout};

#[test]
fn demo_runs_every_stage_and_resumes() {
    let tmp = TempDir::new("demo");
    let data = tmp.path("teach");
    let out = tmp.path("out");
    let web = tmp.path("web");
    let o = adam(&[
        "teaching-set",
        "--output",
        data.to_str().unwrap(),
        "--passages",
        "200",
        "--train-queries",
        "40",
        "--dev-queries",
        "10",
        "--test-queries",
        "10",
        "--vocab-size",
        "600",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let demo = |extra: &[&str]| {
        let mut args = vec![
            "demo",
            "--output",
            out.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--methods",
            "kd,adam",
            "--seeds",
            "1",
            "--teacher-epochs",
            "1",
            "--student-steps",
            "3",
            "--max-length",
            "32",
            "--rel-threshold",
            "2",
            "--web-assets",
            web.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        adam(&args)
    };
    let o = demo(&[]);
    let log = stderr(&o);
    assert!(o.status.success(), "{log}");
    // Each stage prints the command it runs, so a class can retype it.
    for command in [
        "$ adam negatives", "$ adam teacher train", "$ adam teacher rerank", "$ adam teacher score", "$ adam distill",
        "$ adam teacher inspect", "$ adam export-web",
    ] {
        assert!(log.contains(command), "`{command}` not shown:\n{log}");
    }
    for file in [
        "negatives.train.jsonl",
        "bm25.test.run",
        "teacher/model.safetensors",
        "teacher.test.run",
        "scores.jsonl",
        "runs/kd-seed1/student/model.safetensors",
        "runs/adam-seed1/student/model.safetensors",
        "runs/adam-seed1/test.json",
        "per-query/adam-seed1.test.per-query.jsonl",
        "per-query/bm25.test.per-query.jsonl",
        "per-query/teacher.test.per-query.jsonl",
        "report/report.md",
        "report/report.json",
        "report/dev_ndcg10.svg",
        "report/soft_labels.svg",
        "report/soft_labels.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(web.join("manifest.json").is_file(), "web assets missing");
    // A teacher trained from scratch never saw [MASK]: its dark examples and the page's lab delete
    // pieces of the positive instead.
    let scores = std::fs::read_to_string(out.join("scores.jsonl")).unwrap();
    let header: serde_json::Value = serde_json::from_str(scores.lines().next().unwrap()).unwrap();
    assert_eq!(header["dark"]["noisy_mode"], "delete", "{header}");
    assert!(scores.contains("deleted_positive") && !scores.contains("masked_positive"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(web.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["settings"]["noisy_mode"], "delete", "{manifest}");

    // The table: both methods and the two references, with the three measures. (The stages'
    // own output comes before it.)
    let table = |o: &std::process::Output| {
        let out = stdout(o);
        out[out.find("| method |").expect("no table")..].to_string()
    };
    let table = table(&o);
    for row in ["kd", "adam", "BM25 (reference)", "teacher reranking"] {
        assert!(table.lines().any(|l| l.starts_with('|') && l.contains(row)), "no `{row}` row:\n{table}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report/report.json")).unwrap()).unwrap();
    let methods = report["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 4, "{report}");
    // A dev curve of several points (every steps / 6 steps, at least 1: all three steps here).
    let dev_steps: Vec<u64> =
        methods[0]["dev_ndcg@10"].as_array().unwrap().iter().map(|p| p["step"].as_u64().unwrap()).collect();
    assert_eq!(dev_steps, [1, 2, 3], "{report}");
    // Each student's row is its own test measures (one seed: the mean is that run's figure).
    for method in ["kd", "adam"] {
        let m = methods.iter().find(|m| m["method"] == method).unwrap_or_else(|| panic!("no {method} in {report}"));
        let test: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(format!("runs/{method}-seed1/test.json"))).unwrap())
                .unwrap();
        for measure in ["ndcg@10", "mrr@10", "recall@100"] {
            let (mean, run) = (m["metrics"][measure]["mean"].as_f64().unwrap(), test[measure].as_f64().unwrap());
            assert!((mean - run).abs() < 1e-9, "{method} {measure}: table {mean}, run {run}");
        }
    }

    // A rerun finds every stage done and gives the same table.
    let again = demo(&[]);
    let table_again = stdout(&again);
    assert!(again.status.success(), "{}", stderr(&again));
    let log = stderr(&again);
    for command in ["$ adam teacher train", "$ adam teacher score", "$ adam distill"] {
        assert!(!log.contains(command), "`{command}` ran again:\n{log}");
    }
    assert!(table_again.ends_with(&table), "the rerun's table differs:\n{table_again}");

    // Students train in parallel processes; one at a time gives the same students and table.
    std::fs::remove_dir_all(out.join("runs")).unwrap();
    let serial = demo(&["--jobs", "1"]);
    assert!(serial.status.success(), "{}", stderr(&serial));
    assert!(stderr(&serial).contains("1 at a time"), "{}", stderr(&serial));
    assert!(stdout(&serial).ends_with(&table), "one job at a time gives another table:\n{}", stdout(&serial));

    // Data without the dev split (WikiQA has only train and test): the students train without a
    // dev curve, and dev evaluation never changed what they learn.
    std::fs::remove_dir_all(out.join("runs")).unwrap();
    let no_dev = demo(&["--dev-split", "validation"]);
    assert!(no_dev.status.success(), "{}", stderr(&no_dev));
    assert!(stderr(&no_dev).contains("has no `validation` split"), "{}", stderr(&no_dev));
    let config = std::fs::read_to_string(out.join("runs/adam-seed1/distill.toml")).unwrap();
    assert!(!config.contains("[eval]") && config.contains("[adam.dark]"), "{config}");
    assert!(stdout(&no_dev).ends_with(&table), "without dev evaluation another table:\n{}", stdout(&no_dev));

    // A bad method is an error that lists the good ones.
    let bad = demo(&["--methods", "kd,magic"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("unknown method `magic`"), "{}", stderr(&bad));
}
