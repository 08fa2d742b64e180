//! The browser demo end to end: `adam export-web` on a MiniLM student and a MiniLM cross-encoder
//! teacher (the golden head) over WikiQA, `adam soft-labels` for the expected numbers, then the
//! built page (`dist/`) in headless Chromium — once with WebGPU (SwiftShader), once on the CPU —
//! whose soft labels must sum to 1 and equal the native ones within 1e-3.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use adam_core::demo::{ExampleSet, Manifest};
use adam_core::encoder::SentenceEncoder;
use adam_core::loader::{LoadOptions, ModelSource};
use adam_tests::{StaticServer, adam, cosine, fixture, has_program, require, stderr, stdout, workspace_root};
use burn::tensor::Device;
use serde_json::Value;

struct Export {
    root: PathBuf,
    assets: PathBuf,
    teacher: PathBuf,
    stdout: String,
}

const EXAMPLES: &str = "6";
const CORPUS: &str = "300";

/// One export shared by the tests of this file (fixed folder, replaced on every run).
fn export() -> Option<&'static Export> {
    static EXPORT: OnceLock<Option<Export>> = OnceLock::new();
    EXPORT
        .get_or_init(|| {
            let student = fixture("models/all-MiniLM-L6-v2")?;
            let data = fixture("data/wikiqa")?;
            let root = std::env::temp_dir().join("adam-test-web");
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            let teacher = root.join("teacher-src");
            adam_tests::write_golden_cross_encoder(&student, &teacher);
            let report = root.join("report-src");
            std::fs::create_dir_all(&report).unwrap();
            // A report as `adam report` writes it: two seeds of adam, one of kd, a BM25 reference.
            for (name, dev) in [("adam-1", 0.30), ("adam-2", 0.34), ("kd-1", 0.21)] {
                let log = format!("{{\"step\":50,\"dev\":{{\"ndcg@10\":{dev}}}}}\n{{\"step\":100,\"dev\":{{\"ndcg@10\":{}}}}}\n", dev + 0.05);
                std::fs::write(root.join(format!("{name}.jsonl")), log).unwrap();
            }
            std::fs::write(root.join("none.jsonl"), "").unwrap();
            let runs = format!(
                r#"[{{"method": "adam", "seed": 1, "metrics": {{"ndcg@10": 0.61, "mrr@10": 0.52, "recall@100": 0.9}}, "log": "{r}/adam-1.jsonl"}},
 {{"method": "adam", "seed": 2, "metrics": {{"ndcg@10": 0.65, "mrr@10": 0.50, "recall@100": 0.92}}, "log": "{r}/adam-2.jsonl"}},
 {{"method": "kd", "seed": 1, "metrics": {{"ndcg@10": 0.57, "mrr@10": 0.44, "recall@100": 0.88}}, "log": "{r}/kd-1.jsonl"}},
 {{"method": "BM25 (reference)", "seed": null, "metrics": {{"ndcg@10": 0.7, "mrr@10": 0.8, "recall@100": 0.99}}, "log": "{r}/none.jsonl"}}]"#,
                r = root.display().to_string().replace('\\', "/")
            );
            std::fs::write(root.join("runs.json"), runs).unwrap();
            let out = adam(&["report", "--runs", root.join("runs.json").to_str().unwrap(), "--output", report.to_str().unwrap()]);
            assert!(out.status.success(), "adam report failed: {}", stderr(&out));
            std::fs::write(
                report.join("curves.svg"),
                r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><polyline points="0,90 100,40 200,20" fill="none" stroke="#0b5cad" stroke-width="3"/></svg>"##,
            )
            .unwrap();
            std::fs::write(report.join("notes.txt"), "not a plot").unwrap();
            let assets = root.join("assets");
            let out = adam(&[
                "export-web",
                "--student", student.to_str().unwrap(),
                "--teacher", teacher.to_str().unwrap(),
                "--data", data.to_str().unwrap(),
                "--split", "train",
                "--output", assets.to_str().unwrap(),
                "--examples", EXAMPLES,
                "--corpus", CORPUS,
                "--report", report.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "export-web failed: {}", stderr(&out));
            Some(Export { root, assets, teacher, stdout: stdout(&out) })
        })
        .as_ref()
}

fn soft_labels(assets: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["soft-labels", "--assets", assets.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = adam(&args);
    assert!(out.status.success(), "soft-labels failed: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("soft-labels --json prints one JSON object")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

#[test]
fn export_writes_f16_models_examples_corpus_report_and_sizes() {
    let Some(e) = export() else { return };
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(e.assets.join("manifest.json")).unwrap()).unwrap();
    // Every listed file exists with the listed size; gzip sizes are real.
    for f in &manifest.files {
        let len = std::fs::metadata(e.assets.join(&f.path)).unwrap().len();
        assert_eq!(len, f.bytes, "{}", f.path);
        let gz = f.gzip_bytes.expect("gzip sizes (Debian has gzip)");
        assert!(gz > 0 && gz < f.bytes + 64, "{}: gzip {gz}", f.path);
    }
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for want in [
        "student/config.json", "student/tokenizer.json", "student/modules.json", "student/1_Pooling/config.json",
        "student/model.safetensors", "teacher/model.safetensors", "examples.json", "corpus.json", "corpus.f16",
        "report/report.json", "report/curves.svg",
    ] {
        assert!(paths.contains(&want), "{want} not in {paths:?}");
    }
    assert!(!paths.iter().any(|p| p.ends_with("notes.txt")), "only the report and its plots are copied");
    assert!(e.stdout.contains("student model") && e.stdout.contains("gzip"), "{}", e.stdout);

    // The weights are f16, half the size, and load (widened to f32) into vectors equal to the
    // original's up to f16 rounding.
    let student_src = fixture("models/all-MiniLM-L6-v2").unwrap();
    let bytes = std::fs::read(e.assets.join("student/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.tensors().iter().all(|(_, v)| v.dtype() != safetensors::Dtype::F32));
    let original = std::fs::metadata(student_src.join("model.safetensors")).unwrap().len();
    assert!((bytes.len() as f64) < 0.51 * original as f64);
    let device = Device::flex();
    let options = LoadOptions::default();
    let half = SentenceEncoder::load(&ModelSource::Dir(e.assets.join("student")), &device, &options).unwrap();
    let full = SentenceEncoder::load(&ModelSource::Dir(student_src), &device, &options).unwrap();
    let texts = ["what causes ocean tides", "Tides are caused by the gravitational pull of the moon."];
    for (a, b) in half.embed(&texts).unwrap().iter().zip(full.embed(&texts).unwrap()) {
        let c = cosine(a, &b);
        assert!(c > 0.9999, "f16 student vs f32: cosine {c}");
    }

    // Examples: the asked number, BM25 negatives that are not judged relevant, teacher scores.
    let set: ExampleSet = serde_json::from_slice(&std::fs::read(e.assets.join("examples.json")).unwrap()).unwrap();
    assert_eq!(set.examples.len(), EXAMPLES.parse::<usize>().unwrap());
    let qrels_path = fixture("data/wikiqa/qrels/train.tsv").unwrap();
    let qrels =
        adam_core::data::read_qrels(std::io::BufReader::new(std::fs::File::open(&qrels_path).unwrap()), &qrels_path)
            .unwrap();
    for ex in &set.examples {
        let judged = &qrels[&ex.query_id];
        assert!(judged[&ex.positive.id] > 0);
        assert_eq!(ex.negatives.len(), 3);
        for n in &ex.negatives {
            assert!(judged.get(&n.id).is_none_or(|g| *g <= 0), "negative {} is judged relevant", n.id);
        }
        let t = ex.teacher.as_ref().expect("teacher scores");
        assert_eq!(t.negatives.len(), 3);
        assert!(t.all().iter().all(|s| s.is_finite()));
    }
    // The corpus: as many passages as asked, the examples' passages first, f16 vectors.
    let corpus = manifest.corpus.as_ref().unwrap();
    assert_eq!(corpus.count, CORPUS.parse::<usize>().unwrap());
    assert_eq!(std::fs::metadata(e.assets.join("corpus.f16")).unwrap().len() as usize, corpus.count * corpus.dim * 2);
    let passages: Vec<adam_core::demo::CorpusPassage> =
        serde_json::from_slice(&std::fs::read(e.assets.join("corpus.json")).unwrap()).unwrap();
    assert_eq!(passages[0].id, set.examples[0].positive.id);
}

#[test]
fn soft_labels_are_distributions_and_follow_the_settings() {
    let Some(e) = export() else { return };
    let a = soft_labels(&e.assets, &[]);
    let cands = a["candidates"].as_array().unwrap();
    // Positive, 3 negatives, 2 masked positives, 1 mixed and 1 query-mixed negative.
    assert_eq!(cands.len(), 8, "{a}");
    let pt = floats(&a["teacher"]);
    let ps = floats(&a["student"]);
    assert!((pt.iter().sum::<f64>() - 1.0).abs() < 1e-9 && (ps.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    // The printed probabilities follow from the printed scores (T_t = 1, T_s = 0.05).
    let ts: Vec<f32> = cands.iter().map(|c| c["teacher_score"].as_f64().unwrap() as f32).collect();
    let ss: Vec<f32> = cands.iter().map(|c| c["student_score"].as_f64().unwrap() as f32).collect();
    let again = adam_core::softlabels::soft_labels(&ts, &ss, 1.0, 0.05);
    for (x, y) in again.teacher.iter().zip(&pt) {
        assert!((x - y).abs() < 1e-6);
    }
    assert!((again.kl - a["kl"].as_f64().unwrap()).abs() < 1e-6);
    // The student is not the teacher: the two distributions differ, and KL says so.
    assert!(a["kl"].as_f64().unwrap() > 1e-4, "{a}");
    // The positive, as a candidate, scores like the exported teacher score of example 0.
    let set: ExampleSet = serde_json::from_slice(&std::fs::read(e.assets.join("examples.json")).unwrap()).unwrap();
    let exported = set.examples[0].teacher.as_ref().unwrap();
    assert!((ts[0] - exported.positive).abs() < 1e-3, "{} vs {}", ts[0], exported.positive);
    // A masked positive shows [MASK]; more masking changes it; a hotter teacher is flatter.
    assert!(cands[4]["text"].as_str().unwrap().contains("[MASK]"), "{}", cands[4]);
    let b = soft_labels(&e.assets, &["--mask-ratio", "0.8", "--teacher-temperature", "3"]);
    assert_ne!(a["candidates"][4]["text"], b["candidates"][4]["text"]);
    // Deleting instead of masking: the same positive, shorter, with no [MASK].
    let d = soft_labels(&e.assets, &["--noisy-mode", "delete"]);
    let cut = &d["candidates"][4];
    assert!(cut["label"].as_str().unwrap().starts_with("cut positive"), "{cut}");
    assert!(!cut["text"].as_str().unwrap().contains("[MASK]"), "{cut}");
    for field in ["text", "teacher_score", "student_score"] {
        assert_eq!(d["candidates"][0][field], a["candidates"][0][field], "the positive itself is unchanged");
    }
    assert!(b["teacher_entropy"].as_f64().unwrap() > a["teacher_entropy"].as_f64().unwrap());
    // Deterministic.
    assert_eq!(soft_labels(&e.assets, &[]), a);
    // Bad input is a clear error.
    let out = adam(&["soft-labels", "--assets", e.assets.to_str().unwrap(), "--index", "99"]);
    assert!(!out.status.success() && stderr(&out).contains("--index 99"), "{}", stderr(&out));
    let out = adam(&["soft-labels", "--assets", e.assets.to_str().unwrap(), "--mask-ratio", "2"]);
    assert!(!out.status.success() && stderr(&out).contains("mask ratio"), "{}", stderr(&out));
}

#[test]
fn export_errors_name_the_problem() {
    let Some(e) = export() else { return };
    let student = fixture("models/all-MiniLM-L6-v2").unwrap();
    let data = fixture("data/wikiqa").unwrap();
    let out_dir = e.root.join("bad");
    let run = |teacher: &Path, split: &str| {
        adam(&[
            "export-web",
            "--student",
            student.to_str().unwrap(),
            "--teacher",
            teacher.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--split",
            split,
            "--output",
            out_dir.to_str().unwrap(),
            "--examples",
            "2",
            "--corpus",
            "0",
        ])
    };
    // A sentence-transformers folder is no cross-encoder: the head is missing.
    let out = run(&student, "train");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("classifier"), "{}", stderr(&out));
    let out = run(&e.teacher, "nosuchsplit");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("qrels/nosuchsplit.tsv"), "{}", stderr(&out));
}

/// The built page when it and what drives it (node, Chromium, playwright-core) are all there;
/// each one missing is reported (a failure with `CI=true`).
fn browser() -> Option<PathBuf> {
    let Some(dist) = dist() else {
        require(false, "the built page (dist/index.html: bash scripts/build_page.sh, or ADAM_WEB_DIST)");
        return None;
    };
    let ready = require(has_program("node"), "node")
        && require(chromium().is_file(), "chromium (/usr/bin/chromium or $CHROMIUM)")
        && require(
            workspace_root().join("tests/web/node_modules/playwright-core").is_dir(),
            "tests/web/node_modules (npm ci)",
        );
    ready.then_some(dist)
}

/// The built page: `$ADAM_WEB_DIST`, else `dist/` (scripts/test.sh builds it first).
fn dist() -> Option<PathBuf> {
    let dir = std::env::var_os("ADAM_WEB_DIST").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("dist"));
    dir.join("index.html").is_file().then_some(dir)
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Runs tests/web/e2e.mjs in `mode` (webgpu, cpu, broken) and returns its JSON report.
fn drive(url: &str, mode: &str, shots: &Path, query: &str) -> Value {
    let web = workspace_root().join("tests").join("web");
    let out = Command::new("node")
        .arg("e2e.mjs")
        .args([url, mode, shots.to_str().unwrap(), query])
        .env("CHROMIUM", chromium())
        .current_dir(&web)
        .output()
        .expect("run node");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{mode}: e2e.mjs failed\nstdout:\n{text}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("{mode}: no JSON in\n{text}"));
    serde_json::from_str(last).unwrap()
}

fn assert_close(page: &[f64], native: &[f64], what: &str) {
    assert_eq!(page.len(), native.len(), "{what}: {page:?} vs {native:?}");
    let sum: f64 = page.iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "{what}: the page's probabilities sum to {sum}");
    for (i, (p, n)) in page.iter().zip(native).enumerate() {
        assert!(
            (p - n).abs() <= 1e-3,
            "{what}: candidate {i}: page {p} vs native {n}\npage {page:?}\nnative {native:?}"
        );
    }
}

#[test]
fn browser_shows_the_native_soft_labels_on_webgpu_and_cpu() {
    let Some(e) = export() else { return };
    let Some(dist) = browser() else { return };
    let expected = soft_labels(&e.assets, &[]);
    let expected_mask = soft_labels(&e.assets, &["--mask-ratio", "0.35"]);
    let expected_delete = soft_labels(&e.assets, &["--mask-ratio", "0.35", "--noisy-mode", "delete"]);
    let set: ExampleSet = serde_json::from_slice(&std::fs::read(e.assets.join("examples.json")).unwrap()).unwrap();
    let server = StaticServer::start(vec![("/".into(), dist.clone()), ("/assets/".into(), e.assets.clone())]);
    let shots = std::env::var_os("ADAM_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("adam-web-e2e"));
    std::fs::create_dir_all(&shots).unwrap();
    let query = set.examples[0].positive.text.clone();
    let mut figures = serde_json::Map::new();
    for mode in ["webgpu", "cpu"] {
        let r = drive(&server.url("/"), mode, &shots, &query);
        let backend = r["backend"].as_str().unwrap_or("");
        assert_eq!(backend.trim(), mode, "backend notice: {r}");
        if mode == "webgpu" {
            // Unasked, the page leaves a software adapter (SwiftShader here) for the faster CPU path.
            assert_eq!(r["auto_backend"].as_str(), Some("cpu"), "the page's own choice on SwiftShader: {r}");
            let why = r["auto_why"].as_str().unwrap_or("");
            assert!(why.contains("software") && why.contains("?backend=webgpu"), "the reason shown: {why}");
            assert!(why.contains("?backend=gpu is neither cpu nor webgpu"), "an unknown ?backend= unnamed: {why}");
            // Asked for WebGPU on SwiftShader, it multiplies with the kernel that suits it, rows
            // shared across SwiftShader's subgroups of 4 (Chromium gives it the `subgroups` feature).
            let why = r["why"].as_str().unwrap_or("");
            assert!(why.contains("SwiftShader") && why.contains("register-block"), "the WebGPU run's reason: {why}");
            assert!(why.contains("subgroups of 4"), "the WebGPU run's reason: {why}");
        }
        assert_close(&floats(&r["teacher"]), &floats(&expected["teacher"]), &format!("{mode} teacher"));
        assert_close(&floats(&r["student"]), &floats(&expected["student"]), &format!("{mode} student"));
        // The walk-through a class reads: the same numbers as `adam soft-labels --json`.
        let (page_w, native_w) = (&r["walkthrough"], &expected["walkthrough"]);
        for key in ["plain_positive", "confidence"] {
            let (p, n) = (page_w[key].as_f64().unwrap_or(f64::NAN), native_w[key].as_f64().unwrap());
            assert!((p - n).abs() <= 1e-3, "{mode} walkthrough {key}: page {p}, native {n}\n{r}");
        }
        assert_eq!(page_w["in_band"], native_w["in_band"], "{mode} walkthrough in_band: {r}");
        let text = page_w["text"].as_str().unwrap_or("");
        for step in ["Is the teacher confident?", "Where do the dark examples land?", "Self-paced distillation."] {
            assert!(text.contains(step), "{mode}: walkthrough without `{step}`: {text}");
        }
        assert!(text.contains(&format!("P_T = {:.3}", native_w["plain_positive"].as_f64().unwrap())), "{text}");
        // Keyboard: the mask-ratio slider moved one step right (0.35) recomputes the same as native.
        assert_close(
            &floats(&r["teacher_mask"]),
            &floats(&expected_mask["teacher"]),
            &format!("{mode} teacher, mask 0.35"),
        );
        assert_close(
            &floats(&r["student_mask"]),
            &floats(&expected_mask["student"]),
            &format!("{mode} student, mask 0.35"),
        );
        if mode == "cpu" {
            // These assets open masking pieces; choosing "delete pieces" (e2e.mjs switches to the
            // mode the assets did not open in) recomputes the same as `adam soft-labels
            // --noisy-mode delete`.
            assert_eq!(r["noisy_switched_to"], "delete", "{r}");
            assert_eq!(r["settings_after_switch"]["noisy_mode"], "delete", "{r}");
            assert_close(
                &floats(&r["teacher_switch"]),
                &floats(&expected_delete["teacher"]),
                "cpu teacher, delete 0.35",
            );
            assert_close(
                &floats(&r["student_switch"]),
                &floats(&expected_delete["student"]),
                "cpu student, delete 0.35",
            );
            assert!(r["lab_text_switch"].as_str().unwrap_or("").contains("cut positive"), "{r}");
        }
        // Search: the first example's positive, typed as the query, is the top hit.
        let hits = r["search"]["hits"].as_array().expect("search hits");
        assert_eq!(hits.len(), 10, "{r}");
        assert_eq!(hits[0]["id"], set.examples[0].positive.id.as_str(), "{r}");
        assert!(hits[0]["score"].as_f64().unwrap() > 0.99, "{r}");
        assert!(r["selfpaced"].as_str().unwrap_or("").contains("instances"), "{r}");
        assert!(r["report_images"].as_u64().unwrap_or(0) >= 2, "the dev curves and curves.svg: {r}");
        // The comparison table reads as report.json says: every method, every measure, mean ± s.d.
        let table = &r["report_table"][0];
        let head: Vec<&str> = table["head"]
            .as_array()
            .unwrap_or_else(|| panic!("no comparison table: {r}"))
            .iter()
            .filter_map(|h| h.as_str())
            .collect();
        assert_eq!(head, ["method", "runs", "ndcg@10", "mrr@10", "recall@100"], "{r}");
        let rows = table["rows"].as_array().unwrap();
        let methods: Vec<&str> = rows.iter().filter_map(|row| row["method"].as_str()).collect();
        assert_eq!(methods, ["adam", "kd", "BM25 (reference)"], "{r}");
        // adam: nDCG@10 0.61, 0.65 → 0.63 ± 0.0283 (sample s.d. |a − b| / √2).
        assert_eq!(rows[0]["cells"][0]["text"], "2", "{r}");
        assert_eq!(rows[0]["cells"][1]["text"], "0.6300 ± 0.0283", "{r}");
        assert!((rows[0]["cells"][1]["mean"].as_str().unwrap().parse::<f64>().unwrap() - 0.63).abs() < 1e-9, "{r}");
        assert_eq!(rows[1]["cells"][3]["text"], "0.8800", "one run, no ± part: {r}");
        assert_eq!(rows[2]["cells"][1]["text"], "0.7000", "{r}");
        figures.insert(mode.into(), r["metrics"].clone());
    }
    // Broken assets: a readable message, not a blank page.
    let r = drive(&server.url("/?assets=missing/"), "broken", &shots, "");
    let msg = r["error"].as_str().unwrap_or("");
    assert!(msg.contains("missing/manifest.json") && msg.contains("404"), "{r}");
    assert_eq!(r["backend"].as_str(), Some("none"), "a page that failed says no backend runs: {r}");

    let wasm: Vec<u8> = std::fs::read_dir(&dist)
        .unwrap()
        .flatten()
        .filter(|f| f.path().extension().is_some_and(|x| x == "wasm"))
        .flat_map(|f| std::fs::read(f.path()).unwrap())
        .collect();
    // What a server sends with gzip at its usual level 6 (`gzip -6`, flate2's default).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut gz, &wasm).unwrap();
    let wasm_gzip = gz.finish().unwrap().len();
    figures.insert("wasm_bytes".into(), wasm.len().into());
    figures.insert("wasm_gzip_bytes".into(), wasm_gzip.into());
    let summary = Value::Object(figures);
    std::fs::write(shots.join("web-e2e.json"), serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    eprintln!("web e2e figures ({}): {summary}", shots.display());
    // Issue 19's budget for the page's download, held where the page is built as CI builds it
    // (scripts/build_page.sh with wasm-opt; without it the wasm is about 10 % larger).
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(wasm_gzip <= 3_000_000, "the page's wasm is {wasm_gzip} bytes gzipped, over its 3 MB budget");
    }
}

/// The paraphrase world's story in the page (issue 18), with the shipped teacher: the lab opens
/// (deleting pieces, as the demo's assets do) on a query whose teacher is confident, a dark
/// example above every mined negative and some in the band; the page's numbers are those of
/// `adam soft-labels`, and switching to masks recomputes them as natively. The student is a few
/// steps old: the story here is the teacher's.
#[test]
fn browser_tells_the_paraphrase_worlds_story() {
    let Some(dist) = browser() else { return };
    let root = std::env::temp_dir().join("adam-test-web-paraphrase");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let p = |name: &str| root.join(name).to_str().unwrap().to_string();
    let teacher = workspace_root().join("trainer/teachers/paraphrase");
    let teacher = teacher.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = adam(args);
        assert!(out.status.success(), "adam {}: {}", args[0], stderr(&out));
    };
    run(&["teaching-set", "--world", "paraphrase", "--output", &p("data")]);
    run(&["negatives", "--data", &p("data"), "--split", "train", "--output", &p("neg.jsonl"), "--top-k", "3"]);
    run(&[
        "teacher",
        "score",
        "--model",
        teacher,
        "--data",
        &p("data"),
        "--negatives",
        &p("neg.jsonl"),
        "--output",
        &p("scores.jsonl"),
        "--max-queries",
        "8",
        "--negatives-per-query",
        "3",
        "--max-length",
        "96",
    ]);
    // ReLU, as the demo's paraphrase-world students: the page must score with it as natively.
    let config = serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": 2000, "hidden_size": 32,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
        "type_vocab_size": 2, "hidden_act": "relu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "layer_norm_eps": 1e-12, "initializer_range": 0.02, "pad_token_id": 0,
    });
    std::fs::write(root.join("student-config.json"), config.to_string()).unwrap();
    let toml = format!(
        "method = \"ce\"\nseed = 1\noutput = \"{out}\"\n[data]\ndir = \"{data}\"\nteacher_scores = \"{scores}\"\n\
         [student]\nconfig = \"{config}\"\ntokenizer = \"{data}/tokenizer.json\"\nmax_query_length = 48\n\
         max_passage_length = 48\n[train]\nsteps = 4\nbatch_size = 4\nnegatives = 3\n[optimizer]\nlr = 1e-3\n",
        out = p("student"),
        data = p("data"),
        scores = p("scores.jsonl"),
        config = p("student-config.json"),
    );
    std::fs::write(root.join("distill.toml"), toml.replace('\\', "/")).unwrap();
    run(&["distill", "--config", &p("distill.toml"), "--quiet"]);
    run(&[
        "export-web",
        "--student",
        &p("student/student"),
        "--teacher",
        teacher,
        "--data",
        &p("data"),
        "--split",
        "test",
        "--output",
        &p("assets"),
        "--examples",
        "3",
        "--corpus",
        "200",
        "--max-length",
        "96",
        "--noisy-mode",
        "delete",
    ]);

    let assets = root.join("assets");
    let native = soft_labels(&assets, &[]);
    let native_mask = soft_labels(&assets, &["--mask-ratio", "0.35", "--noisy-mode", "mask"]);
    let w = &native["walkthrough"];
    let (positive, best_negative, dark_high) =
        (w["plain_positive"].as_f64().unwrap(), w["best_negative"].as_f64().unwrap(), w["dark_high"].as_f64().unwrap());
    assert!(positive > 0.9, "the teacher is confident on the plain candidates: {w}");
    assert!(dark_high > best_negative, "a dark example above every mined negative: {w}");
    assert!(w["in_band"].as_u64().unwrap_or(0) >= 1, "dark examples in the band: {w}");

    let server = StaticServer::start(vec![("/".into(), dist.clone()), ("/assets/".into(), assets.clone())]);
    let shots = std::env::temp_dir().join("adam-web-e2e-paraphrase");
    std::fs::create_dir_all(&shots).unwrap();
    let query = native["query"].as_str().unwrap().to_string();
    let r = drive(&server.url("/"), "cpu", &shots, &query);
    assert_eq!(r["backend"].as_str().map(str::trim), Some("cpu"), "{r}");
    assert_close(&floats(&r["teacher"]), &floats(&native["teacher"]), "paraphrase teacher");
    assert_close(&floats(&r["student"]), &floats(&native["student"]), "paraphrase student");
    let text = r["walkthrough"]["text"].as_str().unwrap_or("");
    assert!(text.contains(&format!("P_T = {positive:.3}")), "{text}");
    // The assets open deleting pieces; the page switches to masks and recomputes as natively.
    assert_eq!(r["noisy_switched_to"], "mask", "{r}");
    assert_close(&floats(&r["teacher_switch"]), &floats(&native_mask["teacher"]), "paraphrase teacher, mask 0.35");
}
