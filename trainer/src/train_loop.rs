//! The training loop of `adam teacher train` and `adam distill`: micro-batches in a seeded order
//! per epoch, gradient accumulation, a dropout seed per micro-batch, AdamW steps (clipping is
//! [`Optimizer::step`]'s), a stop with a message on a loss or gradient that is not a number, one
//! JSONL line per step, checkpoints, and a progress bar. What a micro-batch's loss is, and what
//! else a step logs, is the caller's [`Task`].
//!
//! Determinism: the data order of epoch `e` is a permutation seeded by `(seed, e)`, the dropout
//! masks of micro-batch `j` are seeded by `(seed, j)`, and the learning rate is a function of the
//! step. A checkpoint therefore needs only the weights, the optimizer moments and the step to
//! continue exactly as an uninterrupted run would.
//!
//! Data-parallel runs ([`Training::peers`]): peer `r` of `N` computes micro-batches `r, r + N, …`
//! of each step with the same seeds, the gradients are summed over the peers
//! ([`crate::data_parallel`]) and every peer takes the same step: the run is the one-process run
//! with its micro-batch gradients added in another order.
//!
//! Workers ([`Training::workers`]): a process computes its micro-batches of a step several at a
//! time, one per worker thread ([`crate::workers`]); each micro-batch seeds its own dropout
//! masks and the gradients are added in the micro-batches' order, so the run is the same with
//! any number of workers.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use adam_core::dark::mix_seed;
use adam_core::model::{CrossEncoderModel, seed_dropout};
use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Bytes, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::data_parallel::{Peers, parameter_count};
use crate::instances::permutation;
use crate::io::round_sig;
use crate::optim::{Accumulator, Optimizer, gradients, non_finite};
use crate::progress;
use crate::workers::Workers;

/// How a run walks its data: `batch_size` items per micro-batch, in an order shuffled afresh each
/// epoch, `grad_accumulation` micro-batches per optimiser step.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Items (queries) in the data.
    pub items: usize,
    pub batch_size: usize,
    pub grad_accumulation: usize,
    /// Micro-batches in the whole run.
    pub micro_batches: usize,
    /// Seeds the order of each epoch and the dropout masks of each micro-batch.
    pub seed: u64,
}

impl Schedule {
    /// `steps` optimiser steps when given, else `epochs` passes over the items.
    pub fn new(
        items: usize,
        batch_size: usize,
        grad_accumulation: usize,
        steps: Option<usize>,
        epochs: usize,
        seed: u64,
    ) -> Self {
        let micro_batches = match steps {
            Some(s) => s * grad_accumulation,
            None => epochs * items.div_ceil(batch_size),
        };
        Self { items, batch_size, grad_accumulation, micro_batches, seed }
    }

    pub fn per_epoch(&self) -> usize {
        self.items.div_ceil(self.batch_size)
    }

    /// Optimiser steps in the run (the last may have fewer micro-batches).
    pub fn steps(&self) -> usize {
        self.micro_batches.div_ceil(self.grad_accumulation)
    }
}

/// One micro-batch, as the loop hands it to [`Task::loss`].
pub struct MicroBatch<'a> {
    /// The optimiser step (0-based) it belongs to.
    pub step: usize,
    pub epoch: usize,
    /// Its items: indices into the task's data.
    pub items: &'a [usize],
    /// Micro-batches in its step. A step's gradient is the mean over them, so the loss is
    /// divided by this.
    pub in_step: usize,
}

/// A micro-batch's loss: the tensor to differentiate, already divided by
/// [`MicroBatch::in_step`], its value, which the step's log line sums, and what else it adds to
/// the log line ([`Task::add_parts`]).
pub struct MicroLoss<P> {
    pub loss: Tensor<1>,
    pub value: f64,
    pub parts: P,
}

/// A finished optimiser step.
pub struct StepDone {
    /// Steps done (1-based), as logged.
    pub step: usize,
    /// The epoch of its last micro-batch.
    pub epoch: usize,
    /// Items in its micro-batches.
    pub items: usize,
}

/// What the loop trains: a network, alone or inside what runs it.
pub trait Trainee: Sized + Send + Sync {
    type Module: Module;

    fn module(&self) -> &Self::Module;

    /// This trainee with its network replaced by `f(network)`.
    fn map_module(self, f: impl FnOnce(Self::Module) -> Result<Self::Module>) -> Result<Self>;

    /// A copy for a worker thread: the same weights as new autodiff leaves
    /// ([`own_leaves`](crate::workers::own_leaves)).
    fn worker_copy(&self) -> Self;
}

/// [`Trainee`] for networks that train as they are, with nothing around them: each is its own
/// module.
macro_rules! bare_trainee {
    ($($network:ty),+ $(,)?) => {$(
        impl $crate::train_loop::Trainee for $network {
            type Module = $network;

            fn module(&self) -> &$network {
                self
            }

            fn map_module(
                self,
                f: impl FnOnce($network) -> ::anyhow::Result<$network>,
            ) -> ::anyhow::Result<Self> {
                f(self)
            }

            fn worker_copy(&self) -> Self {
                $crate::workers::own_leaves(self.clone())
            }
        }
    )+};
}
pub(crate) use bare_trainee;

// A teacher trains as the bare cross-encoder it is.
bare_trainee!(CrossEncoderModel);

/// A run's own part of the loop.
pub trait Task<T>: Sync {
    /// What a micro-batch adds to its step's log line besides the loss.
    type Parts: Send;

    /// The loss of one micro-batch. Workers call it from their threads, several at once.
    fn loss(&self, trainee: &T, micro: &MicroBatch) -> Result<MicroLoss<Self::Parts>>;

    /// Adds a micro-batch's parts to its step's, in the micro-batches' order.
    fn add_parts(&mut self, parts: Self::Parts);

    /// An item's name (a query id), for the message that stops a run.
    fn item_name(&self, item: usize) -> String;

    /// Adds what the step's log line has besides the step, loss, learning rate and gradient
    /// norm (nothing by default); `trainee` is the model after the step.
    fn log(&mut self, _trainee: &T, _done: &StepDone, _line: &mut serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// In a data-parallel run: what this peer's micro-batches of the step add to the log line, as
    /// numbers the peers sum (and forgets them). Nothing by default.
    fn take_step_sums(&mut self) -> Vec<f64> {
        Vec::new()
    }

    /// In a data-parallel run, on peer 0: the step's sums over every peer, for [`Task::log`].
    fn put_step_sums(&mut self, _sums: &[f64]) {}
}

/// Checkpoints into `dir` every `every` steps (0: never), except after the last step.
pub struct Checkpoints<'a> {
    pub dir: &'a Path,
    pub every: usize,
    /// The run's config, recorded with each checkpoint so that a resume can refuse another.
    pub config: &'a serde_json::Value,
}

/// What a checkpoint records besides the weights and optimizer moments.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimiser steps done.
    pub step: usize,
    /// Micro-batches done (step × grad_accumulation), i.e. the position in the data order.
    pub micro_batches: usize,
    pub epoch: usize,
    /// Next micro-batch within the epoch.
    pub batch_in_epoch: usize,
    /// The randomness of the run: everything is seeded from `seed` and the step / micro-batch.
    pub seed: u64,
    pub config: serde_json::Value,
}

/// A run's log: one JSON object per line, flushed as written.
pub struct StepLog {
    file: std::fs::File,
    path: PathBuf,
}

impl StepLog {
    /// A new log at `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { file, path: path.to_path_buf() })
    }

    /// The log of a run that resumes after step `keep_through_step` (0: from the start): lines
    /// past that step are dropped, so the finished log equals an uninterrupted run's.
    pub fn resume(path: &Path, keep_through_step: usize) -> Result<Self> {
        let mut kept = Vec::new();
        if keep_through_step > 0
            && let Ok(file) = std::fs::File::open(path)
        {
            for line in BufReader::new(file).lines() {
                let line = line?;
                let step = serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|v| v.get("step")?.as_u64());
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

/// How a training run goes besides its task.
pub struct Training<'a> {
    /// The (autodiff) device whose random generator the dropout masks draw from.
    pub device: &'a Device,
    pub schedule: &'a Schedule,
    /// Names the progress bar's steps, e.g. "distilling steps".
    pub label: &'a str,
    pub log: Option<StepLog>,
    pub checkpoints: Option<Checkpoints<'a>>,
    /// The step of the checkpoint this run resumes from.
    pub resumed_at: Option<usize>,
    /// Stop after this step as if the process were killed (`--halt-after-step`).
    pub halt_after_step: Option<usize>,
    /// The other peers of a data-parallel run. Peer 0 starts the others from its model (and its
    /// checkpoint's optimizer and step when it resumes); only peer 0 should have a log and
    /// checkpoints.
    pub peers: Option<&'a Peers>,
    /// Micro-batches this process computes at once ([`crate::workers::worker_count`]).
    pub workers: usize,
}

/// How a run ended.
pub enum Outcome<T> {
    /// Every step done: the trained model.
    Finished(T),
    /// Stopped at [`Training::halt_after_step`].
    Halted,
}

/// Trains `trainee` with `optimizer` through the steps of `training.schedule`, from
/// `training.resumed_at`.
pub fn train<T: Trainee>(
    mut trainee: T,
    optimizer: &mut Optimizer,
    training: Training<'_>,
    task: &mut impl Task<T>,
) -> Result<Outcome<T>> {
    let Training { device, schedule, label, mut log, checkpoints, resumed_at, halt_after_step, peers, workers } =
        training;
    let workers = Workers::new(workers)?;
    if workers.count() > 1 {
        eprintln!(
            "{0} workers: {0} micro-batches of each step at once, one per core (--workers 1 for one at a time)",
            workers.count()
        );
    }
    let (total, accum, per_epoch) = (schedule.steps(), schedule.grad_accumulation, schedule.per_epoch());
    let mut resumed_at = resumed_at;
    if let Some(peers) = peers {
        (trainee, resumed_at) = start_peers(peers, trainee, optimizer, schedule, resumed_at)?;
    }
    let (rank, size) = peers.map_or((0, 1), |p| (p.rank(), p.size()));
    let first_step = resumed_at.unwrap_or(0);
    let mut last_checkpoint = resumed_at;
    // A message that names the step, its queries and the checkpoint to go back to.
    let stop = |step: usize, queries: &[String], last_checkpoint: Option<usize>, cause: String| {
        let at = checkpoints.as_ref().zip(last_checkpoint).map(|(c, s)| (c.dir, s));
        non_finite(step, queries, at, cause)
    };
    let bar = progress::bar(total as u64, label);
    bar.set_position(first_step as u64);
    let mut order_epoch = usize::MAX;
    let mut order = Vec::new();
    let grad_device = device.clone().inner();
    // Time in the peers' exchanges (waiting for the slowest peer included), reported at the end.
    let (started, mut exchange) = (std::time::Instant::now(), std::time::Duration::ZERO);
    for step in first_step..total {
        let in_step = accum.min(schedule.micro_batches - step * accum);
        let mut acc = Accumulator::default();
        let (mut loss, mut items, mut epoch) = (0.0f64, 0usize, 0usize);
        let mut step_queries: Vec<String> = Vec::new();
        // Peer r computes micro-batches r, r + N, … of the step; the others it only counts.
        let mut mine: Vec<(usize, usize, Vec<usize>)> = Vec::new(); // (index, epoch, items)
        for a in 0..in_step {
            let index = step * accum + a;
            epoch = index / per_epoch;
            let b = index % per_epoch;
            if epoch != order_epoch {
                order = permutation(schedule.items, mix_seed(schedule.seed, epoch as u64));
                order_epoch = epoch;
            }
            let batch = &order[b * schedule.batch_size..((b + 1) * schedule.batch_size).min(schedule.items)];
            step_queries.extend(batch.iter().map(|&i| task.item_name(i)));
            items += batch.len();
            if a % size == rank {
                mine.push((index, epoch, batch.to_vec()));
            }
        }
        // The workers take this peer's micro-batches a round at a time; their gradients join
        // the step's in the micro-batches' order.
        for round in mine.chunks(workers.count()) {
            if !loss.is_finite() {
                break;
            }
            let copies: Vec<T> =
                if round.len() > 1 { round.iter().map(|_| trainee.worker_copy()).collect() } else { Vec::new() };
            let task_ref: &_ = task;
            let results = workers.run(round.len(), |w| -> Result<(f64, _, Option<GradientsParams>)> {
                let (index, epoch, items) = &round[w];
                let seed = mix_seed(schedule.seed ^ 0xd50f, *index as u64); // dropout masks
                seed_dropout(seed);
                if round.len() == 1 {
                    device.seed(seed); // the devices whose masks come from their own generator
                }
                let own = copies.get(w).unwrap_or(&trainee);
                let micro = task_ref.loss(own, &MicroBatch { step, epoch: *epoch, items, in_step })?;
                if !micro.value.is_finite() {
                    return Ok((micro.value, micro.parts, None));
                }
                let grads = gradients(own.module(), micro.loss);
                Ok((micro.value, micro.parts, Some(grads)))
            });
            for result in results {
                let (value, parts, grads) = result?;
                loss += value;
                task.add_parts(parts);
                match grads {
                    Some(grads) if loss.is_finite() => acc.add(trainee.module(), grads),
                    _ if peers.is_none() => {
                        return Err(stop(step, &step_queries, last_checkpoint, format!("the loss is {value}")));
                    }
                    _ => {} // the peers learn of it from the summed loss, and all stop
                }
            }
        }
        let mut grads = acc.take();
        if let Some(peers) = peers {
            let mut sums = vec![loss];
            sums.extend(task.take_step_sums());
            let waited = std::time::Instant::now();
            grads = peers.all_reduce_grads(trainee.module(), grads, &mut sums, &grad_device, step)?;
            exchange += waited.elapsed();
            loss = sums[0];
            if peers.is_leader() {
                task.put_step_sums(&sums[1..]);
            }
            if !loss.is_finite() {
                return Err(stop(step, &step_queries, last_checkpoint, format!("the loss is {loss}")));
            }
        }
        let lr = optimizer.lr(step);
        let mut grad_norm = 0.0;
        trainee = trainee.map_module(|module| {
            let (module, norm) = optimizer
                .step(module, grads, step)
                .map_err(|e| stop(step, &step_queries, last_checkpoint, e.to_string()))?;
            grad_norm = norm;
            Ok(module)
        })?;
        let done = step + 1;
        let mut line = serde_json::json!({
            "step": done, "loss": round_sig(loss), "lr": round_sig(lr), "grad_norm": round_sig(grad_norm),
        });
        if rank == 0 {
            task.log(&trainee, &StepDone { step: done, epoch, items }, &mut line)?;
        }
        if let Some(log) = log.as_mut() {
            log.write(&line)?;
        }
        bar.set_message(format!("loss {loss:.4}"));
        bar.inc(1);
        if let Some(c) = &checkpoints
            && c.every > 0
            && done % c.every == 0
            && done < total
        {
            let micro_batches = done * accum;
            let state = CheckpointState {
                step: done,
                micro_batches,
                epoch: micro_batches / per_epoch,
                batch_in_epoch: micro_batches % per_epoch,
                seed: schedule.seed,
                config: c.config.clone(),
            };
            checkpoint::save(c.dir, trainee.module(), optimizer, &state)?;
            last_checkpoint = Some(done);
        }
        if halt_after_step == Some(done) {
            bar.finish_and_clear();
            eprintln!("halted after step {done} (--halt-after-step)");
            return Ok(Outcome::Halted);
        }
    }
    bar.finish_and_clear();
    if peers.is_some() {
        eprintln!(
            "peer {rank} of {size}: {:.1} s of {:.1} s in gradient exchanges (waits for slower peers included)",
            exchange.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Outcome::Finished(trainee))
}

/// Starts a data-parallel run: checks that every peer runs the same schedule on the same
/// network, then gives every peer peer 0's weights, and when peer 0 resumes, its optimizer state
/// and step. Returns the trainee and the step to resume after.
fn start_peers<T: Trainee>(
    peers: &Peers,
    trainee: T,
    optimizer: &mut Optimizer,
    schedule: &Schedule,
    resumed_at: Option<usize>,
) -> Result<(T, Option<usize>)> {
    let (tensors, entries) = parameter_count(trainee.module());
    peers.agree(&[
        ("queries", schedule.items as u64),
        ("batch_size", schedule.batch_size as u64),
        ("grad_accumulation", schedule.grad_accumulation as u64),
        ("micro-batches", schedule.micro_batches as u64),
        ("seed", schedule.seed),
        ("parameter tensors", tensors),
        ("parameters", entries),
    ])?;
    let during = "the start (peer 0's weights)";
    let leader = peers.is_leader();
    let step = peers.broadcast(resumed_at.map_or(0, |s| s as u64 + 1).to_le_bytes().to_vec(), during)?;
    let resumed_at = match u64::from_le_bytes(step[..8].try_into().context("a short message from peer 0")?) {
        0 => None,
        s => Some(s as usize - 1),
    };
    let weights =
        peers.broadcast(if leader { checkpoint::model_bytes(trainee.module())? } else { Vec::new() }, during)?;
    let trainee = if leader {
        trainee
    } else {
        trainee.map_module(|m| checkpoint::load_model_bytes(Bytes::from_bytes_vec(weights), m, "peer 0's weights"))?
    };
    if resumed_at.is_some() {
        let moments = peers.broadcast(if leader { optimizer.to_bytes()?.to_vec() } else { Vec::new() }, during)?;
        if !leader {
            optimizer.set_bytes(Bytes::from_bytes_vec(moments)).context("peer 0's optimizer state")?;
        }
    }
    Ok((trainee, resumed_at))
}

#[cfg(test)]
mod tests {
    use burn::nn::{Initializer, Linear, LinearConfig};

    use super::*;
    use crate::optim::OptimConfig;

    // A one-weight model: what is tested is the loop's bookkeeping, not what it learns.
    bare_trainee!(Linear);

    /// Records the micro-batches it is given; its loss at step `nan_at` is NaN.
    struct Recorder {
        device: Device,
        /// (step, epoch, items, in_step) of each micro-batch.
        seen: Vec<(usize, usize, Vec<usize>, usize)>,
        nan_at: Option<usize>,
    }

    impl Task<Linear> for Recorder {
        type Parts = (usize, usize, Vec<usize>, usize);

        fn loss(&self, model: &Linear, micro: &MicroBatch) -> Result<MicroLoss<Self::Parts>> {
            let parts = (micro.step, micro.epoch, micro.items.to_vec(), micro.in_step);
            // An input that depends on the items, so that micro-batches have gradients of their own.
            let x = 1.0 + micro.items.iter().sum::<usize>() as f32 / 10.0;
            let out = model.forward(Tensor::<2>::from_floats([[x]], &self.device));
            let loss = out.square().sum().div_scalar(micro.in_step as f32);
            let value =
                if self.nan_at == Some(micro.step) { f64::NAN } else { loss.clone().into_scalar::<f32>() as f64 };
            Ok(MicroLoss { loss, value, parts })
        }

        fn add_parts(&mut self, parts: Self::Parts) {
            self.seen.push(parts);
        }

        fn item_name(&self, item: usize) -> String {
            format!("q{item}")
        }

        fn log(&mut self, _: &Linear, done: &StepDone, line: &mut serde_json::Value) -> Result<()> {
            line["items"] = done.items.into();
            Ok(())
        }
    }

    fn train_with(
        schedule: &Schedule,
        log: Option<&Path>,
        halt_after_step: Option<usize>,
        nan_at: Option<usize>,
    ) -> (Result<bool>, Recorder) {
        let (outcome, task) = train_on_workers(schedule, log, halt_after_step, nan_at, 1);
        (outcome.map(|o| matches!(o, Outcome::Finished(_))), task)
    }

    fn train_on_workers(
        schedule: &Schedule,
        log: Option<&Path>,
        halt_after_step: Option<usize>,
        nan_at: Option<usize>,
        workers: usize,
    ) -> (Result<Outcome<Linear>>, Recorder) {
        let device = Device::flex().autodiff();
        // Fixed weights: a random start would differ from run to run (tests share the generator).
        let model = LinearConfig::new(1, 1).with_initializer(Initializer::Constant { value: 0.5 }).init(&device);
        let mut optimizer = Optimizer::new(&OptimConfig::default(), schedule.steps(), &[]);
        let mut task = Recorder { device: device.clone(), seen: Vec::new(), nan_at };
        let training = Training {
            device: &device,
            schedule,
            label: "testing steps",
            log: log.map(|p| StepLog::create(p).unwrap()),
            checkpoints: None,
            resumed_at: None,
            halt_after_step,
            peers: None,
            workers,
        };
        (train(model, &mut optimizer, training, &mut task), task)
    }

    /// Workers change nothing: the same micro-batches in the same order, the same weights (the
    /// copies' gradients reach the model's parameters by their ids).
    #[test]
    fn workers_take_the_same_micro_batches_and_end_with_the_same_weights() {
        // 9 items in micro-batches of 2 (5 per epoch), 4 per step, 2 epochs: 3 steps, the last
        // with 2 micro-batches; 3 workers take rounds of 3 and 1 micro-batches, then one of 2.
        let schedule = Schedule::new(9, 2, 4, None, 2, 3);
        let run = |workers: usize| {
            let (outcome, task) = train_on_workers(&schedule, None, None, None, workers);
            let Ok(Outcome::Finished(model)) = outcome else { panic!("the run with {workers} workers did not finish") };
            let weights = model.weight.val().into_data().try_to_vec::<f32>().expect("f32");
            (task.seen, weights)
        };
        let (seen, weights) = run(1);
        assert_eq!(seen.len(), 10);
        assert_eq!(run(3), (seen.clone(), weights.clone()), "3 workers");
        assert_eq!(run(2), (seen, weights), "2 workers");
    }

    #[test]
    fn every_epoch_visits_each_item_once_in_micro_batches_of_a_step() {
        // 5 items in micro-batches of 2: 3 per epoch; 2 epochs, 2 micro-batches per step: 3 steps.
        let schedule = Schedule::new(5, 2, 2, None, 2, 7);
        assert_eq!((schedule.per_epoch(), schedule.steps()), (3, 3));
        let (finished, task) = train_with(&schedule, None, None, None);
        assert!(finished.unwrap());
        let steps: Vec<(usize, usize)> = task.seen.iter().map(|s| (s.0, s.3)).collect();
        assert_eq!(steps, [(0, 2), (0, 2), (1, 2), (1, 2), (2, 2), (2, 2)]);
        for epoch in 0..2 {
            let mut items: Vec<usize> = task.seen.iter().filter(|s| s.1 == epoch).flat_map(|s| s.2.clone()).collect();
            items.sort();
            assert_eq!(items, [0, 1, 2, 3, 4], "epoch {epoch}");
        }
        let order =
            |seen: &[(usize, usize, Vec<usize>, usize)]| seen.iter().flat_map(|s| s.2.clone()).collect::<Vec<_>>();
        assert_ne!(order(&task.seen[..3]), order(&task.seen[3..]), "each epoch is shuffled afresh");
        let (_, again) = train_with(&schedule, None, None, None);
        assert_eq!(order(&again.seen), order(&task.seen), "the same seed gives the same order");
    }

    #[test]
    fn a_short_last_step_divides_by_its_own_micro_batches() {
        // One epoch of 3 micro-batches, 2 per step: the second step has one.
        let schedule = Schedule::new(5, 2, 2, None, 1, 0);
        let (_, task) = train_with(&schedule, None, None, None);
        let in_step: Vec<usize> = task.seen.iter().map(|s| s.3).collect();
        assert_eq!(in_step, [2, 2, 1]);
    }

    #[test]
    fn a_loss_that_is_not_a_number_stops_the_run_naming_step_and_queries() {
        let schedule = Schedule::new(4, 2, 1, Some(3), 1, 0);
        let (finished, task) = train_with(&schedule, None, None, Some(1));
        let err = finished.unwrap_err().to_string();
        assert!(err.starts_with("training stopped at step 2: the loss is NaN (batch queries: q"), "{err}");
        assert!(err.ends_with("no checkpoint was written before it"), "{err}");
        assert_eq!(task.seen.len(), 2, "nothing runs after the bad micro-batch");
    }

    #[test]
    fn a_halted_run_has_logged_its_steps() {
        let dir = std::env::temp_dir().join(format!("adam-train-loop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log.jsonl");
        let schedule = Schedule::new(4, 2, 1, Some(3), 1, 0);
        let (finished, task) = train_with(&schedule, Some(&log), Some(2), None);
        assert!(!finished.unwrap(), "halted, not finished");
        assert_eq!(task.seen.len(), 2);
        let lines: Vec<serde_json::Value> =
            std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(lines.len(), 2);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line["step"], i + 1);
            assert_eq!(line["items"], 2, "the task's own field");
            for key in ["loss", "lr", "grad_norm"] {
                assert!(line[key].as_f64().is_some_and(f64::is_finite), "{key}: {line}");
            }
        }
    }
}
