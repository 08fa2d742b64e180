//! The models the commands load, and the flags that describe them.

use std::path::PathBuf;

use crate::backend::Backend;

/// A model and how to run it, as the commands that encode texts use it.
#[derive(Debug, Clone)]
pub struct ModelArgs {
    pub model: PathBuf,
    pub batch_size: usize,
    pub max_length: Option<usize>,
    pub layers: Option<usize>,
    pub backend: Backend,
}

/// The encoder flags of `embed`, `eval --model` and `negatives --method dense`, declared once.
/// Optional so that a command can refuse them where no model runs.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EncoderFlags {
    /// Texts per forward pass [default: 32].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Truncate texts to this many tokens [default: the model's max_seq_length].
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    /// Use only the model's first K transformer layers, as a student with `layers = K` starts
    /// (e.g. to measure that student untrained).
    #[arg(long, value_name = "K")]
    pub layers: Option<usize>,
    /// Compute backend [default: flex].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
}

impl EncoderFlags {
    /// The first flag given, by name, of `others` and then these, for the error of a command
    /// (or mode) that runs no model.
    pub fn first_given(&self, others: &[(&'static str, bool)]) -> Option<&'static str> {
        others
            .iter()
            .copied()
            .chain([
                ("--batch-size", self.batch_size.is_some()),
                ("--max-length", self.max_length.is_some()),
                ("--layers", self.layers.is_some()),
                ("--backend", self.backend.is_some()),
            ])
            .find_map(|(flag, given)| given.then_some(flag))
    }

    pub fn with_model(&self, model: PathBuf) -> ModelArgs {
        ModelArgs {
            model,
            batch_size: self.batch_size.unwrap_or(32),
            max_length: self.max_length,
            layers: self.layers,
            backend: self.backend.unwrap_or(Backend::Flex),
        }
    }
}
