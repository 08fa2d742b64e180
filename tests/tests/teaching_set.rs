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
