//! A dual encoder as the teacher (METHOD.md §8) and `adam teacher inspect`, as a user runs them
//! on a few WikiQA queries with all-MiniLM-L6-v2 as the teacher: its scores are `--dual-scale`
//! times the cosine of the texts' vectors, dark examples included; `teacher rerank` orders a run
//! by them; `inspect` reports the soft labels a cache teaches. (MPNet as the teacher of a BERT
//! student, with the pieces carried between vocabularies, is in `mpnet_golden.rs`.)

use std::collections::HashMap;
use std::path::Path;

use adam_core::encoder::SentenceEncoder;
use adam_core::loader::{LoadOptions, ModelSource};
use adam_core::softlabels::{entropy, softmax};
use adam_tests::{TempDir, adam, fixture, stderr, stdout};
use burn::tensor::Device;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// id → text of a BEIR jsonl file.
fn texts(path: &Path) -> HashMap<String, String> {
    jsonl(path)
        .into_iter()
        .map(|v| {
            let title = v["title"].as_str().unwrap_or("");
            let text = v["text"].as_str().unwrap();
            let full = if title.is_empty() { text.to_string() } else { format!("{title} {text}") };
            (v["_id"].as_str().unwrap().to_string(), full)
        })
        .collect()
}

fn cosine(encoder: &SentenceEncoder, a: &str, b: &str) -> f32 {
    let v = encoder.embed(&[a, b]).unwrap();
    v[0].iter().zip(&v[1]).map(|(x, y)| x * y).sum()
}

#[test]
fn a_dual_encoder_teaches_by_scaled_cosine_and_inspect_reads_its_cache() {
    let (Some(model), Some(data)) = (fixture("models/all-MiniLM-L6-v2"), fixture("data/wikiqa")) else { return };
    let tmp = TempDir::new("dual-teacher");
    // Three train queries; their judged candidates (train-all) as negatives, BEIR's own order.
    let qrels = std::fs::read_to_string(data.join("qrels/train-all.tsv")).unwrap();
    let mut by_query: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for line in qrels.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if by_query.last().is_none_or(|(q, ..)| q != f[0]) {
            by_query.push((f[0].to_string(), Vec::new(), Vec::new()));
        }
        let entry = by_query.last_mut().unwrap();
        if f[2] == "1" { entry.1.push(f[1].to_string()) } else { entry.2.push(f[1].to_string()) }
    }
    let chosen: Vec<_> = by_query.into_iter().filter(|(_, p, n)| !p.is_empty() && n.len() >= 3).take(3).collect();
    let negatives = tmp.0.join("negatives.jsonl");
    let lines: Vec<String> = chosen
        .iter()
        .map(|(q, p, n)| {
            serde_json::json!({
                "query_id": q,
                "positives": p.iter().map(|d| serde_json::json!({"doc_id": d, "grade": 1})).collect::<Vec<_>>(),
                "negatives": n.iter().map(|d| serde_json::json!({"doc_id": d})).collect::<Vec<_>>(),
            })
            .to_string()
        })
        .collect();
    std::fs::write(&negatives, lines.join("\n") + "\n").unwrap();

    let cache = tmp.0.join("scores.jsonl");
    let (model_arg, data_arg, negatives_arg, cache_arg) = (s(&model), s(&data), s(&negatives), s(&cache));
    let score = |scale: &str| {
        adam(&[
            "teacher", "score", "--model", model_arg, "--data", data_arg, "--negatives", negatives_arg, "--output",
            cache_arg, "--negatives-per-query", "3", "--max-length", "64", "--dual-scale", scale,
        ])
    };
    let out = score("20");
    assert!(out.status.success(), "{}", stderr(&out));
    let records = jsonl(&cache);
    assert_eq!(records[0]["teacher_kind"], "dual-encoder", "auto: a sentence-transformers folder is a dual encoder");
    assert_eq!(records[0]["dual_scale"], 20.0);
    assert!(records[0].get("dark_tokenizer").is_none(), "the teacher's own vocabulary");

    // Every score is 20 × the cosine of the two texts, as the encoder computes it on its own.
    let encoder = SentenceEncoder::load(
        &ModelSource::Dir(model.clone()),
        &Device::flex(),
        &LoadOptions { max_length: Some(64), layers: None },
    )
    .unwrap();
    let queries = texts(&data.join("queries.jsonl"));
    let corpus = texts(&data.join("corpus.jsonl"));
    for r in &records[1..] {
        let q = &queries[r["query_id"].as_str().unwrap()];
        for d in r["positives"].as_array().unwrap().iter().chain(r["negatives"].as_array().unwrap()) {
            let want = 20.0 * cosine(&encoder, q, &corpus[d["doc_id"].as_str().unwrap()]);
            let got = d["score"].as_f64().unwrap() as f32;
            assert!((got - want).abs() < 1e-3, "{}: {got} vs {want}", d["doc_id"]);
        }
        // Dark examples are scored the same way, from their word pieces.
        let dark = r["dark"].as_array().unwrap();
        assert_eq!(dark.len(), 4);
        let tok = &encoder.model.tokenizer;
        let q_pieces = tok.word_pieces(q).unwrap();
        for ex in dark {
            let ids: Vec<u32> = serde_json::from_value(ex["ids"].clone()).unwrap();
            let batch = tok.encode_pieces(&[&q_pieces, &ids], 64);
            let v: Vec<f32> = encoder.embed_batch(&batch).into_data().try_into_vec_as::<f32>().unwrap();
            let dim = encoder.dim();
            let want = 20.0 * v[..dim].iter().zip(&v[dim..]).map(|(a, b)| a * b).sum::<f32>();
            let got = ex["teacher_score"].as_f64().unwrap() as f32;
            assert!((got - want).abs() < 1e-3, "dark {}: {got} vs {want}", ex["kind"]);
        }
    }

    // Another scale is another cache: refused on resume, naming the key.
    let out = score("10");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("dual_scale"), "{}", stderr(&out));

    // inspect: counts per kind and the plain entropy, recomputed here from the cache.
    let inspect = tmp.0.join("inspect");
    let out = adam(&["teacher", "inspect", "--scores", s(&cache), "--output", s(&inspect)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("with dark examples"), "{}", stdout(&out));
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(inspect.join("soft_labels.json")).unwrap()).unwrap();
    assert_eq!(profile["queries"], 3);
    let count = |kind: &str| {
        profile["kinds"].as_array().unwrap().iter().find(|k| k["kind"] == kind).unwrap()["count"].as_u64().unwrap()
    };
    assert_eq!(count("positive"), 3);
    assert_eq!(count("mined negative"), 9);
    assert_eq!(count("masked positive") + count("mixed negative") + count("query-mixed negative"), 12);
    let mut plain_entropy = 0.0;
    for r in &records[1..] {
        let best = r["dark_positive"].as_str().unwrap();
        let pos = r["positives"].as_array().unwrap().iter().find(|p| p["doc_id"] == best).unwrap();
        let scores: Vec<f32> = std::iter::once(pos)
            .chain(r["negatives"].as_array().unwrap())
            .map(|d| d["score"].as_f64().unwrap() as f32)
            .collect();
        plain_entropy += entropy(&softmax(&scores, 1.0)) / 3.0;
    }
    let got = profile["entropy_plain"].as_f64().unwrap();
    assert!((got - plain_entropy).abs() < 1e-9, "{got} vs {plain_entropy}");
    let svg = std::fs::read_to_string(inspect.join("soft_labels.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("masked positive (") && svg.contains("mined negative (9)"), "one row per kind");
}

#[test]
fn a_dual_encoder_reranks_a_run_by_its_cosine() {
    rerank_by_cosine(None);
}

#[test]
fn a_dual_encoder_cut_to_its_first_layers_reranks_as_that_student_would() {
    rerank_by_cosine(Some(3));
}

/// `teacher rerank` (with `--layers K` when given) against the cosine of the same model loaded here.
fn rerank_by_cosine(layers: Option<usize>) {
    let (Some(model), Some(data)) = (fixture("models/all-MiniLM-L6-v2"), fixture("data/wikiqa")) else { return };
    let tmp = TempDir::new(&format!("dual-rerank-{}", layers.unwrap_or(0)));
    // The first test query's labelled candidates, in file order with equal scores.
    let qrels = std::fs::read_to_string(data.join("qrels/test-all.tsv")).unwrap();
    let first: Vec<Vec<&str>> = qrels.lines().skip(1).map(|l| l.split('\t').collect::<Vec<_>>()).collect();
    let qid = first[0][0];
    let docs: Vec<&str> = first.iter().take_while(|f| f[0] == qid).map(|f| f[1]).collect();
    let run = tmp.0.join("in.run");
    let text: String = docs.iter().map(|d| format!("{qid} Q0 {d} 1 0 x\n")).collect();
    std::fs::write(&run, text).unwrap();
    let output = tmp.0.join("out.run");
    let k = layers.map(|k| k.to_string());
    let mut args = vec![
        "teacher",
        "rerank",
        "--model",
        s(&model),
        "--teacher-kind",
        "dual-encoder",
        "--data",
        s(&data),
        "--run",
        s(&run),
        "--output",
        s(&output),
        "--max-length",
        "128",
    ];
    if let Some(k) = &k {
        args.extend(["--layers", k.as_str()]);
    }
    let out = adam(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    if let Some(k) = &k {
        // A cross-encoder has no first layers to measure as a student.
        let cross = adam(&[
            "teacher",
            "rerank",
            "--model",
            s(&model),
            "--teacher-kind",
            "cross-encoder",
            "--data",
            s(&data),
            "--run",
            s(&run),
            "--output",
            s(&tmp.0.join("cross.run")),
            "--layers",
            k,
        ]);
        assert!(!cross.status.success());
        assert!(stderr(&cross).contains("--layers applies to a dual encoder"), "{}", stderr(&cross));
    }
    let encoder = SentenceEncoder::load(
        &ModelSource::Dir(model),
        &Device::flex(),
        &LoadOptions { max_length: Some(128), layers },
    )
    .unwrap();
    let query = &texts(&data.join("queries.jsonl"))[qid];
    let corpus = texts(&data.join("corpus.jsonl"));
    let got: Vec<(String, f64)> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[2].to_string(), f[4].parse().unwrap())
        })
        .collect();
    assert_eq!(got.len(), docs.len());
    for (doc, score) in &got {
        let want = 20.0 * cosine(&encoder, query, &corpus[doc]) as f64;
        assert!((score - want).abs() < 1e-3, "{doc}: {score} vs {want}");
    }
    assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "the run is written best first");
}
