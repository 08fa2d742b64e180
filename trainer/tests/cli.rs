//! The command line a user meets first: `adam --help` lists every command, and each command's
//! `--help` works. (Also makes `cargo test --workspace` build the `adam` binary that the
//! workspace-level tests in `tests/` run.)

use std::process::Command;

const COMMANDS: &[&str] = &[
    "demo", "embed", "eval", "bench", "bench-train", "negatives", "teaching-set", "teacher", "distill", "report",
    "export-web", "soft-labels",
];

fn adam(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_adam")).args(args).output().expect("run adam")
}

#[test]
fn help_lists_every_command() {
    let out = adam(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in COMMANDS {
        assert!(text.contains(command), "`adam --help` does not list `{command}`:\n{text}");
    }
}

#[test]
fn every_command_has_help() {
    for command in COMMANDS {
        let out = adam(&[command, "--help"]);
        assert!(out.status.success(), "`adam {command} --help` failed");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "`adam {command} --help`");
    }
}

#[test]
fn unknown_command_fails_with_a_message() {
    let out = adam(&["distil-everything"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}
