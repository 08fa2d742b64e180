//! Writes models in the Hugging Face layouts that [`crate::loader`] reads (and that
//! `transformers` / `sentence-transformers` load):
//!
//! - a student (dual encoder) as a sentence-transformers folder: `config.json`,
//!   `model.safetensors` (`BertModel` names), `tokenizer.json`, `modules.json`,
//!   `1_Pooling/config.json`, `sentence_bert_config.json` (and a `Normalize` module when the
//!   vectors are normalised);
//! - a teacher (cross-encoder) in the `BertForSequenceClassification` layout (`bert.` prefix,
//!   `bert.pooler.dense`, `classifier`) or the `MPNetForSequenceClassification` one (`mpnet.`,
//!   `classifier.dense`, `classifier.out_proj`).
//!
//! Everything is built as `(relative path, bytes)` pairs so the browser can offer the files as a
//! download; [`write_folder`] puts them on disk atomically (native only).

use std::collections::BTreeMap;

use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, SafetensorsStore};
use burn::tensor::DType;
use serde_json::json;

use crate::config::{Architecture, BertConfig, Pooling, SentenceConfig};
use crate::model::{BertModel, CrossEncoderModel};
use crate::tokenize::TextTokenizer;
use crate::{Error, Result};

/// One file of a model folder: path relative to the folder (`/`-separated) and content.
pub type ModelFile = (String, Vec<u8>);

/// How weights are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveOptions {
    /// Store float weights as f16 (half the download; the loader casts them back to f32).
    pub half: bool,
}

/// Files of a source folder worth carrying over verbatim when present (tokenizer settings that
/// `transformers` reads besides `tokenizer.json`).
pub const TOKENIZER_SIDE_FILES: [&str; 3] = ["tokenizer_config.json", "special_tokens_map.json", "vocab.txt"];

/// Our module paths → Hugging Face names (the reverse of the loader's renames). LayerNorm
/// `gamma`/`beta` become `weight`/`bias` and Linear weights are transposed by
/// `BurnToPyTorchAdapter` before these renames apply.
fn hf_store(options: SaveOptions) -> SafetensorsStore {
    let store = SafetensorsStore::from_bytes(None);
    let store = if options.half {
        store.with_to_adapter(BurnToPyTorchAdapter.chain(FloatCastAdapter::to(DType::F16)))
    } else {
        store.with_to_adapter(BurnToPyTorchAdapter)
    };
    store
        .with_key_remapping(r"\.attention\.self_attn\.", ".attention.self.")
        .with_key_remapping(r"\.layer_norm\.", ".LayerNorm.")
        // transformers refuses safetensors files whose `format` is not one it knows; the other
        // default keys are dropped because their order (a hash map's) would make equal models
        // give different files.
        .clear_metadata()
        .metadata("format", "pt")
}

fn safetensors_bytes<M: Module>(model: &M, store: SafetensorsStore) -> Result<Vec<u8>> {
    let mut store = store;
    model.save_into(&mut store).map_err(|e| Error::Invalid(format!("serialising the weights: {e}")))?;
    store.get_bytes().map_err(|e| Error::Invalid(format!("serialising the weights: {e}")))
}

/// `model.safetensors` of a `BertModel` (no prefix, as sentence-transformers saves it).
pub fn bert_safetensors(model: &BertModel, options: SaveOptions) -> Result<Vec<u8>> {
    safetensors_bytes(model, hf_store(options))
}

/// `model.safetensors` of a `BertForSequenceClassification` or `MPNetForSequenceClassification`
/// (the reverse of the loader's cross-encoder renames).
pub fn cross_encoder_safetensors(model: &CrossEncoderModel, options: SaveOptions) -> Result<Vec<u8>> {
    let store = hf_store(options).skip_enum_variants(true);
    let store = match model.architecture() {
        Architecture::Bert => {
            store.with_key_remapping(r"^transformer\.", "bert.").with_key_remapping(r"^pooler\.", "bert.pooler.")
        }
        Architecture::MPNet => store
            .with_key_remapping(r"^transformer\.", "mpnet.")
            .with_key_remapping(r"^classifier\.", "classifier.out_proj.")
            .with_key_remapping(r"^pooler\.dense\.", "classifier.dense."),
    };
    safetensors_bytes(model, store)
}

fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON values serialise");
    bytes.push(b'\n');
    bytes
}

fn config_json(config: &BertConfig, architecture: &str, dtype: &str) -> Result<Vec<u8>> {
    let mut value =
        serde_json::to_value(config).map_err(|e| Error::Invalid(format!("serialising config.json: {e}")))?;
    value["architectures"] = json!([architecture]);
    value["torch_dtype"] = json!(dtype);
    Ok(json_bytes(&value))
}

/// The tokenizer files: `tokenizer.json` (without the export-time padding/truncation the
/// source may have had; the length limit lives in `sentence_bert_config.json`), the side files
/// given in `side_files` (copied from the source folder), and a minimal
/// `tokenizer_config.json` when the source had none.
fn tokenizer_files(
    tokenizer: &TextTokenizer,
    side_files: &[ModelFile],
    model_max_length: usize,
) -> Result<Vec<ModelFile>> {
    let mut files = vec![("tokenizer.json".to_string(), tokenizer.to_json()?)];
    files.extend(side_files.iter().filter(|(p, _)| TOKENIZER_SIDE_FILES.contains(&p.as_str())).cloned());
    if !files.iter().any(|(p, _)| p == "tokenizer_config.json") {
        // BertTokenizerFast re-applies `do_lower_case` over tokenizer.json's normaliser, so it
        // must say what the normaliser does.
        files.push((
            "tokenizer_config.json".into(),
            json_bytes(&json!({
                "tokenizer_class": "BertTokenizer",
                "do_lower_case": tokenizer.lowercases(),
                "model_max_length": model_max_length,
                "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "cls_token": "[CLS]", "mask_token": "[MASK]",
            })),
        ));
    }
    Ok(files)
}

/// The files of a sentence-transformers folder for a student.
pub fn student_files(
    bert: &BertModel,
    config: &BertConfig,
    sentence: &SentenceConfig,
    tokenizer: &TextTokenizer,
    side_files: &[ModelFile],
    options: SaveOptions,
) -> Result<Vec<ModelFile>> {
    let mut config = config.clone();
    config.num_hidden_layers = bert.encoder.layer.len();
    config.num_labels = None;
    config.id2label = None;
    let dtype = if options.half { "float16" } else { "float32" };
    let mut files = vec![
        ("config.json".to_string(), config_json(&config, "BertModel", dtype)?),
        ("model.safetensors".to_string(), bert_safetensors(bert, options)?),
    ];
    files.extend(tokenizer_files(tokenizer, side_files, sentence.max_seq_length)?);
    let mut modules = vec![
        json!({"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}),
        json!({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}),
    ];
    if sentence.normalize {
        modules.push(
            json!({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}),
        );
    }
    files.push(("modules.json".into(), json_bytes(&serde_json::Value::Array(modules))));
    files.push((
        "1_Pooling/config.json".into(),
        json_bytes(&json!({
            "word_embedding_dimension": config.hidden_size,
            "pooling_mode_cls_token": sentence.pooling == Pooling::Cls,
            "pooling_mode_mean_tokens": sentence.pooling == Pooling::Mean,
            "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false,
        })),
    ));
    files.push((
        "sentence_bert_config.json".into(),
        json_bytes(&json!({"max_seq_length": sentence.max_seq_length, "do_lower_case": false})),
    ));
    Ok(files)
}

/// The files of a `BertForSequenceClassification` folder for a teacher. `max_length` is the
/// pair length it was trained with (recorded as the tokenizer's `model_max_length`).
pub fn cross_encoder_files(
    model: &CrossEncoderModel,
    config: &BertConfig,
    tokenizer: &TextTokenizer,
    side_files: &[ModelFile],
    options: SaveOptions,
) -> Result<Vec<ModelFile>> {
    let mut config = config.clone();
    config.num_hidden_layers = model.layers();
    let labels = model.classifier.weight.val().dims()[1];
    config.num_labels = None;
    config.id2label = Some((0..labels).map(|i| (i.to_string(), format!("LABEL_{i}"))).collect::<BTreeMap<_, _>>());
    let architecture_name = match model.architecture() {
        Architecture::Bert => "BertForSequenceClassification",
        Architecture::MPNet => "MPNetForSequenceClassification",
    };
    let dtype = if options.half { "float16" } else { "float32" };
    let mut files = vec![
        ("config.json".to_string(), config_json(&config, architecture_name, dtype)?),
        ("model.safetensors".to_string(), cross_encoder_safetensors(model, options)?),
    ];
    files.extend(tokenizer_files(tokenizer, side_files, tokenizer.max_length())?);
    Ok(files)
}

/// Reads the side files (see [`TOKENIZER_SIDE_FILES`]) a source folder has.
#[cfg(not(target_family = "wasm"))]
pub fn read_side_files(dir: &std::path::Path) -> Result<Vec<ModelFile>> {
    let mut files = Vec::new();
    for name in TOKENIZER_SIDE_FILES {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => files.push((name.to_string(), bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(files)
}

/// Writes `files` as the folder `dir`, atomically: everything goes into a hidden sibling folder
/// that is renamed into place once complete, so `dir` is never half-written. An existing `dir`
/// is replaced only if it looks like something this crate wrote (it has `config.json`,
/// `state.json` or nothing at all), so a mistyped path cannot wipe an unrelated folder.
#[cfg(not(target_family = "wasm"))]
pub fn write_folder(dir: &std::path::Path, files: &[ModelFile]) -> Result<()> {
    use std::fs;
    use std::io::Write;

    let name = dir
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{}: not a folder name", dir.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    if dir.exists() {
        let ours = ["config.json", "state.json"].iter().any(|f| dir.join(f).is_file())
            || fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !ours {
            return Err(Error::Invalid(format!(
                "{} exists and is not a model or checkpoint folder: refusing to replace it",
                dir.display()
            )));
        }
    }
    let pid = std::process::id();
    let tmp = parent.join(format!(".{name}.tmp-{pid}"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    for (rel, bytes) in files {
        if rel.split('/').any(|part| part.is_empty() || part == "..") {
            return Err(Error::Invalid(format!("bad file name `{rel}` in a model folder")));
        }
        let path = tmp.join(rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
        }
        let mut file = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&path, e))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
    }
    if dir.exists() {
        // Two renames: a crash between them leaves the old folder beside, never a partial one.
        let old = parent.join(format!(".{name}.old-{pid}"));
        let _ = fs::remove_dir_all(&old);
        fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
        fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}
