//! `adam bench-train`: training throughput (pairs/s) of forward + backward + AdamW for a
//! cross-encoder, each step a batch of (passage, passage) pairs padded to the full length,
//! with the time split into forward, backward and optimiser step. With workers the step's
//! groups are shared among them, one micro-batch each, as `teacher train` with gradient
//! accumulation shares them.
//! `scripts/bench_train_pytorch.py` does the same in PyTorch.

use std::path::PathBuf;
use std::time::Instant;

use adam_core::data::read_corpus;
use adam_core::loss::contrastive_loss;
use anyhow::{Result, bail};
use burn::tensor::Device;

use crate::backend::Backend;
use crate::io::open;
use crate::memory::peak_rss_mib;
use crate::models::load_teacher;
use crate::optim::{Accumulator, OptimConfig, Optimizer, gradients};
use crate::workers::{Workers, own_leaves, worker_count};

#[derive(clap::Args, Debug)]
pub struct BenchTrainArgs {
    /// Model folder (a cross-encoder, or a bare checkpoint: a new head is started).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// BEIR corpus.jsonl whose passages make the pairs.
    #[arg(long, value_name = "FILE")]
    pub corpus: PathBuf,
    /// Pairs per step.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Tokens per pair (every batch is padded to this length).
    #[arg(long, default_value_t = 128)]
    pub max_length: usize,
    /// Timed steps per backend (after one untimed warm-up step).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Flex, Backend::Ndarray])]
    pub backends: Vec<Backend>,
    /// Micro-batches computed at once, one per core (flex only): the step's groups of 8 pairs
    /// shared among them. Default: one per core (at most 8), up to the groups.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

fn sync(device: &Device) -> Result<()> {
    device.sync().map_err(|e| anyhow::anyhow!("device sync: {e:?}"))
}

pub fn run(args: BenchTrainArgs) -> Result<()> {
    if args.batch_size < 2 || args.steps == 0 {
        bail!("--batch-size must be at least 2 and --steps at least 1");
    }
    if args.batch_size > 8 && !args.batch_size.is_multiple_of(8) {
        bail!("--batch-size {} is not a multiple of 8: a step is groups of 8 pairs", args.batch_size);
    }
    let docs = read_corpus(open(&args.corpus)?, &args.corpus)?;
    // Long passages, so that each pair fills max_length.
    let mut texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let needed = 2 * args.batch_size * (args.steps + 1);
    if texts.len() < needed {
        bail!("{} has {} passages; {needed} are needed", args.corpus.display(), texts.len());
    }
    println!(
        "batch {} pairs x {} tokens, {} timed steps, {} threads",
        args.batch_size,
        args.max_length,
        args.steps,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Groups of (up to) 8 pairs, the first the "positive", as in `teacher train`.
    let group = 8.min(args.batch_size);
    let groups = args.batch_size / group;
    for backend in &args.backends {
        let device = backend.device()?;
        let ad = device.autodiff();
        ad.seed(0);
        let loaded = load_teacher(&args.model, &ad, args.max_length, true)?;
        let tokenizer = loaded.tokenizer;
        let mut model = loaded.model;
        let mut optimizer = Optimizer::new(
            &OptimConfig { warmup_ratio: 0.0, ..OptimConfig::default() },
            args.steps + 1,
            &["classifier"],
        );
        let workers = Workers::new(worker_count(args.workers, &ad, groups).min(groups))?;
        let n = workers.count();
        let (mut fwd, mut bwd, mut opt) = (0.0f64, 0.0f64, 0.0f64);
        let mut seq_len = 0;
        for step in 0..=args.steps {
            // Worker w's micro-batch: groups w, w + n, …
            let mut micro: Vec<Vec<(&str, &str)>> = vec![Vec::new(); n];
            for g in 0..groups {
                micro[g % n].extend((0..group).map(|i| {
                    let k = 2 * (step * args.batch_size + g * group + i);
                    (texts[k], texts[k + 1])
                }));
            }
            let batches = micro.iter().map(|pairs| tokenizer.encode_pairs(pairs)).collect::<Result<Vec<_>, _>>()?;
            seq_len = batches[0].seq_len;
            let copies: Vec<_> = if n > 1 { (0..n).map(|_| own_leaves(model.clone())).collect() } else { Vec::new() };
            let forwards_done = std::sync::Barrier::new(n);
            let t0 = Instant::now();
            let results = workers.run(n, |w| {
                // Dropout masks from the worker thread's own generator, as in `distill` and
                // `teacher train` (train_loop), not from the device's shared one.
                adam_core::model::seed_dropout((step * n + w) as u64);
                let own = copies.get(w).unwrap_or(&model);
                let (ids, types, pad) = batches[w].to_tensors(&ad);
                let rows = batches[w].batch / group;
                let scores = own.score(ids, types, pad).reshape([rows, group]);
                let loss = contrastive_loss(scores, &vec![0; rows], None, 1.0).sum().div_scalar(groups as f32);
                let _ = loss.clone().into_scalar::<f32>();
                forwards_done.wait();
                let t1 = Instant::now();
                let grads = gradients(own, loss);
                (t1, grads)
            });
            let t1 = results[0].0;
            let mut acc = Accumulator::default();
            for (_, grads) in results {
                acc.add(&model, grads);
            }
            let grads = acc.take();
            sync(&ad)?;
            let t2 = Instant::now();
            let (updated, _) = optimizer.step(model, grads, step)?;
            model = updated;
            sync(&ad)?;
            let t3 = Instant::now();
            if step > 0 {
                fwd += (t1 - t0).as_secs_f64();
                bwd += (t2 - t1).as_secs_f64();
                opt += (t3 - t2).as_secs_f64();
            }
        }
        let total = fwd + bwd + opt;
        let pairs = (args.batch_size * args.steps) as f64;
        println!(
            "{{\"engine\":\"adam-{backend}\",\"workers\":{n},\"pairs_per_s\":{:.2},\"seq_len\":{seq_len},\"forward_s\":{:.3},\"backward_s\":{:.3},\"optimizer_s\":{:.3},\"steps\":{}}}",
            pairs / total,
            fwd / args.steps as f64,
            bwd / args.steps as f64,
            opt / args.steps as f64,
            args.steps
        );
    }
    if let Some(peak) = peak_rss_mib() {
        println!("peak resident memory: {peak:.0} MiB");
    }
    Ok(())
}
