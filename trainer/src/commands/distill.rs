//! `adam distill --config FILE.toml [--resume]`: trains a dual-encoder student on the cached
//! teacher scores (and dark examples) of `adam teacher score`, with one of the methods of
//! METHOD.md, dev evaluation, a JSONL log, and resumable checkpoints.
//!
//! Determinism: the data order of epoch `e` is a permutation seeded by `(seed, e)`, a query's
//! positive and the dropout masks of micro-batch `j` are seeded by `(seed, j)`, the learning rate
//! and `lambda(t)` are functions of the step. A checkpoint therefore needs only the weights, the
//! optimizer moments and the step to continue exactly as an uninterrupted run would.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use adam_core::dark::mix_seed;
use adam_core::metrics::Measures;
use adam_core::save::write_folder;
use anyhow::{Context, Result, bail};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::checkpoint;
use crate::distill_config::{DistillConfig, first_difference};
use crate::distillation::{Distillation, build_student, check_dark_examples, dev_measures, dev_set, examples, measures_json};
use crate::instances::{Collection, permutation};
use crate::io::round_sig as round;
use crate::optim::{Accumulator, Optimizer, non_finite};
use crate::progress;
use crate::score_cache;

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
}

/// What a checkpoint records besides the weights and optimizer moments.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// Optimiser steps done.
    step: usize,
    /// Micro-batches done (step × grad_accumulation), i.e. the position in the data order.
    micro_batches: usize,
    epoch: usize,
    /// Next micro-batch within the epoch.
    batch_in_epoch: usize,
    /// The randomness of the run: everything is seeded from `seed` and the step / micro-batch.
    seed: u64,
    config: serde_json::Value,
}

/// The run's log: one JSON object per line, flushed as written. On resume, lines past the
/// checkpoint's step are dropped so the finished log equals an uninterrupted run's.
struct Log {
    file: std::fs::File,
    path: PathBuf,
}

impl Log {
    fn open(path: &Path, keep_through_step: usize) -> Result<Self> {
        let mut kept = Vec::new();
        if keep_through_step > 0
            && let Ok(file) = std::fs::File::open(path)
        {
            for line in BufReader::new(file).lines() {
                let line = line?;
                let step = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v.get("step")?.as_u64());
                if step.is_some_and(|s| s as usize <= keep_through_step) {
                    kept.push(line);
                }
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        for line in kept {
            writeln!(file, "{line}")?;
        }
        file.flush()?;
        Ok(Self { file, path: path.to_path_buf() })
    }

    fn write(&mut self, value: &serde_json::Value) -> Result<()> {
        writeln!(self.file, "{value}").with_context(|| format!("writing {}", self.path.display()))?;
        self.file.flush().with_context(|| format!("writing {}", self.path.display()))
    }
}

pub fn run(args: DistillArgs) -> Result<()> {
    let config = DistillConfig::load(&args.config)?;
    let config_json = serde_json::to_value(&config)?;
    let out = &config.output;
    let checkpoint_dir = out.join("checkpoint");
    let state: Option<State> = checkpoint::load_state(&checkpoint_dir)?;
    if state.is_some() && !args.resume {
        bail!(
            "{} holds a checkpoint: pass --resume to continue that run, or choose another `output`",
            checkpoint_dir.display()
        );
    }
    if let Some(s) = &state
        && let Some(diff) = first_difference(&s.config, &config_json, "")
    {
        bail!("{}: the config changed since the checkpoint ({diff}); resume with the same config", args.config.display());
    }
    if args.resume && state.is_none() {
        eprintln!("no checkpoint in {}: starting from the beginning", checkpoint_dir.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

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
        eprintln!("dark examples: {kept} kept, {dropped} dropped for missing the band (train.drop_outside_band = {drop})");
    }
    let dev = config.eval.as_ref().map(|e| dev_set(&beir, e)).transpose()?;

    let n = examples.len();
    let per_epoch = n.div_ceil(config.train.batch_size);
    let accum = config.optimizer.grad_accumulation;
    let total_micro = match config.train.steps {
        Some(s) => s * accum,
        None => config.train.epochs * per_epoch,
    };
    let total_steps = total_micro.div_ceil(accum);
    let mut optimizer = Optimizer::new(&config.optimizer, total_steps, &[]);
    let mut first_step = 0;
    if let Some(s) = &state {
        student.bert = checkpoint::load_model(&checkpoint_dir, student.bert)?;
        optimizer = checkpoint::load_optimizer(&checkpoint_dir, optimizer)?;
        first_step = s.step;
        eprintln!("resuming at step {} of {total_steps}", s.step);
    }
    let mut log = Log::open(&out.join("log.jsonl"), first_step)?;
    let trainer = Distillation { config: &config, examples: &examples, device: ad.clone() };
    let bar = progress::bar(total_steps as u64, "distilling steps");
    bar.set_position(first_step as u64);
    let start = Instant::now();
    let mut orders: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut last_dev: Option<Measures> = None;
    let mut last_checkpoint = state.as_ref().map(|s| s.step);
    for step in first_step..total_steps {
        let mut step_queries: Vec<String> = Vec::new();
        let micro_here = accum.min(total_micro - step * accum);
        let mut acc = Accumulator::default();
        let (mut total, mut contrastive, mut kd, mut kept, mut seen) = (0.0f64, None, None, None, 0usize);
        let mut dark: Option<(usize, usize)> = None;
        let mut lambda = None;
        let mut epoch = 0;
        for a in 0..micro_here {
            let micro = step * accum + a;
            epoch = micro / per_epoch;
            let b = micro % per_epoch;
            let order = orders.entry(epoch).or_insert_with(|| permutation(n, mix_seed(config.seed, epoch as u64)));
            let batch: Vec<usize> =
                order[b * config.train.batch_size..((b + 1) * config.train.batch_size).min(n)].to_vec();
            orders.retain(|&e, _| e >= epoch);
            ad.seed(mix_seed(config.seed ^ 0xd50f, micro as u64)); // dropout masks
            let loss = trainer.batch_loss(&student, &batch, epoch, step, total_steps);
            let scale = 1.0 / micro_here as f32;
            let value = |t: Tensor<1>| t.into_scalar::<f32>() as f64 * scale as f64;
            step_queries.extend(batch.iter().map(|&i| examples[i].id.clone()));
            let here = value(loss.total.clone());
            if !here.is_finite() {
                let at = last_checkpoint.map(|s| (checkpoint_dir.as_path(), s));
                return Err(non_finite(step, &step_queries, at, format!("the loss is {here}")));
            }
            total += here;
            if let Some(c) = loss.contrastive {
                *contrastive.get_or_insert(0.0) += value(c);
            }
            if let Some(k) = loss.kd {
                *kd.get_or_insert(0.0) += value(k);
            }
            if let Some(k) = loss.kept {
                *kept.get_or_insert(0) += k;
            }
            if let Some((fed, dropped)) = loss.dark {
                let d: &mut (usize, usize) = dark.get_or_insert((0, 0));
                *d = (d.0 + fed, d.1 + dropped);
            }
            lambda = loss.lambda.or(lambda);
            seen += batch.len();
            acc.backward(&student.bert, loss.total.mul_scalar(scale));
        }
        let lr = optimizer.lr(step);
        let (bert, grad_norm) = optimizer
            .step(student.bert, acc.take(), step)
            .map_err(|e| non_finite(step, &step_queries, last_checkpoint.map(|s| (checkpoint_dir.as_path(), s)), e))?;
        student.bert = bert;
        let done = step + 1;
        let mut line = serde_json::json!({
            "step": done, "epoch": epoch, "loss": round(total), "lr": round(lr),
            "grad_norm": round(grad_norm), "queries": seen,
        });
        if let Some(c) = contrastive {
            line["contrastive"] = round(c).into();
        }
        if let Some(k) = kd {
            line["kd"] = round(k).into();
        }
        if let Some(l) = lambda {
            line["lambda"] = round(l as f64).into();
        }
        if let Some(k) = kept {
            line["kept"] = k.into();
        }
        if let Some((fed, dropped)) = dark {
            line["dark"] = fed.into();
            line["dark_dropped"] = dropped.into();
        }
        if let (Some(eval), Some(dev)) = (&config.eval, &dev)
            && ((eval.every > 0 && done % eval.every == 0) || done == total_steps)
        {
            let m = dev_measures(&student, dev, eval, &device)?;
            line["dev"] = measures_json(&m);
            last_dev = Some(m);
        }
        log.write(&line)?;
        bar.set_message(format!("loss {total:.4}"));
        bar.inc(1);
        let every = config.checkpoint.every;
        if every > 0 && done % every == 0 && done < total_steps {
            let micro_batches = done * accum;
            let state = State {
                step: done,
                micro_batches,
                epoch: micro_batches / per_epoch,
                batch_in_epoch: micro_batches % per_epoch,
                seed: config.seed,
                config: config_json.clone(),
            };
            checkpoint::save(&checkpoint_dir, &student.bert, &optimizer, &state)?;
            last_checkpoint = Some(done);
        }
        if args.halt_after_step == Some(done) {
            bar.finish_and_clear();
            eprintln!("halted after step {done} (--halt-after-step)");
            return Ok(());
        }
    }
    bar.finish_and_clear();
    let student_dir = out.join("student");
    write_folder(&student_dir, &student.files(config.student.save_half)?)?;
    // The run is complete: its checkpoint is no longer needed (and would block a rerun).
    if checkpoint_dir.exists() {
        std::fs::remove_dir_all(&checkpoint_dir)
            .with_context(|| format!("removing {}", checkpoint_dir.display()))?;
    }
    eprintln!(
        "distilled {} ({:?}) for {} steps in {:.1} s; student saved to {}",
        n,
        config.method,
        total_steps - first_step,
        start.elapsed().as_secs_f64(),
        student_dir.display()
    );
    if let Some(m) = last_dev.filter(|_| !args.quiet) {
        println!("{}", serde_json::json!({"dev": measures_json(&m)}));
    }
    Ok(())
}
