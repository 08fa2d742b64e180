//! Helpers for the workspace-level end-to-end tests: where the fixtures are and how to run the
//! `adam` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixture folder (`$ADAM_FIXTURES`, default `../shared` beside the checkout), or `None`
/// when it is absent outside CI. In CI (`CI=true`) a missing fixture fails the test.
pub fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("ADAM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("..").join("shared"));
    if dir.join("models").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("fixtures not found at {} (set ADAM_FIXTURES): CI must run every test", dir.display());
    }
    skipped(&format!("fixtures not found at {} (set ADAM_FIXTURES)", dir.display()));
    None
}

/// `fixtures()` joined with `rel`, e.g. `models/all-MiniLM-L6-v2`.
pub fn fixture(rel: &str) -> Option<PathBuf> {
    fixtures().map(|d| d.join(rel))
}

/// all-mpnet-base-v2, which is too big for the fixtures: `$ADAM_MPNET`, else where
/// `scripts/fetch_mpnet.sh` assembles it (`~/.cache/adam-models/all-mpnet-base-v2`). `None` when
/// it is absent outside CI; in CI (which runs the script first) a missing model fails the test.
pub fn mpnet_model() -> Option<PathBuf> {
    let dir = std::env::var_os("ADAM_MPNET").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/adam-models/all-mpnet-base-v2")
    });
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("all-mpnet-base-v2 not found at {} (bash scripts/fetch_mpnet.sh, or set ADAM_MPNET)", dir.display());
    }
    skipped(&format!("all-mpnet-base-v2 not found at {} (bash scripts/fetch_mpnet.sh)", dir.display()));
    None
}

pub fn workspace_root() -> PathBuf {
    // `cargo test` sets CARGO_MANIFEST_DIR for the running test (a member folder, one below the
    // root). The compile-time value is only a fallback: two checkouts sharing one target folder
    // reuse this library built in the other, and its golden files and page test were the other's.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let dir = dir.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent().expect("a workspace member has a parent").to_path_buf()
}

/// The committed golden files (`tests/golden/`).
pub fn golden(rel: &str) -> PathBuf {
    workspace_root().join("tests").join("golden").join(rel)
}

/// The `adam` binary: `$ADAM_BIN` when set (a release build, or a copy when several checkouts
/// share one target folder and would overwrite each other's `adam`), else `target/<profile>/adam`.
/// `cargo test --workspace` builds that binary itself, with the same dependency features as the
/// tests, because adam-trainer has an integration test (`trainer/tests/cli.rs`). Only when it is
/// missing (e.g. `cargo test -p adam-tests`) is it built here: a separate `cargo build -p` resolves
/// features differently and can recompile much of the dependency tree.
pub fn adam_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ADAM_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "ADAM_BIN={} is not a file", bin.display());
        return bin;
    }
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    let bin = dir.join(format!("adam{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        return bin;
    }
    BUILD.call_once(|| {
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(other) => other,
            None => "dev",
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "adam-trainer", "--bin", "adam", "--profile", profile])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build for the adam binary");
        assert!(status.success(), "building the adam binary failed");
    });
    assert!(bin.is_file(), "{} not found after building adam-trainer", bin.display());
    bin
}

/// Runs `adam` with `args`.
pub fn adam(args: &[&str]) -> Output {
    Command::new(adam_bin()).args(args).output().expect("run adam")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("adam-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A folder for setup that a whole test file shares through a static, which is never dropped:
/// named by process id, and created after removing the folders of earlier runs whose process
/// has ended (Linux: no `/proc/<pid>`), so that repeated runs do not fill the disk while a run
/// beside this one keeps its own.
pub fn process_dir(name: &str) -> PathBuf {
    let prefix = format!("adam-test-{name}-");
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let pid = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && Path::new("/proc/self").exists()
                && !Path::new("/proc").join(pid.to_string()).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max)
}

/// The golden tolerance of a vector against sentence-transformers': cosine >= 0.99999 and every
/// component within 2e-4.
pub fn assert_close(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: dimension");
    let cos = cosine(got, want);
    let diff = max_abs_diff(got, want);
    assert!(cos >= 0.99999, "{name}: cosine {cos}");
    assert!(diff <= 2e-4, "{name}: max abs diff {diff}");
}

/// Writes a cross-encoder folder as transformers' `save_pretrained` would for
/// `BertForSequenceClassification`: the BERT tensors of the sentence-transformers checkpoint
/// `src` under `bert.`, a head `classifier_weight` (`[labels][hidden]`) / `classifier_bias`,
/// `config.json` with `num_labels`, the tokenizer.
pub fn write_classification_checkpoint(
    src: &Path,
    dst: &Path,
    classifier_weight: &[Vec<f32>],
    classifier_bias: &[f32],
) {
    use safetensors::tensor::{Dtype, TensorView};
    std::fs::create_dir_all(dst).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (labels, hidden) = (classifier_weight.len(), classifier_weight[0].len());
    let mut owned: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (format!("bert.{name}"), view.data().to_vec(), view.shape().to_vec(), view.dtype()))
        .collect();
    let w: Vec<u8> = classifier_weight.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    let b: Vec<u8> = classifier_bias.iter().flat_map(|x| x.to_le_bytes()).collect();
    owned.push(("classifier.weight".into(), w, vec![labels, hidden], Dtype::F32));
    owned.push(("classifier.bias".into(), b, vec![labels], Dtype::F32));
    let views: Vec<(String, TensorView)> =
        owned.iter().map(|(n, d, s, t)| (n.clone(), TensorView::new(*t, s.clone(), d).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &dst.join("model.safetensors")).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    config["num_labels"] = labels.into();
    config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    std::fs::write(dst.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(src.join("tokenizer.json"), dst.join("tokenizer.json")).unwrap();
}

/// [`write_classification_checkpoint`] with the one-label head of
/// `tests/golden/minilm_cross_encoder.json` (the head the golden scores were computed with).
pub fn write_golden_cross_encoder(src: &Path, dst: &Path) {
    #[derive(serde::Deserialize)]
    struct Head {
        num_labels: usize,
        classifier_weight: Vec<Vec<f32>>,
        classifier_bias: Vec<f32>,
    }
    #[derive(serde::Deserialize)]
    struct Golden {
        heads: Vec<Head>,
    }
    let golden: Golden = serde_json::from_slice(&std::fs::read(golden("minilm_cross_encoder.json")).unwrap()).unwrap();
    let head = golden.heads.iter().find(|h| h.num_labels == 1).expect("a one-label golden head");
    write_classification_checkpoint(src, dst, &head.classifier_weight, &head.classifier_bias);
}

/// A tiny static-file HTTP server (GET/HEAD, one thread per connection) for the browser tests:
/// `routes` map URL prefixes to folders, longest prefix first; `.wasm` is served as
/// `application/wasm` so browsers compile it streaming.
pub struct StaticServer {
    pub port: u16,
}

pub fn mime_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "md" | "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

impl StaticServer {
    pub fn start(routes: Vec<(String, PathBuf)>) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let mut routes = routes;
        routes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let routes = std::sync::Arc::new(routes);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let routes = routes.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(match stream.try_clone() {
                        Ok(s) => s,
                        Err(_) => return,
                    });
                    let mut request = String::new();
                    if reader.read_line(&mut request).is_err() {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        match reader.read_line(&mut header) {
                            Ok(0) | Err(_) => break,
                            Ok(_) if header.trim().is_empty() => break,
                            Ok(_) => {}
                        }
                    }
                    let mut parts = request.split_whitespace();
                    let method = parts.next().unwrap_or("");
                    let target = parts.next().unwrap_or("/");
                    let path = target.split(['?', '#']).next().unwrap_or("/");
                    let file = resolve(&routes, path);
                    let mut out = stream;
                    let (status, body, mime) = match file {
                        Some(f) if f.is_file() => match std::fs::read(&f) {
                            Ok(b) => ("200 OK", b, mime_type(&f)),
                            Err(_) => ("500 Internal Server Error", b"read error".to_vec(), "text/plain"),
                        },
                        _ => ("404 Not Found", b"not found".to_vec(), "text/plain"),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = out.write_all(head.as_bytes());
                    if method != "HEAD" {
                        let _ = out.write_all(&body);
                    }
                    let _ = out.flush();
                });
            }
        });
        StaticServer { port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// The file a URL path names under the longest matching prefix (`/` → `index.html`), refusing
/// `..` and percent-decoding.
fn resolve(routes: &[(String, PathBuf)], path: &str) -> Option<PathBuf> {
    let path = percent_decode(path);
    if path.split('/').any(|seg| seg == "..") {
        return None;
    }
    let (prefix, dir) = routes.iter().find(|(prefix, _)| path.starts_with(prefix.as_str()))?;
    let rel = path[prefix.len()..].trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    Some(dir.join(rel))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `program` runs (`program --version` exits 0).
pub fn has_program(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Skips a test whose tools are missing (a message), or fails it in CI, where everything must run.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{what} is missing: CI must run every test (.ci/run installs it)");
    }
    skipped(&format!("{what} is missing (.ci/run installs it)"));
    false
}

/// Records that the current test skipped, and why: on stderr, and as a line in the file
/// `$ADAM_SKIPPED` when set, which `scripts/test.sh` lists at the end of the run so that a test
/// run without fixtures does not pass silently.
pub fn skipped(why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    eprintln!("skipping {test}: {why}");
    if let Some(path) = std::env::var_os("ADAM_SKIPPED") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            // One write per line: tests run in parallel threads and processes.
            let _ = file.write_all(format!("{test}: {why}\n").as_bytes());
        }
    }
}
