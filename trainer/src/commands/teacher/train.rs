//! `adam teacher train`: fine-tune a cross-encoder (or train one from scratch) with listwise
//! cross-entropy over (positive, negatives) groups.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use adam_core::config::Architecture;
use adam_core::dark::mix_seed;
use adam_core::loader::LoadedCrossEncoder;
use adam_core::loss::contrastive_loss;
use adam_core::model::CrossEncoderModel;
use adam_core::tokenize::TextTokenizer;
use anyhow::{Result, bail};
use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::backend::Backend;
use crate::checkpoint;
use crate::data_parallel::PeerArgs;
use crate::instances::{Collection, Instance, InstanceArgs, PieceCache, key_of, sample_negatives};
use crate::models::{load_teacher, save_cross_encoder, scratch_teacher};
use crate::optim::{OptimConfig, Optimizer, initialize_params};
use crate::train_loop::{Checkpoints, MicroBatch, MicroLoss, Outcome, Schedule, StepLog, Task, Training, train};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("start").required(true).args(["model", "config"])))]
pub struct TrainArgs {
    /// Model folder to start from: a cross-encoder, or with --new-head a bare BERT /
    /// sentence-transformers checkpoint.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Train from scratch instead: a BERT `config.json` (sizes), with --tokenizer.
    #[arg(long, value_name = "FILE", requires = "tokenizer", conflicts_with = "model")]
    pub config: Option<PathBuf>,
    /// The `tokenizer.json` of a teacher trained from scratch (--config).
    #[arg(long, value_name = "FILE", requires = "config")]
    pub tokenizer: Option<PathBuf>,
    /// Start a new (random, seeded) classification head when the folder has none.
    #[arg(long)]
    pub new_head: bool,
    #[command(flatten)]
    pub instances: InstanceArgs,
    /// Output model folder (BertForSequenceClassification layout), written at the end.
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// Passes over the training queries (ignored with --steps).
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Optimiser steps (overrides --epochs).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Queries (groups) per micro-batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Passages per group: one positive and group-size − 1 negatives.
    #[arg(long, default_value_t = 8)]
    pub group_size: usize,
    /// Negatives are sampled from each query's N hardest.
    #[arg(long, default_value_t = 30)]
    pub negatives_depth: usize,
    /// Tokens per (query, passage) pair.
    #[arg(long, default_value_t = 256)]
    pub max_length: usize,
    #[arg(long, default_value_t = 2e-5)]
    pub lr: f64,
    /// Learning rate of the new head (default: --lr).
    #[arg(long)]
    pub head_lr: Option<f64>,
    #[arg(long, default_value_t = 0.1)]
    pub warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Clip the global gradient norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Micro-batches per optimiser step.
    #[arg(long, default_value_t = 1)]
    pub grad_accumulation: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// JSONL log: one line per step with the loss and the learning rate.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Save the weights as f16.
    #[arg(long)]
    pub half: bool,
    /// Write a checkpoint (weights, optimizer moments, data position) every N steps into
    /// `<output>.checkpoint`, so that a killed run can go on with --resume (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Continue from `<output>.checkpoint`: the run ends as an uninterrupted one would.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this step as if the process were killed (for testing --resume).
    #[arg(long, hide = true)]
    pub halt_after_step: Option<usize>,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    #[command(flatten)]
    pub peers: PeerArgs,
}

impl TrainArgs {
    /// What decides the run's result, recorded with each checkpoint so that a resume with other
    /// values is refused (the log, the backend, the peers and checkpointing itself may change).
    fn run_config(&self) -> serde_json::Value {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        serde_json::json!({
            "model": path(&self.model),
            "config": path(&self.config),
            "tokenizer": path(&self.tokenizer),
            "new_head": self.new_head,
            "data": self.instances.data.display().to_string(),
            "negatives": path(&self.instances.negatives),
            "split": self.instances.split,
            "max_queries": self.instances.max_queries,
            "epochs": self.epochs,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "group_size": self.group_size,
            "negatives_depth": self.negatives_depth,
            "max_length": self.max_length,
            "lr": self.lr,
            "head_lr": self.head_lr,
            "warmup_ratio": self.warmup_ratio,
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "grad_accumulation": self.grad_accumulation,
            "seed": self.seed,
        })
    }
}

/// A `[rows, cols]` mask, true where `present[r]` is less than or equal to the column.
fn padding_mask(present: &[usize], cols: usize, device: &Device) -> Tensor<2, Bool> {
    let data: Vec<bool> = present.iter().flat_map(|&n| (0..cols).map(move |c| c >= n)).collect();
    Tensor::from_data(TensorData::new(data, [present.len(), cols]), device)
}

pub fn run(args: TrainArgs) -> Result<()> {
    let optim_config = OptimConfig {
        lr: args.lr,
        head_lr: args.head_lr,
        warmup_steps: None,
        warmup_ratio: args.warmup_ratio,
        weight_decay: args.weight_decay,
        max_grad_norm: (args.max_grad_norm > 0.0).then_some(args.max_grad_norm),
        grad_accumulation: args.grad_accumulation,
        ..OptimConfig::default()
    };
    optim_config.validate().map_err(|e| anyhow::anyhow!("--{}", e.replace('_', "-")))?;
    if args.batch_size == 0 || args.group_size < 2 {
        bail!("--batch-size must be at least 1 and --group-size at least 2 (a positive and a negative)");
    }
    args.peers
        .check_grad_accumulation(args.grad_accumulation, format!("--grad-accumulation {}", args.grad_accumulation))?;
    // Peers other than 0 read and write no checkpoint: peer 0 gives them its weights and step.
    let leader = args.peers.is_leader();
    let run_config = args.run_config();
    let checkpoint_dir = checkpoint::beside(&args.output);
    let state = checkpoint::resume_from(
        &checkpoint_dir, args.resume, &run_config, leader, "delete it to start again", "the options",
    )?;
    let (beir, instances) = args.instances.load()?;
    let device = args.backend.device()?;
    let ad = device.autodiff();
    ad.seed(args.seed); // the new head's initialisation
    let LoadedCrossEncoder { model, config, tokenizer } = match (&args.model, &args.config, &args.tokenizer) {
        (Some(dir), _, _) => load_teacher(dir, &ad, args.max_length, args.new_head)?,
        (None, Some(config), Some(tokenizer)) => scratch_teacher(config, tokenizer, &ad, args.max_length)?,
        _ => bail!("give --model DIR, or --config FILE and --tokenizer FILE"),
    };
    initialize_params(&model);
    let n = instances.len();
    let schedule = Schedule::new(n, args.batch_size, args.grad_accumulation, args.steps, args.epochs, args.seed);
    let total_steps = schedule.steps();
    if total_steps == 0 {
        bail!("nothing to train: --epochs or --steps is 0");
    }
    // A new head: BERT's classifier (its pooler is pre-trained); MPNet's whole head, whose dense
    // layer (`pooler` here) transformers also starts afresh.
    let head: &[&str] = match (args.new_head, model.architecture()) {
        (false, _) => &[],
        (true, Architecture::Bert) => &["classifier"],
        (true, Architecture::MPNet) => &["classifier", "pooler"],
    };
    let optimizer = Optimizer::new(&optim_config, total_steps, head);
    let (model, mut optimizer, resumed_at) =
        checkpoint::restore(&checkpoint_dir, state.as_ref(), model, optimizer, total_steps)?;
    // Written as training goes (one flushed line per step), so a long run can be followed; by
    // peer 0 alone in a data-parallel run. A resumed run keeps the lines up to its checkpoint.
    let log =
        args.log.as_deref().filter(|_| leader).map(|p| StepLog::resume(p, resumed_at.unwrap_or(0))).transpose()?;
    let peers = args.peers.connect()?;
    let mut task = TeacherTask {
        args: &args,
        beir: &beir,
        instances: &instances,
        tokenizer: &tokenizer,
        pieces: Mutex::new(PieceCache::new(&tokenizer)),
        device: &ad,
    };
    let start = Instant::now();
    let training = Training {
        device: &ad,
        schedule: &schedule,
        label: "training steps",
        log,
        checkpoints: leader.then_some(Checkpoints {
            dir: &checkpoint_dir,
            every: args.checkpoint_every,
            config: &run_config,
        }),
        resumed_at,
        halt_after_step: args.halt_after_step,
        peers: peers.as_ref(),
        workers: args.peers.worker_count(&ad, schedule.grad_accumulation),
    };
    let model = match train(model, &mut optimizer, training, &mut task)? {
        Outcome::Finished(model) => model,
        Outcome::Halted => return Ok(()),
    };
    if !leader {
        eprintln!("peer {} done: peer 0 saves the teacher", args.peers.rank);
        return Ok(());
    }
    save_cross_encoder(&args.output, &model, &config, &tokenizer, args.model.as_deref(), args.half)?;
    checkpoint::remove(&checkpoint_dir)?;
    eprintln!(
        "trained {} steps on {n} queries in {:.1} s; teacher saved to {}",
        total_steps - resumed_at.unwrap_or(0),
        start.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(())
}

/// Teacher training's part of the loop: listwise cross-entropy over each query's group of a
/// positive and sampled hard negatives.
struct TeacherTask<'a> {
    args: &'a TrainArgs,
    beir: &'a Collection,
    instances: &'a [Instance],
    tokenizer: &'a TextTokenizer,
    /// Shared by the workers.
    pieces: Mutex<PieceCache<'a>>,
    device: &'a Device,
}

impl Task<CrossEncoderModel> for TeacherTask<'_> {
    type Parts = ();

    fn loss(&self, model: &CrossEncoderModel, micro: &MicroBatch) -> Result<MicroLoss<()>> {
        let (args, beir, batch, epoch) = (self.args, self.beir, micro.items, micro.epoch);
        let mut pieces = self.pieces.lock().unwrap_or_else(PoisonError::into_inner);
        let k = args.group_size - 1;
        let mut pairs: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
        let mut present = Vec::new();
        for &i in batch {
            let inst = &self.instances[i];
            let key = key_of(&beir.queries[inst.query].id);
            let positive = inst.positives[(epoch + key as usize % 997) % inst.positives.len()];
            let negatives = sample_negatives(
                inst,
                k,
                args.negatives_depth,
                beir.corpus.len(),
                mix_seed(mix_seed(args.seed, epoch as u64), key),
            );
            let q = pieces.query(beir, inst.query)?.to_vec();
            present.push(1 + negatives.len());
            for d in std::iter::once(positive).chain(negatives.iter().copied()) {
                pairs.push((q.clone(), pieces.doc(beir, d)?.to_vec()));
            }
            // Absent negatives (a tiny corpus) are padded and masked out of the softmax.
            for _ in negatives.len()..k {
                pairs.push((q.clone(), Vec::new()));
            }
        }
        drop(pieces);
        let refs: Vec<(&[u32], &[u32])> = pairs.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        let tokens = self.tokenizer.encode_piece_pairs(&refs);
        let (ids, types, pad) = tokens.to_tensors(self.device);
        let scores = model.score(ids, types, pad).reshape([batch.len(), args.group_size]);
        let mask = padding_mask(&present, args.group_size, self.device);
        let targets = vec![0; batch.len()];
        let loss = contrastive_loss(scores, &targets, Some(&mask), 1.0).mean().div_scalar(micro.in_step as f32);
        let value = loss.clone().into_scalar::<f32>() as f64;
        Ok(MicroLoss { loss, value, parts: () })
    }

    fn add_parts(&mut self, (): ()) {}

    fn item_name(&self, item: usize) -> String {
        self.beir.queries[self.instances[item].query].id.clone()
    }
}
