//! `adam teacher pretrain`: masked-language-model pre-training of a BERT from scratch on a
//! collection's passages and queries, so that a teacher trained from scratch (`teacher train
//! --model <this> --new-head`) starts knowing the words of its world instead of nothing.
//! BERT's recipe: 15 % of each text's word pieces are chosen (at least one), of those 80 %
//! become `[MASK]`, 10 % a random piece and 10 % stay, and the model predicts the originals.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use adam_core::config::{Pooling, SentenceConfig};
use adam_core::dark::{SplitMix64, mix_seed};
use adam_core::model::BertForMaskedLm;
use adam_core::save::{SaveOptions, student_files, write_folder};
use adam_core::tokenize::{SpecialTokens, TextTokenizer};
use anyhow::{Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::backend::Backend;
use crate::checkpoint;
use crate::instances::{Collection, PieceCache};
use crate::models::read_scratch_model;
use crate::optim::{OptimConfig, Optimizer, initialize_params};
use crate::train_loop::{Checkpoints, MicroBatch, MicroLoss, Outcome, Schedule, StepLog, Task, Training, train};

#[derive(clap::Args, Debug)]
pub struct PretrainArgs {
    /// A BERT `config.json` (sizes) for the new model.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The `tokenizer.json` of its vocabulary (e.g. the one `adam teaching-set` trains).
    #[arg(long, value_name = "FILE")]
    pub tokenizer: PathBuf,
    /// Dataset (BEIR or MS MARCO folder): every corpus passage is a text, and so is every query
    /// judged in --split (never another split's: no test query is read).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The split whose queries are texts too (`none`: passages only).
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Output model folder (a BERT and sentence-transformers folder without the MLM head),
    /// written at the end.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Passes over the texts (ignored with --steps).
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Optimiser steps (overrides --epochs).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Texts per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Word pieces per text, [CLS] and [SEP] included.
    #[arg(long, default_value_t = 64)]
    pub max_length: usize,
    /// Share of each text's pieces to predict.
    #[arg(long, default_value_t = 0.15)]
    pub mask_prob: f64,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.05)]
    pub warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// JSONL log: one line per step with the loss and the learning rate.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Write a checkpoint every N steps into `<output>.checkpoint` (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Continue from `<output>.checkpoint`: the run ends as an uninterrupted one would.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
}

crate::train_loop::bare_trainee!(BertForMaskedLm);

pub fn run(args: PretrainArgs) -> Result<()> {
    if !(args.mask_prob > 0.0 && args.mask_prob < 1.0) {
        bail!("--mask-prob must be between 0 and 1, not {}", args.mask_prob);
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let optim_config = OptimConfig {
        lr: args.lr,
        warmup_steps: None,
        warmup_ratio: args.warmup_ratio,
        weight_decay: args.weight_decay,
        ..OptimConfig::default()
    };
    optim_config.validate().map_err(|e| anyhow::anyhow!("--{}", e.replace('_', "-")))?;
    let run_config = serde_json::json!({
        "config": args.config.display().to_string(), "tokenizer": args.tokenizer.display().to_string(),
        "data": args.data.display().to_string(), "split": args.split, "epochs": args.epochs, "steps": args.steps,
        "batch_size": args.batch_size, "max_length": args.max_length, "mask_prob": args.mask_prob, "lr": args.lr,
        "warmup_ratio": args.warmup_ratio, "weight_decay": args.weight_decay, "seed": args.seed,
    });
    let checkpoint_dir = checkpoint::beside(&args.output);
    let state = checkpoint::resume_from(
        &checkpoint_dir, args.resume, &run_config, true, "delete it to start again", "the options",
    )?;
    let splits: Vec<&str> = if args.split == "none" { vec![] } else { vec![args.split.as_str()] };
    let beir = Collection::load(&args.data, &splits)?;
    // A BEIR folder keeps every split's queries in one file: only those of --split's qrels count.
    let mut queries: Vec<usize> = match splits.first() {
        Some(split) => beir.qrels(split)?.keys().filter_map(|q| beir.query_index.get(q).copied()).collect(),
        None => Vec::new(),
    };
    queries.sort_unstable();
    let (config, tokenizer) = read_scratch_model(&args.config, &args.tokenizer, args.max_length)?;
    let texts = beir.corpus.len() + queries.len();
    if texts == 0 {
        bail!("{}: no passages or queries to learn from", args.data.display());
    }
    let device = args.backend.device()?;
    let ad = device.autodiff();
    ad.seed(args.seed);
    let model = BertForMaskedLm::new(&config, &ad);
    initialize_params(&model);
    let schedule = Schedule::new(texts, args.batch_size, 1, args.steps, args.epochs, args.seed);
    let total_steps = schedule.steps();
    if total_steps == 0 {
        bail!("nothing to train: --epochs or --steps is 0");
    }
    let optimizer = Optimizer::new(&optim_config, total_steps, &[]);
    let (model, mut optimizer, resumed_at) =
        checkpoint::restore(&checkpoint_dir, state.as_ref(), model, optimizer, total_steps)?;
    let log = args.log.as_deref().map(|p| StepLog::resume(p, resumed_at.unwrap_or(0))).transpose()?;
    let mut task = PretrainTask {
        args: &args,
        beir: &beir,
        queries: &queries,
        tokenizer: &tokenizer,
        pieces: Mutex::new(PieceCache::new(&tokenizer)),
        device: &ad,
    };
    let start = Instant::now();
    let training = Training {
        device: &ad,
        schedule: &schedule,
        label: "pre-training steps",
        log,
        checkpoints: Some(Checkpoints { dir: &checkpoint_dir, every: args.checkpoint_every, config: &run_config }),
        resumed_at,
        halt_after_step: None,
        peers: None,
        workers: 1, // one micro-batch per step: nothing to share
    };
    let Outcome::Finished(model) = train(model, &mut optimizer, training, &mut task)? else {
        unreachable!("a run without --halt-after-step finishes");
    };
    let sentence = SentenceConfig { pooling: Pooling::Mean, normalize: true, max_seq_length: tokenizer.max_length() };
    let files = student_files(&model.bert.valid(), &config, &sentence, &tokenizer, &[], SaveOptions { half: false })?;
    write_folder(&args.output, &files)?;
    checkpoint::remove(&checkpoint_dir)?;
    eprintln!(
        "pre-trained {} steps on {texts} texts in {:.1} s; model saved to {}",
        total_steps - resumed_at.unwrap_or(0),
        start.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(())
}

/// Pre-training's part of the loop: masked pieces of each text and the loss of predicting them.
struct PretrainTask<'a> {
    args: &'a PretrainArgs,
    beir: &'a Collection,
    /// The queries that are texts (indices into `beir.queries`); items past the corpus index this.
    queries: &'a [usize],
    tokenizer: &'a TextTokenizer,
    /// Shared by the workers.
    pieces: Mutex<PieceCache<'a>>,
    device: &'a Device,
}

impl PretrainTask<'_> {
    fn pieces(&self, item: usize) -> Result<Vec<u32>> {
        let docs = self.beir.corpus.len();
        let mut pieces = self.pieces.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(if item < docs {
            pieces.doc(self.beir, item)?
        } else {
            pieces.query(self.beir, self.queries[item - docs])?
        }
        .to_vec())
    }
}

/// Chooses the pieces to predict in `row` (positions whose piece is not special) and corrupts
/// them in place as BERT does; returns (position, original piece) pairs, at least one.
fn mask_row(
    row: &mut [u32],
    rng: &mut SplitMix64,
    prob: f64,
    vocab: usize,
    special: SpecialTokens,
) -> Vec<(usize, u32)> {
    let candidates: Vec<usize> = (0..row.len()).filter(|&i| !special.is_special(row[i])).collect();
    let mut chosen: Vec<usize> = candidates.iter().copied().filter(|_| (rng.unit_f32() as f64) < prob).collect();
    if chosen.is_empty() && !candidates.is_empty() {
        chosen.push(candidates[rng.below(candidates.len())]);
    }
    chosen
        .into_iter()
        .map(|i| {
            let original = row[i];
            let r = rng.unit_f32();
            if r < 0.8 {
                row[i] = special.mask;
            } else if r < 0.9 {
                // A random piece that is not special (a few tries; else leave it).
                for _ in 0..8 {
                    let id = rng.below(vocab) as u32;
                    if !special.is_special(id) {
                        row[i] = id;
                        break;
                    }
                }
            }
            (i, original)
        })
        .collect()
}

impl Task<BertForMaskedLm> for PretrainTask<'_> {
    type Parts = ();

    fn loss(&self, model: &BertForMaskedLm, micro: &MicroBatch) -> Result<MicroLoss<()>> {
        let sequences: Vec<Vec<u32>> = micro.items.iter().map(|&i| self.pieces(i)).collect::<Result<_>>()?;
        let refs: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
        let mut tokens = self.tokenizer.encode_pieces(&refs, self.args.max_length);
        let width = tokens.seq_len;
        let (mut positions, mut targets) = (Vec::new(), Vec::new());
        let (vocab, special) = (self.tokenizer.vocab_size(), self.tokenizer.special());
        for (r, &item) in micro.items.iter().enumerate() {
            // The masks depend on the seed, the epoch and the text, not on the batch it lands in.
            let mut rng =
                SplitMix64::new(mix_seed(mix_seed(self.args.seed ^ 0x006d_6c6d, micro.epoch as u64), item as u64));
            let row = &mut tokens.ids[r * width..(r + 1) * width];
            for (i, original) in mask_row(row, &mut rng, self.args.mask_prob, vocab, special) {
                positions.push((r * width + i) as i64);
                targets.push(original as i64);
            }
        }
        let (ids, types, pad) = tokens.to_tensors(self.device);
        let n = positions.len();
        let positions = Tensor::<1, Int>::from_data(TensorData::new(positions, [n]), self.device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), self.device);
        let loss = model.loss(ids, types, pad, positions, targets).div_scalar(micro.in_step as f32);
        let value = loss.clone().into_scalar::<f32>() as f64;
        Ok(MicroLoss { loss, value, parts: () })
    }

    fn add_parts(&mut self, (): ()) {}

    fn item_name(&self, item: usize) -> String {
        let docs = self.beir.corpus.len();
        if item < docs {
            self.beir.corpus[item].id.clone()
        } else {
            self.beir.queries[self.queries[item - docs]].id.clone()
        }
    }
}
