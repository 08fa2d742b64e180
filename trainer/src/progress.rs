//! Progress bars on stderr, all drawn alike (indicatif hides them when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` units of work named by `what` (e.g. "embedding queries"), with its rate; its
/// message is left to the caller (a training loop shows the loss there).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    ProgressBar::new(len).with_prefix(what.to_string()).with_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}] {msg}",
        )
        .expect("valid template"),
    )
}
