//! `adam embed` as a user runs it: vectors equal sentence-transformers', input order kept across
//! chunks, empty input gives empty output; wgpu without an adapter, bad input and incomplete
//! model folders are clear errors.

use adam_tests::{TempDir, adam, adam_bin, cosine, fixture, golden, max_abs_diff, stderr};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    texts: Vec<GoldenText>,
}

#[derive(Deserialize)]
struct GoldenText {
    name: String,
    text: String,
    st_embedding: Vec<f32>,
}

fn golden_texts() -> Vec<GoldenText> {
    let g: Golden = serde_json::from_slice(&std::fs::read(golden("minilm_embeddings.json")).unwrap()).unwrap();
    // One text per line: texts with line breaks cannot be fed through this format.
    g.texts.into_iter().filter(|t| !t.text.contains('\n') && !t.text.contains('\r')).collect()
}

fn read_vectors(path: &std::path::Path) -> Vec<Vec<f32>> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `adam embed --model MODEL` from `tmp`'s `in.txt` to its `out.jsonl`, with `extra` flags.
fn embed(model: &std::path::Path, tmp: &TempDir, extra: &[&str]) -> std::process::Output {
    let (input, output) = (tmp.path("in.txt"), tmp.path("out.jsonl"));
    let mut args = vec!["embed", "--model", model.to_str().unwrap()];
    args.extend(["--input", input.to_str().unwrap(), "--output", output.to_str().unwrap()]);
    args.extend_from_slice(extra);
    adam(&args)
}

fn embed_and_check(backend: &str, batch_size: &str, repeat: usize) {
    let Some(model) = fixture("models/all-MiniLM-L6-v2") else { return };
    let texts = golden_texts();
    let tmp = TempDir::new(&format!("embed-{backend}-{batch_size}"));
    let order: Vec<&GoldenText> = (0..repeat)
        .flat_map(|r| {
            // Rotate each repetition so chunk boundaries fall on different texts.
            let k = r % texts.len();
            texts[k..].iter().chain(&texts[..k])
        })
        .collect();
    let input = order.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join("\n") + "\n";
    std::fs::write(tmp.path("in.txt"), input).unwrap();
    let out = embed(&model, &tmp, &["--batch-size", batch_size, "--backend", backend]);
    assert!(out.status.success(), "{}", stderr(&out));
    let vectors = read_vectors(&tmp.path("out.jsonl"));
    assert_eq!(vectors.len(), order.len(), "one output line per input line");
    for (t, v) in order.iter().zip(&vectors) {
        let cos = cosine(v, &t.st_embedding);
        let diff = max_abs_diff(v, &t.st_embedding);
        assert!(cos >= 0.99999 && diff <= 2e-4, "{backend} {}: cosine {cos}, max diff {diff}", t.name);
    }
}

#[test]
fn flex_vectors_equal_sentence_transformers_in_input_order() {
    // batch 2 → chunks of 32 lines: 3 repetitions cross several chunk boundaries.
    embed_and_check("flex", "2", 3);
}

#[test]
fn wgpu_vectors_equal_sentence_transformers() {
    // Runs on Mesa's lavapipe in CI (.ci/run installs mesa-vulkan-drivers).
    embed_and_check("wgpu", "8", 1);
}

#[test]
fn wgpu_without_an_adapter_is_a_clear_error() {
    let Some(model) = fixture("models/all-MiniLM-L6-v2") else { return };
    let tmp = TempDir::new("embed-no-adapter");
    std::fs::write(tmp.path("in.txt"), "hello\n").unwrap();
    // Hide every Vulkan driver and every EGL (OpenGL) vendor: wgpu then finds no adapter at all.
    let out = std::process::Command::new(adam_bin())
        .args(["embed", "--model", model.to_str().unwrap(), "--backend", "wgpu"])
        .args(["--input", tmp.path("in.txt").to_str().unwrap(), "--output", tmp.path("out.jsonl").to_str().unwrap()])
        .env("VK_ICD_FILENAMES", tmp.path("no-vulkan.json"))
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", tmp.path("no-egl.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no usable GPU adapter") && err.contains("--backend flex"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!tmp.path("out.jsonl").exists(), "no output");
}

#[test]
fn empty_input_gives_empty_output() {
    let Some(model) = fixture("models/all-MiniLM-L6-v2") else { return };
    let tmp = TempDir::new("embed-empty");
    std::fs::write(tmp.path("in.txt"), "").unwrap();
    let out = embed(&model, &tmp, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(tmp.path("out.jsonl")).unwrap(), b"");
}

#[test]
fn invalid_utf8_names_file_and_line_and_leaves_no_output() {
    let Some(model) = fixture("models/all-MiniLM-L6-v2") else { return };
    let tmp = TempDir::new("embed-utf8");
    std::fs::write(tmp.path("in.txt"), b"fine\nalso fine\nbad \xff byte\n").unwrap();
    let out = embed(&model, &tmp, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("in.txt:3") && err.contains("UTF-8"), "{err}");
    assert!(!tmp.path("out.jsonl").exists(), "no partial output");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
}

#[test]
fn missing_model_file_is_named() {
    let Some(model) = fixture("models/all-MiniLM-L6-v2") else { return };
    let tmp = TempDir::new("embed-missing");
    let dir = tmp.path("model");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["config.json", "model.safetensors"] {
        std::os::unix::fs::symlink(model.join(name), dir.join(name)).unwrap();
    }
    std::fs::write(tmp.path("in.txt"), "hello\n").unwrap();
    let out = embed(&dir, &tmp, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("tokenizer.json") && err.contains("missing"), "{err}");
}

#[test]
fn broken_config_is_named_with_line() {
    let Some(model) = fixture("models/all-MiniLM-L6-v2") else { return };
    let tmp = TempDir::new("embed-config");
    let dir = tmp.path("model");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(model.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    std::os::unix::fs::symlink(model.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    std::fs::write(dir.join("config.json"), "{\n  \"hidden_size\": \"big\"\n}\n").unwrap();
    std::fs::write(tmp.path("in.txt"), "hello\n").unwrap();
    let out = embed(&dir, &tmp, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("config.json:2"), "{err}");
}
