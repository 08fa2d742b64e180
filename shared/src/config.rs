//! Model configuration: Hugging Face `config.json` and the sentence-transformers files
//! (`modules.json`, `1_Pooling/config.json`, `sentence_bert_config.json`).

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::{Error, Result};

/// The fields of a Hugging Face `config.json` that shape the network, for the BERT family this
/// crate runs: BERT and MPNet (`model_type`, see [`Architecture`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
    /// Standard deviation of the normal initialisation of a model built from scratch (as in
    /// Hugging Face; loaded checkpoints overwrite it).
    #[serde(default = "default_initializer_range")]
    pub initializer_range: f64,
    /// Architecture names, kept so a saved student says what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// MPNet's relative-position buckets (its attention bias); BERT has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_attention_num_buckets: Option<usize>,
    /// Classification heads (cross-encoders) name their labels; 1 label means a relevance score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_labels: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<std::collections::BTreeMap<String, String>>,
}

impl BertConfig {
    /// The initialisation of every weight of a model built from scratch: normal with
    /// `initializer_range` (Hugging Face's `_init_weights`, which also starts biases at zero; here
    /// they are small and normal too).
    pub fn initializer(&self) -> burn::nn::Initializer {
        burn::nn::Initializer::Normal { mean: 0.0, std: self.initializer_range }
    }

    /// Outputs of a classification head: `num_labels`, else the size of `id2label`, else 1.
    pub fn labels(&self) -> usize {
        self.num_labels.or_else(|| self.id2label.as_ref().map(|m| m.len())).unwrap_or(1).max(1)
    }
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_initializer_range() -> f64 {
    0.02
}
fn default_dropout() -> f64 {
    0.1
}
fn default_position_type() -> String {
    "absolute".into()
}
fn default_model_type() -> String {
    "bert".into()
}

/// The encoder family of a `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Bert,
    /// MPNet (`model_type` `mpnet`): relative-position attention bias, no token types.
    MPNet,
}

/// The activation of the feed-forward block, as named by `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU with erf (`gelu`).
    Gelu,
    /// tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
}

impl BertConfig {
    /// Parses `config.json` bytes; `path` names the file in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let config: BertConfig = serde_json::from_slice(bytes).map_err(|e| Error::format(path, Some(e.line()), e))?;
        config.validate(path)?;
        Ok(config)
    }

    /// The encoder family. Other BERT-shaped families (RoBERTa, …) differ in position ids or
    /// attention and are refused by [`Self::validate`] rather than run wrongly.
    pub fn architecture(&self) -> Architecture {
        if self.model_type == "mpnet" { Architecture::MPNet } else { Architecture::Bert }
    }

    /// MPNet's bucket count (32 when the config does not say).
    pub fn relative_buckets(&self) -> usize {
        self.relative_attention_num_buckets.unwrap_or(32)
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        if self.model_type != "bert" && self.model_type != "mpnet" {
            return Err(Error::model(
                path,
                format!("model_type `{}` is not supported (expected `bert` or `mpnet`)", self.model_type),
            ));
        }
        if self.architecture() == Architecture::MPNet {
            // The reference computes the bias with 32 buckets and a maximum distance of 128
            // whatever the config says; other values would load but not match it.
            if self.relative_buckets() != 32 {
                return Err(Error::model(
                    path,
                    format!(
                        "relative_attention_num_buckets {} is not supported (MPNet uses 32)",
                        self.relative_buckets()
                    ),
                ));
            }
            if self.max_position_embeddings < self.pad_token_id + 2 {
                return Err(Error::model(
                    path,
                    format!(
                        "max_position_embeddings {} leaves no position after pad_token_id {}",
                        self.max_position_embeddings, self.pad_token_id
                    ),
                ));
            }
        }
        if self.position_embedding_type != "absolute" {
            return Err(Error::model(
                path,
                format!(
                    "position_embedding_type `{}` is not supported (expected `absolute`)",
                    self.position_embedding_type
                ),
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::model(
                path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    self.hidden_size, self.num_attention_heads
                ),
            ));
        }
        self.activation(path)?;
        Ok(())
    }

    pub fn activation(&self, path: &Path) -> Result<Activation> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(Error::model(path, format!("hidden_act `{other}` is not supported"))),
        }
    }

    /// The longest token sequence the position table allows: MPNet's positions start after the
    /// padding index (514 entries give 512 tokens).
    pub fn max_tokens(&self) -> usize {
        match self.architecture() {
            Architecture::Bert => self.max_position_embeddings,
            Architecture::MPNet => self.max_position_embeddings - self.pad_token_id - 1,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    Mean,
    Cls,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            other => Err(Error::Invalid(format!("unknown pooling `{other}` (expected mean or cls)"))),
        }
    }
}

/// What sentence-transformers adds on top of the transformer: pooling, normalisation, length.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceConfig {
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_seq_length: usize,
}

#[derive(Deserialize)]
struct StModule {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// A Pooling module's config: sentence-transformers up to 5 writes one flag per mode, 6 writes
/// `"pooling_mode": "mean"`.
#[derive(Deserialize)]
struct StPooling {
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct StBertConfig {
    max_seq_length: Option<usize>,
}

/// sentence-transformers 6 keeps the sequence limit in the tokenizer's config instead.
#[derive(Deserialize)]
struct TokenizerConfig {
    model_max_length: Option<f64>,
}

/// Reads the optional sentence-transformers files through `read`, which maps a path relative
/// to the model folder to its bytes (`None` when the file does not exist). Without
/// `modules.json` the defaults are mean pooling, no normalisation and the model's position limit
/// (capped at 512), as sentence-transformers does for a bare Hugging Face model. The sequence
/// limit is `sentence_bert_config.json`'s `max_seq_length`, else (sentence-transformers 6)
/// `tokenizer_config.json`'s `model_max_length`, never above the position limit.
pub fn sentence_config(
    dir: &Path,
    bert: &BertConfig,
    read: &dyn Fn(&str) -> Result<Option<Vec<u8>>>,
) -> Result<SentenceConfig> {
    let mut config =
        SentenceConfig { pooling: Pooling::Mean, normalize: false, max_seq_length: bert.max_tokens().min(512) };
    if let Some(bytes) = read("sentence_bert_config.json")? {
        let path = dir.join("sentence_bert_config.json");
        let st: StBertConfig = serde_json::from_slice(&bytes).map_err(|e| Error::format(&path, Some(e.line()), e))?;
        if let Some(max) = st.max_seq_length {
            config.max_seq_length = max.min(bert.max_tokens());
        } else if let Some(bytes) = read("tokenizer_config.json")? {
            let path = dir.join("tokenizer_config.json");
            let tc: TokenizerConfig =
                serde_json::from_slice(&bytes).map_err(|e| Error::format(&path, Some(e.line()), e))?;
            // Tokenizers without a limit store a huge number here; the position limit caps it.
            if let Some(max) = tc.model_max_length.filter(|m| *m >= 1.0) {
                config.max_seq_length = (max.min(bert.max_tokens() as f64)) as usize;
            }
        }
    }
    let Some(bytes) = read("modules.json")? else {
        return Ok(config);
    };
    let modules_path = dir.join("modules.json");
    let modules: Vec<StModule> =
        serde_json::from_slice(&bytes).map_err(|e| Error::format(&modules_path, Some(e.line()), e))?;
    for module in &modules {
        let kind = module.kind.rsplit('.').next().unwrap_or_default();
        match kind {
            "Normalize" => config.normalize = true,
            "Pooling" => {
                let rel = format!("{}/config.json", module.path.trim_end_matches('/'));
                let path = dir.join(&rel);
                let bytes = read(&rel)?.ok_or_else(|| {
                    Error::model(dir, format!("modules.json names a Pooling module but {rel} is missing"))
                })?;
                let p: StPooling =
                    serde_json::from_slice(&bytes).map_err(|e| Error::format(&path, Some(e.line()), e))?;
                config.pooling = match (p.pooling_mode.as_deref(), p.pooling_mode_cls_token, p.pooling_mode_mean_tokens)
                {
                    (Some("cls"), ..) => Pooling::Cls,
                    (Some("mean"), ..) => Pooling::Mean,
                    (Some(other), ..) => {
                        return Err(Error::format(
                            &path,
                            None,
                            format!("pooling_mode `{other}` is not supported (use cls or mean)"),
                        ));
                    }
                    (None, true, false) => Pooling::Cls,
                    (None, false, true) => Pooling::Mean,
                    _ => {
                        return Err(Error::format(
                            &path,
                            None,
                            "exactly one of pooling_mode_cls_token and pooling_mode_mean_tokens must be true",
                        ));
                    }
                };
                if p.pooling_mode_max_tokens || p.pooling_mode_mean_sqrt_len_tokens {
                    return Err(Error::format(
                        &path,
                        None,
                        "max and mean_sqrt_len pooling are not supported (use cls or mean)",
                    ));
                }
            }
            "Transformer" => {}
            other => {
                return Err(Error::model(
                    &modules_path,
                    format!(
                        "sentence-transformers module `{other}` is not supported (Transformer, Pooling and Normalize are)"
                    ),
                ));
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bert() -> BertConfig {
        let json = br#"{"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 3, "num_attention_heads": 12,
            "intermediate_size": 1536, "max_position_embeddings": 512}"#;
        BertConfig::from_json(json, Path::new("config.json")).unwrap()
    }

    fn read_from(files: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Result<Option<Vec<u8>>> {
        move |rel| Ok(files.iter().find(|(name, _)| *name == rel).map(|(_, text)| text.as_bytes().to_vec()))
    }

    const MODULES: &str = r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.base.modules.normalize.Normalize"}]"#;

    /// What sentence-transformers 6.2 saves: `pooling_mode` as a word, no `max_seq_length` in
    /// sentence_bert_config.json, the limit in tokenizer_config.json.
    #[test]
    fn reads_the_sentence_transformers_6_layout() {
        let read = read_from(&[
            ("modules.json", MODULES),
            (
                "1_Pooling/config.json",
                r#"{"embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": true}"#,
            ),
            (
                "sentence_bert_config.json",
                r#"{"transformer_task": "feature-extraction", "module_output_name": "token_embeddings"}"#,
            ),
            ("tokenizer_config.json", r#"{"model_max_length": 256, "do_lower_case": true}"#),
        ]);
        let config = sentence_config(Path::new("m"), &bert(), &read).unwrap();
        assert_eq!(config, SentenceConfig { pooling: Pooling::Mean, normalize: true, max_seq_length: 256 });
    }

    #[test]
    fn an_unsupported_pooling_mode_names_the_file() {
        let read = read_from(&[
            ("modules.json", MODULES),
            ("1_Pooling/config.json", r#"{"embedding_dimension": 384, "pooling_mode": "lasttoken"}"#),
        ]);
        let err = sentence_config(Path::new("m"), &bert(), &read).unwrap_err().to_string();
        assert!(err.contains("1_Pooling/config.json") && err.contains("`lasttoken` is not supported"), "{err}");
    }

    /// A tokenizer without a limit stores a huge number (transformers' VERY_LARGE_INTEGER): the
    /// position limit applies.
    #[test]
    fn a_huge_tokenizer_limit_is_capped_by_the_positions() {
        let read = read_from(&[
            ("sentence_bert_config.json", "{}"),
            ("tokenizer_config.json", r#"{"model_max_length": 1000000000000000019884624838656}"#),
        ]);
        assert_eq!(sentence_config(Path::new("m"), &bert(), &read).unwrap().max_seq_length, 512);
    }
}
