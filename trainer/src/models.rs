//! The models the commands load (sentence encoders, cross-encoder teachers, models from scratch),
//! the flags that describe them, and the saving of a trained cross-encoder.

use std::path::{Path, PathBuf};

use adam_core::config::BertConfig;
use adam_core::encoder::SentenceEncoder;
use adam_core::loader::{CrossEncoderOptions, LoadOptions, LoadedCrossEncoder, ModelSource, load_cross_encoder};
use adam_core::model::CrossEncoderModel;
use adam_core::save::{SaveOptions, cross_encoder_files, read_side_files, write_folder};
use adam_core::tokenize::TextTokenizer;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;

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

    /// Texts per forward pass: `--batch-size`, else 32.
    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(32)
    }

    pub fn with_model(&self, model: PathBuf) -> ModelArgs {
        ModelArgs {
            model,
            batch_size: self.batch_size(),
            max_length: self.max_length,
            layers: self.layers,
            backend: self.backend.unwrap_or(Backend::Flex),
        }
    }
}

/// The sentence encoder of `args` (a model folder), on its backend's device.
pub fn load_encoder(args: &ModelArgs) -> Result<SentenceEncoder> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let device = args.backend.device()?;
    let options = LoadOptions { max_length: args.max_length, layers: args.layers };
    Ok(SentenceEncoder::load(&ModelSource::Dir(args.model.clone()), &device, &options)?)
}

/// Loads a teacher folder on `device`, with an error that says how to start a head.
pub fn load_teacher(dir: &Path, device: &Device, max_length: usize, new_head: bool) -> Result<LoadedCrossEncoder> {
    let options = CrossEncoderOptions { max_length: Some(max_length), new_head };
    load_cross_encoder(&ModelSource::Dir(dir.to_path_buf()), device, &options).map_err(|e| {
        let hint = if !new_head && e.to_string().contains("classifier") {
            " (to fine-tune a checkpoint without a classification head, pass --new-head)"
        } else {
            ""
        };
        anyhow::anyhow!("{e}{hint}")
    })
}

/// A randomly initialised cross-encoder (seeded by the device) of the sizes in `config_path`.
pub fn scratch_teacher(
    config_path: &Path,
    tokenizer_path: &Path,
    device: &Device,
    max_length: usize,
) -> Result<LoadedCrossEncoder> {
    let (config, tokenizer) = read_scratch_model(config_path, tokenizer_path, max_length)?;
    Ok(LoadedCrossEncoder { model: CrossEncoderModel::new(&config, device), config, tokenizer })
}

/// The sizes and tokenizer of a model trained from scratch (student or teacher): `config.json`
/// and a `tokenizer.json` (cut at `max_length`, at most the config's positions) whose vocabulary
/// fits the config's.
pub fn read_scratch_model(
    config_path: &Path,
    tokenizer_path: &Path,
    max_length: usize,
) -> Result<(BertConfig, TextTokenizer)> {
    let bytes = std::fs::read(config_path).with_context(|| format!("cannot read {}", config_path.display()))?;
    let config = BertConfig::from_json(&bytes, config_path)?;
    let max_length = max_length.min(config.max_tokens());
    let bytes = std::fs::read(tokenizer_path).with_context(|| format!("cannot read {}", tokenizer_path.display()))?;
    let tokenizer = TextTokenizer::from_bytes(&bytes, tokenizer_path, max_length)?;
    if tokenizer.vocab_size() > config.vocab_size {
        bail!(
            "{} has {} tokens but {} says vocab_size = {}",
            tokenizer_path.display(),
            tokenizer.vocab_size(),
            config_path.display(),
            config.vocab_size
        );
    }
    Ok((config, tokenizer))
}

/// Writes a trained cross-encoder into `dir` (`BertForSequenceClassification` layout), with the
/// tokenizer side files of the folder it was fine-tuned from, if any.
pub fn save_cross_encoder(
    dir: &Path,
    model: &CrossEncoderModel,
    config: &BertConfig,
    tokenizer: &TextTokenizer,
    started_from: Option<&Path>,
    half: bool,
) -> Result<()> {
    let side = match started_from {
        Some(source) => read_side_files(source)?,
        None => Vec::new(),
    };
    let files = cross_encoder_files(&model.valid(), config, tokenizer, &side, SaveOptions { half })?;
    write_folder(dir, &files)?;
    Ok(())
}
