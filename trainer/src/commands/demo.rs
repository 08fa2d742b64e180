//! `adam demo`: the whole method in one command. It runs the same subcommands a user would type
//! (and prints each one), in a folder of its own:
//!
//! 1. data: the built-in teaching set (`adam teaching-set`) or `--data`,
//! 2. BM25 hard negatives for the train split and a BM25 run of the test split (`adam negatives`),
//! 3. the teacher: a cross-encoder trained from scratch, or fine-tuned from `--teacher`
//!    (`adam teacher train`), and its quality as a reranker of BM25's top 100 (`teacher rerank`),
//! 4. the teacher's scores of hard negatives and adaptive dark examples (`adam teacher score`),
//! 5. students: every method × every seed (`adam distill`), each evaluated on the test split,
//! 6. the comparison (`report/`: Markdown, JSON, SVG) and the browser demo's assets (`adam
//!    export-web`).
//!
//! A stage whose output exists is skipped, and distillation runs resume from their checkpoints,
//! so an interrupted demo continues where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use adam_core::data::{Query, read_run};
use adam_core::metrics::evaluate;
use anyhow::{Context, Result, bail};

use crate::backend::Backend;
use crate::dataset::{Dataset, DatasetFiles};
use crate::io::{AtomicFile, open};
use crate::models::{ModelArgs, load_encoder};
use crate::progress;
use crate::report::{REPORTED, RunResult, TABLE_FILE, write_report};
use crate::retrieval::retrieve;

const ALL_METHODS: &str = "ce,kd,margin-mse,adam-no-dark,adam-no-self-paced,adam";

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Folder for everything the demo writes; a rerun skips the stages already done.
    #[arg(long, value_name = "DIR", default_value = "adam-demo")]
    pub output: PathBuf,
    /// Dataset instead of the built-in teaching set: a BEIR or MS MARCO folder, or a Hugging
    /// Face Hub dataset `owner/name` (with the train, dev and test splits named below).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[arg(long, default_value = "train", value_name = "SPLIT")]
    pub train_split: String,
    #[arg(long, default_value = "dev", value_name = "SPLIT")]
    pub dev_split: String,
    #[arg(long, default_value = "test", value_name = "SPLIT")]
    pub test_split: String,
    /// Teacher checkpoint to fine-tune (a cross-encoder, or a BERT / sentence-transformers
    /// folder, which gets a new head) instead of a small teacher trained from scratch; with
    /// --teacher-epochs 0 used as it is: a cross-encoder, or a sentence-transformers dual
    /// encoder such as all-mpnet-base-v2 (METHOD.md §8; the page's assets then have no teacher).
    #[arg(long, value_name = "DIR")]
    pub teacher: Option<PathBuf>,
    /// Student checkpoint (a BERT / sentence-transformers folder) instead of a small student
    /// from scratch with the teacher's tokenizer.
    #[arg(long, value_name = "DIR")]
    pub student: Option<PathBuf>,
    /// Keep only the student checkpoint's first N layers.
    #[arg(long, value_name = "N", requires = "student")]
    pub student_layers: Option<usize>,
    /// Methods to compare (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = ALL_METHODS)]
    pub methods: Vec<String>,
    /// Seeds per method (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub seeds: Vec<u64>,
    /// The built-in teaching set's world: `paraphrase` (several forms per value, negations,
    /// other creatures' values: word overlap misleads; its teacher, which learned to read from
    /// the world's profiles, ships with adam, METHOD.md §7.1) or `lexical` (one word per value:
    /// BM25's world; a small teacher trained in the run).
    #[arg(long, default_value = "paraphrase", value_parser = ["paraphrase", "lexical"], conflicts_with = "data")]
    pub world: String,
    /// Teacher training epochs (0: use --teacher as it is) [default: 6 on the lexical teaching
    /// set, 24 on the paraphrase one, else 2]. On the paraphrase world it implies
    /// --train-teacher.
    #[arg(long, value_name = "N")]
    pub teacher_epochs: Option<usize>,
    /// Train the paraphrase world's teacher from scratch (about 11 minutes on 2 cores) instead of
    /// using the shipped one, which this very command made (trainer/teachers/paraphrase).
    #[arg(long, conflicts_with = "teacher")]
    pub train_teacher: bool,
    /// Optimiser steps per student [default: 640 on the paraphrase world, 240 on the lexical one,
    /// else 500].
    #[arg(long, value_name = "N")]
    pub student_steps: Option<usize>,
    /// Tokens per query and per passage; pairs get their sum [default: 48 on the teaching set,
    /// else 128].
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    /// Lowest grade that counts as relevant for MRR and recall [default: 2 on the teaching set,
    /// whose grade 1 means a partial match; else 1].
    #[arg(long, value_name = "N")]
    pub rel_threshold: Option<i32>,
    /// Where to write the browser demo's assets [default: web/assets when run from the
    /// repository, else <output>/web-assets].
    #[arg(long, value_name = "DIR")]
    pub web_assets: Option<PathBuf>,
    /// Students trained at once, each in its own process [default: the number of CPU cores].
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

/// The sizes of the demo's own models and runs (the teaching set's); `--data` with checkpoints
/// changes only what the flags change.
struct Plan {
    data: PathBuf,
    rel_threshold: i32,
    max_length: usize,
    teacher_epochs: usize,
    student_steps: usize,
    /// Queries per student step.
    student_batch: usize,
    /// Mined negatives per query in a student step (besides the other queries' passages).
    student_negatives: usize,
    /// The from-scratch student's feed-forward activation and learning rate.
    student_activation: &'static str,
    student_lr: &'static str,
    /// Whether the data has the dev split (WikiQA, for one, has none): without it the students
    /// train without a dev curve.
    has_dev: bool,
}

/// Student steps on the paraphrase world: what fits the demo's ten minutes on 2 cores.
const PARAPHRASE_STUDENT_STEPS: usize = 640;

/// Initialisation scale of the from-scratch teacher: with Hugging Face's 0.02 its attention
/// stays near uniform for hundreds of steps (test nDCG@10 after 6 epochs: 0.39 at 0.02, 0.49 at
/// 0.1, 0.33 at 0.2).
const TEACHER_INIT: f64 = 0.1;

/// A small BERT for the teaching set (its 2,000-piece vocabulary). The demo's models train
/// without dropout, which in our runs only delayed learning at these budgets; METHOD.md §7 gives
/// the measurements behind each size.
fn tiny_bert(
    vocab_size: usize,
    hidden: usize,
    layers: usize,
    heads: usize,
    positions: usize,
    initializer_range: f64,
    activation: &str,
) -> serde_json::Value {
    serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": vocab_size, "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": heads, "intermediate_size": 4 * hidden,
        "max_position_embeddings": positions, "type_vocab_size": 2,
        "hidden_act": activation, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "layer_norm_eps": 1e-12, "initializer_range": initializer_range, "pad_token_id": 0,
    })
}

pub fn run(args: DemoArgs) -> Result<()> {
    let start = Instant::now();
    if args.seeds.is_empty() || args.methods.is_empty() {
        bail!("--seeds and --methods need at least one value each");
    }
    for m in &args.methods {
        if !ALL_METHODS.split(',').any(|k| k == m) {
            bail!("--methods: unknown method `{m}` (one of {ALL_METHODS})");
        }
    }
    let out = &args.output;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let builtin = args.data.is_none();
    let paraphrase = builtin && args.world == "paraphrase";
    let mut plan = Plan {
        data: args.data.clone().unwrap_or_else(|| out.join("data")),
        rel_threshold: args.rel_threshold.unwrap_or(if builtin { 2 } else { 1 }),
        max_length: args.max_length.unwrap_or(if builtin { 48 } else { 128 }),
        teacher_epochs: args.teacher_epochs.unwrap_or(match (builtin, paraphrase) {
            (true, false) => 6,
            (true, true) => 24,
            (false, _) => 2,
        }),
        student_steps: args.student_steps.unwrap_or(match (builtin, paraphrase) {
            (true, false) => 240,
            (true, true) => PARAPHRASE_STUDENT_STEPS,
            (false, _) => 500,
        }),
        // The paraphrase world's students learn more per second from many queries a step (the
        // other queries' passages as negatives) than from many mined negatives per query
        // (METHOD.md §7.1).
        student_batch: match (builtin, paraphrase) {
            (true, false) => 8,
            (true, true) => 64,
            (false, _) => 16,
        },
        student_negatives: if paraphrase { 1 } else { 7 },
        // ReLU: a paraphrase-world student step is 1.3x faster than with exact GELU (scalar erf
        // forward and backward) and learns as much; with it, 1e-2 learns faster than 5e-3
        // (METHOD.md §7.1).
        student_activation: if paraphrase { "relu" } else { "gelu" },
        student_lr: if paraphrase { "1e-2" } else { "5e-3" },
        has_dev: true,
    };
    let mut stages = Stages::new(7);
    let path = |name: &str| out.join(name).display().to_string();
    let backend = args.backend.to_string();

    // 1. Data.
    if builtin {
        let data_dir = path("data");
        let mut set = vec!["teaching-set", "--output", &data_dir];
        if paraphrase {
            set.extend(["--world", "paraphrase", "--profiles"]);
        }
        let made =
            out.join("data/tokenizer.json").is_file() && (!paraphrase || out.join("data/profiles.jsonl").is_file());
        stages.run("the teaching set", made, &set)?;
    } else {
        stages.note(
            "data",
            &format!("{} (splits {}, {}, {})", plan.data.display(), args.train_split, args.dev_split, args.test_split),
        );
    }
    let data = plan.data.display().to_string();
    // A Hub dataset without the split fails to resolve it: that too means no dev curve.
    plan.has_dev = DatasetFiles::resolve(&plan.data, &args.dev_split).is_ok_and(|f| f.qrels_path().is_ok());
    if !plan.has_dev {
        stages.note(
            "dev split",
            &format!(
                "{data} has no `{}` split: the students train without a dev curve (--dev-split NAME to name one)",
                args.dev_split
            ),
        );
    }

    // 2. BM25: negatives for training, a run of the test split for the teacher's reranking.
    let mined = out.join("negatives.train.jsonl").is_file() && out.join("bm25.test.run").is_file();
    stages.run("BM25 hard negatives (train) and BM25's test run", mined, &[])?;
    if !out.join("negatives.train.jsonl").is_file() {
        stages.sub(&[
            "negatives",
            "--data",
            &data,
            "--split",
            &args.train_split,
            "--output",
            &path("negatives.train.jsonl"),
            "--top-k",
            "30",
            "--depth",
            "100",
        ])?;
    }
    if !out.join("bm25.test.run").is_file() {
        stages.sub(&[
            "negatives",
            "--data",
            &data,
            "--split",
            &args.test_split,
            "--output",
            &path("negatives.test.jsonl"),
            "--top-k",
            "1",
            "--depth",
            "100",
            "--rel-threshold",
            &plan.rel_threshold.to_string(),
            "--run",
            &path("bm25.test.run"),
        ])?;
    }

    // 3. The teacher.
    let pair_length = (2 * plan.max_length).to_string();
    let teacher_dir = out.join("teacher");
    let mut train = vec![
        "teacher".to_string(),
        "train".into(),
        "--data".into(),
        data.clone(),
        "--split".into(),
        args.train_split.clone(),
        "--negatives".into(),
        path("negatives.train.jsonl"),
        "--output".into(),
        path("teacher"),
        "--max-length".into(),
        pair_length.clone(),
        "--group-size".into(),
        "8".into(),
        "--log".into(),
        path("teacher-train.jsonl"),
        "--backend".into(),
        backend.clone(),
    ];
    let shipped = paraphrase && args.teacher.is_none() && !args.train_teacher && args.teacher_epochs.is_none();
    let teacher_source = match &args.teacher {
        Some(dir) if plan.teacher_epochs == 0 => dir.clone(),
        Some(dir) => {
            train.extend([
                "--model".into(),
                dir.display().to_string(),
                "--new-head".into(),
                "--epochs".into(),
                plan.teacher_epochs.to_string(),
                "--batch-size".into(),
                "4".into(),
                "--lr".into(),
                "3e-5".into(),
                "--head-lr".into(),
                "1e-3".into(),
            ]);
            teacher_dir.clone()
        }
        None if shipped => teacher_dir.clone(),
        None => {
            let tokenizer = plan.data.join("tokenizer.json");
            if !tokenizer.is_file() {
                bail!(
                    "{} not found: without --teacher the demo trains one from scratch with the dataset's tokenizer.json (the teaching set has one); pass --teacher DIR",
                    tokenizer.display()
                );
            }
            let vocab = vocab_size(&tokenizer)?;
            let config = out.join("teacher-config.json");
            // The paraphrase world's teacher reads with three layers: values and whose they are
            // (layer 1), the query's values looked up in the passage (layer 2), the verdict.
            let layers = if paraphrase { 3 } else { 2 };
            write_json(&config, &tiny_bert(vocab, 64, layers, 4, 2 * plan.max_length, TEACHER_INIT, "gelu"))?;
            // The reading teacher learns in a step that comes sooner at twice the rate and with
            // the reading losses weighted twice (METHOD.md §7.1).
            let lr = if paraphrase { "2e-3" } else { "1e-3" };
            train.extend([
                "--config".into(),
                config.display().to_string(),
                "--tokenizer".into(),
                tokenizer.display().to_string(),
                "--epochs".into(),
                plan.teacher_epochs.to_string(),
                "--batch-size".into(),
                "8".into(),
                "--lr".into(),
                lr.into(),
                "--warmup-ratio".into(),
                "0.05".into(),
            ]);
            if paraphrase {
                train.extend([
                    "--profiles".into(),
                    plan.data.join("profiles.jsonl").display().to_string(),
                    "--graded".into(),
                    "3".into(),
                    "--reading-weight".into(),
                    "2".into(),
                ]);
            }
            teacher_dir.clone()
        }
    };
    if shipped {
        let done = teacher_dir.join("model.safetensors").is_file();
        stages.header("the teacher (cross-encoder)");
        if done {
            eprintln!("    already there: {}", teacher_dir.display());
        } else {
            write_shipped_teacher(&teacher_dir, &plan)?;
            eprintln!(
                "    the shipped teacher, trainer/teachers/paraphrase (`adam demo --train-teacher` trains it anew: 11 min on 2 cores), copied to {}",
                teacher_dir.display()
            );
        }
    } else if teacher_source == teacher_dir {
        let train: Vec<&str> = train.iter().map(String::as_str).collect();
        stages.run("the teacher (cross-encoder)", teacher_dir.join("model.safetensors").is_file(), &train)?;
    } else {
        stages.note("the teacher", &format!("{} as it is (--teacher-epochs 0)", teacher_source.display()));
    }
    // A dual-encoder teacher (METHOD.md §8) teaches through scores; the page's lab needs a
    // cross-encoder, so its assets then go without one.
    let cross_encoder_teacher = is_cross_encoder(&teacher_source)?;
    let teacher = teacher_source.display().to_string();
    if !out.join("teacher.test.run").is_file() {
        stages.sub(&[
            "teacher",
            "rerank",
            "--model",
            &teacher,
            "--data",
            &data,
            "--split",
            &args.test_split,
            "--run",
            &path("bm25.test.run"),
            "--depth",
            "100",
            "--output",
            &path("teacher.test.run"),
            "--max-length",
            &pair_length,
            "--backend",
            &backend,
        ])?;
    }

    // 4. Teacher scores and dark examples, with the dark-example settings of the students' config.
    let base = out.join("distill-base.toml");
    write_text(&base, &distill_toml(&args, &plan, "adam", 0, out)?)?;
    let (negatives, scores, base) = (path("negatives.train.jsonl"), path("scores.jsonl"), base.display().to_string());
    let mut score = vec![
        "teacher", "score", "--model", &teacher, "--data", &data, "--split", &args.train_split, "--negatives",
        &negatives, "--output", &scores, "--config", &base, "--negatives-per-query", "7", "--max-length", &pair_length,
        "--backend", &backend,
    ];
    // Dark examples in the student's word pieces when its vocabulary is another (a given
    // student under a teacher of another family); with the same vocabulary nothing changes.
    let student_tokenizer = args.student.as_ref().map(|dir| dir.join("tokenizer.json").display().to_string());
    if let Some(tokenizer) = &student_tokenizer {
        score.extend(["--student-tokenizer", tokenizer]);
    }
    stages.run(
        "the teacher's scores of hard negatives and dark examples",
        out.join("scores.jsonl").is_file() && !is_partial_cache(&out.join("scores.jsonl")),
        &score,
    )?;

    // 5. Students.
    let test = Dataset::load(&plan.data, &args.test_split)?;
    let total = args.methods.len() * args.seeds.len();
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    stages.run(
        &format!(
            "{total} students ({} methods × {} seeds, {jobs} at a time), each evaluated on {}",
            args.methods.len(),
            args.seeds.len(),
            args.test_split
        ),
        false,
        &[],
    )?;
    let mut students = Vec::new();
    for method in &args.methods {
        for &seed in &args.seeds {
            let dir = out.join("runs").join(run_name(method, seed));
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            write_text(&dir.join("distill.toml"), &distill_toml(&args, &plan, method, seed, &dir)?)?;
            students.push((method.clone(), seed, dir));
        }
    }
    let runs = train_students(&students, jobs, &backend, |dir| test_metrics(dir, out, &test, &plan, args.backend))?;

    // 6. Report and web assets.
    let empty_log = out.join("reference.log.jsonl");
    write_text(&empty_log, "")?;
    let mut all = runs.clone();
    for (label, run) in
        [("BM25 (reference)", "bm25.test.run"), ("teacher reranking BM25's top 100 (reference)", "teacher.test.run")]
    {
        let path = out.join(run);
        let evaluation = evaluate(&read_run(open(&path)?, &path)?, &test.qrels, plan.rel_threshold);
        write_per_query(&per_query_path(out, run.trim_end_matches(".test.run")), &evaluation)?;
        let metrics = evaluation.mean.to_map();
        all.push(RunResult { method: label.into(), seed: None, metrics, log: empty_log.clone() });
    }
    let report_dir = out.join("report");
    write_report(&report_dir, &all)?;
    // The paper's motivating figure for this teacher: its soft labels on mined negatives and on
    // each kind of dark example (histograms), beside the comparison.
    let report = report_dir.display().to_string();
    stages.sub(&["teacher", "inspect", "--scores", &scores, "--output", &report])?;
    stages.note(
        "the comparison",
        &format!(
            "{} (Markdown), report.json, dev_ndcg10.svg, soft_labels.svg (the teacher's soft labels)",
            report_dir.join(TABLE_FILE).display()
        ),
    );
    let best = best_run(&runs, "adam").or_else(|| best_run(&runs, &args.methods[0])).expect("at least one run");
    let web = args.web_assets.clone().unwrap_or_else(|| {
        if Path::new("web/Cargo.toml").is_file() { PathBuf::from("web/assets") } else { out.join("web-assets") }
    });
    let student = out.join("runs").join(&best).join("student").display().to_string();
    let mut export = vec!["export-web", "--student", &student];
    if cross_encoder_teacher {
        export.extend(["--teacher", &teacher]);
    }
    let web_dir = web.display().to_string();
    export.extend([
        "--data",
        &data,
        "--split",
        &args.test_split,
        "--output",
        &web_dir,
        "--report",
        &report,
        "--max-length",
        &pair_length,
        "--noisy-mode",
        noisy_mode(&args),
        "--backend",
        &backend,
    ]);
    stages.run("the browser demo's assets", false, &export)?;

    let table = std::fs::read_to_string(report_dir.join(TABLE_FILE))?;
    println!("\n{table}");
    println!(
        "Test split `{}`, relevant = grade >= {} for MRR and recall. Report: {}. Web assets: {} (then `trunk serve`).",
        args.test_split,
        plan.rel_threshold,
        report_dir.display(),
        web.display()
    );
    eprintln!("demo finished in {:.1} min", start.elapsed().as_secs_f64() / 60.0);
    Ok(())
}

/// The paraphrase world's teacher, made by `adam demo --train-teacher` (its seed the default);
/// trainer/teachers/paraphrase/SOURCE.md records the command, the file's hash and its figures.
const SHIPPED_TEACHER: [(&str, &[u8]); 4] = [
    ("config.json", include_bytes!("../../teachers/paraphrase/config.json")),
    ("tokenizer.json", include_bytes!("../../teachers/paraphrase/tokenizer.json")),
    ("tokenizer_config.json", include_bytes!("../../teachers/paraphrase/tokenizer_config.json")),
    ("model.safetensors", include_bytes!("../../teachers/paraphrase/model.safetensors")),
];

/// The pair length the shipped teacher reads (its position embeddings).
const SHIPPED_TEACHER_PAIR_LENGTH: usize = 96;

/// Writes the shipped teacher into `dir`, after checking that it reads this world: the same
/// word pieces (the teaching set's tokenizer, byte for byte) and pairs of the demo's length.
fn write_shipped_teacher(dir: &Path, plan: &Plan) -> Result<()> {
    let tokenizer = plan.data.join("tokenizer.json");
    let ours = std::fs::read(&tokenizer).with_context(|| format!("cannot read {}", tokenizer.display()))?;
    let shipped = SHIPPED_TEACHER.iter().find(|(name, _)| *name == "tokenizer.json").expect("listed").1;
    if ours != shipped {
        bail!(
            "{} differs from the shipped teacher's word pieces: the teaching set's generator changed since the teacher was made; pass --train-teacher to train one for this world (and refresh trainer/teachers/paraphrase, see its SOURCE.md)",
            tokenizer.display()
        );
    }
    if 2 * plan.max_length != SHIPPED_TEACHER_PAIR_LENGTH {
        bail!(
            "the shipped teacher reads pairs of up to {SHIPPED_TEACHER_PAIR_LENGTH} tokens (--max-length {}); --max-length {} needs --train-teacher",
            SHIPPED_TEACHER_PAIR_LENGTH / 2,
            plan.max_length
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The weights last: their presence marks the stage done.
    for (name, bytes) in SHIPPED_TEACHER {
        let path = dir.join(name);
        let mut file = AtomicFile::create(&path)?;
        std::io::Write::write_all(file.writer(), bytes).with_context(|| format!("writing {}", path.display()))?;
        file.commit()?;
    }
    Ok(())
}

/// The folder name of one student under `runs/`.
fn run_name(method: &str, seed: u64) -> String {
    format!("{method}-seed{seed}")
}

/// The run of `method` with the best test nDCG@10 (the one the page shows).
fn best_run(runs: &[RunResult], method: &str) -> Option<String> {
    runs.iter()
        .filter(|r| r.method == method)
        .filter_map(|r| Some((r, r.seed?)))
        .max_by(|(a, _), (b, _)| a.metrics[REPORTED[0]].total_cmp(&b.metrics[REPORTED[0]]))
        .map(|(r, seed)| run_name(&r.method, seed))
}

/// Trains the students `jobs` at a time and measures each on the test split. Each student is its
/// own `adam distill` process: burn's CPU backends keep one global random generator, so students
/// sharing a process would not be reproducible. Each run's output goes to `distill.log` in its
/// folder, and the results keep the order of `students`.
fn train_students(
    students: &[(String, u64, PathBuf)],
    jobs: usize,
    backend: &str,
    measure: impl Fn(&Path) -> Result<BTreeMap<String, f64>> + Sync,
) -> Result<Vec<RunResult>> {
    let exe = std::env::current_exe().context("cannot find the adam executable to run the students")?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<RunResult>>>> =
        students.iter().map(|_| Default::default()).collect();
    let bar = progress::bar(students.len() as u64, "students");
    let one = |(method, seed, dir): &(String, u64, PathBuf)| -> Result<RunResult> {
        let name = run_name(method, *seed);
        if !dir.join("student/model.safetensors").is_file() {
            let config = dir.join("distill.toml").display().to_string();
            let args = ["distill", "--config", &config, "--resume", "--quiet", "--backend", backend];
            bar.suspend(|| eprintln!("    {}", command_line(&args)));
            let log_path = dir.join("distill.log");
            let log =
                std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
            let start = Instant::now();
            let status = std::process::Command::new(&exe)
                .args(args)
                .stdout(log.try_clone()?)
                .stderr(log)
                .status()
                .with_context(|| format!("cannot start {}", exe.display()))?;
            if !status.success() {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                bail!(
                    "`adam distill --config {config}` failed ({status}); the end of {}:\n{}",
                    log_path.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            bar.suspend(|| eprintln!("      {name} trained in {:.1} s", start.elapsed().as_secs_f64()));
        }
        let metrics = measure(dir)?;
        bar.suspend(|| {
            eprintln!(
                "      {name}: nDCG@10 {:.4}  MRR@10 {:.4}  R@100 {:.4}",
                metrics["ndcg@10"], metrics["mrr@10"], metrics["recall@100"]
            )
        });
        bar.inc(1);
        Ok(RunResult { method: method.clone(), seed: Some(*seed), metrics, log: dir.join("log.jsonl") })
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(students.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(student) = students.get(i) else { break };
                    let result = one(student);
                    let failed = result.is_err();
                    *results[i].lock().expect("no panics hold the lock") = Some(result);
                    if failed {
                        // Stop handing out work; the runs under way finish.
                        next.store(students.len(), std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    results.into_iter().filter_map(|r| r.into_inner().expect("no panics hold the lock")).collect()
}

/// The student's measures on the test split, computed once and kept in `test.json`; each
/// query's in `per-query/<run>.test.per-query.jsonl` (for `scripts/seed_table.py`).
fn test_metrics(
    dir: &Path,
    out: &Path,
    test: &Dataset,
    plan: &Plan,
    backend: Backend,
) -> Result<BTreeMap<String, f64>> {
    let cached = dir.join("test.json");
    let per_query = per_query_path(out, &dir_name(dir));
    if let Ok(text) = std::fs::read_to_string(&cached)
        && let Ok(metrics) = serde_json::from_str::<BTreeMap<String, f64>>(&text)
        && per_query.is_file()
    {
        return Ok(metrics);
    }
    let encoder = load_encoder(&ModelArgs {
        model: dir.join("student"),
        batch_size: 64,
        max_length: None,
        layers: None,
        backend,
    })?;
    let queries: Vec<Query> = test.queries.iter().filter(|q| test.qrels.contains_key(&q.id)).cloned().collect();
    let run = retrieve(&encoder, test.corpus.as_slice(), &queries, 100, 64)?;
    let evaluation = evaluate(&run, &test.qrels, plan.rel_threshold);
    write_per_query(&per_query, &evaluation)?;
    let metrics = evaluation.mean.to_map();
    write_json(&cached, &serde_json::to_value(&metrics)?)?;
    Ok(metrics)
}

fn dir_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Where one run's per-query measures go: the layout `scripts/seed_table.py` reads
/// (`<method>-seed<k>.test.per-query.jsonl`).
fn per_query_path(out: &Path, run: &str) -> PathBuf {
    out.join("per-query").join(format!("{run}.test.per-query.jsonl"))
}

/// Each query's measures, as `adam eval --json --per-query` prints them.
fn write_per_query(path: &Path, evaluation: &adam_core::metrics::Evaluation) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    write_text(path, &super::eval::per_query_jsonl(evaluation)?)
}

/// A distillation config for one method and seed; `dir` is its run folder.
fn distill_toml(args: &DemoArgs, plan: &Plan, method: &str, seed: u64, dir: &Path) -> Result<String> {
    let abs = |p: &Path| -> Result<String> {
        let p = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
        Ok(p.display().to_string().replace('\\', "/"))
    };
    let out = &args.output;
    let student = match &args.student {
        Some(model) => {
            let layers = args.student_layers.map(|k| format!("layers = {k}\n")).unwrap_or_default();
            format!("model = \"{}\"\n{layers}", abs(model)?)
        }
        None => {
            let config = out.join("student-config.json");
            let tokenizer = plan.data.join("tokenizer.json");
            if !config.is_file() {
                let vocab = vocab_size(&tokenizer)?;
                write_json(&config, &tiny_bert(vocab, 64, 1, 2, plan.max_length + 16, 0.02, plan.student_activation))?;
            }
            format!("config = \"{}\"\ntokenizer = \"{}\"\n", abs(&config)?, abs(&tokenizer)?)
        }
    };
    let lr = if args.student.is_some() { "2e-5" } else { plan.student_lr };
    let eval = if plan.has_dev {
        format!(
            "\n[eval]\nevery = {every}\nsplit = \"{dev}\"\nmax_queries = 100\n{corpus_limit}rel_threshold = {rel}\n",
            // Six points: enough for a curve (two gave a straight line), each a 100-query search.
            every = (plan.student_steps / 6).max(1),
            dev = args.dev_split,
            // The dev curve on the teaching set searches its first 500 passages plus every
            // judged one: a quicker proxy (the final table searches the whole test corpus).
            corpus_limit = if args.data.is_none() { "corpus_limit = 500\n" } else { "" },
            rel = plan.rel_threshold,
        )
    } else {
        String::new()
    };
    let dark = format!("\n[adam.dark]\nnoisy_mode = \"{}\"\n", noisy_mode(args));
    Ok(format!(
        r#"# Written by `adam demo`; `adam distill --config` this file to rerun one student.
method = "{method}"
seed = {seed}
output = "{output}"

[data]
dir = "{data}"
teacher_scores = "{scores}"

[student]
{student}max_query_length = {len}
max_passage_length = {len}

[train]
steps = {steps}
batch_size = {batch}
negatives = {negatives}

[optimizer]
lr = {lr}
warmup_ratio = 0.1
{eval}{dark}"#,
        output = abs(dir)?,
        data = abs(&plan.data)?,
        scores = abs(&out.join("scores.jsonl"))?,
        len = plan.max_length,
        steps = plan.student_steps,
        batch = plan.student_batch,
        negatives = plan.student_negatives,
    ))
}

/// How noisy positives are made. A teacher trained from scratch never learned what `[MASK]`
/// means (no masked-language pretraining): on the teaching set, three in four masked positives
/// kept a score near the positive's however much was masked, so they delete pieces instead
/// (METHOD.md §7). A checkpoint teacher keeps the method's masks.
fn noisy_mode(args: &DemoArgs) -> &'static str {
    if args.teacher.is_none() { "delete" } else { "mask" }
}

/// Whether `adam teacher score` stopped part-way (its cache then resumes).
fn is_partial_cache(path: &Path) -> bool {
    crate::score_cache::read_complete(path).is_err()
}

/// Whether a teacher folder is a cross-encoder (`adam teacher score` tells the kinds apart the
/// same way).
fn is_cross_encoder(dir: &Path) -> Result<bool> {
    Ok(crate::teacher_model::TeacherKind::Auto.resolve(dir)? == crate::teacher_model::TeacherKind::CrossEncoder)
}

fn vocab_size(tokenizer: &Path) -> Result<usize> {
    let bytes = std::fs::read(tokenizer).with_context(|| format!("cannot read {}", tokenizer.display()))?;
    Ok(adam_core::tokenize::TextTokenizer::from_bytes(&bytes, tokenizer, 512)?.vocab_size())
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let mut file = AtomicFile::create(path)?;
    std::io::Write::write_all(file.writer(), text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    file.commit()
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    write_text(path, &(serde_json::to_string_pretty(value)? + "\n"))
}

/// Numbered stages on stderr, with the command each one runs.
struct Stages {
    n: usize,
    total: usize,
}

impl Stages {
    fn new(total: usize) -> Self {
        Self { n: 0, total }
    }

    fn header(&mut self, title: &str) {
        self.n += 1;
        eprintln!("\n[{}/{}] {title}", self.n, self.total);
    }

    fn note(&mut self, title: &str, text: &str) {
        self.header(title);
        eprintln!("    {text}");
    }

    /// A stage that runs `args` (none: its commands follow through [`Self::sub`]).
    fn run(&mut self, title: &str, done: bool, args: &[&str]) -> Result<()> {
        self.header(title);
        if done {
            eprintln!("    already done: skipped");
            return Ok(());
        }
        if args.is_empty() { Ok(()) } else { self.sub(args) }
    }

    fn sub(&mut self, args: &[&str]) -> Result<()> {
        eprintln!("    {}", command_line(args));
        let start = Instant::now();
        crate::cli::run_command(args)
            .with_context(|| format!("`adam {}` failed", args.first().copied().unwrap_or("")))?;
        eprintln!("    ({:.1} s)", start.elapsed().as_secs_f64());
        Ok(())
    }
}

/// `$ adam ARGS…`, quoted so that it can be pasted into a shell.
fn command_line(args: &[&str]) -> String {
    format!("$ adam {}", args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" "))
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
