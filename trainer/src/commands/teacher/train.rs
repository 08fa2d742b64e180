//! `adam teacher train`: fine-tune a cross-encoder (or train one from scratch) with listwise
//! cross-entropy over (positive, negatives) groups.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use adam_core::config::{Architecture, BertConfig};
use adam_core::dark::mix_seed;
use adam_core::loader::LoadedCrossEncoder;
use adam_core::loss::{contrastive_loss, listwise_kl};
use adam_core::model::CrossEncoderModel;
use adam_core::teaching::Attribute;
use adam_core::tokenize::TextTokenizer;
use anyhow::{Context, Result, bail};
use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::backend::Backend;
use crate::checkpoint;
use crate::data_parallel::PeerArgs;
use crate::instances::{Collection, Instance, InstanceArgs, PieceCache, key_of, sample_negatives};
use crate::io::round_sig;
use crate::models::{load_teacher, save_cross_encoder, scratch_teacher};
use crate::optim::{OptimConfig, Optimizer, initialize_params};
use crate::reading::{IGNORED, PieceLabels, Profiles, ReadingTeacher, STATES, grade, masked_cross_entropy};
use crate::train_loop::{
    CheckpointState, Checkpoints, MicroBatch, MicroLoss, Outcome, Schedule, StepDone, StepLog, Task, Trainee, Training,
    train,
};
use burn::module::Module;

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
    /// Also learn to read, from a generated world's `profiles.jsonl` (`adam teaching-set
    /// --profiles`): linear heads on inner layers learn which value each piece writes, whose
    /// it is, and (on query pieces) whether the passage states, contradicts or omits it; one on
    /// the pooled vector learns that for every attribute (METHOD.md §7.1). Only training sees
    /// them: the teacher saved is a plain cross-encoder. BERT only; the profiles must cover
    /// every query and passage of the groups.
    #[arg(long, value_name = "FILE")]
    pub profiles: Option<PathBuf>,
    /// With --profiles: the layer whose token vectors the value and role heads read (1 = the
    /// first transformer layer).
    #[arg(long, default_value_t = 1, value_name = "N", requires = "profiles")]
    pub tag_layer: usize,
    /// With --profiles: the layer whose token vectors the match head reads.
    #[arg(long, default_value_t = 2, value_name = "N", requires = "profiles")]
    pub match_layer: usize,
    /// With --profiles: rank with graded targets instead of the positive alone: each group's
    /// target is softmax(grade × G) over its pairs, grades (2 full, 1 partial, 0 no match) from
    /// the profiles, so partial matches learn to rank between the two (0: the positive alone).
    #[arg(long, default_value_t = 0.0, value_name = "G", requires = "profiles")]
    pub graded: f64,
    /// With --profiles: weight of each reading loss beside the ranking loss.
    #[arg(long, default_value_t = 1.0, value_name = "W", requires = "profiles")]
    pub reading_weight: f64,
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
            "profiles": path(&self.profiles),
            "tag_layer": self.profiles.as_ref().map(|_| self.tag_layer),
            "match_layer": self.profiles.as_ref().map(|_| self.match_layer),
            "reading_weight": self.profiles.as_ref().map(|_| self.reading_weight),
            "graded": self.profiles.as_ref().map(|_| self.graded),
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
    let run = Run {
        args: &args,
        optim_config,
        state,
        checkpoint_dir,
        run_config,
        device: &ad,
        queries: instances.len(),
        config: &config,
        tokenizer: &tokenizer,
    };
    let task = TeacherTask {
        args: &args,
        beir: &beir,
        instances: &instances,
        tokenizer: &tokenizer,
        pieces: Mutex::new(PieceCache::new(&tokenizer)),
        device: &ad,
    };
    let Some(profiles) = &args.profiles else {
        return finish(run, model, task, |m| m);
    };
    let start = Instant::now();
    let profiles = Profiles::read(profiles)?;
    let layers = model.layers();
    if model.architecture() != Architecture::Bert {
        bail!("--profiles trains a BERT cross-encoder; this model is MPNet");
    }
    for (flag, layer) in [("--tag-layer", args.tag_layer), ("--match-layer", args.match_layer)] {
        if !(1..=layers).contains(&layer) {
            bail!("{flag} {layer}: the model has layers 1 to {layers}");
        }
    }
    eprintln!(
        "reading labels from {} ({} values; {:.1} s): value and role heads on layer {}, match head on layer {}",
        args.profiles.as_ref().expect("checked").display(),
        profiles.values,
        start.elapsed().as_secs_f64(),
        args.tag_layer,
        args.match_layer
    );
    let reader = ReadingTeacher::new(model, &config, profiles.values, &ad);
    let task = ReadingTask { base: task, profiles, labels: Mutex::new(LabelCache::default()), sums: [0.0; 5] };
    finish(run, reader, task, |m| &m.teacher)
}

/// What [`finish`] needs besides the model and its task.
struct Run<'a> {
    args: &'a TrainArgs,
    optim_config: OptimConfig,
    state: Option<CheckpointState>,
    checkpoint_dir: PathBuf,
    run_config: serde_json::Value,
    device: &'a Device,
    queries: usize,
    config: &'a BertConfig,
    tokenizer: &'a TextTokenizer,
}

/// Trains `model` (the cross-encoder, or what holds it: `teacher(model)`) with `task` and saves
/// the cross-encoder.
fn finish<T: Trainee<Module = T> + Module, K: Task<T>>(
    run: Run<'_>,
    model: T,
    mut task: K,
    teacher: impl Fn(&T) -> &CrossEncoderModel,
) -> Result<()> {
    let Run { args, optim_config, state, checkpoint_dir, run_config, device, queries: n, config, tokenizer } = run;
    let leader = args.peers.is_leader();
    initialize_params(&model);
    let schedule = Schedule::new(n, args.batch_size, args.grad_accumulation, args.steps, args.epochs, args.seed);
    let total_steps = schedule.steps();
    if total_steps == 0 {
        bail!("nothing to train: --epochs or --steps is 0");
    }
    // A new head: BERT's classifier (its pooler is pre-trained); MPNet's whole head, whose dense
    // layer (`pooler` here) transformers also starts afresh.
    let head: &[&str] = match (args.new_head, teacher(&model).architecture()) {
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
    let start = Instant::now();
    let training = Training {
        device,
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
        workers: args.peers.worker_count(device, schedule.grad_accumulation),
    };
    let model = match train(model, &mut optimizer, training, &mut task)? {
        Outcome::Finished(model) => model,
        Outcome::Halted => return Ok(()),
    };
    if !leader {
        eprintln!("peer {} done: peer 0 saves the teacher", args.peers.rank);
        return Ok(());
    }
    save_cross_encoder(&args.output, teacher(&model), config, tokenizer, args.model.as_deref(), args.half)?;
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

/// A micro-batch's groups: the pairs' pieces, each pair's (query, passage) corpus indices
/// (`None` for a padded absent negative), and how many of each group's pairs are real.
struct Groups {
    pairs: Vec<(Vec<u32>, Vec<u32>)>,
    sources: Vec<(usize, Option<usize>)>,
    present: Vec<usize>,
}

impl TeacherTask<'_> {
    fn groups(&self, micro: &MicroBatch) -> Result<Groups> {
        let (args, beir, batch, epoch) = (self.args, self.beir, micro.items, micro.epoch);
        let mut pieces = self.pieces.lock().unwrap_or_else(PoisonError::into_inner);
        let k = args.group_size - 1;
        let mut groups = Groups { pairs: Vec::new(), sources: Vec::new(), present: Vec::new() };
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
            groups.present.push(1 + negatives.len());
            for d in std::iter::once(positive).chain(negatives.iter().copied()) {
                groups.pairs.push((q.clone(), pieces.doc(beir, d)?.to_vec()));
                groups.sources.push((inst.query, Some(d)));
            }
            // Absent negatives (a tiny corpus) are padded and masked out of the softmax.
            for _ in negatives.len()..k {
                groups.pairs.push((q.clone(), Vec::new()));
                groups.sources.push((inst.query, None));
            }
        }
        Ok(groups)
    }

    /// The listwise loss of a micro-batch's scores `[pairs]` (the positive first in each group).
    fn ranking_loss(&self, scores: Tensor<1>, groups: &Groups, micro: &MicroBatch) -> Tensor<1> {
        let rows = groups.present.len();
        let scores = scores.reshape([rows, self.args.group_size]);
        let mask = padding_mask(&groups.present, self.args.group_size, self.device);
        let targets = vec![0; rows];
        contrastive_loss(scores, &targets, Some(&mask), 1.0).mean().div_scalar(micro.in_step as f32)
    }
}

impl Task<CrossEncoderModel> for TeacherTask<'_> {
    type Parts = ();

    fn loss(&self, model: &CrossEncoderModel, micro: &MicroBatch) -> Result<MicroLoss<()>> {
        let groups = self.groups(micro)?;
        let refs: Vec<(&[u32], &[u32])> = groups.pairs.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        let tokens = self.tokenizer.encode_piece_pairs(&refs);
        let (ids, types, pad) = tokens.to_tensors(self.device);
        let loss = self.ranking_loss(model.score(ids, types, pad), &groups, micro);
        let value = loss.clone().into_scalar::<f32>() as f64;
        Ok(MicroLoss { loss, value, parts: () })
    }

    fn add_parts(&mut self, (): ()) {}

    fn item_name(&self, item: usize) -> String {
        self.beir.queries[self.instances[item].query].id.clone()
    }
}

/// Reading labels of the texts seen so far, by query and by corpus index.
#[derive(Default)]
struct LabelCache {
    queries: HashMap<usize, PieceLabels>,
    docs: HashMap<usize, PieceLabels>,
}

/// Teacher training that also learns to read ([`crate::reading`]): the listwise loss plus the
/// value, role, match and states losses of the reading heads.
struct ReadingTask<'a> {
    base: TeacherTask<'a>,
    profiles: Profiles,
    labels: Mutex<LabelCache>,
    /// The step's ranking, value, role, match and states losses so far (for the log).
    sums: [f64; 5],
}

impl ReadingTask<'_> {
    /// Labels of query `q` and passage `d`, computed once each.
    fn labels(&self, q: usize, d: usize) -> Result<(PieceLabels, PieceLabels)> {
        let (beir, tokenizer) = (self.base.beir, self.base.tokenizer);
        let mut cache = self.labels.lock().unwrap_or_else(PoisonError::into_inner);
        let query = match cache.queries.entry(q) {
            Entry::Occupied(e) => e.get().clone(),
            Entry::Vacant(e) => {
                let text = &beir.queries[q].text;
                let offsets = tokenizer.word_piece_offsets(text)?;
                e.insert(self.profiles.query_labels(text, &offsets)).clone()
            }
        };
        let doc = match cache.docs.entry(d) {
            Entry::Occupied(e) => e.get().clone(),
            Entry::Vacant(e) => {
                let doc = &beir.corpus[d];
                let text = doc.full_text();
                let offsets = tokenizer.word_piece_offsets(&text)?;
                e.insert(self.profiles.passage_labels(&doc.id, &text, &offsets)?).clone()
            }
        };
        Ok((query, doc))
    }
}

impl Task<ReadingTeacher> for ReadingTask<'_> {
    type Parts = [f64; 5];

    fn loss(&self, model: &ReadingTeacher, micro: &MicroBatch) -> Result<MicroLoss<[f64; 5]>> {
        let (args, beir, device) = (self.base.args, self.base.beir, self.base.device);
        let groups = self.base.groups(micro)?;
        let refs: Vec<(&[u32], &[u32])> = groups.pairs.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        let tokens = self.base.tokenizer.encode_piece_pairs(&refs);
        let width = tokens.seq_len;
        let cells = refs.len() * width;
        let (mut value, mut role, mut matched) = (vec![IGNORED; cells], vec![IGNORED; cells], vec![IGNORED; cells]);
        let mut pair_states = vec![IGNORED; refs.len() * Attribute::ALL.len()];
        let mut grades = vec![0.0f32; refs.len()];
        for (row, (&(q, d), (a, b))) in groups.sources.iter().zip(&refs).enumerate() {
            let Some(d) = d else { continue };
            let (ql, pl) = self.labels(q, d)?;
            let states = self.profiles.states(&beir.queries[q].id, &beir.corpus[d].id)?;
            pair_states[row * Attribute::ALL.len()..(row + 1) * Attribute::ALL.len()].copy_from_slice(&states);
            grades[row] = grade(&states) as f32;
            let (qs, ps) = self.base.tokenizer.pair_positions(a.len(), b.len());
            for (i, pos) in qs.enumerate() {
                value[row * width + pos] = ql.value[i];
                role[row * width + pos] = ql.role[i];
                if let Some(attr) = ql.attribute[i] {
                    matched[row * width + pos] = states[attr];
                }
            }
            for (i, pos) in ps.enumerate() {
                value[row * width + pos] = pl.value[i];
                role[row * width + pos] = pl.role[i];
            }
        }
        let (ids, types, pad) = tokens.to_tensors(device);
        let states = model.teacher.forward_layers(ids, types, pad).context("--profiles needs a BERT teacher")?;
        let last = states.last().expect("never empty").clone();
        let pooled = model.teacher.pool(last);
        let scores = CrossEncoderModel::logit_score(model.teacher.classify(pooled.clone()));
        let rank = if args.graded > 0.0 {
            // KL to the graded targets: their cross-entropy less a constant. Scaled by 1 / T²
            // (T = 1 / G) because `listwise_kl` multiplies by T².
            let rows = groups.present.len();
            let t = (1.0 / args.graded) as f32;
            let grades = Tensor::<2>::from_data(TensorData::new(grades, [rows, args.group_size]), device);
            let mask = padding_mask(&groups.present, args.group_size, device);
            listwise_kl(scores.reshape([rows, args.group_size]), grades, Some(&mask), 1.0, t)
                .mean()
                .div_scalar(t * t * micro.in_step as f32)
        } else {
            self.base.ranking_loss(scores, &groups, micro)
        };
        let flat = |layer: usize| {
            let [b, s, h] = states[layer].dims();
            states[layer].clone().reshape([b * s, h])
        };
        let tags = flat(args.tag_layer);
        let scale = args.reading_weight as f32 / micro.in_step as f32;
        let value_loss =
            masked_cross_entropy(model.heads.value.forward(tags.clone()), &value, device).mul_scalar(scale);
        let role_loss = masked_cross_entropy(model.heads.role.forward(tags), &role, device).mul_scalar(scale);
        let match_loss = masked_cross_entropy(model.heads.matched.forward(flat(args.match_layer)), &matched, device)
            .mul_scalar(scale);
        let [rows, _] = pooled.dims();
        let attribute_states = model.heads.states.forward(pooled).reshape([rows * Attribute::ALL.len(), STATES]);
        let state_loss = masked_cross_entropy(attribute_states, &pair_states, device).mul_scalar(scale);
        let parts = [rank.clone(), value_loss.clone(), role_loss.clone(), match_loss.clone(), state_loss.clone()]
            .map(|t| t.into_scalar::<f32>() as f64);
        let loss = rank + value_loss + role_loss + match_loss + state_loss;
        Ok(MicroLoss { loss, value: parts.iter().sum(), parts })
    }

    fn add_parts(&mut self, parts: [f64; 5]) {
        for (sum, p) in self.sums.iter_mut().zip(parts) {
            *sum += p;
        }
    }

    fn item_name(&self, item: usize) -> String {
        self.base.item_name(item)
    }

    /// The step's losses apart: ranking, then the reading heads' (each weighted).
    fn log(&mut self, _: &ReadingTeacher, _: &StepDone, line: &mut serde_json::Value) -> Result<()> {
        let sums = std::mem::take(&mut self.sums);
        for (name, sum) in ["rank", "value", "role", "match", "states"].iter().zip(sums) {
            line[*name] = round_sig(sum).into();
        }
        Ok(())
    }
}
