//! `adam teaching-set`: byte-identical for a seed, judgements consistent with the corpus, and a
//! tokenizer.json that loads in our TextTokenizer with the ids the trainer's tokenizer gives.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use adam_core::teaching::{TeachingConfig, TeachingSet, World};
use adam_core::tokenize::TextTokenizer;
use adam_core::wordpiece::{WordPieceConfig, train_wordpiece};
use adam_tests::{TempDir, adam, stderr};

const FILES: [&str; 7] = [
    "corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/dev.tsv", "qrels/test.tsv", "README.md",
    "tokenizer.json",
];

fn generate(dir: &Path, extra: &[&str]) {
    let mut args = vec!["teaching-set", "--output", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = adam(&args);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["_id"].as_str().unwrap().to_string())
        .collect()
}

/// query → doc → grade
fn qrels(path: &Path) -> BTreeMap<String, HashMap<String, i32>> {
    let mut out: BTreeMap<String, HashMap<String, i32>> = BTreeMap::new();
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("query-id\tcorpus-id\tscore"));
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "{line}");
        assert!(
            out.entry(f[0].into()).or_default().insert(f[1].into(), f[2].parse().unwrap()).is_none(),
            "{line} twice"
        );
    }
    out
}

#[test]
fn same_seed_gives_identical_files_and_another_seed_does_not() {
    let tmp = TempDir::new("teaching-seed");
    let (a, b, c) = (tmp.path("a"), tmp.path("b"), tmp.path("c"));
    generate(&a, &[]);
    generate(&b, &["--seed", "42"]);
    generate(&c, &["--seed", "43"]);
    for f in FILES {
        let (x, y) = (std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap());
        assert!(x == y, "{f} differs between two runs with seed 42");
    }
    assert_ne!(std::fs::read(a.join("corpus.jsonl")).unwrap(), std::fs::read(c.join("corpus.jsonl")).unwrap());
}

/// `--world paraphrase`: its own bytes, the same for a seed, its judgements those of the library's
/// paraphrase world, and a README that says how values are written.
#[test]
fn paraphrase_world_is_reproducible_and_differs_from_the_lexical_one() {
    let tmp = TempDir::new("teaching-world");
    let small = ["--passages", "300", "--train-queries", "60", "--dev-queries", "20", "--test-queries", "20"];
    let (lexical, a, b) = (tmp.path("lexical"), tmp.path("a"), tmp.path("b"));
    generate(&lexical, &small);
    for dir in [&a, &b] {
        let mut extra = small.to_vec();
        extra.extend(["--world", "paraphrase"]);
        generate(dir, &extra);
    }
    for f in FILES {
        assert!(std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(), "{f} differs");
    }
    assert_ne!(std::fs::read(a.join("corpus.jsonl")).unwrap(), std::fs::read(lexical.join("corpus.jsonl")).unwrap());
    let set = TeachingSet::generate(&TeachingConfig {
        passages: 300,
        train_queries: 60,
        dev_queries: 20,
        test_queries: 20,
        world: World::Paraphrase,
        ..TeachingConfig::default()
    })
    .unwrap();
    let test_q = qrels(&a.join("qrels/test.tsv"));
    let judged: usize = test_q.values().map(|j| j.len()).sum();
    let from_library: usize =
        set.queries.iter().filter(|q| q.id.starts_with("test-")).map(|q| q.judgements.len()).sum();
    assert_eq!(judged, from_library);
    let readme = std::fs::read_to_string(a.join("README.md")).unwrap();
    assert!(readme.contains("World `paraphrase`") && readme.contains("red / crimson / scarlet"), "{readme}");
    let o = adam(&["teaching-set", "--output", tmp.path("bad").to_str().unwrap(), "--world", "poetic"]);
    assert!(!o.status.success() && stderr(&o).contains("paraphrase"), "{}", stderr(&o));
}

#[test]
fn judgements_are_consistent_with_corpus_and_queries() {
    let tmp = TempDir::new("teaching-qrels");
    let dir = tmp.path("set");
    generate(&dir, &[]);
    let docs: HashSet<String> = ids(&dir.join("corpus.jsonl")).into_iter().collect();
    let queries = ids(&dir.join("queries.jsonl"));
    assert_eq!(docs.len(), 2000);
    assert_eq!(queries.len(), 1400);
    assert_eq!(queries.iter().collect::<HashSet<_>>().len(), 1400, "query ids are unique");

    let mut all_queries = HashSet::new();
    for (split, expected) in [("train", 1000), ("dev", 200), ("test", 200)] {
        let q = qrels(&dir.join(format!("qrels/{split}.tsv")));
        assert_eq!(q.len(), expected, "{split}: every query is judged");
        let mut with_partial = 0;
        for (qid, judged) in &q {
            assert!(all_queries.insert(qid.clone()), "{qid} is in two splits");
            assert!(queries.contains(qid), "{qid} not in queries.jsonl");
            assert!(judged.keys().all(|d| docs.contains(d)), "{qid} judges a passage not in the corpus");
            assert!(judged.values().any(|g| *g == 2), "{split} query {qid} has no relevant passage");
            if judged.values().any(|g| *g == 1) {
                with_partial += 1;
            }
        }
        if split == "train" {
            assert_eq!(with_partial, 0, "no grade-1 judgements in train");
        } else {
            assert!(
                with_partial * 10 >= expected * 9,
                "{split}: only {with_partial} of {expected} queries have a partial match"
            );
        }
    }

    // The library agrees with the files, and partial passages really miss one asked value.
    let set = TeachingSet::generate(&TeachingConfig::default()).unwrap();
    let test_q = qrels(&dir.join("qrels/test.tsv"));
    for q in set.queries.iter().filter(|q| q.id.starts_with("test-")) {
        for (&p, &grade) in &q.judgements {
            assert_eq!(test_q[&q.id][&set.passages[p].id], grade);
            let stated = &set.passages[p].stated;
            let matched = q.asked.iter().filter(|(a, v)| stated.get(a) == Some(v)).count();
            assert_eq!(matched + (2 - grade as usize), q.asked.len(), "{} {}", q.id, set.passages[p].id);
        }
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("grade 2") && readme.contains("--rel-threshold 2"), "{readme}");
}

#[test]
fn tokenizer_json_round_trips_through_text_tokenizer() {
    let tmp = TempDir::new("teaching-tok");
    let dir = tmp.path("set");
    generate(
        &dir,
        &[
            "--passages", "400", "--train-queries", "100", "--dev-queries", "20", "--test-queries", "20",
            "--vocab-size", "800", "--seed", "5",
        ],
    );
    let json = std::fs::read(dir.join("tokenizer.json")).unwrap();
    let loaded = TextTokenizer::from_bytes(&json, &dir.join("tokenizer.json"), 128).unwrap();
    let special = loaded.special();
    assert_eq!((special.pad, special.unk, special.cls, special.sep, special.mask), (0, 1, 2, 3, 4));
    assert!(loaded.vocab_size() <= 800 && loaded.vocab_size() > 300, "{}", loaded.vocab_size());

    // The same set and trainer in memory.
    let set = TeachingSet::generate(&TeachingConfig {
        seed: 5,
        passages: 400,
        train_queries: 100,
        dev_queries: 20,
        test_queries: 20,
        ..TeachingConfig::default()
    })
    .unwrap();
    let texts = set.texts();
    let trained = train_wordpiece(&texts, &WordPieceConfig { vocab_size: 800, ..Default::default() }).unwrap();
    let sample: Vec<&str> = texts.iter().step_by(7).map(String::as_str).collect();
    let batch = loaded.encode(&sample).unwrap();
    for (i, text) in sample.iter().enumerate() {
        let want = trained.encode(*text, true).unwrap();
        let want: Vec<u32> = want.get_ids().iter().copied().take(128).collect();
        let got = batch.row(i);
        if want.len() < 128 {
            assert_eq!(got, want.as_slice(), "{text}");
        }
        assert!(!got.contains(&special.unk), "[UNK] in {text}");
        assert_eq!((got[0], *got.last().unwrap()), (special.cls, special.sep));
    }
    // Pairs: [CLS] query [SEP] passage [SEP] with type ids 0 then 1.
    let q = &set.queries[0].text;
    let p = &set.passages[0].text;
    let pair = loaded.encode_pairs(&[(q.as_str(), p.as_str())]).unwrap();
    let want = trained.encode((q.as_str(), p.as_str()), true).unwrap();
    if want.len() <= 128 {
        assert_eq!(pair.row(0), want.get_ids());
        assert_eq!(&pair.type_ids[..want.len()], want.get_type_ids());
    }
}

/// `--profiles` writes the world behind the text, and `adam teacher train --profiles` learns to
/// read from it: its log carries the reading heads' losses, and what it saves is a plain
/// cross-encoder that reranks.
#[test]
fn profiles_train_a_reading_teacher_that_saves_a_plain_cross_encoder() {
    let tmp = TempDir::new("teaching-profiles");
    let dir = tmp.path("set");
    let small = ["--passages", "200", "--train-queries", "24", "--dev-queries", "8", "--test-queries", "8"];
    generate(&dir, &[&["--world", "paraphrase", "--profiles"][..], &small[..]].concat());
    let profiles = std::fs::read_to_string(dir.join("profiles.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = profiles.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7 + 200 + 40, "7 attributes, every passage, every query");
    assert_eq!(lines[2]["attribute"], "colour");
    assert_eq!(lines[2]["forms"][0], serde_json::json!(["red", "crimson", "scarlet"]));
    let without = tmp.path("plain");
    generate(&without, &small);
    assert!(!without.join("profiles.jsonl").exists(), "profiles only when asked for");

    let s = |p: &Path| p.to_str().unwrap().to_string();
    let negatives = tmp.path("negatives.jsonl");
    let o = adam(&["negatives", "--data", &s(&dir), "--split", "train", "--output", &s(&negatives), "--top-k", "7"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = tmp.path("config.json");
    std::fs::write(
        &config,
        r#"{"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 2000, "hidden_size": 16,
            "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 32,
            "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0, "initializer_range": 0.1}"#,
    )
    .unwrap();
    let (teacher, log) = (tmp.path("teacher"), tmp.path("teacher.jsonl"));
    let train = |extra: &[&str]| {
        let mut args = vec![
            "teacher".to_string(),
            "train".into(),
            "--config".into(),
            s(&config),
            "--tokenizer".into(),
            s(&dir.join("tokenizer.json")),
            "--data".into(),
            s(&dir),
            "--negatives".into(),
            s(&negatives),
            "--output".into(),
            s(&teacher),
            "--max-length".into(),
            "64".into(),
            "--group-size".into(),
            "4".into(),
            "--batch-size".into(),
            "4".into(),
            "--steps".into(),
            "3".into(),
            "--lr".into(),
            "1e-3".into(),
            "--log".into(),
            s(&log),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        adam(&args)
    };
    let profiles = s(&dir.join("profiles.jsonl"));
    let o = train(&["--profiles", &profiles, "--match-layer", "4"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--match-layer 4: the model has layers 1 to 3"),
        "{}",
        stderr(&o)
    );
    let o = train(&["--graded", "3"]);
    assert!(!o.status.success() && stderr(&o).contains("--profiles"), "--graded needs the profiles: {}", stderr(&o));
    let o = train(&["--profiles", &profiles, "--graded", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let steps: Vec<serde_json::Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(steps.len(), 3);
    for step in &steps {
        for part in ["rank", "value", "role", "match", "states"] {
            assert!(step[part].as_f64().is_some_and(f64::is_finite), "{part} in {step}");
        }
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(teacher.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["architectures"][0], "BertForSequenceClassification");
    let run = tmp.path("bm25.run");
    let o = adam(&[
        "negatives",
        "--data",
        &s(&dir),
        "--split",
        "test",
        "--output",
        &s(&tmp.path("n.jsonl")),
        "--top-k",
        "1",
        "--rel-threshold",
        "2",
        "--run",
        &s(&run),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = adam(&[
        "teacher",
        "rerank",
        "--model",
        &s(&teacher),
        "--data",
        &s(&dir),
        "--split",
        "test",
        "--run",
        &s(&run),
        "--depth",
        "10",
        "--output",
        &s(&tmp.path("teacher.run")),
        "--max-length",
        "64",
    ]);
    assert!(o.status.success(), "the saved teacher reranks as a plain cross-encoder: {}", stderr(&o));
}
