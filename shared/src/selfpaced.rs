//! Self-paced distillation: keep the dark-example distillation term for the instances the teacher
//! is most confident about, admitting more of them as training goes on.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// How the teacher's confidence in an instance is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceMeasure {
    /// Softmax probability of the positive among the original candidates.
    #[default]
    Softmax,
    /// Positive score minus the best negative score.
    Margin,
}

/// How the kept share `lambda(t)` grows from `lambda0` to 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// `lambda0 + (1 - lambda0) p`.
    Linear,
    /// `sqrt(lambda0^2 + (1 - lambda0^2) p)` (Platanios et al. 2019's root competence).
    #[default]
    Root,
    /// `lambda0` throughout.
    Constant,
}

/// Hard keeps the top share with weight 1; soft also gives the rest weights falling with rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weighting {
    #[default]
    Hard,
    Soft,
}

/// Self-paced knobs; field names are the config names in METHOD.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfPacedConfig {
    /// Off: every instance keeps its distillation term (weight 1).
    pub enabled: bool,
    /// Share of each batch kept at the first step.
    pub lambda0: f32,
    pub schedule: Schedule,
    /// Share of training after which `lambda` is 1.
    pub grow_fraction: f32,
    pub weighting: Weighting,
    pub confidence: ConfidenceMeasure,
    /// Teacher temperature of the softmax confidence.
    pub confidence_temperature: f32,
}

impl Default for SelfPacedConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lambda0: 0.5,
            schedule: Schedule::Root,
            grow_fraction: 1.0,
            weighting: Weighting::Hard,
            confidence: ConfidenceMeasure::Softmax,
            confidence_temperature: 1.0,
        }
    }
}

impl SelfPacedConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.lambda0 > 0.0 && self.lambda0 <= 1.0) {
            return Err(format!("lambda0 = {} is not in (0, 1]", self.lambda0));
        }
        if !(self.grow_fraction >= 0.0 && self.grow_fraction <= 1.0) {
            return Err(format!("grow_fraction = {} is not in [0, 1]", self.grow_fraction));
        }
        if !(self.confidence_temperature > 0.0 && self.confidence_temperature.is_finite()) {
            return Err(format!("confidence_temperature = {} must be positive", self.confidence_temperature));
        }
        Ok(())
    }

    /// `lambda` at `step` (0-based) of `total_steps`; 1 when disabled.
    pub fn lambda(&self, step: usize, total_steps: usize) -> f32 {
        if !self.enabled {
            return 1.0;
        }
        let grow_steps = self.grow_fraction as f64 * total_steps as f64;
        let progress = if grow_steps <= 0.0 { 1.0 } else { (step as f64 / grow_steps).min(1.0) as f32 };
        lambda_at(self.schedule, self.lambda0, progress)
    }

    /// Confidences of a batch, `original[i]` the teacher's scores of instance `i`'s positive
    /// (first) and hard negatives.
    pub fn confidences(&self, original: &[Vec<f32>]) -> Vec<f32> {
        original.iter().map(|s| confidence(s, self.confidence, self.confidence_temperature)).collect()
    }

    /// The selection for one training step.
    pub fn select(&self, step: usize, total_steps: usize, confidences: &[f32]) -> Selection {
        let mut selection = select(confidences, self.lambda(step, total_steps), self.weighting);
        selection.step = step;
        selection
    }
}

/// `lambda` at training progress `p` in `[0, 1]`.
pub fn lambda_at(schedule: Schedule, lambda0: f32, progress: f32) -> f32 {
    let p = progress.clamp(0.0, 1.0);
    let l = match schedule {
        Schedule::Linear => lambda0 + (1.0 - lambda0) * p,
        Schedule::Root => (lambda0 * lambda0 + (1.0 - lambda0 * lambda0) * p).sqrt(),
        Schedule::Constant => lambda0,
    };
    l.clamp(0.0, 1.0)
}

/// The teacher's confidence in one instance from its scores of the original candidates,
/// `scores[0]` the positive's. NaN scores count as absent (a NaN positive gives no confidence:
/// `-inf`, or 0 for softmax).
pub fn confidence(scores: &[f32], measure: ConfidenceMeasure, temperature: f32) -> f32 {
    let Some((&pos, negs)) = scores.split_first() else {
        return f32::NEG_INFINITY;
    };
    let negs = negs.iter().copied().filter(|s| !s.is_nan());
    match measure {
        ConfidenceMeasure::Softmax => {
            if pos.is_nan() {
                return 0.0;
            }
            let negs: Vec<f32> = negs.collect();
            let max = negs.iter().copied().fold(pos, f32::max);
            let z = |s: f32| (((s - max) / temperature) as f64).exp();
            (z(pos) / (z(pos) + negs.iter().map(|&s| z(s)).sum::<f64>())) as f32
        }
        ConfidenceMeasure::Margin => match negs.reduce(f32::max) {
            _ if pos.is_nan() => f32::NEG_INFINITY,
            Some(best) => pos - best,
            None => f32::INFINITY,
        },
    }
}

/// What self-paced selection kept at one step (for logs and the demo).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub step: usize,
    pub lambda: f32,
    /// Instances ranked in the top `lambda` share (weight 1), ascending.
    pub kept: Vec<usize>,
    /// Weight of each instance's distillation term.
    pub weights: Vec<f32>,
    pub confidences: Vec<f32>,
    /// Lowest confidence among the kept instances.
    pub threshold: Option<f32>,
}

impl Selection {
    /// The weights as a `[batch]` tensor for [`adam_objective`](crate::loss::adam_objective).
    pub fn weight_tensor(&self, device: &Device) -> Tensor<1> {
        Tensor::<1>::from_data(TensorData::new(self.weights.clone(), [self.weights.len()]), device)
    }
}

/// Instances kept at share `lambda` of `n`: `ceil(lambda n)`, computed with a small tolerance so
/// that e.g. `0.3 * 10` keeps 3 despite f32 rounding.
pub fn kept_count(lambda: f32, n: usize) -> usize {
    ((lambda.clamp(0.0, 1.0) as f64 * n as f64 - 1e-4).ceil().max(0.0) as usize).min(n)
}

/// Ranks instances by confidence (highest first, ties by index, NaN last) and keeps the top
/// `kept_count(lambda, n)`. `Hard`: weight 1 for kept, 0 for the rest. `Soft`: the rest get
/// `1 - (r + 1) / (n - k + 1)` for the `r`-th instance after the kept `k` (linear in rank, > 0).
pub fn select(confidences: &[f32], lambda: f32, weighting: Weighting) -> Selection {
    let n = confidences.len();
    let k = kept_count(lambda, n);
    let key = |i: usize| if confidences[i].is_nan() { f32::NEG_INFINITY } else { confidences[i] };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    let mut weights = vec![0.0f32; n];
    for (rank, &i) in order.iter().enumerate() {
        weights[i] = if rank < k {
            1.0
        } else if weighting == Weighting::Soft {
            1.0 - (rank - k + 1) as f32 / (n - k + 1) as f32
        } else {
            0.0
        };
    }
    let mut kept = order[..k].to_vec();
    kept.sort_unstable();
    Selection {
        step: 0,
        lambda,
        kept,
        weights,
        confidences: confidences.to_vec(),
        threshold: k.checked_sub(1).map(|last| confidences[order[last]]),
    }
}
