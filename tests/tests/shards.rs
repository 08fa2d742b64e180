//! Sharded work (issue 21): `adam embed`, `adam teacher score` and the corpus encoding of
//! `adam eval --model` split into `--shard I/N` runs whose merge has the same bytes as one
//! unsharded run, and merges that refuse missing or mismatched shards by name.

use std::path::Path;

use adam_tests::{TempDir, adam, fixture, stderr};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run_ok(args: &[&str]) {
    let out = adam(args);
    assert!(out.status.success(), "adam {}: {}", args.join(" "), stderr(&out));
}

fn run_err(args: &[&str]) -> String {
    let out = adam(args);
    assert!(!out.status.success(), "adam {} should fail", args.join(" "));
    stderr(&out)
}

/// The texts of the first `n` WikiQA sentences, as a JSON-lines-free text file.
fn first_texts(data: &Path, n: usize) -> String {
    let corpus = std::fs::read_to_string(data.join("corpus.jsonl")).unwrap();
    corpus
        .lines()
        .take(n)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().replace('\n', " "))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn embed_shards_merge_to_the_unsharded_bytes() {
    let (Some(model), Some(data)) = (fixture("models/all-MiniLM-L6-v2"), fixture("data/wikiqa")) else { return };
    let tmp = TempDir::new("shards-embed");
    let input = tmp.path("in.txt");
    // 70 texts in chunks of 2 × 16 = 32: three chunks for three shards.
    std::fs::write(&input, first_texts(&data, 70)).unwrap();
    let base = ["embed", "--model", s(&model), "--input", s(&input), "--batch-size", "2"];
    let whole = tmp.path("whole.jsonl");
    run_ok(&[&base[..], &["--output", s(&whole)]].concat());
    let merged = tmp.path("merged.jsonl");
    for shard in ["3/3", "1/3"] {
        run_ok(&[&base[..], &["--output", s(&merged), "--shard", shard]].concat());
    }
    // The merge loads no model.
    let merge = ["embed", "--input", s(&input), "--batch-size", "2", "--output", s(&merged), "--merge", "3"];
    let err = run_err(&merge);
    assert!(err.contains("2/3") && err.contains("--shard I/3"), "names the missing shard: {err}");
    assert!(!merged.exists());
    run_ok(&[&base[..], &["--output", s(&merged), "--shard", "2/3"]].concat());
    assert_eq!(std::fs::read_to_string(tmp.path("merged.jsonl.shard-2-of-3")).unwrap().lines().count(), 32);
    run_ok(&merge);
    assert!(std::fs::read(&whole).unwrap() == std::fs::read(&merged).unwrap(), "merged shards differ from one run");
    // Shards made with another batch size hold other lines: refused, naming the file.
    let other: Vec<&str> = merge.iter().map(|a| if *a == "2" { "4" } else { a }).collect();
    let err = run_err(&other);
    assert!(err.contains("merged.jsonl.shard-1-of-3") && err.contains("--batch-size"), "{err}");
}

#[test]
fn teacher_score_shards_merge_to_the_unsharded_cache() {
    let (Some(model), Some(data)) = (fixture("models/all-MiniLM-L6-v2"), fixture("data/wikiqa")) else { return };
    let tmp = TempDir::new("shards-score");
    // all-MiniLM-L6-v2 as a dual-encoder teacher: no training needed. Seven train queries in
    // batches of two: four batches over three shards.
    let score_queries = |queries: &str, output: &Path, extra: &[&str]| {
        let mut args = vec![
            "teacher",
            "score",
            "--model",
            s(&model),
            "--data",
            s(&data),
            "--split",
            "train-all",
            "--max-queries",
            queries,
            "--query-batch",
            "2",
            "--negatives-per-query",
            "3",
            "--max-length",
            "64",
            "--output",
            s(output),
        ];
        args.extend_from_slice(extra);
        adam(&args)
    };
    let score = |output: &Path, extra: &[&str]| score_queries("7", output, extra);
    let whole = tmp.path("whole.jsonl");
    let out = score(&whole, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let merged = tmp.path("merged.jsonl");
    for shard in ["1/3", "2/3", "3/3"] {
        let out = score(&merged, &["--shard", shard]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // A torn shard (an interrupted run) is refused until it is finished.
    let third = tmp.path("merged.jsonl.shard-3-of-3");
    let full = std::fs::read(&third).unwrap();
    std::fs::write(&third, &full[..full.len() - 10]).unwrap();
    let out = score(&merged, &["--merge", "3"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("shard-3-of-3"), "{}", stderr(&out));
    // Rerunning the shard resumes it (one torn query rescored in the same batch).
    let out = score(&merged, &["--shard", "3/3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = score(&merged, &["--merge", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&whole).unwrap() == std::fs::read(&merged).unwrap(), "merged shards differ from one run");
    let lines = std::fs::read_to_string(&merged).unwrap().lines().count();
    assert_eq!(lines, 8, "header and seven queries");

    // A shard of other queries (here: one more) is named.
    let out = score_queries("6", &merged, &["--merge", "3"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not among the queries"), "{}", stderr(&out));
    let out = score(&merged, &["--merge", "2"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("1/2, 2/2"), "{}", stderr(&out));
}

#[test]
fn eval_corpus_shards_join_into_the_cache_of_one_run() {
    let (Some(model), Some(data)) = (fixture("models/all-MiniLM-L6-v2"), fixture("data/wikiqa")) else { return };
    let tmp = TempDir::new("shards-eval");
    // A small BEIR folder: the first 90 WikiQA sentences, five queries judged on them.
    let folder = tmp.path("data");
    std::fs::create_dir_all(folder.join("qrels")).unwrap();
    let corpus: Vec<String> =
        std::fs::read_to_string(data.join("corpus.jsonl")).unwrap().lines().take(90).map(String::from).collect();
    std::fs::write(folder.join("corpus.jsonl"), corpus.join("\n") + "\n").unwrap();
    let queries: Vec<String> =
        std::fs::read_to_string(data.join("queries.jsonl")).unwrap().lines().take(5).map(String::from).collect();
    std::fs::write(folder.join("queries.jsonl"), queries.join("\n") + "\n").unwrap();
    let id = |l: &str| serde_json::from_str::<serde_json::Value>(l).unwrap()["_id"].as_str().unwrap().to_string();
    let mut qrels = String::from("query-id\tcorpus-id\tscore\n");
    for (i, q) in queries.iter().enumerate() {
        qrels.push_str(&format!("{}\t{}\t1\n", id(q), id(&corpus[i * 7])));
    }
    std::fs::write(folder.join("qrels/test.tsv"), qrels).unwrap();

    let eval = |cache: &Path, run_out: Option<&Path>, extra: &[&str]| {
        let mut args =
            vec!["eval", "--model", s(&model), "--data", s(&folder), "--batch-size", "8", "--cache", s(cache)];
        if let Some(r) = run_out {
            args.extend_from_slice(&["--run-out", s(r), "--json"]);
        }
        args.extend_from_slice(extra);
        adam(&args)
    };
    let one = tmp.path("cache-one");
    let out = eval(&one, Some(&tmp.path("one.run")), &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    let sharded = tmp.path("cache-sharded");
    for shard in ["2/4", "4/4", "1/4"] {
        let out = eval(&sharded, None, &["--shard", shard]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = eval(&sharded, Some(&tmp.path("sharded.run")), &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("3/4") && stderr(&out).contains("--shard I/4"), "{}", stderr(&out));
    // A shard already cached is not encoded again.
    let out = eval(&sharded, None, &["--shard", "2/4"]);
    assert!(stderr(&out).contains("cached already"), "{}", stderr(&out));
    let out = eval(&sharded, None, &["--shard", "3/4"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = eval(&sharded, Some(&tmp.path("sharded.run")), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("joined 4 shards"), "{}", stderr(&out));

    // The joined entry is the unsharded run's, byte for byte, and so is the ranking.
    let payload = |dir: &Path| {
        let f = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.extension().is_some_and(|e| e == "f32") && !p.file_name().unwrap().to_string_lossy().contains("shard")
            })
            .expect("a joined entry");
        std::fs::read(f).unwrap()
    };
    assert!(payload(&one) == payload(&sharded), "joined vectors differ from one run's");
    assert_eq!(std::fs::read(tmp.path("one.run")).unwrap(), std::fs::read(tmp.path("sharded.run")).unwrap());
    assert!(
        run_err(&["eval", "--model", s(&model), "--data", s(&folder), "--shard", "1/2", "--no-cache"])
            .contains("--no-cache")
    );
}
