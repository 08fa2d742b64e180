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
    eprintln!("skipping: fixtures not found at {} (set ADAM_FIXTURES)", dir.display());
    None
}

/// `fixtures()` joined with `rel`, e.g. `models/all-MiniLM-L6-v2`.
pub fn fixture(rel: &str) -> Option<PathBuf> {
    fixtures().map(|d| d.join(rel))
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The committed golden files (`tests/golden/`).
pub fn golden(rel: &str) -> PathBuf {
    workspace_root().join("tests").join("golden").join(rel)
}

/// The `adam` binary of the same build profile as this test. Cargo builds a package's binary
/// only for that package's own integration tests, so it is built here once if missing.
/// `ADAM_BIN` names another binary instead (several checkouts sharing one `CARGO_TARGET_DIR`
/// overwrite each other's `target/debug/adam`; `target/debug/deps/adam-<hash>` is per checkout).
pub fn adam_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ADAM_BIN") {
        return PathBuf::from(bin);
    }
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    let bin = dir.join(format!("adam{}", std::env::consts::EXE_SUFFIX));
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

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).abs()).fold(0.0, f64::max)
}
