//! Loads a Hugging Face model folder: `config.json`, `model.safetensors`, `tokenizer.json` and the
//! sentence-transformers files. Every failure names the file (and the tensor) that is wrong.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{
    ApplyError, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::{DType, Device};

use crate::config::{Architecture, BertConfig, SentenceConfig, sentence_config};
use crate::model::{BertModel, CrossEncoderModel, MPNetModel, Transformer};
use crate::tokenize::TextTokenizer;
use crate::{Error, Result};

/// Where a model's files come from: a folder on disk, or bytes already in memory (the browser).
pub enum ModelSource {
    Dir(PathBuf),
    Memory {
        /// Shown in error messages in place of a folder.
        name: PathBuf,
        files: std::collections::HashMap<String, Vec<u8>>,
    },
}

impl ModelSource {
    fn name(&self) -> &Path {
        match self {
            ModelSource::Dir(dir) => dir,
            ModelSource::Memory { name, .. } => name,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.name().join(rel)
    }

    /// The bytes of `rel`, or `None` when the file does not exist.
    fn read_optional(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self {
            ModelSource::Dir(dir) => {
                let path = dir.join(rel);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(path, e)),
                }
            }
            ModelSource::Memory { files, .. } => Ok(files.get(rel).cloned()),
        }
    }

    fn read_required(&self, rel: &str, what: &str) -> Result<Vec<u8>> {
        self.read_optional(rel)?
            .ok_or_else(|| Error::model(self.name(), format!("{} is missing ({what})", self.path(rel).display())))
    }
}

/// Everything needed to embed text with a model folder.
pub struct LoadedModel {
    /// BERT or MPNet, as `config.json`'s `model_type` says.
    pub transformer: Transformer,
    pub config: BertConfig,
    pub sentence: SentenceConfig,
    pub tokenizer: TextTokenizer,
}

/// Options that override what the folder says.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Cap on tokens per text; defaults to the folder's `max_seq_length`.
    pub max_length: Option<usize>,
    /// Keep only the first `k` transformer layers (layer truncation: the untrained start of a
    /// smaller student); `config.num_hidden_layers` then says `k`.
    pub layers: Option<usize>,
}

pub fn load_model(source: &ModelSource, device: &Device, options: &LoadOptions) -> Result<LoadedModel> {
    let config_path = source.path("config.json");
    let mut config = BertConfig::from_json(&source.read_required("config.json", "the model's config")?, &config_path)?;
    let mut sentence = sentence_config(source.name(), &config, &|rel| source.read_optional(rel))?;
    // Checked before the weights are read, so a wrong `layers` fails at once.
    if let Some(k) = options.layers {
        let depth = config.num_hidden_layers;
        if k == 0 || k > depth {
            return Err(Error::Invalid(format!(
                "cannot keep the first {k} layers of {}: it has {depth} (give 1 to {depth})",
                source.name().display()
            )));
        }
    }
    if let Some(max) = options.max_length {
        if max < 2 {
            return Err(Error::Invalid(format!("max length {max} leaves no room for [CLS] and [SEP]")));
        }
        sentence.max_seq_length = max.min(config.max_tokens());
    }
    let tokenizer = TextTokenizer::from_bytes(
        &source.read_required("tokenizer.json", "the Hugging Face fast tokenizer file")?,
        &source.path("tokenizer.json"),
        sentence.max_seq_length,
    )?;
    // The weights file names every layer, so the full stack is loaded, then cut.
    let weights = source.read_required_weights()?;
    let path = source.path("model.safetensors");
    let mut transformer = match Transformer::new(&config, device) {
        Transformer::Bert(mut bert) => {
            load_bert_weights(&mut bert, weights, &path)?;
            Transformer::Bert(bert)
        }
        Transformer::MPNet(mut mpnet) => {
            load_mpnet_weights(&mut mpnet, weights, &path)?;
            Transformer::MPNet(mpnet)
        }
    };
    if let Some(k) = options.layers {
        transformer = transformer.truncate_layers(k);
        config.num_hidden_layers = k;
    }
    Ok(LoadedModel { transformer, config, sentence, tokenizer })
}

/// The weights file, either as a path (memory-mapped) or as bytes.
pub enum Weights {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Weights {
    fn store(self) -> SafetensorsStore {
        match self {
            Weights::File(p) => SafetensorsStore::from_file(p),
            Weights::Bytes(b) => SafetensorsStore::from_bytes(Some(b)),
        }
    }
}

impl ModelSource {
    fn read_required_weights(&self) -> Result<Weights> {
        match self {
            ModelSource::Dir(dir) => {
                let path = dir.join("model.safetensors");
                if path.is_file() {
                    Ok(Weights::File(path))
                } else if dir.join("pytorch_model.bin").is_file() {
                    Err(Error::model(
                        dir,
                        "has pytorch_model.bin but no model.safetensors: convert it first \
                         (python -c \"from transformers import AutoModel; AutoModel.from_pretrained('DIR').save_pretrained('DIR', safe_serialization=True)\")",
                    ))
                } else {
                    Err(Error::model(dir, format!("{} is missing (the weights)", path.display())))
                }
            }
            ModelSource::Memory { .. } => Ok(Weights::Bytes(self.read_required("model.safetensors", "the weights")?)),
        }
    }
}

/// Everything needed to score (query, passage) pairs with a cross-encoder folder.
pub struct LoadedCrossEncoder {
    pub model: CrossEncoderModel,
    pub config: BertConfig,
    pub tokenizer: TextTokenizer,
}

/// Options for loading a cross-encoder.
#[derive(Debug, Clone, Default)]
pub struct CrossEncoderOptions {
    /// Cap on tokens per pair; defaults to the model's position limit (at most 512).
    pub max_length: Option<usize>,
    /// Start a new classification head (random, seeded by the device's RNG) when the folder has
    /// none, e.g. to fine-tune a teacher from a sentence-transformers checkpoint. Without it a
    /// missing head is an error.
    pub new_head: bool,
}

/// Loads a `BertForSequenceClassification` folder (keys with or without `bert.`; a folder
/// without a pooler or head is accepted only with `new_head`).
pub fn load_cross_encoder(
    source: &ModelSource,
    device: &Device,
    options: &CrossEncoderOptions,
) -> Result<LoadedCrossEncoder> {
    let config_path = source.path("config.json");
    let config = BertConfig::from_json(&source.read_required("config.json", "the model's config")?, &config_path)?;
    let max_length = options.max_length.unwrap_or(config.max_tokens().min(512));
    if max_length < 3 {
        return Err(Error::Invalid(format!("max length {max_length} leaves no room for [CLS] and two [SEP]")));
    }
    let tokenizer = TextTokenizer::from_bytes(
        &source.read_required("tokenizer.json", "the Hugging Face fast tokenizer file")?,
        &source.path("tokenizer.json"),
        max_length.min(config.max_tokens()),
    )?;
    let mut model = CrossEncoderModel::new(&config, device);
    let path = source.path("model.safetensors");
    let architecture = config.architecture();
    let mut store = cross_encoder_store(source.read_required_weights()?.store(), architecture);
    let result =
        model.load_from(&mut store).map_err(|e| Error::model(&path, format!("cannot read the weights: {e}")))?;
    let names = |p: &str| cross_encoder_hf_name(p, architecture);
    check_applied(
        &result,
        &path,
        |p| options.new_head && (p.starts_with("classifier.") || p.starts_with("pooler.")),
        names,
    )?;
    Ok(LoadedCrossEncoder { model, config, tokenizer })
}

/// Cross-encoder names → module paths (`transformer` is an enum, whose variant burn-store leaves
/// out of the path). BERT: `bert.*` (or a bare `BertModel` checkpoint's `embeddings.*`,
/// `encoder.*`) under `transformer`, `bert.pooler` and `classifier` beside it. MPNet:
/// `mpnet.*` (or bare) under `transformer`, `classifier.dense` → `pooler.dense`,
/// `classifier.out_proj` → `classifier`; a bare `MPNetModel`'s own pooler is not the head's
/// dense layer (transformers starts that afresh) and is left out.
fn cross_encoder_store(store: SafetensorsStore, architecture: Architecture) -> SafetensorsStore {
    let store = match architecture {
        Architecture::Bert => {
            store.with_key_remapping(r"^bert\.", "").with_key_remapping(r"^(embeddings|encoder)\.", "transformer.$1.")
        }
        Architecture::MPNet => store
            .with_key_remapping(r"^pooler\.", "unused_mpnet_pooler.")
            .with_key_remapping(r"^mpnet\.", "")
            .with_key_remapping(r"^(embeddings|encoder)\.", "transformer.$1.")
            .with_key_remapping(r"^classifier\.dense\.", "pooler.dense.")
            .with_key_remapping(r"^classifier\.out_proj\.", "classifier."),
    };
    bert_renames(store).skip_enum_variants(true)
}

/// A cross-encoder module path → its Hugging Face tensor name, for messages.
fn cross_encoder_hf_name(path: &str, architecture: Architecture) -> String {
    let name = hf_name(path);
    match architecture {
        Architecture::Bert => {
            let name = name.replacen("transformer.", "bert.", 1);
            if name.starts_with("pooler.") { format!("bert.{name}") } else { name }
        }
        Architecture::MPNet => name
            .replacen("transformer.", "mpnet.", 1)
            .replacen("pooler.dense.", "classifier.dense.", 1)
            .replacen("classifier.weight", "classifier.out_proj.weight", 1)
            .replacen("classifier.bias", "classifier.out_proj.bias", 1),
    }
}

/// Hugging Face names → this crate's module paths. Works with and without the `bert.` prefix
/// (BertModel vs. BertFor* checkpoints) and with old TF-style LayerNorm gamma/beta names.
fn bert_store(store: SafetensorsStore) -> SafetensorsStore {
    bert_renames(store.with_key_remapping(r"^bert\.", ""))
}

/// The renames inside BERT, shared by [`bert_store`] and [`cross_encoder_store`]. Half-precision
/// files (f16 or bf16 tensors, e.g. the browser demo's smaller downloads) are widened to f32 on
/// load, so every model computes in f32 whatever precision it was stored in.
fn bert_renames(store: SafetensorsStore) -> SafetensorsStore {
    store
        .with_key_remapping(r"\.attention\.self\.", ".attention.self_attn.")
        .with_key_remapping(r"LayerNorm\.gamma$", "LayerNorm.weight")
        .with_key_remapping(r"LayerNorm\.beta$", "LayerNorm.bias")
        .with_key_remapping(r"\.LayerNorm\.", ".layer_norm.")
        // f16 files (e.g. a half-precision download) load into the f32 model.
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
        .allow_partial(true)
        .validate(false)
}

/// Loads weights into `model`, failing with the file and tensor name on any missing tensor or
/// shape mismatch. Extra tensors (the pooler, a classifier head) are ignored.
pub fn load_bert_weights(model: &mut BertModel, weights: Weights, path: &Path) -> Result<()> {
    load_weights(model, bert_store(weights.store()), path)
}

/// MPNet names: `mpnet.` (a `MPNetFor*` checkpoint) is dropped, LayerNorms renamed as in BERT.
fn mpnet_store(store: SafetensorsStore) -> SafetensorsStore {
    bert_renames(store.with_key_remapping(r"^mpnet\.", ""))
}

/// Loads MPNet weights into `model`, naming the file and tensor on any missing tensor or shape
/// mismatch. Extra tensors (the pooler, `position_ids`, a head) are ignored.
pub fn load_mpnet_weights(model: &mut MPNetModel, weights: Weights, path: &Path) -> Result<()> {
    load_weights(model, mpnet_store(weights.store()), path)
}

/// Applies `store` to `model`; every tensor of the model must be in it.
fn load_weights<M: Module>(model: &mut M, mut store: SafetensorsStore, path: &Path) -> Result<()> {
    let result =
        model.load_from(&mut store).map_err(|e| Error::model(path, format!("cannot read the weights: {e}")))?;
    check_applied(&result, path, |_| false, hf_name)
}

/// Turns the store's report into an error naming the file and the first wrong tensor, or all
/// missing ones (except those `may_be_missing` allows).
fn check_applied(
    result: &burn::store::ApplyResult,
    path: &Path,
    may_be_missing: impl Fn(&str) -> bool,
    hf_name: impl Fn(&str) -> String,
) -> Result<()> {
    if let Some(err) = result.errors.first() {
        let message = match err {
            ApplyError::ShapeMismatch { path: tensor, expected, found } => format!(
                "tensor `{}` has shape {:?}, but config.json implies {:?}",
                hf_name(tensor),
                &found[..],
                &expected[..]
            ),
            other => format!("{other:?}"),
        };
        return Err(Error::model(path, message));
    }
    let missing: Vec<String> = result
        .missing
        .iter()
        .map(|(p, _)| p)
        .filter(|p| !p.ends_with(".training")) // dropout switches are not weights
        .filter(|p| !may_be_missing(p))
        .map(|p| hf_name(p))
        .collect();
    if !missing.is_empty() {
        return Err(Error::model(path, format!("missing tensor(s): {}", missing.join(", "))));
    }
    Ok(())
}

/// Our module path → the Hugging Face tensor name, for messages.
fn hf_name(path: &str) -> String {
    path.replace(".self_attn.", ".self.")
        .replace(".layer_norm.gamma", ".LayerNorm.weight")
        .replace(".layer_norm.beta", ".LayerNorm.bias")
        .replace(".layer_norm.", ".LayerNorm.")
}

impl LoadedModel {
    /// Moves the weights to another device (e.g. an autodiff device for training).
    pub fn to_device(mut self, device: &Device) -> Self {
        self.transformer = self.transformer.to_device(device);
        self
    }
}
