//! One error type that always says which file (and where possible which line and field) is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is wrong; `line` is 1-based.
    #[error("{}", format_location(path, *line, field.as_deref(), message))]
    Format { path: PathBuf, line: Option<usize>, field: Option<String>, message: String },
    /// A model folder is incomplete or does not match its config.
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },
    /// The tokenizer failed on some input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Invalid argument or configuration value.
    #[error("{0}")]
    Invalid(String),
}

fn format_location(path: &Path, line: Option<usize>, field: Option<&str>, message: &str) -> String {
    let mut s = path.display().to_string();
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
    }
    if let Some(field) = field {
        s.push_str(&format!(": field `{field}`"));
    }
    s.push_str(": ");
    s.push_str(message);
    s
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn format(path: impl Into<PathBuf>, line: Option<usize>, message: impl fmt::Display) -> Self {
        Error::Format { path: path.into(), line, field: None, message: message.to_string() }
    }

    pub fn field(path: impl Into<PathBuf>, line: usize, field: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Format { path: path.into(), line: Some(line), field: Some(field.into()), message: message.to_string() }
    }

    pub fn model(path: impl Into<PathBuf>, message: impl fmt::Display) -> Self {
        Error::Model { path: path.into(), message: message.to_string() }
    }
}
