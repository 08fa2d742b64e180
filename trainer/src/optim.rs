//! Optimisation shared by `teacher train` and `distill`: AdamW (burn-optim's, in one pass per
//! parameter: [`crate::fused_adamw`]) with linear warm-up
//! then linear decay, decoupled weight decay (not on biases and LayerNorm), optional clipping of
//! the global gradient norm, gradient accumulation, and an optional higher learning rate for a
//! new classification head.

use anyhow::Result;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Tensor};
use serde::{Deserialize, Serialize};

use crate::fused_adamw::FusedAdamW;

/// Optimiser knobs (the `[train]` section of a distillation config; flags of `teacher train`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Peak learning rate of a newly initialised head (default: `lr`).
    pub head_lr: Option<f64>,
    /// Warm-up steps; when absent, `warmup_ratio` of all steps.
    pub warmup_steps: Option<usize>,
    pub warmup_ratio: f64,
    /// Decoupled (AdamW) weight decay; biases and LayerNorm parameters are not decayed.
    pub weight_decay: f64,
    /// Clip the global gradient norm (over all parameters, as PyTorch's `clip_grad_norm_`).
    pub max_grad_norm: Option<f64>,
    /// Micro-batches whose gradients are summed before one optimiser step.
    pub grad_accumulation: usize,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 2e-5,
            head_lr: None,
            warmup_steps: None,
            warmup_ratio: 0.1,
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
            grad_accumulation: 1,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

impl OptimConfig {
    /// Checks ranges; the message names the knob.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v > 0.0 && v.is_finite() { Ok(()) } else { Err(format!("{name} = {v} must be positive")) }
        };
        positive("lr", self.lr)?;
        if let Some(h) = self.head_lr {
            positive("head_lr", h)?;
        }
        if let Some(m) = self.max_grad_norm {
            positive("max_grad_norm", m)?;
        }
        positive("epsilon", self.epsilon)?;
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return Err(format!("warmup_ratio = {} is not in [0, 1]", self.warmup_ratio));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(format!("weight_decay = {} must be non-negative", self.weight_decay));
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(format!("{name} = {b} is not in [0, 1)"));
            }
        }
        if self.grad_accumulation == 0 {
            return Err("grad_accumulation must be at least 1".into());
        }
        Ok(())
    }

    pub fn warmup(&self, total_steps: usize) -> usize {
        self.warmup_steps.unwrap_or_else(|| (self.warmup_ratio * total_steps as f64).round() as usize).min(total_steps)
    }

    /// Learning-rate factor at optimiser step `step` (0-based) of `total`: linear warm-up to 1
    /// (the first step already moves, at `1 / warmup`), then linear decay towards 0 at `total`.
    pub fn lr_factor(&self, step: usize, total: usize) -> f64 {
        let warmup = self.warmup(total);
        if step < warmup {
            (step + 1) as f64 / warmup as f64
        } else {
            let left = total.saturating_sub(step) as f64;
            (left / total.saturating_sub(warmup).max(1) as f64).clamp(0.0, 1.0)
        }
    }
}

/// AdamW over a module, with the schedule and gradient handling above.
pub struct Optimizer {
    config: OptimConfig,
    total_steps: usize,
    inner: ModuleOptimizer,
    /// Path fragments of the parameters that get `head_lr` (e.g. `classifier`).
    head: Vec<String>,
}

/// Parameters that are not weight-decayed (as in BERT's recipe): biases and LayerNorm.
fn no_decay_group() -> ParamGroup {
    ParamGroup::from_any_predicates(vec![".bias", ".gamma", ".beta"])
}

impl Optimizer {
    /// `head`: path fragments (e.g. `classifier`) of newly initialised parameters that train at
    /// `head_lr`.
    pub fn new(config: &OptimConfig, total_steps: usize, head: &[&str]) -> Self {
        let adamw =
            |decay: f64| FusedAdamW::new(config.beta1 as f32, config.beta2 as f32, config.epsilon as f32, decay as f32);
        let inner = ModuleOptimizer::from(adamw(config.weight_decay)).with_group(no_decay_group(), adamw(0.0), None);
        Self { config: config.clone(), total_steps, inner, head: head.iter().map(|h| h.to_string()).collect() }
    }

    /// The base learning rate at `step`.
    pub fn lr(&self, step: usize) -> f64 {
        self.config.lr * self.config.lr_factor(step, self.total_steps)
    }

    /// One AdamW update of `model` with `grads` at optimiser step `step`; returns the model and
    /// the global gradient norm before clipping. A NaN or infinite norm is an error and nothing is
    /// updated: clipping cannot catch it (`NaN > max` is false) and one such step spoils every
    /// weight.
    pub fn step<M: Module>(&mut self, model: M, mut grads: GradientsParams, step: usize) -> Result<(M, f64)> {
        let norm = global_norm(&model, &grads);
        if !norm.is_finite() {
            anyhow::bail!("the gradient norm is {norm}");
        }
        if let Some(max) = self.config.max_grad_norm
            && norm > max
        {
            scale_grads(&model, &mut grads, (max / (norm + 1e-6)) as f32);
        }
        let factor = self.config.lr_factor(step, self.total_steps);
        let mut lr = ModuleLrScheduler::new(self.config.lr * factor);
        if let Some(head_lr) = self.config.head_lr
            && !self.head.is_empty()
        {
            lr = lr.with_group(ParamGroup::from_any_predicates(self.head.clone()), head_lr * factor);
        }
        let model = self.inner.step(lr.step(), model, grads);
        Ok((model, norm))
    }

    /// The moment estimates, as burn's optimizer record (keyed by parameter id, which
    /// `BurnpackStore` keeps with the weights).
    pub fn to_bytes(&self) -> Result<Bytes> {
        self.inner.into_bytes().map_err(|e| anyhow::anyhow!("serialising the optimizer state: {e}"))
    }

    pub fn load_bytes(mut self, bytes: Bytes) -> Result<Self> {
        self.inner = self.inner.from_bytes(bytes).map_err(|e| anyhow::anyhow!("reading the optimizer state: {e}"))?;
        Ok(self)
    }

    /// [`Optimizer::load_bytes`] in place (burn's optimizer loads by value).
    pub fn set_bytes(&mut self, bytes: Bytes) -> Result<()> {
        let placeholder = Optimizer::new(&self.config, self.total_steps, &[]);
        *self = std::mem::replace(self, placeholder).load_bytes(bytes)?;
        Ok(())
    }
}

/// Stops a run whose loss or gradients are no longer numbers, naming what a user needs to act:
/// the step, the queries of its batch and the checkpoint to go back to (`last_checkpoint`: its
/// folder and step).
pub fn non_finite(
    step: usize,
    queries: &[String],
    last_checkpoint: Option<(&std::path::Path, usize)>,
    cause: impl std::fmt::Display,
) -> anyhow::Error {
    const SHOWN: usize = 8;
    let mut ids = queries.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if queries.len() > SHOWN {
        ids.push_str(&format!(" and {} more", queries.len() - SHOWN));
    }
    let back = match last_checkpoint {
        Some((dir, at)) => format!(
            "the last good checkpoint is {} (step {at}); resume from it with --resume after lowering the learning rate",
            dir.display()
        ),
        None => "no checkpoint was written before it".to_string(),
    };
    anyhow::anyhow!(
        "training stopped at step {}: {cause} (batch queries: {ids}); nothing was saved from this step; {back}",
        step + 1
    )
}

/// Sums the gradients of several micro-batches.
pub struct Accumulator<M: Module> {
    inner: GradientsAccumulator<M>,
}

impl<M: Module> Default for Accumulator<M> {
    fn default() -> Self {
        Self { inner: GradientsAccumulator::new() }
    }
}

/// The gradients of `loss` (already divided by the number of micro-batches) for `model`'s
/// parameters, by parameter id.
pub fn gradients<M: Module>(model: &M, loss: Tensor<1>) -> GradientsParams {
    GradientsParams::from_grads(loss.backward(), model)
}

impl<M: Module> Accumulator<M> {
    /// Adds a micro-batch's [`gradients`] (a worker's too: its copy has the same parameter ids).
    pub fn add(&mut self, model: &M, grads: GradientsParams) {
        self.inner.accumulate(model, grads);
    }

    pub fn take(&mut self) -> GradientsParams {
        self.inner.grads()
    }
}

/// `sqrt(sum of squared gradient entries)` over all parameters (one read-back).
fn global_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    struct SquaredSums<'a> {
        grads: &'a GradientsParams,
        sums: Vec<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredSums<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.sums.push(g.square().sum());
            }
        }
    }
    let mut visitor = SquaredSums { grads, sums: Vec::new() };
    model.visit(&mut visitor);
    if visitor.sums.is_empty() {
        return 0.0;
    }
    let total: f64 = Tensor::cat(visitor.sums, 0).sum().into_scalar::<f32>() as f64;
    total.sqrt()
}

fn scale_grads<M: Module>(model: &M, grads: &mut GradientsParams, factor: f32) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f32,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    model.visit(&mut Scale { grads, factor });
}

/// Initialises every lazily initialised parameter now, so that random initialisation draws
/// from the RNG state seeded for it rather than from whatever is seeded at first use.
pub fn initialize_params<M: Module>(model: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}
