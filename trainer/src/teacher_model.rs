//! The teacher of `adam teacher score` and `adam teacher rerank`: a cross-encoder
//! (`BertForSequenceClassification`, reads the pair together) or a dual encoder (a
//! sentence-transformers model, BERT or MPNet, that embeds query and passage apart and scores
//! their similarity). The paper's teacher is a cross-encoder; METHOD.md §8 says why a dual
//! encoder may teach here too.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use adam_core::encoder::SentenceEncoder;
use adam_core::loader::{LoadOptions, LoadedCrossEncoder, ModelSource};
use adam_core::model::CrossEncoderModel;
use adam_core::tokenize::TextTokenizer;
use anyhow::{Context, Result, bail};
use burn::tensor::Device;

use crate::models::load_teacher;
use crate::workers::{Workers, worker_count};

/// How the teacher scores a pair.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeacherKind {
    /// A folder whose config.json names a `…ForSequenceClassification` architecture is a
    /// cross-encoder; one with sentence-transformers' `modules.json` a dual encoder.
    Auto,
    CrossEncoder,
    DualEncoder,
}

/// The teacher flags shared by `teacher score` and `teacher rerank`.
#[derive(clap::Args, Debug, Clone)]
pub struct TeacherModelArgs {
    /// Teacher model folder: a cross-encoder, or a sentence-transformers dual encoder (BERT or
    /// MPNet, e.g. all-mpnet-base-v2 from scripts/fetch_mpnet.sh).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// What the folder is (auto: told by its files).
    #[arg(long, value_enum, default_value_t = TeacherKind::Auto)]
    pub teacher_kind: TeacherKind,
    /// A dual encoder's score is this times the dot product of its two vectors (the cosine for a
    /// normalising model): 20 gives its soft labels the temperature (0.05) of a student's cosine.
    #[arg(long, default_value_t = 20.0, value_name = "S")]
    pub dual_scale: f32,
}

/// A loaded teacher.
// One per process, so the variants' size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum TeacherModel {
    Cross(LoadedCrossEncoder),
    /// `memo` keeps the vectors of sequences already embedded (a reranked corpus document is
    /// embedded once however many queries retrieve it) until [`TeacherModel::forget`].
    Dual {
        encoder: SentenceEncoder,
        scale: f32,
        memo: RefCell<HashMap<Vec<u32>, Vec<f32>>>,
    },
}

impl TeacherKind {
    /// Resolves `Auto` from the folder's files.
    pub fn resolve(self, dir: &Path) -> Result<TeacherKind> {
        if self != TeacherKind::Auto {
            return Ok(self);
        }
        let config_path = dir.join("config.json");
        let bytes = std::fs::read(&config_path).with_context(|| format!("cannot read {}", config_path.display()))?;
        let config: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", config_path.display(), e.line()))?;
        let classifies = config["architectures"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n.as_str().is_some_and(|n| n.ends_with("ForSequenceClassification"))));
        if classifies {
            Ok(TeacherKind::CrossEncoder)
        } else if dir.join("modules.json").is_file() {
            Ok(TeacherKind::DualEncoder)
        } else {
            bail!(
                "{}: neither a cross-encoder (config.json names no …ForSequenceClassification) nor a \
                 sentence-transformers model (no modules.json); say which with --teacher-kind",
                dir.display()
            )
        }
    }
}

impl TeacherModel {
    /// Loads the teacher; `max_length` caps a cross-encoder's pair, or each text of a dual encoder;
    /// `layers` keeps a dual encoder's first K layers.
    pub fn load(args: &TeacherModelArgs, device: &Device, max_length: usize, layers: Option<usize>) -> Result<Self> {
        let kind = args.teacher_kind.resolve(&args.model)?;
        if layers.is_some() && kind != TeacherKind::DualEncoder {
            bail!("{}: --layers applies to a dual encoder, not a cross-encoder", args.model.display());
        }
        match kind {
            TeacherKind::DualEncoder => {
                if !(args.dual_scale.is_finite() && args.dual_scale > 0.0) {
                    bail!("--dual-scale {} must be a positive number", args.dual_scale);
                }
                let options = LoadOptions { max_length: Some(max_length), layers };
                let encoder = SentenceEncoder::load(&ModelSource::Dir(args.model.clone()), device, &options)?;
                Ok(TeacherModel::Dual { encoder, scale: args.dual_scale, memo: RefCell::default() })
            }
            _ => Ok(TeacherModel::Cross(load_teacher(&args.model, device, max_length, false)?)),
        }
    }

    pub fn tokenizer(&self) -> &TextTokenizer {
        match self {
            TeacherModel::Cross(m) => &m.tokenizer,
            TeacherModel::Dual { encoder, .. } => &encoder.model.tokenizer,
        }
    }

    /// `Some(scale)` for a dual encoder (recorded in the score cache).
    pub fn dual_scale(&self) -> Option<f32> {
        match self {
            TeacherModel::Cross(_) => None,
            TeacherModel::Dual { scale, .. } => Some(*scale),
        }
    }

    /// Scores (query, passage) pairs given as the teacher's word pieces, in input order.
    pub fn score_piece_pairs(
        &self,
        device: &Device,
        pairs: &[(&[u32], &[u32])],
        batch_size: usize,
    ) -> Result<Vec<f32>> {
        match self {
            TeacherModel::Cross(m) => score_piece_pairs(&m.model, &m.tokenizer, device, pairs, batch_size),
            TeacherModel::Dual { encoder, scale, memo } => {
                let sides: Vec<&[u32]> = pairs.iter().flat_map(|&(q, p)| [q, p]).collect();
                let mut memo = memo.borrow_mut();
                embed_missing(encoder, &sides, batch_size, &mut memo)?;
                Ok(pairs
                    .iter()
                    .map(|&(q, p)| scale * memo[q].iter().zip(&memo[p]).map(|(a, b)| a * b).sum::<f32>())
                    .collect())
            }
        }
    }

    /// Drops a dual encoder's remembered vectors (when no later call will ask for them again).
    pub fn forget(&self) {
        if let TeacherModel::Dual { memo, .. } = self {
            memo.borrow_mut().clear();
        }
    }
}

/// Scores pairs of word pieces with `model`, `batch_size` pairs per forward pass (sorted by
/// length so batches pad little); returns the scores in input order.
fn score_piece_pairs(
    model: &CrossEncoderModel,
    tokenizer: &TextTokenizer,
    device: &Device,
    pairs: &[(&[u32], &[u32])],
    batch_size: usize,
) -> Result<Vec<f32>> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pairs[i].0.len() + pairs[i].1.len()));
    let mut scores = vec![0.0f32; pairs.len()];
    let chunks: Vec<&[usize]> = order.chunks(batch_size.max(1)).collect();
    // A batch per core at once (the scores do not change).
    let workers = Workers::new(worker_count(None, device, chunks.len()))?;
    let batches = workers.map(&chunks, |chunk| -> Result<Vec<f32>> {
        let batch: Vec<(&[u32], &[u32])> = chunk.iter().map(|&i| pairs[i]).collect();
        let (ids, types, pad) = tokenizer.encode_piece_pairs(&batch).to_tensors(device);
        model
            .score(ids, types, pad)
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading teacher scores: {e:?}"))
    });
    for (chunk, got) in chunks.iter().zip(batches) {
        for (&i, s) in chunk.iter().zip(got?) {
            scores[i] = s;
        }
    }
    Ok(scores)
}

/// Embeds the distinct sequences among `sequences` that `out` lacks, `batch_size` at a time,
/// longest first so that batches pad little.
fn embed_missing(
    encoder: &SentenceEncoder,
    sequences: &[&[u32]],
    batch_size: usize,
    out: &mut HashMap<Vec<u32>, Vec<f32>>,
) -> Result<()> {
    let mut unique: Vec<&[u32]> = sequences.iter().copied().filter(|s| !out.contains_key(*s)).collect();
    unique.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    unique.dedup();
    let chunks: Vec<&[&[u32]]> = unique.chunks(batch_size.max(1)).collect();
    // A batch per core at once (the vectors do not change).
    let workers = Workers::new(worker_count(None, &encoder.device, chunks.len()))?;
    let batches = workers.map(&chunks, |chunk| -> Result<Vec<f32>> {
        let batch = encoder.model.tokenizer.encode_pieces(chunk, usize::MAX);
        encoder
            .embed_batch(&batch)
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading teacher vectors: {e:?}"))
    });
    for (chunk, flat) in chunks.iter().zip(batches) {
        for (seq, v) in chunk.iter().zip(flat?.chunks(encoder.dim())) {
            out.insert(seq.to_vec(), v.to_vec());
        }
    }
    Ok(())
}

/// Carries word pieces of one vocabulary (the student's, in which dark examples are made) into
/// another's (the teacher's), see `TextTokenizer::carry_pieces`.
pub struct PieceTranslator<'a> {
    pub from: &'a TextTokenizer,
    pub to: &'a TextTokenizer,
}

impl PieceTranslator<'_> {
    pub fn translate(&self, ids: &[u32]) -> Result<Vec<u32>> {
        Ok(self.from.carry_pieces(ids, self.to)?)
    }
}
