//! The training commands as a user runs them, on a few WikiQA queries: `teacher train` lowers
//! its loss, `teacher score` resumes an interrupted cache, `distill` runs every method, a killed
//! and resumed distillation ends exactly like an uninterrupted one, and config mistakes are
//! errors that name the TOML key.
//!
//! One teacher (all-MiniLM-L6-v2 with a new head, a few steps) and its score cache are made once
//! per test binary; students are tiny BERTs trained from scratch.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use adam_tests::{adam, fixture, stderr, stdout};

const QUERIES: usize = 8;

struct Setup {
    dir: PathBuf,
    data: PathBuf,
    teacher: PathBuf,
    negatives: PathBuf,
    cache: PathBuf,
    teacher_log: PathBuf,
    tokenizer: PathBuf,
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run_ok(args: &[&str]) -> String {
    let out = adam(args);
    assert!(out.status.success(), "adam {}: {}", args.join(" "), stderr(&out));
    stdout(&out)
}

/// A negatives file for the first WikiQA train queries: the positives from the qrels, and as
/// hard negatives the sentences next to a positive in the corpus (same Wikipedia page).
fn write_negatives(data: &Path, path: &Path, queries: usize) {
    let corpus = std::fs::read_to_string(data.join("corpus.jsonl")).unwrap();
    let ids: Vec<String> = corpus
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["_id"].as_str().unwrap().to_string())
        .collect();
    let index: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, d)| (d.as_str(), i)).collect();
    let qrels = std::fs::read_to_string(data.join("qrels/train.tsv")).unwrap();
    let mut order: Vec<String> = Vec::new();
    let mut positives: HashMap<String, Vec<String>> = HashMap::new();
    for line in qrels.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if !positives.contains_key(f[0]) {
            order.push(f[0].to_string());
        }
        positives.entry(f[0].to_string()).or_default().push(f[1].to_string());
    }
    let mut out = String::new();
    for q in order.iter().take(queries) {
        let pos = &positives[q];
        let pos_set: HashSet<&str> = pos.iter().map(String::as_str).collect();
        let mut negs: Vec<(usize, &str)> = Vec::new();
        for p in pos {
            let i = index[p.as_str()];
            for (j, id) in ids.iter().enumerate().take(i + 5).skip(i.saturating_sub(4)) {
                if !pos_set.contains(id.as_str()) && !negs.iter().any(|(_, d)| d == id) {
                    negs.push((i.abs_diff(j), id));
                }
            }
        }
        negs.sort();
        let record = serde_json::json!({
            "query_id": q,
            "positives": pos.iter().map(|d| serde_json::json!({"doc_id": d, "grade": 1})).collect::<Vec<_>>(),
            "negatives": negs.iter().enumerate().map(|(r, (dist, d))| serde_json::json!({"doc_id": d, "score": -(*dist as f64), "rank": r + 1})).collect::<Vec<_>>(),
        });
        out.push_str(&record.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

fn setup() -> Option<&'static Setup> {
    static SETUP: OnceLock<Option<Setup>> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let model = fixture("models/all-MiniLM-L6-v2")?;
            let data = fixture("data/wikiqa")?;
            let dir = adam_tests::process_dir("train");
            let negatives = dir.join("negatives.jsonl");
            write_negatives(&data, &negatives, QUERIES);
            let teacher = dir.join("teacher");
            let teacher_log = dir.join("teacher-log.jsonl");
            run_ok(&[
                "teacher",
                "train",
                "--model",
                s(&model),
                "--new-head",
                "--data",
                s(&data),
                "--negatives",
                s(&negatives),
                "--output",
                s(&teacher),
                "--epochs",
                "5",
                "--batch-size",
                "4",
                "--group-size",
                "4",
                "--negatives-depth",
                "6",
                "--lr",
                "3e-4",
                "--head-lr",
                "1e-2",
                "--warmup-ratio",
                "0",
                "--max-length",
                "64",
                "--log",
                s(&teacher_log),
            ]);
            let cache = dir.join("scores.jsonl");
            run_ok(&[
                "teacher",
                "score",
                "--model",
                s(&teacher),
                "--data",
                s(&data),
                "--negatives",
                s(&negatives),
                "--output",
                s(&cache),
                "--negatives-per-query",
                "3",
                "--max-length",
                "64",
                "--query-batch",
                "3",
            ]);
            Some(Setup { dir, data, teacher, negatives, cache, teacher_log, tokenizer: model.join("tokenizer.json") })
        })
        .as_ref()
}

/// What the distillation of `config` ended with: its log and its student's weights.
fn result(config: &Path) -> (String, Vec<u8>) {
    let run = config.parent().unwrap().join("run");
    (
        std::fs::read_to_string(run.join("log.jsonl")).unwrap(),
        std::fs::read(run.join("student/model.safetensors")).unwrap(),
    )
}

fn log_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn teacher_train_lowers_the_loss_and_saves_a_cross_encoder() {
    let Some(setup) = setup() else { return };
    let log = log_lines(&setup.teacher_log);
    assert_eq!(log.len(), 10, "5 epochs of 2 steps");
    let loss = |i: usize| log[i]["loss"].as_f64().unwrap();
    let first = (loss(0) + loss(1)) / 2.0;
    let last = (loss(8) + loss(9)) / 2.0;
    assert!((first - 4f64.ln()).abs() < 0.5, "a new head starts near ln(4): {first}");
    assert!(last < 0.6 * first, "loss did not fall: first epoch {first}, last epoch {last}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(setup.teacher.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
}

#[test]
fn teacher_score_caches_scores_and_dark_examples() {
    let Some(setup) = setup() else { return };
    let text = std::fs::read_to_string(&setup.cache).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1 + QUERIES);
    assert_eq!(lines[0]["adam_teacher_scores"], 1);
    for r in &lines[1..] {
        assert_eq!(r["negatives"].as_array().unwrap().len(), 3);
        let dark = r["dark"].as_array().unwrap();
        assert_eq!(dark.len(), 4, "2 noisy positives, 1 mixed, 1 query-mixed negative");
        for d in dark {
            assert!(d["teacher_score"].as_f64().unwrap().is_finite());
            assert!(!d["ids"].as_array().unwrap().is_empty() && !d["edits"].as_array().unwrap().is_empty());
        }
    }
}

#[test]
fn teacher_score_resumes_an_interrupted_cache() {
    let Some(setup) = setup() else { return };
    let dir = setup.dir.join("resume-score");
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("scores.jsonl");
    let score = |negatives_per_query: &str, extra: &[&str]| {
        let mut args = vec![
            "teacher",
            "score",
            "--model",
            s(&setup.teacher),
            "--data",
            s(&setup.data),
            "--negatives",
            s(&setup.negatives),
            "--output",
            s(&cache),
            "--negatives-per-query",
            negatives_per_query,
            "--max-length",
            "64",
            "--query-batch",
            "3",
        ];
        args.extend_from_slice(extra);
        adam(&args)
    };
    // Interrupted after three queries, with a torn fourth line.
    let out = score("3", &["--max-queries", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let partial = std::fs::read_to_string(&cache).unwrap();
    assert_eq!(partial.lines().count(), 4);
    std::fs::write(&cache, format!("{partial}{{\"query_id\":\"tr")).unwrap();
    let out = score("3", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("3 queries done"), "{}", stderr(&out));
    let resumed = std::fs::read_to_string(&cache).unwrap();
    assert!(resumed.starts_with(&partial), "done queries were rewritten");
    // Same query batches (3 done, then 3 + 2) as the single run, so the same scores.
    assert!(resumed == std::fs::read_to_string(&setup.cache).unwrap(), "resumed cache differs from a single run");
    // Other settings may not be mixed into the same file.
    let out = score("2", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("negatives_per_query"), "{}", stderr(&out));
}

#[test]
fn a_resumed_teacher_ends_like_an_uninterrupted_one() {
    let Some(setup) = setup() else { return };
    let dir = setup.dir.join("teacher-resume");
    std::fs::create_dir_all(&dir).unwrap();
    // A tiny teacher from scratch with dropout (so the random masks must resume too), two
    // micro-batches per step (so must the data position), 6 steps, a checkpoint every 2.
    let config = tiny_config(&dir, 0.1);
    let train = |name: &str, extra: &[&str]| {
        let mut extra = extra.to_vec();
        extra.extend(["--warmup-ratio", "0.2", "--checkpoint-every", "2"]);
        let args = tiny_teacher_args(setup, &config, &dir.join(name), "6", &extra);
        adam(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let whole = train("whole", &[]);
    assert!(whole.status.success(), "{}", stderr(&whole));
    // Killed after step 5: the last checkpoint is step 4, and the log already has step 5.
    let cut = train("cut", &["--halt-after-step", "5"]);
    assert!(cut.status.success(), "{}", stderr(&cut));
    assert!(!dir.join("cut").exists(), "a halted run wrote the teacher");
    assert!(dir.join("cut.checkpoint/state.json").is_file());
    assert_eq!(log_lines(&dir.join("cut.jsonl")).len(), 5);
    // Without --resume the checkpoint is not overwritten; with other options it is refused.
    let refused = train("cut", &[]);
    assert!(!refused.status.success() && stderr(&refused).contains("--resume"), "{}", stderr(&refused));
    let other = train("cut", &["--resume", "--seed", "43"]);
    assert!(!other.status.success() && stderr(&other).contains("seed"), "{}", stderr(&other));
    let resumed = train("cut", &["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("resuming at step 4 of 6"), "{}", stderr(&resumed));
    assert!(!dir.join("cut.checkpoint").exists(), "a finished run keeps its checkpoint");

    let text = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    assert_eq!(text("whole.jsonl").lines().count(), 6);
    assert_eq!(text("whole.jsonl"), text("cut.jsonl"), "losses of the resumed run differ");
    let weights = |name: &str| std::fs::read(dir.join(name).join("model.safetensors")).unwrap();
    assert!(weights("whole") == weights("cut"), "final weights differ");
}

#[test]
fn pretraining_lowers_the_masked_word_loss_and_starts_a_teacher() {
    let Some(setup) = setup() else { return };
    let dir = setup.dir.join("pretrain");
    std::fs::create_dir_all(&dir).unwrap();
    let config = tiny_config(&dir, 0.0);
    let pretrain = |name: &str| {
        let (output, log) = (dir.join(name), dir.join(format!("{name}.log.jsonl")));
        let out = adam(&[
            "teacher",
            "pretrain",
            "--config",
            s(&config),
            "--tokenizer",
            s(&setup.tokenizer),
            "--data",
            s(&setup.data),
            "--output",
            s(&output),
            "--steps",
            "30",
            "--batch-size",
            "16",
            "--max-length",
            "32",
            "--lr",
            "3e-3",
            "--log",
            s(&log),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        // The texts: every passage and the queries of the train qrels, none of another split's.
        let passages = std::fs::read_to_string(setup.data.join("corpus.jsonl")).unwrap().lines().count();
        let qrels = std::fs::read_to_string(setup.data.join("qrels/train.tsv")).unwrap();
        let queries: HashSet<&str> = qrels.lines().skip(1).map(|l| l.split('\t').next().unwrap()).collect();
        let texts = format!("on {} texts", passages + queries.len());
        assert!(stderr(&out).contains(&texts), "not {texts}: {}", stderr(&out));
        (std::fs::read(output.join("model.safetensors")).unwrap(), log_lines(&log))
    };
    let (weights, log) = pretrain("mlm");
    assert_eq!(log.len(), 30);
    let mean =
        |r: std::ops::Range<usize>| r.clone().map(|i| log[i]["loss"].as_f64().unwrap()).sum::<f64>() / r.len() as f64;
    // 30,522 pieces: a model that knows nothing starts near ln 30522 = 10.3.
    assert!((mean(0..3) - 30522f64.ln()).abs() < 1.0, "first steps: {}", mean(0..3));
    assert!(mean(25..30) < mean(0..3) - 0.5, "the loss did not fall: {} → {}", mean(0..3), mean(25..30));
    let (again, _) = pretrain("mlm-again");
    assert!(weights == again, "the same seed gave other weights");
    // The folder is a bare BERT: a teacher starts from it with a new head.
    run_ok(&[
        "teacher",
        "train",
        "--model",
        s(&dir.join("mlm")),
        "--new-head",
        "--data",
        s(&setup.data),
        "--negatives",
        s(&setup.negatives),
        "--output",
        s(&dir.join("teacher")),
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--group-size",
        "4",
        "--max-length",
        "48",
    ]);
    // Without --new-head the missing head is named, with the way out.
    let out = adam(&[
        "teacher",
        "train",
        "--model",
        s(&dir.join("mlm")),
        "--data",
        s(&setup.data),
        "--negatives",
        s(&setup.negatives),
        "--output",
        s(&dir.join("no-head")),
        "--steps",
        "1",
    ]);
    assert!(!out.status.success() && stderr(&out).contains("--new-head"), "{}", stderr(&out));
}

/// `adam teacher train` of a tiny teacher from scratch (`config`) on the setup's negatives: `steps`
/// steps of two micro-batches of 2 groups of 4, into `output` with its log at `output.jsonl`,
/// then `extra`.
fn tiny_teacher_args(setup: &Setup, config: &Path, output: &Path, steps: &str, extra: &[&str]) -> Vec<String> {
    let log = output.with_extension("jsonl");
    let mut args = vec![
        "teacher",
        "train",
        "--config",
        s(config),
        "--tokenizer",
        s(&setup.tokenizer),
        "--data",
        s(&setup.data),
        "--negatives",
        s(&setup.negatives),
        "--output",
        s(output),
        "--log",
        s(&log),
        "--steps",
        steps,
        "--batch-size",
        "2",
        "--grad-accumulation",
        "2",
        "--group-size",
        "4",
        "--negatives-depth",
        "6",
        "--lr",
        "1e-3",
        "--max-length",
        "48",
    ];
    args.extend(extra);
    args.into_iter().map(String::from).collect()
}

/// A tiny BERT config (vocabulary of all-MiniLM-L6-v2's tokenizer).
fn tiny_config(dir: &Path, dropout: f64) -> PathBuf {
    let path = dir.join("tiny-config.json");
    let config = serde_json::json!({
        "vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 128, "hidden_dropout_prob": dropout,
        "attention_probs_dropout_prob": dropout, "model_type": "bert",
    });
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// A distillation config for a tiny student from scratch.
fn distill_config(setup: &Setup, name: &str, method: &str, extra: &str) -> PathBuf {
    let dir = setup.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = tiny_config(&dir, 0.1);
    let text = format!(
        r#"method = "{method}"
seed = 7
output = "run"

[data]
dir = "{data}"
teacher_scores = "{cache}"

[student]
config = "{config}"
tokenizer = "{tokenizer}"
max_query_length = 24
max_passage_length = 48

[train]
steps = 4
batch_size = 4
negatives = 2

[optimizer]
lr = 1e-3
warmup_steps = 1

[eval]
every = 2
split = "test"
max_queries = 5
corpus_limit = 100
{extra}"#,
        data = s(&setup.data),
        cache = s(&setup.cache),
        config = s(&config),
        tokenizer = s(&setup.tokenizer),
    );
    let path = dir.join("distill.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn distill_runs_every_method() {
    let Some(setup) = setup() else { return };
    for method in ["ce", "kd", "margin-mse", "adam", "adam-no-self-paced", "adam-no-dark"] {
        let config = distill_config(setup, &format!("method-{method}"), method, "");
        let out = run_ok(&["distill", "--config", s(&config)]);
        let run = config.parent().unwrap().join("run");
        let log = log_lines(&run.join("log.jsonl"));
        assert_eq!(log.len(), 4, "{method}: one log line per step");
        for (i, line) in log.iter().enumerate() {
            assert_eq!(line["step"], i + 1);
            assert!(line["loss"].as_f64().unwrap().is_finite(), "{method}: {line}");
            assert!(line["lr"].as_f64().unwrap() > 0.0);
            assert_eq!(line.get("dev").is_some(), i % 2 == 1, "{method}: dev metrics every 2 steps");
        }
        let has = |k: &str| log[0].get(k).is_some();
        assert_eq!(has("contrastive"), !matches!(method, "kd" | "margin-mse"), "{method}");
        assert_eq!(has("kd"), method != "ce", "{method}");
        assert_eq!(has("lambda"), method.starts_with("adam"), "{method}");
        if method == "adam" {
            let lambda: Vec<f64> = log.iter().map(|l| l["lambda"].as_f64().unwrap()).collect();
            assert!((lambda[0] - 0.5).abs() < 1e-6 && lambda.windows(2).all(|w| w[1] > w[0]), "{lambda:?}");
            assert_eq!(log[0]["kept"], 2, "half of 4 queries at lambda0 = 0.5");
        }
        if method == "adam-no-self-paced" {
            assert!(log.iter().all(|l| l["kept"] == 4));
        }
        assert_eq!(has("dark"), method == "adam" || method == "adam-no-self-paced", "{method}");
        if has("dark") {
            // The cache's dark examples reach the loss: 4 queries with 4 dark examples each.
            assert!(log.iter().all(|l| l["dark"].as_u64().unwrap() > 0 && l["dark_dropped"] == 0), "{log:?}");
        }
        let dev: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
        // The measures printed at the end are the last dev evaluation of the log.
        assert_eq!(dev["dev"], log[3]["dev"], "{method}");
        assert!(dev["dev"]["ndcg@10"].is_f64(), "{dev}");
        assert!(!run.join("checkpoint").exists(), "a finished run leaves no checkpoint");
        // The saved student embeds through the CLI.
        std::fs::write(run.join("texts.txt"), "where is the glacier\n").unwrap();
        run_ok(&[
            "embed",
            "--model",
            s(&run.join("student")),
            "--input",
            s(&run.join("texts.txt")),
            "--output",
            s(&run.join("vectors.jsonl")),
        ]);
        let v: Vec<f32> =
            serde_json::from_str(std::fs::read_to_string(run.join("vectors.jsonl")).unwrap().trim()).unwrap();
        assert_eq!(v.len(), 32);
    }
}

#[test]
fn resumed_distillation_ends_like_an_uninterrupted_one() {
    let Some(setup) = setup() else { return };
    let extra = "[checkpoint]\nevery = 2\n";
    let accumulate = |p: PathBuf| {
        // Two micro-batches per step: covers gradient accumulation and the data position.
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("warmup_steps = 1", "warmup_steps = 1\ngrad_accumulation = 2")
            .replace("steps = 4", "steps = 5");
        std::fs::write(&p, text).unwrap();
        p
    };
    let whole = accumulate(distill_config(setup, "resume-whole", "adam", extra));
    run_ok(&["distill", "--config", s(&whole)]);
    let cut = accumulate(distill_config(setup, "resume-cut", "adam", extra));
    // Killed after step 3: the last checkpoint is step 2, and the log already has step 3.
    run_ok(&["distill", "--config", s(&cut), "--halt-after-step", "3"]);
    let run_cut = cut.parent().unwrap().join("run");
    assert_eq!(log_lines(&run_cut.join("log.jsonl")).len(), 3);
    assert!(run_cut.join("checkpoint/state.json").is_file());
    // Without --resume an existing checkpoint is not overwritten.
    let refused = adam(&["distill", "--config", s(&cut)]);
    assert!(!refused.status.success() && stderr(&refused).contains("--resume"), "{}", stderr(&refused));
    // Killed between the two renames that replace a checkpoint: the old one waits beside.
    std::fs::rename(run_cut.join("checkpoint"), run_cut.join(".checkpoint.old-999999")).unwrap();
    let out = adam(&["distill", "--config", s(&cut), "--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("resuming at step 2") && stderr(&out).contains("restored"), "{}", stderr(&out));

    let run_whole = whole.parent().unwrap().join("run");
    let a = std::fs::read_to_string(run_whole.join("log.jsonl")).unwrap();
    let b = std::fs::read_to_string(run_cut.join("log.jsonl")).unwrap();
    assert_eq!(a.lines().count(), 5);
    assert_eq!(a, b, "losses / metrics of the resumed run differ");
    let weights = |r: &Path| std::fs::read(r.join("student/model.safetensors")).unwrap();
    assert!(weights(&run_whole) == weights(&run_cut), "final weights differ");
}

#[test]
fn a_run_killed_at_any_step_resumes_to_the_same_result() {
    let Some(setup) = setup() else { return };
    // A checkpoint after every step, so that kills land in and around checkpoint writes.
    let config = |name: &str| {
        let p = distill_config(setup, name, "adam", "[checkpoint]\nevery = 1\n");
        let text = std::fs::read_to_string(&p).unwrap().replace("steps = 4", "steps = 6");
        std::fs::write(&p, text).unwrap();
        p
    };
    let whole = config("kill-whole");
    let out = adam(&["distill", "--config", s(&whole)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = result(&whole);
    // SIGKILL (no destructors, no flushing) as soon as step k's log line appears: step k's
    // checkpoint is then being written, and step k - 1's is complete. Then --resume.
    let mut resumed = 0;
    for k in 1..=5 {
        let cut = config(&format!("kill-{k}"));
        let log = cut.parent().unwrap().join("run/log.jsonl");
        let mut child = std::process::Command::new(adam_tests::adam_bin())
            .args(["distill", "--config", s(&cut)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < k {
            assert!(start.elapsed().as_secs() < 300, "step {k} never logged");
            assert!(child.try_wait().unwrap().is_none(), "the run ended before step {k}");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let out = adam(&["distill", "--config", s(&cut), "--resume"]);
        assert!(out.status.success(), "killed at step {k}, then --resume: {}", stderr(&out));
        assert!(result(&cut) == expected, "killed at step {k}: the resumed run ends elsewhere");
        resumed += usize::from(stderr(&out).contains("resuming at step"));
    }
    assert!(resumed >= 4, "only {resumed} of the kills after a complete checkpoint resumed from it");
}

#[test]
fn distill_config_errors_name_the_key() {
    let Some(setup) = setup() else { return };
    let cases: [(&str, &str, &str); 6] = [
        ("batch_size = 4", "bath_size = 4", "bath_size"),
        ("batch_size = 4", "batch_size = 0", "train.batch_size"),
        ("lr = 1e-3", "lr = -1.0", "optimizer.lr"),
        ("lr = 1e-3", "lr = \"fast\"", "lr"),
        ("method = \"adam\"", "method = \"adamw\"", "method"),
        ("corpus_limit = 100", "corpus_limit = 100\n[adam.dark]\nband_low = 2.0", "band_low"),
    ];
    for (i, (from, to, key)) in cases.iter().enumerate() {
        let config = distill_config(setup, &format!("bad-{i}"), "adam", "");
        let text = std::fs::read_to_string(&config).unwrap().replacen(from, to, 1);
        std::fs::write(&config, text).unwrap();
        let out = adam(&["distill", "--config", s(&config)]);
        assert!(!out.status.success(), "{to} was accepted");
        let err = stderr(&out);
        assert!(err.contains(key) && err.contains("distill.toml"), "{to}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Syntax and type errors carry toml's line number.
    let config = distill_config(setup, "bad-line", "adam", "");
    let text = std::fs::read_to_string(&config).unwrap().replacen("lr = 1e-3", "lr = \"fast\"", 1);
    std::fs::write(&config, text).unwrap();
    assert!(stderr(&adam(&["distill", "--config", s(&config)])).contains("line 21"));
}

#[test]
fn dark_examples_outside_the_band_can_be_dropped() {
    let Some(setup) = setup() else { return };
    let cache = std::fs::read_to_string(&setup.cache).unwrap();
    let records: Vec<serde_json::Value> = cache.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
    let missed: usize = records
        .iter()
        .map(|r| r["dark"].as_array().unwrap().iter().filter(|d| d["band_reached"] == false).count())
        .sum();
    let total: usize = records.iter().map(|r| r["dark"].as_array().unwrap().len()).sum();
    assert!(
        missed > 0 && missed < total,
        "the fixture's cache has dark examples in and out of the band: {missed} of {total}"
    );
    let config = distill_config(setup, "drop-outside", "adam-no-self-paced", "");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "negatives = 2",
        "negatives = 2\ndrop_outside_band = true",
        1,
    );
    std::fs::write(&config, text).unwrap();
    let out = adam(&["distill", "--config", s(&config)]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("{} kept, {missed} dropped", total - missed)), "{err}");
    let log = log_lines(&config.parent().unwrap().join("run/log.jsonl"));
    let dropped: u64 = log.iter().map(|l| l["dark_dropped"].as_u64().unwrap()).sum();
    assert!(dropped > 0, "no step logged a dropped dark example: {log:?}");
}

#[test]
fn configs_that_cannot_run_are_refused_before_any_work() {
    let Some(setup) = setup() else { return };
    let cases = [
        ("adam-no-dark", "[adam.loss]\nkd_loss = \"margin_mse\"\n", "kd_loss = \"margin_mse\""),
        ("kd", "", "kd matches"),
        ("margin-mse", "", "margin-mse needs"),
    ];
    for (method, extra, says) in cases {
        let config = distill_config(setup, &format!("refused-{method}"), method, extra);
        let text = std::fs::read_to_string(&config).unwrap().replacen("negatives = 2", "negatives = 0", 1);
        std::fs::write(&config, text).unwrap();
        let out = adam(&["distill", "--config", s(&config)]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{method} with no negatives was accepted");
        assert!(err.contains("train.negatives = 0") && err.contains(says), "{method}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!config.parent().unwrap().join("run").exists(), "{method}: work started before the refusal");
    }
}

#[test]
fn a_loss_that_is_no_longer_a_number_stops_training_and_keeps_the_last_checkpoint() {
    let Some(setup) = setup() else { return };
    // A learning rate of 1e30 sends the weights past f32 range in one step; the next loss is NaN.
    let config = distill_config(setup, "nan", "adam", "[checkpoint]\nevery = 1\n");
    let text = std::fs::read_to_string(&config).unwrap().replacen("lr = 1e-3", "lr = 1e30\nmax_grad_norm = 1.0", 1);
    std::fs::write(&config, text).unwrap();
    let out = adam(&["distill", "--config", s(&config)]);
    let err = stderr(&out);
    assert!(!out.status.success(), "a NaN run succeeded: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let run = config.parent().unwrap().join("run");
    assert!(err.contains("training stopped at step 2") && err.contains("NaN"), "{err}");
    assert!(err.contains("batch queries: "), "the message names the batch's queries: {err}");
    assert!(err.contains(&format!("{} (step 1)", run.join("checkpoint").display())), "{err}");
    assert!(!run.join("student").exists(), "a NaN student was saved");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 1, "the checkpoint before the bad step is the one kept");
    assert_eq!(log_lines(&run.join("log.jsonl")).len(), 1, "no log line for the bad step");
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() { dir_size(&e.path()) } else { e.metadata().unwrap().len() }
        })
        .sum()
}

/// Unmounts a test's tmpfs however the test ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_training_with_a_clear_error_and_keeps_the_last_checkpoint() {
    let Some(setup) = setup() else { return };
    let config = |name: &str, output: &Path| {
        let p = distill_config(setup, name, "adam", "[checkpoint]\nevery = 1\n");
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("steps = 4", "steps = 6")
            .replace("output = \"run\"", &format!("output = \"{}\"", s(output)));
        std::fs::write(&p, text).unwrap();
        p
    };
    // On an ordinary disk: the expected result, and the size of one checkpoint (a completed
    // run removes its own, so a run halted after step 1 shows it).
    let whole_out = setup.dir.join("disk-whole-run");
    run_ok(&["distill", "--config", s(&config("disk-whole", &whole_out))]);
    let halted_out = setup.dir.join("disk-halted-run");
    run_ok(&["distill", "--config", s(&config("disk-halted", &halted_out)), "--halt-after-step", "1"]);
    let checkpoint = dir_size(&halted_out.join("checkpoint"));
    let result = |run: &Path| {
        (
            std::fs::read_to_string(run.join("log.jsonl")).unwrap(),
            std::fs::read(run.join("student/model.safetensors")).unwrap(),
        )
    };

    // A tmpfs with room for one checkpoint and a half: the first fits, the second cannot be
    // written beside it (a checkpoint is replaced only once its successor is complete).
    let mnt = setup.dir.join("disk-full-mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let size = |bytes: u64| format!("size={}k", bytes.div_ceil(1024));
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &size(checkpoint * 3 / 2 + 256 * 1024), "tmpfs", s(&mnt)])
        .stderr(std::process::Stdio::null())
        .status();
    if !matches!(mounted, Ok(status) if status.success()) {
        adam_tests::skipped("cannot mount a small tmpfs (needs root)");
        return;
    }
    let _unmount = Mounted(mnt.clone());
    let cut_out = mnt.join("run");
    let cut = config("disk-cut", &cut_out);
    let out = adam(&["distill", "--config", s(&cut)]);
    let err = stderr(&out);
    assert!(!out.status.success(), "a run on a full disk succeeded: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("No space left on device") && err.contains(s(&cut_out)),
        "the error names the cause and the path: {err}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cut_out.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 1, "the last complete checkpoint is kept");

    // Room again: --resume ends where the uninterrupted run ended.
    let grown = std::process::Command::new("mount")
        .args(["-o", &format!("remount,{}", size(checkpoint * 8 + 4 * 1024 * 1024)), s(&mnt)])
        .status()
        .unwrap();
    assert!(grown.success());
    let out = adam(&["distill", "--config", s(&cut), "--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("resuming at step 1"), "{}", stderr(&out));
    assert!(result(&cut_out) == result(&whole_out), "the resumed run ends elsewhere");
}

#[test]
fn dark_examples_in_another_vocabulary_of_the_same_size_are_refused() {
    let Some(setup) = setup() else { return };
    let header: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&setup.cache).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(header["vocab_hash"].as_str().map(str::len), Some(32), "{header}");
    // The teacher's vocabulary with two tokens' ids swapped: the same size, other pieces.
    let mut tokenizer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&setup.tokenizer).unwrap()).unwrap();
    let vocab = &mut tokenizer["model"]["vocab"];
    let (the, of) = (vocab["the"].clone(), vocab["of"].clone());
    vocab["the"] = of;
    vocab["of"] = the;
    let dir = setup.dir.join("swapped-vocab");
    std::fs::create_dir_all(&dir).unwrap();
    let swapped = dir.join("tokenizer.json");
    std::fs::write(&swapped, tokenizer.to_string()).unwrap();
    for (method, refused) in [("adam", true), ("adam-no-self-paced", true), ("kd", false)] {
        let config = distill_config(setup, &format!("swapped-{method}"), method, "");
        let text = std::fs::read_to_string(&config).unwrap().replacen(s(&setup.tokenizer), s(&swapped), 1);
        std::fs::write(&config, text).unwrap();
        let out = adam(&["distill", "--config", s(&config), "--halt-after-step", "1"]);
        let err = stderr(&out);
        if refused {
            assert!(!out.status.success(), "{method}: dark examples read in another vocabulary");
            assert!(
                err.contains("another vocabulary of the same size") && err.contains("--student-tokenizer"),
                "{err}"
            );
        } else {
            assert!(out.status.success(), "{method} has no dark examples and needs no shared vocabulary: {err}");
        }
    }
}

/// A tiny student folder (random weights, seeded, no dropout) written through the library, so
/// that every backend starts from the same weights.
fn tiny_student_folder(setup: &Setup, dir: &Path) -> PathBuf {
    use adam_core::config::{BertConfig, Pooling, SentenceConfig};
    use adam_core::model::BertModel;
    use adam_core::save::{SaveOptions, student_files, write_folder};
    use adam_core::tokenize::TextTokenizer;
    let config_path = tiny_config(dir, 0.0);
    let config = BertConfig::from_json(&std::fs::read(&config_path).unwrap(), &config_path).unwrap();
    let device = burn::tensor::Device::flex();
    device.seed(11);
    let bert = BertModel::new(&config, &device);
    let tokenizer = TextTokenizer::from_bytes(&std::fs::read(&setup.tokenizer).unwrap(), &setup.tokenizer, 64).unwrap();
    let sentence = SentenceConfig { pooling: Pooling::Mean, normalize: true, max_seq_length: 64 };
    let files = student_files(&bert, &config, &sentence, &tokenizer, &[], SaveOptions::default()).unwrap();
    let folder = dir.join("tiny-student");
    write_folder(&folder, &files).unwrap();
    folder
}

#[test]
fn wgpu_training_steps_agree_with_flex() {
    let Some(setup) = setup() else { return };
    let mut losses = Vec::new();
    for backend in ["flex", "wgpu"] {
        let config = distill_config(setup, &format!("backend-{backend}"), "adam", "");
        let dir = config.parent().unwrap().to_path_buf();
        let student = tiny_student_folder(setup, &dir);
        let text = std::fs::read_to_string(&config).unwrap();
        let start = text.find("config = ").unwrap();
        let end = text.find("max_query_length").unwrap();
        let text = format!("{}model = \"{}\"\n{}", &text[..start], s(&student), &text[end..]);
        // Dev evaluation is left out: it would dominate the time on a software GPU.
        let text = text[..text.find("[eval]").unwrap()].to_string();
        std::fs::write(&config, text).unwrap();
        run_ok(&["distill", "--config", s(&config), "--backend", backend]);
        let log = log_lines(&dir.join("run/log.jsonl"));
        let values: Vec<f64> =
            log.iter().flat_map(|l| ["loss", "contrastive", "kd"].map(|k| l[k].as_f64().unwrap())).collect();
        losses.push(values);
    }
    assert_eq!(losses[0].len(), 12);
    for (i, (f, w)) in losses[0].iter().zip(&losses[1]).enumerate() {
        assert!((f - w).abs() <= 1e-3 * f.abs().max(1.0), "value {i}: flex {f} vs wgpu {w}");
    }
}

/// A free TCP port on loopback, for a data-parallel run's coordinator.
fn free_coordinator() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
}

/// `adam ARGS --peers N --rank R --coordinator ADDR` for every rank at once, as N processes on
/// loopback; `per_rank(r)` adds a rank's own flags. The outputs come back by rank.
fn run_peers(args: &[&str], peers: usize, per_rank: impl Fn(usize) -> Vec<String>) -> Vec<std::process::Output> {
    let addr = free_coordinator();
    let children: Vec<std::process::Child> = (0..peers)
        .map(|rank| {
            std::process::Command::new(adam_tests::adam_bin())
                .args(args)
                .args(["--peers", &peers.to_string(), "--rank", &rank.to_string(), "--coordinator", &addr])
                .args(["--peer-timeout", "60"])
                .args(per_rank(rank))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

/// A distillation of 4 steps of 2 micro-batches, checkpointed every step: with 2 peers each
/// computes one micro-batch of every step.
fn data_parallel_config(setup: &Setup, name: &str) -> PathBuf {
    let p = distill_config(setup, name, "adam", "[checkpoint]\nevery = 1\n");
    let text =
        std::fs::read_to_string(&p).unwrap().replace("warmup_steps = 1", "warmup_steps = 1\ngrad_accumulation = 2");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn data_parallel_distillation_ends_like_one_process_and_resumes() {
    let Some(setup) = setup() else { return };
    let one = data_parallel_config(setup, "dp-one");
    run_ok(&["distill", "--config", s(&one)]);
    let expected = result(&one);

    // Two processes, each with half of every step's micro-batches (dropout on: each micro-batch
    // draws its masks from its own seed). Two gradients add up alike in either order, so the
    // weights and the log are the same bytes as one process's, not merely close.
    let two = data_parallel_config(setup, "dp-two");
    let outs = run_peers(&["distill", "--config", s(&two)], 2, |_| Vec::new());
    for (rank, out) in outs.iter().enumerate() {
        assert!(out.status.success(), "peer {rank}: {}", stderr(out));
    }
    assert!(stderr(&outs[1]).contains("peer 1 done"), "{}", stderr(&outs[1]));
    let got = result(&two);
    assert_eq!(got.0, expected.0, "the data-parallel log differs from one process's");
    assert!(got.1 == expected.1, "the data-parallel student differs from one process's");

    // Both stopped after step 2, then started again (peer 0 with --resume; peer 1 is given peer
    // 0's weights, optimizer and step): the same end.
    let cut = data_parallel_config(setup, "dp-cut");
    let halted = run_peers(&["distill", "--config", s(&cut), "--halt-after-step", "2"], 2, |_| Vec::new());
    assert!(halted.iter().all(|o| o.status.success()), "{}", stderr(&halted[0]));
    assert!(cut.parent().unwrap().join("run/checkpoint/state.json").is_file());
    let resumed = run_peers(&["distill", "--config", s(&cut)], 2, |rank| {
        if rank == 0 { vec!["--resume".to_string()] } else { Vec::new() }
    });
    for (rank, out) in resumed.iter().enumerate() {
        assert!(out.status.success(), "peer {rank}: {}", stderr(out));
    }
    assert!(stderr(&resumed[0]).contains("resuming at step 2"), "{}", stderr(&resumed[0]));
    assert!(result(&cut) == expected, "the resumed data-parallel run ends elsewhere");
}

/// Workers (a step's micro-batches computed at once in one process, one per core) change
/// nothing: dropout on, 2 micro-batches per step, for distillation and teacher training alike.
#[test]
fn workers_train_the_same_bytes_as_one_thread() {
    let Some(setup) = setup() else { return };
    let one = data_parallel_config(setup, "workers-1");
    let out = adam(&["distill", "--config", s(&one), "--workers", "1"]);
    assert!(out.status.success() && !stderr(&out).contains("workers:"), "{}", stderr(&out));
    let two = data_parallel_config(setup, "workers-2");
    let out = adam(&["distill", "--config", s(&two), "--workers", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 workers: 2 micro-batches of each step at once"), "{}", stderr(&out));
    let (got, expected) = (result(&two), result(&one));
    assert_eq!(got.0, expected.0, "the log of 2 workers differs from 1 worker's");
    assert!(got.1 == expected.1, "the student of 2 workers differs from 1 worker's");

    let dir = setup.dir.join("workers-teacher");
    std::fs::create_dir_all(&dir).unwrap();
    let config = tiny_config(&dir, 0.1);
    let teacher = |name: &str, workers: &str| {
        let out = dir.join(name);
        let a = tiny_teacher_args(setup, &config, &out, "3", &["--workers", workers]);
        run_ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
        (log_lines(&out.with_extension("jsonl")), std::fs::read(out.join("model.safetensors")).unwrap())
    };
    let (one, two) = (teacher("one", "1"), teacher("two", "2"));
    assert_eq!(two.0, one.0);
    assert!(two.1 == one.1, "the teachers of 1 and 2 workers differ");
}

#[test]
fn a_peer_that_dies_or_differs_stops_the_others_with_a_clear_error() {
    let Some(setup) = setup() else { return };
    // Peer 1 stops after step 2 (as if killed): peer 0 fails at step 3's exchange, naming it, and
    // keeps its step-2 checkpoint; no student is saved.
    let config = data_parallel_config(setup, "dp-dead");
    let outs = run_peers(&["distill", "--config", s(&config)], 2, |rank| {
        if rank == 1 { vec!["--halt-after-step".to_string(), "2".to_string()] } else { Vec::new() }
    });
    // "lost", not "did not answer within 60 s": peer 0 learnt of it at once, without waiting.
    let err = stderr(&outs[0]);
    assert!(!outs[0].status.success(), "{err}");
    assert!(err.contains("lost peer 1 during step 3's gradient exchange"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let run = config.parent().unwrap().join("run");
    assert!(!run.join("student").exists(), "a student was saved without every peer's gradients");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 2);

    // A peer started with another seed: both refuse before any step, naming the key.
    let config = data_parallel_config(setup, "dp-differs");
    let other = data_parallel_config(setup, "dp-differs-1");
    let text = std::fs::read_to_string(&other).unwrap().replace("seed = 7", "seed = 8");
    std::fs::write(&other, text).unwrap();
    let outs = run_peers(&["distill"], 2, |rank| {
        vec!["--config".to_string(), s(if rank == 0 { &config } else { &other }).to_string()]
    });
    for out in &outs {
        let err = stderr(out);
        assert!(!out.status.success() && err.contains("seed: 8 there, 7 on peer 0"), "{err}");
    }
    assert!(
        !config.parent().unwrap().join("run/log.jsonl").exists()
            || log_lines(&config.parent().unwrap().join("run/log.jsonl")).is_empty()
    );

    // A step's micro-batches must split evenly among the peers.
    let uneven = distill_config(setup, "dp-uneven", "adam", "");
    let out = adam(&["distill", "--config", s(&uneven), "--peers", "2", "--rank", "1"]);
    assert!(!out.status.success() && stderr(&out).contains("grad_accumulation = 1 is not a multiple of --peers 2"));
}

#[test]
fn data_parallel_teacher_training_ends_like_one_process() {
    let Some(setup) = setup() else { return };
    let dir = setup.dir.join("dp-teacher");
    std::fs::create_dir_all(&dir).unwrap();
    let config = tiny_config(&dir, 0.1);
    let args = |out: &Path| tiny_teacher_args(setup, &config, out, "3", &[]);
    let one = dir.join("one");
    let a = args(&one);
    run_ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let two = dir.join("two");
    let a = args(&two);
    let outs = run_peers(&a.iter().map(String::as_str).collect::<Vec<_>>(), 2, |_| Vec::new());
    for (rank, out) in outs.iter().enumerate() {
        assert!(out.status.success(), "peer {rank}: {}", stderr(out));
    }
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(log_lines(&two.with_extension("jsonl")), log_lines(&one.with_extension("jsonl")));
    assert!(read(&two.join("model.safetensors")) == read(&one.join("model.safetensors")), "the teachers differ");
}
