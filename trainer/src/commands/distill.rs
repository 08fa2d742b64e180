//! `adam distill --config FILE.toml [--resume]`: trains a dual-encoder student on the cached
//! teacher scores (and dark examples) of `adam teacher score`, with one of the methods of
//! METHOD.md, dev evaluation, a JSONL log, and resumable checkpoints.
//!
//! Determinism: the data order of epoch `e` is a permutation seeded by `(seed, e)`, a query's
//! positive and the dropout masks of micro-batch `j` are seeded by `(seed, j)`, the learning rate
//! and `lambda(t)` are functions of the step. A checkpoint therefore needs only the weights, the
//! optimizer moments and the step to continue exactly as an uninterrupted run would.

use std::path::PathBuf;
use std::time::Instant;

use adam_core::metrics::Measures;
use adam_core::save::write_folder;
use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor};

use crate::backend::Backend;
use crate::checkpoint;
use crate::data_parallel::PeerArgs;
use crate::distill_config::{DistillConfig, EvalConfig};
use crate::distillation::{
    DevSet, Distillation, Student, build_student, check_dark_examples, dev_measures, dev_set, examples, measures_json,
};
use crate::instances::Collection;
use crate::io::round_sig as round;
use crate::optim::Optimizer;
use crate::score_cache;
use crate::train_loop::{
    Checkpoints, MicroBatch, MicroLoss, Outcome, Schedule, StepDone, StepLog, Task, Training, train,
};

#[derive(clap::Args, Debug)]
pub struct DistillArgs {
    /// Config file (TOML); see README.md for the keys.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Continue from the run folder's checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Stop after this step as if the process were killed (for testing --resume).
    #[arg(long, hide = true)]
    pub halt_after_step: Option<usize>,
    /// Do not print the final dev measures (they are in log.jsonl either way).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub peers: PeerArgs,
}

/// Flushes subnormal floats to zero on this thread and on the threads it starts from now on
/// (x86's FTZ and DAZ bits). A student whose loss saturates it (MarginMSE on cosine scores:
/// teacher margins near 10, the student's at most 2) fills its tensors with subnormal values,
/// which x86 computes through microcode assists: such a demo student took 38 s for what a `ce`
/// one does in 25 s, and 25 s with the flush. Only values below 1.2e-38 change (the demo's other
/// students are bit for bit the same); TensorFlow's CPU thread pools flush the same way. Only
/// here, not in every training run: the shipped teacher's training must stay the computation that
/// made its bytes (trainer/teachers/paraphrase/SOURCE.md) until it is rebuilt with the flush.
fn flush_subnormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: sets two mode bits of this thread's MXCSR (flush-to-zero, denormals-are-zero),
    // which every x86-64 processor has; nothing else in the register changes.
    #[allow(deprecated)]
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

pub fn run(args: DistillArgs) -> Result<()> {
    flush_subnormals();
    let config = DistillConfig::load(&args.config)?;
    let config_json = serde_json::to_value(&config)?;
    let out = &config.output;
    let checkpoint_dir = out.join("checkpoint");
    let accumulation = config.optimizer.grad_accumulation;
    args.peers.check_grad_accumulation(
        accumulation,
        format!("{}: [optimizer] grad_accumulation = {accumulation}", args.config.display()),
    )?;
    // Peers other than 0 write nothing: peer 0 gives them its weights, step and optimizer.
    let leader = args.peers.is_leader();
    let state = checkpoint::resume_from(
        &checkpoint_dir,
        args.resume,
        &config_json,
        leader,
        "choose another `output`",
        &format!("the config {}", args.config.display()),
    )?;
    if leader {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    }

    // MS MARCO keeps queries per split: the cache's (train) and the dev split's.
    let mut splits = vec!["train"];
    if let Some(eval) = &config.eval {
        splits.push(eval.split.as_str());
    }
    let beir = Collection::load(&config.data.dir, &splits)?;
    let cache = score_cache::read_complete(&config.data.teacher_scores)?;
    let device = args.backend.device()?;
    let ad = device.clone().autodiff();
    let mut student = build_student(&config.student, &ad, config.seed)?;
    check_dark_examples(&config, &args.config, &cache, &student)?;
    let drop = config.train.drop_outside_band;
    let examples = examples(&cache, &beir, &student.tokenizer, config.method, drop, &config.data.teacher_scores)?;
    if config.method.uses_dark() {
        let kept: usize = examples.iter().map(|e| e.dark.len()).sum();
        let dropped: usize = examples.iter().map(|e| e.dark_dropped).sum();
        eprintln!(
            "dark examples: {kept} kept, {dropped} dropped for missing the band (train.drop_outside_band = {drop})"
        );
    }
    let dev = config.eval.as_ref().map(|e| dev_set(&beir, e)).transpose()?;

    let schedule = Schedule::new(
        examples.len(),
        config.train.batch_size,
        config.optimizer.grad_accumulation,
        config.train.steps,
        config.train.epochs,
        config.seed,
    );
    let total_steps = schedule.steps();
    let optimizer = Optimizer::new(&config.optimizer, total_steps, &[]);
    let (bert, mut optimizer, resumed_at) =
        checkpoint::restore(&checkpoint_dir, state.as_ref(), student.bert, optimizer, total_steps)?;
    student.bert = bert;
    let log = leader.then(|| StepLog::resume(&out.join("log.jsonl"), resumed_at.unwrap_or(0))).transpose()?;
    let peers = args.peers.connect()?;
    let mut task = DistillTask {
        objective: Distillation { config: &config, examples: &examples, device: ad.clone() },
        total_steps,
        dev: config.eval.as_ref().zip(dev.as_ref()),
        device: &device,
        parts: StepParts::default(),
        last_dev: None,
    };
    let start = Instant::now();
    let training = Training {
        device: &ad,
        schedule: &schedule,
        label: "distilling steps",
        log,
        checkpoints: leader.then_some(Checkpoints {
            dir: &checkpoint_dir,
            every: config.checkpoint.every,
            config: &config_json,
        }),
        resumed_at,
        halt_after_step: args.halt_after_step,
        peers: peers.as_ref(),
        workers: args.peers.worker_count(&ad, accumulation),
    };
    let student = match train(student, &mut optimizer, training, &mut task)? {
        Outcome::Finished(student) => student,
        Outcome::Halted => return Ok(()),
    };
    if !leader {
        eprintln!("peer {} done: peer 0 saves the student", args.peers.rank);
        return Ok(());
    }
    let student_dir = out.join("student");
    write_folder(&student_dir, &student.files(config.student.save_half)?)?;
    checkpoint::remove(&checkpoint_dir)?;
    eprintln!(
        "distilled {} ({:?}) for {} steps in {:.1} s; student saved to {}",
        examples.len(),
        config.method,
        total_steps - resumed_at.unwrap_or(0),
        start.elapsed().as_secs_f64(),
        student_dir.display()
    );
    if let Some(m) = task.last_dev.filter(|_| !args.quiet) {
        println!("{}", serde_json::json!({"dev": measures_json(&m)}));
    }
    Ok(())
}

/// Distillation's part of the training loop: the method's loss, and what a step's log line adds
/// (the loss's parts, self-paced selection, dark examples, dev measures).
struct DistillTask<'a> {
    objective: Distillation<'a>,
    total_steps: usize,
    dev: Option<(&'a EvalConfig, &'a DevSet)>,
    /// The device of dev evaluation (no autodiff).
    device: &'a Device,
    /// Sums over the micro-batches of the step under way.
    parts: StepParts,
    last_dev: Option<Measures>,
}

/// A step's sums of what its micro-batches report besides the loss (or one micro-batch's).
#[derive(Default)]
struct StepParts {
    contrastive: Option<f64>,
    kd: Option<f64>,
    kept: Option<usize>,
    /// Dark examples fed to the loss, and dropped for missing the band.
    dark: Option<(usize, usize)>,
    lambda: Option<f32>,
}

impl StepParts {
    /// Each part as (present, value) pairs, which summed over peers give the step's parts.
    fn to_sums(&self) -> Vec<f64> {
        let pair = |v: Option<f64>| [f64::from(u8::from(v.is_some())), v.unwrap_or(0.0)];
        let (fed, dropped) = (self.dark.map(|d| d.0 as f64), self.dark.map(|d| d.1 as f64));
        [self.contrastive, self.kd, self.kept.map(|k| k as f64), fed, dropped, self.lambda.map(f64::from)]
            .into_iter()
            .flat_map(pair)
            .collect()
    }

    fn from_sums(sums: &[f64]) -> Self {
        let part = |i: usize| (sums[2 * i] > 0.0).then_some((sums[2 * i], sums[2 * i + 1]));
        let value = |i: usize| part(i).map(|(_, v)| v);
        let count = |i: usize| value(i).map(|v| v.round() as usize);
        Self {
            contrastive: value(0),
            kd: value(1),
            kept: count(2),
            dark: count(3).zip(count(4)),
            // λ(t) is the same on every peer that reports it: their mean.
            lambda: part(5).map(|(peers, sum)| (sum / peers) as f32),
        }
    }
}

impl Task<Student> for DistillTask<'_> {
    type Parts = StepParts;

    fn loss(&self, student: &Student, micro: &MicroBatch) -> Result<MicroLoss<StepParts>> {
        let loss = self.objective.batch_loss(student, micro.items, micro.epoch, micro.step, self.total_steps);
        let scale = 1.0 / micro.in_step as f32;
        let value = |t: Tensor<1>| t.into_scalar::<f32>() as f64 * scale as f64;
        let total = value(loss.total.clone());
        let parts = StepParts {
            contrastive: loss.contrastive.map(value),
            kd: loss.kd.map(value),
            kept: loss.kept,
            dark: loss.dark,
            lambda: loss.lambda,
        };
        Ok(MicroLoss { loss: loss.total.mul_scalar(scale), value: total, parts })
    }

    fn add_parts(&mut self, micro: StepParts) {
        let parts = &mut self.parts;
        if let Some(c) = micro.contrastive {
            *parts.contrastive.get_or_insert(0.0) += c;
        }
        if let Some(k) = micro.kd {
            *parts.kd.get_or_insert(0.0) += k;
        }
        if let Some(k) = micro.kept {
            *parts.kept.get_or_insert(0) += k;
        }
        if let Some((fed, dropped)) = micro.dark {
            let d: &mut (usize, usize) = parts.dark.get_or_insert((0, 0));
            *d = (d.0 + fed, d.1 + dropped);
        }
        parts.lambda = micro.lambda.or(parts.lambda);
    }

    fn item_name(&self, item: usize) -> String {
        self.objective.examples[item].id.clone()
    }

    fn take_step_sums(&mut self) -> Vec<f64> {
        std::mem::take(&mut self.parts).to_sums()
    }

    fn put_step_sums(&mut self, sums: &[f64]) {
        self.parts = StepParts::from_sums(sums);
    }

    fn log(&mut self, student: &Student, done: &StepDone, line: &mut serde_json::Value) -> Result<()> {
        let parts = std::mem::take(&mut self.parts);
        line["epoch"] = done.epoch.into();
        line["queries"] = done.items.into();
        if let Some(c) = parts.contrastive {
            line["contrastive"] = round(c).into();
        }
        if let Some(k) = parts.kd {
            line["kd"] = round(k).into();
        }
        if let Some(l) = parts.lambda {
            line["lambda"] = round(l as f64).into();
        }
        if let Some(k) = parts.kept {
            line["kept"] = k.into();
        }
        if let Some((fed, dropped)) = parts.dark {
            line["dark"] = fed.into();
            line["dark_dropped"] = dropped.into();
        }
        if let Some((eval, dev)) = self.dev
            && ((eval.every > 0 && done.step.is_multiple_of(eval.every)) || done.step == self.total_steps)
        {
            let m = dev_measures(student, dev, eval, self.device)?;
            line["dev"] = measures_json(&m);
            self.last_dev = Some(m);
        }
        Ok(())
    }
}
