//! Data parallelism inside one process: a training step's micro-batches, or an encoding's
//! batches, computed at once, one per core.
//!
//! burn-flex splits each operation over the cores, but most of a training step's operations
//! (element-wise ones, softmax, GELU and their gradients) run on one thread, so one process
//! kept only 1.2 of 2 cores busy (BENCHMARKS.md, "Workers"). Workers instead run whole
//! micro-batches, each on a pool of its own (one thread on a small machine), the way `--peers`
//! does with processes, without the copies of the weights and the gradient exchange over TCP.
//!
//! A run does not depend on the number of workers: each micro-batch draws its dropout masks
//! from its own seed ([`adam_core::model::seed_dropout`]), its gradients are added to the step's
//! in the micro-batches' order, and flex's products give the same values on one thread as on
//! several.

use std::panic::resume_unwind;

use anyhow::{Context, Result};
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor};

/// The threads that compute micro-batches; one worker means the caller's thread, with flex's
/// own threads inside each operation, as before workers existed.
pub struct Workers {
    /// One pool per worker (none for a single worker), of the cores' share of each.
    pools: Vec<rayon::ThreadPool>,
}

/// At most this many workers by default: past it each worker gets several threads instead, so
/// that memory (a batch's activations per worker) does not grow with the cores of a large machine.
pub const MAX_DEFAULT_WORKERS: usize = 8;

impl Workers {
    pub fn new(count: usize) -> Result<Self> {
        // The cores shared out: one thread per worker on a small machine.
        let threads = (rayon::current_num_threads() / count.max(1)).max(1);
        let pools = if count <= 1 {
            Vec::new()
        } else {
            (0..count)
                .map(|w| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .thread_name(move |_| format!("adam-worker-{w}"))
                        .build()
                        .context("starting a training worker's thread")
                })
                .collect::<Result<_>>()?
        };
        Ok(Self { pools })
    }

    pub fn count(&self) -> usize {
        self.pools.len().max(1)
    }

    /// `f(0)`, …, `f(n − 1)` at once (`n` at most [`Workers::count`]), each on its worker's
    /// pool, so that the flex operations inside run on that pool's threads alone; the results in
    /// worker order. A panic in a worker is raised again here.
    pub fn run<R: Send>(&self, n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
        assert!(n <= self.count(), "{n} jobs for {} workers", self.count());
        if self.pools.is_empty() {
            return (0..n).map(&f).collect();
        }
        let f = &f;
        std::thread::scope(|s| {
            let others: Vec<_> = (1..n).map(|w| s.spawn(move || self.pools[w].install(|| f(w)))).collect();
            let mut results = Vec::with_capacity(n);
            if n > 0 {
                results.push(self.pools[0].install(|| f(0)));
            }
            for handle in others {
                results.push(handle.join().unwrap_or_else(|panic| resume_unwind(panic)));
            }
            results
        })
    }
}

impl Workers {
    /// `f` of every item, [`Workers::count`] at a time; the results in the items' order.
    pub fn map<B: Sync, R: Send>(&self, items: &[B], f: impl Fn(&B) -> R + Sync) -> Vec<R> {
        let mut results = Vec::with_capacity(items.len());
        for round in items.chunks(self.count()) {
            results.extend(self.run(round.len(), |w| f(&round[w])));
        }
        results
    }
}

/// How many workers a run gets: `requested`, or by default one per core (rayon's threads, at
/// most [`MAX_DEFAULT_WORKERS`]) up to the batches there are to share (a training step's
/// micro-batches on this process). Only on the flex device: other devices draw dropout masks from
/// their one generator (and a GPU is one device anyway).
pub fn worker_count(requested: Option<usize>, device: &Device, batches: usize) -> usize {
    if device.clone().inner() != Device::flex() {
        return 1;
    }
    requested.unwrap_or_else(|| rayon::current_num_threads().min(MAX_DEFAULT_WORKERS).min(batches)).max(1)
}

/// `module` with each parameter that takes a gradient made a new autodiff leaf: the same values
/// (shared, not copied) and parameter ids, in a graph of its own. Workers compute on such
/// copies: on shared leaves burn-autodiff would merge their graphs into one, locked for the
/// whole of each backward pass.
pub fn own_leaves<M: Module>(module: M) -> M {
    struct Leaves;
    impl ModuleMapper for Leaves {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| if t.is_require_grad() { t.detach().require_grad() } else { t })
        }
    }
    module.map(&mut Leaves)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_job_runs_on_a_pool_of_its_own() {
        // The cores shared out (CI's 2 cores: one thread each).
        let share = (rayon::current_num_threads() / 3).max(1);
        let workers = Workers::new(3).expect("pools");
        let seen =
            workers.run(3, |w| (w, rayon::current_num_threads(), std::thread::current().name().map(String::from)));
        let names: Vec<_> = seen.iter().map(|(_, _, n)| n.clone().expect("named")).collect();
        assert_eq!(seen.iter().map(|(w, n, _)| (*w, *n)).collect::<Vec<_>>(), vec![(0, share), (1, share), (2, share)]);
        assert_eq!(names, ["adam-worker-0", "adam-worker-1", "adam-worker-2"]);
        assert_eq!(workers.run(2, |w| w * 10), vec![0, 10]);
        assert_eq!(workers.map(&[1, 2, 3, 4, 5, 6, 7], |x| x * x), vec![1, 4, 9, 16, 25, 36, 49]);
    }

    #[test]
    fn one_worker_is_the_callers_thread() {
        let workers = Workers::new(1).expect("no pools");
        let caller = std::thread::current().id();
        assert_eq!(workers.run(1, |_| std::thread::current().id()), vec![caller]);
        assert_eq!(workers.count(), 1);
    }

    #[test]
    fn only_flex_gets_workers() {
        let flex = Device::flex().autodiff();
        assert_eq!(worker_count(Some(4), &flex, 1), 4);
        assert_eq!(worker_count(None, &flex, 1), 1);
        #[allow(deprecated)]
        let ndarray = Device::ndarray().autodiff();
        assert_eq!(worker_count(Some(4), &ndarray, 8), 1);
    }
}
