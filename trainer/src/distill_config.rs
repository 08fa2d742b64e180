//! The TOML config of `adam distill`. Unknown keys and bad values are errors that name the key
//! (and, for syntax and type errors, the line and column `toml` reports). Relative paths are
//! relative to the config file's folder.

use std::path::{Path, PathBuf};

use adam_core::config::Pooling;
use adam_core::dark::NoisyMode;
use adam_core::loss::{AdamConfig, KdLoss};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::optim::OptimConfig;

/// What the student learns from (METHOD.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// Contrastive (InfoNCE) on the labels only.
    #[serde(rename = "ce")]
    Ce,
    /// Listwise KL to the teacher on the original candidates.
    #[serde(rename = "kd")]
    Kd,
    /// MarginMSE to the teacher on the original candidates (baseline).
    #[serde(rename = "margin-mse")]
    MarginMse,
    /// Contrastive + KD over original and dark candidates, self-paced.
    #[serde(rename = "adam")]
    Adam,
    #[serde(rename = "adam-no-self-paced")]
    AdamNoSelfPaced,
    #[serde(rename = "adam-no-dark")]
    AdamNoDark,
}

impl Method {
    pub fn uses_dark(self) -> bool {
        matches!(self, Method::Adam | Method::AdamNoSelfPaced)
    }
    /// Whether the objective has a distillation term (the teacher's scores reach the loss).
    pub fn uses_kd(self) -> bool {
        !matches!(self, Method::Ce)
    }
    pub fn self_paced(self) -> bool {
        matches!(self, Method::Adam | Method::AdamNoDark)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    pub method: Method,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Run folder: `student/` (final model), `checkpoint/`, `log.jsonl`.
    pub output: PathBuf,
    pub data: DataConfig,
    pub student: StudentConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub optimizer: OptimConfig,
    #[serde(default)]
    pub eval: Option<EvalConfig>,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    #[serde(default)]
    pub adam: AdamConfig,
}

fn default_seed() -> u64 {
    42
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// BEIR folder (texts of queries and documents; qrels of the dev split).
    pub dir: PathBuf,
    /// Cache of `adam teacher score`.
    pub teacher_scores: PathBuf,
}

/// The student: from a model folder (`model`, optionally its first `layers` layers), or from
/// scratch (`config` + `tokenizer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentConfig {
    pub model: Option<PathBuf>,
    pub layers: Option<usize>,
    pub config: Option<PathBuf>,
    pub tokenizer: Option<PathBuf>,
    /// Pooling of a student from scratch (a model folder brings its own).
    #[serde(default = "default_pooling")]
    pub pooling: Pooling,
    /// Normalise the vectors of a student from scratch (cosine scores).
    #[serde(default = "yes")]
    pub normalize: bool,
    #[serde(default = "default_query_length")]
    pub max_query_length: usize,
    #[serde(default = "default_passage_length")]
    pub max_passage_length: usize,
    /// Save the final student with f16 weights.
    #[serde(default)]
    pub save_half: bool,
}

fn default_pooling() -> Pooling {
    Pooling::Mean
}
fn yes() -> bool {
    true
}
fn default_query_length() -> usize {
    32
}
fn default_passage_length() -> usize {
    128
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the cached queries (ignored when `steps` is set).
    pub epochs: usize,
    /// Optimiser steps.
    pub steps: Option<usize>,
    /// Queries per micro-batch (`optimizer.grad_accumulation` micro-batches per step).
    pub batch_size: usize,
    /// Hard negatives per query (the hardest cached ones).
    pub negatives: usize,
    /// Dark examples per query a step (at most, a window that moves on each epoch; all cached
    /// ones by default).
    pub dark_per_query: Option<usize>,
    /// Leave out the dark examples whose adaptive search did not get the teacher's score into
    /// the band (`band_reached = false` in the cache); they are kept by default (METHOD.md §6).
    pub drop_outside_band: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self { epochs: 1, steps: None, batch_size: 8, negatives: 7, dark_per_query: None, drop_outside_band: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every N steps (and always at the end); 0: only at the end.
    pub every: usize,
    /// Qrels split of the dev queries.
    pub split: String,
    /// Use the first N dev queries (by id).
    pub max_queries: Option<usize>,
    /// Search the first N corpus documents plus every document judged for the dev queries
    /// (a quicker, easier proxy of full retrieval).
    pub corpus_limit: Option<usize>,
    pub depth: usize,
    pub batch_size: usize,
    pub rel_threshold: i32,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 0,
            split: "dev".into(),
            max_queries: None,
            corpus_limit: None,
            depth: 100,
            batch_size: 64,
            rel_threshold: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Write a checkpoint every N steps (0: never).
    pub every: usize,
}

impl DistillConfig {
    /// Reads and checks a config file; paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut config: DistillConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.validate().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut config.output);
        fix(&mut config.data.dir);
        fix(&mut config.data.teacher_scores);
        for p in
            [&mut config.student.model, &mut config.student.config, &mut config.student.tokenizer].into_iter().flatten()
        {
            fix(p);
        }
        Ok(config)
    }

    /// Checks values; messages start with the key (`train.batch_size = 0 ...`).
    pub fn validate(&self) -> Result<()> {
        let s = &self.student;
        match (&s.model, &s.config, &s.tokenizer) {
            (Some(_), None, None) => {}
            (None, Some(_), Some(_)) => {
                if s.layers.is_some() {
                    bail!("student.layers applies to student.model (truncation), not to a student from scratch");
                }
            }
            _ => bail!(
                "student: give either `model` (a model folder, optionally with `layers`) or `config` and `tokenizer` (a student from scratch)"
            ),
        }
        if s.layers == Some(0) {
            bail!("student.layers = 0: keep at least one layer");
        }
        if s.max_query_length < 3 || s.max_passage_length < 3 {
            bail!("student.max_query_length and student.max_passage_length must be at least 3");
        }
        if self.train.batch_size == 0 {
            bail!("train.batch_size = 0: use at least one query per batch");
        }
        if self.train.steps == Some(0) || (self.train.steps.is_none() && self.train.epochs == 0) {
            bail!("train.steps / train.epochs: nothing to train");
        }
        if self.train.negatives == 0 {
            match self.method {
                Method::MarginMse => bail!("train.negatives = 0: margin-mse needs at least one negative"),
                Method::Kd => bail!(
                    "train.negatives = 0: kd matches the teacher's distribution over each query's candidates, and over the positive alone both are 1 (nothing to learn); use train.negatives >= 1"
                ),
                // Dark examples are not there for every query (no band, none kept), so they
                // cannot stand in for the negatives a margin needs.
                _ if self.method.uses_kd() && self.adam.loss.kd_loss == KdLoss::MarginMse => bail!(
                    "train.negatives = 0 with adam.loss.kd_loss = \"margin_mse\": a margin needs a negative beside each positive; use train.negatives >= 1 or kd_loss = \"kl\""
                ),
                _ => {}
            }
        }
        self.optimizer.validate().map_err(|e| anyhow::anyhow!("optimizer.{e}"))?;
        self.adam.validate().map_err(|e| anyhow::anyhow!("adam.{e}"))?;
        if let Some(eval) = &self.eval
            && (eval.depth == 0 || eval.batch_size == 0)
        {
            bail!("eval.depth and eval.batch_size must be at least 1");
        }
        Ok(())
    }
}

/// A command-line value of [`NoisyMode`], spelt as in the config's `[adam.dark] noisy_mode`
/// (serde's names, so the two cannot drift apart).
pub fn parse_noisy_mode(value: &str) -> Result<NoisyMode, String> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|e| format!("'{value}' is not a noisy mode: {e}"))
}

/// The first key path where two JSON values differ, with both values (`a.b: 1 vs 2`).
pub fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                first_difference(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), &path)
            })
        }
        _ if a == b => None,
        _ => Some(format!("{}: {a} vs {b}", if at.is_empty() { "value" } else { at })),
    }
}
